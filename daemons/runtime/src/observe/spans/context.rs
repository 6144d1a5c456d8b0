//! Trace and span ids, and W3C Trace Context `traceparent` headers
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>):
//! `VV-TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT-SSSSSSSSSSSSSSSS-FF`, lowercase hex,
//! version `00`; an all-zero trace or span id is invalid, version `ff` too.
//! Later versions may append `-…` fields, which are ignored.
//!
//! Ids come from a SplitMix64 sequence whose seed is hashed once per process
//! from std's randomly keyed `RandomState`, the pid and the time: span ids are
//! unique within a process (the sequence is a bijection of a counter) and
//! unpredictable across processes, without a `rand` dependency.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A span's place in a trace, as a `traceparent` carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub span_id: u64,
    /// W3C trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

/// A trace context that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanContextError {
    #[error("invalid traceparent '{value}': {reason}")]
    InvalidTraceparent { value: String, reason: &'static str },
    #[error("the span is not recorded by the span layer")]
    NotRecorded,
}

/// `traceparent` is exactly this long in version 00.
const TRACEPARENT_LEN: usize = 55;

impl TraceContext {
    /// Parses a W3C `traceparent` header value.
    pub fn parse(value: &str) -> Result<TraceContext, SpanContextError> {
        let invalid = |reason| SpanContextError::InvalidTraceparent {
            // The value comes from a peer: show a bounded, printable part of it.
            value: value.chars().take(64).filter(|c| !c.is_control()).collect(),
            reason,
        };
        let b = value.trim().as_bytes();
        if b.len() < TRACEPARENT_LEN {
            return Err(invalid("too short"));
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(invalid("expected VV-<32 hex>-<16 hex>-FF"));
        }
        let version = hex(&b[0..2]).ok_or_else(|| invalid("bad version"))?;
        if version == 0xff {
            return Err(invalid("version ff is invalid"));
        }
        if version == 0 && b.len() != TRACEPARENT_LEN {
            return Err(invalid("version 00 has exactly 4 fields"));
        }
        if b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-' {
            return Err(invalid("expected '-' after the flags"));
        }
        let trace_id = hex(&b[3..35]).ok_or_else(|| invalid("bad trace id"))?;
        let span_id = hex(&b[36..52]).ok_or_else(|| invalid("bad parent id"))?;
        let flags = hex(&b[53..55]).ok_or_else(|| invalid("bad flags"))?;
        if trace_id == 0 {
            return Err(invalid("the trace id is all zeros"));
        }
        if span_id == 0 {
            return Err(invalid("the parent id is all zeros"));
        }
        // The values fit: 16 and 2 hex digits.
        Ok(TraceContext {
            trace_id,
            span_id: span_id as u64,
            flags: flags as u8,
        })
    }

    /// The version-00 `traceparent`; always marked sampled, since every span
    /// is recorded.
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            format_trace_id(self.trace_id),
            format_span_id(self.span_id),
            self.flags | 1
        )
    }
}

/// Lowercase hex digits only, as W3C requires; at most 32 of them.
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(v))
    })
}

pub(super) fn format_trace_id(id: u128) -> String {
    format!("{id:032x}")
}

pub(super) fn format_span_id(id: u64) -> String {
    format!("{id:016x}")
}

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        hasher.write_u128(now.as_nanos());
        hasher.finish()
    })
}

/// The SplitMix64 output function: a bijection on `u64`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// `N` fresh, non-zero ids. Each thread numbers its own ids (no shared
/// counter for the cores to fight over): id inputs are `thread << 40 |
/// n`, distinct across threads and calls, and `mix` of distinct inputs
/// (times an odd constant, plus the seed) are distinct outputs.
fn next_ids<const N: usize>() -> [u64; N] {
    static THREADS: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static NEXT: std::cell::Cell<u64> = std::cell::Cell::new(THREADS.fetch_add(1, Ordering::Relaxed) << 40);
    }
    let seed = seed();
    NEXT.with(|next| {
        let mut ids = [0; N];
        let mut filled = 0;
        while filled < N {
            let n = next.get();
            next.set(n.wrapping_add(1));
            let id = mix(seed.wrapping_add(n.wrapping_mul(GOLDEN)));
            if id != 0 {
                ids[filled] = id;
                filled += 1;
            }
        }
        ids
    })
}

/// The ids of the span of call number `call` (numbers are unique within a
/// run; the seed differs between runs): no counter or generator touched on
/// the call's path. `mix` is a bijection, so distinct calls get distinct ids.
pub(super) fn call_ids(call: u64) -> (u128, u64) {
    static SALTED: OnceLock<[u64; 3]> = OnceLock::new();
    let salted = SALTED.get_or_init(|| {
        let seed = seed();
        [
            0x7472_6163_6568_6921,
            0x7472_6163_656c_6f21,
            0x7370_616e_6964_2121,
        ]
        .map(|salt| mix(seed ^ salt))
    });
    let at = |i: usize| match mix(salted[i].wrapping_add(call.wrapping_mul(GOLDEN))) {
        0 => 1,
        id => id,
    };
    (u128::from(at(0)) << 64 | u128::from(at(1)), at(2))
}

/// A fresh, non-zero span id.
pub(super) fn new_span_id() -> u64 {
    let [id] = next_ids::<1>();
    id
}

/// A fresh, non-zero trace id.
pub(super) fn new_trace_id() -> u128 {
    let [hi, lo] = next_ids::<2>();
    u128::from(hi) << 64 | u128::from(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_w3c_example() {
        let ctx = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(ctx.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(ctx.span_id, 0x00f067aa0ba902b7);
        assert_eq!(ctx.flags, 1);
        assert_eq!(ctx.to_traceparent(), EXAMPLE);
    }

    #[test]
    fn later_versions_may_carry_more_fields() {
        let v = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        let ctx = TraceContext::parse(v).unwrap();
        assert_eq!(ctx.span_id, 0x00f067aa0ba902b7);
        assert_eq!(ctx.flags, 0);
        assert_eq!(
            ctx.to_traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn rejects_malformed_values() {
        let bad = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ];
        for value in bad {
            assert!(
                matches!(
                    TraceContext::parse(value),
                    Err(SpanContextError::InvalidTraceparent { .. })
                ),
                "{value:?} was accepted"
            );
        }
    }

    #[test]
    fn errors_show_a_bounded_printable_value() {
        let hostile = format!("\n{}", "0".repeat(10_000));
        let err = TraceContext::parse(&hostile).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn call_ids_are_distinct_per_call() {
        let ids: Vec<(u128, u64)> = (1..=20_000).map(call_ids).collect();
        let traces: HashSet<u128> = ids.iter().map(|i| i.0).collect();
        let spans: HashSet<u64> = ids.iter().map(|i| i.1).collect();
        assert_eq!((traces.len(), spans.len()), (20_000, 20_000));
        assert_eq!(call_ids(7), call_ids(7), "derived, not drawn");
        assert!(
            ids.iter()
                .all(|(t, s)| *s != 0 && (t >> 64) != 0 && *t as u64 != 0)
        );
    }

    #[test]
    fn ids_of_different_threads_never_collide() {
        let all: Vec<u64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..5_000).map(|_| new_span_id()).collect::<Vec<_>>()))
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let unique: HashSet<u64> = all.iter().copied().collect();
        assert_eq!(unique.len(), 20_000);
    }

    #[test]
    fn ids_are_unique_and_non_zero() {
        let spans: HashSet<u64> = (0..10_000).map(|_| new_span_id()).collect();
        assert_eq!(spans.len(), 10_000);
        assert!(!spans.contains(&0));
        let traces: HashSet<u128> = (0..1000).map(|_| new_trace_id()).collect();
        assert_eq!(traces.len(), 1000);
        assert!(
            traces
                .iter()
                .all(|t| (t >> 64) != 0 && (t & u128::from(u64::MAX)) != 0)
        );
        assert_eq!(format_trace_id(1), "00000000000000000000000000000001");
        assert_eq!(format_span_id(0xab), "00000000000000ab");
    }
}
