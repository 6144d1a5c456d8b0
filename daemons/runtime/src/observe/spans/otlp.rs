//! OTLP/HTTP export of finished spans: binary protobuf
//! (`ExportTraceServiceRequest`) POSTed to the collector's `/v1/traces` with
//! `Content-Type: application/x-protobuf` (the `http/protobuf` protocol).
//!
//! One task on the daemon's runtime takes spans from a bounded queue and sends
//! a batch every second, or as soon as 512 spans wait. Each request carries one
//! resource (`service.name` = the daemon, `service.instance.id` = its pid) and
//! one scope (`modvirt`). A span's ids are the ring's; `otel.kind` gives its
//! kind (server, client, producer, consumer, else internal), `otel.status_code`
//! / `error = true` and `otel.status_message` its status, `otel.name` its name;
//! every other field is a string attribute. [`proto`] encodes the request,
//! [`http`] sends it over one kept-alive connection.
//!
//! A 2xx answer counts the batch as exported, less the spans its
//! `partial_success` says were rejected; any other status, or no answer,
//! counts the batch as dropped.
//!
//! Endpoints are `http://host:port/path` URLs (`http://` may be left out):
//! there is no TLS, the collector is expected on the host. The environment is
//! read as the OpenTelemetry SDKs do for `http/protobuf`:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is the URL as is (a URL without a path
//! posts to `/`); else `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL that
//! `/v1/traces` is appended to. `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, must be unset or `http/protobuf` (`grpc` and
//! `http/json` are refused). `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else
//! `OTEL_EXPORTER_OTLP_HEADERS`, adds headers to every request
//! (`key=value,key2=value2`, percent-decoded; read when export starts, also
//! for [`spawn`] with an explicit endpoint). `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none` turn export off.
//!
//! Failures never stall the daemon: a request times out after 5 s (connecting
//! after 1 s), its spans are counted as dropped and nothing is retried. A
//! warning (target `observe.otlp`) says so at most once a minute, with the
//! number of spans dropped since the previous one and the reason (for an
//! error status, the status and the start of the answer's body).

mod http;
mod proto;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

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
/// The one protocol spoken.
const PROTOCOL: &str = "http/protobuf";
/// What is appended to `OTEL_EXPORTER_OTLP_ENDPOINT`.
const TRACES_PATH: &str = "/v1/traces";
/// An error answer's body is quoted up to this many characters.
const BODY_EXCERPT: usize = 200;

/// Export cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("OTLP export is already running (to {endpoint})")]
    AlreadyStarted { endpoint: String },
    #[error("invalid OTLP endpoint '{endpoint}': {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error(
        "{var}={protocol} is not supported: spans are exported over OTLP with \
         http/protobuf only; set {var}=http/protobuf (or unset it) and point the \
         endpoint at the collector's OTLP/HTTP port (usually 4318)"
    )]
    UnsupportedProtocol { var: &'static str, protocol: String },
    #[error("invalid {var}: {reason}")]
    InvalidHeaders { var: &'static str, reason: String },
}

/// Reads the environment variable `name`: trimmed, `None` if unset or empty.
fn getter(var: impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> {
    move |name| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The first of `names` that is set, with its value.
fn first_set(
    get: &impl Fn(&str) -> Option<String>,
    names: [&'static str; 2],
) -> Option<(&'static str, String)> {
    names
        .into_iter()
        .find_map(|name| get(name).map(|value| (name, value)))
}

/// The traces URL the environment asks to export to, if any.
pub(super) fn endpoint_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<String>, ExportError> {
    let get = getter(var);
    let is = |name: &str, value: &str| get(name).is_some_and(|v| v.eq_ignore_ascii_case(value));
    if is("OTEL_SDK_DISABLED", "true") || is("OTEL_TRACES_EXPORTER", "none") {
        return Ok(None);
    }
    let endpoint = match get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        Some(url) => url,
        None => match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(base) => format!("{}{TRACES_PATH}", base.trim_end_matches('/')),
            None => return Ok(None),
        },
    };
    let protocol = first_set(
        &get,
        [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ],
    );
    match protocol {
        Some((var, protocol)) if !protocol.eq_ignore_ascii_case(PROTOCOL) => {
            Err(ExportError::UnsupportedProtocol { var, protocol })
        }
        _ => Ok(Some(endpoint)),
    }
}

/// The headers the environment adds to every request.
fn headers_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>, ExportError> {
    let get = getter(var);
    match first_set(
        &get,
        ["OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"],
    ) {
        Some((var, list)) => {
            parse_headers(&list).map_err(|reason| ExportError::InvalidHeaders { var, reason })
        }
        None => Ok(Vec::new()),
    }
}

/// `key=value` pairs separated by commas, both sides percent-decoded.
/// Messages name keys, never values (they often are credentials).
fn parse_headers(list: &str) -> Result<Vec<(String, String)>, String> {
    const OURS: [&str; 5] = [
        "host",
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
    ];
    let mut headers = Vec::new();
    for (i, entry) in list.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        let Some((key, value)) = entry.split_once('=') else {
            return Err(format!("entry {} is not key=value", i + 1));
        };
        let key = percent_decode(key.trim()).map_err(|e| format!("entry {}: {e}", i + 1))?;
        let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if key.is_empty() || !key.chars().all(is_tchar) {
            return Err(format!("entry {}: invalid header name", i + 1));
        }
        if OURS.iter().any(|ours| key.eq_ignore_ascii_case(ours)) {
            return Err(format!("header '{key}' is set by the exporter"));
        }
        let value = percent_decode(value.trim()).map_err(|e| format!("header '{key}': {e}"))?;
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("header '{key}': its value has a control character"));
        }
        headers.push((key, value));
    }
    Ok(headers)
}

fn percent_decode(text: &str) -> Result<String, &'static str> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        if byte == b'%' {
            let hex = after
                .get(..2)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or("invalid percent-encoding")?;
            bytes.push(hex);
            rest = &after[2..];
        } else {
            bytes.push(byte);
            rest = after;
        }
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 once percent-decoded")
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
    let endpoint = http::Endpoint::parse(endpoint).map_err(|reason| ExportError::InvalidEndpoint {
        endpoint: http::redacted(endpoint.trim()),
        reason,
    })?;
    let headers = headers_from_env(|name| std::env::var(name).ok())?;
    let url = endpoint.url.clone();
    let (queue, receiver) = mpsc::channel(EXPORT_QUEUE);
    let (stop, stop_receiver) = watch::channel(false);
    let exporter = Exporter {
        endpoint: url.clone(),
        origin: proto::Origin::new(service_name, SCOPE),
        // Connects on the first request, reconnects as needed.
        client: http::Client::new(endpoint, &headers),
        counters,
        stop: stop_receiver,
        deadline: None,
        warned_at: None,
        unreported: 0,
        failing: false,
    };
    let task = runtime.spawn(exporter.run(receiver));
    tracing::info!(target: TARGET, endpoint = %url, "exporting spans over OTLP/HTTP");
    Ok(ExportHandle {
        endpoint: url,
        queue,
        stop,
        task: Mutex::new(Some(task)),
    })
}

/// The export task's state.
#[derive(Debug)]
struct Exporter {
    endpoint: String,
    origin: proto::Origin,
    client: http::Client,
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
        let body = proto::export_request(&self.origin, batch);
        batch.clear();
        let outcome = {
            let mut stop = self.stop.clone();
            let send = self.client.post(&body);
            tokio::pin!(send);
            match self.deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, &mut send).await,
                None => tokio::select! {
                    outcome = tokio::time::timeout(REQUEST_TIMEOUT, &mut send) => outcome,
                    () = stopped(&mut stop) => {
                        let deadline = *self
                            .deadline
                            .get_or_insert_with(|| Instant::now() + DRAIN_TIME);
                        tokio::time::timeout_at(deadline, &mut send).await
                    }
                },
            }
        };
        match outcome {
            Ok(Ok(response)) if response.is_success() => {
                // An answer that is not an ExportTraceServiceResponse rejects nothing.
                let (rejected, message) = proto::partial_success(&response.body).unwrap_or_default();
                let rejected = rejected.min(n);
                self.counters
                    .exported
                    .fetch_add(n - rejected, std::sync::atomic::Ordering::Relaxed);
                if rejected > 0 {
                    let why = if message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", excerpt(&message))
                    };
                    self.failed(rejected, &format!("the collector rejected {rejected} spans{why}"));
                } else if self.failing {
                    self.failing = false;
                    tracing::info!(target: TARGET, endpoint = %self.endpoint, "span export works again");
                }
            }
            Ok(Ok(response)) => self.failed(n, &format!("the collector answered {}", summary(&response))),
            Ok(Err(error)) => self.failed(n, &error.to_string()),
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

/// An error answer in one line: `HTTP 503 Service Unavailable: <body>`, the
/// body's `google.rpc.Status` message if it is one, else its text, cut short.
fn summary(response: &http::Response) -> String {
    let mut text = format!("HTTP {} {}", response.status, response.reason)
        .trim_end()
        .to_owned();
    let protobuf = response
        .content_type
        .as_deref()
        .is_some_and(|t| t.contains("protobuf"));
    let detail = protobuf
        .then(|| proto::status_message(&response.body))
        .flatten()
        .unwrap_or_else(|| String::from_utf8_lossy(&response.body).into_owned());
    let detail = excerpt(&detail);
    if !detail.is_empty() {
        text.push_str(": ");
        text.push_str(&detail);
    }
    text
}

/// `text` on one line, at most [`BODY_EXCERPT`] characters.
fn excerpt(text: &str) -> String {
    let printable: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut words = printable.split_whitespace();
    let mut line = words.next().unwrap_or_default().to_owned();
    for word in words {
        line.push(' ');
        line.push_str(word);
    }
    match line.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn env(vars: &[(&str, &str)]) -> Result<Option<String>, ExportError> {
        endpoint_from_env(lookup(vars))
    }

    fn url(vars: &[(&str, &str)]) -> Option<String> {
        env(vars).ok().flatten()
    }

    #[test]
    fn the_environment_chooses_the_endpoint() {
        assert!(matches!(env(&[]), Ok(None)));
        assert!(matches!(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Ok(None)));
        let general = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318");
        let traces = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom");
        assert_eq!(url(&[general]).as_deref(), Some("http://a:4318/v1/traces"));
        assert_eq!(
            url(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318/otlp/")]).as_deref(),
            Some("http://a:4318/otlp/v1/traces"),
            "no double slash"
        );
        assert_eq!(url(&[general, traces]).as_deref(), Some("http://b:4318/custom"));
        assert_eq!(
            url(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318")]).as_deref(),
            Some("http://b:4318"),
            "the traces endpoint is used as is"
        );
        assert!(matches!(env(&[general, ("OTEL_SDK_DISABLED", "TRUE")]), Ok(None)));
        assert!(matches!(
            env(&[general, ("OTEL_TRACES_EXPORTER", "none")]),
            Ok(None)
        ));
    }

    #[test]
    fn only_http_protobuf_is_spoken() {
        let general = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318");
        assert!(url(&[general, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).is_some());
        for protocol in ["grpc", "http/json"] {
            let refused = env(&[general, ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)]);
            let Err(error @ ExportError::UnsupportedProtocol { var, .. }) = refused else {
                panic!("{protocol} accepted: {refused:?}");
            };
            assert_eq!(var, "OTEL_EXPORTER_OTLP_PROTOCOL");
            let message = error.to_string();
            assert!(
                message.starts_with(&format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported"
                )) && message.contains("set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
                "{message}"
            );
        }
        // The traces variable wins over the general one, both ways.
        assert!(
            url(&[
                general,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ])
            .is_some()
        );
        assert!(matches!(
            env(&[
                general,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ]),
            Err(ExportError::UnsupportedProtocol {
                var: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                ..
            })
        ));
    }

    #[test]
    fn headers_come_from_the_environment() {
        let headers = |vars: &[(&str, &str)]| headers_from_env(lookup(vars));
        assert!(matches!(headers(&[]), Ok(h) if h.is_empty()));
        let parsed = headers(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Basic%20dXNlcjpwdw%3D%3D, x-tenant = a%2Cb ,,empty=",
        )])
        .expect("headers");
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        assert_eq!(
            parsed,
            owned(&[
                ("Authorization", "Basic dXNlcjpwdw=="),
                ("x-tenant", "a,b"),
                ("empty", "")
            ])
        );
        assert_eq!(
            headers(&[
                ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"),
            ])
            .ok(),
            Some(owned(&[("b", "2")]))
        );
        for bad in [
            "novalue",
            "a b=1",
            "=1",
            "Host=evil",
            "content-length=1",
            "x=%0d%0aX-Injected: 1",
            "x=%zz",
            "x=%ff",
        ] {
            let error = headers(&[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", bad)]);
            assert!(
                matches!(
                    &error,
                    Err(ExportError::InvalidHeaders {
                        var: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                        ..
                    })
                ),
                "{bad:?}: {error:?}"
            );
        }
        let secret = headers(&[("OTEL_EXPORTER_OTLP_HEADERS", "token=s3cret%0a")]);
        let message = secret.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("token") && !message.contains("s3cret"),
            "{message}"
        );
    }

    #[test]
    fn endpoints_are_checked_when_export_starts() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let start = |endpoint: &str| spawn(endpoint, "virtqemud", Arc::default(), runtime.handle());
        for (bad, reason) in [
            ("https://collector:4318/v1/traces", "TLS is not supported"),
            ("http://user:pw@collector:4318", "credentials"),
            ("", "empty"),
        ] {
            let message = start(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(reason) && !message.contains("pw@"), "{message}");
        }
        let handle = start("127.0.0.1:4318/v1/traces").expect("export starts");
        assert_eq!(handle.endpoint(), "http://127.0.0.1:4318/v1/traces");
        runtime.block_on(handle.shutdown());
    }

    fn response(status: u16, reason: &str, content_type: Option<&str>, body: &[u8]) -> http::Response {
        http::Response {
            status,
            reason: reason.to_owned(),
            content_type: content_type.map(str::to_owned),
            body: body.to_vec(),
        }
    }

    #[test]
    fn error_answers_are_summed_up_in_one_line() {
        assert_eq!(
            summary(&response(
                404,
                "Not Found",
                Some("text/plain"),
                b"404 page not found\n"
            )),
            "HTTP 404 Not Found: 404 page not found"
        );
        assert_eq!(summary(&response(500, "", None, b"")), "HTTP 500");
        assert_eq!(
            summary(&response(500, "", None, b"no\r\n\x07 way\x00")),
            "HTTP 500: no way"
        );
        // google.rpc.Status { code: 3, message: "bad span" }
        let status = b"\x08\x03\x12\x08bad span";
        assert_eq!(
            summary(&response(
                400,
                "Bad Request",
                Some("application/x-protobuf"),
                status
            )),
            "HTTP 400 Bad Request: bad span"
        );
        let long = summary(&response(502, "Bad Gateway", None, "é".repeat(1000).as_bytes()));
        assert_eq!(
            long,
            format!("HTTP 502 Bad Gateway: {}…", "é".repeat(BODY_EXCERPT))
        );
    }
}
