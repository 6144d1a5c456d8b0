//! Assembles the STATUS document ([`DaemonStatus`]) from the live daemon.

use super::unix_ms;
use crate::daemon::DaemonShared;
use modvirt_wire::observe::{self as o, DaemonStatus, SCHEMA};
use std::time::Instant;

/// The idle timer's inhibitor groups on the wire.
fn inhibitors(groups: &[crate::idle::InhibitorGroup], now_ms: u64) -> Vec<o::Inhibitor> {
    groups
        .iter()
        .map(|g| o::Inhibitor {
            reason: g.reason.clone(),
            count: g.count,
            since_ms: now_ms.saturating_sub(g.age.as_millis() as u64),
        })
        .collect()
}

/// Everything the daemon says about itself, now.
pub fn status(d: &DaemonShared) -> DaemonStatus {
    let now = Instant::now();
    let now_ms = unix_ms();
    let obs = &d.observer;
    let idle = d.idle.status();
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for s in d.servers() {
        let st = s.pool.stats();
        let cl = s.clients();
        servers.push(o::Server {
            name: s.name.clone(),
            workers: o::Workers {
                min: st.min_workers as u32,
                max: st.max_workers as u32,
                total: st.n_workers as u32,
                free: st.free_workers as u32,
                priority: st.prio_workers as u32,
                queue_depth: st.job_queue_depth as u32,
            },
            clients: cl.len() as u32,
            max_clients: s.limits().max_clients as u32,
        });
        clients.extend(cl.iter().map(|c| o::Client {
            server: c.server.clone(),
            id: c.id,
            socket: c.role.label().to_owned(),
            process: o::Process {
                pid: c.identity.pid,
                uid: c.identity.uid,
                comm: c.identity.command.clone(),
            },
            connected_ms: c.connected_ms,
            passive: c.is_passive(),
        }));
    }
    let state = if obs.is_stopping() {
        "stopping"
    } else if obs.ready_ms.get().is_some() {
        "running"
    } else {
        "starting"
    };
    DaemonStatus {
        schema: SCHEMA,
        name: obs.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: obs.pid,
        state: state.to_owned(),
        activation: obs.activation(),
        times: o::Times {
            exec_ms: obs.exec_ms,
            ready_ms: obs.ready_ms.get().copied(),
            first_client_ms: obs.first_client_ms.get().copied(),
            now_ms,
        },
        idle: o::Idle {
            timeout_s: idle.timeout,
            armed: idle.remaining.is_some(),
            remaining_s: idle.remaining.map(|r| r.as_secs_f64()),
            active_clients: idle.clients as u32,
            inhibitors: inhibitors(&idle.inhibitors, now_ms),
        },
        servers,
        clients,
        inflight: obs.inflight.snapshot(now),
        job_locks: obs.job_locks.snapshot(now),
        phases: obs.phases.snapshot(),
        process: super::metrics::process_stats(),
        dropped_events: d.spans.dropped() + d.logging.dropped(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn inhibitor_ages_become_wall_clock_times() {
        let groups = [crate::idle::InhibitorGroup {
            reason: "in-flight calls".to_owned(),
            count: 2,
            age: Duration::from_millis(300),
        }];
        let g = inhibitors(&groups, 10_000);
        assert_eq!(
            (g[0].reason.as_str(), g[0].count, g[0].since_ms),
            ("in-flight calls", 2, 9_700)
        );
    }
}
