//! Message framing of libvirt's RPC protocol (`virnetprotocol.x`).
//!
//! A frame on the stream is a 4-byte big-endian length that **counts itself**,
//! then a 24-byte header (`prog u32, vers u32, proc i32, type i32, serial u32,
//! status i32`), then the XDR payload. Frames above [`MESSAGE_MAX`] bytes are
//! refused as soon as the length word is read, before anything is allocated.

use crate::xdr::{Decoder, Encoder, XdrError};
use thiserror::Error;

/// `VIR_NET_MESSAGE_MAX`: the largest serialized frame, length word included.
pub const MESSAGE_MAX: u32 = 33_554_432;
/// `VIR_NET_MESSAGE_LEN_MAX`: the size of the length word.
pub const LEN_SIZE: u32 = 4;
/// `VIR_NET_MESSAGE_HEADER_MAX`.
pub const HEADER_SIZE: u32 = 24;
/// The smallest valid frame: length word + header.
pub const MIN_FRAME: u32 = LEN_SIZE + HEADER_SIZE;
/// `VIR_NET_MESSAGE_PAYLOAD_MAX`.
pub const PAYLOAD_MAX: u32 = MESSAGE_MAX - HEADER_SIZE - LEN_SIZE;
/// `VIR_NET_MESSAGE_INITIAL`: libvirt's initial buffer size.
pub const MESSAGE_INITIAL: u32 = 65_536;

/// `virNetMessageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Call,
    Reply,
    Message,
    Stream,
    CallWithFds,
    ReplyWithFds,
    StreamHole,
}

impl MessageType {
    pub fn to_i32(self) -> i32 {
        match self {
            Self::Call => 0,
            Self::Reply => 1,
            Self::Message => 2,
            Self::Stream => 3,
            Self::CallWithFds => 4,
            Self::ReplyWithFds => 5,
            Self::StreamHole => 6,
        }
    }

    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Call,
            1 => Self::Reply,
            2 => Self::Message,
            3 => Self::Stream,
            4 => Self::CallWithFds,
            5 => Self::ReplyWithFds,
            6 => Self::StreamHole,
            _ => return None,
        })
    }
}

/// `virNetMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Error,
    Continue,
}

impl Status {
    pub fn to_i32(self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::Error => 1,
            Self::Continue => 2,
        }
    }

    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Ok,
            1 => Self::Error,
            2 => Self::Continue,
            _ => return None,
        })
    }
}

/// `virNetMessageHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub prog: u32,
    pub vers: u32,
    pub proc_: i32,
    pub type_: MessageType,
    pub serial: u32,
    pub status: Status,
}

impl Header {
    /// The header of the reply to this call (same program, procedure, serial).
    pub fn reply(&self, status: Status) -> Header {
        Header {
            type_: MessageType::Reply,
            status,
            ..*self
        }
    }

    pub fn encode(&self, enc: &mut Encoder) {
        enc.u32(self.prog);
        enc.u32(self.vers);
        enc.i32(self.proc_);
        enc.i32(self.type_.to_i32());
        enc.u32(self.serial);
        enc.i32(self.status.to_i32());
    }

    pub fn decode(dec: &mut Decoder<'_>) -> Result<Self, FrameError> {
        let prog = dec.u32()?;
        let vers = dec.u32()?;
        let proc_ = dec.i32()?;
        let t = dec.i32()?;
        let serial = dec.u32()?;
        let s = dec.i32()?;
        let type_ = MessageType::from_i32(t).ok_or(FrameError::BadType(t))?;
        let status = Status::from_i32(s).ok_or(FrameError::BadStatus(s))?;
        Ok(Header {
            prog,
            vers,
            proc_,
            type_,
            serial,
            status,
        })
    }
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("packet of {0} bytes is too small, want at least {MIN_FRAME}")]
    TooSmall(u32),
    #[error("packet of {0} bytes is too large, the maximum is {MESSAGE_MAX}")]
    TooLarge(u32),
    #[error("unknown message type {0}")]
    BadType(i32),
    #[error("unknown message status {0}")]
    BadStatus(i32),
    #[error("malformed header: {0}")]
    Header(#[from] XdrError),
}

/// Validates a length word read off the wire; returns the number of bytes
/// still to read (header + payload).
pub fn check_length(len: u32) -> Result<usize, FrameError> {
    if len < MIN_FRAME {
        return Err(FrameError::TooSmall(len));
    }
    if len > MESSAGE_MAX {
        return Err(FrameError::TooLarge(len));
    }
    Ok((len - LEN_SIZE) as usize)
}

/// Splits the bytes after the length word into header and payload.
pub fn split_body(body: &[u8]) -> Result<(Header, &[u8]), FrameError> {
    let mut dec = Decoder::new(body);
    let header = Header::decode(&mut dec)?;
    Ok((header, &body[HEADER_SIZE as usize..]))
}

/// Builds a whole frame (length word included) from a header and a payload
/// writer. Panics never; the length is patched in after encoding.
pub fn encode_frame(header: &Header, payload: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&[0; 4]);
    let mut enc = Encoder::from_vec(buf);
    header.encode(&mut enc);
    payload(&mut enc);
    let mut buf = enc.into_vec();
    let len = buf.len() as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf
}

/// Parses one whole frame (length word included), as found in a trace.
pub fn decode_frame(frame: &[u8]) -> Result<(Header, &[u8]), FrameError> {
    let mut dec = Decoder::new(frame);
    let len = dec.u32()?;
    let rest = check_length(len)?;
    if frame.len() != len as usize {
        return Err(FrameError::Header(XdrError::Truncated {
            offset: 4,
            needed: rest,
            left: frame.len().saturating_sub(4),
        }));
    }
    split_body(&frame[4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds() {
        assert_eq!(check_length(27), Err(FrameError::TooSmall(27)));
        assert_eq!(check_length(28), Ok(24));
        assert_eq!(check_length(MESSAGE_MAX), Ok(MESSAGE_MAX as usize - 4));
        assert_eq!(
            check_length(MESSAGE_MAX + 1),
            Err(FrameError::TooLarge(MESSAGE_MAX + 1))
        );
    }

    #[test]
    fn frame_round_trip() {
        let h = Header {
            prog: 0x2000_8086,
            vers: 1,
            proc_: 66,
            type_: MessageType::Call,
            serial: 0,
            status: Status::Ok,
        };
        let f = encode_frame(&h, |_| {});
        assert_eq!(f.len(), 28);
        assert_eq!(&f[..4], &[0, 0, 0, 28]);
        let (h2, p) = decode_frame(&f).unwrap();
        assert_eq!(h2, h);
        assert!(p.is_empty());
    }

    #[test]
    fn bad_type_rejected() {
        let mut f = encode_frame(
            &Header {
                prog: 1,
                vers: 1,
                proc_: 1,
                type_: MessageType::Call,
                serial: 0,
                status: Status::Ok,
            },
            |_| {},
        );
        f[16..20].copy_from_slice(&9i32.to_be_bytes());
        assert_eq!(decode_frame(&f), Err(FrameError::BadType(9)));
    }
}
