//! [`NetworkDef`] → XML, the way `virNetworkDefFormat` prints it for
//! `virsh net-dumpxml`: two-space indent, single-quoted attributes, and
//! libvirt's order (name, uuid, forward, bridge, mtu, mac, domain, ip…).
//!
//! Text and attribute values are escaped (`&`, `<`, `>`, `'`, `"`). libvirt
//! escapes most of them too, but prints a DHCP host's `name`/`id` and the
//! `<domain name>` raw; modvirt escapes those as well, which changes only
//! values that would otherwise make the output ill-formed.

use std::fmt::Display;

use super::addr::format_ip;
use super::model::*;
use modvirt_xml::{XmlWriter, format_uuid};

/// How to format a definition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FormatOptions {
    /// Format the live definition of an active network: `connections`
    /// (when above 0) on `<network>`, and forward interfaces even when a
    /// `<pf>` is given. `None`: the inactive (persistent) definition.
    pub(crate) live_connections: Option<u32>,
}

/// `yes`/`no` for a tristate that is set.
fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Pushes `(name, value)` when `value` is set.
fn push_opt<'a>(attrs: &mut Vec<(&'a str, &'a dyn Display)>, name: &'a str, value: Option<&'a dyn Display>) {
    if let Some(v) = value {
        attrs.push((name, v));
    }
}

pub(crate) fn format(def: &NetworkDef, opts: &FormatOptions) -> String {
    let mut out = XmlWriter::new();
    let connections = opts.live_connections.filter(|&n| n > 0);
    let trust = def.trust_guest_rx_filters.map(yes_no);
    let mut attrs: Vec<(&str, &dyn Display)> = Vec::new();
    push_opt(
        &mut attrs,
        "connections",
        connections.as_ref().map(|c| c as &dyn Display),
    );
    if def.ipv6 {
        attrs.push(("ipv6", &"yes"));
    }
    push_opt(
        &mut attrs,
        "trustGuestRxFilters",
        trust.as_ref().map(|t| t as &dyn Display),
    );
    out.open("network", &attrs);
    out.text("name", &[], &def.name);
    out.text("uuid", &[], &format_uuid(&def.uuid));
    format_forward(&mut out, &def.forward, opts.live_connections.is_some());
    format_bridge(&mut out, def);
    if let Some(mtu) = def.mtu {
        out.empty("mtu", &[("size", &mtu)]);
    }
    if let Some(mac) = &def.mac {
        out.empty("mac", &[("address", mac)]);
    }
    if let Some(domain) = &def.domain {
        let local = domain.local_only.map(yes_no);
        let mut attrs: Vec<(&str, &dyn Display)> = vec![("name", &domain.name)];
        push_opt(&mut attrs, "localOnly", local.as_ref().map(|l| l as &dyn Display));
        out.empty("domain", &attrs);
    }
    for ip in &def.ips {
        format_ip_def(&mut out, ip);
    }
    out.close("network");
    out.finish()
}

fn format_forward(out: &mut XmlWriter, fwd: &Forward, live: bool) {
    if fwd.mode == ForwardMode::None {
        return;
    }
    let mut attrs: Vec<(&str, &dyn Display)> = Vec::new();
    let dev = fwd.dev();
    push_opt(&mut attrs, "dev", dev.as_ref().map(|d| d as &dyn Display));
    attrs.push(("mode", &fwd.mode));
    if fwd.mode == ForwardMode::Hostdev {
        attrs.push(("managed", if fwd.managed { &"yes" } else { &"no" }));
    }
    let nat = if fwd.mode == ForwardMode::Nat {
        fwd.nat
    } else {
        Nat::default()
    };
    let short = fwd.interfaces.is_empty()
        && fwd.pf.is_none()
        && nat.addresses.is_none()
        && !nat.ports.is_set()
        && fwd.driver.is_none()
        && nat.ipv6.is_none();
    if short {
        out.empty("forward", &attrs);
        return;
    }
    out.open("forward", &attrs);
    if let Some(driver) = fwd.driver {
        out.empty("driver", &[("name", &driver)]);
    }
    if nat.is_set() {
        format_nat(out, &nat);
    }
    if let Some(pf) = &fwd.pf {
        out.empty("pf", &[("dev", pf)]);
    }
    if fwd.pf.is_none() || live {
        for dev in &fwd.interfaces {
            out.empty("interface", &[("dev", dev)]);
        }
    }
    out.close("forward");
}

fn format_nat(out: &mut XmlWriter, nat: &Nat) {
    let ipv6 = nat.ipv6.map(yes_no);
    let mut attrs: Vec<(&str, &dyn Display)> = Vec::new();
    push_opt(&mut attrs, "ipv6", ipv6.as_ref().map(|v| v as &dyn Display));
    if nat.addresses.is_none() && !nat.ports.is_set() {
        out.empty("nat", &attrs);
        return;
    }
    out.open("nat", &attrs);
    if let Some((start, end)) = &nat.addresses {
        out.empty("address", &[("start", start), ("end", end)]);
    }
    if nat.ports.is_set() {
        let NatPorts { start, end } = nat.ports;
        if end != 0 {
            out.empty("port", &[("start", &start), ("end", &end)]);
        } else {
            out.empty("port", &[("start", &start)]);
        }
    }
    out.close("nat");
}

fn format_bridge(out: &mut XmlWriter, def: &NetworkDef) {
    let b = &def.bridge;
    let managed = def.forward.mode.has_managed_bridge();
    if !(managed || b.name.is_some() || b.mac_table_manager.is_some()) {
        return;
    }
    let stp = if b.stp { "on" } else { "off" };
    // libvirt prints the (unsigned long) delay with "%ld".
    let delay = b.delay as i64;
    let mut attrs: Vec<(&str, &dyn Display)> = Vec::new();
    push_opt(&mut attrs, "name", b.name.as_ref().map(|n| n as &dyn Display));
    push_opt(&mut attrs, "zone", b.zone.as_ref().map(|z| z as &dyn Display));
    if managed {
        attrs.push(("stp", &stp));
        attrs.push(("delay", &delay));
    }
    push_opt(
        &mut attrs,
        "macTableManager",
        b.mac_table_manager.as_ref().map(|m| m as &dyn Display),
    );
    out.empty("bridge", &attrs);
}

fn format_ip_def(out: &mut XmlWriter, ip: &IpDef) {
    let address = format_ip(ip.address);
    let local_ptr = ip.local_ptr.map(yes_no);
    let mut attrs: Vec<(&str, &dyn Display)> = Vec::new();
    push_opt(
        &mut attrs,
        "family",
        ip.family.as_ref().map(|f| f as &dyn Display),
    );
    attrs.push(("address", &address));
    match &ip.mask {
        IpMask::Netmask(nm) => attrs.push(("netmask", nm)),
        IpMask::Prefix(p) => attrs.push(("prefix", p)),
        IpMask::Implied => {}
    }
    push_opt(
        &mut attrs,
        "localPtr",
        local_ptr.as_ref().map(|l| l as &dyn Display),
    );
    out.open("ip", &attrs);
    if let Some(root) = &ip.tftp_root {
        out.empty("tftp", &[("root", root)]);
    }
    if !ip.dhcp.is_empty() {
        out.open("dhcp", &[]);
        for range in &ip.dhcp.ranges {
            let (start, end) = (format_ip(range.start), format_ip(range.end));
            out.empty("range", &[("start", &start), ("end", &end)]);
        }
        for host in &ip.dhcp.hosts {
            let host_ip = format_ip(host.ip);
            let mut attrs: Vec<(&str, &dyn Display)> = Vec::new();
            push_opt(&mut attrs, "mac", host.mac.as_ref().map(|m| m as &dyn Display));
            push_opt(&mut attrs, "id", host.id.as_ref().map(|i| i as &dyn Display));
            push_opt(&mut attrs, "name", host.name.as_ref().map(|n| n as &dyn Display));
            attrs.push(("ip", &host_ip));
            out.empty("host", &attrs);
        }
        out.close("dhcp");
    }
    out.close("ip");
}
