//! UNIX stream halves that are registered with the reactor for reading only.
//!
//! tokio registers every `UnixStream` for both readable and writable
//! readiness, edge-triggered. On a UNIX socket every `recv` by the *other*
//! end frees send space on this end, and the kernel reports that as a
//! writable edge: the process sleeping in `epoll_wait` is woken for nothing.
//! In a request/reply exchange that is one extra wake-up of each daemon per
//! call (measured on virtqemud behind virtproxyd: about two context
//! switches per call instead of one). These halves ask the reactor only
//! for readable readiness; a write goes straight to the socket and only when
//! the socket is full does the writer register (a duplicate of the
//! descriptor) for writable readiness, until the write goes through.

use nix::sys::socket::{MsgFlags, Shutdown, send, shutdown};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::UnixStream;

/// The read half: registered for readable readiness only.
#[derive(Debug)]
pub struct QuietRead {
    fd: Arc<AsyncFd<OwnedFd>>,
}

/// The write half: writes directly; registered (a duplicate descriptor,
/// writable readiness) only while the socket is full. Dropping it shuts
/// the stream down for writing, as tokio's write halves do.
#[derive(Debug)]
pub struct QuietWrite {
    fd: Arc<AsyncFd<OwnedFd>>,
    blocked: Option<AsyncFd<OwnedFd>>,
}

/// Splits `stream` into quiet halves.
pub fn split(stream: UnixStream) -> io::Result<(QuietRead, QuietWrite)> {
    let std = stream.into_std()?;
    std.set_nonblocking(true)?;
    let fd = Arc::new(register(OwnedFd::from(std), Interest::READABLE)?);
    Ok((
        QuietRead { fd: Arc::clone(&fd) },
        QuietWrite { fd, blocked: None },
    ))
}

fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` stays open, and the same descriptor, until it
    // is dropped, which is when the `AsyncFd` owning it is.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(io::Error::from)
}

fn raw(fd: &AsyncFd<OwnedFd>) -> RawFd {
    fd.get_ref().as_raw_fd()
}

impl AsyncRead for QuietRead {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            // SAFETY: `read(2)` only writes into the buffer, and at most
            // `len` bytes; exactly the `n` it reports are marked filled.
            let unfilled = unsafe { buf.unfilled_mut() };
            let len = unfilled.len();
            let n = unsafe { nix::libc::read(raw(&self.fd), unfilled.as_mut_ptr().cast(), len) };
            match usize::try_from(n) {
                Ok(n) => {
                    // Less than asked for: the socket is drained, so the
                    // next read waits for the reactor instead of trying
                    // (and failing) first, as tokio's own streams do.
                    if n > 0 && n < len {
                        guard.clear_ready();
                    }
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(_) => {
                    let e = io::Error::last_os_error();
                    match e.kind() {
                        io::ErrorKind::WouldBlock => guard.clear_ready(),
                        io::ErrorKind::Interrupted => {}
                        _ => return Poll::Ready(Err(e)),
                    }
                }
            }
        }
    }
}

impl QuietWrite {
    fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match send(raw(&self.fd), buf, MsgFlags::MSG_NOSIGNAL) {
                Err(nix::errno::Errno::EINTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

impl AsyncWrite for QuietWrite {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            if let Some(blocked) = &self.blocked {
                let mut guard = ready!(blocked.poll_write_ready(cx))?;
                let written = guard.try_io(|_| self.send_now(buf));
                if let Ok(result) = written {
                    self.blocked = None;
                    return Poll::Ready(result);
                }
                continue;
            }
            match self.send_now(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let dup = self.fd.get_ref().as_fd().try_clone_to_owned()?;
                    self.blocked = Some(register(dup, Interest::WRITABLE)?);
                }
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown(raw(&self.fd), Shutdown::Write).map_err(io::Error::from))
    }
}

impl Drop for QuietWrite {
    fn drop(&mut self) {
        let _ = shutdown(raw(&self.fd), Shutdown::Write);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_go_both_ways_and_dropping_the_writer_ends_the_stream() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut ar, mut aw) = split(a).unwrap();
        let (mut br, mut bw) = split(b).unwrap();
        aw.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        br.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        bw.write_all(b"pong").await.unwrap();
        ar.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
        drop(aw);
        let mut rest = Vec::new();
        br.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "end of stream after the writer is dropped");
    }

    #[tokio::test]
    async fn a_full_socket_waits_for_the_reader_then_completes() {
        let (a, b) = UnixStream::pair().unwrap();
        let (_ar, mut aw) = split(a).unwrap();
        let (mut br, _bw) = split(b).unwrap();
        // Far more than a UNIX socket buffers: the writer must block and
        // resume as the reader drains.
        let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            aw.write_all(&data).await.unwrap();
            assert!(
                aw.blocked.is_none(),
                "the writable registration is dropped once written"
            );
        });
        let mut got = vec![0u8; expected.len()];
        br.read_exact(&mut got).await.unwrap();
        writer.await.unwrap();
        assert!(got == expected, "every byte arrives in order");
    }

    #[tokio::test]
    async fn writing_to_a_closed_peer_is_an_error_not_a_signal() {
        let (a, b) = UnixStream::pair().unwrap();
        let (_ar, mut aw) = split(a).unwrap();
        drop(b);
        let e = aw.write_all(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
