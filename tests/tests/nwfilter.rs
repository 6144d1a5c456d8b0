//! virtnwfilterd end to end: the real virsh against virtnwfilterd directly
//! and through virtqemud (which forwards nwfilter procedures to it and
//! starts it when it is not running, activation cause `peer`), the files
//! it keeps (`etc/libvirt/nwfilter/NAME.xml`) and restarts. Filters are
//! kept and served only; nothing here expects them applied to traffic.

use modvirt_tests::{
    Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, process_gone, virsh_at, virsh_ro_at,
    virt_daemons, wait_for,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const SPOOF_UUID: &str = "fce8ae33-e69e-83bf-262e-30786c1f8072";
const CLEAN_UUID: &str = "b0e633f3-88b3-4500-bd4a-93b1da1b9d6e";

/// What the client sends (loose layout, libvirt's shorthand values).
fn spoof_xml() -> String {
    format!(
        "<filter name='no-ip-spoofing' chain='ipv4-ip'>
  <uuid>{SPOOF_UUID}</uuid>
  <rule action='return' direction='out' priority='100'>
     <ip srcipaddr='0.0.0.0' protocol='17' srcportstart='68' dstportstart='67'/>
  </rule>
  <rule action='return' direction='out'>
     <ip srcipaddr='$IP' srcipmask='255.255.255.255'/>
  </rule>
  <rule action='drop' direction='out' priority='1000'/>
</filter>
"
    )
}

/// What `nwfilter-dumpxml` prints for it, as libvirt prints it.
fn spoof_dump() -> String {
    format!(
        "<filter name='no-ip-spoofing' chain='ipv4-ip' priority='-700'>
  <uuid>{SPOOF_UUID}</uuid>
  <rule action='return' direction='out' priority='100'>
    <ip srcipaddr='0.0.0.0' protocol='udp' srcportstart='68' dstportstart='67'/>
  </rule>
  <rule action='return' direction='out' priority='500'>
    <ip srcipaddr='$IP' srcipmask='32'/>
  </rule>
  <rule action='drop' direction='out' priority='1000'/>
</filter>
"
    )
}

fn clean_xml(extra: &str) -> String {
    format!(
        "<filter name='clean-traffic' chain='root'>
  <uuid>{CLEAN_UUID}</uuid>
  <filterref filter='no-ip-spoofing'>
    <parameter name='IP' value='10.0.0.2'/>
  </filterref>
  <rule action='accept' direction='out' priority='-650'>
    <mac protocolid='ipv4'/>
  </rule>
  <rule action='drop' direction='inout' statematch='false'>
    <tcp match='no' srcmacaddr='52:54:0:AA:BB:CC' dstportstart='0x16'/>
  </rule>{extra}
</filter>
"
    )
}

fn nwfilter_uri(d: &Daemon, ro: bool) -> String {
    let sock = if ro {
        "virtnwfilterd-sock-ro"
    } else {
        "virtnwfilterd-sock"
    };
    format!("nwfilter:///system?socket={}", d.run_dir().join(sock).display())
}

fn write_file(root: &Path, name: &str, text: &str) -> String {
    let path = root.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

fn filter_file(root: &Path, name: &str) -> PathBuf {
    root.join(format!("etc/libvirt/nwfilter/{name}.xml"))
}

/// The libvirt header every filter file starts with.
fn header(name: &str) -> String {
    format!(
        "<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\nOVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n  virsh nwfilter-edit {name}\nor other application using the libvirt API.\n-->\n\n"
    )
}

/// `(UUID, name)` rows of `virsh nwfilter-list`.
fn rows(out: &Output) -> Vec<(String, String)> {
    ok_stdout(out)
        .lines()
        .skip(2)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn virsh_manages_nwfilters_on_virtnwfilterd() {
    let d = Daemon::start("virtnwfilterd", DaemonOptions::default());
    let root = d.root.path().to_owned();
    let uri = nwfilter_uri(&d, false);
    let virsh = |args: &[&str]| virsh_at(&uri, args);

    // A fresh root has no filters (libvirt's packages would install some).
    assert_eq!(rows(&virsh(&["nwfilter-list"])), []);

    let spoof = write_file(&root, "spoof.xml", &spoof_xml());
    let out = ok_stdout(&virsh(&["nwfilter-define", &spoof]));
    assert!(
        out.contains(&format!("Network filter no-ip-spoofing defined from {spoof}")),
        "{out}"
    );
    assert_eq!(
        ok_stdout(&virsh(&["nwfilter-dumpxml", "no-ip-spoofing"])),
        spoof_dump() + "\n"
    );
    assert_eq!(
        std::fs::read_to_string(filter_file(&root, "no-ip-spoofing")).expect("read"),
        header("no-ip-spoofing") + &spoof_dump()
    );

    // With --validate (NWFILTER_DEFINE_XML_FLAGS), referencing the first.
    let clean = write_file(&root, "clean.xml", &clean_xml(""));
    ok_stdout(&virsh(&["nwfilter-define", &clean, "--validate"]));
    assert_eq!(
        ok_stdout(&virsh(&["nwfilter-dumpxml", CLEAN_UUID])),
        format!(
            "<filter name='clean-traffic' chain='root'>
  <uuid>{CLEAN_UUID}</uuid>
  <filterref filter='no-ip-spoofing'>
    <parameter name='IP' value='10.0.0.2'/>
  </filterref>
  <rule action='accept' direction='out' priority='-650'>
    <mac protocolid='ipv4'/>
  </rule>
  <rule action='drop' direction='inout' priority='500' statematch='false'>
    <tcp match='no' srcmacaddr='52:54:00:aa:bb:cc'/>
    <tcp dstportstart='0x16'/>
  </rule>
</filter>

"
        )
    );
    // (As in libvirt, dstportstart takes its match from srcportstart,
    // which is not given: the element is split.)
    assert_eq!(
        rows(&virsh(&["nwfilter-list"])),
        [
            (CLEAN_UUID.to_owned(), "clean-traffic".to_owned()),
            (SPOOF_UUID.to_owned(), "no-ip-spoofing".to_owned()),
        ]
    );

    // Updating with the same name and UUID replaces the definition.
    let updated = write_file(
        &root,
        "clean2.xml",
        &clean_xml("\n  <rule action='accept' direction='in'><all/></rule>"),
    );
    ok_stdout(&virsh(&["nwfilter-define", &updated]));
    let xml = ok_stdout(&virsh(&["nwfilter-dumpxml", "clean-traffic"]));
    assert!(
        xml.contains("  <rule action='accept' direction='in' priority='500'>\n    <all/>\n  </rule>\n"),
        "{xml}"
    );
    assert!(
        std::fs::read_to_string(filter_file(&root, "clean-traffic"))
            .expect("read")
            .contains("<all/>")
    );

    // libvirt's refusals: a name under another UUID, a reference loop, bad values.
    let other_uuid = write_file(
        &root,
        "dup.xml",
        "<filter name='clean-traffic'><uuid>11111111-2222-4333-8444-555555555555</uuid></filter>",
    );
    let e = err_stderr(&virsh(&["nwfilter-define", &other_uuid]));
    assert!(
        e.contains(&format!(
            "operation failed: filter 'clean-traffic' already exists with uuid {CLEAN_UUID}"
        )),
        "{e}"
    );
    let looping = spoof_xml().replace(
        "<rule action='drop'",
        "<filterref filter='clean-traffic'/>\n  <rule action='drop'",
    );
    let e = err_stderr(&virsh(&[
        "nwfilter-define",
        &write_file(&root, "loop.xml", &looping),
    ]));
    assert!(
        e.contains("operation failed: filter would introduce a loop"),
        "{e}"
    );
    let bad = write_file(
        &root,
        "bad.xml",
        "<filter name='bad'><rule action='accept' direction='in'><tcp dstportstart='65536'/></rule></filter>",
    );
    let e = err_stderr(&virsh(&["nwfilter-define", &bad]));
    assert!(
        e.contains("internal error: dstportstart has illegal value 65536"),
        "{e}"
    );
    let bad = write_file(&root, "bad2.xml", "<filter name='bad' chain='forward'/>");
    let e = err_stderr(&virsh(&["nwfilter-define", &bad]));
    assert!(
        e.contains("invalid argument: Invalid chain name 'forward'."),
        "{e}"
    );
    let bad = write_file(&root, "bad3.xml", "<filter name='../escape'/>");
    let e = err_stderr(&virsh(&["nwfilter-define", &bad]));
    assert!(e.contains("invalid char in name: /"), "{e}");
    assert!(!root.join("etc/libvirt/escape.xml").exists());
    assert!(!filter_file(&root, "bad").exists());

    // Read-only connections read but do not change.
    let ro = nwfilter_uri(&d, true);
    assert_eq!(rows(&virsh_ro_at(&ro, &["nwfilter-list"])).len(), 2);
    ok_stdout(&virsh_ro_at(&ro, &["nwfilter-dumpxml", "no-ip-spoofing"]));
    let e = err_stderr(&virsh_ro_at(&ro, &["nwfilter-undefine", "no-ip-spoofing"]));
    assert!(e.contains("read only access prevents virNWFilterUndefine"), "{e}");

    // Undefine; unknown filters get libvirt's error.
    let out = ok_stdout(&virsh(&["nwfilter-undefine", "clean-traffic"]));
    assert!(out.contains("Network filter clean-traffic undefined"), "{out}");
    assert!(!filter_file(&root, "clean-traffic").exists());
    let e = err_stderr(&virsh(&["nwfilter-dumpxml", "clean-traffic"]));
    assert!(
        e.contains("Network filter not found: no nwfilter with matching name 'clean-traffic'"),
        "{e}"
    );
    assert_eq!(
        rows(&virsh(&["nwfilter-list"])),
        [(SPOOF_UUID.to_owned(), "no-ip-spoofing".to_owned())]
    );
}

#[test]
fn filters_survive_a_restart_and_files_without_uuid_get_one() {
    let mut d = Daemon::start("virtnwfilterd", DaemonOptions::default());
    let uri = nwfilter_uri(&d, false);
    let root = d.root.path().to_owned();
    ok_stdout(&virsh_at(
        &uri,
        &["nwfilter-define", &write_file(&root, "s.xml", &spoof_xml())],
    ));
    d.stop();
    // A hand-written file without UUID, and one whose name is not its file's.
    std::fs::write(
        filter_file(&root, "allow-arp"),
        "<filter name='allow-arp' chain='arp'><rule action='accept' direction='inout' priority='500'/></filter>",
    )
    .expect("write");
    std::fs::write(filter_file(&root, "wrong"), "<filter name='right'/>").expect("write");
    let d = Daemon::start_in("virtnwfilterd", d.into_root(), DaemonOptions::default());
    assert_eq!(
        ok_stdout(&virsh_at(&uri, &["nwfilter-dumpxml", "no-ip-spoofing"])),
        spoof_dump() + "\n"
    );
    let names: Vec<String> = rows(&virsh_at(&uri, &["nwfilter-list"]))
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(names, ["allow-arp", "no-ip-spoofing"]);
    let arp = ok_stdout(&virsh_at(&uri, &["nwfilter-dumpxml", "allow-arp"]));
    let uuid_line = arp.lines().nth(1).unwrap_or_default().to_owned();
    assert!(uuid_line.starts_with("  <uuid>"), "{arp}");
    // The generated UUID was written back, as libvirt does.
    let on_disk = std::fs::read_to_string(filter_file(&root, "allow-arp")).expect("read");
    assert_eq!(on_disk, header("allow-arp") + arp.trim_end_matches('\n') + "\n");
    assert!(
        d.stderr().contains("does not match name 'right'"),
        "{}",
        d.stderr()
    );
}

#[test]
fn nwfilter_calls_through_virtqemud_start_virtnwfilterd_as_its_peer() {
    let qemu = Daemon::start("virtqemud", DaemonOptions::default());
    let root = qemu.root.path().to_owned();
    assert!(!root.join("run/virtnwfilterd.pid").exists());

    assert_eq!(rows(&qemu.virsh(&["nwfilter-list"])), []);
    let pid = daemon_pid(&root, "virtnwfilterd");
    let _guard = PidGuard(pid);

    let status: Value = serde_json::from_str(&virt_daemons(&root, &["status", "--json"])).expect("json");
    let nwf = status["daemons"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == "virtnwfilterd"))
        .unwrap_or_else(|| panic!("no virtnwfilterd in {status:#}"));
    assert_eq!(nwf["state"], "running", "{nwf:#}");
    assert_eq!(nwf["activation"]["cause"], "peer", "{nwf:#}");
    assert_eq!(nwf["activation"]["peer"]["daemon"], "virtqemud", "{nwf:#}");
    assert_eq!(
        nwf["activation"]["peer"]["procedure"], "CONNECT_LIST_ALL_NWFILTERS",
        "{nwf:#}"
    );

    // Defined through virtqemud, kept by virtnwfilterd.
    let file = write_file(&root, "spoof.xml", &spoof_xml());
    let out = ok_stdout(&qemu.virsh(&["nwfilter-define", &file]));
    assert!(out.contains("Network filter no-ip-spoofing defined"), "{out}");
    assert!(filter_file(&root, "no-ip-spoofing").is_file());
    assert_eq!(
        ok_stdout(&qemu.virsh(&["nwfilter-dumpxml", "no-ip-spoofing"])),
        spoof_dump() + "\n"
    );
    let e = err_stderr(&qemu.virsh(&["nwfilter-dumpxml", "nosuch"]));
    assert!(
        e.contains("Network filter not found: no nwfilter with matching name 'nosuch'"),
        "{e}"
    );

    // Killed, it comes back with its filters on the next call that needs it.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).expect("kill");
    assert!(wait_for(Duration::from_secs(5), || process_gone(pid)));
    assert_eq!(
        rows(&qemu.virsh(&["nwfilter-list"])),
        [(SPOOF_UUID.to_owned(), "no-ip-spoofing".to_owned())]
    );
    let again = daemon_pid(&root, "virtnwfilterd");
    let _guard2 = PidGuard(again);
    assert_ne!(again, pid);
}

#[test]
fn help_says_rules_are_not_applied_to_traffic() {
    let out = std::process::Command::new(modvirt_tests::bin("virtnwfilterd"))
        .arg("--help")
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with(
            "libvirt network filter daemon (modvirt): rules are kept and served, not applied to traffic\n"
        ),
        "{text}"
    );
    assert!(text.contains("Usage: virtnwfilterd [OPTIONS]"), "{text}");
}
