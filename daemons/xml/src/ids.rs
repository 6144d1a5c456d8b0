//! Identifiers a definition gets when the XML leaves them out: the domain
//! UUID (version 4, random) and interface MAC addresses (libvirt's QEMU
//! prefix `52:54:00`). The randomness comes from the caller through
//! [`RandomSource`], so this module does no I/O and tests are repeatable.

use std::fmt;

use crate::XmlError;

/// Where generated UUIDs and MACs take their randomness from. Any
/// `FnMut() -> u64` is one: `&mut || rng.next_u64()`.
pub trait RandomSource {
    fn next_u64(&mut self) -> u64;
}

impl<F: FnMut() -> u64> RandomSource for F {
    fn next_u64(&mut self) -> u64 {
        self()
    }
}

/// A SplitMix64 generator shared by a daemon's calls (an atomic counter: no
/// lock), for the UUIDs and MACs definitions leave out. The seed comes from
/// the caller (a daemon seeds it from the kernel once), so this does no I/O.
/// `&mut &rng` is a [`RandomSource`].
#[derive(Debug)]
pub struct SharedRng(std::sync::atomic::AtomicU64);

impl SharedRng {
    pub fn new(seed: u64) -> SharedRng {
        SharedRng(std::sync::atomic::AtomicU64::new(seed))
    }
}

impl RandomSource for &SharedRng {
    fn next_u64(&mut self) -> u64 {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self
            .0
            .fetch_add(GAMMA, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A random (version 4, RFC 4122 variant) UUID.
pub fn generate_uuid(rng: &mut dyn RandomSource) -> [u8; 16] {
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
    uuid[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// A UUID the way libvirt prints it: lower-case, `8-4-4-4-12`.
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Parses a UUID the way libvirt's `virUUIDParse` accepts it: 32 hex
/// digits in pairs, with `-` or spaces allowed between the pairs and
/// white space around the whole.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let mut chars = text.trim_start().chars().peekable();
    let mut uuid = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        let c = chars.next()?;
        if c == '-' || c == ' ' {
            continue;
        }
        let hi = c.to_digit(16)?;
        let lo = chars.next()?.to_digit(16)?;
        // Both digits are < 16, so the byte cannot overflow.
        uuid[i] = (hi * 16 + lo) as u8;
        i += 1;
    }
    chars.all(char::is_whitespace).then_some(uuid)
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The prefix libvirt gives the MACs it makes up for QEMU guests.
    pub const QEMU_PREFIX: [u8; 3] = [0x52, 0x54, 0x00];

    /// `52:54:00:xx:xx:xx` with three random bytes.
    pub fn generate(rng: &mut dyn RandomSource) -> Self {
        let r = rng.next_u64().to_be_bytes();
        let p = Self::QEMU_PREFIX;
        Self([p[0], p[1], p[2], r[5], r[6], r[7]])
    }

    /// Parses `xx:xx:xx:xx:xx:xx` (one or two hex digits per byte), refusing
    /// multicast addresses, with libvirt's messages.
    pub fn parse(text: &str) -> Result<Self, XmlError> {
        let mac = mac_bytes(text)
            .ok_or_else(|| XmlError::BadMac(format!("unable to parse mac address '{text}'")))?;
        if mac[0] & 1 == 1 {
            return Err(XmlError::BadMac(format!(
                "expected unicast mac address, found multicast '{text}'"
            )));
        }
        Ok(Self(mac))
    }
}

/// Six groups of one or two hex digits split by `:`, nothing else.
fn mac_bytes(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// libvirt's `virMacAddrParse`: six groups of one or two hex digits split
/// by `:`; anything from a blank or control character on is ignored (lease
/// files, nwfilter attributes). Any address, multicast included.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let end = text.find(|c: char| c <= ' ').unwrap_or(text.len());
    mac_bytes(&text[..end])
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_rng_is_splitmix64() {
        // SplitMix64's reference outputs for seed 0.
        let rng = SharedRng::new(0);
        let mut r = &rng;
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let uuid = generate_uuid(&mut &rng);
        assert_eq!((uuid[6] >> 4, uuid[8] >> 6), (4, 2));
    }

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 0x0123_4567_89ab_cdefu64;
        move || {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            n
        }
    }

    #[test]
    fn generated_uuid_is_version_4() {
        let mut rng = counter();
        for _ in 0..100 {
            let uuid = generate_uuid(&mut rng);
            let s = format_uuid(&uuid);
            assert_eq!(s.len(), 36);
            let groups: Vec<&str> = s.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(groups[2].starts_with('4'), "{s}");
            assert!(
                matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "{s}"
            );
            assert!(
                s.chars()
                    .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
            );
            assert_eq!(parse_uuid(&s), Some(uuid));
        }
    }

    #[test]
    fn uuid_parsing_like_libvirt() {
        let want = parse_uuid("6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001").unwrap();
        assert_eq!(format_uuid(&want), "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001");
        assert_eq!(parse_uuid("6a1f0b3e52c44c1e9d2a0c0ffee00001"), Some(want));
        assert_eq!(
            parse_uuid("  6A1F0B3E-52C4-4C1E-9D2A-0C0FFEE00001 \n"),
            Some(want)
        );
        assert_eq!(parse_uuid("6a1f0b3e-52c4-4c1e-9d2a-0c0ffee0000"), None);
        assert_eq!(parse_uuid("6a1f0b3e-52c4-4c1e-9d2a-0c0ffee000011"), None);
        assert_eq!(parse_uuid("6a1f0b3e-52c4-4c1e-9d2a-0c0ffee0000g"), None);
        assert_eq!(parse_uuid("6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001 x"), None);
        assert_eq!(parse_uuid(""), None);
        assert_eq!(parse_uuid("é"), None);
    }

    #[test]
    fn generated_mac_has_qemu_prefix() {
        let mut rng = counter();
        for _ in 0..100 {
            let mac = MacAddr::generate(&mut rng);
            let s = mac.to_string();
            assert!(s.starts_with("52:54:00:"), "{s}");
            assert_eq!(s.len(), 17);
            assert_eq!(MacAddr::parse(&s), Ok(mac));
        }
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            MacAddr::parse("52:54:0:a:B:ff").unwrap().to_string(),
            "52:54:00:0a:0b:ff"
        );
        for bad in [
            "",
            "52:54:00:00:00",
            "52:54:00:00:00:00:00",
            "52:54:00:00:00:100",
            "zz:54:00:00:00:00",
        ] {
            let e = MacAddr::parse(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("invalid argument: unable to parse mac address '{bad}'")
            );
            assert!(matches!(e, XmlError::BadMac(_)));
        }
        let e = MacAddr::parse("01:00:5e:00:00:01").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: expected unicast mac address, found multicast '01:00:5e:00:00:01'"
        );
    }

    #[test]
    fn macs_parse_as_libvirt_parses_them() {
        assert_eq!(
            parse_mac("52:54:0:a:BB:cc"),
            Some([0x52, 0x54, 0, 0xa, 0xbb, 0xcc])
        );
        assert_eq!(parse_mac("01:00:5e:00:00:01\n"), Some([1, 0, 0x5e, 0, 0, 1]));
        for bad in [
            "",
            "52:54:00:aa:bb",
            "52:54:00:aa:bb:cc:dd",
            "52-54-00-aa-bb-cc",
            "152:54:00:aa:bb:cc",
            "+2:54:00:aa:bb:cc",
            "52:54:00:aa:bb:",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }
}
