//! OTLP/gRPC export of finished spans
//! (`opentelemetry.proto.collector.trace.v1.TraceService/Export`).
//!
//! One task on the daemon's runtime takes spans from a bounded queue and sends
//! a batch every second, or as soon as 512 spans wait. Each request carries one
//! resource (`service.name` = the daemon, `service.instance.id` = its pid) and
//! one scope (`modvirt`). A span's ids are the ring's; `otel.kind` gives its
//! kind (server, client, producer, consumer, else internal), `otel.status_code`
//! / `error = true` and `otel.status_message` its status, `otel.name` its name;
//! every other field is a string attribute.
//!
//! Endpoints are `http://host:port` (or `host:port`): there is no TLS, the
//! collector is expected on the host. The environment is read as the
//! OpenTelemetry SDKs do, for the gRPC protocol only:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (used as is: gRPC appends no path); `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` /
//! `OTEL_EXPORTER_OTLP_PROTOCOL` must be unset or `grpc`;
//! `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn export off.
//!
//! Failures never stall the daemon: a request times out after 5 s (connecting
//! after 1 s), its spans are counted as dropped and nothing is retried. A
//! warning (target `observe.otlp`) says so at most once a minute, with the
//! number of spans dropped since the previous one.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, SpanFlags, Status};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::transport::{Channel, Endpoint};

use super::{Counters, EXPORT_QUEUE, SpanRecord};

/// Spans per request at most.
const MAX_BATCH: usize = 512;
/// A partial batch waits at most this long.
const BATCH_INTERVAL: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Once stopping, the task sends what is queued for at most this long ...
const DRAIN_TIME: Duration = Duration::from_millis(1500);
/// ... and [`ExportHandle::shutdown`] waits for it at most this long.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// The instrumentation scope of every span.
const SCOPE: &str = "modvirt";
/// Where export problems are logged.
const TARGET: &str = "observe.otlp";

/// Export cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("OTLP export is already running (to {endpoint})")]
    AlreadyStarted { endpoint: String },
    #[error("invalid OTLP endpoint '{endpoint}': {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("OTLP protocol '{protocol}' is not supported: only grpc is")]
    UnsupportedProtocol { protocol: String },
}

/// The export endpoint the environment asks for, if any.
pub(super) fn endpoint_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<String>, ExportError> {
    let get = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let is = |name: &str, value: &str| get(name).is_some_and(|v| v.eq_ignore_ascii_case(value));
    if is("OTEL_SDK_DISABLED", "true") || is("OTEL_TRACES_EXPORTER", "none") {
        return Ok(None);
    }
    let Some(endpoint) =
        get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    else {
        return Ok(None);
    };
    let protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match protocol {
        Some(protocol) if protocol != "grpc" => Err(ExportError::UnsupportedProtocol { protocol }),
        _ => Ok(Some(endpoint)),
    }
}

/// `endpoint` as a gRPC URI: `http://` added if it has no scheme.
fn normalize_endpoint(endpoint: &str) -> Result<(String, Endpoint), ExportError> {
    let invalid = |reason: String| ExportError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let trimmed = endpoint.trim();
    let uri = match trimmed.split_once("://") {
        _ if trimmed.is_empty() => return Err(invalid("it is empty".to_owned())),
        None => format!("http://{trimmed}"),
        Some(("http", _)) => trimmed.to_owned(),
        Some(("https", _)) => {
            return Err(invalid(
                "TLS is not supported: use an http:// endpoint (a collector on the host)".to_owned(),
            ));
        }
        Some((scheme, _)) => return Err(invalid(format!("unsupported scheme '{scheme}'"))),
    };
    let parsed = Endpoint::from_shared(uri.clone()).map_err(|e| invalid(e.to_string()))?;
    if parsed.uri().host().is_none_or(str::is_empty) {
        return Err(invalid("it has no host".to_owned()));
    }
    let parsed = parsed.connect_timeout(CONNECT_TIMEOUT).timeout(REQUEST_TIMEOUT);
    Ok((uri, parsed))
}

/// The recorder's side of a running exporter.
#[derive(Debug)]
pub(super) struct ExportHandle {
    endpoint: String,
    queue: mpsc::Sender<Arc<SpanRecord>>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ExportHandle {
    pub(super) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Queues a finished span for export; false if the queue is full or the
    /// exporter has stopped.
    pub(super) fn offer(&self, record: Arc<SpanRecord>) -> bool {
        self.queue.try_send(record).is_ok()
    }

    /// Asks the task to send what is queued and stop; waits for it at most
    /// [`SHUTDOWN_TIMEOUT`], then aborts it.
    pub(super) async fn shutdown(&self) {
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut task) = task else {
            return;
        };
        // Fails only if the task is gone already.
        let _ = self.stop.send(true);
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut task).await.is_err() {
            task.abort();
        }
    }

    /// A handle whose queue nobody drains but the caller, for tests.
    #[cfg(test)]
    pub(super) fn detached(
        endpoint: &str,
        capacity: usize,
    ) -> (ExportHandle, mpsc::Receiver<Arc<SpanRecord>>) {
        let (queue, receiver) = mpsc::channel(capacity);
        let (stop, _) = watch::channel(false);
        let handle = ExportHandle {
            endpoint: endpoint.to_owned(),
            queue,
            stop,
            task: Mutex::new(None),
        };
        (handle, receiver)
    }
}

/// Starts the export task on `runtime`.
pub(super) fn spawn(
    endpoint: &str,
    service_name: &str,
    counters: Arc<Counters>,
    runtime: &tokio::runtime::Handle,
) -> Result<ExportHandle, ExportError> {
    let (uri, channel) = normalize_endpoint(endpoint)?;
    let (queue, receiver) = mpsc::channel(EXPORT_QUEUE);
    let (stop, stop_receiver) = watch::channel(false);
    let resource = resource(service_name);
    let task_uri = uri.clone();
    let task = runtime.spawn(async move {
        let exporter = Exporter {
            endpoint: task_uri,
            resource,
            // Lazy: connects on the first request, reconnects as needed.
            client: TraceServiceClient::new(channel.connect_lazy()),
            counters,
            stop: stop_receiver,
            deadline: None,
            warned_at: None,
            unreported: 0,
            failing: false,
        };
        exporter.run(receiver).await;
    });
    tracing::info!(target: TARGET, endpoint = %uri, "exporting spans over OTLP/gRPC");
    Ok(ExportHandle {
        endpoint: uri,
        queue,
        stop,
        task: Mutex::new(Some(task)),
    })
}

type ExportOutcome =
    Result<Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status>, tokio::time::error::Elapsed>;

/// The export task's state.
struct Exporter {
    endpoint: String,
    resource: Resource,
    client: TraceServiceClient<Channel>,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
    /// Set once stopping: everything must be sent by then.
    deadline: Option<Instant>,
    warned_at: Option<Instant>,
    /// Spans dropped since the last warning.
    unreported: u64,
    failing: bool,
}

/// Returns once a stop is asked for (or the handle is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: stop too.
    let _ = stop.wait_for(|stop| *stop).await;
}

impl Exporter {
    async fn run(mut self, mut queue: mpsc::Receiver<Arc<SpanRecord>>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut tick = tokio::time::interval_at(Instant::now() + BATCH_INTERVAL, BATCH_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stop = self.stop.clone();
        while self.deadline.is_none() {
            let room = MAX_BATCH - batch.len();
            tokio::select! {
                () = stopped(&mut stop) => self.begin_stop(),
                received = queue.recv_many(&mut batch, room) => {
                    if received == 0 {
                        // Every sender is gone.
                        self.begin_stop();
                    } else if batch.len() < MAX_BATCH {
                        continue;
                    }
                }
                _ = tick.tick() => {}
            }
            if !batch.is_empty() {
                self.export(&mut batch).await;
            }
        }
        // Spans that close from now on are refused (and counted by the recorder).
        queue.close();
        loop {
            while batch.len() < MAX_BATCH
                && let Ok(record) = queue.try_recv()
            {
                batch.push(record);
            }
            if batch.is_empty() {
                break;
            }
            if self.budget().is_zero() {
                let left = batch.len() + queue.len();
                self.failed(left as u64, "no time left to send them before exit");
                break;
            }
            self.export(&mut batch).await;
        }
    }

    fn begin_stop(&mut self) {
        self.deadline.get_or_insert_with(|| Instant::now() + DRAIN_TIME);
    }

    /// How long the next request may take.
    fn budget(&self) -> Duration {
        self.deadline.map_or(REQUEST_TIMEOUT, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        })
    }

    /// Sends `batch` (emptying it) and counts the outcome. A stop asked for
    /// meanwhile cuts the wait to what is left of the drain time.
    async fn export(&mut self, batch: &mut Vec<Arc<SpanRecord>>) {
        let n = batch.len() as u64;
        let request = request(&self.resource, batch);
        batch.clear();
        let mut client = self.client.clone();
        let send = client.export(request);
        tokio::pin!(send);
        let outcome: Option<ExportOutcome> = if self.deadline.is_some() {
            Some(tokio::time::timeout(self.budget(), &mut send).await)
        } else {
            let mut stop = self.stop.clone();
            tokio::select! {
                outcome = tokio::time::timeout(REQUEST_TIMEOUT, &mut send) => Some(outcome),
                () = stopped(&mut stop) => None,
            }
        };
        let outcome = match outcome {
            Some(outcome) => outcome,
            None => {
                self.begin_stop();
                tokio::time::timeout(self.budget(), &mut send).await
            }
        };
        match outcome {
            Ok(Ok(response)) => {
                let rejected = response
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
                    .min(n);
                self.counters
                    .exported
                    .fetch_add(n - rejected, std::sync::atomic::Ordering::Relaxed);
                if rejected > 0 {
                    self.failed(rejected, &format!("the collector rejected {rejected} spans"));
                } else if self.failing {
                    self.failing = false;
                    tracing::info!(target: TARGET, endpoint = %self.endpoint, "span export works again");
                }
            }
            Ok(Err(status)) => self.failed(n, &status_text(&status)),
            Err(_) => self.failed(n, "the collector did not answer in time"),
        }
    }

    fn failed(&mut self, n: u64, reason: &str) {
        self.counters
            .dropped
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.unreported += n;
        self.failing = true;
        let now = Instant::now();
        if self
            .warned_at
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
        {
            tracing::warn!(
                target: TARGET,
                endpoint = %self.endpoint,
                dropped = self.unreported,
                "cannot export spans over OTLP: {reason}"
            );
            self.warned_at = Some(now);
            self.unreported = 0;
        }
    }
}

/// A gRPC status with the causes of a transport error.
fn status_text(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn string_kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource(service_name: &str) -> Resource {
    Resource {
        attributes: vec![
            string_kv("service.name", service_name),
            string_kv("service.instance.id", std::process::id().to_string()),
        ],
        ..Default::default()
    }
}

/// One request for `batch`, all under `resource` and the `modvirt` scope.
fn request(resource: &Resource, batch: &[Arc<SpanRecord>]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                spans: batch.iter().map(|record| span(record)).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Fields that become OTLP span fields rather than attributes.
const SPECIAL: [&str; 5] = [
    "otel.kind",
    "otel.name",
    "otel.status_code",
    "otel.status_message",
    "otel.status_description",
];

fn span(record: &SpanRecord) -> Span {
    let attr_is = |key, value: &str| {
        record
            .attribute(key)
            .is_some_and(|v| v.eq_ignore_ascii_case(value))
    };
    let kind = ["server", "client", "producer", "consumer"]
        .into_iter()
        .zip([
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ])
        .find(|(name, _)| attr_is("otel.kind", name))
        .map_or(SpanKind::Internal, |(_, kind)| kind);
    let status = if record.is_error() {
        Status {
            code: StatusCode::Error as i32,
            message: record
                .attribute("otel.status_message")
                .or_else(|| record.attribute("otel.status_description"))
                .unwrap_or_default()
                .to_owned(),
        }
    } else if attr_is("otel.status_code", "ok") {
        Status {
            code: StatusCode::Ok as i32,
            message: String::new(),
        }
    } else {
        Status::default()
    };
    // Sampled, and whether the parent is remote (known for every span).
    let mut flags = 0x01 | SpanFlags::ContextHasIsRemoteMask as u32;
    if record.remote_parent {
        flags |= SpanFlags::ContextIsRemoteMask as u32;
    }
    Span {
        trace_id: record.trace_id.to_be_bytes().to_vec(),
        span_id: record.span_id.to_be_bytes().to_vec(),
        parent_span_id: record
            .parent_span_id
            .map_or_else(Vec::new, |p| p.to_be_bytes().to_vec()),
        flags,
        name: record.display_name().to_owned(),
        kind: kind as i32,
        start_time_unix_nano: record.start_unix_ns,
        end_time_unix_nano: record.start_unix_ns.saturating_add(record.duration_ns),
        attributes: record
            .attributes
            .iter()
            .filter(|(key, _)| !SPECIAL.contains(key))
            .map(|(key, value)| string_kv(key, value))
            .collect(),
        dropped_attributes_count: record.dropped_attributes,
        status: Some(status),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Result<Option<String>, ExportError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        endpoint_from_env(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_environment_chooses_the_endpoint() {
        assert!(matches!(env(&[]), Ok(None)));
        assert!(matches!(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Ok(None)));
        let general = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317");
        let traces = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4317");
        assert_eq!(env(&[general]).ok().flatten().as_deref(), Some("http://a:4317"));
        assert_eq!(
            env(&[general, traces]).ok().flatten().as_deref(),
            Some("http://b:4317")
        );
        assert!(matches!(env(&[general, ("OTEL_SDK_DISABLED", "TRUE")]), Ok(None)));
        assert!(matches!(
            env(&[general, ("OTEL_TRACES_EXPORTER", "none")]),
            Ok(None)
        ));
        assert!(matches!(
            env(&[general, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            Ok(Some(_))
        ));
        assert!(matches!(
            env(&[general, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]),
            Err(ExportError::UnsupportedProtocol { protocol }) if protocol == "http/protobuf"
        ));
        assert!(matches!(
            env(&[
                general,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ]),
            Ok(Some(_))
        ));
    }

    #[test]
    fn endpoints_are_http_uris_with_a_host() {
        let uri = |e: &str| normalize_endpoint(e).map(|(uri, _)| uri);
        assert_eq!(
            uri("localhost:4317").ok().as_deref(),
            Some("http://localhost:4317")
        );
        assert_eq!(
            uri(" http://127.0.0.1:4317 ").ok().as_deref(),
            Some("http://127.0.0.1:4317")
        );
        for bad in [
            "",
            "https://collector:4317",
            "unix:///run/otel.sock",
            "http://",
            "http://a b",
        ] {
            assert!(
                matches!(uri(bad), Err(ExportError::InvalidEndpoint { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    fn record(attributes: &[(&'static str, &str)], parent: Option<u64>, remote: bool) -> Arc<SpanRecord> {
        Arc::new(SpanRecord {
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            span_id: 0x00f0_67aa_0ba9_02b7,
            parent_span_id: parent,
            remote_parent: remote,
            name: Cow::Borrowed("REMOTE.CONNECT_OPEN"),
            start_unix_ns: 1_000,
            duration_ns: 500,
            attributes: super::super::layer::Attrs::from_pairs(attributes),
            dropped_attributes: 2,
        })
    }

    fn string(kv: &KeyValue) -> (&str, &str) {
        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.as_str(),
            _ => "<not a string>",
        };
        (kv.key.as_str(), value)
    }

    #[test]
    fn records_become_otlp_spans() {
        let server = record(
            &[
                ("otel.kind", "server"),
                ("rpc.method", "CONNECT_OPEN"),
                ("otel.status_code", "OK"),
            ],
            None,
            false,
        );
        let client = record(
            &[
                ("otel.kind", "client"),
                ("otel.status_code", "ERROR"),
                ("otel.status_message", "no such network"),
            ],
            Some(7),
            true,
        );
        let internal = record(&[("error", "true")], Some(7), false);
        let request = request(&resource("virtqemud"), &[server, client, internal]);
        let resource_spans = &request.resource_spans[0];
        let attrs: Vec<(&str, &str)> = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter().map(string))
            .collect();
        let pid = std::process::id().to_string();
        assert_eq!(
            attrs,
            [
                ("service.name", "virtqemud"),
                ("service.instance.id", pid.as_str())
            ]
        );
        let scope = &resource_spans.scope_spans[0];
        assert_eq!(scope.scope.as_ref().map(|s| s.name.as_str()), Some("modvirt"));
        let [server, client, internal] = &scope.spans[..] else {
            panic!("expected 3 spans, got {:?}", scope.spans);
        };
        assert_eq!(
            server.trace_id,
            0x4bf92f3577b34da6a3ce929d0e0e4736u128.to_be_bytes()
        );
        assert_eq!(server.span_id, 0x00f067aa0ba902b7u64.to_be_bytes());
        assert!(server.parent_span_id.is_empty());
        assert_eq!(server.name, "REMOTE.CONNECT_OPEN");
        assert_eq!(
            (server.start_time_unix_nano, server.end_time_unix_nano),
            (1_000, 1_500)
        );
        assert_eq!(server.kind, SpanKind::Server as i32);
        assert_eq!(
            server.status.as_ref().map(|s| s.code),
            Some(StatusCode::Ok as i32)
        );
        let attrs: Vec<(&str, &str)> = server.attributes.iter().map(string).collect();
        assert_eq!(attrs, [("rpc.method", "CONNECT_OPEN")]);
        assert_eq!(server.dropped_attributes_count, 2);
        assert_eq!(server.flags, 0x101);

        assert_eq!(client.kind, SpanKind::Client as i32);
        assert_eq!(client.parent_span_id, 7u64.to_be_bytes());
        assert_eq!(client.flags, 0x301);
        let status = client.status.clone().unwrap_or_default();
        assert_eq!(
            (status.code, status.message.as_str()),
            (StatusCode::Error as i32, "no such network")
        );
        assert!(client.attributes.is_empty());

        assert_eq!(internal.kind, SpanKind::Internal as i32);
        assert_eq!(
            internal.status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
        let attrs: Vec<(&str, &str)> = internal.attributes.iter().map(string).collect();
        assert_eq!(attrs, [("error", "true")]);
    }
}
