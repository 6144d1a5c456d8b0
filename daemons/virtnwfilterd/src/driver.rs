//! The network filter driver: libvirt's nwfilter procedures over
//! definitions on disk. Filters are kept and served, not applied to
//! traffic (no ebtables/iptables/nftables rules are made), so no guest
//! ever holds one "in use" and filter bindings are not offered.
//!
//! - [`filters`]: the registry, libvirt's rules for (re)defining a filter
//!   and its errors;
//! - [`store`]: the files, `etc/libvirt/nwfilter/NAME.xml`;
//! - [`procs`]: the REMOTE procedures, one function each.
//!
//! A fresh root has no filters: libvirt's packages install their
//! built-in ones (`clean-traffic`, …); modvirt installs none.

pub mod filters;
pub mod procs;
pub mod store;

use crate::nwfilter::NwFilterDef;
use filters::Filters;
use modvirt_runtime::dispatch::{CallContext, CallFuture};
use modvirt_runtime::observe::phases::PhaseGuard;
use modvirt_runtime::{DaemonShared, DriverInfo, InitFuture};
use modvirt_xml::SharedRng;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use store::Store;

/// Everything the driver keeps once initialised.
#[derive(Debug)]
pub struct Core {
    pub daemon: Arc<DaemonShared>,
    pub store: Store,
    filters: Mutex<Filters>,
    rng: SharedRng,
}

impl Core {
    /// Randomness for the UUIDs and MACs definitions leave out.
    pub fn rng(&self) -> &SharedRng {
        &self.rng
    }

    /// The registry (never poisoned for long: every change is made whole).
    pub fn filters(&self) -> MutexGuard<'_, Filters> {
        self.filters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the definitions on disk, as libvirt's
    /// `virNWFilterObjListLoadAllConfigs`: a file must be named after its
    /// filter, and a generated UUID is written back. Returns how many.
    fn load(&self) -> usize {
        let (files, problems) = self.store.load();
        for p in problems {
            tracing::warn!(target: "nwfilter", "{p}");
        }
        let mut filters = self.filters();
        for (stem, xml) in files {
            let path = self.store.path(&stem);
            let def = match NwFilterDef::parse(&xml, &mut self.rng()) {
                Ok(def) => def,
                Err(e) => {
                    tracing::warn!(target: "nwfilter", "{}: {}", path.display(), e.message());
                    continue;
                }
            };
            if def.name != stem {
                tracing::warn!(
                    target: "nwfilter",
                    "network filter config filename '{}' does not match name '{}'",
                    path.display(),
                    def.name
                );
                continue;
            }
            if let Err(e) = filters.check_define(&def) {
                tracing::warn!(target: "nwfilter", "{}: {}", path.display(), e.text());
                continue;
            }
            if !def.uuid_specified
                && let Err(e) = self.store.save(&def)
            {
                tracing::warn!(target: "nwfilter", "{}: cannot save its new UUID: {e}", path.display());
                continue;
            }
            filters.put(def);
        }
        filters.len()
    }
}

/// `virtnwfilterd`'s driver.
#[derive(Debug, Default)]
pub struct NwFilterDriver {
    core: OnceLock<Arc<Core>>,
}

impl DriverInfo for NwFilterDriver {
    fn uri_scheme(&self) -> &'static str {
        "nwfilter"
    }

    fn type_name(&self) -> &'static str {
        "nwfilter"
    }

    fn init(&self, daemon: Arc<DaemonShared>, phase: PhaseGuard) -> InitFuture {
        let store = Store::new(&daemon.paths.config_dir, &daemon.paths.run_dir);
        let core = Arc::new(Core {
            store,
            filters: Mutex::new(Filters::default()),
            rng: SharedRng::new(modvirt_runtime::random_seed()),
            daemon,
        });
        let _ = self.core.set(core.clone());
        Box::pin(async move {
            let step = phase.step("nwfilter directories");
            core.store.prepare().map_err(|e| {
                format!(
                    "cannot create network filter directories '{}', '{}': {e}",
                    core.store.dir.display(),
                    core.store.state_dir.display()
                )
            })?;
            drop(step);
            let step = phase.step("load filters");
            let count = core.load();
            step.detail(format!("{count} filters"));
            Ok(())
        })
    }

    fn call(&self, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
        let core = self.core.get()?.clone();
        procs::dispatch(core, ctx, payload)
    }
}
