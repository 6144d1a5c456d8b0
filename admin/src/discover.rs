//! Discovery: which modvirt daemons exist and what state they are in,
//! **without waking any of them** (PRODUCT.md §2, rule 1).
//!
//! Under socket activation, connecting to a sleeping daemon's admin socket
//! starts it. So discovery only reads what daemons leave behind:
//!
//! - the state file `RUN/modvirt/<d>.json` (a `StateFile`, replaced
//!   atomically by the daemon), checked against `/proc/PID/stat` so a
//!   daemon that died without a word, or whose pid was reused, shows as
//!   `crashed` rather than `running` ([`procfs`]);
//! - the lifecycle log `RUN/modvirt/<d>.log` (+ `.log.1`) for the history
//!   of runs ([`lifecycle`]);
//! - where systemd runs, the state of the daemon's units ([`systemd`]), so
//!   a daemon asleep behind a listening socket shows as `socket-listening`.
//!
//! `RUN` is `ROOT/run/libvirt` with `--root ROOT` / `MODVIRT_ROOT`, else
//! `/run/libvirt` for root and `$XDG_RUNTIME_DIR/libvirt` for other users.
//!
//! Only a daemon found [`DaemonState::Running`] may be connected to, and
//! [`KnownDaemon::observe`] is the one way to do it: it enters the daemon's
//! exit [`gate`] (refused while the daemon is exiting), re-checks the
//! process, and holds the gate until the daemon has accepted the
//! connection, so a daemon cannot idle-exit between the check and the
//! connect.

pub mod gate;
pub mod lifecycle;
pub mod procfs;
pub mod systemd;

use crate::observe::{ObserveClient, ObserveError};
use lifecycle::History;
use modvirt_wire::observe::{ExitReason, SCHEMA, StateFile};
use procfs::Liveness;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use systemd::{UnitSource, Units};

/// The daemons modvirt ships; shown as `never-started` with `--all`.
pub const MODVIRT_DAEMONS: &[&str] = &[
    "virtqemud",
    "virtxend",
    "virtlxcd",
    "virtnetworkd",
    "virtstoraged",
    "virtsecretd",
    "virtnodedevd",
    "virtinterfaced",
    "virtnwfilterd",
    "virtproxyd",
];

/// Where the daemons of one host (or one test root) keep their runtime files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// `…/run/libvirt`: sockets; state files are in its `modvirt/`.
    pub run_dir: PathBuf,
    /// Given explicitly (`--root`): systemd's units are not these daemons.
    pub explicit: bool,
    /// libvirt's privileged layout (system daemons) rather than a session.
    pub system: bool,
}

impl Root {
    /// The layout under a root prefix, as `--root DIR` gives the daemons.
    pub fn under(dir: &Path) -> Root {
        Root {
            run_dir: dir.join("run/libvirt"),
            explicit: true,
            system: true,
        }
    }

    /// `root` if given, else system paths for uid 0, session paths otherwise.
    pub fn resolve(root: Option<&Path>) -> Root {
        if let Some(dir) = root {
            return Root::under(dir);
        }
        if nix::unistd::geteuid().is_root() {
            return Root {
                run_dir: PathBuf::from("/run/libvirt"),
                explicit: false,
                system: true,
            };
        }
        let run_dir = match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) => PathBuf::from(d).join("libvirt"),
            None => {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into())).join(".cache/libvirt")
            }
        };
        Root {
            run_dir,
            explicit: false,
            system: false,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.run_dir.join("modvirt")
    }

    pub fn state_file(&self, daemon: &str) -> PathBuf {
        self.state_dir().join(format!("{daemon}.json"))
    }

    pub fn lifecycle_log(&self, daemon: &str) -> PathBuf {
        self.state_dir().join(format!("{daemon}.log"))
    }
}

/// A daemon's state as an observer derives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DaemonState {
    /// Its process is alive (state file `starting`, `running` or `stopping`).
    Running,
    /// The last run ended by idle timeout.
    IdleExited,
    /// The last run ended by a signal.
    Stopped,
    /// The last run failed to start.
    Failed,
    /// The last run ended without a word, or its pid now belongs to another process.
    Crashed,
    /// Not running; systemd listens on its socket and will start it on demand.
    SocketListening,
    /// No trace of it ever running.
    NeverStarted,
    /// Its state file cannot be read or understood.
    Unknown,
}

impl DaemonState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::IdleExited => "idle-exited",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Crashed => "crashed",
            Self::SocketListening => "socket-listening",
            Self::NeverStarted => "never-started",
            Self::Unknown => "unknown",
        }
    }

    /// The state a run's exit reason leaves.
    pub fn after_exit(reason: &ExitReason) -> DaemonState {
        match reason {
            ExitReason::IdleExit => Self::IdleExited,
            ExitReason::Signal => Self::Stopped,
            ExitReason::StartupFailed => Self::Failed,
            ExitReason::Crashed => Self::Crashed,
        }
    }
}

/// One daemon, as found.
#[derive(Debug, Clone)]
pub struct KnownDaemon {
    pub name: String,
    pub state: DaemonState,
    /// Why the state is what it is, when that is not obvious: `pid 4242 is
    /// gone`, `unreadable state file: …`, `starting`.
    pub detail: Option<String>,
    pub state_file: Option<StateFile>,
    pub history: History,
    /// systemd's units, where systemd runs.
    pub units: Option<Units>,
}

impl KnownDaemon {
    pub fn is_running(&self) -> bool {
        self.state == DaemonState::Running
    }

    /// The live process's pid (`None` unless running).
    pub fn pid(&self) -> Option<i32> {
        if !self.is_running() {
            return None;
        }
        match &self.state_file {
            Some(sf) => Some(sf.pid),
            None => self.units.as_ref()?.service.as_ref()?.main_pid,
        }
    }

    /// The admin socket an observer may connect to: only while running.
    pub fn admin_socket(&self) -> Option<&Path> {
        match &self.state_file {
            Some(sf) if self.is_running() => Some(Path::new(&sf.admin_socket)),
            _ => None,
        }
    }

    /// Connects to the daemon's OBSERVE program — only if it is running,
    /// re-checked right now (rule 1: never wake a sleeping daemon).
    pub fn observe(&self, timeout: Duration) -> Result<ObserveClient, ObserveError> {
        let (Some(sf), Some(path)) = (&self.state_file, self.admin_socket()) else {
            return Err(ObserveError::NotRunning {
                daemon: self.name.clone(),
                state: self.state.as_str(),
            });
        };
        let exiting = || ObserveError::NotRunning {
            daemon: self.name.clone(),
            state: "exiting",
        };
        let pass = gate::enter(sf.exit_gate.as_deref()).map_err(|gate::Exiting| exiting())?;
        if procfs::liveness(sf.pid, sf.pid_start_ticks) != Liveness::Alive {
            return Err(ObserveError::NotRunning {
                daemon: self.name.clone(),
                state: "exited just now",
            });
        }
        // OPEN answered: the daemon has accepted us; it may exit from now on.
        let client = ObserveClient::connect(path, timeout);
        drop(pass);
        client
    }
}

/// What to look for.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscoverOptions<'a> {
    /// Also list modvirt daemons never seen (`never-started`).
    pub all: bool,
    /// systemd's unit states (`None`: don't ask).
    pub units: Option<&'a dyn UnitSource>,
}

/// The outcome of [`discover`].
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Sorted by name.
    pub daemons: Vec<KnownDaemon>,
    /// Problems that concern no single daemon (state directory, systemd).
    pub warnings: Vec<String>,
}

impl Discovery {
    pub fn find(&self, name: &str) -> Option<&KnownDaemon> {
        self.daemons.iter().find(|d| d.name == name)
    }
}

/// Finds every daemon that left a state file under `root`, plus (with
/// `all`, or when systemd knows their units) the modvirt daemons that did not.
pub fn discover(root: &Root, opts: &DiscoverOptions<'_>) -> Discovery {
    let mut out = Discovery::default();
    let mut found: BTreeMap<String, KnownDaemon> = BTreeMap::new();
    let dir = root.state_dir();
    match state_file_names(&dir) {
        Ok(names) => {
            for name in names {
                let d = from_state_file(root, &name);
                found.insert(name, d);
            }
        }
        Err(e) => out
            .warnings
            .push(format!("cannot read state directory {}: {e}", dir.display())),
    }

    let mut names: Vec<&str> = MODVIRT_DAEMONS.to_vec();
    names.extend(
        found
            .keys()
            .map(String::as_str)
            .filter(|n| !MODVIRT_DAEMONS.contains(n)),
    );
    let units = match opts.units.map(|src| src.units(&names)) {
        Some(Ok(u)) => u,
        Some(Err(e)) => {
            out.warnings.push(format!("systemd: {e}"));
            Default::default()
        }
        None => Default::default(),
    };

    for &name in MODVIRT_DAEMONS {
        if found.contains_key(name) {
            continue;
        }
        let u = units.get(name);
        if opts.all || u.is_some_and(Units::any_loaded) {
            let history = lifecycle::read_history(&root.lifecycle_log(name));
            let d = KnownDaemon {
                name: name.to_owned(),
                state: DaemonState::NeverStarted,
                detail: None,
                state_file: None,
                history,
                units: None,
            };
            found.insert(name.to_owned(), d);
        }
    }
    for d in found.values_mut() {
        if let Some(u) = units.get(&d.name) {
            apply_units(d, u.clone());
        }
    }
    out.daemons = found.into_values().collect();
    out
}

/// Names `<d>` of the `<d>.json` files in the state directory; a missing
/// directory is no daemon. Temporary files (`.x.json.tmp`, dot files) are skipped.
fn state_file_names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let file = entry?.file_name();
        let Some(file) = file.to_str() else { continue };
        if let Some(name) = file.strip_suffix(".json")
            && !name.is_empty()
            && !name.starts_with('.')
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn from_state_file(root: &Root, name: &str) -> KnownDaemon {
    let history = lifecycle::read_history(&root.lifecycle_log(name));
    let (state, detail, state_file) = match read_state_file(&root.state_file(name)) {
        Ok(sf) => {
            let (state, mut detail) = derive_state(&sf, procfs::liveness(sf.pid, sf.pid_start_ticks));
            if sf.name != name {
                let note = format!("state file names daemon {:?}", sf.name);
                detail = Some(match detail {
                    Some(d) => format!("{d}; {note}"),
                    None => note,
                });
            }
            (state, detail, Some(sf))
        }
        Err(e) => (
            DaemonState::Unknown,
            Some(format!("unreadable state file: {e}")),
            None,
        ),
    };
    KnownDaemon {
        name: name.to_owned(),
        state,
        detail,
        state_file,
        history,
        units: None,
    }
}

/// Reads and checks a state file; the error says what is wrong with it.
pub fn read_state_file(path: &Path) -> Result<StateFile, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() > 1 << 20 {
        return Err(format!("{} bytes is too large for a state file", bytes.len()));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    match value.get("schema").and_then(serde_json::Value::as_u64) {
        Some(s) if s > u64::from(SCHEMA) => {
            return Err(format!("schema {s} is newer than this tool's {SCHEMA}"));
        }
        _ => {}
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// The state a state file and the process check imply, with a detail.
pub fn derive_state(sf: &StateFile, live: Liveness) -> (DaemonState, Option<String>) {
    let pid = sf.pid;
    match sf.state.as_str() {
        "starting" | "running" | "stopping" => match (live, &sf.exit) {
            (Liveness::Alive, _) => (
                DaemonState::Running,
                (sf.state != "running").then(|| sf.state.clone()),
            ),
            (Liveness::Unknown, _) => (
                DaemonState::Unknown,
                Some(format!("cannot read /proc/{pid}/stat")),
            ),
            (_, Some(exit)) => (DaemonState::after_exit(&exit.reason), exit.detail.clone()),
            (Liveness::Gone, None) => (
                DaemonState::Crashed,
                Some(format!("state file says {} but pid {pid} is gone", sf.state)),
            ),
            (Liveness::Zombie, None) => (
                DaemonState::Crashed,
                Some(format!("pid {pid} has exited (zombie) without a word")),
            ),
            (Liveness::Reused { start_ticks }, None) => (
                DaemonState::Crashed,
                Some(format!(
                    "pid {pid} now belongs to another process (started at tick {start_ticks}, \
                     not {})",
                    sf.pid_start_ticks
                )),
            ),
        },
        "exited" => match &sf.exit {
            Some(exit) => (
                DaemonState::after_exit(&exit.reason),
                exit.detail.clone().or_else(|| exit.signal.clone()),
            ),
            None => (
                DaemonState::Stopped,
                Some("exited without a recorded reason".to_owned()),
            ),
        },
        other => (
            DaemonState::Unknown,
            Some(format!("unreadable state file: unknown state {other:?}")),
        ),
    }
}

/// Folds systemd's view in: a daemon asleep behind a listening socket is
/// `socket-listening`; one only systemd knows gets its state from its units.
fn apply_units(d: &mut KnownDaemon, units: Units) {
    let listening = units.listening_socket().map(str::to_owned);
    let asleep = matches!(
        d.state,
        DaemonState::IdleExited | DaemonState::Stopped | DaemonState::NeverStarted
    );
    if d.state_file.is_none() && d.state != DaemonState::Unknown {
        if units.service_active() {
            d.state = DaemonState::Running;
            d.detail = Some("per systemd; no modvirt state file (not observable)".to_owned());
        } else if units.service_failed() {
            d.state = DaemonState::Failed;
            d.detail = Some("per systemd".to_owned());
        }
    }
    if let Some(socket) = listening
        && asleep
        && !units.service_active()
    {
        let before = d.state;
        d.state = DaemonState::SocketListening;
        d.detail = Some(match before {
            DaemonState::NeverStarted => format!("{socket} listening"),
            _ => format!("{socket} listening; last run {}", before.as_str()),
        });
    }
    d.units = Some(units);
}

#[cfg(test)]
mod tests;
