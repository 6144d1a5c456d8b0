//! OTLP export against an in-process collector: a tonic server implementing
//! opentelemetry-proto's `TraceService` on 127.0.0.1. Spans are recorded on
//! the test thread (as a daemon's calls are, outside the exporter's runtime)
//! and must arrive with the ids the ring shows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use modvirt_runtime::observe::spans::{SpanLayer, SpanRecorder, set_remote_parent};
use modvirt_wire::observe::Span;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt;

const WAIT: Duration = Duration::from_secs(10);
const FOREIGN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

struct Collector {
    requests: mpsc::UnboundedSender<ExportTraceServiceRequest>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        // The test may have stopped listening.
        let _ = self.requests.send(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// What a collector receives.
type Requests = mpsc::UnboundedReceiver<ExportTraceServiceRequest>;

/// Starts a collector; returns its endpoint and what it receives.
fn collector(runtime: &Runtime) -> (String, Requests) {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (requests, received) = mpsc::unbounded_channel();
    let service = TraceServiceServer::new(Collector { requests });
    runtime.spawn(Server::builder().serve_with_incoming(service, TcpIncoming::from(listener)));
    (format!("http://{addr}"), received)
}

/// A recorder of `daemon` (ring of 64) exporting to a new collector on
/// `runtime`; returns it, its layer and what the collector receives.
fn exporting(runtime: &Runtime, daemon: &str) -> (SpanRecorder, SpanLayer, Requests) {
    let (endpoint, received) = collector(runtime);
    let (recorder, layer) = SpanRecorder::new(daemon, 64);
    recorder
        .start_export(&endpoint, runtime.handle())
        .expect("start export");
    (recorder, layer, received)
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

/// An OTLP span flattened with its resource's `service.name`.
#[derive(Debug)]
struct Received {
    service: String,
    scope: String,
    trace_id: String,
    parent_span_id: Option<String>,
    name: String,
    kind: i32,
    status: i32,
    attributes: Vec<(String, String)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn string_attrs(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("<not a string: {other:?}>"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// Receives requests until `want` spans arrived or [`WAIT`] passed; by span id.
fn receive(runtime: &Runtime, received: &mut Requests, want: usize) -> HashMap<String, Received> {
    let mut spans = HashMap::new();
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + WAIT;
        while spans.len() < want {
            let Ok(Some(request)) = tokio::time::timeout_at(deadline, received.recv()).await else {
                break;
            };
            for resource_spans in request.resource_spans {
                let resource = string_attrs(&resource_spans.resource.unwrap_or_default().attributes);
                let service = resource
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                for scope_spans in resource_spans.scope_spans {
                    let scope = scope_spans.scope.unwrap_or_default().name;
                    for span in scope_spans.spans {
                        let received = Received {
                            service: service.clone(),
                            scope: scope.clone(),
                            trace_id: hex(&span.trace_id),
                            parent_span_id: (!span.parent_span_id.is_empty())
                                .then(|| hex(&span.parent_span_id)),
                            name: span.name,
                            kind: span.kind,
                            status: span.status.unwrap_or_default().code,
                            attributes: string_attrs(&span.attributes),
                        };
                        spans.insert(hex(&span.span_id), received);
                    }
                }
            }
        }
    });
    spans
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
    let (recorder, layer, mut received) = exporting(&runtime, "virtnetworkd");
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
    let got = receive(&runtime, &mut received, 4);
    let ring = recorder.page(0, 100).spans;
    assert_eq!(ring.len(), 4);
    assert_eq!(got.len(), 4, "received {got:#?}");
    for span in &ring {
        let otlp = got
            .get(&span.span_id)
            .unwrap_or_else(|| panic!("span {} not exported", span.name));
        assert_eq!(otlp.name, span.name);
        assert_eq!(otlp.trace_id, span.trace_id);
        assert_eq!(otlp.parent_span_id, span.parent_span_id);
        assert_eq!(otlp.service, "virtnetworkd");
        assert_eq!(otlp.scope, "modvirt");
    }

    let call = by_name(&ring, "REMOTE.NETWORK_LOOKUP_BY_NAME");
    assert_eq!(call.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(call.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    let otlp = &got[&call.span_id];
    assert_eq!(otlp.kind, SpanKind::Server as i32);
    assert_eq!(otlp.status, StatusCode::Unset as i32);
    let attrs: Vec<(&str, &str)> = otlp
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
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
    assert_eq!(otlp.kind, SpanKind::Internal as i32);
    assert_eq!(otlp.attributes, [("network".to_owned(), "default".to_owned())]);

    let peer = &got[&by_name(&ring, "peer call").span_id];
    assert_eq!(peer.kind, SpanKind::Client as i32);
    assert_eq!(peer.status, StatusCode::Error as i32);
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
fn shutdown_flushes_what_is_queued() {
    let runtime = runtime();
    let (recorder, layer, mut received) = exporting(&runtime, "virtqemud");
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        for i in 0..10 {
            tracing::info_span!("phase", i).in_scope(|| {});
        }
    });
    shut_down_in_time(&runtime, &recorder);
    let got = receive(&runtime, &mut received, 10);
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
        .start_export(&format!("127.0.0.1:{port}"), runtime.handle())
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

/// The exporter and the collector on one current-thread runtime, driven only
/// while the daemon awaits shutdown: the flush must still complete.
#[test]
fn shutdown_on_a_current_thread_runtime_flushes_without_hanging() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (recorder, layer, mut received) = exporting(&runtime, "virtsecretd");
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        tracing::info_span!("phase", name = "drivers").in_scope(|| {});
    });
    shut_down_in_time(&runtime, &recorder);
    assert_eq!(receive(&runtime, &mut received, 1).len(), 1);
    assert_eq!((recorder.exported(), recorder.dropped()), (1, 0));
}
