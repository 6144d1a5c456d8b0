//! The `<device>` XML, element by element, for what a fake sysfs does not
//! show (see `sysfs::tests` for devices read from one).

#![allow(clippy::unwrap_used)] // tests: a failure is the assertion

use super::*;

fn dev(name: &str, cap: Capability) -> Device {
    Device {
        name: name.into(),
        sysfs_path: Some(PathBuf::from("/sys/devices/x")),
        devnode: None,
        devlinks: Vec::new(),
        parent: Some(COMPUTER.into()),
        driver: None,
        cap,
    }
}

fn body(d: &Device) -> String {
    let x = d.to_xml();
    let at = x.find("  <capability").unwrap();
    x[at..].to_owned()
}

#[test]
fn names_are_libvirts() {
    assert_eq!(
        device_name("net", "eth0", Some("52:54:00:12:34:56")),
        "net_eth0_52_54_00_12_34_56"
    );
    assert_eq!(device_name("usb", "1-1:1.0", None), "usb_1_1_1_0");
    assert_eq!(device_name("pci", "0000:00:1f.2", None), "pci_0000_00_1f_2");
    assert_eq!(
        device_name("block", "sda", Some("WDC WD10-EZEX")),
        "block_sda_WDC_WD10_EZEX"
    );
    for t in CapType::ALL {
        assert_eq!(CapType::from_name(t.name()), Some(t));
    }
    assert_eq!(CapType::from_name("fc_host"), None);
    assert_eq!(CapType::Net.list_flag(), 1 << 4);
    assert_eq!(CapType::Drm.list_flag(), 1 << 12);
}

#[test]
fn pci_functions_express_without_link_and_escaping() {
    let addr = PciAddr::parse("0000:3b:00.1").unwrap();
    let d = dev(
        "pci_0000_3b_00_1",
        Capability::Pci(Box::new(PciCap {
            class: Some(0x020000),
            addr,
            product: 0x1572,
            product_name: Some("X710 <10GbE> & SFP+".into()),
            vendor: 0x8086,
            vendor_name: None,
            phys_function: Some(PciAddr::parse("0000:3b:00.0").unwrap()),
            virt_functions: Some((0, Vec::new())),
            header: None,
            iommu_group: Some((3, Vec::new())),
            numa_node: None,
            pci_express: Some(None),
        })),
    );
    assert_eq!(
        body(&d),
        "  <capability type='pci'>\n    <class>0x020000</class>\n    <domain>0</domain>\n    <bus>59</bus>\n    <slot>0</slot>\n    <function>1</function>\n    <product id='0x1572'>X710 &lt;10GbE&gt; &amp; SFP+</product>\n    <vendor id='0x8086'/>\n    <capability type='phys_function'>\n      <address domain='0x0000' bus='0x3b' slot='0x00' function='0x0'/>\n    </capability>\n    <capability type='virt_functions'/>\n    <pci-express/>\n  </capability>\n</device>\n"
    );
}

#[test]
fn usb_without_names_wireless_net_and_optical_storage() {
    let u = dev(
        "usb_2_3",
        Capability::UsbDevice(UsbDeviceCap {
            bus: 2,
            device: 3,
            product: 0x1,
            product_name: None,
            vendor: 0xabcd,
            vendor_name: None,
        }),
    );
    assert!(body(&u).contains("    <product id='0x0001' />\n    <vendor id='0xabcd' />\n"));
    let n = dev(
        "net_wlan0",
        Capability::Net(NetCap {
            interface: "wlan0".into(),
            address: None,
            link: LinkInfo::default(),
            wireless: true,
        }),
    );
    assert_eq!(
        body(&n),
        "  <capability type='net'>\n    <interface>wlan0</interface>\n    <capability type='80211'/>\n  </capability>\n</device>\n"
    );
    let cd = dev(
        "block_sr0",
        Capability::Storage(StorageCap {
            block: "/dev/sr0".into(),
            bus: Some("ata".into()),
            drive_type: Some("cdrom".into()),
            logical_block_size: 2048,
            num_blocks: 4,
            removable: Some(Removable {
                media_available: true,
                media_size: 8192,
                media_label: Some("d1".into()),
            }),
            ..StorageCap::default()
        }),
    );
    assert_eq!(
        body(&cd),
        "  <capability type='storage'>\n    <block>/dev/sr0</block>\n    <bus>ata</bus>\n    <drive_type>cdrom</drive_type>\n    <capability type='removable'>\n      <media_available>1</media_available>\n      <media_size>8192</media_size>\n      <media_label>d1</media_label>\n      <logical_block_size>2048</logical_block_size>\n      <num_blocks>4</num_blocks>\n    </capability>\n  </capability>\n</device>\n"
    );
}

#[test]
fn header_nodes_parent_and_driver_order() {
    let mut d = dev("drm_card0", Capability::Drm(DrmKind::from_minor(0).unwrap()));
    d.devnode = Some("/dev/dri/card0".into());
    d.devlinks = vec!["/dev/dri/by-path/pci-0000:00:02.0-card".into()];
    d.driver = Some("bochs-drm".into());
    assert_eq!(
        d.to_xml(),
        "<device>\n  <name>drm_card0</name>\n  <path>/sys/devices/x</path>\n  <devnode type='dev'>/dev/dri/card0</devnode>\n  <devnode type='link'>/dev/dri/by-path/pci-0000:00:02.0-card</devnode>\n  <parent>computer</parent>\n  <driver>\n    <name>bochs-drm</name>\n  </driver>\n  <capability type='drm'>\n    <type>primary</type>\n  </capability>\n</device>\n"
    );
    assert_eq!(DrmKind::from_minor(64), Some(DrmKind::Control));
    assert_eq!(DrmKind::from_minor(200), None);
}

#[test]
fn only_the_computer_is_persistent_and_autostarted() {
    let c = dev(COMPUTER, Capability::System(SystemCap::default()));
    let n = dev("scsi_target0_0_0", Capability::ScsiTarget("target0:0:0".into()));
    assert!(c.active() && c.persistent() && c.autostart());
    assert!(n.active() && !n.persistent() && !n.autostart());
    assert_eq!(n.cap_types(), [CapType::ScsiTarget]);
}
