//! What `virt-daemons` prints: a [`Snapshot`] of every discovered daemon
//! (with the STATUS of the running ones), and renderers that turn it into
//! text or JSON — [`status`], [`why`], [`boot`], [`hangs`], [`trace`].
//!
//! Renderers are pure (snapshot + clock in, string out) so they can be
//! tested without daemons. Only [`observe_all`] and [`probe_all`] do I/O,
//! and they connect only to daemons discovery found running, in parallel,
//! each bounded by a timeout: N hung daemons cost one timeout, not N.

pub mod boot;
pub mod hangs;
pub mod status;
pub mod trace;
pub mod watch;
pub mod why;

use crate::discover::{DaemonState, Discovery, KnownDaemon};
use crate::observe::{ObserveClient, ObserveError};
use modvirt_wire::observe::{Activation, Cause, DaemonStatus, Process};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a daemon gets to answer before it is shown as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A daemon as discovered, and what it said if it runs.
#[derive(Debug)]
pub struct Observed {
    pub daemon: KnownDaemon,
    /// `None` when it was not asked (not running).
    pub status: Option<Result<DaemonStatus, ObserveError>>,
}

impl Observed {
    pub fn name(&self) -> &str {
        &self.daemon.name
    }

    /// The STATUS it answered, if it did.
    pub fn live(&self) -> Option<&DaemonStatus> {
        self.status.as_ref()?.as_ref().ok()
    }

    pub fn probe_error(&self) -> Option<&ObserveError> {
        self.status.as_ref()?.as_ref().err()
    }

    /// `running`, `running (starting)`, `running (not answering: …)`,
    /// `idle-exited`, `crashed`, …
    pub fn state_label(&self) -> String {
        let base = self.daemon.state.as_str();
        if self.daemon.state != DaemonState::Running {
            return base.to_owned();
        }
        match &self.status {
            Some(Ok(s)) if s.state != "running" => format!("{base} ({})", s.state),
            Some(Ok(_)) => base.to_owned(),
            Some(Err(e)) if e.is_timeout() => format!("{base} (not answering: {e})"),
            Some(Err(e)) => format!("{base} (unobservable: {e})"),
            None => match &self.daemon.detail {
                Some(d) => format!("{base} ({d})"),
                None => base.to_owned(),
            },
        }
    }

    /// The activation of the current run, or else of the last one known.
    pub fn activation(&self) -> Option<&Activation> {
        if let Some(s) = self.live() {
            return Some(&s.activation);
        }
        if let Some(sf) = &self.daemon.state_file {
            return Some(&sf.activation);
        }
        self.daemon.history.last()?.activation.as_ref()
    }
}

/// Everything a report needs.
#[derive(Debug)]
pub struct Snapshot {
    /// Sorted by name.
    pub daemons: Vec<Observed>,
    pub warnings: Vec<String>,
    /// The observer's clock, ms since the epoch.
    pub now_ms: u64,
}

impl Snapshot {
    pub fn find(&self, name: &str) -> Option<&Observed> {
        self.daemons.iter().find(|o| o.name() == name)
    }

    /// The running daemons that answered, with their STATUS.
    pub fn live(&self) -> impl Iterator<Item = (&Observed, &DaemonStatus)> {
        self.daemons.iter().filter_map(|o| Some((o, o.live()?)))
    }
}

/// Asks every running daemon for STATUS (others are not touched); the
/// observer's own traces in it are removed ([`forget_self`]).
pub fn observe_all(discovery: Discovery, timeout: Duration) -> Snapshot {
    let refs: Vec<&KnownDaemon> = discovery.daemons.iter().collect();
    let results = probe_all(&refs, timeout, |c| {
        let mut s = c.status()?;
        forget_self(&mut s, std::process::id() as i32);
        Ok(s)
    });
    let daemons = discovery
        .daemons
        .into_iter()
        .zip(results)
        .map(|(daemon, status)| Observed { daemon, status })
        .collect();
    Snapshot {
        daemons,
        warnings: discovery.warnings,
        now_ms: now_ms(),
    }
}

/// Removes the observer itself from a STATUS: its passive connection and
/// its own OBSERVE call in flight (the STATUS being answered).
pub fn forget_self(s: &mut DaemonStatus, own_pid: i32) {
    s.clients.retain(|c| !(c.passive && c.process.pid == own_pid));
    s.inflight
        .retain(|c| !(c.program == "OBSERVE" && c.client.pid == own_pid));
}

/// A snapshot of what discovery found, asking no daemon anything.
pub fn unobserved(discovery: Discovery) -> Snapshot {
    Snapshot {
        daemons: discovery
            .daemons
            .into_iter()
            .map(|daemon| Observed { daemon, status: None })
            .collect(),
        warnings: discovery.warnings,
        now_ms: now_ms(),
    }
}

/// Runs `ask` on an OBSERVE session with each running daemon, in
/// parallel; `None` for daemons that are not running (never connected to).
pub fn probe_all<T: Send>(
    daemons: &[&KnownDaemon],
    timeout: Duration,
    ask: impl Fn(&mut ObserveClient) -> Result<T, ObserveError> + Sync,
) -> Vec<Option<Result<T, ObserveError>>> {
    let ask = &ask;
    std::thread::scope(|scope| {
        let handles: Vec<_> = daemons
            .iter()
            .map(|&d| {
                d.admin_socket().is_some().then(|| {
                    scope.spawn(move || {
                        let mut client = d.observe(timeout)?;
                        let v = ask(&mut client)?;
                        let _ = client.close();
                        Ok(v)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ObserveError::NotRunning {
                            daemon: "?".into(),
                            state: "probe thread panicked",
                        })
                    })
                })
            })
            .collect()
    })
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `0.3s`, `47s`, `5m12s`, `2h03m`, `3d04h`.
pub fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0);
    if s < 10.0 && s.fract() != 0.0 {
        return format!("{s:.1}s");
    }
    let t = s.round() as u64;
    match t {
        0..60 => format!("{t}s"),
        60..3600 => format!("{}m{:02}s", t / 60, t % 60),
        3600..86400 => format!("{}h{:02}m", t / 3600, t % 3600 / 60),
        _ => format!("{}d{:02}h", t / 86400, t % 86400 / 3600),
    }
}

/// Seconds between two epoch-ms instants (0 if `to` is earlier).
pub fn secs_between(from_ms: u64, to_ms: u64) -> f64 {
    to_ms.saturating_sub(from_ms) as f64 / 1000.0
}

/// `0.4 ms`, `230 ms`, `1.84 s`.
pub fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// `2025-01-02 03:04:05 UTC` (no time zone database needed).
pub fn fmt_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = modvirt_wire::timestamp::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `virsh (pid 123, uid 0)`.
pub fn fmt_process(p: &Process) -> String {
    // A TCP/TLS client has no process the daemon can see (pid -1, uid
    // unknown): its `comm` already names it (`tls <DN> <address>`).
    if p.pid < 0 {
        return p.comm.clone();
    }
    format!("{} (pid {}, uid {})", p.comm, p.pid, p.uid)
}

/// A column value: `socket`, `boot`, `peer:virtqemud`, `manual`.
pub fn cause_short(a: &Activation) -> String {
    match (&a.cause, &a.peer) {
        (Cause::Peer, Some(p)) => format!("peer:{}", p.daemon),
        (c, _) => c.as_str().to_owned(),
    }
}

/// A sentence fragment: `socket activation on virtqemud.socket, first
/// client virsh (pid 123, uid 0)`.
pub fn cause_prose(a: &Activation) -> String {
    let mut s = String::new();
    match a.cause {
        Cause::Boot => s.push_str("started at boot by its enabled service"),
        Cause::Manual => s.push_str("started by hand (no activation)"),
        Cause::Socket => {
            s.push_str("socket activation");
            if let Some(sock) = &a.socket {
                let _ = write!(s, " on {sock}");
            }
            if let Some(c) = &a.client {
                let _ = write!(s, ", first client {}", fmt_process(c));
            }
        }
        Cause::Peer => {
            s.push_str("auto-spawned by a peer daemon");
            if let Some(p) = &a.peer {
                let _ = write!(s, ": {} for {}", p.daemon, p.procedure);
            }
        }
    }
    s
}

/// Lays out rows as left-aligned columns separated by two spaces; the
/// last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, v) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(v);
            } else {
                let _ = write!(line, "{v:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
