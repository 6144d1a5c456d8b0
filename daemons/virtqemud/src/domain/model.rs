//! The part of libvirt's domain definition that modvirt models. Sizes are
//! in KiB, as libvirt keeps them. Every field holds its value after
//! libvirt's defaults have been applied, so formatting prints it as is.

use modvirt_xml::MacAddr;

use modvirt_xml::xml_enum;

xml_enum! {
    /// `<domain type>`: the accelerator.
    VirtType { Qemu => "qemu", Kvm => "kvm" }
}

xml_enum! {
    /// `<vcpu placement>`.
    VcpuPlacement { Static => "static", Auto => "auto" }
}

xml_enum! {
    /// `<os><boot dev>`.
    BootDevice { Fd => "fd", Cdrom => "cdrom", Hd => "hd", Network => "network" }
}

xml_enum! {
    /// `<cpu mode>`.
    CpuMode {
        Custom => "custom",
        HostModel => "host-model",
        HostPassthrough => "host-passthrough",
        Maximum => "maximum",
    }
}

xml_enum! {
    /// `<cpu match>` (custom mode only).
    CpuMatch { Minimum => "minimum", Exact => "exact", Strict => "strict" }
}

xml_enum! {
    /// `<cpu check>`.
    CpuCheck { None => "none", Partial => "partial", Full => "full" }
}

xml_enum! {
    /// `<cpu><model fallback>`.
    CpuFallback { Allow => "allow", Forbid => "forbid" }
}

xml_enum! {
    /// `<cpu><feature policy>`.
    CpuFeaturePolicy {
        Force => "force",
        Require => "require",
        Optional => "optional",
        Disable => "disable",
        Forbid => "forbid",
    }
}

xml_enum! {
    /// `<clock basis>` for `offset='variable'`.
    ClockBasis { Utc => "utc", Localtime => "localtime" }
}

xml_enum! {
    /// `<on_poweroff>`, `<on_reboot>`, `<on_crash>` (the `coredump-*`
    /// actions only for `on_crash`).
    LifecycleAction {
        Destroy => "destroy",
        Restart => "restart",
        RenameRestart => "rename-restart",
        Preserve => "preserve",
        CoredumpDestroy => "coredump-destroy",
        CoredumpRestart => "coredump-restart",
    }
}

xml_enum! {
    /// `<disk type>`: what backs the disk.
    DiskType { File => "file", Block => "block", Dir => "dir" }
}

xml_enum! {
    /// `<disk device>`: what the guest sees.
    DiskDevice { Disk => "disk", Cdrom => "cdrom", Floppy => "floppy", Lun => "lun" }
}

xml_enum! {
    /// `<disk><target bus>`.
    DiskBus {
        Ide => "ide",
        Fdc => "fdc",
        Scsi => "scsi",
        Virtio => "virtio",
        Usb => "usb",
        Sata => "sata",
    }
}

xml_enum! {
    /// `<disk><driver type>`: the image format.
    DiskFormat {
        Raw => "raw",
        Qcow2 => "qcow2",
        Qcow => "qcow",
        Qed => "qed",
        Vmdk => "vmdk",
        Vdi => "vdi",
        Vpc => "vpc",
        Vhdx => "vhdx",
        Iso => "iso",
        Dmg => "dmg",
        Cloop => "cloop",
        Bochs => "bochs",
        Luks => "luks",
    }
}

xml_enum! {
    /// `<interface type>`.
    InterfaceType { User => "user", Network => "network", Bridge => "bridge" }
}

xml_enum! {
    /// `<serial type>` / `<console type>`: the host side.
    CharType { Pty => "pty" }
}

xml_enum! {
    /// `<graphics type>`.
    GraphicsType { Vnc => "vnc" }
}

xml_enum! {
    /// `<video><model type>`.
    VideoModel {
        Vga => "vga",
        Cirrus => "cirrus",
        Vmvga => "vmvga",
        Xen => "xen",
        Vbox => "vbox",
        Qxl => "qxl",
        Parallels => "parallels",
        Virtio => "virtio",
        Gop => "gop",
        None => "none",
        Bochs => "bochs",
        Ramfb => "ramfb",
    }
}

/// A domain definition: what `virsh define` stores and `virsh dumpxml` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDef {
    pub virt_type: VirtType,
    pub name: String,
    pub uuid: [u8; 16],
    pub title: Option<String>,
    pub description: Option<String>,
    /// `<memory>`: the boot-time maximum, KiB.
    pub memory_kib: u64,
    /// `<currentMemory>`: the balloon target, KiB (never above `memory_kib`).
    pub current_memory_kib: u64,
    pub vcpu: Vcpu,
    pub os: Os,
    pub features: Features,
    /// `None` only on architectures where libvirt adds no default CPU.
    pub cpu: Option<Cpu>,
    pub clock: Clock,
    pub on_poweroff: LifecycleAction,
    pub on_reboot: LifecycleAction,
    pub on_crash: LifecycleAction,
    pub devices: Devices,
}

/// `<vcpu placement current>max</vcpu>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vcpu {
    pub max: u32,
    /// Online at boot; equal to `max` unless `current` was given.
    pub current: u32,
    pub placement: VcpuPlacement,
}

/// `<os>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Os {
    /// `<type>`: always `hvm` for QEMU.
    pub os_type: String,
    pub arch: String,
    pub machine: String,
    /// In boot order; `[hd]` when none was given.
    pub boot: Vec<BootDevice>,
}

/// `<features>`: the ones modelled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    pub acpi: bool,
    pub apic: bool,
}

/// `<cpu>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    pub mode: CpuMode,
    /// Printed for `custom` mode only.
    pub cpu_match: Option<CpuMatch>,
    pub check: Option<CpuCheck>,
    /// `migratable` for `host-passthrough` / `maximum`.
    pub migratable: Option<bool>,
    pub model: Option<CpuModel>,
    pub features: Vec<CpuFeature>,
}

/// `<cpu><model fallback>name</model>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuModel {
    pub name: String,
    pub fallback: CpuFallback,
}

/// `<cpu><feature policy name/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuFeature {
    pub policy: CpuFeaturePolicy,
    pub name: String,
}

/// `<clock offset>` (timers are not modelled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clock {
    Utc,
    Localtime,
    Timezone(String),
    Variable { adjustment: i64, basis: ClockBasis },
}

/// `<devices>`: the ones modelled, each kind in libvirt's output order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Devices {
    pub emulator: Option<String>,
    pub disks: Vec<Disk>,
    pub interfaces: Vec<Interface>,
    pub serials: Vec<CharDevice>,
    pub consoles: Vec<CharDevice>,
    pub graphics: Vec<Graphics>,
    pub videos: Vec<Video>,
}

/// `<disk>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub disk_type: DiskType,
    pub device: DiskDevice,
    /// `<driver name>`: `qemu`.
    pub driver_name: String,
    pub format: DiskFormat,
    /// The file, block device or directory; `None` for an empty drive.
    pub source: Option<String>,
    pub target_dev: String,
    pub target_bus: DiskBus,
    pub readonly: bool,
}

/// `<interface>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub iface_type: InterfaceType,
    pub mac: MacAddr,
    /// The network name or bridge name; `None` for `user`.
    pub source: Option<String>,
    /// `type='network'` of a running guest: the network's bridge the
    /// guest is plugged into (`<source bridge>` of the live definition).
    pub bridge: Option<String>,
    /// `type='network'`: `<target dev>`, the host side of the interface —
    /// the tap device of a running guest, or a name the definition asks
    /// for (names starting with `vnet`, `macvtap` or `macvlan` are
    /// libvirt's own and never kept in an inactive definition).
    pub target_dev: Option<String>,
    /// `<model type>`, e.g. `virtio`; parsing fills in QEMU's default
    /// (`rtl8139` on x86, `virtio` elsewhere) when the XML names none.
    pub model: Option<String>,
}

/// Whether `name` is one libvirt makes up for a running guest's host
/// device (`vnet0`, `macvtap1`, `macvlan2`): such names are never part of
/// an inactive definition.
pub fn is_generated_ifname(name: &str) -> bool {
    ["vnet", "macvtap", "macvlan"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// `<serial>` or `<console>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharDevice {
    pub char_type: CharType,
    /// The pty path, known once the guest runs.
    pub source_path: Option<String>,
    /// `<target type>`: e.g. `isa-serial` for a serial, `serial` for a console.
    pub target_type: String,
    pub target_port: u32,
}

/// `<graphics type='vnc'>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graphics {
    pub graphics_type: GraphicsType,
    /// The fixed port, or (running, `autoport`) the one allocated.
    pub port: Option<u16>,
    pub autoport: bool,
    pub listen: Option<String>,
}

/// `<video><model/></video>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    pub model: VideoModel,
    pub vram_kib: Option<u32>,
    pub heads: Option<u32>,
    pub primary: bool,
}
