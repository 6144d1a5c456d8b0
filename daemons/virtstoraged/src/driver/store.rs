//! Where the storage driver keeps things, under the daemon's root
//! (libvirt's layout):
//!
//! - `etc/libvirt/storage/NAME.xml`: persistent pool definitions;
//!   `etc/libvirt/storage/autostart/NAME.xml`: a symlink to the definition
//!   for each autostarted pool;
//! - `run/libvirt/storage/NAME.xml`: the live definition of an active pool
//!   (`<poolstate>` around it), so a restarted daemon knows which pools
//!   are active.
//!
//! Every file is written whole to a temporary name and renamed.

use modvirt_runtime::fsutil::{read_xml_files, remove_if_present, write_atomic};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Store {
    pub config_dir: PathBuf,
    pub autostart_dir: PathBuf,
    pub status_dir: PathBuf,
}

impl Store {
    /// `etc` is the daemon's configuration directory (`ROOT/etc/libvirt`),
    /// `run` its runtime directory (`ROOT/run/libvirt`).
    pub fn new(etc: &Path, run: &Path) -> Store {
        let config_dir = etc.join("storage");
        Store {
            autostart_dir: config_dir.join("autostart"),
            config_dir,
            status_dir: run.join("storage"),
        }
    }

    pub fn config_path(&self, name: &str) -> PathBuf {
        self.config_dir.join(format!("{name}.xml"))
    }

    pub fn autostart_path(&self, name: &str) -> PathBuf {
        self.autostart_dir.join(format!("{name}.xml"))
    }

    pub fn status_path(&self, name: &str) -> PathBuf {
        self.status_dir.join(format!("{name}.xml"))
    }

    pub fn save_config(&self, name: &str, xml: &str) -> io::Result<()> {
        write_atomic(&self.config_path(name), xml.as_bytes())
    }

    /// Removes the definition and its autostart link.
    pub fn delete_config(&self, name: &str) -> io::Result<()> {
        remove_if_present(&self.autostart_path(name))?;
        remove_if_present(&self.config_path(name))
    }

    /// Whether the autostart link exists and points at the definition.
    pub fn autostart(&self, name: &str) -> bool {
        std::fs::read_link(self.autostart_path(name)).is_ok_and(|target| target == self.config_path(name))
    }

    pub fn set_autostart(&self, name: &str, on: bool) -> io::Result<()> {
        let link = self.autostart_path(name);
        if !on {
            return remove_if_present(&link);
        }
        std::fs::create_dir_all(&self.autostart_dir)?;
        remove_if_present(&link)?;
        std::os::unix::fs::symlink(self.config_path(name), link)
    }

    /// Writes the status file (`xml` is the whole `<poolstate>` document).
    pub fn save_status(&self, name: &str, xml: &str) -> io::Result<()> {
        write_atomic(&self.status_path(name), xml.as_bytes())
    }

    pub fn delete_status(&self, name: &str) -> io::Result<()> {
        remove_if_present(&self.status_path(name))
    }

    /// `(name, xml)` of every definition, and what could not be read.
    pub fn configs(&self) -> (Vec<(String, String)>, Vec<String>) {
        read_xml_files(&self.config_dir, false)
    }

    /// `(name, xml)` of every status file, and what could not be read.
    pub fn statuses(&self) -> (Vec<(String, String)>, Vec<String>) {
        read_xml_files(&self.status_dir, false)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn configs_autostart_and_status_round_trip_in_libvirts_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(&dir.path().join("etc/libvirt"), &dir.path().join("run/libvirt"));
        assert_eq!(store.configs().0, []);
        store.save_config("p1", "<pool type='dir'/>\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("etc/libvirt/storage/p1.xml")).unwrap(),
            "<pool type='dir'/>\n"
        );
        assert!(!store.autostart("p1"));
        store.set_autostart("p1", true).unwrap();
        assert!(store.autostart("p1"));
        assert_eq!(
            std::fs::read_link(dir.path().join("etc/libvirt/storage/autostart/p1.xml")).unwrap(),
            dir.path().join("etc/libvirt/storage/p1.xml")
        );
        store.save_status("p1", "<poolstate/>\n").unwrap();
        assert!(dir.path().join("run/libvirt/storage/p1.xml").is_file());
        assert_eq!(
            store.statuses().0,
            [("p1".to_owned(), "<poolstate/>\n".to_owned())]
        );
        // The autostart directory is not a definition.
        assert_eq!(
            store.configs().0,
            [("p1".to_owned(), "<pool type='dir'/>\n".to_owned())]
        );
        store.delete_config("p1").unwrap();
        assert!(!store.autostart("p1"));
        assert!(!dir.path().join("etc/libvirt/storage/autostart/p1.xml").exists());
        assert_eq!(store.configs().0, []);
        store.delete_status("p1").unwrap();
        store.delete_status("p1").unwrap();
        assert_eq!(store.statuses().0, []);
    }
}
