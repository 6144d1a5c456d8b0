//! One multiplexed connection to a peer daemon's REMOTE socket.
//!
//! Calls register a `oneshot` sender under their serial, then write their
//! `CALL_CONTEXT` + `CALL` frames in one piece under the write lock. The
//! reader task owns the read half: it hands each REPLY to the sender of its
//! serial (a reply nobody waits for any more — the call timed out — is
//! dropped), answers KEEPALIVE `PING`s with `PONG`s from a task of their own,
//! and skips other MESSAGEs. When the stream ends or fails, or a write was
//! cut half-way, the connection is *closed*: every pending call gets
//! `ConnectionLost`, no call can register any more, and the write half is
//! dropped so that the peer sees the end of the stream. The reader also
//! closes a connection that had no call for its idle limit.

use super::{CallScope, PeerError, PeerTarget, describe_io, lock};
use crate::observe::inflight::{CallRecord, WaitGuard, Waiting};
use crate::quiet::{QuietRead as OwnedReadHalf, QuietWrite as OwnedWriteHalf};
use modvirt_wire::message::{self, LEN_SIZE, encode_frame};
use modvirt_wire::observe::{CallContextMsg, OBSERVE_PROGRAM, OBSERVE_VERSION, procs};
use modvirt_wire::program::{
    KEEPALIVE_PING, KEEPALIVE_PONG, KEEPALIVE_PROGRAM, REMOTE_PROGRAM, REMOTE_VERSION, keepalive_frame,
};
use modvirt_wire::remote::{
    AUTH_NONE, AuthListRet, ConnectOpenArgs, ConnectSetIdentityArgs, ConnectSupportsFeatureArgs,
    ConnectSupportsFeatureRet, feature,
};
use modvirt_wire::{Header, MessageType, RpcError, Status, XdrDecode, XdrEncode};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// REMOTE procedures of the handshake.
const AUTH_LIST: (i32, &str) = (66, "AUTH_LIST");
const CONNECT_SUPPORTS_FEATURE: (i32, &str) = (60, "CONNECT_SUPPORTS_FEATURE");
const CONNECT_OPEN: (i32, &str) = (1, "CONNECT_OPEN");
const CONNECT_SET_IDENTITY: (i32, &str) = (419, "CONNECT_SET_IDENTITY");

/// What a call is said to wait for while its connection is being opened.
pub(super) const OPEN_STAGE: &str = CONNECT_OPEN.1;

/// How long a `PONG` may take to write before the connection is given up.
const PONG_WRITE_LIMIT: Duration = Duration::from_secs(10);
/// The shortest and the longest period of the reader's timer.
const TICK_MIN: Duration = Duration::from_millis(10);
const TICK_MAX: Duration = Duration::from_secs(1);
/// Free space the reader makes in its buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// How a connection is opened and kept.
#[derive(Debug, Clone, Default)]
pub(super) struct OpenOptions {
    /// Closed after this long without calls; `None`: kept until dropped.
    pub idle_close: Option<Duration>,
    /// `CONNECT_OPEN` flags (`VIR_CONNECT_RO`).
    pub flags: u32,
    /// Where the REMOTE MESSAGEs (events) the peer sends go; without it
    /// they are dropped. The reader waits while the receiver is full.
    pub events: Option<tokio::sync::mpsc::Sender<(Header, Vec<u8>)>>,
    /// Health check: a PING after this long without a frame from the peer,
    /// and the connection given up after this many unanswered (libvirt's
    /// keepalive_interval / keepalive_count: 5 s, 5). `None`: no pings.
    pub keepalive: Option<(Duration, u32)>,
}

/// libvirt's client keepalive: 5 s, 5 pings.
pub(super) const KEEPALIVE: (Duration, u32) = (Duration::from_secs(5), 5);

/// A frame the reader handed to the call with its serial.
#[derive(Debug)]
pub(super) struct Reply {
    header: Header,
    payload: Vec<u8>,
}

type ReplySender = oneshot::Sender<Result<Reply, PeerError>>;

/// What a relayed call's reply is handed to: its payload or error, already
/// checked against the call. Runs on the connection's reader (or, when the
/// connection closes, on a task of its own).
pub(crate) type Deliver =
    Box<dyn FnOnce(Result<Vec<u8>, RpcError>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A call whose reply the reader hands on itself, with no task waiting for
/// it (a client's session: see [`Connection::relay`]).
pub(super) struct Relay {
    proc_: i32,
    procedure: &'static str,
    deadline: tokio::time::Instant,
    timeout: Duration,
    /// The caller's wait mark, cleared when the reply (or error) arrives.
    wait: WaitGuard,
    deliver: Deliver,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("procedure", &self.procedure)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Hands the reply (or why there is none) on.
    async fn complete(self, daemon: &str, reply: Result<Reply, PeerError>) {
        let Relay {
            proc_,
            procedure,
            wait,
            deliver,
            ..
        } = self;
        drop(wait);
        let result = reply
            .and_then(|reply| reply_payload(daemon, procedure, proc_, reply))
            .map_err(RpcError::from);
        deliver(result).await;
    }

    fn timed_out(&self, daemon: &str) -> PeerError {
        PeerError::Timeout {
            daemon: daemon.to_owned(),
            procedure: self.procedure,
            after: self.timeout,
        }
    }
}

/// Who waits for a reply: a call's task, or nobody (the reader relays it).
#[derive(Debug)]
enum Waiter {
    Call(ReplySender),
    Relay(Relay),
}

/// An open connection; clones share it. The reader task stops when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// What calls and the reader task share.
#[derive(Debug)]
struct Shared {
    daemon: String,
    /// `None` once the connection is closed.
    writer: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    state: Mutex<State>,
    next_serial: AtomicU32,
    /// Wakes the reader when a writer closed the connection.
    shutdown: Notify,
}

#[derive(Debug)]
struct State {
    pending: HashMap<u32, Waiter>,
    /// Deadlines of the relayed calls among `pending`, earliest first.
    relay_deadlines: BTreeSet<(tokio::time::Instant, u32)>,
    /// Why the connection was closed, once it is.
    closed: Option<String>,
    /// When the last call was claimed, registered or finished.
    last_used: Instant,
}

impl Connection {
    /// Connects to `target` and opens it as `virsh` does: `AUTH_LIST`,
    /// `CONNECT_SUPPORTS_FEATURE(PROGRAM_KEEPALIVE)`, `CONNECT_OPEN(uri)`.
    pub(super) async fn open(
        scope: &CallScope<'_>,
        target: &PeerTarget,
        options: &OpenOptions,
    ) -> Result<Connection, PeerError> {
        let stream = scope
            .within(OPEN_STAGE, async {
                UnixStream::connect(&target.socket)
                    .await
                    .map_err(|source| PeerError::Connect {
                        socket: target.socket.clone(),
                        source,
                    })
            })
            .await?;
        let (rd, wr) = crate::quiet::split(stream).map_err(|source| PeerError::Connect {
            socket: target.socket.clone(),
            source,
        })?;
        let shared = Arc::new(Shared {
            daemon: target.daemon.clone(),
            writer: tokio::sync::Mutex::new(Some(wr)),
            state: Mutex::new(State {
                pending: HashMap::new(),
                relay_deadlines: BTreeSet::new(),
                closed: None,
                last_used: Instant::now(),
            }),
            next_serial: AtomicU32::new(0),
            shutdown: Notify::new(),
        });
        let reader = tokio::spawn(read_loop(
            Arc::clone(&shared),
            rd,
            options.idle_close,
            options.events.clone(),
            options.keepalive,
        ));
        let conn = Connection {
            inner: Arc::new(Inner { shared, reader }),
        };
        let daemon = &target.daemon;
        let auth: AuthListRet = conn.handshake_step(scope, AUTH_LIST, &()).await?;
        if !auth.types.is_empty() && !auth.types.contains(&AUTH_NONE) {
            return Err(PeerError::AuthUnsupported {
                daemon: daemon.clone(),
                types: auth.types,
            });
        }
        let keepalive = ConnectSupportsFeatureArgs {
            feature: feature::PROGRAM_KEEPALIVE,
        };
        let _: ConnectSupportsFeatureRet = conn
            .handshake_step(scope, CONNECT_SUPPORTS_FEATURE, &keepalive)
            .await?;
        let open = ConnectOpenArgs {
            name: Some(target.uri.clone()),
            flags: options.flags,
        };
        let () = conn.handshake_step(scope, CONNECT_OPEN, &open).await?;
        if let Some(identity) = &target.identity {
            let args = ConnectSetIdentityArgs {
                params: identity.to_params(),
                flags: 0,
            };
            let () = conn.handshake_step(scope, CONNECT_SET_IDENTITY, &args).await?;
        }
        tracing::debug!(target: "rpc.peer", "connected to {daemon} at {} ({})", target.socket.display(), target.uri);
        Ok(conn)
    }

    async fn handshake_step<A: XdrEncode, R: XdrDecode>(
        &self,
        scope: &CallScope<'_>,
        (proc_, procedure): (i32, &'static str),
        args: &A,
    ) -> Result<R, PeerError> {
        let reply = self.roundtrip(scope, proc_, procedure, &args.to_xdr()).await?;
        let payload = reply_payload(&self.inner.shared.daemon, procedure, proc_, reply)?;
        R::from_xdr(&payload).map_err(|e| PeerError::BadReply {
            daemon: self.inner.shared.daemon.clone(),
            procedure,
            detail: format!("cannot decode the result: {e}"),
        })
    }

    /// Takes the connection for a new call unless it is closed; a claimed
    /// connection is not closed for being idle within its idle limit.
    pub(super) fn claim(&self) -> bool {
        let mut state = lock(&self.inner.shared.state);
        if state.closed.is_some() {
            return false;
        }
        state.last_used = Instant::now();
        true
    }

    /// Sends `CALL_CONTEXT` + `CALL proc_(args)` and waits for the reply,
    /// with the caller's call marked as waiting on it.
    pub(super) async fn roundtrip(
        &self,
        scope: &CallScope<'_>,
        proc_: i32,
        procedure: &'static str,
        args: &[u8],
    ) -> Result<Reply, PeerError> {
        let shared = &self.inner.shared;
        let serial = shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let _pending = shared.register(serial, tx)?;
        let _wait = scope.record.wait_on(Waiting::Peer {
            daemon: shared.daemon.clone(),
            procedure: procedure.to_owned(),
            serial,
            peer_call: None,
        });
        let frames = call_frames(&scope.context, proc_, serial, args);
        scope.within(procedure, shared.write(&frames)).await?;
        scope
            .within(procedure, async {
                rx.await
                    .unwrap_or_else(|_| Err(shared.lost("the connection's reader stopped")))
            })
            .await
    }
}

impl Connection {
    /// Sends `CALL_CONTEXT` + `CALL proc_(args)` for the in-flight call
    /// `record` and returns once both are written; the reader hands the
    /// reply on to `deliver` itself, with no task waiting for it, so a
    /// reply costs one wake-up (the reader's). So do the connection's end
    /// (every relayed call gets `ConnectionLost`) and the call's deadline,
    /// `timeout` from now, which the reader checks on its timer's ticks
    /// (at most a second late). `record` is marked as waiting
    /// on the peer until then.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn relay(
        &self,
        context: &CallContextMsg,
        record: &Arc<CallRecord>,
        proc_: i32,
        procedure: &'static str,
        args: &[u8],
        timeout: Duration,
        deliver: Deliver,
    ) {
        let shared = &self.inner.shared;
        let serial = shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let wait = record.wait_on(Waiting::Peer {
            daemon: shared.daemon.clone(),
            procedure: procedure.to_owned(),
            serial,
            peer_call: None,
        });
        let deadline = tokio::time::Instant::now() + timeout;
        let relay = Relay {
            proc_,
            procedure,
            deadline,
            timeout,
            wait,
            deliver,
        };
        if let Err(refused) = shared.register_relay(serial, relay) {
            let (relay, e) = *refused;
            relay.complete(&shared.daemon, Err(e)).await;
            return;
        }
        let frames = call_frames(context, proc_, serial, args);
        // A failed or timed-out write closes the connection, which fails
        // the relayed call: nothing more to do here.
        let _ = tokio::time::timeout_at(deadline, shared.write(&frames)).await;
    }
}

/// A call's `CALL_CONTEXT` and `CALL` frames, to be written in one piece.
fn call_frames(context: &CallContextMsg, proc_: i32, serial: u32, args: &[u8]) -> Vec<u8> {
    let context_header = Header {
        prog: OBSERVE_PROGRAM,
        vers: OBSERVE_VERSION,
        proc_: procs::CALL_CONTEXT,
        type_: MessageType::Message,
        serial: 0,
        status: Status::Ok,
    };
    let call = Header {
        prog: REMOTE_PROGRAM,
        vers: REMOTE_VERSION,
        proc_,
        type_: MessageType::Call,
        serial,
        status: Status::Ok,
    };
    let mut frames = encode_frame(&context_header, |e| context.encode(e));
    frames.extend_from_slice(&encode_frame(&call, |e| e.raw(args)));
    frames
}

/// The payload of an OK reply to `procedure`; the peer's error for an ERROR
/// reply.
pub(super) fn reply_payload(
    daemon: &str,
    procedure: &'static str,
    proc_: i32,
    reply: Reply,
) -> Result<Vec<u8>, PeerError> {
    let bad = |detail: String| PeerError::BadReply {
        daemon: daemon.to_owned(),
        procedure,
        detail,
    };
    let h = reply.header;
    if h.prog != REMOTE_PROGRAM || h.vers != REMOTE_VERSION || h.proc_ != proc_ {
        return Err(bad(format!(
            "it is for program {:#x} version {} procedure {}",
            h.prog, h.vers, h.proc_
        )));
    }
    match h.status {
        Status::Ok => Ok(reply.payload),
        Status::Error => match RpcError::from_xdr(&reply.payload) {
            Ok(e) => Err(PeerError::Remote(e)),
            Err(e) => Err(bad(format!("cannot decode the error: {e}"))),
        },
        Status::Continue => Err(bad("streams are not supported".to_owned())),
    }
}

/// Removes a call's sender when the call ends, however it ends.
#[derive(Debug)]
struct Pending<'a> {
    shared: &'a Shared,
    serial: u32,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.pending.remove(&self.serial);
        state.last_used = Instant::now();
    }
}

/// Closes the connection if a write is dropped before it completed: the
/// peer has part of a frame and the stream is out of step.
struct WriteInProgress<'a> {
    shared: &'a Shared,
    done: bool,
}

impl Drop for WriteInProgress<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.shared.close("a write was interrupted half-way");
        }
    }
}

impl Shared {
    fn lost(&self, reason: &str) -> PeerError {
        PeerError::ConnectionLost {
            daemon: self.daemon.clone(),
            reason: reason.to_owned(),
        }
    }

    fn closed_reason(&self) -> Option<String> {
        lock(&self.state).closed.clone()
    }

    fn register(&self, serial: u32, tx: ReplySender) -> Result<Pending<'_>, PeerError> {
        let mut state = lock(&self.state);
        if let Some(reason) = &state.closed {
            return Err(self.lost(reason));
        }
        state.pending.insert(serial, Waiter::Call(tx));
        state.last_used = Instant::now();
        Ok(Pending { shared: self, serial })
    }

    /// Registers a relayed call; gives it back if the connection is closed.
    fn register_relay(&self, serial: u32, relay: Relay) -> Result<(), Box<(Relay, PeerError)>> {
        let mut state = lock(&self.state);
        if let Some(reason) = &state.closed {
            return Err(Box::new((relay, self.lost(reason))));
        }
        state.relay_deadlines.insert((relay.deadline, serial));
        state.pending.insert(serial, Waiter::Relay(relay));
        state.last_used = Instant::now();
        Ok(())
    }

    /// Takes the waiter of `serial`'s reply off the list.
    fn take_waiter(&self, serial: u32) -> Option<Waiter> {
        let mut state = lock(&self.state);
        let waiter = state.pending.remove(&serial)?;
        if let Waiter::Relay(r) = &waiter {
            state.relay_deadlines.remove(&(r.deadline, serial));
        }
        state.last_used = Instant::now();
        Some(waiter)
    }

    /// Takes the relayed calls whose deadline has passed off the list.
    fn expired_relays(&self, now: tokio::time::Instant) -> Vec<Relay> {
        let mut state = lock(&self.state);
        let mut expired = Vec::new();
        while let Some(&(deadline, serial)) = state.relay_deadlines.first()
            && deadline <= now
        {
            state.relay_deadlines.pop_first();
            if let Some(Waiter::Relay(r)) = state.pending.remove(&serial) {
                expired.push(r);
            }
        }
        expired
    }

    /// Writes whole frames under the write lock.
    async fn write(&self, frames: &[u8]) -> Result<(), PeerError> {
        let mut writer = self.writer.lock().await;
        if let Some(reason) = self.closed_reason() {
            return Err(self.lost(&reason));
        }
        let Some(half) = writer.as_mut() else {
            return Err(self.lost("closed"));
        };
        let mut progress = WriteInProgress {
            shared: self,
            done: false,
        };
        let written = half.write_all(frames).await;
        progress.done = true;
        if let Err(e) = written {
            let reason = format!("cannot write: {}", describe_io(&e));
            self.close(&reason);
            return Err(self.lost(&reason));
        }
        Ok(())
    }

    /// Closes the connection (once): fails every pending call and wakes the
    /// reader, which drops the write half.
    fn close(&self, reason: &str) {
        let pending = {
            let mut state = lock(&self.state);
            if state.closed.is_none() {
                state.closed = Some(reason.to_owned());
            }
            state.relay_deadlines.clear();
            std::mem::take(&mut state.pending)
        };
        for (_, waiter) in pending {
            match waiter {
                Waiter::Call(tx) => {
                    let _ = tx.send(Err(self.lost(reason)));
                }
                Waiter::Relay(relay) => {
                    // Its client's reply is written by a task of its own:
                    // this may run on a writer.
                    let (daemon, lost) = (self.daemon.clone(), self.lost(reason));
                    if let Ok(rt) = tokio::runtime::Handle::try_current() {
                        rt.spawn(async move { relay.complete(&daemon, Err(lost)).await });
                    }
                }
            }
        }
        self.shutdown.notify_one();
    }

    /// Closes the connection if it had no call for `limit`.
    fn close_if_idle(&self, limit: Duration) -> bool {
        let mut state = lock(&self.state);
        if state.closed.is_some() || !state.pending.is_empty() || state.last_used.elapsed() < limit {
            return false;
        }
        state.closed = Some(format!("closed after {} s without calls", limit.as_secs_f64()));
        true
    }

    /// Handles one frame from the peer; a reply to a relayed call comes
    /// back for the reader to hand on.
    fn dispatch(self: &Arc<Self>, header: Header, payload: Vec<u8>) -> Option<(Relay, Reply)> {
        match header.type_ {
            MessageType::Reply | MessageType::ReplyWithFds => match self.take_waiter(header.serial) {
                Some(Waiter::Call(tx)) => {
                    let _ = tx.send(Ok(Reply { header, payload }));
                }
                Some(Waiter::Relay(relay)) => return Some((relay, Reply { header, payload })),
                None => tracing::debug!(
                    target: "rpc.peer",
                    "{}: discarding a reply nobody waits for (serial {}, procedure {})",
                    self.daemon, header.serial, header.proc_
                ),
            },
            MessageType::Message if header.prog == KEEPALIVE_PROGRAM && header.proc_ == KEEPALIVE_PING => {
                let shared = Arc::clone(self);
                tokio::spawn(async move {
                    let pong = keepalive_frame(KEEPALIVE_PONG);
                    if tokio::time::timeout(PONG_WRITE_LIMIT, shared.write(&pong))
                        .await
                        .is_err()
                    {
                        shared.close("the peer does not read (a PONG could not be written)");
                    }
                });
            }
            _ => tracing::trace!(
                target: "rpc.peer",
                "{}: ignoring a {:?} of program {:#x} procedure {}",
                self.daemon, header.type_, header.prog, header.proc_
            ),
        }
        None
    }
}

/// The reader task: frames in until the connection closes.
async fn read_loop(
    shared: Arc<Shared>,
    mut rd: OwnedReadHalf,
    idle_close: Option<Duration>,
    events: Option<tokio::sync::mpsc::Sender<(Header, Vec<u8>)>>,
    keepalive: Option<(Duration, u32)>,
) {
    let mut frames = FrameBuffer::default();
    let (ping_every, ping_limit) = keepalive.unwrap_or((TICK_MAX, u32::MAX));
    let mut last_rx = tokio::time::Instant::now();
    let mut unanswered = 0u32;
    // One timer for the connection's whole life rather than new ones per
    // frame (registering timers per reply cost more than the reply): it
    // ticks at a quarter of the shortest limit, at most every second, and
    // each tick checks the keepalive, the idle limit and the deadlines of
    // relayed calls.
    let shortest = [keepalive.map(|(every, _)| every), idle_close]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(TICK_MAX);
    let mut ticker = tokio::time::interval((shortest / 4).clamp(TICK_MIN, TICK_MAX));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = shared.shutdown.notified();
    tokio::pin!(shutdown);
    let reason = loop {
        tokio::select! {
            biased;
            frame = frames.next(&mut rd) => match frame {
                Ok(Some((header, payload))) => {
                    last_rx = tokio::time::Instant::now();
                    unanswered = 0;
                    match &events {
                    Some(tx) if header.prog == REMOTE_PROGRAM && header.type_ == MessageType::Message => {
                        if tx.send((header, payload)).await.is_err() {
                            break "nobody takes its events any more".to_owned();
                        }
                    }
                    _ => {
                        if let Some((relay, reply)) = shared.dispatch(header, payload) {
                            relay.complete(&shared.daemon, Ok(reply)).await;
                        }
                    }
                    }
                }
                Ok(None) => break "the peer closed the connection".to_owned(),
                Err(reason) => break reason,
            },
            () = &mut shutdown => {
                break shared.closed_reason().unwrap_or_else(|| "closed".to_owned());
            }
            now = ticker.tick() => {
                if keepalive.is_some() && now >= last_rx + ping_every * (unanswered + 1) {
                    if unanswered >= ping_limit {
                        break format!(
                            "no keepalive answer from {} for {} s",
                            shared.daemon,
                            (ping_every * unanswered).as_secs_f64()
                        );
                    }
                    unanswered += 1;
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let ping = keepalive_frame(KEEPALIVE_PING);
                        if tokio::time::timeout(PONG_WRITE_LIMIT, shared.write(&ping)).await.is_err() {
                            shared.close("the peer does not read (a PING could not be written)");
                        }
                    });
                }
                if let Some(limit) = idle_close
                    && shared.close_if_idle(limit)
                {
                    break shared.closed_reason().unwrap_or_else(|| "idle".to_owned());
                }
                for relay in shared.expired_relays(now) {
                    let timed_out = relay.timed_out(&shared.daemon);
                    tracing::warn!(target: "rpc.peer", "{}", timed_out);
                    relay.complete(&shared.daemon, Err(timed_out)).await;
                }
            }
        }
    };
    tracing::debug!(target: "rpc.peer", "connection to {} closed: {reason}", shared.daemon);
    shared.close(&reason);
    shared.writer.lock().await.take();
}

/// Whole frames from a byte stream. Cancel-safe: bytes read stay in the
/// buffer when `next` is dropped, so the reader can wait on other things.
#[derive(Debug, Default)]
struct FrameBuffer {
    buf: Vec<u8>,
}

impl FrameBuffer {
    /// The next frame's header and payload; `None` at the end of the stream
    /// between frames; a reason to close the connection otherwise.
    async fn next(&mut self, rd: &mut OwnedReadHalf) -> Result<Option<(Header, Vec<u8>)>, String> {
        loop {
            if let Some(frame) = self.take()? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            match rd.read_buf(&mut self.buf).await {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => return Err("the peer closed the connection in the middle of a frame".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(format!("cannot read: {}", describe_io(&e))),
            }
        }
    }

    fn take(&mut self) -> Result<Option<(Header, Vec<u8>)>, String> {
        let Some(word) = self.buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let total = message::check_length(u32::from_be_bytes(*word))
            .map_err(|e| format!("bad frame: {e}"))?
            + LEN_SIZE as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let (header, payload) = message::split_body(&self.buf[LEN_SIZE as usize..total])
            .map_err(|e| format!("bad frame: {e}"))?;
        let payload = payload.to_vec();
        self.buf.drain(..total);
        Ok(Some((header, payload)))
    }
}
