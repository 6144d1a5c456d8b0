//! `virtqemud`: the QEMU hypervisor daemon. For now it serves the
//! connection level of `qemu:///system` (its QEMU driver comes next); the
//! hypervisor version it reports is that of the installed
//! `qemu-system-x86_64`.

use modvirt_runtime::DaemonSpec;
use virtqemud::version;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    modvirt_runtime::main(DaemonSpec {
        name: "virtqemud",
        about: "libvirt QEMU management daemon (modvirt)",
        driver: Arc::new(version::QemuInfo::default()),
    })
}
