//! The exit gate: closes the race between an observer's "is it alive?"
//! check and its connect (rule 1: observing never wakes a sleeping daemon).
//!
//! Without it, a daemon could idle-exit right after an observer found it
//! alive; under socket activation the observer's connect would then land
//! in systemd's listening socket and start the daemon again. The gate is a
//! file next to the state file (`<d>.gate`, named in the state file as
//! `exit_gate`), locked with `flock`:
//!
//! - an observer takes a shared lock without waiting, checks that the
//!   daemon is alive, connects and waits for the OBSERVE `OPEN` reply (the
//!   daemon has accepted the connection), then lets go. If the shared lock
//!   is refused the daemon is exiting and the observer does not connect;
//! - the daemon, once its idle timeout expires, takes the exclusive lock
//!   before it stops accepting, and holds it until the process ends. While
//!   observers are between their check and their `OPEN`, it waits for them
//!   — at most [`MAX_WAIT`], so a stuck observer cannot keep it awake
//!   (rule 2) — and if a real client arrived meanwhile, it stays.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest a daemon waits for observers that are connecting.
pub const MAX_WAIT: Duration = Duration::from_secs(2);
/// How often it looks again while they hold the gate.
const RETRY: Duration = Duration::from_millis(5);

/// The daemon's side of the gate.
#[derive(Debug, Clone)]
pub struct ExitGate {
    path: PathBuf,
}

/// Held from the moment the daemon decided to exit until it is gone.
#[derive(Debug)]
pub struct ClosedGate {
    _lock: Option<Flock<File>>,
}

/// How closing the gate went.
#[derive(Debug)]
pub enum Closing {
    /// Closed (or no gate could be used): exit.
    Exit(ClosedGate),
    /// The daemon is no longer idle: keep serving.
    Stay,
}

impl ExitGate {
    /// Makes sure the gate file exists (readable by all, so observers that
    /// are not root can take the shared lock).
    pub fn prepare(path: &Path) -> std::io::Result<ExitGate> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(path)?;
        Ok(ExitGate {
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the exclusive lock for the exit, waiting for connecting
    /// observers at most `max_wait`, as long as `still_idle()` holds.
    pub async fn close(&self, still_idle: impl Fn() -> bool, max_wait: Duration) -> Closing {
        let give_up = tokio::time::Instant::now() + max_wait;
        loop {
            let file = match OpenOptions::new().read(true).open(&self.path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(target: "observe.state", "exit gate {} unusable: {e}", self.path.display());
                    return Closing::Exit(ClosedGate { _lock: None });
                }
            };
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) if still_idle() => return Closing::Exit(ClosedGate { _lock: Some(lock) }),
                Ok(_) => return Closing::Stay,
                Err(_) if !still_idle() => return Closing::Stay,
                Err(_) if tokio::time::Instant::now() >= give_up => {
                    tracing::info!(
                        target: "observe.state",
                        "observers held the exit gate for {} ms: exiting anyway",
                        max_wait.as_millis()
                    );
                    return Closing::Exit(ClosedGate { _lock: None });
                }
                Err(_) => tokio::time::sleep(RETRY).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn shared(path: &Path) -> Flock<File> {
        Flock::lock(File::open(path).unwrap(), FlockArg::LockSharedNonblock).unwrap()
    }

    #[tokio::test]
    async fn closes_at_once_when_no_observer_is_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let gate = ExitGate::prepare(&dir.path().join("d.gate")).unwrap();
        let Closing::Exit(closed) = gate.close(|| true, MAX_WAIT).await else {
            panic!("must exit");
        };
        assert!(closed._lock.is_some());
        // Observers are now refused.
        let refused = Flock::lock(File::open(gate.path()).unwrap(), FlockArg::LockSharedNonblock);
        assert!(refused.is_err(), "a closed gate refuses observers");
        drop(closed);
        drop(shared(gate.path()));
    }

    #[tokio::test]
    async fn waits_for_a_connecting_observer() {
        let dir = tempfile::tempdir().unwrap();
        let gate = ExitGate::prepare(&dir.path().join("d.gate")).unwrap();
        let observer = shared(gate.path());
        let released = std::sync::Arc::new(AtomicBool::new(false));
        let r = released.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            r.store(true, Ordering::SeqCst);
            drop(observer);
        });
        let Closing::Exit(closed) = gate.close(|| true, MAX_WAIT).await else {
            panic!("must exit");
        };
        assert!(
            released.load(Ordering::SeqCst),
            "closed only after the observer let go"
        );
        assert!(closed._lock.is_some());
        t.join().unwrap();
    }

    #[tokio::test]
    async fn a_stuck_observer_cannot_keep_the_daemon_awake() {
        let dir = tempfile::tempdir().unwrap();
        let gate = ExitGate::prepare(&dir.path().join("d.gate")).unwrap();
        let _stuck = shared(gate.path());
        let started = std::time::Instant::now();
        let Closing::Exit(closed) = gate.close(|| true, Duration::from_millis(50)).await else {
            panic!("must exit");
        };
        assert!(closed._lock.is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_client_arriving_meanwhile_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let gate = ExitGate::prepare(&dir.path().join("d.gate")).unwrap();
        assert!(matches!(gate.close(|| false, MAX_WAIT).await, Closing::Stay));
        // The lock taken and found useless was let go.
        drop(shared(gate.path()));
    }
}
