//! Element tree → [`NetworkDef`], as `virNetworkDefParseXML` reads it: in
//! libvirt's order of checks, with libvirt's messages, ending with the
//! checks that tie `<bridge>`, `<ip>` and `<mtu>` to the forward mode.
//!
//! libvirt reads most values through XPath `string()`, for which an empty
//! attribute is the same as a missing one ([`xpath_attr`]); the values it
//! reads with `virXMLPropString` keep an empty string ([`Element::attr`]).

use std::net::IpAddr;

use super::NetworkXmlError as E;
use super::addr::{Network, c_uint, c_uint_positive, c_ulong_positive, check_range, parse_ip, parse_ipv4};
use super::model::*;
use modvirt_xml::{Element, MacAddr, RandomSource, XmlError, generate_uuid, parse_tree, parse_uuid};

/// An attribute as XPath `string(./@name)` gives it: `None` when absent
/// or empty.
fn xpath_attr<'a>(el: &'a Element, name: &str) -> Option<&'a str> {
    el.attr(name).filter(|v| !v.is_empty())
}

/// `virXMLPropTristateBool`: absent, `yes` or `no`.
fn tristate(el: Option<&Element>, element: &'static str, attribute: &'static str) -> Result<Option<bool>, E> {
    match el.and_then(|e| e.attr(attribute)) {
        None => Ok(None),
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        Some(other) => Err(E::bad_value(element, attribute, other)),
    }
}

/// Why a MAC address is refused (libvirt words them per use).
enum BadMac {
    Unparsable,
    Multicast,
}

fn parse_mac(text: &str) -> Result<MacAddr, BadMac> {
    match MacAddr::parse(text) {
        Ok(mac) => Ok(mac),
        // modvirt_xml refuses multicast addresses with libvirt's message.
        Err(XmlError::BadMac(m)) if m.starts_with("expected unicast") => Err(BadMac::Multicast),
        Err(_) => Err(BadMac::Unparsable),
    }
}

/// Parses a whole document. See [`NetworkDef::parse`].
pub(crate) fn parse_network(xml: &str, rng: &mut dyn RandomSource) -> Result<NetworkDef, E> {
    let root = parse_tree(xml, "network")?;
    if root.name != "network" {
        return Err(E::WrongRoot { found: root.name });
    }

    let name = root.child_text("name").ok_or(E::MissingName)?.to_owned();
    if let Some(ch) = name.chars().find(|&c| c == '/') {
        return Err(E::IllegalChar { field: "name", ch });
    }
    let uuid = match root.child_text("uuid") {
        Some(text) => parse_uuid(text).ok_or_else(|| E::Internal("malformed uuid element".into()))?,
        None => generate_uuid(rng),
    };
    let ipv6 = match xpath_attr(&root, "ipv6") {
        None | Some("no") => false,
        Some("yes") => true,
        Some(other) => {
            return Err(E::Invalid(format!(
                "Invalid ipv6 setting '{other}' in network '{name}'"
            )));
        }
    };
    let trust_guest_rx_filters = tristate(Some(&root), "network", "trustGuestRxFilters")?;
    let domain = parse_domain(&root)?;
    let (bridge, stp_given) = parse_bridge(&name, root.child("bridge"))?;
    let mac = parse_bridge_mac(&name, &root)?;
    let mtu = parse_mtu(&name, &root)?;
    let ips = root
        .children_named("ip")
        .map(|el| parse_ip_def(&name, el))
        .collect::<Result<Vec<_>, _>>()?;
    let forward = match root.child("forward") {
        Some(el) => parse_forward(&name, el)?,
        None => Forward::default(),
    };

    let def = NetworkDef {
        name,
        uuid,
        ipv6,
        trust_guest_rx_filters,
        forward,
        bridge,
        mtu,
        mac,
        domain,
        ips,
    };
    check_mode(&def, stp_given)?;
    Ok(def)
}

fn parse_domain(root: &Element) -> Result<Option<DnsDomain>, E> {
    let el = root.child("domain");
    let name = el.and_then(|d| d.attr("name")).map(str::to_owned);
    let local_only = tristate(el, "domain", "localOnly")?;
    Ok(name.map(|name| DnsDomain { name, local_only }))
}

/// `<bridge>`, and whether `stp` was given (which some modes refuse).
fn parse_bridge(net: &str, el: Option<&Element>) -> Result<(Bridge, bool), E> {
    let mut bridge = Bridge::default();
    let Some(el) = el else {
        return Ok((bridge, false));
    };
    bridge.name = xpath_attr(el, "name").map(str::to_owned);
    bridge.zone = xpath_attr(el, "zone").map(str::to_owned);
    let stp = xpath_attr(el, "stp");
    bridge.stp = stp != Some("off");
    if let Some(delay) = xpath_attr(el, "delay") {
        bridge.delay = c_ulong_positive(delay)
            .ok_or_else(|| E::Invalid(format!("Invalid delay value in network '{net}'")))?;
    }
    if let Some(mtm) = xpath_attr(el, "macTableManager") {
        bridge.mac_table_manager = Some(MacTableManager::from_xml(mtm).ok_or_else(|| {
            E::Invalid(format!(
                "Invalid macTableManager setting '{mtm}' in network '{net}'"
            ))
        })?);
    }
    Ok((bridge, stp.is_some()))
}

fn parse_bridge_mac(net: &str, root: &Element) -> Result<Option<MacAddr>, E> {
    let Some(text) = root.child("mac").and_then(|m| xpath_attr(m, "address")) else {
        return Ok(None);
    };
    match parse_mac(text) {
        Ok(mac) => Ok(Some(mac)),
        Err(BadMac::Unparsable) => Err(E::Invalid(format!(
            "Invalid bridge mac address '{text}' in network '{net}'"
        ))),
        Err(BadMac::Multicast) => Err(E::Invalid(format!(
            "Invalid multicast bridge mac address '{text}' in network '{net}'"
        ))),
    }
}

fn parse_mtu(net: &str, root: &Element) -> Result<Option<u32>, E> {
    let Some(text) = root.child("mtu").and_then(|m| xpath_attr(m, "size")) else {
        return Ok(None);
    };
    let size =
        c_uint(text).ok_or_else(|| E::Invalid(format!("Invalid mtu size '{text}' in network '{net}'")))?;
    // libvirt keeps 0 as "no MTU".
    Ok((size != 0).then_some(size))
}

/// `<ip>`, as `virNetworkIPDefParseXML` reads it.
fn parse_ip_def(net: &str, el: &Element) -> Result<IpDef, E> {
    let family = xpath_attr(el, "family");
    let text = xpath_attr(el, "address")
        .ok_or_else(|| E::Invalid(format!("Missing required address attribute in network '{net}'")))?;
    let address =
        parse_ip(text).ok_or_else(|| E::Invalid(format!("Invalid address '{text}' in network '{net}'")))?;
    let netmask_text = xpath_attr(el, "netmask");
    let netmask = match netmask_text {
        Some(nm) => Some(
            parse_ip(nm).ok_or_else(|| E::Invalid(format!("Invalid netmask '{nm}' in network '{net}'")))?,
        ),
        None => None,
    };
    let prefix = match el.attr("prefix") {
        Some(p) => c_uint_positive(p).ok_or_else(|| E::bad_uint("ip", "prefix", p))?,
        None => 0,
    };
    let local_ptr = tristate(Some(el), "ip", "localPtr")?;

    let family = match family {
        None | Some("ipv4") => {
            if !address.is_ipv4() {
                return Err(E::Unsupported(format!(
                    "{} family specified for non-IPv4 address '{text}' in network '{net}'",
                    if family.is_none() { "no" } else { "ipv4" }
                )));
            }
            if let (Some(nm), Some(mask)) = (netmask_text, netmask) {
                if !mask.is_ipv4() {
                    return Err(E::Unsupported(format!(
                        "Invalid netmask '{nm}' for address '{text}' in network '{net}' (both must be IPv4)"
                    )));
                }
                if prefix > 0 {
                    return Err(E::Unsupported(format!(
                        "Network '{net}' IP address cannot have both a prefix and a netmask"
                    )));
                }
            } else if prefix > 32 {
                return Err(E::Unsupported(format!(
                    "Invalid IPv4 prefix '{prefix}' in network '{net}'"
                )));
            }
            family.map(|_| IpFamily::Ipv4)
        }
        Some("ipv6") => {
            if !address.is_ipv6() {
                return Err(E::Unsupported(format!(
                    "Family 'ipv6' specified for non-IPv6 address '{text}' in network '{net}'"
                )));
            }
            if netmask.is_some() {
                return Err(E::Unsupported(format!(
                    "netmask not allowed for IPv6 address '{text}' in network '{net}'"
                )));
            }
            if prefix > 128 {
                return Err(E::Unsupported(format!(
                    "Invalid IPv6 prefix '{prefix}' in network '{net}'"
                )));
            }
            Some(IpFamily::Ipv6)
        }
        Some(other) => {
            return Err(E::Invalid(format!(
                "Unrecognized family '{other}' in network '{net}'"
            )));
        }
    };
    let mask = match (netmask, u8::try_from(prefix)) {
        (Some(IpAddr::V4(nm)), _) => IpMask::Netmask(nm),
        (_, Ok(p)) if p > 0 => IpMask::Prefix(p),
        _ => IpMask::Implied,
    };
    let mut ip = IpDef {
        family,
        address,
        mask,
        local_ptr,
        tftp_root: None,
        dhcp: Dhcp::default(),
    };
    if let Some(dhcp) = el.child("dhcp") {
        ip.dhcp = parse_dhcp(net, &ip, dhcp)?;
    }
    if let Some(tftp) = el.child("tftp") {
        if !ip.is_ipv4() {
            return Err(E::Unsupported(format!(
                "Unsupported <tftp> element in an IPv6 element in network '{net}'"
            )));
        }
        ip.tftp_root = xpath_attr(tftp, "root").map(str::to_owned);
    }
    Ok(ip)
}

/// `<dhcp>`: every `<range>`, then every `<host>`.
fn parse_dhcp(net: &str, ip: &IpDef, el: &Element) -> Result<Dhcp, E> {
    let network: Network = (ip.address, ip.prefix());
    let ranges = el
        .children_named("range")
        .map(|r| parse_range(net, network, r))
        .collect::<Result<Vec<_>, _>>()?;
    let hosts = el
        .children_named("host")
        .map(|h| parse_host(net, ip, h))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Dhcp { ranges, hosts })
}

fn parse_range(net: &str, network: Network, el: &Element) -> Result<DhcpRange, E> {
    let end_of = |which: &str| -> Result<IpAddr, E> {
        let text = el.attr(which).ok_or_else(|| {
            E::Invalid(format!(
                "Missing '{which}' attribute in dhcp range for network '{net}'"
            ))
        })?;
        parse_ip(text).ok_or_else(|| E::Address {
            text: text.to_owned(),
        })
    };
    let start = end_of("start")?;
    let end = end_of("end")?;
    check_range(start, end, Some(network))?;
    Ok(DhcpRange { start, end })
}

fn parse_host(net: &str, ip: &IpDef, el: &Element) -> Result<DhcpHost, E> {
    let mac = el.attr("mac");
    if let Some(mac) = mac {
        if !ip.is_ipv4() {
            return Err(E::Invalid(format!(
                "Invalid to specify MAC address '{mac}' in network '{net}' IPv6 static host definition"
            )));
        }
        match parse_mac(mac) {
            Ok(_) => {}
            Err(BadMac::Unparsable) => {
                return Err(E::Invalid(format!(
                    "Cannot parse MAC address '{mac}' in network '{net}'"
                )));
            }
            Err(BadMac::Multicast) => {
                return Err(E::Invalid(format!(
                    "expected unicast mac address, found multicast '{mac}' in network '{net}'"
                )));
            }
        }
    }
    let id = el.attr("id");
    if let Some(id) = id
        && let Some(bad) = id.chars().find(|&c| !(c.is_ascii_hexdigit() || c == ':'))
    {
        return Err(E::Invalid(format!(
            "Invalid character '{bad}' in id '{id}' of network '{net}'"
        )));
    }
    let name = el.attr("name");
    if let Some(name) = name
        && !name.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(E::Invalid(format!(
            "Cannot use host name '{name}' in network '{net}'"
        )));
    }
    let ip_text = el.attr("ip");
    let host_ip = match ip_text {
        Some(text) => Some(parse_ip(text).ok_or_else(|| {
            E::Invalid(format!(
                "Invalid IP address in static host definition for network '{net}'"
            ))
        })?),
        None => None,
    };
    if !ip.is_ipv4() {
        if id.is_none() && name.is_none() {
            return Err(E::Invalid(format!(
                "Static host definition in IPv6 network '{net}' must have id or name attribute"
            )));
        }
    } else if mac.is_none() && name.is_none() {
        return Err(E::Invalid(format!(
            "Static host definition in IPv4 network '{net}' must have mac or name attribute"
        )));
    }
    let host_ip = host_ip.ok_or_else(|| {
        E::Invalid(format!(
            "Missing IP address in static host definition for network '{net}'"
        ))
    })?;
    Ok(DhcpHost {
        mac: mac.map(str::to_owned),
        id: id.map(str::to_owned),
        name: name.map(str::to_owned),
        ip: host_ip,
    })
}

/// `<forward>`, as `virNetworkForwardDefParseXML` reads it.
fn parse_forward(net: &str, el: &Element) -> Result<Forward, E> {
    let mode = match xpath_attr(el, "mode") {
        None => ForwardMode::Nat,
        Some(m) => ForwardMode::from_xml(m)
            .ok_or_else(|| E::Unsupported(format!("unknown forwarding type '{m}'")))?,
    };
    let managed = xpath_attr(el, "managed").is_some_and(|m| m.eq_ignore_ascii_case("yes"));
    let driver = match el.child("driver").and_then(|d| xpath_attr(d, "name")) {
        Some(d) => Some(ForwardDriver::from_xml(d).ok_or_else(|| {
            E::Unsupported(format!("Unknown forward <driver name='{d}'/> in network {net}"))
        })?),
        None => None,
    };
    let interfaces: Vec<&Element> = el.children_named("interface").collect();
    let addresses = el.children_named("address").count();
    let pfs: Vec<&Element> = el.children_named("pf").collect();
    let nats: Vec<&Element> = el.children_named("nat").collect();

    let nat = match nats.as_slice() {
        [] => Nat::default(),
        [nat] => parse_nat(net, mode, nat)?,
        _ => {
            return Err(E::Invalid(format!(
                "Only one <nat> element is allowed in <forward> of network {net}"
            )));
        }
    };
    let dev = xpath_attr(el, "dev");
    if dev.is_some() && (addresses > 0 || !pfs.is_empty()) {
        // libvirt passes this message through "%s", so its own "%s" is
        // printed as is.
        return Err(E::Invalid(
            "the <forward> 'dev' attribute cannot be used when <address> or <pf> sub-elements are present in network %s"
                .into(),
        ));
    }

    let mut forward = Forward {
        mode,
        managed,
        driver,
        nat,
        ..Forward::default()
    };
    if !interfaces.is_empty() || dev.is_some() {
        forward.interfaces = forward_interfaces(net, dev, &interfaces)?;
    } else if addresses > 0 {
        return Err(E::Unsupported(format!(
            "<address> elements in <forward> of network '{net}' are not supported by modvirt"
        )));
    } else if let [pf] = pfs.as_slice() {
        let dev = pf.attr("dev").ok_or_else(|| {
            E::Invalid(format!(
                "Missing required dev attribute in <pf> element of network '{net}'"
            ))
        })?;
        forward.pf = Some(dev.to_owned());
    } else if pfs.len() > 1 {
        return Err(E::Invalid(format!(
            "Only one <pf> element is allowed in <forward> of network {net}"
        )));
    }
    Ok(forward)
}

/// `<forward dev>` and its `<interface dev>` list: the first interface
/// must repeat `dev`, and no device may appear twice.
fn forward_interfaces(net: &str, dev: Option<&str>, interfaces: &[&Element]) -> Result<Vec<String>, E> {
    let mut devs: Vec<String> = dev.into_iter().map(str::to_owned).collect();
    for (i, iface) in interfaces.iter().enumerate() {
        let d = iface.attr("dev").ok_or_else(|| {
            E::Invalid(format!(
                "Missing required dev attribute in <forward> <interface> element of network {net}"
            ))
        })?;
        if i == 0 && dev.is_some() {
            if devs[0] != d {
                return Err(E::Invalid(format!(
                    "<forward dev='{}'> must match first <interface dev='{d}'/> in network {net}",
                    devs[0]
                )));
            }
            continue;
        }
        if devs.iter().any(|x| x == d) {
            return Err(E::Invalid(format!(
                "interface '{d}' can only be listed once in network {net}"
            )));
        }
        devs.push(d.to_owned());
    }
    Ok(devs)
}

/// `<forward><nat>`, as `virNetworkForwardNatDefParseXML` reads it.
fn parse_nat(net: &str, mode: ForwardMode, el: &Element) -> Result<Nat, E> {
    if mode != ForwardMode::Nat {
        return Err(E::Invalid(format!(
            "The <nat> element can only be used when <forward> 'mode' is 'nat' in network {net}"
        )));
    }
    let mut nat = Nat {
        ipv6: tristate(Some(el), "nat", "ipv6")?,
        ..Nat::default()
    };
    let addresses: Vec<&Element> = el.children_named("address").collect();
    match addresses.as_slice() {
        [] => {}
        [addr] => {
            let attr = |which: &str| {
                addr.attr(which).ok_or_else(|| {
                    E::Invalid(format!(
                        "missing '{which}' attribute in <address> element in <nat> in <forward> in network {net}"
                    ))
                })
            };
            let (start, end) = (attr("start")?, attr("end")?);
            let v4 = |text: &str, which: &str| {
                parse_ipv4(text).ok_or_else(|| {
                    E::Invalid(format!(
                        "Bad ipv4 {which} address '{text}' in <nat> in <forward> in network '{net}'"
                    ))
                })
            };
            let (start, end) = (v4(start, "start")?, v4(end, "end")?);
            check_range(start.into(), end.into(), None)?;
            nat.addresses = Some((start, end));
        }
        _ => {
            return Err(E::Invalid(format!(
                "Only one <address> element is allowed in <nat> in <forward> in network {net}"
            )));
        }
    }
    let ports: Vec<&Element> = el.children_named("port").collect();
    match ports.as_slice() {
        [] => {}
        [port] => {
            let bad = |which: &str| {
                E::Detail(format!(
                    "Missing or invalid '{which}' attribute in <port> in <nat> in <forward> in network {net}"
                ))
            };
            let number = |which: &str| {
                xpath_attr(port, which)
                    .and_then(c_uint)
                    .and_then(|v| u16::try_from(v).ok())
            };
            let start = number("start").ok_or_else(|| bad("start"))?;
            let end = number("end")
                .filter(|&end| end >= start)
                .ok_or_else(|| bad("end"))?;
            nat.ports = NatPorts { start, end };
        }
        _ => {
            return Err(E::Invalid(format!(
                "Only one <port> element is allowed in <nat> in <forward> in network {net}"
            )));
        }
    }
    Ok(nat)
}

/// The checks `virNetworkDefParseXML` ends with: what each forward mode
/// allows of `<ip>`, `<bridge>`, forward devices and `<mtu>`.
fn check_mode(def: &NetworkDef, stp_given: bool) -> Result<(), E> {
    let (net, mode, fwd, bridge) = (&def.name, def.forward.mode, &def.forward, &def.bridge);
    match mode {
        ForwardMode::None => {}
        ForwardMode::Route | ForwardMode::Nat | ForwardMode::Open => {
            if def.ips.is_empty() {
                return Err(E::Invalid(format!(
                    "{mode} forwarding requested, but no IP address provided for network '{net}'"
                )));
            }
            if fwd.interfaces.len() > 1 {
                return Err(E::Invalid(format!(
                    "multiple forwarding interfaces specified for network '{net}', only one is supported"
                )));
            }
            if mode == ForwardMode::Open && !fwd.interfaces.is_empty() {
                return Err(E::Invalid(format!(
                    "forward dev not allowed for network '{net}' with forward mode='{mode}'"
                )));
            }
        }
        ForwardMode::Bridge
        | ForwardMode::Private
        | ForwardMode::Vepa
        | ForwardMode::Passthrough
        | ForwardMode::Hostdev => {
            if mode != ForwardMode::Bridge {
                let refused = if bridge.name.is_some() {
                    Some("bridge name")
                } else if bridge.zone.is_some() {
                    Some("bridge zone")
                } else if bridge.mac_table_manager.is_some() {
                    Some("bridge macTableManager setting")
                } else {
                    None
                };
                if let Some(what) = refused {
                    return Err(E::Invalid(format!(
                        "{what} not allowed in {mode} mode (network '{net}')"
                    )));
                }
            }
            if bridge.delay != 0 || stp_given || bridge.zone.is_some() {
                return Err(E::Invalid(format!(
                    "bridge delay/stp/zone options only allowed in route, nat, and isolated mode, not in {mode} (network '{net}')"
                )));
            }
            if bridge.name.is_some() && (!fwd.interfaces.is_empty() || fwd.pf.is_some()) {
                return Err(E::Invalid(format!(
                    "A network with forward mode='{mode}' can specify a bridge name or a forward dev, but not both (network '{net}')"
                )));
            }
        }
    }
    if def.mtu.is_some() && !mode.has_managed_bridge() {
        return Err(E::Invalid(format!(
            "mtu size only allowed in open, route, nat, and isolated mode, not in {mode} (network '{net}')"
        )));
    }
    Ok(())
}
