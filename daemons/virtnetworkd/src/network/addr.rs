//! Addresses and numbers the way libvirt's C helpers read and print them:
//!
//! - IP addresses as `getaddrinfo(AI_NUMERICHOST)` reads them
//!   (`virSocketAddrParse`): IPv4 in `inet_aton` form, so `10.1` is
//!   `10.0.0.1` and `0x0a.1` too, and IPv6 in `inet_pton` form; printed as
//!   `getnameinfo(NI_NUMERICHOST)` prints them (`virSocketAddrFormat`).
//! - Address ranges checked as `virSocketAddrGetRange` checks them.
//! - Decimal numbers as `virStrToLong_ui`/`_uip`/`_ulp` read them
//!   (`strtoul`: leading white space and a sign allowed, nothing after).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::NetworkXmlError as E;

/// Parses an IPv4 or IPv6 address as libvirt does (`AF_UNSPEC`).
pub(crate) fn parse_ip(text: &str) -> Option<IpAddr> {
    parse_ipv4(text)
        .map(IpAddr::V4)
        .or_else(|| text.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
}

/// Parses an IPv4 address as glibc's `inet_aton` does, requiring the
/// whole string: one to four parts separated by `.`, each decimal, octal
/// (leading `0`) or hex (`0x`), the last one filling the remaining bytes.
pub(crate) fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    let bytes = text.as_bytes();
    let mut parts: Vec<u32> = Vec::with_capacity(3);
    let mut i = 0;
    let last = loop {
        if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let (value, next) = c_number_any_base(bytes, i)?;
        i = next;
        if bytes.get(i) == Some(&b'.') {
            if parts.len() > 2 || value > 0xff {
                return None;
            }
            parts.push(value);
            i += 1;
        } else {
            break value;
        }
    };
    if i != bytes.len() {
        return None;
    }
    let max = [u32::MAX, 0xff_ffff, 0xffff, 0xff][parts.len()];
    if last > max {
        return None;
    }
    let mut word = last;
    for (n, part) in parts.iter().enumerate() {
        word |= part << (24 - 8 * n);
    }
    Some(Ipv4Addr::from(word))
}

/// `strtoul(s, &end, 0)` from `bytes[start]` (a digit): hex after `0x`,
/// octal after `0`, else decimal. Returns the value and where it stopped;
/// `None` when it does not fit 32 bits.
fn c_number_any_base(bytes: &[u8], start: usize) -> Option<(u32, usize)> {
    let mut i = start;
    let radix = if bytes[i] == b'0' {
        if matches!(bytes.get(i + 1), Some(b'x' | b'X'))
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            i += 2;
            16
        } else {
            8
        }
    } else {
        10
    };
    let mut value: u64 = 0;
    while let Some(digit) = bytes.get(i).and_then(|&b| char::from(b).to_digit(radix)) {
        value = value * u64::from(radix) + u64::from(digit);
        if value > u64::from(u32::MAX) {
            return None;
        }
        i += 1;
    }
    Some((u32::try_from(value).ok()?, i))
}

/// An address as libvirt prints it.
pub(crate) fn format_ip(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format_ipv6(a),
    }
}

/// glibc's `inet_ntop` for IPv6: the longest run (at least two) of zero
/// groups becomes `::`, and `::a.b.c.d` / `::ffff:a.b.c.d` end in dotted
/// IPv4.
fn format_ipv6(addr: Ipv6Addr) -> String {
    let words = addr.segments();
    // The first longest run (start, length) of zero words, if two or more long.
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            let run = cur.map_or((i, 1), |(base, len)| (base, len + 1));
            cur = Some(run);
            if best.is_none_or(|(_, len)| run.1 > len) {
                best = Some(run);
            }
        } else {
            cur = None;
        }
    }
    let best = best.filter(|&(_, len)| len >= 2);
    let mut out = String::with_capacity(39);
    for (i, &w) in words.iter().enumerate() {
        if let Some((base, len)) = best
            && (base..base + len).contains(&i)
        {
            if i == base {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6
            && let Some((0, len)) = best
            && (len == 6 || (len == 5 && words[5] == 0xffff))
        {
            let o = addr.octets();
            out.push_str(&Ipv4Addr::new(o[12], o[13], o[14], o[15]).to_string());
            return out;
        }
        out.push_str(&format!("{w:x}"));
    }
    if best.is_some_and(|(base, len)| base + len == 8) {
        out.push(':');
    }
    out
}

/// The network an address range must lie in: the network's own address
/// and its prefix (`None` when libvirt cannot tell it, e.g. a
/// non-contiguous netmask).
pub(crate) type Network = (IpAddr, Option<u8>);

/// Checks a range as `virSocketAddrGetRange` does: same family, start
/// not after end, only the last 16 bits differing, and, given the
/// network, both ends inside it and (IPv4) neither the network nor the
/// broadcast address.
pub(crate) fn check_range(start: IpAddr, end: IpAddr, network: Option<Network>) -> Result<(), E> {
    let (s, e) = (format_ip(start), format_ip(end));
    if start.is_ipv4() != end.is_ipv4() {
        return Err(E::Range(format!("mismatch of address family in range {s} - {e}")));
    }
    if let Some((net, prefix)) = network {
        let n = format_ip(net);
        if start.is_ipv4() != net.is_ipv4() {
            return Err(E::Range(format!(
                "mismatch of address family in range {s} - {e} for network {n}"
            )));
        }
        let max = if net.is_ipv4() { 32 } else { 128 };
        let Some(prefix) = prefix.filter(|&p| p <= max) else {
            let p = prefix.map_or(-1, i32::from);
            return Err(E::Range(format!(
                "bad prefix {p} for network {n} when checking range {s} - {e}"
            )));
        };
        let mask = |a: IpAddr| bits(a) & prefix_mask(prefix, max);
        if mask(start) != mask(net) || mask(end) != mask(net) {
            return Err(E::Range(format!(
                "range {s} - {e} is not entirely within network {n}/{prefix}"
            )));
        }
        if net.is_ipv4() {
            let netmask = prefix_mask(prefix, max);
            if bits(start) == bits(net) & netmask {
                return Err(E::Range(format!(
                    "start of range {s} - {e} in network {n}/{prefix} is the network address"
                )));
            }
            if bits(end) == bits(net) | (!netmask & u128::from(u32::MAX)) {
                return Err(E::Range(format!(
                    "end of range {s} - {e} in network {n}/{prefix} is the broadcast address"
                )));
            }
        }
    }
    let (a, b) = (bits(start), bits(end));
    if a >> 16 != b >> 16 {
        return Err(E::Range(format!("range {s} - {e} is too large (> 65535)")));
    }
    if b & 0xffff < a & 0xffff {
        return Err(E::Range(if start.is_ipv4() {
            // libvirt's message ends with a space.
            format!("range {s} - {e} is reversed ")
        } else {
            format!("range {s} - {e} start larger than end")
        }));
    }
    Ok(())
}

/// The address as a number (IPv4 in the low 32 bits).
fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// `prefix` leading one bits out of `width` (32 or 128), as a number.
fn prefix_mask(prefix: u8, width: u8) -> u128 {
    let ones = |n: u32| if n >= 128 { u128::MAX } else { (1u128 << n) - 1 };
    ones(u32::from(width)) & !ones(u32::from(width.saturating_sub(prefix)))
}

/// `strtoul(text, &end, 10)` with nothing allowed after the number:
/// whether a `-` was given, and the magnitude (`None` on overflow).
fn c_strtoul(text: &str) -> Option<(bool, u64)> {
    let s = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((negative, digits.parse().ok()?))
}

/// `virStrToLong_ui`: an `unsigned int`; `-n` is accepted and wraps
/// (`-1` is `4294967295`).
pub(crate) fn c_uint(text: &str) -> Option<u32> {
    match c_strtoul(text)? {
        (false, v) => u32::try_from(v).ok(),
        (true, v) => u32::try_from(v).ok().map(u32::wrapping_neg),
    }
}

/// `virStrToLong_uip`: an `unsigned int`, no minus sign.
pub(crate) fn c_uint_positive(text: &str) -> Option<u32> {
    match c_strtoul(text)? {
        (false, v) => u32::try_from(v).ok(),
        (true, _) => None,
    }
}

/// `virStrToLong_ulp`: an `unsigned long` (64 bits), no minus sign.
pub(crate) fn c_ulong_positive(text: &str) -> Option<u64> {
    match c_strtoul(text)? {
        (false, v) => Some(v),
        (true, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_like_inet_aton() {
        for (text, want) in [
            ("192.168.122.1", "192.168.122.1"),
            ("10.1", "10.0.0.1"),
            ("10.1.2", "10.1.0.2"),
            ("167772161", "10.0.0.1"),
            ("0x0a.0.0.1", "10.0.0.1"),
            ("012.0.0.1", "10.0.0.1"),
            ("0", "0.0.0.0"),
            ("255.255.255.255", "255.255.255.255"),
        ] {
            assert_eq!(
                parse_ipv4(text).map(|a| a.to_string()).as_deref(),
                Some(want),
                "{text}"
            );
        }
        for bad in [
            "",
            "256.0.0.1",
            "1.2.3.4.5",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.256",
            "1.2.65536",
            "08.0.0.1",
            "1.2.3.4 ",
            " 1.2.3.4",
            "0x",
            "1.2.3.x",
            "4294967296",
            "a.b.c.d",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
    }

    #[test]
    fn ipv6_printed_like_glibc() {
        for (text, want) in [
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("fd00::1", "fd00::1"),
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("1:0:1:0:0:1:0:0", "1:0:1::1:0:0"),
            ("1:0:0:1:0:0:1:1", "1::1:0:0:1:1"),
            ("1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::1:0:0:0:1", "::1:0:0:0:1"),
        ] {
            let addr = parse_ip(text).unwrap();
            assert_eq!(format_ip(addr), want, "{text}");
        }
        assert_eq!(parse_ip("fe80::1%eth0"), None);
        assert_eq!(parse_ip("1:2:3:4:5:6:7:8:9"), None);
    }

    #[test]
    fn ranges() {
        let ip = |s: &str| parse_ip(s).unwrap();
        let net = Some((ip("192.168.122.1"), Some(24)));
        assert_eq!(
            check_range(ip("192.168.122.2"), ip("192.168.122.254"), net),
            Ok(())
        );
        assert_eq!(check_range(ip("192.168.122.9"), ip("192.168.122.9"), net), Ok(()));
        let msg = |s: &str, e: &str, n| check_range(ip(s), ip(e), n).unwrap_err().message();
        assert_eq!(
            msg("192.168.122.0", "192.168.122.9", net),
            "internal error: start of range 192.168.122.0 - 192.168.122.9 in network 192.168.122.1/24 is the network address"
        );
        assert_eq!(
            msg("192.168.122.2", "192.168.122.255", net),
            "internal error: end of range 192.168.122.2 - 192.168.122.255 in network 192.168.122.1/24 is the broadcast address"
        );
        assert_eq!(
            msg("192.168.122.9", "192.168.122.2", net),
            "internal error: range 192.168.122.9 - 192.168.122.2 is reversed "
        );
        assert_eq!(
            msg("10.0.0.1", "10.1.0.1", Some((ip("10.0.0.254"), Some(8)))),
            "internal error: range 10.0.0.1 - 10.1.0.1 is too large (> 65535)"
        );
        assert_eq!(
            msg("10.0.0.2", "10.0.0.3", Some((ip("10.0.0.1"), None))),
            "internal error: bad prefix -1 for network 10.0.0.1 when checking range 10.0.0.2 - 10.0.0.3"
        );
        let v6 = Some((ip("fd00::1"), Some(64)));
        assert_eq!(check_range(ip("fd00::100"), ip("fd00::1ff"), v6), Ok(()));
        assert_eq!(check_range(ip("fd00::"), ip("fd00::ffff"), v6), Ok(()));
        assert_eq!(
            msg("fd00::200", "fd00::100", v6),
            "internal error: range fd00::200 - fd00::100 start larger than end"
        );
        assert_eq!(
            msg("fd00::1:0", "fd00::2:0", v6),
            "internal error: range fd00::1:0 - fd00::2:0 is too large (> 65535)"
        );
        assert_eq!(
            msg("fd01::2", "fd01::3", v6),
            "internal error: range fd01::2 - fd01::3 is not entirely within network fd00::1/64"
        );
        assert_eq!(
            msg("fd00::2", "10.0.0.1", v6),
            "internal error: mismatch of address family in range fd00::2 - 10.0.0.1"
        );
        assert_eq!(
            msg("10.0.0.2", "10.0.0.3", v6),
            "internal error: mismatch of address family in range 10.0.0.2 - 10.0.0.3 for network fd00::1"
        );
        // No network: only order and size.
        assert_eq!(check_range(ip("1.2.3.4"), ip("1.2.3.4"), None), Ok(()));
        let e = check_range(ip("1.2.3.4"), ip("1.2.3.3"), None).unwrap_err();
        assert_eq!((e.code(), e.domain()), (1, 0));
    }

    #[test]
    fn c_numbers() {
        assert_eq!(c_uint("1500"), Some(1500));
        assert_eq!(c_uint(" \t+9000"), Some(9000));
        assert_eq!(c_uint("-1"), Some(u32::MAX));
        assert_eq!(c_uint("-0"), Some(0));
        assert_eq!(c_uint("4294967296"), None);
        assert_eq!(c_uint("-4294967296"), None);
        for bad in ["", " ", "1 ", "1x", "0x10", "+", "--1"] {
            assert_eq!(c_uint(bad), None, "{bad:?}");
        }
        assert_eq!(c_uint_positive("24"), Some(24));
        assert_eq!(c_uint_positive("-0"), None);
        assert_eq!(c_ulong_positive("18446744073709551615"), Some(u64::MAX));
        assert_eq!(c_ulong_positive("18446744073709551616"), None);
        assert_eq!(c_ulong_positive("-5"), None);
    }
}
