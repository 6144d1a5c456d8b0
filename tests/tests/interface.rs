//! virtinterfaced end to end: the daemon runs in a network namespace of its
//! own, the test makes links there with the real `ip` (through `nsenter`),
//! and the real virsh lists and describes them exactly; the old list calls
//! over the wire; and through virtqemud, which starts virtinterfaced (in
//! its namespace) as its peer.

use modvirt_tests::raw::RawClient;
use modvirt_tests::{
    Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, require_tool, virsh_at, virt_daemons,
    wait_for,
};
use modvirt_wire::interface::{
    ConnectListInterfacesArgs, ConnectListInterfacesRet, ConnectNumOfInterfacesRet,
};
use modvirt_wire::remote::ConnectOpenArgs;
use modvirt_wire::{XdrDecode, XdrEncode};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// `ip ARGS…` in the network namespace of process `pid`; must succeed.
fn ip(pid: i32, args: &str) {
    let out = Command::new(require_tool("nsenter"))
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg(require_tool("ip"))
        .args(args.split_whitespace())
        .output()
        .expect("run nsenter ip");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Links in the namespace of `pid`: an up veth pair (one end with MTU
/// 1400), a down one, a bridge with a port (hidden: bridge ports are not
/// listed), a tap (hidden), and `lo` up (state `unknown`).
fn make_links(pid: i32) {
    ip(pid, "link set lo up");
    ip(
        pid,
        "link add veth0 address 52:54:00:00:00:0a type veth peer name veth1 address 52:54:00:00:00:0b",
    );
    ip(pid, "link set veth0 mtu 1400");
    ip(pid, "link set veth0 up");
    ip(pid, "link set veth1 up");
    ip(
        pid,
        "link add veth4 address 52:54:00:00:00:14 type veth peer name veth5 address 52:54:00:00:00:15",
    );
    ip(
        pid,
        "link add br0 address 52:54:00:00:00:0c type bridge stp_state 0 forward_delay 0",
    );
    ip(
        pid,
        "link add veth2 address 52:54:00:00:00:0d type veth peer name veth3 address 52:54:00:00:00:0e",
    );
    ip(pid, "link set veth2 master br0");
    ip(pid, "link set veth2 up");
    ip(pid, "link set veth3 up");
    ip(pid, "link set br0 up");
    ip(pid, "tuntap add mvtap0 mode tap");
}

const ALL: &str = " Name    State      MAC Address\n---------------------------------------\n br0     active     52:54:00:00:00:0c\n lo      inactive   00:00:00:00:00:00\n veth0   active     52:54:00:00:00:0a\n veth1   active     52:54:00:00:00:0b\n veth3   active     52:54:00:00:00:0e\n veth4   inactive   52:54:00:00:00:14\n veth5   inactive   52:54:00:00:00:15\n\n";

/// Waits until every link has settled (the bridge comes up once its port
/// forwards) and `iface-list --all` shows [`ALL`].
fn settled(uri: &str) -> String {
    let mut out = String::new();
    wait_for(Duration::from_secs(10), || {
        out = ok_stdout(&virsh_at(uri, &["iface-list", "--all"]));
        out == ALL
    });
    out
}

fn iface_uri(d: &Daemon, ro: bool) -> String {
    let suffix = if ro { "sock-ro" } else { "sock" };
    format!(
        "interface:///system?socket={}",
        d.run_dir().join(format!("virtinterfaced-{suffix}")).display()
    )
}

#[test]
fn virsh_lists_and_describes_the_links_of_its_namespace() {
    let d = Daemon::start(
        "virtinterfaced",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    make_links(d.pid());
    let uri = iface_uri(&d, false);
    let virsh = |args: &[&str]| virsh_at(&uri, args);
    assert_eq!(settled(&uri), ALL);
    assert_eq!(
        ok_stdout(&virsh(&["iface-list"])),
        " Name    State    MAC Address\n-------------------------------------\n br0     active   52:54:00:00:00:0c\n veth0   active   52:54:00:00:00:0a\n veth1   active   52:54:00:00:00:0b\n veth3   active   52:54:00:00:00:0e\n\n"
    );
    assert_eq!(
        ok_stdout(&virsh(&["iface-list", "--inactive"])),
        " Name    State      MAC Address\n---------------------------------------\n lo      inactive   00:00:00:00:00:00\n veth4   inactive   52:54:00:00:00:14\n veth5   inactive   52:54:00:00:00:15\n\n"
    );

    assert_eq!(
        ok_stdout(&virsh(&["iface-dumpxml", "veth0"])),
        "<interface type='ethernet' name='veth0'>\n  <mtu size='1400'/>\n  <link speed='10000' state='up'/>\n  <mac address='52:54:00:00:00:0a'/>\n</interface>\n\n"
    );
    assert_eq!(
        ok_stdout(&virsh(&["iface-dumpxml", "veth4", "--inactive"])),
        "<interface type='ethernet' name='veth4'>\n  <mtu size='1500'/>\n  <link state='down'/>\n  <mac address='52:54:00:00:00:14'/>\n</interface>\n\n"
    );
    assert_eq!(
        ok_stdout(&virsh(&["iface-dumpxml", "br0"])),
        "<interface type='bridge' name='br0'>\n  <mtu size='1500'/>\n  <bridge stp='off' delay='0'>\n    <interface type='ethernet' name='veth2'>\n      <link speed='10000' state='up'/>\n      <mac address='52:54:00:00:00:0d'/>\n    </interface>\n  </bridge>\n</interface>\n\n"
    );
    assert_eq!(
        ok_stdout(&virsh(&["iface-dumpxml", "lo"])),
        "<interface type='ethernet' name='lo'>\n  <mtu size='65536'/>\n  <link state='unknown'/>\n  <mac address='00:00:00:00:00:00'/>\n</interface>\n\n"
    );
    // Not listed, but found by name, as libvirt does.
    let tap = ok_stdout(&virsh(&["iface-dumpxml", "mvtap0"]));
    assert!(
        tap.starts_with(
            "<interface type='ethernet' name='mvtap0'>\n  <mtu size='1500'/>\n  <link state='down'/>\n"
        ),
        "{tap}"
    );

    assert_eq!(
        ok_stdout(&virsh(&["iface-mac", "veth1"])),
        "52:54:00:00:00:0b\n\n"
    );
    assert_eq!(
        ok_stdout(&virsh(&["iface-name", "52:54:00:00:00:15"])),
        "veth5\n\n"
    );
    // br0 and its port share no listed MAC: the port is not listed.
    assert_eq!(ok_stdout(&virsh(&["iface-name", "52:54:00:00:00:0c"])), "br0\n\n");
    let e = err_stderr(&virsh(&["iface-name", "52:54:00:00:00:0d"]));
    assert!(
        e.contains(
            "error: Interface not found: couldn't find interface with MAC address '52:54:00:00:00:0d'"
        ),
        "{e}"
    );
    let e = err_stderr(&virsh(&["iface-dumpxml", "eth9"]));
    assert!(
        e.contains("error: Interface not found: couldn't find interface named 'eth9'"),
        "{e}"
    );

    // Host interfaces are read-only, as with libvirt's udev backend.
    let file = d.root.path().join("eth9.xml");
    std::fs::write(&file, "<interface type='ethernet' name='eth9'/>\n").expect("xml");
    let e = err_stderr(&virsh(&["iface-define", &file.display().to_string()]));
    assert!(
        e.contains("this function is not supported by the connection driver: virInterfaceDefineXML"),
        "{e}"
    );
    let e = err_stderr(&virsh(&["iface-destroy", "veth0"]));
    assert!(
        e.contains("this function is not supported by the connection driver: virInterfaceDestroy"),
        "{e}"
    );
    let e = err_stderr(&virsh(&["iface-begin"]));
    assert!(
        e.contains("this function is not supported by the connection driver: virInterfaceChangeBegin"),
        "{e}"
    );
    let ro = iface_uri(&d, true);
    assert_eq!(ok_stdout(&virsh_at(&ro, &["iface-list", "--all"])), ALL);
    let e = err_stderr(&virsh_at(&ro, &["iface-destroy", "veth0"]));
    assert!(e.contains("read only access prevents virInterfaceDestroy"), "{e}");

    // The old list calls: `down` is inactive, `unknown` (lo) is neither.
    let mut c = RawClient::connect(&d.socket("sock"));
    c.auth_list();
    let open = ConnectOpenArgs {
        name: Some("interface:///system".into()),
        flags: 0,
    };
    c.rpc_ok(1, &open.to_xdr());
    let num = |c: &mut RawClient, p: i32| {
        ConnectNumOfInterfacesRet::from_xdr(&c.rpc_ok(p, &[]))
            .expect("num")
            .num
    };
    let names = |c: &mut RawClient, p: i32, max: i32| {
        ConnectListInterfacesRet::from_xdr(
            &c.rpc_ok(p, &ConnectListInterfacesArgs { maxnames: max }.to_xdr()),
        )
        .expect("names")
        .names
    };
    assert_eq!(num(&mut c, 126), 4);
    assert_eq!(names(&mut c, 127, 10), ["br0", "veth0", "veth1", "veth3"]);
    assert_eq!(names(&mut c, 127, 2), ["br0", "veth0"]);
    assert_eq!(num(&mut c, 137), 2);
    assert_eq!(names(&mut c, 138, 10), ["veth4", "veth5"]);

    // Links are read on every call.
    ip(d.pid(), "link del veth4");
    assert_eq!(names(&mut c, 138, 10), Vec::<String>::new());
}

#[test]
fn iface_list_through_virtqemud_starts_virtinterfaced_in_its_namespace() {
    let qemu = Daemon::start(
        "virtqemud",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    let root = qemu.root.path().to_owned();
    make_links(qemu.pid());
    let uri = qemu.uri(false);
    let first = ok_stdout(&qemu.virsh(&["iface-list", "--all"]));
    let pid = daemon_pid(&root, "virtinterfaced");
    let _guard = PidGuard(pid);
    assert!(
        first.contains(" veth0   active     52:54:00:00:00:0a\n"),
        "{first}"
    );
    assert_eq!(settled(&uri), ALL);

    let st: Value = serde_json::from_str(&virt_daemons(&root, &["status", "--json"])).expect("json");
    let e = st["daemons"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == "virtinterfaced"))
        .unwrap_or_else(|| panic!("no virtinterfaced in {st:#}"));
    assert_eq!(e["activation"]["cause"], "peer", "{e:#}");
    assert_eq!(e["activation"]["peer"]["daemon"], "virtqemud", "{e:#}");
    assert_eq!(
        e["activation"]["peer"]["procedure"], "CONNECT_LIST_ALL_INTERFACES",
        "{e:#}"
    );
    assert_eq!(
        ok_stdout(&qemu.virsh(&["iface-dumpxml", "veth1"])),
        "<interface type='ethernet' name='veth1'>\n  <mtu size='1500'/>\n  <link speed='10000' state='up'/>\n  <mac address='52:54:00:00:00:0b'/>\n</interface>\n\n"
    );
    assert_eq!(
        ok_stdout(&qemu.virsh(&["iface-mac", "br0"])),
        "52:54:00:00:00:0c\n\n"
    );
}
