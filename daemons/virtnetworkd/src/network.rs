//! libvirt's network XML: the model, parsing (with libvirt's errors and
//! defaults) and formatting for `virsh net-dumpxml`. No I/O: randomness
//! for the UUID and MAC an XML leaves out comes from the caller, and so
//! does the knowledge of which bridge names are taken.
//!
//! ```text
//! XML ──xml──▶ element tree ──parse──▶ NetworkDef            (virNetworkDefParse)
//! NetworkDef ──assign_defaults(bridge use, rng)──▶ NetworkDef (networkValidate, on define/create)
//! NetworkDef ──to_xml / to_xml_live──▶ XML as net-dumpxml prints it (virNetworkDefFormat)
//! ```
//!
//! Modelled: `<network ipv6 trustGuestRxFilters>`, `name`, `uuid`,
//! `forward` (every mode; `dev`, `<interface>`, `<pf>`, `managed`,
//! `<driver>`, `<nat>` addresses, ports and `ipv6`), `bridge` (`name`,
//! `zone`, `stp`, `delay`, `macTableManager`), `mtu`, `mac`, `domain`, and
//! `ip` (`family`, `address`, `netmask`/`prefix`, `localPtr`, `<tftp>`,
//! `<dhcp>` ranges and hosts). Anything else (`dns`, `portgroup`,
//! `route`, `bandwidth`, `vlan`, `virtualport`, `port`, DHCP `lease` and
//! `bootp`, PCI `<address>` in `<forward>`) is read past and does not
//! appear in the output, except that PCI addresses are refused.
//!
//! Documents with a `<!DOCTYPE>` are refused, so no entity is ever
//! declared or expanded (only the five predefined ones and character
//! references are resolved).

mod addr;
mod defaults;
mod error;
mod format;
mod model;
mod parse;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;

pub use defaults::{BridgeUse, DEFAULT_BRIDGE_TEMPLATE, MAX_BRIDGE_ID, validate_name};
pub use error::{NetworkXmlError, code, origin};
use format::FormatOptions;
pub use model::*;
pub use modvirt_xml::{MacAddr, RandomSource, format_uuid, generate_uuid, parse_uuid};

impl NetworkDef {
    /// Parses a network XML document as libvirt's `virNetworkDefParse`
    /// does for `virNetworkDefineXML`/`CreateXML`: unknown elements are
    /// ignored, a missing UUID is generated with `rng`, and refusals carry
    /// libvirt's error code, domain and message. The driver then calls
    /// [`assign_defaults`](Self::assign_defaults).
    pub fn parse(xml: &str, rng: &mut dyn RandomSource) -> Result<Self, NetworkXmlError> {
        parse::parse_network(xml, rng)
    }

    /// What libvirt's network driver does to a parsed definition on
    /// define and create (`networkValidate`): refuses a newline in the
    /// name; for the modes with a managed bridge (isolated, nat, route,
    /// open) gives the network a bridge name and a `52:54:00` MAC when it
    /// has none; refuses `<mac>`, `<ip>` and `<domain>` in the other modes,
    /// interface names in a hostdev pool, and more than one IPv4 or IPv6
    /// `<dhcp>`.
    ///
    /// A bridge name without `%d` is kept unless
    /// `bridge_use` says another network has it; with no name, or a
    /// template with one `%d` (`br%d`), the lowest `N` from 0 to
    /// [`MAX_BRIDGE_ID`] whose name is [`BridgeUse::Free`] is used.
    /// `bridge_use` must not count this network's own definition (libvirt
    /// skips the network of the same name).
    pub fn assign_defaults(
        &mut self,
        bridge_use: &dyn Fn(&str) -> BridgeUse,
        rng: &mut dyn RandomSource,
    ) -> Result<(), NetworkXmlError> {
        defaults::apply(self, bridge_use, rng)
    }

    /// The inactive definition, as `virsh net-dumpxml` (or
    /// `net-dumpxml --inactive`) prints it; parsing it gives back an equal
    /// definition.
    pub fn to_xml(&self) -> String {
        format::format(self, &FormatOptions::default())
    }

    /// The live definition of an active network that `connections` guest
    /// interfaces use (`<network connections='N'>` when N > 0).
    pub fn to_xml_live(&self, connections: u32) -> String {
        format::format(
            self,
            &FormatOptions {
                live_connections: Some(connections),
            },
        )
    }

    /// Whether the driver creates and manages a bridge device for this
    /// network (isolated, nat, route and open modes).
    pub fn needs_bridge(&self) -> bool {
        self.forward.mode.has_managed_bridge()
    }

    /// The UUID as libvirt prints it (`6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001`).
    pub fn uuid_string(&self) -> String {
        format_uuid(&self.uuid)
    }

    /// The bridge device name (after [`assign_defaults`](Self::assign_defaults)
    /// always set for the modes that [need a bridge](Self::needs_bridge)).
    pub fn bridge_name(&self) -> Option<&str> {
        self.bridge.name.as_deref()
    }
}
