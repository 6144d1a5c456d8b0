//! The host interface driver: libvirt's read-only interface procedures on
//! the links of the daemon's network namespace, as libvirt's udev backend
//! answers them. Like that backend it keeps nothing: every call reads the
//! links afresh (off the async runtime). Defining, starting, stopping and
//! the change transactions are not supported by that backend either:
//! they answer `VIR_ERR_NO_SUPPORT`.
//!
//! - [`procs`]: the REMOTE procedures, one function each, and libvirt's
//!   errors.

pub mod procs;

use modvirt_runtime::dispatch::{CallContext, CallFuture};
use modvirt_runtime::observe::phases::PhaseGuard;
use modvirt_runtime::{DaemonShared, DriverInfo, InitFuture};
use std::sync::{Arc, OnceLock};

/// `virtinterfaced`'s driver.
#[derive(Debug, Default)]
pub struct InterfaceDriver {
    daemon: OnceLock<Arc<DaemonShared>>,
}

impl DriverInfo for InterfaceDriver {
    fn uri_scheme(&self) -> &'static str {
        "interface"
    }

    fn type_name(&self) -> &'static str {
        "interface"
    }

    fn init(&self, daemon: Arc<DaemonShared>, phase: PhaseGuard) -> InitFuture {
        let _ = self.daemon.set(daemon);
        Box::pin(async move {
            let step = phase.step("read interfaces");
            match tokio::task::spawn_blocking(crate::host::HostLinks::read).await {
                Ok(Ok(links)) => step.detail(format!("{} interfaces", links.listed().len())),
                Ok(Err(e)) => {
                    step.detail("failed");
                    tracing::warn!(target: "interface", "{e}");
                }
                Err(e) => tracing::warn!(target: "interface", "reading interfaces failed: {e}"),
            }
            Ok(())
        })
    }

    fn call(&self, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
        self.daemon.get()?;
        procs::dispatch(ctx, payload)
    }
}
