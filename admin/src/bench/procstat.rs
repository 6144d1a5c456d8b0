//! A process's memory and thread count, from `/proc/PID/status`
//! (`VmRSS` and `VmHWM` in KiB, `Threads`), the figures the libvirt
//! reference measurements quote.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProcStatError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: no usable {field} line", path.display())]
    Missing { path: PathBuf, field: &'static str },
}

/// What `/proc/PID/status` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStatus {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
}

impl ProcStatus {
    /// Reads `/proc/<pid>/status`.
    pub fn read(pid: u32) -> Result<ProcStatus, ProcStatError> {
        let path = PathBuf::from(format!("/proc/{pid}/status"));
        let text = std::fs::read_to_string(&path).map_err(|source| ProcStatError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|field| ProcStatError::Missing { path, field })
    }

    /// Parses the text of a status file; the error names the missing field.
    pub fn parse(text: &str) -> Result<ProcStatus, &'static str> {
        let field = |name: &'static str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .ok_or(name)
        };
        Ok(ProcStatus {
            rss_kib: field("VmRSS")?,
            hwm_kib: field("VmHWM")?,
            threads: field("Threads")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_text() {
        let text = "Name:\tlibvirtd\nVmHWM:\t   25100 kB\nVmRSS:\t   24916 kB\nThreads:\t18\n";
        assert_eq!(
            ProcStatus::parse(text),
            Ok(ProcStatus {
                rss_kib: 24916,
                hwm_kib: 25100,
                threads: 18
            })
        );
        assert_eq!(ProcStatus::parse("Threads:\t1\n"), Err("VmRSS"));
    }

    #[test]
    fn reads_own_status() {
        let me = ProcStatus::read(std::process::id()).unwrap();
        assert!(me.rss_kib > 0 && me.threads >= 1);
    }
}
