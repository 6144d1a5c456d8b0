//! From a domain definition to QEMU's launch parameters.

use super::domains::internal;
use crate::domain::{self, DomainDef};
use crate::qemu::cmdline::{
    BootDevice, DiskBus, DiskFormat, DiskSpec, NicKind, NicModel, NicSpec, VncPort, VncSpec,
};
use crate::qemu::{Accel, LaunchSpec};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::path::Path;

/// `VIR_ERR_CONFIG_UNSUPPORTED` (67).
fn unsupported(detail: impl Into<String>) -> RpcError {
    RpcError::new(
        modvirt_wire::ErrorCode(67),
        ErrorDomain::QEMU,
        "unsupported configuration",
        detail,
    )
}

/// The launch parameters of `def`, with its monitor at `qmp_socket`.
/// `kvm` says whether `/dev/kvm` is usable.
pub fn spec(def: &DomainDef, qmp_socket: &Path, pidfile: &Path, kvm: bool) -> Result<LaunchSpec, RpcError> {
    let mut s = LaunchSpec::new(&def.name, &def.uuid_string(), qmp_socket, pidfile);
    s.machine = def.os.machine.clone();
    s.accel = match def.virt_type {
        domain::VirtType::Kvm if kvm => Accel::Kvm,
        domain::VirtType::Kvm => {
            return Err(RpcError::new(
                ErrorCode::INVALID_ARG,
                ErrorDomain::QEMU,
                "invalid argument",
                "could not find capabilities for domaintype=kvm (is /dev/kvm usable?)",
            ));
        }
        domain::VirtType::Qemu => Accel::Tcg,
    };
    s.memory_kib = def.memory_kib;
    s.vcpus = def.vcpu.current.max(1);
    s.acpi = def.features.acpi;
    s.no_reboot = def.on_reboot == domain::LifecycleAction::Destroy;
    s.boot = def
        .os
        .boot
        .iter()
        .map(|b| match b {
            domain::BootDevice::Hd => BootDevice::Hd,
            domain::BootDevice::Cdrom => BootDevice::Cdrom,
            domain::BootDevice::Network => BootDevice::Network,
            domain::BootDevice::Fd => BootDevice::Floppy,
        })
        .collect();
    for d in &def.devices.disks {
        let cdrom = d.device == domain::DiskDevice::Cdrom;
        if !matches!(d.device, domain::DiskDevice::Disk | domain::DiskDevice::Cdrom) {
            return Err(unsupported(format!(
                "disk device '{}' is not supported",
                d.device
            )));
        }
        s.disks.push(DiskSpec {
            path: d.source.as_ref().map(Into::into),
            format: match d.format {
                domain::DiskFormat::Raw => DiskFormat::Raw,
                domain::DiskFormat::Qcow2 => DiskFormat::Qcow2,
                other => return Err(unsupported(format!("disk format '{other}' is not supported"))),
            },
            bus: match d.target_bus {
                domain::DiskBus::Virtio => DiskBus::Virtio,
                domain::DiskBus::Sata => DiskBus::Sata,
                domain::DiskBus::Ide => DiskBus::Ide,
                domain::DiskBus::Scsi => DiskBus::Scsi,
                other => return Err(unsupported(format!("disk bus '{other}' is not supported"))),
            },
            cdrom,
            readonly: d.readonly || cdrom,
            target: d.target_dev.clone(),
        });
    }
    for i in &def.devices.interfaces {
        let kind = match i.iface_type {
            domain::InterfaceType::User => NicKind::User,
            domain::InterfaceType::Bridge => NicKind::Bridge {
                bridge: i.source.clone().unwrap_or_default(),
            },
            // Plugged into its network's bridge before launch (`netports`).
            domain::InterfaceType::Network => match &i.target_dev {
                Some(ifname) => NicKind::Tap {
                    ifname: ifname.clone(),
                },
                None => {
                    return Err(internal(format!(
                        "interface {} on network '{}' has no tap device",
                        i.mac,
                        i.source.as_deref().unwrap_or("")
                    )));
                }
            },
        };
        let model = match i.model.as_deref().unwrap_or("rtl8139") {
            "virtio" => NicModel::Virtio,
            "e1000" => NicModel::E1000,
            "e1000e" => NicModel::E1000e,
            "rtl8139" => NicModel::Rtl8139,
            other => return Err(unsupported(format!("interface model '{other}' is not supported"))),
        };
        s.nics.push(NicSpec {
            kind,
            mac: i.mac.to_string(),
            model,
        });
    }
    s.serial_pty = !def.devices.serials.is_empty();
    s.vnc = def.devices.graphics.first().map(|g| VncSpec {
        port: match g.port {
            Some(p) if !g.autoport => VncPort::Port(p),
            _ => VncPort::Auto,
        },
        listen: g.listen.clone().unwrap_or_else(|| "127.0.0.1".into()),
    });
    s.to_args().map_err(|e| internal(e.to_string()))?;
    Ok(s)
}
