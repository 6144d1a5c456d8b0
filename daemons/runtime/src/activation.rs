//! systemd socket activation (`sd_listen_fds_with_names` semantics).
//!
//! systemd passes listening sockets as fds 3.. with `LISTEN_PID` (our pid),
//! `LISTEN_FDS` (how many) and `LISTEN_FDNAMES` (colon-separated names). A
//! modvirt daemon claims the names `<d>.socket`, `<d>-ro.socket` and
//! `<d>-admin.socket` (listening UNIX stream sockets); a daemon that listens
//! on the network (virtproxyd) also claims `<d>-tcp.socket` and
//! `<d>-tls.socket` (listening TCP sockets, libvirt's 16509 and 16514). Any
//! other name, or no names at all, is a start-up error that lists the names
//! it expects. As in libvirt, once activation is present the daemon never
//! creates sockets systemd did not pass, and its own listen settings
//! (`--listen`, `listen_tcp`, `listen_tls`) are ignored.
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
    #[error("activation fd {fd} ('{name}') is not a listening {family} stream socket")]
    NotListening {
        fd: RawFd,
        name: String,
        family: &'static str,
    },
    #[error("cannot serve '{name}': {detail}")]
    Serve { name: String, detail: String },
}

/// What a socket passed by systemd is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivatedRole {
    /// One of the daemon's UNIX sockets.
    Unix(SocketRole),
    /// `<d>-tcp.socket`: plain TCP (libvirt's port 16509).
    Tcp,
    /// `<d>-tls.socket`: TLS (libvirt's port 16514).
    Tls,
}

impl ActivatedRole {
    /// Every role, in the order the activation cause looks for a pending
    /// connection (rw, ro, admin, tcp, tls).
    pub const ALL: [ActivatedRole; 5] = [
        Self::Unix(SocketRole::ReadWrite),
        Self::Unix(SocketRole::ReadOnly),
        Self::Unix(SocketRole::Admin),
        Self::Tcp,
        Self::Tls,
    ];

    /// The `FileDescriptorName` systemd passes for this socket: the name of
    /// its unit (`<d>.socket`, `<d>-ro.socket`, …, `<d>-tls.socket`).
    pub fn fd_name(self, daemon: &str) -> String {
        match self {
            Self::Unix(role) => role.fd_name(daemon),
            Self::Tcp => format!("{daemon}-tcp.socket"),
            Self::Tls => format!("{daemon}-tls.socket"),
        }
    }

    /// Whether this is a TCP socket (only a daemon that listens on the
    /// network accepts it).
    pub fn is_network(self) -> bool {
        matches!(self, Self::Tcp | Self::Tls)
    }

    /// The address family the passed socket must have, for errors.
    fn family_name(self) -> &'static str {
        if self.is_network() { "TCP" } else { "UNIX" }
    }
}

/// One socket handed over by systemd.
#[derive(Debug)]
pub struct ActivatedSocket {
    pub role: ActivatedRole,
    pub fd: OwnedFd,
}

/// What the environment said, before any fd is taken (pure, testable).
#[derive(Debug, PartialEq, Eq)]
pub struct ActivationPlan {
    /// `(fd number, role)` in order.
    pub fds: Vec<(RawFd, ActivatedRole)>,
}

/// The roles a daemon accepts: the three UNIX sockets, plus TCP and TLS
/// when it listens on the network.
fn accepted_roles(network: bool) -> impl Iterator<Item = ActivatedRole> {
    ActivatedRole::ALL
        .into_iter()
        .filter(move |r| network || !r.is_network())
}

fn expected_names(daemon: &str, network: bool) -> Vec<String> {
    accepted_roles(network).map(|r| r.fd_name(daemon)).collect()
}

/// Interprets `LISTEN_PID` / `LISTEN_FDS` / `LISTEN_FDNAMES`. Returns `None`
/// when the variables are absent or meant for another process. `network`:
/// the daemon listens on the network and accepts `<d>-tcp.socket` and
/// `<d>-tls.socket` too.
pub fn plan(
    daemon: &str,
    network: bool,
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
    let expected = expected_names(daemon, network);
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
        let role = accepted_roles(network)
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

/// Whether `fd` is a listening stream socket of the family `role` needs
/// (UNIX, or IPv4/IPv6 for TCP and TLS).
fn is_listening_stream(fd: RawFd, role: ActivatedRole) -> bool {
    use nix::sys::socket::{
        AddressFamily, SockType, SockaddrLike, SockaddrStorage, getsockname, getsockopt, sockopt,
    };
    use std::os::fd::BorrowedFd;
    // SAFETY: fd is one systemd passed us and that we have not closed; the
    // borrow lives only for these syscalls.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    let listening = getsockopt(&bfd, sockopt::AcceptConn).unwrap_or(false);
    let stream = getsockopt(&bfd, sockopt::SockType).is_ok_and(|t| t == SockType::Stream);
    let family = getsockname::<SockaddrStorage>(fd).ok().and_then(|a| a.family());
    let family_ok = if role.is_network() {
        matches!(family, Some(AddressFamily::Inet | AddressFamily::Inet6))
    } else {
        family == Some(AddressFamily::Unix)
    };
    listening && stream && family_ok
}

/// Reads the activation variables of this process, takes ownership of the
/// fds they describe and removes the variables from the environment.
/// `network`: the daemon listens on the network (see [`plan`]).
///
/// # Safety
/// Must be called while the process is single-threaded (before any runtime
/// or thread is started), because it modifies the environment.
pub unsafe fn take_from_env(
    daemon: &str,
    network: bool,
) -> Result<Option<Vec<ActivatedSocket>>, ActivationError> {
    let get = |k: &str| std::env::var(k).ok();
    let result = plan(
        daemon,
        network,
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
        if !is_listening_stream(fd, role) {
            return Err(ActivationError::NotListening {
                fd,
                name: role.fd_name(daemon),
                family: role.family_name(),
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
    const RW: ActivatedRole = ActivatedRole::Unix(SocketRole::ReadWrite);

    #[test]
    fn full_plan() {
        let p = plan("virtqemud", false, 42, Some("42"), Some("3"), Some(NAMES))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.fds,
            vec![
                (3, RW),
                (4, ActivatedRole::Unix(SocketRole::ReadOnly)),
                (5, ActivatedRole::Unix(SocketRole::Admin))
            ]
        );
    }

    #[test]
    fn absent_or_other_pid_is_no_activation() {
        assert_eq!(plan("virtqemud", false, 42, None, None, None), Ok(None));
        assert_eq!(
            plan("virtqemud", false, 42, Some("41"), Some("3"), Some(NAMES)),
            Ok(None)
        );
    }

    #[test]
    fn subset_is_allowed() {
        let p = plan(
            "virtqemud",
            false,
            1,
            Some("1"),
            Some("1"),
            Some("virtqemud.socket"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.fds, vec![(3, RW)]);
    }

    #[test]
    fn missing_names_says_what_to_pass() {
        let e = plan("virtqemud", false, 1, Some("1"), Some("3"), None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("--fdname=virtqemud.socket:virtqemud-ro.socket:virtqemud-admin.socket)"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_name_lists_expected() {
        let e = plan(
            "virtqemud",
            false,
            1,
            Some("1"),
            Some("1"),
            Some("libvirtd.socket"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown activation socket name 'libvirtd.socket': virtqemud expects \
             virtqemud.socket, virtqemud-ro.socket, virtqemud-admin.socket"
        );
    }

    #[test]
    fn mismatch_and_duplicates() {
        assert!(matches!(
            plan(
                "virtqemud",
                false,
                1,
                Some("1"),
                Some("2"),
                Some("virtqemud.socket")
            ),
            Err(ActivationError::CountMismatch { names: 1, fds: 2 })
        ));
        assert!(matches!(
            plan(
                "virtqemud",
                false,
                1,
                Some("1"),
                Some("2"),
                Some("virtqemud.socket:virtqemud.socket")
            ),
            Err(ActivationError::Duplicate(_))
        ));
        assert!(matches!(
            plan("virtqemud", false, 1, Some("1"), Some("x"), Some(NAMES)),
            Err(ActivationError::BadCount(_))
        ));
    }

    #[test]
    fn network_daemon_takes_tcp_and_tls_sockets() {
        let names = "virtproxyd-tls.socket:virtproxyd.socket:virtproxyd-tcp.socket";
        let p = plan("virtproxyd", true, 7, Some("7"), Some("3"), Some(names))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.fds,
            vec![(3, ActivatedRole::Tls), (4, RW), (5, ActivatedRole::Tcp)]
        );
        // Only the network sockets, without any UNIX one, is a valid plan too.
        let p = plan(
            "virtproxyd",
            true,
            7,
            Some("7"),
            Some("1"),
            Some("virtproxyd-tls.socket"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.fds, vec![(3, ActivatedRole::Tls)]);
        assert!(matches!(
            plan(
                "virtproxyd",
                true,
                7,
                Some("7"),
                Some("2"),
                Some("virtproxyd-tcp.socket:virtproxyd-tcp.socket")
            ),
            Err(ActivationError::Duplicate(n)) if n == "virtproxyd-tcp.socket"
        ));
    }

    #[test]
    fn network_daemon_lists_all_five_names() {
        let e = plan(
            "virtproxyd",
            true,
            1,
            Some("1"),
            Some("1"),
            Some("libvirtd-tls.socket"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown activation socket name 'libvirtd-tls.socket': virtproxyd expects \
             virtproxyd.socket, virtproxyd-ro.socket, virtproxyd-admin.socket, \
             virtproxyd-tcp.socket, virtproxyd-tls.socket"
        );
        let e = plan("virtproxyd", true, 1, Some("1"), Some("2"), None).unwrap_err();
        assert!(
            e.to_string().contains(
                "--fdname=virtproxyd.socket:virtproxyd-ro.socket:virtproxyd-admin.socket:\
                 virtproxyd-tcp.socket:virtproxyd-tls.socket)"
            ),
            "{e}"
        );
    }

    #[test]
    fn other_daemons_refuse_tcp_and_tls_sockets() {
        for name in ["virtqemud-tcp.socket", "virtqemud-tls.socket"] {
            let e = plan("virtqemud", false, 1, Some("1"), Some("1"), Some(name)).unwrap_err();
            assert_eq!(
                e,
                ActivationError::UnknownName {
                    name: name.to_owned(),
                    daemon: "virtqemud".to_owned(),
                    expected: "virtqemud.socket, virtqemud-ro.socket, virtqemud-admin.socket".to_owned(),
                }
            );
        }
    }

    #[test]
    fn fd_names_and_families() {
        assert_eq!(ActivatedRole::Tcp.fd_name("virtproxyd"), "virtproxyd-tcp.socket");
        assert_eq!(ActivatedRole::Tls.fd_name("virtproxyd"), "virtproxyd-tls.socket");
        assert_eq!(RW.fd_name("virtproxyd"), "virtproxyd.socket");
        assert!(ActivatedRole::Tls.is_network() && !RW.is_network());
    }

    #[test]
    fn passed_sockets_are_checked_for_their_family() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let unix = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let unbound = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(is_listening_stream(unix.as_raw_fd(), RW));
        assert!(!is_listening_stream(unix.as_raw_fd(), ActivatedRole::Tls));
        assert!(is_listening_stream(tcp.as_raw_fd(), ActivatedRole::Tls));
        assert!(is_listening_stream(tcp.as_raw_fd(), ActivatedRole::Tcp));
        assert!(!is_listening_stream(tcp.as_raw_fd(), RW));
        assert!(!is_listening_stream(unbound.as_raw_fd(), ActivatedRole::Tcp));
        let e = ActivationError::NotListening {
            fd: 3,
            name: ActivatedRole::Tls.fd_name("virtproxyd"),
            family: ActivatedRole::Tls.family_name(),
        };
        assert_eq!(
            e.to_string(),
            "activation fd 3 ('virtproxyd-tls.socket') is not a listening TCP stream socket"
        );
    }
}
