//! The `<device>` XML of `virNodeDeviceGetXMLDesc`, element for element
//! as libvirt 9.0's `virNodeDeviceDefFormat` writes it (two-space indent,
//! optional elements left out, `'` quoting).

use super::{
    Capability, Device, LinkInfo, NetCap, PciAddr, PciCap, PcieLink, ScsiCap, ScsiHostCap, StorageCap,
    SystemCap, UsbDeviceCap, UsbInterfaceCap,
};
use modvirt_xml::{escape, format_uuid};

/// Lines at an indentation.
struct Out {
    text: String,
    indent: usize,
}

impl Out {
    fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.text.push_str("  ");
        }
        self.text.push_str(s);
        self.text.push('\n');
    }

    fn open(&mut self, s: &str) {
        self.line(s);
        self.indent += 1;
    }

    fn close(&mut self, s: &str) {
        self.indent = self.indent.saturating_sub(1);
        self.line(s);
    }

    /// `<tag>text</tag>` when there is a text.
    fn text_elem(&mut self, tag: &str, text: Option<&str>) {
        if let Some(t) = text {
            self.line(&format!("<{tag}>{}</{tag}>", escape(t)));
        }
    }
}

impl Device {
    /// The XML `virsh nodedev-dumpxml` prints.
    pub fn to_xml(&self) -> String {
        let mut o = Out {
            text: String::new(),
            indent: 0,
        };
        o.open("<device>");
        o.text_elem("name", Some(&self.name));
        let path = self.sysfs_path.as_ref().map(|p| p.display().to_string());
        o.text_elem("path", path.as_deref());
        if let Some(node) = &self.devnode {
            o.line(&format!("<devnode type='dev'>{}</devnode>", escape(node)));
        }
        for link in &self.devlinks {
            o.line(&format!("<devnode type='link'>{}</devnode>", escape(link)));
        }
        o.text_elem("parent", self.parent.as_deref());
        if let Some(driver) = &self.driver {
            o.open("<driver>");
            o.text_elem("name", Some(driver));
            o.close("</driver>");
        }
        o.open(&format!("<capability type='{}'>", self.cap.cap_type().name()));
        match &self.cap {
            Capability::System(s) => system(&mut o, s),
            Capability::Pci(p) => pci(&mut o, p),
            Capability::UsbDevice(u) => usb_device(&mut o, u),
            Capability::UsbInterface(u) => usb_interface(&mut o, u),
            Capability::Net(n) => net(&mut o, n),
            Capability::ScsiHost(h) => scsi_host(&mut o, h),
            Capability::ScsiTarget(t) => o.text_elem("target", Some(t)),
            Capability::Scsi(s) => scsi(&mut o, s),
            Capability::Storage(s) => storage(&mut o, s),
            Capability::ScsiGeneric(c) => o.text_elem("char", Some(c)),
            Capability::Drm(k) => o.text_elem("type", Some(k.name())),
        }
        o.close("</capability>");
        o.close("</device>");
        o.text
    }
}

fn system(o: &mut Out, s: &SystemCap) {
    o.text_elem("product", s.product_name.as_deref());
    o.open("<hardware>");
    o.text_elem("vendor", s.hw_vendor.as_deref());
    o.text_elem("version", s.hw_version.as_deref());
    o.text_elem("serial", s.hw_serial.as_deref());
    o.line(&format!("<uuid>{}</uuid>", format_uuid(&s.hw_uuid)));
    o.close("</hardware>");
    o.open("<firmware>");
    o.text_elem("vendor", s.fw_vendor.as_deref());
    o.text_elem("version", s.fw_version.as_deref());
    o.text_elem("release_date", s.fw_release_date.as_deref());
    o.close("</firmware>");
}

fn address(a: &PciAddr) -> String {
    // `function='0x%d'`: libvirt's own spelling.
    format!(
        "<address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{}'/>",
        a.domain, a.bus, a.slot, a.function
    )
}

/// `product`/`vendor` with an id and an optional name; `empty` is how the
/// element closes without a name (`/>` for PCI, ` />` for USB).
fn id_elem(o: &mut Out, tag: &str, id: u32, name: Option<&str>, empty: &str) {
    match name {
        Some(n) => o.line(&format!("<{tag} id='0x{id:04x}'>{}</{tag}>", escape(n))),
        None => o.line(&format!("<{tag} id='0x{id:04x}'{empty}")),
    }
}

fn pcie_speed(code: u32) -> &'static str {
    match code {
        1 => "2.5",
        2 => "5",
        3 => "8",
        4 => "16",
        5 => "32",
        6 => "64",
        _ => "",
    }
}

fn pcie_link(o: &mut Out, validity: &str, l: &PcieLink) {
    let mut s = format!("<link validity='{validity}'");
    if let Some(port) = l.port {
        s.push_str(&format!(" port='{port}'"));
    }
    if l.speed != 0 {
        s.push_str(&format!(" speed='{}'", pcie_speed(l.speed)));
    }
    s.push_str(&format!(" width='{}'/>", l.width));
    o.line(&s);
}

fn pci(o: &mut Out, p: &PciCap) {
    if let Some(class) = p.class {
        o.line(&format!("<class>0x{class:06x}</class>"));
    }
    o.line(&format!("<domain>{}</domain>", p.addr.domain));
    o.line(&format!("<bus>{}</bus>", p.addr.bus));
    o.line(&format!("<slot>{}</slot>", p.addr.slot));
    o.line(&format!("<function>{}</function>", p.addr.function));
    id_elem(o, "product", p.product, p.product_name.as_deref(), "/>");
    id_elem(o, "vendor", p.vendor, p.vendor_name.as_deref(), "/>");
    if let Some(pf) = &p.phys_function {
        o.open("<capability type='phys_function'>");
        o.line(&address(pf));
        o.close("</capability>");
    }
    if let Some((max, vfs)) = &p.virt_functions {
        let mut open = String::from("<capability type='virt_functions'");
        if *max > 0 {
            open.push_str(&format!(" maxCount='{max}'"));
        }
        if vfs.is_empty() {
            o.line(&(open + "/>"));
        } else {
            o.open(&(open + ">"));
            for vf in vfs {
                o.line(&address(vf));
            }
            o.close("</capability>");
        }
    }
    if let Some(header) = p.header {
        o.line(&format!("<capability type='{header}'/>"));
    }
    if let Some((group, members)) = &p.iommu_group
        && !members.is_empty()
    {
        o.open(&format!("<iommuGroup number='{group}'>"));
        for m in members {
            o.line(&address(m));
        }
        o.close("</iommuGroup>");
    }
    if let Some(node) = p.numa_node {
        o.line(&format!("<numa node='{node}'/>"));
    }
    match &p.pci_express {
        Some(None) => o.line("<pci-express/>"),
        Some(Some((cap, sta))) => {
            o.open("<pci-express>");
            pcie_link(o, "cap", cap);
            pcie_link(o, "sta", sta);
            o.close("</pci-express>");
        }
        None => {}
    }
}

fn usb_device(o: &mut Out, u: &UsbDeviceCap) {
    o.line(&format!("<bus>{}</bus>", u.bus));
    o.line(&format!("<device>{}</device>", u.device));
    id_elem(o, "product", u.product, u.product_name.as_deref(), " />");
    id_elem(o, "vendor", u.vendor, u.vendor_name.as_deref(), " />");
}

fn usb_interface(o: &mut Out, u: &UsbInterfaceCap) {
    o.line(&format!("<number>{}</number>", u.number));
    o.line(&format!("<class>{}</class>", u.class));
    o.line(&format!("<subclass>{}</subclass>", u.subclass));
    o.line(&format!("<protocol>{}</protocol>", u.protocol));
}

/// `<link speed state/>` as `virInterfaceLinkFormat` writes it (nothing
/// when neither is known).
pub fn link_xml(l: &LinkInfo) -> Option<String> {
    if l.speed.is_none() && l.state.is_none() {
        return None;
    }
    let mut s = String::from("<link");
    if let Some(speed) = l.speed {
        s.push_str(&format!(" speed='{speed}'"));
    }
    if let Some(state) = &l.state {
        s.push_str(&format!(" state='{state}'"));
    }
    s.push_str("/>");
    Some(s)
}

fn net(o: &mut Out, n: &NetCap) {
    o.text_elem("interface", Some(&n.interface));
    o.text_elem("address", n.address.as_deref());
    if let Some(l) = link_xml(&n.link) {
        o.line(&l);
    }
    o.line(if n.wireless {
        "<capability type='80211'/>"
    } else {
        "<capability type='80203'/>"
    });
}

fn scsi_host(o: &mut Out, h: &ScsiHostCap) {
    o.line(&format!("<host>{}</host>", h.host));
    if let Some(id) = h.unique_id {
        o.line(&format!("<unique_id>{id}</unique_id>"));
    }
}

fn scsi(o: &mut Out, s: &ScsiCap) {
    o.line(&format!("<host>{}</host>", s.host));
    o.line(&format!("<bus>{}</bus>", s.bus));
    o.line(&format!("<target>{}</target>", s.target));
    o.line(&format!("<lun>{}</lun>", s.lun));
    o.text_elem("type", s.kind.as_deref());
}

fn storage(o: &mut Out, s: &StorageCap) {
    o.text_elem("block", Some(&s.block));
    o.text_elem("bus", s.bus.as_deref());
    o.text_elem("drive_type", s.drive_type.as_deref());
    o.text_elem("model", s.model.as_deref());
    o.text_elem("vendor", s.vendor.as_deref());
    o.text_elem("serial", s.serial.as_deref());
    let sizes = |o: &mut Out| {
        if s.logical_block_size > 0 {
            o.line(&format!(
                "<logical_block_size>{}</logical_block_size>",
                s.logical_block_size
            ));
        }
        if s.num_blocks > 0 {
            o.line(&format!("<num_blocks>{}</num_blocks>", s.num_blocks));
        }
    };
    match &s.removable {
        Some(r) => {
            o.open("<capability type='removable'>");
            o.line(&format!(
                "<media_available>{}</media_available>",
                u8::from(r.media_available)
            ));
            o.line(&format!("<media_size>{}</media_size>", r.media_size));
            o.text_elem("media_label", r.media_label.as_deref());
            sizes(o);
            o.close("</capability>");
        }
        None => {
            o.line(&format!("<size>{}</size>", s.size));
            sizes(o);
        }
    }
}
