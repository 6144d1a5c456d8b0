//! virtsecretd end to end: the real virsh against virtsecretd directly and
//! through virtqemud (which forwards secret procedures to it and starts it
//! when it is not running, activation cause `peer`), the files it keeps
//! (`etc/libvirt/secrets/UUID.{xml,base64}`, `0600` in a `0700`
//! directory), private and ephemeral secrets, and restarts.

use modvirt_tests::{
    Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, process_gone, virsh_at, virsh_ro_at,
    virt_daemons, wait_for,
};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const CEPH: &str = "c9b6a3c4-1d1e-4d5a-9f5e-0123456789ab";
const PRIVATE: &str = "5e3f6d7a-0b1c-4e2d-8f9a-123456789abc";
const EPHEMERAL: &str = "0d1c2b3a-4f5e-4a6b-9c8d-fedcba987654";

fn ceph_xml(uuid: &str, user: &str) -> String {
    format!(
        "<secret ephemeral='no' private='no'>\n  <uuid>{uuid}</uuid>\n  <description>ceph key</description>\n  <usage type='ceph'>\n    <name>{user}</name>\n  </usage>\n</secret>\n"
    )
}

fn secret_uri(d: &Daemon, ro: bool) -> String {
    let sock = if ro {
        "virtsecretd-sock-ro"
    } else {
        "virtsecretd-sock"
    };
    format!("secret:///system?socket={}", d.run_dir().join(sock).display())
}

fn write_file(root: &Path, name: &str, bytes: &[u8]) -> String {
    let path = root.join(name);
    std::fs::write(&path, bytes).expect("write file");
    path.display().to_string()
}

fn secrets_dir(root: &Path) -> PathBuf {
    root.join("etc/libvirt/secrets")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The names in `etc/libvirt/secrets`, sorted.
fn files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(secrets_dir(root))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The UUID column of `virsh secret-list ARGS`.
fn listed(out: &Output) -> Vec<String> {
    ok_stdout(out)
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn virsh_manages_secrets_on_virtsecretd() {
    let d = Daemon::start("virtsecretd", DaemonOptions::default());
    let root = d.root.path().to_owned();
    let uri = secret_uri(&d, false);
    let virsh = |args: &[&str]| virsh_at(&uri, args);
    // Answered once the driver is initialised (the harness only waits for
    // the admin socket, bound before that): the directories exist by then.
    ok_stdout(&virsh(&["secret-list"]));
    assert_eq!(mode(&secrets_dir(&root)), 0o700);
    assert_eq!(mode(&root.join("run/libvirt/secrets")), 0o700);

    // Define: the definition as libvirt stores it, readable by root only.
    let file = write_file(&root, "ceph.xml", ceph_xml(CEPH, "client.admin").as_bytes());
    let out = ok_stdout(&virsh(&["secret-define", &file]));
    assert_eq!(out, format!("Secret {CEPH} created\n\n"));
    let xml_file = secrets_dir(&root).join(format!("{CEPH}.xml"));
    assert_eq!(mode(&xml_file), 0o600);
    assert_eq!(
        std::fs::read_to_string(&xml_file).expect("read"),
        ceph_xml(CEPH, "client.admin")
    );
    let dump = ok_stdout(&virsh(&["secret-dumpxml", CEPH]));
    assert_eq!(dump, format!("{}\n", ceph_xml(CEPH, "client.admin")));
    let list = ok_stdout(&virsh(&["secret-list"]));
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.contains(CEPH))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row, [CEPH, "ceph", "client.admin"], "{list}");

    // No value yet.
    let e = err_stderr(&virsh(&["secret-get-value", CEPH]));
    assert!(
        e.contains(&format!(
            "Secret not found: secret '{CEPH}' does not have a value"
        )),
        "{e}"
    );

    // Values: --base64, --file (base64), --file --plain.
    let out = ok_stdout(&virsh(&["secret-set-value", CEPH, "--base64", "aGVsbG8="]));
    assert!(out.contains("Secret value set"), "{out}");
    assert_eq!(ok_stdout(&virsh(&["secret-get-value", CEPH])), "aGVsbG8=\n");
    let value_file = secrets_dir(&root).join(format!("{CEPH}.base64"));
    assert_eq!(mode(&value_file), 0o600);
    assert_eq!(std::fs::read_to_string(&value_file).expect("read"), "aGVsbG8=");
    let b64 = write_file(&root, "value.b64", b"d29ybGQ=");
    ok_stdout(&virsh(&["secret-set-value", CEPH, "--file", &b64]));
    // virsh ends its output with a new line of its own.
    assert_eq!(
        ok_stdout(&virsh(&["secret-get-value", CEPH, "--plain"])),
        "world\n"
    );
    let raw: Vec<u8> = (0..=255u8).collect();
    let with_newline = |v: &[u8]| [v, b"\n"].concat();
    let raw_file = write_file(&root, "value.raw", &raw);
    ok_stdout(&virsh(&[
        "secret-set-value",
        CEPH,
        "--file",
        &raw_file,
        "--plain",
    ]));
    let out = virsh(&["secret-get-value", CEPH, "--plain"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, with_newline(&raw));
    assert_eq!(files(&root), [format!("{CEPH}.base64"), format!("{CEPH}.xml")]);

    // Up to libvirt's limit (REMOTE_SECRET_VALUE_MAX = 65536 bytes; virsh
    // reads at most 1 KiB from --file, so these go as --base64: "Wlpa" is
    // "ZZZ").
    let zs = "Wlpa".repeat(65535 / 3);
    ok_stdout(&virsh(&[
        "secret-set-value",
        CEPH,
        "--base64",
        &format!("{zs}Wg=="),
    ]));
    let big = vec![b'Z'; 65536];
    assert_eq!(
        virsh(&["secret-get-value", CEPH, "--plain"]).stdout,
        with_newline(&big)
    );
    let e = err_stderr(&virsh(&[
        "secret-set-value",
        CEPH,
        "--base64",
        &format!("{zs}Wlo="),
    ]));
    assert!(e.contains("65537 > 65536"), "{e}");
    assert_eq!(
        virsh(&["secret-get-value", CEPH, "--plain"]).stdout,
        with_newline(&big)
    );

    // The same usage under another UUID is refused.
    let other = write_file(
        &root,
        "other.xml",
        ceph_xml("11111111-2222-4333-8444-555555555555", "client.admin").as_bytes(),
    );
    let e = err_stderr(&virsh(&["secret-define", &other]));
    assert!(
        e.contains(&format!(
            "internal error: a secret with UUID {CEPH} already defined for use with client.admin"
        )),
        "{e}"
    );

    // A private secret: its value is stored but never given out.
    let file = write_file(
        &root,
        "private.xml",
        format!(
            "<secret private='yes'><uuid>{PRIVATE}</uuid><usage type='tls'><name>tls-key</name></usage></secret>"
        )
        .as_bytes(),
    );
    ok_stdout(&virsh(&["secret-define", &file]));
    ok_stdout(&virsh(&["secret-set-value", PRIVATE, "--base64", "cHJpdmF0ZQ=="]));
    let e = err_stderr(&virsh(&["secret-get-value", PRIVATE]));
    assert!(e.contains("Invalid secret: secret is private"), "{e}");
    assert_eq!(
        std::fs::read_to_string(secrets_dir(&root).join(format!("{PRIVATE}.base64"))).expect("read"),
        "cHJpdmF0ZQ=="
    );
    let e = err_stderr(&virsh(&["secret-define", &write_file(
        &root,
        "unprivate.xml",
        format!("<secret private='no'><uuid>{PRIVATE}</uuid><usage type='tls'><name>tls-key</name></usage></secret>")
            .as_bytes(),
    )]));
    assert!(
        e.contains("internal error: cannot change private flag on existing secret"),
        "{e}"
    );

    // An ephemeral secret never touches disk.
    let file = write_file(
        &root,
        "ephemeral.xml",
        format!("<secret ephemeral='yes'><uuid>{EPHEMERAL}</uuid></secret>").as_bytes(),
    );
    ok_stdout(&virsh(&["secret-define", &file]));
    ok_stdout(&virsh(&[
        "secret-set-value",
        EPHEMERAL,
        "--base64",
        "ZXBoZW1lcmFs",
    ]));
    assert_eq!(
        ok_stdout(&virsh(&["secret-get-value", EPHEMERAL])),
        "ZXBoZW1lcmFs\n"
    );
    assert!(
        !files(&root).iter().any(|f| f.starts_with(EPHEMERAL)),
        "{:?}",
        files(&root)
    );
    let unused = ok_stdout(&virsh(&["secret-list"]));
    assert!(
        unused
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [EPHEMERAL, "Unused"]),
        "{unused}"
    );

    // The list filters.
    assert_eq!(listed(&virsh(&["secret-list", "--ephemeral"])), [EPHEMERAL]);
    assert_eq!(listed(&virsh(&["secret-list", "--private"])), [PRIVATE]);
    let mut persistent = listed(&virsh(&["secret-list", "--no-ephemeral"]));
    persistent.sort();
    assert_eq!(persistent, [PRIVATE, CEPH]);
    assert_eq!(
        listed(&virsh(&["secret-list", "--no-ephemeral", "--no-private"])),
        [CEPH]
    );

    // Read-only connections list but neither read values nor change anything.
    let ro = secret_uri(&d, true);
    assert_eq!(
        listed(&virsh_ro_at(&ro, &["secret-list", "--private"])),
        [PRIVATE]
    );
    let e = err_stderr(&virsh_ro_at(&ro, &["secret-get-value", CEPH]));
    assert!(e.contains("read only access prevents virSecretGetValue"), "{e}");
    let e = err_stderr(&virsh_ro_at(&ro, &["secret-undefine", CEPH]));
    assert!(e.contains("read only access prevents virSecretUndefine"), "{e}");

    // Undefine removes both files; unknown secrets get libvirt's error.
    let out = ok_stdout(&virsh(&["secret-undefine", CEPH]));
    assert!(out.contains(&format!("Secret {CEPH} deleted")), "{out}");
    ok_stdout(&virsh(&["secret-undefine", EPHEMERAL]));
    assert_eq!(
        files(&root),
        [format!("{PRIVATE}.base64"), format!("{PRIVATE}.xml")]
    );
    let e = err_stderr(&virsh(&["secret-dumpxml", CEPH]));
    assert!(
        e.contains(&format!(
            "Secret not found: no secret with matching uuid '{CEPH}'"
        )),
        "{e}"
    );
    let bad = write_file(&root, "bad.xml", b"<secret><usage type='disk'/></secret>");
    let e = err_stderr(&virsh(&["secret-define", &bad]));
    assert!(
        e.contains("unsupported configuration: unknown secret usage type disk"),
        "{e}"
    );
}

#[test]
fn persistent_secrets_survive_a_restart_and_ephemeral_ones_do_not() {
    let mut d = Daemon::start("virtsecretd", DaemonOptions::default());
    let uri = secret_uri(&d, false);
    let root = d.root.path().to_owned();
    let file = write_file(&root, "ceph.xml", ceph_xml(CEPH, "client.admin").as_bytes());
    ok_stdout(&virsh_at(&uri, &["secret-define", &file]));
    ok_stdout(&virsh_at(
        &uri,
        &["secret-set-value", CEPH, "--base64", "aGVsbG8="],
    ));
    let file = write_file(
        &root,
        "ephemeral.xml",
        format!("<secret ephemeral='yes'><uuid>{EPHEMERAL}</uuid></secret>").as_bytes(),
    );
    ok_stdout(&virsh_at(&uri, &["secret-define", &file]));
    let before = ok_stdout(&virsh_at(&uri, &["secret-dumpxml", CEPH]));
    d.stop();
    let d = Daemon::start_in("virtsecretd", d.into_root(), DaemonOptions::default());
    assert_eq!(listed(&virsh_at(&uri, &["secret-list"])), [CEPH]);
    assert_eq!(ok_stdout(&virsh_at(&uri, &["secret-dumpxml", CEPH])), before);
    assert_eq!(
        ok_stdout(&virsh_at(&uri, &["secret-get-value", CEPH])),
        "aGVsbG8=\n"
    );
    drop(d);
}

#[test]
fn an_ephemeral_secret_keeps_the_daemon_from_idling_out() {
    let mut d = Daemon::start(
        "virtsecretd",
        DaemonOptions {
            args: vec!["--timeout".into(), "1".into()],
            ..Default::default()
        },
    );
    let uri = secret_uri(&d, false);
    let file = write_file(
        d.root.path(),
        "ephemeral.xml",
        format!("<secret ephemeral='yes'><uuid>{EPHEMERAL}</uuid></secret>").as_bytes(),
    );
    ok_stdout(&virsh_at(&uri, &["secret-define", &file]));
    std::thread::sleep(Duration::from_secs(3));
    assert!(d.exited().is_none(), "exited with an ephemeral secret defined");
    let status: Value =
        serde_json::from_str(&virt_daemons(d.root.path(), &["status", "--json"])).expect("json");
    let me = status["daemons"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "virtsecretd"))
        .unwrap_or_else(|| panic!("no virtsecretd in {status:#}"));
    assert_eq!(
        me["idle"]["inhibitors"][0]["reason"], "ephemeral secrets",
        "{me:#}"
    );
    ok_stdout(&virsh_at(&uri, &["secret-undefine", EPHEMERAL]));
    assert!(
        d.wait_exit(Duration::from_secs(10)).is_some(),
        "did not idle out once the ephemeral secret was gone"
    );
}

#[test]
fn secret_calls_through_virtqemud_start_virtsecretd_as_its_peer() {
    let qemu = Daemon::start("virtqemud", DaemonOptions::default());
    let root = qemu.root.path().to_owned();
    assert!(!root.join("run/virtsecretd.pid").exists());

    let list = ok_stdout(&qemu.virsh(&["secret-list"]));
    assert!(list.contains("UUID") && list.contains("Usage"), "{list}");
    let pid = daemon_pid(&root, "virtsecretd");
    let _guard = PidGuard(pid);

    let status: Value = serde_json::from_str(&virt_daemons(&root, &["status", "--json"])).expect("json");
    let sec = status["daemons"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == "virtsecretd"))
        .unwrap_or_else(|| panic!("no virtsecretd in {status:#}"));
    assert_eq!(sec["state"], "running", "{sec:#}");
    assert_eq!(sec["activation"]["cause"], "peer", "{sec:#}");
    assert_eq!(sec["activation"]["peer"]["daemon"], "virtqemud", "{sec:#}");
    assert_eq!(
        sec["activation"]["peer"]["procedure"], "CONNECT_LIST_ALL_SECRETS",
        "{sec:#}"
    );

    // Defined and read through virtqemud, kept by virtsecretd.
    let file = write_file(&root, "ceph.xml", ceph_xml(CEPH, "client.admin").as_bytes());
    let out = ok_stdout(&qemu.virsh(&["secret-define", &file]));
    assert!(out.contains(&format!("Secret {CEPH} created")), "{out}");
    assert!(secrets_dir(&root).join(format!("{CEPH}.xml")).is_file());
    ok_stdout(&qemu.virsh(&["secret-set-value", CEPH, "--base64", "aGVsbG8="]));
    assert_eq!(ok_stdout(&qemu.virsh(&["secret-get-value", CEPH])), "aGVsbG8=\n");
    let file = write_file(
        &root,
        "private.xml",
        format!("<secret private='yes'><uuid>{PRIVATE}</uuid></secret>").as_bytes(),
    );
    ok_stdout(&qemu.virsh(&["secret-define", &file]));
    ok_stdout(&qemu.virsh(&["secret-set-value", PRIVATE, "--base64", "aGVsbG8="]));
    let e = err_stderr(&qemu.virsh(&["secret-get-value", PRIVATE]));
    assert!(e.contains("Invalid secret: secret is private"), "{e}");
    let e = err_stderr(&qemu.virsh(&["secret-dumpxml", EPHEMERAL]));
    assert!(
        e.contains(&format!(
            "Secret not found: no secret with matching uuid '{EPHEMERAL}'"
        )),
        "{e}"
    );

    // Killed, it comes back with its secrets on the next call that needs it.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("kill");
    assert!(wait_for(Duration::from_secs(5), || process_gone(pid)));
    let mut all = listed(&qemu.virsh(&["secret-list"]));
    all.sort();
    assert_eq!(all, [PRIVATE, CEPH]);
    let again = daemon_pid(&root, "virtsecretd");
    let _guard2 = PidGuard(again);
    assert_ne!(again, pid);
    assert_eq!(ok_stdout(&qemu.virsh(&["secret-get-value", CEPH])), "aGVsbG8=\n");
}
