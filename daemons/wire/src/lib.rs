//! The libvirt RPC wire protocol, as spoken by `virsh`, `virt-admin` and
//! every modvirt daemon. No I/O lives here: only the XDR codec
//! ([`xdr`]), framing ([`message`]), the error payload ([`error`]), program
//! and procedure tables ([`program`]) and the argument / return types of the
//! procedures modvirt implements ([`remote`], [`admin`], [`typed_param`]).

pub mod admin;
pub mod domain;
pub mod error;
pub mod interface;
pub mod message;
pub mod network;
pub mod nodedev;
pub mod nwfilter;
pub mod observe;
pub mod program;
pub mod remote;
pub mod remote_procedures;
pub mod secret;
pub mod storage;
pub mod timestamp;
pub mod typed_param;
pub mod xdr;

pub use error::{ErrorCode, ErrorDomain, RpcError};
pub use message::{FrameError, Header, MessageType, Status};
pub use program::{Driver, Priority, ProcKind, Procedure, Program};
pub use xdr::{Decoder, Encoder, XdrDecode, XdrEncode, XdrError};
