//! What the network driver checks and fills in when a network is defined
//! or created (libvirt's `networkValidate` in `bridge_driver.c`): the
//! bridge name (`virbrN`, or a `%d` template filled in), the bridge's MAC
//! address, and the refusals that depend on the forward mode.
//!
//! Nothing else is added on define: `stp='on' delay='0'` come from the
//! parser's defaults and are printed for the modes with a managed bridge,
//! and no `<nat>` port range is written into the definition (neither
//! `networkValidate` nor the parser sets one; `<nat>` is printed only when
//! the XML gave it).

use super::NetworkXmlError as E;
use super::model::*;
use modvirt_xml::{MacAddr, RandomSource};

/// The highest `N` tried for a generated bridge name (`virbr0` …
/// `virbr256`), as libvirt's `MAX_BRIDGE_ID`.
pub const MAX_BRIDGE_ID: u32 = 256;

/// The bridge name template libvirt uses when none is given.
pub const DEFAULT_BRIDGE_TEMPLATE: &str = "virbr%d";

/// Who, if anyone, already has a bridge name. The driver answers this from
/// its other networks (`virNetworkObjBridgeInUse`, which skips the network
/// being defined, by name) and the host's devices (`virNetDevExists`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeUse {
    Free,
    /// Another defined network uses it (as its current or next definition).
    OtherNetwork,
    /// A host network device of that name exists.
    HostDevice,
}

/// Applies `networkValidate` to a parsed definition. See
/// [`NetworkDef::assign_defaults`].
pub(crate) fn apply(
    def: &mut NetworkDef,
    bridge_use: &dyn Fn(&str) -> BridgeUse,
    rng: &mut dyn RandomSource,
) -> Result<(), E> {
    if let Some(ch) = def.name.chars().find(|&c| c == '\n') {
        return Err(E::IllegalChar { field: "name", ch });
    }
    let mode = def.forward.mode;
    if mode.has_managed_bridge() {
        assign_bridge_name(def, bridge_use)?;
        if def.mac.is_none() {
            def.mac = Some(MacAddr::generate(rng));
        }
    } else {
        let unsupported = |element: &str| {
            E::Unsupported(format!(
                "Unsupported <{element}> element in network {} with forward mode='{mode}'",
                def.name
            ))
        };
        if def.mac.is_some() {
            return Err(unsupported("mac"));
        }
        if !def.ips.is_empty() {
            return Err(unsupported("ip"));
        }
        if def.domain.is_some() {
            return Err(unsupported("domain"));
        }
    }
    if mode == ForwardMode::Hostdev
        && let Some(dev) = def.forward.interfaces.first()
    {
        return Err(E::Unsupported(format!(
            "hostdev network '{}' lists '{dev}' in the device pool, but hostdev networks require all devices to be listed by PCI address, not network device name",
            def.name
        )));
    }
    let (mut ipv4_dhcp, mut ipv6_dhcp) = (false, false);
    for ip in def.ips.iter().filter(|ip| !ip.dhcp.is_empty()) {
        let (seen, family) = if ip.is_ipv4() {
            (&mut ipv4_dhcp, "IPv4")
        } else {
            (&mut ipv6_dhcp, "IPv6")
        };
        if *seen {
            return Err(E::Unsupported(format!(
                "Multiple {family} dhcp sections found -- dhcp is supported only for a single {family} address on each network"
            )));
        }
        *seen = true;
    }
    Ok(())
}

/// `networkBridgeNameValidate`: a plain name must not belong to another
/// network; no name, or a name with `%d`, gets the lowest free `N`.
fn assign_bridge_name(def: &mut NetworkDef, bridge_use: &dyn Fn(&str) -> BridgeUse) -> Result<(), E> {
    match def.bridge.name.as_deref() {
        Some(name) if !name.contains("%d") => {
            if bridge_use(name) == BridgeUse::OtherNetwork {
                return Err(E::Internal(format!("bridge name '{name}' already in use.")));
            }
            Ok(())
        }
        template => {
            // A template is used only when its one '%' is followed by 'd'.
            let template = template
                .filter(|t| t.matches('%').count() == 1)
                .unwrap_or(DEFAULT_BRIDGE_TEMPLATE);
            let found = (0..=MAX_BRIDGE_ID)
                .map(|id| template.replacen("%d", &id.to_string(), 1))
                .find(|candidate| bridge_use(candidate) == BridgeUse::Free)
                .ok_or_else(|| E::Internal(format!("Bridge generation exceeded max id {MAX_BRIDGE_ID}")))?;
            def.bridge.name = Some(found);
            Ok(())
        }
    }
}

/// Checks a network name as libvirt does on define: no `/` (the name is
/// a file name) and no newline.
pub fn validate_name(name: &str) -> Result<(), E> {
    if name.is_empty() {
        return Err(E::MissingName);
    }
    for illegal in ['/', '\n'] {
        if name.contains(illegal) {
            return Err(E::IllegalChar {
                field: "name",
                ch: illegal,
            });
        }
    }
    Ok(())
}
