//! Spans of a real daemon's RPC calls reach an OTLP collector: the test
//! hosts an OTLP/gRPC `TraceService` on 127.0.0.1 and starts `virtqemud`
//! with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at it; a real `virsh`
//! call must arrive as a server span with libvirt's RPC attributes, with
//! the same trace id the daemon shows over SPANS.

use modvirt_tests::{Daemon, DaemonOptions, ok_stdout, virt_daemons};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

struct Collector {
    requests: mpsc::UnboundedSender<ExportTraceServiceRequest>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let _ = self.requests.send(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn rpc_call_spans_reach_an_otlp_collector() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    rt.spawn(Server::builder().serve_with_incoming(
        TraceServiceServer::new(Collector { requests: tx }),
        TcpIncoming::from(listener),
    ));
    let d = Daemon::start(
        "virtqemud",
        DaemonOptions {
            env: vec![("OTEL_EXPORTER_OTLP_ENDPOINT".into(), format!("http://{addr}"))],
            ..Default::default()
        },
    );
    let host = ok_stdout(&d.virsh(&["hostname"]));
    assert!(!host.trim().is_empty());

    // Collect until the hostname call's span arrives (batches go out every second).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut found = None;
    while found.is_none() && Instant::now() < deadline {
        let Ok(Some(req)) =
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), rx.recv()).await })
        else {
            continue;
        };
        for rs in &req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    if span.name == "CONNECT_GET_HOSTNAME" {
                        found = Some((service.clone(), span.clone()));
                    }
                }
            }
        }
    }
    let (service, span) = found.expect("the CONNECT_GET_HOSTNAME span never reached the collector");
    assert_eq!(service, "virtqemud");
    assert_eq!(span.kind, SpanKind::Server as i32);
    let attr = |k: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == k)
            .map(|a| text(&a.value))
    };
    assert_eq!(attr("rpc.system").as_deref(), Some("libvirt"));
    assert_eq!(attr("rpc.service").as_deref(), Some("REMOTE"));
    assert_eq!(attr("rpc.method").as_deref(), Some("CONNECT_GET_HOSTNAME"));
    assert_eq!(attr("rpc.result").as_deref(), Some("ok"));
    let trace = virt_daemons(d.root.path(), &["trace", "--json"]);
    assert!(
        trace.contains(&hex(&span.trace_id)),
        "the exported trace id is the one the daemon shows over SPANS"
    );
}
