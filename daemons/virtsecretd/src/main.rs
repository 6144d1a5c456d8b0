//! `virtsecretd`: the secret daemon: `secret:///system`, secrets and their
//! values kept as libvirt keeps them (see the `driver` module of the
//! library).

use modvirt_runtime::DaemonSpec;
use std::process::ExitCode;
use std::sync::Arc;
use virtsecretd::driver::SecretDriver;

fn main() -> ExitCode {
    modvirt_runtime::main(DaemonSpec {
        name: "virtsecretd",
        about: "libvirt secret management daemon (modvirt)",
        driver: Arc::new(SecretDriver::default()),
    })
}
