//! Launching QEMU and finding it again.
//!
//! A guest must outlive the daemon that started it (a restarted virtqemud
//! reconnects to it), so QEMU is started detached: in its own session
//! (`setsid`, so no terminal or process-group signal aimed at the daemon
//! reaches it), stdin from `/dev/null`, stdout and stderr appended to the
//! guest's log file, no kill-on-drop and no parent-death signal. While the
//! daemon lives, QEMU is its child and a background task reaps it (no
//! zombies) and records its exit status; after a daemon restart QEMU is
//! someone else's child and is watched through `/proc` only ([`is_alive`],
//! [`wait_exit`]), by pid *and* binary name, so a recycled pid is not taken
//! for the guest.
//!
//! Start-up follows libvirt: the log gets a header with the command line,
//! QEMU is started paused (`-S`), and the daemon connects to the QMP socket,
//! retrying while QEMU creates it. If QEMU dies first, the error carries
//! what QEMU wrote to the log since the header: `process exited while
//! connecting to monitor: …`, or `QEMU unexpectedly closed the monitor
//! (vm='NAME'): …` when it died after accepting the connection.

use super::qmp::{Qmp, QmpError, QmpEvents};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// How much of the log an error quotes.
const LOG_TAIL: u64 = 8 * 1024;
/// How often `/proc` or the QMP socket is polled.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("Cannot find QEMU binary {}: {reason}", path.display())]
    EmulatorMissing { path: PathBuf, reason: String },
    #[error("cannot execute QEMU binary {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write QEMU log file {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove stale QEMU pidfile {}: {source}", path.display())]
    Pidfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// QEMU died before the monitor answered.
    #[error("process exited while connecting to monitor: {log}")]
    ExitedWhileConnecting { name: String, log: String },
    /// QEMU accepted the monitor connection, then died.
    #[error("QEMU unexpectedly closed the monitor (vm='{name}'): {log}")]
    MonitorClosed { name: String, log: String },
    #[error(
        "monitor socket did not show up within {} s (vm='{name}', {}): {detail}",
        after.as_secs_f32(),
        socket.display()
    )]
    MonitorTimeout {
        name: String,
        socket: PathBuf,
        after: Duration,
        detail: String,
    },
    #[error("QEMU monitor of vm '{name}' failed during start-up: {source}")]
    Monitor {
        name: String,
        #[source]
        source: QmpError,
    },
    #[error("cannot send {signal} to QEMU pid {pid}: {}", source.desc())]
    Signal { pid: i32, signal: Signal, source: Errno },
    #[error("QEMU pid {pid} is still alive {} s after SIGKILL", after.as_secs_f32())]
    StillAlive { pid: i32, after: Duration },
}

/// How a QEMU child ended, as seen by the reaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exited(pub Option<ExitStatus>);

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{s}"),
            None => f.write_str("unknown status"),
        }
    }
}

/// A running (or once running) QEMU.
#[derive(Debug, Clone)]
pub struct QemuProcess {
    pid: i32,
    binary: PathBuf,
    log_path: PathBuf,
    /// Where this run's output starts in the log file.
    log_offset: u64,
    pidfile: PathBuf,
    /// `Some` when QEMU is our child: the reaper's report.
    exit: Option<watch::Receiver<Option<Exited>>>,
}

/// What [`start`] needs.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// The guest name, for error messages.
    pub name: &'a str,
    pub binary: &'a Path,
    pub args: &'a [String],
    pub log_path: &'a Path,
    pub pidfile: &'a Path,
    pub qmp_socket: &'a Path,
    /// For QEMU to accept the monitor connection.
    pub timeout: Duration,
}

/// A started QEMU with its monitor.
#[derive(Debug)]
pub struct StartedQemu {
    pub process: QemuProcess,
    pub qmp: Qmp,
    pub events: QmpEvents,
}

/// Spawns QEMU and connects to its monitor. On failure QEMU is killed and
/// the error says why it did not come up.
pub async fn start(launch: &Launch<'_>) -> Result<StartedQemu, ProcessError> {
    let process = spawn(launch.binary, launch.args, launch.log_path, launch.pidfile).await?;
    match process
        .connect_monitor(launch.name, launch.qmp_socket, launch.timeout)
        .await
    {
        Ok((qmp, events)) => Ok(StartedQemu { process, qmp, events }),
        Err(e) => {
            if let Err(k) = process.terminate(Duration::ZERO).await {
                tracing::warn!(target: "qemu.process", "after a failed start: {k}");
            }
            Err(e)
        }
    }
}

/// Starts `binary` with `args`, detached from this process (see the module
/// documentation), appending its output to `log_path`. QEMU's own
/// `-pidfile` is expected among `args`; a stale file there is removed first.
pub async fn spawn(
    binary: &Path,
    args: &[String],
    log_path: &Path,
    pidfile: &Path,
) -> Result<QemuProcess, ProcessError> {
    let resolved = resolve_binary(binary)?;
    match std::fs::remove_file(pidfile) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ProcessError::Pidfile {
                path: pidfile.into(),
                source: e,
            });
        }
        _ => {}
    }
    let log_err = |source| ProcessError::Log {
        path: log_path.into(),
        source,
    };
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log_path)
        .map_err(log_err)?;
    let header = format!(
        "{}: starting up\nLC_ALL=C {}\n",
        log_timestamp(SystemTime::now()),
        shell_words(&resolved, args)
    );
    log.write_all(header.as_bytes()).map_err(log_err)?;
    let log_offset = log.metadata().map_err(log_err)?.len();
    let stdout = log.try_clone().map_err(log_err)?;

    let mut cmd = tokio::process::Command::new(&resolved);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log)
        .env("LC_ALL", "C")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .env_remove("NOTIFY_SOCKET")
        .kill_on_drop(false);
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setsid(2), which is async-signal-safe and touches no memory
    // shared with other threads of the parent.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
    let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
        path: resolved.clone(),
        source,
    })?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let status = child.wait().await.ok();
        tracing::debug!(target: "qemu.process", "QEMU pid {pid} exited: {}", Exited(status));
        let _ = tx.send(Some(Exited(status)));
    });
    Ok(QemuProcess {
        pid,
        binary: resolved,
        log_path: log_path.into(),
        log_offset,
        pidfile: pidfile.into(),
        exit: Some(rx),
    })
}

impl QemuProcess {
    /// Takes over a QEMU this process did not start (after a daemon
    /// restart): `None` unless `pid` is alive and runs `binary`.
    pub fn adopt(pid: i32, binary: &Path, log_path: &Path, pidfile: &Path) -> Option<QemuProcess> {
        let binary = resolve_binary(binary).unwrap_or_else(|_| binary.into());
        is_alive(pid, &binary).then(|| QemuProcess {
            pid,
            log_offset: std::fs::metadata(log_path).map(|m| m.len()).unwrap_or(0),
            binary,
            log_path: log_path.into(),
            pidfile: pidfile.into(),
            exit: None,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn pidfile(&self) -> &Path {
        &self.pidfile
    }

    /// Whether this process started QEMU (and so learns its exit status).
    pub fn is_child(&self) -> bool {
        self.exit.is_some()
    }

    /// The exit status, once a child QEMU has exited and been reaped.
    pub fn exit_status(&self) -> Option<Exited> {
        self.exit.as_ref().and_then(|rx| *rx.borrow())
    }

    pub fn is_alive(&self) -> bool {
        match &self.exit {
            Some(rx) => rx.borrow().is_none() && is_alive(self.pid, &self.binary),
            None => is_alive(self.pid, &self.binary),
        }
    }

    /// Sends `signal`; a QEMU that is already gone is not an error.
    pub fn kill(&self, signal: Signal) -> Result<(), ProcessError> {
        if !self.is_alive() {
            return Ok(());
        }
        kill(self.pid, signal)
    }

    /// Waits up to `timeout` for QEMU to exit; true when it has.
    pub async fn wait_exit(&self, timeout: Duration) -> bool {
        match &self.exit {
            Some(rx) => {
                let mut rx = rx.clone();
                matches!(
                    tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await,
                    Ok(Ok(_)) | Ok(Err(_))
                )
            }
            None => wait_exit(self.pid, &self.binary, timeout).await,
        }
    }

    /// libvirt's "kill painfully": SIGTERM, `grace` to exit, then SIGKILL
    /// and up to 5 s more.
    pub async fn terminate(&self, grace: Duration) -> Result<(), ProcessError> {
        if !grace.is_zero() {
            self.kill(Signal::SIGTERM)?;
            if self.wait_exit(grace).await {
                return Ok(());
            }
        }
        self.kill(Signal::SIGKILL)?;
        let after = Duration::from_secs(5);
        if self.wait_exit(after).await {
            Ok(())
        } else {
            Err(ProcessError::StillAlive { pid: self.pid, after })
        }
    }

    /// What QEMU wrote to the log since it was started (the last 8 KiB),
    /// trimmed; its exit status when it wrote nothing.
    pub fn log_tail(&self) -> String {
        let text = read_tail(&self.log_path, self.log_offset).unwrap_or_default();
        if !text.is_empty() {
            return text;
        }
        match self.exit_status() {
            Some(e) => format!("QEMU ended with {e} and logged nothing"),
            None => "QEMU exited and logged nothing".into(),
        }
    }

    /// Connects to QEMU's QMP socket, retrying while QEMU creates it, for
    /// at most `timeout`. Fails early, with QEMU's output, if QEMU dies.
    pub async fn connect_monitor(
        &self,
        name: &str,
        socket: &Path,
        timeout: Duration,
    ) -> Result<(Qmp, QmpEvents), ProcessError> {
        let deadline = Instant::now() + timeout;
        let mut detail = String::from("not tried");
        loop {
            if !self.is_alive() {
                // Let the reaper record the status before quoting it.
                self.wait_exit(Duration::from_millis(200)).await;
                return Err(ProcessError::ExitedWhileConnecting {
                    name: name.into(),
                    log: self.log_tail(),
                });
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ProcessError::MonitorTimeout {
                    name: name.into(),
                    socket: socket.into(),
                    after: timeout,
                    detail,
                });
            }
            match Qmp::connect(socket, remaining).await {
                Ok((qmp, events)) if qmp.peer_pid().is_none_or(|p| p == self.pid) => {
                    return Ok((qmp, events));
                }
                Ok((qmp, _)) => {
                    detail = format!(
                        "socket belongs to pid {}, not {}",
                        qmp.peer_pid().unwrap_or(0),
                        self.pid
                    );
                }
                Err(QmpError::Connect { source, .. }) => detail = source.to_string(),
                Err(e) => {
                    if self.wait_exit(Duration::from_secs(1)).await {
                        return Err(ProcessError::MonitorClosed {
                            name: name.into(),
                            log: self.log_tail(),
                        });
                    }
                    if let QmpError::ConnectTimeout { .. } = e {
                        return Err(ProcessError::MonitorTimeout {
                            name: name.into(),
                            socket: socket.into(),
                            after: timeout,
                            detail: e.to_string(),
                        });
                    }
                    return Err(ProcessError::Monitor {
                        name: name.into(),
                        source: e,
                    });
                }
            }
            tokio::time::sleep(POLL.min(remaining)).await;
        }
    }
}

/// Whether `pid` is a live process (not a zombie) whose `argv[0]` has the
/// file name of `binary`, so a pid recycled by another program is not
/// mistaken for the guest.
pub fn is_alive(pid: i32, binary: &Path) -> bool {
    if pid <= 0 {
        return false;
    }
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
        return false;
    };
    // `pid (comm) state …`: comm may hold spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if !matches!(state, Some(s) if s != "Z" && s != "X" && s != "x") {
        return false;
    }
    let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    !argv0.is_empty() && Path::new(OsStr::from_bytes(argv0)).file_name() == binary.file_name()
}

/// Sends `signal` to `pid`. A process that is already gone is not an error;
/// pids ≤ 0 (process groups, "everyone") are refused.
pub fn kill(pid: i32, signal: Signal) -> Result<(), ProcessError> {
    if pid <= 0 {
        return Err(ProcessError::Signal {
            pid,
            signal,
            source: Errno::EINVAL,
        });
    }
    match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(source) => Err(ProcessError::Signal { pid, signal, source }),
    }
}

/// Waits up to `timeout` for `pid` (running `binary`) to exit, polling
/// `/proc`: QEMU is usually not our child after a daemon restart. If it
/// *is* our child and nobody else reaps it, the zombie is reaped here.
/// Don't use this on a [`QemuProcess`] that is our child: its reaper task
/// would lose the exit status; use [`QemuProcess::wait_exit`].
pub async fn wait_exit(pid: i32, binary: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_alive(pid, binary) {
            if pid > 0 {
                // ECHILD when it is not our child: nothing to reap.
                let _ =
                    nix::sys::wait::waitpid(Pid::from_raw(pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            }
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The pid QEMU wrote to its `-pidfile`, if the file exists.
pub fn read_pidfile(path: &Path) -> std::io::Result<Option<i32>> {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().parse().map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: '{}' is not a pid: {e}", path.display(), s.trim()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `binary` itself when it has a directory part, else its first match in
/// `$PATH`; it must be an executable file.
fn resolve_binary(binary: &Path) -> Result<PathBuf, ProcessError> {
    let missing = |errno: Errno| ProcessError::EmulatorMissing {
        path: binary.into(),
        reason: errno.desc().into(),
    };
    let candidate = if binary.components().count() > 1 || binary.is_absolute() {
        binary.to_path_buf()
    } else {
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::split_paths(&path)
            .map(|d| d.join(binary))
            .find(|p| p.is_file())
            .ok_or_else(|| missing(Errno::ENOENT))?
    };
    nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).map_err(missing)?;
    if candidate.is_dir() {
        return Err(missing(Errno::EISDIR));
    }
    Ok(candidate)
}

fn read_tail(path: &Path, from: u64) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = from.max(len.saturating_sub(LOG_TAIL));
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > from {
        // Cut at a line start rather than in the middle of one.
        if let Some(i) = text.find('\n') {
            text.drain(..=i);
        }
    }
    Ok(text.trim().to_owned())
}

/// The command line as a shell would take it, for the log header.
fn shell_words(binary: &Path, args: &[String]) -> String {
    let quote = |s: &str| {
        let plain = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b",._+:@%/=-".contains(&b));
        if plain {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    std::iter::once(quote(&binary.to_string_lossy()))
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" \\\n")
}

/// `2024-05-01 12:00:00.123+0000`, as libvirt stamps its domain logs.
fn log_timestamp(t: SystemTime) -> String {
    modvirt_wire::timestamp::libvirt(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn qemu_process_log_timestamp() {
        let t = UNIX_EPOCH + Duration::from_millis(1_714_564_800_123);
        assert_eq!(log_timestamp(t), "2024-05-01 12:00:00.123+0000");
        assert_eq!(log_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00.000+0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&log_timestamp(leap)[..10], "2000-02-29");
    }

    #[test]
    fn qemu_process_shell_words_quote_what_needs_it() {
        let args = ["-name".to_owned(), "guest=a b".to_owned(), "it's".to_owned()];
        assert_eq!(
            shell_words(Path::new("/usr/bin/qemu"), &args),
            "/usr/bin/qemu \\\n-name \\\n'guest=a b' \\\n'it'\\''s'"
        );
    }

    #[test]
    fn qemu_process_missing_binary_message() {
        let err = resolve_binary(Path::new("qemu-system-nonexistent-arch")).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "Cannot find QEMU binary qemu-system-nonexistent-arch: No such file or directory"
        );
        let err = resolve_binary(Path::new("/nonexistent/qemu")).expect_err("missing");
        assert!(matches!(err, ProcessError::EmulatorMissing { .. }), "{err:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("qemu-system-x86_64");
        std::fs::write(&plain, "").expect("write");
        let err = resolve_binary(&plain).expect_err("not executable");
        assert!(
            err.to_string().ends_with("qemu-system-x86_64: Permission denied"),
            "{err}"
        );
    }

    #[test]
    fn qemu_process_is_alive_checks_binary_name() {
        let me = std::process::id() as i32;
        let exe = std::env::current_exe().expect("exe");
        assert!(is_alive(me, &exe));
        assert!(!is_alive(me, Path::new("/usr/bin/qemu-system-x86_64")));
        assert!(!is_alive(0, &exe));
        assert!(!is_alive(-1, &exe));
    }

    #[test]
    fn qemu_process_kill_refuses_groups() {
        assert!(kill(0, Signal::SIGTERM).is_err());
        assert!(kill(-1, Signal::SIGTERM).is_err());
    }

    #[test]
    fn qemu_process_log_tail_from_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("vm.log");
        std::fs::write(&log, "old run\nheader\n").expect("write");
        let offset = std::fs::metadata(&log).expect("meta").len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(b"qemu: -foo: invalid option\n"))
            .expect("append");
        assert_eq!(
            read_tail(&log, offset).expect("tail"),
            "qemu: -foo: invalid option"
        );
        let big = "x".repeat(20_000) + "\nlast line\n";
        std::fs::write(&log, &big).expect("write");
        let tail = read_tail(&log, 0).expect("tail");
        assert!(
            tail.ends_with("last line") && tail.len() < 8 * 1024,
            "{}",
            tail.len()
        );
    }

    #[test]
    fn qemu_process_read_pidfile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pid");
        assert_eq!(read_pidfile(&p).expect("absent"), None);
        std::fs::write(&p, "1234\n").expect("write");
        assert_eq!(read_pidfile(&p).expect("read"), Some(1234));
        std::fs::write(&p, "junk").expect("write");
        assert!(read_pidfile(&p).is_err());
    }
}
