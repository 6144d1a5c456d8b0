//! This process's resource usage, read from `/proc/self` for STATUS and the
//! `modvirt_process_*` metrics: three small reads, no allocation beyond the
//! files' text.

use modvirt_wire::observe::ProcessStats;
use nix::unistd::{SysconfVar, sysconf};
use std::sync::OnceLock;

/// Clock ticks per second of `/proc/PID/stat`'s times (`USER_HZ`).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        // USER_HZ is 100 on every Linux architecture we build for.
        _ => 100.0,
    })
}

/// Resident memory, CPU time, open descriptors and threads of this process.
/// A field that cannot be read is 0 (a metric must never fail a scrape).
pub fn process_stats() -> ProcessStats {
    let (rss_bytes, threads) = std::fs::read_to_string("/proc/self/status")
        .map(|s| parse_status(&s))
        .unwrap_or((0, 0));
    let cpu_seconds = cpu_time("self").map_or(0.0, |t| t.as_secs_f64());
    ProcessStats {
        rss_bytes,
        cpu_seconds,
        open_fds: open_fds(),
        threads,
    }
}

/// CPU time (user + system) of process `pid` (a number, or `self`) so far.
pub fn cpu_time(pid: &str) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(std::time::Duration::from_secs_f64(
        cpu_ticks(&stat)? as f64 / ticks_per_second(),
    ))
}

/// `VmRSS` (in bytes) and `Threads` from `/proc/PID/status`.
fn parse_status(text: &str) -> (u64, u32) {
    let mut rss = 0;
    let mut threads = 0;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            // "   12345 kB"
            let kib = v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
            rss = kib.unwrap_or(0).saturating_mul(1024);
        } else if let Some(v) = line.strip_prefix("Threads:") {
            threads = v.trim().parse().unwrap_or(0);
        }
    }
    (rss, threads)
}

/// `utime + stime` (fields 14 and 15) of `/proc/PID/stat`. The command
/// (field 2) may hold spaces and parentheses, so fields are counted after the
/// last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state): utime is its 12th field.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Entries of `/proc/self/fd`, less the descriptor used to list them.
fn open_fds() -> u32 {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => u32::try_from(dir.count()).unwrap_or(u32::MAX).saturating_sub(1),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tx\nVmRSS:\t    2048 kB\nThreads:\t7\n";
        assert_eq!(parse_status(status), (2048 * 1024, 7));
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 7 0 12345 0";
        assert_eq!(cpu_ticks(stat), Some(280));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let before = process_stats();
        assert!(before.rss_bytes > 0, "{before:?}");
        assert!(before.threads >= 1, "{before:?}");
        // stdin, stdout, stderr at least; the listing's own descriptor is not counted.
        assert!(before.open_fds >= 3, "{before:?}");
        // Burn a little CPU: the counter never goes back.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_stats().cpu_seconds >= before.cpu_seconds);
    }
}
