//! Where the QEMU driver keeps things, under the daemon's root (libvirt's
//! layout):
//!
//! - `etc/libvirt/qemu/NAME.xml`: persistent definitions;
//!   `etc/libvirt/qemu/autostart/NAME.xml`: a symlink per autostarted one;
//! - `run/libvirt/qemu/NAME.xml`: the live status of a running guest
//!   (`<domstatus>`: state, reason, pid, monitor, then the live definition);
//! - `var/lib/libvirt/qemu/domain-ID-NAME/`: its QMP socket;
//! - `var/log/libvirt/qemu/NAME.log`: QEMU's output.
//!
//! Every file is written whole to a temporary name and renamed, so a crash
//! never leaves half a definition.

use std::io;
use std::path::{Path, PathBuf};

/// The driver's directories.
#[derive(Debug, Clone)]
pub struct Store {
    defs: Definitions,
    pub lib_dir: PathBuf,
    pub log_dir: PathBuf,
}

/// What a status file says of a running guest.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub state: String,
    pub reason: String,
    pub pid: i32,
    pub id: i32,
    pub monitor: PathBuf,
    /// The live definition (`<domain …>…</domain>`).
    pub domain_xml: String,
}

pub use modvirt_runtime::fsutil::write_atomic;
use modvirt_runtime::fsutil::{Definitions, HiddenFiles};

fn unescape_attr(s: &str) -> String {
    s.replace("&apos;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of `name='…'` (or `"…"`) in `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}="))? + name.len() + 2;
    let quote = tag[at..].chars().next()?;
    let rest = &tag[at + 1..];
    let end = rest.find(quote)?;
    Some(unescape_attr(&rest[..end]))
}

impl Status {
    pub fn to_xml(&self) -> String {
        format!(
            "<domstatus state='{}' reason='{}' pid='{}' id='{}'>\n  <monitor path='{}' type='unix'/>\n{}\n</domstatus>\n",
            crate::domain::escape(&self.state),
            crate::domain::escape(&self.reason),
            self.pid,
            self.id,
            crate::domain::escape(&self.monitor.to_string_lossy()),
            self.domain_xml.trim_end()
        )
    }

    /// Reads what [`Status::to_xml`] wrote.
    pub fn parse(text: &str) -> Result<Status, String> {
        let head_end = text.find('>').ok_or("no <domstatus> element")?;
        let head = &text[..head_end];
        if !head.trim_start().starts_with("<domstatus") {
            return Err("no <domstatus> element".into());
        }
        let need = |tag: &str, name: &str| attr(tag, name).ok_or(format!("missing {name}"));
        let mon_at = text.find("<monitor").ok_or("no <monitor> element")?;
        let mon = &text[mon_at..mon_at + text[mon_at..].find('>').ok_or("unterminated <monitor>")?];
        let dom_start = text.find("<domain").ok_or("no <domain> element")?;
        let dom_end = text.rfind("</domain>").ok_or("no </domain>")? + "</domain>".len();
        Ok(Status {
            state: need(head, "state")?,
            reason: need(head, "reason")?,
            pid: need(head, "pid")?.parse().map_err(|_| "bad pid")?,
            id: need(head, "id")?.parse().map_err(|_| "bad id")?,
            monitor: PathBuf::from(need(mon, "path")?),
            domain_xml: text[dom_start..dom_end].to_owned(),
        })
    }
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
    /// The directories under `etc`, `run`, `lib` and `log` (the daemon's
    /// `…/etc/libvirt`, `…/run/libvirt`, `…/var/lib/libvirt`, `…/var/log/libvirt`).
    pub fn new(etc: &Path, run: &Path, lib: &Path, log: &Path) -> Store {
        Store {
            defs: Definitions::new(etc.join("qemu"), run.join("qemu"), HiddenFiles::Skip),
            lib_dir: lib.join("qemu"),
            log_dir: log.join("qemu"),
        }
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    /// The directory of a running guest's sockets and pid file: the name is
    /// cut to 20 characters, as libvirt does, so the monitor socket's path
    /// stays within the 108 bytes a UNIX socket address holds.
    pub fn domain_dir(&self, id: i32, name: &str) -> PathBuf {
        let short: String = name.chars().take(20).collect();
        self.lib_dir.join(format!("domain-{id}-{short}"))
    }

    pub fn save_status(&self, name: &str, status: &Status) -> io::Result<()> {
        self.defs.save_status(name, &status.to_xml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Store {
        Store::new(
            &dir.join("etc"),
            &dir.join("run"),
            &dir.join("lib"),
            &dir.join("log"),
        )
    }

    #[test]
    fn configs_autostart_and_status_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.save_config("a", "<domain><name>a</name></domain>").unwrap();
        s.save_config("b", "<domain><name>b</name></domain>").unwrap();
        s.set_autostart("a", true).unwrap();
        assert!(s.autostart("a") && !s.autostart("b"));
        let (configs, problems) = s.configs();
        assert!(problems.is_empty());
        assert_eq!(
            configs.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("etc/qemu"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
            "{names:?}"
        );

        let st = Status {
            state: "running".into(),
            reason: "booted".into(),
            pid: 42,
            id: 1,
            monitor: dir.path().join("it's <here>"),
            domain_xml: "<domain type='qemu' id='1'>\n  <name>a</name>\n</domain>".into(),
        };
        s.save_status("a", &st).unwrap();
        let back = Status::parse(&std::fs::read_to_string(s.status_path("a")).unwrap()).unwrap();
        assert_eq!(back, st);

        s.delete_config("a").unwrap();
        assert!(!s.autostart("a") && !s.config_path("a").exists());
        s.delete_status("a").unwrap();
        s.delete_status("a").unwrap();
    }

    #[test]
    fn broken_status_files_are_errors() {
        assert!(Status::parse("garbage").is_err());
        assert!(
            Status::parse("<domstatus state='running'><monitor path='/x'/><domain/></domstatus>").is_err()
        );
    }
}
