//! `virNetMessageError`: the payload of every reply with status ERROR.
//!
//! ```text
//! struct virNetMessageError {
//!     int code; int domain; string *message; int level;
//!     nonnull_domain *dom; string *str1; string *str2; string *str3;
//!     int int1; int int2; nonnull_network *net;
//! };
//! ```
//! Code and domain numbers are libvirt's `virErrorNumber` / `virErrorDomain`.

use crate::xdr::{Decoder, Encoder, XdrDecode, XdrEncode, XdrError};

/// libvirt's `virErrorNumber` values that modvirt produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub i32);

impl ErrorCode {
    pub const INTERNAL_ERROR: Self = Self(1);
    pub const NO_SUPPORT: Self = Self(3);
    pub const NO_CONNECT: Self = Self(5);
    pub const INVALID_CONN: Self = Self(6);
    pub const INVALID_ARG: Self = Self(8);
    pub const OPERATION_FAILED: Self = Self(9);
    pub const XML_ERROR: Self = Self(27);
    pub const OPERATION_DENIED: Self = Self(29);
    pub const CONF_SYNTAX: Self = Self(33);
    pub const SYSTEM_ERROR: Self = Self(38);
    pub const RPC: Self = Self(39);
    pub const NO_DOMAIN: Self = Self(42);
    pub const NO_NETWORK: Self = Self(43);
    pub const OPERATION_INVALID: Self = Self(55);
    pub const OPERATION_TIMEOUT: Self = Self(68);
    pub const ARGUMENT_UNSUPPORTED: Self = Self(74);
    pub const OPERATION_UNSUPPORTED: Self = Self(84);
    pub const ACCESS_DENIED: Self = Self(88);
    pub const NO_SERVER: Self = Self(95);
    pub const NO_CLIENT: Self = Self(96);
}

/// libvirt's `virErrorDomain` values that modvirt produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorDomain(pub i32);

impl ErrorDomain {
    pub const NONE: Self = Self(0);
    pub const XML: Self = Self(5);
    pub const RPC: Self = Self(7);
    pub const CONF: Self = Self(9);
    pub const QEMU: Self = Self(10);
    pub const REMOTE: Self = Self(13);
    pub const STORAGE: Self = Self(18);
    pub const NETWORK: Self = Self(19);
    pub const DOMAIN: Self = Self(20);
    pub const NODEDEV: Self = Self(22);
    pub const INTERFACE: Self = Self(26);
    pub const SECRET: Self = Self(30);
    pub const NWFILTER: Self = Self(33);
    pub const URI: Self = Self(45);
    pub const SYSTEMD: Self = Self(56);
    pub const THREAD: Self = Self(61);
    pub const ADMIN: Self = Self(62);
    pub const LOGGING: Self = Self(63);
}

/// `VIR_ERR_ERROR`: the level of every error modvirt reports.
pub const LEVEL_ERROR: i32 = 2;

/// `remote_nonnull_domain` as embedded in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDomainRef {
    pub name: String,
    pub uuid: [u8; 16],
    pub id: i32,
}

/// `remote_nonnull_network` as embedded in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorNetworkRef {
    pub name: String,
    pub uuid: [u8; 16],
}

/// A libvirt error as it travels on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: ErrorCode,
    pub domain: ErrorDomain,
    pub message: Option<String>,
    pub level: i32,
    pub dom: Option<ErrorDomainRef>,
    pub str1: Option<String>,
    pub str2: Option<String>,
    pub str3: Option<String>,
    pub int1: i32,
    pub int2: i32,
    pub net: Option<ErrorNetworkRef>,
}

impl RpcError {
    /// An error whose message is `prefix: detail`, recorded as libvirt does
    /// (`str1` = the format with `%s`, `str2` = the detail).
    pub fn new(code: ErrorCode, domain: ErrorDomain, prefix: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self {
            code,
            domain,
            message: Some(format!("{prefix}: {detail}")),
            level: LEVEL_ERROR,
            dom: None,
            str1: Some(format!("{prefix}: %s")),
            str2: Some(detail),
            str3: None,
            int1: -1,
            int2: -1,
            net: None,
        }
    }

    /// An error whose message is exactly `message` (no prefix).
    pub fn plain(code: ErrorCode, domain: ErrorDomain, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code,
            domain,
            message: Some(message.clone()),
            level: LEVEL_ERROR,
            dom: None,
            str1: Some("%s".into()),
            str2: Some(message),
            str3: None,
            int1: -1,
            int2: -1,
            net: None,
        }
    }

    /// The message a person reads (empty string if the peer sent none).
    pub fn text(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (code {}, domain {})",
            self.text(),
            self.code.0,
            self.domain.0
        )
    }
}

impl std::error::Error for RpcError {}

/// `remote_uuid`, decoded as the remote program's [`Uuid`](crate::remote::Uuid) does.
fn uuid(dec: &mut Decoder<'_>) -> Result<[u8; 16], XdrError> {
    Ok(<crate::remote::Uuid as XdrDecode>::decode(dec)?.0)
}

impl XdrEncode for RpcError {
    fn encode(&self, enc: &mut Encoder) {
        enc.i32(self.code.0);
        enc.i32(self.domain.0);
        enc.opt_string(self.message.as_deref());
        enc.i32(self.level);
        enc.option(self.dom.as_ref(), |e, d| {
            e.string(&d.name);
            e.opaque_fixed(&d.uuid);
            e.i32(d.id);
        });
        enc.opt_string(self.str1.as_deref());
        enc.opt_string(self.str2.as_deref());
        enc.opt_string(self.str3.as_deref());
        enc.i32(self.int1);
        enc.i32(self.int2);
        enc.option(self.net.as_ref(), |e, n| {
            e.string(&n.name);
            e.opaque_fixed(&n.uuid);
        });
    }
}

impl XdrDecode for RpcError {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(Self {
            code: ErrorCode(dec.i32()?),
            domain: ErrorDomain(dec.i32()?),
            message: dec.opt_string()?,
            level: dec.i32()?,
            dom: dec.option(|d| {
                Ok(ErrorDomainRef {
                    name: d.string()?,
                    uuid: uuid(d)?,
                    id: d.i32()?,
                })
            })?,
            str1: dec.opt_string()?,
            str2: dec.opt_string()?,
            str3: dec.opt_string()?,
            int1: dec.i32()?,
            int2: dec.i32()?,
            net: dec.option(|d| {
                Ok(ErrorNetworkRef {
                    name: d.string()?,
                    uuid: uuid(d)?,
                })
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sets_format_and_detail() {
        let e = RpcError::new(
            ErrorCode::NO_CLIENT,
            ErrorDomain::RPC,
            "Client not found",
            "No client with matching ID '999999'",
        );
        assert_eq!(e.text(), "Client not found: No client with matching ID '999999'");
        assert_eq!(e.str1.as_deref(), Some("Client not found: %s"));
        let back = RpcError::from_xdr(&e.to_xdr()).unwrap();
        assert_eq!(back, e);
    }
}
