//! The state file and lifecycle log a daemon leaves in
//! `ROOT/run/libvirt/modvirt/`, so observers can learn about a daemon that
//! is asleep without connecting to it (which would wake it).
//!
//! - `<d>.json`: one [`StateFile`], replaced atomically (write a temporary
//!   file, fsync-free rename) at every transition: starting, running,
//!   stopping, exited.
//! - `<d>.log`: JSON lines of [`LifecycleEvent`] (activated, ready,
//!   idle-exit, stopped, startup-failed, crashed), appended; once it passes
//!   [`LOG_MAX`] bytes it is rotated to `<d>.log.1` (one generation kept).
//!
//! A run that ended without saying so (its state file still says it runs)
//! is recorded as `crashed` by the next start, which holds the pid-file lock
//! and so knows the old process is gone.

use modvirt_wire::observe::{LifecycleEvent, StateFile};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Size at which the lifecycle log is rotated.
pub const LOG_MAX: u64 = 64 * 1024;

/// The directory `ROOT/run/libvirt/modvirt` for one daemon.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
    name: String,
}

impl StateDir {
    /// Creates the directory if needed.
    pub fn open(run_dir: &Path, name: &str) -> std::io::Result<StateDir> {
        let dir = run_dir.join("modvirt");
        std::fs::create_dir_all(&dir)?;
        Ok(StateDir {
            dir,
            name: name.to_owned(),
        })
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.name))
    }

    /// The exit gate observers lock while connecting (see `observe::gate`).
    pub fn gate_path(&self) -> PathBuf {
        self.dir.join(format!("{}.gate", self.name))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    /// The state file a previous run left, if readable.
    pub fn previous(&self) -> Option<StateFile> {
        let text = std::fs::read_to_string(self.state_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Replaces the state file atomically.
    pub fn write(&self, state: &StateFile) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{}.json.tmp", self.name));
        let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, self.state_path())
    }

    /// Appends one event, rotating the log when it is full.
    pub fn log(&self, event: &LifecycleEvent) -> std::io::Result<()> {
        let path = self.log_path();
        if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) >= LOG_MAX {
            std::fs::rename(&path, self.dir.join(format!("{}.log.1", self.name)))?;
        }
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write of a whole line in append mode: readers never see a
        // torn line except after a crash mid-write.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?
            .write_all(&line)
    }
}

/// This process's start time in clock ticks after boot (`/proc/self/stat`
/// field 22), which tells a live daemon from a reused pid.
pub fn pid_start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields resume after ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_wire::observe::{Activation, Cause, Lifecycle, SCHEMA};

    fn state(pid: i32) -> StateFile {
        StateFile {
            schema: SCHEMA,
            name: "d".into(),
            pid,
            pid_start_ticks: 1,
            state: "running".into(),
            activation: Activation {
                cause: Cause::Manual,
                socket: None,
                client: None,
                peer: None,
            },
            exec_ms: 1,
            ready_ms: None,
            exit: None,
            exit_gate: None,
            admin_socket: "/x".into(),
            runs: 1,
            updated_ms: 1,
        }
    }

    #[test]
    fn state_file_round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(dir.path(), "d").unwrap();
        assert!(sd.previous().is_none());
        sd.write(&state(5)).unwrap();
        sd.write(&state(6)).unwrap();
        assert_eq!(sd.previous().unwrap().pid, 6);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("modvirt"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["d.json"], "no temporary file left behind");
    }

    #[test]
    fn log_appends_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(dir.path(), "d").unwrap();
        let ev = LifecycleEvent {
            at_ms: 1,
            pid: 2,
            event: Lifecycle::IdleExit { timeout_s: 3 },
        };
        let line_len = serde_json::to_vec(&ev).unwrap().len() as u64 + 1;
        let n = LOG_MAX / line_len + 2;
        for _ in 0..n {
            sd.log(&ev).unwrap();
        }
        let rotated = dir.path().join("modvirt/d.log.1");
        assert!(rotated.exists());
        let cur = std::fs::read_to_string(sd.log_path()).unwrap();
        assert!(cur.lines().count() >= 1);
        for l in cur.lines() {
            assert_eq!(serde_json::from_str::<LifecycleEvent>(l).unwrap(), ev);
        }
        assert!(std::fs::metadata(sd.log_path()).unwrap().len() < LOG_MAX);
    }

    #[test]
    fn start_ticks_of_self() {
        let pid = std::process::id() as i32;
        let a = pid_start_ticks(pid).unwrap();
        assert_eq!(pid_start_ticks(pid), Some(a));
        assert!(pid_start_ticks(i32::MAX).is_none());
    }
}
