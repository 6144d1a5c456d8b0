//! `sd_notify(3)`: readiness and status datagrams to systemd.
//!
//! When `NOTIFY_SOCKET` is set (a path, or `@name` for an abstract socket)
//! the daemon sends `READY=1` once it serves, `STATUS=…` lines while it
//! starts, and `STOPPING=1` when it shuts down. Without it, nothing is sent.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

#[derive(Debug, Default)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and removes it from the environment.
    ///
    /// # Safety
    /// Must be called while the process is single-threaded.
    pub unsafe fn from_env() -> Self {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Self::default();
        };
        // SAFETY: the caller guarantees no other thread exists yet.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        Self::to(&path.to_string_lossy())
    }

    /// A notifier sending to `path` (`@name` = abstract).
    pub fn to(path: &str) -> Self {
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(path),
        };
        match (UnixDatagram::unbound(), addr) {
            (Ok(sock), Ok(addr)) => Self {
                target: Some((sock, addr)),
            },
            _ => Self::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one notification (e.g. `READY=1\nSTATUS=…`); failures are logged only.
    pub fn send(&self, state: &str) {
        if let Some((sock, addr)) = &self.target
            && let Err(e) = sock.send_to_addr(state.as_bytes(), addr)
        {
            tracing::debug!(target: "daemon.notify", "sd_notify failed: {e}");
        }
    }

    pub fn status(&self, text: &str) {
        self.send(&format!("STATUS={text}"));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn sends_datagrams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to(path.to_str().unwrap());
        n.send("READY=1");
        n.status("Running");
        let mut buf = [0u8; 64];
        let k = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"READY=1");
        let k = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"STATUS=Running");
    }
}
