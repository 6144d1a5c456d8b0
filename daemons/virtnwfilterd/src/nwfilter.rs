//! libvirt's network filter XML: the model, parsing (with libvirt's checks,
//! defaults and error messages) and formatting for `virsh
//! nwfilter-dumpxml`. No I/O: a UUID the XML leaves out comes from the
//! caller's randomness.
//!
//! ```text
//! XML ──parse──▶ NwFilterDef ──to_xml──▶ XML as nwfilter-dumpxml prints it
//! ```
//!
//! Modelled whole, as libvirt models it: `<filter name chain priority>`,
//! `<uuid>`, `<rule action direction priority statematch>` with one
//! protocol — `mac`, `vlan`, `stp`, `arp`, `rarp`, `ip`, `ipv6`, `tcp`,
//! `udp`, `udplite`, `esp`, `ah`, `sctp`, `icmp`, `igmp`, `all` and the
//! `-ipv6` variants — each with libvirt's attributes, value types (numbers
//! in decimal or hex, addresses, masks, MACs, protocol names, connection
//! states, TCP flags, ipsets, comments, `$VARIABLES`) and `match='no'`;
//! and `<filterref filter>` with `<parameter name value>`. As in libvirt,
//! unknown elements and unknown attributes are read past and not kept,
//! values are kept in libvirt's normal form (e.g. `255.255.255.0` as
//! `24`), and invalid parameters of a `<filterref>` are dropped.
//!
//! Not as libvirt: IPv4 addresses must be dotted quads (libvirt's
//! `getaddrinfo` also takes `10.1`), `dstipto` of the `-ipv6` protocols is
//! an IPv6 address (libvirt's table says IPv4 there), and a name with `/`
//! is refused (it names the file). Documents with a `<!DOCTYPE>` are
//! refused.

mod attrs;
mod error;
mod format;
mod model;
mod parse;
mod value;

#[cfg(test)]
mod tests;

pub use attrs::{PROTOCOLS, Protocol};
pub use error::{NwFilterXmlError, code, origin};
pub use model::*;
pub use value::{Value, VarAccess};

use modvirt_xml::{RandomSource, format_uuid};

impl NwFilterDef {
    /// Parses a filter document as libvirt's `virNWFilterDefParse` does
    /// for `virNWFilterDefineXML`.
    pub fn parse(xml: &str, rng: &mut dyn RandomSource) -> Result<Self, NwFilterXmlError> {
        parse::parse_filter(xml, rng)
    }

    /// The filter as `virsh nwfilter-dumpxml` prints it; parsing it gives
    /// back an equal definition (with `uuid_specified` set).
    pub fn to_xml(&self) -> String {
        format::format_filter(self)
    }

    pub fn uuid_string(&self) -> String {
        format_uuid(&self.uuid)
    }

    /// The filters this one references, in order.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| match e {
            Entry::FilterRef(r) => Some(r.filter.as_str()),
            Entry::Rule(_) => None,
        })
    }
}
