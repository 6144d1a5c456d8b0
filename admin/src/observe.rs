//! A blocking client of the OBSERVE program (`modvirt_wire::observe`).
//!
//! Protocol: the daemon's admin socket serves libvirt's ADMIN program and
//! OBSERVE (`0x4d564f42`, version 1) side by side, in libvirt's framing
//! (see [`crate::client`]). A session is `OPEN(flags)`, any number of
//! `STATUS(flags)` → JSON `DaemonStatus`, `METRICS(flags)` → Prometheus
//! text, `SPANS(cursor, max)` → JSON `SpansPage`, optionally `WATCH
//! (interval_ms)` after which the daemon sends `MESSAGE` frames of
//! procedure 7 (`WATCH_EVENT`, JSON `WatchEvent`) until `UNWATCH`, then
//! `CLOSE`. A connection that only speaks OBSERVE is passive: it never
//! keeps the daemon alive.
//!
//! Every read and write, and the connect itself, is bounded by a timeout,
//! so a daemon that is stuck (or a full listen backlog) costs the observer
//! at most that long; [`ObserveError::is_timeout`] tells that case apart.
//! JSON documents from a newer, incompatible schema are refused with a
//! clear error rather than misread.
//!
//! This module never decides *whether* to connect: callers must only
//! connect to daemons found running (see
//! [`KnownDaemon::observe`](crate::discover::KnownDaemon::observe)).

pub mod fake;

use crate::client::{Client, ClientError};
use modvirt_wire::MessageType;
use modvirt_wire::observe::{
    DaemonStatus, Document, FlagsArgs, OBSERVE_PROGRAM, OBSERVE_VERSION, SCHEMA, SpansArgs, SpansPage,
    WatchArgs, WatchEvent, procs,
};
use modvirt_wire::program::{KEEPALIVE_PING, KEEPALIVE_PROGRAM};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, setsockopt, socket, sockopt};
use nix::sys::time::{TimeVal, TimeValLike};
use serde::de::DeserializeOwned;
use std::io;
use std::ops::ControlFlow;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// What went wrong talking to a daemon.
#[derive(Debug, Error)]
pub enum ObserveError {
    #[error("{daemon} is not running ({state}); not connecting, that could start it")]
    NotRunning { daemon: String, state: &'static str },
    #[error("cannot connect to {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("no answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("{procedure} failed: {source}")]
    Call {
        procedure: &'static str,
        source: ClientError,
    },
    #[error("malformed {what} document: {source}")]
    Document {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("{what} document has schema {got}; this tool understands {SCHEMA}")]
    Schema { what: &'static str, got: u64 },
}

impl ObserveError {
    /// The daemon did not answer in time (hung, or overloaded).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
}

fn is_timeout_io(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// What a WATCH callback receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Watched {
    /// A `WATCH_EVENT`: the full state first, then changes.
    Event(WatchEvent),
    /// No frame for this long (the read timeout passed); the callback may
    /// give up by returning `Break`.
    Quiet(Duration),
}

/// One OBSERVE session on a daemon's admin socket.
#[derive(Debug)]
pub struct ObserveClient {
    client: Client,
    timeout: Duration,
}

impl ObserveClient {
    /// Connects to `admin_socket` and sends OPEN, each step bounded by `timeout`.
    pub fn connect(admin_socket: &Path, timeout: Duration) -> Result<ObserveClient, ObserveError> {
        let stream = connect_bounded(admin_socket, timeout)?;
        let mut client = Client::from_stream(stream);
        client
            .set_timeout(Some(timeout))
            .map_err(|source| ObserveError::Call {
                procedure: "OPEN",
                source,
            })?;
        let mut me = ObserveClient { client, timeout };
        me.call::<_, ()>(procs::OPEN, "OPEN", &FlagsArgs { flags: 0 })?;
        Ok(me)
    }

    /// Wraps a stream that is already connected and OPENed (tests).
    pub fn from_client(client: Client, timeout: Duration) -> ObserveClient {
        ObserveClient { client, timeout }
    }

    /// STATUS: everything the daemon says about itself.
    pub fn status(&mut self) -> Result<DaemonStatus, ObserveError> {
        let doc: Document = self.call(procs::STATUS, "STATUS", &FlagsArgs { flags: 0 })?;
        parse_doc("STATUS", &doc.text)
    }

    /// METRICS: Prometheus text exposition.
    pub fn metrics(&mut self) -> Result<String, ObserveError> {
        let doc: Document = self.call(procs::METRICS, "METRICS", &FlagsArgs { flags: 0 })?;
        Ok(doc.text)
    }

    /// SPANS: spans with `seq >= cursor`, at most `max`, oldest first.
    pub fn spans(&mut self, cursor: u64, max: u32) -> Result<SpansPage, ObserveError> {
        let doc: Document = self.call(procs::SPANS, "SPANS", &SpansArgs { cursor, max })?;
        parse_doc("SPANS", &doc.text)
    }

    /// Every span still in the ring, following cursors, at most `limit`.
    pub fn all_spans(&mut self, limit: usize) -> Result<SpansPage, ObserveError> {
        let mut all = self.spans(0, 1000)?;
        while all.spans.len() < limit {
            let page = self.spans(all.next_cursor, 1000)?;
            if page.spans.is_empty() || page.next_cursor <= all.next_cursor {
                break;
            }
            all.spans.extend(page.spans);
            all.next_cursor = page.next_cursor;
            all.missed += page.missed;
            all.dropped = page.dropped;
        }
        all.spans.truncate(limit);
        Ok(all)
    }

    /// WATCH: calls `on_event` with each event until it returns `Break`,
    /// then sends UNWATCH. Between events the read timeout is the larger of
    /// the client timeout and three intervals; each time it passes,
    /// `on_event` gets [`Watched::Quiet`].
    pub fn watch(
        &mut self,
        interval: Duration,
        mut on_event: impl FnMut(Watched) -> ControlFlow<()>,
    ) -> Result<(), ObserveError> {
        let interval_ms = u32::try_from(interval.as_millis()).unwrap_or(u32::MAX);
        self.call::<_, ()>(procs::WATCH, "WATCH", &WatchArgs { interval_ms })?;
        let quiet_limit = self.timeout.max(interval.saturating_mul(3));
        self.set_timeout(quiet_limit, "WATCH")?;
        let result = self.watch_loop(&mut on_event);
        self.set_timeout(self.timeout, "WATCH")?;
        result?;
        self.call::<_, ()>(procs::UNWATCH, "UNWATCH", &())
    }

    fn watch_loop(
        &mut self,
        on_event: &mut impl FnMut(Watched) -> ControlFlow<()>,
    ) -> Result<(), ObserveError> {
        let mut last = Instant::now();
        loop {
            let (h, payload) = match self.client.read_frame() {
                Ok(f) => f,
                Err(ClientError::Io(e)) if is_timeout_io(&e) => {
                    if on_event(Watched::Quiet(last.elapsed())).is_break() {
                        return Ok(());
                    }
                    continue;
                }
                Err(source) => {
                    return Err(ObserveError::Call {
                        procedure: "WATCH",
                        source,
                    });
                }
            };
            last = Instant::now();
            if h.type_ != MessageType::Message {
                continue;
            }
            if h.prog == KEEPALIVE_PROGRAM && h.proc_ == KEEPALIVE_PING {
                self.send_pong()?;
                continue;
            }
            if h.prog != OBSERVE_PROGRAM || h.proc_ != procs::WATCH_EVENT {
                continue;
            }
            let doc: Document =
                modvirt_wire::XdrDecode::from_xdr(&payload).map_err(|e| ObserveError::Call {
                    procedure: "WATCH_EVENT",
                    source: e.into(),
                })?;
            let event: WatchEvent = parse_doc("WATCH_EVENT", &doc.text)?;
            if on_event(Watched::Event(event)).is_break() {
                return Ok(());
            }
        }
    }

    /// CLOSE, then drop the connection.
    pub fn close(mut self) -> Result<(), ObserveError> {
        self.call::<_, ()>(procs::CLOSE, "CLOSE", &())
    }

    fn set_timeout(&mut self, t: Duration, procedure: &'static str) -> Result<(), ObserveError> {
        self.client
            .set_timeout(Some(t))
            .map_err(|source| ObserveError::Call { procedure, source })
    }

    fn send_pong(&mut self) -> Result<(), ObserveError> {
        self.client.send_pong().map_err(|source| ObserveError::Call {
            procedure: "PONG",
            source,
        })
    }

    fn call<A: modvirt_wire::XdrEncode, R: modvirt_wire::XdrDecode>(
        &mut self,
        proc_: i32,
        procedure: &'static str,
        args: &A,
    ) -> Result<R, ObserveError> {
        self.client
            .call(OBSERVE_PROGRAM, OBSERVE_VERSION, proc_, args)
            .map_err(|source| match source {
                ClientError::Io(e) if is_timeout_io(&e) => ObserveError::Timeout(self.timeout),
                source => ObserveError::Call { procedure, source },
            })
    }
}

/// Parses a JSON document, refusing a schema newer than [`SCHEMA`].
pub fn parse_doc<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T, ObserveError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| ObserveError::Document { what, source })?;
    let schema = value
        .get("schema")
        .or_else(|| value.get("status").and_then(|s| s.get("schema")))
        .and_then(serde_json::Value::as_u64);
    if let Some(got) = schema.filter(|&s| s > u64::from(SCHEMA)) {
        return Err(ObserveError::Schema { what, got });
    }
    serde_json::from_value(value).map_err(|source| ObserveError::Document { what, source })
}

/// `connect(2)` on a UNIX socket with a send timeout set first: Linux
/// applies `SO_SNDTIMEO` to a connect that waits for a full backlog.
fn connect_bounded(path: &Path, timeout: Duration) -> Result<UnixStream, ObserveError> {
    let fail = |e: nix::Error| {
        let source = io::Error::from(e);
        if is_timeout_io(&source) {
            ObserveError::Timeout(timeout)
        } else {
            ObserveError::Connect {
                path: path.to_owned(),
                source,
            }
        }
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(fail)?;
    // Clamped to 1 ms ..= 1 day: 0 would mean "no timeout".
    let ms = timeout.as_millis().clamp(1, 86_400_000) as i64;
    let tv = TimeVal::milliseconds(ms);
    setsockopt(&fd, sockopt::SendTimeout, &tv).map_err(fail)?;
    let addr = UnixAddr::new(path).map_err(fail)?;
    connect(fd.as_raw_fd(), &addr).map_err(fail)?;
    Ok(UnixStream::from(fd))
}

#[cfg(test)]
mod tests;
