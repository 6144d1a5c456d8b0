//! systemd socket activation (`sd_listen_fds_with_names` semantics).
//!
//! systemd passes listening sockets as fds 3.. with `LISTEN_PID` (our pid),
//! `LISTEN_FDS` (how many) and `LISTEN_FDNAMES` (colon-separated names). A
//! modvirt daemon claims the names `<d>.socket`, `<d>-ro.socket` and
//! `<d>-admin.socket`; any other name, or no names at all, is a start-up
//! error that lists the names it expects. As in libvirt, once activation is
//! present the daemon never creates sockets systemd did not pass.
//!
//! [`take_from_env`] must run before any thread is started: it reads and
//! clears the variables so children never inherit them.

use crate::paths::SocketRole;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use thiserror::Error;

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ActivationError {
    #[error("invalid LISTEN_FDS value '{0}': expected a number of file descriptors")]
    BadCount(String),
    #[error(
        "missing LISTEN_FDNAMES from systemd socket activation: pass the names {expected} \
         (e.g. systemd-socket-activate --fdname={expected_colon})"
    )]
    MissingNames {
        expected: String,
        expected_colon: String,
    },
    #[error("LISTEN_FDNAMES has {names} names for {fds} file descriptors")]
    CountMismatch { names: usize, fds: usize },
    #[error("unknown activation socket name '{name}': {daemon} expects {expected}")]
    UnknownName {
        name: String,
        daemon: String,
        expected: String,
    },
    #[error("activation socket name '{0}' was passed more than once")]
    Duplicate(String),
    #[error("activation fd {fd} ('{name}') is not a listening UNIX stream socket")]
    NotListening { fd: RawFd, name: String },
}

/// One socket handed over by systemd.
#[derive(Debug)]
pub struct ActivatedSocket {
    pub role: SocketRole,
    pub fd: OwnedFd,
}

/// What the environment said, before any fd is taken (pure, testable).
#[derive(Debug, PartialEq, Eq)]
pub struct ActivationPlan {
    /// `(fd number, role)` in order.
    pub fds: Vec<(RawFd, SocketRole)>,
}

fn expected_names(daemon: &str) -> Vec<String> {
    SocketRole::ALL.iter().map(|r| r.fd_name(daemon)).collect()
}

/// Interprets `LISTEN_PID` / `LISTEN_FDS` / `LISTEN_FDNAMES`. Returns `None`
/// when the variables are absent or meant for another process.
pub fn plan(
    daemon: &str,
    pid: u32,
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    listen_fdnames: Option<&str>,
) -> Result<Option<ActivationPlan>, ActivationError> {
    let (Some(lpid), Some(nfds)) = (listen_pid, listen_fds) else {
        return Ok(None);
    };
    if lpid.trim().parse::<u32>().ok() != Some(pid) {
        return Ok(None);
    }
    let n: usize = nfds
        .trim()
        .parse()
        .map_err(|_| ActivationError::BadCount(nfds.to_owned()))?;
    if n == 0 {
        return Ok(None);
    }
    let expected = expected_names(daemon);
    let Some(names) = listen_fdnames else {
        return Err(ActivationError::MissingNames {
            expected: expected.join(", "),
            expected_colon: expected.join(":"),
        });
    };
    let names: Vec<&str> = names.split(':').collect();
    if names.len() != n {
        return Err(ActivationError::CountMismatch {
            names: names.len(),
            fds: n,
        });
    }
    let mut fds = Vec::with_capacity(n);
    for (i, name) in names.iter().enumerate() {
        let role = SocketRole::ALL
            .into_iter()
            .find(|r| r.fd_name(daemon) == *name)
            .ok_or_else(|| ActivationError::UnknownName {
                name: (*name).to_owned(),
                daemon: daemon.to_owned(),
                expected: expected.join(", "),
            })?;
        if fds.iter().any(|(_, r)| *r == role) {
            return Err(ActivationError::Duplicate((*name).to_owned()));
        }
        fds.push((LISTEN_FDS_START + i as RawFd, role));
    }
    Ok(Some(ActivationPlan { fds }))
}

fn is_listening_unix_stream(fd: RawFd) -> bool {
    use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage, getsockname, getsockopt, sockopt};
    use std::os::fd::BorrowedFd;
    // SAFETY: fd is one systemd passed us and that we have not closed; the
    // borrow lives only for these two syscalls.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    let listening = getsockopt(&bfd, sockopt::AcceptConn).unwrap_or(false);
    let unix = getsockname::<SockaddrStorage>(fd)
        .map(|a| a.family() == Some(AddressFamily::Unix))
        .unwrap_or(false);
    listening && unix
}

/// Reads the activation variables of this process, takes ownership of the
/// fds they describe and removes the variables from the environment.
///
/// # Safety
/// Must be called while the process is single-threaded (before any runtime
/// or thread is started), because it modifies the environment.
pub unsafe fn take_from_env(daemon: &str) -> Result<Option<Vec<ActivatedSocket>>, ActivationError> {
    let get = |k: &str| std::env::var(k).ok();
    let result = plan(
        daemon,
        std::process::id(),
        get("LISTEN_PID").as_deref(),
        get("LISTEN_FDS").as_deref(),
        get("LISTEN_FDNAMES").as_deref(),
    );
    for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // SAFETY: the caller guarantees no other thread exists yet.
        unsafe { std::env::remove_var(k) };
    }
    let Some(plan) = result? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(plan.fds.len());
    for (fd, role) in plan.fds {
        if !is_listening_unix_stream(fd) {
            return Err(ActivationError::NotListening {
                fd,
                name: role.fd_name(daemon),
            });
        }
        let _ = nix::fcntl::fcntl(
            // SAFETY: as above, fd is ours and open.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        // SAFETY: systemd handed this fd to us; nothing else owns it.
        out.push(ActivatedSocket {
            role,
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &str = "virtqemud.socket:virtqemud-ro.socket:virtqemud-admin.socket";

    #[test]
    fn full_plan() {
        let p = plan("virtqemud", 42, Some("42"), Some("3"), Some(NAMES))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.fds,
            vec![
                (3, SocketRole::ReadWrite),
                (4, SocketRole::ReadOnly),
                (5, SocketRole::Admin)
            ]
        );
    }

    #[test]
    fn absent_or_other_pid_is_no_activation() {
        assert_eq!(plan("virtqemud", 42, None, None, None), Ok(None));
        assert_eq!(
            plan("virtqemud", 42, Some("41"), Some("3"), Some(NAMES)),
            Ok(None)
        );
    }

    #[test]
    fn subset_is_allowed() {
        let p = plan("virtqemud", 1, Some("1"), Some("1"), Some("virtqemud.socket"))
            .unwrap()
            .unwrap();
        assert_eq!(p.fds, vec![(3, SocketRole::ReadWrite)]);
    }

    #[test]
    fn missing_names_says_what_to_pass() {
        let e = plan("virtqemud", 1, Some("1"), Some("3"), None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("--fdname=virtqemud.socket:virtqemud-ro.socket:virtqemud-admin.socket"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_name_lists_expected() {
        let e = plan("virtqemud", 1, Some("1"), Some("1"), Some("libvirtd.socket")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown activation socket name 'libvirtd.socket': virtqemud expects \
             virtqemud.socket, virtqemud-ro.socket, virtqemud-admin.socket"
        );
    }

    #[test]
    fn mismatch_and_duplicates() {
        assert!(matches!(
            plan("virtqemud", 1, Some("1"), Some("2"), Some("virtqemud.socket")),
            Err(ActivationError::CountMismatch { names: 1, fds: 2 })
        ));
        assert!(matches!(
            plan(
                "virtqemud",
                1,
                Some("1"),
                Some("2"),
                Some("virtqemud.socket:virtqemud.socket")
            ),
            Err(ActivationError::Duplicate(_))
        ));
        assert!(matches!(
            plan("virtqemud", 1, Some("1"), Some("x"), Some(NAMES)),
            Err(ActivationError::BadCount(_))
        ));
    }
}
