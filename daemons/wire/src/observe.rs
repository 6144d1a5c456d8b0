//! The OBSERVE program: modvirt's observability extension on every daemon's
//! admin socket, beside libvirt's ADMIN program (which stays intact).
//!
//! Calls carry small XDR arguments; documents travel as one XDR string of
//! JSON, whose shape is the versioned schema below (`schema` = [`SCHEMA`]).
//! Both ends use these types. A reader must ignore fields it does not know
//! (serde's default), so the schema can grow without a new version; a change
//! that breaks readers bumps [`SCHEMA`].
//!
//! | # | procedure | args | reply |
//! |---|---|---|---|
//! | 1 | OPEN | flags | – |
//! | 2 | CLOSE | – | – |
//! | 3 | STATUS | flags | JSON [`DaemonStatus`] |
//! | 4 | METRICS | flags | Prometheus text exposition |
//! | 5 | SPANS | cursor u64, max u32 | JSON [`SpansPage`] |
//! | 6 | WATCH | interval_ms u32 | – ; then MESSAGE frames of proc 7 |
//! | 7 | WATCH_EVENT | (server → client MESSAGE) | JSON [`WatchEvent`] |
//! | 8 | UNWATCH | – | – |
//! | 9 | CALL_CONTEXT | (client → server MESSAGE, any modvirt socket) [`CallContextMsg`] | none |
//!
//! CALL_CONTEXT is how a modvirt daemon calling a peer daemon passes the
//! context of its own call: it is sent as a MESSAGE immediately before the
//! CALL it describes, on the same connection, and applies to that call
//! only (W3C `traceparent`, caller daemon and caller call id).
//! Connections that only use this program are *passive*: they do not keep
//! the daemon alive and do not restart its idle countdown.
//!
//! WATCH streams a [`WatchEvent::Full`] at once — it may reach the client
//! before the WATCH reply, and clients keep it — then, every `interval_ms`,
//! [`WatchEvent::Changes`] with the top-level fields that changed, but only
//! when something other than time-derived values (ages, countdowns,
//! `now_ms`, process samples) changed, or at least every 5 s. Time-derived
//! values are exact at `times.now_ms`; clients extrapolate in between.

use crate::program::{Driver, Priority, ProcKind, Procedure, Program};
use crate::xdr_struct;
use serde::{Deserialize, Serialize};

/// `"MVOB"`.
pub const OBSERVE_PROGRAM: u32 = 0x4d56_4f42;
pub const OBSERVE_VERSION: u32 = 1;
/// Version of the JSON documents.
pub const SCHEMA: u32 = 1;

pub mod procs {
    pub const OPEN: i32 = 1;
    pub const CLOSE: i32 = 2;
    pub const STATUS: i32 = 3;
    pub const METRICS: i32 = 4;
    pub const SPANS: i32 = 5;
    pub const WATCH: i32 = 6;
    pub const WATCH_EVENT: i32 = 7;
    pub const UNWATCH: i32 = 8;
    pub const CALL_CONTEXT: i32 = 9;
}

const fn row(number: i32, name: &'static str, kind: ProcKind) -> Procedure {
    Procedure {
        number,
        name,
        readonly_ok: true,
        priority: Priority::High,
        driver: Driver::Admin,
        kind,
    }
}

/// Observability calls are all reads, and high priority: they must answer
/// when every normal worker is stuck — that is when they are needed.
pub static OBSERVE_PROCEDURES: &[Procedure] = &[
    row(procs::OPEN, "OPEN", ProcKind::Call),
    row(procs::CLOSE, "CLOSE", ProcKind::Call),
    row(procs::STATUS, "STATUS", ProcKind::Call),
    row(procs::METRICS, "METRICS", ProcKind::Call),
    row(procs::SPANS, "SPANS", ProcKind::Call),
    row(procs::WATCH, "WATCH", ProcKind::Call),
    row(procs::WATCH_EVENT, "WATCH_EVENT", ProcKind::Event),
    row(procs::UNWATCH, "UNWATCH", ProcKind::Call),
    row(procs::CALL_CONTEXT, "CALL_CONTEXT", ProcKind::Event),
];

pub static OBSERVE: Program = Program {
    id: OBSERVE_PROGRAM,
    version: OBSERVE_VERSION,
    name: "OBSERVE",
    procedures: OBSERVE_PROCEDURES,
};

xdr_struct! {
    /// Arguments of OPEN, STATUS and METRICS.
    pub struct FlagsArgs {
        pub flags: u32,
    }
}

xdr_struct! {
    /// A JSON or text document (STATUS, METRICS, SPANS replies, WATCH_EVENT).
    pub struct Document {
        pub text: String,
    }
}

xdr_struct! {
    pub struct SpansArgs {
        pub cursor: u64,
        pub max: u32,
    }
}

xdr_struct! {
    /// CALL_CONTEXT: the caller's side of a call between modvirt daemons.
    pub struct CallContextMsg {
        /// W3C `traceparent` of the caller's client span ("" if none).
        pub traceparent: String,
        pub caller_daemon: String,
        pub caller_call: u64,
    }
}

xdr_struct! {
    pub struct WatchArgs {
        pub interval_ms: u32,
    }
}

/// Why this run of a daemon started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// Started by its enabled service with no pending connection.
    Boot,
    /// Started by systemd because a client connected to one of its sockets.
    Socket,
    /// Auto-spawned by another modvirt daemon.
    Peer,
    /// Started by hand, without activation.
    Manual,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boot => "boot",
            Self::Socket => "socket",
            Self::Peer => "peer",
            Self::Manual => "manual",
        }
    }
}

/// A process on the other end of a UNIX socket (`SO_PEERCRED` + `/proc/PID/comm`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: i32,
    pub uid: u32,
    pub comm: String,
}

/// The peer daemon that spawned this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSpawn {
    pub daemon: String,
    pub procedure: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    pub cause: Cause,
    /// The activation socket that had the first pending connection
    /// (`virtqemud.socket`, …), for `socket`.
    #[serde(default)]
    pub socket: Option<String>,
    /// The first client on that socket, for `socket`.
    #[serde(default)]
    pub client: Option<Process>,
    /// For `peer`.
    #[serde(default)]
    pub peer: Option<PeerSpawn>,
}

/// When things happened, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Times {
    pub exec_ms: u64,
    #[serde(default)]
    pub ready_ms: Option<u64>,
    #[serde(default)]
    pub first_client_ms: Option<u64>,
    pub now_ms: u64,
}

/// What holds the idle timer, grouped by reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inhibitor {
    pub reason: String,
    pub count: u32,
    /// The oldest of them, ms since the epoch.
    pub since_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Idle {
    /// 0 = the daemon never exits when idle.
    pub timeout_s: u32,
    /// True while the countdown runs (no clients, no inhibitor, timeout > 0).
    pub armed: bool,
    #[serde(default)]
    pub remaining_s: Option<f64>,
    /// Clients that keep the daemon alive (passive observers excluded).
    pub active_clients: u32,
    pub inhibitors: Vec<Inhibitor>,
}

/// A connected client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub server: String,
    pub id: u64,
    /// `rw`, `ro` or `admin`.
    pub socket: String,
    pub process: Process,
    pub connected_ms: u64,
    /// Only reads observability data: does not keep the daemon alive.
    pub passive: bool,
}

/// A reference to a client from a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRef {
    pub server: String,
    pub id: u64,
    pub pid: i32,
    pub comm: String,
}

/// What an in-flight call is waiting on right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WaitOn {
    /// A job lock on an object, held by another call.
    JobLock {
        object: String,
        holder_call: u64,
        holder_procedure: String,
        held_s: f64,
    },
    /// An external process, e.g. `qmp reply from qemu pid 1234`.
    Process {
        description: String,
        #[serde(default)]
        pid: Option<i32>,
    },
    /// A call into a peer daemon.
    Peer {
        daemon: String,
        procedure: String,
        serial: u32,
        /// The call's id in the peer daemon, once known.
        #[serde(default)]
        peer_call: Option<u64>,
    },
    /// Anything else (e.g. `enumeration`).
    Other { description: String },
}

/// The caller of a call that came from a peer daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerLink {
    pub daemon: String,
    pub call: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InflightCall {
    /// Daemon-unique call id.
    pub id: u64,
    pub program: String,
    pub procedure: String,
    pub serial: u32,
    pub client: ClientRef,
    pub started_ms: u64,
    pub age_s: f64,
    #[serde(default)]
    pub waiting_on: Option<WaitOn>,
    /// W3C trace id (32 hex digits).
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Set when a peer daemon made this call on behalf of one of its calls.
    #[serde(default)]
    pub caller: Option<CallerLink>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobLock {
    pub object: String,
    pub holder_call: u64,
    pub holder_procedure: String,
    pub since_ms: u64,
    pub held_s: f64,
    /// Ids of the calls waiting for it, oldest first.
    pub waiters: Vec<u64>,
}

/// One start-up phase; children are its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    /// Start, in ms after exec.
    pub start_ms: f64,
    /// `None` while the phase runs.
    #[serde(default)]
    pub duration_ms: Option<f64>,
    /// E.g. `enumerate 412 devices`.
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub children: Vec<Phase>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workers {
    pub min: u32,
    pub max: u32,
    pub total: u32,
    pub free: u32,
    pub priority: u32,
    pub queue_depth: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub name: String,
    pub workers: Workers,
    pub clients: u32,
    pub max_clients: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: u32,
    pub threads: u32,
}

/// Everything a daemon says about itself (STATUS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub schema: u32,
    pub name: String,
    pub version: String,
    pub pid: i32,
    /// `starting`, `running` or `stopping`.
    pub state: String,
    pub activation: Activation,
    pub times: Times,
    pub idle: Idle,
    pub servers: Vec<Server>,
    pub clients: Vec<Client>,
    pub inflight: Vec<InflightCall>,
    pub job_locks: Vec<JobLock>,
    pub phases: Vec<Phase>,
    pub process: ProcessStats,
    /// Observability events dropped because a buffer was full.
    pub dropped_events: u64,
}

/// One finished span from the daemon's ring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Position in the ring's sequence (for SPANS cursors).
    pub seq: u64,
    pub trace_id: String,
    pub span_id: String,
    #[serde(default)]
    pub parent_span_id: Option<String>,
    pub name: String,
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    #[serde(default)]
    pub attributes: Vec<(String, String)>,
    /// `ok` or `error`.
    pub status: String,
}

/// A SPANS reply: spans with `seq >= cursor`, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpansPage {
    pub schema: u32,
    pub spans: Vec<Span>,
    /// Pass this as the next cursor.
    pub next_cursor: u64,
    /// Spans that fell out of the ring before they were read.
    pub missed: u64,
    /// Spans dropped because the recorder was saturated.
    pub dropped: u64,
}

/// WATCH_EVENT payloads: one full state, then top-level fields that changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WatchEvent {
    Full {
        status: Box<DaemonStatus>,
    },
    /// Top-level fields of [`DaemonStatus`] whose value changed, with their new value.
    Changes {
        fields: serde_json::Map<String, serde_json::Value>,
    },
}

/// The state a daemon leaves in `ROOT/run/libvirt/modvirt/<d>.json`, for
/// observers that must not connect (it may be asleep).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub schema: u32,
    pub name: String,
    pub pid: i32,
    /// The process's start time in clock ticks after boot (`/proc/PID/stat`
    /// field 22): tells a live daemon from a reused pid.
    pub pid_start_ticks: u64,
    /// `starting`, `running`, `stopping` or `exited`.
    pub state: String,
    pub activation: Activation,
    pub exec_ms: u64,
    #[serde(default)]
    pub ready_ms: Option<u64>,
    /// Set once the run has ended.
    #[serde(default)]
    pub exit: Option<Exit>,
    /// The admin socket observers may connect to while it runs.
    pub admin_socket: String,
    /// The exit gate an observer holds a shared `flock` on from its
    /// liveness check until its OBSERVE `OPEN` is answered; the daemon
    /// takes it exclusively before an idle exit (so an observer that
    /// cannot get it must not connect: the daemon is exiting).
    #[serde(default)]
    pub exit_gate: Option<String>,
    /// How many runs this root has seen (1 for the first).
    pub runs: u64,
    pub updated_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitReason {
    IdleExit,
    Signal,
    StartupFailed,
    Crashed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub reason: ExitReason,
    pub at_ms: u64,
    #[serde(default)]
    pub signal: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

/// One line of the lifecycle log `ROOT/run/libvirt/modvirt/<d>.log` (JSON lines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    pub at_ms: u64,
    pub pid: i32,
    #[serde(flatten)]
    pub event: Lifecycle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Lifecycle {
    Activated {
        activation: Activation,
    },
    Ready {
        startup_ms: f64,
    },
    IdleExit {
        timeout_s: u32,
    },
    Stopped {
        signal: String,
    },
    StartupFailed {
        error: String,
    },
    /// A run that ended without a word: found by the next start or an observer.
    Crashed {
        crashed_pid: i32,
        detected_by: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted() {
        for w in OBSERVE_PROCEDURES.windows(2) {
            assert!(w[0].number < w[1].number);
        }
        assert_eq!(OBSERVE.procedure(procs::STATUS).map(|p| p.name), Some("STATUS"));
    }

    #[test]
    fn lifecycle_lines_are_flat_json() {
        let e = LifecycleEvent {
            at_ms: 5,
            pid: 7,
            event: Lifecycle::IdleExit { timeout_s: 120 },
        };
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(s, r#"{"at_ms":5,"pid":7,"event":"idle-exit","timeout_s":120}"#);
        assert_eq!(serde_json::from_str::<LifecycleEvent>(&s).unwrap(), e);
    }

    #[test]
    fn wait_on_is_tagged() {
        let w = WaitOn::Process {
            description: "qmp reply from qemu pid 9".into(),
            pid: Some(9),
        };
        let s = serde_json::to_string(&w).unwrap();
        assert!(s.starts_with(r#"{"kind":"process""#), "{s}");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let a: Activation =
            serde_json::from_str(r#"{"cause":"socket","socket":"x.socket","future":1}"#).unwrap();
        assert_eq!(a.cause, Cause::Socket);
        assert_eq!(a.client, None);
    }
}
