//! `virtproxyd`: serves the monolithic libvirtd's sockets (`libvirt-sock`,
//! `libvirt-sock-ro`, `libvirt-admin-sock`) for clients that still use
//! them, and passes each connection on to the modular daemon owning the URI
//! it opens (`qemu:///system` → virtqemud, `network:///system` →
//! virtnetworkd, …; none given: `qemu:///system`), starting that daemon
//! when it is not running. Calls for another driver than the connection's
//! go straight to that driver's daemon; events come back through the
//! connection's daemon. It has no driver of its own: everything but the
//! handshake, keepalive and its own admin program is passed on.
//!
//! With `--listen` it also serves TLS (port 16514; libvirt's certificate
//! files and `tls_allowed_dn_list`) and, only when `auth_tcp = "none"`,
//! plain TCP (16509): see `modvirt_runtime::config::NetSettings`.

use modvirt_runtime::{DaemonSpec, DriverInfo};
use std::process::ExitCode;
use std::sync::Arc;

/// No driver: `CONNECT_OPEN` of any URI opens a session with its owner.
#[derive(Debug)]
struct Proxy;

impl DriverInfo for Proxy {
    fn uri_scheme(&self) -> &'static str {
        ""
    }

    fn type_name(&self) -> &'static str {
        "proxy"
    }

    fn listens_on_network(&self) -> bool {
        true
    }
}

fn main() -> ExitCode {
    modvirt_runtime::main(DaemonSpec {
        name: "virtproxyd",
        about: "libvirt proxy daemon (modvirt): libvirtd's sockets, routed to the modular daemons",
        driver: Arc::new(Proxy),
    })
}
