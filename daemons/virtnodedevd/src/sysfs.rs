//! Host devices read from sysfs, the way libvirt's udev backend sees them:
//! every directory linked from `SYSFS/bus/*/devices/` and `SYSFS/class/*/`
//! is a device, described by its `subsystem` link, its `uevent` file and
//! (when udev keeps one) its udev database entry; its type comes from the
//! same properties libvirt's `udevGetDeviceType` looks at, and devices of
//! no type libvirt knows are left out. A device's parent is the nearest
//! directory above it that is a device too, else `computer`.
//!
//! Where things are read from (see `docs/virtnodedevd.md`):
//!
//! | variable | default | what |
//! |---|---|---|
//! | `MODVIRT_SYSFS` | `/sys` | the sysfs tree |
//! | `MODVIRT_UDEV_DATA` | `/run/udev/data` | udev's database (`E:` properties, `S:` links) |
//! | `MODVIRT_PCI_IDS` | `/usr/share/misc/pci.ids`, `/usr/share/hwdata/pci.ids` | PCI vendor and product names |
//!
//! Everything here is blocking file I/O: callers run it off the async
//! runtime.

mod entry;
mod kinds;
mod pci;

#[cfg(test)]
mod tests;

use crate::device::{COMPUTER, Capability, Device, SystemCap};
use entry::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Subsystems libvirt does not even enumerate (`subsystem_ignored`).
const IGNORED_SUBSYSTEMS: [&str; 4] = ["acpi", "tty", "vc", "i2c"];

/// Where the host's device facts are.
#[derive(Debug)]
pub struct Host {
    /// The sysfs root (`/sys`).
    pub sysfs: PathBuf,
    /// udev's database directory (`/run/udev/data`).
    pub udev_data: PathBuf,
    /// The PCI id database, if one is installed.
    pub pci_ids: Option<PathBuf>,
    /// Whether PCI config space may be read whole (root), as libvirt reads
    /// it only when privileged.
    pub privileged: bool,
    names: OnceLock<pci::PciIds>,
}

pub const SYSFS_ENV: &str = "MODVIRT_SYSFS";
pub const UDEV_DATA_ENV: &str = "MODVIRT_UDEV_DATA";
pub const PCI_IDS_ENV: &str = "MODVIRT_PCI_IDS";

impl Host {
    pub fn new(sysfs: PathBuf, udev_data: PathBuf, pci_ids: Option<PathBuf>, privileged: bool) -> Host {
        Host {
            sysfs,
            udev_data,
            pci_ids,
            privileged,
            names: OnceLock::new(),
        }
    }

    /// From the environment (see the module table).
    pub fn from_env() -> Host {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let pci_ids = var(PCI_IDS_ENV).or_else(|| {
            ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        });
        Host::new(
            var(SYSFS_ENV).unwrap_or_else(|| PathBuf::from("/sys")),
            var(UDEV_DATA_ENV).unwrap_or_else(|| PathBuf::from("/run/udev/data")),
            pci_ids,
            nix::unistd::geteuid().is_root(),
        )
    }

    /// The PCI id database, read once.
    fn pci_names(&self) -> &pci::PciIds {
        self.names
            .get_or_init(|| pci::PciIds::load(self.pci_ids.as_deref()))
    }

    /// The sysfs root with its symbolic links resolved, so that device
    /// paths (resolved too) can be walked up to it.
    fn root(&self) -> PathBuf {
        std::fs::canonicalize(&self.sysfs).unwrap_or_else(|_| self.sysfs.clone())
    }
}

/// Every device directory: the targets of `bus/*/devices/*` and
/// `class/*/*`, resolved, each once, in path order.
fn device_dirs(root: &Path) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    let mut add_all = |dir: PathBuf| {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                if let Ok(p) = std::fs::canonicalize(e.path())
                    && p.is_dir()
                {
                    dirs.insert(p);
                }
            }
        }
    };
    for (top, sub) in [("bus", Some("devices")), ("class", None)] {
        let Ok(rd) = std::fs::read_dir(root.join(top)) else {
            continue;
        };
        let mut groups: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        groups.sort();
        for g in groups {
            add_all(match sub {
                Some(s) => g.join(s),
                None => g,
            });
        }
    }
    dirs
}

/// All devices of the host but `computer`, with their parents.
pub fn scan(host: &Host) -> Vec<Device> {
    let root = host.root();
    let mut found: BTreeMap<PathBuf, Device> = BTreeMap::new();
    for dir in device_dirs(&root) {
        let Some(entry) = Entry::read(host, &dir) else {
            continue;
        };
        if IGNORED_SUBSYSTEMS.contains(&entry.subsystem.as_str()) {
            continue;
        }
        if let Some(dev) = kinds::device(host, &entry) {
            found.insert(dir, dev);
        }
    }
    let by_path: BTreeMap<PathBuf, String> = found.iter().map(|(p, d)| (p.clone(), d.name.clone())).collect();
    found
        .into_iter()
        .map(|(path, mut dev)| {
            dev.parent = Some(parent_of(&root, &path, &by_path));
            dev
        })
        .collect()
}

/// The nearest device above `path`, else `computer`.
fn parent_of(root: &Path, path: &Path, by_path: &BTreeMap<PathBuf, String>) -> String {
    let mut cur = path.parent();
    while let Some(p) = cur {
        if p == root || !p.starts_with(root) {
            break;
        }
        if let Some(name) = by_path.get(p) {
            return name.clone();
        }
        cur = p.parent();
    }
    COMPUTER.to_owned()
}

/// One device read again from its sysfs directory (its capability facts,
/// driver and nodes may have changed); `None` when it is gone or no longer
/// the same device. The parent is kept.
pub fn reread(host: &Host, dev: &Device) -> Option<Device> {
    let Some(path) = &dev.sysfs_path else {
        return Some(dev.clone());
    };
    let entry = Entry::read(host, path)?;
    let mut fresh = kinds::device(host, &entry)?;
    if fresh.name != dev.name {
        return None;
    }
    fresh.parent.clone_from(&dev.parent);
    Some(fresh)
}

/// The `computer` device: DMI facts from `SYSFS/devices/virtual/dmi/id`.
/// The hardware UUID is `product_uuid` when it is readable and sensible,
/// else `fallback_uuid` (libvirt makes one up per run); with no DMI
/// directory at all it stays all zeros, as libvirt leaves it.
pub fn computer(host: &Host, fallback_uuid: [u8; 16]) -> Device {
    let dmi = host.sysfs.join("devices/virtual/dmi/id");
    let mut sys = SystemCap::default();
    if dmi.is_dir() {
        let attr = |name: &str| entry::read_string(&dmi.join(name));
        sys.product_name = attr("product_name");
        sys.hw_vendor = attr("sys_vendor");
        sys.hw_version = attr("product_version");
        sys.hw_serial = attr("product_serial");
        sys.hw_uuid = attr("product_uuid")
            .and_then(|u| modvirt_xml::parse_uuid(&u))
            .filter(|u| u.iter().any(|b| *b != u[0]))
            .unwrap_or(fallback_uuid);
        sys.fw_vendor = attr("bios_vendor");
        sys.fw_version = attr("bios_version");
        sys.fw_release_date = attr("bios_date");
    }
    Device {
        name: COMPUTER.to_owned(),
        sysfs_path: None,
        devnode: None,
        devlinks: Vec::new(),
        parent: None,
        driver: None,
        cap: Capability::System(sys),
    }
}
