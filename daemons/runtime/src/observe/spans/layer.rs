//! The `tracing` layer that records spans: ids and start time when a span is
//! created, its fields as they are recorded, and a [`SpanRecord`] for the ring
//! and the exporter when it closes. The per-span state lives in the span's
//! registry extensions, so recording takes no lock of ours.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::context::{self, TraceContext};
use super::{Shared, SpanRecord};

/// Attributes kept per span; more are counted, not kept.
const MAX_ATTRIBUTES: usize = 64;
/// Longer attribute values are cut (at a character boundary) and end in `…`.
const MAX_VALUE_LEN: usize = 1024;

/// Records spans into a [`super::SpanRecorder`]. It never disables a
/// callsite, so the layers beside it see everything they would without it.
#[derive(Clone, Debug)]
pub struct SpanLayer {
    shared: Arc<Shared>,
    max_level: Level,
}

impl SpanLayer {
    pub(super) fn new(shared: Arc<Shared>) -> SpanLayer {
        SpanLayer {
            shared,
            max_level: Level::INFO,
        }
    }

    /// Records spans at `level` and more severe (default `INFO`): the
    /// `DEBUG`/`TRACE` spans that libraries create stay out of the ring.
    pub fn with_max_level(self, level: Level) -> SpanLayer {
        SpanLayer {
            max_level: level,
            ..self
        }
    }
}

/// What the layer keeps in a recorded span's extensions until it closes.
#[derive(Debug)]
pub(super) struct SpanData {
    trace_id: u128,
    span_id: u64,
    parent_span_id: Option<u64>,
    remote_parent: bool,
    start_system: SystemTime,
    start: Instant,
    fields: Fields,
}

impl SpanData {
    pub(super) fn context(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
            flags: 1,
        }
    }

    /// Makes this span a child of `remote`, a span of another process.
    pub(super) fn continue_remote(&mut self, remote: TraceContext) {
        self.trace_id = remote.trace_id;
        self.parent_span_id = Some(remote.span_id);
        self.remote_parent = true;
    }

    fn finish(self, name: &'static str) -> SpanRecord {
        let start_unix_ns = self
            .start_system
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let duration_ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // `otel.name` (if any) stays an attribute: it replaces the name
        // when the record is read or exported, not on the call path.
        let name = Cow::Borrowed(name);
        SpanRecord {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            remote_parent: self.remote_parent,
            name,
            start_unix_ns,
            duration_ns,
            attributes: self.fields.attributes,
            dropped_attributes: self.fields.dropped,
        }
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if *attrs.metadata().level() > self.max_level {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        // The nearest recorded ancestor: unrecorded (e.g. DEBUG) spans between
        // are skipped, so the trace stays connected.
        let parent = span
            .scope()
            .skip(1)
            .find_map(|ancestor| ancestor.extensions().get::<SpanData>().map(SpanData::context));
        let (trace_id, parent_span_id) = match parent {
            Some(parent) => (parent.trace_id, Some(parent.span_id)),
            None => (context::new_trace_id(), None),
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanData {
            trace_id,
            span_id: context::new_span_id(),
            parent_span_id,
            remote_parent: false,
            start_system: SystemTime::now(),
            start: Instant::now(),
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        if let Some(data) = span.extensions_mut().get_mut::<SpanData>() {
            values.record(&mut data.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(data) = span.extensions_mut().remove::<SpanData>() else {
            return;
        };
        self.shared.finish(data.finish(span.name()));
    }
}

/// A span's fields as string attributes, in the order first recorded.
/// A span's attributes in two allocations: every value in one string
/// buffer, and an index of (key, start, end) into it. Replacing a value
/// appends the new one (the old bytes stay until the span closes).
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Attrs {
    buf: String,
    items: Vec<(&'static str, u32, u32)>,
    /// An RPC call span's attributes, kept compact (no allocation) and
    /// spelled out only when read or exported.
    call: Option<CallAttrs>,
}

/// The attributes of a call span recorded by `SpanRecorder::record_call`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CallAttrs {
    pub(super) service: &'static str,
    pub(super) method: &'static str,
    pid: [u8; 12],
    pid_len: u8,
    pub(super) ok: bool,
}

impl CallAttrs {
    pub(super) fn new(service: &'static str, method: &'static str, client_pid: i32, ok: bool) -> CallAttrs {
        // Decimal digits by hand, right-aligned: `write!` costs more than the
        // rest of the span on the call's hot path.
        let mut digits = [0u8; 12];
        let mut at = digits.len();
        let mut n = client_pid.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if client_pid < 0 {
            at -= 1;
            digits[at] = b'-';
        }
        let mut pid = [0u8; 12];
        let len = digits.len() - at;
        pid[..len].copy_from_slice(&digits[at..]);
        CallAttrs {
            service,
            method,
            pid,
            pid_len: len as u8,
            ok,
        }
    }

    fn pid(&self) -> &str {
        std::str::from_utf8(&self.pid[..usize::from(self.pid_len)]).unwrap_or("")
    }

    fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let fixed = [
            ("otel.kind", "server"),
            ("rpc.system", "libvirt"),
            ("rpc.service", self.service),
            ("rpc.method", self.method),
        ];
        let result = if self.ok { "ok" } else { "error" };
        fixed
            .into_iter()
            .chain([("rpc.client_pid", self.pid()), ("rpc.result", result)])
            .chain((!self.ok).then_some(("otel.status_code", "ERROR")))
    }
}

impl Attrs {
    pub(super) fn with_capacity(items: usize, bytes: usize) -> Attrs {
        Attrs {
            buf: String::with_capacity(bytes),
            items: Vec::with_capacity(items),
            call: None,
        }
    }

    /// A call span's attributes (see [`CallAttrs`]).
    pub(super) fn call(call: CallAttrs) -> Attrs {
        Attrs {
            call: Some(call),
            ..Attrs::default()
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.call.iter().flat_map(CallAttrs::pairs).chain(
            self.items
                .iter()
                .map(|&(k, a, b)| (k, &self.buf[a as usize..b as usize])),
        )
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Appends `value` (already cut to size) for `key`; false if there was
    /// no room for a new key.
    fn put(&mut self, key: &'static str, write: impl FnOnce(&mut String)) -> bool {
        let start = self.buf.len();
        write(&mut self.buf);
        let end = self.buf.len();
        if let Some(slot) = self.items.iter_mut().find(|(k, _, _)| *k == key) {
            *slot = (key, start as u32, end as u32);
            true
        } else if self.items.len() < MAX_ATTRIBUTES {
            self.items.push((key, start as u32, end as u32));
            true
        } else {
            self.buf.truncate(start);
            false
        }
    }

    #[cfg(test)]
    pub(super) fn from_pairs(pairs: &[(&'static str, &str)]) -> Attrs {
        let mut a = Attrs::default();
        for (k, v) in pairs {
            a.put(k, |b| b.push_str(v));
        }
        a
    }
}

#[derive(Debug)]
struct Fields {
    attributes: Attrs,
    dropped: u32,
}

impl Default for Fields {
    fn default() -> Fields {
        // Sized for an RPC call span: ~10 fields, short values.
        Fields {
            attributes: Attrs::with_capacity(12, 160),
            dropped: 0,
        }
    }
}

impl Fields {
    #[cfg(test)]
    fn get(&self, key: &str) -> Option<&str> {
        self.attributes.get(key)
    }

    /// Stores a value, cut to [`MAX_VALUE_LEN`] bytes (marked with `…`).
    fn set_str(&mut self, key: &'static str, value: &str) {
        let ok = self.attributes.put(key, |buf| {
            if value.len() > MAX_VALUE_LEN {
                let mut end = MAX_VALUE_LEN;
                while !value.is_char_boundary(end) {
                    end -= 1;
                }
                buf.push_str(&value[..end]);
                buf.push('…');
            } else {
                buf.push_str(value);
            }
        });
        if !ok {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// Stores a value formatted in place (numbers, debug output).
    fn set_fmt(&mut self, key: &'static str, value: impl fmt::Display) {
        use std::fmt::Write as _;
        let ok = self.attributes.put(key, |buf| {
            let start = buf.len();
            let _ = write!(buf, "{value}");
            if buf.len() - start > MAX_VALUE_LEN {
                let mut end = start + MAX_VALUE_LEN;
                while !buf.is_char_boundary(end) {
                    end -= 1;
                }
                buf.truncate(end);
                buf.push('…');
            }
        });
        if !ok {
            self.dropped = self.dropped.saturating_add(1);
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set_str(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set_str(field.name(), if value { "true" } else { "false" });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set_fmt(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set_fmt(field.name(), value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.set_fmt(field.name(), value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.set_fmt(field.name(), value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set_fmt(field.name(), value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set_fmt(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set_fmt(field.name(), format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SpanContextError, SpanRecorder, set_remote_parent, trace_id, traceparent};
    use super::*;
    use modvirt_wire::observe::Span;
    use std::collections::{HashMap, HashSet};
    use tracing::field::Empty;
    use tracing_subscriber::Registry;
    use tracing_subscriber::layer::SubscriberExt;

    const FOREIGN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn recording(capacity: usize, f: impl FnOnce()) -> Vec<Span> {
        let (recorder, layer) = SpanRecorder::new("virtqemud", capacity);
        tracing::subscriber::with_default(Registry::default().with(layer), f);
        recorder.page(0, usize::MAX).spans
    }

    fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
    }

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
        span.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn is_hex(s: &str, len: usize) -> bool {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }

    #[test]
    fn call_attrs_format_the_client_pid() {
        for pid in [0, 7, 12_345, -1, i32::MAX, i32::MIN] {
            assert_eq!(CallAttrs::new("REMOTE", "X", pid, true).pid(), pid.to_string());
        }
    }

    #[test]
    fn nested_spans_share_the_trace_and_link_parents() {
        let spans = recording(16, || {
            let outer = tracing::info_span!("outer");
            let _entered = outer.enter();
            tracing::info_span!("inner").in_scope(|| {
                tracing::warn_span!("innermost").in_scope(|| {});
            });
            drop(_entered);
            tracing::info_span!(parent: None, "other root").in_scope(|| {});
        });
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["innermost", "inner", "other root", "outer"],
            "in closing order"
        );
        let (outer, inner, innermost) = (
            by_name(&spans, "outer"),
            by_name(&spans, "inner"),
            by_name(&spans, "innermost"),
        );
        assert!(is_hex(&outer.trace_id, 32) && is_hex(&outer.span_id, 16));
        assert_ne!(outer.trace_id, "0".repeat(32));
        assert_eq!(outer.parent_span_id, None);
        assert_eq!(inner.trace_id, outer.trace_id);
        assert_eq!(inner.parent_span_id.as_deref(), Some(outer.span_id.as_str()));
        assert_eq!(innermost.trace_id, outer.trace_id);
        assert_eq!(innermost.parent_span_id.as_deref(), Some(inner.span_id.as_str()));
        let other = by_name(&spans, "other root");
        assert_ne!(other.trace_id, outer.trace_id);
        assert_eq!(other.parent_span_id, None);
        let seqs: Vec<u64> = spans.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert!(spans.iter().all(|s| s.start_unix_ns > 1_700_000_000_000_000_000));
        assert!(outer.duration_ns >= inner.duration_ns);
    }

    #[test]
    fn attributes_are_recorded_at_creation_and_later() {
        let spans = recording(16, || {
            let span = tracing::info_span!(
                target: "rpc.call",
                "REMOTE.DOMAIN_LOOKUP_BY_NAME",
                otel.kind = "server",
                rpc.system = "libvirt",
                rpc.client_pid = 4242,
                rpc.result = Empty,
                ratio = 0.5,
                cached = false,
                debug = ?Some("x"),
                shown = %"plain",
            );
            assert!(!span.is_disabled());
            span.record("rpc.result", "ok");
            span.record("cached", true);
        });
        let span = by_name(&spans, "REMOTE.DOMAIN_LOOKUP_BY_NAME");
        let attrs: Vec<(&str, &str)> = span
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            attrs,
            [
                ("otel.kind", "server"),
                ("rpc.system", "libvirt"),
                ("rpc.client_pid", "4242"),
                ("ratio", "0.5"),
                ("cached", "true"),
                ("debug", "Some(\"x\")"),
                ("shown", "plain"),
                ("rpc.result", "ok"),
            ]
        );
        assert_eq!(span.status, "ok");
    }

    #[test]
    fn long_values_are_cut_and_extra_attributes_counted() {
        let long = "é".repeat(MAX_VALUE_LEN);
        let spans = recording(4, || {
            tracing::info_span!("big", value = long.as_str(), dbg = ?long).in_scope(|| {});
        });
        let span = by_name(&spans, "big");
        for key in ["value", "dbg"] {
            let value = attr(span, key).unwrap_or_default();
            assert!(
                value.len() <= MAX_VALUE_LEN + '…'.len_utf8(),
                "{key}: {}",
                value.len()
            );
            assert!(value.ends_with('…'));
        }
        let mut fields = Fields::default();
        let keys: Vec<&'static str> = (0..MAX_ATTRIBUTES + 3)
            .map(|i| &*Box::leak(format!("k{i}").into_boxed_str()))
            .collect();
        for &key in &keys {
            fields.set_str(key, "v");
        }
        fields.set_str("k0", "changed");
        assert_eq!(fields.attributes.iter().count(), MAX_ATTRIBUTES);
        assert_eq!(fields.dropped, 3);
        assert_eq!(fields.get("k0"), Some("changed"));
    }

    #[test]
    fn status_is_error_when_told() {
        let spans = recording(16, || {
            tracing::info_span!("plain").in_scope(|| {});
            tracing::info_span!("otel error", otel.status_code = "ERROR").in_scope(|| {});
            let later = tracing::info_span!("later error", error = Empty);
            later.record("error", true);
            drop(later);
            tracing::info_span!("not an error", error = false).in_scope(|| {});
            tracing::info_span!("ok", otel.status_code = "OK").in_scope(|| {});
        });
        let status = |name| by_name(&spans, name).status.as_str();
        assert_eq!(status("plain"), "ok");
        assert_eq!(status("otel error"), "error");
        assert_eq!(status("later error"), "error");
        assert_eq!(status("not an error"), "ok");
        assert_eq!(status("ok"), "ok");
    }

    #[test]
    fn otel_name_renames_the_span() {
        let spans = recording(4, || {
            let span = tracing::info_span!("call", otel.name = Empty);
            span.record("otel.name", "REMOTE.CONNECT_OPEN");
        });
        assert_eq!(spans[0].name, "REMOTE.CONNECT_OPEN");
    }

    #[test]
    fn a_full_ring_overwrites_and_reports_missed() {
        let (recorder, layer) = SpanRecorder::new("virtqemud", 3);
        tracing::subscriber::with_default(Registry::default().with(layer), || {
            for i in 0..7 {
                tracing::info_span!("s", i).in_scope(|| {});
            }
        });
        let page = recorder.page(0, 100);
        assert_eq!(page.missed, 4);
        assert_eq!(page.next_cursor, 7);
        assert_eq!(page.dropped, 0);
        let i: Vec<&str> = page.spans.iter().filter_map(|s| attr(s, "i")).collect();
        assert_eq!(i, ["4", "5", "6"]);
        let page = recorder.page(5, 1);
        assert_eq!((page.spans[0].seq, page.next_cursor, page.missed), (5, 6, 0));
        let page = recorder.page(page.next_cursor, 1);
        assert_eq!((page.spans[0].seq, page.next_cursor, page.missed), (6, 7, 0));
        let page = recorder.page(page.next_cursor, 1);
        assert!(page.spans.is_empty());
        assert_eq!(page.next_cursor, 7);
        assert_eq!(recorder.recorded(), 7);
    }

    #[test]
    fn a_remote_parent_continues_a_foreign_trace() {
        let spans = recording(16, || {
            let call = tracing::info_span!("NETWORK.LOOKUP", otel.kind = "server");
            assert_eq!(set_remote_parent(&call, FOREIGN), Ok(()));
            assert_eq!(
                trace_id(&call).as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );
            call.in_scope(|| tracing::info_span!("step").in_scope(|| {}));
            let bad = tracing::info_span!("bad");
            assert!(matches!(
                set_remote_parent(&bad, "00-xyz"),
                Err(SpanContextError::InvalidTraceparent { .. })
            ));
        });
        let call = by_name(&spans, "NETWORK.LOOKUP");
        assert_eq!(call.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(call.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        let step = by_name(&spans, "step");
        assert_eq!(step.trace_id, call.trace_id);
        assert_eq!(step.parent_span_id.as_deref(), Some(call.span_id.as_str()));
        let bad = by_name(&spans, "bad");
        assert_ne!(bad.trace_id, call.trace_id);
        assert_eq!(bad.parent_span_id, None);
    }

    #[test]
    fn traceparent_round_trips_between_spans() {
        let mut sent = None;
        let spans = recording(16, || {
            let client = tracing::info_span!("peer call", otel.kind = "client");
            let tp = traceparent(&client).unwrap_or_default();
            let ctx = TraceContext::parse(&tp).unwrap();
            assert_eq!(
                trace_id(&client).as_deref(),
                Some(context::format_trace_id(ctx.trace_id).as_str())
            );
            assert!(tp.ends_with("-01"));
            // The "peer daemon" continues it.
            let server = tracing::info_span!(parent: None, "peer serves");
            assert_eq!(set_remote_parent(&server, &tp), Ok(()));
            sent = Some(tp);
        });
        let client = by_name(&spans, "peer call");
        let server = by_name(&spans, "peer serves");
        assert_eq!(
            sent,
            Some(format!("00-{}-{}-01", client.trace_id, client.span_id))
        );
        assert_eq!(server.trace_id, client.trace_id);
        assert_eq!(server.parent_span_id.as_deref(), Some(client.span_id.as_str()));
    }

    #[test]
    fn debug_spans_are_skipped_but_keep_the_trace_connected() {
        let spans = recording(16, || {
            tracing::info_span!("root").in_scope(|| {
                tracing::debug_span!("library").in_scope(|| {
                    tracing::trace_span!("deeper").in_scope(|| {
                        tracing::info_span!("ours").in_scope(|| {});
                    });
                });
            });
        });
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ours", "root"]);
        assert_eq!(
            spans[0].parent_span_id.as_deref(),
            Some(spans[1].span_id.as_str())
        );

        let (recorder, layer) = SpanRecorder::new("virtqemud", 16);
        let layer = layer.with_max_level(Level::DEBUG);
        tracing::subscriber::with_default(Registry::default().with(layer), || {
            tracing::debug_span!("library").in_scope(|| tracing::trace_span!("deeper").in_scope(|| {}));
        });
        let names: Vec<String> = recorder.page(0, 10).spans.into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["library"]);
    }

    #[test]
    fn concurrent_recording_loses_nothing_below_capacity() {
        const THREADS: usize = 4;
        const PER_THREAD: usize = 250;
        let (recorder, layer) = SpanRecorder::new("virtqemud", 4096);
        let dispatch = tracing::Dispatch::new(Registry::default().with(layer));
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let dispatch = dispatch.clone();
                scope.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        for i in 0..PER_THREAD {
                            tracing::info_span!("outer", thread, i).in_scope(|| {
                                tracing::info_span!("inner").in_scope(|| {});
                            });
                        }
                    });
                });
            }
        });
        let total = THREADS * PER_THREAD * 2;
        let page = recorder.page(0, usize::MAX);
        assert_eq!(page.spans.len(), total);
        assert_eq!(
            (page.next_cursor, page.missed, page.dropped),
            (total as u64, 0, 0)
        );
        assert!(page.spans.iter().zip(0..).all(|(s, seq)| s.seq == seq));
        let ids: HashSet<&str> = page.spans.iter().map(|s| s.span_id.as_str()).collect();
        assert_eq!(ids.len(), total);
        let outers: HashMap<&str, &Span> = page
            .spans
            .iter()
            .filter(|s| s.name == "outer")
            .map(|s| (s.span_id.as_str(), s))
            .collect();
        assert_eq!(outers.len(), total / 2);
        let traces: HashSet<&str> = outers.values().map(|s| s.trace_id.as_str()).collect();
        assert_eq!(traces.len(), total / 2, "every outer span is a root");
        for inner in page.spans.iter().filter(|s| s.name == "inner") {
            let parent = inner.parent_span_id.as_deref().and_then(|p| outers.get(p));
            assert_eq!(parent.map(|p| p.trace_id.as_str()), Some(inner.trace_id.as_str()));
        }
    }
}
