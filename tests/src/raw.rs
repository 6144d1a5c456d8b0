//! A wire-protocol client over a bare `UnixStream`, for tests that need
//! byte-level control of what a daemon receives (the hostile and broken
//! clients of `bad_frames.rs` and `bad_calls.rs`), and the fixtures those
//! tests share.
//!
//! Frames are built with `modvirt_wire` (4-byte length counting itself,
//! 24-byte header, XDR payload). Unlike `modvirt_admin::Client`, a
//! [`RawClient`] does nothing behind the test's back: it never answers a
//! keepalive `PING`, can pipeline any number of calls, send half a frame or
//! a header no real client would, and tells a disconnect from a timeout.
//!
//! Daemons from [`start_with_short_keepalive`] run with
//! `keepalive_interval = 1`, `keepalive_count = 1`, so the stall limit
//! (interval × (count + 1)) is 2 s; time bounds are generous.

use crate::{Daemon, DaemonOptions, ok_stdout};
use modvirt_wire::message;
use modvirt_wire::program::{
    KEEPALIVE_PING, KEEPALIVE_PONG, KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, REMOTE_PROGRAM, REMOTE_VERSION,
};
use modvirt_wire::remote::{self as r, feature};
use modvirt_wire::{
    Encoder, ErrorCode, ErrorDomain, Header, MessageType, RpcError, Status, XdrDecode, XdrEncode,
};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Daemon configuration giving a 2 s stall limit.
pub const KEEPALIVE_CONF: &str = "keepalive_interval = 1\nkeepalive_count = 1\n";
/// interval × (count + 1) with [`KEEPALIVE_CONF`].
pub const STALL_LIMIT: Duration = Duration::from_secs(2);
/// Upper bound for anything that should happen "after the limit" (and for
/// any frame a test waits for).
pub const GENEROUS: Duration = Duration::from_secs(10);

/// REMOTE procedure numbers used by the raw-client tests (`remote_protocol.x`):
/// those of the handshake as `modvirt_admin::Client` knows them, and more.
pub mod procs {
    pub use modvirt_admin::client::remote_proc::{AUTH_LIST, CONNECT_OPEN, CONNECT_SUPPORTS_FEATURE};
    pub const CONNECT_GET_TYPE: i32 = 3;
    pub const DOMAIN_DEFINE_XML: i32 = 11;
    pub const NETWORK_DEFINE_XML: i32 = 41;
    pub const CONNECT_GET_HOSTNAME: i32 = 59;
    pub const DOMAIN_EVENT_LIFECYCLE: i32 = 107;
}

/// `VIR_CONNECT_RO`.
pub const CONNECT_RO: u32 = 1;

/// Starts `virtqemud -v` with [`KEEPALIVE_CONF`] plus `extra` config.
pub fn start_with_short_keepalive(extra: &str) -> Daemon {
    Daemon::start(
        "virtqemud",
        DaemonOptions {
            args: vec!["-v".into()],
            config: Some(format!("{KEEPALIVE_CONF}{extra}")),
            ..Default::default()
        },
    )
}

/// The header of a `CALL` (status OK) to any program and version.
pub use modvirt_admin::client::call_header;

/// The header of a REMOTE `CALL` (status OK).
pub fn remote_call(proc_: i32, serial: u32) -> Header {
    call_header(REMOTE_PROGRAM, REMOTE_VERSION, proc_, serial)
}

/// The header of a KEEPALIVE `MESSAGE` (serial 0, status OK).
fn keepalive_header(proc_: i32) -> Header {
    Header {
        type_: MessageType::Message,
        ..call_header(KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, proc_, 0)
    }
}

/// A whole KEEPALIVE message frame (`PING`, `PONG`, or any other number).
pub fn keepalive_frame(proc_: i32) -> Vec<u8> {
    message::encode_frame(&keepalive_header(proc_), |_| {})
}

/// Whether `h` is exactly the header of the KEEPALIVE message `proc_`.
pub fn is_keepalive(h: &Header, proc_: i32) -> bool {
    *h == keepalive_header(proc_)
}

/// The XDR bytes `f` encodes.
pub fn xdr(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    f(&mut e);
    e.into_vec()
}

/// What one read from a raw connection produced.
#[derive(Debug)]
pub enum Recv {
    Frame(Header, Vec<u8>),
    /// EOF or ECONNRESET: the daemon dropped us.
    Closed,
    TimedOut,
}

/// A client speaking the wire protocol over a bare `UnixStream`. Call
/// serials count up from 1.
#[derive(Debug)]
pub struct RawClient {
    stream: UnixStream,
    serial: u32,
}

impl RawClient {
    /// Connects to `path`; panics if it cannot.
    pub fn connect(path: &Path) -> RawClient {
        Self::try_connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()))
    }

    /// Connects to the daemon's read-write socket (`…-sock`).
    pub fn connect_rw(d: &Daemon) -> RawClient {
        Self::connect(&d.socket("sock"))
    }

    pub fn try_connect(path: &Path) -> std::io::Result<RawClient> {
        let stream = UnixStream::connect(path)?;
        Ok(RawClient { stream, serial: 0 })
    }

    /// Writes raw bytes; the daemon may already have dropped us, so write
    /// errors are returned, not fatal.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Half-closes the connection: the daemon reads EOF.
    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).expect("shutdown");
    }

    pub fn set_write_timeout(&self, timeout: Option<Duration>) {
        self.stream.set_write_timeout(timeout).expect("write timeout");
    }

    /// Encodes the next REMOTE call without sending it; returns its header
    /// and the whole frame.
    pub fn call_frame(&mut self, proc_: i32, payload: &[u8]) -> (Header, Vec<u8>) {
        self.serial += 1;
        let h = remote_call(proc_, self.serial);
        (h, message::encode_frame(&h, |e| e.raw(payload)))
    }

    /// Sends a REMOTE call; returns its header.
    pub fn call(&mut self, proc_: i32, payload: &[u8]) -> Header {
        let (h, frame) = self.call_frame(proc_, payload);
        self.send(&frame).expect("send call");
        h
    }

    /// Sends a frame with an arbitrary header; returns the header.
    pub fn send_header(&mut self, h: Header, payload: &[u8]) -> Header {
        self.send(&message::encode_frame(&h, |e| e.raw(payload)))
            .expect("send frame");
        h
    }

    /// Reads one frame, waiting at most `timeout` for it to start.
    pub fn recv_within(&mut self, timeout: Duration) -> Recv {
        self.stream.set_read_timeout(Some(timeout)).expect("read timeout");
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.stream.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Recv::Closed,
                Ok(0) => panic!("daemon closed the connection inside a length word"),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::ConnectionReset && got == 0 => return Recv::Closed,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) && got == 0 => {
                    return Recv::TimedOut;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
        let want = message::check_length(u32::from_be_bytes(len)).expect("daemon sent a valid length");
        let mut body = vec![0u8; want];
        self.stream
            .set_read_timeout(Some(GENEROUS))
            .expect("read timeout");
        self.stream
            .read_exact(&mut body)
            .expect("rest of the daemon's frame");
        let (h, payload) = message::split_body(&body).expect("daemon sent a valid header");
        Recv::Frame(h, payload.to_vec())
    }

    /// Reads one frame, skipping keepalive PINGs (raw clients that enable
    /// keepalive may get them at any time).
    pub fn recv(&mut self) -> (Header, Vec<u8>) {
        loop {
            match self.recv_within(GENEROUS) {
                Recv::Frame(h, _) if is_keepalive(&h, KEEPALIVE_PING) => {}
                Recv::Frame(h, p) => return (h, p),
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// Reads the reply to `sent`, checking that its header mirrors the call.
    pub fn reply_to(&mut self, sent: &Header) -> Result<Vec<u8>, RpcError> {
        let (h, payload) = self.recv();
        assert_eq!(
            (h.prog, h.vers, h.proc_, h.serial, h.type_),
            (sent.prog, sent.vers, sent.proc_, sent.serial, MessageType::Reply),
            "reply header does not mirror the call"
        );
        match h.status {
            Status::Ok => Ok(payload),
            Status::Error => Err(RpcError::from_xdr(&payload).expect("error payload decodes")),
            Status::Continue => panic!("unexpected CONTINUE reply"),
        }
    }

    /// Sends a frame with header `h` and no payload; returns the error the
    /// (mirrored) reply carries, panicking if it is a success.
    pub fn header_err(&mut self, h: Header) -> RpcError {
        let sent = self.send_header(h, &[]);
        expect_error(sent.proc_, self.reply_to(&sent))
    }

    /// A REMOTE call and its reply.
    pub fn rpc(&mut self, proc_: i32, payload: &[u8]) -> Result<Vec<u8>, RpcError> {
        let sent = self.call(proc_, payload);
        self.reply_to(&sent)
    }

    pub fn rpc_ok(&mut self, proc_: i32, payload: &[u8]) -> Vec<u8> {
        self.rpc(proc_, payload)
            .unwrap_or_else(|e| panic!("procedure {proc_} failed: {e}"))
    }

    pub fn rpc_err(&mut self, proc_: i32, payload: &[u8]) -> RpcError {
        let reply = self.rpc(proc_, payload);
        expect_error(proc_, reply)
    }

    /// `AUTH_LIST` must answer `[REMOTE_AUTH_NONE]`.
    pub fn auth_list(&mut self) {
        let ret = r::AuthListRet::from_xdr(&self.rpc_ok(procs::AUTH_LIST, &[])).expect("auth list ret");
        assert_eq!(ret.types, vec![r::AUTH_NONE]);
    }

    /// `CONNECT_OPEN("qemu:///system", flags)` must succeed.
    pub fn open(&mut self, flags: u32) {
        let args = r::ConnectOpenArgs {
            name: Some("qemu:///system".into()),
            flags,
        };
        self.rpc_ok(procs::CONNECT_OPEN, &args.to_xdr());
    }

    pub fn hostname(&mut self) -> String {
        let ret = r::ConnectGetHostnameRet::from_xdr(&self.rpc_ok(procs::CONNECT_GET_HOSTNAME, &[]))
            .expect("hostname ret");
        ret.hostname
    }

    /// `CONNECT_SUPPORTS_FEATURE(PROGRAM_KEEPALIVE)` must answer 1: from
    /// now on the daemon pings this client.
    pub fn enable_keepalive(&mut self) {
        let args = r::ConnectSupportsFeatureArgs {
            feature: feature::PROGRAM_KEEPALIVE,
        };
        let ret = r::ConnectSupportsFeatureRet::from_xdr(
            &self.rpc_ok(procs::CONNECT_SUPPORTS_FEATURE, &args.to_xdr()),
        )
        .expect("supports feature ret");
        assert_eq!(ret.supported, 1);
    }

    /// Sends a keepalive `PING`; the next frame (keepalive `PING`s from the
    /// daemon aside) must be an empty `PONG`.
    pub fn ping(&mut self) {
        self.send(&keepalive_frame(KEEPALIVE_PING)).expect("send PING");
        let (h, p) = self.recv();
        assert!(is_keepalive(&h, KEEPALIVE_PONG), "expected a PONG, got {h:?}");
        assert!(p.is_empty(), "PONG with a payload");
    }

    /// The connection is usable: `AUTH_LIST`, `CONNECT_OPEN` (flags 0) and a
    /// non-empty `CONNECT_GET_HOSTNAME` succeed.
    pub fn assert_usable(&mut self) {
        self.auth_list();
        self.open(0);
        assert!(!self.hostname().is_empty());
    }

    /// Waits for the daemon to drop us; returns how long that took.
    pub fn expect_closed(&mut self, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let left = within.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "daemon did not drop the client within {within:?}"
            );
            match self.recv_within(left) {
                Recv::Closed => return start.elapsed(),
                Recv::Frame(h, _) if is_keepalive(&h, KEEPALIVE_PING) => {}
                Recv::Frame(h, _) => panic!("expected a disconnect, got a frame {h:?}"),
                Recv::TimedOut => panic!("daemon did not drop the client within {within:?}"),
            }
        }
    }

    /// Asserts nothing arrives and the connection stays up for `d`.
    pub fn expect_quiet(&mut self, d: Duration) {
        match self.recv_within(d) {
            Recv::TimedOut => {}
            other => panic!("expected silence for {d:?}, got {other:?}"),
        }
    }
}

/// The error of a reply to procedure `proc_` that must have failed.
fn expect_error(proc_: i32, reply: Result<Vec<u8>, RpcError>) -> RpcError {
    match reply {
        Ok(p) => panic!(
            "procedure {proc_} unexpectedly succeeded ({} payload bytes)",
            p.len()
        ),
        Err(e) => e,
    }
}

/// `e` is exactly (`code`, `domain`, `text`) at level ERROR.
pub fn assert_rpc_error(e: &RpcError, code: ErrorCode, domain: ErrorDomain, text: &str) {
    assert_eq!(
        (e.code, e.domain, e.text()),
        (code, domain, text),
        "unexpected error: {e}"
    );
    assert_eq!(e.level, modvirt_wire::error::LEVEL_ERROR, "error level: {e:?}");
}

/// `e` is an error of the RPC layer itself (code and domain `RPC`) reading
/// exactly `text`, at level ERROR.
pub fn assert_rpc_layer_error(e: &RpcError, text: &str) {
    assert_rpc_error(e, ErrorCode::RPC, ErrorDomain::RPC, text);
}

/// `e` says the payload did not decode, mentioning `detail`.
pub fn assert_decode_error(e: &RpcError, detail: &str) {
    assert_eq!((e.code, e.domain), (ErrorCode::RPC, ErrorDomain::RPC), "{e}");
    assert!(
        e.text().starts_with("Unable to decode message payload") && e.text().contains(detail),
        "expected a decode error mentioning {detail:?}, got {e}"
    );
}

/// The daemon is alive and serves others: a fresh raw client completes
/// AUTH_LIST, CONNECT_OPEN and GET_HOSTNAME, and the real virsh works.
pub fn assert_serves(d: &mut Daemon) {
    assert!(d.exited().is_none(), "daemon exited; stderr:\n{}", d.stderr());
    RawClient::connect_rw(d).assert_usable();
    let out = ok_stdout(&d.virsh(&["hostname"]));
    assert!(!out.trim().is_empty(), "virsh hostname printed nothing");
    assert!(d.exited().is_none(), "daemon exited; stderr:\n{}", d.stderr());
}
