//! IP addresses of links: add, remove, list (`RTM_NEWADDR`, `RTM_DELADDR`,
//! `RTM_GETADDR`).
//!
//! An address request names the link by index (`ifa_index`), so the link is
//! looked up by name first. Requests carry `IFA_LOCAL` and `IFA_ADDRESS`
//! (equal: no point-to-point peer) and, for IPv4, `IFA_BROADCAST`, as
//! `ip addr add` does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{NetlinkError, Operation, check_name};
use crate::message::{
    Attr, DecodeError, IFA_ADDRESS, IFA_BROADCAST, IFA_FLAGS, IFA_LABEL, IFA_LOCAL, IfAddrMsg,
    MessageBuilder, NLM_F_CREATE, NLM_F_EXCL, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR,
};
use crate::socket::Netlink;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// An address of a link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The index of the link it belongs to.
    pub index: u32,
    /// The local address (`IFA_LOCAL`, or `IFA_ADDRESS` when there is none,
    /// as for IPv6).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
    /// The point-to-point peer, when `IFA_ADDRESS` differs from `IFA_LOCAL`.
    pub peer: Option<IpAddr>,
    /// `IFA_BROADCAST` (IPv4).
    pub broadcast: Option<Ipv4Addr>,
    /// `IFA_LABEL` (IPv4), such as `eth0:1`.
    pub label: Option<String>,
    pub scope: AddressScope,
    pub flags: AddressFlags,
}

/// `ifa_scope` (`RT_SCOPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressScope {
    Universe,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

impl AddressScope {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => AddressScope::Universe,
            200 => AddressScope::Site,
            253 => AddressScope::Link,
            254 => AddressScope::Host,
            255 => AddressScope::Nowhere,
            other => AddressScope::Other(other),
        }
    }
}

/// Address flags (`IFA_F_*`; `IFA_FLAGS` when present, else `ifa_flags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressFlags(pub u32);

impl AddressFlags {
    pub const SECONDARY: u32 = 0x01;
    pub const NODAD: u32 = 0x02;
    pub const DADFAILED: u32 = 0x08;
    pub const DEPRECATED: u32 = 0x20;
    pub const TENTATIVE: u32 = 0x40;
    pub const PERMANENT: u32 = 0x80;

    /// IPv6 duplicate address detection has not finished: the address is
    /// not usable yet.
    pub fn is_tentative(self) -> bool {
        self.0 & Self::TENTATIVE != 0
    }

    /// Configured by hand rather than learnt (SLAAC, DHCP).
    pub fn is_permanent(self) -> bool {
        self.0 & Self::PERMANENT != 0
    }

    pub fn is_secondary(self) -> bool {
        self.0 & Self::SECONDARY != 0
    }

    pub fn dad_failed(self) -> bool {
        self.0 & Self::DADFAILED != 0
    }
}

fn ip_from(family: u8, attr: &Attr<'_>) -> Result<IpAddr, DecodeError> {
    match (family, attr.payload.len()) {
        (AF_INET, 4) => {
            let octets: [u8; 4] = attr.payload.try_into().map_err(|_| wrong_len(attr))?;
            Ok(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        (AF_INET6, 16) => {
            let octets: [u8; 16] = attr.payload.try_into().map_err(|_| wrong_len(attr))?;
            Ok(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => Err(wrong_len(attr)),
    }
}

fn wrong_len(attr: &Attr<'_>) -> DecodeError {
    DecodeError(format!(
        "address attribute {} has {} bytes",
        attr.kind,
        attr.payload.len()
    ))
}

impl Address {
    /// Decodes the payload of an `RTM_NEWADDR` message; `None` for families
    /// other than IPv4 and IPv6.
    pub(crate) fn decode(payload: &[u8]) -> Result<Option<Address>, DecodeError> {
        let (header, attrs) = IfAddrMsg::decode(payload)?;
        if header.family != AF_INET && header.family != AF_INET6 {
            return Ok(None);
        }
        let (mut local, mut address, mut broadcast, mut label) = (None, None, None, None);
        let mut flags = u32::from(header.flags);
        for attr in attrs {
            let attr = attr?;
            match attr.kind {
                IFA_LOCAL => local = Some(ip_from(header.family, &attr)?),
                IFA_ADDRESS => address = Some(ip_from(header.family, &attr)?),
                IFA_BROADCAST => match ip_from(header.family, &attr)? {
                    IpAddr::V4(v4) => broadcast = Some(v4),
                    IpAddr::V6(_) => {}
                },
                IFA_LABEL => label = Some(attr.string()),
                IFA_FLAGS => flags = attr.u32()?,
                _ => {}
            }
        }
        let (addr, peer) = match (local, address) {
            (Some(local), Some(address)) if local != address => (local, Some(address)),
            (Some(local), _) => (local, None),
            (None, Some(address)) => (address, None),
            (None, None) => {
                return Err(DecodeError(format!(
                    "address on link {} without an address",
                    header.index
                )));
            }
        };
        Ok(Some(Address {
            index: header.index,
            addr,
            prefix: header.prefix_len,
            peer,
            broadcast,
            label,
            scope: AddressScope::from_u8(header.scope),
            flags: AddressFlags(flags),
        }))
    }
}

/// The IPv4 broadcast address of `addr/prefix`, as `ip addr add … brd +`
/// computes it; none for /31 and /32, which have no broadcast.
fn broadcast_of(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    (prefix <= 30).then(|| {
        let host_mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        Ipv4Addr::from(u32::from(addr) | host_mask)
    })
}

/// The `RTM_NEWADDR`/`RTM_DELADDR` request for `addr/prefix` on link `index`.
fn address_request(kind: u16, flags: u16, index: u32, addr: IpAddr, prefix: u8) -> MessageBuilder {
    let family = if addr.is_ipv4() { AF_INET } else { AF_INET6 };
    let header = IfAddrMsg {
        family,
        prefix_len: prefix,
        flags: 0,
        scope: 0,
        index,
    };
    let mut request = MessageBuilder::new(kind, flags).family_header(&header.encode());
    match addr {
        IpAddr::V4(v4) => {
            request.attr(IFA_LOCAL, &v4.octets());
            request.attr(IFA_ADDRESS, &v4.octets());
            if let Some(brd) = broadcast_of(v4, prefix) {
                request.attr(IFA_BROADCAST, &brd.octets());
            }
        }
        IpAddr::V6(v6) => {
            request.attr(IFA_LOCAL, &v6.octets());
            request.attr(IFA_ADDRESS, &v6.octets());
        }
    }
    request
}

fn check_prefix(op: &Operation, addr: IpAddr, prefix: u8) -> Result<(), NetlinkError> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(NetlinkError::InvalidArgument {
            op: op.clone(),
            reason: format!(
                "the prefix length of an {} address is at most {max}",
                if max == 32 { "IPv4" } else { "IPv6" }
            ),
        });
    }
    Ok(())
}

impl Netlink {
    /// The index of link `name`, or `NoSuchLink` naming it.
    fn index_of(&mut self, op: &Operation, name: &str) -> Result<u32, NetlinkError> {
        check_name(op, name, false)?;
        match self.link_by_name(name)? {
            Some(link) => Ok(link.index),
            None => Err(NetlinkError::NoSuchLink {
                op: op.clone(),
                name: name.to_owned(),
            }),
        }
    }

    /// Adds `addr/prefix` to link `name`; `EEXIST` if it is already there.
    pub fn add_address(&mut self, name: &str, addr: IpAddr, prefix: u8) -> Result<(), NetlinkError> {
        let op = Operation::AddAddress {
            name: name.to_owned(),
            addr,
            prefix,
        };
        check_prefix(&op, addr, prefix)?;
        let index = self.index_of(&op, name)?;
        let request = address_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, index, addr, prefix);
        self.request(&op, request).map(drop)
    }

    /// Removes `addr/prefix` from link `name`; `EADDRNOTAVAIL` if it is not
    /// there.
    pub fn delete_address(&mut self, name: &str, addr: IpAddr, prefix: u8) -> Result<(), NetlinkError> {
        let op = Operation::DeleteAddress {
            name: name.to_owned(),
            addr,
            prefix,
        };
        check_prefix(&op, addr, prefix)?;
        let index = self.index_of(&op, name)?;
        self.request(&op, address_request(RTM_DELADDR, 0, index, addr, prefix))
            .map(drop)
    }

    /// The IPv4 and IPv6 addresses of link `name`, or of every link.
    pub fn addresses(&mut self, name: Option<&str>) -> Result<Vec<Address>, NetlinkError> {
        let op = Operation::ListAddresses {
            name: name.map(str::to_owned),
        };
        let index = match name {
            Some(name) => Some(self.index_of(&op, name)?),
            None => None,
        };
        // AF_UNSPEC: every family.
        let request = MessageBuilder::new(RTM_GETADDR, 0).family_header(&IfAddrMsg::default().encode());
        let mut addresses = Vec::new();
        for reply in self.dump(&op, request)? {
            if reply.kind != RTM_NEWADDR {
                continue;
            }
            let decoded = Address::decode(&reply.payload).map_err(|e| NetlinkError::protocol(&op, e))?;
            if let Some(address) = decoded.filter(|a| index.is_none_or(|index| a.index == index)) {
                addresses.push(address);
            }
        }
        Ok(addresses)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::message::{self, NLM_F_MULTI};

    #[test]
    fn broadcast_follows_the_prefix() {
        let a: Ipv4Addr = "192.168.122.1".parse().unwrap();
        assert_eq!(broadcast_of(a, 24), Some("192.168.122.255".parse().unwrap()));
        assert_eq!(broadcast_of(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast_of(a, 30), Some("192.168.122.3".parse().unwrap()));
        assert_eq!(broadcast_of(a, 31), None);
        assert_eq!(broadcast_of(a, 32), None);
    }

    #[test]
    fn ipv4_request_round_trips() {
        let addr: IpAddr = "10.99.0.1".parse().unwrap();
        let bytes = address_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, 5, addr, 24)
            .finish(1)
            .unwrap();
        // header 16 + ifaddrmsg 8 + 3 attributes of 8 bytes.
        assert_eq!(bytes.len(), 48);
        let msg = message::messages(&bytes).next().unwrap().unwrap();
        let decoded = Address::decode(msg.payload).unwrap().unwrap();
        assert_eq!(decoded.index, 5);
        assert_eq!(decoded.addr, addr);
        assert_eq!(decoded.prefix, 24);
        assert_eq!(decoded.peer, None);
        assert_eq!(decoded.broadcast, Some("10.99.0.255".parse().unwrap()));
    }

    #[test]
    fn ipv6_reply_decodes_flags_and_scope() {
        let addr: Ipv6Addr = "fe80::1".parse().unwrap();
        let header = IfAddrMsg {
            family: AF_INET6,
            prefix_len: 64,
            flags: 0x80,
            scope: 253,
            index: 2,
        };
        let mut reply = MessageBuilder::new(RTM_NEWADDR, NLM_F_MULTI).family_header(&header.encode());
        reply.attr(IFA_ADDRESS, &addr.octets());
        reply.attr(6, &[0; 16]); // IFA_CACHEINFO, ignored
        reply.attr_u32(IFA_FLAGS, 0x2c0); // PERMANENT | TENTATIVE | NOPREFIXROUTE
        let bytes = reply.finish(1).unwrap();
        let msg = message::messages(&bytes).next().unwrap().unwrap();
        let decoded = Address::decode(msg.payload).unwrap().unwrap();
        assert_eq!(decoded.addr, IpAddr::V6(addr));
        assert_eq!(decoded.scope, AddressScope::Link);
        assert!(decoded.flags.is_tentative() && decoded.flags.is_permanent());
        assert!(!decoded.flags.is_secondary() && !decoded.flags.dad_failed());
    }

    #[test]
    fn peer_and_bad_lengths() {
        let header = IfAddrMsg {
            family: AF_INET,
            prefix_len: 32,
            index: 9,
            ..IfAddrMsg::default()
        };
        let mut reply = MessageBuilder::new(RTM_NEWADDR, 0).family_header(&header.encode());
        reply.attr(IFA_LOCAL, &[10, 0, 0, 1]);
        reply.attr(IFA_ADDRESS, &[10, 0, 0, 2]);
        reply.attr_str(IFA_LABEL, "tun0");
        let bytes = reply.finish(1).unwrap();
        let msg = message::messages(&bytes).next().unwrap().unwrap();
        let decoded = Address::decode(msg.payload).unwrap().unwrap();
        assert_eq!(decoded.addr, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(decoded.peer, Some(IpAddr::from([10, 0, 0, 2])));
        assert_eq!(decoded.label.as_deref(), Some("tun0"));

        let mut reply = MessageBuilder::new(RTM_NEWADDR, 0).family_header(&header.encode());
        reply.attr(IFA_LOCAL, &[10, 0, 0]);
        let bytes = reply.finish(1).unwrap();
        let msg = message::messages(&bytes).next().unwrap().unwrap();
        assert!(Address::decode(msg.payload).is_err());
        // Other families are skipped, not errors.
        let other = IfAddrMsg {
            family: 17,
            ..IfAddrMsg::default()
        }
        .encode();
        assert_eq!(Address::decode(&other).unwrap(), None);
    }

    #[test]
    fn prefix_is_checked_before_sending() {
        let op = Operation::AddAddress {
            name: "virbr0".into(),
            addr: "10.0.0.1".parse().unwrap(),
            prefix: 33,
        };
        let err = check_prefix(&op, "10.0.0.1".parse().unwrap(), 33).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot add address 10.0.0.1/33 to 'virbr0': the prefix length of an IPv4 address is at most 32"
        );
        assert!(check_prefix(&op, "fd00::1".parse().unwrap(), 128).is_ok());
    }
}
