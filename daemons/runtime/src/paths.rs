//! Where a daemon keeps its files.
//!
//! libvirt's layout, optionally under a root prefix (`--root DIR` or
//! `MODVIRT_ROOT`): `DIR/run/libvirt/<d>-sock`, `DIR/etc/libvirt/<d>.conf`,
//! `DIR/var/lib/libvirt/…`, `DIR/var/log/libvirt/<d>.log`, `DIR/run/<d>.pid`.
//! Without a root, root uses the system paths and other users libvirt's
//! session paths (`$XDG_RUNTIME_DIR/libvirt/…`, `~/.config/libvirt/…`).

use std::path::{Path, PathBuf};

/// The role of one of a daemon's UNIX sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketRole {
    /// `<d>-sock`: read-write clients.
    ReadWrite,
    /// `<d>-sock-ro`: read-only clients.
    ReadOnly,
    /// `<d>-admin-sock`: the admin server.
    Admin,
}

impl SocketRole {
    pub const ALL: [SocketRole; 3] = [Self::ReadWrite, Self::ReadOnly, Self::Admin];

    /// The `FileDescriptorName` systemd passes for this socket (`<d>.socket`, …).
    pub fn fd_name(self, daemon: &str) -> String {
        match self {
            Self::ReadWrite => format!("{daemon}.socket"),
            Self::ReadOnly => format!("{daemon}-ro.socket"),
            Self::Admin => format!("{daemon}-admin.socket"),
        }
    }

    /// libvirt's unit `SocketMode` for this socket.
    pub fn mode(self) -> u32 {
        match self {
            Self::ReadWrite | Self::ReadOnly => 0o666,
            Self::Admin => 0o600,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::ReadWrite => "rw",
            Self::ReadOnly => "ro",
            Self::Admin => "admin",
        }
    }
}

/// Every path a daemon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePaths {
    pub daemon: String,
    /// The root prefix, if any.
    pub root: Option<PathBuf>,
    /// Whether these are libvirt's privileged (system) paths.
    pub system: bool,
    /// `…/run/libvirt`: sockets and runtime state.
    pub run_dir: PathBuf,
    /// `…/etc/libvirt`: configuration.
    pub config_dir: PathBuf,
    /// `…/var/lib/libvirt`: persistent state.
    pub state_dir: PathBuf,
    /// `…/var/log/libvirt`: log files.
    pub log_dir: PathBuf,
    /// The pid file.
    pub pid_file: PathBuf,
}

impl RuntimePaths {
    /// Paths under `root` (always libvirt's system layout).
    pub fn under_root(daemon: &str, root: &Path) -> Self {
        Self {
            daemon: daemon.to_owned(),
            root: Some(root.to_owned()),
            system: true,
            run_dir: root.join("run/libvirt"),
            config_dir: root.join("etc/libvirt"),
            state_dir: root.join("var/lib/libvirt"),
            log_dir: root.join("var/log/libvirt"),
            pid_file: root.join(format!("run/{daemon}.pid")),
        }
    }

    /// libvirt's system paths (privileged daemons).
    pub fn system(daemon: &str) -> Self {
        Self {
            root: None,
            ..Self::under_root(daemon, Path::new("/"))
        }
    }

    /// libvirt's session paths for an unprivileged user.
    pub fn session(daemon: &str, home: &Path, xdg_runtime: Option<&Path>, xdg_config: Option<&Path>) -> Self {
        let run_dir = match xdg_runtime {
            Some(d) => d.join("libvirt"),
            None => home.join(".cache/libvirt"),
        };
        let config_dir = match xdg_config {
            Some(d) => d.join("libvirt"),
            None => home.join(".config/libvirt"),
        };
        let cache = home.join(".cache/libvirt");
        Self {
            daemon: daemon.to_owned(),
            root: None,
            system: false,
            pid_file: run_dir.join(format!("{daemon}.pid")),
            run_dir,
            config_dir: config_dir.clone(),
            state_dir: config_dir,
            log_dir: cache.join("log"),
        }
    }

    /// Picks the layout: an explicit root wins, then `MODVIRT_ROOT` (passed in
    /// by the caller), then system paths for uid 0, session paths otherwise.
    pub fn resolve(daemon: &str, root: Option<&Path>, uid: u32) -> Self {
        if let Some(root) = root {
            return Self::under_root(daemon, root);
        }
        if uid == 0 {
            return Self::system(daemon);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        let xdg_runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        let xdg_config = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
        Self::session(daemon, &home, xdg_runtime.as_deref(), xdg_config.as_deref())
    }

    /// The daemon's socket for `role`: `<d>-sock`, `<d>-sock-ro`,
    /// `<d>-admin-sock`; `virtproxyd` serves the legacy names of the
    /// monolithic libvirtd (`libvirt-sock`, `libvirt-sock-ro`,
    /// `libvirt-admin-sock`).
    pub fn socket(&self, role: SocketRole) -> PathBuf {
        let d = if self.daemon == "virtproxyd" {
            "libvirt"
        } else {
            &self.daemon
        };
        self.run_dir.join(match role {
            SocketRole::ReadWrite => format!("{d}-sock"),
            SocketRole::ReadOnly => format!("{d}-sock-ro"),
            SocketRole::Admin => format!("{d}-admin-sock"),
        })
    }

    /// The default configuration file `<config_dir>/<d>.conf`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join(format!("{}.conf", self.daemon))
    }

    /// The default log file when daemonized.
    pub fn log_file(&self) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.daemon))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_prefixes_every_path() {
        let p = RuntimePaths::under_root("virtqemud", Path::new("/tmp/r"));
        assert_eq!(
            p.socket(SocketRole::ReadWrite),
            Path::new("/tmp/r/run/libvirt/virtqemud-sock")
        );
        assert_eq!(
            p.socket(SocketRole::ReadOnly),
            Path::new("/tmp/r/run/libvirt/virtqemud-sock-ro")
        );
        assert_eq!(
            p.socket(SocketRole::Admin),
            Path::new("/tmp/r/run/libvirt/virtqemud-admin-sock")
        );
        assert_eq!(p.config_file(), Path::new("/tmp/r/etc/libvirt/virtqemud.conf"));
        assert_eq!(p.pid_file, Path::new("/tmp/r/run/virtqemud.pid"));
        assert_eq!(p.log_file(), Path::new("/tmp/r/var/log/libvirt/virtqemud.log"));
        assert_eq!(p.state_dir, Path::new("/tmp/r/var/lib/libvirt"));
    }

    #[test]
    fn system_and_session_layouts() {
        let s = RuntimePaths::system("virtqemud");
        assert_eq!(
            s.socket(SocketRole::ReadWrite),
            Path::new("/run/libvirt/virtqemud-sock")
        );
        assert_eq!(s.pid_file, Path::new("/run/virtqemud.pid"));
        let u = RuntimePaths::session(
            "virtqemud",
            Path::new("/home/u"),
            Some(Path::new("/run/user/1000")),
            None,
        );
        assert_eq!(
            u.socket(SocketRole::Admin),
            Path::new("/run/user/1000/libvirt/virtqemud-admin-sock")
        );
        assert_eq!(
            u.config_file(),
            Path::new("/home/u/.config/libvirt/virtqemud.conf")
        );
        let c = RuntimePaths::session("virtqemud", Path::new("/root"), None, None);
        assert_eq!(
            c.socket(SocketRole::Admin),
            Path::new("/root/.cache/libvirt/virtqemud-admin-sock")
        );
    }

    #[test]
    fn virtproxyd_serves_the_legacy_socket_names() {
        let p = RuntimePaths::under_root("virtproxyd", Path::new("/tmp/r"));
        assert_eq!(
            p.socket(SocketRole::ReadWrite),
            Path::new("/tmp/r/run/libvirt/libvirt-sock")
        );
        assert_eq!(
            p.socket(SocketRole::ReadOnly),
            Path::new("/tmp/r/run/libvirt/libvirt-sock-ro")
        );
        assert_eq!(
            p.socket(SocketRole::Admin),
            Path::new("/tmp/r/run/libvirt/libvirt-admin-sock")
        );
        assert_eq!(SocketRole::ReadOnly.fd_name("virtproxyd"), "virtproxyd-ro.socket");
    }

    #[test]
    fn fd_names_and_modes() {
        assert_eq!(SocketRole::ReadOnly.fd_name("virtqemud"), "virtqemud-ro.socket");
        assert_eq!(SocketRole::Admin.mode(), 0o600);
        assert_eq!(SocketRole::ReadWrite.mode(), 0o666);
    }
}
