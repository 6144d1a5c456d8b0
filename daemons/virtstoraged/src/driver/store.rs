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

use modvirt_runtime::fsutil::{Definitions, HiddenFiles};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Store {
    defs: Definitions,
}

/// A store is its definitions directory (configs, autostart links,
/// status files: [`Definitions`]) plus what is its driver's own, below.
impl std::ops::Deref for Store {
    type Target = Definitions;

    fn deref(&self) -> &Definitions {
        &self.defs
    }
}

impl Store {
    /// `etc` is the daemon's configuration directory (`ROOT/etc/libvirt`),
    /// `run` its runtime directory (`ROOT/run/libvirt`).
    pub fn new(etc: &Path, run: &Path) -> Store {
        Store {
            defs: Definitions::new(etc.join("storage"), run.join("storage"), HiddenFiles::Read),
        }
    }

    /// Whether the autostart link exists and points at the definition.
    pub fn autostart(&self, name: &str) -> bool {
        self.defs.autostart_links_config(name)
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
