//! The protocols a rule may match (`<mac>`, `<ip>`, `<tcp>`, …) and, for
//! each, its attributes in libvirt's order with the value types libvirt
//! accepts for them (`virAttr` and the `…Attributes` tables of libvirt's
//! `nwfilter_conf.c`, written out here as data).
//!
//! An attribute may accept several types; they are tried in the order of
//! their bits below, as libvirt tries them (a decimal number before a hex
//! one, …), and the first that fits wins.

/// A decimal 16-bit number.
pub const U16: u32 = 1 << 0;
/// A decimal 8-bit number.
pub const U8: u32 = 1 << 1;
/// A hex 16-bit number (`0x` optional).
pub const U16_HEX: u32 = 1 << 2;
/// A hex 8-bit number.
pub const U8_HEX: u32 = 1 << 3;
pub const MAC: u32 = 1 << 4;
/// A MAC mask: ones, then zeros.
pub const MAC_MASK: u32 = 1 << 5;
pub const IPV4: u32 = 1 << 6;
/// A prefix length up to 32, or a dotted netmask.
pub const IPV4_MASK: u32 = 1 << 7;
/// A name its check turns into a number (`protocolid='ipv4'`, …).
pub const STRING: u32 = 1 << 8;
pub const IPV6: u32 = 1 << 9;
/// A prefix length up to 128, or an IPv6 netmask.
pub const IPV6_MASK: u32 = 1 << 10;
/// Free text (`comment`), at most [`MAX_COMMENT_LENGTH`] bytes kept.
pub const TEXT: u32 = 1 << 11;
pub const BOOL: u32 = 1 << 12;
pub const U32: u32 = 1 << 13;
pub const U32_HEX: u32 = 1 << 14;
pub const IPSET_NAME: u32 = 1 << 15;
pub const IPSET_FLAGS: u32 = 1 << 16;
/// One past the last type.
pub const LAST: u32 = 1 << 17;

/// libvirt's `MAX_COMMENT_LENGTH`.
pub const MAX_COMMENT_LENGTH: usize = 256;

/// The extra check (and, for names, the formatting) an attribute has
/// beyond its types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    /// `mac protocolid`: a name from [`MAC_PROTOCOLS`] or a number ≥ 0x600.
    MacProtocol,
    /// `vlan vlanid`: at most 4095.
    VlanId,
    /// `vlan encap-protocol`: a name from [`MAC_PROTOCOLS`] or a number ≥ 0x3c.
    VlanEncap,
    /// `arp opcode`: a name from [`ARP_OPCODES`] or any number.
    ArpOpcode,
    /// `ip`/`ipv6 protocol`: a name from [`IP_PROTOCOLS`] or any number.
    IpProtocol,
    /// `dscp`: at most 63.
    Dscp,
    /// `state`: `NEW,ESTABLISHED,RELATED,INVALID,NONE`.
    State,
    /// `tcp flags`: `MASK/FLAGS`, each a list of `SYN,ACK,…`.
    TcpFlags,
    /// `ipset`: a set name.
    IpSet,
    /// `ipsetflags`: up to six `src`/`dst`.
    IpSetFlags,
}

/// One attribute of a protocol element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub name: &'static str,
    /// The accepted types (bits above).
    pub types: u32,
    pub check: Check,
}

const fn attr(name: &'static str, types: u32) -> Attr {
    Attr {
        name,
        types,
        check: Check::None,
    }
}

const fn checked(name: &'static str, types: u32, check: Check) -> Attr {
    Attr { name, types, check }
}

const N16: u32 = U16 | U16_HEX;
const N8: u32 = U8 | U8_HEX;
const N32: u32 = U32 | U32_HEX;

const COMMENT: &[Attr] = &[attr("comment", TEXT)];

const MAC_HEADER: &[Attr] = &[
    attr("srcmacaddr", MAC),
    attr("srcmacmask", MAC_MASK),
    attr("dstmacaddr", MAC),
    attr("dstmacmask", MAC_MASK),
];

const MAC_EXTRA: &[Attr] = &[checked("protocolid", N16 | STRING, Check::MacProtocol)];

const VLAN_EXTRA: &[Attr] = &[
    checked("vlanid", N16, Check::VlanId),
    checked("encap-protocol", N16 | STRING, Check::VlanEncap),
];

const STP: &[Attr] = &[
    attr("srcmacaddr", MAC),
    attr("srcmacmask", MAC_MASK),
    attr("type", N8),
    attr("flags", N8),
    attr("root-priority", N16),
    attr("root-priority-hi", N16),
    attr("root-address", MAC),
    attr("root-address-mask", MAC_MASK),
    attr("root-cost", N32),
    attr("root-cost-hi", N32),
    attr("sender-priority", N16),
    attr("sender-priority-hi", N16),
    attr("sender-address", MAC),
    attr("sender-address-mask", MAC_MASK),
    attr("port", N16),
    attr("port-hi", N16),
    attr("age", N16),
    attr("age-hi", N16),
    attr("max-age", N16),
    attr("max-age-hi", N16),
    attr("hello-time", N16),
    attr("hello-time-hi", N16),
    attr("forward-delay", N16),
    attr("forward-delay-hi", N16),
];

const ARP_EXTRA: &[Attr] = &[
    attr("hwtype", N16),
    attr("protocoltype", N16),
    checked("opcode", N16 | STRING, Check::ArpOpcode),
    attr("arpsrcmacaddr", MAC),
    attr("arpdstmacaddr", MAC),
    attr("arpsrcipaddr", IPV4),
    attr("arpsrcipmask", IPV4_MASK),
    attr("arpdstipaddr", IPV4),
    attr("arpdstipmask", IPV4_MASK),
    attr("gratuitous", BOOL),
];

const PORTS: &[Attr] = &[
    attr("srcportstart", N16),
    attr("srcportend", N16),
    attr("dstportstart", N16),
    attr("dstportend", N16),
];

const IP_EXTRA: &[Attr] = &[
    attr("srcipaddr", IPV4),
    attr("srcipmask", IPV4_MASK),
    attr("dstipaddr", IPV4),
    attr("dstipmask", IPV4_MASK),
    checked("protocol", STRING | N8, Check::IpProtocol),
];

const IPV6_EXTRA: &[Attr] = &[
    attr("srcipaddr", IPV6),
    attr("srcipmask", IPV6_MASK),
    attr("dstipaddr", IPV6),
    attr("dstipmask", IPV6_MASK),
    checked("protocol", STRING | N8, Check::IpProtocol),
];

const DSCP: &[Attr] = &[checked("dscp", N8, Check::Dscp)];

const ICMPV6_RANGES: &[Attr] = &[
    attr("type", N8),
    attr("typeend", N8),
    attr("code", N8),
    attr("codeend", N8),
];

/// The attributes every layer-4 protocol has, over IPv4 or IPv6.
macro_rules! l3_common {
    ($addr:expr, $mask:expr) => {
        &[
            attr("srcmacaddr", MAC),
            attr("srcipaddr", $addr),
            attr("srcipmask", $mask),
            attr("dstipaddr", $addr),
            attr("dstipmask", $mask),
            attr("srcipfrom", $addr),
            attr("srcipto", $addr),
            attr("dstipfrom", $addr),
            attr("dstipto", $addr),
            checked("dscp", N8, Check::Dscp),
            attr("connlimit-above", U16),
            checked("state", STRING, Check::State),
            checked("ipset", IPSET_NAME, Check::IpSet),
            checked("ipsetflags", IPSET_FLAGS, Check::IpSetFlags),
        ]
    };
}

const L3_V4: &[Attr] = l3_common!(IPV4, IPV4_MASK);
const L3_V6: &[Attr] = l3_common!(IPV6, IPV6_MASK);
const TCP_OPTION: &[Attr] = &[attr("option", N8)];
const TCP_FLAGS: &[Attr] = &[checked("flags", STRING, Check::TcpFlags)];
const ICMP_TYPE_CODE: &[Attr] = &[attr("type", N8), attr("code", N8)];

/// How libvirt relates a protocol's attributes after parsing (which
/// `match='no'` a mask takes from its address, whether `ipset` gets its
/// default flags) and which rules it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `mac`, `vlan`.
    Ethernet,
    Stp,
    /// `arp`, `rarp`.
    Arp,
    /// `ip`.
    Ip,
    Ipv6,
    /// `tcp`, `udp`, `sctp` and their IPv6 variants (they have ports).
    Ports,
    /// `udplite`, `esp`, `ah`, `igmp` and the IPv6 variants.
    Plain,
    /// `icmp`, `icmpv6`.
    Icmp,
    /// `all`, `all-ipv6` (libvirt leaves their `ipset` alone).
    All,
}

/// A protocol element and its attributes, in libvirt's order.
#[derive(Debug)]
pub struct Protocol {
    pub name: &'static str,
    /// The attribute table, in pieces (read flattened).
    parts: &'static [&'static [Attr]],
    pub family: Family,
}

impl Protocol {
    pub fn attrs(&self) -> impl Iterator<Item = &'static Attr> + '_ {
        self.parts.iter().flat_map(|p| p.iter())
    }

    pub fn attr_count(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    /// The index of attribute `name` in [`attrs`](Self::attrs).
    pub fn index(&self, name: &str) -> Option<usize> {
        self.attrs().position(|a| a.name == name)
    }

    /// Pairs (`to`, `from`): `to` takes `from`'s `match='no'` (libvirt's
    /// `virNWFilterRuleDefFixup`).
    pub fn negation_pairs(&self) -> &'static [(&'static str, &'static str)] {
        const MAC_PAIRS: &[(&str, &str)] = &[("srcmacmask", "srcmacaddr"), ("dstmacmask", "dstmacaddr")];
        const STP_PAIRS: &[(&str, &str)] = &[
            ("srcmacmask", "srcmacaddr"),
            ("root-priority-hi", "root-priority"),
            ("root-address-mask", "root-address"),
            ("root-cost-hi", "root-cost"),
            ("sender-priority-hi", "sender-priority"),
            ("sender-address-mask", "sender-address"),
            ("port-hi", "port"),
            ("age-hi", "age"),
            ("max-age-hi", "max-age"),
            ("hello-time-hi", "hello-time"),
            ("forward-delay-hi", "forward-delay"),
        ];
        const IP_PAIRS: &[(&str, &str)] = &[("srcipmask", "srcipaddr"), ("dstipmask", "dstipaddr")];
        const IPV6_PAIRS: &[(&str, &str)] = &[
            ("srcipmask", "srcipaddr"),
            ("dstipmask", "dstipaddr"),
            ("typeend", "type"),
            ("code", "type"),
            ("codeend", "type"),
        ];
        const PLAIN_PAIRS: &[(&str, &str)] = &[
            ("srcipmask", "srcipaddr"),
            ("dstipmask", "dstipaddr"),
            ("srcipto", "srcipfrom"),
            ("dstipto", "dstipfrom"),
        ];
        const PORT_PAIRS: &[(&str, &str)] = &[
            ("srcipmask", "srcipaddr"),
            ("dstipmask", "dstipaddr"),
            ("srcipto", "srcipfrom"),
            ("dstipto", "dstipfrom"),
            ("srcportend", "srcportstart"),
            ("dstportstart", "srcportstart"),
            ("dstportend", "srcportstart"),
        ];
        const ICMP_PAIRS: &[(&str, &str)] = &[
            ("srcipmask", "srcipaddr"),
            ("dstipmask", "dstipaddr"),
            ("srcipto", "srcipfrom"),
            ("dstipto", "dstipfrom"),
            ("code", "type"),
        ];
        match self.family {
            Family::Ethernet => MAC_PAIRS,
            Family::Stp => STP_PAIRS,
            Family::Arp => &[],
            Family::Ip => IP_PAIRS,
            Family::Ipv6 => IPV6_PAIRS,
            Family::Ports => PORT_PAIRS,
            Family::Plain | Family::All => PLAIN_PAIRS,
            Family::Icmp => ICMP_PAIRS,
        }
    }
}

impl PartialEq for Protocol {
    /// Protocols are told apart by name (each is one static entry).
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Protocol {}

const fn proto(name: &'static str, parts: &'static [&'static [Attr]], family: Family) -> Protocol {
    Protocol { name, parts, family }
}

/// Every protocol element, in libvirt's order.
pub static PROTOCOLS: &[Protocol] = &[
    proto("arp", &[MAC_HEADER, ARP_EXTRA, COMMENT], Family::Arp),
    proto("rarp", &[MAC_HEADER, ARP_EXTRA, COMMENT], Family::Arp),
    proto("mac", &[MAC_HEADER, MAC_EXTRA, COMMENT], Family::Ethernet),
    proto("vlan", &[MAC_HEADER, VLAN_EXTRA, COMMENT], Family::Ethernet),
    proto("stp", &[STP, COMMENT], Family::Stp),
    proto("ip", &[MAC_HEADER, IP_EXTRA, PORTS, DSCP, COMMENT], Family::Ip),
    proto(
        "ipv6",
        &[MAC_HEADER, IPV6_EXTRA, PORTS, ICMPV6_RANGES, COMMENT],
        Family::Ipv6,
    ),
    proto(
        "tcp",
        &[L3_V4, PORTS, TCP_OPTION, TCP_FLAGS, COMMENT],
        Family::Ports,
    ),
    proto("udp", &[L3_V4, PORTS, COMMENT], Family::Ports),
    proto("udplite", &[L3_V4, COMMENT], Family::Plain),
    proto("esp", &[L3_V4, COMMENT], Family::Plain),
    proto("ah", &[L3_V4, COMMENT], Family::Plain),
    proto("sctp", &[L3_V4, PORTS, COMMENT], Family::Ports),
    proto("icmp", &[L3_V4, ICMP_TYPE_CODE, COMMENT], Family::Icmp),
    proto("all", &[L3_V4, COMMENT], Family::All),
    proto("igmp", &[L3_V4, COMMENT], Family::Plain),
    proto("tcp-ipv6", &[L3_V6, PORTS, TCP_OPTION, COMMENT], Family::Ports),
    proto("udp-ipv6", &[L3_V6, PORTS, COMMENT], Family::Ports),
    proto("udplite-ipv6", &[L3_V6, COMMENT], Family::Plain),
    proto("esp-ipv6", &[L3_V6, COMMENT], Family::Plain),
    proto("ah-ipv6", &[L3_V6, COMMENT], Family::Plain),
    proto("sctp-ipv6", &[L3_V6, PORTS, COMMENT], Family::Ports),
    proto("icmpv6", &[L3_V6, ICMP_TYPE_CODE, COMMENT], Family::Icmp),
    proto("all-ipv6", &[L3_V6, COMMENT], Family::All),
];

/// The protocol element called `name`.
pub fn protocol(name: &str) -> Option<&'static Protocol> {
    PROTOCOLS.iter().find(|p| p.name == name)
}

/// Ethernet protocol names (`protocolid`, `encap-protocol`).
pub const MAC_PROTOCOLS: &[(u32, &str)] = &[
    (0x0806, "arp"),
    (0x8035, "rarp"),
    (0x0800, "ipv4"),
    (0x86dd, "ipv6"),
    (0x8100, "vlan"),
];

/// IP protocol names (`protocol`).
pub const IP_PROTOCOLS: &[(u32, &str)] = &[
    (6, "tcp"),
    (17, "udp"),
    (136, "udplite"),
    (50, "esp"),
    (51, "ah"),
    (1, "icmp"),
    (2, "igmp"),
    (132, "sctp"),
    (58, "icmpv6"),
];

/// ARP opcode names (`opcode`), as `ebtables -h arp` spells them.
pub const ARP_OPCODES: &[(u32, &str)] = &[
    (1, "Request"),
    (2, "Reply"),
    (3, "Request_Reverse"),
    (4, "Reply_Reverse"),
    (5, "DRARP_Request"),
    (6, "DRARP_Reply"),
    (7, "DRARP_Error"),
    (8, "InARP_Request"),
    (9, "ARP_NAK"),
];

/// Connection states (`state`), one bit each.
pub const STATES: &[(u32, &str)] = &[
    (1 << 1, "NEW"),
    (1 << 2, "ESTABLISHED"),
    (1 << 3, "RELATED"),
    (1 << 4, "INVALID"),
    (1 << 5, "NONE"),
];

/// The `NONE` state: alone when given.
pub const STATE_NONE: u32 = 1 << 5;

/// TCP flags (`flags`).
pub const TCP_FLAG_NAMES: &[(u32, &str)] = &[
    (0x01, "FIN"),
    (0x02, "SYN"),
    (0x04, "RST"),
    (0x08, "PSH"),
    (0x10, "ACK"),
    (0x20, "URG"),
    (0x3f, "ALL"),
    (0x00, "NONE"),
];

/// The name `value` has in `map`, if any.
pub fn name_of(map: &[(u32, &'static str)], value: u32) -> Option<&'static str> {
    map.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}

/// The value `name` (any case) has in `map`, if any.
pub fn value_of(map: &[(u32, &str)], name: &str) -> Option<u32> {
    map.iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(v, _)| *v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn tables_have_libvirts_shape() {
        assert_eq!(PROTOCOLS.len(), 24);
        let names: Vec<&str> = protocol("tcp").unwrap().attrs().map(|a| a.name).collect();
        assert_eq!(names[..3], ["srcmacaddr", "srcipaddr", "srcipmask"]);
        assert_eq!(names[names.len() - 3..], ["option", "flags", "comment"]);
        assert_eq!(protocol("tcp").unwrap().attr_count(), names.len());
        assert!(protocol("tcp-ipv6").unwrap().index("flags").is_none());
        assert_eq!(protocol("ip").unwrap().index("protocol"), Some(8));
        assert!(protocol("udp").unwrap().index("option").is_none());
        assert!(protocol("nosuch").is_none());
        // Every pair names attributes its protocol has.
        for p in PROTOCOLS {
            for (to, from) in p.negation_pairs() {
                assert!(
                    p.index(to).is_some() && p.index(from).is_some(),
                    "{} {to} {from}",
                    p.name
                );
            }
        }
    }

    #[test]
    fn maps_look_up_both_ways() {
        assert_eq!(value_of(MAC_PROTOCOLS, "IPv4"), Some(0x800));
        assert_eq!(name_of(IP_PROTOCOLS, 132), Some("sctp"));
        assert_eq!(value_of(ARP_OPCODES, "reply"), Some(2));
        assert_eq!(name_of(ARP_OPCODES, 10), None);
    }
}
