//! A small blocking client for libvirt's RPC protocol over a UNIX socket.
//!
//! Protocol, as the server sees it (`virnetprotocol.x`): every message is a
//! frame — a 4-byte big-endian length that counts itself, a 24-byte header
//! (`prog, vers, proc, type, serial, status`) and an XDR payload. A client
//! sends `CALL`s with serials counting up from 0 and waits for the `REPLY`
//! with the same program, version, procedure and serial; status `OK` carries
//! the return value, status `ERROR` a `virNetMessageError`.
//!
//! While a call is outstanding the server may send asynchronous `MESSAGE`
//! frames (serial 0): events, and `KEEPALIVE` `PING`s, which it sends after
//! about 5 s of silence once the client has probed feature 10
//! (`PROGRAM_KEEPALIVE`). [`Client`] answers each `PING` with a `PONG` and
//! skips every other `MESSAGE`. It only does so while waiting inside a call:
//! a connection left idle for longer than libvirt's keepalive budget
//! (interval 5 s × (count 5 + 1) ≈ 30 s) will be dropped by the server.
//!
//! One call is in flight at a time. Frames are read through a
//! [`FrameReader`], one reusable buffer per connection, and calls are
//! encoded into one reusable write buffer, so a steady stream of small calls
//! allocates nothing on the hot path (the RPC benchmark relies on this).

use modvirt_wire::admin::FlagsArgs;
use modvirt_wire::message::{self, HEADER_SIZE, LEN_SIZE, MESSAGE_INITIAL, MESSAGE_MAX};
use modvirt_wire::program::{
    ADMIN_PROGRAM, ADMIN_VERSION, KEEPALIVE_PING, KEEPALIVE_PONG, KEEPALIVE_PROGRAM, REMOTE_PROGRAM,
    REMOTE_VERSION, keepalive_header,
};
use modvirt_wire::remote::{
    AUTH_NONE, AuthListRet, ConnectOpenArgs, ConnectSupportsFeatureArgs, ConnectSupportsFeatureRet, feature,
};
use modvirt_wire::{
    Encoder, FrameError, Header, MessageType, RpcError, Status, XdrDecode, XdrEncode, XdrError,
};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// REMOTE procedure numbers the client itself uses.
pub mod remote_proc {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_CLOSE: i32 = 2;
    pub const CONNECT_SUPPORTS_FEATURE: i32 = 60;
    pub const AUTH_LIST: i32 = 66;
    pub const CONNECT_GET_LIB_VERSION: i32 = 157;
}

/// ADMIN procedure numbers the client itself uses.
pub mod admin_proc {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_CLOSE: i32 = 2;
    pub const CONNECT_GET_LIB_VERSION: i32 = 3;
}

/// Why a call (or a connection) failed.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("bad payload: {0}")]
    Xdr(#[from] XdrError),
    #[error("remote error: {0}")]
    Remote(RpcError),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("connection closed by the peer")]
    Closed,
}

/// Reads whole frames off a byte stream into one reusable buffer.
///
/// The buffer starts at [`MESSAGE_INITIAL`] bytes and grows to the largest
/// frame seen (at most [`MESSAGE_MAX`]); as many bytes as the stream has
/// ready are read at once, so back-to-back frames cost one `read` between
/// them. A length word outside `28..=MESSAGE_MAX` is refused before anything
/// is allocated; the stream is then out of step and should be dropped.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// First byte not yet handed out.
    start: usize,
    /// End of the bytes read so far.
    end: usize,
    /// The last frame returned, length word included.
    frame: Range<usize>,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::with_capacity(MESSAGE_INITIAL as usize)
    }
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity.max(LEN_SIZE as usize)],
            start: 0,
            end: 0,
            frame: 0..0,
        }
    }

    /// Reads the next frame and returns its header; [`payload`](Self::payload)
    /// and [`frame`](Self::frame) give its bytes until the next call.
    ///
    /// End of stream before a frame starts is [`ClientError::Closed`]; in the
    /// middle of a frame it is an `UnexpectedEof` I/O error.
    pub fn next_frame<R: Read + ?Sized>(&mut self, src: &mut R) -> Result<Header, ClientError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        self.fill(src, LEN_SIZE as usize)?;
        let mut word = [0u8; 4];
        word.copy_from_slice(&self.buf[self.start..self.start + 4]);
        let total = message::check_length(u32::from_be_bytes(word))? + LEN_SIZE as usize;
        self.fill(src, total)?;
        self.frame = self.start..self.start + total;
        self.start += total;
        let (header, _) =
            message::split_body(&self.buf[self.frame.start + LEN_SIZE as usize..self.frame.end])?;
        Ok(header)
    }

    /// The payload (after the header) of the last frame read.
    pub fn payload(&self) -> &[u8] {
        let from = (self.frame.start + (LEN_SIZE + HEADER_SIZE) as usize).min(self.frame.end);
        &self.buf[from..self.frame.end]
    }

    /// The whole last frame, length word included.
    pub fn frame(&self) -> &[u8] {
        &self.buf[self.frame.clone()]
    }

    /// Current buffer size (for tests and memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Makes sure `need` unread bytes are buffered.
    fn fill<R: Read + ?Sized>(&mut self, src: &mut R, need: usize) -> Result<(), ClientError> {
        while self.end - self.start < need {
            if self.buf.len() - self.start < need {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if self.buf.len() < need {
                    let grown = need
                        .max(self.buf.len().saturating_mul(2))
                        .min(MESSAGE_MAX as usize);
                    self.buf.resize(grown.max(need), 0);
                }
            }
            match src.read(&mut self.buf[self.end..]) {
                Ok(0) if self.end == self.start => return Err(ClientError::Closed),
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The header of a `CALL` (status OK).
pub fn call_header(prog: u32, vers: u32, proc_: i32, serial: u32) -> Header {
    Header {
        prog,
        vers,
        proc_,
        type_: MessageType::Call,
        serial,
        status: Status::Ok,
    }
}

/// One connection to a daemon socket.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    reader: FrameReader,
    wbuf: Vec<u8>,
    serial: u32,
    /// `MESSAGE`s (other than keepalive) that arrived while a reply was
    /// awaited — e.g. the first WATCH event, sent as soon as the stream
    /// starts, which may overtake the WATCH reply. [`Client::read_frame`]
    /// returns them first, in order.
    unsolicited: std::collections::VecDeque<(Header, Vec<u8>)>,
}

/// At most this many early `MESSAGE`s are kept; older ones are dropped.
const UNSOLICITED_MAX: usize = 256;

impl Client {
    /// Connects to a daemon's UNIX socket.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::from_stream(stream))
    }

    /// Wraps an already connected stream (e.g. one end of a socket pair).
    pub fn from_stream(stream: UnixStream) -> Client {
        Client {
            stream,
            reader: FrameReader::new(),
            wbuf: Vec::with_capacity(256),
            serial: 0,
            unsolicited: std::collections::VecDeque::new(),
        }
    }

    /// The serial the next call will carry.
    pub fn next_serial(&self) -> u32 {
        self.serial
    }

    /// The underlying socket (e.g. to shut it down half-way in a test).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Read and write timeout for every following operation; `None` blocks.
    pub fn set_timeout(&mut self, d: Option<Duration>) -> Result<(), ClientError> {
        self.stream.set_read_timeout(d)?;
        self.stream.set_write_timeout(d)?;
        Ok(())
    }

    /// Calls `proc_` with XDR arguments and decodes the XDR return value.
    pub fn call<A: XdrEncode, R: XdrDecode>(
        &mut self,
        prog: u32,
        vers: u32,
        proc_: i32,
        args: &A,
    ) -> Result<R, ClientError> {
        let serial = self.send_call(prog, vers, proc_, |enc| args.encode(enc), &[])?;
        self.wait_reply(prog, vers, proc_, serial)?;
        Ok(R::from_xdr(self.reader.payload())?)
    }

    /// Calls `proc_` with an already encoded payload; returns the OK payload.
    pub fn call_raw(
        &mut self,
        prog: u32,
        vers: u32,
        proc_: i32,
        payload: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let serial = self.send_call(prog, vers, proc_, |_| {}, payload)?;
        self.wait_reply(prog, vers, proc_, serial)?;
        Ok(self.reader.payload().to_vec())
    }

    /// Opens a REMOTE connection the way `virsh` does: `AUTH_LIST`, then
    /// `CONNECT_SUPPORTS_FEATURE(PROGRAM_KEEPALIVE)`, then `CONNECT_OPEN(uri)`.
    ///
    /// Only `REMOTE_AUTH_NONE` is supported (what libvirt offers uid 0).
    pub fn remote_open(&mut self, uri: &str) -> Result<(), ClientError> {
        let auth: AuthListRet = self.call(REMOTE_PROGRAM, REMOTE_VERSION, remote_proc::AUTH_LIST, &())?;
        if !auth.types.is_empty() && !auth.types.contains(&AUTH_NONE) {
            return Err(ClientError::Protocol(format!(
                "server requires authentication types {:?}; only REMOTE_AUTH_NONE is supported",
                auth.types
            )));
        }
        let _: ConnectSupportsFeatureRet = self.call(
            REMOTE_PROGRAM,
            REMOTE_VERSION,
            remote_proc::CONNECT_SUPPORTS_FEATURE,
            &ConnectSupportsFeatureArgs {
                feature: feature::PROGRAM_KEEPALIVE,
            },
        )?;
        let args = ConnectOpenArgs {
            name: Some(uri.to_owned()),
            flags: 0,
        };
        self.call(REMOTE_PROGRAM, REMOTE_VERSION, remote_proc::CONNECT_OPEN, &args)
    }

    /// REMOTE `CONNECT_GET_LIB_VERSION` (no arguments, a `u64` back): the
    /// cheapest real round trip, which the RPC benchmark measures.
    pub fn remote_lib_version(&mut self) -> Result<u64, ClientError> {
        self.call(
            REMOTE_PROGRAM,
            REMOTE_VERSION,
            remote_proc::CONNECT_GET_LIB_VERSION,
            &(),
        )
    }

    /// REMOTE `CONNECT_CLOSE`, as `virsh` sends before disconnecting.
    pub fn remote_close(&mut self) -> Result<(), ClientError> {
        self.call(REMOTE_PROGRAM, REMOTE_VERSION, remote_proc::CONNECT_CLOSE, &())
    }

    /// Opens an ADMIN connection the way `virt-admin` does: `CONNECT_OPEN` flags 0.
    pub fn admin_open(&mut self) -> Result<(), ClientError> {
        self.call(
            ADMIN_PROGRAM,
            ADMIN_VERSION,
            admin_proc::CONNECT_OPEN,
            &FlagsArgs { flags: 0 },
        )
    }

    /// ADMIN `CONNECT_CLOSE`.
    pub fn admin_close(&mut self) -> Result<(), ClientError> {
        self.call(ADMIN_PROGRAM, ADMIN_VERSION, admin_proc::CONNECT_CLOSE, &())
    }

    /// Writes bytes as they are, whatever they are (for bad-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Reads the next frame, whatever it is; keepalives are not answered.
    pub fn read_frame(&mut self) -> Result<(Header, Vec<u8>), ClientError> {
        if let Some(frame) = self.unsolicited.pop_front() {
            return Ok(frame);
        }
        let header = self.reader.next_frame(&mut self.stream)?;
        Ok((header, self.reader.payload().to_vec()))
    }

    /// Encodes and sends one `CALL` (payload: what `encode` writes, then
    /// `raw` as it is); returns its serial.
    fn send_call(
        &mut self,
        prog: u32,
        vers: u32,
        proc_: i32,
        encode: impl FnOnce(&mut Encoder),
        raw: &[u8],
    ) -> Result<u32, ClientError> {
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        self.write_frame(&call_header(prog, vers, proc_, serial), encode, raw)?;
        Ok(serial)
    }

    /// Encodes a frame into the reusable write buffer and sends it.
    fn write_frame(
        &mut self,
        header: &Header,
        encode: impl FnOnce(&mut Encoder),
        raw: &[u8],
    ) -> Result<(), ClientError> {
        let mut buf = std::mem::take(&mut self.wbuf);
        buf.clear();
        buf.extend_from_slice(&[0; LEN_SIZE as usize]);
        let mut enc = Encoder::from_vec(buf);
        header.encode(&mut enc);
        encode(&mut enc);
        let mut buf = enc.into_vec();
        buf.extend_from_slice(raw);
        let result = match u32::try_from(buf.len()) {
            Ok(len) if len <= MESSAGE_MAX => {
                buf[..4].copy_from_slice(&len.to_be_bytes());
                self.stream.write_all(&buf).map_err(ClientError::from)
            }
            _ => Err(FrameError::TooLarge(u32::try_from(buf.len()).unwrap_or(u32::MAX)).into()),
        };
        self.wbuf = buf;
        result
    }

    /// Reads until the reply to `serial` arrives, answering keepalive PINGs
    /// and keeping other `MESSAGE`s for [`Client::read_frame`]. On success
    /// the OK payload is in `self.reader.payload()`.
    fn wait_reply(&mut self, prog: u32, vers: u32, proc_: i32, serial: u32) -> Result<(), ClientError> {
        loop {
            let h = self.reader.next_frame(&mut self.stream)?;
            match h.type_ {
                MessageType::Message => {
                    if h.prog == KEEPALIVE_PROGRAM {
                        if h.proc_ == KEEPALIVE_PING {
                            self.send_pong()?;
                        }
                    } else {
                        if self.unsolicited.len() == UNSOLICITED_MAX {
                            self.unsolicited.pop_front();
                        }
                        self.unsolicited.push_back((h, self.reader.payload().to_vec()));
                    }
                }
                MessageType::Reply => {
                    if h.serial != serial || h.prog != prog || h.vers != vers || h.proc_ != proc_ {
                        return Err(ClientError::Protocol(format!(
                            "expected reply to prog {prog:#x} vers {vers} proc {proc_} serial {serial}, \
                             got prog {:#x} vers {} proc {} serial {}",
                            h.prog, h.vers, h.proc_, h.serial
                        )));
                    }
                    return match h.status {
                        Status::Ok => Ok(()),
                        Status::Error => Err(ClientError::Remote(RpcError::from_xdr(self.reader.payload())?)),
                        Status::Continue => Err(ClientError::Protocol(format!(
                            "reply to proc {proc_} serial {serial} has status CONTINUE (streams are not supported)"
                        ))),
                    };
                }
                other => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected {other:?} frame (prog {:#x} proc {} serial {}) while waiting for serial {serial}",
                        h.prog, h.proc_, h.serial
                    )));
                }
            }
        }
    }

    /// Answers a keepalive PING with a PONG.
    pub fn send_pong(&mut self) -> Result<(), ClientError> {
        self.write_frame(&keepalive_header(KEEPALIVE_PONG), |_| {}, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_wire::message::encode_frame;
    use modvirt_wire::{ErrorCode, ErrorDomain};
    use std::thread;

    /// A fake server: runs `script` on the other end of a socket pair.
    fn with_server(script: impl FnOnce(UnixStream) + Send + 'static) -> (Client, thread::JoinHandle<()>) {
        let (a, b) = UnixStream::pair().unwrap();
        let handle = thread::spawn(move || script(b));
        (Client::from_stream(a), handle)
    }

    fn read_call(stream: &mut UnixStream, reader: &mut FrameReader) -> (Header, Vec<u8>) {
        let h = reader.next_frame(stream).unwrap();
        (h, reader.payload().to_vec())
    }

    fn reply(stream: &mut UnixStream, call: &Header, status: Status, payload: impl FnOnce(&mut Encoder)) {
        stream
            .write_all(&encode_frame(&call.reply(status), payload))
            .unwrap();
    }

    fn message(prog: u32, proc_: i32) -> Vec<u8> {
        let h = Header {
            prog,
            vers: 1,
            proc_,
            type_: MessageType::Message,
            serial: 0,
            status: Status::Ok,
        };
        encode_frame(&h, |_| {})
    }

    #[test]
    fn remote_open_does_the_virsh_handshake() {
        let (mut client, server) = with_server(|mut s| {
            let mut r = FrameReader::new();
            let (h, p) = read_call(&mut s, &mut r);
            assert_eq!(
                (h.prog, h.proc_, h.serial, h.type_),
                (REMOTE_PROGRAM, 66, 0, MessageType::Call)
            );
            assert!(p.is_empty());
            reply(&mut s, &h, Status::Ok, |e| e.array(&[AUTH_NONE]));
            let (h, p) = read_call(&mut s, &mut r);
            assert_eq!((h.proc_, h.serial), (60, 1));
            assert_eq!(p, 10u32.to_be_bytes());
            reply(&mut s, &h, Status::Ok, |e| e.i32(1));
            let (h, p) = read_call(&mut s, &mut r);
            assert_eq!((h.proc_, h.serial), (1, 2));
            // Same bytes as in the libvirtd-pkg-virsh-list-all-empty trace.
            let mut want = vec![0, 0, 0, 1, 0, 0, 0, 14];
            want.extend_from_slice(b"qemu:///system\0\0\0\0\0\0");
            assert_eq!(p, want);
            reply(&mut s, &h, Status::Ok, |_| {});
        });
        client.remote_open("qemu:///system").unwrap();
        assert_eq!(client.next_serial(), 3);
        server.join().unwrap();
    }

    #[test]
    fn keepalive_ping_is_answered_and_events_skipped() {
        let (mut client, server) = with_server(|mut s| {
            let mut r = FrameReader::new();
            let (call, _) = read_call(&mut s, &mut r);
            // An event, then a PING, then the reply.
            s.write_all(&message(REMOTE_PROGRAM, 107)).unwrap();
            s.write_all(&message(KEEPALIVE_PROGRAM, KEEPALIVE_PING)).unwrap();
            let (pong, p) = read_call(&mut s, &mut r);
            assert_eq!(
                pong,
                Header {
                    prog: KEEPALIVE_PROGRAM,
                    vers: 1,
                    proc_: KEEPALIVE_PONG,
                    type_: MessageType::Message,
                    serial: 0,
                    status: Status::Ok,
                }
            );
            assert!(p.is_empty());
            assert_eq!(r.frame().len(), 28);
            reply(&mut s, &call, Status::Ok, |e| e.u64(9_000_000));
        });
        assert_eq!(client.remote_lib_version().unwrap(), 9_000_000);
        server.join().unwrap();
    }

    #[test]
    fn error_reply_becomes_remote_error() {
        let (mut client, server) = with_server(|mut s| {
            let mut r = FrameReader::new();
            let (call, _) = read_call(&mut s, &mut r);
            let err = RpcError::new(
                ErrorCode::NO_SERVER,
                ErrorDomain::RPC,
                "Server not found",
                "no server 'x'",
            );
            reply(&mut s, &call, Status::Error, |e| err.encode(e));
        });
        let e = client.admin_open().unwrap_err();
        match &e {
            ClientError::Remote(r) => assert_eq!(r.code, ErrorCode::NO_SERVER),
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.to_string().contains("Server not found: no server 'x'"), "{e}");
        server.join().unwrap();
    }

    #[test]
    fn wrong_serial_is_a_protocol_error() {
        let (mut client, server) = with_server(|mut s| {
            let mut r = FrameReader::new();
            let (mut call, _) = read_call(&mut s, &mut r);
            call.serial += 7;
            reply(&mut s, &call, Status::Ok, |_| {});
        });
        let e = client.call_raw(REMOTE_PROGRAM, 1, 2, &[]).unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
        server.join().unwrap();
    }

    #[test]
    fn closed_and_truncated_streams() {
        let (mut client, server) = with_server(drop);
        server.join().unwrap();
        assert!(matches!(client.read_frame(), Err(ClientError::Closed)));

        let (mut client, server) = with_server(|mut s| s.write_all(&[0, 0, 0, 40, 1, 2]).unwrap());
        server.join().unwrap();
        match client.read_frame() {
            Err(ClientError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_length_is_refused_before_allocating() {
        let (mut client, server) = with_server(|mut s| s.write_all(&[0x7f, 0xff, 0xff, 0xff]).unwrap());
        server.join().unwrap();
        assert!(matches!(
            client.read_frame(),
            Err(ClientError::Frame(FrameError::TooLarge(_)))
        ));
        assert_eq!(client.reader.capacity(), MESSAGE_INITIAL as usize);
    }

    #[test]
    fn reader_handles_split_batched_and_large_frames() {
        let h = Header {
            prog: REMOTE_PROGRAM,
            vers: 1,
            proc_: 3,
            type_: MessageType::Reply,
            serial: 0,
            status: Status::Ok,
        };
        let big = vec![7u8; 100_000];
        let mut bytes = encode_frame(&h, |e| e.u64(1));
        bytes.extend(encode_frame(&Header { serial: 1, ..h }, |e| e.opaque_fixed(&big)));
        bytes.extend(encode_frame(&Header { serial: 2, ..h }, |_| {}));
        // Deliver in 3-byte pieces to exercise partial reads.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(out.len()).min(3);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        for src in [&mut Trickle(&bytes) as &mut dyn Read, &mut &bytes[..]] {
            let mut r = FrameReader::with_capacity(64);
            assert_eq!(r.next_frame(src).unwrap().serial, 0);
            assert_eq!(r.payload(), 1u64.to_be_bytes());
            assert_eq!(r.next_frame(src).unwrap().serial, 1);
            assert_eq!(r.payload(), &big[..]);
            assert_eq!(r.next_frame(src).unwrap().serial, 2);
            assert!(r.payload().is_empty());
            assert!(matches!(r.next_frame(src), Err(ClientError::Closed)));
        }
    }

    #[test]
    fn serials_count_up_and_raw_bytes_pass_through() {
        let (mut client, server) = with_server(|mut s| {
            let mut r = FrameReader::new();
            for want in 0..3 {
                let (call, p) = read_call(&mut s, &mut r);
                assert_eq!(call.serial, want);
                assert_eq!(p, [1, 2, 3], "raw payloads are sent as they are");
                reply(&mut s, &call, Status::Ok, |e| e.opaque_fixed(&p));
            }
            let mut junk = [0u8; 5];
            s.read_exact(&mut junk).unwrap();
            assert_eq!(&junk, b"junk!");
        });
        for _ in 0..3 {
            let p = client.call_raw(ADMIN_PROGRAM, 1, 3, &[1, 2, 3]).unwrap();
            assert_eq!(p, [1, 2, 3, 0]);
        }
        client.send_raw(b"junk!").unwrap();
        server.join().unwrap();
    }

    #[test]
    fn timeout_applies_to_reads() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut client = Client::from_stream(a);
        client.set_timeout(Some(Duration::from_millis(20))).unwrap();
        match client.read_frame() {
            Err(ClientError::Io(e)) => {
                assert!(matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
