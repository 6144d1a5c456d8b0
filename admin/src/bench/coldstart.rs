//! Cold start: how long from exec'ing a daemon until it answers its first
//! RPC call, the way a socket-activated client would experience it.
//!
//! Each run: make sure nobody serves the socket (a stale file is removed),
//! spawn the command, try to connect every `poll` (≈1 ms; "no such file"
//! and "connection refused" mean not yet), send REMOTE `AUTH_LIST` (proc 66,
//! the first call `virsh` makes; no arguments) and wait for its `REPLY`.
//! Then the connection is dropped, the daemon gets `SIGTERM` (`SIGKILL`
//! after a grace period) and is reaped, and the socket and any other named
//! leftovers are removed. A [`DaemonGuard`] makes sure the process is
//! stopped on every error path too, and the daemon is spawned with
//! `SIGTERM` as its parent-death signal, so it does not outlive a benchmark
//! that is killed outright.

use super::{Summary, ms};
use crate::client::{Client, ClientError, remote_proc};
use modvirt_wire::program::{REMOTE_PROGRAM, REMOTE_VERSION};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Clone)]
pub struct ColdStartConfig {
    /// The daemon's command line; `argv[0]` is looked up in `PATH`.
    pub argv: Vec<String>,
    /// The socket to call once it accepts connections.
    pub socket: PathBuf,
    pub runs: usize,
    /// Delay between connection attempts.
    pub poll: Duration,
    /// Longest wait for the first answer before the run fails.
    pub timeout: Duration,
    /// Grace period between `SIGTERM` and `SIGKILL`.
    pub stop_grace: Duration,
    /// Pause between runs, so one run's exit does not overlap the next start.
    pub pause: Duration,
    /// Further files to remove after each run (PID files, other sockets).
    pub cleanup: Vec<PathBuf>,
    /// Where the daemon's stdout and stderr go (appended); `None` discards them.
    pub log: Option<PathBuf>,
}

#[derive(Debug, Error)]
pub enum ColdStartError {
    #[error("empty command line")]
    NoCommand,
    #[error("{} is in use by a running server; stop it first", path.display())]
    InUse { path: PathBuf },
    #[error("cannot remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },
    #[error("cannot open log file {}: {source}", path.display())]
    Log { path: PathBuf, source: io::Error },
    #[error("cannot start {cmd}: {source}")]
    Spawn { cmd: String, source: io::Error },
    #[error("cannot connect to {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("the daemon exited ({status}) {ms:.1} ms after exec, before answering")]
    Exited { status: ExitStatus, ms: f64 },
    #[error("no answer within {ms:.0} ms")]
    Timeout { ms: f64 },
    #[error("first call failed {ms:.1} ms after exec: {source}")]
    Probe { ms: f64, source: ClientError },
    #[error("cannot signal or reap the daemon: {0}")]
    Stop(io::Error),
}

/// One run's timings, all measured from just before the spawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdStartRun {
    /// The socket accepted a connection.
    pub connected: Duration,
    /// The first `AUTH_LIST` was answered: the cold start figure.
    pub answered: Duration,
    /// `SIGTERM` → the process was reaped.
    pub stopped: Duration,
    /// Connection attempts made (1 = the socket was ready at once).
    pub attempts: u32,
}

#[derive(Debug, Clone)]
pub struct ColdStartReport {
    pub runs: Vec<ColdStartRun>,
    /// Cold start in ms.
    pub answered_ms: Summary,
    pub connected_ms: Summary,
    pub stopped_ms: Summary,
}

/// A spawned daemon that is stopped (TERM, then KILL) and reaped when dropped.
#[derive(Debug)]
pub struct DaemonGuard {
    child: Option<Child>,
    grace: Duration,
}

impl DaemonGuard {
    pub fn new(child: Child, grace: Duration) -> DaemonGuard {
        DaemonGuard {
            child: Some(child),
            grace,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` once the process has exited (it is then reaped).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => c.try_wait(),
            None => Ok(None),
        }
    }

    /// Sends `SIGTERM`, waits up to the grace period, then `SIGKILL`s; returns
    /// how long the process took to go away.
    pub fn stop(&mut self) -> io::Result<Duration> {
        let t = Instant::now();
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        if child.try_wait()?.is_some() {
            return Ok(t.elapsed());
        }
        let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
        // ESRCH: it just exited; the wait below reaps it.
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = t + self.grace;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(t.elapsed());
            }
            thread::sleep(Duration::from_millis(1));
        }
        child.kill()?;
        child.wait()?;
        Ok(t.elapsed())
    }
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        // Best effort on error paths; the happy path calls stop() itself.
        let _ = self.stop();
    }
}

/// Removes a stale socket file; refuses if a server still answers on it.
pub fn clear_socket(path: &Path) -> Result<(), ColdStartError> {
    if !path.exists() {
        return Ok(());
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ColdStartError::InUse {
            path: path.to_owned(),
        });
    }
    remove_if_exists(path)
}

fn remove_if_exists(path: &Path) -> Result<(), ColdStartError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ColdStartError::Remove {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn output(log: Option<&Path>) -> Result<(Stdio, Stdio), ColdStartError> {
    let Some(path) = log else {
        return Ok((Stdio::null(), Stdio::null()));
    };
    let err = |source| ColdStartError::Log {
        path: path.to_owned(),
        source,
    };
    let file: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    let second = file.try_clone().map_err(err)?;
    Ok((file.into(), second.into()))
}

/// Spawns the daemon with stdin closed, output to `log`, and `SIGTERM` as
/// its parent-death signal.
pub fn spawn(argv: &[String], log: Option<&Path>, grace: Duration) -> Result<DaemonGuard, ColdStartError> {
    let (prog, args) = argv.split_first().ok_or(ColdStartError::NoCommand)?;
    let (stdout, stderr) = output(log)?;
    let mut cmd = Command::new(prog);
    cmd.args(args).stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes the prctl(2) system call, which is async-signal-safe; it touches
    // no memory shared with the parent and does not allocate.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from));
    }
    let child = cmd.spawn().map_err(|source| ColdStartError::Spawn {
        cmd: argv.join(" "),
        source,
    })?;
    Ok(DaemonGuard::new(child, grace))
}

/// One cold start.
pub fn run_once(cfg: &ColdStartConfig) -> Result<ColdStartRun, ColdStartError> {
    clear_socket(&cfg.socket)?;
    let t0 = Instant::now();
    let mut daemon = spawn(&cfg.argv, cfg.log.as_deref(), cfg.stop_grace)?;
    let deadline = t0 + cfg.timeout;
    let mut attempts = 0u32;
    let exited = |daemon: &mut DaemonGuard| -> Result<(), ColdStartError> {
        match daemon.try_wait().map_err(ColdStartError::Stop)? {
            Some(status) => Err(ColdStartError::Exited {
                status,
                ms: ms(t0.elapsed()),
            }),
            None => Ok(()),
        }
    };
    let stream = loop {
        attempts += 1;
        match UnixStream::connect(&cfg.socket) {
            Ok(s) => break s,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) => {}
            Err(source) => {
                return Err(ColdStartError::Connect {
                    path: cfg.socket.clone(),
                    source,
                });
            }
        }
        exited(&mut daemon)?;
        if Instant::now() >= deadline {
            return Err(ColdStartError::Timeout { ms: ms(t0.elapsed()) });
        }
        thread::sleep(cfg.poll);
    };
    let connected = t0.elapsed();
    let mut client = Client::from_stream(stream);
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let probe = client
        .set_timeout(Some(left))
        .and_then(|()| client.call_raw(REMOTE_PROGRAM, REMOTE_VERSION, remote_proc::AUTH_LIST, &[]));
    let answered = t0.elapsed();
    if let Err(source) = probe {
        exited(&mut daemon)?;
        return Err(ColdStartError::Probe {
            ms: ms(answered),
            source,
        });
    }
    drop(client);
    let stopped = daemon.stop().map_err(ColdStartError::Stop)?;
    remove_if_exists(&cfg.socket)?;
    for path in &cfg.cleanup {
        remove_if_exists(path)?;
    }
    Ok(ColdStartRun {
        connected,
        answered,
        stopped,
        attempts,
    })
}

/// `runs` cold starts; `each` sees every run as it completes.
pub fn run(
    cfg: &ColdStartConfig,
    mut each: impl FnMut(usize, &ColdStartRun),
) -> Result<ColdStartReport, ColdStartError> {
    let mut runs = Vec::with_capacity(cfg.runs);
    for i in 0..cfg.runs.max(1) {
        if i > 0 {
            thread::sleep(cfg.pause);
        }
        let r = run_once(cfg)?;
        each(i, &r);
        runs.push(r);
    }
    let summary = |f: fn(&ColdStartRun) -> Duration| {
        let mut v: Vec<f64> = runs.iter().map(|r| ms(f(r))).collect();
        Summary::of(&mut v)
    };
    match (
        summary(|r| r.answered),
        summary(|r| r.connected),
        summary(|r| r.stopped),
    ) {
        (Some(answered_ms), Some(connected_ms), Some(stopped_ms)) => Ok(ColdStartReport {
            runs,
            answered_ms,
            connected_ms,
            stopped_ms,
        }),
        _ => Err(ColdStartError::NoCommand),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(argv: &[&str], socket: PathBuf) -> ColdStartConfig {
        ColdStartConfig {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            socket,
            runs: 1,
            poll: Duration::from_millis(1),
            timeout: Duration::from_secs(2),
            stop_grace: Duration::from_secs(2),
            pause: Duration::ZERO,
            cleanup: Vec::new(),
            log: None,
        }
    }

    /// One cold start of `argv` on a socket in a fresh directory, with
    /// [`cfg`] changed by `adjust`; it must fail.
    fn failed_run(argv: &[&str], adjust: impl FnOnce(&mut ColdStartConfig)) -> ColdStartError {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(argv, dir.path().join("s"));
        adjust(&mut c);
        run(&c, |_, _| {}).unwrap_err()
    }

    #[test]
    fn daemon_that_exits_early_is_reported() {
        let e = failed_run(&["true"], |_| {});
        assert!(matches!(e, ColdStartError::Exited { .. }), "{e}");
    }

    #[test]
    fn daemon_that_never_listens_times_out_and_is_killed() {
        let t = Instant::now();
        let e = failed_run(&["sleep", "30"], |c| c.timeout = Duration::from_millis(50));
        assert!(matches!(e, ColdStartError::Timeout { .. }), "{e}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "sleep was stopped by the guard"
        );
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let e = failed_run(&["/nonexistent/daemon"], |_| {});
        assert!(matches!(e, ColdStartError::Spawn { .. }), "{e}");
    }

    #[test]
    fn stale_socket_is_cleared_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(matches!(clear_socket(&path), Err(ColdStartError::InUse { .. })));
        drop(live);
        clear_socket(&path).unwrap();
        assert!(!path.exists());
    }
}
