//! Where network filters live, under the daemon's root (libvirt's layout):
//! `etc/libvirt/nwfilter/NAME.xml`, each with libvirt's "auto-generated
//! file" comment on top, written whole to a temporary name and renamed.
//! Both `etc/libvirt/nwfilter` and `run/libvirt/nwfilter` are made `0700`,
//! as libvirt makes them.

use crate::nwfilter::NwFilterDef;
use modvirt_runtime::fsutil::write_atomic;
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Store {
    /// `etc/libvirt/nwfilter`.
    pub dir: PathBuf,
    /// `run/libvirt/nwfilter`.
    pub state_dir: PathBuf,
}

/// Characters that keep a name out of libvirt's "edit with" comment
/// (`virXMLPickShellSafeComment`); the UUID is named instead.
const SHELL_UNSAFE: &str = "\r\t\n !\"#$&'()*;<>?[\\]^`{|}~";

fn shell_safe(s: &str) -> bool {
    !s.contains(|c| SHELL_UNSAFE.contains(c)) && !s.contains("--")
}

/// The file libvirt writes: its warning comment, then the definition.
pub fn file_text(def: &NwFilterDef) -> String {
    let uuid = def.uuid_string();
    let who = if shell_safe(&def.name) {
        def.name.as_str()
    } else {
        uuid.as_str()
    };
    format!(
        "<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\nOVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n  virsh nwfilter-edit {who}\nor other application using the libvirt API.\n-->\n\n{}",
        def.to_xml()
    )
}

impl Store {
    /// `etc` is the daemon's configuration directory (`ROOT/etc/libvirt`),
    /// `run` its runtime directory (`ROOT/run/libvirt`).
    pub fn new(etc: &Path, run: &Path) -> Store {
        Store {
            dir: etc.join("nwfilter"),
            state_dir: run.join("nwfilter"),
        }
    }

    /// Makes both directories (`0700`) if they are missing.
    pub fn prepare(&self) -> io::Result<()> {
        for dir in [&self.dir, &self.state_dir] {
            if dir.is_dir() {
                continue;
            }
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match DirBuilder::new().mode(0o700).create(dir) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                other => other?,
            }
        }
        Ok(())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.xml"))
    }

    pub fn save(&self, def: &NwFilterDef) -> io::Result<()> {
        write_atomic(&self.path(&def.name), file_text(def).as_bytes())
    }

    /// Removes `NAME.xml` (already gone is fine).
    pub fn delete(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// `(file name without .xml, contents)` of every definition, in name
    /// order, and what could not be read.
    pub fn load(&self) -> (Vec<(String, String)>, Vec<String>) {
        let mut files = Vec::new();
        let mut problems = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (files, problems),
            Err(e) => return (files, vec![format!("cannot open '{}': {e}", self.dir.display())]),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".xml"))
            else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(xml) => files.push((stem.to_owned(), xml)),
                Err(e) => problems.push(format!("cannot read '{}': {e}", path.display())),
            }
        }
        files.sort();
        (files, problems)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn def(name: &str) -> NwFilterDef {
        NwFilterDef::parse(
            &format!("<filter name='{name}'><uuid>01a992d2-f8c8-7c27-f69b-ab0a9d377379</uuid></filter>"),
            &mut || 1,
        )
        .unwrap()
    }

    #[test]
    fn files_round_trip_with_libvirts_header() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(&root.path().join("etc/libvirt"), &root.path().join("run/libvirt"));
        store.prepare().unwrap();
        for dir in [&store.dir, &store.state_dir] {
            assert_eq!(
                std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        let a = def("allow-arp");
        store.save(&a).unwrap();
        let text = std::fs::read_to_string(root.path().join("etc/libvirt/nwfilter/allow-arp.xml")).unwrap();
        assert_eq!(
            text,
            "<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\nOVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n  virsh nwfilter-edit allow-arp\nor other application using the libvirt API.\n-->\n\n<filter name='allow-arp' chain='root'>\n  <uuid>01a992d2-f8c8-7c27-f69b-ab0a9d377379</uuid>\n</filter>\n"
        );
        // The comment does not get in the way of reading it back.
        assert_eq!(NwFilterDef::parse(&text, &mut || 1).unwrap(), a);
        assert!(
            file_text(&def("odd name"))
                .contains("virsh nwfilter-edit 01a992d2-f8c8-7c27-f69b-ab0a9d377379\n")
        );
        assert!(file_text(&def("a--b")).contains("nwfilter-edit 01a992d2"));
        store.save(&def("b")).unwrap();
        let (files, problems) = store.load();
        assert!(problems.is_empty());
        assert_eq!(
            files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["allow-arp", "b"]
        );
        store.delete("b").unwrap();
        store.delete("b").unwrap();
        assert_eq!(store.load().0.len(), 1);
    }
}
