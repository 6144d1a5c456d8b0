//! Node device events end to end: the real `virsh nodedev-event` against
//! virtnodedevd on a made-up sysfs (`MODVIRT_SYSFS`), where devices come
//! and go between enumerations (`CREATED`, `DELETED`) — noticed on the
//! next call that lists devices, and with no call at all by the watcher's
//! periodic enumeration; the same through virtqemud; the registration
//! procedures on the wire, with libvirt's errors; and on the real `/sys`,
//! a kernel `change` event for `lo` as an `UPDATE`.

mod fake_sysfs;

use modvirt_tests::events::{
    DriverEvents, Listener, assert_internal_error, call_until_quiet, until_listening,
};
use modvirt_tests::raw::{RawClient, Recv};
use modvirt_tests::{Daemon, DaemonOptions, PidGuard, daemon_pid, ok_stdout, temp_root, virsh_at, wait_for};
use modvirt_wire::nodedev::{
    ConnectNodeDeviceEventRegisterAnyArgs, NodeDeviceEventLifecycleMsg, NodeNumOfDevicesArgs,
    NonnullNodeDevice, event,
};
use modvirt_wire::{MessageType, RpcError, XdrDecode, XdrEncode};
use std::path::Path;
use std::time::Duration;
use virtnodedevd::fakesys::FakeSysfs;

const DEVICES: DriverEvents = DriverEvents {
    command: "nodedev-event",
    scheme: "nodedev",
    register: 374,
    deregister: 375,
};
const LIFECYCLE: i32 = 376;
const NUM_OF_DEVICES: i32 = 111;

const LO: &str = "net_lo_00_00_00_00_00_00";
/// A device the tests take away and bring back to see who listens.
const PROBE: &str = "net_probe0_02_00_00_00_00_01";
const DUMMY: &str = "net_dummy0_aa_bb_cc_dd_ee_ff";

/// A virtual network interface `name` with MAC `mac`.
fn net_device(f: &FakeSysfs, name: &str, mac: &str) {
    f.device(
        &format!("virtual/net/{name}"),
        "net",
        false,
        &format!("INTERFACE={name}\nIFINDEX=9\n"),
        &[("address", mac), ("addr_len", "6"), ("operstate", "down")],
    );
}

/// A small host: a NIC with its interface, `lo`, and the probe; the
/// environment pointing a daemon (and those it starts) at it.
fn fake_host(root: &Path) -> Vec<(String, String)> {
    let f = fake_sysfs::at(root);
    fake_sysfs::pci_nic(&f, "pci0000:00/0000:00:19.0", "eth0", 2, "52:54:00:12:34:56");
    net_device(&f, "lo", "00:00:00:00:00:00");
    net_device(&f, "probe0", "02:00:00:00:00:01");
    // The probe's second home: not listed (under `class/net`) until moved.
    let home = PROBE_HOMES[1];
    f.write(&format!("{home}/uevent"), b"INTERFACE=probe0\nIFINDEX=9\n");
    for (k, v) in [
        ("address", "02:00:00:00:00:01"),
        ("addr_len", "6"),
        ("operstate", "down"),
    ] {
        f.write(&format!("{home}/{k}"), format!("{v}\n").as_bytes());
    }
    f.link(&format!("{home}/subsystem"), "class/net");
    let udev = root.join("udev");
    std::fs::create_dir_all(&udev).expect("udev dir");
    vec![
        ("MODVIRT_SYSFS".into(), root.join("sys").display().to_string()),
        ("MODVIRT_UDEV_DATA".into(), udev.display().to_string()),
        (
            "MODVIRT_PCI_IDS".into(),
            root.join("no-pci.ids").display().to_string(),
        ),
    ]
}

/// Where the probe can be: one interface (the same name, the same MAC) at
/// two sysfs paths, so that moving it is another device of its name
/// (`DELETED`, then `CREATED`) while its name is always there for virsh
/// to look up.
const PROBE_HOMES: [&str; 2] = ["devices/virtual/net/probe0", "devices/virtual/probes/net/probe0"];

/// Lists the probe at `PROBE_HOMES[home]`, in one step (a symbolic link
/// renamed over the old one).
fn move_probe(f: &FakeSysfs, home: usize) {
    let tmp = f.sys.join("probe0.link");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(f.sys.join(PROBE_HOMES[home]), &tmp).expect("probe link");
    std::fs::rename(&tmp, f.sys.join("class/net/probe0")).expect("move the probe");
}

/// `name` (of `virtual/net`) leaves the host's lists, or comes back.
fn set_listed(f: &FakeSysfs, name: &str, listed: bool) {
    let entry = format!("class/net/{name}");
    if listed {
        f.link(&entry, &format!("devices/virtual/net/{name}"));
    } else {
        std::fs::remove_file(f.sys.join(entry)).expect("unlist a fake device");
    }
}

/// `daemon` on a fresh root holding the fake host.
fn on_fake_host(daemon: &str) -> Daemon {
    let root = temp_root("modvirt-e2e-");
    let env = fake_host(root.path());
    Daemon::start_in(
        daemon,
        root,
        DaemonOptions {
            env,
            ..Default::default()
        },
    )
}

fn line(dev: &str, what: &str) -> String {
    format!("event 'lifecycle' for node device {dev}: {what}")
}

/// Moves the probe, each time followed by a list call (`list`), until
/// every listener saw one of its events. Returns how many event lines
/// each listener had then.
fn until_probe_heard(f: &FakeSysfs, list: &dyn Fn(), listeners: &[&Listener]) -> Vec<usize> {
    let mut home = 0;
    until_listening(
        listeners,
        |_, e| e.contains(PROBE),
        || {
            home = 1 - home;
            move_probe(f, home);
            list();
        },
    )
}

#[test]
fn virsh_nodedev_event_shows_devices_coming_and_going() {
    let d = on_fake_host("virtnodedevd");
    let f = fake_sysfs::at(d.root.path());
    let uri = DEVICES.uri(&d, false);
    let list = || {
        ok_stdout(&virsh_at(&uri, &["nodedev-list"]));
    };
    let mut all = DEVICES.listen(&d, "all", false, &uri, &["--loop", "--event", "lifecycle"]);
    // Read-only, and for one device (which virsh looks up first).
    let mut probe = DEVICES.listen(
        &d,
        "probe",
        true,
        &DEVICES.uri(&d, true),
        &["--loop", "--event", "lifecycle", "--device", PROBE],
    );
    let skip = until_probe_heard(&f, &list, &[&all, &probe]);
    let (skip_all, skip_probe) = (skip[0], skip[1]);

    // A NIC with its interface and a dummy interface come, lo goes; the
    // next list call reads sysfs again and tells.
    fake_sysfs::pci_nic(&f, "pci0000:00/0000:00:1c.0", "eth1", 3, "52:54:00:00:00:02");
    net_device(&f, "dummy0", "aa:bb:cc:dd:ee:ff");
    set_listed(&f, "lo", false);
    list();
    set_listed(&f, "probe0", false);
    list();
    // Nothing changed: nothing said.
    list();

    // Gone ones first, then new ones parents first, in sysfs path order
    // (the dummy interface, under `virtual/`, after the NIC).
    let want: Vec<String> = [
        (LO, "Deleted"),
        ("pci_0000_00_1c_0", "Created"),
        ("net_eth1_52_54_00_00_00_02", "Created"),
        (DUMMY, "Created"),
        (PROBE, "Deleted"),
    ]
    .iter()
    .map(|(n, w)| line(n, w))
    .collect();
    let complete = wait_for(Duration::from_secs(10), || {
        all.events().len() >= skip_all + want.len() && probe.events().len() > skip_probe
    });
    all.show("virsh nodedev-event --loop --event lifecycle");
    probe.show(&format!(
        "virsh nodedev-event -r --loop --event lifecycle --device {PROBE}"
    ));
    assert!(complete, "{:#?}\n{:#?}", all.events(), probe.events());
    let got_all = all.events();
    assert!(
        got_all[..skip_all].iter().all(|l| l.contains(PROBE)),
        "{got_all:#?}"
    );
    assert_eq!(got_all[skip_all..], want[..]);
    let got_probe = probe.events();
    assert!(
        got_probe.iter().all(|l| l.contains(PROBE)),
        "another device's event: {got_probe:#?}"
    );
    assert_eq!(got_probe[skip_probe..], [line(PROBE, "Deleted")]);

    // With no call at all: the watcher reads sysfs again while clients
    // listen (every 10 s; a fake sysfs sends no kernel events).
    net_device(&f, "late0", "02:00:00:00:00:02");
    let late = line("net_late0_02_00_00_00_00_02", "Created");
    let heard = wait_for(Duration::from_secs(20), || all.events().last() == Some(&late));
    all.show("virsh nodedev-event --loop --event lifecycle (later)");
    assert!(heard, "{:#?}", all.events());
    assert_eq!(probe.events().len(), skip_probe + 1, "{:#?}", probe.events());

    // Ctrl-C ends the loops (virsh deregisters on its way out).
    let n = all.events().len();
    all.interrupt_after(n);
    probe.interrupt_after(skip_probe + 1);

    // A fake sysfs has no kernel events, so no updates: the wait times out.
    let out = DEVICES.no_event(&d, &uri, "update", || {
        set_listed(&f, "probe0", true);
        list();
    });
    assert!(out.contains("event loop timed out\nevents received: 0"), "{out}");
    // The daemon serves on after its listeners left.
    assert!(ok_stdout(&virsh_at(&uri, &["nodedev-list"])).contains(PROBE));
}

/// `nodedev-event` on a `qemu:///system` connection: virtqemud passes the
/// registration on to virtnodedevd (started on demand) on a connection of
/// the client's own, and the events come back to that client.
#[test]
fn node_device_events_reach_clients_of_virtqemud() {
    let qemu = on_fake_host("virtqemud");
    let f = fake_sysfs::at(qemu.root.path());
    let uri = qemu.uri(false);
    let mut l = DEVICES.listen(&qemu, "qemu", false, &uri, &["--loop", "--event", "lifecycle"]);
    let list = || {
        ok_stdout(&qemu.virsh(&["nodedev-list"]));
    };
    let skip = until_probe_heard(&f, &list, &[&l])[0];
    let _owner = PidGuard(daemon_pid(qemu.root.path(), "virtnodedevd"));
    net_device(&f, "dummy0", "aa:bb:cc:dd:ee:ff");
    list();
    let done = wait_for(Duration::from_secs(5), || l.events().len() > skip);
    l.show("virsh nodedev-event on qemu:///system");
    assert!(done, "{}{}", l.stdout(), l.stderr());
    assert_eq!(l.events()[skip..], [line(DUMMY, "Created")]);
    l.interrupt_after(skip + 1);
}

fn register(c: &mut RawClient, event_id: i32, dev: Option<&str>) -> Result<i32, RpcError> {
    let args = ConnectNodeDeviceEventRegisterAnyArgs {
        event_id,
        dev: dev.map(|name| NonnullNodeDevice { name: name.into() }),
    };
    DEVICES.register(c, &args)
}

/// Counts the devices (a list call: sysfs is read again) and returns the
/// lifecycle messages that came with it (before the reply or after: the
/// events are written on their own), until none came for 300 ms.
fn count_devices(c: &mut RawClient) -> Vec<NodeDeviceEventLifecycleMsg> {
    let args = NodeNumOfDevicesArgs { cap: None, flags: 0 };
    let (_, msgs) = call_until_quiet(c, NUM_OF_DEVICES, &args.to_xdr(), Duration::from_millis(300));
    msgs.iter()
        .map(|(h, payload)| {
            assert_eq!(h.proc_, LIFECYCLE, "{h:?}");
            NodeDeviceEventLifecycleMsg::from_xdr(payload).expect("lifecycle msg")
        })
        .collect()
}

#[test]
fn registrations_on_the_wire_follow_libvirt() {
    let d = on_fake_host("virtnodedevd");
    let f = fake_sysfs::at(d.root.path());
    let mut c = DEVICES.open_raw(&d.socket("sock"));
    // libvirt 9.0 has LIFECYCLE (0) and UPDATE (1).
    for id in [2, -1] {
        let e = register(&mut c, id, None).expect_err("unknown event id refused");
        assert_internal_error(
            &e,
            &format!("internal error: unsupported node device event ID {id}"),
        );
    }
    let e = DEVICES
        .deregister(&mut c, 42)
        .expect_err("unknown callback refused");
    assert_internal_error(&e, "internal error: node device event callback 42 not registered");

    let id = register(&mut c, event::id::LIFECYCLE, None).expect("register lifecycle");
    let upd = register(&mut c, event::id::UPDATE, Some(LO)).expect("register update of lo");
    assert_ne!(id, upd);
    // Read-only, for a device that is not there yet (libvirt takes any name).
    let mut ro = DEVICES.open_raw(&d.socket("sock-ro"));
    let ro_id = register(&mut ro, event::id::LIFECYCLE, Some(DUMMY)).expect("read-only register");
    DEVICES
        .deregister(&mut ro, id)
        .expect_err("another connection's callback");

    net_device(&f, "dummy0", "aa:bb:cc:dd:ee:ff");
    let msgs = count_devices(&mut c);
    let got: Vec<_> = msgs
        .iter()
        .map(|m| (m.callback_id, m.dev.name.as_str(), m.event, m.detail))
        .collect();
    assert_eq!(got, [(id, DUMMY, event::CREATED, 0)]);
    let (h, payload) = ro.recv();
    assert_eq!((h.type_, h.proc_, h.serial), (MessageType::Message, LIFECYCLE, 1));
    let m = NodeDeviceEventLifecycleMsg::from_xdr(&payload).expect("lifecycle msg");
    assert_eq!(
        (m.callback_id, m.dev.name.as_str(), m.event),
        (ro_id, DUMMY, event::CREATED)
    );
    // The probe goes: not the read-only client's device.
    set_listed(&f, "probe0", false);
    let msgs = count_devices(&mut c);
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (msgs[0].dev.name.as_str(), msgs[0].event),
        (PROBE, event::DELETED)
    );
    assert!(matches!(
        ro.recv_within(Duration::from_millis(300)),
        Recv::TimedOut
    ));

    // Deregistered: no more lifecycle events (the update registration
    // hears none); the id is gone.
    DEVICES.deregister(&mut c, id).expect("deregister");
    DEVICES.deregister(&mut c, id).expect_err("only once");
    drop(ro);
    set_listed(&f, "probe0", true);
    assert!(count_devices(&mut c).is_empty(), "an event after deregistering");
    assert!(matches!(
        c.recv_within(Duration::from_millis(300)),
        Recv::TimedOut
    ));
    // The daemon serves on; callback ids are not reused.
    let mut again = DEVICES.open_raw(&d.socket("sock"));
    assert!(register(&mut again, event::id::LIFECYCLE, None).expect("register") > ro_id);
}

/// On the real `/sys` (the daemon in the host's network namespace, as it
/// must be to see `lo` in sysfs): a `change` uevent for `lo`, as writing
/// `change` to its `uevent` file makes the kernel send (no device is
/// created or changed), reaches a listener to `lo`'s updates.
#[test]
fn a_kernel_change_event_is_an_update() {
    let d = Daemon::start("virtnodedevd", DaemonOptions::default());
    let uri = DEVICES.uri(&d, false);
    assert!(
        ok_stdout(&virsh_at(&uri, &["nodedev-list", "--cap", "net"])).contains(LO),
        "no {LO} on this host"
    );
    let mut l = DEVICES.listen(
        &d,
        "lo",
        false,
        &uri,
        &["--loop", "--event", "update", "--device", LO],
    );
    let uevent = Path::new("/sys/devices/virtual/net/lo/uevent");
    let want = format!("event 'update' for node device {LO}");
    let heard = wait_for(Duration::from_secs(15), || {
        std::fs::write(uevent, "change").expect("write lo's uevent (tests run as root)");
        std::thread::sleep(Duration::from_millis(300));
        !l.events().is_empty()
    });
    l.show(&format!(
        "virsh nodedev-event --loop --event update --device {LO}"
    ));
    assert!(heard, "{}{}", l.stdout(), l.stderr());
    assert!(l.events().iter().all(|e| *e == want), "{:#?}", l.events());
    let out = l.interrupt();
    assert!(out.contains("events received: "), "{out}");
}
