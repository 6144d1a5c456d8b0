//! Network lifecycle events end to end: the real `virsh net-event` against
//! virtnetworkd (in a network namespace of its own), while a second virsh
//! defines, starts, stops and undefines networks; and the registration
//! procedures on the wire, with libvirt's errors.

use modvirt_tests::raw::{RawClient, Recv};
use modvirt_tests::{ChildGuard, Daemon, DaemonOptions, ok_stdout, require_tool, virsh_at, wait_for};
use modvirt_wire::network::{
    ConnectNetworkEventDeregisterAnyArgs, ConnectNetworkEventRegisterAnyArgs,
    ConnectNetworkEventRegisterAnyRet, NetworkEventLifecycleMsg, NetworkXmlArgs, event,
};
use modvirt_wire::remote::{ConnectOpenArgs, NetworkRet};
use modvirt_wire::{ErrorCode, ErrorDomain, MessageType, XdrDecode, XdrEncode};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const REGISTER: i32 = 313;
const DEREGISTER: i32 = 314;
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

fn network_uri(d: &Daemon, readonly: bool) -> String {
    let sock = if readonly { "sock-ro" } else { "sock" };
    format!(
        "network:///system?socket={}",
        d.run_dir().join(format!("virtnetworkd-{sock}")).display()
    )
}

fn write_xml(d: &Daemon, name: &str, xml: &str) -> String {
    let path = d.root.path().join(format!("{name}.xml"));
    std::fs::write(&path, xml).expect("write xml");
    path.display().to_string()
}

/// `virsh [-r] -c URI net-event ARGS…` in the background, its stdout and
/// stderr in files under the root.
struct Listener {
    child: ChildGuard,
    out: PathBuf,
    err: PathBuf,
}

impl Listener {
    fn spawn(d: &Daemon, tag: &str, readonly: bool, args: &[&str]) -> Listener {
        Listener::spawn_at(d, tag, readonly, &network_uri(d, readonly), args)
    }

    /// The same on the connection `uri` (another daemon's socket).
    fn spawn_at(d: &Daemon, tag: &str, readonly: bool, uri: &str, args: &[&str]) -> Listener {
        let out = d.root.path().join(format!("net-event-{tag}.out"));
        let err = d.root.path().join(format!("net-event-{tag}.err"));
        let file = |p: &Path| std::fs::File::create(p).expect("listener output file");
        let mut cmd = Command::new(require_tool("virsh"));
        if readonly {
            cmd.arg("-r");
        }
        let child = ChildGuard::spawn(
            cmd.arg("-c")
                .arg(uri)
                .arg("net-event")
                .args(args)
                .env_remove("LIBVIRT_DEFAULT_URI")
                .stdin(Stdio::null())
                .stdout(file(&out))
                .stderr(file(&err)),
        );
        Listener { child, out, err }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The event lines printed so far.
    fn events(&self) -> Vec<String> {
        self.stdout()
            .lines()
            .filter(|l| l.starts_with("event '"))
            .map(str::to_owned)
            .collect()
    }

    /// Interrupts it as Ctrl-C would; it must end its loop and exit.
    fn interrupt(&mut self) -> String {
        self.child.signal(Signal::SIGINT);
        let status = self.child.wait_exit(Duration::from_secs(10));
        assert!(status.is_some(), "virsh net-event did not exit on SIGINT");
        self.stdout()
    }
}

fn line(net: &str, what: &str) -> String {
    format!("event 'lifecycle' for network {net}: {what}")
}

#[test]
fn virsh_net_event_shows_lifecycle_events_in_order() {
    let d = Daemon::start(
        "virtnetworkd",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    let uri = network_uri(&d, false);
    let virsh = |args: &[&str]| ok_stdout(&virsh_at(&uri, args));
    let other = write_xml(&d, "other", &isolated("other", "mvev1", 1));
    let mvev = write_xml(&d, "mvev", &isolated("mvev", "mvev0", 0));
    let transient = write_xml(&d, "tnet", &isolated("tnet", "mvev2", 2));
    // `--network` names a network virsh looks up first.
    virsh(&["net-define", &other]);

    let mut all = Listener::spawn(&d, "all", false, &["--loop", "--event", "lifecycle"]);
    // A read-only connection may listen too; this one only to `other`.
    let mut only_other = Listener::spawn(
        &d,
        "other",
        true,
        &["--loop", "--event", "lifecycle", "--network", "other"],
    );
    // Both listen once redefining `other` (a `Defined` each time) reaches them.
    let defined_other = line("other", "Defined");
    let listening = wait_for(Duration::from_secs(15), || {
        virsh(&["net-define", &other]);
        std::thread::sleep(Duration::from_millis(200));
        all.events().contains(&defined_other) && only_other.events().contains(&defined_other)
    });
    assert!(
        listening,
        "listeners never saw an event:\n{}{}\n{}{}",
        all.stdout(),
        all.stderr(),
        only_other.stdout(),
        only_other.stderr()
    );
    // Let a redefinition still on its way land before counting.
    std::thread::sleep(Duration::from_millis(300));
    let (skip_all, skip_other) = (all.events().len(), only_other.events().len());

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
    let got_all = all.events();
    let got_other = only_other.events();
    println!("virsh net-event --loop --event lifecycle printed:");
    for l in &got_all {
        println!("  {l}");
    }
    println!("virsh -r net-event --loop --event lifecycle --network other printed:");
    for l in &got_other {
        println!("  {l}");
    }
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
    let out = all.interrupt();
    assert!(
        out.contains(&format!("events received: {}", skip_all + want.len())),
        "{out}"
    );
    let out = only_other.interrupt();
    assert!(
        out.contains(&format!("events received: {}", skip_other + 1)),
        "{out}"
    );

    // Without --loop virsh waits for one event; --timeout ends the wait.
    let mut one = Listener::spawn(&d, "one", false, &["--event", "lifecycle", "--timeout", "20"]);
    let ok = wait_for(Duration::from_secs(15), || {
        virsh(&["net-define", &mvev]);
        std::thread::sleep(Duration::from_millis(200));
        one.child.exited().is_some()
    });
    assert!(ok, "{}{}", one.stdout(), one.stderr());
    assert_eq!(one.events(), [line("mvev", "Defined")]);
    assert!(one.stdout().contains("events received: 1"), "{}", one.stdout());
    let mut quiet = Listener::spawn(&d, "quiet", false, &["--event", "lifecycle", "--timeout", "1"]);
    assert!(quiet.child.wait_exit(Duration::from_secs(10)).is_some());
    assert!(
        quiet.stdout().contains("event loop timed out"),
        "{}",
        quiet.stdout()
    );
    assert!(quiet.events().is_empty(), "{}", quiet.stdout());
    // The daemon is still fine after its listeners left.
    assert!(virsh(&["net-list", "--all", "--name"]).contains("mvev"));
}

/// Opens `network:///system` on a raw connection to `socket`.
fn open_raw(socket: &Path) -> RawClient {
    let mut c = RawClient::connect(socket);
    c.auth_list();
    let open = ConnectOpenArgs {
        name: Some("network:///system".into()),
        flags: 0,
    };
    c.rpc_ok(1, &open.to_xdr());
    c
}

fn register(c: &mut RawClient, event_id: i32) -> Result<i32, modvirt_wire::RpcError> {
    let args = ConnectNetworkEventRegisterAnyArgs { event_id, net: None };
    c.rpc(REGISTER, &args.to_xdr()).map(|r| {
        ConnectNetworkEventRegisterAnyRet::from_xdr(&r)
            .expect("register ret")
            .callback_id
    })
}

#[test]
fn registrations_on_the_wire_follow_libvirt() {
    let d = Daemon::start(
        "virtnetworkd",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    );
    let mut c = open_raw(&d.socket("sock"));
    // libvirt 9.0 knows only the lifecycle event (id 0).
    for id in [1, -1] {
        let e = register(&mut c, id).expect_err("unknown event id refused");
        assert_eq!((e.code, e.domain), (ErrorCode::INTERNAL_ERROR, ErrorDomain::RPC));
        assert_eq!(
            e.message.as_deref(),
            Some(format!("internal error: unsupported network event ID {id}").as_str())
        );
    }
    let e = c.rpc_err(
        DEREGISTER,
        &ConnectNetworkEventDeregisterAnyArgs { callback_id: 42 }.to_xdr(),
    );
    assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);
    assert_eq!(
        e.message.as_deref(),
        Some("internal error: network event callback 42 not registered")
    );

    let id = register(&mut c, event::id::LIFECYCLE).expect("register lifecycle");
    // A read-only connection registers as well, with an id of its own; it
    // cannot remove another connection's callback.
    let mut ro = open_raw(&d.socket("sock-ro"));
    let ro_id = register(&mut ro, event::id::LIFECYCLE).expect("read-only register");
    assert_ne!(id, ro_id);
    let e = ro.rpc_err(
        DEREGISTER,
        &ConnectNetworkEventDeregisterAnyArgs { callback_id: id }.to_xdr(),
    );
    assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);

    // A definition: its reply, and a MESSAGE with serial 1 to each listener.
    let xml = NetworkXmlArgs {
        xml: isolated("wire", "mvev3", 3),
    };
    let sent = c.call(DEFINE_XML, &xml.to_xdr());
    let mut reply = None;
    let mut msg = None;
    while reply.is_none() || msg.is_none() {
        let (h, payload) = c.recv();
        match h.type_ {
            MessageType::Reply if h.serial == sent.serial => reply = Some(payload),
            MessageType::Message => {
                assert_eq!((h.proc_, h.serial), (LIFECYCLE, 1), "{h:?}");
                msg = Some(NetworkEventLifecycleMsg::from_xdr(&payload).expect("lifecycle msg"));
            }
            _ => panic!("unexpected frame {h:?}"),
        }
    }
    let net = NetworkRet::from_xdr(&reply.unwrap_or_default())
        .expect("define ret")
        .net;
    let msg = msg.expect("message");
    assert_eq!(
        (msg.callback_id, &msg.net, msg.event, msg.detail),
        (id, &net, event::DEFINED, 0)
    );
    let (h, payload) = ro.recv();
    assert_eq!((h.type_, h.proc_), (MessageType::Message, LIFECYCLE));
    let ro_msg = NetworkEventLifecycleMsg::from_xdr(&payload).expect("lifecycle msg");
    assert_eq!((ro_msg.callback_id, ro_msg.event), (ro_id, event::DEFINED));

    // Deregistered: no more events; the id is gone.
    c.rpc_ok(
        DEREGISTER,
        &ConnectNetworkEventDeregisterAnyArgs { callback_id: id }.to_xdr(),
    );
    c.rpc_err(
        DEREGISTER,
        &ConnectNetworkEventDeregisterAnyArgs { callback_id: id }.to_xdr(),
    );
    // The read-only client leaves without deregistering.
    drop(ro);
    let sent = c.call(UNDEFINE, &modvirt_wire::network::NetworkArgs { net }.to_xdr());
    c.reply_to(&sent).expect("undefine");
    assert!(
        matches!(c.recv_within(Duration::from_millis(500)), Recv::TimedOut),
        "an event after deregistering"
    );
    // The daemon serves on.
    let mut again = open_raw(&d.socket("sock"));
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
    let mut direct = Listener::spawn_at(
        &qemu,
        "qemu",
        false,
        &qemu_uri,
        &["--loop", "--event", "lifecycle"],
    );
    let mut proxied = Listener::spawn_at(
        &proxy,
        "proxy",
        true,
        &proxy_uri.replace("libvirt-sock", "libvirt-sock-ro"),
        &["--loop", "--event", "lifecycle"],
    );
    let virsh = |args: &[&str]| ok_stdout(&virsh_at(&qemu_uri, args));
    // Until both listen: each round defines the probe again.
    let probe = write_xml(&qemu, "probe", &isolated("probe", "mvev2", 2));
    let listening = wait_for(Duration::from_secs(10), || {
        virsh(&["net-define", &probe]);
        [&direct, &proxied]
            .iter()
            .all(|l| l.events().contains(&line("probe", "Defined")))
    });
    assert!(
        listening,
        "direct: {} {}\nproxied: {} {}",
        direct.stdout(),
        direct.stderr(),
        proxied.stdout(),
        proxied.stderr()
    );
    let mvev = write_xml(&qemu, "mvev", &isolated("mvev", "mvev0", 0));
    virsh(&["net-define", &mvev]);
    virsh(&["net-undefine", "mvev"]);
    let expected = [line("mvev", "Defined"), line("mvev", "Undefined")];
    for l in [&direct, &proxied] {
        let done = wait_for(Duration::from_secs(5), || {
            let events = l.events();
            events
                .iter()
                .filter(|e| !e.contains("probe"))
                .cloned()
                .collect::<Vec<_>>()
                == expected
        });
        assert!(done, "{:?}", l.events());
    }

    // The owner dies: the clients' connections stay up.
    let pid = modvirt_tests::daemon_pid(qemu.root.path(), "virtnetworkd");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    assert!(wait_for(Duration::from_secs(5), || modvirt_tests::process_gone(
        pid
    )));
    std::thread::sleep(Duration::from_millis(300));
    assert!(direct.child.exited().is_none(), "{}", direct.stderr());
    assert!(proxied.child.exited().is_none(), "{}", proxied.stderr());
    // … and the next call brings virtnetworkd back.
    assert!(virsh(&["net-list", "--all"]).contains("probe"));
    let _owner = modvirt_tests::PidGuard(modvirt_tests::daemon_pid(qemu.root.path(), "virtnetworkd"));
    for l in [&mut direct, &mut proxied] {
        let out = l.interrupt();
        assert!(out.contains("events received: "), "{out}");
    }
}
