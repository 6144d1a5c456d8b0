//! The real Debian `virsh` 9.0 against `virtqemud` at connection level:
//! what it prints for `uri`, `version` and `hostname`, the read-only socket,
//! calls the daemon does not implement yet, and URIs it does not serve. The
//! expected texts are those real libvirt prints (see
//! `shared/reference/libvirt-9.0/traces/`).

use modvirt_tests::{Daemon, DaemonOptions, assert_contains, err_stderr, ok_stdout, require_tool, virsh_at};
use std::process::Command;

fn start() -> Daemon {
    Daemon::start("virtqemud", DaemonOptions::default())
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .expect("gethostname")
        .to_string_lossy()
        .into_owned()
}

/// `7.2.22` from `QEMU emulator version 7.2.22 (Debian …)`.
fn qemu_version() -> String {
    let out = Command::new(require_tool("qemu-system-x86_64"))
        .arg("--version")
        .output()
        .expect("run qemu-system-x86_64 --version");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rest = text
        .split("version ")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected qemu --version output: {text}"));
    rest.split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn write_domain_xml(d: &Daemon) -> String {
    let path = d.root.path().join("vm.xml");
    std::fs::write(
        &path,
        "<domain type='qemu'><name>vm1</name><memory unit='KiB'>65536</memory>\
         <os><type arch='x86_64'>hvm</type></os></domain>\n",
    )
    .expect("write domain xml");
    path.display().to_string()
}

#[test]
fn uri_version_hostname() {
    let d = start();
    // virsh prints the URI it was given, ?socket= included (trace virsh-uri).
    assert_eq!(ok_stdout(&d.virsh(&["uri"])), format!("{}\n\n", d.uri(false)));
    assert_eq!(ok_stdout(&d.virsh(&["hostname"])), format!("{}\n\n", hostname()));
    let version = ok_stdout(&d.virsh(&["version"]));
    assert_eq!(
        version,
        format!(
            "Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\n\
             Using API: QEMU 9.0.0\nRunning hypervisor: QEMU {}\n\n",
            qemu_version()
        )
    );
}

#[test]
fn several_commands_on_one_connection() {
    let d = start();
    let out = ok_stdout(&d.virsh(&["uri; hostname; uri"]));
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    let uri = d.uri(false);
    let host = hostname();
    assert_eq!(lines, [uri.as_str(), host.as_str(), uri.as_str()]);
}

#[test]
fn read_only_socket_serves_read_calls() {
    let d = start();
    assert_eq!(
        ok_stdout(&d.virsh_ro(&["hostname"])),
        format!("{}\n\n", hostname())
    );
    assert_eq!(ok_stdout(&d.virsh_ro(&["uri"])), format!("{}\n\n", d.uri(true)));
}

#[test]
fn read_only_connection_refuses_define() {
    let d = start();
    let xml = write_domain_xml(&d);
    let err = err_stderr(&d.virsh_ro(&["define", &xml]));
    assert_eq!(
        err,
        format!(
            "error: Failed to define domain from {xml}\n\
             error: operation forbidden: read only access prevents virDomainDefineXML\n"
        )
    );
}

#[test]
fn read_only_socket_refuses_state_changes_itself() {
    let d = start();
    let ro = d.uri(true);
    // No -r: the client sends the calls, the daemon refuses them because
    // they came in on the read-only socket.
    let out = virsh_at(&ro, &["iface-begin"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        err_stderr(&out),
        "error: Failed to begin network config change transaction\n\
         error: operation forbidden: read only access prevents virInterfaceChangeBegin\n"
    );
    let err = err_stderr(&virsh_at(&ro, &["nodesuspend", "mem", "60"]));
    assert_contains(
        &err,
        "operation forbidden: read only access prevents virNodeSuspendForDuration",
    );
    // Read calls still work on that connection.
    assert_eq!(
        ok_stdout(&virsh_at(&ro, &["hostname"])),
        format!("{}\n\n", hostname())
    );
    // On the read-write socket the same call passes the permission check
    // and reaches the driver, which does not implement it.
    let err = err_stderr(&d.virsh(&["nodesuspend", "mem", "60"]));
    assert_contains(
        &err,
        "this function is not supported by the connection driver: virNodeSuspendForDuration",
    );
}

#[test]
fn read_only_socket_names_the_api_as_libvirt_does() {
    let d = start();
    let xml = write_domain_xml(&d);
    // libvirt's public API is virDomainDefineXML (not ...Xml): the daemon's
    // refusal must name it as libvirt's own check does.
    let err = err_stderr(&virsh_at(&d.uri(true), &["define", &xml]));
    assert_contains(
        &err,
        "operation forbidden: read only access prevents virDomainDefineXML\n",
    );
    // The read-write socket accepts it.
    assert_contains(&ok_stdout(&d.virsh(&["define", &xml])), "defined from");
}

#[test]
fn unimplemented_call_is_not_supported() {
    let d = start();
    let out = d.virsh(&["sysinfo"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        err_stderr(&out),
        "error: failed to get sysinfo\n\
         error: this function is not supported by the connection driver: virConnectGetSysinfo\n"
    );
    // The connection survives the error: the daemon still answers.
    assert_eq!(ok_stdout(&d.virsh(&["hostname"])), format!("{}\n\n", hostname()));
}

#[test]
fn uri_no_daemon_serves_is_refused() {
    // Another modular driver's URI is passed on (tests/tests/session.rs);
    // one no daemon owns is refused.
    let d = start();
    let uri = format!("bogus:///system?socket={}", d.socket("sock").display());
    let out = virsh_at(&uri, &["hostname"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        err_stderr(&out),
        "error: failed to connect to the hypervisor\n\
         error: no connection driver available for bogus:///system\n"
    );
}

#[test]
fn session_uri_on_system_daemon_is_refused() {
    let d = start();
    let uri = format!("qemu:///session?socket={}", d.socket("sock").display());
    let out = virsh_at(&uri, &["hostname"]);
    let err = err_stderr(&out);
    // libvirt's qemuConnectOpen wording for a system daemon.
    assert_contains(&err, "unexpected QEMU URI path '/session', try qemu:///system");
}
