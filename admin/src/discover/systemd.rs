//! systemd's view of the daemons' units, where systemd runs.
//!
//! Asking systemd never starts anything: `systemctl show` only reads unit
//! properties over D-Bus. One `systemctl [--user] show --no-pager -p
//! Id,LoadState,ActiveState,SubState,MainPID` call covers every unit of
//! every daemon (`<d>.service`, `<d>.socket`, `<d>-ro.socket`,
//! `<d>-admin.socket`); its output is blocks of `Key=value` lines separated
//! by blank lines, one block per unit, in the order asked. The call is
//! bounded by a timeout (a wedged D-Bus must not hang the observer) and its
//! child is killed when the timeout passes.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Debug;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One unit's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub unit: String,
    /// `loaded`, `not-found`, `masked`, …
    pub load: String,
    /// `active`, `inactive`, `failed`, `activating`, `deactivating`, …
    pub active: String,
    /// `running`, `listening`, `dead`, …
    pub sub: String,
    /// For services: the main process, when one runs.
    pub main_pid: Option<i32>,
}

impl UnitState {
    pub fn is_loaded(&self) -> bool {
        self.load == "loaded"
    }

    pub fn is_active(&self) -> bool {
        matches!(
            self.active.as_str(),
            "active" | "activating" | "reloading" | "deactivating"
        )
    }
}

/// A daemon's units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Units {
    pub service: Option<UnitState>,
    pub sockets: Vec<UnitState>,
}

impl Units {
    pub fn service_active(&self) -> bool {
        self.service.as_ref().is_some_and(UnitState::is_active)
    }

    pub fn service_failed(&self) -> bool {
        self.service.as_ref().is_some_and(|s| s.active == "failed")
    }

    /// The first of its socket units that is listening.
    pub fn listening_socket(&self) -> Option<&str> {
        self.sockets
            .iter()
            .find(|s| s.is_active())
            .map(|s| s.unit.as_str())
    }

    /// Whether systemd knows any of its units.
    pub fn any_loaded(&self) -> bool {
        self.service.iter().chain(&self.sockets).any(UnitState::is_loaded)
    }
}

/// Where unit states come from: systemd, or a fixture in tests.
pub trait UnitSource: Debug + Sync {
    /// The units of each daemon named, keyed by daemon name.
    fn units(&self, daemons: &[&str]) -> Result<HashMap<String, Units>, String>;
}

/// The unit names of a daemon, service first.
pub fn unit_names(daemon: &str) -> [String; 4] {
    [
        format!("{daemon}.service"),
        format!("{daemon}.socket"),
        format!("{daemon}-ro.socket"),
        format!("{daemon}-admin.socket"),
    ]
}

/// Parses `systemctl show` output into unit states keyed by unit name.
pub fn parse_show(text: &str) -> HashMap<String, UnitState> {
    let mut units = HashMap::new();
    for block in text.split("\n\n") {
        let mut u = UnitState::default();
        for line in block.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "Id" => u.unit = value.to_owned(),
                "LoadState" => u.load = value.to_owned(),
                "ActiveState" => u.active = value.to_owned(),
                "SubState" => u.sub = value.to_owned(),
                "MainPID" => u.main_pid = value.parse().ok().filter(|&p| p > 0),
                _ => {}
            }
        }
        if !u.unit.is_empty() {
            units.insert(u.unit.clone(), u);
        }
    }
    units
}

/// Sorts parsed unit states into each daemon's [`Units`].
pub fn group(daemons: &[&str], states: &HashMap<String, UnitState>) -> HashMap<String, Units> {
    daemons
        .iter()
        .map(|&d| {
            let [service, sockets @ ..] = unit_names(d);
            let units = Units {
                service: states.get(&service).cloned(),
                sockets: sockets.iter().filter_map(|s| states.get(s).cloned()).collect(),
            };
            (d.to_owned(), units)
        })
        .collect()
}

/// Asks systemd through `systemctl show`.
#[derive(Debug, Clone)]
pub struct Systemctl {
    /// `systemctl --user` (session daemons).
    pub user: bool,
    pub timeout: Duration,
}

impl Systemctl {
    /// `Some` when systemd is the init system (`/run/systemd/system` exists).
    pub fn detect(user: bool, timeout: Duration) -> Option<Systemctl> {
        Path::new("/run/systemd/system")
            .is_dir()
            .then_some(Systemctl { user, timeout })
    }
}

impl UnitSource for Systemctl {
    fn units(&self, daemons: &[&str]) -> Result<HashMap<String, Units>, String> {
        let mut cmd = Command::new("systemctl");
        if self.user {
            cmd.arg("--user");
        }
        cmd.args([
            "show",
            "--no-pager",
            "-p",
            "Id,LoadState,ActiveState,SubState,MainPID",
        ]);
        for d in daemons {
            cmd.args(unit_names(d));
        }
        let out = run_bounded(&mut cmd, self.timeout)?;
        Ok(group(daemons, &parse_show(&out)))
    }
}

/// A fixed `systemctl show` output (tests, replay).
#[derive(Debug, Clone)]
pub struct ShowOutput(pub String);

impl UnitSource for ShowOutput {
    fn units(&self, daemons: &[&str]) -> Result<HashMap<String, Units>, String> {
        Ok(group(daemons, &parse_show(&self.0)))
    }
}

/// Runs a command, returns its stdout; kills it after `timeout`.
fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("systemctl-wait".into())
        .spawn(move || {
            let _ = tx.send(child.wait_with_output());
        })
        .map_err(|e| format!("cannot wait for systemctl: {e}"))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(Ok(out)) => Err(format!(
            "systemctl failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(Err(e)) => Err(format!("systemctl: {e}")),
        Err(_) => {
            // The waiting thread still owns (and will reap) the child, so
            // the pid cannot have been reused yet.
            if let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            Err(format!(
                "systemctl did not answer within {} s",
                timeout.as_secs_f64()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = "\
Id=virtqemud.service
LoadState=loaded
ActiveState=active
SubState=running
MainPID=4242

Id=virtqemud.socket
LoadState=loaded
ActiveState=active
SubState=running
MainPID=0

Id=virtnodedevd.service
LoadState=loaded
ActiveState=inactive
SubState=dead
MainPID=0

Id=virtnodedevd.socket
LoadState=loaded
ActiveState=active
SubState=listening
MainPID=0

Id=virtnodedevd-ro.socket
LoadState=loaded
ActiveState=active
SubState=listening

Id=virtxend.service
LoadState=not-found
ActiveState=inactive
SubState=dead

Id=virtsecretd.service
LoadState=loaded
ActiveState=failed
SubState=failed
";

    #[test]
    fn show_output_is_grouped_per_daemon() {
        let names = ["virtqemud", "virtnodedevd", "virtxend", "virtsecretd", "virtlxcd"];
        let units = ShowOutput(SHOW.into()).units(&names).unwrap();
        let q = &units["virtqemud"];
        assert!(q.service_active());
        assert_eq!(q.service.as_ref().and_then(|s| s.main_pid), Some(4242));
        let n = &units["virtnodedevd"];
        assert!(!n.service_active());
        assert_eq!(n.listening_socket(), Some("virtnodedevd.socket"));
        assert_eq!(n.sockets.len(), 2);
        assert!(!units["virtxend"].any_loaded());
        assert!(units["virtsecretd"].service_failed());
        assert_eq!(units["virtlxcd"], Units::default());
    }

    #[test]
    fn unit_names_follow_libvirt() {
        assert_eq!(
            unit_names("virtqemud"),
            [
                "virtqemud.service",
                "virtqemud.socket",
                "virtqemud-ro.socket",
                "virtqemud-admin.socket"
            ]
        );
    }

    #[test]
    fn bounded_run_times_out_and_kills() {
        let t = std::time::Instant::now();
        let e = run_bounded(Command::new("sleep").arg("30"), Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("did not answer"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(
            run_bounded(Command::new("echo").arg("Id=x"), Duration::from_secs(5)).unwrap(),
            "Id=x\n"
        );
    }
}
