//! A daemon's life: the idle timeout, signals (SIGTERM, SIGHUP reload), the
//! pid file and socket files, a second instance, stale sockets, the
//! configuration file and its errors, `-V`, `-f` and `-d`.

use modvirt_tests::{
    ChildGuard, Daemon, DaemonOptions, InteractiveVirsh, PidGuard, assert_contains, daemon_command, field,
    ok_stdout, output_within, process_gone, require_tool, temp_root, wait_for,
};
use nix::sys::signal::Signal;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn opts(args: &[&str]) -> DaemonOptions {
    DaemonOptions {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        ..DaemonOptions::default()
    }
}

fn with_config(conf: &str) -> DaemonOptions {
    DaemonOptions {
        config: Some(conf.to_owned()),
        ..DaemonOptions::default()
    }
}

fn threadpool(d: &Daemon) -> String {
    ok_stdout(&d.virt_admin(&["srv-threadpool-info", "virtqemud"]))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Waits (up to 20 s) for `d` to exit with code 0 on its idle timeout, and
/// checks that this took (about) the 2 s timeout from `since`, not less.
fn assert_idle_exit(d: &mut Daemon, since: Instant) {
    let status = d.wait_exit(Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", d.stderr());
    assert!(
        since.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        since.elapsed()
    );
}

/// Starts an interactive virsh and waits until the daemon counts it as
/// its one client.
fn connected_virsh(d: &Daemon) -> InteractiveVirsh {
    let v = d.interactive_virsh(false);
    let connected = wait_for(Duration::from_secs(10), || {
        let out = d.virt_admin(&["srv-clients-info", "virtqemud"]);
        field(&text(&out.stdout), "nclients").as_deref() == Some("1")
    });
    assert!(connected, "virsh did not connect: {}", v.stderr());
    v
}

/// A root with an empty `run/libvirt` directory, returned with it.
fn root_with_run_dir() -> (tempfile::TempDir, PathBuf) {
    let root = temp_root("modvirt-e2e-");
    let run = root.path().join("run/libvirt");
    std::fs::create_dir_all(&run).expect("run dir");
    (root, run)
}

/// The pid in `pid_file`, which must exist (`why` says why it should).
fn read_pid_file(pid_file: &Path, why: &str) -> i32 {
    std::fs::read_to_string(pid_file)
        .expect(why)
        .trim()
        .parse()
        .expect("pid")
}

/// `virt-admin ARGS…` stdout (asserting success) against the daemon that
/// `-d` detached under `root`.
fn detached_admin(root: &Path, args: &[&str]) -> String {
    let uri = format!(
        "virtqemud:///system?socket={}",
        root.join("run/libvirt/virtqemud-admin-sock").display()
    );
    ok_stdout(&output_within(
        Command::new(require_tool("virt-admin"))
            .args(["-c", &uri])
            .args(args),
        Duration::from_secs(10),
    ))
}

/// SIGTERMs the detached daemon `pid`: it must be gone within 10 s and its
/// `pid_file` within 5 s more.
fn terminate_detached(pid: i32, pid_file: &Path) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
    assert!(
        wait_for(Duration::from_secs(10), || process_gone(pid)),
        "still running"
    );
    assert!(wait_for(Duration::from_secs(5), || !pid_file.exists()));
}

/// Runs a daemon command (e.g. with `-d` or `-V`) that must return within 10 s.
fn output_10s(cmd: &mut Command) -> Output {
    output_within(cmd, Duration::from_secs(10))
}

#[test]
fn idle_timeout_exits_without_clients() {
    let started = Instant::now();
    let mut d = Daemon::start("virtqemud", opts(&["--timeout", "2"]));
    // Not at once: only after (about) the timeout.
    assert_idle_exit(&mut d, started);
    assert!(!d.socket("sock").exists());
    assert!(!d.root.path().join("run/virtqemud.pid").exists());
}

#[test]
fn idle_timeout_waits_for_the_last_client() {
    let mut d = Daemon::start("virtqemud", opts(&["--timeout", "2"]));
    let mut v = connected_virsh(&d);
    // Well past the timeout, the connected client keeps the daemon up.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        d.exited().is_none(),
        "exited with a client connected: {}",
        d.stderr()
    );
    v.send("hostname");
    let left = Instant::now();
    assert!(v.close().is_some(), "virsh did not quit");
    // The countdown restarted when the client left.
    assert_idle_exit(&mut d, left);
}

#[test]
fn sigterm_removes_sockets_and_pid_file() {
    let mut d = Daemon::start("virtqemud", DaemonOptions::default());
    let pid_file = d.root.path().join("run/virtqemud.pid");
    assert_eq!(mode(&d.socket("sock")), 0o666);
    assert_eq!(mode(&d.socket("sock-ro")), 0o666);
    assert_eq!(mode(&d.socket("admin-sock")), 0o600);
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(pid.trim(), d.pid().to_string());

    let status = d.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {}", d.stderr());
    for s in ["sock", "sock-ro", "admin-sock"] {
        assert!(!d.socket(s).exists(), "{s} left behind");
    }
    assert!(!pid_file.exists());
}

#[test]
fn sigterm_as_soon_as_it_serves_is_clean() {
    // A client can connect as soon as the sockets listen; a SIGTERM sent
    // at that moment (systemctl stop right after activation) must go
    // through the clean shutdown, not the default action of the signal.
    for _ in 0..40 {
        let root = temp_root("modvirt-e2e-");
        let mut cmd = daemon_command("virtqemud", root.path());
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut d = ChildGuard::spawn(&mut cmd);
        let sock = root.path().join("run/libvirt/virtqemud-sock");
        let end = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&sock).is_err() && Instant::now() < end {
            std::thread::yield_now();
        }
        d.signal(Signal::SIGTERM);
        let status = d.wait_exit(Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        assert!(!root.path().join("run/virtqemud.pid").exists());
        assert!(!sock.exists());
    }
}

#[test]
fn sigint_stops_cleanly_too() {
    let mut d = Daemon::start("virtqemud", DaemonOptions::default());
    d.signal(Signal::SIGINT);
    let status = d.wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", d.stderr());
    assert!(!d.socket("sock").exists());
}

#[test]
fn second_instance_refused_first_keeps_serving() {
    let mut d = Daemon::start("virtqemud", DaemonOptions::default());
    let out = output_10s(&mut daemon_command("virtqemud", d.root.path()));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_contains(&err, "already running");
    assert!(err.contains(&d.pid().to_string()), "names the running pid: {err}");
    // The first one still owns everything.
    assert!(d.exited().is_none());
    assert!(ok_stdout(&d.virsh(&["uri"])).contains("virtqemud-sock"));
    let pid = std::fs::read_to_string(d.root.path().join("run/virtqemud.pid")).expect("pid file");
    assert_eq!(pid.trim(), d.pid().to_string());
    assert_eq!(d.stop().and_then(|s| s.code()), Some(0));
}

#[test]
fn stale_socket_is_replaced() {
    let (root, run) = root_with_run_dir();
    drop(UnixListener::bind(run.join("virtqemud-sock")).expect("bind"));
    assert!(
        run.join("virtqemud-sock").exists(),
        "a dropped listener leaves its file"
    );
    let d = Daemon::start_in("virtqemud", root, DaemonOptions::default());
    let host = nix::unistd::gethostname().expect("hostname");
    assert_eq!(ok_stdout(&d.virsh(&["hostname"])).trim(), host.to_string_lossy());
    assert_eq!(mode(&d.socket("sock")), 0o666);
}

#[test]
fn live_socket_of_someone_else_is_not_taken() {
    let (root, run) = root_with_run_dir();
    let _other = UnixListener::bind(run.join("virtqemud-sock")).expect("bind");
    let mut d = Daemon::start_in(
        "virtqemud",
        root,
        DaemonOptions {
            no_wait: true,
            ..DaemonOptions::default()
        },
    );
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    assert!(d.stderr().contains("in use by another process"), "{}", d.stderr());
    assert!(run.join("virtqemud-sock").exists(), "the live socket is kept");
    assert!(!d.socket("sock-ro").exists(), "nothing else bound");
    assert!(
        !d.root.path().join("run/virtqemud.pid").exists(),
        "pid file released"
    );
}

fn failing_config(conf: &str) -> String {
    let mut d = Daemon::start(
        "virtqemud",
        DaemonOptions {
            config: Some(conf.to_owned()),
            no_wait: true,
            ..DaemonOptions::default()
        },
    );
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}: {}", d.stderr());
    assert!(!d.socket("sock").exists(), "no socket on a config error");
    let conf_path = d.root.path().join("etc/libvirt/virtqemud.conf");
    let err = d.stderr();
    assert_contains(&err, &conf_path.display().to_string());
    err
}

#[test]
fn bad_config_value_names_file_and_line() {
    let err = failing_config("# comment\nmin_workers = 2\nmax_workers = \"x\"\n");
    assert_contains(&err, "virtqemud.conf:3:");
    assert_contains(&err, "max_workers");
}

#[test]
fn config_syntax_error_names_file_and_line() {
    let err = failing_config("min_workers = 2\n\nmax_workers = = 4\n");
    assert_contains(&err, "virtqemud.conf:3:");
    assert_contains(&err, "syntax error");
}

#[test]
fn config_min_above_max_is_refused() {
    let err = failing_config("min_workers = 9\nmax_workers = 4\n");
    assert_contains(&err, "min_workers (9)");
}

#[test]
fn config_file_sets_thread_pool_and_sighup_reloads() {
    let mut d = Daemon::start("virtqemud", with_config("min_workers = 2\nmax_workers = 4\n"));
    let info = threadpool(&d);
    assert_eq!(field(&info, "minWorkers").as_deref(), Some("2"));
    assert_eq!(field(&info, "maxWorkers").as_deref(), Some("4"));
    assert_eq!(field(&info, "nWorkers").as_deref(), Some("2"));

    let conf = d.root.path().join("etc/libvirt/virtqemud.conf");
    std::fs::write(&conf, "min_workers = 2\nmax_workers = 6\n").expect("rewrite config");
    d.signal(Signal::SIGHUP);
    let mut info = String::new();
    let reloaded = wait_for(Duration::from_secs(10), || {
        info = threadpool(&d);
        field(&info, "maxWorkers").as_deref() == Some("6")
    });
    assert!(reloaded, "SIGHUP did not reload:\n{info}\n{}", d.stderr());

    // A broken file: the daemon keeps the old settings and keeps running.
    std::fs::write(&conf, "min_workers = 3\nmax_workers = \"y\"\n").expect("rewrite config");
    d.signal(Signal::SIGHUP);
    let logged = wait_for(Duration::from_secs(10), || {
        d.stderr().contains("not reloaded") && d.stderr().contains("virtqemud.conf:2")
    });
    assert!(logged, "{}", d.stderr());
    assert!(d.exited().is_none());
    let info = threadpool(&d);
    assert_eq!(field(&info, "minWorkers").as_deref(), Some("2"));
    assert_eq!(field(&info, "maxWorkers").as_deref(), Some("6"));
    assert!(ok_stdout(&d.virsh(&["uri"])).contains("qemu:///system"));
}

#[test]
fn version_flag() {
    let root = tempfile::tempdir().expect("temp dir");
    let out = output_10s(daemon_command("virtqemud", root.path()).arg("-V"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = text(&out.stdout);
    assert!(v.starts_with("virtqemud "), "{v}");
    assert_contains(&v, "9.0.0");
    assert!(!root.path().join("run").exists(), "-V starts nothing");
}

#[test]
fn missing_explicit_config_fails() {
    let root = tempfile::tempdir().expect("temp dir");
    let out = output_10s(daemon_command("virtqemud", root.path()).args(["-f", "/nonexistent"]));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_contains(&err, "/nonexistent");
    assert_contains(&err, "No such file or directory");
    assert!(!root.path().join("run/libvirt/virtqemud-sock").exists());
}

#[test]
fn daemonize_detaches_and_logs_to_file() {
    let root = temp_root("modvirt-e2e-");
    let pid_file = root.path().join("run/virtqemud.pid");
    let out = output_10s(daemon_command("virtqemud", root.path()).arg("-d"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The launcher returns only once the daemon serves.
    let pid = read_pid_file(&pid_file, "pid file written before -d returns");
    let guard = PidGuard(pid);
    assert!(!process_gone(pid), "daemon {pid} not running");
    assert_ne!(
        modvirt_tests::proc_status(pid, "PPid").as_deref(),
        Some(std::process::id().to_string().as_str()),
        "detached from the test"
    );

    let log = root.path().join("var/log/libvirt/virtqemud.log");
    assert_eq!(
        detached_admin(root.path(), &["daemon-log-outputs"]),
        format!(" Logging outputs: 3:file:{}\n\n", log.display())
    );
    assert!(log.exists());

    terminate_detached(pid, &pid_file);
    assert!(!root.path().join("run/libvirt/virtqemud-sock").exists());
    drop(guard);
}

#[test]
fn daemonize_reports_startup_failure() {
    let mut d = Daemon::start("virtqemud", DaemonOptions::default());
    let out = output_10s(daemon_command("virtqemud", d.root.path()).arg("-d"));
    assert_eq!(out.status.code(), Some(1));
    assert_contains(&text(&out.stderr), "already running");
    assert!(d.exited().is_none());
}

#[test]
fn daemonize_with_relative_paths() {
    // `-d` changes directory to `/`: paths given relative to the caller's
    // directory must still mean what they meant there.
    let root = temp_root("modvirt-e2e-");
    let conf = root.path().join("my.conf");
    std::fs::write(&conf, "min_workers = 3\nmax_workers = 5\n").expect("config");
    let mut cmd = daemon_command("virtqemud", Path::new("."));
    cmd.current_dir(root.path())
        .args(["-f", "my.conf", "-p", "my.pid", "-d"]);
    let out = output_10s(&mut cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid_file = root.path().join("my.pid");
    let pid = read_pid_file(
        &pid_file,
        "pid file where -p said, relative to the caller's directory",
    );
    let _guard = PidGuard(pid);
    let admin = |args: &[&str]| detached_admin(root.path(), args);
    let info = admin(&["srv-threadpool-info", "virtqemud"]);
    assert_eq!(field(&info, "maxWorkers").as_deref(), Some("5"), "{info}");
    // SIGHUP re-reads the same (relative) -f file.
    std::fs::write(&conf, "min_workers = 3\nmax_workers = 7\n").expect("config");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGHUP);
    let mut info = String::new();
    let reloaded = wait_for(Duration::from_secs(10), || {
        info = admin(&["srv-threadpool-info", "virtqemud"]);
        field(&info, "maxWorkers").as_deref() == Some("7")
    });
    let log = std::fs::read_to_string(root.path().join("var/log/libvirt/virtqemud.log")).unwrap_or_default();
    assert!(reloaded, "{info}\n{log}");
    terminate_detached(pid, &pid_file);
    assert!(
        !root.path().join("run/virtqemud.pid").exists(),
        "-p replaces the default"
    );
}

#[test]
fn restart_after_kill_9_replaces_stale_files() {
    let mut d = Daemon::start("virtqemud", DaemonOptions::default());
    d.signal(Signal::SIGKILL);
    assert!(d.wait_exit(Duration::from_secs(10)).is_some());
    // kill -9 leaves the pid file and the socket files behind.
    assert!(d.root.path().join("run/virtqemud.pid").exists());
    assert!(d.socket("sock").exists());
    let d = Daemon::start_in("virtqemud", d.into_root(), DaemonOptions::default());
    let pid = std::fs::read_to_string(d.root.path().join("run/virtqemud.pid")).expect("pid file");
    assert_eq!(pid.trim(), d.pid().to_string());
    assert!(ok_stdout(&d.virsh(&["uri"])).contains("qemu:///system"));
}

#[test]
fn sigterm_with_a_client_connected() {
    let mut d = Daemon::start("virtqemud", DaemonOptions::default());
    let mut v = connected_virsh(&d);
    let status = d.stop();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", d.stderr());
    assert!(!d.socket("sock").exists());
    let noticed = wait_for(Duration::from_secs(10), || {
        v.stderr().contains("Disconnected from")
    });
    assert!(noticed, "virsh stderr: {}", v.stderr());
    assert!(v.close().is_some());
}
