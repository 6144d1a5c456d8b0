//! Is the process a state file names still the one that wrote it?
//!
//! A pid alone proves nothing: pids are reused. A daemon records its start
//! time (`/proc/PID/stat` field 22, clock ticks after boot) in its state
//! file; the process is the same one only if the pid exists, is not a
//! zombie, and has that start time.

use std::fs;
use std::io;

/// What `/proc/PID/stat` says about a pid a state file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The pid exists, with the recorded start time.
    Alive,
    /// No such process (or a pid that cannot be one).
    Gone,
    /// The process has exited but was not reaped yet.
    Zombie,
    /// Another process has the pid now.
    Reused { start_ticks: u64 },
    /// `/proc/PID/stat` could not be read or parsed.
    Unknown,
}

/// The fields of `/proc/PID/stat` discovery needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `Z`, …
    pub state: char,
    /// Field 22: start time in clock ticks after boot.
    pub start_ticks: u64,
}

/// Parses the text of `/proc/PID/stat`. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields
/// are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state); field 22 is 19 further.
    let state = fields.next()?.chars().next()?;
    let start_ticks = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_ticks })
}

/// Reads `/proc/<pid>/stat`; `Ok(None)` if there is no such process.
pub fn read_stat(pid: i32) -> io::Result<Option<ProcStat>> {
    if pid <= 0 {
        return Ok(None);
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => parse_stat(&text)
            .map(Some)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/PID/stat")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks `pid` against the start time a state file recorded; a recorded
/// 0 means the daemon could not read its own, and only the pid is checked.
pub fn liveness(pid: i32, recorded_start_ticks: u64) -> Liveness {
    match read_stat(pid) {
        Ok(None) => Liveness::Gone,
        Ok(Some(s)) if recorded_start_ticks != 0 && s.start_ticks != recorded_start_ticks => {
            Liveness::Reused {
                start_ticks: s.start_ticks,
            }
        }
        Ok(Some(s)) if s.state == 'Z' || s.state == 'X' => Liveness::Zombie,
        Ok(Some(_)) => Liveness::Alive,
        Err(_) => Liveness::Unknown,
    }
}

/// The calling process's own start time (tests write it into fixtures).
pub fn own_start_ticks() -> io::Result<u64> {
    let text = fs::read_to_string("/proc/self/stat")?;
    parse_stat(&text)
        .map(|s| s.start_ticks)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/self/stat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_field_22_after_a_hostile_comm() {
        let text = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 12 3 0 0 20 0 1 0 987654 \
                    123456 789 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 3 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(text),
            Some(ProcStat {
                state: 'S',
                start_ticks: 987_654
            })
        );
        assert_eq!(parse_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_tick_is_reuse() {
        let me = std::process::id() as i32;
        let ticks = own_start_ticks().unwrap();
        assert_eq!(liveness(me, ticks), Liveness::Alive);
        assert_eq!(liveness(me, ticks + 1), Liveness::Reused { start_ticks: ticks });
        assert_eq!(liveness(me, 0), Liveness::Alive, "0: not recorded");
        assert_eq!(liveness(0, 1), Liveness::Gone);
        assert_eq!(liveness(-5, 1), Liveness::Gone);
        // pid_max is at most 2^22.
        assert_eq!(liveness(i32::MAX, 1), Liveness::Gone);
    }
}
