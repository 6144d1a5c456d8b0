//! Network filter XML → [`NwFilterDef`], as libvirt's
//! `virNWFilterDefParseXML` reads it: its defaults, its checks and its
//! error messages. Elements it does not know are read past.

use super::attrs::{self, Family};
use super::error::NwFilterXmlError as E;
use super::model::*;
use super::value::{self, Value};
use modvirt_xml::{Element, RandomSource, generate_uuid, parse_tree};
use std::collections::BTreeMap;

/// libvirt's `MAX_CHAIN_SUFFIX_SIZE`.
const MAX_CHAIN_LENGTH: usize = 12;
const CHAIN_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";
const VAR_NAME_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
const VAR_VALUE_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:";

/// Chain name prefixes after `root`, with the priority a chain of that
/// kind gets when the filter gives none (`stp` has no entry: 0).
const CHAIN_PREFIXES: &[(&str, i32)] = &[
    ("mac", -800),
    ("vlan", -750),
    ("stp", 0),
    ("arp", -500),
    ("rarp", -400),
    ("ipv4", -700),
    ("ipv6", -600),
];

/// Rule priorities and filter priorities: -1000 to 1000.
const MIN_PRIORITY: i32 = -1000;
const MAX_PRIORITY: i32 = 1000;
/// A rule's priority when it gives none.
const DEFAULT_RULE_PRIORITY: i32 = MAX_PRIORITY / 2;

/// libvirt's `virStrToLong_i`: optional white space and sign, decimal
/// digits, nothing after.
fn parse_i32(text: &str) -> Option<i32> {
    let s = text.trim_start();
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

/// An attribute libvirt reads with XPath `string(./@x)`: absent when empty.
fn nonempty<'a>(e: &'a Element, name: &str) -> Option<&'a str> {
    e.attr(name).filter(|v| !v.is_empty())
}

/// The string value of an element (its text and its descendants').
fn string_value(e: &Element) -> String {
    let mut out = e.text.clone();
    for c in &e.children {
        out.push_str(&string_value(c));
    }
    out
}

/// Checks a chain name; its default priority when it is allowed.
fn chain_priority(chain: &str) -> Result<i32, E> {
    if chain.len() > MAX_CHAIN_LENGTH {
        return Err(E::ChainTooLong);
    }
    if !chain.chars().all(|c| CHAIN_CHARS.contains(c)) {
        return Err(E::ChainChars);
    }
    if chain == "root" {
        return Ok(0);
    }
    // `root` is allowed whole, never as a prefix.
    if !chain.starts_with("root")
        && let Some((_, prio)) = CHAIN_PREFIXES.iter().find(|(p, _)| chain.starts_with(p))
    {
        return Ok(*prio);
    }
    Err(E::ChainName(chain.to_owned()))
}

pub fn parse_filter(xml: &str, rng: &mut dyn RandomSource) -> Result<NwFilterDef, E> {
    let root = parse_tree(xml, "nwfilter")?;
    if root.name != "filter" {
        return Err(E::WrongRoot { found: root.name });
    }
    let name = nonempty(&root, "name").ok_or(E::NoName)?.to_owned();
    // The name names the file NAME.xml: no way out of the directory.
    if name.contains('/') {
        return Err(E::IllegalChar { ch: '/' });
    }
    let given_priority = match nonempty(&root, "priority") {
        Some(text) => {
            let p = parse_i32(text).ok_or_else(|| E::ChainPriority(text.to_owned()))?;
            if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&p) {
                return Err(E::ChainPriorityRange(p));
            }
            Some(p)
        }
        None => None,
    };
    // As in libvirt, a priority without a chain is checked but not kept.
    let (chain, priority) = match nonempty(&root, "chain") {
        Some(chain) => {
            let default = chain_priority(chain)?;
            (chain.to_owned(), given_priority.unwrap_or(default))
        }
        None => ("root".to_owned(), 0),
    };
    let (uuid, uuid_specified) = match root.child("uuid").map(string_value).filter(|s| !s.is_empty()) {
        Some(text) => (modvirt_xml::parse_uuid(&text).ok_or(E::MalformedUuid)?, true),
        None => (generate_uuid(rng), false),
    };
    let mut entries = Vec::new();
    for child in &root.children {
        match child.name.as_str() {
            "rule" => entries.push(Entry::Rule(parse_rule(child)?)),
            "filterref" => entries.push(Entry::FilterRef(parse_ref(child)?)),
            _ => {}
        }
    }
    Ok(NwFilterDef {
        name,
        uuid,
        uuid_specified,
        chain,
        priority,
        entries,
    })
}

fn parse_rule(e: &Element) -> Result<Rule, E> {
    let action = e.attr("action").ok_or(E::MissingAction)?;
    let action = Action::ALL
        .into_iter()
        .find(|a| a.as_str() == action)
        .ok_or(E::UnknownAction)?;
    let direction = e.attr("direction").ok_or(E::MissingDirection)?;
    let direction = Direction::ALL
        .into_iter()
        .find(|d| d.as_str() == direction)
        .ok_or(E::UnknownDirection)?;
    let priority = e
        .attr("priority")
        .and_then(parse_i32)
        .filter(|p| (MIN_PRIORITY..=MAX_PRIORITY).contains(p))
        .unwrap_or(DEFAULT_RULE_PRIORITY);
    let statematch = !e
        .attr("statematch")
        .is_some_and(|s| s == "0" || s.eq_ignore_ascii_case("false"));
    // The first protocol element decides the protocol; later elements of
    // the same protocol add to it (another `match` each), others are
    // read past.
    let mut matches: Option<Match> = None;
    for child in &e.children {
        match &matches {
            None => match attrs::protocol(&child.name) {
                Some(p) => matches = Some(Match::new(p)),
                None => continue,
            },
            Some(m) if m.protocol.name != child.name => continue,
            Some(_) => {}
        }
        let Some(m) = matches.as_mut() else {
            continue;
        };
        parse_details(m, child)?;
        validate(m)?;
    }
    if let Some(m) = &mut matches {
        fixup(m);
    }
    Ok(Rule {
        action,
        direction,
        priority,
        statematch,
        matches,
    })
}

/// Reads a protocol element's attributes into `m`; every attribute is
/// read, and the error reported is the last one (as libvirt's is).
fn parse_details(m: &mut Match, e: &Element) -> Result<(), E> {
    let negated = e.attr("match") == Some("no");
    let mut error = None;
    for (i, attr) in m.protocol.attrs().enumerate() {
        let Some(text) = e.attr(attr.name) else {
            continue;
        };
        match value::parse(attr, text) {
            Some(value) => m.items[i] = Some(Item { value, negated }),
            None => {
                error = Some(E::IllegalValue {
                    attribute: attr.name,
                    value: text.to_owned(),
                })
            }
        }
    }
    error.map_or(Ok(()), Err)
}

/// libvirt's `virNWFilterRuleValidate`: ports in an `ip`/`ipv6` rule need
/// a protocol that has ports.
fn validate(m: &Match) -> Result<(), E> {
    let label = match m.protocol.family {
        Family::Ip => "IP",
        Family::Ipv6 => "IPv6",
        _ => return Ok(()),
    };
    let has_ports = ["srcportstart", "srcportend", "dstportstart", "dstportend"]
        .iter()
        .any(|p| m.get(p).is_some());
    if !has_ports {
        return Ok(());
    }
    match m.get("protocol").map(|i| &i.value) {
        Some(Value::Number {
            value: 6 | 17 | 33 | 132,
            ..
        }) => Ok(()),
        _ => Err(E::PortsNeedProtocol(label)),
    }
}

/// libvirt's `virNWFilterRuleDefFixup`: masks, range ends and the like
/// take their partner's `match`; `ipset` without `ipsetflags` gets
/// `ipsetflags='src'`, and `ipsetflags` without `ipset` goes (not for
/// `all`, which libvirt leaves alone). Unlike libvirt, an `ipset` given
/// with its flags is kept (libvirt drops both, and so loses an `ipset` it
/// printed itself when it reads its own file back).
fn fixup(m: &mut Match) {
    for (to, from) in m.protocol.negation_pairs() {
        let (Some(t), Some(f)) = (m.protocol.index(to), m.protocol.index(from)) else {
            continue;
        };
        let negated = m.items[f].as_ref().is_some_and(|i| i.negated);
        if let Some(item) = &mut m.items[t] {
            item.negated = negated;
        }
    }
    if m.protocol.family == Family::All {
        return;
    }
    let (Some(set), Some(flags)) = (m.protocol.index("ipset"), m.protocol.index("ipsetflags")) else {
        return;
    };
    match (m.items[set].is_some(), m.items[flags].is_some()) {
        (true, false) => {
            m.items[flags] = Some(Item {
                value: Value::IpSetFlags(vec![true]),
                negated: false,
            })
        }
        (false, true) => m.items[flags] = None,
        _ => {}
    }
}

fn parse_ref(e: &Element) -> Result<FilterRef, E> {
    let filter = e.attr("filter").ok_or(E::MissingFilterRef)?.to_owned();
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in e.children_named("parameter") {
        let (Some(name), Some(value)) = (p.attr("name"), p.attr("value")) else {
            continue;
        };
        // libvirt skips parameters with names or values it cannot use.
        if !name.chars().all(|c| VAR_NAME_CHARS.contains(c))
            || value.is_empty()
            || !value.chars().all(|c| VAR_VALUE_CHARS.contains(c))
        {
            continue;
        }
        params.entry(name.to_owned()).or_default().push(value.to_owned());
    }
    Ok(FilterRef { filter, params })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn integers_as_libvirt_reads_them() {
        assert_eq!(parse_i32(" -5"), Some(-5));
        assert_eq!(parse_i32("+7"), Some(7));
        assert_eq!(parse_i32("7x"), None);
        assert_eq!(parse_i32(""), None);
        assert_eq!(parse_i32("99999999999"), None);
    }

    #[test]
    fn chains() {
        assert_eq!(chain_priority("root"), Ok(0));
        assert_eq!(chain_priority("ipv4-ip"), Ok(-700));
        assert_eq!(chain_priority("stp-x"), Ok(0));
        assert_eq!(chain_priority("rarp"), Ok(-400));
        assert_eq!(chain_priority("mac-very-long"), Err(E::ChainTooLong));
        assert_eq!(chain_priority("mac/x"), Err(E::ChainChars));
        assert_eq!(chain_priority("rootx"), Err(E::ChainName("rootx".into())));
        assert_eq!(chain_priority("foo"), Err(E::ChainName("foo".into())));
    }
}
