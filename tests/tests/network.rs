//! virtnetworkd end to end: the real virsh against virtnetworkd directly,
//! and through virtqemud, which forwards network procedures to it and
//! starts it when it is not running (activation cause `peer`). Daemons that
//! start networks run in a network namespace of their own; the bridges are
//! checked there with the real `ip`.

use modvirt_tests::{
    Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, process_gone, require_tool, virsh_at,
    virt_daemons, wait_for,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NAT_NET: &str = "<network>\n  <name>mvnet</name>\n  <forward mode='nat'/>\n  <ip address='10.77.0.1' netmask='255.255.255.0'>\n    <dhcp>\n      <range start='10.77.0.2' end='10.77.0.254'/>\n    </dhcp>\n  </ip>\n</network>\n";

fn network_uri(d: &Daemon) -> String {
    format!(
        "network:///system?socket={}",
        d.run_dir().join("virtnetworkd-sock").display()
    )
}

/// `ip ARGS` inside the network namespace of process `pid`.
fn ip_in_netns_of(pid: i32, args: &[&str]) -> String {
    ip_in_netns_of_cmd(pid, "ip", args)
}

/// `TOOL ARGS` inside the network namespace of process `pid` (stdout and stderr).
fn ip_in_netns_of_cmd(pid: i32, tool: &str, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg(tool)
        .args(args)
        .output()
        .expect("run nsenter");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn write_xml(root: &Path, name: &str, xml: &str) -> String {
    let path = root.join(name);
    std::fs::write(&path, xml).expect("write xml");
    path.display().to_string()
}

#[test]
fn virsh_manages_networks_on_virtnetworkd() {
    let d = Daemon::start(
        "virtnetworkd",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    let uri = network_uri(&d);
    let virsh = |args: &[&str]| virsh_at(&uri, args);
    let file = write_xml(d.root.path(), "mvnet.xml", NAT_NET);

    let out = ok_stdout(&virsh(&["net-define", &file]));
    assert!(
        out.contains(&format!("Network mvnet defined from {file}")),
        "{out}"
    );
    let list = ok_stdout(&virsh(&["net-list", "--all"]));
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.contains("mvnet"))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row, ["mvnet", "inactive", "no", "yes"], "{list}");
    assert!(
        d.root
            .path()
            .join("etc/libvirt/qemu/networks/mvnet.xml")
            .is_file()
    );

    let uuid = ok_stdout(&virsh(&["net-uuid", "mvnet"])).trim().to_owned();
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_eq!(ok_stdout(&virsh(&["net-name", &uuid])).trim(), "mvnet");
    let xml = ok_stdout(&virsh(&["net-dumpxml", "mvnet"]));
    assert!(xml.contains(&format!("<uuid>{uuid}</uuid>")), "{xml}");
    assert!(
        xml.contains("<bridge name='virbr0' stp='on' delay='0'/>"),
        "{xml}"
    );
    assert!(xml.contains("<mac address='52:54:00:"), "{xml}");

    let out = ok_stdout(&virsh(&["net-autostart", "mvnet"]));
    assert!(out.contains("Network mvnet marked as autostarted"), "{out}");
    assert!(
        d.root
            .path()
            .join("etc/libvirt/qemu/networks/autostart/mvnet.xml")
            .exists()
    );

    let out = ok_stdout(&virsh(&["net-start", "mvnet"]));
    assert!(out.contains("Network mvnet started"), "{out}");
    let addr = ip_in_netns_of(d.pid(), &["-o", "addr", "show", "dev", "virbr0"]);
    assert!(addr.contains("inet 10.77.0.1/24"), "{addr}");
    let link = ip_in_netns_of(d.pid(), &["-d", "link", "show", "dev", "virbr0"]);
    assert!(
        link.contains("bridge") && link.contains("state UP") || link.contains(",UP"),
        "{link}"
    );
    let info = ok_stdout(&virsh(&["net-info", "mvnet"]));
    for (key, want) in [
        ("Active", "yes"),
        ("Persistent", "yes"),
        ("Autostart", "yes"),
        ("Bridge", "virbr0"),
    ] {
        let line = info.lines().find(|l| l.starts_with(key)).unwrap_or_default();
        assert!(line.ends_with(want), "{key}: {info}");
    }
    let e = err_stderr(&virsh(&["net-start", "mvnet"]));
    assert!(e.contains("network is already active"), "{e}");

    // DHCP/DNS: the network's own dnsmasq, on the bridge.
    require_tool("dnsmasq");
    let pid_file = d.root.path().join("run/libvirt/network/mvnet.pid");
    let dnsmasq: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .expect("dnsmasq pid file");
    let _dnsmasq = PidGuard(dnsmasq);
    let cmdline = std::fs::read_to_string(format!("/proc/{dnsmasq}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ");
    let conf = d.root.path().join("var/lib/libvirt/dnsmasq/mvnet.conf");
    assert!(
        cmdline.contains(&format!("--conf-file={}", conf.display())),
        "{cmdline}"
    );
    let conf_text = std::fs::read_to_string(&conf).expect("dnsmasq conf");
    assert!(conf_text.contains("interface=virbr0\n"), "{conf_text}");
    assert!(
        conf_text.contains("dhcp-range=10.77.0.2,10.77.0.254,255.255.255.0\n"),
        "{conf_text}"
    );
    let udp = ip_in_netns_of_cmd(d.pid(), "ss", &["-lun"]);
    assert!(
        udp.contains("0.0.0.0%virbr0:67") && udp.contains("10.77.0.1:53"),
        "{udp}"
    );
    // Forwarding and NAT: a table of the network's own.
    require_tool("nft");
    let table = ip_in_netns_of_cmd(d.pid(), "nft", &["list", "table", "ip", "modvirt_net_mvnet"]);
    assert!(
        table.contains("ip saddr 10.77.0.0/24 ip daddr != 10.77.0.0/24 masquerade"),
        "{table}"
    );
    assert!(
        table.contains("iifname \"virbr0\" ip saddr 10.77.0.0/24 accept"),
        "{table}"
    );

    let out = ok_stdout(&virsh(&["net-destroy", "mvnet"]));
    assert!(out.contains("Network mvnet destroyed"), "{out}");
    let gone = ip_in_netns_of(d.pid(), &["link", "show", "dev", "virbr0"]);
    assert!(gone.contains("does not exist"), "{gone}");
    assert!(
        wait_for(Duration::from_secs(5), || process_gone(dnsmasq)),
        "dnsmasq stopped"
    );
    assert!(!pid_file.exists());
    let table = ip_in_netns_of_cmd(d.pid(), "nft", &["list", "table", "ip", "modvirt_net_mvnet"]);
    assert!(
        table.contains("No such file or directory"),
        "the table is gone: {table}"
    );
    let e = err_stderr(&virsh(&["net-destroy", "mvnet"]));
    assert!(
        e.contains("Requested operation is not valid: network 'mvnet' is not active"),
        "{e}"
    );

    // A transient network cannot be undefined; destroying it makes it go.
    let tmp = write_xml(
        d.root.path(),
        "mvtmp.xml",
        "<network>\n  <name>mvtmp</name>\n  <bridge name='mvtmp0'/>\n</network>\n",
    );
    ok_stdout(&virsh(&["net-create", &tmp]));
    let e = err_stderr(&virsh(&["net-undefine", "mvtmp"]));
    assert!(
        e.contains("Requested operation is not valid: can't undefine transient network"),
        "{e}"
    );
    let list = ok_stdout(&virsh(&["net-list"]));
    assert!(list.contains("mvtmp"), "still there, active: {list}");
    ok_stdout(&virsh(&["net-destroy", "mvtmp"]));
    let list = ok_stdout(&virsh(&["net-list", "--all"]));
    assert!(!list.contains("mvtmp"), "{list}");

    let e = err_stderr(&virsh(&["net-info", "nosuch"]));
    assert!(
        e.contains("Network not found: no network with matching name 'nosuch'"),
        "{e}"
    );

    let out = ok_stdout(&virsh(&["net-undefine", "mvnet"]));
    assert!(out.contains("Network mvnet has been undefined"), "{out}");
    let list = ok_stdout(&virsh(&["net-list", "--all"]));
    assert!(!list.contains("mvnet"), "{list}");
    assert!(!d.root.path().join("etc/libvirt/qemu/networks/mvnet.xml").exists());
    assert!(
        !d.root
            .path()
            .join("etc/libvirt/qemu/networks/autostart/mvnet.xml")
            .exists()
    );
}

#[test]
fn definitions_survive_a_restart_and_autostart_networks_come_up() {
    let mut d = Daemon::start(
        "virtnetworkd",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    let uri = network_uri(&d);
    let file = write_xml(d.root.path(), "mvnet.xml", NAT_NET);
    ok_stdout(&virsh_at(&uri, &["net-define", &file]));
    ok_stdout(&virsh_at(&uri, &["net-autostart", "mvnet"]));
    let before = ok_stdout(&virsh_at(&uri, &["net-dumpxml", "mvnet"]));
    d.stop();
    let root = d.into_root();
    let d = Daemon::start_in(
        "virtnetworkd",
        root,
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    assert_eq!(
        ok_stdout(&virsh_at(&uri, &["net-dumpxml", "--inactive", "mvnet"])),
        before
    );
    let list = ok_stdout(&virsh_at(&uri, &["net-list"]));
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["mvnet", "active", "yes", "yes"]),
        "{list}"
    );
    let addr = ip_in_netns_of(d.pid(), &["-o", "addr", "show", "dev", "virbr0"]);
    assert!(addr.contains("inet 10.77.0.1/24"), "{addr}");
}

#[test]
fn net_list_through_virtqemud_starts_virtnetworkd_as_its_peer() {
    let qemu = Daemon::start("virtqemud", DaemonOptions::default());
    let root = qemu.root.path().to_owned();
    assert!(!root.join("run/virtnetworkd.pid").exists());

    let list = ok_stdout(&qemu.virsh(&["net-list", "--all"]));
    assert!(list.contains("Name") && list.contains("Persistent"), "{list}");
    let pid = daemon_pid(&root, "virtnetworkd");
    let _guard = PidGuard(pid);

    let status: Value = serde_json::from_str(&virt_daemons(&root, &["status", "--json"])).expect("json");
    let net = status["daemons"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == "virtnetworkd"))
        .unwrap_or_else(|| panic!("no virtnetworkd in {status:#}"));
    assert_eq!(net["state"], "running", "{net:#}");
    assert_eq!(net["activation"]["cause"], "peer", "{net:#}");
    assert_eq!(net["activation"]["peer"]["daemon"], "virtqemud", "{net:#}");
    assert_eq!(
        net["activation"]["peer"]["procedure"], "CONNECT_LIST_ALL_NETWORKS",
        "{net:#}"
    );

    // Defined through virtqemud, kept by virtnetworkd.
    let file = write_xml(&root, "mvnet.xml", NAT_NET);
    let out = ok_stdout(&qemu.virsh(&["net-define", &file]));
    assert!(out.contains("Network mvnet defined"), "{out}");
    assert!(root.join("etc/libvirt/qemu/networks/mvnet.xml").is_file());
    let e = err_stderr(&qemu.virsh(&["net-info", "nosuch"]));
    assert!(
        e.contains("Network not found: no network with matching name 'nosuch'"),
        "{e}"
    );

    // Killed, it comes back on the next call that needs it.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("kill");
    assert!(wait_for(Duration::from_secs(5), || process_gone(pid)));
    let list = ok_stdout(&qemu.virsh(&["net-list", "--all"]));
    assert!(list.contains("mvnet"), "{list}");
    let again = daemon_pid(&root, "virtnetworkd");
    let _guard2 = PidGuard(again);
    assert_ne!(again, pid);
    // Domain calls never needed it.
    ok_stdout(&qemu.virsh(&["list", "--all"]));
}

#[test]
fn a_peer_that_cannot_be_started_gives_libvirts_connect_error() {
    // virtqemud run from a copy of its binary in a directory without
    // virtnetworkd: nothing to spawn.
    let root = modvirt_tests::temp_root("modvirt-e2e-");
    let lonely = root.path().join("bin");
    std::fs::create_dir_all(&lonely).expect("mkdir");
    std::fs::copy(modvirt_tests::bin("virtqemud"), lonely.join("virtqemud")).expect("copy");
    let mut cmd = Command::new(lonely.join("virtqemud"));
    cmd.arg("--root").arg(root.path());
    modvirt_tests::clear_daemon_env(&mut cmd);
    let mut child = modvirt_tests::ChildGuard::spawn(cmd.stderr(std::process::Stdio::null()));
    let sock = root.path().join("run/libvirt/virtqemud-sock");
    assert!(wait_for(Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    }));
    let uri = format!("qemu:///system?socket={}", sock.display());
    let e = err_stderr(&virsh_at(&uri, &["net-list", "--all"]));
    let want = format!(
        "Failed to connect socket to '{}': cannot start {}: No such file or directory",
        root.path().join("run/libvirt/virtnetworkd-sock").display(),
        lonely.join("virtnetworkd").display()
    );
    assert!(e.contains(&want), "{e}");
    assert!(child.exited().is_none(), "virtqemud keeps serving");
}

/// A network without a bridge name gets the first `virbrN` that is neither
/// another network's nor a host link.
#[test]
fn a_new_network_skips_bridge_names_the_host_uses() {
    let d = Daemon::start(
        "virtnetworkd",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    for name in ["virbr0", "virbr2"] {
        let out = ip_in_netns_of(d.pid(), &["link", "add", name, "type", "bridge"]);
        assert!(out.is_empty(), "{out}");
    }
    let uri = network_uri(&d);
    let virsh = |args: &[&str]| ok_stdout(&virsh_at(&uri, args));
    let bridge_of = |name: &str| {
        let xml = virsh(&["net-dumpxml", name]);
        xml.lines()
            .find_map(|l| l.trim().strip_prefix("<bridge name='"))
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_default()
            .to_owned()
    };
    for (net, bridge) in [("first", "virbr1"), ("second", "virbr3")] {
        let file = write_xml(
            d.root.path(),
            &format!("{net}.xml"),
            &format!("<network><name>{net}</name></network>"),
        );
        virsh(&["net-define", &file]);
        assert_eq!(bridge_of(net), bridge);
    }
}
