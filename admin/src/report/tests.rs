use super::*;
use crate::discover::lifecycle::History;
use crate::observe::fake::{sample_call, sample_hang, sample_state_file, sample_status};
use modvirt_wire::observe::{ExitReason, Inhibitor, WaitOn};

const NOW: u64 = 1_700_000_000_000;

fn running(status: DaemonStatus) -> Observed {
    Observed {
        daemon: KnownDaemon {
            name: status.name.clone(),
            state: DaemonState::Running,
            detail: None,
            state_file: Some(sample_state_file(&status.name, status.pid, "running", None, NOW)),
            history: History::default(),
            units: None,
        },
        status: Some(Ok(status)),
    }
}

fn silent(name: &str) -> Observed {
    Observed {
        daemon: KnownDaemon {
            name: name.into(),
            state: DaemonState::Running,
            detail: None,
            state_file: Some(sample_state_file(name, 77, "running", None, NOW)),
            history: History::default(),
            units: None,
        },
        status: Some(Err(ObserveError::Timeout(Duration::from_secs(2)))),
    }
}

fn asleep(name: &str, state: DaemonState, reason: ExitReason) -> Observed {
    Observed {
        daemon: KnownDaemon {
            name: name.into(),
            state,
            detail: None,
            state_file: Some(sample_state_file(name, 66, "exited", Some(reason), NOW)),
            history: History::default(),
            units: None,
        },
        status: None,
    }
}

fn snap(daemons: Vec<Observed>) -> Snapshot {
    Snapshot {
        daemons,
        warnings: vec![],
        now_ms: NOW,
    }
}

fn peer(daemon: &str, procedure: &str, peer_call: Option<u64>) -> Option<WaitOn> {
    Some(WaitOn::Peer {
        daemon: daemon.into(),
        procedure: procedure.into(),
        serial: 1,
        peer_call,
    })
}

#[test]
fn status_table_and_notes() {
    let mut q = sample_status("virtqemud", 4100, NOW);
    q.inflight
        .push(sample_call(17, "DOMAIN_CREATE", 47.2, "virsh", 123, None, NOW));
    q.idle.inhibitors.push(Inhibitor {
        reason: "in-flight calls".into(),
        count: 1,
        since_ms: NOW - 47_000,
    });
    let mut n = sample_status("virtnodedevd", 4200, NOW);
    n.idle.active_clients = 0;
    n.idle.armed = true;
    n.idle.remaining_s = Some(86.4);
    let mut crashed = asleep("virtxend", DaemonState::Crashed, ExitReason::Crashed);
    crashed.daemon.detail = Some("state file says running but pid 66 is gone".into());
    let s = snap(vec![
        running(n),
        running(q),
        silent("virtstoraged"),
        asleep("virtsecretd", DaemonState::IdleExited, ExitReason::IdleExit),
        crashed,
    ]);
    let text = status::render_text(&s);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAME "), "{text}");
    for col in [
        "STATE", "PID", "UPTIME", "CAUSE", "CLIENTS", "INFLIGHT", "OLDEST", "IDLE",
    ] {
        assert!(lines[0].contains(col), "{col}: {text}");
    }
    assert!(lines[1].contains("87s/120s"), "{text}");
    assert!(
        lines[2].contains("held: clients: 1, in-flight calls: 1"),
        "{text}"
    );
    assert!(
        lines[2].contains("47s") && lines[2].contains("5m00s") && lines[2].contains("socket"),
        "{text}"
    );
    assert!(
        lines[3].contains("running (not answering: no answer within 2 s)"),
        "{text}"
    );
    assert!(
        lines[4].starts_with("virtsecretd") && lines[4].contains("idle-exited"),
        "{text}"
    );
    assert!(
        text.contains("virtxend: state file says running but pid 66 is gone"),
        "{text}"
    );
}

#[test]
fn status_json_has_the_documented_keys() {
    let mut q = sample_status("virtqemud", 4100, NOW);
    q.inflight.push(sample_call(
        17,
        "DOMAIN_CREATE",
        47.0,
        "virsh",
        123,
        peer("virtnetworkd", "X", None),
        NOW,
    ));
    q.idle.inhibitors.push(Inhibitor {
        reason: "running guests".into(),
        count: 2,
        since_ms: NOW - 10_000,
    });
    let s = snap(vec![
        running(q),
        asleep("virtsecretd", DaemonState::IdleExited, ExitReason::IdleExit),
    ]);
    let v = status::render_json(&s);
    let d = &v["daemons"][0];
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
        assert!(d.get(key).is_some(), "{key} missing: {d}");
    }
    assert_eq!(d["state"], "running");
    assert_eq!(d["pid"], 4100);
    for key in ["cause", "socket", "client", "peer"] {
        assert!(d["activation"].get(key).is_some(), "activation.{key}: {d}");
    }
    for key in ["pid", "uid", "comm"] {
        assert!(d["activation"]["client"].get(key).is_some(), "client.{key}");
    }
    for key in ["timeout_s", "armed", "remaining_s", "inhibitors"] {
        assert!(d["idle"].get(key).is_some(), "idle.{key}");
    }
    let inh = &d["idle"]["inhibitors"][0];
    assert_eq!(
        (&inh["reason"], &inh["count"]),
        (&"running guests".into(), &2.into())
    );
    assert_eq!(inh["since"], NOW - 10_000);
    let c = &d["inflight"][0];
    for key in ["procedure", "client", "age_s", "waiting_on"] {
        assert!(c.get(key).is_some(), "inflight.{key}");
    }
    assert_eq!(c["waiting_on"]["kind"], "peer");
    assert!(d["phases"][0].get("name").is_some() && d["phases"][0].get("duration_ms").is_some());

    let z = &v["daemons"][1];
    assert_eq!(z["state"], "idle-exited");
    assert!(z["pid"].is_null() && z["idle"].is_null() && z["inflight"].is_null());
    assert_eq!(z["activation"]["cause"], "socket", "last run's activation");
    assert_eq!(z["exit"]["reason"], "idle-exit");
    assert_eq!(z["last_pid"], 66);
}

#[test]
fn why_explains_a_running_daemon() {
    let mut q = sample_status("virtqemud", 4100, NOW);
    q.idle.inhibitors.push(Inhibitor {
        reason: "start-up".into(),
        count: 1,
        since_ms: NOW - 5_000,
    });
    let s = snap(vec![running(q)]);
    let text = why::render_named(&s, "virtqemud").unwrap();
    assert!(
        text.starts_with("virtqemud is running: pid 4100, up 5m00s"),
        "{text}"
    );
    assert!(
        text.contains(
            "Why it runs: socket activation on virtqemud.socket, first client virsh (pid 123, uid 0)."
        ),
        "{text}"
    );
    assert!(
        text.contains("1 active client(s):\n    virsh (pid 123, uid 0) on rw"),
        "{text}"
    );
    assert!(text.contains("start-up ×1, since 5s ago"), "{text}");
    assert!(
        text.contains("Observers (passive, not keeping it alive): 1."),
        "{text}"
    );

    let mut idle = sample_status("virtnodedevd", 1, NOW);
    idle.clients.clear();
    idle.idle.active_clients = 0;
    idle.idle.armed = true;
    idle.idle.remaining_s = Some(86.1);
    let text = why::render(&running(idle), &s);
    assert!(
        text.contains("What keeps it alive: nothing: exits in 87 s (idle timeout 120 s)."),
        "{text}"
    );
}

#[test]
fn why_explains_a_sleeping_daemon_and_unknown_names() {
    let s = snap(vec![asleep(
        "virtsecretd",
        DaemonState::IdleExited,
        ExitReason::IdleExit,
    )]);
    let text = why::render_named(&s, "virtsecretd").unwrap();
    assert!(
        text.starts_with("virtsecretd is not running: idle-exited.\n"),
        "{text}"
    );
    assert!(text.contains("Last run: pid 66"), "{text}");
    assert!(text.contains("first client virsh (pid 55, uid 0)"), "{text}");
    assert!(text.contains("it exited when idle at"), "{text}");
    let e = why::render_named(&s, "virtfoo").unwrap_err();
    assert!(
        e.starts_with("unknown daemon \"virtfoo\"; known daemons: "),
        "{e}"
    );
    assert!(e.contains("virtqemud") && e.contains("virtsecretd"), "{e}");
}

#[test]
fn boot_puts_the_slowest_first() {
    let fast = sample_status("virtsecretd", 1, NOW);
    let mut slow = sample_status("virtnodedevd", 2, NOW);
    slow.times.ready_ms = Some(slow.times.exec_ms + 1_840);
    let s = snap(vec![running(fast), running(slow)]);
    let text = boot::render_text(&s);
    let nodedev = text.find("virtnodedevd  1.84 s").unwrap();
    let secret = text.find("virtsecretd  230 ms").unwrap();
    assert!(nodedev < secret, "{text}");
    let drivers = text.find("  drivers").unwrap();
    let sockets = text.find("  sockets").unwrap();
    assert!(drivers < sockets, "slowest phase first: {text}");
    assert!(
        text.contains("    enumerate  +7.0 ms  180 ms  enumerated 412 devices"),
        "{text}"
    );
}

#[test]
fn hang_chains_follow_locks_and_peers() {
    let callee_waits_on = WaitOn::Other {
        description: "enumeration".into(),
    };
    // virtqemud does not know its peer's call: the link is the callee's `caller`.
    let (mut q, n) = sample_hang(NOW, 10, 11, None, callee_waits_on);
    q.inflight
        .push(sample_call(20, "DOMAIN_GET_INFO", 1.0, "virsh", 300, None, NOW));
    let s = snap(vec![running(n), running(q)]);

    let chains = hangs::find(&s, 5.0);
    assert_eq!(chains.len(), 1, "{chains:#?}");
    let hops: Vec<(&str, u64)> = chains[0]
        .hops
        .iter()
        .map(|h| (h.daemon.as_str(), h.call))
        .collect();
    assert_eq!(hops, [("virtqemud", 17), ("virtqemud", 12), ("virtnetworkd", 3)]);
    assert!(!chains[0].cycle);
    let text = hangs::render_text(&s, 5.0);
    assert!(
        text.starts_with(
            "virsh(pid 123) → virtqemud DOMAIN_CREATE #17 (47s) waiting on job lock domain:vm1 \
             held by #12 DOMAIN_SUSPEND (50s)\n    → virtqemud DOMAIN_SUSPEND #12 (50s) from virsh(pid 200) \
             waiting on virtnetworkd NETWORK_LOOKUP_BY_NAME\n    → virtnetworkd NETWORK_LOOKUP_BY_NAME #3 \
             (49s) from virtqemud(pid 10) waiting on enumeration\n"
        ),
        "{text}"
    );
    assert!(!text.contains("DOMAIN_GET_INFO"), "{text}");
    // A lower threshold adds the young call as its own chain.
    assert_eq!(hangs::find(&s, 0.5).len(), 2);
    let v = hangs::render_json(&s, 5.0);
    assert_eq!(v["hangs"][0]["hops"][2]["daemon"], "virtnetworkd");
    assert_eq!(v["hangs"][0]["cycle"], false);
}

#[test]
fn hang_cycles_and_silent_peers() {
    let mut q = sample_status("virtqemud", 10, NOW);
    q.inflight = vec![
        sample_call(1, "A", 30.0, "virsh", 1, peer("virtnetworkd", "B", Some(2)), NOW),
        sample_call(5, "C", 9.0, "virsh", 5, peer("virtstoraged", "D", None), NOW),
    ];
    let mut n = sample_status("virtnetworkd", 11, NOW);
    n.inflight = vec![sample_call(
        2,
        "B",
        29.0,
        "virtqemud",
        10,
        peer("virtqemud", "A", Some(1)),
        NOW,
    )];
    let s = snap(vec![running(n), running(q), silent("virtstoraged")]);
    let chains = hangs::find(&s, 5.0);
    assert_eq!(chains.len(), 2, "{chains:#?}");
    let cyc = chains.iter().find(|c| c.cycle).unwrap();
    assert_eq!(cyc.hops.len(), 2);
    assert_eq!(cyc.hops[0].call, 1, "the oldest call of a cycle leads");
    assert_eq!(cyc.end.as_deref(), Some("cycle back to virtqemud #1"));
    let dangling = chains.iter().find(|c| !c.cycle).unwrap();
    assert_eq!(
        dangling.end.as_deref(),
        Some("virtstoraged is not answering: no answer within 2 s")
    );
    let text = hangs::render_text(&s, 5.0);
    assert!(
        text.contains("↺ cycle back to virtqemud #1: a deadlock"),
        "{text}"
    );
    assert!(text.contains("✗ virtstoraged is not answering"), "{text}");
}

#[test]
fn durations_and_dates() {
    assert_eq!(fmt_secs(0.25), "0.2s");
    assert_eq!(fmt_secs(47.0), "47s");
    assert_eq!(fmt_secs(312.0), "5m12s");
    assert_eq!(fmt_secs(7380.0), "2h03m");
    assert_eq!(fmt_secs(3.0 * 86400.0 + 4.0 * 3600.0), "3d04h");
    assert_eq!(fmt_secs(-3.0), "0s");
    assert_eq!(fmt_ms(0.42), "0.4 ms");
    assert_eq!(fmt_ms(230.2), "230 ms");
    assert_eq!(fmt_ms(1840.0), "1.84 s");
    assert_eq!(fmt_utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(fmt_utc(1_709_251_199_000), "2024-02-29 23:59:59 UTC");
    assert_eq!(fmt_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
}

#[test]
fn table_aligns_columns() {
    let t = table(&[
        vec!["NAME".into(), "STATE".into(), "X".into()],
        vec!["virtqemud".into(), "running".into(), "long last".into()],
    ]);
    assert_eq!(t, "NAME       STATE    X\nvirtqemud  running  long last\n");
}

#[test]
fn the_observer_forgets_itself() {
    let mut s = sample_status("virtqemud", 1, NOW);
    s.clients[1].process.pid = 4242;
    let mut own = sample_call(9, "STATUS", 0.0, "virt-daemons", 4242, None, NOW);
    own.program = "OBSERVE".into();
    s.inflight = vec![
        own,
        sample_call(10, "DOMAIN_CREATE", 1.0, "virt-daemons", 4242, None, NOW),
    ];
    forget_self(&mut s, 4242);
    assert_eq!(s.clients.len(), 1, "the passive observer connection is gone");
    assert_eq!(s.inflight.len(), 1);
    assert_eq!(s.inflight[0].procedure, "DOMAIN_CREATE");
}

#[test]
fn a_network_client_is_named_without_a_process() {
    let unix = Process {
        pid: 123,
        uid: 0,
        comm: "virsh".into(),
    };
    assert_eq!(fmt_process(&unix), "virsh (pid 123, uid 0)");
    let tls = Process {
        pid: -1,
        uid: u32::MAX,
        comm: "tls CN=client 127.0.0.1:40000".into(),
    };
    assert_eq!(fmt_process(&tls), "tls CN=client 127.0.0.1:40000");
}
