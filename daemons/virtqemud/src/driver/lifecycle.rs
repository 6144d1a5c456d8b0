//! Starting and stopping guests, following QEMU's events, and finding
//! running guests again after a daemon restart.
//!
//! A guest is started paused, set up over QMP, then continued. Its QEMU
//! runs in a session of its own, so it outlives the daemon; the status file
//! (`run/libvirt/qemu/NAME.xml`) is how the next daemon finds it. One task
//! per guest reads QMP events; when QEMU exits (the event stream ends) the
//! guest is marked shut off with the reason the stop was asked for, its
//! status file removed and, if it was transient, the domain forgotten.

use super::Core;
use super::domains::{Dom, Running, failed, internal, invalid};
use super::events::DomainEvent;
use super::launch;
use super::netports;
use super::store::Status;
use crate::domain::{DomainDef, FormatOptions};
use crate::qemu::process::{self, Launch};
use crate::qemu::{QemuProcess, QmpEvents};
use modvirt_runtime::observe::inflight::Waiting;
use modvirt_wire::RpcError;
use modvirt_wire::domain::{event, reason, state};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long QEMU gets to accept its monitor connection.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(30);
/// How long destroy waits after SIGTERM before SIGKILL.
const DESTROY_GRACE: Duration = Duration::from_secs(3);
/// How long a job waits for QEMU's answer to a monitor command. libvirt
/// waits forever; so, in practice, do we — `virsh destroy` kills QEMU
/// without waiting for the job, which fails the command at once.
const QMP_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The idle-timer reason a running guest holds.
pub const GUESTS_REASON: &str = "running guests";

fn state_name(s: i32) -> &'static str {
    match s {
        state::RUNNING => "running",
        state::PAUSED => "paused",
        state::SHUTDOWN => "shutdown",
        state::CRASHED => "crashed",
        _ => "shutoff",
    }
}

fn state_from_name(s: &str) -> i32 {
    match s {
        "running" => state::RUNNING,
        "paused" => state::PAUSED,
        "shutdown" => state::SHUTDOWN,
        "crashed" => state::CRASHED,
        _ => state::SHUTOFF,
    }
}

fn qmp_error(e: impl std::fmt::Display) -> RpcError {
    internal(e.to_string())
}

/// What QEMU allocated at start that the live definition shows: the pty of
/// the serial port (and its console) and the VNC port.
async fn fill_runtime_details(qmp: &crate::qemu::Qmp, def: &mut DomainDef) {
    if !def.devices.serials.is_empty()
        && let Ok(v) = qmp.execute("query-chardev", None).await
    {
        let pty = v.as_array().into_iter().flatten().find_map(|c| {
            (c.get("label")?.as_str()? == "charserial0")
                .then(|| {
                    c.get("filename")?
                        .as_str()?
                        .strip_prefix("pty:")
                        .map(str::to_owned)
                })
                .flatten()
        });
        if let Some(path) = pty {
            for c in def
                .devices
                .serials
                .iter_mut()
                .chain(def.devices.consoles.iter_mut())
                .take(2)
            {
                c.source_path = Some(path.clone());
            }
        }
    }
    if let Some(g) = def.devices.graphics.first_mut()
        && let Ok(v) = qmp.execute("query-vnc", None).await
        && let Some(port) = v
            .get("service")
            .and_then(|p| p.as_str())
            .and_then(|p| p.parse().ok())
    {
        g.port = Some(port);
    }
}

impl Core {
    /// Starts `dom` (the caller holds its job lock). `paused` leaves the
    /// CPUs stopped. `call` is marked as waiting on QEMU meanwhile.
    pub async fn start_domain(
        self: &Arc<Self>,
        dom: &Arc<Dom>,
        paused: bool,
        call: Option<&Arc<modvirt_runtime::observe::inflight::CallRecord>>,
    ) -> Result<(), RpcError> {
        let mut def = {
            let st = dom.lock();
            if st.run.is_some() {
                return Err(invalid("domain is already running"));
            }
            st.def.clone()
        };
        let id = self.next_id();
        let dir = self.store.domain_dir(id, &def.name);
        for d in [&dir, &self.store.log_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| internal(format!("cannot create {}: {e}", d.display())))?;
        }
        let qmp_socket = dir.join("monitor.sock");
        let pidfile = dir.join("qemu.pid");
        // Taps on the guest's networks; deleted again if the start fails.
        let plugged = netports::plug(&self.daemon, call, &mut def).await?;
        let spec = launch::spec(&def, &qmp_socket, &pidfile, self.kvm)?;
        let args = spec.to_args().map_err(|e| internal(e.to_string()))?;
        let log_path = self.store.log_path(&def.name);
        let _wait = call.map(|c| {
            c.wait_on(Waiting::Process {
                description: format!("qemu start of '{}'", def.name),
                pid: None,
            })
        });
        let emulator = self.emulator_for(&def);
        let started = process::start(&Launch {
            name: &def.name,
            binary: &emulator,
            args: &args,
            log_path: &log_path,
            pidfile: &pidfile,
            qmp_socket: &qmp_socket,
            timeout: MONITOR_TIMEOUT,
        })
        .await
        .map_err(|e| internal(e.to_string()))?;
        let pid = started.process.pid();
        if !paused && let Err(e) = started.qmp.execute("cont", None).await {
            let _ = started.process.terminate(DESTROY_GRACE).await;
            return Err(qmp_error(e));
        }
        fill_runtime_details(&started.qmp, &mut def).await;
        let (st_now, reason_now) = if paused {
            (state::PAUSED, reason::paused::USER)
        } else {
            (state::RUNNING, reason::running::BOOTED)
        };
        let running = Running {
            id,
            process: started.process,
            qmp: started.qmp,
            live: def,
            state: st_now,
            reason: reason_now,
            since: Instant::now(),
            stopping: None,
            pause_reason: None,
            _hold: self.daemon.idle.inhibit(GUESTS_REASON),
        };
        self.attach(dom, running, started.events);
        plugged.keep();
        self.save_status(dom);
        self.emit(
            dom,
            DomainEvent::Lifecycle {
                event: event::STARTED,
                detail: event::started::BOOTED,
            },
        );
        if paused {
            self.emit(
                dom,
                DomainEvent::Lifecycle {
                    event: event::SUSPENDED,
                    detail: event::suspended::PAUSED,
                },
            );
        }
        tracing::info!(target: "qemu", "guest '{}' started (pid {pid}, id {id})", dom.name);
        Ok(())
    }

    /// Makes `running` the guest of `dom` and follows its events.
    fn attach(self: &Arc<Self>, dom: &Arc<Dom>, running: Running, events: QmpEvents) {
        let pid = running.process.pid();
        dom.lock().run = Some(running);
        let core = self.clone();
        let dom = dom.clone();
        tokio::spawn(async move { core.follow(dom, pid, events).await });
    }

    /// Reads one guest's QMP events until QEMU exits, then finishes it.
    async fn follow(self: Arc<Self>, dom: Arc<Dom>, pid: i32, mut events: QmpEvents) {
        let mut powered_down = false;
        while let Some(ev) = events.recv().await {
            let change = {
                let mut st = dom.lock();
                let Some(run) = st.run.as_mut().filter(|r| r.process.pid() == pid) else {
                    return;
                };
                match ev.name.as_str() {
                    "STOP" if run.state == state::RUNNING => {
                        run.state = state::PAUSED;
                        run.reason = run.pause_reason.take().unwrap_or(reason::paused::UNKNOWN);
                        run.since = Instant::now();
                        Some((event::SUSPENDED, event::suspended::PAUSED))
                    }
                    "RESUME" if run.state != state::RUNNING => {
                        run.state = state::RUNNING;
                        run.reason = reason::running::UNPAUSED;
                        run.since = Instant::now();
                        Some((event::RESUMED, event::resumed::UNPAUSED))
                    }
                    "SHUTDOWN" => {
                        powered_down = true;
                        run.state = state::SHUTDOWN;
                        run.reason = reason::shutdown::USER;
                        run.since = Instant::now();
                        let guest = ev.data.get("guest").and_then(|g| g.as_bool()).unwrap_or(false);
                        Some((
                            event::SHUTDOWN,
                            if guest {
                                event::shutdown::GUEST
                            } else {
                                event::shutdown::HOST
                            },
                        ))
                    }
                    "GUEST_PANICKED" => {
                        run.state = state::CRASHED;
                        run.reason = reason::crashed::PANICKED;
                        run.since = Instant::now();
                        Some((event::CRASHED, event::crashed::PANICKED))
                    }
                    "RESET" => {
                        drop(st);
                        self.emit(&dom, DomainEvent::Reboot);
                        None
                    }
                    _ => None,
                }
            };
            if let Some((event, detail)) = change {
                self.save_status(&dom);
                self.emit(&dom, DomainEvent::Lifecycle { event, detail });
            }
        }
        // The monitor closed: QEMU is exiting or gone.
        let process = dom
            .lock()
            .run
            .as_ref()
            .filter(|r| r.process.pid() == pid)
            .map(|r| r.process.clone());
        if let Some(p) = process {
            p.wait_exit(Duration::from_secs(10)).await;
        }
        let default = if powered_down {
            reason::shutoff::SHUTDOWN
        } else {
            reason::shutoff::CRASHED
        };
        self.finish(&dom, pid, default);
    }

    /// Marks the guest `pid` of `dom` as shut off (once: later calls for
    /// the same pid do nothing).
    pub fn finish(self: &Arc<Self>, dom: &Arc<Dom>, pid: i32, default_reason: i32) {
        let (reason_now, persistent) = {
            let mut st = dom.lock();
            let Some(run) = st.run.take_if(|r| r.process.pid() == pid) else {
                return;
            };
            let r = run.stopping.unwrap_or(default_reason);
            st.shutoff_reason = r;
            // Its taps go before anyone hears it stopped — under the lock,
            // so that a racing `finish` (destroy while the event task sees
            // QEMU exit) returns only once they are gone.
            netports::unplug(&run.live);
            (r, st.persistent)
        };
        if let Err(e) = self.store.delete_status(&dom.name) {
            tracing::warn!(target: "qemu", "cannot remove the status of '{}': {e}", dom.name);
        }
        let detail = match reason_now {
            reason::shutoff::DESTROYED => event::stopped::DESTROYED,
            reason::shutoff::CRASHED => event::stopped::CRASHED,
            reason::shutoff::FAILED => event::stopped::FAILED,
            _ => event::stopped::SHUTDOWN,
        };
        self.emit(
            dom,
            DomainEvent::Lifecycle {
                event: event::STOPPED,
                detail,
            },
        );
        if !persistent {
            self.domains.remove(dom);
        }
        tracing::info!(target: "qemu", "guest '{}' (pid {pid}) stopped", dom.name);
    }

    /// Kills the guest of `dom` — before taking its job lock, as libvirt
    /// does, so that a job stuck on an unresponsive QEMU cannot keep the
    /// guest from being destroyed (its monitor command fails once QEMU is
    /// gone).
    pub async fn destroy_domain(self: &Arc<Self>, dom: &Arc<Dom>) -> Result<(), RpcError> {
        let process = {
            let mut st = dom.lock();
            let run = st.run.as_mut().ok_or_else(|| invalid("domain is not running"))?;
            run.stopping = Some(reason::shutoff::DESTROYED);
            run.process.clone()
        };
        process
            .terminate(DESTROY_GRACE)
            .await
            .map_err(|e| failed(format!("failed to kill qemu process with SIGKILL: {e}")))?;
        self.finish(dom, process.pid(), reason::shutoff::DESTROYED);
        Ok(())
    }

    /// Runs a QMP command on the guest of `dom`, marked as the call's wait.
    pub async fn qmp(
        &self,
        dom: &Dom,
        command: &str,
        call: &Arc<modvirt_runtime::observe::inflight::CallRecord>,
    ) -> Result<serde_json::Value, RpcError> {
        let (qmp, pid) = {
            let st = dom.lock();
            let run = st.run.as_ref().ok_or_else(|| invalid("domain is not running"))?;
            (run.qmp.clone(), run.process.pid())
        };
        let _wait = call.wait_on(Waiting::Process {
            description: format!("qmp reply from qemu pid {pid} ({command})"),
            pid: Some(pid),
        });
        qmp.execute_with_timeout(command, None, QMP_WAIT)
            .await
            .map_err(qmp_error)
    }

    /// Sets the state of a running guest after a command that changed it.
    pub fn set_state(
        self: &Arc<Self>,
        dom: &Arc<Dom>,
        new_state: i32,
        new_reason: i32,
        ev: Option<(i32, i32)>,
    ) {
        {
            let mut st = dom.lock();
            let Some(run) = st.run.as_mut() else { return };
            if run.state == new_state {
                return;
            }
            run.state = new_state;
            run.reason = new_reason;
            run.since = Instant::now();
        }
        self.save_status(dom);
        if let Some((event, detail)) = ev {
            self.emit(dom, DomainEvent::Lifecycle { event, detail });
        }
    }

    /// Writes the status file of a running guest.
    pub fn save_status(&self, dom: &Dom) {
        let status = {
            let st = dom.lock();
            let Some(run) = st.run.as_ref() else { return };
            Status {
                state: state_name(run.state).into(),
                reason: run.reason.to_string(),
                pid: run.process.pid(),
                id: run.id,
                monitor: run.qmp.path().to_owned(),
                domain_xml: run.live.to_xml(&FormatOptions { id: Some(run.id) }),
            }
        };
        if let Err(e) = self.store.save_status(&dom.name, &status) {
            tracing::warn!(target: "qemu", "cannot write the status of '{}': {e}", dom.name);
        }
    }

    /// Finds the guests a previous daemon left running (from their status
    /// files); returns how many are running again. A guest whose QEMU is
    /// gone is marked shut off.
    pub async fn reconnect(self: &Arc<Self>) -> usize {
        let (statuses, problems) = self.store.statuses();
        for p in problems {
            tracing::warn!(target: "qemu", "{p}");
        }
        let mut found = 0;
        for (name, text) in statuses {
            match self.reconnect_one(&name, &text).await {
                Ok(true) => found += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(target: "qemu", "guest '{name}' not reconnected: {e}");
                    let _ = self.store.delete_status(&name);
                }
            }
        }
        found
    }

    async fn reconnect_one(self: &Arc<Self>, name: &str, text: &str) -> Result<bool, String> {
        let status = Status::parse(text)?;
        let live = DomainDef::parse(&status.domain_xml, &mut self.rng()).map_err(|e| e.message())?;
        let dom = match self.domains.by_name(name) {
            Ok(d) => d,
            Err(_) => {
                let d = Dom::new(live.clone(), false, false);
                self.domains.insert(d.clone()).map_err(|e| e.text().to_owned())?;
                d
            }
        };
        let pidfile = self.store.domain_dir(status.id, name).join("qemu.pid");
        let log = self.store.log_path(name);
        let Some(process) = QemuProcess::adopt(status.pid, &self.emulator_for(&live), &log, &pidfile) else {
            // QEMU went away while no daemon watched it: so do its taps.
            netports::unplug(&live);
            let mut st = dom.lock();
            st.shutoff_reason = reason::shutoff::UNKNOWN;
            let persistent = st.persistent;
            drop(st);
            let _ = self.store.delete_status(name);
            if !persistent {
                self.domains.remove(&dom);
            }
            return Ok(false);
        };
        let (qmp, events) = process
            .connect_monitor(name, &status.monitor, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        let mut state_now = state_from_name(&status.state);
        let mut reason_now: i32 = status.reason.parse().unwrap_or(0);
        if let Ok(v) = qmp.execute("query-status", None).await {
            let running = v.get("running").and_then(|r| r.as_bool()).unwrap_or(false);
            if running && state_now != state::RUNNING {
                (state_now, reason_now) = (state::RUNNING, reason::running::UNPAUSED);
            } else if !running && state_now == state::RUNNING {
                (state_now, reason_now) = (state::PAUSED, reason::paused::UNKNOWN);
            }
        }
        self.bump_id(status.id);
        netports::reserve(&live);
        let running = Running {
            id: status.id,
            process,
            qmp,
            live,
            state: state_now,
            reason: reason_now,
            since: Instant::now(),
            stopping: None,
            pause_reason: None,
            _hold: self.daemon.idle.inhibit(GUESTS_REASON),
        };
        self.attach(&dom, running, events);
        self.save_status(&dom);
        tracing::info!(target: "qemu", "guest '{name}' (pid {}) found running again", status.pid);
        Ok(true)
    }
}
