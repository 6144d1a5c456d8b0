//! The `dir` pool backend on the host: building and deleting the pool's
//! directory, listing it as volumes (a refresh), creating raw files and
//! directories as volumes, deleting them, and reading a file's facts
//! (sizes, owner, mode, times, whether it is a qcow2 image). qcow2 images
//! are made and measured with `qemu-img` ([`super::qemu_img`]).
//!
//! Everything here is blocking file-system work: the procedures run it on
//! tokio's blocking pool when it may take long (allocation, listing).
//! Failures are [`BackendError`], worded as libvirt's system errors.

use super::pools::system_error;
use crate::conf::{Perms, PoolDef, Timestamp, Timestamps, VolDef, VolFormat, VolTarget, VolType};
use modvirt_wire::{ErrorDomain, RpcError};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// libvirt's default mode of a pool directory it creates.
pub const DEFAULT_POOL_MODE: u32 = 0o711;
/// libvirt's default mode of a volume file.
pub const DEFAULT_VOL_MODE: u32 = 0o600;
/// libvirt's default mode of a directory volume.
pub const DEFAULT_DIR_VOL_MODE: u32 = 0o755;

/// A file-system operation of the backend that failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot create path '{path}'")]
    CreateParent { path: PathBuf, source: io::Error },
    #[error("failed to create directory '{path}'")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot chown '{path}' to ({uid}, {gid})")]
    Chown {
        path: PathBuf,
        uid: i64,
        gid: i64,
        source: io::Error,
    },
    #[error("cannot set mode of '{path}' to {mode:04o}")]
    Chmod {
        path: PathBuf,
        mode: u32,
        source: io::Error,
    },
    #[error("failed to remove pool '{path}'")]
    RemovePool { path: PathBuf, source: io::Error },
    #[error("cannot open directory '{path}'")]
    OpenDir { path: PathBuf, source: io::Error },
    #[error("cannot stat path '{path}'")]
    StatPool { path: PathBuf, source: io::Error },
    #[error("cannot statvfs path '{path}'")]
    Statvfs { path: PathBuf, source: io::Error },
    #[error("cannot stat file '{path}'")]
    StatVolume { path: PathBuf, source: io::Error },
    #[error("Failed to create file '{path}'")]
    CreateFile { path: PathBuf, source: io::Error },
    #[error("cannot extend file '{path}'")]
    Extend { path: PathBuf, source: io::Error },
    #[error("cannot allocate {bytes} bytes in file '{path}'")]
    Allocate {
        path: PathBuf,
        bytes: u64,
        source: io::Error,
    },
    #[error("cannot sync data to file '{path}'")]
    Sync { path: PathBuf, source: io::Error },
    #[error("cannot unlink file '{path}'")]
    Unlink { path: PathBuf, source: io::Error },
    #[error("cannot remove directory '{path}'")]
    RemoveDir { path: PathBuf, source: io::Error },
}

impl BackendError {
    fn source_io(&self) -> &io::Error {
        match self {
            Self::CreateParent { source, .. }
            | Self::CreateDir { source, .. }
            | Self::Chown { source, .. }
            | Self::Chmod { source, .. }
            | Self::RemovePool { source, .. }
            | Self::OpenDir { source, .. }
            | Self::StatPool { source, .. }
            | Self::Statvfs { source, .. }
            | Self::StatVolume { source, .. }
            | Self::CreateFile { source, .. }
            | Self::Extend { source, .. }
            | Self::Allocate { source, .. }
            | Self::Sync { source, .. }
            | Self::Unlink { source, .. }
            | Self::RemoveDir { source, .. } => source,
        }
    }

    /// libvirt's system error: `what: strerror`, from the storage driver
    /// (from libvirt's file helpers for the ones they report).
    pub fn to_rpc(&self) -> RpcError {
        let domain = match self {
            Self::OpenDir { .. } | Self::CreateDir { .. } => ErrorDomain::NONE,
            _ => ErrorDomain::STORAGE,
        };
        system_error(domain, &self.to_string(), self.source_io())
    }
}

/// What a directory entry is, as a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub is_dir: bool,
    /// Starts with the qcow2 magic (`QFI\xfb`).
    pub qcow2: bool,
    pub size: u64,
    /// Bytes allocated on disk (`st_blocks * 512`).
    pub allocated: u64,
    pub perms: Perms,
    pub timestamps: Timestamps,
}

impl FileFacts {
    /// The volume these facts describe, before qcow2 details are filled in.
    pub fn to_vol_def(&self, name: &str, path: &Path) -> VolDef {
        let path = path.display().to_string();
        let format = if self.is_dir {
            VolFormat::Dir
        } else if self.qcow2 {
            VolFormat::Qcow2
        } else {
            VolFormat::Raw
        };
        let mut target = VolTarget::new(format);
        target.path = Some(path.clone());
        target.perms = self.perms.clone();
        target.timestamps = Some(self.timestamps);
        VolDef {
            name: name.to_owned(),
            key: Some(path),
            vol_type: if self.is_dir { VolType::Dir } else { VolType::File },
            capacity: self.size,
            allocation: self.allocated,
            has_allocation: true,
            physical: self.size,
            target,
        }
    }
}

fn facts_of(meta: &fs::Metadata) -> (Perms, Timestamps) {
    let ts = |sec: i64, nsec: i64| Timestamp { sec, nsec };
    (
        Perms {
            mode: Some(meta.mode() & 0o777),
            owner: Some(meta.uid()),
            group: Some(meta.gid()),
            label: None,
        },
        Timestamps {
            atime: ts(meta.atime(), meta.atime_nsec()),
            mtime: ts(meta.mtime(), meta.mtime_nsec()),
            ctime: ts(meta.ctime(), meta.ctime_nsec()),
        },
    )
}

/// The facts of the file at `path` (following a symlink); `None` when it
/// is not something a `dir` pool lists (a dangling link, a socket, a
/// device…).
pub fn probe(path: &Path) -> Result<Option<FileFacts>, BackendError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(BackendError::StatVolume {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.is_file() && !meta.is_dir() {
        return Ok(None);
    }
    let qcow2 = meta.is_file() && has_qcow2_magic(path);
    let (perms, timestamps) = facts_of(&meta);
    Ok(Some(FileFacts {
        is_dir: meta.is_dir(),
        qcow2,
        size: meta.size(),
        allocated: meta.blocks() * 512,
        perms,
        timestamps,
    }))
}

fn has_qcow2_magic(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"QFI\xfb")
}

/// What a refresh finds: the pool directory's entries as volumes, and the
/// pool's sizes and permissions.
#[derive(Debug, Clone)]
pub struct Scan {
    /// `(name, path, facts)`, by name.
    pub entries: Vec<(String, PathBuf, FileFacts)>,
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
    pub perms: Perms,
}

/// Lists the pool directory (`virStorageBackendRefreshLocal`): every
/// regular file and directory whose name has no control character; sizes
/// from `statvfs` (available: the free blocks, as libvirt counts them).
pub fn scan(target: &Path) -> Result<Scan, BackendError> {
    let dir = fs::read_dir(target).map_err(|source| BackendError::OpenDir {
        path: target.to_owned(),
        source,
    })?;
    let mut entries = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|source| BackendError::OpenDir {
            path: target.to_owned(),
            source,
        })?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(target: "storage", "ignoring a file with a name that is not UTF-8 under '{}'", target.display());
            continue;
        };
        if name.chars().any(char::is_control) {
            tracing::warn!(target: "storage", "ignoring file with control characters under '{}'", target.display());
            continue;
        }
        let path = entry.path();
        if let Some(facts) = probe(&path)? {
            entries.push((name, path, facts));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let meta = fs::metadata(target).map_err(|source| BackendError::StatPool {
        path: target.to_owned(),
        source,
    })?;
    let vfs = nix::sys::statvfs::statvfs(target).map_err(|e| BackendError::Statvfs {
        path: target.to_owned(),
        source: io::Error::from(e),
    })?;
    let capacity = vfs.fragment_size().saturating_mul(vfs.blocks());
    let available = vfs.blocks_free().saturating_mul(vfs.fragment_size());
    Ok(Scan {
        entries,
        capacity,
        allocation: capacity.saturating_sub(available),
        available,
        perms: facts_of(&meta).0,
    })
}

/// Sets owner and group where `perms` gives them.
fn chown(path: &Path, perms: &Perms) -> Result<(), BackendError> {
    if perms.owner.is_none() && perms.group.is_none() {
        return Ok(());
    }
    nix::unistd::chown(
        path,
        perms.owner.map(nix::unistd::Uid::from_raw),
        perms.group.map(nix::unistd::Gid::from_raw),
    )
    .map_err(|e| BackendError::Chown {
        path: path.to_owned(),
        uid: perms.owner.map_or(-1, i64::from),
        gid: perms.group.map_or(-1, i64::from),
        source: io::Error::from(e),
    })
}

fn chmod(path: &Path, mode: u32) -> Result<(), BackendError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| BackendError::Chmod {
        path: path.to_owned(),
        mode,
        source,
    })
}

/// `pool-build` of a `dir` pool (`virStorageBackendBuildLocal`): the
/// parents with default modes, then the directory with the configured
/// mode (0711 when it is new and none is set), owner and group. An
/// existing directory only gets the configured permissions.
pub fn build_pool(def: &PoolDef) -> Result<(), BackendError> {
    let target = Path::new(&def.target_path);
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|source| BackendError::CreateParent {
            path: parent.to_owned(),
            source,
        })?;
    }
    let existed = target.exists();
    let mode = def.perms.mode.or((!existed).then_some(DEFAULT_POOL_MODE));
    match fs::DirBuilder::new()
        .mode(mode.unwrap_or(DEFAULT_POOL_MODE))
        .create(target)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && target.is_dir() => {}
        Err(source) => {
            return Err(BackendError::CreateDir {
                path: target.to_owned(),
                source,
            });
        }
    }
    chown(target, &def.perms)?;
    if let Some(mode) = mode {
        // mkdir's mode is filtered by the umask; libvirt sets it whole.
        chmod(target, mode)?;
    }
    Ok(())
}

/// `pool-delete` of a `dir` pool: removes the (empty) directory.
pub fn delete_pool(def: &PoolDef) -> Result<(), BackendError> {
    fs::remove_dir(&def.target_path).map_err(|source| BackendError::RemovePool {
        path: PathBuf::from(&def.target_path),
        source,
    })
}

/// A new raw volume (`storageBackendCreateRaw`): the file is created
/// (never over an existing one) with the volume's mode, sized to
/// `capacity`, and `allocation` bytes of it are allocated with
/// `fallocate` (left sparse where the file system cannot); the file is
/// removed again when any step fails.
pub fn create_raw(path: &Path, capacity: u64, allocation: u64, perms: &Perms) -> Result<(), BackendError> {
    let mode = perms.mode.unwrap_or(DEFAULT_VOL_MODE);
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| BackendError::CreateFile {
            path: path.to_owned(),
            source,
        })?;
    let made = (|| {
        chmod(path, mode)?;
        chown(path, perms)?;
        file.set_len(capacity).map_err(|source| BackendError::Extend {
            path: path.to_owned(),
            source,
        })?;
        if allocation > 0 {
            let len = i64::try_from(allocation).unwrap_or(i64::MAX);
            match nix::fcntl::fallocate(&file, nix::fcntl::FallocateFlags::empty(), 0, len) {
                Ok(()) | Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EOPNOTSUPP) => {}
                Err(e) => {
                    return Err(BackendError::Allocate {
                        path: path.to_owned(),
                        bytes: allocation,
                        source: io::Error::from(e),
                    });
                }
            }
        }
        file.sync_all().map_err(|source| BackendError::Sync {
            path: path.to_owned(),
            source,
        })
    })();
    if made.is_err() {
        let _ = fs::remove_file(path);
    }
    made
}

/// A new directory volume (format `dir`).
pub fn create_dir_volume(path: &Path, perms: &Perms) -> Result<(), BackendError> {
    let mode = perms.mode.unwrap_or(DEFAULT_DIR_VOL_MODE);
    fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|source| BackendError::CreateDir {
            path: path.to_owned(),
            source,
        })?;
    let set = chmod(path, mode).and_then(|()| chown(path, perms));
    if set.is_err() {
        let _ = fs::remove_dir(path);
    }
    set
}

/// Sets a volume file's mode (default 0600) and owner after `qemu-img`
/// made it, as libvirt does.
pub fn set_volume_perms(path: &Path, perms: &Perms) -> Result<(), BackendError> {
    chown(path, perms)?;
    chmod(path, perms.mode.unwrap_or(DEFAULT_VOL_MODE))
}

/// `vol-delete`: unlinks the file (or removes the directory); a volume
/// already gone is not an error.
pub fn delete_volume(path: &Path, is_dir: bool) -> Result<(), BackendError> {
    let removed = if is_dir {
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) if is_dir => Err(BackendError::RemoveDir {
            path: path.to_owned(),
            source,
        }),
        Err(source) => Err(BackendError::Unlink {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pool_def(path: &Path, mode: Option<u32>) -> PoolDef {
        let mut def = PoolDef::parse(
            &format!(
                "<pool type='dir'><name>p</name><target><path>{}</path></target></pool>",
                path.display()
            ),
            &mut || 1u64,
        )
        .unwrap();
        def.perms.mode = mode;
        def
    }

    #[test]
    fn build_scan_and_delete_a_pool() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("a/b/pool");
        build_pool(&pool_def(&target, None)).unwrap();
        let meta = fs::metadata(&target).unwrap();
        assert_eq!(meta.mode() & 0o777, DEFAULT_POOL_MODE);
        // Building again keeps the directory and applies a configured mode.
        build_pool(&pool_def(&target, Some(0o750))).unwrap();
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o750);

        create_raw(&target.join("a.img"), 1 << 20, 0, &Perms::default()).unwrap();
        create_raw(&target.join("full.img"), 64 << 10, 64 << 10, &Perms::default()).unwrap();
        fs::write(target.join("fake.qcow2"), b"QFI\xfbrest").unwrap();
        create_dir_volume(&target.join("sub"), &Perms::default()).unwrap();
        std::os::unix::fs::symlink(target.join("nowhere"), target.join("dangling")).unwrap();
        fs::write(target.join("bad\u{1}name"), b"").unwrap();

        let scan = scan(&target).unwrap();
        let names: Vec<&str> = scan.entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a.img", "fake.qcow2", "full.img", "sub"]);
        let a = &scan.entries[0].2;
        assert_eq!(
            (a.size, a.allocated, a.qcow2, a.is_dir),
            (1 << 20, 0, false, false)
        );
        assert_eq!(a.perms.mode, Some(DEFAULT_VOL_MODE));
        assert!(scan.entries[1].2.qcow2);
        assert!(scan.entries[2].2.allocated >= 64 << 10, "{:?}", scan.entries[2].2);
        assert!(scan.entries[3].2.is_dir);
        assert_eq!(scan.entries[3].2.perms.mode, Some(DEFAULT_DIR_VOL_MODE));
        assert!(scan.capacity > 0 && scan.capacity == scan.allocation + scan.available);
        assert_eq!(scan.perms.mode, Some(0o750));

        let def = a.to_vol_def("a.img", &target.join("a.img"));
        let path = target.join("a.img").display().to_string();
        assert_eq!(def.key.as_deref(), Some(path.as_str()));
        assert_eq!(def.target.path.as_deref(), Some(path.as_str()));
        assert_eq!((def.vol_type, def.target.format), (VolType::File, VolFormat::Raw));
        assert_eq!((def.capacity, def.physical), (1 << 20, 1 << 20));

        let e = delete_pool(&pool_def(&target, None)).unwrap_err();
        let rpc = e.to_rpc();
        assert_eq!((rpc.code.0, rpc.domain.0), (38, 18));
        assert_eq!(
            rpc.text(),
            format!(
                "failed to remove pool '{}': Directory not empty",
                target.display()
            )
        );
        for name in ["a.img", "full.img", "fake.qcow2", "dangling", "bad\u{1}name"] {
            delete_volume(&target.join(name), false).unwrap();
        }
        delete_volume(&target.join("sub"), true).unwrap();
        delete_volume(&target.join("a.img"), false).unwrap();
        delete_pool(&pool_def(&target, None)).unwrap();
        assert!(!target.exists());
    }

    #[test]
    fn errors_read_as_libvirts() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing");
        let rpc = scan(&missing).unwrap_err().to_rpc();
        assert_eq!((rpc.code.0, rpc.domain.0, rpc.int1), (38, 0, 2));
        assert_eq!(
            rpc.text(),
            format!(
                "cannot open directory '{}': No such file or directory",
                missing.display()
            )
        );
        let file = tmp.path().join("f");
        create_raw(&file, 1, 0, &Perms::default()).unwrap();
        let rpc = create_raw(&file, 1, 0, &Perms::default()).unwrap_err().to_rpc();
        assert_eq!(
            rpc.text(),
            format!("Failed to create file '{}': File exists", file.display())
        );
        let rpc = delete_volume(&file, true).unwrap_err().to_rpc();
        assert_eq!(
            rpc.text(),
            format!("cannot remove directory '{}': Not a directory", file.display())
        );
        assert_eq!(probe(&missing).unwrap(), None);
    }
}
