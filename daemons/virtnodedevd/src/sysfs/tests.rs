//! A made-up sysfs tree with one device of every kind, read as a host.

#![allow(clippy::unwrap_used)] // tests: a failure is the assertion

use super::*;
use crate::device::{CapType, Device};
use crate::fakesys::FakeSysfs;

/// Builds a fake sysfs (and udev database) under a temporary directory.
pub(crate) struct Fake {
    pub dir: tempfile::TempDir,
    tree: FakeSysfs,
}

impl Fake {
    pub fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let tree = FakeSysfs {
            sys: dir.path().join("sys"),
            pci_config: false,
        };
        Fake { dir, tree }
    }

    pub fn sys(&self) -> PathBuf {
        self.tree.sys.clone()
    }

    pub fn write(&self, rel: &str, text: &str) {
        self.tree.write(rel, text.as_bytes());
    }

    pub fn link(&self, rel: &str, target_rel: &str) {
        self.tree.link(rel, target_rel);
    }

    /// A device at `devices/PATH` of `subsystem` (see [`FakeSysfs::device`]).
    pub fn device(&self, path: &str, subsystem: &str, on_bus: bool, uevent: &str, attrs: &[(&str, &str)]) {
        self.tree.device(path, subsystem, on_bus, uevent, attrs);
    }

    pub fn driver(&self, path: &str, bus: &str, driver: &str) {
        self.tree.driver(path, bus, driver);
    }

    pub fn udev(&self, id: &str, text: &str) {
        let p = self.dir.path().join("udev").join(id);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn host(&self, privileged: bool) -> Host {
        let ids = self.dir.path().join("pci.ids");
        std::fs::write(
            &ids,
            "# comment\n8086  Intel Corporation\n\t2922  82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]\n\t\t1af4 1100  QEMU Virtual Machine\n1234  Technical Corp.\nC 01  Mass storage controller\n",
        )
        .unwrap();
        Host::new(self.sys(), self.dir.path().join("udev"), Some(ids), privileged)
    }
}

/// Config space of a conventional endpoint (`bridge`: a PCI-to-PCI
/// bridge with a PCI Express root port capability and a 2.5 GT/s x1 link).
fn config(bridge: bool) -> Vec<u8> {
    let mut c = vec![0u8; if bridge { 4096 } else { 256 }];
    if bridge {
        c[0x0e] = 1;
        c[0x06] = 0x10;
        c[0x34] = 0x40;
        c[0x40] = 0x10;
        c[0x42] = 0x42; // version 2, port type 4 (root port)
        c[0x4c..0x50].copy_from_slice(&(1u32 << 24 | 4 << 4 | 3).to_le_bytes());
        c[0x52..0x54].copy_from_slice(&(1u16 << 4 | 1).to_le_bytes());
    }
    c
}

pub(crate) fn sample() -> Fake {
    let f = Fake::new();
    let sata = "pci0000:00/0000:00:1f.2";
    f.device(
        sata,
        "pci",
        true,
        "DRIVER=ahci\nPCI_CLASS=10601\nPCI_ID=8086:2922\nPCI_SLOT_NAME=0000:00:1f.2\n",
        &[("vendor", "0x8086"), ("device", "0x2922"), ("numa_node", "-1")],
    );
    std::fs::write(f.sys().join("devices").join(sata).join("config"), config(false)).unwrap();
    f.driver(sata, "pci", "ahci");
    f.write("kernel/iommu_groups/7/devices/0000:00:1f.2", "");
    f.write("kernel/iommu_groups/7/devices/0000:00:1f.3", "");
    f.link(&format!("devices/{sata}/iommu_group"), "kernel/iommu_groups/7");

    let bridge = "pci0000:00/0000:00:1c.0";
    f.device(
        bridge,
        "pci",
        true,
        "DRIVER=pcieport\nPCI_CLASS=60400\n",
        &[("vendor", "0x8086"), ("device", "0x2940"), ("numa_node", "0")],
    );
    std::fs::write(f.sys().join("devices").join(bridge).join("config"), config(true)).unwrap();
    let nic = "pci0000:00/0000:00:1c.0/0000:01:00.0";
    f.device(
        nic,
        "pci",
        true,
        "DRIVER=e1000e\nPCI_CLASS=20000\n",
        &[
            ("vendor", "0x8086"),
            ("device", "0x10d3"),
            ("sriov_totalvfs", "7"),
        ],
    );
    std::fs::write(f.sys().join("devices").join(nic).join("config"), config(false)).unwrap();
    f.link(
        &format!("devices/{nic}/virtfn1"),
        "devices/pci0000:00/0000:00:1c.0/0000:01:10.2",
    );
    f.link(
        &format!("devices/{nic}/virtfn0"),
        "devices/pci0000:00/0000:00:1c.0/0000:01:10.0",
    );
    f.device(
        &format!("{nic}/net/eth0"),
        "net",
        false,
        "INTERFACE=eth0\nIFINDEX=2\n",
        &[
            ("address", "52:54:00:12:34:56"),
            ("addr_len", "6"),
            ("operstate", "up"),
            ("speed", "1000"),
        ],
    );
    f.device(
        "virtual/net/lo",
        "net",
        false,
        "INTERFACE=lo\nIFINDEX=1\n",
        &[
            ("address", "00:00:00:00:00:00"),
            ("addr_len", "6"),
            ("operstate", "unknown"),
        ],
    );
    f.device(
        "virtual/net/br0",
        "net",
        false,
        "DEVTYPE=bridge\nINTERFACE=br0\nIFINDEX=3\n",
        &[("address", "52:54:00:aa:bb:cc"), ("operstate", "down")],
    );
    f.device(
        "virtual/tty/ttyS0",
        "tty",
        false,
        "MAJOR=4\nMINOR=64\nDEVNAME=ttyS0\n",
        &[],
    );

    let ehci = "pci0000:00/0000:00:1d.0";
    f.device(
        ehci,
        "pci",
        true,
        "PCI_CLASS=C0320\n",
        &[("vendor", "0x8086"), ("device", "0x293a")],
    );
    std::fs::write(f.sys().join("devices").join(ehci).join("config"), config(false)).unwrap();
    f.device(
        &format!("{ehci}/usb1"),
        "usb",
        true,
        "DEVTYPE=usb_device\nBUSNUM=001\nDEVNUM=001\nDEVNAME=bus/usb/001/001\nMAJOR=189\nMINOR=0\n",
        &[
            ("idVendor", "1d6b"),
            ("idProduct", "0002"),
            ("manufacturer", "Linux 6.1.0 ehci_hcd"),
            ("product", "EHCI Host Controller"),
        ],
    );
    f.device(
        &format!("{ehci}/usb1/1-1"),
        "usb",
        true,
        "DEVTYPE=usb_device\nBUSNUM=001\nDEVNUM=002\nDEVNAME=bus/usb/001/002\nMAJOR=189\nMINOR=1\n",
        &[
            ("idVendor", "046d"),
            ("idProduct", "c52b"),
            ("manufacturer", "Logitech"),
        ],
    );
    f.udev(
        "c189:1",
        "E:ID_VENDOR_FROM_DATABASE=Logitech, Inc.\nE:ID_MODEL_FROM_DATABASE=Unifying Receiver\n",
    );
    f.device(
        &format!("{ehci}/usb1/1-1/1-1:1.0"),
        "usb",
        true,
        "DEVTYPE=usb_interface\nINTERFACE=3/1/1\n",
        &[
            ("bInterfaceNumber", "00"),
            ("bInterfaceClass", "03"),
            ("bInterfaceSubClass", "01"),
            ("bInterfaceProtocol", "02"),
        ],
    );
    f.driver(&format!("{ehci}/usb1/1-1/1-1:1.0"), "usb", "usbhid");

    let host0 = format!("{sata}/ata1/host0");
    f.device(&host0, "scsi", true, "DEVTYPE=scsi_host\n", &[]);
    f.write("class/scsi_host/host0/unique_id", "1\n");
    f.device(
        &format!("{host0}/target0:0:0"),
        "scsi",
        true,
        "DEVTYPE=scsi_target\n",
        &[],
    );
    let lun = format!("{host0}/target0:0:0/0:0:0:0");
    f.device(
        &lun,
        "scsi",
        true,
        "DEVTYPE=scsi_device\n",
        &[
            ("type", "0"),
            ("vendor", "ATA     "),
            ("model", "QEMU HARDDISK   "),
        ],
    );
    f.driver(&lun, "scsi", "sd");
    let sda = format!("{lun}/block/sda");
    f.device(
        &sda,
        "block",
        false,
        "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n",
        &[
            ("size", "2097152"),
            ("queue/logical_block_size", "512"),
            ("removable", "0"),
        ],
    );
    f.link(&format!("devices/{sda}/device"), &format!("devices/{lun}"));
    f.udev(
        "b8:0",
        "S:disk/by-path/pci-0000:00:1f.2-ata-1\nS:disk/by-id/ata-QEMU_HARDDISK_QM00001\nE:ID_BUS=ata\nE:ID_SERIAL=QEMU_HARDDISK_QM00001\nE:ID_TYPE=disk\n",
    );
    f.device(
        &format!("{sda}/sda1"),
        "block",
        false,
        "MAJOR=8\nMINOR=1\nDEVNAME=sda1\nDEVTYPE=partition\n",
        &[("size", "2048")],
    );
    f.device(
        &format!("{lun}/scsi_generic/sg0"),
        "scsi_generic",
        false,
        "MAJOR=21\nMINOR=0\nDEVNAME=sg0\n",
        &[],
    );
    let vga = "pci0000:00/0000:00:02.0";
    f.device(
        vga,
        "pci",
        true,
        "PCI_CLASS=30000\n",
        &[("vendor", "0x1234"), ("device", "0x1111")],
    );
    std::fs::write(f.sys().join("devices").join(vga).join("config"), config(false)).unwrap();
    f.device(
        &format!("{vga}/drm/renderD128"),
        "drm",
        false,
        "MAJOR=226\nMINOR=128\nDEVNAME=dri/renderD128\nDEVTYPE=drm_minor\n",
        &[],
    );
    f
}

fn scan_sample(privileged: bool) -> (Fake, BTreeMap<String, Device>) {
    let f = sample();
    let devs = scan(&f.host(privileged))
        .into_iter()
        .map(|d| (d.name.clone(), d))
        .collect();
    (f, devs)
}

#[test]
fn names_types_and_parents_are_libvirts() {
    let (_f, devs) = scan_sample(true);
    let got: Vec<(&str, &str, &str)> = devs
        .values()
        .map(|d| {
            (
                d.name.as_str(),
                d.cap.cap_type().name(),
                d.parent.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("block_sda_QEMU_HARDDISK_QM00001", "storage", "scsi_0_0_0_0"),
            ("drm_renderD128", "drm", "pci_0000_00_02_0"),
            ("net_eth0_52_54_00_12_34_56", "net", "pci_0000_01_00_0"),
            ("net_lo_00_00_00_00_00_00", "net", "computer"),
            ("pci_0000_00_02_0", "pci", "computer"),
            ("pci_0000_00_1c_0", "pci", "computer"),
            ("pci_0000_00_1d_0", "pci", "computer"),
            ("pci_0000_00_1f_2", "pci", "computer"),
            ("pci_0000_01_00_0", "pci", "pci_0000_00_1c_0"),
            ("scsi_0_0_0_0", "scsi", "scsi_target0_0_0"),
            ("scsi_generic_sg0", "scsi_generic", "scsi_0_0_0_0"),
            ("scsi_host0", "scsi_host", "pci_0000_00_1f_2"),
            ("scsi_target0_0_0", "scsi_target", "scsi_host0"),
            ("usb_1_1", "usb_device", "usb_usb1"),
            ("usb_1_1_1_0", "usb", "usb_1_1"),
            ("usb_usb1", "usb_device", "pci_0000_00_1d_0"),
        ],
        "bridges, partitions and ttys are not node devices"
    );
}

#[test]
fn pci_device_from_sysfs_config_space_and_pci_ids() {
    let (f, devs) = scan_sample(true);
    let root = std::fs::canonicalize(f.sys()).unwrap();
    assert_eq!(
        devs["pci_0000_00_1f_2"].to_xml(),
        format!(
            "<device>\n  <name>pci_0000_00_1f_2</name>\n  <path>{}/devices/pci0000:00/0000:00:1f.2</path>\n  <parent>computer</parent>\n  <driver>\n    <name>ahci</name>\n  </driver>\n  <capability type='pci'>\n    <class>0x010601</class>\n    <domain>0</domain>\n    <bus>0</bus>\n    <slot>31</slot>\n    <function>2</function>\n    <product id='0x2922'>82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]</product>\n    <vendor id='0x8086'>Intel Corporation</vendor>\n    <iommuGroup number='7'>\n      <address domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/>\n      <address domain='0x0000' bus='0x00' slot='0x1f' function='0x3'/>\n    </iommuGroup>\n  </capability>\n</device>\n",
            root.display()
        )
    );
    let bridge = devs["pci_0000_00_1c_0"].to_xml();
    assert!(
        bridge.contains("    <product id='0x2940'/>\n    <vendor id='0x8086'>Intel Corporation</vendor>\n    <capability type='pci-bridge'/>\n    <numa node='0'/>\n    <pci-express>\n      <link validity='cap' port='1' speed='8' width='4'/>\n      <link validity='sta' speed='2.5' width='1'/>\n    </pci-express>\n  </capability>\n"),
        "{bridge}"
    );
    let nic = devs["pci_0000_01_00_0"].to_xml();
    assert!(
        nic.contains("    <capability type='virt_functions' maxCount='7'>\n      <address domain='0x0000' bus='0x01' slot='0x10' function='0x0'/>\n      <address domain='0x0000' bus='0x01' slot='0x10' function='0x2'/>\n    </capability>\n"),
        "{nic}"
    );
}

#[test]
fn unprivileged_reads_no_config_space() {
    let (_f, devs) = scan_sample(false);
    let bridge = devs["pci_0000_00_1c_0"].to_xml();
    assert!(
        !bridge.contains("pci-express") && !bridge.contains("pci-bridge"),
        "{bridge}"
    );
}

#[test]
fn privileged_without_config_space_drops_the_device_as_libvirt() {
    let f = sample();
    std::fs::remove_file(f.sys().join("devices/pci0000:00/0000:00:02.0/config")).unwrap();
    let names: Vec<String> = scan(&f.host(true)).into_iter().map(|d| d.name).collect();
    assert!(!names.contains(&"pci_0000_00_02_0".to_owned()), "{names:?}");
    // Its child falls back to the root.
    let drm = scan(&f.host(true))
        .into_iter()
        .find(|d| d.name == "drm_renderD128")
        .unwrap();
    assert_eq!(drm.parent.as_deref(), Some("computer"));
}

#[test]
fn net_usb_scsi_storage_and_drm_capabilities() {
    let (f, devs) = scan_sample(true);
    let root = std::fs::canonicalize(f.sys()).unwrap();
    let cap = |name: &str| {
        let x = devs[name].to_xml();
        let at = x.find("  <capability").unwrap();
        x[at..].to_owned()
    };
    assert_eq!(
        cap("net_eth0_52_54_00_12_34_56"),
        "  <capability type='net'>\n    <interface>eth0</interface>\n    <address>52:54:00:12:34:56</address>\n    <link speed='1000' state='up'/>\n    <capability type='80203'/>\n  </capability>\n</device>\n"
    );
    assert!(cap("net_lo_00_00_00_00_00_00").contains("<link state='unknown'/>"));
    assert_eq!(
        cap("usb_1_1"),
        "  <capability type='usb_device'>\n    <bus>1</bus>\n    <device>2</device>\n    <product id='0xc52b'>Unifying Receiver</product>\n    <vendor id='0x046d'>Logitech, Inc.</vendor>\n  </capability>\n</device>\n"
    );
    assert!(
        cap("usb_usb1").contains("<product id='0x0002'>EHCI Host Controller</product>\n    <vendor id='0x1d6b'>Linux 6.1.0 ehci_hcd</vendor>")
    );
    assert_eq!(
        cap("usb_1_1_1_0"),
        "  <capability type='usb'>\n    <number>0</number>\n    <class>3</class>\n    <subclass>1</subclass>\n    <protocol>2</protocol>\n  </capability>\n</device>\n"
    );
    assert_eq!(
        cap("scsi_host0"),
        "  <capability type='scsi_host'>\n    <host>0</host>\n    <unique_id>1</unique_id>\n  </capability>\n</device>\n"
    );
    assert!(cap("scsi_target0_0_0").contains("<target>target0:0:0</target>"));
    assert!(cap("scsi_0_0_0_0").contains(
        "<host>0</host>\n    <bus>0</bus>\n    <target>0</target>\n    <lun>0</lun>\n    <type>disk</type>\n"
    ));
    assert!(cap("scsi_generic_sg0").contains("<char>/dev/sg0</char>"));
    assert!(cap("drm_renderD128").contains("<type>render</type>"));
    assert_eq!(
        devs["block_sda_QEMU_HARDDISK_QM00001"].to_xml(),
        format!(
            "<device>\n  <name>block_sda_QEMU_HARDDISK_QM00001</name>\n  <path>{0}/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda</path>\n  <devnode type='dev'>/dev/sda</devnode>\n  <devnode type='link'>/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001</devnode>\n  <devnode type='link'>/dev/disk/by-path/pci-0000:00:1f.2-ata-1</devnode>\n  <parent>scsi_0_0_0_0</parent>\n  <capability type='storage'>\n    <block>/dev/sda</block>\n    <bus>ata</bus>\n    <drive_type>disk</drive_type>\n    <model>QEMU HARDDISK</model>\n    <vendor>ATA</vendor>\n    <serial>QEMU_HARDDISK_QM00001</serial>\n    <size>1073741824</size>\n    <logical_block_size>512</logical_block_size>\n    <num_blocks>2097152</num_blocks>\n  </capability>\n</device>\n",
            root.display()
        )
    );
}

#[test]
fn storage_without_udev_database_is_typed_from_sysfs_or_dropped() {
    let f = sample();
    std::fs::remove_file(f.dir.path().join("udev/b8:0")).unwrap();
    let devs = scan(&f.host(true));
    let sda = devs
        .iter()
        .find(|d| d.cap.cap_type() == CapType::Storage)
        .unwrap();
    assert_eq!(sda.name, "block_sda", "no serial without udev");
    // A disk whose kind nothing tells (a loop device) is not a node device.
    f.device(
        "virtual/block/loop0",
        "block",
        false,
        "MAJOR=7\nMINOR=0\nDEVNAME=loop0\nDEVTYPE=disk\n",
        &[("size", "0")],
    );
    let names: Vec<String> = scan(&f.host(true)).into_iter().map(|d| d.name).collect();
    assert!(!names.iter().any(|n| n.starts_with("block_loop")), "{names:?}");
}

#[test]
fn reread_sees_current_state_and_gone_devices() {
    let (f, devs) = scan_sample(true);
    let host = f.host(true);
    let eth = &devs["net_eth0_52_54_00_12_34_56"];
    f.write(
        "devices/pci0000:00/0000:00:1c.0/0000:01:00.0/net/eth0/operstate",
        "down\n",
    );
    let fresh = reread(&host, eth).unwrap();
    assert!(
        fresh.to_xml().contains("<link state='down'/>"),
        "no speed while down"
    );
    assert_eq!(fresh.parent.as_deref(), Some("pci_0000_01_00_0"));
    std::fs::remove_dir_all(f.sys().join("devices/pci0000:00/0000:00:1c.0/0000:01:00.0/net")).unwrap();
    assert_eq!(reread(&host, eth), None);
}

#[test]
fn computer_from_dmi_or_zero_uuid_without_it() {
    let f = sample();
    let fallback = [7u8; 16];
    let xml = computer(&f.host(true), fallback).to_xml();
    assert_eq!(
        xml,
        "<device>\n  <name>computer</name>\n  <capability type='system'>\n    <hardware>\n      <uuid>00000000-0000-0000-0000-000000000000</uuid>\n    </hardware>\n    <firmware>\n    </firmware>\n  </capability>\n</device>\n"
    );
    let dmi = "devices/virtual/dmi/id";
    for (k, v) in [
        ("product_name", "Standard PC (Q35 + ICH9, 2009)"),
        ("sys_vendor", "QEMU"),
        ("product_version", "pc-q35-7.2"),
        ("bios_vendor", "SeaBIOS"),
        ("bios_version", "1.16.2-debian-1.16.2-1"),
        ("bios_date", "04/01/2014"),
    ] {
        f.write(&format!("{dmi}/{k}"), &format!("{v}\n"));
    }
    let xml = computer(&f.host(true), fallback).to_xml();
    assert!(
        xml.contains("    <product>Standard PC (Q35 + ICH9, 2009)</product>\n    <hardware>\n      <vendor>QEMU</vendor>\n      <version>pc-q35-7.2</version>\n      <uuid>07070707-0707-0707-0707-070707070707</uuid>\n    </hardware>\n    <firmware>\n      <vendor>SeaBIOS</vendor>\n      <version>1.16.2-debian-1.16.2-1</version>\n      <release_date>04/01/2014</release_date>\n    </firmware>\n"),
        "no readable product_uuid: the made-up one\n{xml}"
    );
    f.write(
        &format!("{dmi}/product_uuid"),
        "6a1b2c3d-0000-4000-8000-000000000001\n",
    );
    let xml = computer(&f.host(true), fallback).to_xml();
    assert!(
        xml.contains("<uuid>6a1b2c3d-0000-4000-8000-000000000001</uuid>"),
        "{xml}"
    );
}

#[test]
fn pci_ids_parse_skips_subsystems_and_classes() {
    let ids = pci::PciIds::parse(
        "8086  Intel Corporation\n\t1237  440FX - 82441FX PMC [Natoma]\n\t\t1af4 1100  Qemu virtual machine\n1af4  Red Hat, Inc.\n\t1041  Virtio 1.0 network device\nC 02  Network controller\n\t00  Ethernet controller\n",
    );
    assert_eq!(
        ids.names(0x8086, 0x1237),
        (
            Some("Intel Corporation".into()),
            Some("440FX - 82441FX PMC [Natoma]".into())
        )
    );
    assert_eq!(ids.names(0x1af4, 0x1100), (Some("Red Hat, Inc.".into()), None));
    assert_eq!(ids.names(0x02, 0x00), (None, None));
}

#[test]
fn parse_u32_is_libvirts_strtoul() {
    use super::entry::parse_u32;
    assert_eq!(parse_u32("0x8086", 16), Some(0x8086));
    assert_eq!(parse_u32("046d", 16), Some(0x46d));
    assert_eq!(parse_u32("-1", 10), Some(u32::MAX));
    assert_eq!(parse_u32("001", 10), Some(1));
    assert_eq!(parse_u32("x", 10), None);
    assert_eq!(parse_u32("4294967296", 10), None);
}
