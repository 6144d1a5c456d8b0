//! [`DomainDef`] → XML, the way `virsh dumpxml` prints it: two-space
//! indent, single-quoted attributes, libvirt's element order, `&`, `<`,
//! `>`, `'` and `"` escaped in text and attributes alike.

use std::fmt::Display;

use super::model::*;
use modvirt_xml::{Attrs, XmlWriter, format_uuid};

/// How to format a definition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FormatOptions {
    /// The id of the running domain. When set, the output is the live
    /// definition: `id='…'` on `<domain>`, the allocated VNC port and the
    /// pty paths; when `None`, the inactive one.
    pub id: Option<i32>,
}

impl DomainDef {
    /// The definition as XML (see [`FormatOptions`]); parsing it gives
    /// back an equal definition.
    pub fn to_xml(&self, opts: &FormatOptions) -> String {
        let mut out = XmlWriter::new();
        match opts.id {
            Some(id) => out.open("domain", &[("type", &self.virt_type), ("id", &id)]),
            None => out.open("domain", &[("type", &self.virt_type)]),
        }
        out.text("name", &[], &self.name);
        out.text("uuid", &[], &format_uuid(&self.uuid));
        if let Some(title) = &self.title {
            out.text("title", &[], title);
        }
        if let Some(description) = &self.description {
            out.text("description", &[], description);
        }
        out.text("memory", &[("unit", &"KiB")], &self.memory_kib);
        out.text("currentMemory", &[("unit", &"KiB")], &self.current_memory_kib);
        if self.vcpu.current == self.vcpu.max {
            out.text("vcpu", &[("placement", &self.vcpu.placement)], &self.vcpu.max);
        } else {
            out.text(
                "vcpu",
                &[
                    ("placement", &self.vcpu.placement),
                    ("current", &self.vcpu.current),
                ],
                &self.vcpu.max,
            );
        }
        self.format_os(&mut out);
        if self.features.acpi || self.features.apic {
            out.open("features", &[]);
            if self.features.acpi {
                out.empty("acpi", &[]);
            }
            if self.features.apic {
                out.empty("apic", &[]);
            }
            out.close("features");
        }
        if let Some(cpu) = &self.cpu {
            format_cpu(&mut out, cpu);
        }
        match &self.clock {
            Clock::Utc => out.empty("clock", &[("offset", &"utc")]),
            Clock::Localtime => out.empty("clock", &[("offset", &"localtime")]),
            Clock::Timezone(tz) => out.empty("clock", &[("offset", &"timezone"), ("timezone", tz)]),
            Clock::Variable { adjustment, basis } => {
                out.empty(
                    "clock",
                    &[
                        ("offset", &"variable"),
                        ("adjustment", adjustment),
                        ("basis", basis),
                    ],
                );
            }
        }
        out.text("on_poweroff", &[], &self.on_poweroff);
        out.text("on_reboot", &[], &self.on_reboot);
        out.text("on_crash", &[], &self.on_crash);
        format_devices(&mut out, &self.devices, opts.id.is_some());
        out.close("domain");
        out.finish()
    }

    fn format_os(&self, out: &mut XmlWriter) {
        out.open("os", &[]);
        out.text(
            "type",
            &[("arch", &self.os.arch), ("machine", &self.os.machine)],
            &self.os.os_type,
        );
        for dev in &self.os.boot {
            out.empty("boot", &[("dev", dev)]);
        }
        out.close("os");
    }
}

fn format_cpu(out: &mut XmlWriter, cpu: &Cpu) {
    let migratable = cpu.migratable.map(|m| if m { "on" } else { "off" });
    let mut attrs: Vec<(&str, &dyn Display)> = vec![("mode", &cpu.mode)];
    if let Some(m) = &cpu.cpu_match {
        attrs.push(("match", m));
    }
    if let Some(c) = &cpu.check {
        attrs.push(("check", c));
    }
    if let Some(m) = &migratable {
        attrs.push(("migratable", m));
    }
    if cpu.model.is_none() && cpu.features.is_empty() {
        out.empty("cpu", &attrs);
        return;
    }
    out.open("cpu", &attrs);
    if let Some(model) = &cpu.model {
        out.text("model", &[("fallback", &model.fallback)], &model.name);
    }
    for f in &cpu.features {
        out.empty("feature", &[("policy", &f.policy), ("name", &f.name)]);
    }
    out.close("cpu");
}

/// The `<model name>` libvirt prints inside a serial port's target.
fn serial_model(target_type: &str) -> Option<&'static str> {
    match target_type {
        "isa-serial" => Some("isa-serial"),
        "usb-serial" => Some("usb-serial"),
        "pci-serial" => Some("pci-serial"),
        "spapr-vio-serial" => Some("spapr-vty"),
        "sclp-serial" => Some("sclpconsole"),
        "isa-debug" => Some("isa-debugcon"),
        _ => None,
    }
}

fn format_devices(out: &mut XmlWriter, devices: &Devices, live: bool) {
    out.open("devices", &[]);
    if let Some(emulator) = &devices.emulator {
        out.text("emulator", &[], emulator);
    }
    for disk in &devices.disks {
        format_disk(out, disk);
    }
    for iface in &devices.interfaces {
        out.open("interface", &[("type", &iface.iface_type)]);
        out.empty("mac", &[("address", &iface.mac)]);
        if let Some(source) = &iface.source {
            match iface.bridge.as_ref().filter(|_| live) {
                Some(bridge) => out.empty(
                    "source",
                    &[(iface.iface_type.as_str(), source), ("bridge", bridge)],
                ),
                None => out.empty("source", &[(iface.iface_type.as_str(), source)]),
            }
        }
        if let Some(dev) = iface
            .target_dev
            .as_ref()
            .filter(|dev| live || !is_generated_ifname(dev))
        {
            out.empty("target", &[("dev", dev)]);
        }
        if let Some(model) = &iface.model {
            out.empty("model", &[("type", model)]);
        }
        out.close("interface");
    }
    for serial in &devices.serials {
        out.open("serial", &[("type", &serial.char_type)]);
        format_char_source(out, serial, live);
        let target: Attrs<'_> = &[("type", &serial.target_type), ("port", &serial.target_port)];
        match serial_model(&serial.target_type) {
            Some(model) => {
                out.open("target", target);
                out.empty("model", &[("name", &model)]);
                out.close("target");
            }
            None => out.empty("target", target),
        }
        out.close("serial");
    }
    for console in &devices.consoles {
        let tty = console
            .source_path
            .as_ref()
            .filter(|_| live && console.target_type == "serial");
        match tty {
            Some(tty) => out.open("console", &[("type", &console.char_type), ("tty", tty)]),
            None => out.open("console", &[("type", &console.char_type)]),
        }
        format_char_source(out, console, live);
        out.empty(
            "target",
            &[("type", &console.target_type), ("port", &console.target_port)],
        );
        out.close("console");
    }
    for graphics in &devices.graphics {
        format_graphics(out, graphics, live);
    }
    for video in &devices.videos {
        let mut attrs: Vec<(&str, &dyn Display)> = vec![("type", &video.model)];
        if let Some(vram) = &video.vram_kib {
            attrs.push(("vram", vram));
        }
        if let Some(heads) = &video.heads {
            attrs.push(("heads", heads));
        }
        if video.primary {
            attrs.push(("primary", &"yes"));
        }
        out.open("video", &[]);
        out.empty("model", &attrs);
        out.close("video");
    }
    out.close("devices");
}

fn format_disk(out: &mut XmlWriter, disk: &Disk) {
    out.open("disk", &[("type", &disk.disk_type), ("device", &disk.device)]);
    out.empty("driver", &[("name", &disk.driver_name), ("type", &disk.format)]);
    if let Some(source) = &disk.source {
        let attr = match disk.disk_type {
            DiskType::File => "file",
            DiskType::Block => "dev",
            DiskType::Dir => "dir",
        };
        out.empty("source", &[(attr, source)]);
    }
    out.empty("target", &[("dev", &disk.target_dev), ("bus", &disk.target_bus)]);
    if disk.readonly {
        out.empty("readonly", &[]);
    }
    out.close("disk");
}

/// A pty's path is printed for the live definition only.
fn format_char_source(out: &mut XmlWriter, dev: &CharDevice, live: bool) {
    if let Some(path) = dev.source_path.as_ref().filter(|_| live) {
        out.empty("source", &[("path", path)]);
    }
}

fn format_graphics(out: &mut XmlWriter, g: &Graphics, live: bool) {
    let autoport = if g.autoport { "yes" } else { "no" };
    let mut attrs: Vec<(&str, &dyn Display)> = vec![("type", &g.graphics_type)];
    match &g.port {
        Some(port) if !g.autoport || live => attrs.push(("port", port)),
        _ if g.autoport => attrs.push(("port", &-1)),
        _ => {}
    }
    attrs.push(("autoport", &autoport));
    if let Some(listen) = &g.listen {
        attrs.push(("listen", listen));
    }
    out.open("graphics", &attrs);
    match &g.listen {
        Some(address) => out.empty("listen", &[("type", &"address"), ("address", address)]),
        None => out.empty("listen", &[("type", &"address")]),
    }
    out.close("graphics");
}
