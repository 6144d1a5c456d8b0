//! Assembles the STATUS document ([`DaemonStatus`]) from the live daemon.

use super::unix_ms;
use crate::daemon::DaemonShared;
use modvirt_wire::observe::{self as o, DaemonStatus, SCHEMA};
use std::time::Instant;

/// The idle timer's inhibitor groups on the wire, with the calls in flight
/// (`calls` of them; since the oldest of `inflight` that is not an
/// observer's) as one more group, in reason order.
fn inhibitors(
    groups: &[crate::idle::InhibitorGroup],
    calls: usize,
    inflight: &[o::InflightCall],
    now_ms: u64,
) -> Vec<o::Inhibitor> {
    let mut out: Vec<o::Inhibitor> = groups
        .iter()
        .map(|g| o::Inhibitor {
            reason: g.reason.clone(),
            count: g.count,
            since_ms: now_ms.saturating_sub(g.age.as_millis() as u64),
        })
        .collect();
    if calls > 0 {
        let since_ms = inflight
            .iter()
            .filter(|c| c.program != o::OBSERVE.name)
            .map(|c| c.started_ms)
            .min()
            .unwrap_or(now_ms);
        out.push(o::Inhibitor {
            reason: crate::idle::CALLS_REASON.to_owned(),
            count: u32::try_from(calls).unwrap_or(u32::MAX),
            since_ms,
        });
        out.sort_by(|a, b| a.reason.cmp(&b.reason));
    }
    out
}

/// Everything the daemon says about itself, now.
pub fn status(d: &DaemonShared) -> DaemonStatus {
    let now = Instant::now();
    let now_ms = unix_ms();
    let obs = &d.observer;
    let idle = d.idle.status();
    let inflight = obs.inflight.snapshot(now);
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
            inhibitors: inhibitors(&idle.inhibitors, idle.calls, &inflight, now_ms),
        },
        servers,
        clients,
        inflight,
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
        let g = inhibitors(&groups, 0, &[], 10_000);
        assert_eq!(
            (g[0].reason.as_str(), g[0].count, g[0].since_ms),
            ("in-flight calls", 2, 9_700)
        );
    }

    #[test]
    fn calls_in_flight_date_from_the_oldest_that_is_not_an_observer() {
        let call = |program: &str, started_ms: u64| o::InflightCall {
            id: started_ms,
            program: program.to_owned(),
            procedure: "X".into(),
            serial: 1,
            client: o::ClientRef {
                server: "s".into(),
                id: 1,
                pid: 2,
                comm: "virsh".into(),
            },
            started_ms,
            age_s: 0.0,
            waiting_on: None,
            trace_id: None,
            caller: None,
        };
        let start_up = [crate::idle::InhibitorGroup {
            reason: "start-up".to_owned(),
            count: 1,
            age: Duration::from_millis(10),
        }];
        let inflight = [call("OBSERVE", 100), call("REMOTE", 400), call("REMOTE", 300)];
        let g = inhibitors(&start_up, 2, &inflight, 10_000);
        let got: Vec<(&str, u32, u64)> = g
            .iter()
            .map(|i| (i.reason.as_str(), i.count, i.since_ms))
            .collect();
        assert_eq!(got, [("in-flight calls", 2, 300), ("start-up", 1, 9_990)]);
        assert_eq!(
            inhibitors(&start_up, 0, &inflight, 10_000).len(),
            1,
            "no calls, no group"
        );
    }
}
