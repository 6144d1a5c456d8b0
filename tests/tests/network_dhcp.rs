//! DHCP on a virtnetworkd NAT network, end to end: the daemon runs in a
//! network namespace of its own and starts the network (bridge + its
//! dnsmasq); the test makes a second namespace (a sleeping `unshare --net`
//! process, killed on drop, which takes the namespace and its links with
//! it), joins it to the bridge with a veth pair, and runs busybox's real
//! DHCP client `udhcpc` there. Then the lease must be in dnsmasq's lease
//! file and `virsh net-dhcp-leases` must list it as libvirt does.

use modvirt_tests::raw::{RawClient, assert_rpc_error};
use modvirt_tests::{
    ChildGuard, Daemon, DaemonOptions, err_stderr, ok_stdout, output_within, process_gone, require_tool,
    virsh_at, wait_for,
};
use modvirt_wire::network::{NetworkGetDhcpLeasesArgs, NetworkGetDhcpLeasesRet};
use modvirt_wire::remote::{ConnectOpenArgs, NonnullNetwork, Uuid};
use modvirt_wire::{ErrorCode, ErrorDomain, XdrDecode, XdrEncode};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BRIDGE: &str = "mvdhcp0";
const DYNAMIC_MAC: &str = "52:54:00:6d:00:01";
const FIXED_MAC: &str = "52:54:00:6d:00:02";
const FIXED_IP: &str = "10.78.0.50";

fn network_xml() -> String {
    format!(
        "<network>\n  <name>dhcpnet</name>\n  <forward mode='nat'/>\n  <bridge name='{BRIDGE}'/>\n  \
         <ip address='10.78.0.1' netmask='255.255.255.0'>\n    <dhcp>\n      \
         <range start='10.78.0.100' end='10.78.0.199'/>\n      \
         <host mac='{FIXED_MAC}' name='fixedvm' ip='{FIXED_IP}'/>\n    </dhcp>\n  </ip>\n</network>\n"
    )
}

/// `TOOL ARGS` inside the network namespace of process `pid`.
fn in_netns(pid: i32, tool: &str, args: &[&str]) -> Output {
    Command::new(require_tool("nsenter"))
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nsenter")
}

/// Like [`in_netns`], asserting success; returns stdout.
fn ok_in_netns(pid: i32, tool: &str, args: &[&str]) -> String {
    ok_stdout(&in_netns(pid, tool, args))
}

/// A network namespace of the test's own: a `sleep` started by
/// `unshare --net`. Killing it (on drop) ends the namespace, and with it
/// the veth ends inside, whose peers on the bridge go too.
struct ClientNetns {
    holder: ChildGuard,
}

impl ClientNetns {
    fn new() -> ClientNetns {
        let holder = ChildGuard::spawn(
            Command::new(require_tool("unshare"))
                .args(["--net", "--", "sleep", "600"])
                .stdin(Stdio::null()),
        );
        let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
        let pid = holder.pid();
        // unshare execs sleep once the namespace is made.
        let ready = wait_for(Duration::from_secs(5), || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
                && std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns != ours)
        });
        assert!(ready, "unshare --net did not make a namespace");
        ClientNetns { holder }
    }

    fn pid(&self) -> i32 {
        self.holder.pid()
    }

    /// A veth pair: `client_if` (with `mac`) here, `host_if` on the daemon's
    /// `bridge`, both up; waits until the bridge forwards on the port.
    fn plug(&self, daemon: i32, client_if: &str, mac: &str, host_if: &str, bridge: &str) {
        let netns = daemon.to_string();
        ok_in_netns(
            self.pid(),
            "ip",
            &[
                "link", "add", client_if, "address", mac, "type", "veth", "peer", "name", host_if, "netns",
                &netns,
            ],
        );
        ok_in_netns(self.pid(), "ip", &["link", "set", client_if, "up"]);
        ok_in_netns(daemon, "ip", &["link", "set", host_if, "master", bridge, "up"]);
        // The bridge runs STP: the port learns for a while before it forwards.
        let forwarding = wait_for(Duration::from_secs(30), || {
            ok_in_netns(daemon, "bridge", &["link", "show", "dev", host_if]).contains("state forwarding")
        });
        assert!(
            forwarding,
            "{host_if} never forwards: {}",
            ok_in_netns(daemon, "bridge", &["link", "show", "dev", host_if])
        );
    }

    /// Runs busybox `udhcpc` on `iface` until it has a lease (or gives up);
    /// returns what its event script saw: `bound ip=… subnet=…`.
    fn dhcp(&self, root: &Path, iface: &str, extra: &[&str]) -> String {
        let script = root.join("udhcpc-event.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n[ \"$1\" = bound ] && echo \"bound ip=$ip subnet=$subnet router=$router\"\nexit 0\n",
        )
        .expect("write udhcpc script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod udhcpc script");
        let mut cmd = Command::new(require_tool("nsenter"));
        cmd.arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .arg(require_tool("busybox"))
            .args([
                "udhcpc", "-i", iface, "-f", "-q", "-n", "-t", "10", "-T", "1", "-s",
            ])
            .arg(&script)
            .args(extra);
        let out = output_within(&mut cmd, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "udhcpc got no lease ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// The value of `key=` in udhcpc's `bound` line.
fn bound_field<'a>(bound: &'a str, key: &str) -> &'a str {
    bound
        .lines()
        .find(|l| l.starts_with("bound "))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        })
        .unwrap_or_else(|| panic!("no {key} in udhcpc's output: {bound}"))
}

/// The rows of `virsh net-dhcp-leases`, split in columns (the expiry time
/// is two: date and time).
fn lease_rows(out: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    for column in [
        "Expiry Time",
        "MAC address",
        "Protocol",
        "IP address",
        "Hostname",
        "Client ID or DUID",
    ] {
        assert!(header.contains(column), "no {column:?} column: {out}");
    }
    assert!(
        lines.next().is_some_and(|l| l.trim_start().starts_with("---")),
        "{out}"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// `NETWORK_GET_DHCP_LEASES` (341) as virsh never sends it: counting only,
/// and with flags.
fn raw_calls(d: &Daemon, uuid: &str) {
    let hex: Vec<u8> = uuid.trim().bytes().filter(u8::is_ascii_hexdigit).collect();
    let mut bytes = [0u8; 16];
    for (b, pair) in bytes.iter_mut().zip(hex.chunks(2)) {
        *b = u8::from_str_radix(std::str::from_utf8(pair).expect("hex"), 16).expect("uuid hex");
    }
    let mut c = RawClient::connect(&d.socket("sock"));
    c.auth_list();
    let open = ConnectOpenArgs {
        name: Some("network:///system".into()),
        flags: 0,
    };
    c.rpc_ok(1, &open.to_xdr());
    let args = |mac: Option<&str>, need_results: i32, flags: u32| {
        NetworkGetDhcpLeasesArgs {
            net: NonnullNetwork {
                name: "dhcpnet".into(),
                uuid: Uuid(bytes),
            },
            mac: mac.map(str::to_owned),
            need_results,
            flags,
        }
        .to_xdr()
    };
    let ret = NetworkGetDhcpLeasesRet::from_xdr(&c.rpc_ok(341, &args(None, 0, 0))).expect("ret");
    assert_eq!((ret.leases.len(), ret.ret), (0, 2), "counted, none sent");
    let ret = NetworkGetDhcpLeasesRet::from_xdr(&c.rpc_ok(341, &args(Some(FIXED_MAC), 1, 0))).expect("ret");
    assert_eq!(ret.ret, 1);
    let lease = &ret.leases[0];
    assert_eq!(
        (
            lease.iface.as_str(),
            lease.addr_type,
            lease.ipaddr.as_str(),
            lease.prefix
        ),
        (BRIDGE, 0, FIXED_IP, 24)
    );
    assert_eq!(lease.iaid, None);
    let e = c.rpc_err(341, &args(None, 1, 1));
    assert_rpc_error(
        &e,
        ErrorCode::INVALID_ARG,
        ErrorDomain::NETWORK,
        "invalid argument: unsupported flags (0x1) in function virNetworkGetDHCPLeases",
    );
    let e = c.rpc_err(341, &args(Some("52:54:00:6d:00"), 1, 0));
    assert_rpc_error(
        &e,
        ErrorCode(44),
        ErrorDomain::NETWORK,
        "invalid MAC address: 52:54:00:6d:00",
    );
}

#[test]
fn a_dhcp_client_gets_a_lease_and_net_dhcp_leases_lists_it() {
    require_tool("dnsmasq");
    require_tool("busybox");
    let d = Daemon::start(
        "virtnetworkd",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    let uri = format!(
        "network:///system?socket={}",
        d.run_dir().join("virtnetworkd-sock").display()
    );
    let virsh = |args: &[&str]| virsh_at(&uri, args);
    let xml = d.root.path().join("dhcpnet.xml");
    std::fs::write(&xml, network_xml()).expect("write xml");
    ok_stdout(&virsh(&["net-define", &xml.display().to_string()]));
    // Not started yet: no lease file, no leases (not an error).
    assert_eq!(
        lease_rows(&ok_stdout(&virsh(&["net-dhcp-leases", "dhcpnet"]))),
        Vec::<Vec<String>>::new()
    );
    ok_stdout(&virsh(&["net-start", "dhcpnet"]));
    let leases_file = d.root.path().join("var/lib/libvirt/dnsmasq/dhcpnet.leases");

    let client = ClientNetns::new();
    client.plug(d.pid(), "vc0", DYNAMIC_MAC, "vh0", BRIDGE);
    client.plug(d.pid(), "vc1", FIXED_MAC, "vh1", BRIDGE);

    // A client from the range, which sends a hostname.
    let bound = client.dhcp(d.root.path(), "vc0", &["-x", "hostname:guest1"]);
    let dynamic_ip = bound_field(&bound, "ip").to_owned();
    let last: u8 = dynamic_ip
        .strip_prefix("10.78.0.")
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("{dynamic_ip} is not in 10.78.0.0/24"));
    assert!((100..=199).contains(&last), "{dynamic_ip} is outside the range");
    assert_eq!(bound_field(&bound, "subnet"), "255.255.255.0", "{bound}");
    assert_eq!(bound_field(&bound, "router"), "10.78.0.1", "{bound}");
    // The <host> entry's MAC gets its fixed address.
    let bound = client.dhcp(d.root.path(), "vc1", &[]);
    assert_eq!(bound_field(&bound, "ip"), FIXED_IP, "{bound}");

    // dnsmasq wrote both leases to the file virtnetworkd reads.
    let mut text = String::new();
    let written = wait_for(Duration::from_secs(5), || {
        text = std::fs::read_to_string(&leases_file).unwrap_or_default();
        text.contains(&format!("{DYNAMIC_MAC} {dynamic_ip} guest1 01:{DYNAMIC_MAC}"))
            && text.contains(&format!("{FIXED_MAC} {FIXED_IP} "))
    });
    assert!(written, "leases file {}:\n{text}", leases_file.display());

    let out = ok_stdout(&virsh(&["net-dhcp-leases", "dhcpnet"]));
    let rows = lease_rows(&out);
    let cols = |r: &Vec<String>| r.iter().skip(2).map(String::as_str).collect::<Vec<_>>().join(" ");
    // virsh sorts by MAC address.
    assert_eq!(
        rows.iter().map(cols).collect::<Vec<_>>(),
        [
            format!("{DYNAMIC_MAC} ipv4 {dynamic_ip}/24 guest1 01:{DYNAMIC_MAC}"),
            format!("{FIXED_MAC} ipv4 {FIXED_IP}/24 fixedvm 01:{FIXED_MAC}"),
        ],
        "{out}"
    );
    // Expiry time: dnsmasq's (an hour from now, its default lease time),
    // which virsh prints in local time.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for row in &rows {
        let expiry: u64 = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(row[2].as_str()))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no lease of {} in:\n{text}", row[2]));
        assert!(
            (now + 3000..=now + 3700).contains(&expiry),
            "{expiry} vs now {now}"
        );
        let date = Command::new("date")
            .arg("-d")
            .arg(format!("@{expiry}"))
            .arg("+%Y-%m-%d %H:%M:%S")
            .output()
            .expect("run date");
        assert_eq!(
            format!("{} {}", row[0], row[1]),
            String::from_utf8_lossy(&date.stdout).trim(),
            "{out}"
        );
    }

    // --mac filters, whatever the case.
    let out = ok_stdout(&virsh(&[
        "net-dhcp-leases",
        "dhcpnet",
        "--mac",
        &FIXED_MAC.to_uppercase(),
    ]));
    let rows = lease_rows(&out);
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0][2], FIXED_MAC, "{out}");
    assert_eq!(rows[0][4], format!("{FIXED_IP}/24"), "{out}");
    let out = ok_stdout(&virsh(&[
        "net-dhcp-leases",
        "dhcpnet",
        "--mac",
        "52:54:00:99:99:99",
    ]));
    assert!(lease_rows(&out).is_empty(), "{out}");
    let e = err_stderr(&virsh(&["net-dhcp-leases", "dhcpnet", "--mac", "52:54:zz"]));
    assert!(e.contains("invalid MAC address: 52:54:zz"), "{e}");
    let e = err_stderr(&virsh(&["net-dhcp-leases", "nosuch"]));
    assert!(
        e.contains("Network not found: no network with matching name 'nosuch'"),
        "{e}"
    );

    raw_calls(&d, &ok_stdout(&virsh(&["net-uuid", "dhcpnet"])));

    // As in libvirt, a stopped network's unexpired leases are still listed;
    // undefining it removes them.
    let dnsmasq: i32 = std::fs::read_to_string(d.root.path().join("run/libvirt/network/dhcpnet.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .expect("dnsmasq pid file");
    ok_stdout(&virsh(&["net-destroy", "dhcpnet"]));
    assert!(
        wait_for(Duration::from_secs(5), || process_gone(dnsmasq)),
        "dnsmasq stopped"
    );
    // Lines that are not leases are skipped, not fatal.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&leases_file)
        .expect("open leases file");
    std::io::Write::write_all(
        &mut file,
        b"garbage\n1 2 3 4 5\n\xff\xfe\n1795690810 52:54:00:6d:00",
    )
    .expect("append");
    drop(file);
    let out = ok_stdout(&virsh(&["net-dhcp-leases", "dhcpnet"]));
    assert_eq!(lease_rows(&out).len(), 2, "{out}");
    ok_stdout(&virsh(&["net-undefine", "dhcpnet"]));
    assert!(!leases_file.exists(), "the leases file outlived its network");
    drop(client);
}
