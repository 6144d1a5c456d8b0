//! `NETWORK_GET_DHCP_LEASES` (`virsh net-dhcp-leases`): the leases the
//! network's dnsmasq has handed out, read from dnsmasq's own lease file
//! `ROOT/var/lib/libvirt/dnsmasq/NAME.leases` (libvirt instead has dnsmasq
//! run a helper that keeps a JSON file per bridge; the facts are the same).
//!
//! dnsmasq rewrites that file whole after every change, one lease a line:
//!
//! ```text
//! EXPIRY MAC IPV4 HOSTNAME CLIENT-ID     1717000000 52:54:00:aa:bb:cc 10.0.0.9 vm1 01:52:54:00:aa:bb:cc
//! duid SERVER-DUID                       (before any DHCPv6 lease)
//! EXPIRY IAID IPV6 HOSTNAME CLIENT-DUID  (DHCPv6: no MAC address)
//! ```
//!
//! `EXPIRY` is in seconds since the epoch (0: never), `*` stands for no
//! hostname or client id. A file that is missing holds no leases; a line
//! that cannot be read (a half-written last line, a DHCPv6 lease, which
//! names no MAC and so is never reported, as in libvirt) is skipped with a
//! debug log line.
//!
//! As in libvirt, the network need not be active (a stopped network's
//! leases are listed until they expire), expired leases are left out, the
//! `mac` filter compares parsed addresses (so case does not matter), and
//! each lease gets the network's bridge and the prefix of its `<ip>` of
//! the same family.

use super::Core;
use crate::network::{IpMask, NetworkDef};
use modvirt_runtime::dispatch::{CallResult, check_flags, decode_args, encode_ret};
use modvirt_wire::network::{
    NETWORK_DHCP_LEASES_MAX, NetworkDhcpLease, NetworkGetDhcpLeasesArgs, NetworkGetDhcpLeasesRet,
    ip_addr_type,
};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::io::Read as _;
use std::net::IpAddr;
use std::path::Path;

/// `VIR_ERR_INVALID_MAC`.
const INVALID_MAC: ErrorCode = ErrorCode(44);

/// libvirt's cap on the size of a lease file it reads (32 MiB).
const FILE_SIZE_MAX: u64 = 32 * 1024 * 1024;

/// One DHCPv4 lease from dnsmasq's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Seconds since the epoch; 0 for a lease that never expires.
    pub expiry: i64,
    pub mac: [u8; 6],
    /// The MAC address as dnsmasq wrote it.
    pub mac_text: String,
    pub ip: IpAddr,
    pub hostname: Option<String>,
    pub client_id: Option<String>,
}

/// Why a line of the lease file is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseLineError {
    #[error("{0} fields where a lease has 5")]
    FieldCount(usize),
    #[error("expiry time '{0}' is not a number of seconds")]
    Expiry(String),
    #[error("'{0}' is neither an IP address nor a DHCPv6 lease's")]
    Address(String),
    #[error("a DHCPv6 lease, which names no MAC address")]
    Ipv6,
    #[error("'{0}' is not a MAC address")]
    Mac(String),
}

pub use modvirt_xml::parse_mac;

fn star_is_none(field: Option<&str>) -> Option<String> {
    field.filter(|f| *f != "*").map(str::to_owned)
}

/// One line of the file: `Ok(None)` for what is not a lease (blank, `duid`).
pub fn parse_line(line: &str) -> Result<Option<Lease>, LeaseLineError> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.first() {
        None => return Ok(None),
        Some(&"duid") => return Ok(None),
        Some(_) => {}
    }
    if !(4..=5).contains(&fields.len()) {
        return Err(LeaseLineError::FieldCount(fields.len()));
    }
    let expiry = fields[0]
        .parse::<i64>()
        .map_err(|_| LeaseLineError::Expiry(fields[0].to_owned()))?;
    let ip: IpAddr = fields[2]
        .parse()
        .map_err(|_| LeaseLineError::Address(fields[2].to_owned()))?;
    if ip.is_ipv6() {
        return Err(LeaseLineError::Ipv6);
    }
    let mac = parse_mac(fields[1]).ok_or_else(|| LeaseLineError::Mac(fields[1].to_owned()))?;
    Ok(Some(Lease {
        expiry,
        mac,
        mac_text: fields[1].to_owned(),
        ip,
        hostname: star_is_none(fields.get(3).copied()),
        client_id: star_is_none(fields.get(4).copied()),
    }))
}

/// Every lease in the text of a lease file, skipping (and logging at debug
/// level) the lines that are not one.
pub fn parse(text: &str, file: &Path) -> Vec<Lease> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(lease)) => out.push(lease),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(target: "network", "{}:{}: skipped: {e}", file.display(), n + 1)
            }
        }
    }
    out
}

/// The leases in `path`; none when there is no such file.
pub fn read(path: &Path) -> Result<Vec<Lease>, RpcError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        RpcError::plain(
            ErrorCode::SYSTEM_ERROR,
            ErrorDomain::NETWORK,
            format!("Unable to read leases file: {}: {e}", path.display()),
        )
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(unreadable(&e)),
    };
    let mut bytes = Vec::new();
    file.take(FILE_SIZE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(&e))?;
    if bytes.len() as u64 > FILE_SIZE_MAX {
        return Err(unreadable(&format!("larger than {FILE_SIZE_MAX} bytes")));
    }
    Ok(parse(&String::from_utf8_lossy(&bytes), path))
}

/// The prefix libvirt reports for a lease of `ip`'s family: that of the
/// network's first `<ip>` of the family (0 without one).
fn prefix_for(def: &NetworkDef, ip: IpAddr) -> u32 {
    let Some(net_ip) = def.ips.iter().find(|d| d.address.is_ipv4() == ip.is_ipv4()) else {
        return 0;
    };
    let prefix = if ip.is_ipv4() {
        net_ip.prefix()
    } else {
        // libvirt takes an IPv6 `<ip>`'s prefix as written.
        match net_ip.mask {
            IpMask::Prefix(p) => Some(p),
            _ => None,
        }
    };
    prefix.map_or(0, u32::from)
}

/// The leases of `def` (its bridge `iface`) in `all` that are not expired
/// at `now` and, with `mac`, belong to it, as the wire carries them.
pub fn select(
    def: &NetworkDef,
    iface: &str,
    all: &[Lease],
    mac: Option<[u8; 6]>,
    now: i64,
) -> Vec<NetworkDhcpLease> {
    all.iter()
        .filter(|l| mac.is_none_or(|m| m == l.mac))
        .filter(|l| l.expiry <= 0 || l.expiry >= now)
        .map(|l| NetworkDhcpLease {
            iface: iface.to_owned(),
            expirytime: l.expiry,
            addr_type: if l.ip.is_ipv4() {
                ip_addr_type::IPV4
            } else {
                ip_addr_type::IPV6
            },
            mac: Some(l.mac_text.clone()),
            iaid: None,
            ipaddr: l.ip.to_string(),
            prefix: prefix_for(def, l.ip),
            hostname: l.hostname.clone(),
            clientid: l.client_id.clone(),
        })
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `NETWORK_GET_DHCP_LEASES`.
pub(super) fn get_dhcp_leases(core: &Core, p: &[u8], proc_: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkGetDhcpLeasesArgs = decode_args(p)?;
    check_flags(a.flags, 0, proc_)?;
    let mac = match &a.mac {
        Some(text) => Some(parse_mac(text).ok_or_else(|| {
            RpcError::new(
                INVALID_MAC,
                ErrorDomain::NETWORK,
                "invalid MAC address",
                text.as_str(),
            )
        })?),
        None => None,
    };
    let (def, path) = {
        let nets = core.nets();
        let net = nets.get(&a.net)?;
        (
            net.shown(false).clone(),
            core.store.dnsmasq_files(&net.def.name).leases,
        )
    };
    // Only networks with a bridge of their own run a dnsmasq.
    let Some(iface) = def.bridge_name().filter(|_| def.needs_bridge()) else {
        return encode_ret(&NetworkGetDhcpLeasesRet {
            leases: Vec::new(),
            ret: 0,
        });
    };
    let leases = select(&def, iface, &read(&path)?, mac, now());
    if leases.len() > NETWORK_DHCP_LEASES_MAX as usize {
        return Err(RpcError::new(
            ErrorCode::INTERNAL_ERROR,
            ErrorDomain::NETWORK,
            "internal error",
            format!(
                "Number of leases is {}, which exceeds max limit: {NETWORK_DHCP_LEASES_MAX}",
                leases.len()
            ),
        ));
    }
    let ret = leases.len() as u32;
    encode_ret(&NetworkGetDhcpLeasesRet {
        leases: if a.need_results != 0 { leases } else { Vec::new() },
        ret,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FILE: &str = "\
1717000000 52:54:00:aa:bb:cc 10.77.0.9 vm1 01:52:54:00:aa:bb:cc
0 52:54:00:00:00:01 10.77.0.10 * *
duid 00:01:00:01:2d:aa:bb:cc:52:54:00:00:00:ff

garbage
1717000000 52:54:00:aa:bb:cc
soon 52:54:00:aa:bb:cd 10.77.0.11 * *
1717000000 52:54:00:aa:bb 10.77.0.12 * *
1717000000 52:54:00:aa:bb:ce 10.77.0.300 * *
1717000000 1234567 fd00::9 vm6 00:01:00:01:aa:bb
1717000000 52:54:00:AA:BB:CF 10.77.0.13 noid
1717000000 52:54:00:aa:bb:d0 10.77.0.14 h 01:ff extra
1717000000 52:54:00:aa:bb:d1 10.77.0.1";

    fn def() -> NetworkDef {
        NetworkDef::parse(
            "<network><name>n</name><forward mode='nat'/><bridge name='virbr3'/>\
             <ip address='10.77.0.1' netmask='255.255.255.0'/>\
             <ip family='ipv6' address='fd00::1' prefix='64'/></network>",
            &mut || 7u64,
        )
        .unwrap()
    }

    #[test]
    fn lease_lines_and_what_is_skipped() {
        let leases = parse(FILE, Path::new("n.leases"));
        let got: Vec<(&str, String, Option<&str>, Option<&str>)> = leases
            .iter()
            .map(|l| {
                (
                    l.mac_text.as_str(),
                    l.ip.to_string(),
                    l.hostname.as_deref(),
                    l.client_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "52:54:00:aa:bb:cc",
                    "10.77.0.9".to_owned(),
                    Some("vm1"),
                    Some("01:52:54:00:aa:bb:cc")
                ),
                ("52:54:00:00:00:01", "10.77.0.10".to_owned(), None, None),
                ("52:54:00:AA:BB:CF", "10.77.0.13".to_owned(), Some("noid"), None),
            ]
        );
        assert_eq!(leases[0].expiry, 1_717_000_000);
        assert_eq!(leases[1].expiry, 0);
        assert_eq!(leases[2].mac, [0x52, 0x54, 0, 0xaa, 0xbb, 0xcf]);
    }

    #[test]
    fn why_a_line_is_skipped() {
        let err = |l: &str| parse_line(l).unwrap_err();
        assert_eq!(err("garbage"), LeaseLineError::FieldCount(1));
        assert_eq!(
            err("1717000000 52:54:00:aa:bb:d0 10.77.0.14 h 01:ff extra"),
            LeaseLineError::FieldCount(6)
        );
        assert_eq!(
            err("soon 52:54:00:aa:bb:cd 10.77.0.11 * *"),
            LeaseLineError::Expiry("soon".into())
        );
        assert_eq!(
            err("1 52:54:00:aa:bb 10.77.0.12 * *"),
            LeaseLineError::Mac("52:54:00:aa:bb".into())
        );
        assert_eq!(
            err("1 52:54:00:aa:bb:ce 10.77.0.300 * *"),
            LeaseLineError::Address("10.77.0.300".into())
        );
        assert_eq!(err("1 1234567 fd00::9 vm6 00:01"), LeaseLineError::Ipv6);
        assert_eq!(parse_line("   "), Ok(None));
        assert_eq!(parse_line("duid 00:01"), Ok(None));
        // Nothing panics on arbitrary bytes.
        for junk in [
            "\u{0}\u{1}",
            "9999999999999999999999 a b c d",
            "- - - -",
            "1 ::::: 1.2.3.4 * *",
        ] {
            assert!(parse_line(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn selection_filters_expired_and_by_mac_and_fills_in_the_network() {
        let all = parse(FILE, Path::new("n.leases"));
        let now = 1_717_000_001;
        // Only the lease that never expires is current at `now`.
        let got = select(&def(), "virbr3", &all, None, now);
        assert_eq!(
            got,
            [NetworkDhcpLease {
                iface: "virbr3".into(),
                expirytime: 0,
                addr_type: ip_addr_type::IPV4,
                mac: Some("52:54:00:00:00:01".into()),
                iaid: None,
                ipaddr: "10.77.0.10".into(),
                prefix: 24,
                hostname: None,
                clientid: None,
            }]
        );
        let earlier = select(&def(), "virbr3", &all, None, 1_700_000_000);
        assert_eq!(earlier.len(), 3);
        let mac = parse_mac("52:54:00:aa:bb:CF");
        let one = select(&def(), "virbr3", &all, mac, 1_700_000_000);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].ipaddr, "10.77.0.13");
        assert_eq!(one[0].hostname.as_deref(), Some("noid"));
        assert!(select(&def(), "virbr3", &all, parse_mac("52:54:00:99:99:99"), 0).is_empty());
    }

    #[test]
    fn a_missing_file_has_no_leases_and_an_unreadable_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(&dir.path().join("none.leases")).unwrap(), []);
        let e = read(dir.path()).unwrap_err();
        assert_eq!(e.code, ErrorCode::SYSTEM_ERROR);
        assert!(
            e.text().starts_with("Unable to read leases file: "),
            "{}",
            e.text()
        );
        let file = dir.path().join("n.leases");
        std::fs::write(&file, b"1 52:54:00:aa:bb:cc 10.0.0.2 \xff\xfe *\n\xff\n").unwrap();
        let leases = read(&file).unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].ip.to_string(), "10.0.0.2");
    }
}
