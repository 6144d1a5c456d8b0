//! Where persistent secrets live, under the daemon's root (libvirt's
//! layout): `etc/libvirt/secrets/UUID.xml` holds the definition and
//! `etc/libvirt/secrets/UUID.base64` the value (base64, one line). The
//! directory is `0700` and every file `0600`, created with that mode (never
//! readable by others, not even for a moment) under a temporary name and
//! renamed over the old one, so a crash leaves the old file or the new one.
//! `run/libvirt/secrets` (`0700`) is made as libvirt makes it.
//!
//! Ephemeral secrets never reach this module.

use crate::base64;
use crate::secret::{SecretDef, SecretXmlError};
use modvirt_runtime::fsutil::remove_if_present;
use modvirt_xml::{RandomSource, format_uuid};
use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Files written by the daemon: owner read/write only.
pub const FILE_MODE: u32 = 0o600;
/// The directories: owner only.
pub const DIR_MODE: u32 = 0o700;

/// What could not be read back at start-up (the secret is skipped, as
/// libvirt skips it, and the daemon says why).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read '{}': {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Parse { path: PathBuf, source: SecretXmlError },
    #[error("<uuid> does not match secret file name '{file}'")]
    NameMismatch { file: String },
    #[error("invalid base64 in '{}'", path.display())]
    BadBase64 { path: PathBuf },
}

/// A persistent secret read back from disk.
#[derive(Clone)]
pub struct Loaded {
    pub def: SecretDef,
    pub value: Option<Vec<u8>>,
}

impl Drop for Loaded {
    /// Wipes a value that was not handed on.
    fn drop(&mut self) {
        if let Some(v) = &mut self.value {
            super::secrets::wipe(v);
        }
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("def", &self.def)
            .field("value", &self.value.as_ref().map(Vec::len))
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    /// `etc/libvirt/secrets`.
    pub dir: PathBuf,
    /// `run/libvirt/secrets`.
    pub state_dir: PathBuf,
}

impl Store {
    /// `etc` is the daemon's configuration directory (`ROOT/etc/libvirt`),
    /// `run` its runtime directory (`ROOT/run/libvirt`).
    pub fn new(etc: &Path, run: &Path) -> Store {
        Store {
            dir: etc.join("secrets"),
            state_dir: run.join("secrets"),
        }
    }

    /// Makes both directories (`0700`) if they are missing.
    pub fn prepare(&self) -> io::Result<()> {
        private_dir(&self.dir)?;
        private_dir(&self.state_dir)
    }

    pub fn xml_path(&self, uuid: &[u8; 16]) -> PathBuf {
        self.dir.join(format!("{}.xml", format_uuid(uuid)))
    }

    pub fn value_path(&self, uuid: &[u8; 16]) -> PathBuf {
        self.dir.join(format!("{}.base64", format_uuid(uuid)))
    }

    pub fn save_def(&self, def: &SecretDef) -> io::Result<()> {
        write_private(&self.xml_path(&def.uuid), def.to_xml().as_bytes())
    }

    pub fn save_value(&self, uuid: &[u8; 16], value: &[u8]) -> io::Result<()> {
        write_private(&self.value_path(uuid), base64::encode(value).as_bytes())
    }

    /// Removes the definition (absent is fine).
    pub fn delete_def(&self, uuid: &[u8; 16]) -> io::Result<()> {
        remove_if_present(&self.xml_path(uuid))
    }

    /// Removes the value, if any. As in libvirt a failure is not an error:
    /// without its definition the value is never loaded again.
    pub fn delete_value(&self, uuid: &[u8; 16]) {
        let _ = remove_if_present(&self.value_path(uuid));
    }

    /// Every persistent secret, in file-name order, and what could not be
    /// read. A missing UUID in a file is generated with `rng` (and then
    /// does not match the file name, as in libvirt).
    pub fn load(&self, rng: &mut dyn RandomSource) -> (Vec<Loaded>, Vec<LoadError>) {
        let mut loaded = Vec::new();
        let mut problems = Vec::new();
        let mut names: Vec<String> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| n.ends_with(".xml") && !n.starts_with('.'))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                problems.push(LoadError::Read {
                    path: self.dir.clone(),
                    source,
                });
                Vec::new()
            }
        };
        names.sort();
        for name in names {
            match self.load_one(&name, rng) {
                Ok(secret) => loaded.push(secret),
                Err(e) => problems.push(e),
            }
        }
        (loaded, problems)
    }

    fn load_one(&self, file: &str, rng: &mut dyn RandomSource) -> Result<Loaded, LoadError> {
        let path = self.dir.join(file);
        let xml = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let def = SecretDef::parse(&xml, rng).map_err(|source| LoadError::Parse {
            path: path.clone(),
            source,
        })?;
        if file != format!("{}.xml", def.uuid_string()) {
            return Err(LoadError::NameMismatch {
                file: file.to_owned(),
            });
        }
        let value_path = self.value_path(&def.uuid);
        let value = match std::fs::read(&value_path) {
            Ok(text) => Some(base64::decode(&text).ok_or(LoadError::BadBase64 {
                path: value_path.clone(),
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(LoadError::Read {
                    path: value_path,
                    source,
                });
            }
        };
        Ok(Loaded { def, value })
    }
}

/// Creates `dir` with mode `0700` if it is missing (its parents as usual).
fn private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// Writes `bytes` to `path` atomically with mode `0600` from the start: a
/// fresh temporary file in the same directory, flushed, then renamed.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    remove_if_present(&tmp)?;
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::secret::Usage;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn def(uuid: u8) -> SecretDef {
        SecretDef {
            ephemeral: false,
            private: false,
            uuid: [uuid; 16],
            description: Some("d".into()),
            usage: Usage::Ceph(format!("client.{uuid}")),
        }
    }

    #[test]
    fn files_are_private_and_read_back() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(&root.path().join("etc/libvirt"), &root.path().join("run/libvirt"));
        store.prepare().unwrap();
        assert_eq!(mode(&store.dir), 0o700);
        assert_eq!(mode(&store.state_dir), 0o700);
        let a = def(0xaa);
        store.save_def(&a).unwrap();
        store.save_value(&a.uuid, b"s3cr3t").unwrap();
        let xml = root
            .path()
            .join("etc/libvirt/secrets/aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa.xml");
        let value = xml.with_extension("base64");
        assert_eq!(mode(&xml), 0o600);
        assert_eq!(mode(&value), 0o600);
        assert_eq!(std::fs::read_to_string(&value).unwrap(), "czNjcjN0");
        assert_eq!(std::fs::read_to_string(&xml).unwrap(), a.to_xml());
        store.save_def(&def(0xbb)).unwrap();
        let names: Vec<_> = std::fs::read_dir(&store.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "temporaries left: {names:?}");

        let (loaded, problems) = store.load(&mut || 1);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].def, a);
        assert_eq!(loaded[0].value.as_deref(), Some(&b"s3cr3t"[..]));
        assert_eq!(loaded[1].value, None);

        store.delete_def(&a.uuid).unwrap();
        store.delete_value(&a.uuid);
        store.delete_def(&a.uuid).unwrap();
        assert!(!xml.exists() && !value.exists());
    }

    #[test]
    fn bad_files_are_reported_and_skipped() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(&root.path().join("etc"), &root.path().join("run"));
        let a = def(0x11);
        store.save_def(&a).unwrap();
        std::fs::write(store.value_path(&a.uuid), "not base64!").unwrap();
        std::fs::write(store.dir.join("other.xml"), a.to_xml()).unwrap();
        std::fs::write(store.dir.join("broken.xml"), "<secret").unwrap();
        let (loaded, problems) = store.load(&mut || 1);
        assert!(loaded.is_empty());
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        // File-name order: 11111111-….xml, broken.xml, other.xml.
        assert_eq!(
            text[0],
            format!("invalid base64 in '{}'", store.value_path(&a.uuid).display())
        );
        let broken = format!("{}: XML error: ", store.dir.join("broken.xml").display());
        assert!(text[1].starts_with(&broken), "{text:?}");
        assert_eq!(text[2], "<uuid> does not match secret file name 'other.xml'");
    }
}
