//! `virtinterfaced`: the host interface daemon, `interface:///system`:
//! the host's network interfaces, read-only (see the `driver` module of
//! the library).

use modvirt_runtime::DaemonSpec;
use std::process::ExitCode;
use std::sync::Arc;
use virtinterfaced::driver::InterfaceDriver;

fn main() -> ExitCode {
    modvirt_runtime::main(DaemonSpec {
        name: "virtinterfaced",
        about: "libvirt interface management daemon (modvirt)",
        driver: Arc::new(InterfaceDriver::default()),
    })
}
