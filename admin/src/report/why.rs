//! `virt-daemons why NAME`: why a daemon runs and what keeps it alive, or
//! why it ran last and how that run ended; then its activation history.

use super::{Observed, Snapshot, cause_prose, fmt_ms, fmt_process, fmt_secs, fmt_utc, secs_between};
use crate::discover::lifecycle::Run;
use crate::discover::{DaemonState, MODVIRT_DAEMONS};
use modvirt_wire::observe::{DaemonStatus, ExitReason, WaitOn};
use std::fmt::Write as _;

/// How many runs of history to show.
pub const HISTORY_RUNS: usize = 10;

/// [`render`] for the daemon called `name`; an unknown name is an error
/// that lists the known ones.
pub fn render_named(snap: &Snapshot, name: &str) -> Result<String, String> {
    match snap.find(name) {
        Some(o) => Ok(render(o, snap)),
        None => {
            let mut known: Vec<&str> = snap.daemons.iter().map(|o| o.name()).collect();
            known.extend(MODVIRT_DAEMONS);
            known.sort_unstable();
            known.dedup();
            Err(format!(
                "unknown daemon {name:?}; known daemons: {}",
                known.join(", ")
            ))
        }
    }
}

/// The whole explanation for one daemon.
pub fn render(o: &Observed, snap: &Snapshot) -> String {
    let mut out = String::new();
    match o.live() {
        Some(s) => running(&mut out, o, s),
        None if o.daemon.is_running() => running_unobservable(&mut out, o, snap.now_ms),
        None => not_running(&mut out, o, snap.now_ms),
    }
    history(&mut out, o, snap.now_ms);
    out
}

fn running(out: &mut String, o: &Observed, s: &DaemonStatus) {
    let now = s.times.now_ms;
    let _ = write!(
        out,
        "{} is {}: pid {}, up {} (since {})",
        o.name(),
        o.state_label(),
        s.pid,
        fmt_secs(secs_between(s.times.exec_ms, now)),
        fmt_utc(s.times.exec_ms)
    );
    if let Some(sf) = &o.daemon.state_file {
        let _ = write!(out, ", run #{} of this host", sf.runs);
    }
    out.push_str(".\n");
    let _ = writeln!(out, "Why it runs: {}.", cause_prose(&s.activation));
    match s.times.ready_ms {
        Some(r) => {
            let _ = writeln!(
                out,
                "Start-up took {} (see `virt-daemons boot`).",
                fmt_ms(r.saturating_sub(s.times.exec_ms) as f64)
            );
        }
        None => out.push_str("Start-up is still in progress.\n"),
    }

    let idle = &s.idle;
    let active: Vec<_> = s.clients.iter().filter(|c| !c.passive).collect();
    let passive = s.clients.len() - active.len();
    if active.is_empty() && idle.inhibitors.is_empty() {
        let what = if idle.timeout_s == 0 {
            "nothing, but the idle timeout is off: it never exits when idle".to_owned()
        } else if idle.armed {
            format!(
                "nothing: exits in {} s (idle timeout {} s)",
                idle.remaining_s.unwrap_or(f64::from(idle.timeout_s)).ceil() as u64,
                idle.timeout_s
            )
        } else {
            format!(
                "nothing, yet the idle countdown ({} s) is not armed",
                idle.timeout_s
            )
        };
        let _ = writeln!(out, "What keeps it alive: {what}.");
    } else {
        out.push_str("What keeps it alive:\n");
        if !active.is_empty() {
            let _ = writeln!(out, "  {} active client(s):", active.len());
            for c in &active {
                let _ = writeln!(
                    out,
                    "    {} on {} (client {}), connected {} ago",
                    fmt_process(&c.process),
                    c.socket,
                    c.id,
                    fmt_secs(secs_between(c.connected_ms, now))
                );
            }
        }
        if !idle.inhibitors.is_empty() {
            out.push_str("  inhibitors:\n");
            for i in &idle.inhibitors {
                let _ = writeln!(
                    out,
                    "    {} ×{}, since {} ago",
                    i.reason,
                    i.count,
                    fmt_secs(secs_between(i.since_ms, now))
                );
            }
        }
        let timer = if idle.timeout_s == 0 {
            "idle timeout off: it would not exit anyway".to_owned()
        } else {
            format!("then exits {} s after the last one goes", idle.timeout_s)
        };
        let _ = writeln!(out, "  ({timer})");
    }
    if passive > 0 {
        let _ = writeln!(out, "Observers (passive, not keeping it alive): {passive}.");
    }
    if let Some(oldest) = s.inflight.iter().max_by(|a, b| a.age_s.total_cmp(&b.age_s)) {
        let _ = write!(
            out,
            "In flight: {} call(s); oldest {} #{} from {} (pid {}), {}",
            s.inflight.len(),
            oldest.procedure,
            oldest.id,
            oldest.client.comm,
            oldest.client.pid,
            fmt_secs(oldest.age_s)
        );
        if let Some(w) = &oldest.waiting_on {
            let _ = write!(out, ", waiting on {}", describe_wait(w));
        }
        out.push_str(" (see `virt-daemons hangs`).\n");
    }
}

fn running_unobservable(out: &mut String, o: &Observed, now_ms: u64) {
    let _ = write!(out, "{} is {}", o.name(), o.state_label());
    if let Some(pid) = o.daemon.pid() {
        let _ = write!(out, ": pid {pid}");
    }
    if let Some(sf) = &o.daemon.state_file {
        let _ = write!(
            out,
            ", up {} (since {})",
            fmt_secs(secs_between(sf.exec_ms, now_ms)),
            fmt_utc(sf.exec_ms)
        );
    }
    out.push_str(".\n");
    if let Some(a) = o.activation() {
        let _ = writeln!(out, "Why it runs (state file): {}.", cause_prose(a));
    }
    out.push_str("What keeps it alive: unknown (it did not answer STATUS).\n");
}

fn not_running(out: &mut String, o: &Observed, now_ms: u64) {
    let d = &o.daemon;
    let _ = write!(out, "{} is not running: {}", d.name, d.state.as_str());
    if let Some(detail) = &d.detail {
        let _ = write!(out, " — {detail}");
    }
    out.push_str(".\n");
    if let Some(sf) = &d.state_file {
        let _ = write!(
            out,
            "Last run: pid {}, started {} ({} ago) — {}",
            sf.pid,
            fmt_utc(sf.exec_ms),
            fmt_secs(secs_between(sf.exec_ms, now_ms)),
            cause_prose(&sf.activation)
        );
        match &sf.exit {
            Some(exit) => {
                let how = match exit.reason {
                    ExitReason::IdleExit => "exited when idle".to_owned(),
                    ExitReason::Signal => {
                        format!("stopped by {}", exit.signal.as_deref().unwrap_or("a signal"))
                    }
                    ExitReason::StartupFailed => "failed to start".to_owned(),
                    ExitReason::Crashed => "crashed".to_owned(),
                };
                let _ = write!(
                    out,
                    "; it {how} at {} after {}",
                    fmt_utc(exit.at_ms),
                    fmt_secs(secs_between(sf.exec_ms, exit.at_ms))
                );
                if let Some(detail) = &exit.detail {
                    let _ = write!(out, ": {detail}");
                }
            }
            None => out.push_str("; it ended without a word"),
        }
        out.push_str(".\n");
    } else if let Some(run) = d.history.last() {
        let _ = writeln!(
            out,
            "Last run (lifecycle log): {}.",
            describe_run(run, now_ms, false)
        );
    } else {
        out.push_str("It has left no state file and no lifecycle log here.\n");
    }
    if let Some(socket) = d.units.as_ref().and_then(|u| u.listening_socket()) {
        let _ = writeln!(out, "systemd listens on {socket}: the next client will start it.");
    }
}

fn history(out: &mut String, o: &Observed, now_ms: u64) {
    let h = &o.daemon.history;
    if h.runs.is_empty() && h.errors.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nHistory ({} of {} run(s) in the lifecycle log, newest first):",
        h.runs.len().min(HISTORY_RUNS),
        h.runs.len()
    );
    let current = o.daemon.pid();
    // The run the state file describes, when it died without a word.
    let crashed_pid = match (&o.daemon.state_file, o.daemon.state) {
        (Some(sf), DaemonState::Crashed) => Some(sf.pid),
        _ => None,
    };
    for run in h.recent(HISTORY_RUNS) {
        let live = run.end.is_none() && Some(run.pid) == current;
        let mut line = describe_run(run, now_ms, live);
        if run.end.is_none() && Some(run.pid) == crashed_pid {
            line.push_str(" — crashed");
        }
        let _ = writeln!(out, "  {line}");
    }
    if h.bad_lines > 0 {
        let _ = writeln!(out, "  ({} unreadable line(s) skipped)", h.bad_lines);
    }
    for e in &h.errors {
        let _ = writeln!(out, "  (cannot read {e})");
    }
}

/// `2025-01-02 03:04:05 UTC  pid 4100  socket activation on … ready in 230 ms; idle exit (timeout 120 s) after 10m00s`.
/// `live`: this is the run going on now.
pub fn describe_run(run: &Run, now_ms: u64, live: bool) -> String {
    let mut s = match run.started_ms {
        Some(t) => format!("{}  pid {}", fmt_utc(t), run.pid),
        None => format!("{:<23}  pid {}", "(start not logged)", run.pid),
    };
    if let Some(a) = &run.activation {
        let _ = write!(s, "  {}", cause_prose(a));
    }
    if let Some(ms) = run.startup_ms {
        let _ = write!(s, "; ready in {}", fmt_ms(ms));
    }
    match (&run.end, run.started_ms) {
        (Some(end), Some(start)) => {
            let _ = write!(
                s,
                "; {} after {}",
                end.describe(),
                fmt_secs(secs_between(start, end.at_ms))
            );
        }
        (Some(end), None) => {
            let _ = write!(s, "; {} at {}", end.describe(), fmt_utc(end.at_ms));
        }
        (None, Some(start)) if live => {
            let _ = write!(s, "; running ({})", fmt_secs(secs_between(start, now_ms)));
        }
        (None, Some(start)) => {
            let _ = write!(
                s,
                "; no end logged ({} ago)",
                fmt_secs(secs_between(start, now_ms))
            );
        }
        (None, None) => {}
    }
    s
}

/// `job lock domain:vm1 held by #12 DOMAIN_SUSPEND (50s)`, …
pub fn describe_wait(w: &WaitOn) -> String {
    match w {
        WaitOn::JobLock {
            object,
            holder_call,
            holder_procedure,
            held_s,
        } => format!(
            "job lock {object} held by #{holder_call} {holder_procedure} ({})",
            fmt_secs(*held_s)
        ),
        WaitOn::Process { description, .. } => description.clone(),
        WaitOn::Peer {
            daemon,
            procedure,
            peer_call,
            ..
        } => match peer_call {
            Some(id) => format!("{daemon} {procedure} #{id}"),
            None => format!("{daemon} {procedure}"),
        },
        WaitOn::Other { description } => description.clone(),
    }
}
