//! The observability core end to end: real daemons, real virsh, and the
//! real `virt-daemons` CLI reading them (state files, lifecycle logs and the
//! OBSERVE program on the admin socket).

use modvirt_tests::{
    ChildGuard, Daemon, DaemonOptions, bin, require_tool, temp_root, virt_daemons, wait_for,
};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn status_json(root: &Path) -> Value {
    serde_json::from_str(&virt_daemons(root, &["status", "--json"])).expect("status --json is JSON")
}

fn daemon_entry<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["daemons"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name))
        .unwrap_or_else(|| panic!("{name} missing from {status:#}"))
}

fn lifecycle_events(root: &Path, name: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(root.join(format!("run/libvirt/modvirt/{name}.log"))).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["event"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn manual_start_reports_cause_phases_and_idle() {
    let d = modvirt_tests::virtqemud_with_idle_timeout(60);
    assert!(wait_for(Duration::from_secs(5), || lifecycle_events(
        d.root.path(),
        "virtqemud"
    )
    .len()
        == 2));
    let st = status_json(d.root.path());
    let e = daemon_entry(&st, "virtqemud");
    assert_eq!(e["state"], "running");
    assert_eq!(e["pid"], d.pid());
    assert_eq!(e["activation"]["cause"], "manual");
    assert_eq!(e["idle"]["timeout_s"], 60);
    assert_eq!(e["idle"]["armed"], true, "no client: the countdown runs: {e:#}");
    let phases: Vec<&str> = e["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["config", "pid-file", "sockets", "servers", "driver"] {
        assert!(phases.contains(&name), "phase {name} missing: {phases:?}");
    }
    assert!(e["phases"][0]["duration_ms"].is_number());
    assert_eq!(
        lifecycle_events(d.root.path(), "virtqemud"),
        ["activated", "ready"]
    );
}

#[test]
fn socket_activation_names_virsh_and_its_pid() {
    let root = temp_root("modvirt-obs-");
    let run = root.path().join("run/libvirt");
    std::fs::create_dir_all(&run).unwrap();
    let sock = |s: &str| run.join(format!("virtqemud-{s}"));
    let mut cmd = Command::new(require_tool("systemd-socket-activate"));
    for s in ["sock", "sock-ro", "admin-sock"] {
        cmd.arg("-l").arg(sock(s));
    }
    cmd.arg("--fdname=virtqemud.socket:virtqemud-ro.socket:virtqemud-admin.socket")
        .arg(bin("virtqemud"))
        .arg("--root")
        .arg(root.path())
        .arg("--timeout")
        .arg("30");
    modvirt_tests::clear_daemon_env(&mut cmd);
    let activator = ChildGuard::spawn(cmd.stdout(Stdio::null()).stderr(Stdio::null()));
    assert!(wait_for(Duration::from_secs(5), || sock("sock").exists()));
    let uri = format!("qemu:///system?socket={}", sock("sock").display());
    let mut virsh = Command::new(require_tool("virsh"))
        .args(["-c", &uri, "hostname"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let virsh_pid = virsh.id() as i32;
    assert!(virsh.wait().unwrap().success());
    let st = status_json(root.path());
    let e = daemon_entry(&st, "virtqemud");
    assert_eq!(e["state"], "running", "{e:#}");
    assert_eq!(
        e["pid"],
        activator.pid(),
        "exec'd in place of systemd-socket-activate"
    );
    let a = &e["activation"];
    assert_eq!(a["cause"], "socket", "{a:#}");
    assert_eq!(a["socket"], "virtqemud.socket");
    assert_eq!(a["client"]["comm"], "virsh");
    assert_eq!(a["client"]["pid"], virsh_pid);
    assert_eq!(a["client"]["uid"], 0);
    let why = virt_daemons(root.path(), &["why", "virtqemud"]);
    assert!(why.contains("virtqemud.socket"), "{why}");
    assert!(why.contains(&format!("pid {virsh_pid}")), "{why}");
}

#[test]
fn idle_exit_is_reported_without_waking_the_daemon() {
    let mut d = modvirt_tests::virtqemud_with_idle_timeout(1);
    assert!(d.wait_exit(Duration::from_secs(15)).is_some(), "idle exit");
    // Where socket activation would listen, a listener that counts: any
    // observer connecting here would have woken the daemon.
    let wakes = modvirt_tests::counting_listener(&d.socket("admin-sock"));
    let _rw = modvirt_tests::counting_listener(&d.socket("sock"));
    for _ in 0..3 {
        let st = status_json(d.root.path());
        let e = daemon_entry(&st, "virtqemud");
        assert_eq!(e["state"], "idle-exited", "{e:#}");
        assert!(e["pid"].is_null());
        let _ = virt_daemons(d.root.path(), &["why", "virtqemud"]);
        let _ = virt_daemons(d.root.path(), &["hangs"]);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        wakes.load(Ordering::SeqCst),
        0,
        "an observer connected to a sleeping daemon"
    );
    assert_eq!(
        lifecycle_events(d.root.path(), "virtqemud"),
        ["activated", "ready", "idle-exit"],
        "exactly one run: nothing started it again"
    );
}

#[test]
fn polling_observer_does_not_keep_the_daemon_awake() {
    let mut d = modvirt_tests::virtqemud_with_idle_timeout(3);
    let start = Instant::now();
    let mut seen_running = 0;
    let exited = loop {
        if let Some(st) = d.exited() {
            break Some(st);
        }
        if start.elapsed() > Duration::from_secs(20) {
            break None;
        }
        let st = status_json(d.root.path());
        if daemon_entry(&st, "virtqemud")["state"] == "running" {
            seen_running += 1;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        exited.is_some_and(|s| s.success()),
        "still alive after 20 s of polling"
    );
    assert!(
        seen_running >= 3,
        "the observer saw it running ({seen_running} polls)"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(2500),
        "exited before its timeout"
    );
    assert_eq!(
        daemon_entry(&status_json(d.root.path()), "virtqemud")["state"],
        "idle-exited"
    );
}

#[test]
fn blocked_call_shows_in_hangs_with_its_holder() {
    let d = Daemon::start(
        "virttestd",
        DaemonOptions {
            env: vec![("MODVIRT_TESTD_SUSPEND_MS".into(), "8000".into())],
            ..Default::default()
        },
    );
    let virsh = || d.spawn_virsh(&["suspend", "vm1"]);
    let first = virsh();
    assert!(wait_for(Duration::from_secs(5), || {
        let st = status_json(d.root.path());
        daemon_entry(&st, "virttestd")["inflight"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["procedure"] == "DOMAIN_SUSPEND"))
    }));
    let second = virsh();
    let mut text = String::new();
    let found = wait_for(Duration::from_secs(6), || {
        text = virt_daemons(d.root.path(), &["hangs", "--older-than", "1"]);
        text.contains("waiting on job lock domain:vm1 held by")
    });
    assert!(found, "hangs output:\n{text}");
    assert!(text.contains(&format!("virsh(pid {})", second.pid())), "{text}");
    assert!(
        text.contains(&format!("from virsh(pid {})", first.pid())),
        "{text}"
    );
    assert!(text.contains("DOMAIN_SUSPEND"), "{text}");
    let json: Value = serde_json::from_str(&virt_daemons(
        d.root.path(),
        &["hangs", "--older-than", "1", "--json"],
    ))
    .unwrap();
    let hops = json["hangs"][0]["hops"].as_array().expect("one chain");
    assert!(hops.len() >= 2, "{json:#}");
    let st = status_json(d.root.path());
    let locks = daemon_entry(&st, "virttestd");
    let waiting: Vec<&Value> = locks["inflight"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["waiting_on"]["kind"] == "job-lock")
        .collect();
    assert_eq!(waiting.len(), 1, "{locks:#}");
    assert_eq!(waiting[0]["waiting_on"]["holder_procedure"], "DOMAIN_SUSPEND");
    assert!(waiting[0]["age_s"].as_f64().unwrap() >= 1.0);
}

#[test]
fn driver_init_steps_show_in_boot() {
    let d = Daemon::start(
        "virttestd",
        DaemonOptions {
            env: vec![("MODVIRT_TESTD_INIT_MS".into(), "120".into())],
            ..Default::default()
        },
    );
    let boot = virt_daemons(d.root.path(), &["boot"]);
    let driver = boot
        .lines()
        .find(|l| l.trim_start().starts_with("driver"))
        .unwrap_or("");
    assert!(!driver.is_empty(), "{boot}");
    assert!(
        boot.contains("enumerate") && boot.contains("3 test objects"),
        "{boot}"
    );
    // The slow step makes `driver` the slowest phase: listed first.
    let first_phase = boot.lines().nth(1).unwrap_or("");
    assert!(first_phase.trim_start().starts_with("driver"), "{boot}");
}

#[test]
fn crash_is_detected_by_observers_and_the_next_start() {
    let d = Daemon::start("virtqemud", DaemonOptions::default());
    // The sockets accept before the daemon logs `ready`: wait for it.
    assert!(wait_for(Duration::from_secs(5), || lifecycle_events(
        d.root.path(),
        "virtqemud"
    )
    .len()
        == 2));
    d.signal(nix::sys::signal::Signal::SIGKILL);
    let root = d.into_root();
    let st = status_json(root.path());
    assert_eq!(daemon_entry(&st, "virtqemud")["state"], "crashed", "{st:#}");
    let d2 = Daemon::start_in("virtqemud", root, DaemonOptions::default());
    assert!(wait_for(Duration::from_secs(5), || lifecycle_events(
        d2.root.path(),
        "virtqemud"
    )
    .len()
        == 5));
    assert_eq!(
        lifecycle_events(d2.root.path(), "virtqemud"),
        ["activated", "ready", "crashed", "activated", "ready"]
    );
    let st = status_json(d2.root.path());
    assert_eq!(daemon_entry(&st, "virtqemud")["state"], "running");
}

/// The daemon's state file, as written by it.
fn state_file(d: &Daemon) -> Value {
    let path = d.root.path().join("run/libvirt/modvirt/virtqemud.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("state file")).expect("state file is JSON")
}

#[test]
fn an_observer_entering_the_exit_gate_delays_the_idle_exit() {
    use nix::fcntl::{Flock, FlockArg};
    let mut d = modvirt_tests::virtqemud_with_idle_timeout(1);
    let gate = state_file(&d)["exit_gate"]
        .as_str()
        .expect("exit_gate in the state file")
        .to_owned();
    // An observer between its liveness check and its OPEN.
    let held = Flock::lock(std::fs::File::open(&gate).unwrap(), FlockArg::LockSharedNonblock).unwrap();
    // Past the 1 s timeout, within the daemon's 2 s wait for observers.
    std::thread::sleep(Duration::from_millis(1600));
    assert!(d.exited().is_none(), "exited while an observer was connecting");
    drop(held);
    assert!(d.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert_eq!(
        lifecycle_events(d.root.path(), "virtqemud"),
        ["activated", "ready", "idle-exit"]
    );
}

/// The test daemon `virttestd --timeout SECS`, whose driver takes 300 ms
/// to shut down (the window in which an unguarded observer would find it
/// alive yet no longer accepting), on listening sockets the test made and
/// keeps, passed as systemd does (`LISTEN_FDS`): once the daemon stops
/// accepting, a connection still lands in their backlog, where systemd
/// would start the daemon again for it.
fn socket_activated_testd(
    secs: u32,
) -> (
    tempfile::TempDir,
    ChildGuard,
    Vec<std::os::unix::net::UnixListener>,
) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let root = temp_root("modvirt-e2e-gate-");
    let run = root.path().join("run/libvirt");
    std::fs::create_dir_all(&run).expect("run dir");
    let listeners: Vec<_> = ["sock", "sock-ro", "admin-sock"]
        .iter()
        .map(|s| {
            std::os::unix::net::UnixListener::bind(run.join(format!("virttestd-{s}")))
                .expect("bind a listening socket")
        })
        .collect();
    // Copies above the target numbers 3..=5, so no dup2 overwrites a source.
    let high: Vec<std::os::fd::OwnedFd> = listeners
        .iter()
        .map(|l| {
            let fd =
                nix::fcntl::fcntl(l, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(100)).expect("F_DUPFD_CLOEXEC");
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
            unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
        })
        .collect();
    let fds: Vec<i32> = high.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = Command::new("/bin/sh");
    // `exec` keeps the shell's pid, which LISTEN_PID must name.
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(bin("virttestd"))
        .arg("--root")
        .arg(root.path())
        .args(["--timeout", &secs.to_string()]);
    modvirt_tests::clear_daemon_env(&mut cmd)
        .env("LISTEN_FDS", "3")
        .env(
            "LISTEN_FDNAMES",
            "virttestd.socket:virttestd-ro.socket:virttestd-admin.socket",
        )
        .env("MODVIRT_TESTD_SHUTDOWN_MS", "300")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only dup2, which is async-signal-safe, runs in the child; the
    // sources are open (held by `high`) and the targets 3..=5 are left open
    // for the daemon (forgotten, not closed).
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in fds.iter().enumerate() {
                let source = std::os::fd::BorrowedFd::borrow_raw(*fd);
                std::mem::forget(nix::unistd::dup2_raw(source, 3 + i as i32)?);
            }
            Ok(())
        });
    }
    let child = ChildGuard::spawn(&mut cmd);
    drop(high);
    assert!(
        wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(run.join("modvirt/virttestd.json"))
                .is_ok_and(|t| t.contains("\"running\""))
        }),
        "virttestd did not start on the passed sockets"
    );
    (root, child, listeners)
}

#[test]
fn observers_racing_an_idle_exit_never_connect_to_a_closing_daemon() {
    use modvirt_admin::discover::{DiscoverOptions, Root, discover};
    use modvirt_admin::observe::ObserveError;
    let (root_dir, mut daemon, listeners) = socket_activated_testd(1);
    let root = Root::under(root_dir.path());
    let done = std::sync::atomic::AtomicBool::new(false);
    let outcomes = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let (mut ok, mut not_running, mut wrong) = (0, 0, Vec::new());
                    while !done.load(Ordering::SeqCst) {
                        let found = discover(&root, &DiscoverOptions::default());
                        let Some(q) = found.find("virttestd") else {
                            continue;
                        };
                        match q.observe(Duration::from_millis(500)) {
                            Ok(mut c) => {
                                ok += 1;
                                // The daemon may exit once OPEN is answered.
                                let _ = c.status();
                            }
                            Err(ObserveError::NotRunning { .. }) => not_running += 1,
                            Err(e) => wrong.push(e.to_string()),
                        }
                    }
                    (ok, not_running, wrong)
                })
            })
            .collect();
        let exited = daemon.wait_exit(Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, Ordering::SeqCst);
        assert!(exited.is_some(), "observers kept the daemon awake");
        workers.into_iter().map(|w| w.join().unwrap()).collect::<Vec<_>>()
    });
    // What systemd would have seen: a connection waiting on a socket of a
    // daemon that is gone starts it again.
    let woken: usize = listeners
        .iter()
        .map(|l| {
            l.set_nonblocking(true).unwrap();
            l.incoming().take_while(Result::is_ok).count()
        })
        .sum();
    let ok: usize = outcomes.iter().map(|o| o.0).sum();
    let not_running: usize = outcomes.iter().map(|o| o.1).sum();
    let wrong: Vec<&String> = outcomes.iter().flat_map(|o| &o.2).collect();
    assert!(
        ok > 0 && not_running > 0,
        "the observers saw it run and then stop ({ok} / {not_running})"
    );
    assert_eq!(
        woken, 0,
        "observers connected to a daemon that was exiting: {wrong:?}"
    );
    assert!(wrong.is_empty(), "observers reached a closing daemon: {wrong:?}");
    assert_eq!(
        lifecycle_events(root_dir.path(), "virttestd"),
        ["activated", "ready", "idle-exit"]
    );
}
