//! Guests on virtnetworkd's networks, end to end: the real virsh talks to
//! virtqemud alone, which starts virtnetworkd as its peer for the network
//! calls, asks it for the bridge of a guest's `<interface type='network'>`,
//! plugs a tap (`vnetN`) into that bridge and hands it to a real QEMU (TCG).
//! virtqemud runs in a network namespace of its own (its peers and guests
//! share it); links are checked there with the real `ip`.

use modvirt_tests::{
    ChildGuard, Daemon, DaemonOptions, PidGuard, err_stderr, ok_stdout, process_gone, require_tool, virsh_at,
    wait_for,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const NAT_NET: &str = "<network>\n  <name>mvnet</name>\n  <forward mode='nat'/>\n  <ip address='10.77.0.1' netmask='255.255.255.0'/>\n</network>\n";

const SECOND_NET: &str = "<network>\n  <name>mvnet2</name>\n  <forward mode='nat'/>\n  <bridge name='mvbr1'/>\n  <ip address='10.78.0.1' netmask='255.255.255.0'/>\n</network>\n";

/// A guest without disks whose NICs are `interfaces` (`(network, mac)`).
fn guest_xml(name: &str, n: u8, interfaces: &[(&str, &str)]) -> String {
    let nics: String = interfaces
        .iter()
        .map(|(net, mac)| {
            format!(
                "    <interface type='network'>\n      <mac address='{mac}'/>\n      <source network='{net}'/>\n      \
                 <model type='virtio'/>\n    </interface>\n"
            )
        })
        .collect();
    format!(
        "<domain type='qemu'>\n  <name>{name}</name>\n  <uuid>6a1f0b3e-52c4-4c1e-9d2a-0c0ffee0{n:04x}</uuid>\n  \
         <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  \
         </os>\n  <devices>\n{nics}  </devices>\n</domain>\n"
    )
}

/// Kills, by pid, every QEMU started under `root` (their pid files) and
/// every virtnetworkd seen or named by its pid file, whatever happened in
/// the test.
struct Guests {
    root: PathBuf,
    peers: Vec<PidGuard>,
}

impl Guests {
    fn qemu_pids(&self) -> Vec<i32> {
        std::fs::read_dir(self.root.join("var/lib/libvirt/qemu"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("qemu.pid")).ok())
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }

    /// Guards the virtnetworkd running now (its pid file), once it wrote it.
    fn guard_virtnetworkd(&mut self) -> i32 {
        let file = self.root.join("run/virtnetworkd.pid");
        let mut pid = 0;
        let written = wait_for(Duration::from_secs(5), || {
            pid = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            pid > 0 && !process_gone(pid)
        });
        assert!(written, "virtnetworkd wrote no pid file");
        self.peers.push(PidGuard(pid));
        pid
    }
}

impl Drop for Guests {
    fn drop(&mut self) {
        for pid in self.qemu_pids() {
            kill9(pid);
        }
        // Also a virtnetworkd started after the last `guard_virtnetworkd`
        // (a test that failed half-way).
        let current = std::fs::read_to_string(self.root.join("run/virtnetworkd.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        if let Some(pid) = current.filter(|pid| *pid > 1) {
            kill9(pid);
        }
    }
}

fn kill9(pid: i32) {
    if !process_gone(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

/// virtqemud in a network namespace of its own, with the NAT network
/// `mvnet` defined through it (which starts virtnetworkd beside it).
fn qemud_with_network() -> (Daemon, Guests) {
    require_tool("qemu-system-x86_64");
    let d = Daemon::start(
        "virtqemud",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    let mut g = Guests {
        root: d.root.path().to_owned(),
        peers: Vec::new(),
    };
    let file = write(&d, "mvnet.xml", NAT_NET);
    let out = ok_stdout(&d.virsh(&["net-define", &file]));
    assert!(out.contains("Network mvnet defined"), "{out}");
    g.guard_virtnetworkd();
    (d, g)
}

fn write(d: &Daemon, name: &str, text: &str) -> String {
    let path = d.root.path().join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

fn define(d: &Daemon, name: &str, n: u8, interfaces: &[(&str, &str)]) {
    let file = write(d, &format!("{name}.xml"), &guest_xml(name, n, interfaces));
    ok_stdout(&d.virsh(&["define", &file]));
}

/// `ip ARGS…` inside the network namespace of process `pid`.
fn ip_in_netns_of(pid: i32, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg("ip")
        .args(args)
        .output()
        .expect("run nsenter ip");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The names of the `vnet*` links in the namespace of `pid`.
fn vnets(pid: i32) -> Vec<String> {
    ip_in_netns_of(pid, &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .filter(|name| name.starts_with("vnet"))
        .collect()
}

fn state(uri: &str, name: &str) -> String {
    ok_stdout(&virsh_at(uri, &["domstate", "--reason", name]))
        .trim()
        .to_owned()
}

fn guest_pid(root: &Path, name: &str) -> i32 {
    let status =
        std::fs::read_to_string(root.join(format!("run/libvirt/qemu/{name}.xml"))).expect("status file");
    let at = status.find("pid='").expect("pid in status") + 5;
    status[at..]
        .split('\'')
        .next()
        .unwrap_or_default()
        .parse()
        .expect("pid")
}

/// Asserts that tap `tap` exists in the namespace of `pid`, up, on bridge
/// `bridge`, with MAC `mac`.
fn assert_tap(pid: i32, tap: &str, bridge: &str, mac: &str) {
    let link = ip_in_netns_of(pid, &["-d", "link", "show", "dev", tap]);
    let flags = link
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(flags, _)| flags)
        .unwrap_or_default();
    assert!(flags.split(',').any(|f| f == "UP"), "{tap} is up: {link}");
    assert!(
        link.contains(&format!("master {bridge} ")),
        "{tap} on {bridge}: {link}"
    );
    assert!(
        link.contains(&format!("link/ether {mac} ")),
        "{tap} has {mac}: {link}"
    );
    assert!(
        link.contains("tun type tap") && link.contains("persist on"),
        "{link}"
    );
}

#[test]
fn a_guest_on_a_nat_network_runs_on_a_tap_of_its_bridge() {
    let (d, _g) = qemud_with_network();
    let uri = d.uri(false);
    ok_stdout(&d.virsh(&["net-start", "mvnet"]));
    define(&d, "netvm", 1, &[("mvnet", "52:54:00:4d:56:01")]);

    let out = ok_stdout(&d.virsh(&["start", "netvm"]));
    assert!(out.contains("Domain 'netvm' started"), "{out}");
    assert_eq!(state(&uri, "netvm"), "running (booted)");
    assert_tap(d.pid(), "vnet0", "virbr0", "fe:54:00:4d:56:01");
    let qemu = guest_pid(d.root.path(), "netvm");
    let cmdline = std::fs::read_to_string(format!("/proc/{qemu}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ");
    assert!(
        cmdline.contains("-netdev tap,id=hostnet0,ifname=vnet0,script=no,downscript=no "),
        "{cmdline}"
    );
    assert!(
        cmdline.contains("-device virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:4d:56:01"),
        "{cmdline}"
    );

    let list = ok_stdout(&d.virsh(&["domiflist", "netvm"]));
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.contains("52:54:00:4d:56:01"))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        ["vnet0", "network", "mvnet", "virtio", "52:54:00:4d:56:01"],
        "{list}"
    );
    let live = ok_stdout(&d.virsh(&["dumpxml", "netvm"]));
    assert!(
        live.contains(
            "    <interface type='network'>\n      <mac address='52:54:00:4d:56:01'/>\n      \
             <source network='mvnet' bridge='virbr0'/>\n      <target dev='vnet0'/>\n      \
             <model type='virtio'/>\n    </interface>\n"
        ),
        "{live}"
    );
    let inactive = ok_stdout(&d.virsh(&["dumpxml", "--inactive", "netvm"]));
    assert!(
        inactive.contains("<source network='mvnet'/>\n      <model type='virtio'/>"),
        "{inactive}"
    );
    let status = std::fs::read_to_string(d.root.path().join("run/libvirt/qemu/netvm.xml")).expect("status");
    assert!(status.contains("<target dev='vnet0'/>"), "{status}");

    ok_stdout(&d.virsh(&["destroy", "netvm"]));
    assert_eq!(state(&uri, "netvm"), "shut off (destroyed)");
    assert_eq!(
        vnets(d.pid()),
        Vec::<String>::new(),
        "the tap went with the guest"
    );
    let gone = ip_in_netns_of(d.pid(), &["link", "show", "dev", "vnet0"]);
    assert!(gone.contains("does not exist"), "{gone}");

    // libvirt's names count on: the next tap is vnet1, not vnet0 again.
    ok_stdout(&d.virsh(&["start", "netvm"]));
    assert_tap(d.pid(), "vnet1", "virbr0", "fe:54:00:4d:56:01");
    // QEMU dying on its own takes its tap along too.
    kill9(guest_pid(d.root.path(), "netvm"));
    assert!(
        wait_for(Duration::from_secs(10), || state(&uri, "netvm")
            == "shut off (crashed)"),
        "{}",
        state(&uri, "netvm")
    );
    assert_eq!(vnets(d.pid()), Vec::<String>::new());
}

#[test]
fn a_network_that_is_missing_inactive_or_without_its_bridge_fails_the_start_and_leaves_no_tap() {
    let (d, _g) = qemud_with_network();
    let uri = d.uri(false);
    let file = write(&d, "mvnet2.xml", SECOND_NET);
    ok_stdout(&d.virsh(&["net-define", &file]));
    ok_stdout(&d.virsh(&["net-start", "mvnet2"]));

    define(&d, "lost", 2, &[("nosuch", "52:54:00:4d:56:02")]);
    let e = err_stderr(&d.virsh(&["start", "lost"]));
    assert!(
        e.contains("error: Network not found: no network with matching name 'nosuch'"),
        "{e}"
    );

    // The first NIC gets its tap on mvbr1, the second one's network is not
    // running: the start fails and the first tap goes again.
    define(
        &d,
        "two",
        3,
        &[("mvnet2", "52:54:00:4d:56:03"), ("mvnet", "52:54:00:4d:56:04")],
    );
    let e = err_stderr(&d.virsh(&["start", "two"]));
    assert!(
        e.contains("error: Failed to start domain 'two'")
            && e.contains("error: Requested operation is not valid: network 'mvnet' is not active"),
        "{e}"
    );
    assert_eq!(vnets(d.pid()), Vec::<String>::new());
    assert_eq!(state(&uri, "two"), "shut off (unknown)");

    // The network runs, but its bridge was taken away behind its back.
    ok_stdout(&d.virsh(&["net-start", "mvnet"]));
    let out = ip_in_netns_of(d.pid(), &["link", "del", "virbr0"]);
    assert_eq!(out, "");
    let e = err_stderr(&d.virsh(&["start", "two"]));
    assert!(
        e.contains("error: Cannot get interface MTU on 'virbr0': No such device"),
        "{e}"
    );
    assert_eq!(vnets(d.pid()), Vec::<String>::new());
    assert!(
        !d.root.path().join("run/libvirt/qemu/two.xml").exists(),
        "no status file"
    );

    // With both networks up, the guest starts on both.
    ok_stdout(&d.virsh(&["net-destroy", "mvnet"]));
    ok_stdout(&d.virsh(&["net-start", "mvnet"]));
    ok_stdout(&d.virsh(&["start", "two"]));
    let mut taps = vnets(d.pid());
    taps.sort();
    assert_eq!(taps.len(), 2, "{taps:?}");
    assert_tap(d.pid(), &taps[0], "mvbr1", "fe:54:00:4d:56:03");
    assert_tap(d.pid(), &taps[1], "virbr0", "fe:54:00:4d:56:04");
    ok_stdout(&d.virsh(&["destroy", "two"]));
    assert_eq!(vnets(d.pid()), Vec::<String>::new());
}

/// Keeps the namespace of `pid` alive (a `sleep` in it) while the daemons
/// that live there are killed and restarted.
fn hold_netns(pid: i32) -> ChildGuard {
    ChildGuard::spawn(
        Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["sleep", "600"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

#[test]
fn guests_keep_their_taps_when_virtnetworkd_dies_and_a_restarted_virtqemud_cleans_up_after_dead_ones() {
    let (mut d, mut g) = qemud_with_network();
    let uri = d.uri(false);
    let holder = hold_netns(d.pid());
    let netns = holder.pid();
    ok_stdout(&d.virsh(&["net-start", "mvnet"]));
    define(&d, "a", 5, &[("mvnet", "52:54:00:4d:56:05")]);
    define(&d, "b", 6, &[("mvnet", "52:54:00:4d:56:06")]);
    define(&d, "c", 7, &[("mvnet", "52:54:00:4d:56:07")]);
    for name in ["a", "b", "c"] {
        ok_stdout(&d.virsh(&["start", name]));
    }
    assert_eq!(vnets(netns), ["vnet0", "vnet1", "vnet2"]);

    // virtnetworkd killed: the guests and their taps stay.
    let net = g.guard_virtnetworkd();
    kill9(net);
    assert!(wait_for(Duration::from_secs(5), || process_gone(net)));
    std::thread::sleep(Duration::from_millis(300));
    for name in ["a", "b", "c"] {
        assert_eq!(state(&uri, name), "running (booted)");
        assert!(!process_gone(guest_pid(d.root.path(), name)));
    }
    assert_tap(netns, "vnet0", "virbr0", "fe:54:00:4d:56:05");
    // Destroying needs no network driver.
    ok_stdout(&d.virsh(&["destroy", "a"]));
    assert_eq!(vnets(netns), ["vnet1", "vnet2"]);

    // virtqemud killed; b's QEMU dies while nobody watches.
    ok_stdout(&d.virsh(&["autostart", "a"]));
    d.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(d.wait_exit(Duration::from_secs(5)).is_some());
    let b = guest_pid(d.root.path(), "b");
    kill9(b);
    assert!(wait_for(Duration::from_secs(5), || process_gone(b)));
    assert_eq!(vnets(netns), ["vnet1", "vnet2"], "nobody cleaned up yet");

    // A new virtqemud in the same namespace finds c running and b dead.
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/proc/{netns}/ns/net"))
        .arg(modvirt_tests::bin("virtqemud"))
        .arg("--root")
        .arg(d.root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    modvirt_tests::clear_daemon_env(&mut cmd);
    let _again = ChildGuard::spawn(&mut cmd);
    let sock = d.socket("sock");
    assert!(wait_for(Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    }));
    assert_eq!(state(&uri, "c"), "running (booted)");
    assert_eq!(state(&uri, "b"), "shut off (unknown)");
    // a is autostarted, its network asked of a virtnetworkd started for
    // it; names count on past the taps of guests found running: vnet3.
    assert!(
        wait_for(Duration::from_secs(10), || state(&uri, "a") == "running (booted)"),
        "{}",
        state(&uri, "a")
    );
    g.guard_virtnetworkd();
    assert_eq!(vnets(netns), ["vnet2", "vnet3"], "b's tap is gone, c's stays");
    assert_tap(netns, "vnet2", "virbr0", "fe:54:00:4d:56:07");
    assert_tap(netns, "vnet3", "virbr0", "fe:54:00:4d:56:05");
    for name in ["a", "c"] {
        ok_stdout(&virsh_at(&uri, &["destroy", name]));
    }
    assert_eq!(vnets(netns), Vec::<String>::new());
}
