#![allow(clippy::unwrap_used)] // tests

use super::*;

fn rng() -> impl FnMut() -> u64 {
    let mut n = 0u64;
    move || {
        n += 0x0101_0101_0101_0101;
        n
    }
}

fn parse(xml: &str) -> Result<NwFilterDef, NwFilterXmlError> {
    NwFilterDef::parse(xml, &mut rng())
}

/// Parses, formats, and checks that the output parses back to the same.
fn dump(xml: &str) -> String {
    let def = parse(xml).unwrap();
    let out = def.to_xml();
    let again = parse(&out).unwrap();
    assert_eq!(again.to_xml(), out, "not stable");
    out
}

#[test]
fn mac_rules_as_libvirt_formats_them() {
    // libvirt's tests/nwfilterxml2xmlin/mac-test.xml and its output.
    let xml = "<filter name='testcase' chain='root'>
  <uuid>01a992d2-f8c8-7c27-f69b-ab0a9d377379</uuid>
  <rule action='accept' direction='in'>
     <mac protocolid='0x1234'/>
  </rule>
  <rule action='accept' direction='out'>
     <mac protocolid='arp'/>
  </rule>
  <rule action='accept' direction='out'>
     <mac protocolid='ipv4'/>
  </rule>
  <rule action='accept' direction='out'>
     <mac protocolid='1536' comment='out: ARP'/>
  </rule>
  <rule action='drop' direction='inout'>
     <mac srcmacaddr='1:2:3:4:5:6' srcmacmask='ff:ff:ff:ff:ff:ff'
          protocolid='0x8035' comment='inout: RARP'/>
  </rule>
</filter>";
    assert_eq!(
        dump(xml),
        "<filter name='testcase' chain='root'>
  <uuid>01a992d2-f8c8-7c27-f69b-ab0a9d377379</uuid>
  <rule action='accept' direction='in' priority='500'>
    <mac protocolid='0x1234'/>
  </rule>
  <rule action='accept' direction='out' priority='500'>
    <mac protocolid='arp'/>
  </rule>
  <rule action='accept' direction='out' priority='500'>
    <mac protocolid='ipv4'/>
  </rule>
  <rule action='accept' direction='out' priority='500'>
    <mac protocolid='1536' comment='out: ARP'/>
  </rule>
  <rule action='drop' direction='inout' priority='500'>
    <mac srcmacaddr='01:02:03:04:05:06' srcmacmask='ff:ff:ff:ff:ff:ff' protocolid='rarp' comment='inout: RARP'/>
  </rule>
</filter>
"
    );
}

#[test]
fn chains_priorities_refs_and_variables() {
    let xml = "<filter name='no-ip-spoofing' chain='ipv4-ip'>
  <uuid>fce8ae33-e69e-83bf-262e-30786c1f8072</uuid>
  <rule action='return' direction='out' priority='100'>
    <ip srcipaddr='0.0.0.0' protocol='udp' srcportstart='68' dstportstart='67'/>
  </rule>
  <rule action='return' direction='out'>
    <ip srcipaddr='$IP'/>
  </rule>
  <rule action='drop' direction='out' priority='1000'/>
  <filterref filter='allow-arp'>
    <parameter name='MAC' value='52:54:00:aa:bb:cc'/>
    <parameter name='IP' value='10.0.0.2'/>
    <parameter name='IP' value='10.0.0.1'/>
    <parameter name='BAD-NAME' value='x'/>
    <parameter name='EMPTY' value=''/>
    <parameter value='no name'/>
  </filterref>
  <filterref filter='clean-traffic'/>
  <unknown/>
</filter>";
    assert_eq!(
        dump(xml),
        "<filter name='no-ip-spoofing' chain='ipv4-ip' priority='-700'>
  <uuid>fce8ae33-e69e-83bf-262e-30786c1f8072</uuid>
  <rule action='return' direction='out' priority='100'>
    <ip srcipaddr='0.0.0.0' protocol='udp' srcportstart='68' dstportstart='67'/>
  </rule>
  <rule action='return' direction='out' priority='500'>
    <ip srcipaddr='$IP'/>
  </rule>
  <rule action='drop' direction='out' priority='1000'/>
  <filterref filter='allow-arp'>
    <parameter name='IP' value='10.0.0.2'/>
    <parameter name='IP' value='10.0.0.1'/>
    <parameter name='MAC' value='52:54:00:aa:bb:cc'/>
  </filterref>
  <filterref filter='clean-traffic'/>
</filter>
"
    );
    let def = parse(xml).unwrap();
    assert_eq!(
        def.references().collect::<Vec<_>>(),
        ["allow-arp", "clean-traffic"]
    );
    assert!(def.uuid_specified);
}

#[test]
fn defaults() {
    let def = parse("<filter name='f'/>").unwrap();
    assert_eq!((def.chain.as_str(), def.priority), ("root", 0));
    assert!(!def.uuid_specified);
    assert_eq!(def.uuid[6] >> 4, 4, "a version 4 UUID");
    assert_eq!(
        def.to_xml(),
        format!(
            "<filter name='f' chain='root'>\n  <uuid>{}</uuid>\n</filter>\n",
            def.uuid_string()
        )
    );
    // A priority without a chain is checked but not kept; with one it is.
    assert_eq!(parse("<filter name='f' priority='-300'/>").unwrap().priority, 0);
    assert_eq!(
        parse("<filter name='f' chain='mac' priority='-300'/>")
            .unwrap()
            .priority,
        -300
    );
    assert_eq!(parse("<filter name='f' chain='stp'/>").unwrap().priority, 0);
    // Rule priorities out of range or unreadable fall back to 500;
    // statematch='0' or 'FALSE' turns state matching off.
    let out = dump(
        "<filter name='f'><rule action='accept' direction='in' priority='1001' statematch='FALSE'/><rule action='reject' direction='inout' priority='x' statematch='0'><all/></rule></filter>",
    );
    assert!(
        out.contains("<rule action='accept' direction='in' priority='500' statematch='false'/>"),
        "{out}"
    );
    assert!(
        out.contains("<rule action='reject' direction='inout' priority='500' statematch='false'>\n    <all/>\n  </rule>"),
        "{out}"
    );
}

#[test]
fn match_no_splits_elements_as_libvirt() {
    let out = dump(
        "<filter name='f'><rule action='drop' direction='in'><tcp match='no' srcipaddr='10.1.2.3' srcipmask='255.255.255.0'/><tcp dstportstart='80' state='NEW,ESTABLISHED' flags='SYN/SYN,ACK'/><udp srcportstart='1'/></rule></filter>",
    );
    assert!(
        out.contains(
            "  <rule action='drop' direction='in' priority='500'>\n    <tcp match='no' srcipaddr='10.1.2.3' srcipmask='24'/>\n    <tcp state='NEW,ESTABLISHED' dstportstart='80' flags='SYN/SYN,ACK'/>\n  </rule>\n"
        ),
        "{out}"
    );
    // A mask and a code take their partner's match.
    let out = dump(
        "<filter name='f'><rule action='drop' direction='in'><icmp match='no' dstipaddr='1.2.3.4' type='8'/><icmp dstipmask='8' code='0' comment='c'/></rule></filter>",
    );
    assert!(
        out.contains(
            "    <icmp match='no' dstipaddr='1.2.3.4' dstipmask='8' type='8' code='0'/>\n    <icmp comment='c'/>\n"
        ),
        "{out}"
    );
    // A lone ipset gets 'src' flags; flags without a set go.
    let out = dump(
        "<filter name='f'><rule action='drop' direction='in'><tcp ipset='blocked'/></rule><rule action='drop' direction='in'><udp ipsetflags='dst'/></rule></filter>",
    );
    assert!(
        out.contains("    <tcp ipset='blocked' ipsetflags='src'/>\n"),
        "{out}"
    );
    assert!(out.contains("    <udp/>\n"), "{out}");
    // `all` keeps its ipset flags.
    let out = dump(
        "<filter name='f'><rule action='accept' direction='out'><all ipset='tck_test' ipsetflags='dst,src'/></rule></filter>",
    );
    assert!(
        out.contains("<all ipset='tck_test' ipsetflags='dst,src'/>"),
        "{out}"
    );
}

#[test]
fn every_protocol_round_trips() {
    let cases = [
        (
            "arp",
            "opcode='Reply' arpsrcipaddr='$IP' arpsrcipmask='32' gratuitous='true'",
        ),
        ("rarp", "hwtype='1' protocoltype='0x800'"),
        ("vlan", "vlanid='0x123' encap-protocol='ipv6'"),
        (
            "stp",
            "type='0x80' root-cost='10' root-cost-hi='20' port='1' port-hi='9'",
        ),
        (
            "ipv6",
            "srcipaddr='fe80::1' srcipmask='64' protocol='icmpv6' type='1' typeend='4'",
        ),
        ("udp", "connlimit-above='10' dstportstart='53'"),
        ("udplite", "srcipfrom='10.0.0.1' srcipto='10.0.0.9'"),
        ("esp", "dscp='0x10'"),
        ("ah", "comment='x &amp; &lt;y&gt;'"),
        ("sctp", "srcportstart='1' srcportend='1024'"),
        ("igmp", "srcmacaddr='$MAC'"),
        ("tcp-ipv6", "dstipaddr='::1' dstipmask='16' option='2'"),
        ("udp-ipv6", "srcipaddr='2001:db8::2'"),
        ("udplite-ipv6", "dstipto='::2'"),
        ("esp-ipv6", "state='RELATED'"),
        ("ah-ipv6", "dscp='1'"),
        ("sctp-ipv6", "dstportend='9'"),
        ("icmpv6", "type='133' code='0'"),
        ("all-ipv6", "srcipaddr='$IPV6[@1]'"),
    ];
    for (proto, attrs) in cases {
        let xml = format!(
            "<filter name='f'><uuid>01a992d2-f8c8-7c27-f69b-ab0a9d377379</uuid><rule action='accept' direction='inout'><{proto} {attrs}/></rule></filter>"
        );
        let out = dump(&xml);
        let line = format!("    <{proto} {attrs}/>\n");
        assert!(out.contains(&line), "{proto}: {out}");
    }
    // Unknown attributes are not kept.
    let out = dump(
        "<filter name='f'><rule action='accept' direction='in'><udp foo='1' srcportstart='2'/></rule></filter>",
    );
    assert!(out.contains("<udp srcportstart='2'/>"), "{out}");
    assert_eq!(PROTOCOLS.len(), 24);
}

#[test]
fn refusals_carry_libvirts_errors() {
    let rule = |inner: &str| {
        format!("<filter name='f'><rule action='accept' direction='in'>{inner}</rule></filter>")
    };
    let cases: Vec<(String, &str, i32, i32)> = vec![
        (
            "<network/>".into(),
            "XML error: expecting root element of 'filter', not 'network'",
            27,
            5,
        ),
        ("<filter/>".into(), "internal error: filter has no name", 1, 33),
        (
            "<filter name=''/>".into(),
            "internal error: filter has no name",
            1,
            33,
        ),
        ("<filter name='a/b'/>".into(), "invalid char in name: /", 35, 5),
        (
            "<filter name='f' priority='x'/>".into(),
            "invalid argument: Could not parse chain priority 'x'",
            8,
            33,
        ),
        (
            "<filter name='f' chain='mac' priority='-1001'/>".into(),
            "invalid argument: Priority '-1001' is outside valid range of [-1000,1000]",
            8,
            33,
        ),
        (
            "<filter name='f' chain='ipv4-too-long'/>".into(),
            "invalid argument: Name of chain is longer than 12 characters",
            8,
            33,
        ),
        (
            "<filter name='f' chain='ipv4 x'/>".into(),
            "invalid argument: Chain name contains invalid characters",
            8,
            33,
        ),
        (
            "<filter name='f' chain='bogus'/>".into(),
            "invalid argument: Invalid chain name 'bogus'. Please use a chain name called 'root' or any of the following prefixes: mac, vlan, stp, arp, rarp, ipv4, ipv6",
            8,
            33,
        ),
        (
            "<filter name='f'><uuid>zz</uuid></filter>".into(),
            "XML error: malformed uuid element",
            27,
            33,
        ),
        (
            "<filter name='f'><rule direction='in'/></filter>".into(),
            "internal error: rule node requires action attribute",
            1,
            33,
        ),
        (
            "<filter name='f'><rule action='allow' direction='in'/></filter>".into(),
            "unsupported configuration: unknown rule action attribute value",
            67,
            33,
        ),
        (
            "<filter name='f'><rule action='drop'/></filter>".into(),
            "internal error: rule node requires direction attribute",
            1,
            33,
        ),
        (
            "<filter name='f'><rule action='drop' direction='both'/></filter>".into(),
            "unsupported configuration: unknown rule direction attribute value",
            67,
            33,
        ),
        (
            rule("<tcp srcipaddr='1.2.3.999' dstportstart='x'/>"),
            "internal error: dstportstart has illegal value x",
            1,
            33,
        ),
        (
            rule("<ip srcportstart='80'/>"),
            "internal error: IP rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)",
            1,
            33,
        ),
        (
            rule("<ipv6 protocol='icmpv6' dstportstart='80'/>"),
            "internal error: IPv6 rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)",
            1,
            33,
        ),
        (
            "<filter name='f'><filterref/></filter>".into(),
            "internal error: rule node requires action attribute",
            1,
            33,
        ),
    ];
    for (xml, message, code, domain) in cases {
        let e = parse(&xml).unwrap_err();
        assert_eq!(
            (e.message().as_str(), e.code(), e.domain()),
            (message, code, domain),
            "{xml}"
        );
    }
    assert!(parse(&rule("<ip protocol='tcp' srcportstart='80'/>")).is_ok());
    assert!(parse(&rule("<ip protocol='33' dstportstart='80'/>")).is_ok());
    let e =
        parse("<!DOCTYPE filter [<!ENTITY x SYSTEM 'file:///etc/shadow'>]><filter name='&x;'/>").unwrap_err();
    assert_eq!((e.code(), e.domain()), (35, 33));
    assert!(
        e.message().contains("not allowed in nwfilter XML"),
        "{}",
        e.message()
    );
}
