//! Why this run started: `manual` (no activation), `boot` (activated with
//! no pending connection), `socket` (which activation socket had a pending
//! connection — a UNIX socket, or virtproxyd's TCP/TLS one; the first
//! client on it is filled in when accepted) or
//! `peer` (spawned by another modvirt daemon, which says so in
//! `MODVIRT_SPAWNED_BY=<daemon>:<PROCEDURE>`).

use crate::activation::{ActivatedRole, ActivatedSocket};
use modvirt_wire::observe::{Activation, Cause, PeerSpawn};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::os::fd::AsFd;

/// The environment variable a spawning peer daemon sets.
pub const SPAWNED_BY_ENV: &str = "MODVIRT_SPAWNED_BY";

/// Parses `virtqemud:CONNECT_LIST_ALL_NETWORKS`.
pub fn parse_spawned_by(v: &str) -> Option<PeerSpawn> {
    let (daemon, procedure) = v.split_once(':')?;
    (!daemon.is_empty()).then(|| PeerSpawn {
        daemon: daemon.to_owned(),
        procedure: procedure.to_owned(),
    })
}

/// Decides the cause from what start-up found. Polls (without waiting) the
/// activated sockets for a pending connection, in rw, ro, admin, tcp, tls
/// order.
pub fn detect(daemon: &str, activated: Option<&[ActivatedSocket]>, spawned_by: Option<&str>) -> Activation {
    if let Some(peer) = spawned_by.and_then(parse_spawned_by) {
        return Activation {
            cause: Cause::Peer,
            socket: None,
            client: None,
            peer: Some(peer),
        };
    }
    let Some(socks) = activated else {
        return Activation {
            cause: Cause::Manual,
            socket: None,
            client: None,
            peer: None,
        };
    };
    let pending = ActivatedRole::ALL.into_iter().find(|role| {
        socks.iter().filter(|s| s.role == *role).any(|s| {
            let mut fds = [PollFd::new(s.fd.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        })
    });
    match pending {
        Some(role) => Activation {
            cause: Cause::Socket,
            socket: Some(role.fd_name(daemon)),
            client: None,
            peer: None,
        },
        None => Activation {
            cause: Cause::Boot,
            socket: None,
            client: None,
            peer: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::SocketRole;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn manual_peer_boot_socket() {
        assert_eq!(detect("d", None, None).cause, Cause::Manual);
        let p = detect("d", None, Some("virtqemud:CONNECT_LIST_ALL_NETWORKS"));
        assert_eq!(p.cause, Cause::Peer);
        assert_eq!(p.peer.unwrap().daemon, "virtqemud");
        assert_eq!(detect("d", None, Some("garbage")).cause, Cause::Manual);

        let dir = tempfile::tempdir().unwrap();
        let rw = UnixListener::bind(dir.path().join("rw")).unwrap();
        let ro = UnixListener::bind(dir.path().join("ro")).unwrap();
        let _pending = UnixStream::connect(dir.path().join("ro")).unwrap();
        let socks = vec![
            ActivatedSocket {
                role: ActivatedRole::Unix(SocketRole::ReadWrite),
                fd: OwnedFd::from(rw),
            },
            ActivatedSocket {
                role: ActivatedRole::Unix(SocketRole::ReadOnly),
                fd: OwnedFd::from(ro),
            },
        ];
        let a = detect("d", Some(&socks), None);
        assert_eq!(a.cause, Cause::Socket);
        assert_eq!(a.socket.as_deref(), Some("d-ro.socket"));
        let b = detect("d", Some(&socks[..1]), None);
        assert_eq!(b.cause, Cause::Boot);
    }

    #[test]
    fn pending_tls_connection_is_a_socket_activation() {
        let tls = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _pending = std::net::TcpStream::connect(tls.local_addr().unwrap()).unwrap();
        let socks = vec![
            ActivatedSocket {
                role: ActivatedRole::Tcp,
                fd: OwnedFd::from(tcp),
            },
            ActivatedSocket {
                role: ActivatedRole::Tls,
                fd: OwnedFd::from(tls),
            },
        ];
        let a = detect("virtproxyd", Some(&socks), None);
        assert_eq!(a.cause, Cause::Socket);
        assert_eq!(a.socket.as_deref(), Some("virtproxyd-tls.socket"));
    }
}
