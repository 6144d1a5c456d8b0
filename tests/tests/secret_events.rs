//! Secret events end to end: the real `virsh secret-event` against
//! virtsecretd (lifecycle and value-changed, for every secret or one),
//! while a second virsh defines, sets values of and undefines secrets; the
//! same through virtqemud, which passes the registrations on to the
//! virtsecretd it starts; and the registration procedures on the wire,
//! with libvirt's errors.

use modvirt_tests::events::{DriverEvents, assert_internal_error, call_with_events, until_listening};
use modvirt_tests::raw::{RawClient, Recv};
use modvirt_tests::{Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, virsh_at, wait_for};
use modvirt_wire::remote::Uuid;
use modvirt_wire::secret::{
    ConnectSecretEventRegisterAnyArgs, NonnullSecret, SecretArgs, SecretDefineXmlArgs,
    SecretEventLifecycleMsg, SecretEventValueChangedMsg, SecretRet, SecretSetValueArgs, SecretValue, event,
    usage,
};
use modvirt_wire::{ErrorCode, MessageType, RpcError, XdrDecode, XdrEncode};
use std::time::Duration;

const SECRETS: DriverEvents = DriverEvents {
    command: "secret-event",
    scheme: "secret",
    register: 380,
    deregister: 381,
};
const LIFECYCLE: i32 = 382;
const VALUE_CHANGED: i32 = 383;
const DEFINE_XML: i32 = 142;
const SET_VALUE: i32 = 144;
const UNDEFINE: i32 = 146;

const PROBE: &str = "3d1e5a7c-0b2f-4c6d-8e9a-0f1e2d3c4b5a";
const CEPH: &str = "c9b6a3c4-1d1e-4d5a-9f5e-0123456789ab";
const EPHEMERAL: &str = "0d1c2b3a-4f5e-4a6b-9c8d-fedcba987654";
const CLASH: &str = "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e";

/// A ceph secret (`ephemeral` or not) with UUID `uuid` for user `user`.
fn ceph_xml(uuid: &str, user: &str, ephemeral: bool) -> String {
    let eph = if ephemeral { "yes" } else { "no" };
    format!(
        "<secret ephemeral='{eph}' private='no'>\n  <uuid>{uuid}</uuid>\n  <usage type='ceph'>\n    \
         <name>{user}</name>\n  </usage>\n</secret>\n"
    )
}

fn write_xml(d: &Daemon, name: &str, xml: &str) -> String {
    let path = d.root.path().join(format!("{name}.xml"));
    std::fs::write(&path, xml).expect("write xml");
    path.display().to_string()
}

fn life(uuid: &str, what: &str) -> String {
    format!("event 'lifecycle' for secret {uuid}: {what}")
}

fn changed(uuid: &str) -> String {
    format!("event 'value-changed' for secret {uuid}")
}

#[test]
fn virsh_secret_event_shows_lifecycle_and_value_changes() {
    let d = Daemon::start("virtsecretd", DaemonOptions::default());
    let uri = SECRETS.uri(&d, false);
    let virsh = |args: &[&str]| ok_stdout(&virsh_at(&uri, args));
    let probe = write_xml(&d, "probe", &ceph_xml(PROBE, "client.probe", false));
    let ceph = write_xml(&d, "ceph", &ceph_xml(CEPH, "client.admin", false));
    let ephemeral = write_xml(&d, "eph", &ceph_xml(EPHEMERAL, "client.eph", true));
    let clash = write_xml(&d, "clash", &ceph_xml(CLASH, "client.admin", false));
    // `--secret` names a secret virsh looks up first.
    virsh(&["secret-define", &ceph]);

    let mut lifecycle = SECRETS.listen(&d, "life", false, &uri, &["--loop", "--event", "lifecycle"]);
    let mut values = SECRETS.listen(&d, "values", false, &uri, &["--loop", "--event", "value-changed"]);
    // A read-only connection may listen too; this one to one secret only.
    let ro_uri = SECRETS.uri(&d, true);
    let mut only_ceph = SECRETS.listen(
        &d,
        "ceph",
        true,
        &ro_uri,
        &["--loop", "--event", "lifecycle", "--secret", CEPH],
    );
    // Listening once the probe's events arrive (and redefining `ceph`
    // tells its own listener; those lines are skipped below).
    let heard = [life(PROBE, "Defined"), changed(PROBE), life(CEPH, "Defined")];
    let skip = until_listening(
        &[&lifecycle, &values, &only_ceph],
        |i, e| e == heard[i],
        || {
            virsh(&["secret-define", &probe]);
            virsh(&["secret-set-value", PROBE, "--base64", "cHJvYmU="]);
            virsh(&["secret-define", &ceph]);
        },
    );
    let (skip_life, skip_values, skip_ceph) = (skip[0], skip[1], skip[2]);

    virsh(&["secret-set-value", CEPH, "--base64", "aGVsbG8="]);
    // The same value again is a change all the same, as in libvirt.
    virsh(&["secret-set-value", CEPH, "--base64", "aGVsbG8="]);
    virsh(&["secret-define", &ephemeral]);
    virsh(&["secret-set-value", EPHEMERAL, "--base64", "ZWZm"]);
    // Refused calls send nothing: another secret's usage, an unknown UUID.
    let e = err_stderr(&virsh_at(&uri, &["secret-define", &clash]));
    assert!(e.contains("already defined for use with client.admin"), "{e}");
    let e = err_stderr(&virsh_at(&uri, &["secret-undefine", CLASH]));
    assert!(e.contains("no secret with matching uuid"), "{e}");
    // Redefining is `Defined` again.
    virsh(&["secret-define", &ceph]);
    virsh(&["secret-undefine", EPHEMERAL]);
    virsh(&["secret-undefine", CEPH]);
    virsh(&["secret-undefine", PROBE]);

    let want_life = [
        life(EPHEMERAL, "Defined"),
        life(CEPH, "Defined"),
        life(EPHEMERAL, "Undefined"),
        life(CEPH, "Undefined"),
        life(PROBE, "Undefined"),
    ];
    let want_values = [changed(CEPH), changed(CEPH), changed(EPHEMERAL)];
    let want_ceph = [life(CEPH, "Defined"), life(CEPH, "Undefined")];
    let complete = wait_for(Duration::from_secs(10), || {
        lifecycle.events().len() >= skip_life + want_life.len()
            && values.events().len() >= skip_values + want_values.len()
            && only_ceph.events().len() >= skip_ceph + want_ceph.len()
    });
    lifecycle.show("virsh secret-event --loop --event lifecycle");
    values.show("virsh secret-event --loop --event value-changed");
    only_ceph.show("virsh -r secret-event --loop --event lifecycle --secret CEPH");
    assert!(
        complete,
        "{:#?}\n{:#?}\n{:#?}",
        lifecycle.events(),
        values.events(),
        only_ceph.events()
    );
    let (got_life, got_values, got_ceph) = (lifecycle.events(), values.events(), only_ceph.events());
    // Before the skip: only the probe's and `ceph`'s redefinitions.
    let probe_or_ceph = |l: &String| l.contains(PROBE) || *l == life(CEPH, "Defined");
    assert!(got_life[..skip_life].iter().all(probe_or_ceph), "{got_life:#?}");
    assert!(
        got_values[..skip_values].iter().all(|l| *l == changed(PROBE)),
        "{got_values:#?}"
    );
    assert!(
        got_ceph[..skip_ceph].iter().all(|l| *l == life(CEPH, "Defined")),
        "{got_ceph:#?}"
    );
    assert_eq!(got_life[skip_life..], want_life[..]);
    assert_eq!(got_values[skip_values..], want_values[..]);
    assert_eq!(got_ceph[skip_ceph..], want_ceph[..]);

    // Ctrl-C ends the loops (virsh deregisters on its way out).
    for (l, n) in [
        (&mut lifecycle, got_life.len()),
        (&mut values, got_values.len()),
        (&mut only_ceph, got_ceph.len()),
    ] {
        l.interrupt_after(n);
    }

    // Without --loop virsh waits for one event.
    virsh(&["secret-define", &ceph]);
    let one = SECRETS.one_event(&d, &uri, "value-changed", || {
        virsh(&["secret-set-value", CEPH, "--base64", "aGVsbG8="]);
    });
    assert_eq!(one, [changed(CEPH)]);
    // An event type virsh does not know is refused before any call.
    let e = err_stderr(&virsh_at(&uri, &["secret-event", "--event", "refresh"]));
    assert!(e.contains("unknown event type refresh"), "{e}");
    // The daemon is still fine after its listeners left.
    assert!(virsh(&["secret-list"]).contains(CEPH));
}

/// `secret-event` on `qemu:///system` connections to virtqemud (read-write
/// and read-only): the registrations are passed on to virtsecretd, which
/// virtqemud starts, on connections of the clients' own, so the events
/// come back to them.
#[test]
fn secret_events_reach_clients_of_virtqemud() {
    let qemu = Daemon::start("virtqemud", DaemonOptions::default());
    let uri = qemu.uri(false);
    let virsh = |args: &[&str]| ok_stdout(&virsh_at(&uri, args));
    // virtqemud starts virtsecretd for the first secret call; it is killed
    // with the test.
    virsh(&["secret-list"]);
    let _owner = PidGuard(daemon_pid(qemu.root.path(), "virtsecretd"));
    let mut lifecycle = SECRETS.listen(
        &qemu,
        "qemu-life",
        false,
        &uri,
        &["--loop", "--event", "lifecycle"],
    );
    let mut values = SECRETS.listen(
        &qemu,
        "qemu-values",
        true,
        &qemu.uri(true),
        &["--loop", "--event", "value-changed"],
    );
    let probe = write_xml(&qemu, "probe", &ceph_xml(PROBE, "client.probe", false));
    let heard = [life(PROBE, "Defined"), changed(PROBE)];
    until_listening(
        &[&lifecycle, &values],
        |i, e| e == heard[i],
        || {
            virsh(&["secret-define", &probe]);
            virsh(&["secret-set-value", PROBE, "--base64", "cHJvYmU="]);
        },
    );
    let ceph = write_xml(&qemu, "ceph", &ceph_xml(CEPH, "client.admin", false));
    virsh(&["secret-define", &ceph]);
    virsh(&["secret-set-value", CEPH, "--base64", "aGVsbG8="]);
    virsh(&["secret-undefine", CEPH]);
    let want_life = [life(CEPH, "Defined"), life(CEPH, "Undefined")];
    let want_values = [changed(CEPH)];
    let done = wait_for(Duration::from_secs(5), || {
        lifecycle.events_past(PROBE) == want_life && values.events_past(PROBE) == want_values
    });
    lifecycle.show("virsh -c qemu:///system secret-event --loop --event lifecycle");
    values.show("virsh -r -c qemu:///system secret-event --loop --event value-changed");
    assert!(done, "{:#?}\n{:#?}", lifecycle.events(), values.events());
    for l in [&mut lifecycle, &mut values] {
        let out = l.interrupt();
        assert!(out.contains("events received: "), "{out}");
    }
}

fn register(c: &mut RawClient, event_id: i32, secret: Option<NonnullSecret>) -> Result<i32, RpcError> {
    SECRETS.register(c, &ConnectSecretEventRegisterAnyArgs { event_id, secret })
}

#[test]
fn registrations_on_the_wire_follow_libvirt() {
    let d = Daemon::start("virtsecretd", DaemonOptions::default());
    let mut c = SECRETS.open_raw(&d.socket("sock"));
    // libvirt 9.0 knows lifecycle (0) and value-changed (1).
    for id in [2, -1] {
        let e = register(&mut c, id, None).expect_err("unknown event id refused");
        assert_internal_error(&e, &format!("internal error: unsupported secret event ID {id}"));
    }
    // libvirt's daemon words an unknown secret callback as a node device one.
    let e = SECRETS
        .deregister(&mut c, 42)
        .expect_err("unknown callback refused");
    assert_internal_error(&e, "internal error: node device event callback 42 not registered");

    let life_id = register(&mut c, event::id::LIFECYCLE, None).expect("register lifecycle");
    let value_id = register(&mut c, event::id::VALUE_CHANGED, None).expect("register value-changed");
    // A read-only connection registers as well, for one secret not yet
    // defined; it cannot remove another connection's callback.
    let wanted = NonnullSecret {
        uuid: Uuid(*b"0123456789abcdef"),
        usage_type: usage::CEPH,
        usage_id: "client.wire".into(),
    };
    let mut ro = SECRETS.open_raw(&d.socket("sock-ro"));
    let ro_id = register(&mut ro, event::id::LIFECYCLE, Some(wanted.clone())).expect("read-only register");
    assert!(![life_id, value_id].contains(&ro_id));
    let e = SECRETS
        .deregister(&mut ro, life_id)
        .expect_err("another connection's callback");
    assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);

    // A definition: its reply, one lifecycle MESSAGE for each listener.
    let xml = ceph_xml("30313233-3435-3637-3839-616263646566", "client.wire", false);
    let (reply, msgs) = call_with_events(
        &mut c,
        DEFINE_XML,
        &SecretDefineXmlArgs { xml, flags: 0 }.to_xdr(),
        1,
    );
    let secret = SecretRet::from_xdr(&reply).expect("define ret").secret;
    assert_eq!(secret, wanted);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].0.proc_, LIFECYCLE);
    let m = SecretEventLifecycleMsg::from_xdr(&msgs[0].1).expect("lifecycle msg");
    assert_eq!(
        (m.callback_id, &m.secret, m.event, m.detail),
        (life_id, &wanted, event::DEFINED, 0)
    );
    let (h, payload) = ro.recv();
    assert_eq!((h.type_, h.proc_, h.serial), (MessageType::Message, LIFECYCLE, 1));
    let m = SecretEventLifecycleMsg::from_xdr(&payload).expect("lifecycle msg");
    assert_eq!((m.callback_id, m.event), (ro_id, event::DEFINED));

    // A value: "value changed" to the value listener only, without the value.
    let set = SecretSetValueArgs {
        secret: secret.clone(),
        value: SecretValue(b"s3cr3t".to_vec()),
        flags: 0,
    };
    let (_, msgs) = call_with_events(&mut c, SET_VALUE, &set.to_xdr(), 1);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].0.proc_, VALUE_CHANGED);
    assert!(
        !msgs[0].1.windows(6).any(|w| w == b"s3cr3t"),
        "the value went out"
    );
    let m = SecretEventValueChangedMsg::from_xdr(&msgs[0].1).expect("value-changed msg");
    assert_eq!((m.callback_id, &m.secret), (value_id, &wanted));
    ro.expect_quiet(Duration::from_millis(300));

    // Deregistered: no more events; each id goes once.
    for id in [life_id, value_id] {
        SECRETS.deregister(&mut c, id).expect("deregister");
        SECRETS.deregister(&mut c, id).expect_err("deregistered twice");
    }
    let (_, msgs) = call_with_events(&mut c, UNDEFINE, &SecretArgs { secret }.to_xdr(), 0);
    assert!(msgs.is_empty(), "{msgs:?}");
    assert!(
        matches!(c.recv_within(Duration::from_millis(500)), Recv::TimedOut),
        "an event after deregistering"
    );
    let (h, payload) = ro.recv();
    assert_eq!((h.type_, h.proc_), (MessageType::Message, LIFECYCLE));
    let m = SecretEventLifecycleMsg::from_xdr(&payload).expect("lifecycle msg");
    assert_eq!((m.callback_id, m.event), (ro_id, event::UNDEFINED));
    // The read-only client leaves without deregistering; the daemon serves on.
    drop(ro);
    let mut again = SECRETS.open_raw(&d.socket("sock"));
    assert_eq!(
        register(&mut again, event::id::LIFECYCLE, None).expect("register"),
        ro_id + 1
    );
}
