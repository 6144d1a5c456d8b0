//! virtstoraged end to end: the real virsh against virtstoraged directly
//! and through virtqemud (which forwards storage procedures to it and
//! starts it when it is not running, activation cause `peer`). Pools are
//! `dir` pools on directories inside each test's temp root; qcow2 volumes
//! are made by the real `qemu-img` and checked with the real
//! `qemu-img info`.

use modvirt_tests::{
    ChildGuard, Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, process_gone,
    require_tool, virsh_at, virt_daemons, wait_for,
};
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn storage_uri(d: &Daemon) -> String {
    format!(
        "storage:///system?socket={}",
        d.run_dir().join("virtstoraged-sock").display()
    )
}

/// The cells of the first table row whose first cell is `name`.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cells| cells.first().is_some_and(|c| c == name))
        .unwrap_or_default()
}

/// The value of `Key:   value` in virsh's info output.
fn info(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// The real `qemu-img info --output=json` of an image.
fn qemu_img_info(path: &Path) -> Value {
    let out = Command::new(require_tool("qemu-img"))
        .args(["info", "-U", "--output=json"])
        .arg(path)
        .output()
        .expect("run qemu-img");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("qemu-img json")
}

fn status(root: &Path) -> Value {
    serde_json::from_str(&virt_daemons(root, &["status", "--json"])).expect("status --json")
}

fn entry<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["daemons"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name))
        .unwrap_or_else(|| panic!("{name} missing from {st:#}"))
}

#[test]
fn virsh_manages_dir_pools_and_volumes_on_virtstoraged() {
    require_tool("qemu-img");
    let d = Daemon::start("virtstoraged", DaemonOptions::default());
    let root = d.root.path().to_owned();
    let uri = storage_uri(&d);
    let virsh = |args: &[&str]| virsh_at(&uri, args);
    let dir = root.join("pools/p1");
    let dir_s = dir.display().to_string();

    // What libvirt 9.0's virtstoraged answers with no pool (trace
    // virsh-pool-list-all-direct-virtstoraged).
    assert_eq!(
        ok_stdout(&virsh(&["pool-list", "--all"])),
        " Name   State   Autostart\n---------------------------\n\n"
    );
    let out = ok_stdout(&virsh(&["pool-define-as", "p1", "dir", "--target", &dir_s]));
    assert!(out.contains("Pool p1 defined"), "{out}");
    let config = root.join("etc/libvirt/storage/p1.xml");
    let saved = std::fs::read_to_string(&config).expect("definition written");
    assert!(
        saved.starts_with("<pool type='dir'>\n  <name>p1</name>\n"),
        "{saved}"
    );
    assert!(saved.contains(&format!("    <path>{dir_s}</path>\n")), "{saved}");
    assert_eq!(
        row(&ok_stdout(&virsh(&["pool-list", "--all"])), "p1"),
        ["p1", "inactive", "no"]
    );

    // Not built yet: its directory is missing.
    let e = err_stderr(&virsh(&["pool-start", "p1"]));
    assert!(
        e.contains(&format!(
            "cannot open directory '{dir_s}': No such file or directory"
        )),
        "{e}"
    );
    assert!(!root.join("run/libvirt/storage/p1.xml").exists());
    assert!(ok_stdout(&virsh(&["pool-build", "p1"])).contains("Pool p1 built"));
    assert_eq!(
        std::fs::metadata(&dir).expect("built").permissions().mode() & 0o777,
        0o711
    );
    assert!(ok_stdout(&virsh(&["pool-start", "p1"])).contains("Pool p1 started"));
    let state = std::fs::read_to_string(root.join("run/libvirt/storage/p1.xml")).expect("status file");
    assert!(
        state.starts_with("<poolstate>\n  <pool type='dir'>\n    <name>p1</name>\n"),
        "{state}"
    );
    let e = err_stderr(&virsh(&["pool-start", "p1"]));
    assert!(
        e.contains("Requested operation is not valid: storage pool 'p1' is already active"),
        "{e}"
    );

    let pinfo = ok_stdout(&virsh(&["pool-info", "p1"]));
    assert_eq!(info(&pinfo, "State"), "running", "{pinfo}");
    assert_eq!(info(&pinfo, "Persistent"), "yes", "{pinfo}");
    assert_eq!(info(&pinfo, "Autostart"), "no", "{pinfo}");
    let uuid = ok_stdout(&virsh(&["pool-uuid", "p1"])).trim().to_owned();
    assert_eq!(info(&pinfo, "UUID"), uuid);
    assert_eq!(ok_stdout(&virsh(&["pool-name", &uuid])).trim(), "p1");
    assert!(ok_stdout(&virsh(&["pool-autostart", "p1"])).contains("Pool p1 marked as autostarted"));
    assert_eq!(
        std::fs::read_link(root.join("etc/libvirt/storage/autostart/p1.xml")).expect("autostart link"),
        config
    );
    let xml = ok_stdout(&virsh(&["pool-dumpxml", "p1"]));
    assert!(xml.contains(&format!("<uuid>{uuid}</uuid>")), "{xml}");
    assert!(xml.contains("  <source>\n  </source>\n"), "{xml}");
    assert!(
        xml.contains(&format!(
            "  <target>\n    <path>{dir_s}</path>\n    <permissions>\n      <mode>0711</mode>\n"
        )),
        "{xml}"
    );
    assert!(
        !xml.contains("<capacity unit='bytes'>0</capacity>"),
        "refreshed sizes: {xml}"
    );

    // A sparse raw volume, a fully allocated one, and a qcow2 image.
    assert!(
        ok_stdout(&virsh(&[
            "vol-create-as",
            "p1",
            "sparse.img",
            "10M",
            "--format",
            "raw",
            "--allocation",
            "0"
        ]))
        .contains("Vol sparse.img created")
    );
    let meta = std::fs::metadata(dir.join("sparse.img")).expect("raw file");
    assert_eq!(
        (meta.len(), meta.blocks(), meta.mode() & 0o777),
        (10 << 20, 0, 0o600)
    );
    ok_stdout(&virsh(&["vol-create-as", "p1", "full.img", "1M"]));
    assert!(
        std::fs::metadata(dir.join("full.img"))
            .expect("raw file")
            .blocks()
            * 512
            >= 1 << 20
    );
    assert!(
        ok_stdout(&virsh(&[
            "vol-create-as",
            "p1",
            "disk.qcow2",
            "1G",
            "--format",
            "qcow2"
        ]))
        .contains("Vol disk.qcow2 created")
    );
    let img = qemu_img_info(&dir.join("disk.qcow2"));
    assert_eq!(img["format"], "qcow2", "{img:#}");
    assert_eq!(img["virtual-size"], 1u64 << 30, "{img:#}");
    assert_eq!(img["format-specific"]["data"]["compat"], "0.10", "{img:#}");
    assert_eq!(
        std::fs::metadata(dir.join("disk.qcow2")).expect("qcow2").mode() & 0o777,
        0o600
    );
    // From XML, with units.
    let vol_xml = root.join("v.xml");
    std::fs::write(
        &vol_xml,
        "<volume><name>x.img</name><capacity unit='KiB'>64</capacity><allocation>0</allocation></volume>",
    )
    .expect("vol xml");
    let out = ok_stdout(&virsh(&["vol-create", "p1", &vol_xml.display().to_string()]));
    assert!(out.contains("Vol x.img created from"), "{out}");
    assert_eq!(
        std::fs::metadata(dir.join("x.img")).expect("x.img").len(),
        64 << 10
    );

    let list = ok_stdout(&virsh(&["vol-list", "p1", "--details"]));
    let qcow2 = dir.join("disk.qcow2").display().to_string();
    // (Allocations other than 0 depend on the file system.)
    assert_eq!(
        row(&list, "disk.qcow2")[..5],
        ["disk.qcow2", qcow2.as_str(), "file", "1.00", "GiB"],
        "{list}"
    );
    assert_eq!(
        row(&list, "sparse.img")[2..],
        ["file", "10.00", "MiB", "0.00", "B"],
        "{list}"
    );
    let vinfo = ok_stdout(&virsh(&["vol-info", "disk.qcow2", "--pool", "p1"]));
    assert_eq!(
        (info(&vinfo, "Type"), info(&vinfo, "Capacity")),
        ("file".into(), "1.00 GiB".into()),
        "{vinfo}"
    );
    let vxml = ok_stdout(&virsh(&["vol-dumpxml", "--pool", "p1", "disk.qcow2"]));
    for want in [
        "<volume type='file'>\n  <name>disk.qcow2</name>\n".to_owned(),
        format!("  <key>{qcow2}</key>\n  <capacity unit='bytes'>1073741824</capacity>\n"),
        format!("  <target>\n    <path>{qcow2}</path>\n    <format type='qcow2'/>\n"),
        "    <compat>0.10</compat>\n    <clusterSize unit='B'>65536</clusterSize>\n  </target>\n</volume>\n"
            .to_owned(),
    ] {
        assert!(vxml.contains(&want), "{want} in {vxml}");
    }
    assert_eq!(
        ok_stdout(&virsh(&["vol-path", "--pool", "p1", "disk.qcow2"])).trim(),
        qcow2
    );
    assert_eq!(
        ok_stdout(&virsh(&["vol-key", "--pool", "p1", "disk.qcow2"])).trim(),
        qcow2
    );
    assert_eq!(ok_stdout(&virsh(&["vol-name", &qcow2])).trim(), "disk.qcow2");
    assert_eq!(ok_stdout(&virsh(&["vol-pool", &qcow2])).trim(), "p1");
    let e = err_stderr(&virsh(&["vol-create-as", "p1", "sparse.img", "1M"]));
    assert!(e.contains("storage volume 'sparse.img' exists already"), "{e}");
    let e = err_stderr(&virsh(&["vol-info", "--pool", "p1", "nosuch"]));
    assert!(
        e.contains("Storage volume not found: no storage vol with matching"),
        "{e}"
    );

    // A file put there by hand shows after a refresh; a deleted volume goes.
    std::fs::write(dir.join("by-hand.iso"), b"data").expect("write");
    assert!(row(&ok_stdout(&virsh(&["vol-list", "p1"])), "by-hand.iso").is_empty());
    assert!(ok_stdout(&virsh(&["pool-refresh", "p1"])).contains("Pool p1 refreshed"));
    assert_eq!(
        row(&ok_stdout(&virsh(&["vol-list", "p1"])), "by-hand.iso")[0],
        "by-hand.iso"
    );
    assert!(
        ok_stdout(&virsh(&["vol-delete", "--pool", "p1", "sparse.img"])).contains("Vol sparse.img deleted")
    );
    assert!(!dir.join("sparse.img").exists());

    assert!(ok_stdout(&virsh(&["pool-destroy", "p1"])).contains("Pool p1 destroyed"));
    assert!(!root.join("run/libvirt/storage/p1.xml").exists());
    assert_eq!(
        row(&ok_stdout(&virsh(&["pool-list", "--all"])), "p1"),
        ["p1", "inactive", "yes"]
    );
    let e = err_stderr(&virsh(&["vol-list", "p1"]));
    assert!(e.contains("storage pool 'p1' is not active"), "{e}");
    assert!(dir.join("disk.qcow2").exists(), "destroy keeps the files");
    let e = err_stderr(&virsh(&["pool-delete", "p1"]));
    assert!(
        e.contains(&format!("failed to remove pool '{dir_s}': Directory not empty")),
        "{e}"
    );
    assert!(ok_stdout(&virsh(&["pool-undefine", "p1"])).contains("Pool p1 has been undefined"));
    assert!(!config.exists());
    assert!(!root.join("etc/libvirt/storage/autostart/p1.xml").exists());
    let e = err_stderr(&virsh(&["pool-info", "p1"]));
    assert!(
        e.contains("Storage pool not found: no storage pool with matching name 'p1'"),
        "{e}"
    );
}

#[test]
fn pool_definitions_are_checked_as_libvirt_checks_them() {
    let d = Daemon::start("virtstoraged", DaemonOptions::default());
    let uri = storage_uri(&d);
    let virsh = |args: &[&str]| virsh_at(&uri, args);
    let a = d.root.path().join("a").display().to_string();
    ok_stdout(&virsh(&["pool-define-as", "a", "dir", "--target", &a]));
    let e = err_stderr(&virsh(&[
        "pool-define-as",
        "b",
        "dir",
        "--target",
        &format!("{a}/"),
    ]));
    assert!(
        e.contains("operation failed: Storage source conflict with pool: 'a'"),
        "{e}"
    );
    let e = err_stderr(&virsh(&[
        "pool-define-as",
        "lv",
        "logical",
        "--target",
        "/dev/vg0",
    ]));
    assert!(
        e.contains(
            "unsupported configuration: storage pool type 'logical' is not supported: this virtstoraged manages 'dir' pools only"
        ),
        "{e}"
    );
    let file = d.root.path().join("bad.xml");
    std::fs::write(&file, "<pool type='dir'><name>x</name></pool>").expect("write");
    let e = err_stderr(&virsh(&["pool-define", &file.display().to_string()]));
    assert!(e.contains("XML error: missing storage pool target path"), "{e}");
    let e = err_stderr(&virsh(&[
        "pool-define-as",
        "rel",
        "dir",
        "--target",
        "relative/dir",
    ]));
    assert!(
        e.contains("invalid argument: path 'relative/dir' is not absolute"),
        "{e}"
    );
    // Listing by type: every pool here is a dir pool.
    let by_type = |t: &str| row(&ok_stdout(&virsh(&["pool-list", "--all", "--type", t])), "a");
    assert_eq!(by_type("dir"), ["a", "inactive", "no"]);
    assert!(by_type("logical").is_empty());
    // The read-only socket lists but changes nothing.
    let ro = format!(
        "storage:///system?socket={}",
        d.run_dir().join("virtstoraged-sock-ro").display()
    );
    assert_eq!(
        row(&ok_stdout(&virsh_at(&ro, &["-r", "pool-list", "--all"])), "a")[0],
        "a"
    );
    let e = err_stderr(&virsh_at(&ro, &["-r", "pool-undefine", "a"]));
    assert!(
        e.contains("operation forbidden: read only access prevents virStoragePoolUndefine"),
        "{e}"
    );
}

#[test]
fn active_pools_stay_active_across_a_restart() {
    require_tool("qemu-img");
    let mut d = Daemon::start("virtstoraged", DaemonOptions::default());
    let uri = storage_uri(&d);
    let virsh = |args: &[&str]| virsh_at(&uri, args);
    let path = |p: &str| d.root.path().join(p).display().to_string();
    ok_stdout(&virsh(&["pool-define-as", "p1", "dir", "--target", &path("p1")]));
    ok_stdout(&virsh(&["pool-start", "p1", "--build"]));
    ok_stdout(&virsh(&[
        "vol-create-as",
        "p1",
        "d.qcow2",
        "2G",
        "--format",
        "qcow2",
    ]));
    ok_stdout(&virsh(&[
        "pool-create-as",
        "t1",
        "dir",
        "--target",
        &path("t1"),
        "--build",
    ]));
    ok_stdout(&virsh(&["pool-define-as", "p2", "dir", "--target", &path("p2")]));
    ok_stdout(&virsh(&["pool-build", "p2"]));
    ok_stdout(&virsh(&["pool-autostart", "p2"]));
    let before = ok_stdout(&virsh(&["pool-dumpxml", "--inactive", "p1"]));
    d.stop();
    let root = d.into_root();
    let d = Daemon::start_in("virtstoraged", root, DaemonOptions::default());

    let list = ok_stdout(&virsh(&["pool-list", "--all", "--details"]));
    assert_eq!(row(&list, "p1")[..4], ["p1", "running", "no", "yes"], "{list}");
    assert_eq!(row(&list, "t1")[..4], ["t1", "running", "no", "no"], "{list}");
    assert_eq!(row(&list, "p2")[..4], ["p2", "running", "yes", "yes"], "{list}");
    let vols = ok_stdout(&virsh(&["vol-list", "p1", "--details"]));
    assert_eq!(row(&vols, "d.qcow2")[2..5], ["file", "2.00", "GiB"], "{vols}");
    assert_eq!(
        ok_stdout(&virsh(&["pool-dumpxml", "--inactive", "p1"]))
            .lines()
            .next(),
        before.lines().next()
    );
    let boot = virt_daemons(d.root.path(), &["boot"]);
    for want in ["2 defined, 2 active", "2 refreshed, 1 volumes", "1 started"] {
        assert!(boot.contains(want), "{want} in {boot}");
    }

    // A pool whose directory vanished while the daemon was away is inactive.
    let mut d = d;
    d.stop();
    std::fs::remove_dir_all(d.root.path().join("t1")).expect("rm t1");
    let d = Daemon::start_in("virtstoraged", d.into_root(), DaemonOptions::default());
    let list = ok_stdout(&virsh(&["pool-list", "--all"]));
    assert!(row(&list, "t1").is_empty(), "{list}");
    assert_eq!(row(&list, "p1"), ["p1", "active", "no"], "{list}");
    assert!(!d.root.path().join("run/libvirt/storage/t1.xml").exists());
}

#[test]
fn a_slow_qemu_img_is_the_wait_of_its_call() {
    let qemu_img = require_tool("qemu-img");
    let root = modvirt_tests::temp_root("modvirt-e2e-");
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let wrapper = bin.join("qemu-img");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$1\" in create) sleep 3;; esac\nexec {} \"$@\"\n",
            qemu_img.display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path_env = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let d = Daemon::start_in(
        "virtstoraged",
        root,
        DaemonOptions {
            env: vec![("PATH".into(), path_env)],
            ..Default::default()
        },
    );
    let uri = storage_uri(&d);
    let pool = d.root.path().join("p").display().to_string();
    ok_stdout(&virsh_at(
        &uri,
        &["pool-create-as", "p", "dir", "--target", &pool, "--build"],
    ));
    let mut virsh = ChildGuard::spawn(
        Command::new(require_tool("virsh"))
            .args([
                "-c",
                &uri,
                "vol-create-as",
                "p",
                "slow.qcow2",
                "1M",
                "--format",
                "qcow2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let mut st = Value::Null;
    let mut waiting = Value::Null;
    let seen = wait_for(Duration::from_secs(3), || {
        st = status(d.root.path());
        waiting = entry(&st, "virtstoraged")["inflight"]
            .as_array()
            .and_then(|calls| calls.iter().find(|c| c["procedure"] == "STORAGE_VOL_CREATE_XML"))
            .map(|c| c["waiting_on"].clone())
            .unwrap_or(Value::Null);
        waiting["kind"] == "process"
    });
    assert!(seen, "{st:#}");
    let description = waiting["description"].as_str().unwrap_or_default();
    assert_eq!(
        description,
        format!("qemu-img create of '{pool}/slow.qcow2'"),
        "{waiting:#}"
    );
    let pid = i32::try_from(waiting["pid"].as_i64().expect("pid")).expect("pid fits");
    assert!(
        !process_gone(pid),
        "qemu-img pid {pid} is alive while the call waits"
    );
    let hangs = virt_daemons(d.root.path(), &["hangs", "--older-than", "0"]);
    assert!(
        hangs.contains("STORAGE_VOL_CREATE_XML") && hangs.contains(description),
        "{hangs}"
    );
    let done = virsh
        .wait_exit(Duration::from_secs(15))
        .expect("vol-create-as finishes");
    assert!(done.success());
    assert_eq!(
        qemu_img_info(&d.root.path().join("p/slow.qcow2"))["virtual-size"],
        1 << 20
    );
}

#[test]
fn pool_list_through_virtqemud_starts_virtstoraged_as_its_peer() {
    require_tool("qemu-img");
    let qemu = Daemon::start("virtqemud", DaemonOptions::default());
    let root = qemu.root.path().to_owned();
    assert!(!root.join("run/virtstoraged.pid").exists());

    // The same table as libvirt's (trace virsh-pool-list-all-via-virtqemud-with-virtstoraged).
    assert_eq!(
        ok_stdout(&qemu.virsh(&["pool-list", "--all"])),
        " Name   State   Autostart\n---------------------------\n\n"
    );
    let pid = daemon_pid(&root, "virtstoraged");
    let _guard = PidGuard(pid);
    let st = status(&root);
    let storaged = entry(&st, "virtstoraged");
    assert_eq!(storaged["state"], "running", "{storaged:#}");
    assert_eq!(storaged["activation"]["cause"], "peer", "{storaged:#}");
    assert_eq!(
        storaged["activation"]["peer"]["daemon"], "virtqemud",
        "{storaged:#}"
    );
    assert_eq!(
        storaged["activation"]["peer"]["procedure"], "CONNECT_LIST_ALL_STORAGE_POOLS",
        "{storaged:#}"
    );

    // Defined and filled through virtqemud, kept by virtstoraged.
    let dir = root.join("images");
    ok_stdout(&qemu.virsh(&[
        "pool-define-as",
        "images",
        "dir",
        "--target",
        &dir.display().to_string(),
    ]));
    assert!(root.join("etc/libvirt/storage/images.xml").is_file());
    ok_stdout(&qemu.virsh(&["pool-start", "images", "--build"]));
    let out = ok_stdout(&qemu.virsh(&[
        "vol-create-as",
        "images",
        "vm1.qcow2",
        "512M",
        "--format",
        "qcow2",
    ]));
    assert!(out.contains("Vol vm1.qcow2 created"), "{out}");
    let img = qemu_img_info(&dir.join("vm1.qcow2"));
    assert_eq!(
        (img["format"].as_str(), img["virtual-size"].as_u64()),
        (Some("qcow2"), Some(512 << 20))
    );
    let vinfo = ok_stdout(&qemu.virsh(&["vol-info", "--pool", "images", "vm1.qcow2"]));
    assert_eq!(info(&vinfo, "Capacity"), "512.00 MiB", "{vinfo}");
    let e = err_stderr(&qemu.virsh(&["pool-info", "nosuch"]));
    assert!(
        e.contains("Storage pool not found: no storage pool with matching name 'nosuch'"),
        "{e}"
    );

    // Killed, it comes back on the next call that needs it, pool still active.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("kill");
    assert!(wait_for(Duration::from_secs(5), || process_gone(pid)));
    let list = ok_stdout(&qemu.virsh(&["pool-list", "--all"]));
    assert_eq!(row(&list, "images"), ["images", "active", "no"], "{list}");
    let again = daemon_pid(&root, "virtstoraged");
    let _guard2 = PidGuard(again);
    assert_ne!(again, pid);
}
