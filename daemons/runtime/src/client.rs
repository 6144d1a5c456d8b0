//! One client connection (libvirt's `virNetServerClient`).
//!
//! The read loop takes frames off the socket (length word checked before
//! anything is allocated, body buffered only as bytes arrive), answers
//! keepalive PINGs itself, rejects what the procedure table forbids, and
//! hands every valid call to the server's worker pool. At most
//! `max_client_requests` calls of one client are in progress at a time:
//! beyond that the loop stops reading, which pushes back on the client.
//! Replies are written whole under a per-client lock, by a task of their own
//! once a worker has finished the call, so a client that does not read its
//! replies holds its own request slots but never a worker.
//!
//! A client is dropped (with a log line) when it sends a frame with a bad
//! length or header, stalls in the middle of a frame, sends nothing at all
//! after connecting, misses `keepalive_count` PINGs, or is closed by an
//! admin (`virt-admin client-disconnect`).

mod reader;

use crate::daemon::DaemonShared;
use crate::idle::ClientPresence;
use crate::paths::SocketRole;
use crate::server::Server;
use modvirt_wire::message::{MESSAGE_MAX, encode_frame};
use modvirt_wire::program::{KEEPALIVE_PING, KEEPALIVE_PONG, KEEPALIVE_PROGRAM, KEEPALIVE_VERSION};
use modvirt_wire::{Header, RpcError, Status, XdrEncode};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::Notify;

/// The reading half of a client's stream (UNIX, TCP or TLS).
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a client's stream.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// An accepted connection, whatever its transport.
pub struct Accepted {
    pub rd: ReadHalf,
    pub wr: WriteHalf,
    /// The socket under the stream, shut down when the client ends.
    pub fd: std::os::fd::RawFd,
    pub identity: PeerIdentity,
    /// `modvirt_wire::admin::transport::{UNIX, TCP, TLS}`.
    pub transport: u32,
    pub role: SocketRole,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("fd", &self.fd)
            .field("identity", &self.identity)
            .field("transport", &self.transport)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Who is on the other end of a UNIX socket (`SO_PEERCRED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// `/proc/PID/comm` at connect time.
    pub command: String,
}

impl PeerIdentity {
    fn of(stream: &UnixStream) -> PeerIdentity {
        match stream.peer_cred() {
            Ok(c) => {
                let pid = c.pid().unwrap_or(-1);
                let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|s| s.trim_end().to_owned())
                    .unwrap_or_default();
                PeerIdentity {
                    pid,
                    uid: c.uid(),
                    gid: c.gid(),
                    command,
                }
            }
            Err(_) => PeerIdentity {
                pid: -1,
                uid: u32::MAX,
                gid: u32::MAX,
                command: String::new(),
            },
        }
    }
}

/// A connected client, shared by its read loop and the workers running its calls.
pub struct Client {
    pub id: u64,
    pub server: String,
    pub transport: u32,
    /// The socket it connected through.
    pub role: SocketRole,
    /// Milliseconds since the epoch when it connected.
    pub connected_ms: u64,
    /// Connected through a read-only socket (or opened read-only).
    readonly: AtomicBool,
    /// Held once the client counts for the idle timer. Clients of the
    /// admin socket stay passive (unset) while they only call the OBSERVE
    /// program; every other client counts from the moment it connects.
    presence: Mutex<Option<ClientPresence>>,
    /// `presence` is set (read without the lock on every call).
    active: AtomicBool,
    wire_ref: Arc<modvirt_wire::observe::ClientRef>,
    pub identity: PeerIdentity,
    /// The identity this client acts for (`CONNECT_SET_IDENTITY`, sent by a
    /// daemon forwarding its own client's calls), and how observers see it.
    claimed: std::sync::OnceLock<(crate::identity::Identity, Arc<modvirt_wire::observe::ClientRef>)>,
    /// Its own identity, as passed on when its calls are forwarded.
    own: std::sync::OnceLock<crate::identity::Identity>,
    /// Set when the client opened another daemon's URI: its calls go there.
    session: Mutex<Option<Arc<crate::peer::session::Session>>>,
    /// `session` is set (read without the lock on every call).
    has_session: AtomicBool,
    /// Connections of this client's own to the owners of other drivers
    /// whose events it registered for (by owner), so that their events
    /// reach it; see [`crate::route::forward`].
    pub(crate) side_sessions:
        tokio::sync::Mutex<std::collections::HashMap<&'static str, Arc<crate::peer::session::Session>>>,
    opened: AtomicBool,
    keepalive_on: AtomicBool,
    close_callback: AtomicBool,
    writer: tokio::sync::Mutex<WriteHalf>,
    /// Event frames waiting to be written, in order, by the client's event
    /// writer task (started with the first event).
    events_out: Mutex<Option<tokio::sync::mpsc::Sender<Vec<u8>>>>,
    kill: Notify,
    killed: AtomicBool,
    last_rx: Mutex<Instant>,
    missed_pings: AtomicU32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("server", &self.server)
            .field("identity", &self.identity)
            .finish()
    }
}

impl Client {
    pub fn readonly(&self) -> bool {
        self.readonly.load(Ordering::Relaxed)
    }

    pub fn set_readonly(&self) {
        self.readonly.store(true, Ordering::Relaxed);
    }

    pub fn is_open(&self) -> bool {
        self.opened.load(Ordering::Relaxed)
    }

    pub fn set_open(&self, open: bool) {
        self.opened.store(open, Ordering::Relaxed);
    }

    pub fn set_close_callback(&self, on: bool) {
        self.close_callback.store(on, Ordering::Relaxed);
    }

    pub fn has_close_callback(&self) -> bool {
        self.close_callback.load(Ordering::Relaxed)
    }

    /// A passive client does not keep the daemon alive.
    pub fn is_passive(&self) -> bool {
        !self.active.load(Ordering::Acquire)
    }

    /// Makes the client count for the idle timer (idempotent).
    pub fn make_active(&self, idle: &crate::idle::IdleTimer) {
        if self.active.load(Ordering::Acquire) {
            return;
        }
        let mut p = self.presence.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none() {
            *p = Some(idle.client_connected());
            self.active.store(true, Ordering::Release);
        }
    }

    /// The wire form of this client, for observers (shared by its calls).
    pub fn to_ref(&self) -> Arc<modvirt_wire::observe::ClientRef> {
        match self.claimed.get() {
            Some((_, r)) => r.clone(),
            None => self.wire_ref.clone(),
        }
    }

    /// Records the identity this client acts for (`CONNECT_SET_IDENTITY`);
    /// its calls show that process from now on. Only once per connection.
    pub fn claim_identity(
        &self,
        identity: crate::identity::Identity,
    ) -> Result<(), crate::identity::Identity> {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", identity.pid))
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default();
        let r = Arc::new(modvirt_wire::observe::ClientRef {
            server: self.wire_ref.server.clone(),
            id: self.id,
            pid: identity.pid,
            comm: format!("{comm} via {}", self.identity.command),
        });
        self.claimed.set((identity, r)).map_err(|(identity, _)| identity)
    }

    /// The session passing this client's calls on to another daemon, if it
    /// opened that daemon's URI.
    pub fn session(&self) -> Option<Arc<crate::peer::session::Session>> {
        if !self.has_session.load(Ordering::Acquire) {
            return None;
        }
        self.session.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether calls are passed on to another daemon (one atomic load).
    pub fn has_session(&self) -> bool {
        self.has_session.load(Ordering::Acquire)
    }

    /// Starts (`Some`) or ends (`None`) passing calls on.
    pub fn set_session(&self, session: Option<Arc<crate::peer::session::Session>>) {
        let mut held = self.session.lock().unwrap_or_else(|e| e.into_inner());
        self.has_session.store(session.is_some(), Ordering::Release);
        *held = session;
    }

    /// Who this client's calls are made for: the identity it claimed, or
    /// its own process.
    pub fn effective_identity(&self) -> &crate::identity::Identity {
        match self.claimed.get() {
            Some((identity, _)) => identity,
            None => self.own.get_or_init(|| {
                crate::identity::Identity::of_process(self.identity.pid, self.identity.uid, self.identity.gid)
            }),
        }
    }

    /// Starts server-side keepalive (the client said it speaks it).
    pub fn start_keepalive(&self) {
        self.keepalive_on.store(true, Ordering::Relaxed);
    }

    /// True once the client was closed or its socket failed.
    pub fn is_closed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Disconnects the client (admin `CLIENT_CLOSE`, keepalive timeout, shutdown).
    pub fn close(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill.notify_one();
    }

    /// Queues an event frame for this client without waiting: frames are
    /// written in the order queued, by one task per client, so a client
    /// that does not read never holds up whoever emits the event. Past
    /// [`EVENT_QUEUE`] frames waiting, new events are dropped (logged).
    pub fn queue_event(self: &Arc<Self>, frame: Vec<u8>) {
        let mut out = self.events_out.lock().unwrap_or_else(|e| e.into_inner());
        let tx = out.get_or_insert_with(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(EVENT_QUEUE);
            let client = Arc::downgrade(self);
            tokio::spawn(async move {
                while let Some(frame) = rx.recv().await {
                    let Some(client) = client.upgrade() else { return };
                    client.send(&frame).await;
                }
            });
            tx
        });
        if tx.try_send(frame).is_err() {
            tracing::warn!(
                target: "rpc.client",
                "client {}: {EVENT_QUEUE} events wait to be written; dropping an event",
                self.id
            );
        }
    }

    /// Writes one whole frame; errors mean the client is gone and are ignored.
    pub async fn send(&self, frame: &[u8]) {
        let mut w = self.writer.lock().await;
        if w.write_all(frame).await.is_err() {
            self.close();
        }
    }

    async fn send_reply(&self, header: &Header, result: Result<Vec<u8>, RpcError>) {
        let frame = match result {
            Ok(payload) if payload.len() + 28 <= MESSAGE_MAX as usize => {
                encode_frame(&header.reply(Status::Ok), |e| e.raw(&payload))
            }
            Ok(payload) => {
                let err = RpcError::plain(
                    modvirt_wire::ErrorCode::RPC,
                    modvirt_wire::ErrorDomain::RPC,
                    format!(
                        "reply of {} bytes exceeds the message limit of {MESSAGE_MAX}",
                        payload.len()
                    ),
                );
                encode_frame(&header.reply(Status::Error), |e| err.encode(e))
            }
            Err(err) => encode_frame(&header.reply(Status::Error), |e| err.encode(e)),
        };
        self.send(&frame).await;
    }

    async fn send_keepalive(&self, proc_: i32) {
        self.send(&modvirt_wire::program::keepalive_frame(proc_)).await;
    }

    fn touch(&self) {
        *self.last_rx.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.missed_pings.store(0, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        self.last_rx.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

/// How many event frames may wait for one client before new ones are dropped.
pub const EVENT_QUEUE: usize = 1024;

/// Serves one accepted UNIX-socket connection until it ends.
pub async fn serve(daemon: Arc<DaemonShared>, server: Arc<Server>, stream: UnixStream, role: SocketRole) {
    let identity = PeerIdentity::of(&stream);
    let fd = stream.as_raw_fd();
    let (rd, wr) = match crate::quiet::split(stream) {
        Ok(halves) => halves,
        Err(e) => {
            tracing::warn!(target: "rpc.client", "cannot serve a connection: {e}");
            return;
        }
    };
    let accepted = Accepted {
        rd: Box::new(rd),
        wr: Box::new(wr),
        fd,
        identity,
        transport: modvirt_wire::admin::transport::UNIX,
        role,
    };
    serve_accepted(daemon, server, accepted).await;
}

/// Serves one accepted connection of any transport until it ends.
pub async fn serve_accepted(daemon: Arc<DaemonShared>, server: Arc<Server>, accepted: Accepted) {
    let Accepted {
        rd,
        wr,
        fd,
        identity,
        transport,
        role,
    } = accepted;
    let readonly = role == SocketRole::ReadOnly;
    daemon.observer.client_accepted(
        &role.fd_name(&daemon.name),
        modvirt_wire::observe::Process {
            pid: identity.pid,
            uid: identity.uid,
            comm: identity.command.clone(),
        },
    );
    let settings = server.client_settings();
    let id = server.next_client_id();
    let wire_ref = Arc::new(modvirt_wire::observe::ClientRef {
        server: server.name.clone(),
        id,
        pid: identity.pid,
        comm: identity.command.clone(),
    });
    let client = Arc::new(Client {
        id,
        wire_ref,
        server: server.name.clone(),
        transport,
        role,
        connected_ms: crate::observe::unix_ms(),
        readonly: AtomicBool::new(readonly),
        presence: Mutex::new(None),
        active: AtomicBool::new(false),
        identity,
        claimed: std::sync::OnceLock::new(),
        own: std::sync::OnceLock::new(),
        session: Mutex::new(None),
        side_sessions: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        has_session: AtomicBool::new(false),
        opened: AtomicBool::new(false),
        keepalive_on: AtomicBool::new(false),
        close_callback: AtomicBool::new(false),
        writer: tokio::sync::Mutex::new(wr),
        kill: Notify::new(),
        killed: AtomicBool::new(false),
        events_out: Mutex::new(None),
        last_rx: Mutex::new(Instant::now()),
        missed_pings: AtomicU32::new(0),
    });
    if let Err(n) = server.add_client(client.clone()) {
        tracing::warn!(
            target: "rpc.server",
            "Too many active clients ({n}) on server {}, dropping connection from pid {} ({})",
            server.name, client.identity.pid, client.identity.command
        );
        return;
    }
    if role != SocketRole::Admin {
        client.make_active(&daemon.idle);
    }
    tracing::debug!(
        target: "rpc.client",
        "client {} connected to {} (pid {}, uid {}, {}{})",
        client.id, server.name, client.identity.pid, client.identity.uid, client.identity.command,
        if readonly { ", read-only" } else { "" }
    );
    let keepalive = tokio::spawn(keepalive_loop(client.clone(), settings));
    let end = {
        let reader = reader::read_loop(
            &daemon,
            &server,
            &client,
            BufReader::with_capacity(16 * 1024, rd),
            settings,
        );
        tokio::select! {
            end = reader => end,
            _ = client.kill.notified() => reader::End::Closed,
        }
    };
    keepalive.abort();
    server.remove_client(client.id);
    // The client no longer counts, whatever its in-flight calls still do.
    drop(client.presence.lock().unwrap_or_else(|e| e.into_inner()).take());
    match end {
        reader::End::Eof => tracing::debug!(target: "rpc.client", "client {} disconnected", client.id),
        reader::End::Closed => {
            tracing::info!(target: "rpc.client", "client {} closed by the daemon", client.id)
        }
        reader::End::Dropped(why) => tracing::warn!(
            target: "rpc.client",
            "dropping client {} (pid {}, {}): {why}",
            client.id, client.identity.pid, client.identity.command
        ),
    }
    // Shut the socket down rather than wait for the writer lock: a write to
    // a client that does not read would hold it forever. Pending writes fail
    // and the descriptor closes with the last reference to the client (which
    // owns the write half, so `fd` is still open here).
    let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
}

/// Server-side keepalive: PING after `interval` s of silence, drop the
/// client after `count` PINGs without an answer.
async fn keepalive_loop(client: Arc<Client>, s: crate::server::ClientSettings) {
    if s.keepalive_interval <= 0 {
        return;
    }
    let interval = Duration::from_secs(s.keepalive_interval as u64);
    loop {
        tokio::time::sleep(interval).await;
        if !client.keepalive_on.load(Ordering::Relaxed) || client.killed.load(Ordering::Relaxed) {
            continue;
        }
        if client.silent_for() < interval {
            continue;
        }
        let missed = client.missed_pings.fetch_add(1, Ordering::Relaxed);
        if missed >= s.keepalive_count {
            tracing::warn!(
                target: "rpc.keepalive",
                "No response from client {} after {} keepalive messages in {} seconds",
                client.id,
                s.keepalive_count,
                client.silent_for().as_secs()
            );
            client.close();
            return;
        }
        // Not awaited: a client that does not read must not stall its own timeout.
        let c = client.clone();
        tokio::spawn(async move { c.send_keepalive(KEEPALIVE_PING).await });
    }
}
