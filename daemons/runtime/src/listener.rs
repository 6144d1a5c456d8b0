//! Binding a daemon's UNIX sockets, and the pid file that guards them.
//!
//! The pid file is locked (`flock`) for the daemon's lifetime before any
//! socket is touched, so a second instance on the same root fails with a
//! clear error instead of unlinking a live socket. A socket file left behind
//! by a dead daemon (connecting to it is refused) is replaced; one that
//! still answers belongs to someone else and is never removed.

use crate::paths::{RuntimePaths, SocketRole};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ListenError {
    #[error("cannot create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open pid file {path}: {source}")]
    PidFileOpen { path: PathBuf, source: std::io::Error },
    #[error(
        "another {daemon} is already running (pid file {path} is locked{by}); \
         stop it first or use another --root"
    )]
    AlreadyRunning {
        daemon: String,
        path: PathBuf,
        by: String,
    },
    #[error("cannot write pid file {path}: {source}")]
    PidFileWrite { path: PathBuf, source: std::io::Error },
    #[error("socket {path} is in use by another process; refusing to replace it")]
    InUse { path: PathBuf },
    #[error("{path} exists and is not a socket; remove it or use another --root")]
    NotASocket { path: PathBuf },
    #[error("cannot remove stale socket {path}: {source}")]
    RemoveStale { path: PathBuf, source: std::io::Error },
    #[error("failed to bind socket to '{path}': {source}")]
    Bind { path: PathBuf, source: std::io::Error },
    #[error("cannot set mode {mode:o} on {path}: {source}")]
    Chmod {
        path: PathBuf,
        mode: u32,
        source: std::io::Error,
    },
}

/// A locked pid file; unlocked and removed on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    _lock: Flock<File>,
}

impl PidFile {
    /// Creates (if needed), locks and writes the pid file.
    pub fn acquire(daemon: &str, path: &Path) -> Result<PidFile, ListenError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ListenError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(|source| ListenError::PidFileOpen {
                path: path.to_owned(),
                source,
            })?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut file, _)) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                let by = match s.trim() {
                    "" => String::new(),
                    pid => format!(" by pid {pid}"),
                };
                return Err(ListenError::AlreadyRunning {
                    daemon: daemon.to_owned(),
                    path: path.to_owned(),
                    by,
                });
            }
        };
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            // No fsync: the pid file lives in the runtime dir (tmpfs) and is
            // rewritten at every start; a sync costs milliseconds of start-up.
            writeln!(f, "{}", std::process::id())
        };
        write(&mut lock).map_err(|source| ListenError::PidFileWrite {
            path: path.to_owned(),
            source,
        })?;
        Ok(PidFile {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A listening socket, and whether we created its file (then we remove it).
#[derive(Debug)]
pub struct BoundSocket {
    pub role: SocketRole,
    pub path: PathBuf,
    pub listener: UnixListener,
    /// True if this process bound the path (and must unlink it on exit).
    pub owned: bool,
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes `path` if it is a socket nobody listens on.
fn clear_stale(path: &Path) -> Result<(), ListenError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket {
            path: path.to_owned(),
        });
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ListenError::InUse {
            path: path.to_owned(),
        });
    }
    tracing::info!(target: "rpc.listener", "replacing stale socket {}", path.display());
    std::fs::remove_file(path).map_err(|source| ListenError::RemoveStale {
        path: path.to_owned(),
        source,
    })
}

/// Binds one socket with libvirt's unit mode for its role.
pub fn bind(path: &Path, role: SocketRole) -> Result<BoundSocket, ListenError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ListenError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    clear_stale(path)?;
    let listener = UnixListener::bind(path).map_err(|source| ListenError::Bind {
        path: path.to_owned(),
        source,
    })?;
    let sock = BoundSocket {
        role,
        path: path.to_owned(),
        listener,
        owned: true,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(role.mode())).map_err(|source| {
        ListenError::Chmod {
            path: path.to_owned(),
            mode: role.mode(),
            source,
        }
    })?;
    Ok(sock)
}

/// Binds the three sockets of a daemon.
pub fn bind_all(paths: &RuntimePaths) -> Result<Vec<BoundSocket>, ListenError> {
    SocketRole::ALL
        .iter()
        .map(|&role| bind(&paths.socket(role), role))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn binds_with_modes_and_removes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let paths = RuntimePaths::under_root("testd", dir.path());
        let socks = bind_all(&paths).unwrap();
        for s in &socks {
            let mode = std::fs::metadata(&s.path).unwrap().mode() & 0o777;
            assert_eq!(mode, s.role.mode(), "{}", s.path.display());
        }
        let p = socks[0].path.clone();
        drop(socks);
        assert!(!p.exists());
    }

    #[test]
    fn stale_socket_replaced_live_socket_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let l = UnixListener::bind(&path).unwrap();
            assert!(matches!(
                bind(&path, SocketRole::ReadWrite),
                Err(ListenError::InUse { .. })
            ));
            drop(l);
        }
        assert!(path.exists(), "a dropped std listener leaves its file: stale");
        let s = bind(&path, SocketRole::ReadWrite).unwrap();
        assert!(UnixStream::connect(&s.path).is_ok());
    }

    #[test]
    fn regular_file_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "x").unwrap();
        assert!(matches!(
            bind(&path, SocketRole::ReadWrite),
            Err(ListenError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }

    #[test]
    fn pid_file_lock_excludes_second_instance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/d.pid");
        let p = PidFile::acquire("d", &path).unwrap();
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content.trim(), std::process::id().to_string());
        let err = PidFile::acquire("d", &path).unwrap_err();
        assert!(err.to_string().contains("already running"), "{err}");
        drop(p);
        assert!(!path.exists());
        let _again = PidFile::acquire("d", &path).unwrap();
    }
}
