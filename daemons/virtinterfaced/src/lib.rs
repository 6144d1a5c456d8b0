//! The host interface driver of `virtinterfaced` (`interface:///system`),
//! as a library so its parts can be tested on their own:
//!
//! - [`iface`]: libvirt's interface XML for a live interface. No I/O.
//! - [`host`]: the links of the daemon's network namespace (rtnetlink,
//!   ethtool, `/proc/net/vlan`), as libvirt's udev backend sees them.
//! - [`driver`]: the REMOTE interface procedures on top of them (read-only,
//!   as that backend).

pub mod driver;
pub mod host;
pub mod iface;
