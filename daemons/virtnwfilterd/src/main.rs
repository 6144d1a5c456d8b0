//! `virtnwfilterd`: the network filter daemon: `nwfilter:///system`, with
//! libvirt's filter definitions kept and served (see the `driver` module of
//! the library). Rules are kept and served, not applied to traffic.

use modvirt_runtime::DaemonSpec;
use std::process::ExitCode;
use std::sync::Arc;
use virtnwfilterd::driver::NwFilterDriver;

fn main() -> ExitCode {
    modvirt_runtime::main(DaemonSpec {
        name: "virtnwfilterd",
        about: "libvirt network filter daemon (modvirt): rules are kept and served, not applied to traffic",
        driver: Arc::new(NwFilterDriver::default()),
    })
}
