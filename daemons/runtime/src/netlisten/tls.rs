//! The TLS side of a network listener: the server configuration from
//! libvirt's certificate files, and the handshake with libvirt's checks
//! after it (`tls_allowed_dn_list`, then the one-byte confirmation).

use super::{NetListenError, dn};
use crate::config::NetSettings;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long a TLS handshake may take.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// One of libvirt's three files: what it is, and the key that moves it.
#[derive(Debug, Clone, Copy)]
struct PemFile<'a> {
    what: &'static str,
    key: &'static str,
    path: &'a Path,
}

impl PemFile<'_> {
    fn error(&self, detail: impl ToString) -> NetListenError {
        NetListenError::File {
            what: self.what,
            key: self.key,
            path: self.path.to_owned(),
            detail: detail.to_string(),
        }
    }

    fn read(&self) -> Result<Vec<u8>, NetListenError> {
        // As libvirt prints it: without Rust's " (os error N)".
        std::fs::read(self.path).map_err(|e| match e.raw_os_error() {
            Some(code) => self.error(nix::errno::Errno::from_raw(code).desc()),
            None => self.error(e),
        })
    }

    fn certs(&self) -> Result<Vec<CertificateDer<'static>>, NetListenError> {
        let pem = self.read()?;
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))?;
        if certs.is_empty() {
            return Err(self.error("no certificate in it"));
        }
        Ok(certs)
    }
}

/// The TLS acceptor for libvirt's files: the configured ones, else those
/// under `pki` (see [`NetSettings::tls_files`]).
pub(super) fn acceptor(s: &NetSettings, pki: &Path) -> Result<TlsAcceptor, NetListenError> {
    Ok(TlsAcceptor::from(Arc::new(config(s, pki)?)))
}

fn config(s: &NetSettings, pki: &Path) -> Result<rustls::ServerConfig, NetListenError> {
    let (ca_file, cert_file, key_file) = s.tls_files(pki);
    let cert = PemFile {
        what: "server certificate",
        key: "cert_file",
        path: &cert_file,
    };
    let key = PemFile {
        what: "server key",
        key: "key_file",
        path: &key_file,
    };
    let ca = PemFile {
        what: "CA certificate",
        key: "ca_file",
        path: &ca_file,
    };
    let chain = cert.certs()?;
    let private = PrivateKeyDer::from_pem_slice(&key.read()?).map_err(|e| key.error(e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| NetListenError::Tls(e.to_string()))?;
    let builder = if s.tls_no_verify_certificate {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for c in ca.certs()? {
            roots.add(c).map_err(|e| ca.error(e))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| NetListenError::Tls(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(chain, private)
        .map_err(|e| NetListenError::Tls(format!("server certificate and key: {e}")))?;
    // No TLS 1.3 session tickets: libvirt's client reads the confirmation
    // byte right after the handshake and takes a ticket record arriving
    // first for an error ("Unable to read TLS confirmation"); it never
    // resumes sessions anyway.
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The TLS handshake and libvirt's checks after it: the stream and the
/// client's subject, or why the client was refused (logged here).
pub(super) async fn handshake(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    acceptor: &TlsAcceptor,
    allowed: Option<&Vec<String>>,
) -> Result<(tokio_rustls::server::TlsStream<TcpStream>, Option<String>), &'static str> {
    let tls = match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::warn!(target: "rpc.server", "TLS handshake with {peer} failed: {e}");
            return Err("TLS handshake failed");
        }
        Err(_) => {
            tracing::warn!(target: "rpc.server", "TLS handshake with {peer} timed out after {} s", HANDSHAKE_LIMIT.as_secs());
            return Err("TLS handshake timed out");
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
            return Err("not on tls_allowed_dn_list");
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
        return Err("gone before the confirmation");
    }
    Ok((tls, dn))
}
