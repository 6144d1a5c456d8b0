//! The QEMU command line for one guest, built from plain parameters
//! ([`LaunchSpec`]), not from the domain XML model: the driver maps a
//! definition onto a `LaunchSpec`, this module knows QEMU's option syntax.
//!
//! The shape follows what libvirt generates: `-S` (start paused; `cont` over
//! QMP runs the guest), `-nodefaults -no-user-config` (only the devices we
//! ask for), a QMP monitor on a unix socket that QEMU listens on
//! (`server=on,wait=off`), `-pidfile`, and `-drive if=none` + `-device`
//! pairs with libvirt's aliases (`drive-virtio-disk0` / `virtio-disk0`,
//! `hostnet0` / `net0`). QEMU is never asked to `-daemonize`: the process
//! module detaches it itself and keeps its stderr in the log file.
//!
//! QEMU option values are `key=value` lists separated by commas; a comma
//! inside a value is written twice ([`escape`]).

use std::fmt;
use std::path::{Path, PathBuf};

/// How the guest's CPUs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualization through `/dev/kvm`.
    Kvm,
    /// QEMU's binary translator: slow, works everywhere.
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// KVM when `/dev/kvm` can be opened read-write by this process, else TCG.
pub fn accel_available() -> Accel {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm");
    if kvm.is_ok() { Accel::Kvm } else { Accel::Tcg }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    Virtio,
    Sata,
    Ide,
    Scsi,
}

impl fmt::Display for DiskBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Sata => "sata",
            DiskBus::Ide => "ide",
            DiskBus::Scsi => "scsi",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// The image; `None` only for an empty CD-ROM drive.
    pub path: Option<PathBuf>,
    pub format: DiskFormat,
    pub bus: DiskBus,
    pub cdrom: bool,
    pub readonly: bool,
    /// The guest device name: `vda`, `hda`…`hdd`, `sda`…
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicKind {
    /// QEMU's user-mode network (slirp): no host setup needed.
    User,
    /// An existing tap device.
    Tap { ifname: String },
    /// A tap device QEMU's bridge helper attaches to a host bridge.
    Bridge { bridge: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    Virtio,
    E1000,
    E1000e,
    Rtl8139,
}

impl NicModel {
    fn device(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio-net-pci",
            NicModel::E1000 => "e1000",
            NicModel::E1000e => "e1000e",
            NicModel::Rtl8139 => "rtl8139",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    pub kind: NicKind,
    /// `52:54:00:xx:xx:xx`.
    pub mac: String,
    pub model: NicModel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VncPort {
    /// QEMU takes the first free port from 5900 (read it back with `query-vnc`).
    Auto,
    /// A TCP port, 5900 or above.
    Port(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VncSpec {
    pub port: VncPort,
    /// Address to listen on: `127.0.0.1`, `0.0.0.0`, `::1`…
    pub listen: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    Hd,
    Cdrom,
    Network,
    Floppy,
}

impl BootDevice {
    fn letter(self) -> char {
        match self {
            BootDevice::Floppy => 'a',
            BootDevice::Hd => 'c',
            BootDevice::Cdrom => 'd',
            BootDevice::Network => 'n',
        }
    }
}

impl std::str::FromStr for BootDevice {
    type Err = CmdlineError;
    /// libvirt's `<boot dev='…'/>` names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "hd" => BootDevice::Hd,
            "cdrom" => BootDevice::Cdrom,
            "network" => BootDevice::Network,
            "fd" => BootDevice::Floppy,
            _ => return Err(CmdlineError::Invalid(format!("unknown boot device '{s}'"))),
        })
    }
}

/// Everything needed to launch one guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    pub name: String,
    pub uuid: String,
    /// `pc`, `q35`, `pc-i440fx-7.2`, …
    pub machine: String,
    pub accel: Accel,
    pub memory_kib: u64,
    pub vcpus: u32,
    pub disks: Vec<DiskSpec>,
    pub nics: Vec<NicSpec>,
    pub vnc: Option<VncSpec>,
    /// A serial port on a host pty (its path is in `query-chardev`).
    pub serial_pty: bool,
    pub qmp_socket: PathBuf,
    pub pidfile: PathBuf,
    /// Legacy BIOS boot order; empty leaves QEMU's default.
    pub boot: Vec<BootDevice>,
    pub acpi: bool,
    /// Exit instead of rebooting (libvirt's `on_reboot=destroy`).
    pub no_reboot: bool,
}

/// Why a [`LaunchSpec`] cannot become a command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    #[error("invalid launch parameters: {0}")]
    Invalid(String),
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
}

impl LaunchSpec {
    /// A guest with no devices: machine `pc`, TCG, 64 MiB, one vCPU, ACPI.
    pub fn new(name: &str, uuid: &str, qmp_socket: &Path, pidfile: &Path) -> LaunchSpec {
        LaunchSpec {
            name: name.into(),
            uuid: uuid.into(),
            machine: "pc".into(),
            accel: Accel::Tcg,
            memory_kib: 64 * 1024,
            vcpus: 1,
            disks: Vec::new(),
            nics: Vec::new(),
            vnc: None,
            serial_pty: false,
            qmp_socket: qmp_socket.into(),
            pidfile: pidfile.into(),
            boot: Vec::new(),
            acpi: true,
            no_reboot: false,
        }
    }

    /// The arguments after the binary name.
    pub fn to_args(&self) -> Result<Vec<String>, CmdlineError> {
        self.validate()?;
        let mut a = Args::default();
        a.opt("-name", format!("guest={},debug-threads=on", escape(&self.name)));
        a.flag("-S");
        a.opt("-msg", "timestamp=on");
        let on_off = |b: bool| if b { "on" } else { "off" };
        a.opt(
            "-machine",
            format!("{},usb=off,acpi={}", escape(&self.machine), on_off(self.acpi)),
        );
        a.opt("-accel", self.accel.as_str());
        a.opt("-m", format!("size={}k", self.memory_kib));
        a.opt("-smp", self.vcpus.to_string());
        a.opt("-uuid", self.uuid.clone());
        a.flag("-no-user-config");
        a.flag("-nodefaults");
        a.opt(
            "-chardev",
            format!(
                "socket,id=charmonitor,path={},server=on,wait=off",
                escape_path(&self.qmp_socket)
            ),
        );
        a.opt("-mon", "chardev=charmonitor,id=monitor,mode=control");
        a.opt("-rtc", "base=utc");
        if self.no_reboot {
            a.flag("-no-reboot");
        }
        if !self.boot.is_empty() {
            let order: String = self.boot.iter().map(|b| b.letter()).collect();
            a.opt("-boot", format!("order={order}"));
        }
        a.opt("-pidfile", self.pidfile.to_string_lossy().into_owned());
        self.disk_args(&mut a)?;
        for (i, nic) in self.nics.iter().enumerate() {
            let netdev = match &nic.kind {
                NicKind::User => format!("user,id=hostnet{i}"),
                NicKind::Tap { ifname } => {
                    format!(
                        "tap,id=hostnet{i},ifname={},script=no,downscript=no",
                        escape(ifname)
                    )
                }
                NicKind::Bridge { bridge } => format!("bridge,id=hostnet{i},br={}", escape(bridge)),
            };
            a.opt("-netdev", netdev);
            a.opt(
                "-device",
                format!(
                    "{},netdev=hostnet{i},id=net{i},mac={}",
                    nic.model.device(),
                    nic.mac
                ),
            );
        }
        if self.serial_pty {
            a.opt("-chardev", "pty,id=charserial0");
            a.opt("-device", "isa-serial,chardev=charserial0,id=serial0");
        }
        match &self.vnc {
            None => a.opt("-display", "none"),
            Some(vnc) => {
                let host = if vnc.listen.contains(':') && !vnc.listen.starts_with('[') {
                    format!("[{}]", vnc.listen)
                } else {
                    vnc.listen.clone()
                };
                let display = match vnc.port {
                    // Displays 0..=100, i.e. ports 5900..=6000.
                    VncPort::Auto => "0,to=100".to_owned(),
                    VncPort::Port(p) => (p - 5900).to_string(),
                };
                a.opt("-vnc", format!("{}:{display}", escape(&host)));
                a.opt("-device", "VGA,id=video0");
            }
        }
        Ok(a.0)
    }

    fn validate(&self) -> Result<(), CmdlineError> {
        let invalid = |m: String| Err(CmdlineError::Invalid(m));
        if self.name.is_empty() || self.name.contains(['\n', '\0']) {
            return invalid(format!(
                "guest name '{}' is empty or has control characters",
                self.name.escape_debug()
            ));
        }
        if !is_uuid(&self.uuid) {
            return invalid(format!("'{}' is not a UUID", self.uuid));
        }
        if self.machine.is_empty() {
            return invalid("empty machine type".into());
        }
        if self.memory_kib < 1024 {
            return invalid(format!("memory of {} KiB is below 1 MiB", self.memory_kib));
        }
        if self.vcpus == 0 {
            return invalid("a guest needs at least one vCPU".into());
        }
        for p in [&self.qmp_socket, &self.pidfile] {
            if p.as_os_str().is_empty() {
                return invalid("empty QMP socket or pidfile path".into());
            }
        }
        for nic in &self.nics {
            if !is_mac(&nic.mac) {
                return invalid(format!("'{}' is not a MAC address (xx:xx:xx:xx:xx:xx)", nic.mac));
            }
        }
        if let Some(VncSpec {
            port: VncPort::Port(p),
            ..
        }) = &self.vnc
            && *p < 5900
        {
            return invalid(format!("VNC port {p} is below 5900"));
        }
        Ok(())
    }

    fn disk_args(&self, a: &mut Args) -> Result<(), CmdlineError> {
        let q35 = self.machine.contains("q35");
        let (mut ahci, mut scsi) = (false, false);
        let mut seen = Vec::new();
        for d in &self.disks {
            let unsupported = |m: String| Err(CmdlineError::Unsupported(m));
            let index = target_index(d.bus, &d.target).ok_or_else(|| {
                CmdlineError::Invalid(format!(
                    "disk target '{}' is not a {} device name",
                    d.target, d.bus
                ))
            })?;
            if seen.contains(&(d.bus, index)) {
                return Err(CmdlineError::Invalid(format!(
                    "disk target '{}' is used twice",
                    d.target
                )));
            }
            seen.push((d.bus, index));
            if d.path.is_none() && !d.cdrom {
                return Err(CmdlineError::Invalid(format!(
                    "disk '{}' has no source",
                    d.target
                )));
            }
            if d.readonly && !d.cdrom && matches!(d.bus, DiskBus::Ide | DiskBus::Sata) {
                // QEMU's ide-hd refuses read-only block nodes.
                return unsupported(format!(
                    "disk '{}': readonly {} disks are not supported",
                    d.target, d.bus
                ));
            }
            let (alias, device) = match d.bus {
                DiskBus::Virtio if d.cdrom => {
                    return unsupported(format!("disk '{}': cdrom on the virtio bus", d.target));
                }
                DiskBus::Virtio => (format!("virtio-disk{index}"), "virtio-blk-pci".to_owned()),
                DiskBus::Ide if q35 => {
                    return unsupported(format!(
                        "disk '{}': IDE controllers are unsupported for machine type '{}'",
                        d.target, self.machine
                    ));
                }
                DiskBus::Ide if index >= 4 => {
                    return unsupported(format!("disk '{}': IDE has only hda-hdd", d.target));
                }
                DiskBus::Ide => {
                    let (bus, unit) = (index / 2, index % 2);
                    let model = if d.cdrom { "ide-cd" } else { "ide-hd" };
                    (
                        format!("ide0-{bus}-{unit}"),
                        format!("{model},bus=ide.{bus},unit={unit}"),
                    )
                }
                DiskBus::Sata if index >= 6 => {
                    return unsupported(format!("disk '{}': the SATA controller has 6 ports", d.target));
                }
                DiskBus::Sata => {
                    // q35 has an AHCI controller on board, named "ide".
                    let ctl = if q35 { "ide" } else { "sata0" };
                    if !q35 && !ahci {
                        a.opt("-device", "ich9-ahci,id=sata0");
                        ahci = true;
                    }
                    let model = if d.cdrom { "ide-cd" } else { "ide-hd" };
                    (format!("sata0-0-{index}"), format!("{model},bus={ctl}.{index}"))
                }
                DiskBus::Scsi if index > 255 => {
                    return unsupported(format!("disk '{}': beyond SCSI id 255", d.target));
                }
                DiskBus::Scsi => {
                    if !scsi {
                        a.opt("-device", "virtio-scsi-pci,id=scsi0");
                        scsi = true;
                    }
                    let model = if d.cdrom { "scsi-cd" } else { "scsi-hd" };
                    (
                        format!("scsi0-0-0-{index}"),
                        format!("{model},bus=scsi0.0,channel=0,scsi-id={index},lun=0"),
                    )
                }
            };
            let mut drive = String::new();
            if let Some(path) = &d.path {
                let format = match d.format {
                    DiskFormat::Raw => "raw",
                    DiskFormat::Qcow2 => "qcow2",
                };
                drive.push_str(&format!("file={},format={format},", escape_path(path)));
            }
            drive.push_str(&format!("if=none,id=drive-{alias}"));
            if d.readonly || d.cdrom {
                drive.push_str(",readonly=on");
            }
            a.opt("-drive", drive);
            a.opt("-device", format!("{device},drive=drive-{alias},id={alias}"));
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Args(Vec<String>);

impl Args {
    fn flag(&mut self, f: &str) {
        self.0.push(f.into());
    }

    fn opt(&mut self, f: &str, value: impl Into<String>) {
        self.0.push(f.into());
        self.0.push(value.into());
    }
}

/// A value inside a QEMU `key=value,…` option: each `,` doubled.
pub fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

fn escape_path(path: &Path) -> String {
    escape(&path.to_string_lossy())
}

/// The index a guest device name stands for, libvirt style: `vda` → 0,
/// `sdb` → 1, `vdz` → 25, `vdaa` → 26.
fn target_index(bus: DiskBus, target: &str) -> Option<usize> {
    let prefix = match bus {
        DiskBus::Virtio => "vd",
        DiskBus::Ide => "hd",
        DiskBus::Sata | DiskBus::Scsi => "sd",
    };
    let letters = target.strip_prefix(prefix)?;
    if letters.is_empty() || letters.len() > 3 || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let mut index = 0usize;
    for b in letters.bytes() {
        index = index * 26 + usize::from(b - b'a') + 1;
    }
    Some(index - 1)
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

    fn spec() -> LaunchSpec {
        LaunchSpec::new(
            "vm1",
            UUID,
            Path::new("/run/q/vm1.qmp"),
            Path::new("/run/q/vm1.pid"),
        )
    }

    fn disk(target: &str, bus: DiskBus, path: Option<&str>, cdrom: bool) -> DiskSpec {
        DiskSpec {
            path: path.map(PathBuf::from),
            format: DiskFormat::Qcow2,
            bus,
            cdrom,
            readonly: false,
            target: target.into(),
        }
    }

    #[test]
    fn qemu_cmdline_minimal_guest() {
        let args = spec().to_args().expect("args");
        let expected = [
            "-name",
            "guest=vm1,debug-threads=on",
            "-S",
            "-msg",
            "timestamp=on",
            "-machine",
            "pc,usb=off,acpi=on",
            "-accel",
            "tcg",
            "-m",
            "size=65536k",
            "-smp",
            "1",
            "-uuid",
            UUID,
            "-no-user-config",
            "-nodefaults",
            "-chardev",
            "socket,id=charmonitor,path=/run/q/vm1.qmp,server=on,wait=off",
            "-mon",
            "chardev=charmonitor,id=monitor,mode=control",
            "-rtc",
            "base=utc",
            "-pidfile",
            "/run/q/vm1.pid",
            "-display",
            "none",
        ];
        assert_eq!(args, expected);
    }

    #[test]
    fn qemu_cmdline_devices() {
        let mut s = spec();
        s.accel = Accel::Kvm;
        s.acpi = false;
        s.no_reboot = true;
        s.boot = vec![BootDevice::Cdrom, BootDevice::Hd, BootDevice::Network];
        s.disks = vec![
            disk("vdb", DiskBus::Virtio, Some("/img/a,b.qcow2"), false),
            disk("hdc", DiskBus::Ide, None, true),
            disk("sda", DiskBus::Sata, Some("/img/s.qcow2"), false),
            disk("sdb", DiskBus::Scsi, Some("/img/t.iso"), true),
        ];
        s.disks[0].readonly = true;
        s.disks[2].format = DiskFormat::Raw;
        s.nics = vec![
            NicSpec {
                kind: NicKind::User,
                mac: "52:54:00:00:00:01".into(),
                model: NicModel::Virtio,
            },
            NicSpec {
                kind: NicKind::Tap {
                    ifname: "vnet0".into(),
                },
                mac: "52:54:00:00:00:02".into(),
                model: NicModel::E1000,
            },
        ];
        s.serial_pty = true;
        s.vnc = Some(VncSpec {
            port: VncPort::Port(5901),
            listen: "::1".into(),
        });
        let args = s.to_args().expect("args").join(" ");
        for part in [
            "-machine pc,usb=off,acpi=off -accel kvm",
            "-no-reboot -boot order=dcn",
            "-drive file=/img/a,,b.qcow2,format=qcow2,if=none,id=drive-virtio-disk1,readonly=on \
             -device virtio-blk-pci,drive=drive-virtio-disk1,id=virtio-disk1",
            "-drive if=none,id=drive-ide0-1-0,readonly=on \
             -device ide-cd,bus=ide.1,unit=0,drive=drive-ide0-1-0,id=ide0-1-0",
            "-device ich9-ahci,id=sata0 -drive file=/img/s.qcow2,format=raw,if=none,id=drive-sata0-0-0 \
             -device ide-hd,bus=sata0.0,drive=drive-sata0-0-0,id=sata0-0-0",
            "-device virtio-scsi-pci,id=scsi0 \
             -drive file=/img/t.iso,format=qcow2,if=none,id=drive-scsi0-0-0-1,readonly=on \
             -device scsi-cd,bus=scsi0.0,channel=0,scsi-id=1,lun=0,drive=drive-scsi0-0-0-1,id=scsi0-0-0-1",
            "-netdev user,id=hostnet0 -device virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:00:00:01",
            "-netdev tap,id=hostnet1,ifname=vnet0,script=no,downscript=no \
             -device e1000,netdev=hostnet1,id=net1,mac=52:54:00:00:00:02",
            "-chardev pty,id=charserial0 -device isa-serial,chardev=charserial0,id=serial0",
            "-vnc [::1]:1 -device VGA,id=video0",
        ] {
            assert!(args.contains(part), "missing '{part}' in {args}");
        }
        assert!(!args.contains("-display none"));
    }

    #[test]
    fn qemu_cmdline_q35_sata_uses_onboard_ahci_and_rejects_ide() {
        let mut s = spec();
        s.machine = "q35".into();
        s.disks = vec![disk("sdc", DiskBus::Sata, Some("/i"), false)];
        let args = s.to_args().expect("args").join(" ");
        assert!(
            args.contains("-device ide-hd,bus=ide.2,drive=drive-sata0-0-2,id=sata0-0-2"),
            "{args}"
        );
        assert!(!args.contains("ich9-ahci"));
        s.disks = vec![disk("hda", DiskBus::Ide, Some("/i"), false)];
        let err = s.to_args().expect_err("ide on q35");
        assert!(
            err.to_string().contains("IDE controllers are unsupported"),
            "{err}"
        );
    }

    #[test]
    fn qemu_cmdline_escapes_commas() {
        let mut s = spec();
        s.name = "a,b".into();
        s.qmp_socket = "/run/x,y/m.sock".into();
        let args = s.to_args().expect("args");
        assert!(args.contains(&"guest=a,,b,debug-threads=on".to_owned()));
        assert!(args.iter().any(|a| a.contains("path=/run/x,,y/m.sock,server=on")));
        assert_eq!(escape(",,"), ",,,,");
    }

    #[test]
    fn qemu_cmdline_vnc_auto_ipv4() {
        let mut s = spec();
        s.vnc = Some(VncSpec {
            port: VncPort::Auto,
            listen: "127.0.0.1".into(),
        });
        let args = s.to_args().expect("args").join(" ");
        assert!(args.contains("-vnc 127.0.0.1:0,to=100"), "{args}");
    }

    #[test]
    fn qemu_cmdline_rejects_bad_parameters() {
        type Edit = Box<dyn Fn(&mut LaunchSpec)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|s| s.uuid = "nope".into()), "not a UUID"),
            (Box::new(|s| s.vcpus = 0), "at least one vCPU"),
            (Box::new(|s| s.memory_kib = 10), "below 1 MiB"),
            (
                Box::new(|s| s.disks = vec![disk("sda", DiskBus::Virtio, Some("/i"), false)]),
                "not a virtio device name",
            ),
            (
                Box::new(|s| s.disks = vec![disk("vda", DiskBus::Virtio, Some("/i"), true)]),
                "cdrom on the virtio bus",
            ),
            (
                Box::new(|s| s.disks = vec![disk("hde", DiskBus::Ide, Some("/i"), false)]),
                "hda-hdd",
            ),
            (
                Box::new(|s| s.disks = vec![disk("vda", DiskBus::Virtio, None, false)]),
                "no source",
            ),
            (
                Box::new(|s| {
                    s.disks = vec![disk("sda", DiskBus::Sata, Some("/i"), false)];
                    s.disks[0].readonly = true;
                }),
                "readonly sata disks are not supported",
            ),
            (
                Box::new(|s| s.disks = vec![disk("vda", DiskBus::Virtio, Some("/i"), false); 2]),
                "used twice",
            ),
            (
                Box::new(|s| {
                    s.nics = vec![NicSpec {
                        kind: NicKind::User,
                        mac: "52:54:00".into(),
                        model: NicModel::Virtio,
                    }]
                }),
                "not a MAC",
            ),
            (
                Box::new(|s| {
                    s.vnc = Some(VncSpec {
                        port: VncPort::Port(80),
                        listen: "0.0.0.0".into(),
                    })
                }),
                "below 5900",
            ),
        ];
        for (edit, want) in cases {
            let mut s = spec();
            edit(&mut s);
            let err = s.to_args().expect_err(want);
            assert!(err.to_string().contains(want), "'{err}' lacks '{want}'");
        }
    }

    #[test]
    fn qemu_cmdline_target_index_and_boot_names() {
        assert_eq!(target_index(DiskBus::Virtio, "vda"), Some(0));
        assert_eq!(target_index(DiskBus::Virtio, "vdz"), Some(25));
        assert_eq!(target_index(DiskBus::Virtio, "vdaa"), Some(26));
        assert_eq!(target_index(DiskBus::Scsi, "sdB"), None);
        assert_eq!(target_index(DiskBus::Ide, "hd"), None);
        assert_eq!("cdrom".parse::<BootDevice>(), Ok(BootDevice::Cdrom));
        assert!("usb".parse::<BootDevice>().is_err());
    }

    #[test]
    fn qemu_cmdline_accel_available_matches_dev_kvm() {
        let rw = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        assert_eq!(accel_available() == Accel::Kvm, rw);
    }
}
