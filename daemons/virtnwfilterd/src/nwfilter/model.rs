//! The network filter model (libvirt's `virNWFilterDef`).

use super::attrs::Protocol;
use super::value::Value;
use std::collections::BTreeMap;

/// What a matching rule does (`action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Drop,
    Accept,
    Reject,
    Return,
    Continue,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Drop,
        Action::Accept,
        Action::Reject,
        Action::Return,
        Action::Continue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Drop => "drop",
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::Return => "return",
            Action::Continue => "continue",
        }
    }
}

/// Which traffic a rule looks at (`direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    InOut,
}

impl Direction {
    pub const ALL: [Direction; 3] = [Direction::In, Direction::Out, Direction::InOut];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::InOut => "inout",
        }
    }
}

/// One attribute given in a protocol element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub value: Value,
    /// From `match='no'` on its element.
    pub negated: bool,
}

/// What a rule matches: one protocol and its attributes (indexed as the
/// protocol's attribute table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub protocol: &'static Protocol,
    pub items: Vec<Option<Item>>,
}

impl Match {
    pub fn new(protocol: &'static Protocol) -> Self {
        Match {
            protocol,
            items: vec![None; protocol.attr_count()],
        }
    }

    /// The item for attribute `name`, if given.
    pub fn get(&self, name: &str) -> Option<&Item> {
        self.protocol
            .index(name)
            .and_then(|i| self.items.get(i))
            .and_then(Option::as_ref)
    }
}

/// A `<rule>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub direction: Direction,
    /// -1000 to 1000; 500 when not given (or out of range).
    pub priority: i32,
    /// `false` for `statematch='false'` (or `'0'`).
    pub statematch: bool,
    pub matches: Option<Match>,
}

/// A `<filterref>`: another filter, with variable values for it (by name,
/// each with one or more values, in the order given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRef {
    pub filter: String,
    pub params: BTreeMap<String, Vec<String>>,
}

/// A rule or a reference, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Rule(Rule),
    FilterRef(FilterRef),
}

/// A network filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NwFilterDef {
    pub name: String,
    pub uuid: [u8; 16],
    /// Whether the document had a `<uuid>` (a file without one gets the
    /// generated UUID written back at load, as libvirt does).
    pub uuid_specified: bool,
    /// `root`, or a name starting with `mac`, `vlan`, `stp`, `arp`,
    /// `rarp`, `ipv4` or `ipv6`.
    pub chain: String,
    /// The chain's priority; 0 is not printed.
    pub priority: i32,
    pub entries: Vec<Entry>,
}
