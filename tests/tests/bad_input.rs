//! Hostile and broken clients against a real `virtqemud` (PRODUCT.md §4:
//! bad input gets a libvirt-style error or a logged disconnect, and never
//! takes the daemon down).
//!
//! Each test starts its own daemon and talks to it over raw UNIX sockets,
//! building frames with `modvirt_wire` (4-byte length counting itself,
//! 24-byte header, XDR payload). For every case it checks what the offending
//! client gets — an error reply (code, domain, message) or a disconnect —,
//! that disconnects leave a line in the daemon's log, and that the daemon
//! still serves everyone else (a raw `AUTH_LIST`/`CONNECT_OPEN`/hostname
//! round trip and the real `virsh hostname`).
//!
//! Most daemons run with `keepalive_interval = 1`, `keepalive_count = 1`, so
//! the stall limit (interval × (count + 1)) is 2 s; time bounds are generous.

use modvirt_tests::{Daemon, DaemonOptions, ok_stdout, proc_status, wait_for};
use modvirt_wire::message::{self, MESSAGE_MAX};
use modvirt_wire::program::{
    KEEPALIVE_PING, KEEPALIVE_PONG, KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, REMOTE_PROGRAM, REMOTE_VERSION,
};
use modvirt_wire::remote::{self as r, feature};
use modvirt_wire::{
    Encoder, ErrorCode, ErrorDomain, Header, MessageType, RpcError, Status, XdrDecode, XdrEncode,
};
use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const KEEPALIVE_CONF: &str = "keepalive_interval = 1\nkeepalive_count = 1\n";
/// interval × (count + 1) with [`KEEPALIVE_CONF`].
const STALL_LIMIT: Duration = Duration::from_secs(2);
/// Upper bound for anything that should happen "after the limit".
const GENEROUS: Duration = Duration::from_secs(10);

/// REMOTE procedure numbers used here (`remote_protocol.x`).
mod procs {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_GET_TYPE: i32 = 3;
    pub const DOMAIN_DEFINE_XML: i32 = 11;
    pub const NETWORK_DEFINE_XML: i32 = 41;
    pub const CONNECT_GET_HOSTNAME: i32 = 59;
    pub const CONNECT_SUPPORTS_FEATURE: i32 = 60;
    pub const AUTH_LIST: i32 = 66;
    pub const DOMAIN_EVENT_LIFECYCLE: i32 = 107;
}

/// `VIR_CONNECT_RO`.
const CONNECT_RO: u32 = 1;

/// Starts `virtqemud -v` with the short keepalive settings plus `extra` config.
fn start(extra: &str) -> Daemon {
    Daemon::start(
        "virtqemud",
        DaemonOptions {
            args: vec!["-v".into()],
            config: Some(format!("{KEEPALIVE_CONF}{extra}")),
            ..Default::default()
        },
    )
}

fn header(prog: u32, vers: u32, proc_: i32, type_: MessageType, serial: u32, status: Status) -> Header {
    Header {
        prog,
        vers,
        proc_,
        type_,
        serial,
        status,
    }
}

fn keepalive(proc_: i32) -> Vec<u8> {
    let h = header(
        KEEPALIVE_PROGRAM,
        KEEPALIVE_VERSION,
        proc_,
        MessageType::Message,
        0,
        Status::Ok,
    );
    message::encode_frame(&h, |_| {})
}

fn is_keepalive(h: &Header, proc_: i32) -> bool {
    h.prog == KEEPALIVE_PROGRAM
        && h.vers == KEEPALIVE_VERSION
        && h.proc_ == proc_
        && h.type_ == MessageType::Message
        && h.serial == 0
        && h.status == Status::Ok
}

fn xdr(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    f(&mut e);
    e.into_vec()
}

/// What one read from a raw connection produced.
#[derive(Debug)]
enum Recv {
    Frame(Header, Vec<u8>),
    /// EOF or ECONNRESET: the daemon dropped us.
    Closed,
    TimedOut,
}

/// A client speaking the wire protocol over a bare `UnixStream`.
#[derive(Debug)]
struct RawClient {
    stream: UnixStream,
    serial: u32,
}

impl RawClient {
    fn connect(path: &Path) -> RawClient {
        let stream = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        RawClient { stream, serial: 0 }
    }

    /// Writes raw bytes; the daemon may already have dropped us, so write
    /// errors are returned, not fatal.
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn call_frame(&mut self, proc_: i32, payload: &[u8]) -> (u32, Vec<u8>) {
        self.serial += 1;
        let h = header(
            REMOTE_PROGRAM,
            REMOTE_VERSION,
            proc_,
            MessageType::Call,
            self.serial,
            Status::Ok,
        );
        (self.serial, message::encode_frame(&h, |e| e.raw(payload)))
    }

    /// Sends a REMOTE call; returns its serial.
    fn call(&mut self, proc_: i32, payload: &[u8]) -> u32 {
        let (serial, frame) = self.call_frame(proc_, payload);
        self.send(&frame).expect("send call");
        serial
    }

    /// Sends a frame with an arbitrary header; returns the header.
    fn send_header(&mut self, h: Header, payload: &[u8]) -> Header {
        self.send(&message::encode_frame(&h, |e| e.raw(payload)))
            .expect("send frame");
        h
    }

    /// Reads one frame, waiting at most `timeout` for it to start.
    fn recv_within(&mut self, timeout: Duration) -> Recv {
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
    fn recv(&mut self) -> (Header, Vec<u8>) {
        loop {
            match self.recv_within(GENEROUS) {
                Recv::Frame(h, _) if is_keepalive(&h, KEEPALIVE_PING) => {}
                Recv::Frame(h, p) => return (h, p),
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// Reads the reply to `sent`, checking that its header mirrors the call.
    fn reply_to(&mut self, sent: &Header) -> Result<Vec<u8>, RpcError> {
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

    fn remote_header(&self, proc_: i32, serial: u32) -> Header {
        header(
            REMOTE_PROGRAM,
            REMOTE_VERSION,
            proc_,
            MessageType::Call,
            serial,
            Status::Ok,
        )
    }

    /// A REMOTE call and its reply.
    fn rpc(&mut self, proc_: i32, payload: &[u8]) -> Result<Vec<u8>, RpcError> {
        let serial = self.call(proc_, payload);
        let sent = self.remote_header(proc_, serial);
        self.reply_to(&sent)
    }

    fn rpc_ok(&mut self, proc_: i32, payload: &[u8]) -> Vec<u8> {
        self.rpc(proc_, payload)
            .unwrap_or_else(|e| panic!("procedure {proc_} failed: {e}"))
    }

    fn rpc_err(&mut self, proc_: i32, payload: &[u8]) -> RpcError {
        match self.rpc(proc_, payload) {
            Ok(p) => panic!(
                "procedure {proc_} unexpectedly succeeded ({} payload bytes)",
                p.len()
            ),
            Err(e) => e,
        }
    }

    /// `AUTH_LIST` must answer `[REMOTE_AUTH_NONE]`.
    fn auth_list(&mut self) {
        let ret = r::AuthListRet::from_xdr(&self.rpc_ok(procs::AUTH_LIST, &[])).expect("auth list ret");
        assert_eq!(ret.types, vec![r::AUTH_NONE]);
    }

    fn open(&mut self, flags: u32) {
        let args = r::ConnectOpenArgs {
            name: Some("qemu:///system".into()),
            flags,
        };
        self.rpc_ok(procs::CONNECT_OPEN, &args.to_xdr());
    }

    fn hostname(&mut self) -> String {
        let ret = r::ConnectGetHostnameRet::from_xdr(&self.rpc_ok(procs::CONNECT_GET_HOSTNAME, &[]))
            .expect("hostname ret");
        ret.hostname
    }

    /// Waits for the daemon to drop us; returns how long that took.
    fn expect_closed(&mut self, within: Duration) -> Duration {
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
    fn expect_quiet(&mut self, d: Duration) {
        match self.recv_within(d) {
            Recv::TimedOut => {}
            other => panic!("expected silence for {d:?}, got {other:?}"),
        }
    }
}

fn assert_rpc_error(e: &RpcError, code: ErrorCode, domain: ErrorDomain, text: &str) {
    assert_eq!(
        (e.code, e.domain, e.text()),
        (code, domain, text),
        "unexpected error: {e}"
    );
    assert_eq!(e.level, modvirt_wire::error::LEVEL_ERROR, "error level: {e:?}");
}

fn assert_decode_error(e: &RpcError, detail: &str) {
    assert_eq!((e.code, e.domain), (ErrorCode::RPC, ErrorDomain::RPC), "{e}");
    assert!(
        e.text().starts_with("Unable to decode message payload") && e.text().contains(detail),
        "expected a decode error mentioning {detail:?}, got {e}"
    );
}

/// Waits (up to 5 s) for `needle` to appear in the daemon's log.
fn assert_logged(d: &Daemon, needle: &str) {
    let found = wait_for(Duration::from_secs(5), || d.stderr().contains(needle));
    assert!(
        found,
        "no log line containing {needle:?}; daemon stderr:\n{}",
        d.stderr()
    );
}

/// How many lines of the daemon's log contain `needle`.
fn count_logged(d: &Daemon, needle: &str) -> usize {
    d.stderr().lines().filter(|l| l.contains(needle)).count()
}

/// The daemon is alive and serves others: a fresh raw client completes
/// AUTH_LIST, CONNECT_OPEN and GET_HOSTNAME, and the real virsh works.
fn assert_serves(d: &mut Daemon) {
    assert!(d.exited().is_none(), "daemon exited; stderr:\n{}", d.stderr());
    let mut c = RawClient::connect(&d.socket("sock"));
    c.auth_list();
    c.open(0);
    assert!(!c.hostname().is_empty());
    let out = ok_stdout(&d.virsh(&["hostname"]));
    assert!(!out.trim().is_empty(), "virsh hostname printed nothing");
    assert!(d.exited().is_none(), "daemon exited; stderr:\n{}", d.stderr());
}

/// Number of descriptors the process has open.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib(pid: i32, key: &str) -> u64 {
    let v = proc_status(pid, key).unwrap_or_else(|| panic!("{key} of pid {pid}"));
    v.trim_end_matches("kB").trim().parse().expect("kB number")
}

// ---------------------------------------------------------------- 1, 2: lengths

#[test]
fn oversized_length_word_drops_client_without_allocating() {
    let mut d = start("");
    let pid = d.pid();
    let rss_before = rss_kib(pid, "VmRSS");
    for len in [0x7fff_ffff, MESSAGE_MAX + 1, u32::MAX] {
        let mut c = RawClient::connect(&d.socket("sock"));
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xab; 60]);
        let _ = c.send(&bytes);
        c.expect_closed(GENEROUS);
        assert_logged(
            &d,
            &format!("packet of {len} bytes is too large, the maximum is {MESSAGE_MAX}"),
        );
        assert_serves(&mut d);
    }
    // Sixteen clients announce the largest valid frame and stall after the
    // header: the body is buffered only as it arrives, so nothing near
    // 16 × 32 MiB is ever held.
    let mut big: Vec<RawClient> = (0..16)
        .map(|_| {
            let mut c = RawClient::connect(&d.socket("sock"));
            let (_, frame) = c.call_frame(procs::AUTH_LIST, &[]);
            let mut bytes = MESSAGE_MAX.to_be_bytes().to_vec();
            bytes.extend_from_slice(&frame[4..]);
            bytes.extend_from_slice(&[0; 1000]);
            c.send(&bytes).expect("send partial frame");
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let rss_during = rss_kib(pid, "VmRSS");
    assert!(
        rss_during < 64 * 1024,
        "VmRSS {rss_during} kB with 16 announced 32 MiB frames"
    );
    for c in &mut big {
        c.expect_closed(GENEROUS);
    }
    assert_logged(
        &d,
        &format!("a {MESSAGE_MAX}-byte frame incomplete: no data for 2s (1024 bytes received)"),
    );
    let rss_after = rss_kib(pid, "VmRSS");
    let peak = rss_kib(pid, "VmHWM");
    assert!(
        rss_after < 64 * 1024 && peak < 64 * 1024,
        "daemon memory grew: VmRSS {rss_before} → {rss_after} kB, peak {peak} kB"
    );
    assert_serves(&mut d);
}

#[test]
fn undersized_length_or_bad_header_drops_client() {
    let mut d = start("");
    for len in [0u32, 4, 27] {
        let mut c = RawClient::connect(&d.socket("sock"));
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 24]);
        let _ = c.send(&bytes);
        c.expect_closed(GENEROUS);
        assert_logged(
            &d,
            &format!("packet of {len} bytes is too small, want at least 28"),
        );
        assert_serves(&mut d);
    }
    // A whole frame whose header has an unknown message type or status.
    for (offset, value, why) in [
        (16, 9i32, "malformed message header: unknown message type 9"),
        (24, 7i32, "malformed message header: unknown message status 7"),
    ] {
        let mut c = RawClient::connect(&d.socket("sock"));
        c.auth_list();
        let (_, mut frame) = c.call_frame(procs::AUTH_LIST, &[]);
        frame[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
        let _ = c.send(&frame);
        c.expect_closed(GENEROUS);
        assert_logged(&d, why);
        assert_serves(&mut d);
    }
}

// ---------------------------------------------------------------- 3–6: header checks

#[test]
fn unknown_program_gets_error_and_connection_stays_usable() {
    let mut d = start("");
    let mut c = RawClient::connect(&d.socket("sock"));
    let sent = c.send_header(
        header(0x1234_5678, 1, procs::AUTH_LIST, MessageType::Call, 7, Status::Ok),
        &[],
    );
    let e = c.reply_to(&sent).unwrap_err();
    assert_rpc_error(
        &e,
        ErrorCode::RPC,
        ErrorDomain::RPC,
        "Cannot find program 305419896 version 1",
    );
    c.auth_list();
    c.open(0);
    assert!(!c.hostname().is_empty());
    assert_serves(&mut d);
}

#[test]
fn remote_program_wrong_version_gets_error() {
    let mut d = start("");
    let mut c = RawClient::connect(&d.socket("sock"));
    let sent = c.send_header(
        header(
            REMOTE_PROGRAM,
            2,
            procs::AUTH_LIST,
            MessageType::Call,
            3,
            Status::Ok,
        ),
        &[],
    );
    let e = c.reply_to(&sent).unwrap_err();
    assert_rpc_error(
        &e,
        ErrorCode::RPC,
        ErrorDomain::RPC,
        "Cannot find program 536903814 version 2",
    );
    c.auth_list();
    assert_serves(&mut d);
}

#[test]
fn wrong_message_type_or_status_gets_error() {
    let mut d = start("");
    let mut c = RawClient::connect(&d.socket("sock"));
    for (type_, status, text) in [
        (MessageType::Reply, Status::Ok, "Unexpected message type 1"),
        (MessageType::Stream, Status::Ok, "Unexpected message type 3"),
        (MessageType::Message, Status::Ok, "Unexpected message type 2"),
        (MessageType::Call, Status::Error, "Unexpected message status 1"),
    ] {
        let sent = c.send_header(
            header(
                REMOTE_PROGRAM,
                REMOTE_VERSION,
                procs::AUTH_LIST,
                type_,
                40,
                status,
            ),
            &[],
        );
        let e = c.reply_to(&sent).unwrap_err();
        assert_rpc_error(&e, ErrorCode::RPC, ErrorDomain::RPC, text);
    }
    c.auth_list();
    assert_serves(&mut d);
}

#[test]
fn unknown_procedure_and_event_procedure_get_errors() {
    let mut d = start("");
    let mut c = RawClient::connect(&d.socket("sock"));
    for proc_ in [9999, -1, 0] {
        let e = c.rpc_err(proc_, &[]);
        assert_rpc_error(
            &e,
            ErrorCode::RPC,
            ErrorDomain::RPC,
            &format!("unknown procedure: {proc_}"),
        );
    }
    let e = c.rpc_err(procs::DOMAIN_EVENT_LIFECYCLE, &[]);
    assert_eq!((e.code, e.domain), (ErrorCode::RPC, ErrorDomain::RPC), "{e}");
    assert!(e.text().contains("DOMAIN_EVENT_LIFECYCLE"), "{e}");
    // The same after CONNECT_OPEN.
    c.auth_list();
    c.open(0);
    let e = c.rpc_err(9999, &[]);
    assert_rpc_error(&e, ErrorCode::RPC, ErrorDomain::RPC, "unknown procedure: 9999");
    let e = c.rpc_err(procs::DOMAIN_EVENT_LIFECYCLE, &[]);
    assert!(e.text().contains("DOMAIN_EVENT_LIFECYCLE"), "{e}");
    assert!(!c.hostname().is_empty());
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 7, 8: payloads

#[test]
fn truncated_frame_drops_client_with_log() {
    let mut d = start("");
    // Half-close after 40 of 100 announced bytes: the client sees the drop.
    let mut c = RawClient::connect(&d.socket("sock"));
    let (_, frame) = c.call_frame(procs::AUTH_LIST, &[0; 72]);
    assert_eq!(frame.len(), 100);
    c.send(&frame[..40]).expect("send");
    c.stream.shutdown(Shutdown::Write).expect("shutdown");
    c.expect_closed(GENEROUS);
    assert_logged(&d, "connection closed in the middle of a 100-byte frame");
    assert_serves(&mut d);

    // Full close after a good call and part of a second one.
    let mut c = RawClient::connect(&d.socket("sock"));
    c.auth_list();
    let (_, frame) = c.call_frame(procs::AUTH_LIST, &[0; 172]);
    c.send(&frame[..150]).expect("send");
    drop(c);
    assert_logged(&d, "connection closed in the middle of a 200-byte frame");
    assert_serves(&mut d);

    // Half-close inside the length word of a second frame.
    let mut c = RawClient::connect(&d.socket("sock"));
    c.auth_list();
    c.send(&[0, 0]).expect("send");
    c.stream.shutdown(Shutdown::Write).expect("shutdown");
    c.expect_closed(GENEROUS);
    assert_logged(&d, "connection closed in the middle of a length word");
    assert_serves(&mut d);
}

#[test]
fn malformed_xdr_gets_decode_error() {
    let mut d = start("");
    let mut c = RawClient::connect(&d.socket("sock"));
    c.auth_list();
    // remote_connect_open_args { remote_string name; unsigned int flags; }
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // String length larger than the payload.
        (
            xdr(|e| {
                e.u32(1);
                e.u32(1000);
                e.raw(b"qemu:///");
                e.u32(0);
            }),
            "payload truncated",
        ),
        // Length beyond REMOTE_STRING_MAX.
        (
            xdr(|e| {
                e.u32(1);
                e.u32(0xffff_fff0);
            }),
            "exceeds its maximum",
        ),
        // Optional's bool neither 0 nor 1.
        (
            xdr(|e| {
                e.u32(7);
                e.string("qemu:///system");
                e.u32(0);
            }),
            "invalid boolean value 7",
        ),
        // Non-zero padding after the string.
        (
            xdr(|e| {
                e.u32(1);
                e.u32(1);
                e.raw(&[b'q', 1, 2, 3]);
                e.u32(0);
            }),
            "padding",
        ),
        // Flags missing.
        (
            xdr(|e| {
                e.u32(0);
            }),
            "payload truncated",
        ),
    ];
    for (payload, detail) in &cases {
        let e = c.rpc_err(procs::CONNECT_OPEN, payload);
        assert_decode_error(&e, detail);
    }
    // remote_connect_supports_feature_args { int feature; } with trailing bytes, or nothing.
    let e = c.rpc_err(
        procs::CONNECT_SUPPORTS_FEATURE,
        &xdr(|e| {
            e.i32(feature::PROGRAM_KEEPALIVE);
            e.u32(0);
        }),
    );
    assert_decode_error(&e, "4 trailing bytes");
    let e = c.rpc_err(procs::CONNECT_SUPPORTS_FEATURE, &[]);
    assert_decode_error(&e, "payload truncated");
    // The connection is still fine: it opens and answers.
    c.open(0);
    assert!(!c.hostname().is_empty());
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 9: before CONNECT_OPEN

#[test]
fn call_before_connect_open_gets_error() {
    let mut d = start("");
    let mut c = RawClient::connect(&d.socket("sock"));
    for proc_ in [procs::CONNECT_GET_HOSTNAME, procs::CONNECT_GET_TYPE] {
        let e = c.rpc_err(proc_, &[]);
        assert_rpc_error(
            &e,
            ErrorCode::INTERNAL_ERROR,
            ErrorDomain::RPC,
            "internal error: connection not open",
        );
    }
    // Feature probes other than keepalive also need an open connection.
    let e = c.rpc_err(
        procs::CONNECT_SUPPORTS_FEATURE,
        &r::ConnectSupportsFeatureArgs {
            feature: feature::TYPED_PARAM_STRING,
        }
        .to_xdr(),
    );
    assert_rpc_error(
        &e,
        ErrorCode::INTERNAL_ERROR,
        ErrorDomain::RPC,
        "internal error: connection not open",
    );
    c.auth_list();
    c.open(0);
    assert!(!c.hostname().is_empty());
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 10: silence and stalls

#[test]
fn silent_and_stalled_clients_are_dropped_after_the_limit() {
    let mut d = start("");
    let t0 = Instant::now();
    let mut silent = RawClient::connect(&d.socket("sock"));
    let mut half = RawClient::connect(&d.socket("sock"));
    let (_, frame) = half.call_frame(procs::AUTH_LIST, &[]);
    half.send(&frame[..14]).expect("send half a frame");
    // A client that made a call and then only sent part of a length word.
    let mut split_len = RawClient::connect(&d.socket("sock"));
    split_len.auth_list();
    split_len.send(&frame[..2]).expect("send half a length word");
    // A client that made a call and then idles is left alone (keepalive off).
    let mut idle = RawClient::connect(&d.socket("sock"));
    idle.auth_list();

    // Meanwhile everyone else is served at once.
    for _ in 0..5 {
        let t = Instant::now();
        let mut c = RawClient::connect(&d.socket("sock"));
        c.auth_list();
        c.open(0);
        c.hostname();
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "round trip took {:?}",
            t.elapsed()
        );
    }
    assert_serves(&mut d);

    silent.expect_closed(GENEROUS);
    let waited = t0.elapsed();
    assert!(
        waited >= STALL_LIMIT - Duration::from_millis(100) && waited < GENEROUS,
        "silent client dropped after {waited:?}"
    );
    half.expect_closed(GENEROUS);
    assert!(t0.elapsed() >= STALL_LIMIT - Duration::from_millis(100));
    split_len.expect_closed(GENEROUS);
    assert_logged(&d, "sent nothing within 2s of connecting");
    assert_logged(
        &d,
        "a 28-byte frame incomplete: no data for 2s (10 bytes received)",
    );
    assert_logged(&d, "a length word incomplete: no data for 2s");

    idle.expect_quiet(Duration::from_millis(500));
    idle.auth_list();
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 11: keepalive

#[test]
fn keepalive_pings_drop_mute_clients_and_keep_answering_ones() {
    let mut d = start("");
    let sock = d.socket("sock");
    let enable_keepalive = |c: &mut RawClient| {
        let args = r::ConnectSupportsFeatureArgs {
            feature: feature::PROGRAM_KEEPALIVE,
        };
        let ret = r::ConnectSupportsFeatureRet::from_xdr(
            &c.rpc_ok(procs::CONNECT_SUPPORTS_FEATURE, &args.to_xdr()),
        )
        .expect("supports feature ret");
        assert_eq!(ret.supported, 1);
    };
    std::thread::scope(|s| {
        // Mute: gets PINGs, never answers, is dropped after ~interval × (count + 1).
        let mute = s.spawn(|| {
            let mut c = RawClient::connect(&sock);
            c.auth_list();
            enable_keepalive(&mut c);
            let t0 = Instant::now();
            let mut pings = 0;
            loop {
                assert!(
                    t0.elapsed() < GENEROUS,
                    "mute client not dropped after {pings} PINGs"
                );
                match c.recv_within(GENEROUS) {
                    Recv::Frame(h, p) => {
                        assert!(is_keepalive(&h, KEEPALIVE_PING), "unexpected frame {h:?}");
                        assert!(p.is_empty(), "PING with a payload");
                        pings += 1;
                    }
                    Recv::Closed => break,
                    Recv::TimedOut => panic!("mute client neither pinged nor dropped"),
                }
            }
            (pings, t0.elapsed())
        });
        // Answering: replies to every PING with a PONG and stays connected.
        let answering = s.spawn(|| {
            let mut c = RawClient::connect(&sock);
            c.auth_list();
            enable_keepalive(&mut c);
            let t0 = Instant::now();
            let mut pings = 0;
            while t0.elapsed() < Duration::from_secs(5) {
                match c.recv_within(Duration::from_millis(200)) {
                    Recv::Frame(h, _) => {
                        assert!(is_keepalive(&h, KEEPALIVE_PING), "unexpected frame {h:?}");
                        pings += 1;
                        c.send(&keepalive(KEEPALIVE_PONG)).expect("send PONG");
                    }
                    Recv::TimedOut => {}
                    Recv::Closed => panic!("answering client dropped after {:?}", t0.elapsed()),
                }
            }
            c.auth_list();
            c.open(0);
            c.hostname();
            pings
        });
        // The daemon answers a client's PING with a PONG, before and after open.
        let mut c = RawClient::connect(&sock);
        for open in [false, true] {
            c.send(&keepalive(KEEPALIVE_PING)).expect("send PING");
            let (h, p) = c.recv();
            assert!(is_keepalive(&h, KEEPALIVE_PONG), "expected a PONG, got {h:?}");
            assert!(p.is_empty());
            if !open {
                c.auth_list();
                c.open(0);
            }
        }

        let (pings, after) = mute.join().unwrap();
        assert!(pings >= 1, "mute client got no PING");
        assert!(
            after >= STALL_LIMIT - Duration::from_millis(100) && after < GENEROUS,
            "mute client dropped after {after:?}"
        );
        assert!(answering.join().unwrap() >= 1, "answering client got no PING");
    });
    assert_logged(&d, "No response from client");
    assert_serves(&mut d);
}

#[test]
fn keepalive_program_only_takes_messages() {
    // libvirt consumes KEEPALIVE v1 MESSAGEs; anything else addressed to
    // that program is an ordinary call to a program the server lacks.
    let mut d = start("");
    let mut c = RawClient::connect(&d.socket("sock"));
    let sent = c.send_header(
        header(
            KEEPALIVE_PROGRAM,
            KEEPALIVE_VERSION,
            KEEPALIVE_PING,
            MessageType::Call,
            9,
            Status::Ok,
        ),
        &[],
    );
    let e = c.reply_to(&sent).unwrap_err();
    assert_rpc_error(
        &e,
        ErrorCode::RPC,
        ErrorDomain::RPC,
        "Cannot find program 1801807216 version 1",
    );
    // An unknown keepalive message is ignored, and a PING still answered.
    c.send(&keepalive(7)).expect("send unknown keepalive message");
    c.send(&keepalive(KEEPALIVE_PING)).expect("send PING");
    let (h, _) = c.recv();
    assert!(is_keepalive(&h, KEEPALIVE_PONG), "expected a PONG, got {h:?}");
    c.auth_list();
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 12: many clients

/// `nclients` from `virt-admin srv-clients-info` output.
fn nclients(info: &str) -> Option<usize> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "nclients").then(|| v.trim().parse().ok())?
    })
}

#[test]
fn a_thousand_concurrent_clients_are_served() {
    const THREADS: usize = 50;
    const PER_THREAD: usize = 20;
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = (THREADS * PER_THREAD + 200) as u64;
    if soft < want {
        assert!(
            hard >= want,
            "RLIMIT_NOFILE hard limit {hard} is below the {want} this test needs"
        );
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    // Default keepalive (30 s stall limit): the clients may take a while to start.
    let mut d = Daemon::start(
        "virtqemud",
        DaemonOptions {
            args: vec!["-v".into()],
            ..Default::default()
        },
    );
    let sock = d.socket("sock");
    let connected = Barrier::new(THREADS + 1);
    let release = Barrier::new(THREADS + 1);
    let results: Vec<Result<usize, String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    // Errors are collected, not raised, so the barriers are always reached.
                    let run = || -> Result<Vec<RawClient>, String> {
                        let mut clients = Vec::with_capacity(PER_THREAD);
                        for _ in 0..PER_THREAD {
                            let stream = UnixStream::connect(&sock).map_err(|e| format!("connect: {e}"))?;
                            clients.push(RawClient { stream, serial: 0 });
                        }
                        let mut sent = Vec::new();
                        for c in &mut clients {
                            let (serial, frame) = c.call_frame(procs::AUTH_LIST, &[]);
                            c.send(&frame).map_err(|e| format!("send: {e}"))?;
                            sent.push(c.remote_header(procs::AUTH_LIST, serial));
                        }
                        for (c, h) in clients.iter_mut().zip(&sent) {
                            let ret = c.reply_to(h).map_err(|e| format!("AUTH_LIST failed: {e}"))?;
                            let ret = r::AuthListRet::from_xdr(&ret).map_err(|e| e.to_string())?;
                            if ret.types != [r::AUTH_NONE] {
                                return Err(format!("AUTH_LIST answered {:?}", ret.types));
                            }
                        }
                        Ok(clients)
                    };
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                        .unwrap_or_else(|_| Err("client thread panicked".into()));
                    connected.wait();
                    release.wait();
                    outcome.map(|clients| clients.len())
                })
            })
            .collect();
        connected.wait();
        // All thousand are connected (or failed): the daemon still serves virsh.
        let t = Instant::now();
        let host = ok_stdout(&d.virsh(&["hostname"]));
        assert!(!host.trim().is_empty());
        assert!(t.elapsed() < GENEROUS, "virsh hostname took {:?}", t.elapsed());
        let info = ok_stdout(&d.virt_admin(&["srv-clients-info", "virtqemud"]));
        release.wait();
        let results = workers.into_iter().map(|w| w.join().unwrap()).collect();
        let current = nclients(&info).unwrap_or_else(|| panic!("no nclients in:\n{info}"));
        assert!(
            current >= THREADS * PER_THREAD,
            "daemon counted {current} clients:\n{info}"
        );
        results
    });
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} threads failed, e.g. {:?}",
        failures.len(),
        failures[0]
    );
    let served: usize = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    assert_eq!(served, THREADS * PER_THREAD);
    // They are gone again, and the daemon carries on.
    let drained = wait_for(GENEROUS, || {
        let info = d.virt_admin(&["srv-clients-info", "virtqemud"]);
        nclients(&String::from_utf8_lossy(&info.stdout)).is_some_and(|n| n < 10)
    });
    assert!(drained, "clients not removed after closing");
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 13: per-client limit

#[test]
fn pipelined_calls_beyond_max_client_requests_are_all_answered() {
    let mut d = start("max_client_requests = 1\n");
    let mut c = RawClient::connect(&d.socket("sock"));
    let mut batch = Vec::new();
    let mut sent = Vec::new();
    let open = r::ConnectOpenArgs {
        name: Some("qemu:///system".into()),
        flags: 0,
    }
    .to_xdr();
    for i in 0..10 {
        let (proc_, payload) = match i {
            0 => (procs::AUTH_LIST, &[][..]),
            1 => (procs::CONNECT_OPEN, &open[..]),
            _ => (procs::CONNECT_GET_HOSTNAME, &[][..]),
        };
        let (serial, frame) = c.call_frame(proc_, payload);
        batch.extend_from_slice(&frame);
        sent.push(c.remote_header(proc_, serial));
    }
    c.send(&batch).expect("send batch");
    let mut answered = BTreeSet::new();
    for _ in 0..10 {
        let (h, p) = c.recv();
        let call = sent
            .iter()
            .find(|s| s.serial == h.serial)
            .unwrap_or_else(|| panic!("reply to unknown serial {}", h.serial));
        assert_eq!((h.proc_, h.type_), (call.proc_, MessageType::Reply));
        if h.status != Status::Ok {
            panic!(
                "call {} failed: {}",
                h.serial,
                RpcError::from_xdr(&p).map(|e| e.to_string()).unwrap_or_default()
            );
        }
        assert!(answered.insert(h.serial), "two replies to serial {}", h.serial);
    }
    assert_eq!(answered.len(), 10);
    assert!(!c.hostname().is_empty());
    assert_serves(&mut d);
}

/// Pipelines calls on `c` until the daemon stops reading (its replies pile
/// up unread); panics if it never does.
fn fill_until_daemon_stops_reading(c: &mut RawClient) {
    let mut batch = Vec::new();
    for _ in 0..200 {
        batch.extend_from_slice(&c.call_frame(procs::AUTH_LIST, &[]).1);
    }
    c.stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .expect("write timeout");
    for _ in 0..100 {
        if c.send(&batch).is_err() {
            return;
        }
    }
    panic!("the daemon kept reading from a client that never reads");
}

#[test]
fn clients_that_never_read_replies_do_not_starve_others() {
    // Each hog pipelines calls and never reads, so the daemon's writes to it
    // block once its socket buffer is full. With the default 20 workers and
    // 5 requests per client, 6 hogs would hold every worker if a worker
    // waited for a client's socket.
    let mut d = start("");
    let mut hogs: Vec<RawClient> = (0..6)
        .map(|_| {
            let mut c = RawClient::connect(&d.socket("sock"));
            fill_until_daemon_stops_reading(&mut c);
            c
        })
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        let mut c = RawClient::connect(&d.socket("sock"));
        let serial = c.call(procs::AUTH_LIST, &[]);
        match c.recv_within(Duration::from_secs(5)) {
            Recv::Frame(h, _) => assert_eq!(h.serial, serial),
            other => panic!("a well-behaved client got {other:?} while others do not read their replies"),
        }
        assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    }
    assert_serves(&mut d);

    // A hog that enabled keepalive is dropped although its socket is full,
    // and its descriptor is closed without the hog reading anything.
    let fds_before = open_fds(d.pid());
    let mut hog = RawClient::connect(&d.socket("sock"));
    let args = r::ConnectSupportsFeatureArgs {
        feature: feature::PROGRAM_KEEPALIVE,
    };
    hog.rpc_ok(procs::CONNECT_SUPPORTS_FEATURE, &args.to_xdr());
    fill_until_daemon_stops_reading(&mut hog);
    assert_logged(&d, "No response from client");
    let closed = wait_for(GENEROUS, || open_fds(d.pid()) <= fds_before);
    assert!(closed, "daemon still holds the dropped hog's socket");
    // What the daemon managed to write is still buffered; then EOF.
    loop {
        match hog.recv_within(GENEROUS) {
            Recv::Frame(..) => {}
            Recv::Closed => break,
            Recv::TimedOut => panic!("hog socket still open after its drop"),
        }
    }
    // Hogs that go away free everything they held.
    hogs.clear();
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 14: read-only socket

#[test]
fn read_only_socket_refuses_state_changes() {
    let mut d = start("");
    let define = xdr(|e| e.string("<domain type='qemu'><name>x</name></domain>"));
    let denied = "operation forbidden: read only access prevents virDomainDefineXML";
    // Opened without VIR_CONNECT_RO: the socket alone makes it read-only.
    let mut c = RawClient::connect(&d.socket("sock-ro"));
    c.auth_list();
    c.open(0);
    assert!(!c.hostname().is_empty(), "reads work on the read-only socket");
    let e = c.rpc_err(procs::DOMAIN_DEFINE_XML, &define);
    assert_rpc_error(&e, ErrorCode::OPERATION_DENIED, ErrorDomain::DOMAIN, denied);
    let e = c.rpc_err(procs::NETWORK_DEFINE_XML, &define);
    assert_rpc_error(
        &e,
        ErrorCode::OPERATION_DENIED,
        ErrorDomain::NETWORK,
        "operation forbidden: read only access prevents virNetworkDefineXML",
    );
    c.auth_list();

    // Opened with VIR_CONNECT_RO on the read-write socket: refused the same way.
    let mut c = RawClient::connect(&d.socket("sock"));
    c.auth_list();
    c.open(CONNECT_RO);
    let e = c.rpc_err(procs::DOMAIN_DEFINE_XML, &define);
    assert_rpc_error(&e, ErrorCode::OPERATION_DENIED, ErrorDomain::DOMAIN, denied);

    // The real virsh on the read-only socket.
    ok_stdout(&d.virsh_ro(&["hostname"]));
    assert_serves(&mut d);
}

#[test]
fn log_lines_name_the_dropped_client() {
    // A drop line says which client, whose pid and command, and why.
    let d = start("");
    let mut c = RawClient::connect(&d.socket("sock"));
    let _ = c.send(&5u32.to_be_bytes());
    c.expect_closed(GENEROUS);
    let me = std::process::id();
    assert_logged(&d, &format!("(pid {me}, "));
    assert_eq!(count_logged(&d, "packet of 5 bytes is too small"), 1);
}
