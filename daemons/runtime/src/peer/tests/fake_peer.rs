//! A fake peer daemon for the peer-call tests: a tokio `UnixListener` that speaks
//! frames with `modvirt_wire`, answers the handshake, records the
//! `CALL_CONTEXT` before each call, and behaves as the call's argument (an
//! XDR string) says:
//!
//! | argument | the fake peer |
//! |---|---|
//! | `echo <tag>` | replies `<tag>` at once |
//! | `delay <ms> <tag>` | replies `<tag>` after `<ms>` ms |
//! | `ping <tag>` | sends a keepalive PING, then replies `<tag>` |
//! | `error` | replies with [`network_not_found`] |
//! | `silent` | never replies |
//! | `drop` | closes the connection |
//!
//! `CONNECT_OPEN` of [`REFUSED_URI`] gets [`refused`].

use crate::peer::PeerTarget;
use modvirt_wire::message::{check_length, encode_frame, split_body};
use modvirt_wire::observe::{CallContextMsg, OBSERVE_PROGRAM, procs};
use modvirt_wire::program::{
    KEEPALIVE_PING, KEEPALIVE_PONG, KEEPALIVE_PROGRAM, REMOTE_PROGRAM, keepalive_frame,
};
use modvirt_wire::remote::{AUTH_NONE, AuthListRet, ConnectOpenArgs, ConnectSupportsFeatureRet};
use modvirt_wire::{ErrorCode, ErrorDomain, Header, MessageType, RpcError, Status, XdrDecode, XdrEncode};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

pub(super) const LOOKUP: (i32, &str) = (46, "NETWORK_LOOKUP_BY_NAME");
pub(super) const NETWORK: &str = "virtnetworkd";
pub(super) const URI: &str = "network:///system";
pub(super) const REFUSED_URI: &str = "network:///refused";
pub(super) const LONG: Duration = Duration::from_secs(5);

pub(super) fn network_not_found() -> RpcError {
    RpcError::new(
        ErrorCode(43),
        ErrorDomain::NETWORK,
        "Network not found",
        "no network with matching name 'nope'",
    )
}

pub(super) fn refused() -> RpcError {
    RpcError::plain(
        ErrorCode::NO_CONNECT,
        ErrorDomain::NONE,
        "no connection driver available for network:///refused",
    )
}

/// What the fake peer saw, in order.
#[derive(Debug)]
pub(super) enum Seen {
    Connected(u32),
    Call {
        conn: u32,
        header: Header,
        context: Option<CallContextMsg>,
        args: Vec<u8>,
    },
    Replied {
        serial: u32,
    },
    Pong(u32),
    Closed(u32),
}

pub(super) struct FakePeer {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    seen: mpsc::UnboundedReceiver<Seen>,
    accept: JoinHandle<()>,
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakePeer {
    pub(super) fn start() -> FakePeer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("virtnetworkd-sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        let accept = tokio::spawn(async move {
            // Dropped with the accept task: every connection goes with it.
            let mut conns = JoinSet::new();
            for conn in 1.. {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let _ = tx.send(Seen::Connected(conn));
                conns.spawn(serve(conn, stream, tx.clone()));
            }
        });
        FakePeer {
            _dir: dir,
            socket,
            seen,
            accept,
        }
    }

    pub(super) fn target(&self) -> PeerTarget {
        PeerTarget {
            daemon: NETWORK.into(),
            socket: self.socket.clone(),
            uri: URI.into(),
            identity: None,
            spawn: None,
        }
    }

    /// Events up to and including the first that `stop` accepts.
    pub(super) async fn until(&mut self, stop: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        let mut out = Vec::new();
        loop {
            let seen = tokio::time::timeout(LONG, self.seen.recv())
                .await
                .unwrap_or_else(|_| panic!("the fake peer saw nothing more after {out:#?}"))
                .unwrap();
            let done = stop(&seen);
            out.push(seen);
            if done {
                return out;
            }
        }
    }

    /// Events so far.
    pub(super) fn drain(&mut self) -> Vec<Seen> {
        std::iter::from_fn(|| self.seen.try_recv().ok()).collect()
    }
}

pub(super) async fn read_frame(rd: &mut OwnedReadHalf) -> Option<(Header, Vec<u8>)> {
    let mut word = [0u8; 4];
    rd.read_exact(&mut word).await.ok()?;
    let mut body = vec![0u8; check_length(u32::from_be_bytes(word)).ok()?];
    rd.read_exact(&mut body).await.ok()?;
    let (header, payload) = split_body(&body).ok()?;
    Some((header, payload.to_vec()))
}

pub(super) type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

pub(super) async fn send(wr: &Writer, frame: &[u8]) {
    let _ = wr.lock().await.write_all(frame).await;
}

pub(super) enum Act {
    Reply {
        after_ms: u64,
        status: Status,
        body: Vec<u8>,
    },
    Ping(Vec<u8>),
    Silent,
    Drop,
}

pub(super) fn ok(body: Vec<u8>) -> Act {
    Act::Reply {
        after_ms: 0,
        status: Status::Ok,
        body,
    }
}

pub(super) fn fail(e: RpcError) -> Act {
    Act::Reply {
        after_ms: 0,
        status: Status::Error,
        body: e.to_xdr(),
    }
}

pub(super) fn act(header: &Header, args: &[u8]) -> Act {
    match header.proc_ {
        66 => ok(AuthListRet {
            types: vec![AUTH_NONE],
        }
        .to_xdr()),
        60 => ok(ConnectSupportsFeatureRet { supported: 1 }.to_xdr()),
        1 => match ConnectOpenArgs::from_xdr(args).unwrap().name.as_deref() {
            Some(REFUSED_URI) => fail(refused()),
            _ => ok(Vec::new()),
        },
        419 => ok(Vec::new()),
        _ => {
            let arg = String::from_xdr(args).unwrap();
            let words: Vec<&str> = arg.split(' ').collect();
            match words.as_slice() {
                ["echo", tag] => ok(tag.to_string().to_xdr()),
                ["delay", ms, tag] => Act::Reply {
                    after_ms: ms.parse().unwrap(),
                    status: Status::Ok,
                    body: tag.to_string().to_xdr(),
                },
                ["ping", tag] => Act::Ping(tag.to_string().to_xdr()),
                ["error"] => fail(network_not_found()),
                ["silent"] => Act::Silent,
                ["drop"] => Act::Drop,
                _ => panic!("unknown behaviour {arg:?}"),
            }
        }
    }
}

/// One connection of the fake peer.
pub(super) async fn serve(conn: u32, stream: UnixStream, tx: mpsc::UnboundedSender<Seen>) {
    let (mut rd, wr) = stream.into_split();
    let wr: Writer = Arc::new(tokio::sync::Mutex::new(wr));
    // Delayed replies; aborted when the connection ends.
    let mut later = JoinSet::new();
    let mut context = None;
    while let Some((header, payload)) = read_frame(&mut rd).await {
        match (header.prog, header.type_) {
            (OBSERVE_PROGRAM, MessageType::Message) if header.proc_ == procs::CALL_CONTEXT => {
                context = Some(CallContextMsg::from_xdr(&payload).unwrap());
            }
            (KEEPALIVE_PROGRAM, MessageType::Message) if header.proc_ == KEEPALIVE_PONG => {
                let _ = tx.send(Seen::Pong(conn));
            }
            (REMOTE_PROGRAM, MessageType::Call) => {
                let _ = tx.send(Seen::Call {
                    conn,
                    header,
                    context: context.take(),
                    args: payload.clone(),
                });
                let reply = |status, body: &[u8]| encode_frame(&header.reply(status), |e| e.raw(body));
                match act(&header, &payload) {
                    Act::Reply {
                        after_ms,
                        status,
                        body,
                    } => {
                        let (wr, tx, frame) = (wr.clone(), tx.clone(), reply(status, &body));
                        later.spawn(async move {
                            tokio::time::sleep(Duration::from_millis(after_ms)).await;
                            let _ = tx.send(Seen::Replied {
                                serial: header.serial,
                            });
                            send(&wr, &frame).await;
                        });
                    }
                    Act::Ping(body) => {
                        send(&wr, &keepalive_frame(KEEPALIVE_PING)).await;
                        send(&wr, &reply(Status::Ok, &body)).await;
                    }
                    Act::Silent => {}
                    Act::Drop => break,
                }
            }
            _ => {}
        }
    }
    later.abort_all();
    let _ = wr.lock().await.shutdown().await;
    let _ = tx.send(Seen::Closed(conn));
}

/// A REMOTE call the fake peer saw.
#[derive(Debug, Clone)]
pub(super) struct SeenCall {
    pub(super) conn: u32,
    pub(super) proc_: i32,
    pub(super) serial: u32,
    pub(super) context: Option<CallContextMsg>,
    pub(super) args: Vec<u8>,
}

impl SeenCall {
    /// (connection, procedure, serial).
    pub(super) fn key(&self) -> (u32, i32, u32) {
        (self.conn, self.proc_, self.serial)
    }
}

/// The REMOTE calls among `seen`.
pub(super) fn calls(seen: &[Seen]) -> Vec<SeenCall> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Call {
                conn,
                header,
                context,
                args,
            } => Some(SeenCall {
                conn: *conn,
                proc_: header.proc_,
                serial: header.serial,
                context: context.clone(),
                args: args.clone(),
            }),
            _ => None,
        })
        .collect()
}

pub(super) fn connections(seen: &[Seen]) -> Vec<u32> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Connected(c) => Some(*c),
            _ => None,
        })
        .collect()
}

pub(super) fn is_lookup(s: &Seen) -> bool {
    matches!(s, Seen::Call { header, .. } if header.proc_ == LOOKUP.0)
}
