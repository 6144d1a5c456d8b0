//! Storage pool events end to end: the real `virsh pool-event` against
//! virtstoraged (lifecycle and refresh listeners, one of them read-only and
//! filtered to one pool) while a second virsh builds, starts, refreshes,
//! stops, deletes and undefines pools; a listener on a `qemu:///system`
//! connection to virtqemud, which passes its registration on to
//! virtstoraged; and the registration procedures on the wire, with
//! libvirt's errors.

use modvirt_tests::events::{DriverEvents, assert_internal_error, call_with_events, until_listening};
use modvirt_tests::raw::{RawClient, Recv};
use modvirt_tests::{Daemon, DaemonOptions, PidGuard, daemon_pid, ok_stdout, virsh_at, wait_for};
use modvirt_wire::storage::{
    ConnectStoragePoolEventRegisterAnyArgs, PoolArgs, PoolFlagsArgs, PoolRet, PoolXmlArgs,
    StoragePoolEventLifecycleMsg, StoragePoolEventRefreshMsg, create, event,
};
use modvirt_wire::{ErrorCode, Header, MessageType, RpcError, XdrDecode, XdrEncode};
use std::path::PathBuf;
use std::time::Duration;

const POOLS: DriverEvents = DriverEvents {
    command: "pool-event",
    scheme: "storage",
    register: 368,
    deregister: 369,
};
const LIFECYCLE: i32 = 370;
const REFRESH: i32 = 373;
const DEFINE_XML: i32 = 77;
const CREATE: i32 = 78;
const DESTROY: i32 = 80;
const UNDEFINE: i32 = 82;
const POOL_REFRESH: i32 = 83;

/// A `dir` pool on `ROOT/pools/NAME`, with its UUID fixed (from `n`) so
/// that defining it again replaces it.
fn pool_xml(d: &Daemon, name: &str, n: u8) -> String {
    format!(
        "<pool type='dir'>\n  <name>{name}</name>\n  \
         <uuid>3c0ffee0-5a1e-4b6e-8d7a-50001e0000{n:02x}</uuid>\n  \
         <target>\n    <path>{}</path>\n  </target>\n</pool>\n",
        pool_dir(d, name).display()
    )
}

fn pool_dir(d: &Daemon, name: &str) -> PathBuf {
    d.root.path().join("pools").join(name)
}

/// Writes the XML of pool `name` to a file; returns its path.
fn write_xml(d: &Daemon, name: &str, n: u8) -> String {
    let path = d.root.path().join(format!("{name}.xml"));
    std::fs::write(&path, pool_xml(d, name, n)).expect("write xml");
    path.display().to_string()
}

fn line(pool: &str, what: &str) -> String {
    format!("event 'lifecycle' for storage pool {pool}: {what}")
}

fn refreshed(pool: &str) -> String {
    format!("event 'refresh' for storage pool {pool}")
}

#[test]
fn virsh_pool_event_shows_lifecycle_and_refresh_events_in_order() {
    let d = Daemon::start("virtstoraged", DaemonOptions::default());
    let uri = POOLS.uri(&d, false);
    let virsh = |args: &[&str]| ok_stdout(&virsh_at(&uri, args));
    let p1 = write_xml(&d, "p1", 1);
    let probe = write_xml(&d, "probe", 2);
    virsh(&["pool-define", &probe]);
    virsh(&["pool-start", "probe", "--build"]);
    // `--pool` names a pool virsh looks up first.
    virsh(&["pool-define", &p1]);

    let mut all = POOLS.listen(&d, "all", false, &uri, &["--loop", "--event", "lifecycle"]);
    let mut refresh = POOLS.listen(&d, "refresh", false, &uri, &["--loop", "--event", "refresh"]);
    // A read-only connection may listen too; this one only to `p1`.
    let mut only_p1 = POOLS.listen(
        &d,
        "p1",
        true,
        &POOLS.uri(&d, true),
        &["--loop", "--event", "lifecycle", "--pool", "p1"],
    );
    // All listen once redefining `p1` (a `Defined` each time) and
    // refreshing `probe` reach them.
    let (defined_p1, refreshed_probe) = (line("p1", "Defined"), refreshed("probe"));
    let heard = [&defined_p1, &defined_p1, &refreshed_probe];
    let skip = until_listening(
        &[&all, &only_p1, &refresh],
        |i, e| e == heard[i],
        || {
            virsh(&["pool-define", &p1]);
            virsh(&["pool-refresh", "probe"]);
        },
    );

    virsh(&["pool-build", "p1"]);
    virsh(&["pool-start", "p1"]);
    virsh(&["pool-refresh", "p1"]);
    virsh(&["pool-destroy", "p1"]);
    virsh(&["pool-delete", "p1"]);
    assert!(!pool_dir(&d, "p1").exists());
    // Started with a build: `Started` only, as libvirt (no `Created`).
    virsh(&["pool-start", "p1", "--build"]);
    // A refresh that finds the directory gone stops the pool: `Stopped`,
    // and no refresh event.
    std::fs::remove_dir(pool_dir(&d, "p1")).expect("remove p1's directory");
    let failed = virsh_at(&uri, &["pool-refresh", "p1"]);
    assert!(!failed.status.success(), "{failed:?}");
    virsh(&["pool-undefine", "p1"]);
    // A transient pool: started by create, gone with destroy (no
    // `Defined`/`Undefined`).
    let tp = pool_dir(&d, "tp").display().to_string();
    virsh(&["pool-create-as", "tp", "dir", "--target", &tp, "--build"]);
    virsh(&["pool-destroy", "tp"]);

    let p1_lines: Vec<String> = [
        "Created",
        "Started",
        "Stopped",
        "Deleted",
        "Started",
        "Stopped",
        "Undefined",
    ]
    .iter()
    .map(|w| line("p1", w))
    .collect();
    let mut want_all = p1_lines.clone();
    want_all.extend([line("tp", "Started"), line("tp", "Stopped")]);
    let want_refresh = [refreshed("p1")];
    let complete = wait_for(Duration::from_secs(10), || {
        all.events().len() >= skip[0] + want_all.len()
            && only_p1.events().len() >= skip[1] + p1_lines.len()
            && refresh.events().len() > skip[2]
    });
    // Anything late would show now.
    std::thread::sleep(Duration::from_millis(300));
    all.show("virsh pool-event --loop --event lifecycle");
    only_p1.show("virsh -r pool-event --loop --event lifecycle --pool p1");
    refresh.show("virsh pool-event --loop --event refresh");
    let (got_all, got_p1, got_refresh) = (all.events(), only_p1.events(), refresh.events());
    assert!(complete, "{got_all:#?}\n{got_p1:#?}\n{got_refresh:#?}");
    assert!(
        got_all[..skip[0]].iter().all(|l| *l == defined_p1),
        "{got_all:#?}"
    );
    assert_eq!(got_all[skip[0]..], want_all[..]);
    assert!(got_p1[..skip[1]].iter().all(|l| *l == defined_p1), "{got_p1:#?}");
    assert_eq!(got_p1[skip[1]..], p1_lines[..]);
    assert!(
        got_refresh[..skip[2]].iter().all(|l| *l == refreshed_probe),
        "{got_refresh:#?}"
    );
    assert_eq!(got_refresh[skip[2]..], want_refresh[..]);

    // Ctrl-C ends the loops (virsh deregisters on its way out).
    for (l, n) in [
        (&mut all, got_all.len()),
        (&mut only_p1, got_p1.len()),
        (&mut refresh, got_refresh.len()),
    ] {
        l.interrupt_after(n);
    }

    // Without --loop virsh waits for one event; --timeout ends the wait.
    let one = POOLS.one_event(&d, &uri, "refresh", || {
        virsh(&["pool-refresh", "probe"]);
    });
    assert_eq!(one, [refreshed("probe")]);
    POOLS.no_event(&d, &uri, "lifecycle", || {});
    // The daemon is still fine after its listeners left.
    assert!(virsh(&["pool-list", "--all", "--name"]).contains("probe"));
}

/// `pool-event` on a `qemu:///system` connection to virtqemud: the
/// registration is passed on to virtstoraged (started on demand) on a
/// connection of the client's own, so the events come back to that client.
#[test]
fn pool_events_reach_clients_of_virtqemud() {
    let qemu = Daemon::start("virtqemud", DaemonOptions::default());
    let qemu_uri = qemu.uri(false);
    let virsh = |args: &[&str]| ok_stdout(&virsh_at(&qemu_uri, args));
    let mut lifecycle = POOLS.listen(
        &qemu,
        "qemu",
        false,
        &qemu_uri,
        &["--loop", "--event", "lifecycle"],
    );
    let _storaged = PidGuard(daemon_pid(qemu.root.path(), "virtstoraged"));
    // Until it listens: each round defines the probe again.
    let probe = write_xml(&qemu, "probe", 2);
    let defined_probe = line("probe", "Defined");
    until_listening(
        &[&lifecycle],
        |_, e| e == defined_probe,
        || {
            virsh(&["pool-define", &probe]);
        },
    );
    let mv = write_xml(&qemu, "mv", 3);
    virsh(&["pool-define", &mv]);
    virsh(&["pool-start", "mv", "--build"]);
    virsh(&["pool-destroy", "mv"]);
    virsh(&["pool-undefine", "mv"]);
    let expected = ["Defined", "Started", "Stopped", "Undefined"].map(|w| line("mv", w));
    let mv_events = || lifecycle.events_past("probe");
    let done = wait_for(Duration::from_secs(5), || mv_events().len() >= expected.len());
    lifecycle.show("virsh -c qemu:///system pool-event --loop --event lifecycle");
    assert!(done, "{:?}", lifecycle.events());
    assert_eq!(mv_events(), expected);
    let out = lifecycle.interrupt();
    assert!(out.contains("events received: "), "{out}");
}

fn register(c: &mut RawClient, event_id: i32) -> Result<i32, RpcError> {
    POOLS.register(
        c,
        &ConnectStoragePoolEventRegisterAnyArgs { event_id, pool: None },
    )
}

/// Sends a call and reads until both its reply and one event MESSAGE came;
/// returns the reply's payload and the message's header and payload.
fn call_with_event(c: &mut RawClient, proc_: i32, args: &[u8]) -> (Vec<u8>, (Header, Vec<u8>)) {
    let (reply, mut msgs) = call_with_events(c, proc_, args, 1);
    (reply, msgs.remove(0))
}

#[test]
fn registrations_on_the_wire_follow_libvirt() {
    let d = Daemon::start("virtstoraged", DaemonOptions::default());
    let mut c = POOLS.open_raw(&d.socket("sock"));
    // libvirt 9.0 knows lifecycle (0) and refresh (1).
    for id in [2, -1] {
        let e = register(&mut c, id).expect_err("unknown event id refused");
        assert_internal_error(
            &e,
            &format!("internal error: unsupported storage pool event ID {id}"),
        );
    }
    let e = POOLS
        .deregister(&mut c, 42)
        .expect_err("unknown callback refused");
    assert_internal_error(
        &e,
        "internal error: storage pool event callback 42 not registered",
    );

    let life = register(&mut c, event::id::LIFECYCLE).expect("register lifecycle");
    // A read-only connection registers as well, with ids of its own; it
    // cannot remove another connection's callback.
    let mut ro = POOLS.open_raw(&d.socket("sock-ro"));
    let ro_refresh = register(&mut ro, event::id::REFRESH).expect("read-only register");
    assert_ne!(life, ro_refresh);
    let e = POOLS
        .deregister(&mut ro, life)
        .expect_err("another connection's callback");
    assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);

    // A definition: its reply, and a lifecycle MESSAGE to the lifecycle
    // listener only.
    let xml = PoolXmlArgs {
        xml: pool_xml(&d, "wire", 4),
        flags: 0,
    };
    let (reply, (h, payload)) = call_with_event(&mut c, DEFINE_XML, &xml.to_xdr());
    let pool = PoolRet::from_xdr(&reply).expect("define ret").pool;
    assert_eq!(h.proc_, LIFECYCLE);
    let msg = StoragePoolEventLifecycleMsg::from_xdr(&payload).expect("lifecycle msg");
    assert_eq!(
        (msg.callback_id, &msg.pool, msg.event, msg.detail),
        (life, &pool, event::DEFINED, 0)
    );
    // Started with a build: `Started`.
    let start = PoolFlagsArgs {
        pool: pool.clone(),
        flags: create::WITH_BUILD,
    };
    let (_, (h, payload)) = call_with_event(&mut c, CREATE, &start.to_xdr());
    let msg = StoragePoolEventLifecycleMsg::from_xdr(&payload).expect("lifecycle msg");
    assert_eq!((h.proc_, msg.event), (LIFECYCLE, event::STARTED));
    // A refresh: the refresh event, to the read-only listener.
    let refresh = PoolFlagsArgs {
        pool: pool.clone(),
        flags: 0,
    };
    c.rpc_ok(POOL_REFRESH, &refresh.to_xdr());
    let (h, payload) = ro.recv();
    assert_eq!((h.type_, h.proc_, h.serial), (MessageType::Message, REFRESH, 1));
    let msg = StoragePoolEventRefreshMsg::from_xdr(&payload).expect("refresh msg");
    assert_eq!((msg.callback_id, &msg.pool), (ro_refresh, &pool));
    assert!(
        matches!(c.recv_within(Duration::from_millis(300)), Recv::TimedOut),
        "a refresh event to a lifecycle listener"
    );

    // Deregistered: no more events; the id is gone.
    POOLS.deregister(&mut c, life).expect("deregister");
    POOLS.deregister(&mut c, life).expect_err("deregistered twice");
    // The read-only client leaves without deregistering.
    drop(ro);
    c.rpc_ok(DESTROY, &PoolArgs { pool: pool.clone() }.to_xdr());
    c.rpc_ok(UNDEFINE, &PoolArgs { pool }.to_xdr());
    assert!(
        matches!(c.recv_within(Duration::from_millis(500)), Recv::TimedOut),
        "an event after deregistering"
    );
    // The daemon serves on; callback ids are not reused.
    let mut again = POOLS.open_raw(&d.socket("sock"));
    assert_eq!(register(&mut again, 0).expect("register"), ro_refresh + 1);
}
