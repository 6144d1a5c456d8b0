//! What kind of device a sysfs entry is (libvirt's `udevGetDeviceType`)
//! and the facts of each kind (`udevProcess*`). A device libvirt would
//! discard (a missing required property, a storage device of no known
//! drive type, …) gives `None`.

use super::entry::{Entry, parse_u32};
use super::{Host, pci};
use crate::device::{
    CapType, Capability, Device, DrmKind, LinkInfo, NetCap, Removable, ScsiCap, ScsiHostCap, StorageCap,
    UsbDeviceCap, UsbInterfaceCap, device_name,
};

/// The capability type of an entry, if it is one modvirt models.
pub fn device_type(e: &Entry) -> Option<CapType> {
    if let Some(devtype) = e.prop("DEVTYPE") {
        return match devtype {
            "usb_device" => Some(CapType::UsbDevice),
            "usb_interface" => Some(CapType::UsbInterface),
            "scsi_host" => Some(CapType::ScsiHost),
            "scsi_target" => Some(CapType::ScsiTarget),
            "scsi_device" => Some(CapType::Scsi),
            "disk" => Some(CapType::Storage),
            "wlan" => Some(CapType::Net),
            "drm_minor" => Some(CapType::Drm),
            _ => None,
        };
    }
    let mut t = None;
    if e.has_prop("PCI_CLASS") {
        t = Some(CapType::Pci);
    }
    if e.has_prop("INTERFACE") {
        t = Some(CapType::Net);
    }
    match e.subsystem.as_str() {
        "scsi_generic" => Some(CapType::ScsiGeneric),
        // Mediated, s390 and vDPA devices: types modvirt does not model.
        "mdev" | "ccw" | "css" | "vdpa" | "matrix" | "mtty" => None,
        _ => t,
    }
}

/// The device an entry is, or `None`.
pub fn device(host: &Host, e: &Entry) -> Option<Device> {
    let plain = || device_name(&e.subsystem, &e.sysname, None);
    let (name, cap) = match device_type(e)? {
        CapType::Pci => (plain(), Capability::Pci(Box::new(pci::read(host, e)?))),
        CapType::UsbDevice => (plain(), Capability::UsbDevice(usb_device(e)?)),
        CapType::UsbInterface => (plain(), Capability::UsbInterface(usb_interface(e)?)),
        CapType::Net => {
            let n = net(host, e)?;
            (
                device_name(&e.subsystem, &e.sysname, n.address.as_deref()),
                Capability::Net(n),
            )
        }
        CapType::ScsiHost => (plain(), Capability::ScsiHost(scsi_host(host, e)?)),
        CapType::ScsiTarget => (plain(), Capability::ScsiTarget(e.sysname.clone())),
        CapType::Scsi => (plain(), Capability::Scsi(scsi(e)?)),
        CapType::Storage => {
            let s = storage(e)?;
            (
                device_name(&e.subsystem, &e.sysname, s.serial.as_deref()),
                Capability::Storage(s),
            )
        }
        CapType::ScsiGeneric => (plain(), Capability::ScsiGeneric(e.prop("DEVNAME")?.to_owned())),
        CapType::Drm => (
            plain(),
            Capability::Drm(DrmKind::from_minor(e.prop_u32("MINOR", 10)?)?),
        ),
        CapType::System => return None,
    };
    Some(Device {
        name,
        sysfs_path: Some(e.path.clone()),
        devnode: e.devnode.clone(),
        devlinks: e.devlinks.clone(),
        parent: None,
        driver: e.driver.clone(),
        cap,
    })
}

/// An optional hexadecimal attribute: absent is 0, unparsable discards
/// the device (libvirt's `udevGetUintSysfsAttr`).
fn hex_attr(e: &Entry, name: &str) -> Option<u32> {
    match e.attr_raw(name) {
        None => Some(0),
        Some(v) => parse_u32(&v, 16),
    }
}

fn usb_device(e: &Entry) -> Option<UsbDeviceCap> {
    // ID_VENDOR_ID / ID_MODEL_ID come from udev's database; where there is
    // none (containers), the attributes udev takes them from.
    let id = |prop: &str, attr: &str| e.prop_u32(prop, 16).or_else(|| e.attr_u32(attr, 16));
    Some(UsbDeviceCap {
        bus: e.prop_u32("BUSNUM", 10)?,
        device: e.prop_u32("DEVNUM", 10)?,
        vendor: id("ID_VENDOR_ID", "idVendor")?,
        vendor_name: e
            .prop("ID_VENDOR_FROM_DATABASE")
            .map(str::to_owned)
            .or_else(|| e.attr("manufacturer")),
        product: id("ID_MODEL_ID", "idProduct")?,
        product_name: e
            .prop("ID_MODEL_FROM_DATABASE")
            .map(str::to_owned)
            .or_else(|| e.attr("product")),
    })
}

fn usb_interface(e: &Entry) -> Option<UsbInterfaceCap> {
    Some(UsbInterfaceCap {
        number: hex_attr(e, "bInterfaceNumber")?,
        class: hex_attr(e, "bInterfaceClass")?,
        subclass: hex_attr(e, "bInterfaceSubClass")?,
        protocol: hex_attr(e, "bInterfaceProtocol")?,
    })
}

/// `operstate` names libvirt knows (`virNetDevIfState`).
const OPER_STATES: [&str; 7] = [
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

/// A network link's state and, while up, speed, from
/// `SYSFS/class/net/IFNAME` (libvirt's `virNetDevGetLinkInfo`); `None`
/// when the interface is gone or its state unreadable.
pub fn link_info(host: &Host, ifname: &str) -> Option<LinkInfo> {
    let dir = host.sysfs.join("class/net").join(ifname);
    let state = super::entry::read_raw(&dir.join("operstate"))?;
    if !OPER_STATES.contains(&state.as_str()) {
        return None;
    }
    // Speed only while up (drivers report nonsense otherwise); a device
    // that reports none (reading fails) has none.
    let speed = if state == "up" {
        super::entry::read_raw(&dir.join("speed")).and_then(|s| parse_u32(&s, 10))
    } else {
        None
    };
    Some(LinkInfo {
        state: Some(state),
        speed,
    })
}

fn net(host: &Host, e: &Entry) -> Option<NetCap> {
    let ifname = e.prop("INTERFACE")?.to_owned();
    e.attr_raw("addr_len").map_or(Some(0), |l| parse_u32(&l, 10))?;
    Some(NetCap {
        link: link_info(host, &ifname)?,
        address: e.attr("address"),
        wireless: e.prop("DEVTYPE") == Some("wlan"),
        interface: ifname,
    })
}

fn scsi_host(host: &Host, e: &Entry) -> Option<ScsiHostCap> {
    let n: u32 = e.sysname.strip_prefix("host")?.parse().ok()?;
    let unique_id = super::entry::read_raw(&host.sysfs.join(format!("class/scsi_host/host{n}/unique_id")))
        .and_then(|s| super::entry::parse_i32(&s));
    Some(ScsiHostCap { host: n, unique_id })
}

/// libvirt's names of SCSI peripheral types (Linux's `TYPE_*`).
fn scsi_type(t: u32) -> Option<&'static str> {
    Some(match t {
        0x00 => "disk",
        0x01 => "tape",
        0x03 => "processor",
        0x04 => "worm",
        0x05 => "cdrom",
        0x06 => "scanner",
        0x07 => "mod",
        0x08 => "changer",
        0x0c => "raid",
        0x0d => "enclosure",
        _ => return None,
    })
}

fn scsi(e: &Entry) -> Option<ScsiCap> {
    let mut parts = e.sysname.split(':').map(|p| p.parse::<u32>().ok());
    let mut next = || parts.next().flatten();
    let (host, bus, target, lun) = (next()?, next()?, next()?, next()?);
    let kind = match e.attr_raw("type") {
        Some(t) => scsi_type(parse_u32(&t, 10)?),
        None => None,
    };
    Some(ScsiCap {
        host,
        bus,
        target,
        lun,
        kind: kind.map(str::to_owned),
    })
}

/// The drive type when udev gave none: what the SCSI peripheral type says
/// (what udev's own ID_TYPE is made from), else libvirt's guess from the
/// node's name (`udevKludgeStorageType`).
fn guess_drive_type(e: &Entry, block: &str) -> Option<&'static str> {
    match e.attr_raw("device/type").and_then(|t| parse_u32(&t, 10)) {
        Some(0) => return Some("disk"),
        Some(5) => return Some("cd"),
        _ => {}
    }
    [("/dev/vd", "disk"), ("/dev/dasd", "dasd"), ("/dev/nvme", "disk")]
        .into_iter()
        .find(|(prefix, _)| block.starts_with(prefix))
        .map(|(_, t)| t)
}

fn storage(e: &Entry) -> Option<StorageCap> {
    let block = e.devnode.clone()?;
    let trimmed = |name: &str| e.attr(name).map(|v| v.trim().to_owned());
    let mut s = StorageCap {
        bus: e.prop("ID_BUS").map(str::to_owned),
        serial: e.prop("ID_SERIAL").map(str::to_owned),
        vendor: trimmed("device/vendor"),
        model: trimmed("device/model"),
        drive_type: e.prop("ID_TYPE").map(str::to_owned),
        ..StorageCap::default()
    };
    if s.drive_type.as_deref().is_none_or(|t| t == "generic") {
        let t = if e.has_prop("ID_DRIVE_FLOPPY") {
            "floppy"
        } else if e.has_prop("ID_CDROM") {
            "cd"
        } else if e.has_prop("ID_DRIVE_FLASH_SD") {
            "sd"
        } else {
            guess_drive_type(e, &block)?
        };
        s.drive_type = Some(t.to_owned());
    }
    s.block = block;
    let sizes = |s: &mut StorageCap| -> Option<()> {
        s.num_blocks = e.attr_raw("size").map_or(Some(0), |v| v.trim().parse().ok())?;
        s.logical_block_size = e
            .attr_raw("queue/logical_block_size")
            .map_or(Some(0), |v| v.trim().parse().ok())?;
        Some(())
    };
    let removable = |s: &mut StorageCap, has_media: bool| -> Option<()> {
        let is_removable = e
            .attr_raw("removable")
            .map_or(Some(0), |v| v.trim().parse::<i32>().ok())?;
        let mut r = Removable::default();
        if has_media {
            r.media_available = true;
            r.media_label = e.prop("ID_FS_LABEL").map(str::to_owned);
            sizes(s)?;
            r.media_size = s.num_blocks.wrapping_mul(s.logical_block_size);
        }
        // libvirt shows the medium only for a drive the kernel calls
        // removable; a fixed one shows a size of 0.
        if is_removable == 1 {
            s.removable = Some(r);
        }
        Some(())
    };
    match s.drive_type.as_deref() {
        Some("cd" | "cd/dvd") => {
            s.drive_type = Some("cdrom".into());
            let media = match e.prop("ID_CDROM_MEDIA") {
                Some(v) => parse_u32(v, 10)? != 0,
                None => false,
            };
            removable(&mut s, media)?;
        }
        Some("disk" | "sd" | "dasd") => {
            if s.drive_type.as_deref() == Some("dasd") {
                s.serial = e.attr("device/uid");
            }
            sizes(&mut s)?;
            s.size = s.num_blocks.wrapping_mul(s.logical_block_size);
        }
        Some("floppy") => removable(&mut s, e.has_prop("ID_FS_LABEL"))?,
        _ => return None,
    }
    Some(s)
}
