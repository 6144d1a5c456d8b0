//! `virtnodedevd`: the host device daemon, `nodedev:///system`: the
//! host's devices as sysfs shows them (see the `driver` module of the
//! library).

use modvirt_runtime::DaemonSpec;
use std::process::ExitCode;
use std::sync::Arc;
use virtnodedevd::driver::NodeDevDriver;

fn main() -> ExitCode {
    modvirt_runtime::main(DaemonSpec {
        name: "virtnodedevd",
        about: "libvirt nodedev management daemon (modvirt)",
        driver: Arc::new(NodeDevDriver::default()),
    })
}
