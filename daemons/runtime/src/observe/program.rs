//! The OBSERVE program on the admin socket (see `modvirt_wire::observe`):
//! STATUS, METRICS, SPANS and a WATCH stream. Its calls never make a client
//! count for the idle timer, so observers stay passive.

use super::snapshot;
use crate::client::Client;
use crate::daemon::DaemonShared;
use crate::dispatch::{self, CallContext, CallFuture, CallResult, ProgramHandler, decode_args, encode_ret};
use modvirt_wire::message::encode_frame;
use modvirt_wire::observe::{self as o, OBSERVE, WatchEvent, procs};
use modvirt_wire::program::Program;
use modvirt_wire::{ErrorCode, ErrorDomain, Header, MessageType, RpcError, Status, XdrEncode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most spans one SPANS call returns.
pub const SPANS_PAGE_MAX: u32 = 4096;
/// Fastest allowed WATCH interval.
pub const WATCH_MIN_INTERVAL_MS: u32 = 100;

/// The OBSERVE program handler; remembers each client's watch task.
#[derive(Debug, Default)]
pub struct ObserveProgram {
    watches: Arc<Mutex<HashMap<(String, u64), tokio::task::AbortHandle>>>,
}

fn json<T: serde::Serialize>(v: &T) -> CallResult {
    let text = serde_json::to_string(v).map_err(|e| {
        RpcError::plain(
            ErrorCode::INTERNAL_ERROR,
            ErrorDomain::ADMIN,
            format!("cannot encode document: {e}"),
        )
    })?;
    encode_ret(&o::Document { text })
}

fn event_frame(ev: &WatchEvent) -> Option<Vec<u8>> {
    let text = serde_json::to_string(ev).ok()?;
    let h = Header {
        prog: o::OBSERVE_PROGRAM,
        vers: o::OBSERVE_VERSION,
        proc_: procs::WATCH_EVENT,
        type_: MessageType::Message,
        serial: 0,
        status: Status::Ok,
    };
    Some(encode_frame(&h, |e| o::Document { text }.encode(e)))
}

/// Top-level fields of `new` that differ from `old`.
pub fn changes(
    old: &serde_json::Map<String, serde_json::Value>,
    new: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    new.iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Keys whose values move with the clock alone (ages, countdowns, times
/// derived from them) or are sampled (`process`): a change of only these is
/// not worth an event, except as a [`HEARTBEAT`].
const TIME_DERIVED: [&str; 7] = [
    "now_ms",
    "remaining_s",
    "age_s",
    "held_s",
    "started_ms",
    "since_ms",
    "process",
];

/// The longest a watcher goes without an event: then the time-derived
/// values are sent even if nothing else changed.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// `v` without its time-derived values, at any depth.
fn without_time(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.iter()
                .filter(|(k, _)| !TIME_DERIVED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), without_time(v)))
                .collect(),
        ),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(without_time).collect()),
        other => other.clone(),
    }
}

/// Whether `new` differs from `old` in more than time-derived values.
fn changed_beyond_time(
    old: &serde_json::Map<String, serde_json::Value>,
    new: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    let strip =
        |m: &serde_json::Map<String, serde_json::Value>| without_time(&serde_json::Value::Object(m.clone()));
    strip(old) != strip(new)
}

/// The WATCH stream of one client: the full status at once (it may
/// overtake the WATCH reply; clients keep it), then every `interval` the
/// top-level fields that changed — when something other than the clock
/// moved, or at least every [`HEARTBEAT`].
async fn watch(d: Arc<DaemonShared>, client: Arc<Client>, interval: Duration) {
    let status = snapshot::status(&d);
    let mut last = match serde_json::to_value(&status) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return,
    };
    if let Some(f) = event_frame(&WatchEvent::Full {
        status: Box::new(status),
    }) {
        client.send(&f).await;
    }
    let mut last_sent = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    while !client.is_closed() {
        tick.tick().await;
        let now = match serde_json::to_value(snapshot::status(&d)) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => continue,
        };
        if !changed_beyond_time(&last, &now) && last_sent.elapsed() < HEARTBEAT {
            continue;
        }
        let fields = changes(&last, &now);
        last = now;
        if fields.is_empty() {
            continue;
        }
        if let Some(f) = event_frame(&WatchEvent::Changes { fields }) {
            client.send(&f).await;
            last_sent = tokio::time::Instant::now();
        }
    }
}

impl ProgramHandler for ObserveProgram {
    fn program(&self) -> &'static Program {
        &OBSERVE
    }

    fn allowed_before_open(&self, procedure: i32) -> bool {
        matches!(procedure, procs::OPEN | procs::CLOSE)
    }

    fn call(&self, ctx: CallContext, payload: Vec<u8>) -> CallFuture {
        let watches = self.watches.clone();
        Box::pin(async move { call(&watches, &ctx, &payload) })
    }
}

type Watches = Mutex<HashMap<(String, u64), tokio::task::AbortHandle>>;

fn stop_watch(watches: &Watches, client: &Client) {
    let key = (client.server.clone(), client.id);
    if let Some(h) = watches.lock().unwrap_or_else(|e| e.into_inner()).remove(&key) {
        h.abort();
    }
}

fn call(watches: &Arc<Watches>, ctx: &CallContext, payload: &[u8]) -> CallResult {
    let p = ctx.procedure;
    let d = &ctx.daemon;
    match p.number {
        procs::OPEN => {
            let a: o::FlagsArgs = decode_args(payload)?;
            dispatch::check_flags(a.flags, 0, p)?;
            ctx.client.set_open(true);
            encode_ret(&())
        }
        procs::CLOSE => {
            stop_watch(watches, &ctx.client);
            ctx.client.set_open(false);
            encode_ret(&())
        }
        procs::STATUS => {
            let a: o::FlagsArgs = decode_args(payload)?;
            dispatch::check_flags(a.flags, 0, p)?;
            json(&snapshot::status(d))
        }
        procs::METRICS => {
            let a: o::FlagsArgs = decode_args(payload)?;
            dispatch::check_flags(a.flags, 0, p)?;
            let text = d.metrics.render(&snapshot::status(d));
            encode_ret(&o::Document { text })
        }
        procs::SPANS => {
            let a: o::SpansArgs = decode_args(payload)?;
            json(&d.spans.page(a.cursor, a.max.min(SPANS_PAGE_MAX) as usize))
        }
        procs::WATCH => {
            let a: o::WatchArgs = decode_args(payload)?;
            let interval = Duration::from_millis(a.interval_ms.max(WATCH_MIN_INTERVAL_MS).into());
            stop_watch(watches, &ctx.client);
            let task = tokio::spawn(watch(d.clone(), ctx.client.clone(), interval));
            let key = (ctx.client.server.clone(), ctx.client.id);
            watches
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, task.abort_handle());
            // Forget the entry when the task ends by itself (client gone).
            let w = watches.clone();
            let key = (ctx.client.server.clone(), ctx.client.id);
            tokio::spawn(async move {
                let _ = task.await;
                w.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            });
            encode_ret(&())
        }
        procs::UNWATCH => {
            stop_watch(watches, &ctx.client);
            encode_ret(&())
        }
        _ => Err(dispatch::no_support(p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_clock_alone_is_not_a_change() {
        let at = |now: u64, age: f64, remaining: f64, clients: u32| {
            json!({
                "times": {"exec_ms": 1, "now_ms": now},
                "idle": {"timeout_s": 120, "armed": true, "remaining_s": remaining, "inhibitors": [{"reason": "x", "since_ms": now - 5}]},
                "inflight": [{"id": 3, "procedure": "DOMAIN_SUSPEND", "age_s": age, "started_ms": now - 7}],
                "process": {"rss_bytes": now * 3},
                "clients": clients,
            })
            .as_object()
            .cloned()
            .unwrap()
        };
        assert!(!changed_beyond_time(
            &at(1000, 1.0, 9.0, 1),
            &at(1500, 1.5, 8.5, 1)
        ));
        assert!(changed_beyond_time(
            &at(1000, 1.0, 9.0, 1),
            &at(1500, 1.5, 8.5, 2)
        ));
        let mut other_call = at(1000, 1.0, 9.0, 1);
        other_call["inflight"][0]["id"] = json!(4);
        assert!(changed_beyond_time(&at(1000, 1.0, 9.0, 1), &other_call));
        // A countdown that starts or stops is a change; one that runs is not.
        let mut unarmed = at(1000, 1.0, 9.0, 1);
        unarmed["idle"]["armed"] = json!(false);
        unarmed["idle"]["remaining_s"] = serde_json::Value::Null;
        assert!(changed_beyond_time(&at(1000, 1.0, 9.0, 1), &unarmed));
    }

    #[test]
    fn changes_are_top_level_fields_that_differ() {
        let a = json!({"a": 1, "b": [1, 2], "c": "x"});
        let b = json!({"a": 1, "b": [1, 3], "c": "y", "d": true});
        let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (a, b) else {
            unreachable!()
        };
        let c = changes(&a, &b);
        let keys: Vec<_> = c.keys().cloned().collect();
        assert_eq!(keys, ["b", "c", "d"]);
    }
}
