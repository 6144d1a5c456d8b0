//! virtqemud's QEMU driver end to end: the real `virsh` 9.0 manages real
//! `qemu-system-x86_64` guests (TCG) under a temporary root.

use modvirt_tests::{Daemon, DaemonOptions, err_stderr, ok_stdout, require_tool, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A guest with no disks: QEMU runs its firmware only.
fn guest_xml(name: &str, uuid: &str) -> String {
    format!(
        "<domain type='qemu'>\n  <name>{name}</name>\n  <uuid>{uuid}</uuid>\n  <memory unit='MiB'>64</memory>\n  \
         <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n  <features><acpi/></features>\n  \
         <devices>\n    <interface type='user'/>\n  </devices>\n</domain>\n"
    )
}

/// Kills, by pid, every QEMU the daemon of `root` started (its pid files),
/// whatever happened in the test.
struct Guests(PathBuf);

impl Guests {
    fn pids(&self) -> Vec<i32> {
        let dir = self.0.join("var/lib/libvirt/qemu");
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("qemu.pid")).ok())
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }
}

impl Drop for Guests {
    fn drop(&mut self) {
        for pid in self.pids() {
            if !modvirt_tests::process_gone(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn qemud(args: &[&str]) -> (Daemon, Guests) {
    require_tool("qemu-system-x86_64");
    let d = Daemon::start(
        "virtqemud",
        DaemonOptions {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    );
    let g = Guests(d.root.path().to_owned());
    (d, g)
}

fn define(d: &Daemon, name: &str, uuid: &str) {
    let file = d.root.path().join(format!("{name}.xml"));
    std::fs::write(&file, guest_xml(name, uuid)).expect("write xml");
    ok_stdout(&d.virsh(&["define", file.to_str().unwrap_or_default()]));
}

fn state(d: &Daemon, name: &str) -> String {
    ok_stdout(&d.virsh(&["domstate", "--reason", name]))
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

#[test]
fn a_guest_lives_its_whole_life_through_virsh() {
    let (d, _g) = qemud(&[]);
    define(&d, "vm1", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001");
    let list = ok_stdout(&d.virsh(&["list", "--all"]));
    assert!(list.contains("vm1") && list.contains("shut off"), "{list}");
    let info = ok_stdout(&d.virsh(&["dominfo", "vm1"]));
    assert!(
        info.contains("Max memory:     65536 KiB") && info.contains("Persistent:     yes"),
        "{info}"
    );
    let node = ok_stdout(&d.virsh(&["nodeinfo"]));
    assert!(
        node.contains("CPU model:           x86_64") && node.contains("NUMA cell(s):        1"),
        "{node}"
    );
    let caps = ok_stdout(&d.virsh(&["capabilities"]));
    assert!(
        caps.contains("<os_type>hvm</os_type>") && caps.contains("<domain type='qemu'/>"),
        "{caps}"
    );

    assert!(ok_stdout(&d.virsh(&["start", "vm1"])).contains("Domain 'vm1' started"));
    assert_eq!(state(&d, "vm1"), "running (booted)");
    let pid = guest_pid(d.root.path(), "vm1");
    assert!(!modvirt_tests::process_gone(pid), "QEMU runs");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ");
    assert!(
        cmdline.contains("-name guest=vm1") && cmdline.contains("-uuid 6a1f0b3e"),
        "{cmdline}"
    );
    assert_eq!(ok_stdout(&d.virsh(&["domid", "vm1"])).trim(), "1");
    assert_eq!(ok_stdout(&d.virsh(&["domname", "1"])).trim(), "vm1");
    assert_eq!(
        ok_stdout(&d.virsh(&["domuuid", "vm1"])).trim(),
        "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001"
    );
    assert!(ok_stdout(&d.virsh(&["list"])).contains(" 1    vm1"));
    assert!(
        ok_stdout(&d.virsh(&["list", "--inactive"]))
            .lines()
            .all(|l| !l.contains("vm1"))
    );
    assert!(ok_stdout(&d.virsh(&["dumpxml", "vm1"])).contains("<domain type='qemu' id='1'>"));
    assert!(ok_stdout(&d.virsh(&["dumpxml", "--inactive", "vm1"])).contains("<domain type='qemu'>"));
    // `pc` is stored as the versioned type QEMU runs, as libvirt does.
    assert!(ok_stdout(&d.virsh(&["dumpxml", "vm1"])).contains("machine='pc-i440fx-"));
    assert_eq!(ok_stdout(&d.virsh(&["domcontrol", "vm1"])).trim(), "ok");
    assert!(ok_stdout(&d.virsh(&["domjobinfo", "vm1"])).contains("None"));

    ok_stdout(&d.virsh(&["suspend", "vm1"]));
    assert_eq!(state(&d, "vm1"), "paused (user)");
    assert!(ok_stdout(&d.virsh(&["list", "--state-paused"])).contains("vm1"));
    ok_stdout(&d.virsh(&["resume", "vm1"]));
    assert_eq!(state(&d, "vm1"), "running (unpaused)");
    // ACPI power button and reset: accepted by QEMU (no OS to act on them).
    ok_stdout(&d.virsh(&["shutdown", "vm1"]));
    ok_stdout(&d.virsh(&["reboot", "vm1"]));

    let err = err_stderr(&d.virsh(&["start", "vm1"]));
    assert!(
        err.contains("Domain is already active"),
        "virsh checks first: {err}"
    );
    ok_stdout(&d.virsh(&["destroy", "vm1"]));
    assert_eq!(state(&d, "vm1"), "shut off (destroyed)");
    assert!(
        wait_for(Duration::from_secs(5), || modvirt_tests::process_gone(pid)),
        "QEMU is gone"
    );
    assert!(
        !d.root.path().join("run/libvirt/qemu/vm1.xml").exists(),
        "no status file left"
    );
    let err = err_stderr(&d.virsh(&["suspend", "vm1"]));
    assert!(err.contains("domain is not running"), "{err}");

    ok_stdout(&d.virsh(&["autostart", "vm1"]));
    assert!(d.root.path().join("etc/libvirt/qemu/autostart/vm1.xml").exists());
    ok_stdout(&d.virsh(&["autostart", "--disable", "vm1"]));
    assert!(!d.root.path().join("etc/libvirt/qemu/autostart/vm1.xml").exists());
    ok_stdout(&d.virsh(&["undefine", "vm1"]));
    assert!(!d.root.path().join("etc/libvirt/qemu/vm1.xml").exists());
    let err = err_stderr(&d.virsh(&["dominfo", "vm1"]));
    assert!(err.contains("failed to get domain 'vm1'"), "{err}");
}

#[test]
fn a_transient_guest_vanishes_when_it_stops() {
    let (d, _g) = qemud(&[]);
    let file = d.root.path().join("t.xml");
    std::fs::write(&file, guest_xml("temp", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00002")).expect("xml");
    assert!(
        ok_stdout(&d.virsh(&["create", file.to_str().unwrap_or_default()])).contains("Domain 'temp' created")
    );
    let info = ok_stdout(&d.virsh(&["dominfo", "temp"]));
    assert!(
        info.contains("Persistent:     no") && info.contains("running"),
        "{info}"
    );
    ok_stdout(&d.virsh(&["destroy", "temp"]));
    assert!(!ok_stdout(&d.virsh(&["list", "--all"])).contains("temp"));
}

#[test]
fn guests_outlive_a_killed_daemon_and_are_found_again() {
    let (mut d, _g) = qemud(&["--timeout", "0"]);
    define(&d, "keep", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00003");
    ok_stdout(&d.virsh(&["start", "keep"]));
    let pid = guest_pid(d.root.path(), "keep");
    d.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(d.wait_exit(Duration::from_secs(5)).is_some());
    assert!(!modvirt_tests::process_gone(pid), "the guest survived its daemon");
    let d2 = Daemon::start_in("virtqemud", d.into_root(), DaemonOptions::default());
    assert_eq!(state(&d2, "keep"), "running (booted)");
    assert_eq!(guest_pid(d2.root.path(), "keep"), pid, "the same QEMU");
    ok_stdout(&d2.virsh(&["suspend", "keep"]));
    assert_eq!(state(&d2, "keep"), "paused (user)");
    ok_stdout(&d2.virsh(&["destroy", "keep"]));
    assert!(wait_for(Duration::from_secs(5), || modvirt_tests::process_gone(
        pid
    )));
}

#[test]
fn autostart_guests_start_with_the_daemon() {
    let (mut d, _g) = qemud(&[]);
    define(&d, "auto", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00004");
    ok_stdout(&d.virsh(&["autostart", "auto"]));
    d.stop();
    let d2 = Daemon::start_in("virtqemud", d.into_root(), DaemonOptions::default());
    assert!(wait_for(Duration::from_secs(10), || state(&d2, "auto")
        == "running (booted)"));
    let boot = modvirt_tests::virt_daemons(d2.root.path(), &["boot"]);
    assert!(boot.contains("autostart") && boot.contains("1 started"), "{boot}");
    ok_stdout(&d2.virsh(&["destroy", "auto"]));
}

#[test]
fn a_running_guest_holds_the_idle_timer() {
    let (mut d, _g) = qemud(&["--timeout", "2"]);
    define(&d, "hold", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00005");
    ok_stdout(&d.virsh(&["start", "hold"]));
    std::thread::sleep(Duration::from_secs(4));
    assert!(d.exited().is_none(), "idled out with a guest running");
    let why = modvirt_tests::virt_daemons(d.root.path(), &["why", "virtqemud"]);
    assert!(why.contains("running guests"), "{why}");
    ok_stdout(&d.virsh(&["destroy", "hold"]));
    assert!(
        d.wait_exit(Duration::from_secs(15)).is_some(),
        "exits once the guest stopped"
    );
}

#[test]
fn lifecycle_events_reach_virsh_event() {
    let (d, _g) = qemud(&[]);
    define(&d, "ev", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00006");
    let out = d.root.path().join("events.out");
    let mut watcher = Command::new("virsh")
        .args(["-c", &d.uri(false), "event", "--all", "--loop", "--timeout", "20"])
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("virsh event");
    let _kill = modvirt_tests::PidGuard(watcher.id() as i32);
    // virsh has registered once its callbacks show up in the daemon.
    std::thread::sleep(Duration::from_millis(800));
    ok_stdout(&d.virsh(&["start", "ev"]));
    ok_stdout(&d.virsh(&["suspend", "ev"]));
    ok_stdout(&d.virsh(&["destroy", "ev"]));
    let seen = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("Stopped Destroyed"))
    });
    let _ = watcher.kill();
    let _ = watcher.wait();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(seen, "{text}");
    for line in [
        "'lifecycle' for domain 'ev': Started Booted",
        "Suspended Paused",
        "Stopped Destroyed",
    ] {
        assert!(text.contains(line), "missing {line:?} in {text}");
    }
}

/// `CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY` / `_DEREGISTER_ANY` on the
/// wire (no guest needed): libvirt's errors for an unknown event id and an
/// unknown callback, and a callback only its own connection removes.
#[test]
fn domain_event_registrations_get_libvirts_errors() {
    use modvirt_tests::raw::RawClient;
    use modvirt_wire::domain::{
        DomainEventCallbackDeregisterAnyArgs, DomainEventCallbackRegisterAnyArgs,
        DomainEventCallbackRegisterAnyRet, event,
    };
    use modvirt_wire::{ErrorCode, ErrorDomain, RpcError, XdrDecode, XdrEncode};
    const REGISTER: i32 = 316;
    const DEREGISTER: i32 = 317;

    let d = Daemon::start("virtqemud", DaemonOptions::default());
    let open = || {
        let mut c = RawClient::connect_rw(&d);
        c.auth_list();
        c.open(0);
        c
    };
    let register = |c: &mut RawClient, event_id: i32| {
        c.rpc(
            REGISTER,
            &DomainEventCallbackRegisterAnyArgs { event_id, dom: None }.to_xdr(),
        )
    };
    let deregister = |c: &mut RawClient, callback_id: i32| {
        c.rpc(
            DEREGISTER,
            &DomainEventCallbackDeregisterAnyArgs { callback_id }.to_xdr(),
        )
    };
    let assert_internal = |e: &RpcError, want: &str| {
        assert_eq!(
            (e.code, e.domain),
            (ErrorCode::INTERNAL_ERROR, ErrorDomain::RPC),
            "{e}"
        );
        assert_eq!(
            e.message.as_deref(),
            Some(format!("internal error: {want}").as_str())
        );
    };

    let mut c = open();
    for id in [event::id::LAST, -1] {
        let e = register(&mut c, id).expect_err("unknown event id refused");
        assert_internal(&e, &format!("unsupported event ID {id}"));
    }
    let e = deregister(&mut c, 42).expect_err("unknown callback refused");
    assert_internal(&e, "domain event callback 42 not registered");

    let ret = register(&mut c, event::id::LIFECYCLE).expect("register lifecycle");
    let id = DomainEventCallbackRegisterAnyRet::from_xdr(&ret)
        .expect("register ret")
        .callback_id;
    let mut other = open();
    let e = deregister(&mut other, id).expect_err("another connection's callback");
    assert_internal(&e, &format!("domain event callback {id} not registered"));
    deregister(&mut c, id).expect("its owner removes it");
    let e = deregister(&mut c, id).expect_err("removed once");
    assert_internal(&e, &format!("domain event callback {id} not registered"));
}

#[test]
fn bad_definitions_are_refused_and_lose_nothing() {
    let (d, _g) = qemud(&[]);
    define(&d, "good", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00007");
    let bad = |xml: &str| {
        let file = d.root.path().join("bad.xml");
        std::fs::write(&file, xml).expect("xml");
        err_stderr(&d.virsh(&["define", file.to_str().unwrap_or_default()]))
    };
    let e = bad("<domain type='qemu'><name>x</name>");
    assert!(e.contains("XML error"), "{e}");
    let e = bad(
        "<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><domain type='qemu'><name>&x;</name></domain>",
    );
    assert!(e.contains("XML error"), "{e}");
    let e = bad(&guest_xml("a/b", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00008"));
    assert!(e.contains("cannot contain '/'"), "{e}");
    // Same name, another UUID; another name, same UUID.
    let e = bad(&guest_xml("good", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00009"));
    assert!(e.contains("already exists with uuid"), "{e}");
    let e = bad(&guest_xml("other", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00007"));
    assert!(e.contains("is already defined with uuid"), "{e}");
    let e = bad(&guest_xml("big", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee0000a")
        .replace("<vcpu>1</vcpu>", "<vcpu>100000</vcpu>"));
    assert!(e.contains("vcpu") || e.contains("CPUs"), "{e}");
    let list = ok_stdout(&d.virsh(&["list", "--all", "--name"]));
    assert_eq!(list.split_whitespace().collect::<Vec<_>>(), ["good"]);
    assert!(ok_stdout(&d.virsh(&["dumpxml", "good"])).contains("<name>good</name>"));
}

fn define_xml(d: &Daemon, file: &str, xml: &str) {
    let path = d.root.path().join(file);
    std::fs::write(&path, xml).expect("write xml");
    ok_stdout(&d.virsh(&["define", path.to_str().unwrap_or_default()]));
}

#[test]
fn a_missing_emulator_or_a_qemu_that_exits_at_once_is_a_clear_error() {
    let (d, _g) = qemud(&[]);
    let missing = guest_xml("noemu", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee0000b").replace(
        "<devices>",
        "<devices>\n    <emulator>/nonexistent/qemu-system-x86_64</emulator>",
    );
    define_xml(&d, "noemu.xml", &missing);
    let err = err_stderr(&d.virsh(&["start", "noemu"]));
    assert!(
        err.contains("Cannot find QEMU binary /nonexistent/qemu-system-x86_64"),
        "{err}"
    );
    assert!(
        ok_stdout(&d.virsh(&["list", "--all"])).contains("noemu"),
        "still listed"
    );

    let bad_disk = guest_xml("baddisk", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee0000c").replace(
        "<devices>",
        "<devices>\n    <disk type='file' device='disk'><source file='/nonexistent/disk.img'/><target dev='vda'/></disk>",
    );
    define_xml(&d, "baddisk.xml", &bad_disk);
    let err = err_stderr(&d.virsh(&["start", "baddisk"]));
    assert!(err.contains("/nonexistent/disk.img"), "QEMU's own words: {err}");
    assert_eq!(state(&d, "baddisk"), "shut off (unknown)");
}

#[test]
fn undefining_a_running_guest_makes_it_transient() {
    let (d, _g) = qemud(&[]);
    define(&d, "undef", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee0000d");
    ok_stdout(&d.virsh(&["start", "undef"]));
    ok_stdout(&d.virsh(&["undefine", "undef"]));
    let info = ok_stdout(&d.virsh(&["dominfo", "undef"]));
    assert!(
        info.contains("Persistent:     no") && info.contains("running"),
        "{info}"
    );
    assert!(!d.root.path().join("etc/libvirt/qemu/undef.xml").exists());
    ok_stdout(&d.virsh(&["destroy", "undef"]));
    assert!(
        !ok_stdout(&d.virsh(&["list", "--all"])).contains("undef"),
        "gone once stopped"
    );
}

/// A QEMU that stops answering (SIGSTOP): the job waiting on it shows in
/// `domcontrol` and `virt-daemons hangs`, a second job times out after 30 s
/// with libvirt's message naming the holder, and destroy still works.
#[test]
fn a_hung_qemu_holds_the_job_lock_and_destroy_still_works() {
    let (d, _g) = qemud(&[]);
    define(&d, "hung", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee0000e");
    ok_stdout(&d.virsh(&["start", "hung"]));
    let pid = guest_pid(d.root.path(), "hung");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGSTOP)
        .expect("SIGSTOP");
    let mut suspend = d.spawn_virsh(&["suspend", "hung"]);
    assert!(wait_for(Duration::from_secs(10), || {
        ok_stdout(&d.virsh(&["domcontrol", "hung"])).contains("occupied")
    }));
    let hangs = modvirt_tests::virt_daemons(d.root.path(), &["hangs", "--older-than", "0"]);
    assert!(
        hangs.contains("DOMAIN_SUSPEND") && hangs.contains(&format!("qemu pid {pid}")),
        "{hangs}"
    );
    let started = std::time::Instant::now();
    let err = err_stderr(&d.virsh(&["resume", "hung"]));
    assert!(
        started.elapsed() >= Duration::from_secs(29),
        "waited the job timeout"
    );
    assert!(
        err.contains(
            "Timed out during operation: cannot acquire state change lock (held by virDomainSuspend"
        ),
        "{err}"
    );
    ok_stdout(&d.virsh(&["destroy", "hung"]));
    assert!(
        suspend
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| !s.success()),
        "the stuck suspend failed"
    );
    assert_eq!(state(&d, "hung"), "shut off (destroyed)");
}

#[test]
fn the_running_definition_shows_the_pty_and_vnc_port_qemu_allocated() {
    let (d, _g) = qemud(&[]);
    let xml = guest_xml("devs", "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee0000f").replace(
        "<devices>",
        "<devices>\n    <serial type='pty'/>\n    <console type='pty'/>\n    \
         <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>",
    );
    define_xml(&d, "devs.xml", &xml);
    ok_stdout(&d.virsh(&["start", "devs"]));
    let live = ok_stdout(&d.virsh(&["dumpxml", "devs"]));
    assert!(live.contains("<source path='/dev/pts/"), "{live}");
    assert!(live.contains("<graphics type='vnc' port='59"), "{live}");
    let inactive = ok_stdout(&d.virsh(&["dumpxml", "--inactive", "devs"]));
    assert!(
        !inactive.contains("/dev/pts/") && inactive.contains("port='-1'"),
        "{inactive}"
    );
    ok_stdout(&d.virsh(&["destroy", "devs"]));
}
