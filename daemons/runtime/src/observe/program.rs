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

async fn watch(d: Arc<DaemonShared>, client: Arc<Client>, interval: Duration) {
    // The WATCH reply is written after this task starts: give it a head
    // start so the stream's first frame follows the reply, as clients expect.
    tokio::time::sleep(Duration::from_millis(50).min(interval)).await;
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
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    while !client.is_closed() {
        tick.tick().await;
        let now = match serde_json::to_value(snapshot::status(&d)) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => continue,
        };
        let fields = changes(&last, &now);
        last = now;
        if fields.is_empty() {
            continue;
        }
        if let Some(f) = event_frame(&WatchEvent::Changes { fields }) {
            client.send(&f).await;
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
