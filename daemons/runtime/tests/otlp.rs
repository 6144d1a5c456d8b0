//! OTLP/HTTP export against the in-process collector of the test harness
//! (`tests/src/otlp_collector.rs`). Spans are recorded on the test thread
//! (as a daemon's calls are, outside the exporter's runtime) and must arrive
//! with the ids the ring shows; a collector that is absent, fails, hangs up
//! or stays silent costs dropped spans, never a stall.

// Shared with the end-to-end tests, which use all of it; this file does not.
#[allow(dead_code)]
#[path = "../../../tests/src/otlp_collector.rs"]
mod otlp_collector;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use modvirt_runtime::observe::spans::{SpanLayer, SpanRecorder, set_remote_parent};
use modvirt_wire::observe::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use otlp_collector::{Answer, Collector, ReceivedSpan};
use tokio::runtime::Runtime;
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt;

const WAIT: Duration = Duration::from_secs(10);
const FOREIGN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A recorder of `daemon` (ring of 64) exporting to a new collector that
/// answers `answer` on `runtime`; returns it, its layer and the collector.
fn exporting(runtime: &Runtime, daemon: &str, answer: Answer) -> (SpanRecorder, SpanLayer, Collector) {
    let collector = Collector::start(runtime.handle(), answer);
    let (recorder, layer) = SpanRecorder::new(daemon, 64);
    recorder
        .start_export(&collector.traces_url(), runtime.handle())
        .expect("start export");
    (recorder, layer, collector)
}

/// Shuts the export down, which takes at most its flush budget (2 s).
fn shut_down_in_time(runtime: &Runtime, recorder: &SpanRecorder) {
    let started = Instant::now();
    runtime.block_on(recorder.shutdown());
    assert!(
        started.elapsed() <= Duration::from_millis(2100),
        "{:?}",
        started.elapsed()
    );
}

/// Receives until `want` spans arrived or [`WAIT`] passed; by span id.
fn receive(runtime: &Runtime, collector: &mut Collector, want: usize) -> HashMap<String, ReceivedSpan> {
    runtime
        .block_on(collector.spans_until(WAIT, |spans| spans.len() >= want))
        .into_iter()
        .map(|span| (span.span_id(), span))
        .collect()
}

/// Records `n` `phase` spans through `layer`.
fn record_phases(layer: SpanLayer, n: usize) {
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        for i in 0..n {
            tracing::info_span!("phase", i).in_scope(|| {});
        }
    });
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

#[test]
fn spans_arrive_with_the_ids_of_the_ring() {
    let runtime = runtime();
    let (recorder, layer, mut collector) = exporting(&runtime, "virtnetworkd", Answer::Accept);
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        let call = tracing::info_span!(
            target: "rpc.call",
            "REMOTE.NETWORK_LOOKUP_BY_NAME",
            otel.kind = "server",
            rpc.system = "libvirt",
            rpc.service = "remote",
            rpc.method = "NETWORK_LOOKUP_BY_NAME",
            rpc.client_pid = 4242,
            rpc.result = tracing::field::Empty,
        );
        set_remote_parent(&call, FOREIGN).expect("remote parent");
        call.in_scope(|| {
            tracing::info_span!("lookup", network = "default").in_scope(|| {});
            tracing::info_span!("peer call", otel.kind = "client", otel.status_code = "ERROR")
                .in_scope(|| {});
        });
        call.record("rpc.result", "ok");
        drop(call);
        tracing::info_span!("phase", name = "config").in_scope(|| {});
    });

    // Sent by the one-second batch timer, not by shutdown.
    let got = receive(&runtime, &mut collector, 4);
    let ring = recorder.page(0, 100).spans;
    assert_eq!(ring.len(), 4);
    assert_eq!(got.len(), 4, "received {got:#?}");
    for span in &ring {
        let otlp = got
            .get(&span.span_id)
            .unwrap_or_else(|| panic!("span {} not exported", span.name));
        assert_eq!(otlp.span.name, span.name);
        assert_eq!(otlp.trace_id(), span.trace_id);
        assert_eq!(otlp.parent_span_id(), span.parent_span_id);
        assert_eq!(otlp.service, "virtnetworkd");
        assert_eq!(otlp.scope, "modvirt");
    }

    let call = by_name(&ring, "REMOTE.NETWORK_LOOKUP_BY_NAME");
    assert_eq!(call.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(call.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    let otlp = &got[&call.span_id];
    assert_eq!(otlp.span.kind, SpanKind::Server as i32);
    assert_eq!(
        otlp.span.status.clone().unwrap_or_default().code,
        StatusCode::Unset as i32
    );
    let attrs = otlp.attributes();
    let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        attrs,
        [
            ("rpc.system", "libvirt"),
            ("rpc.service", "remote"),
            ("rpc.method", "NETWORK_LOOKUP_BY_NAME"),
            ("rpc.client_pid", "4242"),
            ("rpc.result", "ok"),
        ]
    );

    let lookup = by_name(&ring, "lookup");
    assert_eq!(lookup.trace_id, call.trace_id);
    assert_eq!(lookup.parent_span_id.as_deref(), Some(call.span_id.as_str()));
    let otlp = &got[&lookup.span_id];
    assert_eq!(otlp.span.kind, SpanKind::Internal as i32);
    assert_eq!(otlp.attributes(), [("network".to_owned(), "default".to_owned())]);

    let peer = &got[&by_name(&ring, "peer call").span_id];
    assert_eq!(peer.span.kind, SpanKind::Client as i32);
    assert_eq!(
        peer.span.status.clone().unwrap_or_default().code,
        StatusCode::Error as i32
    );
    let phase = by_name(&ring, "phase");
    assert_ne!(phase.trace_id, call.trace_id);
    assert_eq!(phase.parent_span_id, None);

    // Nothing is queued: shutdown returns at once.
    let started = Instant::now();
    runtime.block_on(recorder.shutdown());
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(recorder.exported(), 4);
    assert_eq!(recorder.dropped(), 0);
}

#[test]
fn batches_share_one_kept_alive_connection() {
    let runtime = runtime();
    let (recorder, layer, mut collector) = exporting(&runtime, "virtqemud", Answer::Accept);
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        for round in 0..3 {
            tracing::info_span!("phase", round).in_scope(|| {});
            // Each span in a batch of its own (the timer sends every second).
            assert_eq!(receive(&runtime, &mut collector, 1).len(), 1, "round {round}");
        }
    });
    assert_eq!(collector.connections(), 1);
    shut_down_in_time(&runtime, &recorder);
    assert_eq!((recorder.exported(), recorder.dropped()), (3, 0));
}

#[test]
fn shutdown_flushes_what_is_queued() {
    let runtime = runtime();
    let (recorder, layer, mut collector) = exporting(&runtime, "virtqemud", Answer::Accept);
    record_phases(layer, 10);
    shut_down_in_time(&runtime, &recorder);
    let got = receive(&runtime, &mut collector, 10);
    assert_eq!(got.len(), 10);
    assert_eq!(recorder.exported(), 10);
    assert_eq!(recorder.dropped(), 0);
}

#[test]
fn a_collector_that_is_not_there_blocks_nothing_and_drops_are_counted() {
    const SPANS: u64 = 3000;
    let runtime = runtime();
    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (recorder, layer) = SpanRecorder::new("virtqemud", 4096);
    recorder
        .start_export(&format!("127.0.0.1:{port}/v1/traces"), runtime.handle())
        .expect("start export");
    let started = Instant::now();
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        for i in 0..SPANS {
            tracing::info_span!("call", i).in_scope(|| {});
        }
    });
    let recording = started.elapsed();
    assert!(recording < Duration::from_secs(2), "recording took {recording:?}");
    assert_eq!(recorder.recorded(), SPANS);
    assert_eq!(recorder.page(0, 10_000).spans.len() as u64, SPANS);

    // Failed batches are counted as they fail ...
    let deadline = Instant::now() + WAIT;
    while recorder.dropped() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(recorder.dropped() > 0);
    // ... and after shutdown every span is accounted for.
    shut_down_in_time(&runtime, &recorder);
    assert_eq!(recorder.exported(), 0);
    assert_eq!(recorder.dropped(), SPANS);
    assert_eq!(recorder.page(0, 1).dropped, SPANS);
}

/// A collector that receives the spans but answers `answer`: every span is
/// counted as dropped as its batch fails, none as exported, nothing stalls,
/// and later batches are still sent.
fn failing_answers_drop_spans(answer: Answer) {
    const SPANS: u64 = 20;
    let runtime = runtime();
    let (recorder, layer, mut collector) = exporting(&runtime, "virtqemud", answer);
    let dropped = |want: u64| {
        let deadline = Instant::now() + WAIT;
        while recorder.dropped() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        (recorder.exported(), recorder.dropped())
    };
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        let started = Instant::now();
        for i in 0..SPANS {
            tracing::info_span!("phase", i).in_scope(|| {});
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            receive(&runtime, &mut collector, SPANS as usize).len() as u64,
            SPANS
        );
        assert_eq!(dropped(SPANS), (0, SPANS));
        tracing::info_span!("phase", i = SPANS).in_scope(|| {});
        assert_eq!(receive(&runtime, &mut collector, 1).len(), 1);
        assert_eq!(dropped(SPANS + 1), (0, SPANS + 1));
    });
    shut_down_in_time(&runtime, &recorder);
}

#[test]
fn a_collector_answering_500_drops_spans_without_stalling() {
    failing_answers_drop_spans(Answer::Status(500));
}

#[test]
fn a_collector_closing_the_connection_drops_spans_without_stalling() {
    failing_answers_drop_spans(Answer::Close);
}

/// A collector that never answers: shutdown still returns within its budget,
/// and what was in flight is counted as dropped.
#[test]
fn a_silent_collector_does_not_hold_up_shutdown() {
    let runtime = runtime();
    let (recorder, layer, mut collector) = exporting(&runtime, "virtqemud", Answer::Silence);
    record_phases(layer, 5);
    assert_eq!(receive(&runtime, &mut collector, 5).len(), 5);
    shut_down_in_time(&runtime, &recorder);
    assert_eq!((recorder.exported(), recorder.dropped()), (0, 5));
}

/// The exporter and the collector on one current-thread runtime, driven only
/// while the daemon awaits shutdown: the flush must still complete.
#[test]
fn shutdown_on_a_current_thread_runtime_flushes_without_hanging() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (recorder, layer, mut collector) = exporting(&runtime, "virtsecretd", Answer::Accept);
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        tracing::info_span!("phase", name = "drivers").in_scope(|| {});
    });
    shut_down_in_time(&runtime, &recorder);
    assert_eq!(receive(&runtime, &mut collector, 1).len(), 1);
    assert_eq!((recorder.exported(), recorder.dropped()), (1, 0));
}
