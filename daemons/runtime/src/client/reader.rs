//! The read side of a client connection: frames in, calls dispatched.
//!
//! Frames are read with a *stall* limit: between frames a client that has
//! already spoken may stay silent as long as it likes, but once the first
//! byte of a frame has arrived, no `limit` may pass without more bytes, and
//! a new client must start its first frame within `limit`. The body is
//! buffered only as bytes arrive, never sized from the length word.
//!
//! A call that passes the table checks runs on the server's worker pool.
//! When a worker is free, the reader borrows it and polls the call once
//! itself: a call that completes at once (every connection-level and admin
//! call) is answered without a task switch; one that must wait moves to a
//! worker and the reader goes on reading.

use super::{Client, KEEPALIVE_PING, KEEPALIVE_PONG, KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, ReadHalf};
use crate::daemon::DaemonShared;
use crate::dispatch::{self, CallContext, ProgramHandler};
use crate::observe::inflight::{CallRecord, CallSlot, Trace};
use crate::server::{ClientSettings, Server};
use modvirt_wire::XdrDecode;
use modvirt_wire::message;
use modvirt_wire::observe::{CallContextMsg, CallerLink, OBSERVE_PROGRAM, procs};
use modvirt_wire::program::Program;
use modvirt_wire::{Header, MessageType, ProcKind, Procedure, RpcError, Status};
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a client's read loop ended.
#[derive(Debug)]
pub(super) enum End {
    Eof,
    Closed,
    Dropped(String),
}

/// How long a started frame may go without progress, and how long a new
/// client may stay silent before its first frame.
fn stall_limit(s: &ClientSettings) -> Duration {
    if s.keepalive_interval > 0 {
        Duration::from_secs(s.keepalive_interval as u64 * (u64::from(s.keepalive_count) + 1))
    } else {
        Duration::from_secs(30)
    }
}

/// The piece of a frame being read, for log lines.
#[derive(Debug, Clone, Copy)]
enum Piece {
    LengthWord,
    Frame(u32),
}

impl std::fmt::Display for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LengthWord => write!(f, "a length word"),
            Self::Frame(len) => write!(f, "a {len}-byte frame"),
        }
    }
}

/// Appends exactly `want` bytes to `out`, failing on EOF or on `limit`
/// without progress. `what` names the piece for log lines.
async fn read_exact_stalling(
    rd: &mut BufReader<ReadHalf>,
    out: &mut Vec<u8>,
    want: usize,
    limit: Duration,
    what: Piece,
) -> Result<(), End> {
    let start = out.len();
    while out.len() - start < want {
        let got = out.len() - start;
        let chunk = match tokio::time::timeout(limit, rd.fill_buf()).await {
            Ok(Ok(c)) => c,
            Ok(Err(_)) => {
                return Err(End::Dropped(format!(
                    "connection failed in the middle of {}",
                    what
                )));
            }
            Err(_) => {
                return Err(End::Dropped(format!(
                    "{} incomplete: no data for {}s ({got} bytes received)",
                    what,
                    limit.as_secs()
                )));
            }
        };
        if chunk.is_empty() {
            return Err(End::Dropped(format!(
                "connection closed in the middle of {}",
                what
            )));
        }
        let n = chunk.len().min(want - got);
        out.extend_from_slice(&chunk[..n]);
        rd.consume(n);
    }
    Ok(())
}

/// Reads one frame's body (header + payload) into `body`; `Ok(false)` on a
/// clean EOF between frames.
async fn read_frame(
    rd: &mut BufReader<ReadHalf>,
    body: &mut Vec<u8>,
    limit: Duration,
    first_frame: bool,
) -> Result<bool, End> {
    body.clear();
    let first = rd.fill_buf();
    let ready = if first_frame {
        match tokio::time::timeout(limit, first).await {
            Ok(r) => r,
            Err(_) => {
                return Err(End::Dropped(format!(
                    "sent nothing within {}s of connecting",
                    limit.as_secs()
                )));
            }
        }
    } else {
        first.await
    };
    match ready {
        Ok([]) => return Ok(false),
        Ok(_) => {}
        Err(_) => return Ok(false),
    }
    read_exact_stalling(rd, body, 4, limit, Piece::LengthWord).await?;
    let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let want = message::check_length(len).map_err(|e| End::Dropped(e.to_string()))?;
    body.clear();
    read_exact_stalling(rd, body, want, limit, Piece::Frame(len)).await?;
    Ok(true)
}

pub(super) async fn read_loop(
    daemon: &Arc<DaemonShared>,
    server: &Arc<Server>,
    client: &Arc<Client>,
    mut rd: BufReader<ReadHalf>,
    settings: ClientSettings,
) -> End {
    let limit = stall_limit(&settings);
    let permits = Arc::new(Semaphore::new(settings.max_client_requests));
    let mut first_frame = true;
    let mut body = Vec::new();
    let mut pending_context: Option<CallContextMsg> = None;
    loop {
        match read_frame(&mut rd, &mut body, limit, first_frame).await {
            Ok(true) => {}
            Ok(false) => return End::Eof,
            Err(end) => return end,
        }
        first_frame = false;
        client.touch();
        let (header, payload) = match message::split_body(&body) {
            Ok(v) => v,
            Err(e) => return End::Dropped(format!("malformed message header: {e}")),
        };
        // Keepalive MESSAGEs are ours (as libvirt's virKeepAliveCheckMessage);
        // anything else for that program is refused below like any unknown program.
        // A peer daemon describes its next call (see `modvirt_wire::observe`).
        if header.prog == OBSERVE_PROGRAM
            && header.type_ == MessageType::Message
            && header.proc_ == procs::CALL_CONTEXT
        {
            pending_context = CallContextMsg::from_xdr(payload).ok();
            continue;
        }
        if header.prog == KEEPALIVE_PROGRAM
            && header.vers == KEEPALIVE_VERSION
            && header.type_ == MessageType::Message
        {
            if header.proc_ == KEEPALIVE_PING {
                client.send_keepalive(KEEPALIVE_PONG).await;
            }
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return End::Closed;
        };
        // A context applies to the next call only, refused or not.
        let context = pending_context.take();
        let (handler, procedure) = match precheck(server, client, &header) {
            Ok(v) => v,
            Err(err) => {
                client.send_reply(&header, Err(err)).await;
                continue;
            }
        };
        let tracked = Tracked::start(
            daemon,
            client,
            handler.program(),
            procedure,
            &header,
            permit,
            context,
        );
        // Passed on whole to another daemon: the call is written to it here
        // and its reply written back by the session's reader (no task).
        if client.has_session()
            && let Some(session) = client.session()
            && crate::route::relayed(&session, header.prog, procedure)
        {
            let tracked = tracked.owned(daemon);
            let record = tracked.record.clone();
            let c = client.clone();
            let deliver: crate::peer::Deliver = Box::new(move |result| {
                Box::pin(async move {
                    let ok = result.is_ok();
                    c.send_reply(&header, result).await;
                    tracked.finish(ok);
                })
            });
            session.relay(daemon, &record, procedure, payload, deliver).await;
            continue;
        }
        let ctx = CallContext {
            daemon: daemon.clone(),
            client: client.clone(),
            header,
            procedure,
            call: tracked.record.clone(),
        };
        let mut call = handler.call(ctx, payload.to_vec());
        if let Some(worker) = server.pool.borrow_free_worker() {
            let polled = Pin::new(&mut call).poll(&mut Context::from_waker(Waker::noop()));
            drop(worker);
            if let Poll::Ready(result) = polled {
                let ok = result.is_ok();
                client.send_reply(&header, result).await;
                tracked.finish(ok);
                continue;
            }
        }
        // The call outlives this loop iteration: it needs its own handle.
        let tracked = tracked.owned(daemon);
        let c = client.clone();
        if client.has_session() {
            // The rest of a session's calls (its close, another driver's
            // procedures): nothing left but waiting for the peer's reply,
            // so no worker is taken; one task waits and answers.
            tokio::spawn(async move {
                let result = call.await;
                let ok = result.is_ok();
                c.send_reply(&header, result).await;
                tracked.finish(ok);
            });
            continue;
        }
        server.pool.submit(procedure.priority, async move {
            let result = call.await;
            // The worker is free as soon as the call is done: writing the
            // reply waits on this client's socket, never on a worker. The
            // request slot is held until the reply is written.
            tokio::spawn(async move {
                let ok = result.is_ok();
                c.send_reply(&header, result).await;
                tracked.finish(ok);
            });
        });
    }
}

/// Everything held for one call from dispatch until its reply is written:
/// its in-flight record, its count on the idle timer (none for passive
/// observability calls), the client's request slot, and its timing. Both
/// the record and the count are given back when it is dropped, on every
/// path; it reaches them through the daemon it holds anyway (handles of
/// their own would cost two more shared reference counts per call).
struct Tracked<D: Deref<Target = DaemonShared>> {
    call: Option<CallSlot>,
    record: Arc<CallRecord>,
    traced: bool,
    counted: bool,
    permit: Option<OwnedSemaphorePermit>,
    /// Borrowed while the call runs within the read loop (most cheap calls
    /// finish in their first poll), owned once it runs on a worker.
    daemon: D,
    program: &'static Program,
    procedure: &'static Procedure,
}

impl<D: Deref<Target = DaemonShared>> Drop for Tracked<D> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            self.daemon.observer.inflight.unregister(call);
        }
        if self.counted {
            self.daemon.idle.call_finished();
        }
    }
}

impl<'d> Tracked<&'d DaemonShared> {
    fn start(
        daemon: &'d Arc<DaemonShared>,
        client: &Client,
        program: &'static Program,
        procedure: &'static Procedure,
        header: &Header,
        permit: OwnedSemaphorePermit,
        context: Option<CallContextMsg>,
    ) -> Self {
        let observing = header.prog == OBSERVE_PROGRAM;
        if !observing {
            client.make_active(&daemon.idle);
        }
        // One server span per call (OpenTelemetry RPC conventions), unless
        // call spans are configured off; observers' own calls are not traced.
        let traced = cfg!(feature = "observe-calls") && !observing && daemon.observer.call_spans();
        let trace = traced.then(|| {
            match context
                .as_ref()
                .map(|c| c.traceparent.as_str())
                .filter(|t| !t.is_empty())
            {
                Some(parent) => Trace::Continue(parent),
                None => Trace::Root,
            }
        });
        let started = Instant::now();
        let call = daemon.observer.inflight.register(
            program.name,
            procedure.name,
            header.serial,
            client.to_ref(),
            started,
            trace,
        );
        if let Some(ctx) = context {
            call.record.set_caller(CallerLink {
                daemon: ctx.caller_daemon,
                call: ctx.caller_call,
            });
        }
        if !observing {
            daemon.idle.count_call();
        }
        Tracked {
            record: call.record.clone(),
            call: Some(call),
            traced,
            counted: !observing,
            permit: Some(permit),
            daemon: daemon.as_ref(),
            program,
            procedure,
        }
    }

    /// The same call, holding `daemon` (this call's, to outlive the read loop).
    fn owned(mut self, daemon: &Arc<DaemonShared>) -> Tracked<Arc<DaemonShared>> {
        let counted = std::mem::replace(&mut self.counted, false);
        Tracked {
            call: self.call.take(),
            record: self.record.clone(),
            traced: self.traced,
            counted,
            permit: self.permit.take(),
            daemon: Arc::clone(daemon),
            program: self.program,
            procedure: self.procedure,
        }
    }
}

impl<D: Deref<Target = DaemonShared>> Tracked<D> {
    /// Records the call as finished, once its reply is written. (Not an
    /// `async fn` around the write: moving this into a future per call
    /// costs more than the recording itself.)
    fn finish(self, ok: bool) {
        if !cfg!(feature = "observe-calls") {
            return;
        }
        let elapsed = self.record.started.elapsed();
        if self.traced
            && let Some(span) = self.record.span()
        {
            self.daemon.spans.record_call(
                span,
                self.program,
                self.procedure,
                self.record.client.pid,
                ok,
                elapsed,
            );
        }
        self.daemon.metrics.rpc_finished(
            self.program.name,
            self.procedure.number,
            self.procedure.name,
            ok,
            elapsed,
        );
    }
}

/// Everything the procedure table can refuse before a worker is involved.
fn precheck<'s>(
    server: &'s Server,
    client: &Client,
    h: &Header,
) -> Result<(&'s Arc<dyn ProgramHandler>, &'static Procedure), RpcError> {
    let handler = server
        .program(h.prog)
        .filter(|p| p.program().version == h.vers)
        .ok_or_else(|| dispatch::unknown_program(h))?;
    let program = handler.program();
    if h.type_ != MessageType::Call {
        return Err(dispatch::unexpected_type(h));
    }
    if h.status != Status::Ok {
        return Err(dispatch::unexpected_status(h));
    }
    let p = program
        .procedure(h.proc_)
        .ok_or_else(|| dispatch::unknown_procedure(h))?;
    if p.kind == ProcKind::Event {
        return Err(dispatch::event_called(p));
    }
    if client.readonly() && !p.readonly_ok {
        return Err(dispatch::read_only_denied(p));
    }
    if !client.is_open() && !handler.allowed_before_open(p.number) {
        return Err(dispatch::not_open());
    }
    Ok((handler, p))
}
