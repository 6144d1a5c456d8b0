//! A daemon's Prometheus metrics, served as text by the OBSERVE program's
//! METRICS call (and later combined across daemons by the exporter).
//!
//! Each daemon owns one [`Metrics`] with its own [`Registry`] (no global
//! statics: tests run several daemons in one process). Two kinds of metric:
//!
//! - **events**, counted where they happen: finished RPC calls and their
//!   latency, calls into peer daemons, accepted connections, dropped
//!   observability events. The per-call path ([`Metrics::rpc_finished`])
//!   hashes no label string: handles are cached in a lock-free table per
//!   program, indexed by procedure number, filled on first use.
//! - **state** (daemon, activation, idle timer, clients, workers, in-flight
//!   calls, job locks, start-up phases, process), set from a
//!   [`DaemonStatus`] snapshot when rendering, so a scrape always agrees with
//!   STATUS.
//!
//! Every name is listed by [`Metrics::declared`] and documented in
//! `docs/metrics.md`; tests keep the three in step and run the text through
//! `promtool check metrics`.

mod calls;
#[cfg(test)]
mod fixture;
mod process;
mod state;

pub use process::{cpu_time, process_stats};

use calls::CallMetrics;
use modvirt_wire::observe::DaemonStatus;
use prometheus::core::Collector;
use prometheus::{
    Counter, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use state::StateGauges;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the RPC and peer-call latency histograms, in seconds:
/// 50 µs (a cached lookup) to 60 s (a hung driver).
const DURATION_BUCKETS: [f64; 19] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0,
];

/// Kinds of observability events that can be dropped (see [`Metrics::dropped`]).
const DROP_KINDS: [&str; 4] = ["span", "span-export", "watch", "log"];
/// Drops STATUS reports that were not counted through [`Metrics::dropped`].
const UNATTRIBUTED: &str = "unattributed";

/// Programs with a cached procedure table; calls of further programs take
/// the hashing path (a daemon serves REMOTE, ADMIN and OBSERVE).
const PROGRAM_TABLES: usize = 4;
/// Procedure numbers with a cached slot: REMOTE has 443 in libvirt 9.0.
const PROCEDURE_SLOTS: usize = 512;

/// Every metric [`Metrics`] declares, in the order of `docs/metrics.md`.
static DECLARED: [&str; 33] = [
    "modvirt_rpc_calls_total",
    "modvirt_rpc_duration_seconds",
    "modvirt_peer_calls_total",
    "modvirt_peer_call_duration_seconds",
    "modvirt_client_connections_total",
    "modvirt_observability_dropped_events_total",
    "modvirt_build_info",
    "modvirt_daemon_info",
    "modvirt_daemon_state",
    "modvirt_daemon_start_time_seconds",
    "modvirt_daemon_ready_seconds",
    "modvirt_daemon_activation_info",
    "modvirt_startup_phase_duration_seconds",
    "modvirt_idle_timeout_seconds",
    "modvirt_idle_armed",
    "modvirt_idle_remaining_seconds",
    "modvirt_idle_active_clients",
    "modvirt_idle_inhibitors",
    "modvirt_clients",
    "modvirt_client_limit",
    "modvirt_workers",
    "modvirt_workers_limit",
    "modvirt_worker_queue_depth",
    "modvirt_rpc_inflight_calls",
    "modvirt_rpc_oldest_inflight_seconds",
    "modvirt_rpc_waiting_calls",
    "modvirt_job_locks_held",
    "modvirt_job_lock_longest_hold_seconds",
    "modvirt_job_lock_waiters",
    "modvirt_process_resident_memory_bytes",
    "modvirt_process_cpu_seconds_total",
    "modvirt_process_open_fds",
    "modvirt_process_threads",
];

/// One daemon's metrics, shared by reference (`&self` everywhere). The
/// per-call path takes no lock; [`Metrics::render`] serializes scrapes only.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: CallMetrics,
    peer_calls: IntCounterVec,
    peer_duration: HistogramVec,
    connections: IntCounterVec,
    dropped_vec: IntCounterVec,
    /// `dropped_vec` children of [`DROP_KINDS`], in that order.
    dropped_known: [IntCounter; DROP_KINDS.len()],
    dropped_unattributed: IntCounter,
    /// Everything counted through [`Metrics::dropped`].
    dropped_reported: AtomicU64,
    state: StateGauges,
    /// Held from refreshing the state gauges to encoding them.
    scrape: Mutex<()>,
}

impl Metrics {
    /// A fresh registry with every metric of one daemon. `daemon` and
    /// `version` describe the binary (`modvirt_build_info`); the state
    /// gauges take theirs from each rendered snapshot.
    pub fn new(daemon: &str, version: &str) -> Metrics {
        let r = Registry::new();
        let dropped_vec = int_counter_vec(
            &r,
            "modvirt_observability_dropped_events_total",
            "Observability events dropped because a buffer was full, by kind (span, span-export, watch, log; unattributed: counted by STATUS only).",
            &["kind"],
        );
        let build_info = int_gauge_vec(
            &r,
            "modvirt_build_info",
            "Always 1: the daemon binary and its version.",
            &["daemon", "version"],
        );
        build_info.with_label_values(&[daemon, version]).set(1);
        Metrics {
            calls: register(&r, CallMetrics::new()),
            peer_calls: int_counter_vec(
                &r,
                "modvirt_peer_calls_total",
                "Calls this daemon made into peer daemons, by peer, procedure and result (ok, error).",
                &["peer", "procedure", "result"],
            ),
            peer_duration: histogram_vec(
                &r,
                "modvirt_peer_call_duration_seconds",
                "Duration of calls into peer daemons, from send to reply, by peer and procedure.",
                &["peer", "procedure"],
            ),
            connections: int_counter_vec(
                &r,
                "modvirt_client_connections_total",
                "Client connections accepted, by server and socket (rw, ro, admin).",
                &["server", "socket"],
            ),
            // Known kinds exist from the start, at 0, so rate() sees the first drop.
            dropped_known: DROP_KINDS.map(|kind| dropped_vec.with_label_values(&[kind])),
            dropped_unattributed: dropped_vec.with_label_values(&[UNATTRIBUTED]),
            dropped_vec,
            dropped_reported: AtomicU64::new(0),
            state: StateGauges::new(&r),
            scrape: Mutex::new(()),
            registry: r,
        }
    }

    /// A call finished: counts `modvirt_rpc_calls_total{program,procedure,result="ok"|"error"}`
    /// and observes `modvirt_rpc_duration_seconds{program,procedure}`.
    ///
    /// Lock-free and hash-free once the procedure has been seen (two atomic
    /// adds and a histogram observation).
    pub fn rpc_finished(
        &self,
        program: &'static str,
        procedure_number: i32,
        procedure: &'static str,
        ok: bool,
        duration: Duration,
    ) {
        self.calls
            .record(program, procedure_number, procedure, ok, duration);
    }

    /// A call into a peer daemon finished: `modvirt_peer_calls_total{peer,procedure,result}`
    /// and `modvirt_peer_call_duration_seconds{peer,procedure}`.
    pub fn peer_call_finished(&self, peer: &str, procedure: &str, ok: bool, duration: Duration) {
        self.peer_calls
            .with_label_values(&[peer, procedure, result(ok)])
            .inc();
        self.peer_duration
            .with_label_values(&[peer, procedure])
            .observe(duration.as_secs_f64());
    }

    /// An observability event was dropped (buffer full):
    /// `modvirt_observability_dropped_events_total{kind}` (kinds: "span",
    /// "span-export", "watch", "log").
    pub fn dropped(&self, kind: &'static str, n: u64) {
        match DROP_KINDS.iter().position(|k| *k == kind) {
            Some(i) => self.dropped_known[i].inc_by(n),
            None => self.dropped_vec.with_label_values(&[kind]).inc_by(n),
        }
        self.dropped_reported.fetch_add(n, Ordering::Relaxed);
    }

    /// Everything counted through [`Metrics::dropped`] so far: the value for
    /// `DaemonStatus::dropped_events`, so STATUS and the metric agree (see
    /// [`Metrics::render`]).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_reported.load(Ordering::Relaxed)
    }

    /// Connections accepted, by server and socket: `modvirt_client_connections_total{server,socket}`.
    pub fn client_connected(&self, server: &str, socket: &str) {
        self.connections.with_label_values(&[server, socket]).inc();
    }

    /// Renders the text exposition after refreshing every state gauge from `status`.
    ///
    /// `status.dropped_events` beyond what [`Metrics::dropped`] counted
    /// (drops the runtime counted without telling this type) is added to
    /// `modvirt_observability_dropped_events_total{kind="unattributed"}`;
    /// fill it from [`Metrics::dropped_total`] and that series stays 0.
    pub fn render(&self, status: &DaemonStatus) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.state.refresh(status);
        let counted = self
            .dropped_total()
            .saturating_add(self.dropped_unattributed.get());
        self.dropped_unattributed
            .inc_by(status.dropped_events.saturating_sub(counted));
        let families = self.registry.gather();
        TextEncoder::new()
            .encode_to_string(&families)
            // Only invalid names fail, and the tests render every metric.
            .unwrap_or_else(|e| format!("# modvirt: cannot encode metrics: {e}\n"))
    }

    /// The names of every metric this type declares (for docs and tests).
    pub fn declared() -> &'static [&'static str] {
        &DECLARED
    }
}

fn result(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}

// Constructors. Names and help texts are static and unique, so registering
// cannot fail; the tests register and render every one of them.

fn register<C: Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("static metric definitions are valid and unique");
    c
}

fn int_counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn counter(r: &Registry, name: &str, help: &str) -> Counter {
    register(
        r,
        Counter::with_opts(Opts::new(name, help)).expect("valid metric"),
    )
}

fn int_gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    register(
        r,
        IntGauge::with_opts(Opts::new(name, help)).expect("valid metric"),
    )
}

fn int_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        r,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn gauge(r: &Registry, name: &str, help: &str) -> Gauge {
    register(r, Gauge::with_opts(Opts::new(name, help)).expect("valid metric"))
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    register(
        r,
        GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec());
    register(r, HistogramVec::new(opts, labels).expect("valid metric"))
}

#[cfg(test)]
mod tests {
    use super::fixture::{family, samples, status, value};
    use super::*;
    use std::collections::BTreeSet;

    /// Calls every event method at least once.
    fn exercise(m: &Metrics) {
        let ms = Duration::from_millis;
        m.rpc_finished("REMOTE", 1, "CONNECT_OPEN", true, ms(1));
        m.rpc_finished("REMOTE", 1, "CONNECT_OPEN", false, ms(3));
        m.rpc_finished("OBSERVE", 3, "STATUS", true, ms(2));
        m.peer_call_finished("virtnetworkd", "NETWORK_LOOKUP_BY_NAME", true, ms(5));
        m.peer_call_finished("virtnetworkd", "NETWORK_LOOKUP_BY_NAME", false, ms(30_000));
        m.dropped("span", 2);
        m.client_connected("virtqemud", "rw");
        m.client_connected("admin", "admin");
    }

    #[test]
    fn every_declared_metric_is_rendered_and_nothing_else() {
        let m = Metrics::new("virtqemud", "0.1.0");
        exercise(&m);
        let text = m.render(&status());
        let rendered: BTreeSet<String> = samples(&text)
            .into_iter()
            .map(|(name, _, _)| family(&name).to_owned())
            .collect();
        let declared: BTreeSet<String> = Metrics::declared().iter().map(|s| s.to_string()).collect();
        let never: Vec<_> = declared.difference(&rendered).collect();
        assert!(never.is_empty(), "declared but never updated: {never:?}\n{text}");
        let undeclared: Vec<_> = rendered.difference(&declared).collect();
        assert!(undeclared.is_empty(), "rendered but not declared: {undeclared:?}");
        assert_eq!(declared.len(), Metrics::declared().len(), "declared twice");
        for name in Metrics::declared() {
            assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP");
        }
    }

    #[test]
    fn calls_are_counted_per_result_with_latency() {
        let m = Metrics::new("virtqemud", "0.1.0");
        for _ in 0..3 {
            m.rpc_finished("REMOTE", 1, "CONNECT_OPEN", true, Duration::from_micros(200));
        }
        m.rpc_finished("REMOTE", 1, "CONNECT_OPEN", false, Duration::from_millis(40));
        m.rpc_finished("ADMIN", 1, "CONNECT_OPEN", true, Duration::from_secs(2));
        let text = m.render(&status());
        let open = [("program", "REMOTE"), ("procedure", "CONNECT_OPEN")];
        let with = |result| [open[0], open[1], ("result", result)];
        assert_eq!(value(&text, "modvirt_rpc_calls_total", &with("ok")), Some(3.0));
        assert_eq!(value(&text, "modvirt_rpc_calls_total", &with("error")), Some(1.0));
        assert_eq!(
            value(&text, "modvirt_rpc_duration_seconds_count", &open),
            Some(4.0)
        );
        let sum = value(&text, "modvirt_rpc_duration_seconds_sum", &open).unwrap();
        assert!((sum - 0.0406).abs() < 1e-9, "{sum}");
        let le = |b| [open[0], open[1], ("le", b)];
        assert_eq!(
            value(&text, "modvirt_rpc_duration_seconds_bucket", &le("0.0001")),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "modvirt_rpc_duration_seconds_bucket", &le("0.00025")),
            Some(3.0)
        );
        assert_eq!(
            value(&text, "modvirt_rpc_duration_seconds_bucket", &le("0.05")),
            Some(4.0)
        );
        assert_eq!(
            value(&text, "modvirt_rpc_duration_seconds_bucket", &le("+Inf")),
            Some(4.0)
        );
        // Same procedure name in another program: its own series.
        let admin = [
            ("program", "ADMIN"),
            ("procedure", "CONNECT_OPEN"),
            ("result", "ok"),
        ];
        assert_eq!(value(&text, "modvirt_rpc_calls_total", &admin), Some(1.0));
    }

    #[test]
    fn calls_outside_the_cache_are_counted_too() {
        let m = Metrics::new("virtqemud", "0.1.0");
        let d = Duration::from_millis(1);
        m.rpc_finished("REMOTE", -1, "BAD", true, d);
        m.rpc_finished("REMOTE", PROCEDURE_SLOTS as i32 + 7, "FUTURE", true, d);
        m.rpc_finished("REMOTE", 5, "FIRST_NAME", true, d);
        m.rpc_finished("REMOTE", 5, "OTHER_NAME", false, d);
        for p in ["P1", "P2", "P3", "P4", "P5", "P6"] {
            m.rpc_finished(p, 1, "X", true, d);
            m.rpc_finished(p, 1, "X", true, d);
        }
        let text = m.render(&status());
        let calls = |program, procedure, result| {
            value(
                &text,
                "modvirt_rpc_calls_total",
                &[("program", program), ("procedure", procedure), ("result", result)],
            )
        };
        assert_eq!(calls("REMOTE", "BAD", "ok"), Some(1.0));
        assert_eq!(calls("REMOTE", "FUTURE", "ok"), Some(1.0));
        assert_eq!(calls("REMOTE", "FIRST_NAME", "ok"), Some(1.0));
        assert_eq!(calls("REMOTE", "OTHER_NAME", "error"), Some(1.0));
        for p in ["P1", "P2", "P3", "P4", "P5", "P6"] {
            assert_eq!(calls(p, "X", "ok"), Some(2.0), "{p}");
        }
    }

    #[test]
    fn concurrent_calls_lose_no_count_and_daemons_do_not_share() {
        let a = Metrics::new("virtqemud", "0.1.0");
        let b = Metrics::new("virtnetworkd", "0.1.0");
        std::thread::scope(|s| {
            for t in 0..4 {
                let a = &a;
                s.spawn(move || {
                    for i in 0..10_000 {
                        let ok = (i + t) % 2 == 0;
                        a.rpc_finished(
                            "REMOTE",
                            1 + i % 3,
                            ["A", "B", "C"][i as usize % 3],
                            ok,
                            Duration::ZERO,
                        );
                    }
                });
            }
        });
        b.rpc_finished("REMOTE", 1, "A", true, Duration::ZERO);
        let text = a.render(&status());
        let total: f64 = samples(&text)
            .iter()
            .filter(|(n, _, _)| n == "modvirt_rpc_calls_total")
            .map(|(_, _, v)| v)
            .sum();
        assert_eq!(total, 40_000.0);
        let other = b.render(&status());
        let a_ok = [("program", "REMOTE"), ("procedure", "A"), ("result", "ok")];
        assert_eq!(value(&other, "modvirt_rpc_calls_total", &a_ok), Some(1.0));
    }

    #[test]
    fn peer_calls_connections_and_drops() {
        let m = Metrics::new("virtqemud", "0.1.0");
        exercise(&m);
        m.dropped("watch", 1);
        m.dropped("future-kind", 4);
        m.client_connected("virtqemud", "rw");
        let mut st = status();
        st.dropped_events = m.dropped_total();
        let text = m.render(&st);
        let peer = [("peer", "virtnetworkd"), ("procedure", "NETWORK_LOOKUP_BY_NAME")];
        let result = |r| [peer[0], peer[1], ("result", r)];
        assert_eq!(value(&text, "modvirt_peer_calls_total", &result("ok")), Some(1.0));
        assert_eq!(
            value(&text, "modvirt_peer_calls_total", &result("error")),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "modvirt_peer_call_duration_seconds_count", &peer),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "modvirt_peer_call_duration_seconds_sum", &peer),
            Some(30.005)
        );
        let rw = [("server", "virtqemud"), ("socket", "rw")];
        assert_eq!(value(&text, "modvirt_client_connections_total", &rw), Some(2.0));
        let dropped = |kind| {
            value(
                &text,
                "modvirt_observability_dropped_events_total",
                &[("kind", kind)],
            )
        };
        assert_eq!(dropped("span"), Some(2.0));
        assert_eq!(dropped("watch"), Some(1.0));
        assert_eq!(dropped("future-kind"), Some(4.0));
        // Known kinds are exported from the start.
        assert_eq!(dropped("log"), Some(0.0));
        assert_eq!(dropped("span-export"), Some(0.0));
        // STATUS agrees with what was reported: nothing unattributed.
        assert_eq!(m.dropped_total(), 7);
        assert_eq!(dropped(UNATTRIBUTED), Some(0.0));
    }

    #[test]
    fn drops_only_status_knows_are_unattributed_once() {
        let m = Metrics::new("virtqemud", "0.1.0");
        m.dropped("span", 3);
        let mut st = status();
        st.dropped_events = 10;
        let unattributed = |text: &str| {
            value(
                text,
                "modvirt_observability_dropped_events_total",
                &[("kind", UNATTRIBUTED)],
            )
        };
        assert_eq!(unattributed(&m.render(&st)), Some(7.0));
        assert_eq!(unattributed(&m.render(&st)), Some(7.0), "counted twice");
        // Reported later through dropped(): not counted again.
        m.dropped("log", 2);
        st.dropped_events = 12;
        assert_eq!(unattributed(&m.render(&st)), Some(7.0));
        st.dropped_events = 15;
        assert_eq!(unattributed(&m.render(&st)), Some(10.0));
    }

    #[test]
    fn promtool_accepts_the_exposition() {
        let promtool = "/usr/bin/promtool";
        assert!(
            std::path::Path::new(promtool).exists(),
            "{promtool} is missing: install Debian's `prometheus` package (scripts/install-deps.sh)"
        );
        let m = Metrics::new("virtqemud", "0.1.0");
        exercise(&m);
        m.dropped("future-kind", 1);
        let mut st = status();
        st.dropped_events = 9;
        st.idle.inhibitors[0].reason = "quote \" back\\slash\nnewline".into();
        for text in [
            m.render(&st),
            m.render(&st),
            Metrics::new("x", "y").render(&status()),
        ] {
            let mut child = std::process::Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && said.trim().is_empty(),
                "promtool: {:?}\n{said}\n{text}",
                out.status
            );
        }
    }

    #[test]
    fn docs_list_exactly_the_declared_metrics() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md");
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(name, _)| name))
            .filter(|name| name.starts_with("modvirt_"))
            .collect();
        let documented_set: BTreeSet<&str> = documented.iter().copied().collect();
        assert_eq!(
            documented_set.len(),
            documented.len(),
            "a metric is documented twice"
        );
        let declared: BTreeSet<&str> = Metrics::declared().iter().copied().collect();
        let missing: Vec<_> = declared.difference(&documented_set).collect();
        let extra: Vec<_> = documented_set.difference(&declared).collect();
        assert!(
            missing.is_empty(),
            "declared but not in docs/metrics.md: {missing:?}"
        );
        assert!(extra.is_empty(), "in docs/metrics.md but not declared: {extra:?}");
        assert_eq!(
            documented,
            Metrics::declared(),
            "docs/metrics.md lists them in another order"
        );
    }

    /// `cargo test --release -p modvirt-runtime --lib observe::metrics -- --ignored --nocapture`
    #[test]
    #[ignore = "timing: run by hand in release mode"]
    fn cost_of_rpc_finished() {
        let m = Metrics::new("virtqemud", "0.1.0");
        let names = ["A", "B", "C", "D", "E", "F", "G", "H"];
        let n = 5_000_000u32;
        for (i, name) in names.iter().enumerate() {
            m.rpc_finished("REMOTE", i as i32 + 1, name, true, Duration::from_micros(300));
        }
        let start = std::time::Instant::now();
        for i in 0..n {
            let p = (i % 8) as usize;
            m.rpc_finished(
                "REMOTE",
                p as i32 + 1,
                names[p],
                i % 16 != 0,
                Duration::from_micros(u64::from(i % 5000)),
            );
        }
        let per_call = start.elapsed().as_nanos() as f64 / f64::from(n);
        let start = std::time::Instant::now();
        for i in 0..n / 10 {
            m.peer_call_finished(
                "virtnetworkd",
                "NETWORK_LOOKUP_BY_NAME",
                true,
                Duration::from_micros(u64::from(i % 5000)),
            );
        }
        let per_peer = start.elapsed().as_nanos() as f64 / f64::from(n / 10);
        println!("rpc_finished: {per_call:.1} ns/call; peer_call_finished: {per_peer:.1} ns/call");
    }
}
