//! Every refusal: libvirt's error code, error domain and exact message.

use super::tests::{define, free, parse};
use super::*;

/// A network named `n` with `body` inside.
fn net(body: &str) -> String {
    format!("<network>\n  <name>n</name>\n{body}\n</network>")
}

/// A network named `n` with one `<ip>` of `ip_attrs` holding `inner`.
fn with_ip(ip_attrs: &str, inner: &str) -> String {
    net(&format!("  <ip {ip_attrs}>{inner}</ip>"))
}

/// An IPv4 network with `dhcp` inside its `<dhcp>`.
fn dhcp4(dhcp: &str) -> String {
    with_ip(
        "address='192.168.122.1' prefix='24'",
        &format!("<dhcp>{dhcp}</dhcp>"),
    )
}

/// An IPv6 network with `dhcp` inside its `<dhcp>`.
fn dhcp6(dhcp: &str) -> String {
    with_ip(
        "family='ipv6' address='fd00::1' prefix='64'",
        &format!("<dhcp>{dhcp}</dhcp>"),
    )
}

const IP: &str = "<ip address='10.0.0.1' prefix='24'/>";

#[track_caller]
fn refused(xml: &str, code: i32, domain: i32, message: &str) {
    let err = parse(xml).expect_err(xml);
    assert_eq!(err.message(), message, "{xml}");
    assert_eq!((err.code(), err.domain()), (code, domain), "{message}");
}

#[track_caller]
fn refused_on_define(xml: &str, code: i32, domain: i32, message: &str) {
    parse(xml).expect(xml);
    let err = define(xml, &free).expect_err(xml);
    assert_eq!(err.message(), message, "{xml}");
    assert_eq!((err.code(), err.domain()), (code, domain), "{message}");
}

#[test]
fn documents_and_names() {
    let err = parse("<network><name>n</name>").unwrap_err();
    assert!(matches!(err, NetworkXmlError::Syntax(_)), "{err:?}");
    assert_eq!((err.code(), err.domain()), (35, 19));
    assert!(err.message().starts_with("XML error: "), "{err}");
    refused(
        "<!DOCTYPE network [<!ENTITY x SYSTEM 'file:///etc/shadow'>]><network><name>&x;</name></network>",
        35,
        19,
        "XML error: entity declarations (<!ENTITY>) are not allowed in network XML (line 1, column 1)",
    );
    refused(
        "<!DOCTYPE network><network><name>n</name></network>",
        35,
        19,
        "XML error: DOCTYPE declarations are not allowed in network XML (line 1, column 1)",
    );
    refused(
        "<domain><name>n</name></domain>",
        27,
        5,
        "XML error: expecting root element of 'network', not 'domain'",
    );
    refused("<network/>", 21, 19, "missing name information");
    refused(
        "<network><name></name></network>",
        21,
        19,
        "missing name information",
    );
    refused(
        "<network><name>a/b</name></network>",
        35,
        5,
        "invalid char in name: /",
    );
    refused_on_define(
        "<network><name>a&#10;b</name></network>",
        35,
        5,
        "invalid char in name: \n",
    );
    refused(
        &net("<uuid>not-a-uuid</uuid>"),
        1,
        19,
        "internal error: malformed uuid element",
    );
    // libvirt checks the name before the UUID.
    refused(
        "<network><name>a/b</name><uuid>x</uuid></network>",
        35,
        5,
        "invalid char in name: /",
    );
}

#[test]
fn network_level_attributes_and_elements() {
    refused(
        "<network ipv6='on'><name>n</name></network>",
        27,
        19,
        "XML error: Invalid ipv6 setting 'on' in network 'n'",
    );
    refused(
        "<network trustGuestRxFilters='maybe'><name>n</name></network>",
        27,
        5,
        "XML error: Invalid value for attribute 'trustGuestRxFilters' in element 'network': 'maybe'.",
    );
    refused(
        &net("<domain name='d' localOnly='sometimes'/>"),
        27,
        5,
        "XML error: Invalid value for attribute 'localOnly' in element 'domain': 'sometimes'.",
    );
    refused(
        &net("<bridge delay='-1'/>"),
        27,
        19,
        "XML error: Invalid delay value in network 'n'",
    );
    refused(
        &net("<bridge delay='5s'/>"),
        27,
        19,
        "XML error: Invalid delay value in network 'n'",
    );
    refused(
        &net("<bridge macTableManager='default'/>"),
        27,
        19,
        "XML error: Invalid macTableManager setting 'default' in network 'n'",
    );
    refused(
        &net("<mac address='52:54:00:zz:00:01'/>"),
        27,
        19,
        "XML error: Invalid bridge mac address '52:54:00:zz:00:01' in network 'n'",
    );
    refused(
        &net("<mac address='01:00:5e:00:00:01'/>"),
        27,
        19,
        "XML error: Invalid multicast bridge mac address '01:00:5e:00:00:01' in network 'n'",
    );
    refused(
        &net("<mtu size='big'/>"),
        27,
        19,
        "XML error: Invalid mtu size 'big' in network 'n'",
    );
}

#[test]
fn ip_elements() {
    refused(
        &with_ip("netmask='255.255.255.0'", ""),
        27,
        19,
        "XML error: Missing required address attribute in network 'n'",
    );
    refused(
        &with_ip("address='300.1.1.1'", ""),
        27,
        19,
        "XML error: Invalid address '300.1.1.1' in network 'n'",
    );
    refused(
        &with_ip("address='10.0.0.1' netmask='255.255.255.x'", ""),
        27,
        19,
        "XML error: Invalid netmask '255.255.255.x' in network 'n'",
    );
    refused(
        &with_ip("address='10.0.0.1' prefix='-8'", ""),
        27,
        5,
        "XML error: Invalid value for attribute 'prefix' in element 'ip': '-8'. Expected non-negative integer value",
    );
    refused(
        &with_ip("address='10.0.0.1' localPtr='1'", ""),
        27,
        5,
        "XML error: Invalid value for attribute 'localPtr' in element 'ip': '1'.",
    );
    refused(
        &with_ip("address='10.0.0.1' netmask='255.255.255.0' prefix='24'", ""),
        67,
        19,
        "unsupported configuration: Network 'n' IP address cannot have both a prefix and a netmask",
    );
    refused(
        &with_ip("address='10.0.0.1' prefix='33'", ""),
        67,
        19,
        "unsupported configuration: Invalid IPv4 prefix '33' in network 'n'",
    );
    refused(
        &with_ip("address='fd00::1' prefix='64'", ""),
        67,
        19,
        "unsupported configuration: no family specified for non-IPv4 address 'fd00::1' in network 'n'",
    );
    refused(
        &with_ip("family='ipv4' address='fd00::1'", ""),
        67,
        19,
        "unsupported configuration: ipv4 family specified for non-IPv4 address 'fd00::1' in network 'n'",
    );
    refused(
        &with_ip("address='10.0.0.1' netmask='ffff::'", ""),
        67,
        19,
        "unsupported configuration: Invalid netmask 'ffff::' for address '10.0.0.1' in network 'n' (both must be IPv4)",
    );
    refused(
        &with_ip("family='ipv6' address='10.0.0.1'", ""),
        67,
        19,
        "unsupported configuration: Family 'ipv6' specified for non-IPv6 address '10.0.0.1' in network 'n'",
    );
    refused(
        &with_ip("family='ipv6' address='fd00::1' netmask='ffff::'", ""),
        67,
        19,
        "unsupported configuration: netmask not allowed for IPv6 address 'fd00::1' in network 'n'",
    );
    refused(
        &with_ip("family='ipv6' address='fd00::1' prefix='129'", ""),
        67,
        19,
        "unsupported configuration: Invalid IPv6 prefix '129' in network 'n'",
    );
    refused(
        &with_ip("family='ipx' address='10.0.0.1'", ""),
        27,
        19,
        "XML error: Unrecognized family 'ipx' in network 'n'",
    );
    refused(
        &with_ip("family='ipv6' address='fd00::1'", "<tftp root='/srv'/>"),
        67,
        19,
        "unsupported configuration: Unsupported <tftp> element in an IPv6 element in network 'n'",
    );
}

#[test]
fn dhcp_ranges() {
    refused(
        &with_ip(
            "address='192.168.122.1' netmask='255.255.255.0'",
            "<dhcp><range start='10.0.0.2' end='10.0.0.254'/></dhcp>",
        ),
        1,
        0,
        "internal error: range 10.0.0.2 - 10.0.0.254 is not entirely within network 192.168.122.1/24",
    );
    refused(
        &dhcp4("<range start='192.168.122.0' end='192.168.122.9'/>"),
        1,
        0,
        "internal error: start of range 192.168.122.0 - 192.168.122.9 in network 192.168.122.1/24 is the network address",
    );
    refused(
        &dhcp4("<range start='192.168.122.2' end='192.168.122.255'/>"),
        1,
        0,
        "internal error: end of range 192.168.122.2 - 192.168.122.255 in network 192.168.122.1/24 is the broadcast address",
    );
    refused(
        &dhcp4("<range start='192.168.122.20' end='192.168.122.10'/>"),
        1,
        0,
        "internal error: range 192.168.122.20 - 192.168.122.10 is reversed ",
    );
    refused(
        &with_ip(
            "address='10.0.0.1'",
            "<dhcp><range start='10.0.0.2' end='10.1.0.2'/></dhcp>",
        ),
        1,
        0,
        "internal error: range 10.0.0.2 - 10.1.0.2 is too large (> 65535)",
    );
    refused(
        &dhcp4("<range start='fd00::2' end='fd00::3'/>"),
        1,
        0,
        "internal error: mismatch of address family in range fd00::2 - fd00::3 for network 192.168.122.1",
    );
    refused(
        &with_ip(
            "address='10.0.0.1' netmask='255.0.255.0'",
            "<dhcp><range start='10.0.0.2' end='10.0.0.3'/></dhcp>",
        ),
        1,
        0,
        "internal error: bad prefix -1 for network 10.0.0.1 when checking range 10.0.0.2 - 10.0.0.3",
    );
    refused(
        &dhcp4("<range end='192.168.122.9'/>"),
        27,
        19,
        "XML error: Missing 'start' attribute in dhcp range for network 'n'",
    );
    refused(
        &dhcp4("<range start='192.168.122.2'/>"),
        27,
        19,
        "XML error: Missing 'end' attribute in dhcp range for network 'n'",
    );
    refused(
        &dhcp4("<range start='192.168.122.x' end='192.168.122.9'/>"),
        38,
        0,
        "Cannot parse socket address '192.168.122.x': Name or service not known",
    );
    refused(
        &dhcp6("<range start='fd00::200' end='fd00::100'/>"),
        1,
        0,
        "internal error: range fd00::200 - fd00::100 start larger than end",
    );
}

#[test]
fn dhcp_hosts() {
    let x = |m: &str| format!("XML error: {m}");
    refused(
        &dhcp6("<host mac='52:54:00:00:00:01' name='h' ip='fd00::5'/>"),
        27,
        19,
        &x("Invalid to specify MAC address '52:54:00:00:00:01' in network 'n' IPv6 static host definition"),
    );
    refused(
        &dhcp4("<host mac='52:54:00:00:00' ip='192.168.122.5'/>"),
        27,
        19,
        &x("Cannot parse MAC address '52:54:00:00:00' in network 'n'"),
    );
    refused(
        &dhcp4("<host mac='01:00:00:00:00:01' ip='192.168.122.5'/>"),
        27,
        19,
        &x("expected unicast mac address, found multicast '01:00:00:00:00:01' in network 'n'"),
    );
    refused(
        &dhcp6("<host id='0:1:xyz' ip='fd00::5'/>"),
        27,
        19,
        &x("Invalid character 'x' in id '0:1:xyz' of network 'n'"),
    );
    refused(
        &dhcp4("<host name='-bad' ip='192.168.122.5'/>"),
        27,
        19,
        &x("Cannot use host name '-bad' in network 'n'"),
    );
    refused(
        &dhcp4("<host name='h' ip='nope'/>"),
        27,
        19,
        &x("Invalid IP address in static host definition for network 'n'"),
    );
    refused(
        &dhcp6("<host ip='fd00::5'/>"),
        27,
        19,
        &x("Static host definition in IPv6 network 'n' must have id or name attribute"),
    );
    refused(
        &dhcp4("<host ip='192.168.122.5'/>"),
        27,
        19,
        &x("Static host definition in IPv4 network 'n' must have mac or name attribute"),
    );
    refused(
        &dhcp4("<host name='h'/>"),
        27,
        19,
        &x("Missing IP address in static host definition for network 'n'"),
    );
}

#[test]
fn forward_elements() {
    let x = |m: &str| format!("XML error: {m}");
    refused(
        &net(&format!("<forward mode='nated'/>{IP}")),
        67,
        19,
        "unsupported configuration: unknown forwarding type 'nated'",
    );
    refused(
        &net(&format!(
            "<forward mode='hostdev'><driver name='default'/></forward>{IP}"
        )),
        67,
        19,
        "unsupported configuration: Unknown forward <driver name='default'/> in network n",
    );
    refused(
        &net(&format!("<forward><nat/><nat/></forward>{IP}")),
        27,
        19,
        &x("Only one <nat> element is allowed in <forward> of network n"),
    );
    refused(
        &net(&format!("<forward mode='route'><nat/></forward>{IP}")),
        27,
        19,
        &x("The <nat> element can only be used when <forward> 'mode' is 'nat' in network n"),
    );
    refused(
        &net(&format!("<forward dev='eth0'><pf dev='eth1'/></forward>{IP}")),
        27,
        19,
        &x(
            "the <forward> 'dev' attribute cannot be used when <address> or <pf> sub-elements are present in network %s",
        ),
    );
    refused(
        &net("<forward mode='bridge'><interface/></forward>"),
        27,
        19,
        &x("Missing required dev attribute in <forward> <interface> element of network n"),
    );
    refused(
        &net("<forward mode='bridge' dev='eth0'><interface dev='eth1'/></forward>"),
        27,
        19,
        &x("<forward dev='eth0'> must match first <interface dev='eth1'/> in network n"),
    );
    refused(
        &net("<forward mode='bridge'><interface dev='eth1'/><interface dev='eth1'/></forward>"),
        27,
        19,
        &x("interface 'eth1' can only be listed once in network n"),
    );
    refused(
        &net("<forward mode='passthrough'><pf dev='eth0'/><pf dev='eth1'/></forward>"),
        27,
        19,
        &x("Only one <pf> element is allowed in <forward> of network n"),
    );
    refused(
        &net("<forward mode='passthrough'><pf/></forward>"),
        27,
        19,
        &x("Missing required dev attribute in <pf> element of network 'n'"),
    );
    refused(
        &net(
            "<forward mode='hostdev'><address type='pci' domain='0' bus='4' slot='0' function='1'/></forward>",
        ),
        67,
        19,
        "unsupported configuration: <address> elements in <forward> of network 'n' are not supported by modvirt",
    );
}

#[test]
fn nat_addresses_and_ports() {
    let x = |m: &str| format!("XML error: {m}");
    let nat = |inner: &str| net(&format!("<forward><nat>{inner}</nat></forward>{IP}"));
    refused(
        &nat("<address start='1.2.3.4' end='1.2.3.5'/><address start='1.2.3.6' end='1.2.3.7'/>"),
        27,
        19,
        &x("Only one <address> element is allowed in <nat> in <forward> in network n"),
    );
    refused(
        &nat("<address end='1.2.3.5'/>"),
        27,
        19,
        &x("missing 'start' attribute in <address> element in <nat> in <forward> in network n"),
    );
    refused(
        &nat("<address start='1.2.3.4'/>"),
        27,
        19,
        &x("missing 'end' attribute in <address> element in <nat> in <forward> in network n"),
    );
    refused(
        &nat("<address start='fd00::1' end='1.2.3.5'/>"),
        27,
        19,
        &x("Bad ipv4 start address 'fd00::1' in <nat> in <forward> in network 'n'"),
    );
    refused(
        &nat("<address start='1.2.3.4' end='x'/>"),
        27,
        19,
        &x("Bad ipv4 end address 'x' in <nat> in <forward> in network 'n'"),
    );
    refused(
        &nat("<address start='1.2.3.9' end='1.2.3.5'/>"),
        1,
        0,
        "internal error: range 1.2.3.9 - 1.2.3.5 is reversed ",
    );
    refused(
        &nat("<port start='1024' end='65535'/><port start='1' end='2'/>"),
        27,
        19,
        &x("Only one <port> element is allowed in <nat> in <forward> in network n"),
    );
    for port in [
        "<port end='2000'/>",
        "<port start='65536' end='65536'/>",
        "<port start='x' end='1'/>",
    ] {
        refused(
            &nat(port),
            35,
            19,
            "Missing or invalid 'start' attribute in <port> in <nat> in <forward> in network n",
        );
    }
    for port in [
        "<port start='2000'/>",
        "<port start='2000' end='1999'/>",
        "<port start='1' end='-1'/>",
    ] {
        refused(
            &nat(port),
            35,
            19,
            "Missing or invalid 'end' attribute in <port> in <nat> in <forward> in network n",
        );
    }
    refused(
        &nat("<address start='1.2.3.4' end='1.2.3.5'/>").replace("<nat>", "<nat ipv6='on'>"),
        27,
        5,
        "XML error: Invalid value for attribute 'ipv6' in element 'nat': 'on'.",
    );
}

#[test]
fn what_each_forward_mode_allows() {
    let x = |m: &str| format!("XML error: {m}");
    refused(
        &net("<forward/>"),
        27,
        19,
        &x("nat forwarding requested, but no IP address provided for network 'n'"),
    );
    refused(
        &net("<forward mode='route'/>"),
        27,
        19,
        &x("route forwarding requested, but no IP address provided for network 'n'"),
    );
    refused(
        &net(&format!(
            "<forward mode='route'><interface dev='a'/><interface dev='b'/></forward>{IP}"
        )),
        27,
        19,
        &x("multiple forwarding interfaces specified for network 'n', only one is supported"),
    );
    refused(
        &net(&format!("<forward mode='open' dev='eth0'/>{IP}")),
        27,
        19,
        &x("forward dev not allowed for network 'n' with forward mode='open'"),
    );
    refused(
        &net("<forward mode='passthrough' dev='eth0'/><bridge name='br0'/>"),
        27,
        19,
        &x("bridge name not allowed in passthrough mode (network 'n')"),
    );
    refused(
        &net("<forward mode='vepa' dev='eth0'/><bridge zone='z'/>"),
        27,
        19,
        &x("bridge zone not allowed in vepa mode (network 'n')"),
    );
    refused(
        &net("<forward mode='private' dev='eth0'/><bridge macTableManager='kernel'/>"),
        27,
        19,
        &x("bridge macTableManager setting not allowed in private mode (network 'n')"),
    );
    for bridge in [
        "<bridge name='br0' stp='on'/>",
        "<bridge name='br0' delay='1'/>",
        "<bridge zone='z'/>",
    ] {
        refused(
            &net(&format!("<forward mode='bridge'/>{bridge}")),
            27,
            19,
            &x(
                "bridge delay/stp/zone options only allowed in route, nat, and isolated mode, not in bridge (network 'n')",
            ),
        );
    }
    refused(
        &net("<forward mode='bridge' dev='eth0'/><bridge name='br0'/>"),
        27,
        19,
        &x(
            "A network with forward mode='bridge' can specify a bridge name or a forward dev, but not both (network 'n')",
        ),
    );
    refused(
        &net("<forward mode='bridge'/><bridge name='br0'/><mtu size='9000'/>"),
        27,
        19,
        &x("mtu size only allowed in open, route, nat, and isolated mode, not in bridge (network 'n')"),
    );
}

#[test]
fn refused_by_the_driver_on_define() {
    let u = |m: &str| format!("unsupported configuration: {m}");
    refused_on_define(
        &net("<forward mode='bridge'/><bridge name='br0'/><mac address='52:54:00:00:00:01'/>"),
        67,
        19,
        &u("Unsupported <mac> element in network n with forward mode='bridge'"),
    );
    refused_on_define(
        &net(&format!("<forward mode='bridge'/><bridge name='br0'/>{IP}")),
        67,
        19,
        &u("Unsupported <ip> element in network n with forward mode='bridge'"),
    );
    refused_on_define(
        &net("<forward mode='passthrough' dev='eth0'/><domain name='example.com'/>"),
        67,
        19,
        &u("Unsupported <domain> element in network n with forward mode='passthrough'"),
    );
    refused_on_define(
        &net("<forward mode='hostdev'><interface dev='eth0'/></forward>"),
        67,
        19,
        &u(
            "hostdev network 'n' lists 'eth0' in the device pool, but hostdev networks require all devices to be listed by PCI address, not network device name",
        ),
    );
    let two = |a: &str, b: &str| net(&format!("{a}\n{b}"));
    let v4 = |net: &str| {
        format!("<ip address='{net}.1' prefix='24'><dhcp><host name='h' ip='{net}.9'/></dhcp></ip>")
    };
    let v6 = |net: &str| {
        format!("<ip family='ipv6' address='{net}::1'><dhcp><host name='h' ip='{net}::9'/></dhcp></ip>")
    };
    refused_on_define(
        &two(&v4("10.0.0"), &v4("10.0.1")),
        67,
        19,
        &u(
            "Multiple IPv4 dhcp sections found -- dhcp is supported only for a single IPv4 address on each network",
        ),
    );
    refused_on_define(
        &two(&v6("fd00"), &v6("fd01")),
        67,
        19,
        &u(
            "Multiple IPv6 dhcp sections found -- dhcp is supported only for a single IPv6 address on each network",
        ),
    );
    // One of each family is fine.
    define(&two(&v4("10.0.0"), &v6("fd00")), &free).unwrap();
}
