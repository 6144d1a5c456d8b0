//! The node device driver: libvirt's read-only node device procedures on
//! the host's devices as sysfs shows them.
//!
//! Start-up enumerates the devices in the background (a blocking task),
//! as libvirt's udev backend does in its own thread: the daemon accepts
//! calls as soon as `init` returns (the runtime serves nothing before),
//! and a call that arrives while the first enumeration runs waits for it,
//! marked on its in-flight record as waiting on `enumeration`. The
//! enumeration is the `driver: enumerate` start-up step, with its device
//! count, and holds an `enumeration` idle inhibitor.
//!
//! Instead of udev, the kernel's device events ([`uevents`]) say when the
//! list is stale: list calls enumerate again only then (or when the last
//! enumeration is old; a fake sysfs is read every time), a name not in
//! the last list is looked for again before it is reported missing, and
//! `GET_XML_DESC` reads its device afresh.
//!
//! Every enumeration that replaces the list compares it with the last one
//! and sends the node device events clients registered for
//! ([`changes`], [`events`]). While some client listens, a watcher
//! enumerates again shortly after device events, and at least every
//! [`uevents::MAX_AGE`] (changes no event announces: a fake sysfs, other
//! network namespaces); with nobody listening, nothing is read until a
//! call asks.
//!
//! - [`registry`]: the devices of one enumeration and libvirt's errors;
//! - [`changes`]: what changed between two enumerations;
//! - [`events`]: clients' event callbacks and the event messages;
//! - [`procs`]: the REMOTE procedures, one function each.

pub mod changes;
pub mod events;
pub mod procs;
pub mod registry;
pub mod uevents;

use crate::device::Device;
use crate::sysfs::{self, Host};
use modvirt_runtime::dispatch::{CallContext, CallFuture};
use modvirt_runtime::observe::inflight::{CallRecord, Waiting};
use modvirt_runtime::observe::phases::PhaseGuard;
use modvirt_runtime::{DaemonShared, DriverInfo, InitFuture};
use modvirt_wire::RpcError;
use registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// Test-only: milliseconds the first enumeration waits before it starts,
/// so that tests can catch calls waiting on it.
pub const ENUM_DELAY_ENV: &str = "MODVIRT_NODEDEV_ENUM_DELAY_MS";

/// How long the watcher lets a burst of device events settle before it
/// enumerates.
const SETTLE: Duration = Duration::from_millis(100);

/// Everything the driver keeps once initialised.
#[derive(Debug)]
pub struct Core {
    pub daemon: Arc<DaemonShared>,
    pub host: Arc<Host>,
    /// The root device, read once (its made-up UUID must not change).
    computer: OnceLock<Device>,
    /// The newest finished enumeration.
    current: Mutex<Arc<Registry>>,
    /// Enumerations started, so that an older one finishing late never
    /// replaces a newer one.
    scans: AtomicU64,
    /// Whether the first enumeration has finished.
    ready: watch::Sender<bool>,
    /// Kernel device events (real `/sys` only): whether a list must enumerate again.
    monitor: Option<uevents::Monitor>,
    /// When the newest enumeration started.
    scanned_at: Mutex<Option<std::time::Instant>>,
    /// Clients' event callbacks.
    pub events: events::EventCallbacks,
}

/// A random version-4 UUID from the kernel's generator (libvirt makes the
/// host's up this way when DMI gives none).
fn random_uuid() -> [u8; 16] {
    modvirt_xml::generate_uuid(&mut &modvirt_xml::SharedRng::new(modvirt_runtime::random_seed()))
}

impl Core {
    pub fn new(daemon: Arc<DaemonShared>, host: Host) -> Core {
        Core {
            daemon,
            host: Arc::new(host),
            computer: OnceLock::new(),
            current: Mutex::new(Arc::new(Registry::default())),
            scans: AtomicU64::new(0),
            ready: watch::Sender::new(false),
            monitor: None,
            scanned_at: Mutex::new(None),
            events: events::EventCallbacks::default(),
        }
    }

    /// Starts listening for kernel device events, when `host` is the real
    /// `/sys` (before the first enumeration, so no change is missed).
    pub fn with_device_events(mut self) -> Core {
        if self.host.sysfs == std::path::Path::new("/sys") {
            self.monitor = uevents::Monitor::start(&self.host.sysfs);
        }
        self
    }

    /// The devices as they are now: the last enumeration while no device
    /// event came since and it is younger than [`uevents::MAX_AGE`], else a
    /// new one.
    pub async fn fresh(self: &Arc<Self>) -> Result<Arc<Registry>, RpcError> {
        let young = self
            .scanned_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < uevents::MAX_AGE);
        match &self.monitor {
            Some(m) if young && !m.take_changed() => Ok(self.current()),
            Some(m) => {
                let scanned = self.rescan().await;
                if scanned.is_err() {
                    m.mark_changed();
                }
                scanned
            }
            None => self.rescan().await,
        }
    }

    fn computer(&self) -> Device {
        self.computer
            .get_or_init(|| sysfs::computer(&self.host, random_uuid()))
            .clone()
    }

    /// The last enumeration's devices.
    pub fn current(&self) -> Arc<Registry> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the host's devices again (off the async runtime) and keeps
    /// them as the current list, unless a newer enumeration finished
    /// first; sends the events of what changed since the list it replaces.
    pub async fn rescan(self: &Arc<Self>) -> Result<Arc<Registry>, RpcError> {
        let core = self.clone();
        let generation = self.scans.fetch_add(1, Ordering::Relaxed) + 1;
        // Taken before reading: an event during the read raises the flag
        // again, and its path waits for the next enumeration.
        let touched = match &self.monitor {
            Some(m) => {
                m.take_changed();
                m.take_touched()
            }
            None => uevents::Touched::default(),
        };
        let started = std::time::Instant::now();
        let scanned = tokio::task::spawn_blocking(move || {
            let mut devices = sysfs::scan(&core.host);
            devices.push(core.computer());
            Registry::new(devices, generation)
        })
        .await;
        let reg = match scanned {
            Ok(reg) => Arc::new(reg),
            Err(e) => {
                self.give_back(touched);
                return Err(registry::internal(format!("device enumeration failed: {e}")));
            }
        };
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.generation() >= generation {
            drop(current);
            self.give_back(touched);
            return Ok(reg);
        }
        let old = std::mem::replace(&mut *current, reg.clone());
        *self.scanned_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        // The first enumeration changes nothing: registrations wait for
        // it. Sent under the lock, so that the events of two enumerations
        // never cross.
        if old.generation() > 0 && !self.events.list.is_empty() {
            let changes = changes::between(&old, &reg, &touched);
            for c in &changes {
                tracing::debug!(target: "nodedev", "device event: {c:?}");
            }
            events::emit(&self.events.list, &changes);
        }
        Ok(reg)
    }

    /// Device paths an enumeration took from the monitor but did not use.
    fn give_back(&self, touched: uevents::Touched) {
        if let Some(m) = &self.monitor {
            m.give_back(touched);
        }
    }

    /// While clients listen: enumerates again [`SETTLE`] after device
    /// events, and when the list is older than [`uevents::MAX_AGE`].
    async fn watch(self: Arc<Self>) {
        let wake = self.monitor.as_ref().map(uevents::Monitor::wake);
        loop {
            let woken = match &wake {
                Some(w) => tokio::select! {
                    () = w.notified() => true,
                    () = tokio::time::sleep(uevents::MAX_AGE) => false,
                },
                None => {
                    tokio::time::sleep(uevents::MAX_AGE).await;
                    false
                }
            };
            if woken {
                tokio::time::sleep(SETTLE).await;
            }
            if self.events.list.is_empty() {
                continue;
            }
            if let Err(e) = self.fresh().await {
                tracing::warn!(target: "nodedev", "device enumeration failed: {}", e.text());
            }
        }
    }

    /// Waits, visibly on the call's in-flight record, until the first
    /// enumeration is done.
    pub async fn wait_ready(&self, call: &Arc<CallRecord>) {
        let mut rx = self.ready.subscribe();
        if *rx.borrow_and_update() {
            return;
        }
        let _waiting = call.wait_on(Waiting::Other {
            description: "enumeration".into(),
        });
        // The sender lives as long as `self`: this only ends when ready.
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// The device named `name`, looking again if the last list lacks it.
    pub async fn lookup(self: &Arc<Self>, name: &str) -> Result<Device, RpcError> {
        if let Some(d) = self.current().get(name) {
            return Ok(d.clone());
        }
        self.rescan()
            .await?
            .get(name)
            .cloned()
            .ok_or_else(|| registry::not_found(name))
    }

    /// The first enumeration, in the background: the `enumerate` step of
    /// start-up, with its count.
    fn start_enumeration(self: &Arc<Self>, step: PhaseGuard) {
        let delay = std::env::var(ENUM_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        let hold = self.daemon.idle.inhibit("enumeration");
        let core = self.clone();
        tokio::spawn(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            match core.rescan().await {
                Ok(reg) => {
                    step.detail(format!("{} devices", reg.len()));
                    tracing::info!(target: "nodedev", "enumerated {} devices under {}", reg.len(), core.host.sysfs.display());
                }
                Err(e) => {
                    step.detail("failed");
                    tracing::error!(target: "nodedev", "device enumeration failed: {}", e.text());
                }
            }
            drop(step);
            core.ready.send_replace(true);
            drop(hold);
            core.watch().await;
        });
    }
}

/// `virtnodedevd`'s driver.
#[derive(Debug, Default)]
pub struct NodeDevDriver {
    core: OnceLock<Arc<Core>>,
}

impl DriverInfo for NodeDevDriver {
    fn uri_scheme(&self) -> &'static str {
        "nodedev"
    }

    fn type_name(&self) -> &'static str {
        "nodedev"
    }

    fn init(&self, daemon: Arc<DaemonShared>, phase: PhaseGuard) -> InitFuture {
        let host = Host::from_env();
        tracing::info!(target: "nodedev", "devices from {}", host.sysfs.display());
        let core = Arc::new(Core::new(daemon, host).with_device_events());
        let _ = self.core.set(core.clone());
        // The step outlives the `driver` phase: calls are served meanwhile.
        core.start_enumeration(phase.step("enumerate"));
        Box::pin(async { Ok(()) })
    }

    fn call(&self, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
        let core = self.core.get()?.clone();
        procs::dispatch(core, ctx, payload)
    }
}
