//! A daemon's activation history, from the lifecycle log it leaves behind.
//!
//! Format (written by the daemon, see `modvirt_wire::observe::LifecycleEvent`):
//! `ROOT/run/libvirt/modvirt/<d>.log` holds JSON lines, one event each; when
//! it grows large the daemon renames it to `<d>.log.1` and starts afresh, so
//! the history is `<d>.log.1` followed by `<d>.log`. A daemon killed while
//! writing leaves a torn last line: it is skipped without complaint. Lines
//! that do not parse elsewhere are counted, never fatal.
//!
//! Events are grouped into runs: `activated` opens a run of its pid;
//! `ready`, `idle-exit`, `stopped` and `startup-failed` belong to the open
//! run of the same pid; `crashed` (written by whoever found the corpse)
//! closes the open run of `crashed_pid`.

use modvirt_wire::observe::{Activation, Lifecycle, LifecycleEvent};
use serde::Serialize;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// At most this much of each log file is read (its tail).
const MAX_READ: u64 = 8 << 20;
/// At most this many runs are kept, the most recent.
const MAX_RUNS: usize = 200;

/// One run of a daemon, from activation to exit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub pid: i32,
    /// When it was activated (ms since the epoch), if the log has it.
    pub started_ms: Option<u64>,
    pub activation: Option<Activation>,
    /// When it became ready, and how long start-up took.
    pub ready_ms: Option<u64>,
    pub startup_ms: Option<f64>,
    /// How it ended; `None` while it runs (or if the log lost the end).
    pub end: Option<RunEnd>,
}

/// The event that ended a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEnd {
    pub at_ms: u64,
    #[serde(flatten)]
    pub how: Lifecycle,
}

impl RunEnd {
    /// `idle-exit`, `signal`, `startup-failed` or `crashed`, as in `StateFile.exit`.
    pub fn reason(&self) -> &'static str {
        match self.how {
            Lifecycle::IdleExit { .. } => "idle-exit",
            Lifecycle::Stopped { .. } => "signal",
            Lifecycle::StartupFailed { .. } => "startup-failed",
            Lifecycle::Crashed { .. } => "crashed",
            Lifecycle::Activated { .. } | Lifecycle::Ready { .. } => "?",
        }
    }

    /// A few words for people: `idle exit (timeout 120 s)`, `stopped by SIGTERM`.
    pub fn describe(&self) -> String {
        match &self.how {
            Lifecycle::IdleExit { timeout_s } => format!("idle exit (timeout {timeout_s} s)"),
            Lifecycle::Stopped { signal } => format!("stopped by {signal}"),
            Lifecycle::StartupFailed { error } => format!("start-up failed: {error}"),
            Lifecycle::Crashed { detected_by, .. } => format!("crashed (found by {detected_by})"),
            Lifecycle::Activated { .. } | Lifecycle::Ready { .. } => "?".to_owned(),
        }
    }
}

/// What the lifecycle log says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct History {
    /// Oldest first.
    pub runs: Vec<Run>,
    /// Lines that did not parse (a torn last line is not counted).
    pub bad_lines: usize,
    /// Files that exist but could not be read.
    pub errors: Vec<String>,
}

impl History {
    /// The `n` most recent runs, newest first.
    pub fn recent(&self, n: usize) -> impl Iterator<Item = &Run> {
        self.runs.iter().rev().take(n)
    }

    pub fn last(&self) -> Option<&Run> {
        self.runs.last()
    }
}

/// Reads `<log>.1` then `<log>`; missing files are an empty history.
pub fn read_history(log: &Path) -> History {
    let mut rotated = log.as_os_str().to_owned();
    rotated.push(".1");
    let mut events = Vec::new();
    let mut history = History::default();
    for path in [Path::new(&rotated), log] {
        match read_tail(path) {
            Ok(Some(text)) => history.bad_lines += parse_lines(&text, &mut events),
            Ok(None) => {}
            Err(e) => history.errors.push(format!("{}: {e}", path.display())),
        }
    }
    history.runs = group_runs(events);
    history
}

/// The last [`MAX_READ`] bytes of a file, starting at a line boundary.
fn read_tail(path: &Path) -> io::Result<Option<String>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let skip = len.saturating_sub(MAX_READ);
    f.seek(SeekFrom::Start(skip))?;
    let mut bytes = Vec::new();
    f.take(MAX_READ).read_to_end(&mut bytes)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if skip > 0 {
        // Drop the partial first line.
        let cut = text.find('\n').map_or(text.len(), |i| i + 1);
        text.drain(..cut);
    }
    Ok(Some(text))
}

/// Parses JSON lines into `out`; returns how many lines were bad, not
/// counting an unterminated last line (a write cut short).
pub fn parse_lines(text: &str, out: &mut Vec<LifecycleEvent>) -> usize {
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = 0;
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<LifecycleEvent>(line) {
            Ok(e) => out.push(e),
            Err(_) if i + 1 == lines.len() && !complete => {}
            Err(_) => bad += 1,
        }
    }
    bad
}

/// Groups events (oldest first) into runs (oldest first).
pub fn group_runs(events: Vec<LifecycleEvent>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for ev in events {
        let LifecycleEvent { at_ms, pid, event } = ev;
        match event {
            Lifecycle::Activated { activation } => runs.push(Run {
                pid,
                started_ms: Some(at_ms),
                activation: Some(activation),
                ready_ms: None,
                startup_ms: None,
                end: None,
            }),
            Lifecycle::Ready { startup_ms } => {
                let run = open_run(&mut runs, pid);
                run.ready_ms = Some(at_ms);
                run.startup_ms = Some(startup_ms);
            }
            how @ Lifecycle::Crashed { crashed_pid, .. } => {
                open_run(&mut runs, crashed_pid).end = Some(RunEnd { at_ms, how });
            }
            how => open_run(&mut runs, pid).end = Some(RunEnd { at_ms, how }),
        }
    }
    if runs.len() > MAX_RUNS {
        runs.drain(..runs.len() - MAX_RUNS);
    }
    runs
}

/// The newest run of `pid` that has not ended; a new, unattributed one if
/// the log lost its start (rotation, truncation).
fn open_run(runs: &mut Vec<Run>, pid: i32) -> &mut Run {
    let found = runs.iter().rposition(|r| r.pid == pid && r.end.is_none());
    let i = match found {
        Some(i) => i,
        None => {
            runs.push(Run {
                pid,
                started_ms: None,
                activation: None,
                ready_ms: None,
                startup_ms: None,
                end: None,
            });
            runs.len() - 1
        }
    };
    &mut runs[i]
}

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_wire::observe::Cause;

    fn line(at_ms: u64, pid: i32, event: Lifecycle) -> String {
        let mut s = serde_json::to_string(&LifecycleEvent { at_ms, pid, event }).unwrap();
        s.push('\n');
        s
    }

    fn activated(cause: Cause) -> Lifecycle {
        Lifecycle::Activated {
            activation: Activation {
                cause,
                socket: None,
                client: None,
                peer: None,
            },
        }
    }

    #[test]
    fn runs_are_grouped_and_a_torn_line_is_tolerated() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("virtqemud.log");
        let old = line(1, 10, activated(Cause::Boot))
            + &line(2, 10, Lifecycle::Ready { startup_ms: 1.5 })
            + &line(9, 10, Lifecycle::IdleExit { timeout_s: 120 });
        std::fs::write(dir.path().join("virtqemud.log.1"), old).unwrap();
        let new = line(20, 11, activated(Cause::Socket))
            + "{not json}\n"
            + &line(
                30,
                12,
                Lifecycle::Crashed {
                    crashed_pid: 11,
                    detected_by: "virtqemud (next start)".into(),
                },
            )
            + &line(31, 12, activated(Cause::Socket))
            + r#"{"at_ms":40,"pid":12,"event":"sto"#;
        std::fs::write(&log, new).unwrap();

        let h = read_history(&log);
        assert_eq!(
            h.bad_lines, 1,
            "the torn tail is not counted, the bad middle line is"
        );
        assert!(h.errors.is_empty());
        assert_eq!(h.runs.len(), 3);
        let r0 = &h.runs[0];
        assert_eq!((r0.pid, r0.started_ms, r0.ready_ms), (10, Some(1), Some(2)));
        assert_eq!(r0.end.as_ref().map(RunEnd::reason), Some("idle-exit"));
        assert_eq!(h.runs[1].end.as_ref().map(RunEnd::reason), Some("crashed"));
        assert_eq!(h.runs[1].end.as_ref().map(|e| e.at_ms), Some(30));
        assert!(h.runs[2].end.is_none(), "pid 12 still runs");
        assert_eq!(h.recent(1).next().map(|r| r.pid), Some(12));
    }

    #[test]
    fn an_end_without_a_start_makes_an_unattributed_run() {
        let mut events = Vec::new();
        let text = line(
            5,
            7,
            Lifecycle::Stopped {
                signal: "SIGTERM".into(),
            },
        );
        assert_eq!(parse_lines(&text, &mut events), 0);
        let runs = group_runs(events);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].activation, None);
        assert_eq!(
            runs[0].end.as_ref().map(RunEnd::describe).as_deref(),
            Some("stopped by SIGTERM")
        );
    }

    #[test]
    fn missing_log_is_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_history(&dir.path().join("x.log")), History::default());
    }

    #[test]
    fn end_serializes_flat() {
        let e = RunEnd {
            at_ms: 3,
            how: Lifecycle::IdleExit { timeout_s: 5 },
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"at_ms":3,"event":"idle-exit","timeout_s":5}"#
        );
    }
}
