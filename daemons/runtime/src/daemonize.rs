//! `-d/--daemon`: fork, detach, and tell the parent whether start-up worked.
//!
//! The parent waits on a pipe: the daemon writes one status byte (0 = ready)
//! followed by an error message when it fails, so `virtqemud -d` exits 0
//! only once the daemon serves, and otherwise prints the reason and exits 1
//! — as libvirt's daemons do. Must run before any thread exists.

use nix::unistd::{ForkResult, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe, setsid};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// The daemon's end of the start-up pipe.
#[derive(Debug)]
pub struct StartupReport {
    pipe: Option<File>,
}

impl StartupReport {
    /// No parent is waiting (foreground mode).
    pub fn none() -> Self {
        Self { pipe: None }
    }

    /// Tells the waiting parent how start-up ended; only the first report counts.
    pub fn report(&mut self, result: Result<(), &str>) {
        if let Some(mut p) = self.pipe.take() {
            let _ = match result {
                Ok(()) => p.write_all(&[0]),
                Err(msg) => p.write_all(&[1]).and_then(|_| p.write_all(msg.as_bytes())),
            };
        }
    }
}

/// Forks twice and detaches. Returns in the daemon process only; the
/// original process exits with the daemon's start-up status.
///
/// # Safety
/// The process must be single-threaded.
pub unsafe fn daemonize(name: &str) -> std::io::Result<StartupReport> {
    let (rd, wr): (OwnedFd, OwnedFd) = pipe()?;
    // SAFETY: single-threaded, guaranteed by the caller.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => {
            drop(wr);
            let mut status = Vec::new();
            let _ = File::from(rd).read_to_end(&mut status);
            match status.split_first() {
                Some((0, _)) => std::process::exit(0),
                Some((_, msg)) => {
                    eprintln!("{name}: error: {}", String::from_utf8_lossy(msg));
                    std::process::exit(1)
                }
                None => {
                    eprintln!("{name}: error: the daemon exited during start-up");
                    std::process::exit(1)
                }
            }
        }
        ForkResult::Child => {}
    }
    drop(rd);
    setsid()?;
    // SAFETY: still single-threaded.
    if let ForkResult::Parent { .. } = unsafe { fork() }? {
        // SAFETY: the intermediate process exits without running destructors.
        unsafe { nix::libc::_exit(0) };
    }
    std::env::set_current_dir("/")?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    dup2_stdin(&null)?;
    dup2_stdout(&null)?;
    dup2_stderr(&null)?;
    Ok(StartupReport {
        pipe: Some(File::from(wr)),
    })
}
