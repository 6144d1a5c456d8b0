//! The observer's side of a daemon's exit gate (the daemon's side and the
//! protocol are described in `modvirt_runtime::observe::gate`): a shared
//! `flock`, taken without waiting, held from the liveness check until the
//! daemon has answered OBSERVE `OPEN`.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::Path;

/// The gate let us in; hold this until the daemon has accepted us.
#[derive(Debug)]
pub struct Pass {
    _lock: Option<Flock<File>>,
}

/// The daemon holds the gate: it is exiting, and must not be connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exiting;

/// Enters the gate at `path`. A daemon without a gate (an older state
/// file) or a gate file that cannot be opened lets us in unguarded: the
/// liveness check alone then decides, as before gates existed.
pub fn enter(path: Option<&str>) -> Result<Pass, Exiting> {
    let Some(file) = path.and_then(|p| File::open(Path::new(p)).ok()) else {
        return Ok(Pass { _lock: None });
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(lock) => Ok(Pass { _lock: Some(lock) }),
        Err((_, Errno::EWOULDBLOCK)) => Err(Exiting),
        Err(_) => Ok(Pass { _lock: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observers_share_the_gate_and_an_exiting_daemon_closes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.gate");
        std::fs::write(&path, b"").unwrap();
        let p = path.to_str().unwrap();
        let a = enter(Some(p)).unwrap();
        let b = enter(Some(p)).unwrap();
        assert!(Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusiveNonblock).is_err());
        drop((a, b));
        let daemon = Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusiveNonblock).unwrap();
        assert_eq!(enter(Some(p)).unwrap_err(), Exiting);
        drop(daemon);
        assert!(enter(Some(p)).is_ok());
    }

    #[test]
    fn no_gate_lets_observers_in() {
        assert!(enter(None).is_ok());
        assert!(enter(Some("/nonexistent/d.gate")).is_ok());
    }
}
