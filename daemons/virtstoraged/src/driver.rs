//! The storage driver: libvirt's storage procedures on `dir` pools.
//!
//! - [`pools`]: the registry of pools and their volumes, and libvirt's
//!   lookup errors;
//! - [`store`]: definitions, autostart links and status files on disk;
//! - [`backend`]: the pool directory on the host (build, delete, list,
//!   raw files and directories as volumes);
//! - [`qemu_img`]: qcow2 volumes, made and measured by `qemu-img`;
//! - [`lifecycle`]: starting and refreshing pools and probing volumes,
//!   without holding the registry lock across the slow parts;
//! - [`procs`] and [`vol_procs`]: the REMOTE procedures, one function each;
//! - [`events`]: clients' storage pool event callbacks (lifecycle and
//!   refresh events).

pub mod backend;
pub mod events;
pub mod lifecycle;
pub mod pools;
pub mod procs;
pub mod qemu_img;
pub mod store;
pub mod vol_procs;

use crate::conf::PoolDef;
use modvirt_runtime::dispatch::{CallContext, CallFuture};
use modvirt_runtime::observe::phases::PhaseGuard;
use modvirt_runtime::{DaemonShared, DriverInfo, InitFuture};
use modvirt_xml::SharedRng;
use pools::{Pool, Pools};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use store::Store;

/// Everything the driver keeps once initialised.
#[derive(Debug)]
pub struct Core {
    pub daemon: Arc<DaemonShared>,
    pub store: Store,
    /// Clients' event callbacks.
    pub events: events::EventCallbacks,
    pools: Mutex<Pools>,
    rng: SharedRng,
}

impl Core {
    pub fn new(daemon: Arc<DaemonShared>) -> Self {
        Self {
            store: Store::new(&daemon.paths.config_dir, &daemon.paths.run_dir),
            events: events::EventCallbacks::default(),
            pools: Mutex::new(Pools::default()),
            rng: SharedRng::new(modvirt_runtime::random_seed()),
            daemon,
        }
    }

    /// Randomness for the UUIDs and MACs definitions leave out.
    pub fn rng(&self) -> &SharedRng {
        &self.rng
    }

    /// The registry (never poisoned for long: every change is made whole).
    pub fn pools(&self) -> MutexGuard<'_, Pools> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads persistent definitions, then the status files of the pools
    /// that were active (libvirt's `virStoragePoolObjLoadAllConfigs` and
    /// `…LoadAllState`); returns (defined, active, problems). A pool whose
    /// directory is gone is no longer active.
    fn load(&self) -> (usize, usize, Vec<String>) {
        let (configs, mut problems) = self.store.configs();
        let mut pools = self.pools();
        let mut defined = 0;
        for (file, xml) in configs {
            match PoolDef::parse(&xml, &mut self.rng()) {
                Ok(def) if def.name == file => {
                    let mut pool = Pool::new(def, true);
                    pool.autostart = self.store.autostart(&file);
                    pools.insert(pool);
                    defined += 1;
                }
                Ok(def) => problems.push(format!(
                    "Storage pool config filename '{}' does not match pool name '{}'",
                    self.store.config_path(&file).display(),
                    def.name
                )),
                Err(e) => problems.push(format!("{file}.xml: {}", e.message())),
            }
        }
        let (statuses, more) = self.store.statuses();
        problems.extend(more);
        let mut active = 0;
        for (file, xml) in statuses {
            let live = match PoolDef::parse_state(&xml, &mut self.rng()) {
                Ok(live) if live.name == file => live,
                Ok(live) => {
                    problems.push(format!(
                        "Storage pool state file '{}' does not match pool name '{}'",
                        self.store.status_path(&file).display(),
                        live.name
                    ));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("status {file}.xml: {}", e.message()));
                    continue;
                }
            };
            if !std::path::Path::new(&live.target_path).is_dir() {
                problems.push(format!(
                    "storage pool '{file}': its directory '{}' is gone; marked inactive",
                    live.target_path
                ));
                let _ = self.store.delete_status(&file);
                continue;
            }
            match pools.by_name_mut(&live.name) {
                Some(pool) if pool.def.uuid == live.uuid => {
                    let config = std::mem::replace(&mut pool.def, live);
                    pool.new_def = Some(config);
                    pool.active = true;
                }
                Some(_) => {
                    problems.push(format!(
                        "storage pool '{file}': its status file has another UUID than its definition; ignored"
                    ));
                    let _ = self.store.delete_status(&file);
                    continue;
                }
                None => {
                    let mut pool = Pool::new(live, false);
                    pool.active = true;
                    pools.insert(pool);
                }
            }
            active += 1;
        }
        (defined, active, problems)
    }
}

/// `virtstoraged`'s driver.
#[derive(Debug, Default)]
pub struct StorageDriver {
    core: OnceLock<Arc<Core>>,
}

impl DriverInfo for StorageDriver {
    fn uri_scheme(&self) -> &'static str {
        "storage"
    }

    fn type_name(&self) -> &'static str {
        "storage"
    }

    fn init(&self, daemon: Arc<DaemonShared>, phase: PhaseGuard) -> InitFuture {
        let core = Arc::new(Core::new(daemon));
        let _ = self.core.set(core.clone());
        Box::pin(async move {
            let step = phase.step("load pools");
            let (defined, active, problems) = core.load();
            for p in &problems {
                tracing::warn!(target: "storage", "{p}");
            }
            step.detail(format!("{defined} defined, {active} active"));
            drop(step);

            let step = phase.step("refresh active pools");
            let (refreshed, volumes) = lifecycle::refresh_all(&core).await;
            step.detail(format!("{refreshed} refreshed, {volumes} volumes"));
            drop(step);

            let step = phase.step("autostart");
            let started = lifecycle::autostart(&core).await;
            step.detail(format!("{started} started"));
            Ok(())
        })
    }

    fn call(&self, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
        let core = self.core.get()?.clone();
        procs::dispatch(core, ctx, payload)
    }
}
