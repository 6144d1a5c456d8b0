//! The bounded ring of finished spans. Every span pushed gets the next
//! sequence number; a full ring forgets its oldest span. Readers page through
//! it with a cursor (the next sequence number they want) and learn how many
//! spans they missed because those were overwritten before being read.
//!
//! Records are kept inline: pushing a call span moves it into the ring and
//! allocates nothing; readers get copies.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::SpanRecord;

#[derive(Debug)]
pub(super) struct SpanRing {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Span `seq` is at `seq % capacity` once pushed, until overwritten.
    spans: Vec<SpanRecord>,
    /// The sequence number the next span pushed gets; the oldest kept one
    /// is `next_seq - spans.len()`.
    next_seq: u64,
}

/// One page read from the ring.
#[derive(Debug)]
pub(super) struct Read {
    pub(super) spans: Vec<(u64, SpanRecord)>,
    pub(super) next_cursor: u64,
    pub(super) missed: u64,
}

impl SpanRing {
    pub(super) fn new(capacity: usize) -> SpanRing {
        let capacity = capacity.max(1);
        SpanRing {
            capacity,
            inner: Mutex::new(Inner {
                spans: Vec::with_capacity(capacity),
                next_seq: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` inconsistent:
        // every change is one push or pop plus one increment.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a finished span and returns its sequence number. A full ring
    /// overwrites its oldest span in place.
    pub(super) fn push(&self, record: SpanRecord) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        if inner.spans.len() < self.capacity {
            inner.spans.push(record);
        } else {
            let at = (seq % self.capacity as u64) as usize;
            inner.spans[at] = record;
        }
        seq
    }

    /// Spans with `seq >= cursor`, oldest first, at most `max`. A cursor past
    /// the newest span (a reader of a previous run of the daemon) reads as 0.
    pub(super) fn read(&self, cursor: u64, max: usize) -> Read {
        let inner = self.lock();
        let len = inner.spans.len() as u64;
        let oldest = inner.next_seq - len;
        let cursor = if cursor > inner.next_seq { 0 } else { cursor };
        let first = cursor.max(oldest);
        let missed = oldest.saturating_sub(cursor);
        let cap = self.capacity as u64;
        let spans: Vec<(u64, SpanRecord)> = (first..inner.next_seq)
            .take(max)
            .map(|seq| (seq, inner.spans[(seq % cap) as usize].clone()))
            .collect();
        Read {
            next_cursor: first + spans.len() as u64,
            spans,
            missed,
        }
    }

    /// Spans pushed since the ring was made.
    pub(super) fn recorded(&self) -> u64 {
        self.lock().next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn record(n: u64) -> SpanRecord {
        SpanRecord {
            trace_id: 1,
            span_id: n,
            parent_span_id: None,
            remote_parent: false,
            name: Cow::Borrowed("s"),
            start_unix_ns: 0,
            duration_ns: 0,
            attributes: Default::default(),
            dropped_attributes: 0,
        }
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
    fn capacity_is_at_least_one() {
        let ring = filled(0, 3);
        let read = ring.read(0, 10);
        assert_eq!(seqs(&read), [2]);
        assert_eq!(read.missed, 2);
    }
}
