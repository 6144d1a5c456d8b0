//! Gauges that describe state, set from a [`DaemonStatus`] snapshot at scrape
//! time, so a scrape always agrees with STATUS. Label sets that come and go
//! (clients, inhibitors, servers, phases) are reset first: a value that left
//! the snapshot leaves the exposition too.

use super::{counter, gauge, gauge_vec, int_gauge, int_gauge_vec};
use modvirt_wire::observe::{DaemonStatus, Phase, WaitOn};
use prometheus::{Counter, Gauge, GaugeVec, IntGauge, IntGaugeVec, Registry};

/// `DaemonStatus::state` values, always exported (0 or 1).
const STATES: [&str; 3] = ["starting", "running", "stopping"];
/// `WaitOn` kinds (its serde tags), always exported.
const WAIT_KINDS: [&str; 4] = ["job-lock", "process", "peer", "other"];

#[derive(Debug)]
pub(super) struct StateGauges {
    daemon_info: IntGaugeVec,
    daemon_state: IntGaugeVec,
    start_time: Gauge,
    /// No labels: a vec only so the series can be absent before ready.
    ready: GaugeVec,
    activation_info: IntGaugeVec,
    idle_timeout: IntGauge,
    idle_armed: IntGauge,
    idle_remaining: Gauge,
    idle_active_clients: IntGauge,
    idle_inhibitors: IntGaugeVec,
    clients: IntGaugeVec,
    client_limit: IntGaugeVec,
    workers: IntGaugeVec,
    workers_limit: IntGaugeVec,
    worker_queue_depth: IntGaugeVec,
    inflight: IntGauge,
    oldest_inflight: Gauge,
    waiting: IntGaugeVec,
    job_locks: IntGauge,
    job_lock_longest: Gauge,
    job_lock_waiters: IntGauge,
    phase_duration: GaugeVec,
    rss: IntGauge,
    cpu: Counter,
    open_fds: IntGauge,
    threads: IntGauge,
}

impl StateGauges {
    pub(super) fn new(r: &Registry) -> Self {
        StateGauges {
            daemon_info: int_gauge_vec(
                r,
                "modvirt_daemon_info",
                "Always 1: the daemon's name, version and process id.",
                &["daemon", "version", "pid"],
            ),
            daemon_state: int_gauge_vec(
                r,
                "modvirt_daemon_state",
                "1 for the daemon's current life-cycle state (starting, running, stopping), 0 for the others.",
                &["state"],
            ),
            start_time: gauge(
                r,
                "modvirt_daemon_start_time_seconds",
                "When this run of the daemon was exec'd, in seconds since the Unix epoch.",
            ),
            ready: gauge_vec(
                r,
                "modvirt_daemon_ready_seconds",
                "Seconds from exec to ready (start-up duration); absent until the daemon is ready.",
                &[],
            ),
            activation_info: int_gauge_vec(
                r,
                "modvirt_daemon_activation_info",
                "Always 1: why this run started (cause boot, socket, peer or manual), the activation socket and the spawning peer daemon (empty if none).",
                &["cause", "socket", "peer"],
            ),
            idle_timeout: int_gauge(
                r,
                "modvirt_idle_timeout_seconds",
                "Configured idle timeout; 0 means the daemon never exits when idle.",
            ),
            idle_armed: int_gauge(
                r,
                "modvirt_idle_armed",
                "1 while the idle countdown runs (no active client, no inhibitor, timeout > 0).",
            ),
            idle_remaining: gauge(
                r,
                "modvirt_idle_remaining_seconds",
                "Seconds left before the daemon exits for idleness; 0 when the countdown is not armed.",
            ),
            idle_active_clients: int_gauge(
                r,
                "modvirt_idle_active_clients",
                "Clients that keep the daemon alive (passive observers excluded).",
            ),
            idle_inhibitors: int_gauge_vec(
                r,
                "modvirt_idle_inhibitors",
                "Inhibitors holding the idle timer, by reason.",
                &["reason"],
            ),
            clients: int_gauge_vec(
                r,
                "modvirt_clients",
                "Connected clients (passive observers included), by server and socket (rw, ro, admin).",
                &["server", "socket"],
            ),
            client_limit: int_gauge_vec(
                r,
                "modvirt_client_limit",
                "Maximum number of clients a server accepts.",
                &["server"],
            ),
            workers: int_gauge_vec(
                r,
                "modvirt_workers",
                "Worker threads of a server's pool: total, free (idle) and priority workers.",
                &["server", "state"],
            ),
            workers_limit: int_gauge_vec(
                r,
                "modvirt_workers_limit",
                "Configured minimum and maximum size of a server's worker pool.",
                &["server", "limit"],
            ),
            worker_queue_depth: int_gauge_vec(
                r,
                "modvirt_worker_queue_depth",
                "Calls queued for a free worker, by server.",
                &["server"],
            ),
            inflight: int_gauge(
                r,
                "modvirt_rpc_inflight_calls",
                "Calls being processed right now.",
            ),
            oldest_inflight: gauge(
                r,
                "modvirt_rpc_oldest_inflight_seconds",
                "Age of the oldest call being processed; 0 when there is none.",
            ),
            waiting: int_gauge_vec(
                r,
                "modvirt_rpc_waiting_calls",
                "In-flight calls waiting, by what they wait on (job-lock, process, peer, other).",
                &["kind"],
            ),
            job_locks: int_gauge(r, "modvirt_job_locks_held", "Object job locks currently held."),
            job_lock_longest: gauge(
                r,
                "modvirt_job_lock_longest_hold_seconds",
                "How long the longest-held job lock has been held; 0 when none is held.",
            ),
            job_lock_waiters: int_gauge(
                r,
                "modvirt_job_lock_waiters",
                "Calls waiting for a job lock, over all locks.",
            ),
            phase_duration: gauge_vec(
                r,
                "modvirt_startup_phase_duration_seconds",
                "Duration of each finished start-up phase of this run; steps are named parent/child.",
                &["phase"],
            ),
            rss: int_gauge(
                r,
                "modvirt_process_resident_memory_bytes",
                "Resident memory of the daemon process.",
            ),
            cpu: counter(
                r,
                "modvirt_process_cpu_seconds_total",
                "User and system CPU time consumed by the daemon process.",
            ),
            open_fds: int_gauge(
                r,
                "modvirt_process_open_fds",
                "Open file descriptors of the daemon process.",
            ),
            threads: int_gauge(r, "modvirt_process_threads", "Threads of the daemon process."),
        }
    }

    /// Sets every gauge from `s`. The caller serializes refreshes with the
    /// gathering that follows, so a scrape never sees a half-reset vec.
    pub(super) fn refresh(&self, s: &DaemonStatus) {
        self.refresh_daemon(s);
        self.refresh_idle(s);
        self.refresh_servers(s);
        self.refresh_calls(s);
        self.refresh_phases(&s.phases);
        let p = &s.process;
        self.rss.set(saturating_i64(p.rss_bytes));
        // A counter: advance it to the snapshot's value, never back (a
        // snapshot older than the last one seen must not lower it).
        let delta = p.cpu_seconds - self.cpu.get();
        if delta > 0.0 {
            self.cpu.inc_by(delta);
        }
        self.open_fds.set(i64::from(p.open_fds));
        self.threads.set(i64::from(p.threads));
    }

    fn refresh_daemon(&self, s: &DaemonStatus) {
        self.daemon_info.reset();
        self.daemon_info
            .with_label_values(&[s.name.as_str(), s.version.as_str(), &s.pid.to_string()])
            .set(1);
        self.daemon_state.reset();
        for state in STATES {
            self.daemon_state.with_label_values(&[state]).set(0);
        }
        self.daemon_state.with_label_values(&[s.state.as_str()]).set(1);
        self.start_time.set(ms_to_s(s.times.exec_ms));
        self.ready.reset();
        if let Some(ready_ms) = s.times.ready_ms {
            let startup = ms_to_s(ready_ms.saturating_sub(s.times.exec_ms));
            self.ready.with_label_values::<&str>(&[]).set(startup);
        }
        let a = &s.activation;
        self.activation_info.reset();
        self.activation_info
            .with_label_values(&[
                a.cause.as_str(),
                a.socket.as_deref().unwrap_or(""),
                a.peer.as_ref().map_or("", |p| p.daemon.as_str()),
            ])
            .set(1);
    }

    fn refresh_idle(&self, s: &DaemonStatus) {
        let idle = &s.idle;
        self.idle_timeout.set(i64::from(idle.timeout_s));
        self.idle_armed.set(i64::from(idle.armed));
        let remaining = if idle.armed {
            idle.remaining_s.unwrap_or(0.0)
        } else {
            0.0
        };
        self.idle_remaining.set(remaining.max(0.0));
        self.idle_active_clients.set(i64::from(idle.active_clients));
        self.idle_inhibitors.reset();
        for i in &idle.inhibitors {
            // The schema groups by reason; add in case a reason repeats.
            self.idle_inhibitors
                .with_label_values(&[i.reason.as_str()])
                .add(i64::from(i.count));
        }
    }

    fn refresh_servers(&self, s: &DaemonStatus) {
        for vec in [
            &self.clients,
            &self.client_limit,
            &self.workers,
            &self.workers_limit,
            &self.worker_queue_depth,
        ] {
            vec.reset();
        }
        for c in &s.clients {
            self.clients
                .with_label_values(&[c.server.as_str(), c.socket.as_str()])
                .inc();
        }
        for srv in &s.servers {
            let name = srv.name.as_str();
            let w = &srv.workers;
            self.client_limit
                .with_label_values(&[name])
                .set(i64::from(srv.max_clients));
            for (state, n) in [("total", w.total), ("free", w.free), ("priority", w.priority)] {
                self.workers.with_label_values(&[name, state]).set(i64::from(n));
            }
            for (limit, n) in [("min", w.min), ("max", w.max)] {
                self.workers_limit
                    .with_label_values(&[name, limit])
                    .set(i64::from(n));
            }
            self.worker_queue_depth
                .with_label_values(&[name])
                .set(i64::from(w.queue_depth));
        }
    }

    fn refresh_calls(&self, s: &DaemonStatus) {
        self.inflight.set(saturating_i64(s.inflight.len() as u64));
        let oldest = s.inflight.iter().map(|c| c.age_s).fold(0.0, f64::max);
        self.oldest_inflight.set(oldest);
        let mut waiting = [0i64; WAIT_KINDS.len()];
        for call in &s.inflight {
            let kind = match call.waiting_on {
                None => continue,
                Some(WaitOn::JobLock { .. }) => 0,
                Some(WaitOn::Process { .. }) => 1,
                Some(WaitOn::Peer { .. }) => 2,
                Some(WaitOn::Other { .. }) => 3,
            };
            waiting[kind] += 1;
        }
        for (kind, n) in WAIT_KINDS.iter().zip(waiting) {
            self.waiting.with_label_values(&[kind]).set(n);
        }
        self.job_locks.set(saturating_i64(s.job_locks.len() as u64));
        let longest = s.job_locks.iter().map(|l| l.held_s).fold(0.0, f64::max);
        self.job_lock_longest.set(longest);
        let waiters: usize = s.job_locks.iter().map(|l| l.waiters.len()).sum();
        self.job_lock_waiters.set(saturating_i64(waiters as u64));
    }

    fn refresh_phases(&self, phases: &[Phase]) {
        self.phase_duration.reset();
        let mut path = String::new();
        for p in phases {
            self.set_phase(&mut path, p);
        }
    }

    /// Sets `p` (if finished) and its steps, named `parent/child`.
    fn set_phase(&self, path: &mut String, p: &Phase) {
        let parent_len = path.len();
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(&p.name);
        if let Some(ms) = p.duration_ms {
            self.phase_duration
                .with_label_values(&[path.as_str()])
                .set(ms / 1000.0);
        }
        for child in &p.children {
            self.set_phase(path, child);
        }
        path.truncate(parent_len);
    }
}

fn ms_to_s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use super::super::fixture::{status, value};
    use modvirt_wire::observe::{self as o, DaemonStatus};

    #[test]
    fn state_gauges_reflect_the_snapshot() {
        let m = Metrics::new("virtqemud", "0.1.0");
        let text = m.render(&status());
        let v = |name, labels: &[(&str, &str)]| value(&text, name, labels);
        assert_eq!(
            v(
                "modvirt_daemon_info",
                &[("daemon", "virtqemud"), ("version", "0.1.0"), ("pid", "4242")]
            ),
            Some(1.0)
        );
        assert_eq!(v("modvirt_build_info", &[("daemon", "virtqemud")]), Some(1.0));
        assert_eq!(v("modvirt_daemon_state", &[("state", "running")]), Some(1.0));
        assert_eq!(v("modvirt_daemon_state", &[("state", "starting")]), Some(0.0));
        assert_eq!(v("modvirt_daemon_start_time_seconds", &[]), Some(1_700_000_000.0));
        assert_eq!(v("modvirt_daemon_ready_seconds", &[]), Some(0.25));
        let activation = [("cause", "socket"), ("socket", "virtqemud.socket"), ("peer", "")];
        assert_eq!(v("modvirt_daemon_activation_info", &activation), Some(1.0));
        assert_eq!(v("modvirt_idle_timeout_seconds", &[]), Some(120.0));
        assert_eq!(v("modvirt_idle_armed", &[]), Some(0.0));
        assert_eq!(v("modvirt_idle_remaining_seconds", &[]), Some(0.0));
        assert_eq!(v("modvirt_idle_active_clients", &[]), Some(2.0));
        assert_eq!(
            v("modvirt_idle_inhibitors", &[("reason", "in-flight calls")]),
            Some(3.0)
        );
        assert_eq!(
            v("modvirt_idle_inhibitors", &[("reason", "running guests")]),
            Some(2.0)
        );
        assert_eq!(
            v("modvirt_clients", &[("server", "virtqemud"), ("socket", "rw")]),
            Some(2.0)
        );
        assert_eq!(
            v("modvirt_clients", &[("server", "virtqemud"), ("socket", "ro")]),
            Some(1.0)
        );
        assert_eq!(
            v("modvirt_clients", &[("server", "admin"), ("socket", "admin")]),
            Some(1.0)
        );
        assert_eq!(
            v("modvirt_client_limit", &[("server", "virtqemud")]),
            Some(5000.0)
        );
        assert_eq!(
            v("modvirt_workers", &[("server", "admin"), ("state", "total")]),
            Some(7.0)
        );
        assert_eq!(
            v("modvirt_workers", &[("server", "admin"), ("state", "free")]),
            Some(4.0)
        );
        assert_eq!(
            v("modvirt_workers", &[("server", "admin"), ("state", "priority")]),
            Some(5.0)
        );
        assert_eq!(
            v(
                "modvirt_workers_limit",
                &[("server", "virtqemud"), ("limit", "min")]
            ),
            Some(5.0)
        );
        assert_eq!(
            v(
                "modvirt_workers_limit",
                &[("server", "virtqemud"), ("limit", "max")]
            ),
            Some(20.0)
        );
        assert_eq!(
            v("modvirt_worker_queue_depth", &[("server", "virtqemud")]),
            Some(2.0)
        );
        assert_eq!(v("modvirt_rpc_inflight_calls", &[]), Some(6.0));
        assert_eq!(v("modvirt_rpc_oldest_inflight_seconds", &[]), Some(47.5));
        assert_eq!(v("modvirt_rpc_waiting_calls", &[("kind", "job-lock")]), Some(2.0));
        assert_eq!(v("modvirt_rpc_waiting_calls", &[("kind", "process")]), Some(1.0));
        assert_eq!(v("modvirt_rpc_waiting_calls", &[("kind", "peer")]), Some(1.0));
        assert_eq!(v("modvirt_rpc_waiting_calls", &[("kind", "other")]), Some(1.0));
        assert_eq!(v("modvirt_job_locks_held", &[]), Some(2.0));
        assert_eq!(v("modvirt_job_lock_longest_hold_seconds", &[]), Some(47.5));
        assert_eq!(v("modvirt_job_lock_waiters", &[]), Some(2.0));
        let phase = |p| v("modvirt_startup_phase_duration_seconds", &[("phase", p)]);
        assert_eq!(phase("config"), Some(0.004));
        assert_eq!(phase("qemu driver"), Some(0.24));
        assert_eq!(phase("qemu driver/enumerate devices"), Some(0.2));
        assert_eq!(phase("qemu driver/reconnect guests"), Some(0.03));
        assert_eq!(phase("qemu driver/autostart"), None, "unfinished");
        assert_eq!(phase("network driver"), None, "unfinished");
        assert_eq!(
            v("modvirt_process_resident_memory_bytes", &[]),
            Some((24 << 20) as f64)
        );
        assert_eq!(v("modvirt_process_cpu_seconds_total", &[]), Some(1.25));
        assert_eq!(v("modvirt_process_open_fds", &[]), Some(23.0));
        assert_eq!(v("modvirt_process_threads", &[]), Some(9.0));
    }

    #[test]
    fn vanished_label_values_disappear_on_the_next_render() {
        let m = Metrics::new("virtqemud", "0.1.0");
        m.render(&status());
        let mut st = status();
        st.state = "stopping".into();
        st.times.ready_ms = None;
        st.activation = o::Activation {
            cause: o::Cause::Peer,
            socket: None,
            client: None,
            peer: Some(o::PeerSpawn {
                daemon: "virtqemud".into(),
                procedure: "NETWORK_LOOKUP_BY_NAME".into(),
            }),
        };
        st.idle.armed = true;
        st.idle.remaining_s = Some(30.5);
        st.idle.inhibitors.retain(|i| i.reason == "running guests");
        st.clients.retain(|c| c.socket == "rw");
        st.servers.retain(|s| s.name != "admin");
        st.inflight.clear();
        st.job_locks.clear();
        st.phases.truncate(1);
        let text = m.render(&st);
        let v = |name, labels: &[(&str, &str)]| value(&text, name, labels);
        assert_eq!(v("modvirt_daemon_state", &[("state", "stopping")]), Some(1.0));
        assert_eq!(v("modvirt_daemon_state", &[("state", "running")]), Some(0.0));
        assert_eq!(v("modvirt_daemon_ready_seconds", &[]), None);
        assert_eq!(v("modvirt_daemon_activation_info", &[("cause", "socket")]), None);
        assert_eq!(
            v(
                "modvirt_daemon_activation_info",
                &[("cause", "peer"), ("socket", ""), ("peer", "virtqemud")]
            ),
            Some(1.0)
        );
        assert_eq!(v("modvirt_idle_armed", &[]), Some(1.0));
        assert_eq!(v("modvirt_idle_remaining_seconds", &[]), Some(30.5));
        assert_eq!(
            v("modvirt_idle_inhibitors", &[("reason", "in-flight calls")]),
            None
        );
        assert_eq!(
            v("modvirt_idle_inhibitors", &[("reason", "running guests")]),
            Some(2.0)
        );
        assert_eq!(v("modvirt_clients", &[("socket", "ro")]), None);
        assert_eq!(v("modvirt_clients", &[("server", "admin")]), None);
        assert_eq!(
            v("modvirt_workers", &[("server", "admin"), ("state", "total")]),
            None
        );
        assert_eq!(v("modvirt_client_limit", &[("server", "admin")]), None);
        assert_eq!(v("modvirt_rpc_inflight_calls", &[]), Some(0.0));
        assert_eq!(v("modvirt_rpc_oldest_inflight_seconds", &[]), Some(0.0));
        assert_eq!(v("modvirt_rpc_waiting_calls", &[("kind", "job-lock")]), Some(0.0));
        assert_eq!(v("modvirt_job_locks_held", &[]), Some(0.0));
        assert_eq!(v("modvirt_job_lock_longest_hold_seconds", &[]), Some(0.0));
        assert_eq!(
            v("modvirt_startup_phase_duration_seconds", &[("phase", "sockets")]),
            None
        );
        assert_eq!(
            v("modvirt_startup_phase_duration_seconds", &[("phase", "config")]),
            Some(0.004)
        );
    }

    #[test]
    fn cpu_counter_never_goes_back() {
        let m = Metrics::new("virtqemud", "0.1.0");
        let mut st = status();
        let cpu =
            |m: &Metrics, st: &DaemonStatus| value(&m.render(st), "modvirt_process_cpu_seconds_total", &[]);
        st.process.cpu_seconds = 5.0;
        assert_eq!(cpu(&m, &st), Some(5.0));
        st.process.cpu_seconds = 3.0;
        assert_eq!(cpu(&m, &st), Some(5.0));
        st.process.cpu_seconds = 7.5;
        assert_eq!(cpu(&m, &st), Some(7.5));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new("virtqemud", "0.1.0");
        let mut st = status();
        st.idle.inhibitors[0].reason = "quote \" back\\slash\nnewline".into();
        let text = m.render(&st);
        assert_eq!(
            value(
                &text,
                "modvirt_idle_inhibitors",
                &[("reason", "quote \" back\\slash\nnewline")]
            ),
            Some(3.0)
        );
    }
}
