//! What a daemon that listens on the network (`virtproxyd --listen`, or the
//! `virtproxyd-tls.socket` / `virtproxyd-tcp.socket` units) reads from its
//! configuration, with libvirt's keys and defaults. Under socket activation
//! systemd's sockets are served as they are: `listen_tls`, `listen_tcp`,
//! the ports and `listen_addr` do not apply; the rest does.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `listen_tls` | 1 | listen for TLS connections |
//! | `listen_tcp` | 0 | listen for plain TCP connections |
//! | `tls_port` / `tcp_port` | `"16514"` / `"16509"` | ports (strings, as libvirt) |
//! | `listen_addr` | `"0.0.0.0"` | the address both listen on |
//! | `auth_tcp` | `"sasl"` | plain TCP needs `"none"` here: modvirt has no SASL, so the default refuses TCP clients |
//! | `auth_tls` | `"none"` | the certificate is the authentication |
//! | `ca_file`, `cert_file`, `key_file` | `<pki>/CA/cacert.pem`, `<pki>/libvirt/servercert.pem`, `<pki>/libvirt/private/serverkey.pem` | libvirt's file layout; `<pki>` is `/etc/pki`, under `--root` `ROOT/etc/pki` |
//! | `tls_no_verify_certificate` | 0 | 1: do not ask for (or check) client certificates |
//! | `tls_allowed_dn_list` | unset: any | client certificate subjects allowed, as `C=GB,O=Example,CN=*` patterns (`*` and `?` wildcards) |

use super::{ConfFile, ConfigError};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSettings {
    pub listen_tls: bool,
    pub listen_tcp: bool,
    pub tls_port: u16,
    pub tcp_port: u16,
    pub listen_addr: String,
    /// Plain TCP clients are allowed (`auth_tcp = "none"`).
    pub tcp_auth_none: bool,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub tls_no_verify_certificate: bool,
    pub tls_allowed_dn_list: Option<Vec<String>>,
}

impl Default for NetSettings {
    fn default() -> NetSettings {
        NetSettings {
            listen_tls: true,
            listen_tcp: false,
            tls_port: 16514,
            tcp_port: 16509,
            listen_addr: "0.0.0.0".to_owned(),
            tcp_auth_none: false,
            ca_file: None,
            cert_file: None,
            key_file: None,
            tls_no_verify_certificate: false,
            tls_allowed_dn_list: None,
        }
    }
}

fn flag(conf: &ConfFile, key: &str, default: bool) -> Result<bool, ConfigError> {
    match conf.get_u32(key)? {
        None => Ok(default),
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        Some(_) => Err(conf.invalid(key, "must be 0 or 1")),
    }
}

fn port(conf: &ConfFile, key: &str, default: u16) -> Result<u16, ConfigError> {
    match conf.get_string(key)? {
        None => Ok(default),
        Some(s) => s
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| conf.invalid(key, format!("'{s}' is not a port number (1 .. 65535)"))),
    }
}

impl NetSettings {
    pub fn from_conf(conf: &ConfFile) -> Result<NetSettings, ConfigError> {
        let d = NetSettings::default();
        let auth_tcp = conf.get_string("auth_tcp")?;
        let tcp_auth_none = match auth_tcp.as_deref() {
            None | Some("sasl") => false,
            Some("none") => true,
            Some(other) => {
                return Err(conf.invalid(
                    "auth_tcp",
                    format!("'{other}' is not supported: use \"none\" (modvirt has no SASL)"),
                ));
            }
        };
        match conf.get_string("auth_tls")?.as_deref() {
            None | Some("none") => {}
            Some(other) => {
                return Err(conf.invalid(
                    "auth_tls",
                    format!(
                        "'{other}' is not supported: use \"none\" (the client certificate authenticates)"
                    ),
                ));
            }
        }
        Ok(NetSettings {
            listen_tls: flag(conf, "listen_tls", d.listen_tls)?,
            listen_tcp: flag(conf, "listen_tcp", d.listen_tcp)?,
            tls_port: port(conf, "tls_port", d.tls_port)?,
            tcp_port: port(conf, "tcp_port", d.tcp_port)?,
            listen_addr: conf.get_string("listen_addr")?.unwrap_or(d.listen_addr),
            tcp_auth_none,
            ca_file: conf.get_string("ca_file")?.map(PathBuf::from),
            cert_file: conf.get_string("cert_file")?.map(PathBuf::from),
            key_file: conf.get_string("key_file")?.map(PathBuf::from),
            tls_no_verify_certificate: flag(conf, "tls_no_verify_certificate", false)?,
            tls_allowed_dn_list: conf.get_string_list("tls_allowed_dn_list")?,
        })
    }

    /// The CA, server certificate and key files: the configured ones, else
    /// libvirt's layout under `pki` (`/etc/pki`, or `ROOT/etc/pki`).
    pub fn tls_files(&self, pki: &Path) -> (PathBuf, PathBuf, PathBuf) {
        (
            self.ca_file.clone().unwrap_or_else(|| pki.join("CA/cacert.pem")),
            self.cert_file
                .clone()
                .unwrap_or_else(|| pki.join("libvirt/servercert.pem")),
            self.key_file
                .clone()
                .unwrap_or_else(|| pki.join("libvirt/private/serverkey.pem")),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NetSettings, ConfigError> {
        NetSettings::from_conf(&ConfFile::parse(Path::new("virtproxyd.conf"), text).unwrap())
    }

    #[test]
    fn libvirts_defaults_and_keys() {
        assert_eq!(parse("").unwrap(), NetSettings::default());
        let s = parse(
            "listen_tcp = 1\nauth_tcp = \"none\"\ntcp_port = \"17509\"\nlisten_addr = \"127.0.0.1\"\n\
             tls_allowed_dn_list = [\"C=GB,CN=*\"]\n",
        )
        .unwrap();
        assert!(s.listen_tcp && s.tcp_auth_none && s.listen_tls);
        assert_eq!((s.tcp_port, s.listen_addr.as_str()), (17509, "127.0.0.1"));
        assert_eq!(s.tls_allowed_dn_list, Some(vec!["C=GB,CN=*".to_owned()]));
        let (ca, cert, key) = s.tls_files(Path::new("/r/etc/pki"));
        assert_eq!(ca, Path::new("/r/etc/pki/CA/cacert.pem"));
        assert_eq!(cert, Path::new("/r/etc/pki/libvirt/servercert.pem"));
        assert_eq!(key, Path::new("/r/etc/pki/libvirt/private/serverkey.pem"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = parse("tls_port = \"x\"\n").unwrap_err().to_string();
        assert!(
            e.contains("tls_port") && e.contains("'x' is not a port number"),
            "{e}"
        );
        let e = parse("auth_tcp = \"polkit\"\n").unwrap_err().to_string();
        assert!(e.contains("use \"none\""), "{e}");
    }
}
