//! The systemd units in `systemd/` pass `systemd-analyze verify` with no
//! warning, and say what the daemon expects (socket names, paths, modes).

use modvirt_tests::{assert_contains, bin, require_tool};
use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 4] = [
    "virtqemud.service",
    "virtqemud.socket",
    "virtqemud-ro.socket",
    "virtqemud-admin.socket",
];

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd")
}

/// Copies the units to a temp dir with ExecStart pointing at `exec`, runs
/// `systemd-analyze verify` and returns (success, stderr).
fn verify(exec: &Path, edit: impl Fn(String) -> String) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    for u in UNITS {
        let text = std::fs::read_to_string(units_dir().join(u)).expect("unit file");
        let text = edit(text.replace("/usr/sbin/virtqemud", &exec.display().to_string()));
        std::fs::write(dir.path().join(u), text).expect("write unit copy");
    }
    let out = Command::new(require_tool("systemd-analyze"))
        .current_dir(dir.path())
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display()))
        .arg("verify")
        .arg("--man=no")
        .args(UNITS)
        .output()
        .expect("run systemd-analyze");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn units_verify_cleanly() {
    let (ok, stderr) = verify(&bin("virtqemud"), |t| t);
    assert!(ok, "systemd-analyze verify failed:\n{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warned:\n{stderr}"
    );
}

#[test]
fn verify_catches_broken_units() {
    // The check above can fail: a missing binary and a bad setting are reported.
    let (ok, stderr) = verify(Path::new("/nonexistent/virtqemud"), |t| t);
    assert!(!ok, "a missing ExecStart binary must fail verification");
    assert_contains(&stderr, "/nonexistent/virtqemud");
    let (_, stderr) = verify(&bin("virtqemud"), |t| t.replace("Type=notify", "Type=bogus"));
    assert_contains(&stderr, "bogus");
}

fn setting(unit: &str, key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(units_dir().join(unit)).expect("unit file");
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn sockets_match_what_the_daemon_expects() {
    // The daemon claims fds named after these units (see runtime/activation.rs).
    for (unit, path, mode) in [
        ("virtqemud.socket", "/run/libvirt/virtqemud-sock", "0666"),
        ("virtqemud-ro.socket", "/run/libvirt/virtqemud-sock-ro", "0666"),
        (
            "virtqemud-admin.socket",
            "/run/libvirt/virtqemud-admin-sock",
            "0600",
        ),
    ] {
        assert_eq!(setting(unit, "ListenStream"), [path], "{unit}");
        assert_eq!(setting(unit, "SocketMode"), [mode], "{unit}");
        assert_eq!(setting(unit, "Service"), ["virtqemud.service"], "{unit}");
    }
    assert_eq!(setting("virtqemud.service", "Type"), ["notify"]);
    assert_eq!(
        setting("virtqemud.service", "ExecReload"),
        ["/bin/kill -HUP $MAINPID"]
    );
}
