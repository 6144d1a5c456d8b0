//! The QEMU driver: libvirt's domain procedures on real QEMU guests.
//!
//! - [`domains`]: the registry (by name, UUID, id) and each domain's state;
//! - [`store`]: definitions, autostart links and status files on disk;
//! - [`lifecycle`]: start, stop, QMP events, reconnect after a restart;
//! - [`procs`]: the REMOTE procedures, one function each;
//! - [`events`]: clients' event callbacks; [`node`]: host facts;
//! - [`launch`]: a definition → QEMU's launch parameters.

pub mod domains;
pub mod events;
pub mod launch;
pub mod lifecycle;
pub mod netports;
pub mod node;
pub mod procs;
pub mod store;

use crate::domain::DomainDef;
use crate::version::QemuInfo;
use domains::{Dom, Domains};
use events::{DomainEvent, EventCallbacks};
use modvirt_runtime::dispatch::{CallContext, CallFuture};
use modvirt_runtime::observe::phases::PhaseGuard;
use modvirt_runtime::{DaemonShared, DriverInfo, InitFuture, VersionFuture};
use modvirt_xml::SharedRng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use store::Store;

/// Everything the driver keeps once initialised.
#[derive(Debug)]
pub struct Core {
    pub daemon: Arc<DaemonShared>,
    pub store: Store,
    pub domains: Domains,
    pub events: EventCallbacks,
    /// The emulator (`qemu-system-x86_64` from `PATH`, else its bare name).
    pub emulator: PathBuf,
    pub kvm: bool,
    next_id: AtomicI32,
    rng: SharedRng,
}

impl Core {
    /// Randomness for the UUIDs and MACs definitions leave out.
    pub fn rng(&self) -> &SharedRng {
        &self.rng
    }

    pub fn next_id(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Ids handed out later stay above `id` (a guest found running again).
    pub fn bump_id(&self, id: i32) {
        self.next_id.fetch_max(id + 1, Ordering::Relaxed);
    }

    /// The emulator a guest runs in: its definition's `<emulator>`, else ours.
    pub fn emulator_for(&self, def: &DomainDef) -> PathBuf {
        def.devices
            .emulator
            .as_ref()
            .map_or_else(|| self.emulator.clone(), PathBuf::from)
    }

    pub fn emit(&self, dom: &Dom, ev: DomainEvent) {
        self.events.emit(&dom.wire(), &ev);
    }

    /// Loads the persistent definitions; returns (loaded, problems).
    fn load_configs(&self) -> (usize, Vec<String>) {
        let (configs, mut problems) = self.store.configs();
        let mut n = 0;
        for (file, xml) in configs {
            match DomainDef::parse(&xml, &mut self.rng()) {
                Ok(def) if def.name == file => {
                    let autostart = self.store.autostart(&def.name);
                    match self.domains.insert(Dom::new(def, true, autostart)) {
                        Ok(()) => n += 1,
                        Err(e) => problems.push(format!("{file}.xml: {}", e.text())),
                    }
                }
                Ok(def) => problems.push(format!(
                    "{file}.xml defines '{}', not '{file}': skipped",
                    def.name
                )),
                Err(e) => problems.push(format!("{file}.xml: {}", e.message())),
            }
        }
        (n, problems)
    }
}

/// `virtqemud`'s driver.
#[derive(Debug, Default)]
pub struct QemuDriver {
    info: QemuInfo,
    core: OnceLock<Arc<Core>>,
}

impl DriverInfo for QemuDriver {
    fn uri_scheme(&self) -> &'static str {
        self.info.uri_scheme()
    }

    fn type_name(&self) -> &'static str {
        self.info.type_name()
    }

    fn version(&self) -> VersionFuture {
        self.info.version()
    }

    fn init(&self, daemon: Arc<DaemonShared>, phase: PhaseGuard) -> InitFuture {
        let paths = &daemon.paths;
        let store = Store::new(
            &paths.config_dir,
            &paths.run_dir,
            &paths.state_dir,
            &paths.log_dir,
        );
        let emulator = crate::version::emulator_path();
        let core = Arc::new(Core {
            store,
            domains: Domains::default(),
            events: EventCallbacks::default(),
            kvm: crate::qemu::cmdline::accel_available() == crate::qemu::Accel::Kvm,
            emulator,
            next_id: AtomicI32::new(1),
            rng: SharedRng::new(modvirt_runtime::random_seed()),
            daemon,
        });
        let _ = self.core.set(core.clone());
        Box::pin(async move {
            let step = phase.step("load definitions");
            let (n, problems) = core.load_configs();
            for p in &problems {
                tracing::warn!(target: "qemu", "{p}");
            }
            step.detail(format!("{n} domains"));
            drop(step);
            let step = phase.step("reconnect");
            let found = core.reconnect().await;
            step.detail(format!("{found} running guests"));
            drop(step);
            let step = phase.step("autostart");
            let started = core.autostart().await;
            step.detail(format!("{started} started"));
            Ok(())
        })
    }

    fn call(&self, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
        let core = self.core.get()?.clone();
        procs::dispatch(core, ctx, payload)
    }
}
