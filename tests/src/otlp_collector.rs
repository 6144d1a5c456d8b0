//! An in-process OTLP/HTTP collector for span-export tests.
//!
//! It listens on 127.0.0.1 and serves HTTP/1.1 on each connection it accepts,
//! request after request: `POST /v1/traces` with `Content-Type:
//! application/x-protobuf`, a `Host` and a `Content-Length`; the body is
//! decoded with prost's `ExportTraceServiceRequest`. It answers as told
//! ([`Answer`]): `200` with an empty `ExportTraceServiceResponse`, an error
//! status, closing the connection, or nothing at all. A request that breaks
//! the protocol makes the test fail when it next reads spans.
//!
//! `daemons/runtime/tests/otlp.rs` includes this file with `#[path]` (the
//! runtime's tests cannot depend on this crate), so it uses only tokio,
//! opentelemetry-proto and prost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How the collector answers each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `200 OK` with an empty `ExportTraceServiceResponse`.
    Accept,
    /// This status with a short text body; the connection stays open.
    Status(u16),
    /// Closes the connection without answering.
    Close,
    /// Never answers.
    Silence,
}

/// What the collector's connections report: a decoded request, or how a
/// request broke the protocol.
type Report = Result<ExportTraceServiceRequest, String>;

/// A running collector; it stops with the runtime it runs on.
#[derive(Debug)]
pub struct Collector {
    /// `http://127.0.0.1:PORT`, a base URL as `OTEL_EXPORTER_OTLP_ENDPOINT` takes.
    pub base: String,
    reports: mpsc::UnboundedReceiver<Report>,
    connections: Arc<AtomicUsize>,
}

/// A received span with the `service.name` of its resource and its scope's name.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service: String,
    pub scope: String,
    pub span: Span,
}

impl ReceivedSpan {
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    pub fn parent_span_id(&self) -> Option<String> {
        (!self.span.parent_span_id.is_empty()).then(|| hex(&self.span.parent_span_id))
    }

    /// The attributes, values as text.
    pub fn attributes(&self) -> Vec<(String, String)> {
        self.span.attributes.iter().map(key_text).collect()
    }

    pub fn attribute(&self, key: &str) -> Option<String> {
        self.attributes()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Lowercase hex of `bytes` (ids as the daemons show them).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        other => format!("<{other:?}>"),
    }
}

fn key_text(kv: &KeyValue) -> (String, String) {
    (kv.key.clone(), text(kv.value.as_ref()))
}

impl Collector {
    /// Starts a collector answering `answer`, its tasks on `runtime` (they
    /// run only while that runtime is driven).
    pub fn start(runtime: &tokio::runtime::Handle, answer: Answer) -> Collector {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the collector");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let base = format!("http://{}", listener.local_addr().expect("collector address"));
        let (report, reports) = mpsc::unbounded_channel();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((conn, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(conn, answer, report.clone()));
            }
        });
        Collector {
            base,
            reports,
            connections,
        }
    }

    /// The traces URL: the base and `/v1/traces`.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.base)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Receives requests until `enough` holds for the spans received so far
    /// or `wait` has passed; returns those spans. Panics if a request broke
    /// the protocol.
    pub async fn spans_until(
        &mut self,
        wait: Duration,
        mut enough: impl FnMut(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut spans = Vec::new();
        while !enough(&spans) {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(Ok(request))) => spans.extend(flatten(request)),
                Ok(Some(Err(broken))) => panic!("the exporter broke OTLP/HTTP: {broken}"),
                Ok(None) | Err(_) => break,
            }
        }
        spans
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.unwrap_or_default();
        let service = resource
            .attributes
            .iter()
            .map(key_text)
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v)
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans.scope.unwrap_or_default().name;
            spans.extend(scope_spans.spans.into_iter().map(|span| ReceivedSpan {
                service: service.clone(),
                scope: scope.clone(),
                span,
            }));
        }
    }
    spans
}

/// Serves one connection's requests in turn.
async fn serve(mut conn: TcpStream, answer: Answer, report: mpsc::UnboundedSender<Report>) {
    let mut buf = Vec::new();
    // The test may have stopped listening: sends are allowed to fail.
    while let Some(request) = read_request(&mut conn, &mut buf).await {
        let _ = report.send(request);
        let reply = match answer {
            Answer::Accept => {
                let body = ExportTraceServiceResponse::default().encode_to_vec();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                [head.into_bytes(), body].concat()
            }
            Answer::Status(status) => format!(
                "HTTP/1.1 {status} Test Status\r\nContent-Type: text/plain\r\nContent-Length: 17\r\n\r\ncollector says no"
            )
            .into_bytes(),
            Answer::Close => return,
            Answer::Silence => {
                // Keep the connection open, unanswered, until the client goes.
                let _ = conn.read_to_end(&mut buf).await;
                return;
            }
        };
        if conn.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Reads one request from `conn` (`buf` keeps what follows it); `None` once
/// the client has closed the connection (or broke it: that is reported).
async fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Report> {
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if conn.read_buf(buf).await.ok()? == 0 {
            return (!buf.is_empty()).then(|| Err("the connection closed inside a request head".to_owned()));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let length = header("content-length").and_then(|l| l.parse::<usize>().ok());
    let checks = [
        (request_line == "POST /v1/traces HTTP/1.1", "the request line"),
        (header("host").is_some(), "Host"),
        (
            header("content-type") == Some("application/x-protobuf"),
            "Content-Type",
        ),
        (length.is_some(), "Content-Length"),
        (header("transfer-encoding").is_none(), "Transfer-Encoding"),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Some(Err(format!("unexpected {what} in:\n{head}")));
    }
    let length = length.unwrap_or_default();
    while buf.len() < head_end + length {
        if conn.read_buf(buf).await.ok()? == 0 {
            return Some(Err(format!(
                "the connection closed inside a body of {length} bytes"
            )));
        }
    }
    let body: Vec<u8> = buf.drain(..head_end + length).skip(head_end).collect();
    Some(ExportTraceServiceRequest::decode(&body[..]).map_err(|e| format!("undecodable body: {e}")))
}
