use super::systemd::ShowOutput;
use super::*;
use crate::observe::fake::sample_state_file;
use modvirt_wire::observe::{Lifecycle, LifecycleEvent};
use std::os::unix::net::UnixListener;

fn state_file(name: &str, pid: i32, ticks: u64, state: &str, exit: Option<ExitReason>) -> StateFile {
    StateFile {
        pid_start_ticks: ticks,
        ..sample_state_file(name, pid, state, exit, 1_700_000_000_000)
    }
}

/// virtsecretd (pid 5) exited when idle.
fn idle_exited_secretd() -> StateFile {
    state_file("virtsecretd", 5, 1, "exited", Some(ExitReason::IdleExit))
}

fn write(root: &Root, sf: &StateFile) {
    std::fs::create_dir_all(root.state_dir()).unwrap();
    std::fs::write(root.state_file(&sf.name), serde_json::to_vec(sf).unwrap()).unwrap();
}

fn me() -> (i32, u64) {
    (std::process::id() as i32, procfs::own_start_ticks().unwrap())
}

#[test]
fn root_layout() {
    let r = Root::under(Path::new("/tmp/r"));
    assert_eq!(
        r.state_file("virtqemud"),
        Path::new("/tmp/r/run/libvirt/modvirt/virtqemud.json")
    );
    assert_eq!(
        r.lifecycle_log("virtqemud"),
        Path::new("/tmp/r/run/libvirt/modvirt/virtqemud.log")
    );
    assert!(r.explicit);
    assert_eq!(Root::resolve(Some(Path::new("/x"))), Root::under(Path::new("/x")));
}

#[test]
fn derived_states() {
    let sf = |state, exit| state_file("d", 7, 100, state, exit);
    let check = |sf: StateFile, live, want: DaemonState| {
        let (got, detail) = derive_state(&sf, live);
        assert_eq!(got, want, "{} / {live:?}: {detail:?}", sf.state);
        detail
    };
    assert_eq!(
        check(sf("running", None), Liveness::Alive, DaemonState::Running),
        None
    );
    assert_eq!(
        check(sf("starting", None), Liveness::Alive, DaemonState::Running).as_deref(),
        Some("starting")
    );
    let d = check(sf("running", None), Liveness::Gone, DaemonState::Crashed).unwrap();
    assert!(d.contains("pid 7 is gone"), "{d}");
    let d = check(
        sf("running", None),
        Liveness::Reused { start_ticks: 5 },
        DaemonState::Crashed,
    )
    .unwrap();
    assert!(d.contains("another process"), "{d}");
    check(sf("stopping", None), Liveness::Zombie, DaemonState::Crashed);
    check(
        sf("stopping", Some(ExitReason::Signal)),
        Liveness::Gone,
        DaemonState::Stopped,
    );
    check(sf("running", None), Liveness::Unknown, DaemonState::Unknown);
    check(
        sf("exited", Some(ExitReason::IdleExit)),
        Liveness::Gone,
        DaemonState::IdleExited,
    );
    check(
        sf("exited", Some(ExitReason::Signal)),
        Liveness::Gone,
        DaemonState::Stopped,
    );
    check(
        sf("exited", Some(ExitReason::StartupFailed)),
        Liveness::Gone,
        DaemonState::Failed,
    );
    check(
        sf("exited", Some(ExitReason::Crashed)),
        Liveness::Gone,
        DaemonState::Crashed,
    );
    // An exited state file is believed even if the pid is alive (reused).
    check(
        sf("exited", Some(ExitReason::IdleExit)),
        Liveness::Alive,
        DaemonState::IdleExited,
    );
    check(sf("exited", None), Liveness::Gone, DaemonState::Stopped);
    check(sf("dancing", None), Liveness::Alive, DaemonState::Unknown);
}

#[test]
fn discovery_from_state_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::under(dir.path());
    let (pid, ticks) = me();
    write(&root, &state_file("virtqemud", pid, ticks, "running", None));
    write(
        &root,
        &state_file("virtnetworkd", pid, ticks + 1, "running", None),
    );
    write(&root, &state_file("virtnodedevd", i32::MAX, 1, "running", None));
    write(
        &root,
        &state_file("virtsecretd", pid, ticks, "exited", Some(ExitReason::IdleExit)),
    );
    write(&root, &state_file("virtmyd", pid, ticks, "running", None));
    std::fs::write(root.state_file("virtstoraged"), b"{\"schema\":1,\"na").unwrap();
    let mut newer = serde_json::to_value(state_file("virtxend", pid, ticks, "running", None)).unwrap();
    newer["schema"] = 7.into();
    std::fs::write(root.state_file("virtxend"), newer.to_string()).unwrap();
    std::fs::write(root.state_dir().join(".virtlxcd.json.tmp"), b"{").unwrap();
    std::fs::write(root.state_dir().join(".hidden.json"), b"{").unwrap();

    let found = discover(&root, &DiscoverOptions::default());
    assert!(found.warnings.is_empty(), "{:?}", found.warnings);
    let states: Vec<(&str, DaemonState)> = found.daemons.iter().map(|d| (d.name.as_str(), d.state)).collect();
    assert_eq!(
        states,
        [
            ("virtmyd", DaemonState::Running),
            ("virtnetworkd", DaemonState::Crashed),
            ("virtnodedevd", DaemonState::Crashed),
            ("virtqemud", DaemonState::Running),
            ("virtsecretd", DaemonState::IdleExited),
            ("virtstoraged", DaemonState::Unknown),
            ("virtxend", DaemonState::Unknown),
        ]
    );
    let q = found.find("virtqemud").unwrap();
    assert_eq!(q.pid(), Some(pid));
    assert_eq!(
        q.admin_socket(),
        Some(Path::new("/nonexistent/virtqemud-admin-sock"))
    );
    let n = found.find("virtnetworkd").unwrap();
    assert_eq!((n.pid(), n.admin_socket()), (None, None));
    let s = found.find("virtstoraged").unwrap();
    assert!(
        s.detail
            .as_deref()
            .unwrap()
            .starts_with("unreadable state file: "),
        "{:?}",
        s.detail
    );
    let x = found.find("virtxend").unwrap();
    assert!(
        x.detail.as_deref().unwrap().contains("schema 7 is newer"),
        "{:?}",
        x.detail
    );

    let all = discover(
        &root,
        &DiscoverOptions {
            all: true,
            units: None,
        },
    );
    assert_eq!(
        all.daemons.len(),
        7 + 4,
        "the 4 modvirt daemons never seen are listed"
    );
    assert_eq!(all.find("virtlxcd").unwrap().state, DaemonState::NeverStarted);
    assert_eq!(all.find("virtproxyd").unwrap().state, DaemonState::NeverStarted);
}

#[test]
fn missing_state_dir_is_no_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let found = discover(
        &Root::under(&dir.path().join("nope")),
        &DiscoverOptions::default(),
    );
    assert!(found.daemons.is_empty() && found.warnings.is_empty());
}

#[test]
fn history_comes_with_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::under(dir.path());
    write(&root, &idle_exited_secretd());
    let ev = LifecycleEvent {
        at_ms: 1_000,
        pid: 5,
        event: Lifecycle::IdleExit { timeout_s: 120 },
    };
    std::fs::write(
        root.lifecycle_log("virtsecretd"),
        serde_json::to_string(&ev).unwrap() + "\n",
    )
    .unwrap();
    let found = discover(&root, &DiscoverOptions::default());
    assert_eq!(found.daemons[0].history.runs.len(), 1);
}

const SHOW: &str = "\
Id=virtsecretd.service
LoadState=loaded
ActiveState=inactive
SubState=dead

Id=virtsecretd.socket
LoadState=loaded
ActiveState=active
SubState=listening

Id=virtnodedevd.socket
LoadState=loaded
ActiveState=active
SubState=listening

Id=virtinterfaced.service
LoadState=loaded
ActiveState=active
SubState=running
MainPID=31337

Id=virtstoraged.service
LoadState=loaded
ActiveState=failed
SubState=failed

Id=virtxend.service
LoadState=loaded
ActiveState=inactive
SubState=dead
";

#[test]
fn systemd_units_refine_the_states() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::under(dir.path());
    write(&root, &idle_exited_secretd());
    let units = ShowOutput(SHOW.into());
    let found = discover(
        &root,
        &DiscoverOptions {
            all: false,
            units: Some(&units),
        },
    );
    let get = |n| found.find(n).map(|d| (d.state, d.detail.clone()));
    assert_eq!(
        get("virtsecretd"),
        Some((
            DaemonState::SocketListening,
            Some("virtsecretd.socket listening; last run idle-exited".into())
        ))
    );
    assert_eq!(
        get("virtnodedevd"),
        Some((
            DaemonState::SocketListening,
            Some("virtnodedevd.socket listening".into())
        ))
    );
    let i = found.find("virtinterfaced").unwrap();
    assert_eq!(
        (i.state, i.pid(), i.admin_socket()),
        (DaemonState::Running, Some(31337), None)
    );
    assert_eq!(get("virtstoraged").map(|s| s.0), Some(DaemonState::Failed));
    assert_eq!(
        get("virtxend").map(|s| s.0),
        Some(DaemonState::NeverStarted),
        "loaded units are listed even without --all"
    );
    assert_eq!(get("virtlxcd"), None, "unknown to systemd and never seen");
}

#[test]
fn observe_refuses_a_daemon_that_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::under(dir.path());
    let admin = dir.path().join("virtsecretd-admin-sock");
    let listener = UnixListener::bind(&admin).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut sf = idle_exited_secretd();
    sf.admin_socket = admin.to_string_lossy().into_owned();
    write(&root, &sf);
    let (pid, ticks) = me();
    let mut crashed = state_file("virtnetworkd", pid, ticks + 3, "running", None);
    crashed.admin_socket = sf.admin_socket.clone();
    write(&root, &crashed);

    let found = discover(&root, &DiscoverOptions::default());
    for d in &found.daemons {
        let e = d.observe(Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ObserveError::NotRunning { .. }), "{e:?}");
    }
    let got = listener.accept();
    assert!(
        matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
        "nobody may connect to a sleeping daemon: {got:?}"
    );
}

#[test]
fn observe_does_not_connect_to_a_daemon_closing_its_exit_gate() {
    use nix::fcntl::{Flock, FlockArg};
    let dir = tempfile::tempdir().unwrap();
    let root = Root::under(dir.path());
    let admin = dir.path().join("virtqemud-admin-sock");
    let listener = UnixListener::bind(&admin).unwrap();
    listener.set_nonblocking(true).unwrap();
    let gate = dir.path().join("virtqemud.gate");
    std::fs::write(&gate, b"").unwrap();
    let (pid, ticks) = me();
    let mut sf = state_file("virtqemud", pid, ticks, "running", None);
    sf.admin_socket = admin.to_string_lossy().into_owned();
    sf.exit_gate = Some(gate.to_string_lossy().into_owned());
    write(&root, &sf);
    let found = discover(&root, &DiscoverOptions::default());
    let d = found.find("virtqemud").unwrap();
    assert!(d.is_running());

    // The daemon decided to exit: it holds the gate.
    let closing = Flock::lock(
        std::fs::File::open(&gate).unwrap(),
        FlockArg::LockExclusiveNonblock,
    )
    .unwrap();
    let e = d.observe(Duration::from_secs(1)).unwrap_err();
    assert!(
        matches!(e, ObserveError::NotRunning { state: "exiting", .. }),
        "{e:?}"
    );
    let got = listener.accept();
    assert!(
        matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
        "nobody may connect to an exiting daemon: {got:?}"
    );
    drop(closing);

    // An open gate lets the observer connect (the fake daemon never
    // answers OPEN, so the call times out), and it held the gate meanwhile.
    let observer = std::thread::scope(|s| {
        let t = s.spawn(|| d.observe(Duration::from_millis(300)));
        let mut seen_held = false;
        for _ in 0..100 {
            if Flock::lock(
                std::fs::File::open(&gate).unwrap(),
                FlockArg::LockExclusiveNonblock,
            )
            .is_err()
            {
                seen_held = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (seen_held, t.join().unwrap())
    });
    assert!(observer.0, "the observer holds the gate while connecting");
    assert!(observer.1.is_err());
    assert!(listener.accept().is_ok(), "the observer connected");
    assert!(
        Flock::lock(
            std::fs::File::open(&gate).unwrap(),
            FlockArg::LockExclusiveNonblock
        )
        .is_ok(),
        "and let go of the gate after"
    );
}
