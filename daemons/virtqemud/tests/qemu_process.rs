//! The QEMU process and its QMP monitor against the real
//! `qemu-system-x86_64`: TCG, machine `pc`, 64 MiB, started paused, sockets
//! and logs in a temp dir. Every test kills the QEMU it started, by pid,
//! even when it fails (`KillOnDrop`). Skipped, saying so, when
//! `qemu-system-x86_64` is not installed.

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use virtqemud::qemu::cmdline::{
    Accel, DiskBus, DiskFormat, DiskSpec, LaunchSpec, NicKind, NicModel, NicSpec, VncPort, VncSpec,
};
use virtqemud::qemu::process::{self, Launch, ProcessError, QemuProcess, StartedQemu};
use virtqemud::qemu::qmp::{QmpError, QmpEvents};

const QEMU: &str = "qemu-system-x86_64";
const T: Duration = Duration::from_secs(30);
const UUID: &str = "6a1f1e37-9c8c-4b8e-8d0b-2f3f4d5e6a7b";
/// Tells `spawner_helper` where to put its guest.
const SPAWNER_DIR_ENV: &str = "MODVIRT_TEST_QEMU_SPAWNER_DIR";

fn qemu_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(QEMU))
        .find(|p| p.is_file())
}

/// The installed QEMU, or return from the test saying why it is skipped.
macro_rules! require_qemu {
    () => {
        match qemu_binary() {
            Some(b) => b,
            None => {
                eprintln!("SKIPPED: {QEMU} is not installed (not found in PATH)");
                return;
            }
        }
    };
}

/// SIGKILLs a QEMU on drop, by pid, if that pid still runs QEMU, and reaps
/// it if it is our child.
struct KillOnDrop {
    pid: i32,
    binary: PathBuf,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if process::is_alive(self.pid, &self.binary) {
            let _ = process::kill(self.pid, Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while process::is_alive(self.pid, &self.binary) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        reap(self.pid);
    }
}

/// Collects a zombie child without blocking; nothing when not our child.
fn reap(pid: i32) {
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

/// A guest's files in a temp dir.
struct Guest {
    /// Removed on drop, when the guest owns its directory.
    _tmp: Option<TempDir>,
    root: PathBuf,
    name: String,
    binary: PathBuf,
    spec: LaunchSpec,
}

impl Guest {
    fn new(binary: PathBuf, name: &str) -> Guest {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut g = Self::at(binary, name, tmp.path());
        g._tmp = Some(tmp);
        g
    }

    /// A guest whose files are in `root`, left there.
    fn at(binary: PathBuf, name: &str, root: &Path) -> Guest {
        let mut spec = LaunchSpec::new(name, UUID, &root.join("qmp.sock"), &root.join("qemu.pid"));
        spec.accel = Accel::Tcg;
        spec.machine = "pc".into();
        spec.memory_kib = 64 * 1024;
        Guest {
            _tmp: None,
            root: root.into(),
            name: name.into(),
            binary,
            spec,
        }
    }

    fn log(&self) -> PathBuf {
        self.root.join("qemu.log")
    }

    fn args(&self) -> Vec<String> {
        self.spec.to_args().expect("command line")
    }

    /// `process::start` with this guest's files.
    async fn start_with(&self, args: &[String]) -> Result<StartedQemu, ProcessError> {
        let log = self.log();
        process::start(&Launch {
            name: &self.name,
            binary: &self.binary,
            args,
            log_path: &log,
            pidfile: &self.spec.pidfile,
            qmp_socket: &self.spec.qmp_socket,
            timeout: T,
        })
        .await
    }

    async fn start(&self) -> (StartedQemu, KillOnDrop) {
        let started = self.start_with(&self.args()).await.expect("QEMU starts");
        let guard = KillOnDrop {
            pid: started.process.pid(),
            binary: started.process.binary().to_owned(),
        };
        (started, guard)
    }

    /// The lower-level path: spawn, guard, then connect.
    async fn spawn_and_connect(
        &self,
        args: &[String],
    ) -> (QemuProcess, KillOnDrop, Result<(), ProcessError>) {
        let p = process::spawn(&self.binary, args, &self.log(), &self.spec.pidfile)
            .await
            .expect("spawn");
        let guard = KillOnDrop {
            pid: p.pid(),
            binary: p.binary().to_owned(),
        };
        let r = p
            .connect_monitor(&self.name, &self.spec.qmp_socket, T)
            .await
            .map(drop);
        (p, guard, r)
    }
}

async fn next_event(events: &mut QmpEvents, name: &str) -> Value {
    loop {
        let ev = tokio::time::timeout(T, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within {T:?}"))
            .unwrap_or_else(|| panic!("event stream ended before {name}"));
        if ev.name == name {
            return ev.data;
        }
    }
}

async fn status(started: &StartedQemu) -> String {
    let st = started
        .qmp
        .execute("query-status", None)
        .await
        .expect("query-status");
    st["status"].as_str().expect("status").to_owned()
}

#[tokio::test]
async fn paused_guest_runs_and_stops_over_qmp() {
    let binary = require_qemu!();
    let g = Guest::new(binary, "paused-guest");
    let (mut q, _guard) = g.start().await;
    let pid = q.process.pid();
    assert_eq!(q.qmp.peer_pid(), Some(pid));
    assert!(q.qmp.greeting().major >= 2);
    assert_eq!(
        process::read_pidfile(&g.spec.pidfile).expect("pidfile"),
        Some(pid)
    );
    let log = std::fs::read_to_string(g.log()).expect("log");
    assert!(
        log.contains(": starting up\nLC_ALL=C ") && log.contains("guest=paused-guest"),
        "{log}"
    );

    let st = q.qmp.execute("query-status", None).await.expect("query-status");
    assert_eq!(st["status"], "prelaunch", "{st}");
    assert_eq!(st["running"], false);
    assert!(q.qmp.busy_since().is_none() && q.qmp.pending().is_empty());

    q.qmp.execute("cont", None).await.expect("cont");
    next_event(&mut q.events, "RESUME").await;
    assert_eq!(status(&q).await, "running");

    q.qmp.execute("stop", None).await.expect("stop");
    next_event(&mut q.events, "STOP").await;
    assert_eq!(status(&q).await, "paused");

    let err = q
        .qmp
        .execute("no-such-command", None)
        .await
        .expect_err("unknown command");
    assert!(
        matches!(&err, QmpError::Command { class, .. } if class == "CommandNotFound"),
        "{err:?}"
    );
    let err = q
        .qmp
        .execute("query-block", Some(json!({"bogus": 1})))
        .await
        .expect_err("bad argument");
    assert!(
        err.to_string()
            .starts_with("unable to execute QEMU command 'query-block': "),
        "{err}"
    );
    assert!(q.process.is_alive());
}

#[tokio::test]
async fn quit_emits_shutdown_and_process_exits() {
    let binary = require_qemu!();
    let g = Guest::new(binary, "quit-guest");
    let (mut q, _guard) = g.start().await;
    q.qmp.execute("quit", None).await.expect("quit");
    next_event(&mut q.events, "SHUTDOWN").await;
    assert!(
        tokio::time::timeout(T, q.events.recv())
            .await
            .expect("events end")
            .is_none(),
        "event channel must end when QEMU exits"
    );
    assert!(q.process.wait_exit(T).await, "QEMU did not exit");
    let exit = q.process.exit_status().expect("reaped");
    assert!(exit.0.is_some_and(|s| s.success()), "{exit}");
    assert!(!q.process.is_alive());
    let err = q.qmp.execute("query-status", None).await.expect_err("closed");
    assert!(matches!(err, QmpError::Closed { .. }), "{err:?}");
}

#[tokio::test]
async fn sigkill_fails_the_pending_command_with_closed() {
    let binary = require_qemu!();
    let g = Guest::new(binary, "killed-guest");
    let (mut q, _guard) = g.start().await;
    // A stopped QEMU leaves the command pending: the monitor is occupied.
    q.process.kill(Signal::SIGSTOP).expect("SIGSTOP");
    let qmp = q.qmp.clone();
    let call = tokio::spawn(async move { qmp.execute("query-status", None).await });
    let deadline = Instant::now() + T;
    while q.qmp.busy_since().is_none() {
        assert!(Instant::now() < deadline, "command never became pending");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pending = q.qmp.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0, "query-status");

    q.process.kill(Signal::SIGKILL).expect("SIGKILL");
    let err = call.await.expect("join").expect_err("QEMU was killed");
    assert!(
        matches!(&err, QmpError::Closed { command } if command == "query-status"),
        "{err:?}"
    );
    assert!(q.qmp.busy_since().is_none());
    assert!(
        tokio::time::timeout(T, q.events.recv())
            .await
            .expect("events end")
            .is_none()
    );
    assert!(q.process.wait_exit(T).await);
    let exit = q.process.exit_status().expect("reaped");
    assert!(exit.to_string().contains("SIGKILL"), "{exit}");
}

#[tokio::test]
async fn bad_argument_error_quotes_qemu_stderr() {
    let binary = require_qemu!();
    let g = Guest::new(binary, "bad-arg-guest");
    let mut args = g.args();
    args.push("-no-such-option".into());
    let (p, _guard, r) = g.spawn_and_connect(&args).await;
    let err = r.expect_err("QEMU must refuse the option");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        matches!(err, ProcessError::ExitedWhileConnecting { .. }),
        "{err:?}"
    );
    assert!(
        msg.starts_with("process exited while connecting to monitor: "),
        "{msg}"
    );
    assert!(msg.contains("-no-such-option: invalid option"), "{msg}");
    assert!(
        !msg.contains("starting up"),
        "the log header is not QEMU's output: {msg}"
    );
    assert!(!p.is_alive());

    // Through `start`, which cleans up after itself.
    let err = g.start_with(&args).await.expect_err("refused");
    assert!(err.to_string().contains("invalid option"), "{err}");
}

#[tokio::test]
async fn missing_disk_error_quotes_qemu_stderr() {
    let binary = require_qemu!();
    let mut g = Guest::new(binary, "no-disk-guest");
    let image = g.root.join("absent.raw");
    g.spec.disks.push(DiskSpec {
        path: Some(image.clone()),
        format: DiskFormat::Raw,
        bus: DiskBus::Virtio,
        cdrom: false,
        readonly: false,
        target: "vda".into(),
    });
    let (_p, _guard, r) = g.spawn_and_connect(&g.args()).await;
    let err = r.expect_err("QEMU cannot open the disk");
    let msg = err.to_string();
    eprintln!("{msg}");
    match &err {
        ProcessError::MonitorClosed { .. } => {
            assert!(
                msg.starts_with("QEMU unexpectedly closed the monitor (vm='no-disk-guest'): "),
                "{msg}"
            );
        }
        ProcessError::ExitedWhileConnecting { .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        msg.contains(&format!("Could not open '{}'", image.display())),
        "{msg}"
    );
}

#[tokio::test]
async fn missing_binary_is_emulator_missing() {
    let g = Guest::new(PathBuf::from("/nonexistent/qemu-system-x86_64"), "no-binary");
    let err = g.start_with(&g.args()).await.expect_err("no binary");
    assert!(matches!(err, ProcessError::EmulatorMissing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Cannot find QEMU binary /nonexistent/qemu-system-x86_64: No such file or directory"
    );
    assert!(!g.log().exists(), "nothing is started, nothing is logged");
}

#[tokio::test]
async fn full_device_set_is_accepted_by_qemu() {
    let binary = require_qemu!();
    let mut g = Guest::new(binary, "devices,guest");
    let raw = |name: &str| {
        let p = g.root.join(name);
        std::fs::File::create(&p)
            .and_then(|f| f.set_len(1 << 20))
            .expect("image");
        p
    };
    let (ro, rw) = (raw("ro,disk.raw"), raw("rw.raw"));
    let disk = |path: Option<PathBuf>, bus, cdrom, readonly, target: &str| DiskSpec {
        path,
        format: DiskFormat::Raw,
        bus,
        cdrom,
        readonly,
        target: target.into(),
    };
    g.spec.disks = vec![
        disk(Some(ro), DiskBus::Virtio, false, true, "vda"),
        disk(Some(rw), DiskBus::Sata, false, false, "sda"),
        disk(None, DiskBus::Ide, true, true, "hdc"),
        disk(None, DiskBus::Scsi, true, true, "sdb"),
    ];
    let nic = |mac: &str, model| NicSpec {
        kind: NicKind::User,
        mac: mac.into(),
        model,
    };
    g.spec.nics = vec![
        nic("52:54:00:12:34:56", NicModel::Virtio),
        nic("52:54:00:12:34:57", NicModel::E1000),
    ];
    g.spec.serial_pty = true;
    g.spec.vnc = Some(VncSpec {
        port: VncPort::Auto,
        listen: "127.0.0.1".into(),
    });
    g.spec.boot = vec!["cdrom".parse().expect("boot"), "hd".parse().expect("boot")];
    g.spec.acpi = false;
    let (q, _guard) = g.start().await;

    let blocks = q.qmp.execute("query-block", None).await.expect("query-block");
    let names: Vec<&str> = blocks
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["device"].as_str())
        .collect();
    for want in [
        "drive-virtio-disk0",
        "drive-sata0-0-0",
        "drive-ide0-1-0",
        "drive-scsi0-0-0-1",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let chardevs = q.qmp.execute("query-chardev", None).await.expect("query-chardev");
    let serial = chardevs
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["label"] == "charserial0")
        .expect("serial chardev");
    assert!(
        serial["filename"].as_str().expect("filename").starts_with("pty:"),
        "{serial}"
    );
    let vnc = q.qmp.execute("query-vnc", None).await.expect("query-vnc");
    assert_eq!(vnc["enabled"], true, "{vnc}");
    let st = q.qmp.execute("query-name", None).await.expect("query-name");
    assert_eq!(st["name"], "devices,guest");
}

/// Not a test of its own: `qemu_survives_the_death_of_its_spawner` runs it
/// in a child process, which starts QEMU, prints its pid and waits to be
/// killed.
#[test]
#[ignore = "helper process for qemu_survives_the_death_of_its_spawner"]
fn spawner_helper() {
    let Some(dir) = std::env::var_os(SPAWNER_DIR_ENV) else {
        eprintln!("spawner_helper only runs as the child of qemu_survives_the_death_of_its_spawner");
        return;
    };
    let binary = require_qemu!();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let g = Guest::at(binary, "orphan-guest", Path::new(&dir));
        let q = g.start_with(&g.args()).await.expect("start");
        println!("QEMU_PID={}", q.process.pid());
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

/// Kills a helper child process on drop.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn qemu_survives_the_death_of_its_spawner() {
    let binary = require_qemu!();
    // Orphans are re-parented to us rather than to pid 1, so we can reap
    // the QEMU at the end (pid 1 of a container may not).
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "spawner_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SPAWNER_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn helper");
    let mut helper = ChildGuard(child);
    let stdout = helper.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, pid)) = line.split_once("QEMU_PID=") {
                let digits: String = pid.chars().take_while(char::is_ascii_digit).collect();
                let _ = tx.send(digits.parse::<i32>().expect("pid"));
            }
        }
    });
    let pid = rx.recv_timeout(T).expect("the helper reports QEMU's pid");
    let _qemu = KillOnDrop {
        pid,
        binary: binary.clone(),
    };
    assert!(process::is_alive(pid, &binary));

    // SIGKILL: no chance for the spawner to clean anything up.
    helper.0.kill().expect("kill helper");
    helper.0.wait().expect("reap helper");
    std::thread::sleep(Duration::from_millis(300));
    assert!(process::is_alive(pid, &binary), "QEMU died with its spawner");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let g = Guest::at(binary.clone(), "orphan-guest", dir.path());
        let p = QemuProcess::adopt(pid, &binary, &g.log(), &g.spec.pidfile).expect("adopt");
        assert!(!p.is_child());
        assert_eq!(process::read_pidfile(p.pidfile()).expect("pidfile"), Some(pid));
        let (qmp, _events) = p
            .connect_monitor(&g.name, &g.spec.qmp_socket, T)
            .await
            .expect("a new daemon reconnects");
        let st = qmp.execute("query-status", None).await.expect("query-status");
        assert_eq!(st["status"], "prelaunch");
        p.terminate(Duration::from_secs(5)).await.expect("terminate");
        assert!(!process::is_alive(pid, &binary));
    });
}
