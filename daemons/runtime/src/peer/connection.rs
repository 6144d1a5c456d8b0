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
use crate::observe::inflight::Waiting;
use modvirt_wire::message::{self, LEN_SIZE, encode_frame};
use modvirt_wire::observe::{OBSERVE_PROGRAM, OBSERVE_VERSION, procs};
use modvirt_wire::program::{
    KEEPALIVE_PING, KEEPALIVE_PONG, KEEPALIVE_PROGRAM, REMOTE_PROGRAM, REMOTE_VERSION, keepalive_frame,
};
use modvirt_wire::remote::{
    AUTH_NONE, AuthListRet, ConnectOpenArgs, ConnectSetIdentityArgs, ConnectSupportsFeatureArgs,
    ConnectSupportsFeatureRet, feature,
};
use modvirt_wire::{Header, MessageType, RpcError, Status, XdrDecode, XdrEncode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
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
    pending: HashMap<u32, ReplySender>,
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
        let (rd, wr) = stream.into_split();
        let shared = Arc::new(Shared {
            daemon: target.daemon.clone(),
            writer: tokio::sync::Mutex::new(Some(wr)),
            state: Mutex::new(State {
                pending: HashMap::new(),
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
        let context = Header {
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
        let mut frames = encode_frame(&context, |e| scope.context.encode(e));
        frames.extend_from_slice(&encode_frame(&call, |e| e.raw(args)));
        scope.within(procedure, shared.write(&frames)).await?;
        scope
            .within(procedure, async {
                rx.await
                    .unwrap_or_else(|_| Err(shared.lost("the connection's reader stopped")))
            })
            .await
    }
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
        state.pending.insert(serial, tx);
        state.last_used = Instant::now();
        Ok(Pending { shared: self, serial })
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
            std::mem::take(&mut state.pending)
        };
        for (_, tx) in pending {
            let _ = tx.send(Err(self.lost(reason)));
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

    /// When the reader should next check for idleness.
    fn idle_check_at(&self, limit: Duration) -> tokio::time::Instant {
        let state = lock(&self.state);
        let from = if state.pending.is_empty() {
            state.last_used
        } else {
            Instant::now()
        };
        tokio::time::Instant::from_std(from + limit)
    }

    /// Handles one frame from the peer.
    fn dispatch(self: &Arc<Self>, header: Header, payload: Vec<u8>) {
        match header.type_ {
            MessageType::Reply | MessageType::ReplyWithFds => {
                let tx = lock(&self.state).pending.remove(&header.serial);
                match tx {
                    Some(tx) => {
                        let _ = tx.send(Ok(Reply { header, payload }));
                    }
                    None => tracing::debug!(
                        target: "rpc.peer",
                        "{}: discarding a reply nobody waits for (serial {}, procedure {})",
                        self.daemon, header.serial, header.proc_
                    ),
                }
            }
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
    // Far enough never to fire when the connection is kept until dropped.
    let never = Duration::from_secs(365 * 24 * 3600);
    let (ping_every, ping_limit) = keepalive.unwrap_or((never, u32::MAX));
    let mut last_rx = tokio::time::Instant::now();
    let mut unanswered = 0u32;
    let reason = loop {
        let idle_check = shared.idle_check_at(idle_close.unwrap_or(never));
        let ping_at = last_rx + ping_every * (unanswered + 1);
        tokio::select! {
            () = tokio::time::sleep_until(ping_at), if keepalive.is_some() => {
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
                    _ => shared.dispatch(header, payload),
                    }
                }
                Ok(None) => break "the peer closed the connection".to_owned(),
                Err(reason) => break reason,
            },
            () = shared.shutdown.notified() => {
                break shared.closed_reason().unwrap_or_else(|| "closed".to_owned());
            }
            () = tokio::time::sleep_until(idle_check), if idle_close.is_some() => {
                if shared.close_if_idle(idle_close.unwrap_or(never)) {
                    break shared.closed_reason().unwrap_or_else(|| "idle".to_owned());
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
