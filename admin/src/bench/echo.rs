//! The baseline of the RPC benchmark: a UNIX-socket server that costs as
//! little as a frame server can.
//!
//! Protocol: it reads whole frames (4-byte length counting itself, 24-byte
//! header, payload) and answers every `CALL` with a 36-byte frame shaped
//! like libvirt's reply to `CONNECT_GET_LIB_VERSION`: the call's header with
//! type `REPLY` and status `OK`, then an 8-byte payload (the `u64` 9000000,
//! "9.0.0"). The call's payload is never decoded. `MESSAGE` frames (e.g. a
//! keepalive `PONG`) get no answer; anything else, or a bad length word,
//! closes the connection. One thread per connection, as simple as possible,
//! so the difference to a real daemon is the daemon's own work.

use crate::client::{ClientError, FrameReader};
use modvirt_wire::message::{HEADER_SIZE, LEN_SIZE};
use modvirt_wire::{Encoder, Header, MessageType, Status};
use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use thiserror::Error;

/// Size of every reply frame: length word + header + `u64`.
pub const REPLY_LEN: usize = (LEN_SIZE + HEADER_SIZE) as usize + 8;
/// The payload of every reply: libvirt's packed version 9.0.0.
pub const REPLY_VALUE: u64 = 9_000_000;

#[derive(Debug, Error)]
pub enum EchoError {
    #[error("{} is in use by a running server", path.display())]
    InUse { path: PathBuf },
    #[error("cannot bind {}: {source}", path.display())]
    Bind { path: PathBuf, source: io::Error },
    #[error("accept failed: {0}")]
    Accept(io::Error),
    #[error("cannot start a connection thread: {0}")]
    Spawn(io::Error),
}

/// A bound echo server; [`run`](Self::run) serves until the process ends.
#[derive(Debug)]
pub struct EchoServer {
    listener: UnixListener,
    path: PathBuf,
}

impl EchoServer {
    /// Binds `path`, replacing a stale socket file nobody listens on.
    pub fn bind(path: &Path) -> Result<EchoServer, EchoError> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(EchoError::InUse {
                    path: path.to_owned(),
                });
            }
            // Stale: nobody answers, so nobody loses it.
            let _ = std::fs::remove_file(path);
        }
        let listener = UnixListener::bind(path).map_err(|source| EchoError::Bind {
            path: path.to_owned(),
            source,
        })?;
        Ok(EchoServer {
            listener,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections forever, one named thread each.
    pub fn run(self) -> Result<(), EchoError> {
        for (n, conn) in self.listener.incoming().enumerate() {
            let stream = match conn {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(EchoError::Accept(e)),
            };
            thread::Builder::new()
                .name(format!("echo-conn-{n}"))
                .spawn(move || {
                    // A client that leaves or misbehaves only ends its own thread.
                    let _ = serve_connection(stream);
                })
                .map_err(EchoError::Spawn)?;
        }
        Ok(())
    }
}

/// Builds the reply to `call` into `out`.
pub fn encode_reply(call: &Header, out: &mut [u8; REPLY_LEN]) {
    let mut enc = Encoder::from_vec(Vec::with_capacity(REPLY_LEN));
    enc.u32(REPLY_LEN as u32);
    call.reply(Status::Ok).encode(&mut enc);
    enc.u64(REPLY_VALUE);
    out.copy_from_slice(&enc.into_vec());
}

/// Serves one connection until the peer closes it. A clean close is `Ok`.
pub fn serve_connection(mut stream: UnixStream) -> Result<(), ClientError> {
    let mut reader = FrameReader::new();
    let mut out = [0u8; REPLY_LEN];
    let mut last: Option<Header> = None;
    loop {
        let call = match reader.next_frame(&mut stream) {
            Ok(h) => h,
            Err(ClientError::Closed) => return Ok(()),
            Err(e) => return Err(e),
        };
        match call.type_ {
            MessageType::Call => {
                // Reuse the encoded reply when only the serial changed.
                if last.is_some_and(|l| {
                    Header {
                        serial: call.serial,
                        ..l
                    } == call
                }) {
                    out[20..24].copy_from_slice(&call.serial.to_be_bytes());
                } else {
                    encode_reply(&call, &mut out);
                    last = Some(call);
                }
                stream.write_all(&out)?;
            }
            MessageType::Message => {}
            other => {
                return Err(ClientError::Protocol(format!(
                    "echo server got a {other:?} frame"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Client, remote_proc};
    use modvirt_wire::program::REMOTE_PROGRAM;

    #[test]
    fn answers_calls_with_36_byte_replies() {
        let (a, b) = UnixStream::pair().unwrap();
        let server = thread::spawn(move || serve_connection(b));
        let mut client = Client::from_stream(a);
        for _ in 0..3 {
            assert_eq!(client.remote_lib_version().unwrap(), REPLY_VALUE);
        }
        // Another procedure: the header is re-encoded, the serial follows.
        let p = client
            .call_raw(REMOTE_PROGRAM, 1, remote_proc::AUTH_LIST, &[])
            .unwrap();
        assert_eq!(p, REPLY_VALUE.to_be_bytes());
        let (h, p) = {
            client
                .send_raw(&modvirt_wire::message::encode_frame(
                    &Header {
                        prog: 1,
                        vers: 2,
                        proc_: 3,
                        type_: MessageType::Call,
                        serial: 77,
                        status: Status::Ok,
                    },
                    |e| e.string("ignored"),
                ))
                .unwrap();
            client.read_frame().unwrap()
        };
        assert_eq!(
            (h.prog, h.vers, h.proc_, h.serial, h.type_),
            (1, 2, 3, 77, MessageType::Reply)
        );
        assert_eq!(p.len(), 8);
        drop(client);
        assert!(server.join().unwrap().is_ok());
    }

    #[test]
    fn binds_replaces_stale_socket_and_refuses_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.sock");
        drop(UnixListener::bind(&path).unwrap()); // leaves a stale file
        let server = EchoServer::bind(&path).unwrap();
        assert!(matches!(EchoServer::bind(&path), Err(EchoError::InUse { .. })));
        thread::spawn(move || server.run());
        let mut client = Client::connect(&path).unwrap();
        let p = client.call_raw(REMOTE_PROGRAM, 1, 157, &[]).unwrap();
        assert_eq!(p.len(), 8);
    }
}
