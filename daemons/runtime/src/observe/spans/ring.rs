//! The bounded ring of finished spans. Every span pushed gets the next
//! sequence number; a full ring forgets its oldest span. Readers page through
//! it with a cursor (the next sequence number they want) and learn how many
//! spans they missed because those were overwritten before being read.
//!
//! Built for calls on several cores at once: a push takes its sequence
//! number from one atomic counter and locks only its own slot (span `seq`
//! lives in slot `seq % capacity`), so two calls finishing together do not
//! wait for each other. Records are kept inline (a call span allocates
//! nothing) and readers get copies. Slots are allocated in chunks as the
//! ring first fills, so an idle daemon does not pay for a full ring.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use super::{CallFacts, SpanRecord};

/// Slots per lazily allocated chunk.
const CHUNK: usize = 256;

/// A span as kept: RPC call spans as their raw facts (small, no heap),
/// others whole.
#[derive(Debug)]
pub(super) enum Entry {
    Call(CallFacts),
    Span(Box<SpanRecord>),
}

impl Entry {
    fn to_record(&self) -> SpanRecord {
        match self {
            Entry::Call(c) => c.to_record(None),
            Entry::Span(s) => SpanRecord::clone(s),
        }
    }
}

/// One slot: one cache line, so a push (every call makes one) touches one
/// line of the ring, and neighbouring slots written by different cores at
/// once do not share one. It keeps the low 32 bits of its span's sequence
/// number: enough to tell a slot's span from one a whole ring (or 2³² rings)
/// older, which is all a reader asks.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot(Mutex<Option<(u32, Entry)>>);

const _: () = assert!(std::mem::size_of::<Slot>() == 64, "a ring slot is one cache line");

#[derive(Debug)]
pub(super) struct SpanRing {
    capacity: usize,
    chunks: Box<[OnceLock<Box<[Slot]>>]>,
    /// The sequence number the next span pushed gets.
    next_seq: AtomicU64,
}

/// One page read from the ring.
#[derive(Debug)]
pub(super) struct Read {
    pub(super) spans: Vec<(u64, SpanRecord)>,
    pub(super) next_cursor: u64,
    pub(super) missed: u64,
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<(u32, Entry)>> {
    // A slot is replaced whole: a panic cannot leave it half-written.
    slot.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the span in a slot (low bits `held`) is newer than span `seq` of
/// the same slot: within 2³¹ of it, ahead (wrapping).
fn lap_ahead(held: u32, seq: u64) -> bool {
    let d = held.wrapping_sub(seq as u32);
    d != 0 && d < 1 << 31
}

impl SpanRing {
    pub(super) fn new(capacity: usize) -> SpanRing {
        let capacity = capacity.max(1);
        SpanRing {
            capacity,
            chunks: (0..capacity.div_ceil(CHUNK)).map(|_| OnceLock::new()).collect(),
            next_seq: AtomicU64::new(0),
        }
    }

    fn slot(&self, seq: u64) -> &Slot {
        let at = (seq % self.capacity as u64) as usize;
        let chunk = self.chunks[at / CHUNK].get_or_init(|| {
            let len = CHUNK.min(self.capacity - at / CHUNK * CHUNK);
            (0..len).map(|_| Slot::default()).collect()
        });
        &chunk[at % CHUNK]
    }

    /// Adds a finished span and returns its sequence number. A full ring
    /// overwrites its oldest span in place.
    pub(super) fn push(&self, record: Entry) -> u64 {
        let seq = self.next_seq.fetch_add(1, Ordering::AcqRel);
        let evicted = {
            let mut slot = lock(self.slot(seq));
            match &*slot {
                // A push a whole ring later got here first: ours is older.
                Some((newer, _)) if lap_ahead(*newer, seq) => None,
                _ => slot.replace((seq as u32, record)),
            }
        };
        // Freed outside the lock.
        drop(evicted);
        seq
    }

    /// Spans with `seq >= cursor`, oldest first, at most `max`. A cursor past
    /// the newest span (a reader of a previous run of the daemon) reads as 0.
    /// A span whose push is still in progress ends the page (the next read
    /// starts there).
    pub(super) fn read(&self, cursor: u64, max: usize) -> Read {
        let next = self.next_seq.load(Ordering::Acquire);
        let cursor = if cursor > next { 0 } else { cursor };
        let oldest = next.saturating_sub(self.capacity as u64);
        let mut seq = cursor.max(oldest);
        let mut missed = oldest.saturating_sub(cursor);
        let mut spans = Vec::new();
        while seq < next && spans.len() < max {
            match &*lock(self.slot(seq)) {
                Some((s, entry)) if *s == seq as u32 => spans.push((seq, entry.to_record())),
                // Overwritten since `next` was read.
                Some((s, _)) if lap_ahead(*s, seq) => missed += 1,
                _ => break,
            }
            seq += 1;
        }
        Read {
            spans,
            next_cursor: seq,
            missed,
        }
    }

    /// Spans pushed since the ring was made.
    pub(super) fn recorded(&self) -> u64 {
        self.next_seq.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn record(n: u64) -> Entry {
        Entry::Span(Box::new(SpanRecord {
            trace_id: 1,
            span_id: n,
            parent_span_id: None,
            remote_parent: false,
            name: Cow::Borrowed("s"),
            start_unix_ns: 0,
            duration_ns: 0,
            attributes: Default::default(),
            dropped_attributes: 0,
        }))
    }

    fn filled(capacity: usize, n: u64) -> SpanRing {
        let ring = SpanRing::new(capacity);
        for i in 0..n {
            assert_eq!(ring.push(record(i)), i);
        }
        ring
    }

    fn seqs(read: &Read) -> Vec<u64> {
        read.spans.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn pages_follow_the_cursor() {
        let ring = filled(8, 5);
        let first = ring.read(0, 2);
        assert_eq!(seqs(&first), [0, 1]);
        assert_eq!((first.next_cursor, first.missed), (2, 0));
        let rest = ring.read(first.next_cursor, 100);
        assert_eq!(seqs(&rest), [2, 3, 4]);
        assert!(rest.spans.iter().all(|(seq, r)| r.span_id == *seq));
        assert_eq!(rest.next_cursor, 5);
        let empty = ring.read(5, 100);
        assert!(empty.spans.is_empty());
        assert_eq!((empty.next_cursor, empty.missed), (5, 0));
        ring.push(record(5));
        assert_eq!(seqs(&ring.read(5, 100)), [5]);
    }

    #[test]
    fn overwritten_spans_are_reported_missed() {
        let ring = filled(4, 10);
        assert_eq!(ring.recorded(), 10);
        let read = ring.read(0, 100);
        assert_eq!(seqs(&read), [6, 7, 8, 9]);
        assert_eq!((read.next_cursor, read.missed), (10, 6));
        let read = ring.read(5, 2);
        assert_eq!(seqs(&read), [6, 7]);
        assert_eq!((read.next_cursor, read.missed), (8, 1));
        // Even a page of nothing moves the cursor past what was lost.
        let read = ring.read(2, 0);
        assert!(read.spans.is_empty());
        assert_eq!((read.next_cursor, read.missed), (6, 4));
    }

    #[test]
    fn a_cursor_from_a_previous_run_reads_from_the_start() {
        let ring = filled(4, 3);
        let read = ring.read(1000, 100);
        assert_eq!(seqs(&read), [0, 1, 2]);
        assert_eq!((read.next_cursor, read.missed), (3, 0));
    }

    #[test]
    fn a_slot_tells_newer_spans_across_the_32_bit_wrap() {
        assert!(lap_ahead(9, 5));
        assert!(!lap_ahead(5, 5));
        assert!(!lap_ahead(5, 9), "an older span in the slot");
        // Span 2³² + 3 keeps the low bits 3: still newer than span 2³² − 2.
        assert!(lap_ahead(((1u64 << 32) + 3) as u32, (1u64 << 32) - 2));
        assert!(!lap_ahead(((1u64 << 32) - 2) as u32, (1u64 << 32) + 3));
    }

    #[test]
    fn capacity_is_at_least_one() {
        let ring = filled(0, 3);
        let read = ring.read(0, 10);
        assert_eq!(seqs(&read), [2]);
        assert_eq!(read.missed, 2);
    }

    #[test]
    fn concurrent_pushes_keep_every_span_once() {
        let ring = SpanRing::new(10_000);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let ring = &ring;
                s.spawn(move || {
                    for i in 0..2_000 {
                        ring.push(record(t * 1_000_000 + i));
                    }
                });
            }
        });
        let read = ring.read(0, 100_000);
        assert_eq!(read.spans.len(), 8_000);
        assert_eq!((read.next_cursor, read.missed), (8_000, 0));
        let mut ids: Vec<u64> = read.spans.iter().map(|(_, r)| r.span_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 8_000, "no span lost or doubled");
        assert!(
            read.spans.windows(2).all(|w| w[0].0 + 1 == w[1].0),
            "in sequence order"
        );
    }

    #[test]
    fn chunks_are_allocated_as_the_ring_fills() {
        let ring = filled(1000, 10);
        assert_eq!(ring.chunks.iter().filter(|c| c.get().is_some()).count(), 1);
        let ring = filled(1000, 1000);
        assert!(ring.chunks.iter().all(|c| c.get().is_some()));
        assert_eq!(
            ring.chunks.last().and_then(|c| c.get()).map(|c| c.len()),
            Some(1000 - 3 * CHUNK)
        );
    }
}
