//! Cost of one RPC call span as the dispatcher creates it (release build):
//! `cargo test --release -p modvirt-runtime --test span_cost -- --ignored --nocapture`.

use modvirt_runtime::logging::{LogLevel, Logging};
use modvirt_runtime::observe::spans::SpanRecorder;
use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt;

#[test]
#[ignore = "a measurement, not a check"]
fn call_span_cost() {
    let (log, log_layer) =
        Logging::new_layer("t", LogLevel::Warning, None, Some("3:stderr"), "3:stderr").unwrap();
    let (rec, span_layer) = SpanRecorder::new("t", 4096);
    let sub = tracing_subscriber::registry().with(log_layer).with(span_layer);
    tracing::subscriber::with_default(sub, || {
        let n = 200_000u32;
        for round in 0..3 {
            let t = Instant::now();
            for i in 0..n {
                let span = tracing::info_span!(
                    target: "rpc.call",
                    "rpc.call",
                    otel.name = "CONNECT_GET_LIB_VERSION",
                    otel.kind = "server",
                    otel.status_code = tracing::field::Empty,
                    rpc.system = "libvirt",
                    rpc.service = "REMOTE",
                    rpc.method = "CONNECT_GET_LIB_VERSION",
                    rpc.client_pid = i,
                    rpc.result = tracing::field::Empty,
                );
                let keep = span.clone();
                {
                    let _e = span.enter();
                }
                span.record("rpc.result", "ok");
                drop(keep);
                drop(span);
            }
            let per = t.elapsed().as_nanos() as f64 / f64::from(n);
            println!("round {round}: {per:.0} ns per call span");
        }
        let t = Instant::now();
        for _ in 0..n {
            let span = tracing::Span::none();
            let _e = span.enter();
        }
        println!(
            "disabled span: {:.0} ns",
            t.elapsed().as_nanos() as f64 / f64::from(n)
        );
    });
    assert!(rec.recorded() > 0);
    drop(log);
}
