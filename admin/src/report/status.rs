//! `virt-daemons status`: one line per daemon, or one JSON object per daemon.
//!
//! JSON shape (`{"daemons": [...], "warnings": [...]}`), per daemon:
//! `name`, `state` (derived: `running`, `idle-exited`, …), `label` (as the
//! table shows it), `detail`, `answering`, `error`, `pid` (live only),
//! `last_pid`, `runs`, `started_ms`, `ready_ms`, `uptime_s`, `activation`
//! (`cause`, `socket`, `client` {`pid`, `uid`, `comm`}, `peer`), `exit`,
//! `idle` (`timeout_s`, `armed`, `remaining_s`, `active_clients`,
//! `inhibitors` [{`reason`, `count`, `since`, `held_s`}]), `clients`
//! [{…}], `active_clients`, `inflight` [{`id`, `procedure`, `client`,
//! `age_s`, `waiting_on`, …}], `phases` [{`name`, `start_ms`,
//! `duration_ms`, `detail`, `children`}], `systemd`, `history`. What is not
//! known is `null` (e.g. `idle` of a daemon that is not running).

use super::{Observed, Snapshot, cause_short, fmt_secs, secs_between, table};
use modvirt_wire::observe::{DaemonStatus, Idle, Inhibitor};
use serde_json::{Value, json};

/// The table.
pub fn render_text(snap: &Snapshot) -> String {
    let mut rows = vec![
        [
            "NAME", "STATE", "PID", "UPTIME", "CAUSE", "CLIENTS", "INFLIGHT", "OLDEST", "IDLE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut notes = Vec::new();
    for o in &snap.daemons {
        rows.push(row(o, snap.now_ms));
        if let Some(note) = note(o) {
            notes.push(format!("{}: {note}", o.name()));
        }
    }
    let mut out = if snap.daemons.is_empty() {
        "no modvirt daemons found (no state files; --all lists the known ones)\n".to_owned()
    } else {
        table(&rows)
    };
    for n in notes.iter().chain(&snap.warnings) {
        out.push_str(n);
        out.push('\n');
    }
    out
}

fn row(o: &Observed, now_ms: u64) -> Vec<String> {
    let dash = || "-".to_owned();
    let pid = o.daemon.pid().map_or_else(dash, |p| p.to_string());
    let uptime = match (o.live(), &o.daemon.state_file) {
        (Some(s), _) => fmt_secs(secs_between(s.times.exec_ms, s.times.now_ms)),
        (None, Some(sf)) if o.daemon.is_running() => fmt_secs(secs_between(sf.exec_ms, now_ms)),
        _ => dash(),
    };
    let cause = o.activation().map_or_else(dash, cause_short);
    let (clients, inflight, oldest, idle) = match o.live() {
        Some(s) => (
            s.idle.active_clients.to_string(),
            s.inflight.len().to_string(),
            oldest_age(s).map_or_else(dash, fmt_secs),
            idle_column(&s.idle),
        ),
        None => (dash(), dash(), dash(), dash()),
    };
    vec![
        o.name().to_owned(),
        o.state_label(),
        pid,
        uptime,
        cause,
        clients,
        inflight,
        oldest,
        idle,
    ]
}

/// The detail worth a line under the table (why crashed, unreadable, …).
fn note(o: &Observed) -> Option<String> {
    if o.daemon.is_running() {
        return None;
    }
    o.daemon.detail.clone()
}

fn oldest_age(s: &DaemonStatus) -> Option<f64> {
    s.inflight.iter().map(|c| c.age_s).reduce(f64::max)
}

/// `87s/120s` counting down, `off`, or `held: in-flight calls: 1, start-up`.
pub fn idle_column(idle: &Idle) -> String {
    if idle.timeout_s == 0 {
        return "off".to_owned();
    }
    if idle.armed {
        let left = idle.remaining_s.unwrap_or(f64::from(idle.timeout_s));
        return format!("{}s/{}s", left.ceil() as u64, idle.timeout_s);
    }
    let mut held: Vec<String> = Vec::new();
    if idle.active_clients > 0 {
        held.push(format!("clients: {}", idle.active_clients));
    }
    held.extend(idle.inhibitors.iter().map(inhibitor_short));
    if held.is_empty() {
        format!("not armed ({}s)", idle.timeout_s)
    } else {
        format!("held: {}", held.join(", "))
    }
}

/// `in-flight calls: 1`, `running guests: 2`, `start-up` (a singular
/// reason with count 1 needs no count).
fn inhibitor_short(i: &Inhibitor) -> String {
    if i.count <= 1 && !i.reason.ends_with('s') {
        i.reason.clone()
    } else {
        format!("{}: {}", i.reason, i.count)
    }
}

/// `{"daemons": [...], "warnings": [...]}`.
pub fn render_json(snap: &Snapshot) -> Value {
    json!({
        "daemons": snap.daemons.iter().map(|o| daemon_json(o, snap.now_ms)).collect::<Vec<_>>(),
        "warnings": snap.warnings,
    })
}

/// One daemon's JSON object (see the module docs).
pub fn daemon_json(o: &Observed, now_ms: u64) -> Value {
    let d = &o.daemon;
    let sf = d.state_file.as_ref();
    let live = o.live();
    let running = d.is_running();
    let uptime_s = match (live, sf) {
        (Some(s), _) => Some(secs_between(s.times.exec_ms, s.times.now_ms)),
        (None, Some(sf)) if running => Some(secs_between(sf.exec_ms, now_ms)),
        _ => None,
    };
    let history: Vec<_> = d.history.recent(10).collect();
    json!({
        "name": d.name,
        "state": d.state.as_str(),
        "label": o.state_label(),
        "detail": d.detail,
        "answering": o.status.as_ref().map(Result::is_ok),
        "error": o.probe_error().map(ToString::to_string),
        "pid": d.pid(),
        "last_pid": sf.map(|s| s.pid).or_else(|| d.history.last().map(|r| r.pid)),
        "runs": sf.map(|s| s.runs),
        "started_ms": live.map(|s| s.times.exec_ms).or(sf.map(|s| s.exec_ms)),
        "ready_ms": live.and_then(|s| s.times.ready_ms).or(sf.and_then(|s| s.ready_ms)),
        "uptime_s": uptime_s,
        "version": live.map(|s| &s.version),
        "activation": o.activation(),
        "exit": if running { None } else { sf.and_then(|s| s.exit.as_ref()) },
        "idle": live.map(|s| idle_json(&s.idle, s.times.now_ms)),
        "clients": live.map(|s| s.clients.iter().map(|c| json!({
            "id": c.id,
            "server": c.server,
            "socket": c.socket,
            "pid": c.process.pid,
            "uid": c.process.uid,
            "comm": c.process.comm,
            "connected_ms": c.connected_ms,
            "passive": c.passive,
        })).collect::<Vec<_>>()),
        "active_clients": live.map(|s| s.idle.active_clients),
        "inflight": live.map(|s| s.inflight.iter().map(|c| json!({
            "id": c.id,
            "program": c.program,
            "procedure": c.procedure,
            "serial": c.serial,
            "client": c.client,
            "age_s": c.age_s,
            "waiting_on": c.waiting_on,
            "caller": c.caller,
            "trace_id": c.trace_id,
        })).collect::<Vec<_>>()),
        "job_locks": live.map(|s| &s.job_locks),
        "phases": live.map(|s| &s.phases),
        "process": live.map(|s| &s.process),
        "dropped_events": live.map(|s| s.dropped_events),
        "systemd": d.units,
        "history": history,
    })
}

fn idle_json(idle: &Idle, now_ms: u64) -> Value {
    json!({
        "timeout_s": idle.timeout_s,
        "armed": idle.armed,
        "remaining_s": idle.remaining_s,
        "active_clients": idle.active_clients,
        "inhibitors": idle.inhibitors.iter().map(|i| json!({
            "reason": i.reason,
            "count": i.count,
            "since": i.since_ms,
            "held_s": secs_between(i.since_ms, now_ms),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(timeout_s: u32, armed: bool, remaining: Option<f64>, clients: u32, inh: &[(&str, u32)]) -> Idle {
        Idle {
            timeout_s,
            armed,
            remaining_s: remaining,
            active_clients: clients,
            inhibitors: inh
                .iter()
                .map(|&(reason, count)| Inhibitor {
                    reason: reason.into(),
                    count,
                    since_ms: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn idle_column_forms() {
        assert_eq!(idle_column(&idle(120, true, Some(86.2), 0, &[])), "87s/120s");
        assert_eq!(idle_column(&idle(0, false, None, 3, &[])), "off");
        assert_eq!(
            idle_column(&idle(
                120,
                false,
                None,
                0,
                &[("in-flight calls", 1), ("start-up", 1)]
            )),
            "held: in-flight calls: 1, start-up"
        );
        assert_eq!(
            idle_column(&idle(120, false, None, 2, &[("running guests", 3)])),
            "held: clients: 2, running guests: 3"
        );
        assert_eq!(idle_column(&idle(120, false, None, 0, &[])), "not armed (120s)");
    }
}
