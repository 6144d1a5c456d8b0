//! A small, synchronous rtnetlink client for what libvirt's network driver
//! does to host links: create a bridge with its address, bring it up,
//! create tap devices and attach them, delete the bridge; and list links
//! and addresses (for `virtinterfaced`).
//!
//! # Protocol
//!
//! [`Netlink::open`] opens an `AF_NETLINK`/`SOCK_RAW`/`NETLINK_ROUTE`
//! socket bound to a kernel-chosen port, in the network namespace of the
//! calling thread. Each call sends one request datagram to the kernel
//! (port 0) and reads replies until the request is complete:
//!
//! | call | request | flags | what comes back |
//! |---|---|---|---|
//! | [`Netlink::links`] | `RTM_GETLINK` | `DUMP` | `RTM_NEWLINK`×n, `NLMSG_DONE` |
//! | [`Netlink::link_by_name`] | `RTM_GETLINK` + `IFLA_IFNAME` | `ACK` | `RTM_NEWLINK`, ack (or `ENODEV`) |
//! | [`Netlink::create_bridge`] | `RTM_NEWLINK` + `IFLA_IFNAME`, `IFLA_ADDRESS`, `IFLA_MTU`, `IFLA_LINKINFO`{`IFLA_INFO_KIND` "bridge", `IFLA_INFO_DATA`{`IFLA_BR_FORWARD_DELAY`, `IFLA_BR_STP_STATE`}} | `ACK CREATE EXCL` | ack |
//! | [`Netlink::delete_link`] | `RTM_DELLINK` + `IFLA_IFNAME` | `ACK` | ack |
//! | [`Netlink::set_up`] | `RTM_SETLINK`, `ifi_flags`/`ifi_change` `IFF_UP` | `ACK` | ack |
//! | [`Netlink::set_master`] | `RTM_SETLINK` + `IFLA_MASTER` (0 detaches) | `ACK` | ack |
//! | [`Netlink::add_address`] | `RTM_NEWADDR` + `IFA_LOCAL`, `IFA_ADDRESS`, `IFA_BROADCAST` (v4) | `ACK CREATE EXCL` | ack |
//! | [`Netlink::addresses`] | `RTM_GETADDR` (`AF_UNSPEC`) | `DUMP` | `RTM_NEWADDR`×n, `NLMSG_DONE` |
//!
//! An ack is an `NLMSG_ERROR` whose error is 0; any other value is a
//! negative errno, which becomes [`NetlinkError::Failed`] together with the
//! kernel's extended-ack text when it sends one (`NETLINK_EXT_ACK`). A
//! dump's messages carry `NLM_F_MULTI` and may span many datagrams; it ends
//! with `NLMSG_DONE`, whose payload is itself a status. A dump flagged
//! `NLM_F_DUMP_INTR` (the table changed while being read) is restarted.
//! Replies whose sequence number is not the request's are ignored, and so
//! are datagrams not sent by the kernel. The wire format itself is in
//! the crate-private `message` module (no I/O).
//!
//! Tap devices are not rtnetlink: [`create_tap`] uses `/dev/net/tun`.
//!
//! Everything here acts on the network namespace the socket (or the tap
//! file) was opened in; tests use that to run against a private namespace.

mod addr;
mod error;
mod link;
mod message;
mod socket;
mod tap;

pub use addr::{Address, AddressFlags, AddressScope};
pub use error::{MAX_NAME_LEN, NetlinkError, Operation, format_mac};
pub use link::{BridgeInfo, BridgeOptions, Link, LinkFlags, OperState};
pub use socket::Netlink;
pub use tap::{TapOptions, create_tap, create_tap_with};
