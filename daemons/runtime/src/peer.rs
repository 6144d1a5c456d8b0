//! Peer calls: a modvirt daemon calling the REMOTE program of another one
//! (`virtqemud` → `virtnetworkd` `NETWORK_LOOKUP_BY_NAME`) from inside one of
//! its call handlers, on behalf of that call.
//!
//! # Protocol
//!
//! A peer connection is an ordinary libvirt client connection to the peer's
//! read-write socket, opened the way `virsh` opens one: `AUTH_LIST` (66) →
//! `CONNECT_SUPPORTS_FEATURE` (60, feature 10 `PROGRAM_KEEPALIVE`) →
//! `CONNECT_OPEN` (1, the target's URI, flags 0). Only `REMOTE_AUTH_NONE` is
//! supported. [`Peers`] keeps one connection per [`PeerTarget`] and shares it:
//! any number of calls may be in flight on it at once, each with its own serial
//! (counting up from 0, handshake included). A reader task takes the REPLY
//! frames off the socket and hands each to the call with its serial; it answers
//! KEEPALIVE `PING` with `PONG` and ignores every other MESSAGE (events). As
//! libvirt's client does, it also pings a peer that has been silent for 5 s
//! and gives the connection up after 5 unanswered pings, so a dead or hung
//! peer's connection is not reused.
//!
//! Every CALL, handshake included, is preceded by an OBSERVE `CALL_CONTEXT`
//! MESSAGE (program `OBSERVE_PROGRAM`, version 1, procedure 9, serial 0, status
//! OK) carrying the W3C `traceparent` of the caller's client span, the caller
//! daemon's name and the caller's in-flight call id. Both frames go out in one
//! write under the connection's write lock, so nothing can come between them;
//! the peer applies the context to the next CALL on the connection:
//!
//! ```text
//!  caller (virtqemud)                                        peer (virtnetworkd)
//!  MESSAGE OBSERVE.CALL_CONTEXT {traceparent, "virtqemud", 17} ─▶
//!  CALL    REMOTE.NETWORK_LOOKUP_BY_NAME serial 3              ─▶
//!                                                              ◀─ MESSAGE KEEPALIVE.PING
//!  MESSAGE KEEPALIVE.PONG                                      ─▶
//!                                                              ◀─ REPLY serial 3, OK or ERROR
//! ```
//!
//! # Failures
//!
//! [`PeerError`] names them; [`PeerError::to_rpc_error`] is the one mapping to
//! libvirt's (code, domain, message):
//!
//! * the socket cannot be reached: libvirt's `Failed to connect socket to
//!   '<path>': <strerror>`;
//! * the connection breaks (end of stream, read or write error, a bad frame, a
//!   write cut half-way by a timeout, which leaves the stream out of step):
//!   every call pending on it fails with `connection to <peer> lost: <why>`,
//!   and the next call opens a new connection;
//! * no reply before the call's timeout, which covers connecting and the
//!   handshake too: `Timed out during operation: no reply from <peer> to
//!   <procedure> after <N> s`. The caller returns at once; a late reply is
//!   discarded by the reader;
//! * the peer's own error replies (for the handshake too) are returned
//!   unchanged.
//!
//! A connection without calls for [`DEFAULT_IDLE_CLOSE`] is closed, so that a
//! caller never keeps a socket-activated peer awake; the next call reopens it.
//!
//! # Observation
//!
//! Each call, for its whole duration (connecting included), has
//!
//! * a client span `<peer>/<PROCEDURE>` (target `rpc.peer`, `otel.kind =
//!   "client"`), a child of the span current when the call starts — the server
//!   span of the handler's call — with `rpc.result` and, on failure,
//!   `otel.status_code = "ERROR"` and `otel.status_message`;
//! * a wait mark on the caller's in-flight call: `Waiting::Peer { daemon,
//!   procedure, serial }` while a frame is out (the handshake's steps show as
//!   themselves), `Waiting::Other` while it waits for another call to open the
//!   connection;
//! * on completion, `Metrics::peer_call_finished` (ok when the reply has
//!   status OK), its duration counted from the start of [`Peers::call`].
//!
//! All three are RAII: a call whose future is dropped (its client went away)
//! is still recorded, as an error.

mod connection;
pub mod session;
pub mod spawn;
#[cfg(test)]
mod tests;

use crate::daemon::DaemonShared;
use crate::dispatch::CallContext;
use crate::observe::inflight::{CallRecord, Waiting};
use crate::observe::metrics::Metrics;
use crate::observe::spans;
use connection::Connection;
pub(crate) use connection::Deliver;
use modvirt_wire::observe::CallContextMsg;
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thiserror::Error;
use tracing::Instrument;

/// How long a forwarded call waits for the peer's reply, by default.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a peer connection may stay without calls before it is closed.
pub const DEFAULT_IDLE_CLOSE: Duration = Duration::from_secs(30);

/// `VIR_ERR_AUTH_FAILED`.
const AUTH_FAILED: ErrorCode = ErrorCode(45);

/// Where a peer daemon listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerTarget {
    /// `virtnetworkd`, …: names the peer in errors, spans, metrics and wait marks.
    pub daemon: String,
    /// Its read-write socket (`/run/libvirt/virtnetworkd-sock`).
    pub socket: PathBuf,
    /// The URI for `CONNECT_OPEN`, e.g. `network:///system`.
    pub uri: String,
    /// Sent with `CONNECT_SET_IDENTITY` right after `CONNECT_OPEN`: the
    /// client the calls are made for. Connections are kept per target, so
    /// per identity.
    pub identity: Option<crate::identity::Identity>,
    /// How to start the peer when nobody listens on its socket; `None`:
    /// report libvirt's connect error.
    pub spawn: Option<spawn::SpawnSpec>,
}

/// The caller's side of a peer call: where its metrics go and which in-flight
/// call it is made for. [`PeerCaller::of`] takes both from a handler's
/// [`CallContext`].
#[derive(Debug, Clone, Copy)]
pub struct PeerCaller<'a> {
    pub metrics: &'a Metrics,
    pub call: &'a Arc<CallRecord>,
}

impl<'a> PeerCaller<'a> {
    /// The caller of a handler's call.
    pub fn of(ctx: &'a CallContext) -> PeerCaller<'a> {
        PeerCaller {
            metrics: &ctx.daemon.metrics,
            call: &ctx.call,
        }
    }
}

/// Why a peer call failed, before [`PeerError::to_rpc_error`] turns it into
/// the libvirt error its caller returns.
#[derive(Debug, Error)]
pub enum PeerError {
    /// `connect(2)` on the peer's socket failed.
    #[error("Failed to connect socket to '{}': {}", .socket.display(), describe_io(.source))]
    Connect { socket: PathBuf, source: io::Error },
    /// The connection broke before the reply came.
    #[error("connection to {daemon} lost: {reason}")]
    ConnectionLost { daemon: String, reason: String },
    /// No reply before the call's deadline.
    #[error("no reply from {daemon} to {procedure} after {} s", .after.as_secs_f64())]
    Timeout {
        daemon: String,
        procedure: &'static str,
        after: Duration,
    },
    /// The peer offers no authentication type a daemon can use.
    #[error("{daemon} requires authentication (types {types:?}); peer calls support only REMOTE_AUTH_NONE")]
    AuthUnsupported { daemon: String, types: Vec<i32> },
    /// A reply that does not fit its call.
    #[error("unexpected reply from {daemon} to {procedure}: {detail}")]
    BadReply {
        daemon: String,
        procedure: &'static str,
        detail: String,
    },
    /// Nobody listened on the peer's socket and starting the peer failed.
    #[error("Failed to connect socket to '{}': cannot start {}: {}", .socket.display(), .binary.display(), describe_io(.source))]
    Spawn {
        socket: PathBuf,
        binary: PathBuf,
        source: io::Error,
    },
    /// The peer answered with an error.
    #[error(transparent)]
    Remote(RpcError),
}

impl PeerError {
    /// The libvirt error the caller of [`Peers::call`] gets:
    ///
    /// | error | code | domain | message |
    /// |---|---|---|---|
    /// | `Connect` | `VIR_ERR_SYSTEM_ERROR` (38) | `VIR_FROM_RPC` (7) | `Failed to connect socket to '<path>': <strerror>` |
    /// | `ConnectionLost` | `VIR_ERR_SYSTEM_ERROR` (38) | `VIR_FROM_RPC` | `connection to <peer> lost: <why>` |
    /// | `Timeout` | `VIR_ERR_OPERATION_TIMEOUT` (68) | `VIR_FROM_RPC` | `Timed out during operation: no reply from <peer> to <procedure> after <N> s` |
    /// | `AuthUnsupported` | `VIR_ERR_AUTH_FAILED` (45) | `VIR_FROM_RPC` | as displayed |
    /// | `BadReply` | `VIR_ERR_RPC` (39) | `VIR_FROM_RPC` | as displayed |
    /// | `Remote` | the peer's, unchanged | | |
    pub fn to_rpc_error(&self) -> RpcError {
        let plain = |code| RpcError::plain(code, ErrorDomain::RPC, self.to_string());
        match self {
            Self::Connect { .. } | Self::ConnectionLost { .. } | Self::Spawn { .. } => {
                plain(ErrorCode::SYSTEM_ERROR)
            }
            Self::Timeout { .. } => RpcError::new(
                ErrorCode::OPERATION_TIMEOUT,
                ErrorDomain::RPC,
                "Timed out during operation",
                self.to_string(),
            ),
            Self::AuthUnsupported { .. } => plain(AUTH_FAILED),
            Self::BadReply { .. } => plain(ErrorCode::RPC),
            Self::Remote(e) => e.clone(),
        }
    }
}

impl From<PeerError> for RpcError {
    fn from(e: PeerError) -> RpcError {
        match e {
            PeerError::Remote(e) => e,
            other => other.to_rpc_error(),
        }
    }
}

/// An I/O error as libvirt words it: `strerror(errno)`, without Rust's
/// ` (os error N)` suffix.
fn describe_io(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(errno) => nix::errno::Errno::from_raw(errno).desc().to_owned(),
        None => e.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What every frame of one peer call needs: who to blame, the context to
/// send before each CALL, and the deadline.
#[derive(Debug)]
struct CallScope<'a> {
    daemon: &'a str,
    record: &'a Arc<CallRecord>,
    context: CallContextMsg,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl CallScope<'_> {
    /// Runs `fut` until the call's deadline; past it, the call has timed out
    /// waiting for `procedure`.
    async fn within<T>(
        &self,
        procedure: &'static str,
        fut: impl Future<Output = Result<T, PeerError>>,
    ) -> Result<T, PeerError> {
        match tokio::time::timeout_at(self.deadline, fut).await {
            Ok(r) => r,
            Err(_) => Err(PeerError::Timeout {
                daemon: self.daemon.to_owned(),
                procedure,
                after: self.timeout,
            }),
        }
    }
}

/// Records a peer call's outcome, in the span and the metrics, when dropped.
struct CallObservation<'a> {
    span: tracing::Span,
    metrics: &'a Metrics,
    daemon: &'a str,
    procedure: &'static str,
    started: Instant,
    /// `None` until the call ends: dropped before that, it was cancelled.
    outcome: Option<Result<(), String>>,
}

impl Drop for CallObservation<'_> {
    fn drop(&mut self) {
        let outcome = self
            .outcome
            .take()
            .unwrap_or_else(|| Err("cancelled by the caller".to_owned()));
        self.metrics.peer_call_finished(
            self.daemon,
            self.procedure,
            outcome.is_ok(),
            self.started.elapsed(),
        );
        match outcome {
            Ok(()) => {
                self.span.record("rpc.result", "ok");
            }
            Err(message) => {
                self.span.record("rpc.result", "error");
                self.span.record("otel.status_code", "ERROR");
                self.span.record("otel.status_message", message.as_str());
            }
        }
    }
}

/// Which connection a peer call goes on.
enum Via<'a> {
    /// The target's shared connection (opened on demand).
    Shared(&'a PeerTarget),
    /// A client session's own connection.
    Session(&'a Connection),
    /// Open a new connection (the "call" is the handshake) into `out`.
    Open {
        target: &'a PeerTarget,
        options: &'a connection::OpenOptions,
        out: &'a mut Option<Connection>,
    },
}

/// One target's connection, opened by the first call that needs it.
type Slot = tokio::sync::Mutex<Option<Connection>>;

/// All peer connections of a daemon: one per target, opened on first use,
/// shared by concurrent calls, reopened after a failure or an idle close.
#[derive(Debug)]
pub struct Peers {
    self_name: String,
    idle_close: Duration,
    call_timeout: Duration,
    keepalive: (Duration, u32),
    slots: Mutex<HashMap<PeerTarget, Arc<Slot>>>,
}

impl Peers {
    /// The peer connections of the daemon `self_name` (the `caller_daemon` of
    /// every `CALL_CONTEXT` it sends).
    pub fn new(self_name: &str) -> Peers {
        Peers {
            self_name: self_name.to_owned(),
            idle_close: DEFAULT_IDLE_CLOSE,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            keepalive: connection::KEEPALIVE,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// How long a forwarded call waits for its reply (default
    /// [`DEFAULT_CALL_TIMEOUT`]; config `peer_call_timeout`).
    pub fn with_call_timeout(mut self, after: Duration) -> Peers {
        self.call_timeout = after;
        self
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Shared connections close when idle and drop events.
    fn open_options(&self) -> connection::OpenOptions {
        connection::OpenOptions {
            idle_close: Some(self.idle_close),
            keepalive: Some(self.keepalive),
            ..Default::default()
        }
    }

    /// Pings peers after `every` of silence and gives a connection up after
    /// `count` unanswered (default libvirt's 5 s × 5).
    pub fn with_keepalive(mut self, every: Duration, count: u32) -> Peers {
        self.keepalive = (every, count);
        self
    }

    /// Closes connections after `after` without calls (default [`DEFAULT_IDLE_CLOSE`]).
    pub fn with_idle_close(mut self, after: Duration) -> Peers {
        self.idle_close = after;
        self
    }

    pub fn self_name(&self) -> &str {
        &self.self_name
    }

    /// Calls REMOTE procedure `proc_` (named `procedure`, e.g.
    /// `"NETWORK_LOOKUP_BY_NAME"`) with XDR `args` on `target`, on behalf of
    /// the in-flight call `ctx` of this daemon. Returns the reply payload or
    /// the peer's error unchanged; never waits longer than `timeout`.
    #[allow(clippy::too_many_arguments)] // the shape the handlers were promised; see `call_as`
    pub async fn call(
        &self,
        d: &DaemonShared,
        ctx: &CallContext,
        target: &PeerTarget,
        proc_: i32,
        procedure: &'static str,
        args: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let caller = PeerCaller {
            metrics: &d.metrics,
            call: &ctx.call,
        };
        self.call_as(caller, target, proc_, procedure, args, timeout)
            .await
    }

    /// [`Peers::call`] for a caller given by its parts.
    pub async fn call_as(
        &self,
        caller: PeerCaller<'_>,
        target: &PeerTarget,
        proc_: i32,
        procedure: &'static str,
        args: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        self.call_via(
            caller,
            &target.daemon,
            Via::Shared(target),
            proc_,
            procedure,
            args,
            timeout,
        )
        .await
    }

    /// One observed peer call (span, metrics, wait marks, deadline) on the
    /// connection `via` names.
    #[allow(clippy::too_many_arguments)]
    async fn call_via(
        &self,
        caller: PeerCaller<'_>,
        daemon: &str,
        via: Via<'_>,
        proc_: i32,
        procedure: &'static str,
        args: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let span = tracing::info_span!(
            target: "rpc.peer",
            "rpc.peer",
            otel.name = %format_args!("{}/{}", daemon, procedure),
            otel.kind = "client",
            rpc.system = "libvirt",
            rpc.service = "REMOTE",
            rpc.method = procedure,
            peer.daemon = %daemon,
            rpc.result = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        // The caller's call span is recorded outside `tracing`: continue its
        // trace explicitly when it has one.
        if let Some(parent) = caller.call.traceparent() {
            let _ = spans::set_remote_parent(&span, &parent);
        }
        let mut observation = CallObservation {
            span: span.clone(),
            metrics: caller.metrics,
            daemon,
            procedure,
            started: Instant::now(),
            outcome: None,
        };
        let scope = CallScope {
            daemon,
            record: caller.call,
            context: CallContextMsg {
                traceparent: spans::traceparent(&span).unwrap_or_default(),
                caller_daemon: self.self_name.clone(),
                caller_call: caller.call.id,
            },
            deadline: tokio::time::Instant::now() + timeout,
            timeout,
        };
        let result = self
            .attempt(&scope, via, proc_, procedure, &args)
            .instrument(span)
            .await;
        if let Err(e) = &result {
            match e {
                PeerError::Remote(_) => {
                    tracing::debug!(target: "rpc.peer", "{daemon}/{procedure}: {e}")
                }
                _ => tracing::warn!(target: "rpc.peer", "{daemon}/{procedure}: {e}"),
            }
        }
        let result = result.map_err(RpcError::from);
        observation.outcome = Some(match &result {
            Ok(_) => Ok(()),
            Err(e) => Err(e.text().to_owned()),
        });
        result
    }

    async fn attempt(
        &self,
        scope: &CallScope<'_>,
        via: Via<'_>,
        proc_: i32,
        procedure: &'static str,
        args: &[u8],
    ) -> Result<Vec<u8>, PeerError> {
        let conn = match via {
            Via::Shared(target) => self.connection(scope, target, procedure).await?,
            Via::Session(conn) => conn.clone(),
            Via::Open { target, options, out } => {
                let conn = self.open_or_spawn(scope, target, procedure, options).await?;
                *out = Some(conn);
                return Ok(Vec::new());
            }
        };
        let reply = conn.roundtrip(scope, proc_, procedure, args).await?;
        connection::reply_payload(scope.daemon, procedure, proc_, reply)
    }

    /// The open connection to `target`, opening it if there is none (or the
    /// last one broke or was closed when idle).
    async fn connection(
        &self,
        scope: &CallScope<'_>,
        target: &PeerTarget,
        procedure: &'static str,
    ) -> Result<Connection, PeerError> {
        let slot = Arc::clone(lock(&self.slots).entry(target.clone()).or_default());
        let mut held = match slot.try_lock() {
            Ok(held) => held,
            Err(_) => {
                let _wait = scope.record.wait_on(Waiting::Other {
                    description: format!("connection to {} being opened by another call", target.daemon),
                });
                scope
                    .within(connection::OPEN_STAGE, async { Ok(slot.lock().await) })
                    .await?
            }
        };
        if let Some(conn) = held.as_ref()
            && conn.claim()
        {
            return Ok(conn.clone());
        }
        *held = None;
        let conn = self
            .open_or_spawn(scope, target, procedure, &self.open_options())
            .await?;
        *held = Some(conn.clone());
        Ok(conn)
    }

    /// Opens a connection to `target`, starting the peer first when nobody
    /// listens on its socket and the target says how.
    async fn open_or_spawn(
        &self,
        scope: &CallScope<'_>,
        target: &PeerTarget,
        procedure: &'static str,
        options: &connection::OpenOptions,
    ) -> Result<Connection, PeerError> {
        match Connection::open(scope, target, options).await {
            Err(PeerError::Connect { source, .. })
                if spawn::nobody_listens(&source) && target.spawn.is_some() =>
            {
                self.spawn_and_open(scope, target, procedure, options).await
            }
            other => other,
        }
    }

    /// Starts the peer (see [`spawn`]) and connects as soon as its socket
    /// answers, within the call's deadline.
    async fn spawn_and_open(
        &self,
        scope: &CallScope<'_>,
        target: &PeerTarget,
        procedure: &'static str,
        options: &connection::OpenOptions,
    ) -> Result<Connection, PeerError> {
        let Some(spec) = &target.spawn else {
            unreachable!("checked by the caller")
        };
        let _wait = scope.record.wait_on(Waiting::Other {
            description: format!("{} starting ({})", target.daemon, spec.binary.display()),
        });
        spawn::start(spec, &self.self_name, procedure).map_err(|source| PeerError::Spawn {
            socket: target.socket.clone(),
            binary: spec.binary.clone(),
            source,
        })?;
        loop {
            match Connection::open(scope, target, options).await {
                Err(PeerError::Connect { source, .. }) if spawn::nobody_listens(&source) => {
                    scope
                        .within(connection::OPEN_STAGE, async {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            Ok(())
                        })
                        .await?;
                }
                other => return other,
            }
        }
    }
}
