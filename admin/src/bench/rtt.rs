//! Round trips per second: `N` connections, one thread each, every thread
//! calling REMOTE `CONNECT_GET_LIB_VERSION` (proc 157: a 28-byte `CALL`
//! with no arguments, a 36-byte `REPLY` carrying a `u64`) back to back.
//!
//! Every connection is set up before the clock starts: against a daemon it
//! does `remote_open(uri)` (libvirtd refuses calls on a connection that is
//! not open); against the echo server ([`Mode::Raw`]) it only connects. The
//! threads then start together, run a warm-up, and count the calls that
//! complete inside the measuring window; each call's latency is kept (as
//! nanoseconds) for percentiles.
//!
//! With a fixed call count ([`RttConfig::calls`]) there is no warm-up and no
//! window: every connection makes its share of the calls and the run lasts
//! until the last one is done. Every call the daemon served is then counted,
//! so its CPU time over the run divides exactly by the work done.

use super::Summary;
use crate::client::{Client, ClientError};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use thiserror::Error;

/// What to do on a connection before measuring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A libvirt daemon: `AUTH_LIST`, `SUPPORTS_FEATURE 10`, `CONNECT_OPEN(uri)`.
    Remote { uri: String },
    /// The echo server: no handshake.
    Raw,
}

#[derive(Debug, Clone)]
pub struct RttConfig {
    pub socket: PathBuf,
    pub conns: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Make exactly this many calls in all (split evenly across the
    /// connections) instead of calling for `warmup + duration`.
    pub calls: Option<u64>,
    pub mode: Mode,
    /// Per-call I/O timeout, so a hung daemon fails the run instead of hanging it.
    pub call_timeout: Duration,
}

#[derive(Debug, Error)]
pub enum RttError {
    #[error("connection {conn}: setting up: {source}")]
    Setup { conn: usize, source: ClientError },
    #[error("connection {conn}: call failed after {calls} calls: {source}")]
    Call {
        conn: usize,
        calls: u64,
        source: ClientError,
    },
    #[error("cannot start a client thread: {0}")]
    Spawn(std::io::Error),
    #[error("a client thread panicked")]
    Panicked,
    #[error("no call completed inside the measuring window")]
    NoCalls,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RttReport {
    pub conns: usize,
    /// Calls completed inside the window, all connections together.
    pub calls: u64,
    pub window: Duration,
    pub calls_per_sec: f64,
    /// Wall time per call across all connections (1e6 / calls_per_sec).
    pub us_per_call: f64,
    /// Latency of one call as a client sees it, in µs.
    pub latency_us: Latency,
    /// Calls per second of the slowest and fastest connection.
    pub per_conn: Summary,
}

/// Latency percentiles in µs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Percentiles of latencies in ns (reordered in place); `None` when empty.
    pub fn of(ns: &mut [u32]) -> Option<Latency> {
        ns.sort_unstable();
        let last = ns.len().checked_sub(1)?;
        let at = |q: f64| f64::from(ns[((last as f64) * q).round() as usize]) / 1e3;
        Some(Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// Connects one client, opens it as the mode says, and checks one call.
fn setup(cfg: &RttConfig) -> Result<Client, ClientError> {
    let mut c = Client::connect(&cfg.socket)?;
    c.set_timeout(Some(cfg.call_timeout))?;
    if let Mode::Remote { uri } = &cfg.mode {
        c.remote_open(uri)?;
    }
    c.remote_lib_version()?;
    Ok(c)
}

/// Connects and prepares every connection, then measures.
pub fn run(cfg: &RttConfig) -> Result<RttReport, RttError> {
    let conns = cfg.conns.max(1);
    let mut clients = Vec::with_capacity(conns);
    for conn in 0..conns {
        clients.push(setup(cfg).map_err(|source| RttError::Setup { conn, source })?);
    }
    let close = matches!(cfg.mode, Mode::Remote { .. });

    let barrier = Arc::new(Barrier::new(conns));
    let mut handles = Vec::with_capacity(conns);
    for (conn, client) in clients.into_iter().enumerate() {
        let barrier = Arc::clone(&barrier);
        let budget = match cfg.calls {
            // The first `total % conns` connections make one call more.
            Some(total) => {
                let (each, extra) = (total / conns as u64, total % conns as u64);
                Budget::Count(each + u64::from((conn as u64) < extra))
            }
            None => Budget::Window {
                warmup: cfg.warmup,
                duration: cfg.duration,
            },
        };
        let handle = thread::Builder::new()
            .name(format!("rtt-{conn}"))
            .spawn(move || measure(conn, client, &barrier, budget, close))
            .map_err(RttError::Spawn)?;
        handles.push(handle);
    }

    let mut latencies = Vec::new();
    let mut rates = Vec::with_capacity(conns);
    let mut calls = 0u64;
    let mut window = Duration::ZERO;
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok((lat, took))) => {
                calls += lat.len() as u64;
                rates.push(lat.len() as f64 / took.as_secs_f64().max(1e-9));
                window = window.max(took);
                latencies.extend(lat);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(RttError::Panicked);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let latency_us = Latency::of(&mut latencies).ok_or(RttError::NoCalls)?;
    let per_conn = Summary::of(&mut rates).ok_or(RttError::NoCalls)?;
    let calls_per_sec = calls as f64 / window.as_secs_f64().max(1e-9);
    Ok(RttReport {
        conns,
        calls,
        window,
        calls_per_sec,
        us_per_call: 1e6 / calls_per_sec,
        latency_us,
        per_conn,
    })
}

/// How long one connection keeps calling.
#[derive(Debug, Clone, Copy)]
enum Budget {
    /// Call for `warmup`, then count the calls completed within `duration`.
    Window { warmup: Duration, duration: Duration },
    /// Make exactly this many calls, all counted.
    Count(u64),
}

/// One connection's loop; returns the latency (ns) of every counted call and
/// the time over which they were counted.
fn measure(
    conn: usize,
    mut client: Client,
    barrier: &Barrier,
    budget: Budget,
    close: bool,
) -> Result<(Vec<u32>, Duration), RttError> {
    let mut lat = Vec::with_capacity(1 << 16);
    barrier.wait();
    let t0 = Instant::now();
    let (from, until, limit) = match budget {
        Budget::Window { warmup, duration } => (t0 + warmup, Some(t0 + warmup + duration), None),
        Budget::Count(n) => (t0, None, Some(n)),
    };
    let mut calls = 0u64;
    let mut before = t0;
    while limit.is_none_or(|n| calls < n) {
        client
            .remote_lib_version()
            .map_err(|source| RttError::Call { conn, calls, source })?;
        calls += 1;
        let after = Instant::now();
        if until.is_some_and(|u| after >= u) {
            break;
        }
        if after >= from {
            let ns = after.duration_since(before).as_nanos();
            lat.push(u32::try_from(ns).unwrap_or(u32::MAX));
        }
        before = after;
    }
    let took = match budget {
        Budget::Window { duration, .. } => duration,
        Budget::Count(_) => t0.elapsed(),
    };
    if close {
        // Leave politely, as virsh does; a failure here does not spoil the numbers.
        let _ = client.remote_close();
    }
    Ok((lat, took))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::echo::EchoServer;

    #[test]
    fn latency_percentiles() {
        let mut ns: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        let l = Latency::of(&mut ns).unwrap();
        assert_eq!((l.p50, l.p99, l.max), (51.0, 99.0, 100.0));
        assert!(Latency::of(&mut []).is_none());
    }

    #[test]
    fn measures_the_echo_server() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("echo.sock");
        let server = EchoServer::bind(&socket).unwrap();
        thread::spawn(move || server.run());
        let report = run(&RttConfig {
            socket,
            conns: 2,
            warmup: Duration::from_millis(20),
            duration: Duration::from_millis(100),
            calls: None,
            mode: Mode::Raw,
            call_timeout: Duration::from_secs(5),
        })
        .unwrap();
        assert_eq!(report.conns, 2);
        assert!(report.calls > 10, "{report:?}");
        assert!(report.latency_us.p50 > 0.0);
    }

    #[test]
    fn a_fixed_call_count_is_split_across_connections_and_all_counted() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("echo.sock");
        let server = EchoServer::bind(&socket).unwrap();
        thread::spawn(move || server.run());
        let report = run(&RttConfig {
            socket,
            conns: 3,
            warmup: Duration::from_secs(60),
            duration: Duration::from_secs(60),
            calls: Some(1_001),
            mode: Mode::Raw,
            call_timeout: Duration::from_secs(5),
        })
        .unwrap();
        assert_eq!(report.calls, 1_001, "{report:?}");
        assert!(report.window < Duration::from_secs(60), "{report:?}");
        // 334 + 334 + 333 calls, every connection made its share.
        assert!(report.per_conn.min > 0.0 && report.per_conn.max > 0.0);
    }

    #[test]
    fn setup_failure_names_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let e = run(&RttConfig {
            socket: dir.path().join("missing.sock"),
            conns: 1,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(1),
            calls: None,
            mode: Mode::Raw,
            call_timeout: Duration::from_secs(1),
        })
        .unwrap_err();
        assert!(matches!(e, RttError::Setup { conn: 0, .. }), "{e}");
    }
}
