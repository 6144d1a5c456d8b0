//! PCI devices: address, ids and names (the `pci.ids` database, as
//! libpciaccess reads it for libvirt), SR-IOV functions, IOMMU group, NUMA
//! node, and — read from config space, as libvirt does when privileged —
//! the bridge header type and the PCI Express link.

use super::Host;
use super::entry::{Entry, parse_u32};
use crate::device::{PciAddr, PciCap, PcieLink};
use std::collections::HashMap;
use std::path::Path;

/// Vendor and device names from a `pci.ids` file.
#[derive(Debug, Default)]
pub struct PciIds {
    vendors: HashMap<u16, (String, HashMap<u16, String>)>,
}

impl PciIds {
    /// Reads `path`; an absent or unreadable file gives no names.
    pub fn load(path: Option<&Path>) -> PciIds {
        let Some(text) = path.and_then(|p| std::fs::read(p).ok()) else {
            return PciIds::default();
        };
        Self::parse(&String::from_utf8_lossy(&text))
    }

    /// `VVVV  vendor` lines, each followed by `\tDDDD  device` lines
    /// (subsystem lines, `\t\t…`, and the class list, `C …`, are skipped).
    pub fn parse(text: &str) -> PciIds {
        let mut vendors: HashMap<u16, (String, HashMap<u16, String>)> = HashMap::new();
        let mut current: Option<u16> = None;
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with("C ") {
                break;
            }
            let split = |l: &str| -> Option<(u16, String)> {
                let (id, name) = l.split_once(' ')?;
                Some((u16::from_str_radix(id, 16).ok()?, name.trim().to_owned()))
            };
            if let Some(rest) = line.strip_prefix('\t') {
                if rest.starts_with('\t') {
                    continue;
                }
                if let (Some(v), Some((id, name))) = (current, split(rest)) {
                    vendors.entry(v).or_default().1.insert(id, name);
                }
            } else {
                current = split(line).map(|(id, name)| {
                    vendors.entry(id).or_default().0 = name;
                    id
                });
            }
        }
        PciIds { vendors }
    }

    /// (vendor name, device name).
    pub fn names(&self, vendor: u32, device: u32) -> (Option<String>, Option<String>) {
        let Some((vname, devices)) = u16::try_from(vendor).ok().and_then(|v| self.vendors.get(&v)) else {
            return (None, None);
        };
        let dname = u16::try_from(device).ok().and_then(|d| devices.get(&d)).cloned();
        (Some(vname.clone()).filter(|n| !n.is_empty()), dname)
    }
}

/// The PCI address a link (`physfn`, `virtfn0`, `iommu_group/devices/*`)
/// points at.
fn linked_addr(path: &Path) -> Option<PciAddr> {
    let target = std::fs::read_link(path).ok()?;
    PciAddr::parse(&target.file_name()?.to_string_lossy())
}

/// SR-IOV: (physical function, (total VFs, virtual functions)).
type Sriov = (Option<PciAddr>, Option<(u32, Vec<PciAddr>)>);

fn sriov(dir: &Path) -> Sriov {
    let pf = linked_addr(&dir.join("physfn"));
    let max = super::entry::read_raw(&dir.join("sriov_totalvfs"))
        .and_then(|v| parse_u32(&v, 10))
        .unwrap_or(0);
    let mut vfs: Vec<(u32, PciAddr)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n: u32 = name.strip_prefix("virtfn")?.parse().ok()?;
            Some((n, linked_addr(&e.path())?))
        })
        .collect();
    vfs.sort();
    let vfs: Vec<PciAddr> = vfs.into_iter().map(|(_, a)| a).collect();
    let virt = (max > 0 || !vfs.is_empty()).then_some((max, vfs));
    (pf, virt)
}

/// The IOMMU group number and every device in it.
fn iommu_group(dir: &Path) -> Option<(u32, Vec<PciAddr>)> {
    let group = dir.join("iommu_group");
    let number: u32 = std::fs::read_link(&group)
        .ok()?
        .file_name()?
        .to_string_lossy()
        .parse()
        .ok()?;
    let mut members: Vec<PciAddr> = std::fs::read_dir(group.join("devices"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| PciAddr::parse(&e.file_name().to_string_lossy()))
        .collect();
    members.sort();
    Some((number, members))
}

/// Config space, read as libvirt's `virPCIDeviceRead*` does: bytes past
/// what could be read are `0xff`.
struct Config {
    bytes: Vec<u8>,
    /// The file's size (256 for conventional PCI, 4096 for express).
    size: u64,
}

impl Config {
    fn u8(&self, at: usize) -> u8 {
        self.bytes.get(at).copied().unwrap_or(0xff)
    }

    fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.u8(at), self.u8(at + 1)])
    }

    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.u8(at), self.u8(at + 1), self.u8(at + 2), self.u8(at + 3)])
    }

    /// The offset of the PCI Express capability: `Ok(0)` when there is
    /// none, `Err` when the list could not be read.
    fn express_cap(&self) -> Result<usize, ()> {
        const STATUS_CAP_LIST: u16 = 0x10;
        const CAP_ID_EXP: u8 = 0x10;
        if self.u16(0x06) & STATUS_CAP_LIST == 0 {
            return Ok(0);
        }
        let mut pos = self.u8(0x34);
        let mut hops = 0;
        while pos >= 0x40 && pos != 0xff && hops < 48 {
            if self.u8(usize::from(pos)) == CAP_ID_EXP {
                return Ok(usize::from(pos));
            }
            pos = self.u8(usize::from(pos) + 1);
            hops += 1;
        }
        if pos == 0xff { Err(()) } else { Ok(0) }
    }
}

/// Header type and PCI Express facts; `None` when libvirt would give up on
/// the device (no config space, unknown header type).
#[allow(clippy::type_complexity)] // one tuple, read once by the caller
fn config_facts(dir: &Path) -> Option<(Option<&'static str>, Option<Option<(PcieLink, PcieLink)>>)> {
    let path = dir.join("config");
    let size = std::fs::metadata(&path).ok()?.len();
    let bytes = std::fs::read(&path).ok()?;
    let cfg = Config { bytes, size };
    let header = match cfg.bytes.get(0x0e)? & 0x7f {
        0 => None,
        1 => Some("pci-bridge"),
        2 => Some("cardbus-bridge"),
        _ => return None,
    };
    let (express, pos) = match cfg.express_cap() {
        Ok(pos) => (pos != 0, pos),
        // Unreadable capability list: conventional PCI config is 256 bytes.
        Err(()) => (cfg.size != 256, 0),
    };
    if !express {
        return Some((header, None));
    }
    if pos == 0 {
        return Some((header, Some(None)));
    }
    // Root complex integrated endpoints (9) and event collectors (10) have
    // no link.
    let port_type = (cfg.u16(pos + 2) & 0x00f0) >> 4;
    if port_type == 9 || port_type == 10 {
        return Some((header, Some(None)));
    }
    let cap = cfg.u32(pos + 0x0c);
    let sta = u32::from(cfg.u16(pos + 0x12));
    let links = (
        PcieLink {
            port: Some(cap >> 24),
            speed: cap & 0xf,
            width: (cap >> 4) & 0x3f,
        },
        PcieLink {
            port: None,
            speed: sta & 0xf,
            width: (sta >> 4) & 0x3f,
        },
    );
    Some((header, Some(Some(links))))
}

/// A PCI device's capability, or `None` when libvirt would discard it.
pub fn read(host: &Host, e: &Entry) -> Option<PciCap> {
    let class = e.prop_u32("PCI_CLASS", 16)?;
    let addr = PciAddr::parse(&e.sysname)?;
    let vendor = e.attr_raw("vendor").map_or(Some(0), |v| parse_u32(&v, 16))?;
    let product = e.attr_raw("device").map_or(Some(0), |v| parse_u32(&v, 16))?;
    let (vendor_name, product_name) = host.pci_names().names(vendor, product);
    let numa_node = match e.attr_raw("numa_node") {
        Some(n) => u32::try_from(super::entry::parse_i32(&n)?).ok(),
        None => None,
    };
    let (phys_function, virt_functions) = sriov(&e.path);
    let (header, pci_express) = if host.privileged {
        config_facts(&e.path)?
    } else {
        (None, None)
    };
    Some(PciCap {
        class: Some(class),
        addr,
        product,
        product_name,
        vendor,
        vendor_name,
        phys_function,
        virt_functions,
        header,
        iommu_group: iommu_group(&e.path),
        numa_node,
        pci_express,
    })
}
