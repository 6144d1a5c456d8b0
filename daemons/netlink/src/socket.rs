//! The `NETLINK_ROUTE` socket: one request out, its replies back.
//!
//! Every request carries a fresh sequence number; replies with another
//! number (left over from a request that timed out) and datagrams not sent
//! by the kernel (port id 0) are ignored. A request ends with an
//! `NLMSG_ERROR` (error 0 is the acknowledgement) or, for dumps, with
//! `NLMSG_DONE`.

use std::fmt;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::error::{NetlinkError, Operation};
use crate::message::{
    self, DecodeError, MessageBuilder, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_NOOP, NLMSG_OVERRUN, Status,
};

/// Large enough for any datagram the kernel sends us: it sizes dump
/// datagrams to at most 32 KiB, and we ask for no per-VF details.
const RECV_BUF_LEN: usize = 64 * 1024;
/// How long to wait for the kernel before giving up on a request.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a dump is restarted when the kernel flags it inconsistent.
const DUMP_ATTEMPTS: usize = 3;

// Socket options (netlink.h); set on a best-effort basis.
const SOL_NETLINK: i32 = 270;
/// Do not echo the request back in error messages.
const NETLINK_CAP_ACK: i32 = 10;
/// Append the kernel's error text to error messages.
const NETLINK_EXT_ACK: i32 = 11;

/// A synchronous rtnetlink client bound to the network namespace of the
/// thread that opened it.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl fmt::Debug for Netlink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netlink")
            .field("fd", &self.fd.as_raw_fd())
            .field("seq", &self.seq)
            .finish()
    }
}

/// A reply message kept for the caller: its type and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) kind: u16,
    pub(crate) payload: Vec<u8>,
}

impl Netlink {
    /// Opens a `NETLINK_ROUTE` socket in the calling thread's network
    /// namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let op = Operation::Open;
        let fail = |errno| NetlinkError::failed(&op, errno);
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(fail)?;
        // Port id 0: the kernel assigns one.
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(fail)?;
        let timeout = TimeVal::milliseconds(RECV_TIMEOUT.as_millis() as i64);
        socket::setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(fail)?;
        // Both are optional: older kernels simply send less.
        let _ = set_netlink_option(&fd, NETLINK_CAP_ACK);
        let _ = set_netlink_option(&fd, NETLINK_EXT_ACK);
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF_LEN],
        })
    }

    /// Sends a request with `NLM_F_ACK` and waits for the acknowledgement;
    /// returns what the kernel sent before it (the answer to a GET).
    pub(crate) fn request(
        &mut self,
        op: &Operation,
        mut request: MessageBuilder,
    ) -> Result<Vec<Reply>, NetlinkError> {
        request.add_flags(NLM_F_ACK);
        self.exchange(op, request).map(|(replies, _)| replies)
    }

    /// Sends a dump request and collects every message up to `NLMSG_DONE`,
    /// restarting if the kernel reports the dump was interrupted by a change.
    pub(crate) fn dump(
        &mut self,
        op: &Operation,
        mut request: MessageBuilder,
    ) -> Result<Vec<Reply>, NetlinkError> {
        request.add_flags(NLM_F_DUMP);
        for _ in 0..DUMP_ATTEMPTS {
            let (replies, interrupted) = self.exchange(op, request.clone())?;
            if !interrupted {
                return Ok(replies);
            }
        }
        Err(NetlinkError::protocol(
            op,
            format!("the kernel's table kept changing while it was read ({DUMP_ATTEMPTS} attempts)"),
        ))
    }

    fn exchange(
        &mut self,
        op: &Operation,
        request: MessageBuilder,
    ) -> Result<(Vec<Reply>, bool), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = request
            .finish(self.seq)
            .map_err(|e| NetlinkError::protocol(op, e))?;
        self.send(op, &bytes)?;
        let mut exchange = Exchange::new(self.seq);
        loop {
            let len = self.receive(op)?;
            let Some(len) = len else { continue };
            if exchange.feed(op, &self.buf[..len])? {
                return Ok((exchange.replies, exchange.interrupted));
            }
        }
    }

    fn send(&self, op: &Operation, bytes: &[u8]) -> Result<(), NetlinkError> {
        let kernel = NetlinkAddr::new(0, 0);
        loop {
            match socket::sendto(self.fd.as_raw_fd(), bytes, &kernel, MsgFlags::empty()) {
                Ok(sent) if sent == bytes.len() => return Ok(()),
                Ok(sent) => {
                    return Err(NetlinkError::protocol(
                        op,
                        format!("sent {sent} of {} bytes", bytes.len()),
                    ));
                }
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(NetlinkError::failed(op, errno)),
            }
        }
    }

    /// Receives one datagram into `self.buf`; `None` if it did not come from
    /// the kernel and must be ignored.
    fn receive(&mut self, op: &Operation) -> Result<Option<usize>, NetlinkError> {
        loop {
            let mut iov = [IoSliceMut::new(&mut self.buf)];
            let received =
                socket::recvmsg::<NetlinkAddr>(self.fd.as_raw_fd(), &mut iov, None, MsgFlags::empty());
            match received {
                Ok(msg) if msg.flags.contains(MsgFlags::MSG_TRUNC) => {
                    return Err(NetlinkError::protocol(
                        op,
                        format!("a reply did not fit in {RECV_BUF_LEN} bytes"),
                    ));
                }
                Ok(msg) => {
                    let from_kernel = msg.address.is_some_and(|addr| addr.pid() == 0);
                    return Ok(from_kernel.then_some(msg.bytes));
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    return Err(NetlinkError::Failed {
                        op: op.clone(),
                        errno: Errno::ETIMEDOUT,
                        detail: Some(format!(
                            "no reply from the kernel within {} s",
                            RECV_TIMEOUT.as_secs()
                        )),
                    });
                }
                Err(errno) => return Err(NetlinkError::failed(op, errno)),
            }
        }
    }
}

/// Sets an integer `SOL_NETLINK` option to 1.
fn set_netlink_option(fd: &impl AsFd, option: i32) -> Result<(), Errno> {
    let one: nix::libc::c_int = 1;
    // SAFETY: `fd` is an open socket borrowed for the call; the value
    // pointer and length describe `one`, a live c_int on our stack that the
    // kernel only reads.
    let rc = unsafe {
        nix::libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            SOL_NETLINK,
            option,
            (&raw const one).cast(),
            size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    Errno::result(rc).map(drop)
}

/// Collects the replies to one request, datagram by datagram. No I/O, so
/// the protocol handling is tested without a kernel.
#[derive(Debug)]
struct Exchange {
    seq: u32,
    replies: Vec<Reply>,
    /// A message carried `NLM_F_DUMP_INTR`: the dump may be inconsistent.
    interrupted: bool,
}

impl Exchange {
    fn new(seq: u32) -> Self {
        Exchange {
            seq,
            replies: Vec::new(),
            interrupted: false,
        }
    }

    /// Takes in one datagram; `Ok(true)` once the request is complete.
    fn feed(&mut self, op: &Operation, datagram: &[u8]) -> Result<bool, NetlinkError> {
        let malformed = |e: DecodeError| NetlinkError::protocol(op, format!("malformed reply: {e}"));
        for msg in message::messages(datagram) {
            let msg = msg.map_err(malformed)?;
            if msg.seq != self.seq {
                continue; // a late reply to an earlier request
            }
            match msg.kind {
                NLMSG_NOOP => {}
                NLMSG_ERROR => {
                    let status = Status::decode_error(msg.flags, msg.payload).map_err(malformed)?;
                    return check(op, status).map(|()| true);
                }
                NLMSG_DONE => return check(op, Status::decode_done(msg.flags, msg.payload)).map(|()| true),
                NLMSG_OVERRUN => return Err(NetlinkError::protocol(op, "the kernel reported an overrun")),
                kind => {
                    self.interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                    self.replies.push(Reply {
                        kind,
                        payload: msg.payload.to_vec(),
                    });
                }
            }
        }
        Ok(false)
    }
}

fn check(op: &Operation, status: Status) -> Result<(), NetlinkError> {
    if status.errno == 0 {
        return Ok(());
    }
    Err(NetlinkError::Failed {
        op: op.clone(),
        errno: Errno::from_raw(status.errno),
        detail: status.text,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::message::{IfInfoMsg, NLM_F_MULTI, RTM_NEWLINK};

    /// One message as the kernel would send it.
    fn kernel_message(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&4242u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(message::align(out.len()), 0);
        out
    }

    fn link_payload(index: u32) -> Vec<u8> {
        IfInfoMsg {
            index,
            ..IfInfoMsg::default()
        }
        .encode()
        .to_vec()
    }

    fn error_payload(error: i32, seq: u32, tlvs: &[u8]) -> Vec<u8> {
        let mut out = error.to_ne_bytes().to_vec();
        // The capped request header: len, type, flags, seq, pid.
        out.extend_from_slice(&32u32.to_ne_bytes());
        out.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
        out.extend_from_slice(&0x605u16.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(tlvs);
        out
    }

    fn op() -> Operation {
        Operation::CreateBridge {
            name: "virbr0".into(),
        }
    }

    #[test]
    fn multi_part_dump_spans_datagrams_until_done() {
        let mut ex = Exchange::new(9);
        let mut first = kernel_message(RTM_NEWLINK, NLM_F_MULTI, 9, &link_payload(1));
        first.extend(kernel_message(RTM_NEWLINK, NLM_F_MULTI, 9, &link_payload(2)));
        // A stale reply to an earlier request is skipped.
        first.extend(kernel_message(RTM_NEWLINK, NLM_F_MULTI, 8, &link_payload(99)));
        assert!(!ex.feed(&op(), &first).unwrap());
        let mut second = kernel_message(RTM_NEWLINK, NLM_F_MULTI, 9, &link_payload(3));
        second.extend(kernel_message(NLMSG_DONE, NLM_F_MULTI, 9, &0i32.to_ne_bytes()));
        assert!(ex.feed(&op(), &second).unwrap());
        let indexes: Vec<u32> = ex
            .replies
            .iter()
            .map(|r| IfInfoMsg::decode(&r.payload).unwrap().0.index)
            .collect();
        assert_eq!(indexes, [1, 2, 3]);
        assert!(!ex.interrupted);
    }

    #[test]
    fn interrupted_dump_is_flagged() {
        let mut ex = Exchange::new(1);
        let dg = kernel_message(RTM_NEWLINK, NLM_F_MULTI | NLM_F_DUMP_INTR, 1, &link_payload(1));
        assert!(!ex.feed(&op(), &dg).unwrap());
        assert!(ex.interrupted);
    }

    #[test]
    fn done_with_an_error_fails_the_dump() {
        let mut ex = Exchange::new(1);
        let dg = kernel_message(
            NLMSG_DONE,
            NLM_F_MULTI,
            1,
            &(-(Errno::EPERM as i32)).to_ne_bytes(),
        );
        let err = ex.feed(&Operation::ListLinks, &dg).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot list network interfaces: Operation not permitted"
        );
    }

    #[test]
    fn ack_completes_a_request() {
        let mut ex = Exchange::new(5);
        // NLM_F_CAPPED: the request header only.
        let dg = kernel_message(NLMSG_ERROR, 0x100, 5, &error_payload(0, 5, &[]));
        assert!(ex.feed(&op(), &dg).unwrap());
        assert!(ex.replies.is_empty());
    }

    #[test]
    fn error_message_carries_errno_and_extended_ack_text() {
        let status = Status::decode_error(0x100, &error_payload(-17, 5, &[])).unwrap();
        assert_eq!(
            status,
            Status {
                errno: 17,
                text: None
            }
        );

        let mut ex = Exchange::new(5);
        let dg = kernel_message(
            NLMSG_ERROR,
            0x100,
            5,
            &error_payload(-(Errno::EEXIST as i32), 5, &[]),
        );
        let err = ex.feed(&op(), &dg).unwrap_err();
        assert_eq!(err.to_string(), "cannot create bridge 'virbr0': File exists");
        assert_eq!(err.errno(), Some(Errno::EEXIST));

        // NLM_F_CAPPED | NLM_F_ACK_TLVS with NLMSGERR_ATTR_MSG "Unknown device type".
        let mut tlv = Vec::new();
        let text = b"Unknown device type\0";
        tlv.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        tlv.extend_from_slice(&1u16.to_ne_bytes());
        tlv.extend_from_slice(text);
        tlv.resize(message::align(tlv.len()), 0);
        let dg = kernel_message(
            NLMSG_ERROR,
            0x300,
            5,
            &error_payload(-(Errno::EOPNOTSUPP as i32), 5, &tlv),
        );
        let err = Exchange::new(5).feed(&op(), &dg).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot create bridge 'virbr0': Operation not supported on transport endpoint (Unknown device type)"
        );
    }

    #[test]
    fn uncapped_error_skips_the_echoed_request() {
        // Without NLM_F_CAPPED the whole request (header + 16-byte body)
        // comes back before the TLVs.
        let mut payload = (-(Errno::ENODEV as i32)).to_ne_bytes().to_vec();
        payload.extend_from_slice(&32u32.to_ne_bytes());
        payload.extend_from_slice(&[0; 12]);
        payload.extend_from_slice(&[0xaa; 16]);
        payload.extend_from_slice(&[11, 0, 1, 0, b'g', b'o', b'n', b'e', b'!', b'!', 0, 0]);
        let status = Status::decode_error(0x200, &payload).unwrap();
        assert_eq!(status.errno, Errno::ENODEV as i32);
        assert_eq!(status.text.as_deref(), Some("gone!!"));
    }

    #[test]
    fn truncated_datagram_is_a_protocol_error() {
        let mut dg = kernel_message(RTM_NEWLINK, NLM_F_MULTI, 1, &link_payload(1));
        dg.truncate(20);
        let err = Exchange::new(1).feed(&Operation::ListLinks, &dg).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot list network interfaces: malformed reply:"),
            "{err}"
        );
    }
}
