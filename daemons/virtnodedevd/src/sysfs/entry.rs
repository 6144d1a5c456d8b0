//! One sysfs device directory as libudev presents it: subsystem, name,
//! properties (the kernel's `uevent` plus udev's database `E:` lines),
//! device node and links, bound driver, and its attribute files.

use super::Host;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Entry {
    pub path: PathBuf,
    pub subsystem: String,
    pub sysname: String,
    pub props: BTreeMap<String, String>,
    /// `/dev/…` from `DEVNAME`.
    pub devnode: Option<String>,
    /// `/dev/…` links from udev's database, sorted.
    pub devlinks: Vec<String>,
    pub driver: Option<String>,
}

/// The last component of a symbolic link's target.
fn link_name(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// An attribute's text without its trailing newline.
pub fn read_raw(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    Some(s.trim_end_matches('\n').to_owned())
}

/// An attribute as libvirt keeps strings: control characters removed, an
/// empty value is none.
pub fn read_string(path: &Path) -> Option<String> {
    let s: String = read_raw(path)?.chars().filter(|c| !c.is_control()).collect();
    (!s.is_empty()).then_some(s)
}

/// `strtoul`-style: optional `0x` when `radix` is 16; a leading `-` wraps
/// as libvirt's `virStrToLong_ui` does (`-1` is 4294967295).
pub fn parse_u32(text: &str, radix: u32) -> Option<u32> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let t = if radix == 16 {
        t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t)
    } else {
        t
    };
    let v = u64::from_str_radix(t, radix).ok()?;
    if neg {
        (v <= u64::from(u32::MAX)).then(|| (v as u32).wrapping_neg())
    } else {
        u32::try_from(v).ok()
    }
}

pub fn parse_i32(text: &str) -> Option<i32> {
    text.trim().parse().ok()
}

impl Entry {
    /// Reads the device at `dir`; `None` when it is not one (no
    /// `subsystem` link or `uevent` file).
    pub fn read(host: &Host, dir: &Path) -> Option<Entry> {
        let subsystem = link_name(&dir.join("subsystem"))?;
        let uevent = std::fs::read_to_string(dir.join("uevent")).ok()?;
        let sysname = dir.file_name()?.to_string_lossy().into_owned();
        let mut props: BTreeMap<String, String> = uevent
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        props.insert("SUBSYSTEM".into(), subsystem.clone());
        let devnode = props.get("DEVNAME").map(|n| {
            if n.starts_with('/') {
                n.clone()
            } else {
                format!("/dev/{n}")
            }
        });
        let mut devlinks = Vec::new();
        if let Some(db) = read_raw(&host.udev_data.join(db_id(&subsystem, &sysname, &props))) {
            for line in db.lines() {
                if let Some(link) = line.strip_prefix("S:") {
                    devlinks.push(format!("/dev/{link}"));
                } else if let Some((k, v)) = line.strip_prefix("E:").and_then(|kv| kv.split_once('=')) {
                    props.entry(k.to_owned()).or_insert_with(|| v.to_owned());
                }
            }
        }
        devlinks.sort();
        if let Some(node) = &devnode {
            // udev's DEVNAME property is the whole node path.
            props.insert("DEVNAME".into(), node.clone());
        }
        Some(Entry {
            path: dir.to_owned(),
            subsystem,
            sysname,
            props,
            devnode,
            devlinks,
            driver: link_name(&dir.join("driver")),
        })
    }

    pub fn prop(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    pub fn has_prop(&self, key: &str) -> bool {
        self.props.contains_key(key)
    }

    /// A property as a number (`radix` 16 takes an optional `0x`).
    pub fn prop_u32(&self, key: &str, radix: u32) -> Option<u32> {
        parse_u32(self.prop(key)?, radix)
    }

    /// Attribute `name` (a path below the device) as libvirt keeps strings.
    pub fn attr(&self, name: &str) -> Option<String> {
        read_string(&self.path.join(name))
    }

    pub fn attr_raw(&self, name: &str) -> Option<String> {
        read_raw(&self.path.join(name))
    }

    pub fn attr_u32(&self, name: &str, radix: u32) -> Option<u32> {
        parse_u32(&self.attr_raw(name)?, radix)
    }
}

/// The name of a device's file in udev's database: `b`/`c` and the device
/// number for block and character devices, `n` and the index for network
/// interfaces, else `+subsystem:sysname`.
fn db_id(subsystem: &str, sysname: &str, props: &BTreeMap<String, String>) -> String {
    match (props.get("MAJOR"), props.get("MINOR"), props.get("IFINDEX")) {
        (Some(major), Some(minor), _) => {
            let kind = if subsystem == "block" { 'b' } else { 'c' };
            format!("{kind}{major}:{minor}")
        }
        (_, _, Some(index)) => format!("n{index}"),
        _ => format!("+{subsystem}:{sysname}"),
    }
}
