//! Network lifecycle events end to end: the real `virsh net-event` against
//! virtnetworkd (in a network namespace of its own), while a second virsh
//! defines, starts, stops and undefines networks; and the registration
//! procedures on the wire, with libvirt's errors.

use modvirt_tests::events::{DriverEvents, assert_internal_error, call_with_events, until_listening};
use modvirt_tests::raw::{RawClient, Recv};
use modvirt_tests::{Daemon, DaemonOptions, ok_stdout, virsh_at, wait_for};
use modvirt_wire::network::{
    ConnectNetworkEventRegisterAnyArgs, NetworkEventLifecycleMsg, NetworkXmlArgs, event,
};
use modvirt_wire::remote::NetworkRet;
use modvirt_wire::{ErrorCode, MessageType, RpcError, XdrDecode, XdrEncode};
use nix::sys::signal::Signal;
use std::time::Duration;

const NET: DriverEvents = DriverEvents {
    command: "net-event",
    scheme: "network",
    register: 313,
    deregister: 314,
};
const LIFECYCLE: i32 = 315;
const DEFINE_XML: i32 = 41;
const UNDEFINE: i32 = 49;

/// A bridge with no addresses: starts without dnsmasq or firewall rules.
/// With its UUID fixed (from `n`), so that defining it again replaces it.
fn isolated(name: &str, bridge: &str, n: u8) -> String {
    format!(
        "<network>\n  <name>{name}</name>\n  <uuid>6a1f0b3e-52c4-4c1e-9d2a-0c0ffee100{n:02x}</uuid>\n  \
         <bridge name='{bridge}'/>\n</network>\n"
    )
}

/// virtnetworkd in a network namespace of its own (its bridges never
/// reach the host's).
fn virtnetworkd() -> Daemon {
    Daemon::start(
        "virtnetworkd",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    )
}

fn write_xml(d: &Daemon, name: &str, xml: &str) -> String {
    let path = d.root.path().join(format!("{name}.xml"));
    std::fs::write(&path, xml).expect("write xml");
    path.display().to_string()
}

fn line(net: &str, what: &str) -> String {
    format!("event 'lifecycle' for network {net}: {what}")
}

#[test]
fn virsh_net_event_shows_lifecycle_events_in_order() {
    let d = virtnetworkd();
    let uri = NET.uri(&d, false);
    let virsh = |args: &[&str]| ok_stdout(&virsh_at(&uri, args));
    let other = write_xml(&d, "other", &isolated("other", "mvev1", 1));
    let mvev = write_xml(&d, "mvev", &isolated("mvev", "mvev0", 0));
    let transient = write_xml(&d, "tnet", &isolated("tnet", "mvev2", 2));
    // `--network` names a network virsh looks up first.
    virsh(&["net-define", &other]);

    let mut all = NET.listen(&d, "all", false, &uri, &["--loop", "--event", "lifecycle"]);
    // A read-only connection may listen too; this one only to `other`.
    let mut only_other = NET.listen(
        &d,
        "other",
        true,
        &NET.uri(&d, true),
        &["--loop", "--event", "lifecycle", "--network", "other"],
    );
    // Both listen once redefining `other` (a `Defined` each time) reaches them.
    let defined_other = line("other", "Defined");
    let skip = until_listening(
        &[&all, &only_other],
        |_, e| e == defined_other,
        || {
            virsh(&["net-define", &other]);
        },
    );
    let (skip_all, skip_other) = (skip[0], skip[1]);

    virsh(&["net-define", &mvev]);
    virsh(&["net-start", "mvev"]);
    virsh(&["net-destroy", "mvev"]);
    virsh(&["net-undefine", "mvev"]);
    // A transient network: started by create, gone with destroy (no
    // Defined/Undefined, as in libvirt).
    virsh(&["net-create", &transient]);
    virsh(&["net-destroy", "tnet"]);
    virsh(&["net-undefine", "other"]);

    let want: Vec<String> = [
        ("mvev", "Defined"),
        ("mvev", "Started"),
        ("mvev", "Stopped"),
        ("mvev", "Undefined"),
        ("tnet", "Started"),
        ("tnet", "Stopped"),
        ("other", "Undefined"),
    ]
    .iter()
    .map(|(n, w)| line(n, w))
    .collect();
    let complete = wait_for(Duration::from_secs(10), || {
        all.events().len() >= skip_all + want.len() && only_other.events().len() > skip_other
    });
    all.show("virsh net-event --loop --event lifecycle");
    only_other.show("virsh -r net-event --loop --event lifecycle --network other");
    let got_all = all.events();
    let got_other = only_other.events();
    assert!(complete, "{got_all:#?}\n{got_other:#?}");
    assert!(
        got_all[..skip_all].iter().all(|l| *l == defined_other),
        "{got_all:#?}"
    );
    assert_eq!(got_all[skip_all..], want[..]);
    // The listener to `other` saw only `other`'s events.
    assert!(
        got_other[..skip_other].iter().all(|l| *l == defined_other),
        "{got_other:#?}"
    );
    assert_eq!(got_other[skip_other..], [line("other", "Undefined")]);

    // Ctrl-C ends the loop (virsh deregisters on its way out).
    all.interrupt_after(skip_all + want.len());
    only_other.interrupt_after(skip_other + 1);

    // Without --loop virsh waits for one event; --timeout ends the wait.
    let one = NET.one_event(&d, &uri, "lifecycle", || {
        virsh(&["net-define", &mvev]);
    });
    assert_eq!(one, [line("mvev", "Defined")]);
    NET.no_event(&d, &uri, "lifecycle", || {});
    // The daemon is still fine after its listeners left.
    assert!(virsh(&["net-list", "--all", "--name"]).contains("mvev"));
}

fn register(c: &mut RawClient, event_id: i32) -> Result<i32, RpcError> {
    NET.register(c, &ConnectNetworkEventRegisterAnyArgs { event_id, net: None })
}

#[test]
fn registrations_on_the_wire_follow_libvirt() {
    let d = virtnetworkd();
    let mut c = NET.open_raw(&d.socket("sock"));
    // libvirt 9.0 knows only the lifecycle event (id 0).
    for id in [1, -1] {
        let e = register(&mut c, id).expect_err("unknown event id refused");
        assert_internal_error(&e, &format!("internal error: unsupported network event ID {id}"));
    }
    let e = NET.deregister(&mut c, 42).expect_err("unknown callback refused");
    assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);
    assert_eq!(
        e.message.as_deref(),
        Some("internal error: network event callback 42 not registered")
    );

    let id = register(&mut c, event::id::LIFECYCLE).expect("register lifecycle");
    // A read-only connection registers as well, with an id of its own; it
    // cannot remove another connection's callback.
    let mut ro = NET.open_raw(&d.socket("sock-ro"));
    let ro_id = register(&mut ro, event::id::LIFECYCLE).expect("read-only register");
    assert_ne!(id, ro_id);
    let e = NET
        .deregister(&mut ro, id)
        .expect_err("another connection's callback");
    assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);

    // A definition: its reply, and a MESSAGE with serial 1 to each listener.
    let xml = NetworkXmlArgs {
        xml: isolated("wire", "mvev3", 3),
    };
    let (reply, msgs) = call_with_events(&mut c, DEFINE_XML, &xml.to_xdr(), 1);
    let net = NetworkRet::from_xdr(&reply).expect("define ret").net;
    let (h, payload) = &msgs[0];
    assert_eq!(h.proc_, LIFECYCLE, "{h:?}");
    let msg = NetworkEventLifecycleMsg::from_xdr(payload).expect("lifecycle msg");
    assert_eq!(
        (msg.callback_id, &msg.net, msg.event, msg.detail),
        (id, &net, event::DEFINED, 0)
    );
    let (h, payload) = ro.recv();
    assert_eq!((h.type_, h.proc_), (MessageType::Message, LIFECYCLE));
    let ro_msg = NetworkEventLifecycleMsg::from_xdr(&payload).expect("lifecycle msg");
    assert_eq!((ro_msg.callback_id, ro_msg.event), (ro_id, event::DEFINED));

    // Deregistered: no more events; the id is gone.
    NET.deregister(&mut c, id).expect("deregister");
    NET.deregister(&mut c, id).expect_err("deregistered twice");
    // The read-only client leaves without deregistering.
    drop(ro);
    let sent = c.call(UNDEFINE, &modvirt_wire::network::NetworkArgs { net }.to_xdr());
    c.reply_to(&sent).expect("undefine");
    assert!(
        matches!(c.recv_within(Duration::from_millis(500)), Recv::TimedOut),
        "an event after deregistering"
    );
    // The daemon serves on.
    let mut again = NET.open_raw(&d.socket("sock"));
    assert_eq!(register(&mut again, 0).expect("register"), ro_id + 1);
}

/// `net-event` on a `qemu:///system` connection, to virtqemud and through
/// virtproxyd: the registration is passed on to virtnetworkd (started on
/// demand) on a connection of the client's own, so the events come back to
/// that client. virtnetworkd going away does not close the client.
#[test]
fn network_events_reach_clients_of_virtqemud_and_virtproxyd() {
    let qemu = Daemon::start("virtqemud", DaemonOptions::default());
    let proxy = Daemon::start_beside(&qemu, "virtproxyd", DaemonOptions::default());
    let qemu_uri = qemu.uri(false);
    let proxy_uri = format!(
        "qemu:///system?socket={}",
        qemu.run_dir().join("libvirt-sock").display()
    );
    let mut direct = NET.listen(
        &qemu,
        "qemu",
        false,
        &qemu_uri,
        &["--loop", "--event", "lifecycle"],
    );
    let mut proxied = NET.listen(
        &proxy,
        "proxy",
        true,
        &proxy_uri.replace("libvirt-sock", "libvirt-sock-ro"),
        &["--loop", "--event", "lifecycle"],
    );
    let virsh = |args: &[&str]| ok_stdout(&virsh_at(&qemu_uri, args));
    // Until both listen: each round defines the probe again.
    let probe = write_xml(&qemu, "probe", &isolated("probe", "mvev2", 2));
    let defined_probe = line("probe", "Defined");
    until_listening(
        &[&direct, &proxied],
        |_, e| e == defined_probe,
        || {
            virsh(&["net-define", &probe]);
        },
    );
    let mvev = write_xml(&qemu, "mvev", &isolated("mvev", "mvev0", 0));
    virsh(&["net-define", &mvev]);
    virsh(&["net-undefine", "mvev"]);
    let expected = [line("mvev", "Defined"), line("mvev", "Undefined")];
    for l in [&direct, &proxied] {
        let done = wait_for(Duration::from_secs(5), || l.events_past("probe") == expected);
        assert!(done, "{:?}", l.events());
    }

    // The owner dies: the clients' connections stay up.
    let pid = modvirt_tests::daemon_pid(qemu.root.path(), "virtnetworkd");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    assert!(wait_for(Duration::from_secs(5), || modvirt_tests::process_gone(
        pid
    )));
    std::thread::sleep(Duration::from_millis(300));
    assert!(direct.exited().is_none(), "{}", direct.stderr());
    assert!(proxied.exited().is_none(), "{}", proxied.stderr());
    // … and the next call brings virtnetworkd back.
    assert!(virsh(&["net-list", "--all"]).contains("probe"));
    let _owner = modvirt_tests::PidGuard(modvirt_tests::daemon_pid(qemu.root.path(), "virtnetworkd"));
    for l in [&mut direct, &mut proxied] {
        let out = l.interrupt();
        assert!(out.contains("events received: "), "{out}");
    }
}
