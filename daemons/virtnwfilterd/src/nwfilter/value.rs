//! One protocol attribute's value: read as libvirt reads it (each accepted
//! type tried in turn, then the attribute's own check) and written back as
//! `nwfilter-dumpxml` prints it (numbers in the base they were given, masks
//! as prefix lengths, MACs and IP addresses normalised, names for known
//! protocol numbers).

use super::attrs::{self, Attr, Check};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// libvirt's `VIR_NWFILTER_MAX_ITERID`.
pub const MAX_ITER_ID: u32 = 1000;
/// libvirt's `MAX_IPSET_NAME_LENGTH` (including the terminating NUL).
const MAX_IPSET_NAME_LENGTH: usize = 32;
const IPSET_NAME_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-+ ";

/// How a variable is used: `$IP` (all values in turn), `$IP[@1]`
/// (iterator 1), `$IP[2]` (the third value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarAccess {
    Iterator { name: String, id: u32 },
    Element { name: String, index: u32 },
}

/// A parsed attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `$NAME…`: filled in when the filter is instantiated.
    Var(VarAccess),
    /// A number, printed back in the base it was given in.
    Number {
        value: u32,
        hex: bool,
    },
    /// A netmask, printed as its prefix length.
    Mask(u8),
    Ip(IpAddr),
    Mac([u8; 6]),
    Bool(bool),
    Text(String),
    /// `state`: bits of [`attrs::STATES`].
    State(u32),
    TcpFlags {
        mask: u8,
        flags: u8,
    },
    IpSet(String),
    /// `ipsetflags`: `true` for `src`, `false` for `dst`.
    IpSetFlags(Vec<bool>),
}

/// libvirt's `virStrToLong_ui`: optional white space and sign, digits in
/// `base` (a `0x` prefix allowed in base 16), nothing after; a negative
/// number wraps as in C.
pub fn parse_uint(text: &str, base: u32) -> Option<u32> {
    let s = text.trim_start();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let s = if base == 16 {
        s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s)
    } else {
        s
    };
    if s.is_empty() || !s.chars().all(|c| c.is_digit(base)) {
        return None;
    }
    let v = u64::from_str_radix(s, base).ok()?;
    let v = u32::try_from(v).ok()?;
    Some(if negative { v.wrapping_neg() } else { v })
}

pub use modvirt_xml::parse_mac;

/// How many leading one bits `bytes` has, if it is ones then zeros
/// (libvirt's `virSocketAddrGetNumNetmaskBits`, `checkValidMask`).
fn prefix_len(bytes: &[u8]) -> Option<u8> {
    let mut ones = 0u8;
    let mut seen_zero = false;
    for b in bytes {
        for i in (0..8).rev() {
            if (b >> i) & 1 == 1 {
                if seen_zero {
                    return None;
                }
                ones += 1;
            } else {
                seen_zero = true;
            }
        }
    }
    Some(ones)
}

/// A mask: decimal prefix length up to `max`, or an address-shaped netmask.
fn parse_mask(text: &str, max: u32, v6: bool) -> Result<u8, ()> {
    if let Some(n) = parse_uint(text, 10) {
        return if n <= max { Ok(n as u8) } else { Err(()) };
    }
    let bytes: Vec<u8> = if v6 {
        text.parse::<Ipv6Addr>().map_err(|_| ())?.octets().to_vec()
    } else {
        text.parse::<Ipv4Addr>().map_err(|_| ())?.octets().to_vec()
    };
    prefix_len(&bytes).ok_or(())
}

/// libvirt's `virNWFilterVarAccessParse`, after the `$`.
fn parse_var(text: &str) -> Option<VarAccess> {
    let idx = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let name = text[..idx].to_owned();
    let rest = &text[idx..];
    if rest.is_empty() {
        return Some(VarAccess::Iterator { name, id: 0 });
    }
    let inner = rest.strip_prefix('[')?.trim_start();
    let (iterator, inner) = match inner.strip_prefix('@') {
        Some(i) => (true, i),
        None => (false, inner),
    };
    // The number ends where `]` (after optional blanks) starts; what
    // follows `]` is not looked at, as in libvirt.
    let close = inner.find(']')?;
    let number = parse_uint(inner[..close].trim_end(), 10)?;
    if iterator {
        (number <= MAX_ITER_ID).then_some(VarAccess::Iterator { name, id: number })
    } else {
        Some(VarAccess::Element { name, index: number })
    }
}

/// libvirt's `parseStringItems`: a `sep`-separated list of names from
/// `map` (any case; each item is matched by prefix, as libvirt does).
fn parse_items(map: &[(u32, &str)], input: &str, sep: char) -> Option<u32> {
    let mut flags = 0;
    let mut rest = input;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == sep);
        if rest.is_empty() {
            return Some(flags);
        }
        let (v, n) = map.iter().find(|(_, n)| {
            rest.len() >= n.len() && rest.is_char_boundary(n.len()) && rest[..n.len()].eq_ignore_ascii_case(n)
        })?;
        flags |= v;
        rest = &rest[n.len()..];
    }
}

/// libvirt's `printStringItems`: the names of the bits set, low bit first.
fn print_items(map: &[(u32, &'static str)], flags: u32) -> String {
    (0..32)
        .map(|bit| 1u32 << bit)
        .filter(|m| flags & m != 0)
        .filter_map(|m| attrs::name_of(map, m))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_ipset_flags(text: &str) -> Option<Vec<bool>> {
    let mut flags = Vec::new();
    let mut rest = text;
    loop {
        let word = rest.get(..3)?;
        flags.push(if word.eq_ignore_ascii_case("src") {
            true
        } else if word.eq_ignore_ascii_case("dst") {
            false
        } else {
            return None;
        });
        rest = &rest[3..];
        match rest.strip_prefix(',') {
            Some(r) if flags.len() < 6 => rest = r,
            _ => break,
        }
    }
    rest.is_empty().then_some(flags)
}

/// Tries one type on `text`.
fn parse_as(datatype: u32, text: &str) -> Option<Value> {
    let number = |base: u32, max: u32| {
        parse_uint(text, base)
            .filter(|v| *v <= max)
            .map(|value| Value::Number {
                value,
                hex: base == 16,
            })
    };
    match datatype {
        attrs::U8 => number(10, 0xff),
        attrs::U8_HEX => number(16, 0xff),
        attrs::U16 => number(10, 0xffff),
        attrs::U16_HEX => number(16, 0xffff),
        attrs::U32 => number(10, u32::MAX),
        attrs::U32_HEX => number(16, u32::MAX),
        attrs::IPV4 => text.parse::<Ipv4Addr>().ok().map(|a| Value::Ip(IpAddr::V4(a))),
        attrs::IPV6 => text.parse::<Ipv6Addr>().ok().map(|a| Value::Ip(IpAddr::V6(a))),
        attrs::IPV4_MASK => parse_mask(text, 32, false).ok().map(Value::Mask),
        attrs::IPV6_MASK => parse_mask(text, 128, true).ok().map(Value::Mask),
        attrs::MAC => parse_mac(text).map(Value::Mac),
        attrs::MAC_MASK => parse_mac(text)
            .filter(|m| prefix_len(m).is_some())
            .map(Value::Mac),
        attrs::TEXT => {
            let mut end = text.len().min(attrs::MAX_COMMENT_LENGTH);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            Some(Value::Text(text[..end].to_owned()))
        }
        attrs::BOOL => Some(Value::Bool(matches!(text, "true" | "1" | "yes"))),
        // Strings only mean something through their attribute's check.
        attrs::STRING | attrs::IPSET_NAME | attrs::IPSET_FLAGS => Some(Value::Text(text.to_owned())),
        _ => None,
    }
}

/// Applies the attribute's check to a value read as `datatype`.
fn check(check: Check, datatype: u32, value: Value) -> Option<Value> {
    let number = match &value {
        Value::Number { value, .. } => Some(*value),
        _ => None,
    };
    let text = match &value {
        Value::Text(t) => Some(t.as_str()),
        _ => None,
    };
    match check {
        Check::None => Some(value),
        Check::MacProtocol | Check::VlanEncap => {
            let min = if check == Check::MacProtocol { 0x600 } else { 0x3c };
            match (text, number) {
                (Some(t), _) if datatype == attrs::STRING => {
                    attrs::value_of(attrs::MAC_PROTOCOLS, t).map(|value| Value::Number { value, hex: false })
                }
                (_, Some(n)) if n >= min => Some(value),
                _ => None,
            }
        }
        Check::ArpOpcode | Check::IpProtocol => {
            let map = if check == Check::ArpOpcode {
                attrs::ARP_OPCODES
            } else {
                attrs::IP_PROTOCOLS
            };
            match text {
                Some(t) => attrs::value_of(map, t).map(|value| Value::Number { value, hex: true }),
                None => Some(value),
            }
        }
        Check::VlanId => number.filter(|n| *n <= 4095).map(|_| value),
        Check::Dscp => number.filter(|n| *n <= 63).map(|_| value),
        Check::State => {
            let flags = parse_items(attrs::STATES, text?, ',')?;
            Some(Value::State(if flags & attrs::STATE_NONE != 0 {
                attrs::STATE_NONE
            } else {
                flags
            }))
        }
        Check::TcpFlags => {
            let (mask, flags) = text?.split_once('/')?;
            let mask = parse_items(attrs::TCP_FLAG_NAMES, mask, ',')? & 0x3f;
            let flags = parse_items(attrs::TCP_FLAG_NAMES, flags, ',')? & 0x3f;
            Some(Value::TcpFlags {
                mask: mask as u8,
                flags: flags as u8,
            })
        }
        Check::IpSet => {
            let t = text?;
            (t.len() < MAX_IPSET_NAME_LENGTH && t.chars().all(|c| IPSET_NAME_CHARS.contains(c)))
                .then(|| Value::IpSet(t.to_owned()))
        }
        Check::IpSetFlags => parse_ipset_flags(text?).map(Value::IpSetFlags),
    }
}

/// Reads `text` as attribute `attr` the way libvirt's
/// `virNWFilterRuleDetailsParse` does; `None` when libvirt would say the
/// attribute `has illegal value`.
pub fn parse(attr: &Attr, text: &str) -> Option<Value> {
    if let Some(var) = text.strip_prefix('$') {
        return parse_var(var).map(Value::Var);
    }
    let mut datatype = 1;
    while datatype < attrs::LAST {
        if attr.types & datatype != 0
            && let Some(v) = parse_as(datatype, text)
        {
            return check(attr.check, datatype, v);
        }
        datatype <<= 1;
    }
    None
}

fn tcp_flags(bits: u8) -> String {
    match bits {
        0 => "NONE".to_owned(),
        0x3f => "ALL".to_owned(),
        b => print_items(attrs::TCP_FLAG_NAMES, u32::from(b)),
    }
}

/// The value as `nwfilter-dumpxml` prints it (not yet escaped).
pub fn format(attr: &Attr, value: &Value) -> String {
    match value {
        Value::Var(VarAccess::Iterator { name, id: 0 }) => format!("${name}"),
        Value::Var(VarAccess::Iterator { name, id }) => format!("${name}[@{id}]"),
        Value::Var(VarAccess::Element { name, index }) => format!("${name}[{index}]"),
        Value::Number { value, hex } => {
            let map = match attr.check {
                Check::MacProtocol | Check::VlanEncap => Some(attrs::MAC_PROTOCOLS),
                Check::IpProtocol => Some(attrs::IP_PROTOCOLS),
                Check::ArpOpcode => Some(attrs::ARP_OPCODES),
                _ => None,
            };
            match map.and_then(|m| attrs::name_of(m, *value)) {
                Some(name) => name.to_owned(),
                // libvirt prints unnamed opcodes in decimal, whatever their base.
                None if *hex && attr.check != Check::ArpOpcode => format!("0x{value:x}"),
                None => value.to_string(),
            }
        }
        Value::Mask(bits) => bits.to_string(),
        Value::Ip(a) => a.to_string(),
        Value::Mac(m) => format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        ),
        Value::Bool(b) => b.to_string(),
        Value::Text(t) | Value::IpSet(t) => t.clone(),
        Value::State(flags) => print_items(attrs::STATES, *flags),
        Value::TcpFlags { mask, flags } => format!("{}/{}", tcp_flags(*mask), tcp_flags(*flags)),
        Value::IpSetFlags(flags) => flags
            .iter()
            .map(|src| if *src { "src" } else { "dst" })
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::super::attrs::protocol;
    use super::*;

    fn attr(proto: &str, name: &str) -> &'static Attr {
        let p = protocol(proto).unwrap();
        p.attrs().nth(p.index(name).unwrap()).unwrap()
    }

    /// Parses and formats back; `None` when refused.
    fn round(proto: &str, name: &str, text: &str) -> Option<String> {
        let a = attr(proto, name);
        parse(a, text).map(|v| format(a, &v))
    }

    #[test]
    fn numbers_keep_their_base_and_ranges() {
        assert_eq!(round("tcp", "dstportstart", "80").as_deref(), Some("80"));
        assert_eq!(round("tcp", "dstportstart", "0x50").as_deref(), Some("0x50"));
        assert_eq!(round("tcp", "dstportstart", "ff").as_deref(), Some("0xff"));
        assert_eq!(round("tcp", "dstportstart", "65536"), None);
        assert_eq!(round("tcp", "dstportstart", "-1"), None);
        assert_eq!(round("tcp", "dstportstart", "80x"), None);
        assert_eq!(round("tcp", "connlimit-above", "0x10"), None);
        assert_eq!(
            round("stp", "root-cost", "4294967295").as_deref(),
            Some("4294967295")
        );
        assert_eq!(round("tcp", "dscp", "63").as_deref(), Some("63"));
        assert_eq!(round("tcp", "dscp", "64"), None);
        assert_eq!(round("vlan", "vlanid", "4095").as_deref(), Some("4095"));
        assert_eq!(round("vlan", "vlanid", "4096"), None);
        assert_eq!(parse_uint(" +12", 10), Some(12));
        assert_eq!(parse_uint("-1", 10), Some(u32::MAX));
        assert_eq!(parse_uint("0x", 16), None);
    }

    #[test]
    fn names_for_protocol_numbers() {
        assert_eq!(round("mac", "protocolid", "IPv4").as_deref(), Some("ipv4"));
        assert_eq!(round("mac", "protocolid", "0x0800").as_deref(), Some("ipv4"));
        assert_eq!(round("mac", "protocolid", "2048").as_deref(), Some("ipv4"));
        assert_eq!(round("mac", "protocolid", "0x1234").as_deref(), Some("0x1234"));
        assert_eq!(round("mac", "protocolid", "4660").as_deref(), Some("4660"));
        assert_eq!(round("mac", "protocolid", "0x5ff"), None);
        assert_eq!(round("mac", "protocolid", "ipx"), None);
        assert_eq!(round("vlan", "encap-protocol", "0x3c").as_deref(), Some("0x3c"));
        assert_eq!(round("ip", "protocol", "udp").as_deref(), Some("udp"));
        assert_eq!(round("ip", "protocol", "17").as_deref(), Some("udp"));
        assert_eq!(round("ip", "protocol", "99").as_deref(), Some("99"));
        assert_eq!(round("ip", "protocol", "0x63").as_deref(), Some("0x63"));
        assert_eq!(round("arp", "opcode", "request").as_deref(), Some("Request"));
        assert_eq!(round("arp", "opcode", "0x10").as_deref(), Some("16"));
    }

    #[test]
    fn addresses_masks_and_macs() {
        assert_eq!(round("ip", "srcipaddr", "10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(round("ip", "srcipaddr", "10.0.0.256"), None);
        assert_eq!(round("ip", "srcipmask", "24").as_deref(), Some("24"));
        assert_eq!(round("ip", "srcipmask", "255.255.0.0").as_deref(), Some("16"));
        assert_eq!(round("ip", "srcipmask", "255.0.255.0"), None);
        assert_eq!(round("ip", "srcipmask", "33"), None);
        assert_eq!(
            round("ipv6", "srcipaddr", "2001:DB8:0:0::1").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(round("ipv6", "srcipmask", "ffff:ffff::").as_deref(), Some("32"));
        assert_eq!(round("ipv6", "srcipmask", "128").as_deref(), Some("128"));
        assert_eq!(round("ipv6", "srcipmask", "129"), None);
        assert_eq!(
            round("mac", "srcmacaddr", "52:54:0:AB:cd:1").as_deref(),
            Some("52:54:00:ab:cd:01")
        );
        assert_eq!(round("mac", "srcmacaddr", "52:54:00:ab:cd"), None);
        assert_eq!(round("mac", "srcmacaddr", "52:54:00:ab:cd:ef:01"), None);
        assert_eq!(
            round("mac", "srcmacmask", "ff:ff:ff:00:00:00").as_deref(),
            Some("ff:ff:ff:00:00:00")
        );
        assert_eq!(round("mac", "srcmacmask", "ff:00:ff:00:00:00"), None);
        assert_eq!(prefix_len(&[0xff, 0xff, 0xff, 0xff]), Some(32));
        assert_eq!(prefix_len(&[0, 0, 0, 0]), Some(0));
        assert_eq!(prefix_len(&[0xff, 0xfe, 0, 0]), Some(15));
        assert_eq!(prefix_len(&[0xff, 0xfe, 0, 1]), None);
    }

    #[test]
    fn variables() {
        assert_eq!(round("ip", "srcipaddr", "$IP").as_deref(), Some("$IP"));
        assert_eq!(round("ip", "srcipaddr", "$IP[@0]").as_deref(), Some("$IP"));
        assert_eq!(round("ip", "srcipaddr", "$IP[ @2 ]").as_deref(), Some("$IP[@2]"));
        assert_eq!(round("ip", "srcipaddr", "$IP[3]").as_deref(), Some("$IP[3]"));
        assert_eq!(round("ip", "srcipaddr", "$IP[@1001]"), None);
        assert_eq!(round("ip", "srcipaddr", "$IP[x]"), None);
        assert_eq!(round("ip", "srcipaddr", "$IP-X"), None);
    }

    #[test]
    fn states_flags_ipsets_comments_booleans() {
        assert_eq!(
            round("tcp", "state", "established,new").as_deref(),
            Some("NEW,ESTABLISHED")
        );
        assert_eq!(round("tcp", "state", "NEW,NONE").as_deref(), Some("NONE"));
        assert_eq!(round("tcp", "state", "NEW,BOGUS"), None);
        assert_eq!(
            round("tcp", "flags", "SYN,ACK/SYN").as_deref(),
            Some("SYN,ACK/SYN")
        );
        assert_eq!(round("tcp", "flags", "ALL/NONE").as_deref(), Some("ALL/NONE"));
        assert_eq!(round("tcp", "flags", "SYN"), None);
        assert_eq!(round("all", "ipset", "tck_test").as_deref(), Some("tck_test"));
        assert_eq!(round("all", "ipset", &"x".repeat(32)), None);
        assert_eq!(round("all", "ipset", "bad/name"), None);
        assert_eq!(round("all", "ipsetflags", "SRC,dst").as_deref(), Some("src,dst"));
        assert_eq!(round("all", "ipsetflags", "src,dst,src,dst,src,dst,src"), None);
        assert_eq!(round("all", "ipsetflags", "src,"), None);
        let long = "é".repeat(200);
        let kept = round("tcp", "comment", &long).unwrap();
        assert_eq!(kept.len(), 256);
        assert_eq!(round("arp", "gratuitous", "yes").as_deref(), Some("true"));
        assert_eq!(round("arp", "gratuitous", "no").as_deref(), Some("false"));
    }
}
