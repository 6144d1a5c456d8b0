//! An active network on the host: for the modes where libvirt makes the
//! bridge itself (NAT, routed, open, isolated), a Linux bridge with the
//! network's MAC, STP setting and addresses, brought up; for `bridge` mode,
//! the host bridge it names, which must exist. Destroying the network
//! removes what starting it made.
//!
//! Not done yet: DHCP/DNS with `dnsmasq` and forwarding/NAT rules with
//! nftables (a NAT network's bridge is up with its address, but guests get
//! no DHCP lease and no route out).

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
pub fn start(def: &NetworkDef) -> Result<(), RpcError> {
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
pub fn stop(def: &NetworkDef) -> Result<(), RpcError> {
    if !def.needs_bridge() {
        return Ok(());
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

/// Whether a host link called `name` exists (a bridge name a network may
/// not take for itself).
pub fn link_exists(name: &str) -> bool {
    Netlink::open()
        .and_then(|mut nl| nl.link_by_name(name))
        .is_ok_and(|l| l.is_some())
}
