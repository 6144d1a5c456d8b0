//! libvirt's node device model with no I/O: a host device as
//! `virsh nodedev-dumpxml` shows it (its name, sysfs path, device nodes,
//! parent, driver and its one capability), the capability types and their
//! `virConnectListAllNodeDevices` flags, and the `<device>` XML
//! ([`format`]). What fills it in from sysfs is the `sysfs` module.

pub mod format;

#[cfg(test)]
mod tests;

use modvirt_wire::nodedev::list;
use std::path::PathBuf;

/// The name of the root device every other device hangs below.
pub const COMPUTER: &str = "computer";

/// One host device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `pci_0000_00_1f_2`, `net_eth0_52_54_00_12_34_56`, `computer`, …
    pub name: String,
    /// The device's directory under `/sys/devices` (none for `computer`).
    pub sysfs_path: Option<PathBuf>,
    /// `/dev/…` node of the device, if it has one.
    pub devnode: Option<String>,
    /// Symbolic links to the node that udev made (`/dev/disk/by-id/…`).
    pub devlinks: Vec<String>,
    /// The parent device's name (none only for `computer`).
    pub parent: Option<String>,
    /// The kernel driver bound to it.
    pub driver: Option<String>,
    pub cap: Capability,
}

impl Device {
    /// The capability types the device has, nested ones included
    /// (`virNodeDeviceCapsListExport`).
    pub fn cap_types(&self) -> Vec<CapType> {
        vec![self.cap.cap_type()]
    }

    pub fn has_cap(&self, t: CapType) -> bool {
        self.cap_types().contains(&t)
    }

    /// Devices found on the host are active; `computer` is also persistent
    /// and autostarted, as libvirt's udev backend marks it.
    pub fn active(&self) -> bool {
        true
    }

    pub fn persistent(&self) -> bool {
        self.name == COMPUTER
    }

    pub fn autostart(&self) -> bool {
        self.name == COMPUTER
    }
}

/// libvirt's capability types (`virNodeDevCapType`) that modvirt models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CapType {
    System,
    Pci,
    UsbDevice,
    UsbInterface,
    Net,
    ScsiHost,
    ScsiTarget,
    Scsi,
    Storage,
    ScsiGeneric,
    Drm,
}

impl CapType {
    pub const ALL: [CapType; 11] = [
        CapType::System,
        CapType::Pci,
        CapType::UsbDevice,
        CapType::UsbInterface,
        CapType::Net,
        CapType::ScsiHost,
        CapType::ScsiTarget,
        CapType::Scsi,
        CapType::Storage,
        CapType::ScsiGeneric,
        CapType::Drm,
    ];

    /// The name in XML, `virsh nodedev-list --cap` and `LIST_CAPS`.
    pub fn name(self) -> &'static str {
        match self {
            CapType::System => "system",
            CapType::Pci => "pci",
            CapType::UsbDevice => "usb_device",
            CapType::UsbInterface => "usb",
            CapType::Net => "net",
            CapType::ScsiHost => "scsi_host",
            CapType::ScsiTarget => "scsi_target",
            CapType::Scsi => "scsi",
            CapType::Storage => "storage",
            CapType::ScsiGeneric => "scsi_generic",
            CapType::Drm => "drm",
        }
    }

    pub fn from_name(name: &str) -> Option<CapType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Its `VIR_CONNECT_LIST_NODE_DEVICES_CAP_*` flag.
    pub fn list_flag(self) -> u32 {
        match self {
            CapType::System => list::CAP_SYSTEM,
            CapType::Pci => list::CAP_PCI_DEV,
            CapType::UsbDevice => list::CAP_USB_DEV,
            CapType::UsbInterface => list::CAP_USB_INTERFACE,
            CapType::Net => list::CAP_NET,
            CapType::ScsiHost => list::CAP_SCSI_HOST,
            CapType::ScsiTarget => list::CAP_SCSI_TARGET,
            CapType::Scsi => list::CAP_SCSI,
            CapType::Storage => list::CAP_STORAGE,
            CapType::ScsiGeneric => list::CAP_SCSI_GENERIC,
            CapType::Drm => list::CAP_DRM,
        }
    }
}

/// What a device is, with the facts its `<capability>` element shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    System(SystemCap),
    Pci(Box<PciCap>),
    UsbDevice(UsbDeviceCap),
    UsbInterface(UsbInterfaceCap),
    Net(NetCap),
    ScsiHost(ScsiHostCap),
    /// The target's sysfs name (`target0:0:0`).
    ScsiTarget(String),
    Scsi(ScsiCap),
    Storage(StorageCap),
    /// The character device (`/dev/sg0`).
    ScsiGeneric(String),
    Drm(DrmKind),
}

impl Capability {
    pub fn cap_type(&self) -> CapType {
        match self {
            Capability::System(_) => CapType::System,
            Capability::Pci(_) => CapType::Pci,
            Capability::UsbDevice(_) => CapType::UsbDevice,
            Capability::UsbInterface(_) => CapType::UsbInterface,
            Capability::Net(_) => CapType::Net,
            Capability::ScsiHost(_) => CapType::ScsiHost,
            Capability::ScsiTarget(_) => CapType::ScsiTarget,
            Capability::Scsi(_) => CapType::Scsi,
            Capability::Storage(_) => CapType::Storage,
            Capability::ScsiGeneric(_) => CapType::ScsiGeneric,
            Capability::Drm(_) => CapType::Drm,
        }
    }
}

/// The host itself: DMI facts (`/sys/devices/virtual/dmi/id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemCap {
    pub product_name: Option<String>,
    pub hw_vendor: Option<String>,
    pub hw_version: Option<String>,
    pub hw_serial: Option<String>,
    pub hw_uuid: [u8; 16],
    pub fw_vendor: Option<String>,
    pub fw_version: Option<String>,
    pub fw_release_date: Option<String>,
}

/// A PCI address as libvirt prints it inside a PCI capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddr {
    pub domain: u32,
    pub bus: u32,
    pub slot: u32,
    pub function: u32,
}

impl PciAddr {
    /// Parses sysfs's `dddd:bb:ss.f`.
    pub fn parse(text: &str) -> Option<PciAddr> {
        let (domain, rest) = text.split_once(':')?;
        let (bus, rest) = rest.split_once(':')?;
        let (slot, function) = rest.split_once('.')?;
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        Some(PciAddr {
            domain: hex(domain)?,
            bus: hex(bus)?,
            slot: hex(slot)?,
            function: hex(function)?,
        })
    }
}

/// A PCI Express link (`<link validity=…>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcieLink {
    /// The port number; none for the negotiated status.
    pub port: Option<u32>,
    /// The speed code (1 = 2.5 GT/s, 2 = 5, 3 = 8, 4 = 16, 5 = 32, 6 = 64).
    pub speed: u32,
    pub width: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciCap {
    /// The class code (`0x0c0330`); none if udev gave none.
    pub class: Option<u32>,
    pub addr: PciAddr,
    pub product: u32,
    pub product_name: Option<String>,
    pub vendor: u32,
    pub vendor_name: Option<String>,
    /// SR-IOV: the physical function of this virtual function.
    pub phys_function: Option<PciAddr>,
    /// SR-IOV: the virtual functions, and how many there may be
    /// (`sriov_totalvfs`); `None` when the device has no SR-IOV.
    pub virt_functions: Option<(u32, Vec<PciAddr>)>,
    /// `pci-bridge` / `cardbus-bridge` (from the config space).
    pub header: Option<&'static str>,
    /// The IOMMU group and the devices in it.
    pub iommu_group: Option<(u32, Vec<PciAddr>)>,
    pub numa_node: Option<u32>,
    /// PCI Express: `Some` for an express device, with its link capability
    /// and status when it has a link.
    pub pci_express: Option<Option<(PcieLink, PcieLink)>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbDeviceCap {
    pub bus: u32,
    pub device: u32,
    pub product: u32,
    pub product_name: Option<String>,
    pub vendor: u32,
    pub vendor_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbInterfaceCap {
    pub number: u32,
    pub class: u32,
    pub subclass: u32,
    pub protocol: u32,
}

/// The state and speed of a network link (`<link state speed/>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkInfo {
    /// `up`, `down`, `unknown`, …
    pub state: Option<String>,
    /// Mb/s, only while up.
    pub speed: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetCap {
    pub interface: String,
    pub address: Option<String>,
    pub link: LinkInfo,
    /// 802.11 (wireless) rather than 802.3.
    pub wireless: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiHostCap {
    pub host: u32,
    pub unique_id: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiCap {
    pub host: u32,
    pub bus: u32,
    pub target: u32,
    pub lun: u32,
    /// `disk`, `cdrom`, `tape`, …
    pub kind: Option<String>,
}

/// A removable drive's medium.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Removable {
    pub media_available: bool,
    pub media_size: u64,
    pub media_label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageCap {
    pub block: String,
    pub bus: Option<String>,
    pub drive_type: Option<String>,
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub serial: Option<String>,
    /// Fixed disks: capacity in bytes.
    pub size: u64,
    pub logical_block_size: u64,
    pub num_blocks: u64,
    /// Removable drives (CD, floppy): the medium instead of a size.
    pub removable: Option<Removable>,
}

/// The kind of a DRM minor (`minor >> 6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrmKind {
    Primary,
    Control,
    Render,
}

impl DrmKind {
    pub fn from_minor(minor: u32) -> Option<DrmKind> {
        match minor >> 6 {
            0 => Some(DrmKind::Primary),
            1 => Some(DrmKind::Control),
            2 => Some(DrmKind::Render),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DrmKind::Primary => "primary",
            DrmKind::Control => "control",
            DrmKind::Render => "render",
        }
    }
}

/// libvirt's device name: `SUBSYSTEM_SYSNAME[_SUFFIX]` with every
/// character that is not an ASCII letter or digit made `_`
/// (`nodeDeviceGenerateName`).
pub fn device_name(subsystem: &str, sysname: &str, suffix: Option<&str>) -> String {
    let mut raw = format!("{subsystem}_{sysname}");
    if let Some(s) = suffix {
        raw.push('_');
        raw.push_str(s);
    }
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
