//! The network driver: libvirt's network procedures on real host bridges.
//!
//! - [`nets`]: the registry and libvirt's lookup errors;
//! - [`store`]: definitions, autostart links and status files on disk;
//! - [`host`]: what an active network is on the host (its bridge, with
//!   addresses, made over rtnetlink);
//! - [`procs`]: the REMOTE procedures, one function each;
//! - [`events`]: clients' network event callbacks (lifecycle events);
//! - [`leases`]: `NETWORK_GET_DHCP_LEASES`, from dnsmasq's lease file.

pub mod dnsmasq;
pub mod events;
pub mod firewall;
pub mod host;
pub mod leases;
pub mod nets;
pub mod procs;
pub mod store;

use crate::network::NetworkDef;
use modvirt_runtime::dispatch::{CallContext, CallFuture};
use modvirt_runtime::observe::phases::PhaseGuard;
use modvirt_runtime::{DaemonShared, DriverInfo, InitFuture};
use modvirt_xml::SharedRng;
use nets::{Net, Nets};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use store::Store;

/// Everything the driver keeps once initialised.
#[derive(Debug)]
pub struct Core {
    pub daemon: Arc<DaemonShared>,
    pub store: Store,
    /// Clients' event callbacks.
    pub events: events::EventCallbacks,
    nets: Mutex<Nets>,
    rng: SharedRng,
}

impl Core {
    /// Randomness for the UUIDs and MACs definitions leave out.
    pub fn rng(&self) -> &SharedRng {
        &self.rng
    }

    /// The registry (never poisoned for long: every change is made whole).
    pub fn nets(&self) -> MutexGuard<'_, Nets> {
        self.nets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads persistent definitions and the status of active networks;
    /// returns (defined, active, problems).
    fn load(&self) -> (usize, usize, Vec<String>) {
        let (configs, mut problems) = self.store.configs();
        let mut nets = self.nets();
        let mut defined = 0;
        for (file, xml) in configs {
            match NetworkDef::parse(&xml, &mut self.rng()) {
                Ok(def) if def.name == file => {
                    let autostart = self.store.autostart(&def.name);
                    nets.insert(Net {
                        def,
                        live: None,
                        persistent: true,
                        autostart,
                    });
                    defined += 1;
                }
                Ok(def) => problems.push(format!(
                    "{file}.xml defines '{}', not '{file}': skipped",
                    def.name
                )),
                Err(e) => problems.push(format!("{file}.xml: {}", e.message())),
            }
        }
        let (statuses, more) = self.store.statuses();
        problems.extend(more);
        let mut active = 0;
        for (file, xml) in statuses {
            let live = match NetworkDef::parse(&xml, &mut self.rng()) {
                Ok(live) => live,
                Err(e) => {
                    problems.push(format!("status {file}.xml: {}", e.message()));
                    continue;
                }
            };
            // A network whose bridge vanished while the daemon was away is
            // no longer active.
            if !host::is_up(&live) {
                problems.push(format!("network '{file}': its bridge is gone; marked inactive"));
                let _ = self.store.delete_status(&file);
                continue;
            }
            match nets.by_name_mut(&live.name) {
                Some(net) => net.live = Some(live),
                None => nets.insert(Net {
                    def: live.clone(),
                    live: Some(live),
                    persistent: false,
                    autostart: false,
                }),
            }
            active += 1;
        }
        (defined, active, problems)
    }

    /// Starts every autostarted inactive network; returns how many started.
    /// Like libvirt, this sends no `Started` event (nobody could have
    /// registered yet).
    fn autostart(&self) -> usize {
        let mut nets = self.nets();
        let names: Vec<String> = nets
            .iter()
            .filter(|n| n.autostart && !n.active())
            .map(|n| n.def.name.clone())
            .collect();
        let mut started = 0;
        for name in names {
            match procs::start(self, &mut nets, &name) {
                Ok(()) => started += 1,
                Err(e) => {
                    tracing::warn!(target: "network", "autostart of network '{name}' failed: {}", e.text())
                }
            }
        }
        started
    }
}

/// `virtnetworkd`'s driver.
#[derive(Debug, Default)]
pub struct NetworkDriver {
    core: OnceLock<Arc<Core>>,
}

impl DriverInfo for NetworkDriver {
    fn uri_scheme(&self) -> &'static str {
        "network"
    }

    fn type_name(&self) -> &'static str {
        "network"
    }

    fn init(&self, daemon: Arc<DaemonShared>, phase: PhaseGuard) -> InitFuture {
        let store = Store::new(&daemon.paths.config_dir, &daemon.paths.run_dir);
        let core = Arc::new(Core {
            store,
            events: events::EventCallbacks::default(),
            nets: Mutex::new(Nets::default()),
            rng: SharedRng::new(modvirt_runtime::random_seed()),
            daemon,
        });
        let _ = self.core.set(core.clone());
        Box::pin(async move {
            let step = phase.step("load networks");
            let (defined, active, problems) = core.load();
            for p in &problems {
                tracing::warn!(target: "network", "{p}");
            }
            step.detail(format!("{defined} defined, {active} active"));
            drop(step);
            let step = phase.step("autostart");
            let started = core.autostart();
            step.detail(format!("{started} started"));
            Ok(())
        })
    }

    fn call(&self, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
        let core = self.core.get()?.clone();
        procs::dispatch(core, ctx, payload)
    }
}
