//! `virtnetworkd`: the virtual network daemon: `network:///system`, with
//! networks as real Linux bridges (see the `driver` module of the library).

use modvirt_runtime::DaemonSpec;
use std::process::ExitCode;
use std::sync::Arc;
use virtnetworkd::driver::NetworkDriver;

fn main() -> ExitCode {
    modvirt_runtime::main(DaemonSpec {
        name: "virtnetworkd",
        about: "libvirt virtual network management daemon (modvirt)",
        driver: Arc::new(NetworkDriver::default()),
    })
}
