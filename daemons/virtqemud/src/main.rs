//! `virtqemud`: the QEMU hypervisor daemon: `qemu:///system` with real
//! QEMU guests (see the `driver` module of the library).

use modvirt_runtime::DaemonSpec;
use std::process::ExitCode;
use std::sync::Arc;
use virtqemud::driver::QemuDriver;

fn main() -> ExitCode {
    modvirt_runtime::main(DaemonSpec {
        name: "virtqemud",
        about: "libvirt QEMU management daemon (modvirt)",
        driver: Arc::new(QemuDriver::default()),
    })
}
