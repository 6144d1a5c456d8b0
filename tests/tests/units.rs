//! The systemd units in `systemd/` pass `systemd-analyze verify` with no
//! warning, and say what the daemon expects (socket names, paths, modes).

use modvirt_tests::{assert_contains, bin, require_tool};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every daemon with units, and the base name of its sockets.
const DAEMONS: [(&str, &str); 8] = [
    ("virtqemud", "virtqemud"),
    ("virtnetworkd", "virtnetworkd"),
    ("virtstoraged", "virtstoraged"),
    ("virtsecretd", "virtsecretd"),
    ("virtnodedevd", "virtnodedevd"),
    ("virtinterfaced", "virtinterfaced"),
    ("virtnwfilterd", "virtnwfilterd"),
    ("virtproxyd", "libvirt"),
];

/// The units of `daemon`: service and three UNIX sockets, and for the
/// daemon that listens on the network its TCP and TLS sockets.
fn units_of(daemon: &str) -> Vec<String> {
    let mut units = vec![
        format!("{daemon}.service"),
        format!("{daemon}.socket"),
        format!("{daemon}-ro.socket"),
        format!("{daemon}-admin.socket"),
    ];
    if daemon == "virtproxyd" {
        units.extend(NETWORK_SOCKETS.map(|(unit, _)| unit.to_owned()));
    }
    units
}

/// virtproxyd's TCP and TLS socket units and their ports (libvirt's).
const NETWORK_SOCKETS: [(&str, &str); 2] = [
    ("virtproxyd-tcp.socket", "16509"),
    ("virtproxyd-tls.socket", "16514"),
];

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd")
}

/// Copies `daemon`'s units to a temp dir with ExecStart pointing at
/// `exec`, runs `systemd-analyze verify` and returns (success, stderr).
fn verify(daemon: &str, exec: &Path, edit: impl Fn(String) -> String) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let units = units_of(daemon);
    for u in &units {
        let text = std::fs::read_to_string(units_dir().join(u)).expect("unit file");
        let text = edit(text.replace(&format!("/usr/sbin/{daemon}"), &exec.display().to_string()));
        std::fs::write(dir.path().join(u), text).expect("write unit copy");
    }
    let out = Command::new(require_tool("systemd-analyze"))
        .current_dir(dir.path())
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display()))
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .output()
        .expect("run systemd-analyze");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn units_verify_cleanly() {
    for (daemon, _) in DAEMONS {
        let (ok, stderr) = verify(daemon, &bin(daemon), |t| t);
        assert!(ok, "{daemon}: systemd-analyze verify failed:\n{stderr}");
        assert!(
            stderr.trim().is_empty(),
            "{daemon}: systemd-analyze verify warned:\n{stderr}"
        );
    }
}

#[test]
fn verify_catches_broken_units() {
    // The check above can fail: a missing binary and a bad setting are reported.
    let (ok, stderr) = verify("virtqemud", Path::new("/nonexistent/virtqemud"), |t| t);
    assert!(!ok, "a missing ExecStart binary must fail verification");
    assert_contains(&stderr, "/nonexistent/virtqemud");
    let (_, stderr) = verify("virtqemud", &bin("virtqemud"), |t| {
        t.replace("Type=notify", "Type=bogus")
    });
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
    // The daemon claims fds named after these units (see runtime/activation.rs)
    // and binds these paths itself without systemd (runtime/paths.rs).
    for (daemon, base) in DAEMONS {
        for (unit, path, mode) in [
            (
                format!("{daemon}.socket"),
                format!("/run/libvirt/{base}-sock"),
                "0666",
            ),
            (
                format!("{daemon}-ro.socket"),
                format!("/run/libvirt/{base}-sock-ro"),
                "0666",
            ),
            (
                format!("{daemon}-admin.socket"),
                format!("/run/libvirt/{base}-admin-sock"),
                "0600",
            ),
        ] {
            assert_eq!(setting(&unit, "ListenStream"), [path], "{unit}");
            assert_eq!(setting(&unit, "SocketMode"), [mode], "{unit}");
            assert_eq!(setting(&unit, "Service"), [format!("{daemon}.service")], "{unit}");
        }
        let service = format!("{daemon}.service");
        assert_eq!(setting(&service, "Type"), ["notify"], "{service}");
        assert_eq!(
            setting(&service, "ExecReload"),
            ["/bin/kill -HUP $MAINPID"],
            "{service}"
        );
        assert_eq!(setting(&service, "Conflicts"), ["libvirtd.service"], "{service}");
    }
    // virtproxyd's TCP and TLS sockets: libvirt's ports, the names the
    // runtime accepts from systemd, bound to the UNIX socket unit.
    let mut names = Vec::new();
    for (unit, port) in NETWORK_SOCKETS {
        assert_eq!(setting(unit, "ListenStream"), [port], "{unit}");
        assert_eq!(setting(unit, "Service"), ["virtproxyd.service"], "{unit}");
        assert_eq!(setting(unit, "BindsTo"), ["virtproxyd.socket"], "{unit}");
        assert!(setting(unit, "SocketMode").is_empty(), "{unit}");
        names.push(unit);
    }
    let plan = modvirt_runtime::activation::plan(
        "virtproxyd",
        true,
        1,
        Some("1"),
        Some("2"),
        Some(&names.join(":")),
    )
    .expect("virtproxyd accepts its TCP and TLS unit names")
    .expect("a plan");
    assert_eq!(plan.fds.len(), 2);
    assert!(
        modvirt_runtime::activation::plan(
            "virtqemud",
            false,
            1,
            Some("1"),
            Some("1"),
            Some("virtqemud-tls.socket")
        )
        .is_err(),
        "only the daemon that listens on the network takes TCP sockets"
    );
    // The preset leaves them off: the administrator enables one.
    let preset = std::fs::read_to_string(units_dir().join("90-modvirt.preset")).expect("preset");
    for (unit, _) in NETWORK_SOCKETS {
        assert!(
            preset.lines().any(|l| l == format!("disable {unit}")),
            "{unit}: {preset}"
        );
        assert!(
            !preset.lines().any(|l| l == format!("enable {unit}")),
            "{unit}: {preset}"
        );
    }
    // virtproxyd's sockets are libvirtd's: they cannot both listen.
    assert_eq!(
        setting("virtproxyd.socket", "Conflicts"),
        ["libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket libvirtd-tcp.socket libvirtd-tls.socket"]
    );
}
