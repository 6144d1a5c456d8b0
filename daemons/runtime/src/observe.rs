//! The observability core: what every daemon can say about itself.
//!
//! [`Observer`] is owned by the daemon and fed by the runtime as things
//! happen: why this run started ([`cause`]), its start-up [`phases`], the
//! calls in flight and what they wait on ([`inflight`]), job locks
//! ([`joblock`]), metrics ([`metrics`]) and spans ([`spans`]). The state file
//! and lifecycle log ([`lifecycle`]) let observers learn about a daemon
//! without connecting to it; [`snapshot`] assembles the STATUS document and
//! [`program`] serves the OBSERVE program on the admin socket.
//!
//! Two rules hold everywhere: observing never wakes a sleeping daemon (the
//! state file is enough to tell it sleeps) and observing never keeps it
//! awake (OBSERVE-only connections are passive).

pub mod cause;
pub mod gate;
pub mod inflight;
pub mod joblock;
pub mod lifecycle;
pub mod metrics;
pub mod phases;
pub mod program;
pub mod snapshot;
pub mod spans;

use lifecycle::StateDir;
use modvirt_wire::observe::{
    Activation, Exit, ExitReason, Lifecycle, LifecycleEvent, Process, SCHEMA, StateFile,
};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything a daemon records about itself.
#[derive(Debug)]
pub struct Observer {
    pub name: String,
    pub pid: i32,
    pub exec_ms: u64,
    pub ready_ms: OnceLock<u64>,
    pub first_client_ms: OnceLock<u64>,
    activation: Mutex<Activation>,
    pub phases: phases::Phases,
    pub inflight: Arc<inflight::InflightRegistry>,
    pub job_locks: Arc<joblock::JobLocks>,
    state: Mutex<Option<(StateDir, StateFile)>>,
    gate: Mutex<Option<gate::ExitGate>>,
    stopping: std::sync::atomic::AtomicBool,
    call_spans: std::sync::atomic::AtomicBool,
}

impl Observer {
    pub fn new(name: &str, exec_ms: u64, activation: Activation, phases: phases::Phases) -> Self {
        Self {
            name: name.to_owned(),
            pid: std::process::id() as i32,
            exec_ms,
            ready_ms: OnceLock::new(),
            first_client_ms: OnceLock::new(),
            activation: Mutex::new(activation),
            phases,
            inflight: Arc::default(),
            job_locks: Arc::default(),
            state: Mutex::new(None),
            gate: Mutex::new(None),
            stopping: std::sync::atomic::AtomicBool::new(false),
            call_spans: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether every RPC call gets a span (config `call_spans`, default on).
    pub fn call_spans(&self) -> bool {
        self.call_spans.load(Ordering::Relaxed)
    }

    pub fn set_call_spans(&self, on: bool) {
        self.call_spans.store(on, Ordering::Relaxed);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn activation(&self) -> Activation {
        lock(&self.activation).clone()
    }

    /// Records the first accepted client; for a socket activation, the
    /// first client on the activating socket is the one that woke us.
    pub fn client_accepted(&self, fd_name: &str, who: Process) {
        let _ = self.first_client_ms.set(unix_ms());
        let mut a = lock(&self.activation);
        if a.socket.as_deref() == Some(fd_name) && a.client.is_none() {
            a.client = Some(who);
            let activation = a.clone();
            drop(a);
            self.update_state(|s| s.activation = activation);
        }
    }

    fn log(&self, dir: &StateDir, event: Lifecycle) {
        let e = LifecycleEvent {
            at_ms: unix_ms(),
            pid: self.pid,
            event,
        };
        if let Err(err) = dir.log(&e) {
            tracing::warn!(target: "observe.state", "cannot append to {}: {err}", dir.log_path().display());
        }
    }

    /// Opens the state directory once the pid file is ours: records a
    /// previous run that crashed, then this run as `starting`.
    pub fn attach_state_dir(&self, dir: StateDir, admin_socket: &str) {
        let prev = dir.previous();
        let gate = match gate::ExitGate::prepare(&dir.gate_path()) {
            Ok(g) => Some(g),
            Err(err) => {
                tracing::warn!(target: "observe.state", "no exit gate: cannot create {}: {err}", dir.gate_path().display());
                None
            }
        };
        *lock(&self.gate) = gate.clone();
        if let Some(p) = &prev
            && p.exit.is_none()
            && p.state != "exited"
        {
            self.log(
                &dir,
                Lifecycle::Crashed {
                    crashed_pid: p.pid,
                    detected_by: format!("{} start (pid {})", self.name, self.pid),
                },
            );
            let mut crashed = p.clone();
            crashed.state = "exited".into();
            crashed.exit = Some(Exit {
                reason: ExitReason::Crashed,
                at_ms: unix_ms(),
                signal: None,
                detail: Some("found by the next start".into()),
            });
            let _ = dir.write(&crashed);
        }
        let state = StateFile {
            schema: SCHEMA,
            name: self.name.clone(),
            pid: self.pid,
            pid_start_ticks: lifecycle::pid_start_ticks(self.pid).unwrap_or(0),
            state: "starting".into(),
            activation: self.activation(),
            exec_ms: self.exec_ms,
            ready_ms: None,
            exit: None,
            admin_socket: admin_socket.to_owned(),
            exit_gate: gate.as_ref().map(|g| g.path().display().to_string()),
            runs: prev.map(|p| p.runs + 1).unwrap_or(1),
            updated_ms: unix_ms(),
        };
        self.log(
            &dir,
            Lifecycle::Activated {
                activation: state.activation.clone(),
            },
        );
        if let Err(err) = dir.write(&state) {
            tracing::warn!(target: "observe.state", "cannot write {}: {err}", dir.state_path().display());
        }
        *lock(&self.state) = Some((dir, state));
    }

    fn update_state(&self, f: impl FnOnce(&mut StateFile)) {
        let mut st = lock(&self.state);
        if let Some((dir, state)) = st.as_mut() {
            f(state);
            state.updated_ms = unix_ms();
            if let Err(err) = dir.write(state) {
                tracing::warn!(target: "observe.state", "cannot write {}: {err}", dir.state_path().display());
            }
        }
    }

    fn log_event(&self, event: Lifecycle) {
        if let Some((dir, _)) = lock(&self.state).as_ref() {
            self.log(dir, event);
        }
    }

    /// The exit gate, once the state directory is attached (see [`gate`]).
    pub fn exit_gate(&self) -> Option<gate::ExitGate> {
        lock(&self.gate).clone()
    }

    /// The daemon serves.
    pub fn ready(&self) {
        let now = unix_ms();
        let _ = self.ready_ms.set(now);
        let startup_ms = self.phases.since_exec().as_secs_f64() * 1e3;
        self.phases.finish();
        self.update_state(|s| {
            s.state = "running".into();
            s.ready_ms = Some(now);
        });
        self.log_event(Lifecycle::Ready { startup_ms });
    }

    /// The daemon is shutting down (before sockets close).
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.update_state(|s| s.state = "stopping".into());
    }

    /// The run ended; `event` says how.
    pub fn exited(&self, reason: ExitReason, event: Lifecycle) {
        let signal = match &event {
            Lifecycle::Stopped { signal } => Some(signal.clone()),
            _ => None,
        };
        let detail = match &event {
            Lifecycle::StartupFailed { error } => Some(error.clone()),
            _ => None,
        };
        self.log_event(event);
        self.update_state(|s| {
            s.state = "exited".into();
            s.exit = Some(Exit {
                reason,
                at_ms: unix_ms(),
                signal,
                detail,
            });
        });
    }
}
