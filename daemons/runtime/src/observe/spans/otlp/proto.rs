//! The protobuf encoding of OTLP trace export requests, written by hand for
//! the few fields we send (see `opentelemetry/proto/collector/trace/v1/
//! trace_service.proto`, `trace/v1/trace.proto`, `common/v1/common.proto` and
//! `resource/v1/resource.proto` in `open-telemetry/opentelemetry-proto`):
//!
//! ```text
//! ExportTraceServiceRequest { 1 resource_spans: ResourceSpans }
//! ResourceSpans        { 1 resource: Resource, 2 scope_spans: ScopeSpans }
//! Resource             { 1 attributes: KeyValue }
//! ScopeSpans           { 1 scope: InstrumentationScope, 2 spans: Span }
//! InstrumentationScope { 1 name: string, 2 version: string }
//! Span { 1 trace_id: bytes, 2 span_id: bytes, 4 parent_span_id: bytes,
//!        5 name: string, 6 kind: enum, 7 start_time_unix_nano: fixed64,
//!        8 end_time_unix_nano: fixed64, 9 attributes: KeyValue,
//!        10 dropped_attributes_count: uint32, 15 status: Status,
//!        16 flags: fixed32 }
//! Status   { 2 message: string, 3 code: enum }
//! KeyValue { 1 key: string, 2 value: AnyValue { 1 string_value: string } }
//! ```
//!
//! Fields are written in field-number order and, as proto3 does, left out
//! when they hold their default value (except a oneof member, whose presence
//! matters), so the bytes are what any protobuf library would write. A
//! message is written after a one-byte length placeholder that is widened
//! once its length is known.
//!
//! The decoder reads only what the exporter needs from replies:
//! `ExportTraceServiceResponse.partial_success` and `google.rpc.Status.message`
//! (the body of an OTLP/HTTP error). Unknown fields are skipped.

use std::sync::Arc;

use super::super::SpanRecord;

/// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// `Span.SpanKind`.
const KIND_INTERNAL: u64 = 1;
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
const KIND_PRODUCER: u64 = 4;
const KIND_CONSUMER: u64 = 5;

/// `Status.StatusCode` (unset is 0 and not written).
const STATUS_OK: u64 = 1;
const STATUS_ERROR: u64 = 2;

/// W3C trace flags: sampled.
const FLAG_SAMPLED: u32 = 0x01;
/// `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`: whether the parent is remote is known.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
/// `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`: the parent is remote.
const FLAG_IS_REMOTE: u32 = 0x200;

/// Fields that become OTLP span fields rather than attributes.
const SPECIAL: [&str; 5] = [
    "otel.kind",
    "otel.name",
    "otel.status_code",
    "otel.status_message",
    "otel.status_description",
];

/// Protobuf output.
#[derive(Debug, Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from(field << 3 | wire_type));
    }

    fn uint(&mut self, field: u32, value: u64) {
        self.key(field, VARINT);
        self.varint(value);
    }

    fn fixed64(&mut self, field: u32, value: u64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn fixed32(&mut self, field: u32, value: u32) {
        self.key(field, FIXED32);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn bytes(&mut self, field: u32, value: &[u8]) {
        self.key(field, LEN);
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A string field, left out when empty.
    fn string_if_set(&mut self, field: u32, value: &str) {
        if !value.is_empty() {
            self.string(field, value);
        }
    }

    /// A nested message whose fields `body` writes.
    fn message(&mut self, field: u32, body: impl FnOnce(&mut Writer)) {
        self.key(field, LEN);
        let at = self.buf.len();
        self.buf.push(0);
        body(self);
        let len = self.buf.len() - at - 1;
        let mut prefix = Writer::default();
        prefix.varint(len as u64);
        self.buf.splice(at..=at, prefix.buf);
    }

    /// A `KeyValue` with a string `AnyValue`.
    fn string_attribute(&mut self, field: u32, key: &str, value: &str) {
        self.message(field, |kv| {
            kv.string_if_set(1, key);
            // A oneof member: written even when empty.
            kv.message(2, |any| any.string(1, value));
        });
    }
}

/// The encoded `Resource` and `InstrumentationScope` every request carries.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl Origin {
    /// `service.name` = `service_name`, `service.instance.id` = our pid;
    /// scope `scope_name` at this crate's version.
    pub(super) fn new(service_name: &str, scope_name: &str) -> Origin {
        let mut resource = Writer::default();
        resource.string_attribute(1, "service.name", service_name);
        resource.string_attribute(1, "service.instance.id", &std::process::id().to_string());
        let mut scope = Writer::default();
        scope.string_if_set(1, scope_name);
        scope.string_if_set(2, env!("CARGO_PKG_VERSION"));
        Origin {
            resource: resource.buf,
            scope: scope.buf,
        }
    }
}

/// An `ExportTraceServiceRequest` with `batch`, all under `origin`.
pub(super) fn export_request(origin: &Origin, batch: &[Arc<SpanRecord>]) -> Vec<u8> {
    let mut w = Writer {
        buf: Vec::with_capacity(64 + 256 * batch.len()),
    };
    w.message(1, |resource_spans| {
        resource_spans.bytes(1, &origin.resource);
        resource_spans.message(2, |scope_spans| {
            scope_spans.bytes(1, &origin.scope);
            for record in batch {
                scope_spans.message(2, |span_w| span(span_w, record));
            }
        });
    });
    w.buf
}

fn span(w: &mut Writer, record: &SpanRecord) {
    let attr_is = |key, value: &str| {
        record
            .attribute(key)
            .is_some_and(|v| v.eq_ignore_ascii_case(value))
    };
    let kind = [
        ("server", KIND_SERVER),
        ("client", KIND_CLIENT),
        ("producer", KIND_PRODUCER),
        ("consumer", KIND_CONSUMER),
    ]
    .into_iter()
    .find(|(name, _)| attr_is("otel.kind", name))
    .map_or(KIND_INTERNAL, |(_, kind)| kind);
    // Sampled, and whether the parent is remote (known for every span).
    let mut flags = FLAG_SAMPLED | FLAG_HAS_IS_REMOTE;
    if record.remote_parent {
        flags |= FLAG_IS_REMOTE;
    }

    w.bytes(1, &record.trace_id.to_be_bytes());
    w.bytes(2, &record.span_id.to_be_bytes());
    if let Some(parent) = record.parent_span_id {
        w.bytes(4, &parent.to_be_bytes());
    }
    w.string_if_set(5, record.display_name());
    w.uint(6, kind);
    w.fixed64(7, record.start_unix_ns);
    w.fixed64(8, record.start_unix_ns.saturating_add(record.duration_ns));
    for (key, value) in record.attributes.iter() {
        if !SPECIAL.contains(&key) {
            w.string_attribute(9, key, value);
        }
    }
    if record.dropped_attributes > 0 {
        w.uint(10, u64::from(record.dropped_attributes));
    }
    if record.is_error() {
        let message = record
            .attribute("otel.status_message")
            .or_else(|| record.attribute("otel.status_description"))
            .unwrap_or_default();
        w.message(15, |status| {
            status.string_if_set(2, message);
            status.uint(3, STATUS_ERROR);
        });
    } else if attr_is("otel.status_code", "ok") {
        w.message(15, |status| status.uint(3, STATUS_OK));
    }
    w.fixed32(16, flags);
}

/// A reply the decoder could not read.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Malformed;

/// One field of a message being read.
enum Value<'a> {
    Varint(u64),
    Len(&'a [u8]),
    /// Fixed-size values are skipped.
    Fixed,
}

/// Reads the fields of one message.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.rest.split_first().ok_or(Malformed)?;
            self.rest = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.rest.len() {
            return Err(Malformed);
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    /// The next field number and value, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, Malformed> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match (key & 7) as u32 {
            VARINT => Value::Varint(self.varint()?),
            FIXED64 => self.take(8).map(|_| Value::Fixed)?,
            LEN => {
                let len = usize::try_from(self.varint()?).map_err(|_| Malformed)?;
                Value::Len(self.take(len)?)
            }
            FIXED32 => self.take(4).map(|_| Value::Fixed)?,
            // Groups (3, 4) are not used by these messages.
            _ => return Err(Malformed),
        };
        Ok(Some((key >> 3, value)))
    }
}

/// The `partial_success` of an `ExportTraceServiceResponse`: how many spans
/// the collector rejected, and its message (both may be empty).
pub(super) fn partial_success(body: &[u8]) -> Result<(u64, String), Malformed> {
    let mut rejected = 0;
    let mut message = String::new();
    let mut response = Reader { rest: body };
    while let Some((number, value)) = response.field()? {
        let (1, Value::Len(partial)) = (number, value) else {
            continue;
        };
        let mut partial = Reader { rest: partial };
        while let Some((number, value)) = partial.field()? {
            match (number, value) {
                // int64: a negative count (a broken collector) reads as none.
                (1, Value::Varint(n)) => rejected = if (n as i64) < 0 { 0 } else { n },
                (2, Value::Len(text)) => message = String::from_utf8_lossy(text).into_owned(),
                _ => {}
            }
        }
    }
    Ok((rejected, message))
}

/// The message of a `google.rpc.Status` (field 2), if `body` is one with a
/// message.
pub(super) fn status_message(body: &[u8]) -> Option<String> {
    let mut status = Reader { rest: body };
    let mut message = None;
    while let Some((number, value)) = status.field().ok()? {
        if let (2, Value::Len(text)) = (number, value) {
            message = Some(std::str::from_utf8(text).ok()?.to_owned());
        }
    }
    message.filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use opentelemetry_proto::tonic::trace::v1::{Span, SpanFlags};
    use prost::Message;

    fn record(attributes: &[(&'static str, &str)], parent: Option<u64>, remote: bool) -> Arc<SpanRecord> {
        Arc::new(SpanRecord {
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            span_id: 0x00f0_67aa_0ba9_02b7,
            parent_span_id: parent,
            remote_parent: remote,
            name: Cow::Borrowed("REMOTE.CONNECT_OPEN"),
            start_unix_ns: 1_700_000_000_123_456_789,
            duration_ns: 500,
            attributes: super::super::super::layer::Attrs::from_pairs(attributes),
            dropped_attributes: 2,
        })
    }

    /// Encodes `batch`, decodes it with prost and checks that prost writes
    /// the same bytes back (field order, defaults left out, lengths).
    fn round_trip(batch: &[Arc<SpanRecord>]) -> ExportTraceServiceRequest {
        let bytes = export_request(&Origin::new("virtqemud", "modvirt"), batch);
        let decoded = ExportTraceServiceRequest::decode(&bytes[..]).expect("prost decodes our bytes");
        assert_eq!(decoded.encode_to_vec(), bytes, "prost re-encodes the same bytes");
        decoded
    }

    fn string(kv: &KeyValue) -> (&str, &str) {
        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.as_str(),
            _ => "<not a string>",
        };
        (kv.key.as_str(), value)
    }

    fn varint(value: u64) -> Vec<u8> {
        let mut w = Writer::default();
        w.varint(value);
        w.buf
    }

    #[test]
    fn varints_are_little_endian_groups_of_seven_bits() {
        assert_eq!(varint(0), [0]);
        assert_eq!(varint(1), [1]);
        assert_eq!(varint(127), [0x7f]);
        assert_eq!(varint(128), [0x80, 0x01]);
        assert_eq!(varint(300), [0xac, 0x02]);
        assert_eq!(varint(16_384), [0x80, 0x80, 0x01]);
        assert_eq!(
            varint(u64::MAX),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let bytes = varint(value);
            assert_eq!(prost::encoding::decode_varint(&mut &bytes[..]).ok(), Some(value));
            assert_eq!(Reader { rest: &bytes }.varint(), Ok(value));
        }
    }

    #[test]
    fn message_lengths_widen_past_one_byte() {
        for len in [0, 1, 127, 128, 16_383, 16_384, 70_000] {
            let text = "x".repeat(len);
            let mut w = Writer::default();
            w.message(9, |m| m.string(1, &text));
            let mut expected = Writer::default();
            expected.key(9, LEN);
            expected.varint((len + 1 + varint(len as u64).len()) as u64);
            expected.string(1, &text);
            assert_eq!(w.buf, expected.buf, "string of {len}");
        }
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
        let internal = record(&[("error", "true"), ("empty", "")], Some(7), false);
        let request = round_trip(&[server, client, internal]);

        let [resource_spans] = &request.resource_spans[..] else {
            panic!("one ResourceSpans expected: {request:?}");
        };
        assert_eq!(resource_spans.schema_url, "");
        let resource = resource_spans.resource.clone().unwrap_or_default();
        let attrs: Vec<(&str, &str)> = resource.attributes.iter().map(string).collect();
        let pid = std::process::id().to_string();
        assert_eq!(
            attrs,
            [
                ("service.name", "virtqemud"),
                ("service.instance.id", pid.as_str())
            ]
        );
        assert_eq!(resource.dropped_attributes_count, 0);
        let [scope_spans] = &resource_spans.scope_spans[..] else {
            panic!("one ScopeSpans expected: {resource_spans:?}");
        };
        let scope = scope_spans.scope.clone().unwrap_or_default();
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            ("modvirt", env!("CARGO_PKG_VERSION"))
        );
        let [server, client, internal] = &scope_spans.spans[..] else {
            panic!("expected 3 spans, got {:?}", scope_spans.spans);
        };

        assert_eq!(
            server.trace_id,
            0x4bf92f3577b34da6a3ce929d0e0e4736u128.to_be_bytes()
        );
        assert_eq!(server.span_id, 0x00f067aa0ba902b7u64.to_be_bytes());
        assert_eq!(server.trace_state, "");
        assert!(server.parent_span_id.is_empty());
        assert_eq!(server.name, "REMOTE.CONNECT_OPEN");
        assert_eq!(server.kind, SpanKind::Server as i32);
        assert_eq!(
            (server.start_time_unix_nano, server.end_time_unix_nano),
            (1_700_000_000_123_456_789, 1_700_000_000_123_457_289)
        );
        let attrs: Vec<(&str, &str)> = server.attributes.iter().map(string).collect();
        assert_eq!(attrs, [("rpc.method", "CONNECT_OPEN")]);
        assert_eq!(server.dropped_attributes_count, 2);
        assert_eq!(
            server.status.as_ref().map(|s| (s.code, s.message.as_str())),
            Some((StatusCode::Ok as i32, ""))
        );
        assert_eq!(server.flags, 0x101);
        assert_eq!(server.flags & SpanFlags::ContextHasIsRemoteMask as u32, 0x100);
        assert!(server.events.is_empty() && server.links.is_empty());

        assert_eq!(client.kind, SpanKind::Client as i32);
        assert_eq!(client.parent_span_id, 7u64.to_be_bytes());
        assert_eq!(client.flags, 0x301);
        assert_eq!(client.flags & SpanFlags::ContextIsRemoteMask as u32, 0x200);
        let status = client.status.clone().unwrap_or_default();
        assert_eq!(
            (status.code, status.message.as_str()),
            (StatusCode::Error as i32, "no such network")
        );
        assert!(client.attributes.is_empty());

        assert_eq!(internal.kind, SpanKind::Internal as i32);
        assert_eq!(internal.flags, 0x101);
        assert_eq!(
            internal.status.as_ref().map(|s| (s.code, s.message.as_str())),
            Some((StatusCode::Error as i32, ""))
        );
        let attrs: Vec<(&str, &str)> = internal.attributes.iter().map(string).collect();
        assert_eq!(attrs, [("error", "true"), ("empty", "")]);
    }

    #[test]
    fn kinds_names_and_unset_status() {
        let batch: Vec<_> = ["producer", "CONSUMER", "bogus"]
            .into_iter()
            .map(|kind| record(&[("otel.kind", kind), ("otel.name", "renamed")], None, false))
            .collect();
        let request = round_trip(&batch);
        let spans: &[Span] = &request.resource_spans[0].scope_spans[0].spans;
        let kinds: Vec<i32> = spans.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                SpanKind::Producer as i32,
                SpanKind::Consumer as i32,
                SpanKind::Internal as i32
            ]
        );
        for span in spans {
            assert_eq!(span.name, "renamed");
            assert!(span.attributes.is_empty(), "{:?}", span.attributes);
            assert_eq!(span.status, None, "unset status is left out");
        }
    }

    #[test]
    fn a_full_batch_round_trips() {
        let long = "v".repeat(300);
        let batch: Vec<_> = (0..512u64)
            .map(|i| {
                let mut r = record(&[("key", long.as_str()), ("otel.kind", "server")], Some(i), false);
                if let Some(r) = Arc::get_mut(&mut r) {
                    r.span_id = i + 1;
                    r.trace_id = u128::MAX - u128::from(i);
                    r.dropped_attributes = 0;
                }
                r
            })
            .collect();
        let request = round_trip(&batch);
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 512);
        for (i, span) in (0u64..).zip(spans) {
            assert_eq!(span.span_id, (i + 1).to_be_bytes());
            assert_eq!(span.parent_span_id, i.to_be_bytes());
            assert_eq!(span.trace_id, (u128::MAX - u128::from(i)).to_be_bytes());
            assert_eq!(span.attributes[0].key, "key");
            assert_eq!(span.dropped_attributes_count, 0);
        }
    }

    #[test]
    fn partial_success_is_read_from_replies() {
        let reply = |rejected_spans, error_message: &str| {
            ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans,
                    error_message: error_message.to_owned(),
                }),
            }
            .encode_to_vec()
        };
        assert_eq!(partial_success(&[]), Ok((0, String::new())));
        assert_eq!(
            partial_success(&reply(3, "too old")),
            Ok((3, "too old".to_owned()))
        );
        assert_eq!(partial_success(&reply(-1, "")), Ok((0, String::new())));
        // Unknown fields of every wire type are skipped.
        let mut w = Writer::default();
        w.uint(7, 1);
        w.fixed64(8, 2);
        w.fixed32(9, 3);
        w.string(10, "x");
        w.buf.extend(reply(5, ""));
        assert_eq!(partial_success(&w.buf), Ok((5, String::new())));
        assert_eq!(partial_success(&[0x0a, 0x05, 0x08]), Err(Malformed));
        assert_eq!(partial_success(b"{\"partialSuccess\":{}}"), Err(Malformed));
    }

    #[test]
    fn error_bodies_give_their_status_message() {
        let mut status = Writer::default();
        status.uint(1, 3);
        status.string(2, "invalid span id");
        assert_eq!(status_message(&status.buf).as_deref(), Some("invalid span id"));
        assert_eq!(status_message(&[]), None);
        assert_eq!(status_message(b"404 page not found\n"), None);
    }
}
