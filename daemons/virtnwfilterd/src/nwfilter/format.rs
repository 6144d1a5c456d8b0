//! [`NwFilterDef`] → XML as `virsh nwfilter-dumpxml` prints it (libvirt's
//! `virNWFilterDefFormat`): two-space indentation, attributes in libvirt's
//! order, a protocol element split where `match='no'` starts or stops.

use super::model::*;
use super::value;
use modvirt_xml::{escape, format_uuid};

pub fn format_filter(def: &NwFilterDef) -> String {
    let mut out = format!(
        "<filter name='{}' chain='{}'",
        escape(&def.name),
        escape(&def.chain)
    );
    if def.priority != 0 {
        out.push_str(&format!(" priority='{}'", def.priority));
    }
    out.push_str(">\n");
    out.push_str(&format!("  <uuid>{}</uuid>\n", format_uuid(&def.uuid)));
    for entry in &def.entries {
        match entry {
            Entry::Rule(rule) => format_rule(&mut out, rule),
            Entry::FilterRef(r) => format_ref(&mut out, r),
        }
    }
    out.push_str("</filter>\n");
    out
}

fn format_rule(out: &mut String, rule: &Rule) {
    out.push_str(&format!(
        "  <rule action='{}' direction='{}' priority='{}'",
        rule.action.as_str(),
        rule.direction.as_str(),
        rule.priority
    ));
    if !rule.statematch {
        out.push_str(" statematch='false'");
    }
    match &rule.matches {
        Some(m) => {
            out.push_str(">\n");
            format_match(out, m);
            out.push_str("  </rule>\n");
        }
        None => out.push_str("/>\n"),
    }
}

/// libvirt's `virNWFilterRuleDefDetailsFormat`: the attributes given, in
/// table order, in one element while their `match` stays the same, in a
/// new element of the same protocol when it changes.
fn format_match(out: &mut String, m: &Match) {
    #[derive(PartialEq)]
    enum Shown {
        None,
        Yes,
        No,
    }
    let name = m.protocol.name;
    let attrs: Vec<_> = m.protocol.attrs().collect();
    let mut open = false;
    let mut ever = false;
    let mut shown = Shown::None;
    let mut i = 0;
    while i < attrs.len() {
        let Some(item) = &m.items[i] else {
            i += 1;
            continue;
        };
        if !open {
            out.push_str(&format!("    <{name}"));
            open = true;
            ever = true;
        }
        if item.negated {
            match shown {
                Shown::None => {
                    out.push_str(" match='no'");
                    shown = Shown::No;
                }
                Shown::Yes => {
                    out.push_str("/>\n");
                    open = false;
                    shown = Shown::None;
                    continue;
                }
                Shown::No => {}
            }
        } else {
            if shown == Shown::No {
                out.push_str("/>\n");
                open = false;
                shown = Shown::None;
                continue;
            }
            shown = Shown::Yes;
        }
        out.push_str(&format!(
            " {}='{}'",
            attrs[i].name,
            escape(&value::format(attrs[i], &item.value))
        ));
        i += 1;
    }
    if open {
        out.push_str("/>\n");
    }
    if !ever {
        out.push_str(&format!("    <{name}/>\n"));
    }
}

fn format_ref(out: &mut String, r: &FilterRef) {
    out.push_str(&format!("  <filterref filter='{}'", escape(&r.filter)));
    if r.params.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    for (name, values) in &r.params {
        for value in values {
            out.push_str(&format!(
                "    <parameter name='{}' value='{}'/>\n",
                escape(name),
                escape(value)
            ));
        }
    }
    out.push_str("  </filterref>\n");
}
