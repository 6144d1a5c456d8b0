//! `virtstoraged`: the storage daemon: `storage:///system`, with `dir`
//! pools as host directories and their files as volumes (see the `driver`
//! module of the library).

use modvirt_runtime::DaemonSpec;
use std::process::ExitCode;
use std::sync::Arc;
use virtstoraged::driver::StorageDriver;

fn main() -> ExitCode {
    modvirt_runtime::main(DaemonSpec {
        name: "virtstoraged",
        about: "libvirt storage management daemon (modvirt)",
        driver: Arc::new(StorageDriver::default()),
    })
}
