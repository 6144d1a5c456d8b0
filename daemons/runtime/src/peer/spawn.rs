//! Starting a peer daemon that is not running, as libvirt's session mode
//! does (`virNetSocketNewConnectUNIX` with spawn): when its socket is
//! missing (or refuses: a stale file left by a crash) and no systemd socket
//! unit listens there, run `<binary> --timeout 120 --root ROOT` in its own
//! session, with `MODVIRT_SPAWNED_BY=<caller>:<PROCEDURE>` so that its
//! activation cause is `peer`, and connect again until the call's deadline.
//! Two callers racing to spawn the same daemon are harmless: the second
//! instance finds the first one's pid file lock and exits.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// How a peer daemon is started when it is not running.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpawnSpec {
    /// The daemon's executable.
    pub binary: PathBuf,
    /// Its arguments (`--timeout 120 --root ROOT`).
    pub args: Vec<String>,
}

/// libvirt's idle timeout for an auto-spawned daemon.
pub const SPAWN_TIMEOUT_S: u32 = 120;

impl SpawnSpec {
    /// `<dir of our own executable>/<daemon> --timeout 120 [--root ROOT]`.
    pub fn beside_self(daemon: &str, root: Option<&std::path::Path>) -> io::Result<SpawnSpec> {
        let exe = std::env::current_exe()?;
        let dir = exe
            .parent()
            .ok_or_else(|| io::Error::other("executable has no directory"))?;
        let mut args = vec!["--timeout".to_owned(), SPAWN_TIMEOUT_S.to_string()];
        if let Some(root) = root {
            args.push("--root".to_owned());
            args.push(root.display().to_string());
        }
        Ok(SpawnSpec {
            binary: dir.join(daemon),
            args,
        })
    }
}

/// Whether a failed connect means "nobody listens there" (spawn), rather
/// than e.g. a permission problem (report).
pub fn nobody_listens(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Starts the daemon, detached (own session, no inherited stdio), and reaps
/// it in the background when it exits.
pub fn start(spec: &SpawnSpec, caller: &str, procedure: &str) -> io::Result<u32> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(&spec.binary);
    cmd.args(&spec.args)
        .env(
            crate::observe::cause::SPAWNED_BY_ENV,
            format!("{caller}:{procedure}"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    tracing::info!(
        target: "rpc.peer",
        "started {} (pid {pid}) for {procedure}",
        spec.binary.display()
    );
    // Reap it whenever it exits (after its idle timeout, usually long after
    // this call), so it never lingers as a zombie of this daemon.
    std::thread::Builder::new()
        .name("peer-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        })?;
    Ok(pid)
}
