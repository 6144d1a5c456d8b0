//! An active network on the host: for the modes where libvirt makes the
//! bridge itself (NAT, routed, open, isolated), a Linux bridge with the
//! network's MAC, STP setting and addresses, brought up; for `bridge` mode,
//! the host bridge it names, which must exist. Destroying the network
//! removes what starting it made.
//!
//! Then, when installed: `dnsmasq` for DHCP/DNS on the bridge
//! ([`super::dnsmasq`]) and forwarding/NAT rules in an nftables table of
//! the network's own ([`super::firewall`]); what is missing is logged, and
//! the network starts without it, as libvirt's does without a DHCP range.
//! A failure half-way undoes what was made.

use super::nets::internal;
use crate::network::NetworkDef;
use modvirt_netlink::{BridgeOptions, Netlink};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};

fn system_error(e: &modvirt_netlink::NetlinkError) -> RpcError {
    RpcError::plain(ErrorCode::SYSTEM_ERROR, ErrorDomain::NETWORK, e.to_string())
}

fn netlink() -> Result<Netlink, RpcError> {
    Netlink::open().map_err(|e| system_error(&e))
}

/// Makes `def` real on the host.
pub fn start(def: &NetworkDef, store: &super::store::Store) -> Result<(), RpcError> {
    bridge_up(def)?;
    if let Err(e) = services_up(def, store) {
        let _ = stop(def, store);
        return Err(RpcError::plain(ErrorCode::SYSTEM_ERROR, ErrorDomain::NETWORK, e));
    }
    Ok(())
}

/// dnsmasq and the firewall table, when wanted and installed.
fn services_up(def: &NetworkDef, store: &super::store::Store) -> Result<(), String> {
    let Some(bridge) = def.bridge_name().filter(|_| def.needs_bridge()) else {
        return Ok(());
    };
    if super::firewall::wanted(def) {
        match super::firewall::binary() {
            Some(nft) => super::firewall::start(&nft, def, bridge)?,
            None => {
                tracing::warn!(target: "network", "network '{}': nft is not installed: no forwarding/NAT rules", def.name)
            }
        }
    }
    if super::dnsmasq::wanted(def) {
        match super::dnsmasq::binary() {
            Some(dnsmasq) => {
                let pid = super::dnsmasq::start(&dnsmasq, def, bridge, &store.dnsmasq_files(&def.name))?;
                tracing::info!(target: "network", "network '{}': dnsmasq pid {pid}", def.name);
            }
            None => {
                tracing::warn!(target: "network", "network '{}': dnsmasq is not installed: no DHCP/DNS", def.name)
            }
        }
    }
    Ok(())
}

/// The bridge (or, in `bridge` mode, the check that the host's exists).
fn bridge_up(def: &NetworkDef) -> Result<(), RpcError> {
    let bridge = def
        .bridge_name()
        .ok_or_else(|| internal(format!("network '{}' has no bridge name", def.name)))?;
    let mut nl = netlink()?;
    if !def.needs_bridge() {
        // `bridge` mode: the host's own bridge carries the network.
        return match nl.link_by_name(bridge).map_err(|e| system_error(&e))? {
            Some(_) => Ok(()),
            None => Err(RpcError::plain(
                ErrorCode::SYSTEM_ERROR,
                ErrorDomain::NETWORK,
                format!("Cannot get interface MTU on '{bridge}': No such device"),
            )),
        };
    }
    let options = BridgeOptions {
        mac: def.mac.map(|m| m.0),
        stp: def.bridge.stp,
        forward_delay_cs: u32::try_from(def.bridge.delay.saturating_mul(100)).unwrap_or(u32::MAX),
        mtu: def.mtu,
    };
    nl.create_bridge(bridge, &options).map_err(|e| system_error(&e))?;
    let made = (|| {
        for ip in &def.ips {
            // Definitions whose prefix cannot be worked out were refused
            // at define time; a host-width prefix is the safe fallback.
            let full = if ip.address.is_ipv4() { 32 } else { 128 };
            nl.add_address(bridge, ip.address, ip.prefix().unwrap_or(full))?;
        }
        nl.set_up(bridge, true)
    })();
    if let Err(e) = made {
        let _ = nl.delete_link(bridge);
        return Err(system_error(&e));
    }
    Ok(())
}

/// Undoes [`start`].
pub fn stop(def: &NetworkDef, store: &super::store::Store) -> Result<(), RpcError> {
    if !def.needs_bridge() {
        return Ok(());
    }
    super::dnsmasq::stop(&store.dnsmasq_files(&def.name));
    if super::firewall::wanted(def)
        && let Some(nft) = super::firewall::binary()
        && let Err(e) = super::firewall::stop(&nft, &def.name)
    {
        tracing::warn!(target: "network", "network '{}': {e}", def.name);
    }
    let Some(bridge) = def.bridge_name() else {
        return Ok(());
    };
    let mut nl = netlink()?;
    match nl.delete_link(bridge) {
        Err(e) if e.errno() == Some(nix::errno::Errno::ENODEV) => Ok(()),
        other => other.map_err(|e| system_error(&e)),
    }
}

/// Whether an active network's bridge still exists (after a daemon restart).
pub fn is_up(def: &NetworkDef) -> bool {
    def.bridge_name().is_none_or(link_exists)
}

/// The names of the host's links (one netlink dump); empty if they cannot
/// be listed.
pub fn link_names() -> std::collections::HashSet<String> {
    Netlink::open()
        .and_then(|mut nl| nl.links())
        .map(|links| links.into_iter().map(|l| l.name).collect())
        .unwrap_or_default()
}

/// Whether a host link called `name` exists (a bridge name a network may
/// not take for itself).
pub fn link_exists(name: &str) -> bool {
    Netlink::open()
        .and_then(|mut nl| nl.link_by_name(name))
        .is_ok_and(|l| l.is_some())
}
