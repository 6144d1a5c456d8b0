//! Links (network interfaces): list, look up, create bridges, delete, set
//! up/down, attach to a bridge, MTU and MAC.
//!
//! Requests address an interface by name (`ifi_index` 0 plus `IFLA_IFNAME`),
//! so a missing interface comes back as `ENODEV` from the kernel itself;
//! only `IFLA_MASTER`, which takes an index, needs a lookup first.

use crate::error::{NetlinkError, Operation, check_name};
use crate::message::{
    DecodeError, IFLA_ADDRESS, IFLA_BR_FORWARD_DELAY, IFLA_BR_STP_STATE, IFLA_IFNAME, IFLA_INFO_DATA,
    IFLA_INFO_KIND, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, IFLA_OPERSTATE, IfInfoMsg, MessageBuilder,
    NLM_F_CREATE, NLM_F_EXCL, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK,
};
use crate::socket::Netlink;

/// A network interface as the kernel reports it (`RTM_NEWLINK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface index (`ifi_index`).
    pub index: u32,
    /// `IFLA_IFNAME`.
    pub name: String,
    /// `IFLA_ADDRESS` when it is a 6-byte (Ethernet-style) address; tun
    /// devices and tunnels have none or another size.
    pub mac: Option<[u8; 6]>,
    /// `IFLA_MTU`, 0 if the kernel did not say.
    pub mtu: u32,
    /// `ifi_flags`: `IFF_UP`, `IFF_RUNNING`, `IFF_LOOPBACK`…
    pub flags: LinkFlags,
    /// `IFLA_OPERSTATE` (RFC 2863).
    pub oper_state: OperState,
    /// `IFLA_INFO_KIND`: `"bridge"`, `"tun"`, `"veth"`…; `None` for
    /// physical NICs and `lo`.
    pub kind: Option<String>,
    /// `IFLA_MASTER`: the index of the bridge (or bond) this link is
    /// attached to.
    pub master: Option<u32>,
    /// `ifi_type`, an `ARPHRD_*` value (1 Ethernet, 772 loopback).
    pub link_type: u16,
    /// Bridge settings from `IFLA_INFO_DATA`, for bridges.
    pub bridge: Option<BridgeInfo>,
}

/// The `ifi_flags` of a link (`IFF_*` from `linux/if.h`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkFlags(pub u32);

impl LinkFlags {
    pub const UP: u32 = 0x1;
    pub const BROADCAST: u32 = 0x2;
    pub const LOOPBACK: u32 = 0x8;
    pub const RUNNING: u32 = 0x40;
    pub const PROMISC: u32 = 0x100;
    pub const MULTICAST: u32 = 0x1000;
    pub const LOWER_UP: u32 = 0x1_0000;

    /// Administratively up (`IFF_UP`).
    pub fn is_up(self) -> bool {
        self.0 & Self::UP != 0
    }

    /// Operationally up (`IFF_RUNNING`).
    pub fn is_running(self) -> bool {
        self.0 & Self::RUNNING != 0
    }

    pub fn is_loopback(self) -> bool {
        self.0 & Self::LOOPBACK != 0
    }

    /// The carrier is present (`IFF_LOWER_UP`).
    pub fn is_lower_up(self) -> bool {
        self.0 & Self::LOWER_UP != 0
    }
}

/// `IFLA_OPERSTATE` values (`IF_OPER_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
    /// A value this crate does not know.
    Other(u8),
}

impl OperState {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => OperState::Unknown,
            1 => OperState::NotPresent,
            2 => OperState::Down,
            3 => OperState::LowerLayerDown,
            4 => OperState::Testing,
            5 => OperState::Dormant,
            6 => OperState::Up,
            other => OperState::Other(other),
        }
    }
}

/// What a bridge reports about spanning tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeInfo {
    /// `IFLA_BR_STP_STATE` is non-zero.
    pub stp: bool,
    /// `IFLA_BR_FORWARD_DELAY`, in centiseconds.
    pub forward_delay_cs: u32,
}

/// How to create a bridge. The default is libvirt's `<bridge stp='on'
/// delay='0'/>` with a kernel-chosen MAC and MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeOptions {
    /// A fixed MAC (libvirt gives each network one so it does not change
    /// as ports come and go).
    pub mac: Option<[u8; 6]>,
    /// Run the kernel's spanning tree protocol.
    pub stp: bool,
    /// Forward delay in centiseconds (the kernel accepts 200..=3000 when STP
    /// is on; it is set before STP is switched on, so 0 works too).
    pub forward_delay_cs: u32,
    pub mtu: Option<u32>,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            mac: None,
            stp: true,
            forward_delay_cs: 0,
            mtu: None,
        }
    }
}

impl Link {
    /// Decodes the payload of an `RTM_NEWLINK` message.
    pub(crate) fn decode(payload: &[u8]) -> Result<Link, DecodeError> {
        let (header, attrs) = IfInfoMsg::decode(payload)?;
        let mut link = Link {
            index: header.index,
            name: String::new(),
            mac: None,
            mtu: 0,
            flags: LinkFlags(header.flags),
            oper_state: OperState::Unknown,
            kind: None,
            master: None,
            link_type: header.link_type,
            bridge: None,
        };
        let mut bridge_data = None;
        for attr in attrs {
            let attr = attr?;
            match attr.kind {
                IFLA_IFNAME => link.name = attr.string(),
                IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(attr.payload).ok(),
                IFLA_MTU => link.mtu = attr.u32()?,
                IFLA_MASTER => link.master = Some(attr.u32()?).filter(|&index| index != 0),
                IFLA_OPERSTATE => link.oper_state = OperState::from_u8(attr.u8()?),
                IFLA_LINKINFO => {
                    for info in attr.nested() {
                        let info = info?;
                        match info.kind {
                            IFLA_INFO_KIND => link.kind = Some(info.string()),
                            IFLA_INFO_DATA => bridge_data = Some(info),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if link.name.is_empty() {
            return Err(DecodeError(format!("link {} has no name", link.index)));
        }
        // IFLA_INFO_DATA is specific to the kind; only bridges are decoded.
        if let (Some("bridge"), Some(data)) = (link.kind.as_deref(), bridge_data) {
            let mut info = BridgeInfo {
                stp: false,
                forward_delay_cs: 0,
            };
            for attr in data.nested() {
                let attr = attr?;
                match attr.kind {
                    IFLA_BR_STP_STATE => info.stp = attr.u32()? != 0,
                    IFLA_BR_FORWARD_DELAY => info.forward_delay_cs = attr.u32()?,
                    _ => {}
                }
            }
            link.bridge = Some(info);
        }
        Ok(link)
    }
}

/// A link request addressed by name: `ifinfomsg` with index 0, then
/// `IFLA_IFNAME`.
fn by_name(kind: u16, flags: u16, name: &str) -> MessageBuilder {
    let mut request = MessageBuilder::new(kind, flags).family_header(&IfInfoMsg::default().encode());
    request.attr_str(IFLA_IFNAME, name);
    request
}

/// The `RTM_NEWLINK` request that creates a bridge.
pub(crate) fn bridge_request(name: &str, options: &BridgeOptions) -> MessageBuilder {
    let mut request = by_name(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, name);
    if let Some(mac) = options.mac {
        request.attr(IFLA_ADDRESS, &mac);
    }
    if let Some(mtu) = options.mtu {
        request.attr_u32(IFLA_MTU, mtu);
    }
    let info = request.begin_nested(IFLA_LINKINFO);
    request.attr_str(IFLA_INFO_KIND, "bridge");
    let data = request.begin_nested(IFLA_INFO_DATA);
    // The kernel applies the delay before the STP state, whatever the order.
    request.attr_u32(IFLA_BR_FORWARD_DELAY, options.forward_delay_cs);
    request.attr_u32(IFLA_BR_STP_STATE, u32::from(options.stp));
    request.end_nested(data);
    request.end_nested(info);
    request
}

impl Netlink {
    /// All links of this network namespace, by index.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let op = Operation::ListLinks;
        let request = MessageBuilder::new(RTM_GETLINK, 0).family_header(&IfInfoMsg::default().encode());
        let mut links = Vec::new();
        for reply in self.dump(&op, request)? {
            if reply.kind == RTM_NEWLINK {
                links.push(Link::decode(&reply.payload).map_err(|e| NetlinkError::protocol(&op, e))?);
            }
        }
        links.sort_by_key(|link| link.index);
        Ok(links)
    }

    /// The link called `name`, or `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let op = Operation::GetLink {
            name: name.to_owned(),
        };
        check_name(&op, name, false)?;
        match self.request(&op, by_name(RTM_GETLINK, 0, name)) {
            Ok(replies) => {
                let reply = replies.iter().find(|reply| reply.kind == RTM_NEWLINK);
                let Some(reply) = reply else {
                    return Err(NetlinkError::protocol(
                        &op,
                        "the kernel acknowledged without an answer",
                    ));
                };
                Link::decode(&reply.payload)
                    .map(Some)
                    .map_err(|e| NetlinkError::protocol(&op, e))
            }
            Err(e) if e.errno() == Some(nix::errno::Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates bridge `name` (down, without addresses); fails with `EEXIST`
    /// if a link of that name exists. Returns its index.
    pub fn create_bridge(&mut self, name: &str, options: &BridgeOptions) -> Result<u32, NetlinkError> {
        let op = Operation::CreateBridge {
            name: name.to_owned(),
        };
        check_name(&op, name, false)?;
        self.request(&op, bridge_request(name, options))?;
        // RTM_NEWLINK does not return the index; ask for it.
        match self.link_by_name(name)? {
            Some(link) => Ok(link.index),
            None => Err(NetlinkError::protocol(
                &op,
                "the bridge disappeared right after it was created",
            )),
        }
    }

    /// Deletes link `name` (`ENODEV` if there is none).
    pub fn delete_link(&mut self, name: &str) -> Result<(), NetlinkError> {
        let op = Operation::DeleteLink {
            name: name.to_owned(),
        };
        check_name(&op, name, false)?;
        self.request(&op, by_name(RTM_DELLINK, 0, name)).map(drop)
    }

    /// Sets (`true`) or clears (`false`) `IFF_UP` on link `name`.
    pub fn set_up(&mut self, name: &str, up: bool) -> Result<(), NetlinkError> {
        let op = Operation::SetUp {
            name: name.to_owned(),
            up,
        };
        check_name(&op, name, false)?;
        let header = IfInfoMsg {
            flags: if up { LinkFlags::UP } else { 0 },
            change: LinkFlags::UP,
            ..IfInfoMsg::default()
        };
        let mut request = MessageBuilder::new(RTM_SETLINK, 0).family_header(&header.encode());
        request.attr_str(IFLA_IFNAME, name);
        self.request(&op, request).map(drop)
    }

    /// Attaches link `name` to bridge `master`, or detaches it with `None`.
    pub fn set_master(&mut self, name: &str, master: Option<&str>) -> Result<(), NetlinkError> {
        let op = Operation::SetMaster {
            name: name.to_owned(),
            master: master.map(str::to_owned),
        };
        check_name(&op, name, false)?;
        let master_index = match master {
            None => 0,
            Some(master) => {
                check_name(&op, master, false)?;
                match self.link_by_name(master)? {
                    Some(link) => link.index,
                    None => {
                        return Err(NetlinkError::NoSuchLink {
                            op,
                            name: master.to_owned(),
                        });
                    }
                }
            }
        };
        let mut request = by_name(RTM_SETLINK, 0, name);
        request.attr_u32(IFLA_MASTER, master_index);
        self.request(&op, request).map(drop)
    }

    /// Sets the MTU of link `name`.
    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        let op = Operation::SetMtu {
            name: name.to_owned(),
            mtu,
        };
        check_name(&op, name, false)?;
        let mut request = by_name(RTM_SETLINK, 0, name);
        request.attr_u32(IFLA_MTU, mtu);
        self.request(&op, request).map(drop)
    }

    /// Sets the MAC address of link `name`.
    pub fn set_mac(&mut self, name: &str, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let op = Operation::SetMac {
            name: name.to_owned(),
            mac,
        };
        check_name(&op, name, false)?;
        let mut request = by_name(RTM_SETLINK, 0, name);
        request.attr(IFLA_ADDRESS, &mac);
        self.request(&op, request).map(drop)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::message::{self, NLM_F_MULTI};

    /// The exact request for `virbr0`, MAC 52:54:00:12:34:56, STP on,
    /// delay 0, no MTU (little-endian hosts).
    #[cfg(target_endian = "little")]
    #[test]
    fn bridge_request_bytes() {
        let options = BridgeOptions {
            mac: Some([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            ..BridgeOptions::default()
        };
        let bytes = bridge_request("virbr0", &options).finish(0x0102_0304).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // nlmsghdr: len 92, RTM_NEWLINK, REQUEST|EXCL|CREATE, seq, pid 0
            92, 0, 0, 0,  16, 0,  0x01, 0x06,  4, 3, 2, 1,  0, 0, 0, 0,
            // ifinfomsg: AF_UNSPEC, type 0, index 0, flags 0, change 0
            0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            // IFLA_IFNAME "virbr0\0" (11 bytes + 1 padding)
            11, 0, 3, 0,  b'v', b'i', b'r', b'b', b'r', b'0', 0, 0,
            // IFLA_ADDRESS (10 bytes + 2 padding)
            10, 0, 1, 0,  0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0,
            // IFLA_LINKINFO | NLA_F_NESTED, 36 bytes
            36, 0, 18, 0x80,
              // IFLA_INFO_KIND "bridge\0"
              11, 0, 1, 0,  b'b', b'r', b'i', b'd', b'g', b'e', 0, 0,
              // IFLA_INFO_DATA | NLA_F_NESTED, 20 bytes
              20, 0, 2, 0x80,
                8, 0, 1, 0,  0, 0, 0, 0, // IFLA_BR_FORWARD_DELAY 0
                8, 0, 5, 0,  1, 0, 0, 0, // IFLA_BR_STP_STATE 1
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn bridge_request_with_mtu_decodes_back() {
        let options = BridgeOptions {
            mac: None,
            stp: false,
            forward_delay_cs: 1500,
            mtu: Some(9000),
        };
        let bytes = bridge_request("br-test", &options).finish(1).unwrap();
        let msg = message::messages(&bytes).next().unwrap().unwrap();
        assert_eq!(msg.flags, 0x601);
        let link = Link::decode(msg.payload).unwrap();
        assert_eq!(link.name, "br-test");
        assert_eq!(link.mtu, 9000);
        assert_eq!(link.mac, None);
        assert_eq!(link.kind.as_deref(), Some("bridge"));
        assert_eq!(
            link.bridge,
            Some(BridgeInfo {
                stp: false,
                forward_delay_cs: 1500
            })
        );
    }

    /// A dump reply like the kernel's for a tap attached to a bridge,
    /// decoded attribute by attribute.
    #[test]
    fn link_message_decodes() {
        let header = IfInfoMsg {
            family: 0,
            link_type: 1,
            index: 7,
            flags: 0x11043,
            change: 0,
        };
        let mut reply = MessageBuilder::new(RTM_NEWLINK, NLM_F_MULTI).family_header(&header.encode());
        reply.attr_str(IFLA_IFNAME, "vnet3");
        reply.attr_u32(IFLA_MTU, 1500);
        reply.attr(IFLA_ADDRESS, &[0xfe, 0x54, 0, 1, 2, 3]);
        reply.attr_u32(IFLA_MASTER, 4);
        reply.attr_u8(IFLA_OPERSTATE, 6);
        reply.attr(7, &[0; 92]); // IFLA_STATS, ignored
        let info = reply.begin_nested(IFLA_LINKINFO);
        reply.attr_str(IFLA_INFO_KIND, "tun");
        let data = reply.begin_nested(IFLA_INFO_DATA);
        reply.attr_u8(1, 2); // IFLA_TUN_TYPE: not a bridge, not decoded
        reply.end_nested(data);
        reply.end_nested(info);
        let bytes = reply.finish(3).unwrap();
        let msg = message::messages(&bytes).next().unwrap().unwrap();
        let link = Link::decode(msg.payload).unwrap();
        assert_eq!(
            link,
            Link {
                index: 7,
                name: "vnet3".into(),
                mac: Some([0xfe, 0x54, 0, 1, 2, 3]),
                mtu: 1500,
                flags: LinkFlags(0x11043),
                oper_state: OperState::Up,
                kind: Some("tun".into()),
                master: Some(4),
                link_type: 1,
                bridge: None,
            }
        );
        assert!(link.flags.is_up() && link.flags.is_running() && link.flags.is_lower_up());
        assert!(!link.flags.is_loopback());
    }

    #[test]
    fn link_without_name_or_with_bad_attribute_is_an_error() {
        let bare = IfInfoMsg {
            index: 1,
            ..IfInfoMsg::default()
        }
        .encode();
        assert!(Link::decode(&bare).is_err());
        let mut reply = MessageBuilder::new(RTM_NEWLINK, 0).family_header(&bare);
        reply.attr_str(IFLA_IFNAME, "lo");
        reply.attr(IFLA_MTU, &[1, 2]);
        let bytes = reply.finish(1).unwrap();
        let msg = message::messages(&bytes).next().unwrap().unwrap();
        assert!(Link::decode(msg.payload).is_err());
    }
}
