//! A fake daemon admin socket that speaks OBSERVE from fixtures, for tests
//! of observers (this crate, the TUI, the exporter) while no daemon runs.
//!
//! It listens on a UNIX socket, answers OPEN / CLOSE / UNWATCH with an
//! empty OK, STATUS with the fixture `DaemonStatus` JSON, METRICS with
//! fixture text, SPANS by paging the fixture spans from the cursor, WATCH
//! with OK then one `WATCH_EVENT` message per fixture event; any other
//! program gets a libvirt error. It counts connections and records every
//! `(program, procedure)` called, so tests can assert that an observer
//! never connected, or only spoke OBSERVE. With `hang_status`, STATUS is
//! never answered (a stuck daemon).

use crate::client::FrameReader;
use modvirt_wire::message::encode_frame;
use modvirt_wire::observe::{
    Activation, CallerLink, Cause, Client, ClientRef, DaemonStatus, Document, Exit, ExitReason, Idle,
    InflightCall, OBSERVE_PROGRAM, Phase, Process, ProcessStats, SCHEMA, Span, SpansArgs, SpansPage,
    StateFile, Times, WaitOn, procs,
};
use modvirt_wire::{
    Encoder, ErrorCode, ErrorDomain, Header, MessageType, RpcError, Status, XdrDecode, XdrEncode,
};
use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the fake daemon answers.
#[derive(Debug, Clone, Default)]
pub struct FakeReplies {
    /// The STATUS document (JSON text).
    pub status: String,
    pub metrics: String,
    /// Served by SPANS, by `seq`.
    pub spans: Vec<Span>,
    /// WATCH_EVENT documents sent after WATCH.
    pub watch_events: Vec<String>,
    /// Send the WATCH_EVENTs before the WATCH reply (as a daemon whose
    /// stream starts before its reply is written may).
    pub events_before_reply: bool,
    /// Never answer STATUS.
    pub hang_status: bool,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    accepted: AtomicUsize,
    calls: Mutex<Vec<(u32, i32)>>,
}

/// The running fake; stops (and removes its socket) when dropped.
#[derive(Debug)]
pub struct FakeObserveServer {
    path: PathBuf,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FakeObserveServer {
    /// Binds `path` and serves `replies` on a background thread.
    pub fn start(path: &Path, replies: FakeReplies) -> io::Result<FakeObserveServer> {
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared::default());
        let replies = Arc::new(replies);
        let s = shared.clone();
        let thread = thread::Builder::new()
            .name("fake-observe".into())
            .spawn(move || accept_loop(&listener, &s, &replies))?;
        Ok(FakeObserveServer {
            path: path.to_owned(),
            shared,
            thread: Some(thread),
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every `(program, procedure)` called so far.
    pub fn calls(&self) -> Vec<(u32, i32)> {
        self.shared.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FakeObserveServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>, replies: &Arc<FakeReplies>) {
    let mut conns = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let (s, r) = (shared.clone(), replies.clone());
                conns.push(thread::spawn(move || {
                    let _ = serve(stream, &s, &r);
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(5)),
            Err(_) => break,
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

fn send(stream: &mut UnixStream, header: &Header, payload: impl FnOnce(&mut Encoder)) -> io::Result<()> {
    stream.write_all(&encode_frame(header, payload))
}

fn serve(mut stream: UnixStream, shared: &Shared, replies: &FakeReplies) -> io::Result<()> {
    // Short reads so the thread notices `stop`.
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    stream.set_nonblocking(false)?;
    let mut reader = FrameReader::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let h = match reader.next_frame(&mut stream) {
            Ok(h) => h,
            Err(crate::ClientError::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                continue;
            }
            Err(_) => return Ok(()),
        };
        if h.type_ != MessageType::Call {
            continue;
        }
        if let Ok(mut c) = shared.calls.lock() {
            c.push((h.prog, h.proc_));
        }
        let ok = h.reply(Status::Ok);
        if h.prog != OBSERVE_PROGRAM {
            let err = RpcError::new(
                ErrorCode::NO_SUPPORT,
                ErrorDomain::RPC,
                "this function is not supported by the connection driver",
                "fake observe server",
            );
            send(&mut stream, &h.reply(Status::Error), |e| err.encode(e))?;
            continue;
        }
        match h.proc_ {
            procs::OPEN | procs::UNWATCH => send(&mut stream, &ok, |_| {})?,
            procs::CLOSE => {
                send(&mut stream, &ok, |_| {})?;
                return Ok(());
            }
            procs::STATUS if replies.hang_status => {
                while !shared.stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(10));
                }
                return Ok(());
            }
            procs::STATUS => send_doc(&mut stream, &ok, &replies.status)?,
            procs::METRICS => send_doc(&mut stream, &ok, &replies.metrics)?,
            procs::SPANS => {
                let args = SpansArgs::from_xdr(reader.payload()).unwrap_or(SpansArgs { cursor: 0, max: 0 });
                send_doc(&mut stream, &ok, &spans_page(&replies.spans, args))?;
            }
            procs::WATCH => {
                if !replies.events_before_reply {
                    send(&mut stream, &ok, |_| {})?;
                }
                let event = Header {
                    proc_: procs::WATCH_EVENT,
                    type_: MessageType::Message,
                    serial: 0,
                    status: Status::Ok,
                    ..h
                };
                for text in &replies.watch_events {
                    send_doc(&mut stream, &event, text)?;
                }
                if replies.events_before_reply {
                    send(&mut stream, &ok, |_| {})?;
                }
            }
            _ => {
                let err = RpcError::new(
                    ErrorCode::NO_SUPPORT,
                    ErrorDomain::ADMIN,
                    "unknown procedure",
                    h.proc_.to_string(),
                );
                send(&mut stream, &h.reply(Status::Error), |e| err.encode(e))?;
            }
        }
    }
    Ok(())
}

fn send_doc(stream: &mut UnixStream, header: &Header, text: &str) -> io::Result<()> {
    let doc = Document {
        text: text.to_owned(),
    };
    send(stream, header, |e| doc.encode(e))
}

/// The page a daemon would return for `args`.
pub fn spans_page(spans: &[Span], args: SpansArgs) -> String {
    let page: Vec<Span> = spans
        .iter()
        .filter(|s| s.seq >= args.cursor)
        .take(args.max as usize)
        .cloned()
        .collect();
    let next_cursor = page.last().map_or(args.cursor, |s| s.seq + 1);
    let page = SpansPage {
        schema: SCHEMA,
        spans: page,
        next_cursor,
        missed: 0,
        dropped: 0,
    };
    serde_json::to_string(&page).unwrap_or_default()
}

/// A realistic STATUS of a daemon that runs, for fixtures: started by
/// socket activation from `virsh` 300 s before `now_ms`, idle timeout
/// 120 s held by one active client, one passive observer, no call in
/// flight, start-up phases `exec` → `config` → `sockets` → `drivers`
/// (with steps) → `ready`. Tests adjust the fields they care about.
pub fn sample_status(name: &str, pid: i32, now_ms: u64) -> DaemonStatus {
    let exec_ms = now_ms.saturating_sub(300_000);
    let virsh = Process {
        pid: 123,
        uid: 0,
        comm: "virsh".into(),
    };
    let phase = |name: &str, start_ms: f64, duration_ms: f64, detail: Option<&str>, children| Phase {
        name: name.into(),
        start_ms,
        duration_ms: Some(duration_ms),
        detail: detail.map(Into::into),
        children,
    };
    DaemonStatus {
        schema: SCHEMA,
        name: name.into(),
        version: "0.1.0".into(),
        pid,
        state: "running".into(),
        activation: Activation {
            cause: Cause::Socket,
            socket: Some(format!("{name}.socket")),
            client: Some(virsh.clone()),
            peer: None,
        },
        times: Times {
            exec_ms,
            ready_ms: Some(exec_ms + 230),
            first_client_ms: Some(exec_ms + 231),
            now_ms,
        },
        idle: Idle {
            timeout_s: 120,
            armed: false,
            remaining_s: None,
            active_clients: 1,
            inhibitors: vec![],
        },
        servers: vec![],
        clients: vec![
            Client {
                server: name.into(),
                id: 1,
                socket: "rw".into(),
                process: virsh,
                connected_ms: exec_ms + 231,
                passive: false,
            },
            Client {
                server: "admin".into(),
                id: 2,
                socket: "admin".into(),
                process: Process {
                    pid: 999,
                    uid: 0,
                    comm: "virt-daemons".into(),
                },
                connected_ms: now_ms,
                passive: true,
            },
        ],
        inflight: vec![],
        job_locks: vec![],
        phases: vec![
            phase("exec", 0.0, 2.0, None, vec![]),
            phase("config", 2.0, 1.0, None, vec![]),
            phase("sockets", 3.0, 4.0, None, vec![]),
            phase(
                "drivers",
                7.0,
                220.0,
                None,
                vec![
                    phase("enumerate", 7.0, 180.0, Some("enumerated 412 devices"), vec![]),
                    phase("reconnect", 187.0, 40.0, Some("reconnected 3 guests"), vec![]),
                ],
            ),
            phase("ready", 227.0, 3.0, None, vec![]),
        ],
        process: ProcessStats {
            rss_bytes: 12 << 20,
            cpu_seconds: 0.5,
            open_fds: 20,
            threads: 8,
        },
        dropped_events: 0,
    }
}

/// A state file, for fixtures: `name` (pid `pid`, start ticks 1) in
/// `state`, socket-activated by `virsh` (pid 55) 600 s before `now_ms` and
/// ready 200 ms later, on its third run; with `exit`, it exited 60 s before
/// `now_ms`. The admin socket is a path that does not exist. Tests adjust
/// the fields they care about.
pub fn sample_state_file(
    name: &str,
    pid: i32,
    state: &str,
    exit: Option<ExitReason>,
    now_ms: u64,
) -> StateFile {
    StateFile {
        schema: SCHEMA,
        name: name.into(),
        pid,
        pid_start_ticks: 1,
        state: state.into(),
        activation: Activation {
            cause: Cause::Socket,
            socket: Some(format!("{name}.socket")),
            client: Some(Process {
                pid: 55,
                uid: 0,
                comm: "virsh".into(),
            }),
            peer: None,
        },
        exec_ms: now_ms - 600_000,
        ready_ms: Some(now_ms - 599_800),
        exit: exit.map(|reason| Exit {
            reason,
            at_ms: now_ms - 60_000,
            signal: None,
            detail: None,
        }),
        admin_socket: format!("/nonexistent/{name}-admin-sock"),
        exit_gate: None,
        runs: 3,
        updated_ms: now_ms,
    }
}

/// A call in flight, for fixtures: `procedure` (call `id`, REMOTE program)
/// from `comm` (pid `pid`), started `age_s` before `now_ms`.
pub fn sample_call(
    id: u64,
    procedure: &str,
    age_s: f64,
    comm: &str,
    pid: i32,
    waiting_on: Option<WaitOn>,
    now_ms: u64,
) -> InflightCall {
    InflightCall {
        id,
        program: "REMOTE".into(),
        procedure: procedure.into(),
        serial: id as u32,
        client: ClientRef {
            server: "s".into(),
            id: 1,
            pid,
            comm: comm.into(),
        },
        started_ms: now_ms - (age_s * 1000.0) as u64,
        age_s,
        waiting_on,
        trace_id: None,
        caller: None,
    }
}

/// A cross-daemon hang, for fixtures: the [`sample_status`] of virtqemud
/// (pid `qemud_pid`) and virtnetworkd (pid `networkd_pid`). On virtqemud,
/// `virsh` (pid 123) DOMAIN_CREATE #17 (47 s) waits on the job lock of
/// `domain:vm1` held by DOMAIN_SUSPEND #12 (50 s, `virsh` pid 200), which
/// waits on virtnetworkd's NETWORK_LOOKUP_BY_NAME (`peer_call` where the
/// caller knows it); on virtnetworkd, that call, #3 (49 s, from virtqemud),
/// waits on `callee_waits_on`.
pub fn sample_hang(
    now_ms: u64,
    qemud_pid: i32,
    networkd_pid: i32,
    peer_call: Option<u64>,
    callee_waits_on: WaitOn,
) -> (DaemonStatus, DaemonStatus) {
    let mut q = sample_status("virtqemud", qemud_pid, now_ms);
    let lock = WaitOn::JobLock {
        object: "domain:vm1".into(),
        holder_call: 12,
        holder_procedure: "DOMAIN_SUSPEND".into(),
        held_s: 50.0,
    };
    let peer = WaitOn::Peer {
        daemon: "virtnetworkd".into(),
        procedure: "NETWORK_LOOKUP_BY_NAME".into(),
        serial: 9,
        peer_call,
    };
    q.inflight = vec![
        sample_call(17, "DOMAIN_CREATE", 47.0, "virsh", 123, Some(lock), now_ms),
        sample_call(12, "DOMAIN_SUSPEND", 50.0, "virsh", 200, Some(peer), now_ms),
    ];
    let mut n = sample_status("virtnetworkd", networkd_pid, now_ms);
    let mut callee = sample_call(
        3,
        "NETWORK_LOOKUP_BY_NAME",
        49.0,
        "virtqemud",
        qemud_pid,
        Some(callee_waits_on),
        now_ms,
    );
    callee.caller = Some(CallerLink {
        daemon: "virtqemud".into(),
        call: 12,
    });
    n.inflight = vec![callee];
    (q, n)
}
