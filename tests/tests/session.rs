//! Whole connections passed on: a client that opens another driver's URI
//! on a daemon's socket (`virsh -c qemu:///system` on virtnetworkd's, as in
//! the libvirt 9.0 trace virsh-connect-qemu-uri-to-virtnetworkd-socket)
//! gets a session with the daemon owning that URI, started on demand; its
//! calls and the owner's events go through.

use modvirt_tests::{Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, virsh_at, wait_for};
use std::process::{Command, Stdio};
use std::time::Duration;

const GUEST: &str = "<domain type='qemu'><name>passed</name><uuid>6a1f0b3e-52c4-4c1e-9d2a-0c0ffee000aa</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>";

#[test]
fn a_qemu_uri_on_virtnetworkd_is_passed_on_to_virtqemud_with_its_events() {
    let net = Daemon::start("virtnetworkd", DaemonOptions::default());
    let root = net.root.path().to_owned();
    let via_net = format!(
        "qemu:///system?socket={}",
        root.join("run/libvirt/virtnetworkd-sock").display()
    );
    // virtqemud is not running: the session starts it.
    let list = ok_stdout(&virsh_at(&via_net, &["list", "--all"]));
    assert!(list.contains("Id") && list.contains("State"), "{list}");
    let qemu = daemon_pid(&root, "virtqemud");
    let _guard = PidGuard(qemu);
    let version = ok_stdout(&virsh_at(&via_net, &["version"]));
    assert!(version.contains("Running hypervisor: QEMU"), "{version}");

    // Events registered through the session come back through it.
    let out = root.join("events.out");
    let mut watcher = Command::new("virsh")
        .args(["-c", &via_net, "event", "--all", "--loop", "--timeout", "20"])
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("virsh event");
    let _kill = PidGuard(watcher.id() as i32);
    std::thread::sleep(Duration::from_millis(800));
    let xml = root.join("guest.xml");
    std::fs::write(&xml, GUEST).expect("xml");
    let direct = format!(
        "qemu:///system?socket={}",
        root.join("run/libvirt/virtqemud-sock").display()
    );
    ok_stdout(&virsh_at(&direct, &["define", xml.to_str().unwrap_or_default()]));
    ok_stdout(&virsh_at(&via_net, &["undefine", "passed"]));
    let seen = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("Undefined"))
    });
    let _ = watcher.kill();
    let _ = watcher.wait();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(seen, "{text}");
    assert!(
        text.contains("'lifecycle' for domain 'passed': Defined Added"),
        "{text}"
    );

    // Network calls on that connection still reach virtnetworkd.
    let nets = ok_stdout(&virsh_at(&via_net, &["net-list", "--all"]));
    assert!(nets.contains("Name"), "{nets}");
    // A URI nobody owns is refused as before.
    let bogus = format!(
        "bogus:///system?socket={}",
        root.join("run/libvirt/virtnetworkd-sock").display()
    );
    let e = err_stderr(&virsh_at(&bogus, &["list"]));
    assert!(
        e.contains("no connection driver available for bogus:///system"),
        "{e}"
    );
}
