//! Listening on the network (`virtproxyd --listen`): TLS on `tls_port` and,
//! when allowed, plain TCP on `tcp_port` (settings in
//! [`crate::config::NetSettings`]). A TLS client must present a
//! certificate signed by the CA (`cacert.pem`) unless
//! `tls_no_verify_certificate = 1`, and its subject must match
//! `tls_allowed_dn_list` when that is set; then it is served like a UNIX
//! socket client of the read-write socket (after libvirt's confirmation
//! byte, 1, which tells the client its certificate passed). Plain TCP is only served with
//! `auth_tcp = "none"`: modvirt has no SASL, and libvirt's default asks for
//! it, so a TCP client is refused by default.

mod dn;

use crate::client::{Accepted, PeerIdentity, serve_accepted};
use crate::config::NetSettings;
use crate::daemon::DaemonShared;
use crate::paths::SocketRole;
use crate::server::Server;
use modvirt_wire::admin::transport;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long a TLS handshake may take.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum NetListenError {
    #[error("cannot read {what} '{}': {detail}", .path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("neither listen_tls nor listen_tcp is set: nothing to listen on")]
    Nothing,
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, NetListenError> {
    std::fs::read(path).map_err(|e| NetListenError::File {
        what,
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, NetListenError> {
    let pem = read_pem(what, path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| NetListenError::File {
            what,
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(NetListenError::File {
            what,
            path: path.to_owned(),
            detail: "no certificate in it".into(),
        });
    }
    Ok(certs)
}

/// The server's TLS configuration from libvirt's files.
fn tls_config(s: &NetSettings, pki: &Path) -> Result<rustls::ServerConfig, NetListenError> {
    let (ca_file, cert_file, key_file) = s.tls_files(pki);
    let chain = certs("server certificate", &cert_file)?;
    let key_pem = read_pem("server key", &key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| NetListenError::File {
        what: "server key",
        path: key_file.clone(),
        detail: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| NetListenError::Tls(e.to_string()))?;
    let builder = if s.tls_no_verify_certificate {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for ca in certs("CA certificate", &ca_file)? {
            roots.add(ca).map_err(|e| NetListenError::File {
                what: "CA certificate",
                path: ca_file.clone(),
                detail: e.to_string(),
            })?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| NetListenError::Tls(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| NetListenError::Tls(format!("server certificate and key: {e}")))?;
    // No TLS 1.3 session tickets: libvirt's client reads the confirmation
    // byte right after the handshake and takes a ticket record arriving
    // first for an error ("Unable to read TLS confirmation"); it never
    // resumes sessions anyway.
    config.send_tls13_tickets = 0;
    Ok(config)
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

/// Binds the listeners the settings ask for and starts accepting on them
/// for `server`; `pki` is where libvirt's certificate files live.
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
        let acceptor = TlsAcceptor::from(Arc::new(tls_config(s, pki)?));
        let l = bind(&s.listen_addr, s.tls_port).await?;
        let allowed = s.tls_allowed_dn_list.clone().map(Arc::new);
        tracing::info!(target: "rpc.server", "listening for TLS on {}:{}", s.listen_addr, s.tls_port);
        tasks.push(tokio::spawn(accept_tls(
            daemon.clone(),
            server.clone(),
            l,
            acceptor,
            allowed,
        )));
    }
    if s.listen_tcp {
        let l = bind(&s.listen_addr, s.tcp_port).await?;
        tracing::info!(target: "rpc.server", "listening for TCP on {}:{}", s.listen_addr, s.tcp_port);
        tasks.push(tokio::spawn(accept_tcp(daemon, server, l, s.tcp_auth_none)));
    }
    Ok(tasks)
}

fn remote_identity(peer: std::net::SocketAddr, what: String) -> PeerIdentity {
    PeerIdentity {
        pid: -1,
        uid: u32::MAX,
        gid: u32::MAX,
        command: format!("{what} {peer}"),
    }
}

async fn accept_tcp(daemon: Arc<DaemonShared>, server: Arc<Server>, l: TcpListener, allowed: bool) {
    loop {
        let Ok((stream, peer)) = l.accept().await else {
            continue;
        };
        if !allowed {
            // libvirt would ask for SASL here; without it, refuse outright.
            tracing::warn!(
                target: "rpc.server",
                "refusing TCP client {peer}: auth_tcp is not \"none\" and modvirt has no SASL; use TLS, or set auth_tcp = \"none\" in the daemon's configuration"
            );
            drop(stream);
            continue;
        }
        daemon.metrics.client_connected(&server.name, "tcp");
        let accepted = split(stream, remote_identity(peer, "tcp".into()), transport::TCP);
        tokio::spawn(serve_accepted(daemon.clone(), server.clone(), accepted));
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

async fn accept_tls(
    daemon: Arc<DaemonShared>,
    server: Arc<Server>,
    l: TcpListener,
    acceptor: TlsAcceptor,
    allowed: Option<Arc<Vec<String>>>,
) {
    loop {
        let Ok((stream, peer)) = l.accept().await else {
            continue;
        };
        let (daemon, server, acceptor, allowed) =
            (daemon.clone(), server.clone(), acceptor.clone(), allowed.clone());
        tokio::spawn(async move {
            let Some((tls, dn)) = handshake(stream, peer, &acceptor, allowed.as_deref()).await else {
                return;
            };
            daemon.metrics.client_connected(&server.name, "tls");
            let what = dn.map_or_else(|| "tls".to_owned(), |dn| format!("tls {dn}"));
            serve_accepted(
                daemon,
                server,
                split(tls, remote_identity(peer, what), transport::TLS),
            )
            .await;
        });
    }
}

/// The TLS handshake and libvirt's checks after it; `None` (logged) when
/// the client is refused.
async fn handshake(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    acceptor: &TlsAcceptor,
    allowed: Option<&Vec<String>>,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Option<String>)> {
    let tls = match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::warn!(target: "rpc.server", "TLS handshake with {peer} failed: {e}");
            return None;
        }
        Err(_) => {
            tracing::warn!(target: "rpc.server", "TLS handshake with {peer} timed out after {} s", HANDSHAKE_LIMIT.as_secs());
            return None;
        }
    };
    let dn = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| dn::subject(c));
    if let Some(allowed) = allowed {
        let ok = dn
            .as_deref()
            .is_some_and(|dn| allowed.iter().any(|p| dn::glob_match(p, dn)));
        if !ok {
            tracing::warn!(
                target: "rpc.server",
                "refusing TLS client {peer}: its Distinguished Name '{}' is not on the list of allowed clients (tls_allowed_dn_list)",
                dn.as_deref().unwrap_or("(none)")
            );
            return None;
        }
    }
    // libvirt's protocol: the server confirms the checks passed with one
    // byte, 1, before the first RPC frame (the client waits for it).
    let mut tls = tls;
    let confirmed = async {
        tokio::io::AsyncWriteExt::write_all(&mut tls, &[1]).await?;
        tokio::io::AsyncWriteExt::flush(&mut tls).await
    };
    if let Err(e) = confirmed.await {
        tracing::warn!(target: "rpc.server", "TLS client {peer} went away before its confirmation: {e}");
        return None;
    }
    Some((tls, dn))
}
