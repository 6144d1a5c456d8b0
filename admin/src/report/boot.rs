//! `virt-daemons boot`: every running daemon's start-up phases, slowest
//! daemon first and, within each level of the tree, slowest phase first —
//! so a slow boot shows its culprit on top. Offsets (`+12 ms`) keep the
//! order in time visible. Daemons that are not running are skipped.

use super::{Snapshot, fmt_ms, secs_between, table};
use modvirt_wire::observe::{DaemonStatus, Phase};

/// How long a daemon took to become ready (or has taken so far).
pub fn startup_ms(s: &DaemonStatus) -> f64 {
    match s.times.ready_ms {
        Some(r) => r.saturating_sub(s.times.exec_ms) as f64,
        None => secs_between(s.times.exec_ms, s.times.now_ms) * 1000.0,
    }
}

/// A phase's duration, or how long it has been running.
fn phase_ms(p: &Phase, s: &DaemonStatus) -> f64 {
    p.duration_ms
        .unwrap_or_else(|| (secs_between(s.times.exec_ms, s.times.now_ms) * 1000.0 - p.start_ms).max(0.0))
}

pub fn render_text(snap: &Snapshot) -> String {
    let mut live: Vec<&DaemonStatus> = snap.live().map(|(_, s)| s).collect();
    if live.is_empty() {
        return "no running daemon answered; start-up phases are only known for running daemons\n".to_owned();
    }
    live.sort_by(|a, b| startup_ms(b).total_cmp(&startup_ms(a)));
    let mut out = String::new();
    for s in live {
        let state = if s.times.ready_ms.is_some() {
            "ready"
        } else {
            "still starting"
        };
        out.push_str(&format!(
            "{}  {} ({state}, pid {})\n",
            s.name,
            fmt_ms(startup_ms(s)),
            s.pid
        ));
        let mut rows = Vec::new();
        tree_rows(&s.phases, s, 1, &mut rows);
        out.push_str(&table(&rows));
    }
    for o in &snap.daemons {
        if let Some(e) = o.probe_error() {
            out.push_str(&format!("{}: not answering: {e}\n", o.name()));
        }
    }
    out
}

fn tree_rows(phases: &[Phase], s: &DaemonStatus, depth: usize, rows: &mut Vec<Vec<String>>) {
    let mut sorted: Vec<&Phase> = phases.iter().collect();
    sorted.sort_by(|a, b| phase_ms(b, s).total_cmp(&phase_ms(a, s)));
    for p in sorted {
        let duration = match p.duration_ms {
            Some(d) => fmt_ms(d),
            None => format!("{} so far", fmt_ms(phase_ms(p, s))),
        };
        rows.push(vec![
            format!("{}{}", "  ".repeat(depth), p.name),
            format!("+{}", fmt_ms(p.start_ms)),
            duration,
            p.detail.clone().unwrap_or_default(),
        ]);
        tree_rows(&p.children, s, depth + 1, rows);
    }
}
