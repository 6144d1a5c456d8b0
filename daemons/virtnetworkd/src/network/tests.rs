//! Whole-document tests: libvirt's default network as defined, every
//! forward mode, IPv6 and DHCP hosts, bridge name assignment, and round
//! trips of everything formatted.

use super::*;

/// libvirt's `src/network/default.xml.in`, as shipped.
const LIBVIRT_DEFAULT_XML: &str = "<network>
  <name>default</name>
  <bridge name='virbr0'/>
  <forward/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
";

/// A deterministic [`RandomSource`]: 1, 2, 3, …
pub(super) fn counter() -> impl FnMut() -> u64 {
    let mut n = 0;
    move || {
        n += 1;
        n
    }
}

/// What [`counter`] makes of a missing UUID (and then MAC).
pub(super) const COUNTER_UUID: &str = "00000000-0000-4001-8000-000000000002";
pub(super) const COUNTER_MAC: &str = "52:54:00:00:00:03";

pub(super) fn parse(xml: &str) -> Result<NetworkDef, NetworkXmlError> {
    NetworkDef::parse(xml, &mut counter())
}

pub(super) fn free(_: &str) -> BridgeUse {
    BridgeUse::Free
}

/// Parse and define, as the driver does, with bridge names taken as
/// `used` says.
pub(super) fn define(xml: &str, used: &dyn Fn(&str) -> BridgeUse) -> Result<NetworkDef, NetworkXmlError> {
    let mut rng = counter();
    let mut def = NetworkDef::parse(xml, &mut rng)?;
    def.assign_defaults(used, &mut rng)?;
    Ok(def)
}

/// `define` with nothing in use, formatted; checks the output parses
/// back to the same definition and prints the same again.
#[track_caller]
fn defined_xml(xml: &str) -> String {
    let def = define(xml, &free).unwrap();
    let out = def.to_xml();
    let again = parse(&out).unwrap();
    assert_eq!(again, def, "{out}");
    assert_eq!(again.to_xml(), out);
    out
}

#[test]
fn libvirt_default_network_as_defined() {
    let values = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, 0x00aa_bbcc];
    let mut next = values.into_iter().cycle();
    let mut rng = move || next.next().unwrap_or_default();
    let mut def = NetworkDef::parse(LIBVIRT_DEFAULT_XML, &mut rng).unwrap();
    assert_eq!(def.forward.mode, ForwardMode::Nat);
    assert_eq!(def.mac, None);
    def.assign_defaults(&free, &mut rng).unwrap();
    assert_eq!(
        def.to_xml(),
        "<network>
  <name>default</name>
  <uuid>01234567-89ab-4def-bedc-ba9876543210</uuid>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:aa:bb:cc'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
"
    );
    assert_eq!(def.uuid_string(), "01234567-89ab-4def-bedc-ba9876543210");
    assert_eq!(def.bridge_name(), Some("virbr0"));
    assert!(def.needs_bridge());
    assert_eq!(def.ips[0].prefix(), Some(24));

    // The saved definition parses back to itself, and defining it again
    // (e.g. on daemon restart) changes nothing.
    let saved = def.to_xml();
    let mut again = NetworkDef::parse(&saved, &mut counter()).unwrap();
    assert_eq!(again, def);
    again.assign_defaults(&free, &mut counter()).unwrap();
    assert_eq!(again, def);
    assert_eq!(again.to_xml(), saved);
}

#[test]
fn live_xml_counts_connections() {
    let def = define(LIBVIRT_DEFAULT_XML, &free).unwrap();
    let live = def.to_xml_live(3);
    assert!(
        live.starts_with("<network connections='3'>\n  <name>default</name>\n"),
        "{live}"
    );
    assert_eq!(live.replace(" connections='3'", ""), def.to_xml());
    assert_eq!(def.to_xml_live(0), def.to_xml());
}

#[test]
fn isolated_network_gets_lowest_free_virbr() {
    let xml = "<network><name>isolated</name><ip address='10.0.0.1' prefix='24'/></network>";
    let used = |name: &str| match name {
        "virbr0" | "virbr3" => BridgeUse::OtherNetwork,
        "virbr1" => BridgeUse::HostDevice,
        _ => BridgeUse::Free,
    };
    let def = define(xml, &used).unwrap();
    assert_eq!(def.bridge_name(), Some("virbr2"));
    assert_eq!(
        def.to_xml(),
        format!(
            "<network>
  <name>isolated</name>
  <uuid>{COUNTER_UUID}</uuid>
  <bridge name='virbr2' stp='on' delay='0'/>
  <mac address='{COUNTER_MAC}'/>
  <ip address='10.0.0.1' prefix='24'>
  </ip>
</network>
"
        )
    );
    assert_eq!(defined_xml(xml).replace("virbr0", "virbr2"), def.to_xml());
}

#[test]
fn bridge_name_templates_and_conflicts() {
    let with_bridge = |bridge: &str| {
        format!("<network><name>t</name><bridge name='{bridge}'/><ip address='10.0.0.1'/></network>")
    };
    let used = |name: &str| match name {
        "br0" | "virbr0" => BridgeUse::OtherNetwork,
        "lab0" => BridgeUse::HostDevice,
        _ => BridgeUse::Free,
    };
    for (given, assigned) in [
        ("br%d", "br1"),
        ("lab%d", "lab1"),
        ("x%dy", "x0y"),
        // More than one '%': libvirt's own template instead.
        ("a%d%d", "virbr1"),
        ("br%%d", "virbr1"),
        // No %d: kept, even when a host device of that name exists.
        ("lab0", "lab0"),
        ("br%x", "br%x"),
    ] {
        let def = define(&with_bridge(given), &used).unwrap();
        assert_eq!(def.bridge_name(), Some(assigned), "{given}");
    }

    let err = define(&with_bridge("br0"), &used).unwrap_err();
    assert_eq!(err.message(), "internal error: bridge name 'br0' already in use.");
    assert_eq!((err.code(), err.domain()), (1, 19));

    let taken = |name: &str| {
        if name.starts_with("virbr") {
            BridgeUse::HostDevice
        } else {
            BridgeUse::Free
        }
    };
    let err = define("<network><name>t</name></network>", &taken).unwrap_err();
    assert_eq!(
        err.message(),
        "internal error: Bridge generation exceeded max id 256"
    );
    assert_eq!((err.code(), err.domain()), (1, 19));
    let last_free = |name: &str| {
        if name == "virbr256" {
            BridgeUse::Free
        } else {
            BridgeUse::OtherNetwork
        }
    };
    let def = define("<network><name>t</name></network>", &last_free).unwrap();
    assert_eq!(def.bridge_name(), Some("virbr256"));
}

#[test]
fn routed_network_with_everything_around_it() {
    let xml = "<network ipv6='yes' trustGuestRxFilters='no'>
  <name>routed</name>
  <uuid>6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00002</uuid>
  <forward mode='route' dev='eth1'/>
  <bridge name='virbr9' stp='off' delay='2' zone='trusted'/>
  <mtu size='9000'/>
  <mac address='52:54:00:AB:CD:EF'/>
  <domain name='example.com' localOnly='yes'/>
  <ip address='192.168.50.1' netmask='255.255.255.0' localPtr='yes'>
    <tftp root='/srv/tftp'/>
    <dhcp>
      <range start='192.168.50.100' end='192.168.50.199'/>
    </dhcp>
  </ip>
</network>";
    assert_eq!(
        defined_xml(xml),
        "<network ipv6='yes' trustGuestRxFilters='no'>
  <name>routed</name>
  <uuid>6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00002</uuid>
  <forward dev='eth1' mode='route'>
    <interface dev='eth1'/>
  </forward>
  <bridge name='virbr9' zone='trusted' stp='off' delay='2'/>
  <mtu size='9000'/>
  <mac address='52:54:00:ab:cd:ef'/>
  <domain name='example.com' localOnly='yes'/>
  <ip address='192.168.50.1' netmask='255.255.255.0' localPtr='yes'>
    <tftp root='/srv/tftp'/>
    <dhcp>
      <range start='192.168.50.100' end='192.168.50.199'/>
    </dhcp>
  </ip>
</network>
"
    );
}

#[test]
fn open_network() {
    let xml = "<network><name>open</name><forward mode='open'/>\
               <ip address='172.16.0.1' prefix='16'/></network>";
    assert_eq!(
        defined_xml(xml),
        format!(
            "<network>
  <name>open</name>
  <uuid>{COUNTER_UUID}</uuid>
  <forward mode='open'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='{COUNTER_MAC}'/>
  <ip address='172.16.0.1' prefix='16'>
  </ip>
</network>
"
        )
    );
}

#[test]
fn host_bridge_network_gets_no_defaults() {
    let xml = "<network><name>host-bridge</name><forward mode='bridge'/><bridge name='br0'/></network>";
    let def = define(xml, &free).unwrap();
    assert!(!def.needs_bridge());
    assert_eq!(def.bridge_name(), Some("br0"));
    assert_eq!(def.mac, None);
    assert_eq!(
        defined_xml(xml),
        format!(
            "<network>
  <name>host-bridge</name>
  <uuid>{COUNTER_UUID}</uuid>
  <forward mode='bridge'/>
  <bridge name='br0'/>
</network>
"
        )
    );
}

#[test]
fn macvtap_and_sriov_modes() {
    let bridge_pool = "<network><name>m</name><forward mode='bridge'>\
        <interface dev='eth1'/><interface dev='eth2'/></forward></network>";
    let vepa = "<network><name>m</name><forward mode='vepa' dev='eth1'>\
        <interface dev='eth1'/><interface dev='eth2'/></forward></network>";
    let passthrough =
        "<network><name>m</name><forward mode='passthrough'><pf dev='eth0'/></forward></network>";
    let hostdev = "<network><name>m</name><forward mode='hostdev' managed='YES'>\
        <driver name='vfio'/><pf dev='eth0'/></forward></network>";
    let private = "<network><name>m</name><forward mode='private' dev='eth3'/></network>";
    let ovs_like = "<network><name>m</name><forward mode='bridge'/><bridge name='br0' macTableManager='libvirt'/></network>";
    let head = format!("<network>\n  <name>m</name>\n  <uuid>{COUNTER_UUID}</uuid>\n");
    for (xml, forward) in [
        (
            bridge_pool,
            "  <forward dev='eth1' mode='bridge'>\n    <interface dev='eth1'/>\n    <interface dev='eth2'/>\n  </forward>\n",
        ),
        (
            vepa,
            "  <forward dev='eth1' mode='vepa'>\n    <interface dev='eth1'/>\n    <interface dev='eth2'/>\n  </forward>\n",
        ),
        (
            passthrough,
            "  <forward mode='passthrough'>\n    <pf dev='eth0'/>\n  </forward>\n",
        ),
        (
            hostdev,
            "  <forward mode='hostdev' managed='yes'>\n    <driver name='vfio'/>\n    <pf dev='eth0'/>\n  </forward>\n",
        ),
        (
            private,
            "  <forward dev='eth3' mode='private'>\n    <interface dev='eth3'/>\n  </forward>\n",
        ),
        (
            ovs_like,
            "  <forward mode='bridge'/>\n  <bridge name='br0' macTableManager='libvirt'/>\n",
        ),
    ] {
        assert_eq!(defined_xml(xml), format!("{head}{forward}</network>\n"), "{xml}");
    }
    let hostdev_unmanaged = hostdev.replace(" managed='YES'", "");
    assert!(defined_xml(&hostdev_unmanaged).contains("<forward mode='hostdev' managed='no'>"));

    // The live XML of a network with a PF lists the interfaces too.
    let mut def = define(passthrough, &free).unwrap();
    assert_eq!(def.forward.dev(), None);
    def.forward.interfaces = vec!["eth0v0".into()];
    assert!(!def.to_xml().contains("eth0v0"));
    assert!(def.to_xml_live(1).contains(
        "<forward mode='passthrough'>\n    <pf dev='eth0'/>\n    <interface dev='eth0v0'/>\n  </forward>"
    ));
}

#[test]
fn nat_addresses_ports_and_ipv6() {
    let xml = "<network><name>nat</name>
  <forward mode='nat' dev='eth0'>
    <nat ipv6='yes'><address start='203.0.113.10' end='203.0.113.20'/><port start='1024' end='65535'/></nat>
    <interface dev='eth0'/>
  </forward>
  <ip address='192.168.10.1' prefix='24'/>
  <ip family='ipv6' address='fd00:10::1' prefix='64'/>
</network>";
    assert_eq!(
        defined_xml(xml),
        format!(
            "<network>
  <name>nat</name>
  <uuid>{COUNTER_UUID}</uuid>
  <forward dev='eth0' mode='nat'>
    <nat ipv6='yes'>
      <address start='203.0.113.10' end='203.0.113.20'/>
      <port start='1024' end='65535'/>
    </nat>
    <interface dev='eth0'/>
  </forward>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='{COUNTER_MAC}'/>
  <ip address='192.168.10.1' prefix='24'>
  </ip>
  <ip family='ipv6' address='fd00:10::1' prefix='64'>
  </ip>
</network>
"
        )
    );
    let only_ipv6 = "<network><name>nat</name><forward><nat ipv6='no'/></forward>\
                     <ip address='192.168.10.1'/></network>";
    assert!(defined_xml(only_ipv6).contains("  <forward mode='nat'>\n    <nat ipv6='no'/>\n  </forward>\n"));
    // An empty <nat> (or a 0-0 port range) is not kept.
    let empty = "<network><name>nat</name><forward mode='nat'><nat><port start='0' end='0'/></nat></forward>\
                 <ip address='192.168.10.1'/></network>";
    assert!(defined_xml(empty).contains("  <forward mode='nat'/>\n"));
}

#[test]
fn ipv6_with_prefix_and_dhcp_hosts() {
    let xml = "<network>
  <name>dual</name>
  <forward mode='nat'/>
  <ip family='ipv4' address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.100' end='192.168.122.200'/>
      <host mac='00:16:3E:77:E2:ED' name='a.example.com' ip='192.168.122.10'/>
      <host name='2nd' ip='192.168.122.11'/>
      <host mac='00:16:3e:3e:a9:1a' ip='192.168.122.12'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='2001:DB8:ac10:fd01:0:0:0:1' prefix='64'>
    <dhcp>
      <range start='2001:db8:ac10:fd01::1:10' end='2001:db8:ac10:fd01::1:ff'/>
      <host id='0:3:0:1:0:16:3e:11:22:33' name='peter.xyz' ip='2001:db8:ac10:fd01::1:22'/>
      <host id='0:4:7e:7d:f0:7d' ip='2001:db8:ac10:fd01::1:20'/>
      <host name='paul' ip='2001:db8:ac10:fd01::1:21'/>
    </dhcp>
  </ip>
</network>";
    let out = defined_xml(xml);
    assert_eq!(
        out,
        format!(
            "<network>
  <name>dual</name>
  <uuid>{COUNTER_UUID}</uuid>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='{COUNTER_MAC}'/>
  <ip family='ipv4' address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.100' end='192.168.122.200'/>
      <host mac='00:16:3E:77:E2:ED' name='a.example.com' ip='192.168.122.10'/>
      <host name='2nd' ip='192.168.122.11'/>
      <host mac='00:16:3e:3e:a9:1a' ip='192.168.122.12'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='2001:db8:ac10:fd01::1' prefix='64'>
    <dhcp>
      <range start='2001:db8:ac10:fd01::1:10' end='2001:db8:ac10:fd01::1:ff'/>
      <host id='0:3:0:1:0:16:3e:11:22:33' name='peter.xyz' ip='2001:db8:ac10:fd01::1:22'/>
      <host id='0:4:7e:7d:f0:7d' ip='2001:db8:ac10:fd01::1:20'/>
      <host name='paul' ip='2001:db8:ac10:fd01::1:21'/>
    </dhcp>
  </ip>
</network>
"
        )
    );
    let def = parse(&out).unwrap();
    let host = &def.ips[0].dhcp.hosts[0];
    assert_eq!(
        host.mac_addr().map(|m| m.to_string()).as_deref(),
        Some("00:16:3e:77:e2:ed")
    );
    assert_eq!(def.ips[1].prefix(), Some(64));
    assert_eq!(def.ips[1].mask, IpMask::Prefix(64));
}

#[test]
fn addresses_masks_and_prefixes_as_libvirt_reads_them() {
    let xml = "<network><name>a</name>
  <ip address='10.1' netmask='255.0.0.0'><dhcp><range start='10.0.1.1' end='10.0.2.1'/></dhcp></ip>
  <ip family='ipv4' address='172.16.0.1' prefix='0'/>
  <ip address='192.168.1.1'/>
  <ip family='ipv6' address='fd00::1'><dhcp><range start='fd00::100' end='fd00::1ff'/></dhcp></ip>
</network>";
    let def = define(xml, &free).unwrap();
    let prefixes: Vec<_> = def.ips.iter().map(IpDef::prefix).collect();
    assert_eq!(prefixes, [Some(8), Some(16), Some(24), Some(64)]);
    let out = def.to_xml();
    assert!(
        out.contains("  <ip address='10.0.0.1' netmask='255.0.0.0'>\n"),
        "{out}"
    );
    assert!(
        out.contains("  <ip family='ipv4' address='172.16.0.1'>\n  </ip>\n"),
        "{out}"
    );
    assert!(out.contains("  <ip address='192.168.1.1'>\n  </ip>\n"), "{out}");
    assert!(out.contains("  <ip family='ipv6' address='fd00::1'>\n"), "{out}");
    assert_eq!(parse(&out).unwrap(), def);

    let odd = IpDef {
        family: None,
        address: "224.0.0.1".parse().unwrap(),
        mask: IpMask::Implied,
        local_ptr: None,
        tftp_root: None,
        dhcp: Dhcp::default(),
    };
    assert_eq!(odd.prefix(), None);
    let holes = IpDef {
        mask: IpMask::Netmask("255.0.255.0".parse().unwrap()),
        ..odd.clone()
    };
    assert_eq!(holes.prefix(), None);
    let any = IpDef {
        address: "0.0.0.0".parse().unwrap(),
        ..odd
    };
    assert_eq!(any.prefix(), Some(0));
}

#[test]
fn xpath_style_empty_values_and_unknown_elements() {
    let xml = "<network trustGuestRxFilters='yes'>
  <name>e</name>
  <uuid></uuid>
  <title>ignored</title>
  <forward mode=''/>
  <bridge name='' stp='' delay=''/>
  <mtu size=''/>
  <mac address=''/>
  <domain localOnly='no'/>
  <dns><host ip='192.168.1.2'><hostname>h</hostname></host></dns>
  <portgroup name='pg'/>
  <ip address='192.168.1.1' prefix='24'><dhcp/><lease/></ip>
</network>";
    assert_eq!(
        defined_xml(xml),
        format!(
            "<network trustGuestRxFilters='yes'>
  <name>e</name>
  <uuid>{COUNTER_UUID}</uuid>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='{COUNTER_MAC}'/>
  <ip address='192.168.1.1' prefix='24'>
  </ip>
</network>
"
        )
    );
    // mode='none' is an isolated network; its forward dev is not kept.
    let none = "<network><name>e</name><forward mode='none' dev='eth0'/></network>";
    let def = define(none, &free).unwrap();
    assert_eq!(def.forward.mode, ForwardMode::None);
    assert!(!def.to_xml().contains("forward"));
    // An empty domain name is kept, as libvirt does.
    let empty_domain = "<network><name>e</name><domain name=''/></network>";
    assert!(defined_xml(empty_domain).contains("  <domain name=''/>\n"));
}

#[test]
fn names_and_values_are_escaped() {
    let xml = "<network><name>a&amp;b&apos;c&quot;d&lt;</name>\
               <bridge name='br&amp;0'/><domain name='x&apos;y'/></network>";
    let def = define(xml, &free).unwrap();
    assert_eq!(def.name, "a&b'c\"d<");
    let out = def.to_xml();
    assert!(
        out.contains("  <name>a&amp;b&apos;c&quot;d&lt;</name>\n"),
        "{out}"
    );
    assert!(
        out.contains("  <bridge name='br&amp;0' stp='on' delay='0'/>\n"),
        "{out}"
    );
    assert!(out.contains("  <domain name='x&apos;y'/>\n"), "{out}");
    assert_eq!(parse(&out).unwrap(), def);
}

#[test]
fn delay_prints_as_libvirt_long() {
    let xml = "<network><name>d</name><bridge delay='18446744073709551615'/></network>";
    let def = define(xml, &free).unwrap();
    assert_eq!(def.bridge.delay, u64::MAX);
    assert!(def.to_xml().contains(" stp='on' delay='-1'/>"));
}

#[test]
fn validate_name_refuses_what_libvirt_refuses() {
    assert_eq!(validate_name("default"), Ok(()));
    assert_eq!(validate_name("with space.and-dash_ü"), Ok(()));
    assert_eq!(validate_name(""), Err(NetworkXmlError::MissingName));
    let e = validate_name("a/b").unwrap_err();
    assert_eq!(
        (e.message(), e.code(), e.domain()),
        ("invalid char in name: /".to_owned(), 35, 5)
    );
    let e = validate_name("a\nb").unwrap_err();
    assert_eq!(e.message(), "invalid char in name: \n");
}
