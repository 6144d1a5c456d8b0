//! End-to-end tests of the `virt-daemons` binary against fixtures: state
//! files and lifecycle logs in a temp root, and fake OBSERVE servers (in
//! this process) on the admin sockets of the daemons that "run" — which
//! are this test process itself, by pid and real start time.
//!
//! Every test also checks rule 1: the admin sockets of daemons that are
//! not running have a listener bound, and it never sees a connection.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use modvirt_admin::discover::procfs::own_start_ticks;
use modvirt_admin::observe::fake::{
    FakeObserveServer, FakeReplies, sample_hang, sample_state_file, sample_status,
};
use modvirt_wire::observe::{
    Activation, Cause, DaemonStatus, ExitReason, Lifecycle, LifecycleEvent, OBSERVE_PROGRAM, Span, StateFile,
    WaitOn,
};
use serde_json::Value;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_virt-daemons");
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

struct Fixture {
    dir: tempfile::TempDir,
    servers: Vec<FakeObserveServer>,
    /// Listeners on the admin sockets of daemons that are not running.
    sleepers: Vec<(String, UnixListener)>,
}

impl Fixture {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.root())
            .args(["--timeout", "0.5"])
            .args(args)
            .env_remove("MODVIRT_ROOT")
            .output()
            .expect("run virt-daemons")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("valid JSON")
    }

    /// Rule 1 and rule 2: sleepers were never connected to; the fakes only
    /// heard OBSERVE.
    fn check_rules(&self) {
        for (name, l) in &self.sleepers {
            l.set_nonblocking(true).unwrap();
            let got = l.accept();
            assert!(
                matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                "{name} is asleep, yet something connected to its admin socket: {got:?}"
            );
        }
        for s in &self.servers {
            let calls = s.calls();
            assert!(calls.iter().all(|&(p, _)| p == OBSERVE_PROGRAM), "{calls:?}");
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.check_rules();
        }
    }
}

fn admin_sock(root: &Path, d: &str) -> PathBuf {
    root.join(format!("run/libvirt/{d}-admin-sock"))
}

fn state_file(
    root: &Path,
    name: &str,
    pid: i32,
    ticks: u64,
    state: &str,
    exit: Option<ExitReason>,
) -> StateFile {
    StateFile {
        pid_start_ticks: ticks,
        admin_socket: admin_sock(root, name).to_string_lossy().into_owned(),
        exit_gate: None,
        ..sample_state_file(name, pid, state, exit, now_ms())
    }
}

fn write_state(root: &Path, sf: &StateFile) {
    let dir = root.join("run/libvirt/modvirt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{}.json", sf.name)),
        serde_json::to_vec(sf).unwrap(),
    )
    .unwrap();
}

fn span(seq: u64, id: &str, parent: Option<&str>, name: &str, start_ns: u64, dur_ns: u64) -> Span {
    Span {
        seq,
        trace_id: TRACE.into(),
        span_id: id.into(),
        parent_span_id: parent.map(Into::into),
        name: name.into(),
        start_unix_ns: start_ns,
        duration_ns: dur_ns,
        attributes: vec![("rpc.client".into(), "virsh".into())],
        status: "ok".into(),
    }
}

fn serve(root: &Path, status: &DaemonStatus, spans: Vec<Span>, hang: bool) -> FakeObserveServer {
    FakeObserveServer::start(
        &admin_sock(root, &status.name),
        FakeReplies {
            status: serde_json::to_string(status).unwrap(),
            spans,
            hang_status: hang,
            ..Default::default()
        },
    )
    .unwrap()
}

/// virtqemud and virtnetworkd run (with a cross-daemon hang and trace),
/// virtstoraged runs but does not answer, virtsecretd idle-exited,
/// virtnodedevd's pid was reused, virtxend's state file is garbage.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let me = std::process::id() as i32;
    let ticks = own_start_ticks().unwrap();
    let now = now_ms();
    let t0 = now * 1_000_000 - 60_000_000_000;

    let callee_waits_on = WaitOn::Process {
        description: "dnsmasq reply from pid 4242".into(),
        pid: Some(4242),
    };
    let (mut q, mut n) = sample_hang(now, me, me, Some(3), callee_waits_on);
    n.times.ready_ms = Some(n.times.exec_ms + 1_840);
    for call in q.inflight.iter_mut().chain(&mut n.inflight) {
        call.trace_id = Some(TRACE.into());
    }

    let mut servers = Vec::new();
    for (status, spans) in [
        (
            &q,
            vec![
                span(0, "aaaa", None, "DOMAIN_SUSPEND", t0, 50_000_000),
                span(
                    1,
                    "cccc",
                    Some("aaaa"),
                    "qemu.monitor",
                    t0 + 45_000_000,
                    2_000_000,
                ),
            ],
        ),
        (
            &n,
            vec![span(
                0,
                "bbbb",
                Some("aaaa"),
                "NETWORK_LOOKUP_BY_NAME",
                t0 + 1_000_000,
                40_000_000,
            )],
        ),
    ] {
        write_state(root, &state_file(root, &status.name, me, ticks, "running", None));
        servers.push(serve(root, status, spans, false));
    }
    let s = sample_status("virtstoraged", me, now);
    write_state(
        root,
        &state_file(root, "virtstoraged", me, ticks, "running", None),
    );
    servers.push(serve(root, &s, vec![], true));

    let mut sleepers = Vec::new();
    write_state(
        root,
        &state_file(root, "virtsecretd", 4001, 1, "exited", Some(ExitReason::IdleExit)),
    );
    write_state(
        root,
        &state_file(root, "virtnodedevd", me, ticks + 7, "running", None),
    );
    for d in ["virtsecretd", "virtnodedevd", "virtxend"] {
        sleepers.push((d.to_owned(), UnixListener::bind(admin_sock(root, d)).unwrap()));
    }
    std::fs::write(
        root.join("run/libvirt/modvirt/virtxend.json"),
        b"{\"schema\": 1, \"pid\": tru",
    )
    .unwrap();

    let log: String = [
        LifecycleEvent {
            at_ms: now - 900_000,
            pid: 4000,
            event: Lifecycle::Activated {
                activation: Activation {
                    cause: Cause::Boot,
                    socket: None,
                    client: None,
                    peer: None,
                },
            },
        },
        LifecycleEvent {
            at_ms: now - 899_000,
            pid: 4000,
            event: Lifecycle::Stopped {
                signal: "SIGTERM".into(),
            },
        },
        LifecycleEvent {
            at_ms: now - 600_000,
            pid: 4001,
            event: Lifecycle::Activated {
                activation: state_file(root, "x", 0, 0, "running", None).activation,
            },
        },
        LifecycleEvent {
            at_ms: now - 599_800,
            pid: 4001,
            event: Lifecycle::Ready { startup_ms: 200.0 },
        },
        LifecycleEvent {
            at_ms: now - 60_000,
            pid: 4001,
            event: Lifecycle::IdleExit { timeout_s: 120 },
        },
    ]
    .iter()
    .map(|e| serde_json::to_string(e).unwrap() + "\n")
    .collect();
    std::fs::write(
        root.join("run/libvirt/modvirt/virtsecretd.log"),
        log + "{\"at_ms\": 1, \"pid\"",
    )
    .unwrap();
    Fixture {
        dir,
        servers,
        sleepers,
    }
}

fn line_of<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
}

#[test]
fn status_table() {
    let f = fixture();
    let text = f.ok(&["status"]);
    let me = std::process::id().to_string();
    let q = line_of(&text, "virtqemud");
    for want in [
        "running",
        me.as_str(),
        "5m00s",
        "socket",
        "50s",
        "held: clients: 1",
    ] {
        assert!(q.contains(want), "{want:?} in {q:?}\n{text}");
    }
    assert!(line_of(&text, "virtnetworkd").contains("running"));
    assert!(
        line_of(&text, "virtstoraged").contains("running (not answering: no answer within 0.5 s)"),
        "{text}"
    );
    assert!(line_of(&text, "virtsecretd").contains("idle-exited"), "{text}");
    assert!(line_of(&text, "virtnodedevd").contains("crashed"), "{text}");
    assert!(line_of(&text, "virtxend").contains("unknown"), "{text}");
    assert!(text.contains("virtxend: unreadable state file: "), "{text}");
    assert!(text.contains("virtnodedevd: pid"), "{text}");
    assert!(
        !text.contains("virtlxcd"),
        "never-started only with --all: {text}"
    );
    let all = f.ok(&["status", "--all"]);
    assert!(line_of(&all, "virtlxcd").contains("never-started"), "{all}");
    for s in &f.servers {
        assert!(s.accepted() >= 1, "every running daemon was asked");
    }
}

#[test]
fn status_json() {
    let f = fixture();
    let v = f.json(&["status", "--json"]);
    let daemons = v["daemons"].as_array().unwrap();
    let get = |n: &str| daemons.iter().find(|d| d["name"] == n).unwrap();
    let q = get("virtqemud");
    for key in [
        "name",
        "state",
        "pid",
        "activation",
        "idle",
        "clients",
        "inflight",
        "phases",
    ] {
        assert!(q.get(key).is_some(), "{key}: {q}");
    }
    assert_eq!(q["state"], "running");
    assert_eq!(q["pid"], std::process::id());
    assert_eq!(q["activation"]["cause"], "socket");
    assert_eq!(q["activation"]["socket"], "virtqemud.socket");
    assert_eq!(q["activation"]["client"]["comm"], "virsh");
    assert!(q["activation"].get("peer").is_some());
    assert_eq!(q["idle"]["timeout_s"], 120);
    assert_eq!(q["idle"]["armed"], false);
    assert!(q["idle"]["inhibitors"].is_array());
    assert_eq!(q["inflight"][0]["procedure"], "DOMAIN_CREATE");
    assert_eq!(q["inflight"][0]["client"]["pid"], 123);
    assert_eq!(q["inflight"][0]["waiting_on"]["kind"], "job-lock");
    assert_eq!(q["phases"][3]["name"], "drivers");
    assert_eq!(q["phases"][3]["duration_ms"], 220.0);

    let z = get("virtsecretd");
    assert_eq!(z["state"], "idle-exited");
    assert!(z["pid"].is_null() && z["idle"].is_null() && z["clients"].is_null());
    assert_eq!(z["activation"]["client"]["pid"], 55);
    assert_eq!(z["exit"]["reason"], "idle-exit");
    assert_eq!(z["history"].as_array().unwrap().len(), 2);
    assert_eq!(get("virtnodedevd")["state"], "crashed");
    assert_eq!(get("virtstoraged")["answering"], false);
    assert_eq!(get("virtxend")["state"], "unknown");
}

#[test]
fn why() {
    let f = fixture();
    let text = f.ok(&["why", "virtqemud"]);
    assert!(text.starts_with("virtqemud is running: pid "), "{text}");
    assert!(
        text.contains(
            "Why it runs: socket activation on virtqemud.socket, first client virsh (pid 123, uid 0)."
        ),
        "{text}"
    );
    assert!(text.contains("virsh (pid 123, uid 0) on rw"), "{text}");
    assert!(
        text.contains("oldest DOMAIN_SUSPEND #12 from virsh (pid 200), 50s"),
        "{text}"
    );

    let text = f.ok(&["why", "virtsecretd"]);
    assert!(
        text.starts_with("virtsecretd is not running: idle-exited"),
        "{text}"
    );
    assert!(text.contains("it exited when idle"), "{text}");
    assert!(text.contains("History (2 of 2 run(s)"), "{text}");
    assert!(text.contains("idle exit (timeout 120 s) after 9m00s"), "{text}");
    assert!(text.contains("stopped by SIGTERM"), "{text}");

    let text = f.ok(&["why", "virtlxcd"]);
    assert!(
        text.starts_with("virtlxcd is not running: never-started"),
        "{text}"
    );

    let out = f.run(&["why", "virtbogusd"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown daemon \"virtbogusd\"; known daemons: "),
        "{err}"
    );
    assert!(err.contains("virtqemud") && err.contains("virtsecretd"), "{err}");
}

#[test]
fn boot() {
    let f = fixture();
    let text = f.ok(&["boot"]);
    let n = text.find("virtnetworkd  1.84 s (ready").unwrap();
    let q = text.find("virtqemud  230 ms (ready").unwrap();
    assert!(n < q, "slowest first:\n{text}");
    assert!(text.contains("enumerated 412 devices"), "{text}");
    assert!(!text.contains("virtsecretd"), "{text}");
    assert!(
        text.contains("virtstoraged: not answering: no answer within 0.5 s"),
        "{text}"
    );
}

#[test]
fn hangs() {
    let f = fixture();
    let text = f.ok(&["hangs"]);
    assert!(
        text.starts_with(
            "virsh(pid 123) → virtqemud DOMAIN_CREATE #17 (47s) waiting on job lock domain:vm1 held by #12 \
             DOMAIN_SUSPEND (50s)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("→ virtqemud DOMAIN_SUSPEND #12 (50s) from virsh(pid 200)"),
        "{text}"
    );
    assert!(
        text.contains("→ virtnetworkd NETWORK_LOOKUP_BY_NAME #3 (49s)")
            && text.contains("dnsmasq reply from pid 4242"),
        "{text}"
    );
    let none = f.ok(&["hangs", "--older-than", "60"]);
    assert!(none.starts_with("no in-flight call older than 1m00s"), "{none}");
    let v = f.json(&["hangs", "--json"]);
    let hops = v["hangs"][0]["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 3);
    assert_eq!(hops[2]["daemon"], "virtnetworkd");
    assert_eq!(v["errors"][0]["daemon"], "virtstoraged");
}

#[test]
fn trace() {
    let f = fixture();
    let text = f.ok(&["trace"]);
    assert!(text.contains(&format!("trace {TRACE}")), "{text}");
    assert!(text.contains("virtqemud, virtnetworkd"), "{text}");
    let root = text.find("DOMAIN_SUSPEND").unwrap();
    let child = text.find("  NETWORK_LOOKUP_BY_NAME").unwrap();
    assert!(root < child, "{text}");
    let v = f.json(&["trace", "--json", "--daemon", "virtnetworkd"]);
    let spans = v["traces"][0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3);
    assert_eq!(spans[1]["daemon"], "virtnetworkd");
    assert_eq!(spans[1]["depth"], 1);
    assert_eq!(spans[1]["offset_ns"], 1_000_000);
    let v = f.json(&["trace", "--json", "--daemon", "virtsecretd"]);
    assert_eq!(v["traces"].as_array().unwrap().len(), 0);
}

#[test]
fn root_from_the_environment_and_an_empty_root() {
    let f = fixture();
    let out = Command::new(BIN)
        .args(["--timeout", "0.5", "status"])
        .env("MODVIRT_ROOT", f.root())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("virtqemud"));

    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--root")
        .arg(empty.path())
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("no modvirt daemons found"));
}

/// Prints every report against the fixture, for eyes:
/// `cargo test -p modvirt-admin --test virt_daemons -- --ignored --nocapture`.
#[test]
#[ignore = "prints examples; nothing to check"]
fn print_examples() {
    let f = fixture();
    for args in [
        &["status"][..],
        &["status", "--all"],
        &["why", "virtqemud"],
        &["why", "virtsecretd"],
        &["why", "virtnodedevd"],
        &["boot"],
        &["hangs"],
        &["trace"],
        &["status", "--json"],
        &["hangs", "--json"],
        &["trace", "--json", "--limit", "1"],
    ] {
        println!("$ virt-daemons {}\n{}", args.join(" "), f.ok(args));
    }
}
