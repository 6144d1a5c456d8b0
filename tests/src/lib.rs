//! Harness for the end-to-end tests: starts real modvirt daemons under a
//! fresh temporary root, runs the real `virsh` / `virt-admin` against their
//! sockets, and kills every process it started (by pid) when dropped.
//!
//! The daemon binaries come from the workspace's target directory, so run
//! `cargo build --workspace` before `cargo test --workspace` (the README's
//! test command does).
//!
//! [`raw`] holds a byte-level wire-protocol client for tests of hostile and
//! broken clients.

pub mod events;
pub mod otlp_collector;
pub mod raw;

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The directory holding the workspace's built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test>-<hash> → target/debug
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .expect("target directory")
}

/// Path of a workspace binary; panics with what to do if it is not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} not found: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// Fails the test with a clear message if a system tool is missing.
pub fn require_tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run .ci/run (or apt-get install the package that ships it)");
}

/// A fresh temporary directory named `{prefix}…` for a daemon's root.
pub fn temp_root(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp root")
}

/// Polls `f` every 10 ms until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A daemon's root directory: a temporary one it owns (removed when the
/// last owner drops it), or one shared with another daemon of the test.
#[derive(Debug, Clone)]
pub struct Root {
    path: PathBuf,
    _owned: Option<std::sync::Arc<TempDir>>,
}

impl Root {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl From<TempDir> for Root {
    fn from(t: TempDir) -> Root {
        Root {
            path: t.path().to_owned(),
            _owned: Some(std::sync::Arc::new(t)),
        }
    }
}

/// A daemon running under its own temporary root.
#[derive(Debug)]
pub struct Daemon {
    pub name: String,
    pub root: Root,
    child: Option<Child>,
    pid: i32,
    log: PathBuf,
}

/// How to start a daemon.
#[derive(Debug, Default, Clone)]
pub struct DaemonOptions {
    /// Extra command-line arguments (e.g. `--timeout 2`).
    pub args: Vec<String>,
    /// Contents of `ROOT/etc/libvirt/<d>.conf`, if any.
    pub config: Option<String>,
    /// Do not wait for the sockets (for tests of failing starts).
    pub no_wait: bool,
    /// Extra environment variables for the daemon.
    pub env: Vec<(String, String)>,
    /// The binary to run, when it is not named after the daemon (e.g.
    /// `virttestd` renamed with `MODVIRT_TESTD_NAME`).
    pub binary: Option<String>,
    /// Run it in a network namespace of its own (`unshare --net`, which
    /// execs the daemon: the pid stays the daemon's), so that what it does
    /// to network links (bridges, taps) never reaches the host's. Peer
    /// daemons it spawns share that namespace.
    pub netns: bool,
}

impl Daemon {
    /// Starts `name` (e.g. `virtqemud`) with `--root` on a fresh temp dir and
    /// waits until its admin socket accepts connections.
    pub fn start(name: &str, opts: DaemonOptions) -> Daemon {
        Self::start_in(name, temp_root("modvirt-e2e-"), opts)
    }

    /// Like [`Daemon::start`] on an existing root (e.g. to restart on it).
    /// Starts another daemon on the same root as `other` (as the real
    /// daemons of one host share `/run/libvirt`).
    pub fn start_beside(other: &Daemon, name: &str, opts: DaemonOptions) -> Daemon {
        Self::start_in(name, other.root.clone(), opts)
    }

    pub fn start_in(name: &str, root: impl Into<Root>, opts: DaemonOptions) -> Daemon {
        let root = root.into();
        if let Some(conf) = &opts.config {
            let dir = root.path().join("etc/libvirt");
            std::fs::create_dir_all(&dir).expect("config dir");
            std::fs::write(dir.join(format!("{name}.conf")), conf).expect("config file");
        }
        let log = root.path().join(format!("{name}.stderr"));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut cmd = daemon_command(opts.binary.as_deref().unwrap_or(name), root.path());
        if opts.netns {
            let daemon = std::mem::replace(&mut cmd, Command::new("unshare"));
            cmd.arg("--net")
                .arg("--")
                .arg(daemon.get_program())
                .args(daemon.get_args());
            clear_daemon_env(&mut cmd);
        }
        let child = cmd
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .args(&opts.args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn daemon");
        let pid = child.id() as i32;
        let mut d = Daemon {
            name: name.to_owned(),
            root,
            child: Some(child),
            pid,
            log,
        };
        if !opts.no_wait {
            let admin = d.socket("admin-sock");
            let up = wait_for(Duration::from_secs(10), || {
                d.exited().is_none() && UnixStream::connect(&admin).is_ok()
            });
            assert!(up, "{name} did not come up; its stderr:\n{}", d.stderr());
        }
        d
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn run_dir(&self) -> PathBuf {
        self.root.path().join("run/libvirt")
    }

    /// `ROOT/run/libvirt/<d>-<suffix>`: `sock`, `sock-ro`, `admin-sock`
    /// (`libvirt-<suffix>` for virtproxyd).
    pub fn socket(&self, suffix: &str) -> PathBuf {
        // virtproxyd serves libvirtd's legacy names (`libvirt-sock`, …).
        let name = if self.name == "virtproxyd" {
            "libvirt"
        } else {
            &self.name
        };
        self.run_dir().join(format!("{name}-{suffix}"))
    }

    /// `qemu:///system?socket=…-sock` (or `-sock-ro` when `readonly`).
    pub fn uri(&self, readonly: bool) -> String {
        let s = self.socket(if readonly { "sock-ro" } else { "sock" });
        format!("qemu:///system?socket={}", s.display())
    }

    pub fn admin_uri(&self) -> String {
        format!(
            "{}:///system?socket={}",
            self.name,
            self.socket("admin-sock").display()
        )
    }

    /// Runs the real `virsh -c URI ARGS…`.
    pub fn virsh(&self, args: &[&str]) -> Output {
        virsh_at(&self.uri(false), args)
    }

    /// Runs the real `virsh -r -c RO-URI ARGS…`.
    pub fn virsh_ro(&self, args: &[&str]) -> Output {
        virsh_ro_at(&self.uri(true), args)
    }

    /// Starts the real `virsh -c URI ARGS…` in the background, its output
    /// discarded: a client whose call stays in flight.
    pub fn spawn_virsh(&self, args: &[&str]) -> ChildGuard {
        ChildGuard::spawn(
            Command::new(require_tool("virsh"))
                .arg("-c")
                .arg(self.uri(false))
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }

    /// Runs the real `virt-admin -c ADMIN-URI ARGS…`.
    pub fn virt_admin(&self, args: &[&str]) -> Output {
        virt_admin_at(&self.admin_uri(), args)
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The exit status if the daemon has exited (reaps it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(exit_status)
    }

    /// Waits up to `timeout` for the daemon to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for_exit(timeout, || self.exited())
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig);
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(10))
    }

    /// Gives the root back (the daemon must have exited), to restart on it.
    pub fn into_root(mut self) -> Root {
        self.kill();
        self.root.clone()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        kill_network_helpers(self.root.path());
    }
}

/// The pid in `ROOT/run/<daemon>.pid` once the daemon wrote it (it may be
/// one another daemon started on demand); fails the test after 5 s.
pub fn daemon_pid(root: &Path, daemon: &str) -> i32 {
    let file = root.join(format!("run/{daemon}.pid"));
    let mut pid = 0;
    assert!(
        wait_for(Duration::from_secs(5), || {
            pid = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            pid > 0
        }),
        "{daemon} wrote no pid file"
    );
    pid
}

/// Kills the dnsmasq processes virtnetworkd started under `root` (their pid
/// files are `ROOT/run/libvirt/network/NAME.pid`): they outlive their daemon,
/// as libvirt's do, and a test must leave nothing running.
pub fn kill_network_helpers(root: &Path) {
    let Ok(dir) = std::fs::read_dir(root.join("run/libvirt/network")) else {
        return;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "pid") {
            continue;
        }
        let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "dnsmasq" {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The exit status if `child` has exited (reaps it).
fn exit_status(child: &mut Child) -> Option<ExitStatus> {
    child.try_wait().ok().flatten()
}

/// Polls `exited` every 10 ms until it gives an exit status or `timeout` passes.
fn wait_for_exit(timeout: Duration, mut exited: impl FnMut() -> Option<ExitStatus>) -> Option<ExitStatus> {
    let mut status = None;
    wait_for(timeout, || {
        status = exited();
        status.is_some()
    });
    status
}

/// SIGKILLs `child` unless it has exited, and reaps it.
fn kill_and_reap(child: &mut Child) {
    if exit_status(child).is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Runs the real `virsh -c URI ARGS…` (without `-r`: the client does not
/// ask for a read-only connection, so only the daemon can refuse).
/// `virtqemud --timeout SECS` under a fresh root: started by hand, it exits
/// after `secs` idle.
pub fn virtqemud_with_idle_timeout(secs: u32) -> Daemon {
    Daemon::start(
        "virtqemud",
        DaemonOptions {
            args: vec!["--timeout".into(), secs.to_string()],
            ..Default::default()
        },
    )
}

pub fn virsh_at(uri: &str, args: &[&str]) -> Output {
    run(Command::new(require_tool("virsh")).arg("-c").arg(uri).args(args))
}

/// Runs the real `virt-admin -c URI ARGS…`.
/// Runs the real `virsh -r -c URI ARGS…` (a read-only connection).
pub fn virsh_ro_at(uri: &str, args: &[&str]) -> Output {
    run(Command::new(require_tool("virsh"))
        .arg("-r")
        .arg("-c")
        .arg(uri)
        .args(args))
}

pub fn virt_admin_at(uri: &str, args: &[&str]) -> Output {
    run(Command::new(require_tool("virt-admin"))
        .arg("-c")
        .arg(uri)
        .args(args))
}

/// Runs `virt-daemons --root ROOT ARGS…` (`MODVIRT_ROOT` cleared) and
/// returns its stdout, asserting it succeeded.
pub fn virt_daemons(root: &Path, args: &[&str]) -> String {
    let out = Command::new(bin("virt-daemons"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("MODVIRT_ROOT")
        .stdin(Stdio::null())
        .output()
        .expect("run virt-daemons");
    ok_stdout(&out)
}

/// Runs a client with the default-URI variables cleared and stdin from
/// `/dev/null`, capturing its output.
fn run(cmd: &mut Command) -> Output {
    cmd.env_remove("LIBVIRT_DEFAULT_URI")
        .env_remove("LIBVIRT_ADMIN_DEFAULT_URI")
        .stdin(Stdio::null())
        .output()
        .expect("run client")
}

/// stdout of a client run, asserting it succeeded.
pub fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of a client run, asserting it failed.
pub fn err_stderr(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded:\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The value of the first `key : value` line of `text` (`virt-admin`'s
/// `srv-threadpool-info`, `srv-clients-info`, …), trimmed.
pub fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
}

/// Asserts that `text` contains `needle`, showing all of `text` if not.
#[track_caller]
pub fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

/// Waits (up to 5 s) for `needle` to appear in the daemon's log.
pub fn assert_logged(d: &Daemon, needle: &str) {
    let found = wait_for(Duration::from_secs(5), || d.stderr().contains(needle));
    assert!(
        found,
        "no log line containing {needle:?}; daemon stderr:\n{}",
        d.stderr()
    );
}

/// How many lines of the daemon's log contain `needle`.
pub fn count_logged(d: &Daemon, needle: &str) -> usize {
    d.stderr().lines().filter(|l| l.contains(needle)).count()
}

/// Reads `/proc/PID/status` field `key` (e.g. `VmRSS`).
pub fn proc_status(pid: i32, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_owned())
}

/// A `/proc/PID/status` field in kB (e.g. `VmRSS`, `VmHWM`); panics if absent.
pub fn proc_status_kib(pid: i32, key: &str) -> u64 {
    let v = proc_status(pid, key).unwrap_or_else(|| panic!("{key} of pid {pid}"));
    v.trim_end_matches("kB").trim().parse().expect("kB number")
}

/// Number of descriptors process `pid` has open (0 if it is gone).
pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A `Command` for a workspace daemon binary on `root`, with the environment
/// the harness always clears (inherited activation / notify / root
/// variables) and stdin from `/dev/null`. For tests that need to run a
/// daemon by hand (a second instance, `-d`, `NOTIFY_SOCKET`, …).
pub fn daemon_command(name: &str, root: &Path) -> Command {
    let mut cmd = Command::new(bin(name));
    cmd.arg("--root").arg(root);
    clear_daemon_env(&mut cmd);
    cmd
}

/// Clears what a daemon would otherwise inherit from the test's
/// environment (root, notify socket, socket-activation variables) and
/// gives it stdin from `/dev/null`.
pub fn clear_daemon_env(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("MODVIRT_ROOT")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .stdin(Stdio::null())
}

/// Runs `cmd` to completion, capturing stdout and stderr, but kills it and
/// panics if it has not exited within `timeout` (a hung command must fail
/// the test, not hang it).
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn command");
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let status = wait_for_exit(timeout, || exit_status(&mut child));
    let Some(status) = status else {
        kill_and_reap(&mut child);
        panic!("{cmd:?} did not exit within {timeout:?}");
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// A child process the test started (e.g. `systemd-socket-activate`, or a
/// daemon run by hand); killed by pid and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Spawns `cmd`. A program the test has just written or copied may
    /// fail with `ETXTBSY` for a moment: another test thread's fork can
    /// still hold the file open for writing until that child execs. That is
    /// retried for up to a second.
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        let mut tries = 0;
        loop {
            match cmd.spawn() {
                Ok(child) => return ChildGuard { child },
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("spawn process: {e}"),
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The exit status if it has exited (reaps it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        exit_status(&mut self.child)
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for_exit(timeout, || self.exited())
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
pub fn process_gone(pid: i32) -> bool {
    match proc_status(pid, "State") {
        None => true,
        Some(state) => state.starts_with('Z'),
    }
}

/// A process the test caused to exist but did not spawn as a child (a
/// daemon that forked away with `-d`): SIGKILLed by pid on drop unless it is
/// already gone.
#[derive(Debug)]
pub struct PidGuard(pub i32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        if self.0 > 1 && !process_gone(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A long-lived interactive `virsh` (no command on its command line, so it
/// connects and then reads commands from stdin, which the test keeps open).
/// Its stdout and stderr go to files under the daemon's root. Killed by pid
/// and reaped when dropped.
#[derive(Debug)]
pub struct InteractiveVirsh {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    out: PathBuf,
    err: PathBuf,
}

static VIRSH_SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl InteractiveVirsh {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends one command line (e.g. `hostname`).
    pub fn send(&mut self, line: &str) {
        use std::io::Write;
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The exit status if it has exited (reaps it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        exit_status(&mut self.child)
    }

    /// Closes its stdin (end of input: virsh quits) and waits up to 10 s.
    pub fn close(&mut self) -> Option<ExitStatus> {
        self.stdin = None;
        wait_for_exit(Duration::from_secs(10), || self.exited())
    }
}

impl Drop for InteractiveVirsh {
    fn drop(&mut self) {
        self.stdin = None;
        kill_and_reap(&mut self.child);
    }
}

impl Daemon {
    /// Starts an interactive `virsh -c URI` (`-r` and the read-only socket
    /// when `readonly`) that stays connected until closed or dropped.
    pub fn interactive_virsh(&self, readonly: bool) -> InteractiveVirsh {
        let n = VIRSH_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = self.root.path().join(format!("virsh-{n}.out"));
        let err = self.root.path().join(format!("virsh-{n}.err"));
        let file = |p: &Path| std::fs::File::create(p).expect("virsh output file");
        let mut cmd = Command::new(require_tool("virsh"));
        if readonly {
            cmd.arg("-r");
        }
        let mut child = cmd
            .arg("-c")
            .arg(self.uri(readonly))
            .env_remove("LIBVIRT_DEFAULT_URI")
            .stdin(Stdio::piped())
            .stdout(file(&out))
            .stderr(file(&err))
            .spawn()
            .expect("spawn interactive virsh");
        let stdin = child.stdin.take();
        InteractiveVirsh {
            child,
            stdin,
            out,
            err,
        }
    }

    /// Path of the file the daemon's stderr goes to.
    pub fn stderr_path(&self) -> &Path {
        &self.log
    }
}

/// Binds `path` (replacing any file there) and counts the connections it
/// accepts, in the background: proof that nothing connected (e.g. an
/// observer must not wake a sleeping, socket-activated daemon).
pub fn counting_listener(path: &Path) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let _ = std::fs::remove_file(path);
    let l = std::os::unix::net::UnixListener::bind(path).expect("bind counting listener");
    let n = std::sync::Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            if c.is_ok() {
                n2.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    n
}
