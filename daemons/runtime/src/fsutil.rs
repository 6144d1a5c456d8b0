//! Files a driver keeps (definitions, status files), written so that a
//! crash never leaves half of one.

use std::io;
use std::path::Path;

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
}
