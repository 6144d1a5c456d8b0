//! QMP, the QEMU Machine Protocol, spoken over the monitor's unix socket
//! (`-chardev socket,…,server=on,wait=off -mon …,mode=control`).
//!
//! The protocol is newline-delimited JSON objects in both directions:
//!
//! 1. On connect QEMU sends a greeting:
//!    `{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 22},
//!    "package": "…"}, "capabilities": ["oob"]}}`.
//! 2. The client leaves capabilities-negotiation mode with
//!    `{"execute": "qmp_capabilities"}`; QEMU refuses every other command
//!    (and sends no events) until then.
//! 3. Commands are `{"execute": NAME, "arguments": {…}, "id": N}`; the reply
//!    echoes the id: `{"return": VALUE, "id": N}` or
//!    `{"error": {"class": CLASS, "desc": TEXT}, "id": N}`.
//! 4. Events arrive at any time, between replies:
//!    `{"event": NAME, "data": {…}, "timestamp": {"seconds": S, "microseconds": U}}`.
//! 5. When QEMU exits, the socket reaches end of file. QEMU serves one
//!    client at a time: a second connection waits until the first closes.
//!
//! Design: after the greeting, a reader task owns the read half and a writer
//! task the write half. [`Qmp`] is a cheap, cloneable handle: `execute`
//! registers the command in a table of pending commands (keyed by id),
//! queues its line for the writer and awaits the reply, so several commands
//! may be pending while events keep flowing to the [`QmpEvents`] channel.
//! The pending table also answers "what is the monitor busy with, and since
//! when" ([`Qmp::busy_since`], [`Qmp::pending`]) for `virsh domcontrol`.
//! A command whose caller gave up (timeout, dropped future) stays pending
//! until QEMU answers it: QEMU is still working on it, the monitor is still
//! occupied. When the connection ends, every pending command fails with
//! [`QmpError::Closed`] and the event channel ends. Dropping the last handle
//! closes the connection.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

#[cfg(test)]
mod tests;

/// How long [`Qmp::execute`] waits for a reply.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest line accepted from QEMU (`query-qmp-schema` is ~200 KiB); a
/// longer one is a protocol violation and closes the connection.
const MAX_LINE: u64 = 16 << 20;

/// The events QEMU sent, in order. Unbounded: QEMU's event rate is low (it
/// rate-limits the chatty ones) and losing `STOP` or `SHUTDOWN` would leave
/// the domain state wrong, while blocking the reader would stall replies.
pub type QmpEvents = mpsc::UnboundedReceiver<QmpEvent>;

/// Why a QMP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("cannot connect to QEMU monitor socket {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "QEMU monitor {} did not complete its greeting and capabilities negotiation within {} ms",
        path.display(),
        after.as_millis()
    )]
    ConnectTimeout { path: PathBuf, after: Duration },
    #[error("QEMU monitor {} did not greet as QMP: {detail}", path.display())]
    Greeting { path: PathBuf, detail: String },
    #[error("QEMU monitor closed before replying to '{command}' (QEMU exited or closed the connection)")]
    Closed { command: String },
    #[error(
        "no reply from QEMU to '{command}' within {} ms; the monitor stays occupied until QEMU answers",
        after.as_millis()
    )]
    Timeout { command: String, after: Duration },
    #[error("unable to execute QEMU command '{command}': {desc}")]
    Command {
        command: String,
        /// QMP error class, e.g. `GenericError`, `CommandNotFound`, `DeviceNotFound`.
        class: String,
        desc: String,
    },
    #[error("malformed reply from QEMU to '{command}': {detail}")]
    Protocol { command: String, detail: String },
}

/// An asynchronous QMP event.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// `STOP`, `RESUME`, `SHUTDOWN`, `POWERDOWN`, `DEVICE_DELETED`, …
    pub name: String,
    /// The event's `data` object (`Value::Null` when QEMU sent none).
    pub data: Value,
    /// When QEMU emitted it, if it said.
    pub timestamp: Option<SystemTime>,
}

/// What QEMU said about itself on connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpGreeting {
    pub major: u64,
    pub minor: u64,
    pub micro: u64,
    /// Distribution package string, e.g. `Debian 1:7.2+dfsg-7`.
    pub package: String,
    pub capabilities: Vec<String>,
}

/// A handle on one QMP connection; clones share the connection.
#[derive(Debug, Clone)]
pub struct Qmp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    greeting: QmpGreeting,
    peer_pid: Option<i32>,
    next_id: AtomicU64,
    shared: Arc<Shared>,
    /// Lines for the writer task; dropping it ends that task.
    lines: mpsc::UnboundedSender<String>,
    /// Dropped with the last handle: tells the reader task to stop.
    _stop: oneshot::Sender<()>,
}

/// State the handles and both tasks share.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    pending: HashMap<u64, Pending>,
}

#[derive(Debug)]
struct Pending {
    command: String,
    started: Instant,
    reply: oneshot::Sender<Result<Value, QmpError>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every
        // critical section is a single map or flag update.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the connection closed and fails every pending command.
    fn close(&self) {
        let drained: Vec<Pending> = {
            let mut st = self.lock();
            st.closed = true;
            st.pending.drain().map(|(_, p)| p).collect()
        };
        for p in drained {
            let _ = p.reply.send(Err(QmpError::Closed { command: p.command }));
        }
    }
}

impl Qmp {
    /// Connects to the QMP socket at `path`, reads the greeting and
    /// negotiates capabilities, all within `timeout`. One attempt: the caller
    /// retries while QEMU is still starting (see `process::QemuProcess`).
    pub async fn connect(path: &Path, timeout: Duration) -> Result<(Qmp, QmpEvents), QmpError> {
        match tokio::time::timeout(timeout, Self::connect_inner(path, timeout)).await {
            Ok(r) => r,
            Err(_) => Err(QmpError::ConnectTimeout {
                path: path.to_owned(),
                after: timeout,
            }),
        }
    }

    async fn connect_inner(path: &Path, timeout: Duration) -> Result<(Qmp, QmpEvents), QmpError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| QmpError::Connect {
                path: path.to_owned(),
                source,
            })?;
        let peer_pid = stream.peer_cred().ok().and_then(|c| c.pid());
        let (rd, wr) = stream.into_split();
        let mut reader = BufReader::new(rd);
        let greeting_err = |detail: String| QmpError::Greeting {
            path: path.to_owned(),
            detail,
        };
        let mut line = Vec::new();
        match read_line(&mut reader, &mut line).await {
            Ok(0) => {
                return Err(greeting_err(
                    "the connection closed before the greeting (QEMU exited?)".into(),
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(greeting_err(format!("cannot read the greeting: {e}"))),
        }
        let greeting = parse_greeting(&line).map_err(greeting_err)?;

        let shared = Arc::new(Shared::default());
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (line_tx, line_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(read_loop(reader, shared.clone(), event_tx, stop_rx));
        tokio::spawn(write_loop(wr, shared.clone(), line_rx));
        let qmp = Qmp {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                greeting,
                peer_pid,
                next_id: AtomicU64::new(1),
                shared,
                lines: line_tx,
                _stop: stop_tx,
            }),
        };
        qmp.execute_with_timeout("qmp_capabilities", None, timeout)
            .await?;
        Ok((qmp, event_rx))
    }

    /// Runs `command` with `arguments` (an object) and returns QEMU's
    /// `return` value, waiting at most [`DEFAULT_COMMAND_TIMEOUT`].
    pub async fn execute(&self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.execute_with_timeout(command, arguments, DEFAULT_COMMAND_TIMEOUT)
            .await
    }

    /// [`Qmp::execute`] with an explicit timeout.
    pub async fn execute_with_timeout(
        &self,
        command: &str,
        arguments: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, QmpError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = Map::new();
        msg.insert("execute".into(), Value::from(command));
        if let Some(args) = arguments {
            msg.insert("arguments".into(), args);
        }
        msg.insert("id".into(), Value::from(id));
        let mut line = Value::Object(msg).to_string();
        line.push('\n');

        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.inner.shared.lock();
            if st.closed {
                return Err(QmpError::Closed {
                    command: command.into(),
                });
            }
            st.pending.insert(
                id,
                Pending {
                    command: command.into(),
                    started: Instant::now(),
                    reply: tx,
                },
            );
        }
        if self.inner.lines.send(line).is_err() {
            // The writer task ended: the connection is being torn down.
            self.inner.shared.close();
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            // The sender was dropped without a reply: only on close.
            Ok(Err(_)) => Err(QmpError::Closed {
                command: command.into(),
            }),
            Err(_) => Err(QmpError::Timeout {
                command: command.into(),
                after: timeout,
            }),
        }
    }

    /// When the oldest command still waiting for QEMU's reply was sent, or
    /// `None` when the monitor is idle.
    pub fn busy_since(&self) -> Option<Instant> {
        self.inner.shared.lock().pending.values().map(|p| p.started).min()
    }

    /// The commands waiting for QEMU's reply, oldest first.
    pub fn pending(&self) -> Vec<(String, Instant)> {
        let mut v: Vec<(String, Instant)> = self
            .inner
            .shared
            .lock()
            .pending
            .values()
            .map(|p| (p.command.clone(), p.started))
            .collect();
        v.sort_by_key(|(_, t)| *t);
        v
    }

    /// Whether the connection has ended (QEMU exited or a protocol error).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.lock().closed
    }

    pub fn greeting(&self) -> &QmpGreeting {
        &self.inner.greeting
    }

    /// The socket path this handle is connected to.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The pid of the process at the other end (`SO_PEERCRED`), to check
    /// that a monitor found after a restart belongs to the expected QEMU.
    pub fn peer_pid(&self) -> Option<i32> {
        self.inner.peer_pid
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes; `Ok(0)` at end of file.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> std::io::Result<usize> {
    let n = reader.take(MAX_LINE).read_until(b'\n', line).await?;
    if n as u64 == MAX_LINE && line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line longer than {MAX_LINE} bytes"),
        ));
    }
    Ok(n)
}

fn parse_greeting(line: &[u8]) -> Result<QmpGreeting, String> {
    let text = || {
        String::from_utf8_lossy(line)
            .trim()
            .chars()
            .take(200)
            .collect::<String>()
    };
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("{e}: '{}'", text()))?;
    let qmp = v
        .get("QMP")
        .ok_or_else(|| format!("no \"QMP\" member in '{}'", text()))?;
    let version = &qmp["version"];
    let num = |k: &str| version["qemu"][k].as_u64().unwrap_or(0);
    Ok(QmpGreeting {
        major: num("major"),
        minor: num("minor"),
        micro: num("micro"),
        package: version["package"].as_str().unwrap_or("").trim().to_owned(),
        capabilities: qmp["capabilities"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
    })
}

/// Owns the read half: routes replies to pending commands and events to the
/// channel, until end of file, a read error or the last handle is dropped.
async fn read_loop(
    mut reader: BufReader<OwnedReadHalf>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<QmpEvent>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = tokio::select! {
            _ = &mut stop => break,
            r = read_line(&mut reader, &mut line) => r,
        };
        match read {
            Ok(0) => break,
            Ok(_) => dispatch_line(&line, &shared, &events),
            Err(e) => {
                tracing::warn!(target: "qemu.qmp", "closing QEMU monitor after read error: {e}");
                break;
            }
        }
    }
    shared.close();
    // `events` is dropped here: the receiver sees the end of the stream.
}

fn dispatch_line(line: &[u8], shared: &Shared, events: &mpsc::UnboundedSender<QmpEvent>) {
    let msg: Value = match serde_json::from_slice(line) {
        Ok(Value::Object(m)) => Value::Object(m),
        Ok(_) | Err(_) => {
            tracing::warn!(
                target: "qemu.qmp",
                "ignoring a line from QEMU that is not a JSON object: {}",
                String::from_utf8_lossy(line).trim()
            );
            return;
        }
    };
    if let Some(name) = msg.get("event").and_then(Value::as_str) {
        let _ = events.send(QmpEvent {
            name: name.to_owned(),
            data: msg.get("data").cloned().unwrap_or(Value::Null),
            timestamp: parse_timestamp(&msg["timestamp"]),
        });
        return;
    }
    let Some(id) = msg.get("id").and_then(Value::as_u64) else {
        // QEMU answers without an id only when it could not parse a command.
        tracing::warn!(target: "qemu.qmp", "QEMU message without id: {msg}");
        return;
    };
    let Some(p) = shared.lock().pending.remove(&id) else {
        tracing::debug!(target: "qemu.qmp", "reply to command {id}, whose caller gave up: {msg}");
        return;
    };
    let result = reply_result(&p.command, msg);
    let _ = p.reply.send(result);
}

fn reply_result(command: &str, mut msg: Value) -> Result<Value, QmpError> {
    if let Some(v) = msg.get_mut("return") {
        return Ok(v.take());
    }
    if let Some(err) = msg.get("error") {
        let field = |k: &str| err[k].as_str().unwrap_or("").to_owned();
        return Err(QmpError::Command {
            command: command.into(),
            class: field("class"),
            desc: field("desc"),
        });
    }
    Err(QmpError::Protocol {
        command: command.into(),
        detail: format!("neither \"return\" nor \"error\" in {msg}"),
    })
}

fn parse_timestamp(ts: &Value) -> Option<SystemTime> {
    let secs = ts["seconds"].as_u64()?;
    let micros = ts["microseconds"].as_u64()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs) + Duration::from_micros(micros))
}

/// Owns the write half, so a caller dropping its future never leaves half
/// a command on the wire. Ends when the last handle is dropped (closing our
/// side, which makes QEMU close the connection) or on a write error.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    shared: Arc<Shared>,
    mut lines: mpsc::UnboundedReceiver<String>,
) {
    while let Some(line) = lines.recv().await {
        if let Err(e) = writer.write_all(line.as_bytes()).await {
            tracing::warn!(target: "qemu.qmp", "cannot write to QEMU monitor: {e}");
            shared.close();
            break;
        }
    }
}
