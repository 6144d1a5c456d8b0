//! What changed between two enumerations, as libvirt's udev backend
//! reports it in node device events: a device that appeared was
//! `CREATED`, one that went was `DELETED`, and one known before that a
//! kernel event named (`add`, `change`, `move`: [`Touched`]) had an
//! `UPDATE`. libvirt handles each udev event as it comes; here the events
//! only say where to look and the lists are compared, so a device that
//! went and came back between two enumerations is `DELETED` and `CREATED`
//! when an event said it was removed (or it now has another sysfs path),
//! and nothing at all otherwise. `computer` never changes.

use super::registry::Registry;
use super::uevents::Touched;
use crate::device::{COMPUTER, Device};
use std::path::Path;

/// One node device event to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    Deleted(String),
    Updated(String),
}

impl Change {
    pub fn name(&self) -> &str {
        match self {
            Change::Created(n) | Change::Deleted(n) | Change::Updated(n) => n,
        }
    }
}

fn path(d: &Device) -> &Path {
    d.sysfs_path.as_deref().unwrap_or(Path::new(""))
}

/// The events from enumeration `old` to enumeration `new`: deletions
/// first, children before their parents (by sysfs path, deepest last in
/// order, reversed), then creations, parents first, then updates — the
/// order in which the kernel reports them.
pub fn between(old: &Registry, new: &Registry, touched: &Touched) -> Vec<Change> {
    let mut deleted: Vec<&Device> = Vec::new();
    let mut created: Vec<&Device> = Vec::new();
    let mut updated: Vec<&Device> = Vec::new();
    for d in old.iter().filter(|d| d.name != COMPUTER) {
        match new.get(&d.name) {
            None => deleted.push(d),
            Some(n) if n.sysfs_path != d.sysfs_path || touched.removed.contains(path(n)) => {
                deleted.push(d);
                created.push(n);
            }
            Some(n) if touched.changed.contains(path(n)) => updated.push(n),
            Some(_) => {}
        }
    }
    created.extend(
        new.iter()
            .filter(|d| d.name != COMPUTER && old.get(&d.name).is_none()),
    );
    deleted.sort_by(|a, b| path(b).cmp(path(a)).then_with(|| a.name.cmp(&b.name)));
    created.sort_by(|a, b| path(a).cmp(path(b)).then_with(|| a.name.cmp(&b.name)));
    updated.sort_by(|a, b| path(a).cmp(path(b)).then_with(|| a.name.cmp(&b.name)));
    let name = |d: &&Device| d.name.clone();
    deleted
        .iter()
        .map(|d| Change::Deleted(name(d)))
        .chain(created.iter().map(|d| Change::Created(name(d))))
        .chain(updated.iter().map(|d| Change::Updated(name(d))))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failure is the assertion
mod tests {
    use super::*;
    use crate::device::{Capability, SystemCap};
    use std::path::PathBuf;

    fn dev(name: &str, path: Option<&str>) -> Device {
        Device {
            name: name.into(),
            sysfs_path: path.map(PathBuf::from),
            devnode: None,
            devlinks: Vec::new(),
            parent: None,
            driver: None,
            cap: Capability::System(SystemCap::default()),
        }
    }

    fn reg(devs: &[(&str, &str)], generation: u64) -> Registry {
        let mut v: Vec<Device> = devs.iter().map(|(n, p)| dev(n, Some(p))).collect();
        v.push(dev(COMPUTER, None));
        Registry::new(v, generation)
    }

    const PCI: (&str, &str) = ("pci_0000_00_19_0", "/sys/devices/pci0000:00/0000:00:19.0");
    const ETH: (&str, &str) = (
        "net_eth0_52_54_00_12_34_56",
        "/sys/devices/pci0000:00/0000:00:19.0/net/eth0",
    );
    const LO: (&str, &str) = ("net_lo_00_00_00_00_00_00", "/sys/devices/virtual/net/lo");
    const SG: (&str, &str) = ("scsi_generic_sg0", "/sys/devices/pci0000:00/0000:00:1f.2/sg0");

    fn touched(changed: &[&str], removed: &[&str]) -> Touched {
        Touched {
            changed: changed.iter().map(PathBuf::from).collect(),
            removed: removed.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn nothing_changes_without_a_difference_or_an_event() {
        let a = reg(&[PCI, ETH, LO], 1);
        let b = reg(&[LO, ETH, PCI], 2);
        assert!(between(&a, &b, &Touched::default()).is_empty());
        // Events for devices that are not node devices, or for computer.
        let t = touched(&["/sys/devices/virtual/net/virbr0-nic"], &["/sys/devices/x"]);
        assert!(between(&a, &b, &t).is_empty());
    }

    #[test]
    fn new_devices_come_parents_first_and_gone_ones_children_first() {
        let a = reg(&[LO, SG], 1);
        let b = reg(&[ETH, PCI, LO], 2);
        assert_eq!(
            between(&a, &b, &Touched::default()),
            [
                Change::Deleted(SG.0.into()),
                Change::Created(PCI.0.into()),
                Change::Created(ETH.0.into()),
            ]
        );
        assert_eq!(
            between(&b, &a, &Touched::default()),
            [
                Change::Deleted(ETH.0.into()),
                Change::Deleted(PCI.0.into()),
                Change::Created(SG.0.into()),
            ]
        );
    }

    #[test]
    fn events_make_updates_and_round_trips() {
        let a = reg(&[PCI, ETH, LO], 1);
        let b = reg(&[PCI, ETH, LO], 2);
        // `change` (or `add`) of a known device: an update.
        let t = touched(&[LO.1, PCI.1], &[]);
        assert_eq!(
            between(&a, &b, &t),
            [Change::Updated(PCI.0.into()), Change::Updated(LO.0.into())]
        );
        // Removed and back (maybe changed too): deleted, then created.
        let t = touched(&[ETH.1], &[ETH.1]);
        assert_eq!(
            between(&a, &b, &t),
            [Change::Deleted(ETH.0.into()), Change::Created(ETH.0.into())]
        );
        // Same name elsewhere in sysfs: another device.
        let moved = reg(&[PCI, (ETH.0, "/sys/devices/virtual/net/eth0"), LO], 3);
        assert_eq!(
            between(&a, &moved, &Touched::default()),
            [Change::Deleted(ETH.0.into()), Change::Created(ETH.0.into())]
        );
        assert_eq!(Change::Updated("x".into()).name(), "x");
    }
}
