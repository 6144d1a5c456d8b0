//! virtproxyd --listen: the real virsh over `qemu+tls://` with libvirt's
//! certificate layout (server: ROOT/etc/pki/CA/cacert.pem,
//! ROOT/etc/pki/libvirt/servercert.pem, …/private/serverkey.pem; client:
//! `?pkipath=DIR` with cacert.pem, clientcert.pem, clientkey.pem), made for
//! the test with rcgen. Only 127.0.0.1 carries the traffic. The same
//! listeners also come from systemd (`virtproxyd-tls.socket`,
//! `virtproxyd-tcp.socket` through `systemd-socket-activate`, no `--listen`).

use modvirt_tests::{
    ChildGuard, Daemon, DaemonOptions, PidGuard, assert_contains, bin, clear_daemon_env, daemon_pid,
    err_stderr, ok_stdout, require_tool, temp_root, virsh_at, wait_for,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("ca")
}

/// A leaf certificate and key (PEM) signed by `ca`.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    purpose: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "GB");
    p.distinguished_name
        .push(DnType::OrganizationName, "modvirt test");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![purpose];
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, ca).expect("sign");
    (cert.pem(), key.serialize_pem())
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A client pki directory: `ca_pem` to check the server with, and a client
/// certificate for `cn` signed by `signer`.
fn client_dir(
    root: &Path,
    name: &str,
    ca_pem: &str,
    signer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
) -> String {
    let dir = root.join(name);
    let (cert, key) = leaf(signer, cn, &[], ExtendedKeyUsagePurpose::ClientAuth);
    write(&dir.join("cacert.pem"), ca_pem);
    write(&dir.join("clientcert.pem"), &cert);
    write(&dir.join("clientkey.pem"), &key);
    dir.display().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A CA, and the server's files signed by it in libvirt's layout under `r`.
fn server_pki(r: &Path) -> CertifiedIssuer<'static, KeyPair> {
    let authority = ca("modvirt test CA");
    let (server_cert, server_key) = leaf(
        &authority,
        "127.0.0.1",
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    write(&r.join("etc/pki/CA/cacert.pem"), &authority.pem());
    write(&r.join("etc/pki/libvirt/servercert.pem"), &server_cert);
    write(&r.join("etc/pki/libvirt/private/serverkey.pem"), &server_key);
    authority
}

#[test]
fn virsh_over_tls_reaches_the_daemons_and_untrusted_clients_are_refused() {
    let root = modvirt_tests::temp_root("modvirt-tls-");
    let r = root.path().to_owned();
    let authority = server_pki(&r);
    let (tls_port, tcp_port) = (free_port(), free_port());
    let proxy = Daemon::start_in(
        "virtproxyd",
        root,
        DaemonOptions {
            args: vec!["--listen".into()],
            config: Some(format!(
                "listen_addr = \"127.0.0.1\"\ntls_port = \"{tls_port}\"\nlisten_tcp = 1\ntcp_port = \"{tcp_port}\"\n\
                 tls_allowed_dn_list = [\"C=GB,O=modvirt test,CN=allowed*\"]\n"
            )),
            ..Default::default()
        },
    );

    // A client the CA signed, with an allowed name.
    let good = client_dir(&r, "good", &authority.pem(), &authority, "allowed-client");
    let uri = format!("qemu+tls://127.0.0.1:{tls_port}/system?pkipath={good}");
    let list = ok_stdout(&virsh_at(&uri, &["list", "--all"]));
    assert!(list.contains("State"), "{list}");
    let _qemu = PidGuard(daemon_pid(&r, "virtqemud"));
    let version = ok_stdout(&virsh_at(&uri, &["version"]));
    assert!(version.contains("Running hypervisor: QEMU"), "{version}");

    // Signed by the CA, but its name is not on tls_allowed_dn_list.
    let named = client_dir(&r, "named", &authority.pem(), &authority, "intruder");
    let e = err_stderr(&virsh_at(
        &format!("qemu+tls://127.0.0.1:{tls_port}/system?pkipath={named}"),
        &["list"],
    ));
    assert!(e.contains("error: failed to connect to the hypervisor"), "{e}");
    assert!(wait_for(Duration::from_secs(5), || proxy.stderr().contains(
        "Distinguished Name 'C=GB,O=modvirt test,CN=intruder' is not on the list"
    )));

    // Signed by another CA (virsh told not to check the server, so that it
    // sends its certificate): the handshake fails on the proxy's side.
    let rogue = ca("rogue CA");
    let untrusted = client_dir(&r, "untrusted", &rogue.pem(), &rogue, "allowed-rogue");
    let e = err_stderr(&virsh_at(
        &format!("qemu+tls://127.0.0.1:{tls_port}/system?pkipath={untrusted}&no_verify=1"),
        &["list"],
    ));
    assert!(e.contains("error: failed to connect to the hypervisor"), "{e}");
    assert!(wait_for(Duration::from_secs(5), || proxy
        .stderr()
        .contains("TLS handshake with 127.0.0.1")));

    // Plain TCP: refused, modvirt has no SASL and auth_tcp is not "none".
    let e = err_stderr(&virsh_at(
        &format!("qemu+tcp://127.0.0.1:{tcp_port}/system"),
        &["list"],
    ));
    assert!(e.contains("error: failed to connect to the hypervisor"), "{e}");
    assert!(
        proxy.stderr().contains("refusing TCP client 127.0.0.1"),
        "{}",
        proxy.stderr()
    );

    // Still serving.
    ok_stdout(&virsh_at(&uri, &["list", "--all"]));
}

#[test]
fn plain_tcp_is_served_when_explicitly_allowed() {
    let tcp_port = free_port();
    let proxy = Daemon::start(
        "virtproxyd",
        DaemonOptions {
            args: vec!["--listen".into()],
            config: Some(format!(
                "listen_addr = \"127.0.0.1\"\nlisten_tls = 0\nlisten_tcp = 1\ntcp_port = \"{tcp_port}\"\nauth_tcp = \"none\"\n"
            )),
            ..Default::default()
        },
    );
    let uri = format!("qemu+tcp://127.0.0.1:{tcp_port}/system");
    let list = ok_stdout(&virsh_at(&uri, &["list", "--all"]));
    assert!(list.contains("State"), "{list}");
    let _qemu = PidGuard(daemon_pid(proxy.root.path(), "virtqemud"));
}

#[test]
fn listen_is_only_for_virtproxyd() {
    let d = Daemon::start(
        "virtnetworkd",
        DaemonOptions {
            args: vec!["--listen".into()],
            no_wait: true,
            ..Default::default()
        },
    );
    let mut d = d;
    assert!(d.wait_exit(Duration::from_secs(10)).is_some_and(|s| !s.success()));
    assert!(
        d.stderr()
            .contains("--listen: virtnetworkd does not listen on TCP/TLS; use virtproxyd --listen"),
        "{}",
        d.stderr()
    );
}

/// `systemd-socket-activate` listening on 127.0.0.1:`port` for virtproxyd
/// under a fresh root, passing the socket as `fdname`; its (and later the
/// daemon's) stderr goes to a file. Field order: killed before the root goes.
struct Activated {
    proc: ChildGuard,
    stderr: PathBuf,
    root: TempDir,
}

impl Activated {
    /// `prepare` fills the root (certificates, configuration) first.
    fn start(fdname: &str, daemon_args: &[&str], prepare: impl FnOnce(&Path)) -> (Activated, u16) {
        let root = temp_root("modvirt-tls-act-");
        prepare(root.path());
        let port = free_port();
        let stderr = root.path().join("activate.stderr");
        let mut cmd = Command::new(require_tool("systemd-socket-activate"));
        cmd.arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .arg(format!("--fdname={fdname}"))
            .arg("--")
            .arg(bin("virtproxyd"))
            .arg("--root")
            .arg(root.path())
            .args(["--timeout", "0"])
            .args(daemon_args);
        clear_daemon_env(&mut cmd)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let a = Activated {
            proc: ChildGuard::spawn(&mut cmd),
            stderr,
            root,
        };
        assert!(
            wait_for(Duration::from_secs(10), || a.stderr().contains("Listening on ")),
            "systemd-socket-activate did not listen: {}",
            a.stderr()
        );
        (a, port)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The activation record in the daemon's state file.
    fn activation(&self) -> serde_json::Value {
        let path = self.root.path().join("run/libvirt/modvirt/virtproxyd.json");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .map_or(serde_json::Value::Null, |v| v["activation"].clone())
    }
}

#[test]
fn socket_activated_tls_serves_virsh_without_listen() {
    let mut authority = None;
    let (a, port) = Activated::start("virtproxyd-tls.socket", &[], |r| {
        authority = Some(server_pki(r));
        write(
            &r.join("etc/libvirt/virtproxyd.conf"),
            "tls_allowed_dn_list = [\"C=GB,O=modvirt test,CN=allowed*\"]\n",
        );
    });
    let authority = authority.expect("CA");
    let r = a.root.path().to_owned();
    let good = client_dir(&r, "good", &authority.pem(), &authority, "allowed-client");
    let uri = format!("qemu+tls://127.0.0.1:{port}/system?pkipath={good}");
    let list = ok_stdout(&virsh_at(&uri, &["list", "--all"]));
    assert!(list.contains("State"), "{list}\n{}", a.stderr());
    // The call went on to virtqemud under the same root.
    let _qemu = PidGuard(daemon_pid(&r, "virtqemud"));
    let version = ok_stdout(&virsh_at(&uri, &["version"]));
    assert!(version.contains("Running hypervisor: QEMU"), "{version}");

    // Why it runs: the TLS socket, and the client that woke it (no pid or
    // uid over TCP: its certificate subject and address instead).
    let act = a.activation();
    assert_eq!(act["cause"], "socket", "{act:#}");
    assert_eq!(act["socket"], "virtproxyd-tls.socket", "{act:#}");
    let comm = act["client"]["comm"].as_str().unwrap_or_default();
    assert!(
        comm.starts_with("tls C=GB,O=modvirt test,CN=allowed-client 127.0.0.1:"),
        "{act:#}"
    );

    // A certificate from another CA: the handshake fails on the proxy's side.
    let rogue = ca("rogue CA");
    let untrusted = client_dir(&r, "untrusted", &rogue.pem(), &rogue, "allowed-rogue");
    let e = err_stderr(&virsh_at(
        &format!("qemu+tls://127.0.0.1:{port}/system?pkipath={untrusted}&no_verify=1"),
        &["list"],
    ));
    assert_contains(&e, "error: failed to connect to the hypervisor");
    assert!(wait_for(Duration::from_secs(5), || a
        .stderr()
        .contains("TLS handshake with 127.0.0.1")));
    // Signed by the CA, but not on tls_allowed_dn_list.
    let named = client_dir(&r, "named", &authority.pem(), &authority, "intruder");
    let e = err_stderr(&virsh_at(
        &format!("qemu+tls://127.0.0.1:{port}/system?pkipath={named}"),
        &["list"],
    ));
    assert_contains(&e, "error: failed to connect to the hypervisor");
    assert!(wait_for(Duration::from_secs(5), || a.stderr().contains(
        "Distinguished Name 'C=GB,O=modvirt test,CN=intruder' is not on the list"
    )));
    // Still serving; the first client stays the one that woke it.
    ok_stdout(&virsh_at(&uri, &["list", "--all"]));
    assert_eq!(a.activation()["client"]["comm"].as_str(), Some(comm));
}

#[test]
fn socket_activated_tls_without_certificates_fails_at_start() {
    let (mut a, port) = Activated::start("virtproxyd-tls.socket", &[], |_| {});
    // The first connection execs the daemon, which cannot serve TLS.
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    let status = a.proc.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}\n{}", a.stderr());
    let cert = a.root.path().join("etc/pki/libvirt/servercert.pem");
    assert_contains(
        &a.stderr(),
        &format!(
            "socket activation: cannot serve 'virtproxyd-tls.socket': cannot read server certificate '{}': \
             No such file or directory; put the server certificate there, or set cert_file in the daemon's \
             configuration file",
            cert.display()
        ),
    );
    assert!(!a.root.path().join("run/virtproxyd.pid").exists());
}

#[test]
fn socket_activated_tcp_is_refused_without_auth_tcp_none() {
    // --listen is ignored under activation (as libvirt's virtproxyd): the
    // configured listen_tcp port is not bound, only the passed socket.
    let unused = free_port();
    let (a, port) = Activated::start("virtproxyd-tcp.socket", &["--listen"], |r| {
        write(
            &r.join("etc/libvirt/virtproxyd.conf"),
            &format!(
                "listen_addr = \"127.0.0.1\"\nlisten_tls = 0\nlisten_tcp = 1\ntcp_port = \"{unused}\"\n"
            ),
        );
    });
    let e = err_stderr(&virsh_at(
        &format!("qemu+tcp://127.0.0.1:{port}/system"),
        &["list"],
    ));
    assert_contains(&e, "error: failed to connect to the hypervisor");
    assert!(
        wait_for(Duration::from_secs(5), || a
            .stderr()
            .contains("refusing TCP client 127.0.0.1")),
        "{}",
        a.stderr()
    );
    let err = a.stderr();
    assert_contains(&err, "--listen is ignored under systemd socket activation");
    assert_contains(&err, "TCP clients on 127.0.0.1:");
    assert!(std::net::TcpStream::connect(("127.0.0.1", unused)).is_err());
    // The refused client is still the one that woke the daemon.
    let act = a.activation();
    assert_eq!(act["socket"], "virtproxyd-tcp.socket", "{act:#}");
    let comm = act["client"]["comm"].as_str().unwrap_or_default();
    assert!(
        comm.starts_with("tcp 127.0.0.1:") && comm.ends_with("(refused: auth_tcp)"),
        "{act:#}"
    );
}
