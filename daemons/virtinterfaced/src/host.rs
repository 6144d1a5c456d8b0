//! The host's interfaces as libvirt's udev interface backend sees them,
//! read over rtnetlink so that they are those of the daemon's own network
//! namespace (sysfs shows the namespace that mounted it):
//!
//! - listed: every link but Linux bridge ports and tun/tap devices
//!   (libvirt skips devices with `brport/state` or `tun_flags`); `lo` is
//!   listed, as libvirt lists it;
//! - active: operational state `up` (`lo`, whose state is `unknown`, is
//!   neither active nor, for the old `LIST_DEFINED` calls, inactive);
//! - type: the link kind `bridge`, `bond` or `vlan`, else a `.` in the name
//!   makes a VLAN, else Ethernet;
//! - speed, while up: `ETHTOOL_GSET` on the interface (what sysfs's
//!   `speed` reads), none where the driver has none;
//! - VLAN tag and device: `/proc/net/vlan/NAME` (per namespace); bond
//!   settings: `/sys/class/net/NAME/bonding/` (the host namespace's view).
//!
//! Every function here blocks (netlink, ioctl, files): callers run them
//! off the async runtime.

use crate::iface::{Bond, Bridge, IfaceDef, Kind, Link, parse_proc_vlan};
use modvirt_netlink::{Link as NlLink, Netlink, NetlinkError, OperState, format_mac};
use std::os::fd::AsRawFd;

/// Why an interface could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot read the host's interfaces: {0}")]
    Netlink(#[from] NetlinkError),
    #[error("couldn't find interface named '{0}'")]
    NotFound(String),
    #[error("Unable to parse operational state {state} of '{name}'")]
    OperState { name: String, state: u8 },
    #[error("Failed to open file '{path}': {reason}")]
    ReadFile { path: String, reason: String },
    #[error("failed to find the VID for the VLAN device '{0}'")]
    VlanTag(String),
    #[error("Could not retrieve '{attr}' for '{name}'")]
    Attr { attr: String, name: String },
    #[error("Could not parse '{attr}' '{value}' for '{name}'")]
    AttrValue {
        attr: String,
        value: String,
        name: String,
    },
    #[error("Could not get interface information for '{member}', which is a member of bridge '{bridge}'")]
    Member { member: String, bridge: String },
    #[error("interfaces nest too deeply below '{0}'")]
    TooDeep(String),
}

/// The links of the namespace at one moment.
#[derive(Debug)]
pub struct HostLinks {
    links: Vec<NlLink>,
}

fn oper_name(s: OperState) -> Option<&'static str> {
    Some(match s {
        OperState::Unknown => "unknown",
        OperState::NotPresent => "notpresent",
        OperState::Down => "down",
        OperState::LowerLayerDown => "lowerlayerdown",
        OperState::Testing => "testing",
        OperState::Dormant => "dormant",
        OperState::Up => "up",
        OperState::Other(_) => return None,
    })
}

/// `ETHTOOL_GSET` speed in Mb/s (`SPEED_UNKNOWN` is 4294967295, as
/// libvirt reads sysfs's `-1`); none when the driver reports no speed.
fn link_speed(name: &str) -> Option<u32> {
    use nix::libc;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    /// `struct ethtool_cmd` (linux/ethtool.h).
    #[repr(C)]
    #[derive(Default)]
    struct EthtoolCmd {
        cmd: u32,
        supported: u32,
        advertising: u32,
        speed: u16,
        duplex: u8,
        port: u8,
        phy_address: u8,
        transceiver: u8,
        autoneg: u8,
        mdio_support: u8,
        maxtxpkt: u32,
        maxrxpkt: u32,
        speed_hi: u16,
        eth_tp_mdix: u8,
        eth_tp_mdix_ctrl: u8,
        lp_advertising: u32,
        reserved: [u32; 2],
    }
    /// `struct ifreq` with `ifr_data` (40 bytes on 64-bit Linux).
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        data: *mut EthtoolCmd,
        pad: [u8; 16],
    }
    const ETHTOOL_GSET: u32 = 1;
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return None;
    }
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    let mut cmd = EthtoolCmd {
        cmd: ETHTOOL_GSET,
        ..EthtoolCmd::default()
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &mut cmd,
        pad: [0; 16],
    };
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: `req` is a valid `ifreq` whose name is NUL-terminated and
    // whose data points at a live `ethtool_cmd` the kernel fills in; both
    // outlive the call, and the socket is open.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req) };
    (rc == 0).then(|| u32::from(cmd.speed_hi) << 16 | u32::from(cmd.speed))
}

/// Attribute `attr` of bond `name` in sysfs.
fn bond_attr(name: &str, attr: &str) -> Result<String, HostError> {
    let path = format!("/sys/class/net/{name}/{attr}");
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches('\n').to_owned())
        .map_err(|_| HostError::Attr {
            attr: attr.to_owned(),
            name: name.to_owned(),
        })
}

fn bond_int(name: &str, attr: &str, text: &str) -> Result<i32, HostError> {
    text.trim().parse().map_err(|_| HostError::AttrValue {
        attr: attr.to_owned(),
        value: text.to_owned(),
        name: name.to_owned(),
    })
}

/// `balance-rr 0` → 0.
fn bond_second(name: &str, attr: &str) -> Result<i32, HostError> {
    let v = bond_attr(name, attr)?;
    let n = v.split_once(' ').map(|(_, n)| n).unwrap_or("");
    bond_int(name, attr, n)
}

fn read_bond(name: &str, slaves: Vec<IfaceDef>) -> Result<Bond, HostError> {
    let int = |attr: &str| bond_attr(name, attr).and_then(|v| bond_int(name, attr, &v));
    Ok(Bond {
        downdelay: int("bonding/downdelay")?,
        updelay: int("bonding/updelay")?,
        miimon: int("bonding/miimon")?,
        arp_interval: int("bonding/arp_interval")?,
        mode: u32::try_from(bond_second(name, "bonding/mode")? + 1).unwrap_or(0),
        validate: bond_second(name, "bonding/arp_validate")?,
        carrier: int("bonding/use_carrier")? + 1,
        arp_target: bond_attr(name, "bonding/arp_ip_target")?,
        slaves,
    })
}

/// Names libvirt leaves out of a bridge's members: guests' `vnetN` taps.
fn is_guest_tap(name: &str) -> bool {
    name.len() >= 5 && name.starts_with("vnet") && name.as_bytes()[4].is_ascii_digit()
}

impl HostLinks {
    pub fn read() -> Result<HostLinks, HostError> {
        Ok(HostLinks {
            links: Netlink::open()?.links()?,
        })
    }

    pub fn from_links(links: Vec<NlLink>) -> HostLinks {
        HostLinks { links }
    }

    pub fn by_name(&self, name: &str) -> Option<&NlLink> {
        self.links.iter().find(|l| l.name == name)
    }

    fn by_index(&self, index: u32) -> Option<&NlLink> {
        self.links.iter().find(|l| l.index == index)
    }

    fn is_bridge_port(&self, l: &NlLink) -> bool {
        l.master
            .and_then(|m| self.by_index(m))
            .is_some_and(|m| m.kind.as_deref() == Some("bridge"))
    }

    /// The interfaces libvirt lists, by name.
    pub fn listed(&self) -> Vec<&NlLink> {
        let mut v: Vec<&NlLink> = self
            .links
            .iter()
            .filter(|l| l.kind.as_deref() != Some("tun") && !self.is_bridge_port(l))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The members of `master`, by name.
    fn members(&self, master: &NlLink) -> Vec<&NlLink> {
        let mut v: Vec<&NlLink> = self
            .links
            .iter()
            .filter(|l| l.master == Some(master.index))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The interface's definition (`iface-dumpxml`).
    pub fn def(&self, name: &str) -> Result<IfaceDef, HostError> {
        self.def_at(name, 0)
    }

    fn def_at(&self, name: &str, depth: usize) -> Result<IfaceDef, HostError> {
        if depth > 8 {
            return Err(HostError::TooDeep(name.to_owned()));
        }
        let l = self
            .by_name(name)
            .ok_or_else(|| HostError::NotFound(name.to_owned()))?;
        let state = oper_name(l.oper_state).ok_or_else(|| HostError::OperState {
            name: name.to_owned(),
            state: match l.oper_state {
                OperState::Other(n) => n,
                _ => 0,
            },
        })?;
        let link = Link {
            state: Some(state.to_owned()),
            speed: if l.oper_state == OperState::Up {
                link_speed(name)
            } else {
                None
            },
        };
        let kind = match l.kind.as_deref() {
            Some("bridge") => {
                let info = l.bridge.ok_or_else(|| HostError::Attr {
                    attr: "bridge/forward_delay".into(),
                    name: name.to_owned(),
                })?;
                let members = self
                    .members(l)
                    .into_iter()
                    .filter(|m| !is_guest_tap(&m.name))
                    .map(|m| {
                        self.def_at(&m.name, depth + 1).map_err(|_| HostError::Member {
                            member: m.name.clone(),
                            bridge: name.to_owned(),
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Kind::Bridge(Bridge {
                    stp: info.stp,
                    delay: info.forward_delay_cs.to_string(),
                    members,
                })
            }
            Some("bond") => {
                let slaves = self
                    .members(l)
                    .into_iter()
                    .map(|m| self.def_at(&m.name, depth + 1))
                    .collect::<Result<_, _>>()?;
                Kind::Bond(read_bond(name, slaves)?)
            }
            Some("vlan") => Kind::Vlan(read_vlan(name)?),
            _ if name.contains('.') => Kind::Vlan(read_vlan(name)?),
            _ => Kind::Ethernet,
        };
        Ok(IfaceDef {
            name: name.to_owned(),
            mac: l.mac.as_ref().map(format_mac),
            mtu: l.mtu,
            link,
            kind,
        })
    }
}

/// The MAC address a link is known by on the wire (empty if it has none).
pub fn mac_text(l: &NlLink) -> String {
    l.mac.as_ref().map(format_mac).unwrap_or_default()
}

pub fn is_active(l: &NlLink) -> bool {
    l.oper_state == OperState::Up
}

fn read_vlan(name: &str) -> Result<crate::iface::Vlan, HostError> {
    let path = format!("/proc/net/vlan/{name}");
    let text = std::fs::read_to_string(&path).map_err(|e| HostError::ReadFile {
        reason: match e.raw_os_error() {
            Some(n) => nix::errno::Errno::from_raw(n).desc().to_owned(),
            None => e.to_string(),
        },
        path,
    })?;
    parse_proc_vlan(&text).ok_or_else(|| HostError::VlanTag(name.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failure is the assertion
mod tests {
    use super::*;
    use modvirt_netlink::{BridgeInfo, LinkFlags};

    /// A link named so that no host interface answers the speed ioctl.
    fn link(index: u32, name: &str, kind: Option<&str>, state: OperState, master: Option<u32>) -> NlLink {
        NlLink {
            index,
            name: name.into(),
            mac: Some([0x52, 0x54, 0, 0, 0, index as u8]),
            mtu: 1500,
            flags: LinkFlags(0),
            oper_state: state,
            kind: kind.map(str::to_owned),
            master,
            link_type: 1,
            bridge: (kind == Some("bridge")).then_some(BridgeInfo {
                stp: false,
                forward_delay_cs: 1500,
            }),
        }
    }

    fn sample() -> HostLinks {
        HostLinks::from_links(vec![
            link(1, "lo", None, OperState::Unknown, None),
            link(2, "mvt-br0", Some("bridge"), OperState::Down, None),
            link(3, "mvt-port", Some("veth"), OperState::LowerLayerDown, Some(2)),
            link(4, "vnet0", Some("tun"), OperState::Down, Some(2)),
            link(5, "mvt-tap", Some("tun"), OperState::Down, None),
            link(6, "mvt-eth", Some("veth"), OperState::Down, None),
            link(7, "mvt-bond", Some("bond"), OperState::Down, None),
            link(8, "mvt-slave", None, OperState::Down, Some(7)),
        ])
    }

    #[test]
    fn bridge_ports_and_taps_are_not_listed_but_bond_slaves_are() {
        let h = sample();
        let names: Vec<&str> = h.listed().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lo", "mvt-bond", "mvt-br0", "mvt-eth", "mvt-slave"]);
        assert_eq!(mac_text(h.by_name("mvt-eth").unwrap()), "52:54:00:00:00:06");
    }

    #[test]
    fn bridge_definition_leaves_out_guest_taps() {
        let h = sample();
        let def = h.def("mvt-br0").unwrap();
        assert_eq!(
            def.to_xml(),
            "<interface type='bridge' name='mvt-br0'>\n  <mtu size='1500'/>\n  <bridge stp='off' delay='1500'>\n    <interface type='ethernet' name='mvt-port'>\n      <link state='lowerlayerdown'/>\n      <mac address='52:54:00:00:00:03'/>\n    </interface>\n  </bridge>\n</interface>\n"
        );
        assert!(matches!(h.def("nosuch"), Err(HostError::NotFound(n)) if n == "nosuch"));
        assert!(is_guest_tap("vnet12") && !is_guest_tap("vnet") && !is_guest_tap("vnetx"));
    }

    #[test]
    fn a_dotted_name_is_a_vlan_read_from_proc() {
        let h = HostLinks::from_links(vec![link(9, "mvt.77", Some("veth"), OperState::Down, None)]);
        let e = h.def("mvt.77").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Failed to open file '/proc/net/vlan/mvt.77': No such file or directory"
        );
    }
}
