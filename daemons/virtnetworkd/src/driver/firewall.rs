//! Forwarding and NAT for an active `nat` or `route` network, with
//! nftables when `nft` is installed: one table per network,
//! `ip modvirt_net_NAME`, so that destroying the network removes exactly
//! its rules (`nft delete table`). The rules are libvirt's: guests' traffic
//! leaving the network is accepted (and masqueraded for `nat`, ports
//! 1024–65535 for TCP/UDP, multicast and broadcast left alone), replies
//! come back in, traffic between guests passes, and anything else to or
//! from the bridge is rejected. IPv4 forwarding is switched on, as libvirt
//! does. Without `nft` the network starts without them (logged).

use crate::network::{ForwardMode, NetworkDef};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The `nft` binary, if installed.
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("nft"))
        .find(|p| p.is_file())
}

/// The table holding network `name`'s rules.
pub fn table(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("modvirt_net_{safe}")
}

/// The IPv4 networks (`a.b.c.d/len`) of `def`.
fn subnets(def: &NetworkDef) -> Vec<String> {
    def.ips
        .iter()
        .filter_map(|ip| match (ip.address, ip.prefix()) {
            (IpAddr::V4(a), Some(p)) => {
                let mask = if p == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(p.min(32)))
                };
                Some(format!("{}/{p}", std::net::Ipv4Addr::from(u32::from(a) & mask)))
            }
            _ => None,
        })
        .collect()
}

/// Whether `def` gets rules: `nat` or `route` with an IPv4 subnet.
pub fn wanted(def: &NetworkDef) -> bool {
    matches!(def.forward.mode, ForwardMode::Nat | ForwardMode::Route) && !subnets(def).is_empty()
}

/// The nft script creating the network's table (no I/O).
pub fn rules(def: &NetworkDef, bridge: &str) -> String {
    let t = table(&def.name);
    let mut s = String::new();
    let _ = writeln!(s, "table ip {t} {{");
    let _ = writeln!(s, "  chain forward {{");
    let _ = writeln!(s, "    type filter hook forward priority filter; policy accept;");
    for net in subnets(def) {
        let _ = writeln!(
            s,
            "    oifname \"{bridge}\" ip daddr {net} ct state related,established accept"
        );
        let _ = writeln!(s, "    iifname \"{bridge}\" ip saddr {net} accept");
    }
    let _ = writeln!(s, "    iifname \"{bridge}\" oifname \"{bridge}\" accept");
    let _ = writeln!(s, "    oifname \"{bridge}\" reject");
    let _ = writeln!(s, "    iifname \"{bridge}\" reject");
    let _ = writeln!(s, "  }}");
    if def.forward.mode == ForwardMode::Nat {
        let _ = writeln!(s, "  chain postrouting {{");
        let _ = writeln!(s, "    type nat hook postrouting priority srcnat; policy accept;");
        for net in subnets(def) {
            let _ = writeln!(s, "    ip saddr {net} ip daddr 224.0.0.0/24 return");
            let _ = writeln!(s, "    ip saddr {net} ip daddr 255.255.255.255 return");
            let _ = writeln!(
                s,
                "    meta l4proto {{ tcp, udp }} ip saddr {net} ip daddr != {net} masquerade to :1024-65535"
            );
            let _ = writeln!(s, "    ip saddr {net} ip daddr != {net} masquerade");
        }
        let _ = writeln!(s, "  }}");
    }
    let _ = writeln!(s, "}}");
    s
}

fn nft(binary: &Path, args: &[&str], input: Option<&str>) -> Result<(), String> {
    let mut child = std::process::Command::new(binary)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot feed {}: {e}", binary.display()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {} failed: {}",
            binary.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Adds the network's table and switches IPv4 forwarding on.
pub fn start(binary: &Path, def: &NetworkDef, bridge: &str) -> Result<(), String> {
    // A table left by a daemon that died goes first.
    let _ = nft(binary, &["delete", "table", "ip", &table(&def.name)], None);
    nft(binary, &["-f", "-"], Some(&rules(def, bridge)))?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1\n")
        .map_err(|e| format!("cannot enable IPv4 forwarding: {e}"))
}

/// Removes the network's table.
pub fn stop(binary: &Path, name: &str) -> Result<(), String> {
    nft(binary, &["delete", "table", "ip", &table(name)], None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nat_rules_cover_the_subnet_and_the_bridge() {
        let def = NetworkDef::parse(
            "<network><name>my-net</name><forward mode='nat'/><ip address='10.77.0.1' netmask='255.255.255.0'/></network>",
            &mut || 7u64,
        )
        .unwrap();
        assert!(wanted(&def));
        let r = rules(&def, "virbr3");
        assert!(r.starts_with("table ip modvirt_net_my_net {\n"), "{r}");
        assert!(
            r.contains("    iifname \"virbr3\" ip saddr 10.77.0.0/24 accept\n"),
            "{r}"
        );
        assert!(
            r.contains("    meta l4proto { tcp, udp } ip saddr 10.77.0.0/24 ip daddr != 10.77.0.0/24 masquerade to :1024-65535\n"),
            "{r}"
        );
    }

    #[test]
    fn routed_networks_forward_without_masquerade_and_isolated_get_nothing() {
        let routed = NetworkDef::parse(
            "<network><name>r</name><forward mode='route'/><ip address='10.78.0.1' prefix='24'/></network>",
            &mut || 7u64,
        )
        .unwrap();
        assert!(wanted(&routed) && !rules(&routed, "virbr1").contains("masquerade"));
        let isolated = NetworkDef::parse(
            "<network><name>i</name><ip address='10.79.0.1' prefix='24'/></network>",
            &mut || 7u64,
        )
        .unwrap();
        assert!(!wanted(&isolated));
    }
}
