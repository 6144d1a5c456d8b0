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

use modvirt_runtime::fsutil::{read_xml_files, remove_if_present, write_atomic};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Store {
    pub config_dir: PathBuf,
    pub autostart_dir: PathBuf,
    pub status_dir: PathBuf,
    /// `ROOT/var/lib/libvirt`: dnsmasq's files go in `dnsmasq/`.
    pub lib_dir: PathBuf,
}

impl Store {
    /// `etc` is the daemon's configuration directory (`ROOT/etc/libvirt`),
    /// `run` its runtime directory (`ROOT/run/libvirt`).
    pub fn new(etc: &Path, run: &Path) -> Store {
        let config_dir = etc.join("qemu/networks");
        // ROOT/etc/libvirt → ROOT/var/lib/libvirt, as libvirt's layout.
        let lib_dir = etc.parent().and_then(Path::parent).map_or_else(
            || PathBuf::from("/var/lib/libvirt"),
            |root| root.join("var/lib/libvirt"),
        );
        Store {
            autostart_dir: config_dir.join("autostart"),
            config_dir,
            status_dir: run.join("network"),
            lib_dir,
        }
    }

    /// Where network `name`'s dnsmasq keeps its files.
    pub fn dnsmasq_files(&self, name: &str) -> super::dnsmasq::Files {
        super::dnsmasq::Files::new(&self.lib_dir, &self.status_dir, name)
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

    pub fn autostart(&self, name: &str) -> bool {
        self.autostart_path(name).symlink_metadata().is_ok()
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

    pub fn save_status(&self, name: &str, live_xml: &str) -> io::Result<()> {
        let mut doc = String::from("<networkstatus>\n");
        for line in live_xml.lines() {
            doc.push_str("  ");
            doc.push_str(line);
            doc.push('\n');
        }
        doc.push_str("</networkstatus>\n");
        write_atomic(&self.status_path(name), doc.as_bytes())
    }

    pub fn delete_status(&self, name: &str) -> io::Result<()> {
        remove_if_present(&self.status_path(name))
    }

    /// `(name, xml)` of every definition, and what could not be read.
    pub fn configs(&self) -> (Vec<(String, String)>, Vec<String>) {
        read_xml_files(&self.config_dir, true)
    }

    /// `(name, live network xml)` of every status file, and what could not
    /// be read.
    pub fn statuses(&self) -> (Vec<(String, String)>, Vec<String>) {
        let (files, mut problems) = read_xml_files(&self.status_dir, true);
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
