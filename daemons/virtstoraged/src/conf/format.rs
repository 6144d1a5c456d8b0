//! [`PoolDef`] / [`VolDef`] → XML, the way `virStoragePoolDefFormat` and
//! `virStorageVolDefFormat` print them for `virsh pool-dumpxml` and
//! `vol-dumpxml`: two-space indent, single-quoted attributes, sizes in
//! bytes, modes in octal with a leading `0`.

use std::fmt::Write as _;

use super::model::*;
use modvirt_xml::{escape, format_uuid};

struct Out {
    buf: String,
    depth: usize,
}

impl Out {
    fn new(depth: usize) -> Self {
        Self {
            buf: String::new(),
            depth,
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
    }

    /// A whole line at the current depth.
    fn line(&mut self, text: &str) {
        self.indent();
        self.buf.push_str(text);
        self.buf.push('\n');
    }

    fn open(&mut self, text: &str) {
        self.line(text);
        self.depth += 1;
    }

    fn close(&mut self, tag: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.line(&format!("</{tag}>"));
    }

    /// `<tag>text</tag>`, escaped.
    fn text(&mut self, tag: &str, text: &str) {
        self.line(&format!("<{tag}>{}</{tag}>", escape(text)));
    }

    fn bytes(&mut self, tag: &str, value: u64) {
        self.line(&format!("<{tag} unit='bytes'>{value}</{tag}>"));
    }

    fn perms(&mut self, perms: &Perms) {
        if perms.is_empty() {
            return;
        }
        self.open("<permissions>");
        if let Some(mode) = perms.mode {
            self.line(&format!("<mode>0{mode:o}</mode>"));
        }
        if let Some(owner) = perms.owner {
            self.line(&format!("<owner>{owner}</owner>"));
        }
        if let Some(group) = perms.group {
            self.line(&format!("<group>{group}</group>"));
        }
        if let Some(label) = &perms.label {
            self.text("label", label);
        }
        self.close("permissions");
    }

    fn timestamp(&mut self, tag: &str, ts: Timestamp) {
        if ts.nsec < 0 {
            return;
        }
        let mut s = format!("<{tag}>{}", ts.sec);
        if ts.nsec != 0 {
            let _ = write!(s, ".{:09}", ts.nsec);
        }
        let _ = write!(s, "</{tag}>");
        self.line(&s);
    }
}

fn pool_body(out: &mut Out, def: &PoolDef) {
    out.open(&format!("<pool type='{}'>", def.pool_type));
    out.text("name", &def.name);
    out.line(&format!("<uuid>{}</uuid>", format_uuid(&def.uuid)));
    out.bytes("capacity", def.capacity);
    out.bytes("allocation", def.allocation);
    out.bytes("available", def.available);
    // A dir pool has no source of its own: libvirt prints the element empty.
    out.open("<source>");
    out.close("source");
    out.open("<target>");
    out.text("path", &def.target_path);
    out.perms(&def.perms);
    out.close("target");
    out.close("pool");
}

/// `pool-dumpxml`.
pub(crate) fn format_pool(def: &PoolDef) -> String {
    let mut out = Out::new(0);
    pool_body(&mut out, def);
    out.buf
}

/// A status file: the live definition inside `<poolstate>`.
pub(crate) fn format_pool_state(def: &PoolDef) -> String {
    let mut out = Out::new(0);
    out.open("<poolstate>");
    pool_body(&mut out, def);
    out.close("poolstate");
    out.buf
}

/// `vol-dumpxml`.
pub(crate) fn format_volume(def: &VolDef) -> String {
    let mut out = Out::new(0);
    out.open(&format!("<volume type='{}'>", def.vol_type));
    out.text("name", &def.name);
    if let Some(key) = &def.key {
        out.text("key", key);
    }
    out.bytes("capacity", def.capacity);
    out.bytes("allocation", def.allocation);
    if def.physical != 0 {
        out.bytes("physical", def.physical);
    }
    let t = &def.target;
    out.open("<target>");
    if let Some(path) = &t.path {
        out.text("path", path);
    }
    out.line(&format!("<format type='{}'/>", t.format));
    out.perms(&t.perms);
    if let Some(ts) = &t.timestamps {
        out.open("<timestamps>");
        out.timestamp("atime", ts.atime);
        out.timestamp("mtime", ts.mtime);
        out.timestamp("ctime", ts.ctime);
        out.close("timestamps");
    }
    if let Some(compat) = &t.compat {
        out.text("compat", compat);
    }
    if t.cluster_size > 0 {
        out.line(&format!("<clusterSize unit='B'>{}</clusterSize>", t.cluster_size));
    }
    match &t.features {
        None => {}
        Some(list) if list.is_empty() => out.line("<features/>"),
        Some(list) => {
            out.open("<features>");
            for f in list {
                out.line(&format!("<{f}/>"));
            }
            out.close("features");
        }
    }
    out.close("target");
    out.close("volume");
    out.buf
}
