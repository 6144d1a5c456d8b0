//! What went wrong, said so that a person can act on it: every error names
//! the operation, the interface, and the kernel's errno text.

use std::fmt;
use std::net::IpAddr;

use nix::errno::Errno;

/// The operation that failed, with the object it was applied to.
///
/// Its `Display` is the phrase that follows "cannot" in an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Opening the `NETLINK_ROUTE` socket.
    Open,
    /// Dumping all links.
    ListLinks,
    /// Looking up one link by name.
    GetLink { name: String },
    /// Creating a bridge.
    CreateBridge { name: String },
    /// Deleting a link.
    DeleteLink { name: String },
    /// Setting or clearing `IFF_UP`.
    SetUp { name: String, up: bool },
    /// Attaching a link to a bridge (`Some`) or detaching it (`None`).
    SetMaster { name: String, master: Option<String> },
    /// Changing a link's MTU.
    SetMtu { name: String, mtu: u32 },
    /// Changing a link's MAC address.
    SetMac { name: String, mac: [u8; 6] },
    /// Adding an address to a link.
    AddAddress { name: String, addr: IpAddr, prefix: u8 },
    /// Removing an address from a link.
    DeleteAddress { name: String, addr: IpAddr, prefix: u8 },
    /// Dumping the addresses of all links (`None`) or of one.
    ListAddresses { name: Option<String> },
    /// Creating a tap device from a name or a template such as `vnet%d`.
    CreateTap { template: String },
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Open => f.write_str("open an rtnetlink socket"),
            Operation::ListLinks => f.write_str("list network interfaces"),
            Operation::GetLink { name } => write!(f, "look up interface '{name}'"),
            Operation::CreateBridge { name } => write!(f, "create bridge '{name}'"),
            Operation::DeleteLink { name } => write!(f, "delete interface '{name}'"),
            Operation::SetUp { name, up: true } => write!(f, "bring interface '{name}' up"),
            Operation::SetUp { name, up: false } => write!(f, "bring interface '{name}' down"),
            Operation::SetMaster {
                name,
                master: Some(master),
            } => {
                write!(f, "attach '{name}' to bridge '{master}'")
            }
            Operation::SetMaster { name, master: None } => {
                write!(f, "detach '{name}' from its bridge")
            }
            Operation::SetMtu { name, mtu } => write!(f, "set the MTU of '{name}' to {mtu}"),
            Operation::SetMac { name, mac } => {
                write!(f, "set the MAC address of '{name}' to {}", format_mac(mac))
            }
            Operation::AddAddress { name, addr, prefix } => {
                write!(f, "add address {addr}/{prefix} to '{name}'")
            }
            Operation::DeleteAddress { name, addr, prefix } => {
                write!(f, "remove address {addr}/{prefix} from '{name}'")
            }
            Operation::ListAddresses { name: None } => f.write_str("list addresses"),
            Operation::ListAddresses { name: Some(name) } => {
                write!(f, "list the addresses of '{name}'")
            }
            Operation::CreateTap { template } => write!(f, "create tap device '{template}'"),
        }
    }
}

/// `52:54:00:ab:cd:ef`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, g] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
}

/// An rtnetlink or tap operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetlinkError {
    /// An argument was refused before anything was sent (an interface name
    /// the kernel would reject, a prefix longer than the address).
    #[error("cannot {op}: {reason}")]
    InvalidArgument { op: Operation, reason: String },

    /// The kernel (or the socket) refused: `errno` is what it said, `detail`
    /// the kernel's extended-ack text when it gave one.
    #[error("cannot {op}: {}{}", errno.desc(), DetailSuffix(detail.as_deref()))]
    Failed {
        op: Operation,
        errno: Errno,
        detail: Option<String>,
    },

    /// An interface the operation needs does not exist.
    #[error("cannot {op}: there is no interface named '{name}'")]
    NoSuchLink { op: Operation, name: String },

    /// A tap device could not be set up; `step` names the system call.
    #[error("cannot {op}: {step}: {}", errno.desc())]
    Tap {
        op: Operation,
        step: &'static str,
        errno: Errno,
    },

    /// The kernel's reply did not follow the protocol (or a dump kept
    /// changing under us).
    #[error("cannot {op}: {reason}")]
    Protocol { op: Operation, reason: String },
}

struct DetailSuffix<'a>(Option<&'a str>);

impl fmt::Display for DetailSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(detail) => write!(f, " ({detail})"),
            None => Ok(()),
        }
    }
}

impl NetlinkError {
    /// The errno behind this error, so callers can treat `EEXIST`, `ENODEV`,
    /// `EPERM`… specially. A missing interface reports `ENODEV`.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Failed { errno, .. } | NetlinkError::Tap { errno, .. } => Some(*errno),
            NetlinkError::NoSuchLink { .. } => Some(Errno::ENODEV),
            NetlinkError::InvalidArgument { .. } | NetlinkError::Protocol { .. } => None,
        }
    }

    /// The operation that failed.
    pub fn operation(&self) -> &Operation {
        match self {
            NetlinkError::InvalidArgument { op, .. }
            | NetlinkError::Failed { op, .. }
            | NetlinkError::NoSuchLink { op, .. }
            | NetlinkError::Tap { op, .. }
            | NetlinkError::Protocol { op, .. } => op,
        }
    }

    pub(crate) fn failed(op: &Operation, errno: Errno) -> Self {
        NetlinkError::Failed {
            op: op.clone(),
            errno,
            detail: None,
        }
    }

    pub(crate) fn protocol(op: &Operation, reason: impl fmt::Display) -> Self {
        NetlinkError::Protocol {
            op: op.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The longest interface name: `IFNAMSIZ` (16) minus the NUL.
pub const MAX_NAME_LEN: usize = 15;

/// Checks an interface name the way the kernel's `dev_valid_name` does:
/// 1..=15 bytes, not `.` or `..`, no `/`, `:` or whitespace. With
/// `template`, one `%d` is allowed (the kernel picks the number).
pub(crate) fn check_name(op: &Operation, name: &str, template: bool) -> Result<(), NetlinkError> {
    let reason = if name.is_empty() {
        Some("an interface name cannot be empty".to_string())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!(
            "interface name '{name}' is {} bytes long, the limit is {MAX_NAME_LEN}",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some(format!("'{name}' is not a valid interface name"))
    } else if let Some(bad) = name
        .chars()
        .find(|c| matches!(c, '/' | ':' | '\0') || c.is_whitespace())
    {
        Some(format!(
            "interface name '{}' contains {bad:?}",
            name.escape_debug()
        ))
    } else if name.contains('%') && !(template && is_template(name)) {
        Some(if template {
            format!("name template '{name}' must contain '%d' once and no other '%'")
        } else {
            format!("interface name '{name}' contains '%'")
        })
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetlinkError::InvalidArgument {
            op: op.clone(),
            reason,
        }),
        None => Ok(()),
    }
}

fn is_template(name: &str) -> bool {
    name.matches('%').count() == 1 && name.matches("%d").count() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str) -> Result<(), String> {
        check_name(&Operation::CreateBridge { name: name.into() }, name, false).map_err(|e| e.to_string())
    }

    #[test]
    fn names_follow_the_kernel_rules() {
        assert_eq!(check("virbr0"), Ok(()));
        assert_eq!(check("a234567890123456"), Err("cannot create bridge 'a234567890123456': interface name 'a234567890123456' is 16 bytes long, the limit is 15".into()));
        assert_eq!(check("a23456789012345"), Ok(()));
        assert_eq!(
            check(""),
            Err("cannot create bridge '': an interface name cannot be empty".into())
        );
        assert!(check(".").is_err());
        assert!(check("..").is_err());
        assert!(check("a/b").unwrap_err().contains("contains '/'"));
        assert!(check("a b").unwrap_err().contains("contains ' '"));
        assert!(check("a\tb").is_err());
        assert!(check("eth0:1").is_err());
        assert!(check("vnet%d").is_err());
        let tap = Operation::CreateTap {
            template: "vnet%d".into(),
        };
        assert!(check_name(&tap, "vnet%d", true).is_ok());
        assert!(check_name(&tap, "vnet%d%d", true).is_err());
        assert!(check_name(&tap, "vnet%s", true).is_err());
        assert!(check_name(&tap, "vnet%", true).is_err());
        assert!(check_name(&tap, "vnet0", true).is_ok());
    }

    #[test]
    fn messages_name_operation_object_and_errno() {
        let e = NetlinkError::failed(
            &Operation::CreateBridge {
                name: "virbr0".into(),
            },
            Errno::EEXIST,
        );
        assert_eq!(e.to_string(), "cannot create bridge 'virbr0': File exists");
        assert_eq!(e.errno(), Some(Errno::EEXIST));
        let op = Operation::AddAddress {
            name: "virbr0".into(),
            addr: "192.168.122.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            prefix: 24,
        };
        let e = NetlinkError::Failed {
            op,
            errno: Errno::EPERM,
            detail: None,
        };
        assert_eq!(
            e.to_string(),
            "cannot add address 192.168.122.1/24 to 'virbr0': Operation not permitted"
        );
        let op = Operation::SetMtu {
            name: "virbr0".into(),
            mtu: 99999,
        };
        let e = NetlinkError::Failed {
            op,
            errno: Errno::EINVAL,
            detail: Some("MTU too large".into()),
        };
        assert_eq!(
            e.to_string(),
            "cannot set the MTU of 'virbr0' to 99999: Invalid argument (MTU too large)"
        );
        let op = Operation::SetMaster {
            name: "vnet0".into(),
            master: Some("virbr9".into()),
        };
        let e = NetlinkError::NoSuchLink {
            op,
            name: "virbr9".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot attach 'vnet0' to bridge 'virbr9': there is no interface named 'virbr9'"
        );
        assert_eq!(e.errno(), Some(Errno::ENODEV));
        assert_eq!(
            format_mac(&[0x52, 0x54, 0, 0xab, 0xcd, 0xef]),
            "52:54:00:ab:cd:ef"
        );
    }
}
