//! The netlink wire format: building requests and splitting replies. No I/O.
//!
//! A netlink datagram holds one or more messages, each aligned to 4 bytes:
//!
//! ```text
//! nlmsghdr  { len: u32, type: u16, flags: u16, seq: u32, pid: u32 }   16 bytes
//! family header (ifinfomsg: 16 bytes, ifaddrmsg: 8 bytes)
//! attributes: nlattr { len: u16, type: u16 } + payload, each padded to 4 bytes
//! ```
//!
//! `len` fields count the header and the payload but not the trailing
//! padding of the last attribute; nested attributes (`IFLA_LINKINFO`) hold
//! further attributes as their payload. All integers are in host byte order.
//! The values below come from the kernel's uapi headers (`netlink.h`,
//! `rtnetlink.h`, `if_link.h`, `if_addr.h`, `if.h`).

use std::fmt;

/// `NLMSG_ALIGNTO` and `NLA_ALIGNTO`.
const ALIGN: usize = 4;
/// `sizeof(struct nlmsghdr)`.
pub(crate) const HEADER_LEN: usize = 16;
/// `sizeof(struct nlattr)`.
const ATTR_HEADER_LEN: usize = 4;
/// The largest request we build; the kernel's own limit is far higher, ours
/// only has to hold a name, a MAC and a few integers.
pub(crate) const MAX_REQUEST_LEN: usize = 4096;

// Message types (netlink.h, rtnetlink.h).
pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_OVERRUN: u16 = 4;
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_SETLINK: u16 = 19;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_DELADDR: u16 = 21;
pub(crate) const RTM_GETADDR: u16 = 22;

// Header flags.
pub(crate) const NLM_F_REQUEST: u16 = 0x01;
/// Set on each message of a dump (tests build such replies).
#[cfg(test)]
pub(crate) const NLM_F_MULTI: u16 = 0x02;
pub(crate) const NLM_F_ACK: u16 = 0x04;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_ROOT | NLM_F_MATCH`, for GET requests.
pub(crate) const NLM_F_DUMP: u16 = 0x300;
/// For NEW requests.
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
/// In an `NLMSG_ERROR` reply: the request was not echoed back.
const NLM_F_CAPPED: u16 = 0x100;
/// In an `NLMSG_ERROR`/`NLMSG_DONE` reply: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: a human-readable error string.
const NLMSGERR_ATTR_MSG: u16 = 1;

// Attribute type flags, masked off when decoding.
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

// Link attributes (if_link.h).
pub(crate) const IFLA_ADDRESS: u16 = 1;
pub(crate) const IFLA_IFNAME: u16 = 3;
pub(crate) const IFLA_MTU: u16 = 4;
pub(crate) const IFLA_MASTER: u16 = 10;
pub(crate) const IFLA_OPERSTATE: u16 = 16;
pub(crate) const IFLA_LINKINFO: u16 = 18;
pub(crate) const IFLA_INFO_KIND: u16 = 1;
pub(crate) const IFLA_INFO_DATA: u16 = 2;
pub(crate) const IFLA_BR_FORWARD_DELAY: u16 = 1;
pub(crate) const IFLA_BR_STP_STATE: u16 = 5;

// Address attributes (if_addr.h).
pub(crate) const IFA_ADDRESS: u16 = 1;
pub(crate) const IFA_LOCAL: u16 = 2;
pub(crate) const IFA_LABEL: u16 = 3;
pub(crate) const IFA_BROADCAST: u16 = 4;
pub(crate) const IFA_FLAGS: u16 = 8;

/// Rounds `len` up to the netlink alignment (`NLMSG_ALIGN`, `NLA_ALIGN`).
pub(crate) const fn align(len: usize) -> usize {
    (len + ALIGN - 1) & !(ALIGN - 1)
}

/// A reply the kernel sent that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed(what: impl Into<String>) -> DecodeError {
    DecodeError(what.into())
}

/// `struct ifinfomsg`: the family header of link messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IfInfoMsg {
    pub(crate) family: u8,
    pub(crate) link_type: u16,
    pub(crate) index: u32,
    pub(crate) flags: u32,
    pub(crate) change: u32,
}

impl IfInfoMsg {
    pub(crate) const LEN: usize = 16;

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.family;
        // out[1] is padding.
        out[2..4].copy_from_slice(&self.link_type.to_ne_bytes());
        out[4..8].copy_from_slice(&self.index.to_ne_bytes());
        out[8..12].copy_from_slice(&self.flags.to_ne_bytes());
        out[12..16].copy_from_slice(&self.change.to_ne_bytes());
        out
    }

    /// Splits a link message payload into its header and its attributes.
    pub(crate) fn decode(payload: &[u8]) -> Result<(IfInfoMsg, Attrs<'_>), DecodeError> {
        if payload.len() < Self::LEN {
            return Err(malformed(format!("link message of {} bytes", payload.len())));
        }
        let msg = IfInfoMsg {
            family: payload[0],
            link_type: u16_at(payload, 2),
            index: u32_at(payload, 4),
            flags: u32_at(payload, 8),
            change: u32_at(payload, 12),
        };
        Ok((msg, Attrs::new(&payload[Self::LEN..])))
    }
}

/// `struct ifaddrmsg`: the family header of address messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IfAddrMsg {
    pub(crate) family: u8,
    pub(crate) prefix_len: u8,
    pub(crate) flags: u8,
    pub(crate) scope: u8,
    pub(crate) index: u32,
}

impl IfAddrMsg {
    pub(crate) const LEN: usize = 8;

    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.family;
        out[1] = self.prefix_len;
        out[2] = self.flags;
        out[3] = self.scope;
        out[4..8].copy_from_slice(&self.index.to_ne_bytes());
        out
    }

    /// Splits an address message payload into its header and its attributes.
    pub(crate) fn decode(payload: &[u8]) -> Result<(IfAddrMsg, Attrs<'_>), DecodeError> {
        if payload.len() < Self::LEN {
            return Err(malformed(format!("address message of {} bytes", payload.len())));
        }
        let msg = IfAddrMsg {
            family: payload[0],
            prefix_len: payload[1],
            flags: payload[2],
            scope: payload[3],
            index: u32_at(payload, 4),
        };
        Ok((msg, Attrs::new(&payload[Self::LEN..])))
    }
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// A request being built: header, family header, attributes.
///
/// Lengths are filled in by [`MessageBuilder::finish`] and by
/// [`MessageBuilder::end_nested`]; an attribute or a message that would not
/// fit its length field (or [`MAX_REQUEST_LEN`]) makes `finish` fail.
#[derive(Debug, Clone)]
pub(crate) struct MessageBuilder {
    buf: Vec<u8>,
    too_large: bool,
}

/// Where a nested attribute started, to be handed back to `end_nested`.
#[derive(Debug)]
#[must_use = "a nested attribute must be closed with end_nested"]
pub(crate) struct Nest(usize);

impl MessageBuilder {
    /// Starts a request of type `kind`; `NLM_F_REQUEST` is always set.
    pub(crate) fn new(kind: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // len, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set by finish
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: 0, the kernel fills it in
        MessageBuilder {
            buf,
            too_large: false,
        }
    }

    /// Sets more header flags (`NLM_F_ACK`, `NLM_F_DUMP`).
    pub(crate) fn add_flags(&mut self, flags: u16) {
        let old = u16_at(&self.buf, 6);
        self.buf[6..8].copy_from_slice(&(old | flags).to_ne_bytes());
    }

    /// Appends the fixed family header (`ifinfomsg`, `ifaddrmsg`).
    pub(crate) fn family_header(mut self, bytes: &[u8]) -> Self {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    /// Appends one attribute and pads it to 4 bytes.
    pub(crate) fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        let len = ATTR_HEADER_LEN + payload.len();
        let Ok(len16) = u16::try_from(len) else {
            self.too_large = true;
            return self;
        };
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    #[cfg(test)]
    pub(crate) fn attr_u8(&mut self, kind: u16, value: u8) -> &mut Self {
        self.attr(kind, &[value])
    }

    pub(crate) fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// A NUL-terminated string attribute (`NLA_STRING`/`NLA_NUL_STRING`).
    pub(crate) fn attr_str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut payload = Vec::with_capacity(value.len() + 1);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
        self.attr(kind, &payload)
    }

    /// Opens a nested attribute; the attributes added until `end_nested`
    /// are its payload.
    pub(crate) fn begin_nested(&mut self, kind: u16) -> Nest {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        Nest(start)
    }

    pub(crate) fn end_nested(&mut self, nest: Nest) -> &mut Self {
        match u16::try_from(self.buf.len() - nest.0) {
            Ok(len) => self.buf[nest.0..nest.0 + 2].copy_from_slice(&len.to_ne_bytes()),
            Err(_) => self.too_large = true,
        }
        self
    }

    /// Sets the length and the sequence number; the bytes are ready to send.
    pub(crate) fn finish(mut self, seq: u32) -> Result<Vec<u8>, DecodeError> {
        let len = self.buf.len();
        if self.too_large || len > MAX_REQUEST_LEN {
            return Err(malformed(format!("request too large ({len} bytes)")));
        }
        // len <= MAX_REQUEST_LEN, so it fits.
        self.buf[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        Ok(self.buf)
    }
}

/// One message of a datagram: its header fields and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub(crate) kind: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) pid: u32,
    pub(crate) payload: &'a [u8],
}

/// The messages of one received datagram, in order. Stops at the first
/// malformed header (a length shorter than the header or past the end).
pub(crate) fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages { rest: datagram }
}

#[derive(Debug)]
pub(crate) struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        if rest.len() < HEADER_LEN {
            return Some(Err(malformed(format!(
                "{} stray bytes after the last message",
                rest.len()
            ))));
        }
        let len = u32_at(rest, 0) as usize;
        if len < HEADER_LEN || len > rest.len() {
            return Some(Err(malformed(format!(
                "message length {len} with {} bytes left",
                rest.len()
            ))));
        }
        let message = Message {
            kind: u16_at(rest, 4),
            flags: u16_at(rest, 6),
            seq: u32_at(rest, 8),
            pid: u32_at(rest, 12),
            payload: &rest[HEADER_LEN..len],
        };
        self.rest = &rest[align(len).min(rest.len())..];
        Some(Ok(message))
    }
}

/// An attribute: its type (flags masked off) and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    pub(crate) kind: u16,
    pub(crate) payload: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The attributes nested in this one.
    pub(crate) fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.payload)
    }

    pub(crate) fn u8(&self) -> Result<u8, DecodeError> {
        match self.payload {
            [v, ..] => Ok(*v),
            [] => Err(self.wrong_size("u8")),
        }
    }

    pub(crate) fn u32(&self) -> Result<u32, DecodeError> {
        match self.payload {
            [a, b, c, d, ..] => Ok(u32::from_ne_bytes([*a, *b, *c, *d])),
            _ => Err(self.wrong_size("u32")),
        }
    }

    /// A string attribute; a trailing NUL (and anything after it) is dropped.
    pub(crate) fn string(&self) -> String {
        let end = self
            .payload
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.payload.len());
        String::from_utf8_lossy(&self.payload[..end]).into_owned()
    }

    fn wrong_size(&self, what: &str) -> DecodeError {
        malformed(format!(
            "attribute {} has {} bytes, expected a {what}",
            self.kind,
            self.payload.len()
        ))
    }
}

/// Iterates over a run of attributes. Stops at the first malformed one.
#[derive(Debug, Clone)]
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Attrs { rest: bytes }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        if rest.len() < ATTR_HEADER_LEN {
            return Some(Err(malformed(format!(
                "{} stray bytes after the last attribute",
                rest.len()
            ))));
        }
        let len = usize::from(u16_at(rest, 0));
        if len < ATTR_HEADER_LEN || len > rest.len() {
            return Some(Err(malformed(format!(
                "attribute length {len} with {} bytes left",
                rest.len()
            ))));
        }
        let attr = Attr {
            kind: u16_at(rest, 2) & NLA_TYPE_MASK,
            payload: &rest[ATTR_HEADER_LEN..len],
        };
        self.rest = &rest[align(len).min(rest.len())..];
        Some(Ok(attr))
    }
}

/// The body of an `NLMSG_ERROR` message (`struct nlmsgerr`) or of an
/// `NLMSG_DONE` message: an errno (0 for an acknowledgement) and the
/// kernel's extended-ack text if it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    /// Positive errno, or 0.
    pub(crate) errno: i32,
    pub(crate) text: Option<String>,
}

impl Status {
    /// Decodes an `NLMSG_ERROR` payload: `int error; struct nlmsghdr msg;`
    /// then the request's payload unless `NLM_F_CAPPED`, then the
    /// extended-ack attributes if `NLM_F_ACK_TLVS`.
    pub(crate) fn decode_error(flags: u16, payload: &[u8]) -> Result<Status, DecodeError> {
        if payload.len() < 4 + HEADER_LEN {
            return Err(malformed(format!("error message of {} bytes", payload.len())));
        }
        let error = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
        let tlvs_at = if flags & NLM_F_CAPPED != 0 {
            4 + HEADER_LEN
        } else {
            4 + align(u32_at(payload, 4) as usize)
        };
        let text = if flags & NLM_F_ACK_TLVS != 0 {
            extended_ack_text(payload.get(tlvs_at..).unwrap_or_default())
        } else {
            None
        };
        Ok(Status {
            errno: error.saturating_abs(),
            text,
        })
    }

    /// Decodes an `NLMSG_DONE` payload: an `int` status (older kernels may
    /// send none), then extended-ack attributes if `NLM_F_ACK_TLVS`.
    pub(crate) fn decode_done(flags: u16, payload: &[u8]) -> Status {
        let error = match payload {
            [a, b, c, d, ..] => i32::from_ne_bytes([*a, *b, *c, *d]),
            _ => 0,
        };
        let text = if flags & NLM_F_ACK_TLVS != 0 {
            extended_ack_text(payload.get(4..).unwrap_or_default())
        } else {
            None
        };
        Status {
            errno: error.saturating_abs(),
            text,
        }
    }
}

fn extended_ack_text(tlvs: &[u8]) -> Option<String> {
    Attrs::new(tlvs)
        .filter_map(Result::ok)
        .find(|attr| attr.kind == NLMSGERR_ATTR_MSG)
        .map(|attr| attr.string())
        .filter(|text| !text.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_lengths_exclude_padding() {
        let mut b = MessageBuilder::new(RTM_GETLINK, 0).family_header(&IfInfoMsg::default().encode());
        b.attr_str(IFLA_IFNAME, "lo");
        b.attr_u8(IFLA_OPERSTATE, 6);
        let bytes = b.finish(7).unwrap();
        assert_eq!(bytes.len(), 16 + 16 + 8 + 8);
        assert_eq!(u32_at(&bytes, 0), 48);
        assert_eq!(u16_at(&bytes, 6), NLM_F_REQUEST);
        assert_eq!(u32_at(&bytes, 8), 7);
        // "lo\0": 4 + 3 = 7, padded to 8.
        assert_eq!(&bytes[32..40], &[7, 0, 3, 0, b'l', b'o', 0, 0]);
        assert_eq!(&bytes[40..48], &[5, 0, 16, 0, 6, 0, 0, 0]);
    }

    #[test]
    fn oversized_attribute_makes_finish_fail() {
        let mut b = MessageBuilder::new(RTM_NEWLINK, 0);
        b.attr(IFLA_IFNAME, &vec![b'x'; 70_000]);
        assert!(b.finish(1).is_err());
        let mut b = MessageBuilder::new(RTM_NEWLINK, 0);
        b.attr(IFLA_IFNAME, &vec![b'x'; MAX_REQUEST_LEN]);
        assert!(b.finish(1).is_err());
    }

    #[test]
    fn nested_attributes_decode() {
        let mut b = MessageBuilder::new(RTM_NEWLINK, 0).family_header(&IfInfoMsg::default().encode());
        let info = b.begin_nested(IFLA_LINKINFO);
        b.attr_str(IFLA_INFO_KIND, "tun");
        let data = b.begin_nested(IFLA_INFO_DATA);
        b.attr_u32(IFLA_BR_STP_STATE, 1);
        b.end_nested(data);
        b.end_nested(info);
        b.attr_u32(IFLA_MTU, 9000);
        let bytes = b.finish(1).unwrap();

        let msg = messages(&bytes).next().unwrap().unwrap();
        let (_, attrs) = IfInfoMsg::decode(msg.payload).unwrap();
        let attrs: Vec<_> = attrs.map(Result::unwrap).collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].kind, IFLA_LINKINFO, "NLA_F_NESTED is masked off");
        assert_eq!(attrs[1].u32().unwrap(), 9000);
        let inner: Vec<_> = attrs[0].nested().map(Result::unwrap).collect();
        assert_eq!(inner[0].string(), "tun");
        let data: Vec<_> = inner[1].nested().map(Result::unwrap).collect();
        assert_eq!((data[0].kind, data[0].u32().unwrap()), (IFLA_BR_STP_STATE, 1));
    }

    #[test]
    fn malformed_lengths_are_errors_not_panics() {
        // Attribute claiming more bytes than there are.
        let attrs: Vec<_> = Attrs::new(&[200, 0, 1, 0, 0, 0]).collect();
        assert_eq!(attrs.len(), 1);
        assert!(attrs[0].is_err());
        // Attribute length below its header.
        assert!(Attrs::new(&[2, 0, 1, 0]).next().unwrap().is_err());
        // Message length below the header, and past the end.
        let mut short = [0u8; 16];
        short[0] = 8;
        assert!(messages(&short).next().unwrap().is_err());
        short[0] = 40;
        assert!(messages(&short).next().unwrap().is_err());
        assert!(messages(&[1, 2, 3]).next().unwrap().is_err());
        // Wrong-size integers.
        let attr = Attr {
            kind: IFLA_MTU,
            payload: &[1, 2],
        };
        assert!(attr.u32().is_err());
        assert!(IfInfoMsg::decode(&[0; 15]).is_err());
        assert!(IfAddrMsg::decode(&[0; 7]).is_err());
        assert!(Status::decode_error(0, &[0; 19]).is_err());
    }

    #[test]
    fn family_headers_round_trip() {
        let info = IfInfoMsg {
            family: 0,
            link_type: 1,
            index: 42,
            flags: 0x1043,
            change: 1,
        };
        let bytes = info.encode();
        let (back, mut rest) = IfInfoMsg::decode(&bytes).unwrap();
        assert_eq!(back, info);
        assert!(rest.next().is_none());
        let addr = IfAddrMsg {
            family: 10,
            prefix_len: 64,
            flags: 0x80,
            scope: 253,
            index: 3,
        };
        assert_eq!(IfAddrMsg::decode(&addr.encode()).unwrap().0, addr);
    }
}
