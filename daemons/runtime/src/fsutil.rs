//! Files a driver keeps (definitions, status files), written so that a
//! crash never leaves half of one.

use std::io;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: to a temporary name in the same
/// directory (created if missing), then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Removes `path`; a file already gone is fine.
pub fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// `(NAME, text)` of every regular file `NAME.xml` in `dir`, sorted by name,
/// and a line per file (or the directory) that could not be read. A missing
/// directory has no files. With `skip_hidden`, names starting with `.` are
/// left out.
pub fn read_xml_files(dir: &Path, skip_hidden: bool) -> (Vec<(String, String)>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (files, problems),
        Err(e) => return (files, vec![format!("cannot read {}: {e}", dir.display())]),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".xml"))
            .filter(|n| !(skip_hidden && n.starts_with('.')))
        else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((name.to_owned(), text)),
            Err(e) => problems.push(format!("cannot read {}: {e}", path.display())),
        }
    }
    files.sort();
    (files, problems)
}

/// Whether [`Definitions`] reads definition and status files whose name
/// starts with `.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenFiles {
    Skip,
    Read,
}

/// A driver's objects on disk, in libvirt's layout: `CONFIG/NAME.xml` the
/// persistent definition, `CONFIG/autostart/NAME.xml` a symlink to it for
/// each autostarted object, `STATUS/NAME.xml` the live state of an active
/// one (its format is the driver's: here it is plain text). Every file is
/// written whole to a temporary name and renamed.
#[derive(Debug, Clone)]
pub struct Definitions {
    config_dir: PathBuf,
    autostart_dir: PathBuf,
    status_dir: PathBuf,
    hidden: HiddenFiles,
}

impl Definitions {
    /// Definitions in `config_dir` (autostart links in its `autostart/`),
    /// status files in `status_dir`.
    pub fn new(config_dir: PathBuf, status_dir: PathBuf, hidden: HiddenFiles) -> Definitions {
        Definitions {
            autostart_dir: config_dir.join("autostart"),
            config_dir,
            status_dir,
            hidden,
        }
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    pub fn autostart_dir(&self) -> &Path {
        &self.autostart_dir
    }

    pub fn status_dir(&self) -> &Path {
        &self.status_dir
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

    /// Removes the autostart link, then the definition.
    pub fn delete_config(&self, name: &str) -> io::Result<()> {
        remove_if_present(&self.autostart_path(name))?;
        remove_if_present(&self.config_path(name))
    }

    /// Whether an autostart link exists, wherever it points.
    pub fn autostart(&self, name: &str) -> bool {
        self.autostart_path(name).symlink_metadata().is_ok()
    }

    /// Whether the autostart link exists and points at the definition.
    pub fn autostart_links_config(&self, name: &str) -> bool {
        std::fs::read_link(self.autostart_path(name)).is_ok_and(|target| target == self.config_path(name))
    }

    /// Creates (replacing whatever was there, in one rename) or removes the
    /// autostart link to the definition.
    pub fn set_autostart(&self, name: &str, on: bool) -> io::Result<()> {
        let link = self.autostart_path(name);
        if !on {
            return remove_if_present(&link);
        }
        std::fs::create_dir_all(&self.autostart_dir)?;
        let tmp = self.autostart_dir.join(format!(".{name}.xml.tmp"));
        remove_if_present(&tmp)?;
        std::os::unix::fs::symlink(self.config_path(name), &tmp)?;
        std::fs::rename(&tmp, &link)
    }

    /// `(NAME, xml)` of every definition, and what could not be read.
    pub fn configs(&self) -> (Vec<(String, String)>, Vec<String>) {
        read_xml_files(&self.config_dir, self.hidden == HiddenFiles::Skip)
    }

    pub fn save_status(&self, name: &str, text: &str) -> io::Result<()> {
        write_atomic(&self.status_path(name), text.as_bytes())
    }

    /// Removes the status file; one already gone is fine.
    pub fn delete_status(&self, name: &str) -> io::Result<()> {
        remove_if_present(&self.status_path(name))
    }

    /// `(NAME, text)` of every status file, and what could not be read.
    pub fn statuses(&self) -> (Vec<(String, String)>, Vec<String>) {
        read_xml_files(&self.status_dir, self.hidden == HiddenFiles::Skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/net.xml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["net.xml"]);
    }

    #[test]
    fn xml_files_sorted_hidden_ones_on_request_others_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("b.xml", "B"), ("a.xml", "A"), (".h.xml", "H"), ("c.txt", "C")] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        std::fs::create_dir(dir.path().join("d.xml")).unwrap();
        let names = |skip| {
            read_xml_files(dir.path(), skip)
                .0
                .into_iter()
                .map(|(n, t)| format!("{n}={t}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(true), ["a=A", "b=B"]);
        assert_eq!(names(false), [".h=H", "a=A", "b=B"]);
        assert_eq!(read_xml_files(&dir.path().join("none"), true), (vec![], vec![]));
        remove_if_present(&dir.path().join("a.xml")).unwrap();
        remove_if_present(&dir.path().join("a.xml")).unwrap();
        assert_eq!(names(true), ["b=B"]);
    }

    fn definitions(dir: &Path, hidden: HiddenFiles) -> Definitions {
        Definitions::new(dir.join("etc/things"), dir.join("run/things"), hidden)
    }

    #[test]
    fn definitions_round_trip_in_libvirts_layout() {
        let dir = tempfile::tempdir().unwrap();
        let defs = definitions(dir.path(), HiddenFiles::Skip);
        defs.save_config("b", "<b/>").unwrap();
        defs.save_config("a", "<a/>").unwrap();
        defs.save_config("a", "<a2/>").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("etc/things/a.xml")).unwrap(),
            "<a2/>"
        );
        assert_eq!(
            defs.configs(),
            (
                vec![("a".into(), "<a2/>".into()), ("b".into(), "<b/>".into())],
                vec![]
            )
        );
        defs.save_status("a", "<live/>\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("run/things/a.xml")).unwrap(),
            "<live/>\n"
        );
        assert_eq!(defs.statuses(), (vec![("a".into(), "<live/>\n".into())], vec![]));
        defs.delete_status("a").unwrap();
        defs.delete_status("a").unwrap();
        assert_eq!(defs.statuses(), (vec![], vec![]));
    }

    #[test]
    fn autostart_link_points_at_the_config_and_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let defs = definitions(dir.path(), HiddenFiles::Skip);
        defs.save_config("a", "<a/>").unwrap();
        assert!(!defs.autostart("a") && !defs.autostart_links_config("a"));
        defs.set_autostart("a", true).unwrap();
        // Set twice: the link is replaced, not an error.
        defs.set_autostart("a", true).unwrap();
        let link = dir.path().join("etc/things/autostart/a.xml");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            dir.path().join("etc/things/a.xml")
        );
        assert!(defs.autostart("a") && defs.autostart_links_config("a"));
        let names: Vec<_> = std::fs::read_dir(defs.autostart_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.xml"]);
        // The autostart directory is not a definition.
        assert_eq!(defs.configs().0, [("a".to_owned(), "<a/>".to_owned())]);

        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink("/elsewhere", &link).unwrap();
        assert!(defs.autostart("a") && !defs.autostart_links_config("a"));
        defs.set_autostart("a", false).unwrap();
        defs.set_autostart("a", false).unwrap();
        assert!(!defs.autostart("a"));

        defs.set_autostart("a", true).unwrap();
        defs.delete_config("a").unwrap();
        assert!(link.symlink_metadata().is_err() && !defs.config_path("a").exists());
        assert!(!defs.autostart("a"));
        assert_eq!(defs.configs(), (vec![], vec![]));
        defs.delete_config("a").unwrap();
    }

    #[test]
    fn missing_directories_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let defs = definitions(dir.path(), HiddenFiles::Read);
        assert_eq!(defs.configs(), (vec![], vec![]));
        assert_eq!(defs.statuses(), (vec![], vec![]));
        assert!(!defs.autostart("a"));
        defs.set_autostart("a", false).unwrap();
        defs.delete_config("a").unwrap();
        assert!(!dir.path().join("etc").exists());
    }

    #[test]
    fn hidden_files_read_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let names = |hidden| {
            let defs = definitions(dir.path(), hidden);
            let (configs, statuses) = (defs.configs().0, defs.statuses().0);
            (
                configs.into_iter().map(|c| c.0).collect::<Vec<_>>(),
                statuses.into_iter().map(|s| s.0).collect::<Vec<_>>(),
            )
        };
        let defs = definitions(dir.path(), HiddenFiles::Skip);
        for name in [".h", "v"] {
            defs.save_config(name, "<x/>").unwrap();
            defs.save_status(name, "<x/>").unwrap();
        }
        assert_eq!(
            names(HiddenFiles::Skip),
            (vec!["v".to_owned()], vec!["v".to_owned()])
        );
        assert_eq!(
            names(HiddenFiles::Read),
            (
                vec![".h".to_owned(), "v".to_owned()],
                vec![".h".to_owned(), "v".to_owned()]
            )
        );
    }
}
