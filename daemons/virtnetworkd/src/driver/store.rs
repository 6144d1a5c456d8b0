//! Where the network driver keeps things, under the daemon's root
//! (libvirt's layout):
//!
//! - `etc/libvirt/qemu/networks/NAME.xml`: persistent definitions;
//!   `etc/libvirt/qemu/networks/autostart/NAME.xml`: a symlink per
//!   autostarted one;
//! - `run/libvirt/network/NAME.xml`: the live state of an active network
//!   (`<networkstatus>` around the live definition), so a restarted daemon
//!   knows which networks are up.
//!
//! Every file is written whole to a temporary name and renamed.

use modvirt_runtime::fsutil::{Definitions, HiddenFiles};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Store {
    defs: Definitions,
    /// `ROOT/var/lib/libvirt`: dnsmasq's files go in `dnsmasq/`.
    pub lib_dir: PathBuf,
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
        // ROOT/etc/libvirt → ROOT/var/lib/libvirt, as libvirt's layout.
        let lib_dir = etc.parent().and_then(Path::parent).map_or_else(
            || PathBuf::from("/var/lib/libvirt"),
            |root| root.join("var/lib/libvirt"),
        );
        Store {
            defs: Definitions::new(etc.join("qemu/networks"), run.join("network"), HiddenFiles::Skip),
            lib_dir,
        }
    }

    /// Where network `name`'s dnsmasq keeps its files.
    pub fn dnsmasq_files(&self, name: &str) -> super::dnsmasq::Files {
        super::dnsmasq::Files::new(&self.lib_dir, self.defs.status_dir(), name)
    }

    pub fn save_status(&self, name: &str, live_xml: &str) -> io::Result<()> {
        let mut doc = String::from("<networkstatus>\n");
        for line in live_xml.lines() {
            doc.push_str("  ");
            doc.push_str(line);
            doc.push('\n');
        }
        doc.push_str("</networkstatus>\n");
        self.defs.save_status(name, &doc)
    }

    /// `(name, live network xml)` of every status file, and what could not
    /// be read.
    pub fn statuses(&self) -> (Vec<(String, String)>, Vec<String>) {
        let (files, mut problems) = self.defs.statuses();
        let mut out = Vec::new();
        for (name, doc) in files {
            match unwrap_status(&doc) {
                Some(net) => out.push((name, net)),
                None => problems.push(format!("{name}.xml: not a <networkstatus> document")),
            }
        }
        (out, problems)
    }
}

/// The `<network>` element inside a `<networkstatus>` document.
fn unwrap_status(doc: &str) -> Option<String> {
    let inner = doc.trim_start().strip_prefix("<networkstatus>")?;
    let start = inner.find("<network")?;
    let end = inner.rfind("</network>")? + "</network>".len();
    (start < end).then(|| inner[start..end].to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn configs_autostart_and_status_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(&dir.path().join("etc/libvirt"), &dir.path().join("run/libvirt"));
        assert_eq!(store.configs().0, []);
        store
            .save_config("net1", "<network><name>net1</name></network>\n")
            .unwrap();
        assert!(dir.path().join("etc/libvirt/qemu/networks/net1.xml").is_file());
        store.set_autostart("net1", true).unwrap();
        assert!(store.autostart("net1"));
        store
            .save_status("net1", "<network>\n  <name>net1</name>\n</network>")
            .unwrap();
        assert_eq!(
            store.statuses().0,
            [(
                "net1".to_owned(),
                "<network>\n    <name>net1</name>\n  </network>".to_owned()
            )]
        );
        store.delete_config("net1").unwrap();
        assert!(!store.autostart("net1"));
        assert_eq!(store.configs().0, []);
        store.delete_status("net1").unwrap();
        store.delete_status("net1").unwrap();
        assert_eq!(store.statuses().0, []);
    }
}
