//! virtproxyd --listen: the real virsh over `qemu+tls://` with libvirt's
//! certificate layout (server: ROOT/etc/pki/CA/cacert.pem,
//! ROOT/etc/pki/libvirt/servercert.pem, …/private/serverkey.pem; client:
//! `?pkipath=DIR` with cacert.pem, clientcert.pem, clientkey.pem), made for
//! the test with rcgen. Only 127.0.0.1 carries the traffic.

use modvirt_tests::{Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, virsh_at, wait_for};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::Path;
use std::time::Duration;

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

#[test]
fn virsh_over_tls_reaches_the_daemons_and_untrusted_clients_are_refused() {
    let root = modvirt_tests::temp_root("modvirt-tls-");
    let r = root.path().to_owned();
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
