//! Listening on the network (virtproxyd): TLS and, when allowed, plain TCP.
//! The listening sockets come from one of two places:
//!
//! - `--listen` ([`start`]): bound here, on `listen_addr` with `tls_port`
//!   and `tcp_port`, as `listen_tls` / `listen_tcp` ask (settings in
//!   [`crate::config::NetSettings`]);
//! - systemd socket activation ([`serve_passed`]): `<d>-tls.socket` and
//!   `<d>-tcp.socket` (see [`crate::activation`]). As in libvirt's
//!   virtproxyd, the sockets systemd passes are what is served: the
//!   listen settings (address, ports, `listen_tls`, `listen_tcp`) and
//!   `--listen` do not apply.
//!
//! Either way a listener is served the same. A TLS client must present a
//! certificate signed by the CA (`cacert.pem`) unless
//! `tls_no_verify_certificate = 1`, and its subject must match
//! `tls_allowed_dn_list` when that is set; then it is served like a UNIX
//! socket client of the read-write socket (after libvirt's confirmation
//! byte, 1, which tells the client its certificate passed). Plain TCP is
//! only served with `auth_tcp = "none"`: modvirt has no SASL, and libvirt's
//! default asks for it, so a TCP client is refused by default.
//!
//! A client that connects to a socket-activated listener is recorded as the
//! activation's first client (`observe::cause`): no pid or uid exists for
//! it, so what is known is given instead — transport, certificate subject
//! and peer address.

mod dn;
mod tls;

use crate::activation::ActivatedRole;
use crate::client::{Accepted, PeerIdentity, serve_accepted};
use crate::config::NetSettings;
use crate::daemon::DaemonShared;
use crate::paths::SocketRole;
use crate::server::Server;
use modvirt_wire::admin::transport;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, Error)]
pub enum NetListenError {
    #[error(
        "cannot read {what} '{}': {detail}; put the {what} there, or set {key} in the daemon's configuration file",
        .path.display()
    )]
    File {
        what: &'static str,
        /// The configuration key that names this file.
        key: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("cannot accept on the socket systemd passed: {0}")]
    Adopt(std::io::Error),
    #[error("neither listen_tls nor listen_tcp is set: nothing to listen on")]
    Nothing,
}

/// What a network listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetService {
    /// Plain TCP (libvirt's 16509; `qemu+tcp://`).
    Tcp,
    /// TLS (libvirt's 16514; `qemu+tls://`).
    Tls,
}

impl NetService {
    /// The activation role (and so the unit name) of this service.
    pub fn activated_role(self) -> ActivatedRole {
        match self {
            Self::Tcp => ActivatedRole::Tcp,
            Self::Tls => ActivatedRole::Tls,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

/// How a listener's clients are served.
enum Mode {
    Tcp,
    Tls(TlsAcceptor),
}

impl Mode {
    fn service(&self) -> NetService {
        match self {
            Self::Tcp => NetService::Tcp,
            Self::Tls(_) => NetService::Tls,
        }
    }
}

async fn bind(addr: &str, port: u16) -> Result<TcpListener, NetListenError> {
    let at = if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    };
    TcpListener::bind(&at)
        .await
        .map_err(|source| NetListenError::Bind { addr: at, source })
}

/// `--listen`: binds the listeners the settings ask for and starts
/// accepting on them for `server`; `pki` is where libvirt's certificate
/// files live. The TLS files are read before anything is bound.
pub async fn start(
    daemon: Arc<DaemonShared>,
    server: Arc<Server>,
    s: &NetSettings,
    pki: &Path,
) -> Result<Vec<JoinHandle<()>>, NetListenError> {
    if !s.listen_tls && !s.listen_tcp {
        return Err(NetListenError::Nothing);
    }
    let mut tasks = Vec::new();
    if s.listen_tls {
        let acceptor = tls::acceptor(s, pki)?;
        let l = bind(&s.listen_addr, s.tls_port).await?;
        tasks.push(spawn(&daemon, &server, s, l, Mode::Tls(acceptor), "--listen"));
    }
    if s.listen_tcp {
        let l = bind(&s.listen_addr, s.tcp_port).await?;
        tasks.push(spawn(&daemon, &server, s, l, Mode::Tcp, "--listen"));
    }
    Ok(tasks)
}

/// Socket activation: serves a listening TCP socket systemd passed (its
/// unit `<d>-tls.socket` or `<d>-tcp.socket`) exactly as `--listen` serves
/// its own. For TLS, libvirt's files must be there: a missing one is an
/// error now, at start-up, not at the first client.
pub fn serve_passed(
    daemon: &Arc<DaemonShared>,
    server: &Arc<Server>,
    s: &NetSettings,
    pki: &Path,
    service: NetService,
    fd: OwnedFd,
) -> Result<JoinHandle<()>, NetListenError> {
    let mode = match service {
        NetService::Tls => Mode::Tls(tls::acceptor(s, pki)?),
        NetService::Tcp => Mode::Tcp,
    };
    let l = std::net::TcpListener::from(fd);
    l.set_nonblocking(true).map_err(NetListenError::Adopt)?;
    let l = TcpListener::from_std(l).map_err(NetListenError::Adopt)?;
    Ok(spawn(daemon, server, s, l, mode, "socket activation"))
}

/// What every accepted connection of one listener needs.
struct Listening {
    daemon: Arc<DaemonShared>,
    server: Arc<Server>,
    /// `<d>-tls.socket` / `<d>-tcp.socket`: the activation socket name.
    fd_name: String,
    tcp_allowed: bool,
    allowed_dns: Option<Arc<Vec<String>>>,
}

impl Listening {
    /// Records a client for the activation cause; a refused one only when
    /// this listener's socket activated the daemon and no client is known
    /// yet (it is the one that woke it).
    fn note_client(&self, comm: String, refused: bool) {
        let observer = &self.daemon.observer;
        if refused {
            let a = observer.activation();
            if a.socket.as_deref() != Some(self.fd_name.as_str()) || a.client.is_some() {
                return;
            }
        }
        observer.client_accepted(
            &self.fd_name,
            modvirt_wire::observe::Process {
                pid: -1,
                uid: u32::MAX,
                comm,
            },
        );
    }
}

fn spawn(
    daemon: &Arc<DaemonShared>,
    server: &Arc<Server>,
    s: &NetSettings,
    l: TcpListener,
    mode: Mode,
    origin: &str,
) -> JoinHandle<()> {
    let service = mode.service();
    let at = l
        .local_addr()
        .map_or_else(|_| "(unknown address)".to_owned(), |a| a.to_string());
    let what = if service == NetService::Tls { "TLS" } else { "TCP" };
    tracing::info!(target: "rpc.server", "listening for {what} on {at} ({origin})");
    if service == NetService::Tcp && !s.tcp_auth_none {
        tracing::warn!(
            target: "rpc.server",
            "TCP clients on {at} will be refused: auth_tcp is not \"none\" and modvirt has no SASL; use TLS, or set auth_tcp = \"none\" in the daemon's configuration"
        );
    }
    let ctx = Arc::new(Listening {
        daemon: daemon.clone(),
        server: server.clone(),
        fd_name: service.activated_role().fd_name(&daemon.name),
        tcp_allowed: s.tcp_auth_none,
        allowed_dns: s.tls_allowed_dn_list.clone().map(Arc::new),
    });
    match mode {
        Mode::Tcp => tokio::spawn(accept_tcp(ctx, l)),
        Mode::Tls(acceptor) => tokio::spawn(accept_tls(ctx, l, acceptor)),
    }
}

/// The next connection; accept errors (e.g. out of fds) are logged and
/// retried after a pause instead of spinning.
async fn next(l: &TcpListener, service: NetService) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match l.accept().await {
            Ok(c) => return c,
            Err(e) => {
                tracing::error!(target: "rpc.listener", "accept on the {} socket failed: {e}", service.label());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn remote_identity(peer: SocketAddr, what: String) -> PeerIdentity {
    PeerIdentity {
        pid: -1,
        uid: u32::MAX,
        gid: u32::MAX,
        command: format!("{what} {peer}"),
    }
}

async fn accept_tcp(ctx: Arc<Listening>, l: TcpListener) {
    loop {
        let (stream, peer) = next(&l, NetService::Tcp).await;
        if !ctx.tcp_allowed {
            // libvirt would ask for SASL here; without it, refuse outright.
            tracing::warn!(
                target: "rpc.server",
                "refusing TCP client {peer}: auth_tcp is not \"none\" and modvirt has no SASL; use TLS, or set auth_tcp = \"none\" in the daemon's configuration"
            );
            ctx.note_client(format!("tcp {peer} (refused: auth_tcp)"), true);
            drop(stream);
            continue;
        }
        let identity = remote_identity(peer, "tcp".into());
        ctx.note_client(identity.command.clone(), false);
        ctx.daemon.metrics.client_connected(&ctx.server.name, "tcp");
        let accepted = split(stream, identity, transport::TCP);
        tokio::spawn(serve_accepted(ctx.daemon.clone(), ctx.server.clone(), accepted));
    }
}

fn split<S>(stream: S, identity: PeerIdentity, transport: u32) -> Accepted
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + AsRawFd + Send + Unpin + 'static,
{
    let fd = stream.as_raw_fd();
    let (rd, wr) = tokio::io::split(stream);
    Accepted {
        rd: Box::new(rd),
        wr: Box::new(wr),
        fd,
        identity,
        transport,
        role: SocketRole::ReadWrite,
    }
}

async fn accept_tls(ctx: Arc<Listening>, l: TcpListener, acceptor: TlsAcceptor) {
    loop {
        let (stream, peer) = next(&l, NetService::Tls).await;
        let (ctx, acceptor) = (ctx.clone(), acceptor.clone());
        tokio::spawn(async move {
            let (tls, dn) = match tls::handshake(stream, peer, &acceptor, ctx.allowed_dns.as_deref()).await {
                Ok(ok) => ok,
                Err(why) => {
                    ctx.note_client(format!("tls {peer} (refused: {why})"), true);
                    return;
                }
            };
            ctx.daemon.metrics.client_connected(&ctx.server.name, "tls");
            let what = dn.map_or_else(|| "tls".to_owned(), |dn| format!("tls {dn}"));
            let identity = remote_identity(peer, what);
            ctx.note_client(identity.command.clone(), false);
            serve_accepted(
                ctx.daemon.clone(),
                ctx.server.clone(),
                split(tls, identity, transport::TLS),
            )
            .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_says_which_and_what_to_do() {
        let s = NetSettings::default();
        let dir = tempfile::tempdir().unwrap();
        let e = tls::acceptor(&s, dir.path()).err().unwrap().to_string();
        let cert = dir.path().join("libvirt/servercert.pem");
        assert_eq!(
            e,
            format!(
                "cannot read server certificate '{}': No such file or directory; put the server \
                 certificate there, or set cert_file in the daemon's configuration file",
                cert.display()
            )
        );
    }

    #[test]
    fn services_name_their_activation_sockets() {
        assert_eq!(
            NetService::Tls.activated_role().fd_name("virtproxyd"),
            "virtproxyd-tls.socket"
        );
        assert_eq!(
            NetService::Tcp.activated_role().fd_name("virtproxyd"),
            "virtproxyd-tcp.socket"
        );
    }
}
