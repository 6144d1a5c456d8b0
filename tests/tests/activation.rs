//! systemd integration without systemd: socket activation through
//! `systemd-socket-activate` (which binds the sockets, waits for the first
//! connection and then execs the daemon in place, passing `LISTEN_FDS` /
//! `LISTEN_FDNAMES`), and `sd_notify` readiness on a `NOTIFY_SOCKET` the
//! test binds itself.

use modvirt_tests::{
    ChildGuard, assert_contains, bin, clear_daemon_env, daemon_command, require_tool, temp_root, virsh_at,
    virt_admin_at, wait_for,
};
use nix::sys::signal::Signal;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tempfile::TempDir;

const NAMES: &str = "virtqemud.socket:virtqemud-ro.socket:virtqemud-admin.socket";
/// The socket suffixes [`NAMES`] names, in its order.
const ALL: [&str; 3] = ["sock", "sock-ro", "admin-sock"];

/// `systemd-socket-activate` listening on some of virtqemud's sockets under
/// a fresh root, with its (and later the daemon's) stderr in a file.
struct Activator {
    root: TempDir,
    proc: ChildGuard,
    stderr: PathBuf,
}

impl Activator {
    /// `suffixes`: which of `sock`, `sock-ro`, `admin-sock` to pass;
    /// `fdname`: the `--fdname=` value, if any.
    fn start(suffixes: &[&str], fdname: Option<&str>, daemon_args: &[&str]) -> Activator {
        let root = temp_root("modvirt-e2e-act-");
        let run = root.path().join("run/libvirt");
        std::fs::create_dir_all(&run).expect("run dir");
        let stderr = root.path().join("activate.stderr");
        let mut cmd = Command::new(require_tool("systemd-socket-activate"));
        for s in suffixes {
            cmd.arg("-l").arg(run.join(format!("virtqemud-{s}")));
        }
        if let Some(names) = fdname {
            cmd.arg(format!("--fdname={names}"));
        }
        cmd.arg(bin("virtqemud"))
            .arg("--root")
            .arg(root.path())
            .args(daemon_args);
        clear_daemon_env(&mut cmd)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let a = Activator {
            proc: ChildGuard::spawn(&mut cmd),
            root,
            stderr,
        };
        // It prints "Listening on PATH as N." once each socket listens.
        let n = suffixes.len();
        let listening = wait_for(Duration::from_secs(10), || {
            a.stderr().matches("Listening on ").count() >= n
        });
        assert!(
            listening,
            "systemd-socket-activate did not listen: {}",
            a.stderr()
        );
        a
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn socket(&self, suffix: &str) -> PathBuf {
        self.root.path().join(format!("run/libvirt/virtqemud-{suffix}"))
    }

    /// `qemu:///system?socket=…` for one of the passed sockets.
    fn uri(&self, suffix: &str) -> String {
        format!("qemu:///system?socket={}", self.socket(suffix).display())
    }

    fn virsh(&self, args: &[&str]) -> Output {
        virsh_at(&self.uri("sock"), args)
    }

    fn virt_admin(&self, args: &[&str]) -> Output {
        let uri = format!(
            "virtqemud:///system?socket={}",
            self.socket("admin-sock").display()
        );
        virt_admin_at(&uri, args)
    }

    /// The program currently running under the activator's pid.
    fn comm(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/comm", self.proc.pid()))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("socket file").permissions().mode() & 0o7777
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn first_connection_execs_the_daemon() {
    let mut a = Activator::start(&ALL, Some(NAMES), &["--timeout", "5"]);
    let sockets = ALL.map(|s| a.socket(s));
    let modes: Vec<u32> = sockets.iter().map(|p| mode(p)).collect();
    // Nothing has connected: the daemon has not been exec'd yet.
    assert!(a.comm().starts_with("systemd-socket"), "{}", a.comm());
    assert!(!a.root.path().join("run/virtqemud.pid").exists());

    let out = a.virsh(&["hostname"]);
    let host = nix::unistd::gethostname().expect("hostname");
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), a.stderr());
    assert_eq!(text(&out.stdout).trim(), host.to_string_lossy());
    assert!(a.stderr().contains("Execing "), "{}", a.stderr());
    assert_eq!(a.comm(), "virtqemud");
    let pid = std::fs::read_to_string(a.root.path().join("run/virtqemud.pid")).expect("pid file");
    assert_eq!(pid.trim(), a.proc.pid().to_string(), "exec'd in place, same pid");

    // The admin fd is served by the admin server, the ro fd read-only.
    let out = a.virt_admin(&["srv-list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        " Id   Name\n-----------------\n 0    virtqemud\n 1    admin\n\n"
    );
    let out = virsh_at(&a.uri("sock-ro"), &["iface-begin"]);
    assert_contains(
        &text(&out.stderr),
        "read only access prevents virInterfaceChangeBegin",
    );

    // Inherited sockets are neither chmod'ed nor removed by the daemon.
    let after: Vec<u32> = sockets.iter().map(|p| mode(p)).collect();
    assert_eq!(after, modes);
    a.proc.signal(Signal::SIGTERM);
    let status = a.proc.wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", a.stderr());
    for s in &sockets {
        assert!(s.exists(), "{} removed, but systemd owns it", s.display());
    }
    assert!(!a.root.path().join("run/virtqemud.pid").exists());
}

#[test]
fn idle_exit_after_activation_leaves_sockets() {
    let mut a = Activator::start(&ALL, Some(NAMES), &["--timeout", "1"]);
    let out = a.virsh(&["uri"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = a.proc.wait_exit(Duration::from_secs(15));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", a.stderr());
    // As with libvirt: nothing re-listens, the files stay behind (stale).
    assert!(a.socket("sock").exists());
    assert!(a.socket("admin-sock").exists());
}

#[test]
fn only_the_passed_sockets_are_served() {
    let a = Activator::start(&["sock"], Some("virtqemud.socket"), &["--timeout", "5"]);
    let out = a.virsh(&["hostname"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), a.stderr());
    // Once activated, the daemon creates no socket systemd did not pass.
    assert!(!a.socket("sock-ro").exists());
    assert!(!a.socket("admin-sock").exists());
}

#[test]
fn wrong_fd_name_is_a_startup_error() {
    let mut a = Activator::start(&["sock"], Some("libvirtd.socket"), &["--timeout", "5"]);
    let out = a.virsh(&["hostname"]);
    assert!(!out.status.success());
    assert_contains(&text(&out.stderr), "failed to connect to the hypervisor");
    let status = a.proc.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    let err = a.stderr();
    assert_contains(&err, "unknown activation socket name 'libvirtd.socket'");
    assert_contains(
        &err,
        "virtqemud.socket, virtqemud-ro.socket, virtqemud-admin.socket",
    );
    assert!(!a.root.path().join("run/virtqemud.pid").exists());
}

#[test]
fn network_socket_names_are_only_for_virtproxyd() {
    // virtproxyd takes `<d>-tcp.socket` / `<d>-tls.socket`; a daemon that
    // does not listen on the network refuses them like any unknown name.
    let mut a = Activator::start(&["sock"], Some("virtqemud-tls.socket"), &["--timeout", "5"]);
    let out = a.virsh(&["hostname"]);
    assert!(!out.status.success());
    let status = a.proc.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    assert_contains(
        &a.stderr(),
        "unknown activation socket name 'virtqemud-tls.socket': virtqemud expects \
         virtqemud.socket, virtqemud-ro.socket, virtqemud-admin.socket",
    );
}

#[test]
fn missing_fd_names_is_a_startup_error() {
    let mut a = Activator::start(&ALL, None, &["--timeout", "5"]);
    let out = a.virsh(&["hostname"]);
    assert!(!out.status.success());
    let status = a.proc.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    let err = a.stderr();
    assert_contains(&err, "LISTEN_FDNAMES");
    assert_contains(&err, &format!("--fdname={NAMES}"));
}

/// Receives datagrams until one contains `want` (or 10 s pass).
fn recv_until(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> bool {
    let mut buf = [0u8; 4096];
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l == want);
            seen.push(msg);
            if hit {
                return true;
            }
        }
    }
    false
}

#[test]
fn sd_notify_ready_status_stopping() {
    let root = temp_root("modvirt-e2e-notify-");
    let notify_path = root.path().join("notify");
    let sock = UnixDatagram::bind(&notify_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let mut cmd = daemon_command("virtqemud", root.path());
    cmd.env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut d = ChildGuard::spawn(&mut cmd);

    let mut seen = Vec::new();
    assert!(
        recv_until(&sock, "READY=1", &mut seen),
        "no READY=1; got {seen:?}"
    );
    // Ready means serving: the sockets accept at once.
    let admin = root.path().join("run/libvirt/virtqemud-admin-sock");
    assert!(std::os::unix::net::UnixStream::connect(&admin).is_ok());
    let status: Vec<&String> = seen.iter().filter(|m| m.contains("STATUS=")).collect();
    assert!(
        status.len() >= 2,
        "expected start-up STATUS= lines before READY=1: {seen:?}"
    );
    assert!(
        seen.iter().position(|m| m.contains("STATUS=Starting"))
            < seen.iter().position(|m| m.contains("READY=1")),
        "{seen:?}"
    );

    let before = seen.len();
    d.signal(Signal::SIGTERM);
    assert!(
        recv_until(&sock, "STOPPING=1", &mut seen),
        "no STOPPING=1; got {seen:?}"
    );
    assert!(seen[before..].iter().all(|m| !m.contains("READY=1")), "{seen:?}");
    let exit = d.wait_exit(Duration::from_secs(10));
    assert_eq!(exit.and_then(|s| s.code()), Some(0));
}

#[test]
fn sd_notify_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    let root = temp_root("modvirt-e2e-notify-");
    // systemd usually passes an abstract socket: NOTIFY_SOCKET=@name.
    let name = format!(
        "modvirt-e2e-notify-{}-{}",
        std::process::id(),
        root.path().file_name().unwrap_or_default().to_string_lossy()
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract address");
    let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let mut cmd = daemon_command("virtqemud", root.path());
    cmd.env("NOTIFY_SOCKET", format!("@{name}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _d = ChildGuard::spawn(&mut cmd);
    let mut seen = Vec::new();
    assert!(
        recv_until(&sock, "READY=1", &mut seen),
        "no READY=1; got {seen:?}"
    );
}
