//! `<devices>` → [`Devices`]: the modelled devices with libvirt's
//! per-device defaults and the implicit devices libvirt adds (a console
//! for the first serial port, a video card for a graphics display).
//! Other devices (controllers, inputs, balloon, …) are skipped.

use super::DomainXmlError as E;
use super::model::*;
use super::parse::{Ctx, enum_attr, uint_attr, yes_no_attr};
use modvirt_xml::Element;
use modvirt_xml::{MacAddr, RandomSource};

const OTHER_DISK_TYPES: &[&str] = &["network", "volume", "nvme", "vhostuser", "vhostvdpa"];
const OTHER_DISK_BUSES: &[&str] = &["xen", "uml", "sd", "none"];
const OTHER_IFACE_TYPES: &[&str] = &[
    "ethernet",
    "vhostuser",
    "server",
    "client",
    "mcast",
    "internal",
    "direct",
    "hostdev",
    "udp",
    "vdpa",
    "null",
    "vds",
];
const OTHER_CHAR_TYPES: &[&str] = &[
    "null",
    "vc",
    "dev",
    "file",
    "pipe",
    "stdio",
    "udp",
    "tcp",
    "unix",
    "spicevmc",
    "spiceport",
    "nmdm",
    "qemu-vdagent",
    "dbus",
];
const OTHER_GRAPHICS_TYPES: &[&str] = &["sdl", "rdp", "desktop", "spice", "egl-headless", "dbus"];
const SERIAL_TARGETS: &[&str] = &[
    "isa-serial",
    "usb-serial",
    "pci-serial",
    "spapr-vio-serial",
    "system-serial",
    "sclp-serial",
    "isa-debug",
];
const CONSOLE_TARGETS: &[&str] = &["serial", "virtio", "xen", "lxc", "openvz", "sclp", "sclplm"];
/// Disk name prefixes libvirt knows (`virDiskNameParse`).
const DISK_PREFIXES: &[&str] = &["fd", "hd", "vd", "sd", "xvd", "ubd"];

pub(crate) fn parse_devices(el: &Element, ctx: Ctx<'_>, rng: &mut dyn RandomSource) -> Result<Devices, E> {
    let emulator = el.child_text("emulator").map(str::to_owned);
    let disks = el
        .children_named("disk")
        .map(parse_disk)
        .collect::<Result<Vec<_>, _>>()?;
    let mut interfaces = Vec::new();
    for iface in el.children_named("interface") {
        interfaces.push(parse_interface(iface, ctx, rng)?);
    }
    let serials = parse_chars(el, "serial", ctx)?;
    let mut consoles = parse_chars(el, "console", ctx)?;
    add_implicit_console(&serials, &mut consoles);
    let graphics = el
        .children_named("graphics")
        .map(parse_graphics)
        .collect::<Result<Vec<_>, _>>()?;
    let mut videos = el
        .children_named("video")
        .map(|v| parse_video(v, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    finish_videos(&mut videos, !graphics.is_empty(), ctx)?;
    Ok(Devices {
        emulator,
        disks,
        interfaces,
        serials,
        consoles,
        graphics,
        videos,
    })
}

/// Whether `dev` is a disk name libvirt can turn into an index: a known
/// prefix, lower-case letters, then optional partition digits.
fn disk_name_ok(dev: &str) -> bool {
    let Some(rest) = DISK_PREFIXES.iter().find_map(|p| dev.strip_prefix(p)) else {
        return false;
    };
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    letters > 0 && rest.bytes().skip(letters).all(|b| b.is_ascii_digit())
}

fn parse_disk(el: &Element) -> Result<Disk, E> {
    let disk_type = match el.attr("type") {
        None => DiskType::File,
        Some(t) => match DiskType::from_xml(t) {
            Some(t) => t,
            None if OTHER_DISK_TYPES.contains(&t) => {
                return Err(E::Unsupported(format!("disk type '{t}' is not supported")));
            }
            None => return Err(E::invalid_attr("disk", "type", t)),
        },
    };
    let device = enum_attr(el, "device", DiskDevice::from_xml)?.unwrap_or(DiskDevice::Disk);
    if device == DiskDevice::Lun && disk_type != DiskType::Block {
        return Err(E::Invalid(
            "disk device='lun' is only valid for block type disk source".into(),
        ));
    }
    let source_attr = match disk_type {
        DiskType::File => "file",
        DiskType::Block => "dev",
        DiskType::Dir => "dir",
    };
    let source = el
        .child("source")
        .and_then(|s| s.attr(source_attr))
        .filter(|s| !s.is_empty());
    let source = source.map(str::to_owned);

    let target = el.child("target");
    let target_dev = target.and_then(|t| t.attr("dev")).filter(|d| !d.is_empty());
    let Some(target_dev) = target_dev else {
        return Err(E::MissingTarget { disk_source: source });
    };
    if !disk_name_ok(target_dev) {
        return Err(E::Invalid(format!(
            "Unknown disk name '{target_dev}' and no address specified"
        )));
    }
    let target_bus = match target.and_then(|t| t.attr("bus")) {
        Some(b) => match DiskBus::from_xml(b) {
            Some(bus) => bus,
            None if OTHER_DISK_BUSES.contains(&b) => {
                return Err(E::Unsupported(format!(
                    "disk bus '{b}' is not supported by the QEMU driver"
                )));
            }
            None => return Err(E::Unsupported(format!("unknown disk bus type '{b}'"))),
        },
        None if device == DiskDevice::Floppy => DiskBus::Fdc,
        None if target_dev.starts_with("hd") => DiskBus::Ide,
        None if target_dev.starts_with("sd") => DiskBus::Scsi,
        None if target_dev.starts_with("vd") => DiskBus::Virtio,
        None if target_dev.starts_with("fd") => DiskBus::Fdc,
        None => {
            return Err(E::Unsupported(format!(
                "disk bus for '{target_dev}' is not supported by the QEMU driver"
            )));
        }
    };

    let driver = el.child("driver");
    let driver_name = match driver.and_then(|d| d.attr("name")) {
        None | Some("qemu") => "qemu".to_owned(),
        Some(other) => {
            return Err(E::Unsupported(format!(
                "unsupported driver name '{other}' for disk '{target_dev}'"
            )));
        }
    };
    let format = match driver.and_then(|d| d.attr("type")) {
        None => DiskFormat::Raw,
        Some(t) => DiskFormat::from_xml(t)
            .ok_or_else(|| E::Internal(format!("unknown driver format value '{t}'")))?,
    };
    if source.is_none() && matches!(device, DiskDevice::Disk | DiskDevice::Lun) {
        return Err(E::MissingSource {
            target: target_dev.to_owned(),
        });
    }
    // libvirt lists a CD-ROM as read-only whatever the XML says.
    let readonly = el.child("readonly").is_some() || device == DiskDevice::Cdrom;
    Ok(Disk {
        disk_type,
        device,
        driver_name,
        format,
        source,
        target_dev: target_dev.to_owned(),
        target_bus,
        readonly,
    })
}

fn parse_interface(el: &Element, ctx: Ctx<'_>, rng: &mut dyn RandomSource) -> Result<Interface, E> {
    let iface_type = match el.attr("type") {
        None => InterfaceType::User,
        Some(t) => match InterfaceType::from_xml(t) {
            Some(t) => t,
            None if OTHER_IFACE_TYPES.contains(&t) => {
                return Err(E::Unsupported(format!("interface type '{t}' is not supported")));
            }
            None => return Err(E::invalid_attr("interface", "type", t)),
        },
    };
    let mac = match el.child("mac").and_then(|m| m.attr("address")) {
        Some(text) => MacAddr::parse(text)?,
        None => MacAddr::generate(rng),
    };
    let source = match iface_type {
        InterfaceType::User => None,
        InterfaceType::Network | InterfaceType::Bridge => {
            let kind = iface_type.as_str();
            let name = el
                .child("source")
                .and_then(|s| s.attr(kind))
                .filter(|n| !n.is_empty());
            let name = name.ok_or_else(|| {
                E::Invalid(format!(
                    "No <source> '{kind}' attribute specified with <interface type='{kind}'/>"
                ))
            })?;
            Some(name.to_owned())
        }
    };
    let model = match el
        .child("model")
        .and_then(|m| m.attr("type"))
        .filter(|m| !m.is_empty())
    {
        Some(m)
            if m.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            m.to_owned()
        }
        Some(_) => {
            return Err(E::InvalidArgument(
                "Model name contains invalid characters".into(),
            ));
        }
        // QEMU's default NIC: what libvirt picks when the XML names none.
        None if ctx.is_x86() => "rtl8139".to_owned(),
        None => "virtio".to_owned(),
    };
    // What a running guest's definition says of its host side.
    let (bridge, target_dev) = match iface_type {
        InterfaceType::Network => {
            let bridge = el.child("source").and_then(|s| s.attr("bridge"));
            let dev = el.child("target").and_then(|t| t.attr("dev"));
            let owned = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(str::to_owned);
            (owned(bridge), owned(dev))
        }
        InterfaceType::User | InterfaceType::Bridge => (None, None),
    };
    Ok(Interface {
        iface_type,
        mac,
        source,
        bridge,
        target_dev,
        model: Some(model),
    })
}

/// The default `<target type>` of a serial port on an architecture.
fn default_serial_target(ctx: Ctx<'_>) -> &'static str {
    match ctx.arch {
        "i686" | "x86_64" => "isa-serial",
        "ppc64" | "ppc64le" => "spapr-vio-serial",
        "s390" | "s390x" => "sclp-serial",
        _ => "system-serial",
    }
}

/// All `<serial>` or `<console>` elements, ports assigned as libvirt does
/// (a port left out gets one more than the highest so far).
fn parse_chars(devices: &Element, kind: &str, ctx: Ctx<'_>) -> Result<Vec<CharDevice>, E> {
    let (targets, default_target) = match kind {
        "serial" => (SERIAL_TARGETS, default_serial_target(ctx)),
        _ => (CONSOLE_TARGETS, "serial"),
    };
    let mut parsed = Vec::new();
    for el in devices.children_named(kind) {
        let char_type = match el.attr("type") {
            None => CharType::Pty,
            Some(t) => match CharType::from_xml(t) {
                Some(t) => t,
                None if OTHER_CHAR_TYPES.contains(&t) => {
                    return Err(E::Unsupported(format!(
                        "character device type '{t}' is not supported"
                    )));
                }
                None => {
                    return Err(E::Invalid(format!(
                        "unknown type presented to host for character device: {t}"
                    )));
                }
            },
        };
        let source_path = el
            .child("source")
            .and_then(|s| s.attr("path"))
            .filter(|p| !p.is_empty());
        let target = el.child("target");
        let target_type = match target.and_then(|t| t.attr("type")) {
            None => default_target,
            Some(t) if targets.contains(&t) => t,
            Some(t) => {
                return Err(E::Invalid(format!(
                    "unknown target type '{t}' specified for character device"
                )));
            }
        };
        let port = match target {
            Some(t) => uint_attr(t, "port")?,
            None => None,
        };
        let dev = CharDevice {
            char_type,
            source_path: source_path.map(str::to_owned),
            target_type: target_type.to_owned(),
            target_port: 0,
        };
        parsed.push((dev, port));
    }
    for i in 0..parsed.len() {
        if parsed[i].1.is_none() {
            let highest = parsed.iter().filter_map(|(_, p)| *p).max();
            parsed[i].1 = Some(highest.map_or(0, |p| p.saturating_add(1)));
        }
    }
    Ok(parsed
        .into_iter()
        .map(|(dev, port)| CharDevice {
            target_port: port.unwrap_or(0),
            ..dev
        })
        .collect())
}

/// libvirt shows the first serial port also as the console: a console is
/// added when there is none, and a serial-type console shares its pty.
fn add_implicit_console(serials: &[CharDevice], consoles: &mut Vec<CharDevice>) {
    let Some(serial) = serials.first() else { return };
    match consoles.first_mut() {
        None => consoles.push(CharDevice {
            char_type: serial.char_type,
            source_path: serial.source_path.clone(),
            target_type: "serial".to_owned(),
            target_port: serial.target_port,
        }),
        Some(console) if console.target_type == "serial" => {
            console.source_path.clone_from(&serial.source_path);
        }
        Some(_) => {}
    }
}

fn parse_graphics(el: &Element) -> Result<Graphics, E> {
    let value = el
        .attr("type")
        .ok_or_else(|| E::missing_attr("graphics", "type"))?;
    let graphics_type = match GraphicsType::from_xml(value) {
        Some(t) => t,
        None if OTHER_GRAPHICS_TYPES.contains(&value) => {
            return Err(E::Unsupported(format!(
                "graphics type '{value}' is not supported"
            )));
        }
        None => return Err(E::invalid_attr("graphics", "type", value)),
    };
    let (mut port, mut autoport) = match el.attr("port") {
        None => (None, true),
        Some(p) => match p.trim().parse::<i32>() {
            Ok(-1) => (None, true),
            Ok(n) => (
                Some(u16::try_from(n).map_err(|_| E::Invalid(format!("cannot parse vnc port {p}")))?),
                false,
            ),
            Err(_) => return Err(E::Invalid(format!("cannot parse vnc port {p}"))),
        },
    };
    if let Some(a) = yes_no_attr(el, "autoport")? {
        autoport = a;
    }
    if autoport || port == Some(0) {
        // An inactive definition keeps no port that is allocated at start.
        port = None;
    }
    let first_listen = el
        .children_named("listen")
        .find(|l| l.attr("type").is_none_or(|t| t == "address"));
    let child_address = first_listen
        .and_then(|l| l.attr("address"))
        .filter(|a| !a.is_empty());
    let listen = match (el.attr("listen").filter(|a| !a.is_empty()), child_address) {
        (Some(a), Some(b)) if a != b => {
            return Err(E::Invalid(format!(
                "graphics 'listen' attribute '{a}' must match 'address' attribute of first listen element (found '{b}')"
            )));
        }
        (a, b) => a.or(b).map(str::to_owned),
    };
    Ok(Graphics {
        graphics_type,
        port,
        autoport,
        listen,
    })
}

/// Video RAM libvirt gives a model when the XML names none, KiB.
fn default_vram(model: VideoModel) -> Option<u32> {
    match model {
        VideoModel::Vga | VideoModel::Cirrus | VideoModel::Vmvga | VideoModel::Bochs => Some(16384),
        VideoModel::Qxl => Some(65536),
        VideoModel::Vbox => Some(8192),
        VideoModel::Xen => Some(4096),
        _ => None,
    }
}

fn default_video(ctx: Ctx<'_>) -> Video {
    let model = if ctx.is_x86() {
        VideoModel::Vga
    } else {
        VideoModel::Virtio
    };
    Video {
        model,
        vram_kib: default_vram(model),
        heads: Some(1),
        primary: false,
    }
}

fn parse_video(el: &Element, ctx: Ctx<'_>) -> Result<Video, E> {
    let Some(m) = el.child("model") else {
        return Ok(default_video(ctx));
    };
    let model = match m.attr("type") {
        None => {
            return Ok(Video {
                primary: yes_no_attr(m, "primary")?.unwrap_or(false),
                ..default_video(ctx)
            });
        }
        Some(t) => VideoModel::from_xml(t).ok_or_else(|| E::Invalid(format!("unknown video model '{t}'")))?,
    };
    let number = |attr: &str, what: &str| -> Result<Option<u32>, E> {
        match m.attr(attr) {
            None => Ok(None),
            Some(v) => super::parse::parse_unsigned(v)
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| E::Invalid(format!("cannot parse video {what} '{v}'"))),
        }
    };
    let vram = number("vram", "ram")?;
    let heads = number("heads", "heads")?;
    let primary = yes_no_attr(m, "primary")?.unwrap_or(false);
    if model == VideoModel::None {
        return Ok(Video {
            model,
            vram_kib: None,
            heads: None,
            primary,
        });
    }
    let vram_kib = vram.filter(|&v| v > 0).or_else(|| default_vram(model));
    let heads = Some(heads.filter(|&h| h > 0).unwrap_or(1));
    Ok(Video {
        model,
        vram_kib,
        heads,
        primary,
    })
}

/// The primary card first and marked, `none` alone, and a default card
/// when there is a display but no card.
fn finish_videos(videos: &mut Vec<Video>, has_graphics: bool, ctx: Ctx<'_>) -> Result<(), E> {
    if videos.is_empty() && has_graphics {
        videos.push(default_video(ctx));
    }
    if videos.len() > 1 && videos.iter().any(|v| v.model == VideoModel::None) {
        return Err(E::Unsupported(
            "a 'none' video type must be the only video device defined for the domain".into(),
        ));
    }
    if videos.iter().filter(|v| v.primary).count() > 1 {
        return Err(E::Unsupported(
            "Only one primary video device is supported".into(),
        ));
    }
    if let Some(i) = videos.iter().position(|v| v.primary) {
        let primary = videos.remove(i);
        videos.insert(0, primary);
    }
    if let Some(first) = videos.first_mut() {
        first.primary = first.model != VideoModel::None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_names() {
        for ok in ["vda", "vdz", "vdaa", "sda1", "hdc", "fda", "xvda", "ubda"] {
            assert!(disk_name_ok(ok), "{ok}");
        }
        for bad in ["", "vd", "vd1", "nvme0n1", "vdA", "vda1b", "da"] {
            assert!(!disk_name_ok(bad), "{bad}");
        }
    }
}
