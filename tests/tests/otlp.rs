//! Spans of a real daemon's RPC calls reach an OTLP collector: the test
//! hosts the harness's OTLP/HTTP collector on 127.0.0.1 and starts
//! `virtqemud` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at it (the daemon
//! appends `/v1/traces`); a real `virsh` call must arrive as a server span
//! with libvirt's RPC attributes, with the same trace id the daemon shows
//! over SPANS. A protocol other than http/protobuf is refused with a message
//! that says what to set.

use modvirt_tests::otlp_collector::{Answer, Collector};
use modvirt_tests::{Daemon, DaemonOptions, assert_logged, ok_stdout, virt_daemons};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use std::time::Duration;

#[test]
fn rpc_call_spans_reach_an_otlp_collector() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut collector = Collector::start(rt.handle(), Answer::Accept);
    let d = Daemon::start(
        "virtqemud",
        DaemonOptions {
            env: vec![("OTEL_EXPORTER_OTLP_ENDPOINT".into(), collector.base.clone())],
            ..Default::default()
        },
    );
    let host = ok_stdout(&d.virsh(&["hostname"]));
    assert!(!host.trim().is_empty());

    // Collect until the hostname call's span arrives (batches go out every second).
    let is_hostname = |s: &modvirt_tests::otlp_collector::ReceivedSpan| s.span.name == "CONNECT_GET_HOSTNAME";
    let spans =
        rt.block_on(collector.spans_until(Duration::from_secs(15), |spans| spans.iter().any(is_hostname)));
    let span = spans
        .into_iter()
        .find(is_hostname)
        .expect("the CONNECT_GET_HOSTNAME span never reached the collector");
    assert_eq!(span.service, "virtqemud");
    assert_eq!(span.span.kind, SpanKind::Server as i32);
    assert_eq!(span.attribute("rpc.system").as_deref(), Some("libvirt"));
    assert_eq!(span.attribute("rpc.service").as_deref(), Some("REMOTE"));
    assert_eq!(
        span.attribute("rpc.method").as_deref(),
        Some("CONNECT_GET_HOSTNAME")
    );
    assert_eq!(span.attribute("rpc.result").as_deref(), Some("ok"));
    let trace = virt_daemons(d.root.path(), &["trace", "--json"]);
    assert!(
        trace.contains(&span.trace_id()),
        "the exported trace id is the one the daemon shows over SPANS"
    );
}

#[test]
fn grpc_is_refused_with_what_to_set() {
    let d = Daemon::start(
        "virtqemud",
        DaemonOptions {
            env: vec![
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                    "http://127.0.0.1:4317".into(),
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "grpc".into()),
            ],
            ..Default::default()
        },
    );
    assert_logged(
        &d,
        "span export disabled: OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported",
    );
    assert_logged(&d, "set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf");
    // The daemon runs on without export.
    ok_stdout(&d.virsh(&["hostname"]));
}
