//! What the virtnodedevd tests (`nodedev.rs`, `nodedev_events.rs`) build
//! their made-up hosts from: a fake sysfs under a daemon's root and the
//! devices both describe.

use std::path::Path;
use virtnodedevd::fakesys::FakeSysfs;

/// The fake sysfs at `ROOT/sys` (PCI devices with a `config` space).
pub fn at(root: &Path) -> FakeSysfs {
    FakeSysfs {
        sys: root.join("sys"),
        pci_config: true,
    }
}

/// An Intel 82574L NIC at `devices/PCI` (PCI class 0x020000) with its
/// interface `ifname` (index `ifindex`, MAC `mac`, link up).
pub fn pci_nic(f: &FakeSysfs, pci: &str, ifname: &str, ifindex: u32, mac: &str) {
    f.device(
        pci,
        "pci",
        true,
        "PCI_CLASS=20000\n",
        &[("vendor", "0x8086"), ("device", "0x10d3")],
    );
    f.device(
        &format!("{pci}/net/{ifname}"),
        "net",
        false,
        &format!("INTERFACE={ifname}\nIFINDEX={ifindex}\n"),
        &[("address", mac), ("addr_len", "6"), ("operstate", "up")],
    );
}
