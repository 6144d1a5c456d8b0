//! The secret driver: libvirt's secret procedures, with persistent
//! secrets on disk and ephemeral ones in memory only.
//!
//! - [`secrets`]: the registry, libvirt's rules for (re)defining a secret
//!   and its errors;
//! - [`store`]: `UUID.xml` / `UUID.base64` under `etc/libvirt/secrets`;
//! - [`procs`]: the REMOTE procedures, one function each;
//! - [`events`]: clients' secret event callbacks (lifecycle and value
//!   changed).
//!
//! While an ephemeral secret exists the daemon holds an idle inhibitor
//! (`ephemeral secrets`): its value lives nowhere else, so an idle exit
//! would lose it.

pub mod events;
pub mod procs;
pub mod secrets;
pub mod store;

use modvirt_runtime::dispatch::{CallContext, CallFuture};
use modvirt_runtime::idle::Inhibitor;
use modvirt_runtime::observe::phases::PhaseGuard;
use modvirt_runtime::{DaemonShared, DriverInfo, InitFuture};
use modvirt_xml::SharedRng;
use secrets::Secrets;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use store::Store;

/// The idle inhibitor's reason while ephemeral secrets exist.
pub const EPHEMERAL_REASON: &str = "ephemeral secrets";

/// Everything the driver keeps once initialised.
#[derive(Debug)]
pub struct Core {
    pub daemon: Arc<DaemonShared>,
    pub store: Store,
    /// Clients' event callbacks.
    pub events: events::EventCallbacks,
    secrets: Mutex<Secrets>,
    rng: SharedRng,
    ephemeral_hold: Mutex<Option<Inhibitor>>,
}

impl Core {
    /// Randomness for the UUIDs and MACs definitions leave out.
    pub fn rng(&self) -> &SharedRng {
        &self.rng
    }

    /// The registry (never poisoned for long: every change is made whole).
    pub fn secrets(&self) -> MutexGuard<'_, Secrets> {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds the idle inhibitor while `secrets` has an ephemeral secret,
    /// releases it when none is left.
    pub fn hold_for_ephemeral(&self, secrets: &Secrets) {
        let mut hold = self.ephemeral_hold.lock().unwrap_or_else(|e| e.into_inner());
        match (secrets.ephemeral() > 0, hold.is_some()) {
            (true, false) => *hold = Some(self.daemon.idle.inhibit(EPHEMERAL_REASON)),
            (false, true) => *hold = None,
            _ => {}
        }
    }

    /// Loads the persistent secrets; returns (loaded, with a value).
    fn load(&self) -> (usize, usize) {
        let (loaded, problems) = self.store.load(&mut self.rng());
        for p in &problems {
            tracing::warn!(target: "secret", "Error reading secret: {p}");
        }
        let mut secrets = self.secrets();
        let (mut count, mut valued) = (0, 0);
        for mut l in loaded {
            if let Err(e) = secrets.check_define(&l.def) {
                tracing::warn!(target: "secret", "Error reading secret: {}", e.text());
                continue;
            }
            let uuid = l.def.uuid;
            secrets.put(l.def.clone());
            if let (Some(s), Some(v)) = (secrets.by_uuid_mut(&uuid), l.value.take()) {
                s.value = Some(v);
                valued += 1;
            }
            count += 1;
        }
        (count, valued)
    }
}

/// `virtsecretd`'s driver.
#[derive(Debug, Default)]
pub struct SecretDriver {
    core: OnceLock<Arc<Core>>,
}

impl DriverInfo for SecretDriver {
    fn uri_scheme(&self) -> &'static str {
        "secret"
    }

    fn type_name(&self) -> &'static str {
        "secret"
    }

    fn init(&self, daemon: Arc<DaemonShared>, phase: PhaseGuard) -> InitFuture {
        let store = Store::new(&daemon.paths.config_dir, &daemon.paths.run_dir);
        let core = Arc::new(Core {
            store,
            events: events::EventCallbacks::default(),
            secrets: Mutex::new(Secrets::default()),
            rng: SharedRng::new(modvirt_runtime::random_seed()),
            ephemeral_hold: Mutex::new(None),
            daemon,
        });
        let _ = self.core.set(core.clone());
        Box::pin(async move {
            let step = phase.step("secret directories");
            core.store.prepare().map_err(|e| {
                format!(
                    "cannot create secret directories '{}', '{}': {e}",
                    core.store.dir.display(),
                    core.store.state_dir.display()
                )
            })?;
            drop(step);
            let step = phase.step("load secrets");
            let (count, valued) = core.load();
            step.detail(format!("{count} secrets, {valued} with a value"));
            Ok(())
        })
    }

    fn call(&self, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
        let core = self.core.get()?.clone();
        procs::dispatch(core, ctx, payload)
    }
}
