//! DHCP and DNS for an active network, as libvirt provides them: a
//! `dnsmasq` of the network's own, bound to its bridge, when dnsmasq is
//! installed (`dnsmasq` on `PATH`, or `/usr/sbin/dnsmasq`). Its
//! configuration, host file and leases (dnsmasq's own lease file, which
//! `net-dhcp-leases` reads: [`super::leases`]) live in
//! `ROOT/var/lib/libvirt/dnsmasq/NAME.*`, its pid file is
//! `ROOT/run/libvirt/network/NAME.pid`. Without dnsmasq the network still
//! starts (as libvirt's does with no DHCP range), and says so in the log.

use crate::network::NetworkDef;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where one network's dnsmasq keeps its files.
#[derive(Debug, Clone)]
pub struct Files {
    pub conf: PathBuf,
    pub hosts: PathBuf,
    pub leases: PathBuf,
    pub pid: PathBuf,
}

impl Files {
    /// `lib` is `ROOT/var/lib/libvirt`, `status` `ROOT/run/libvirt/network`.
    pub fn new(lib: &Path, status: &Path, network: &str) -> Files {
        let dir = lib.join("dnsmasq");
        Files {
            conf: dir.join(format!("{network}.conf")),
            hosts: dir.join(format!("{network}.hostsfile")),
            leases: dir.join(format!("{network}.leases")),
            pid: status.join(format!("{network}.pid")),
        }
    }
}

/// The dnsmasq binary, if installed.
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("dnsmasq"))
        .find(|p| p.is_file())
}

/// Whether `def` needs a dnsmasq: an IPv4 address with a DHCP range or host.
pub fn wanted(def: &NetworkDef) -> bool {
    def.ips.iter().any(|ip| ip.is_ipv4() && !ip.dhcp.is_empty())
}

fn netmask(prefix: u8) -> std::net::Ipv4Addr {
    let bits = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    std::net::Ipv4Addr::from(bits)
}

/// dnsmasq's configuration for `def` on `bridge` (no I/O).
pub fn config(def: &NetworkDef, bridge: &str, files: &Files) -> String {
    let mut c = String::from(
        "## Written by modvirt's virtnetworkd for this network; changes are lost when it restarts.\n",
    );
    let _ = writeln!(c, "strict-order");
    let _ = writeln!(c, "pid-file={}", files.pid.display());
    let _ = writeln!(c, "except-interface=lo");
    let _ = writeln!(c, "bind-dynamic");
    let _ = writeln!(c, "interface={bridge}");
    let _ = writeln!(c, "user=root");
    if let Some(domain) = &def.domain {
        let _ = writeln!(c, "domain={}", domain.name);
        if domain.local_only == Some(true) {
            let _ = writeln!(c, "local=/{}/", domain.name);
        }
    }
    let mut leases = 0u64;
    for ip in def.ips.iter().filter(|ip| ip.is_ipv4()) {
        let prefix = ip.prefix().unwrap_or(24);
        for r in &ip.dhcp.ranges {
            let _ = writeln!(c, "dhcp-range={},{},{}", r.start, r.end, netmask(prefix));
            if let (IpAddr::V4(a), IpAddr::V4(b)) = (r.start, r.end) {
                leases += u64::from(u32::from(b).saturating_sub(u32::from(a))) + 1;
            }
        }
        if !ip.dhcp.hosts.is_empty() && ip.dhcp.ranges.is_empty() {
            let _ = writeln!(c, "dhcp-range={},static,{}", ip.address, netmask(prefix));
        }
        leases += ip.dhcp.hosts.len() as u64;
    }
    if leases > 0 {
        let _ = writeln!(c, "dhcp-no-override");
        let _ = writeln!(c, "dhcp-authoritative");
        let _ = writeln!(c, "dhcp-lease-max={leases}");
        let _ = writeln!(c, "dhcp-hostsfile={}", files.hosts.display());
        let _ = writeln!(c, "dhcp-leasefile={}", files.leases.display());
    }
    c
}

/// The `dhcp-hostsfile`: `MAC,IP[,NAME]` per `<host>`.
pub fn hosts(def: &NetworkDef) -> String {
    let mut out = String::new();
    for ip in def.ips.iter().filter(|ip| ip.is_ipv4()) {
        for h in &ip.dhcp.hosts {
            let Some(mac) = &h.mac else { continue };
            let _ = match &h.name {
                Some(name) => writeln!(out, "{mac},{},{name}", h.ip),
                None => writeln!(out, "{mac},{}", h.ip),
            };
        }
    }
    out
}

/// Starts dnsmasq for `def` and returns its pid.
pub fn start(binary: &Path, def: &NetworkDef, bridge: &str, files: &Files) -> Result<i32, String> {
    let write = |path: &Path, text: &str| {
        modvirt_runtime::fsutil::write_atomic(path, text.as_bytes())
            .map_err(|e| format!("cannot write '{}': {e}", path.display()))
    };
    write(&files.hosts, &hosts(def))?;
    write(&files.conf, &config(def, bridge, files))?;
    if let Some(dir) = files.pid.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&files.pid);
    // dnsmasq forks and exits once it is ready (its pid file written).
    // It keeps its leases in `dhcp-leasefile` itself (no `--leasefile-ro`
    // and lease script, unlike libvirt): that file is what
    // `net-dhcp-leases` reads (`super::leases`), and what a restarted
    // dnsmasq takes its leases back from.
    let out = std::process::Command::new(binary)
        .arg(format!("--conf-file={}", files.conf.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    read_pid(&files.pid).ok_or_else(|| format!("dnsmasq wrote no pid file '{}'", files.pid.display()))
}

fn read_pid(path: &Path) -> Option<i32> {
    for _ in 0..100 {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Stops the network's dnsmasq (if its pid file names a live dnsmasq).
pub fn stop(files: &Files) {
    let Some(pid) = std::fs::read_to_string(&files.pid)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() == "dnsmasq" {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
    let _ = std::fs::remove_file(&files.pid);
}

/// Removes the network's dnsmasq files (configuration, hosts, leases) once
/// the network itself is gone (undefined, or a transient one destroyed), as
/// libvirt does: a later network of the same name starts with no leases.
pub fn remove_files(files: &Files) {
    for path in [&files.conf, &files.hosts, &files.leases] {
        if let Err(e) = modvirt_runtime::fsutil::remove_if_present(path) {
            tracing::warn!(target: "network", "cannot remove '{}': {e}", path.display());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_for_libvirts_default_network() {
        let xml = "<network><name>default</name><forward mode='nat'/><bridge name='virbr0'/>\
                   <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp>\
                   <range start='192.168.122.2' end='192.168.122.254'/>\
                   <host mac='52:54:00:00:00:01' name='vm1' ip='192.168.122.10'/></dhcp></ip></network>";
        let def = NetworkDef::parse(xml, &mut || 7u64).unwrap();
        assert!(wanted(&def));
        let files = Files::new(
            Path::new("/r/var/lib/libvirt"),
            Path::new("/r/run/libvirt/network"),
            "default",
        );
        assert_eq!(
            config(&def, "virbr0", &files),
            "## Written by modvirt's virtnetworkd for this network; changes are lost when it restarts.\n\
             strict-order\npid-file=/r/run/libvirt/network/default.pid\nexcept-interface=lo\nbind-dynamic\n\
             interface=virbr0\nuser=root\ndhcp-range=192.168.122.2,192.168.122.254,255.255.255.0\n\
             dhcp-no-override\ndhcp-authoritative\ndhcp-lease-max=254\n\
             dhcp-hostsfile=/r/var/lib/libvirt/dnsmasq/default.hostsfile\n\
             dhcp-leasefile=/r/var/lib/libvirt/dnsmasq/default.leases\n"
        );
        assert_eq!(hosts(&def), "52:54:00:00:00:01,192.168.122.10,vm1\n");
    }

    #[test]
    fn no_dhcp_no_dnsmasq() {
        let def = NetworkDef::parse(
            "<network><name>n</name><ip address='10.0.0.1' prefix='24'/></network>",
            &mut || 7u64,
        )
        .unwrap();
        assert!(!wanted(&def));
    }
}
