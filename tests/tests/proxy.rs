//! virtproxyd end to end: the real virsh on libvirtd's legacy sockets
//! (`libvirt-sock`, `libvirt-sock-ro`, `libvirt-admin-sock`), each
//! connection passed on to the modular daemon owning its URI, started on
//! demand.

use modvirt_tests::{
    Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, virsh_at, virsh_ro_at, virt_admin_at,
};
use serde_json::Value;

const NET: &str =
    "<network><name>proxied</name><forward mode='bridge'/><bridge name='br-proxied'/></network>";

#[test]
fn virsh_on_the_legacy_sockets_reaches_the_modular_daemons() {
    let proxy = Daemon::start("virtproxyd", DaemonOptions::default());
    let root = proxy.root.path().to_owned();
    let run = root.join("run/libvirt");
    for s in ["libvirt-sock", "libvirt-sock-ro", "libvirt-admin-sock"] {
        assert!(run.join(s).exists(), "{s} missing");
    }
    let rw = format!("qemu:///system?socket={}", run.join("libvirt-sock").display());
    let ro = format!("qemu:///system?socket={}", run.join("libvirt-sock-ro").display());

    let list = ok_stdout(&virsh_at(&rw, &["list", "--all"]));
    assert!(list.contains("Id") && list.contains("State"), "{list}");
    let _qemu = PidGuard(daemon_pid(&root, "virtqemud"));
    assert_eq!(ok_stdout(&virsh_at(&rw, &["uri"])).trim(), rw);
    let version = ok_stdout(&virsh_at(&rw, &["version"]));
    assert!(version.contains("Running hypervisor: QEMU"), "{version}");

    // A network call on the qemu connection goes straight to virtnetworkd.
    let xml = root.join("net.xml");
    std::fs::write(&xml, NET).expect("xml");
    let out = ok_stdout(&virsh_at(&rw, &["net-define", xml.to_str().unwrap_or_default()]));
    assert!(out.contains("Network proxied defined"), "{out}");
    let _net = PidGuard(daemon_pid(&root, "virtnetworkd"));
    let status: Value =
        serde_json::from_str(&modvirt_tests::virt_daemons(&root, &["status", "--json"])).expect("json");
    let spawned_by = |name: &str| {
        status["daemons"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["name"] == name))
            .map(|d| d["activation"]["peer"]["daemon"].clone())
    };
    assert_eq!(
        spawned_by("virtqemud"),
        Some(Value::from("virtproxyd")),
        "{status:#}"
    );
    assert_eq!(
        spawned_by("virtnetworkd"),
        Some(Value::from("virtproxyd")),
        "{status:#}"
    );

    // A network:/// connection through the proxy.
    let net_uri = format!("network:///system?socket={}", run.join("libvirt-sock").display());
    let nets = ok_stdout(&virsh_at(&net_uri, &["net-list", "--all"]));
    assert!(nets.contains("proxied"), "{nets}");

    // The read-only socket: reads pass, changes are refused by the proxy.
    let list = ok_stdout(&virsh_at(&ro, &["list", "--all"]));
    assert!(list.contains("State"), "{list}");
    let e = err_stderr(&virsh_at(&ro, &["net-undefine", "proxied"]));
    assert!(e.contains("read only access prevents virNetworkUndefine"), "{e}");
    // `virsh -r` (VIR_CONNECT_RO in CONNECT_OPEN) too: the proxy opens the
    // owner's connection read-write, with the client's identity, and keeps
    // refusing changes itself.
    let list = ok_stdout(&virsh_ro_at(&ro, &["list", "--all"]));
    assert!(list.contains("State"), "{list}");
    let nets = ok_stdout(&virsh_ro_at(&ro, &["net-list", "--all"]));
    assert!(nets.contains("proxied"), "{nets}");
    let e = err_stderr(&virsh_ro_at(&ro, &["net-undefine", "proxied"]));
    assert!(e.contains("read only access prevents virNetworkUndefine"), "{e}");

    // Its own admin socket.
    let admin = format!(
        "virtproxyd:///system?socket={}",
        run.join("libvirt-admin-sock").display()
    );
    let servers = ok_stdout(&virt_admin_at(&admin, &["srv-list"]));
    assert!(
        servers.contains("virtproxyd") && servers.contains("admin"),
        "{servers}"
    );
}
