//! Building blocks of `modvirt-rpc-bench`, which compares an RPC daemon
//! (Debian's `libvirtd`, our `virtqemud`) with a raw UNIX-socket echo of the
//! same frame sizes:
//!
//! - [`coldstart`]: exec of the daemon → first answered `AUTH_LIST`;
//! - [`procstat`]: idle `VmRSS` / `Threads` from `/proc/PID/status`;
//! - [`rtt`]: round trips per second of `CONNECT_GET_LIB_VERSION` (REMOTE
//!   157, no arguments, returns a `u64`: a 28-byte call, a 36-byte reply) on
//!   one or many connections, one thread per connection;
//! - [`echo`]: the baseline server, which answers every `CALL` frame with a
//!   well-formed 36-byte `REPLY` (same program, procedure and serial, status
//!   OK, an 8-byte payload) without looking at the payload, so the same
//!   client loop runs against it unchanged.

pub mod coldstart;
pub mod echo;
pub mod procstat;
pub mod rtt;

use std::time::Duration;

/// min / median / max of a set of measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Summary {
    /// Summarizes `values` (sorted in place); `None` when empty. The median
    /// of an even count is the mean of the two middle values.
    pub fn of(values: &mut [f64]) -> Option<Summary> {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let (&min, &max) = (values.first()?, values.last()?);
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Summary { n, min, median, max })
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} / {:.2} / {:.2} (min / median / max, n={})",
            self.min, self.median, self.max, self.n
        )
    }
}

/// A duration in fractional milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_odd_even_and_empty() {
        let s = Summary::of(&mut [3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.n, s.min, s.median, s.max), (3, 1.0, 2.0, 3.0));
        let s = Summary::of(&mut [4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Summary::of(&mut []).is_none());
    }
}
