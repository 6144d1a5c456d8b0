//! A crash or hang in a secondary daemon never touches a running guest or
//! the hypervisor daemon: real virsh, a real QEMU guest (TCG), virtqemud
//! forwarding to secondary daemons it started itself. `kill -9` of each in
//! turn: the guest runs on and domain calls keep working, and the killed
//! daemon comes back on the next call that needs it. `SIGSTOP` of
//! virtstoraged: its calls fail with a timeout (`peer_call_timeout = 5`),
//! domain calls keep working, and `virt-daemons hangs` shows the chain.

use modvirt_tests::{
    Daemon, DaemonOptions, PidGuard, err_stderr, ok_stdout, process_gone, require_tool, virt_daemons,
    wait_for,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

const GUEST: &str = "<domain type='qemu'>\n  <name>steady</name>\n  <uuid>6a1f0b3e-52c4-4c1e-9d2a-0c0ffee000c1</uuid>\n  \
<memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n</domain>\n";

fn pid_file(root: &Path, daemon: &str) -> Option<i32> {
    std::fs::read_to_string(root.join(format!("run/{daemon}.pid")))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|pid| !process_gone(*pid))
}

fn running_pid(root: &Path, daemon: &str) -> i32 {
    let mut pid = None;
    assert!(
        wait_for(Duration::from_secs(5), || {
            pid = pid_file(root, daemon);
            pid.is_some()
        }),
        "{daemon} is not running"
    );
    pid.unwrap_or_default()
}

fn guest_pid(root: &Path) -> i32 {
    let status = std::fs::read_to_string(root.join("run/libvirt/qemu/steady.xml")).expect("status file");
    let at = status.find("pid='").expect("pid") + 5;
    status[at..]
        .split('\'')
        .next()
        .unwrap_or_default()
        .parse()
        .expect("pid")
}

/// The guest runs and virtqemud answers domain calls.
fn guest_is_fine(qemu: &Daemon, guest: i32) {
    assert!(!process_gone(guest), "the guest is gone");
    let list = ok_stdout(&qemu.virsh(&["list"]));
    assert!(list.contains("steady") && list.contains("running"), "{list}");
    let info = ok_stdout(&qemu.virsh(&["dominfo", "steady"]));
    assert!(info.contains("State:          running"), "{info}");
    ok_stdout(&qemu.virsh(&["suspend", "steady"]));
    ok_stdout(&qemu.virsh(&["resume", "steady"]));
}

#[test]
fn secondary_daemons_crashing_or_hanging_never_touch_a_guest() {
    require_tool("qemu-system-x86_64");
    let qemu = Daemon::start(
        "virtqemud",
        DaemonOptions {
            config: Some("peer_call_timeout = 5\n".into()),
            netns: true,
            ..Default::default()
        },
    );
    let root = qemu.root.path().to_owned();
    let xml = root.join("steady.xml");
    std::fs::write(&xml, GUEST).expect("xml");
    ok_stdout(&qemu.virsh(&["define", xml.to_str().unwrap_or_default()]));
    ok_stdout(&qemu.virsh(&["start", "steady"]));
    let guest = guest_pid(&root);
    let _guest = PidGuard(guest);

    let mut guards = Vec::new();
    for (daemon, args) in [
        ("virtnetworkd", &["net-list", "--all"][..]),
        ("virtstoraged", &["pool-list", "--all"][..]),
        ("virtnodedevd", &["nodedev-list"][..]),
        ("virtinterfaced", &["iface-list", "--all"][..]),
        ("virtsecretd", &["secret-list"][..]),
        ("virtnwfilterd", &["nwfilter-list"][..]),
    ] {
        ok_stdout(&qemu.virsh(args));
        let first = running_pid(&root, daemon);
        let _first = PidGuard(first);
        kill(Pid::from_raw(first), Signal::SIGKILL).expect("kill -9");
        assert!(wait_for(Duration::from_secs(5), || process_gone(first)));
        guest_is_fine(&qemu, guest);
        // The next call that needs it brings it back.
        ok_stdout(&qemu.virsh(args));
        let again = running_pid(&root, daemon);
        assert_ne!(again, first, "{daemon} was started again");
        guards.push(PidGuard(again));
        guest_is_fine(&qemu, guest);
    }

    // A hung virtstoraged: its calls time out, nothing else waits.
    let storaged = running_pid(&root, "virtstoraged");
    kill(Pid::from_raw(storaged), Signal::SIGSTOP).expect("SIGSTOP");
    let started = Instant::now();
    let stuck = qemu.spawn_virsh(&["pool-list", "--all"]);
    // One look (each takes 2 s: the stopped daemon does not answer its
    // observer either), well inside the call's 5 s.
    std::thread::sleep(Duration::from_millis(1000));
    let hangs = virt_daemons(&root, &["hangs", "--older-than", "0.5"]);
    let status = virt_daemons(&root, &["status", "--json"]);
    guest_is_fine(&qemu, guest);
    let mut stuck = stuck;
    assert!(
        stuck.wait_exit(Duration::from_secs(10)).is_some(),
        "pool-list ended"
    );
    let _ = kill(Pid::from_raw(storaged), Signal::SIGCONT);
    assert!(hangs.contains("virtstoraged: not answering"), "{hangs}\n{status}");
    assert!(hangs.contains("CONNECT_LIST_ALL_STORAGE_POOLS"), "{hangs}");
    assert!(hangs.contains("virtqemud"), "{hangs}");
    assert!(started.elapsed() < Duration::from_secs(12));
    let e = err_stderr(&qemu.virsh(&["pool-info", "nosuch"]));
    assert!(!e.contains("Timed out"), "virtstoraged answers again: {e}");

    // The timeout error, as virsh prints it.
    kill(Pid::from_raw(storaged), Signal::SIGSTOP).expect("SIGSTOP");
    let e = err_stderr(&qemu.virsh(&["pool-list", "--all"]));
    let _ = kill(Pid::from_raw(storaged), Signal::SIGCONT);
    // Each virsh is its own identity, so its own connection to virtstoraged:
    // the first step that times out is that connection's handshake.
    assert!(
        e.contains(
            "error: Failed to list pools\nerror: Timed out during operation: no reply from virtstoraged to "
        ) && e.contains(" after 5 s"),
        "{e}"
    );
    guest_is_fine(&qemu, guest);
}
