//! Spans: a `tracing` layer that records finished spans into a bounded ring
//! (read over the admin socket with OBSERVE `SPANS`) and, when asked, exports
//! them over OTLP/HTTP (`http/protobuf`).
//!
//! # Recording
//!
//! [`SpanRecorder::new`] returns a handle and a [`SpanLayer`]; the layer goes
//! into the global subscriber beside the logging layer. It records spans, not
//! events, at `INFO` and more severe by default ([`SpanLayer::with_max_level`]),
//! so the `DEBUG`/`TRACE` spans of libraries stay out. A
//! recorded span gets a 128-bit trace id (its nearest recorded ancestor's, or a
//! fresh one for a root), a 64-bit span id, its fields as string attributes
//! (fields recorded later are merged in) and, when it closes, its start time
//! and duration. Then it is
//!
//! * pushed into the ring (default [`DEFAULT_CAPACITY`] spans), where it gets
//!   the next sequence number. A full ring overwrites its oldest span: a reader
//!   that had not yet read it sees it counted in [`SpansPage::missed`];
//! * offered to the exporter's bounded queue ([`EXPORT_QUEUE`] spans) if export
//!   runs. A full queue drops the span for export and counts it in
//!   [`SpanRecorder::dropped`] (kind `span-export`), as does a batch the
//!   collector refused or could not be reached for.
//!
//! Nothing on this path blocks: the ring's lock is held only to push into a
//! `VecDeque`, and the queue is offered with `try_send`.
//!
//! A span's status is `error` when it recorded `otel.status_code = "ERROR"`
//! or `error = true`, `ok` otherwise.
//!
//! # Conventions
//!
//! * RPC calls: recorded directly, not through `tracing` — the dispatcher
//!   creates a [`CallSpan`] per call and [`SpanRecorder::record_call`] puts it
//!   in the ring when the reply is written (a `tracing` span per call cost
//!   ~5,000 instructions; this costs ~1,100). Its attributes follow the
//!   OpenTelemetry RPC conventions: `otel.kind = "server"`, `rpc.system =
//!   "libvirt"`, `rpc.service` (program), `rpc.method` (procedure, also the
//!   span name), `rpc.client_pid`, `rpc.result` (`otel.status_code = "ERROR"`
//!   on failure). Spans a handler opens continue the call's trace with
//!   [`set_remote_parent`] and [`CallSpan::traceparent`].
//! * Start-up phases: `phase` spans (`tracing::info_span!("phase", …)`), one per
//!   phase, with their steps as child spans.
//! * Calls into peer daemons: `otel.kind = "client"` spans (`peer.rs`), children
//!   of the calling call's span; the callee's call span continues the trace
//!   from the `traceparent` the caller sent in CALL_CONTEXT.
//! * Special fields, as in `tracing-opentelemetry`: `otel.kind` (`server`,
//!   `client`, `producer`, `consumer`; otherwise internal), `otel.status_code`
//!   (`OK`, `ERROR`), `otel.status_message`, `otel.name` (replaces the span's
//!   name). They stay attributes in the ring; OTLP gets them as span fields.
//!
//! # Trace context across daemons
//!
//! [`traceparent`] formats a recorded span's context as a W3C `traceparent`
//! (`00-<32 hex trace id>-<16 hex span id>-01`); [`set_remote_parent`] makes a
//! span, before it is entered, continue the trace of such a header; [`trace_id`]
//! gives the 32 hex digits shown beside in-flight calls. All three find the
//! span's data through the span's own dispatcher, whose subscriber must be a
//! `tracing_subscriber::Registry` with the [`SpanLayer`] in it.
//!
//! # Export
//!
//! [`SpanRecorder::start_export_from_env`] starts the OTLP/HTTP exporter when
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! (see `otlp` for the details): one task batches the queue every second or
//! 512 spans and POSTs `ExportTraceServiceRequest`s (binary protobuf, encoded
//! by hand: no gRPC or HTTP library) built from the same records as the ring,
//! so ids match. [`SpanRecorder::shutdown`] flushes what is queued
//! within 2 s.

mod context;
mod layer;
mod otlp;
mod ring;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use modvirt_wire::observe::{SCHEMA, Span, SpansPage};
use modvirt_wire::program::{Procedure, Program};
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan;

pub use context::{SpanContextError, TraceContext};
pub use layer::SpanLayer;
pub use otlp::ExportError;

use layer::SpanData;
use otlp::ExportHandle;
use ring::SpanRing;

/// Spans kept in the ring unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 4096;
/// Finished spans waiting for the exporter; more are dropped and counted.
pub const EXPORT_QUEUE: usize = 2048;

/// A finished span, kept in the ring (and copied to the exporter queue).
#[derive(Debug, Clone)]
struct SpanRecord {
    trace_id: u128,
    span_id: u64,
    parent_span_id: Option<u64>,
    /// The parent came from another process ([`set_remote_parent`]).
    remote_parent: bool,
    name: Cow<'static, str>,
    start_unix_ns: u64,
    duration_ns: u64,
    attributes: layer::Attrs,
    /// Attributes left out because the span had too many.
    dropped_attributes: u32,
}

impl SpanRecord {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key)
    }

    /// The span's name, or the `otel.name` that replaces it.
    fn display_name(&self) -> &str {
        self.attribute("otel.name").unwrap_or(&self.name)
    }

    fn is_error(&self) -> bool {
        self.attribute("otel.status_code")
            .is_some_and(|v| v.eq_ignore_ascii_case("error"))
            || self.attribute("error") == Some("true")
    }

    fn to_wire(&self, seq: u64) -> Span {
        Span {
            seq,
            trace_id: context::format_trace_id(self.trace_id),
            span_id: context::format_span_id(self.span_id),
            parent_span_id: self.parent_span_id.map(context::format_span_id),
            name: self.display_name().to_owned(),
            start_unix_ns: self.start_unix_ns,
            duration_ns: self.duration_ns,
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            status: if self.is_error() { "error" } else { "ok" }.to_owned(),
        }
    }
}

/// Counters shared with the exporter task.
#[derive(Debug, Default)]
struct Counters {
    /// Spans that were not exported: queue full or closed, export failed.
    dropped: AtomicU64,
    /// Spans the collector accepted.
    exported: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    service_name: String,
    ring: SpanRing,
    counters: Arc<Counters>,
    export: OnceLock<ExportHandle>,
}

impl Shared {
    /// Called by the layer when a recorded span closes. Never blocks for long.
    fn finish(&self, record: SpanRecord) {
        if let Some(export) = self.export.get()
            && !export.offer(Arc::new(record.clone()))
        {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.ring.push(ring::Entry::Span(Box::new(record)));
    }

    /// A finished call span: kept as raw facts, made a [`SpanRecord`] only
    /// when exported or read. (A call continuing a peer's trace, rare, is
    /// kept whole: its facts would not fit a ring slot's cache line.)
    fn finish_call(&self, call: CallFacts, remote: Option<TraceContext>) {
        if let Some(export) = self.export.get()
            && !export.offer(Arc::new(call.to_record(remote)))
        {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        match remote {
            None => self.ring.push(ring::Entry::Call(call)),
            Some(remote) => self
                .ring
                .push(ring::Entry::Span(Box::new(call.to_record(Some(remote))))),
        };
    }
}

/// What the ring keeps of a finished RPC call span of a call that starts
/// its own trace: small (a ring slot is one cache line), no heap.
#[derive(Debug, Clone, Copy)]
struct CallFacts {
    /// The call's number; the span's ids derive from it.
    call: u64,
    start_unix_ns: u64,
    duration_ns: u64,
    program: &'static Program,
    procedure: &'static Procedure,
    client_pid: i32,
    ok: bool,
}

/// Wall-clock time (ns since the epoch) of a monotonic instant: an offset
/// from one reading of both clocks, taken once per process. (A wall clock
/// stepped later shifts nothing: spans keep the timeline of the monotonic
/// clock, as their durations do.)
fn unix_ns(at: std::time::Instant) -> u64 {
    use std::time::{Instant, SystemTime, UNIX_EPOCH};
    static ANCHOR: OnceLock<(u64, Instant)> = OnceLock::new();
    let (anchor_ns, anchor) = *ANCHOR.get_or_init(|| {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        (ns, Instant::now())
    });
    let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    match at.checked_duration_since(anchor) {
        Some(after) => anchor_ns.saturating_add(ns(after)),
        None => anchor_ns.saturating_sub(ns(anchor.duration_since(at))),
    }
}

impl CallFacts {
    /// The whole span; `remote` is the peer's context the call continued.
    fn to_record(self, remote: Option<TraceContext>) -> SpanRecord {
        let (trace_id, span_id) = context::call_ids(self.call);
        SpanRecord {
            trace_id: remote.map_or(trace_id, |r| r.trace_id),
            span_id,
            parent_span_id: remote.map(|r| r.span_id),
            remote_parent: remote.is_some(),
            name: Cow::Borrowed(self.procedure.name),
            start_unix_ns: self.start_unix_ns,
            duration_ns: self.duration_ns,
            attributes: layer::Attrs::call(layer::CallAttrs::new(
                self.program.name,
                self.procedure.name,
                self.client_pid,
                self.ok,
            )),
            dropped_attributes: 0,
        }
    }
}

/// The handle on a daemon's span recording: reads the ring, runs the exporter.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct SpanRecorder {
    shared: Arc<Shared>,
}

impl SpanRecorder {
    /// A recorder for the daemon `service_name` keeping the last `capacity`
    /// spans (at least 1), and the layer that feeds it.
    pub fn new(service_name: &str, capacity: usize) -> (SpanRecorder, SpanLayer) {
        let shared = Arc::new(Shared {
            service_name: service_name.to_owned(),
            ring: SpanRing::new(capacity),
            counters: Arc::default(),
            export: OnceLock::new(),
        });
        let layer = SpanLayer::new(Arc::clone(&shared));
        (SpanRecorder { shared }, layer)
    }

    /// Spans with `seq >= cursor`, oldest first, at most `max` of them (the
    /// OBSERVE `SPANS` reply). A cursor from before the oldest span kept reads
    /// from the oldest and reports the overwritten ones in `missed`; a cursor
    /// past the newest (e.g. from a previous run of the daemon) reads as 0.
    pub fn page(&self, cursor: u64, max: usize) -> SpansPage {
        let read = self.shared.ring.read(cursor, max);
        SpansPage {
            schema: SCHEMA,
            spans: read
                .spans
                .iter()
                .map(|(seq, record)| record.to_wire(*seq))
                .collect(),
            next_cursor: read.next_cursor,
            missed: read.missed,
            dropped: self.dropped(),
        }
    }

    /// Spans recorded since start (the next sequence number).
    pub fn recorded(&self) -> u64 {
        self.shared.ring.recorded()
    }

    /// Spans dropped for export (queue full, export failed or refused), kind
    /// `span-export`.
    pub fn dropped(&self) -> u64 {
        self.shared.counters.dropped.load(Ordering::Relaxed)
    }

    /// Spans a collector has accepted.
    pub fn exported(&self) -> u64 {
        self.shared.counters.exported.load(Ordering::Relaxed)
    }

    /// The collector spans are exported to, once export has started.
    pub fn export_endpoint(&self) -> Option<&str> {
        self.shared.export.get().map(ExportHandle::endpoint)
    }

    /// Starts the OTLP/HTTP exporter on `runtime` if the environment asks for
    /// it (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; the protocol variables
    /// must be unset or `http/protobuf`;
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off).
    /// Returns whether it started.
    pub fn start_export_from_env(&self, runtime: &tokio::runtime::Handle) -> Result<bool, ExportError> {
        match otlp::endpoint_from_env(|name| std::env::var(name).ok())? {
            Some(endpoint) => self.start_export(&endpoint, runtime).map(|()| true),
            None => Ok(false),
        }
    }

    /// Starts exporting to the OTLP/HTTP collector URL `endpoint`
    /// (`http://host:port/v1/traces`; `http://` may be left out, a URL without
    /// a path posts to `/`), with a task on `runtime`. Headers come from
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`.
    pub fn start_export(&self, endpoint: &str, runtime: &tokio::runtime::Handle) -> Result<(), ExportError> {
        if let Some(running) = self.shared.export.get() {
            return Err(ExportError::AlreadyStarted {
                endpoint: running.endpoint().to_owned(),
            });
        }
        let handle = otlp::spawn(
            endpoint,
            &self.shared.service_name,
            Arc::clone(&self.shared.counters),
            runtime,
        )?;
        self.shared
            .export
            .set(handle)
            .map_err(|handle| ExportError::AlreadyStarted {
                endpoint: handle.endpoint().to_owned(),
            })
    }

    /// Stops the exporter after sending what is queued, within 2 s. Spans that
    /// close afterwards are kept in the ring only (and counted as dropped).
    pub async fn shutdown(&self) {
        if let Some(export) = self.shared.export.get() {
            export.shutdown().await;
        }
    }
}

/// The span of one RPC call, recorded directly into the ring rather than
/// through `tracing`: the dispatcher creates one for every call, so it must
/// cost little (ids derived from the call's number, one small record at
/// the end). It follows the
/// RPC conventions (`otel.kind=server`, `rpc.system=libvirt`,
/// `rpc.service`, `rpc.method`, `rpc.client_pid`, `rpc.result`). Spans the
/// handler opens (peer calls, driver steps) continue its trace through
/// [`CallSpan::traceparent`] and [`set_remote_parent`].
#[derive(Debug, Clone, Copy)]
pub struct CallSpan {
    /// The call's number: its ids derive from it, when needed.
    call: u64,
    /// The peer daemon's context this call continues, if any.
    remote: Option<TraceContext>,
    /// When the call started; made wall-clock time only when the span is
    /// read or exported ([`unix_ns`]), so a call reads the clock once.
    started: std::time::Instant,
}

impl CallSpan {
    /// A new call span: a new trace, or the continuation of a peer daemon's
    /// W3C `traceparent` (ignored if malformed).
    /// The caller measures the duration and passes it to
    /// [`SpanRecorder::record_call`].
    pub fn start(remote: Option<&str>, call: u64, started: std::time::Instant) -> CallSpan {
        CallSpan {
            call,
            remote: remote.and_then(|t| TraceContext::parse(t).ok()),
            started,
        }
    }

    /// The span's own context (computed: nothing is drawn per call).
    fn context(&self) -> TraceContext {
        let (trace_id, span_id) = context::call_ids(self.call);
        TraceContext {
            trace_id: self.remote.map_or(trace_id, |r| r.trace_id),
            span_id,
            flags: 1,
        }
    }

    pub fn traceparent(&self) -> String {
        self.context().to_traceparent()
    }

    pub fn trace_id(&self) -> String {
        context::format_trace_id(self.context().trace_id)
    }
}

impl SpanRecorder {
    /// Records a finished call span (see [`CallSpan`]).
    pub fn record_call(
        &self,
        span: &CallSpan,
        program: &'static Program,
        procedure: &'static Procedure,
        client_pid: i32,
        ok: bool,
        duration: std::time::Duration,
    ) {
        let facts = CallFacts {
            call: span.call,
            start_unix_ns: unix_ns(span.started),
            duration_ns: u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
            program,
            procedure,
            client_pid,
            ok,
        };
        self.shared.finish_call(facts, span.remote);
    }
}

/// Applies `f` to the data the [`SpanLayer`] keeps for `span`, found through
/// the span's dispatcher. `None` if the span is disabled, or not recorded.
fn with_span_data<R>(span: &tracing::Span, f: impl FnOnce(&mut SpanData) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let span = registry.span(id)?;
        let mut extensions = span.extensions_mut();
        extensions.get_mut::<SpanData>().map(f)
    })
    .flatten()
}

/// Makes `span` continue the trace of a W3C `traceparent` from a peer daemon:
/// it takes that trace id, and the peer's span as its (remote) parent. Call it
/// before the span is entered, so its children inherit the trace.
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) -> Result<(), SpanContextError> {
    let remote = TraceContext::parse(traceparent)?;
    with_span_data(span, |data| data.continue_remote(remote)).ok_or(SpanContextError::NotRecorded)
}

/// `span`'s context as a W3C `traceparent`, to send to a peer daemon.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    with_span_data(span, |data| data.context().to_traceparent())
}

/// `span`'s trace id: 32 lowercase hex digits.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    with_span_data(span, |data| context::format_trace_id(data.context().trace_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_wire::program::REMOTE;
    use tracing_subscriber::layer::SubscriberExt;

    fn proc_named(name: &str) -> &'static Procedure {
        REMOTE.procedures.iter().find(|p| p.name == name).unwrap()
    }

    #[test]
    fn call_spans_are_recorded_without_tracing_and_continue_a_remote_trace() {
        let (recorder, _layer) = SpanRecorder::new("virtqemud", 8);
        let foreign = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let now = std::time::Instant::now();
        let root = CallSpan::start(None, 1, now);
        let child = CallSpan::start(Some(&root.traceparent()), 2, now);
        let remote = CallSpan::start(Some(foreign), 3, now);
        recorder.record_call(
            &root,
            &REMOTE,
            proc_named("CONNECT_OPEN"),
            42,
            true,
            std::time::Duration::from_micros(5),
        );
        recorder.record_call(
            &child,
            &REMOTE,
            proc_named("DOMAIN_CREATE"),
            42,
            false,
            std::time::Duration::from_millis(2),
        );
        recorder.record_call(
            &remote,
            &REMOTE,
            proc_named("NETWORK_LOOKUP_BY_NAME"),
            7,
            true,
            std::time::Duration::ZERO,
        );
        let spans = recorder.page(0, 8).spans;
        assert_eq!(spans.len(), 3);
        let attr = |s: &Span, k: &str| s.attributes.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        assert_eq!(spans[0].name, "CONNECT_OPEN");
        assert_eq!(attr(&spans[0], "rpc.system").as_deref(), Some("libvirt"));
        assert_eq!(attr(&spans[0], "otel.kind").as_deref(), Some("server"));
        assert_eq!(attr(&spans[0], "rpc.client_pid").as_deref(), Some("42"));
        assert_eq!(attr(&spans[0], "rpc.result").as_deref(), Some("ok"));
        assert_eq!(spans[0].status, "ok");
        assert_eq!(spans[0].trace_id, root.trace_id());
        assert_eq!(
            spans[1].trace_id,
            root.trace_id(),
            "the child continues the trace"
        );
        assert_eq!(
            spans[1].parent_span_id.as_deref(),
            Some(spans[0].span_id.as_str())
        );
        assert_eq!(spans[1].status, "error");
        assert_eq!(spans[1].duration_ns, 2_000_000);
        assert_eq!(spans[2].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(spans[2].parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    }

    #[test]
    fn call_span_start_times_are_wall_clock_and_keep_their_order() {
        use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
        let now = Instant::now();
        let earlier = now - Duration::from_millis(250);
        let later = now + Duration::from_millis(250);
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        let (e, n, l) = (unix_ns(earlier), unix_ns(now), unix_ns(later));
        assert_eq!(n - e, 250_000_000);
        assert_eq!(l - n, 250_000_000);
        // Within a second of the wall clock read next to it.
        assert!(n.abs_diff(wall) < 1_000_000_000, "{n} vs {wall}");
    }

    #[test]
    fn a_full_export_queue_drops_and_counts() {
        let (recorder, layer) = SpanRecorder::new("virtqemud", 8);
        let (handle, mut queue) = ExportHandle::detached("http://127.0.0.1:9", 2);
        assert!(recorder.shared.export.set(handle).is_ok());
        tracing::subscriber::with_default(Registry::default().with(layer), || {
            for _ in 0..5 {
                tracing::info_span!("call").in_scope(|| {});
            }
        });
        assert_eq!(recorder.dropped(), 3);
        let page = recorder.page(0, 100);
        assert_eq!(page.spans.len(), 5, "the ring keeps what export drops");
        assert_eq!(page.dropped, 3);
        assert_eq!(
            queue.try_recv().map(|r| r.span_id).ok(),
            Some(span_id(&page.spans[0]))
        );
        assert_eq!(recorder.export_endpoint(), Some("http://127.0.0.1:9"));
    }

    fn span_id(span: &Span) -> u64 {
        u64::from_str_radix(&span.span_id, 16).unwrap_or_default()
    }

    #[test]
    fn context_functions_need_a_recorded_span() {
        // No subscriber at all: the span is disabled.
        let span = tracing::info_span!("nowhere");
        assert_eq!(traceparent(&span), None);
        assert_eq!(trace_id(&span), None);
        assert_eq!(
            set_remote_parent(&span, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Err(SpanContextError::NotRecorded)
        );
        // A registry without our layer.
        tracing::subscriber::with_default(Registry::default(), || {
            let span = tracing::info_span!("unrecorded");
            assert_eq!(traceparent(&span), None);
        });
    }

    #[test]
    fn start_export_twice_is_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (recorder, _layer) = SpanRecorder::new("virtqemud", 8);
        assert!(recorder.start_export("127.0.0.1:4317", runtime.handle()).is_ok());
        assert_eq!(recorder.export_endpoint(), Some("http://127.0.0.1:4317"));
        assert!(matches!(
            recorder.start_export("http://127.0.0.1:4318", runtime.handle()),
            Err(ExportError::AlreadyStarted { endpoint }) if endpoint == "http://127.0.0.1:4317"
        ));
        runtime.block_on(recorder.shutdown());
        // A second shutdown is harmless.
        runtime.block_on(recorder.shutdown());
    }
}
