//! `virt-daemons watch NAME`: one line per WATCH event of a running daemon.
//!
//! The daemon sends the full STATUS first, then the top-level fields that
//! changed. [`Watcher`] removes the observer's own traces (its passive
//! connection, its OBSERVE calls) from both, as [`super::forget_self`]
//! does for `status`, and drops fields that did not change once those are
//! left out. The renderers are pure: an event in, one line out.

use super::{fmt_secs, forget_self};
use crate::discover::{Discovery, KnownDaemon, MODVIRT_DAEMONS};
use modvirt_wire::observe::{Client, DaemonStatus, Idle, InflightCall, WatchEvent};
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// How many clients or calls a summary names before `+N more`.
const LIST_MAX: usize = 3;

/// The daemon called `name`; an unknown name is an error that lists the
/// known ones.
pub fn find<'a>(discovery: &'a Discovery, name: &str) -> Result<&'a KnownDaemon, String> {
    discovery.find(name).ok_or_else(|| {
        let mut known: Vec<&str> = discovery.daemons.iter().map(|d| d.name.as_str()).collect();
        known.extend(MODVIRT_DAEMONS);
        known.sort_unstable();
        known.dedup();
        format!("unknown daemon {name:?}; known daemons: {}", known.join(", "))
    })
}

/// Follows a WATCH stream: filters out the observer itself and keeps the
/// current state, so that only real changes are shown.
#[derive(Debug)]
pub struct Watcher {
    own_pid: i32,
    current: Option<Map<String, Value>>,
}

impl Watcher {
    pub fn new(own_pid: i32) -> Watcher {
        Watcher {
            own_pid,
            current: None,
        }
    }

    /// Whether a full state was seen (changes are relative to it).
    pub fn has_state(&self) -> bool {
        self.current.is_some()
    }

    /// The event to show, without the observer's own traces; `None` when
    /// nothing is left that changed.
    pub fn accept(&mut self, event: WatchEvent) -> Option<WatchEvent> {
        match event {
            WatchEvent::Full { mut status } => {
                forget_self(&mut status, self.own_pid);
                let Ok(Value::Object(new)) = serde_json::to_value(&*status) else {
                    return Some(WatchEvent::Full { status });
                };
                match self.current.replace(new) {
                    None => Some(WatchEvent::Full { status }),
                    // A second full state (a WATCH started again): only
                    // what differs from the state already shown is news.
                    Some(old) => {
                        let fields: Map<String, Value> = self
                            .current
                            .iter()
                            .flatten()
                            .filter(|(k, v)| old.get(*k) != Some(*v))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        (!fields.is_empty()).then_some(WatchEvent::Changes { fields })
                    }
                }
            }
            WatchEvent::Changes { fields } => {
                let mut kept = Map::new();
                for (k, mut v) in fields {
                    self.forget_self_in(&k, &mut v);
                    if let Some(cur) = self.current.as_mut() {
                        if cur.get(&k) == Some(&v) {
                            continue;
                        }
                        cur.insert(k.clone(), v.clone());
                    }
                    kept.insert(k, v);
                }
                (!kept.is_empty()).then_some(WatchEvent::Changes { fields: kept })
            }
        }
    }

    /// [`forget_self`] on the JSON value of one top-level field.
    fn forget_self_in(&self, field: &str, v: &mut Value) {
        let own = Value::from(self.own_pid);
        let Some(items) = v.as_array_mut() else {
            return;
        };
        match field {
            "clients" => items.retain(|c| !(c["passive"] == true && c["process"]["pid"] == own)),
            "inflight" => items.retain(|c| !(c["program"] == "OBSERVE" && c["client"]["pid"] == own)),
            _ => {}
        }
    }
}

/// One JSON line: the event as the daemon's schema spells it.
pub fn render_json(event: &WatchEvent) -> String {
    let mut s = serde_json::to_string(event).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// The line that says the watch ended because the daemon went away.
pub fn render_ended_json(name: &str, reason: &str) -> String {
    let v = serde_json::json!({ "type": "ended", "name": name, "reason": reason });
    format!("{v}\n")
}

pub fn render_ended_text(name: &str, reason: &str, now_ms: u64) -> String {
    format!("{} {name}: watch ended: {reason}\n", clock(now_ms))
}

/// One text line; `now_ms` (the observer's clock) dates events that carry
/// no time of their own.
pub fn render_text(name: &str, event: &WatchEvent, now_ms: u64) -> String {
    match event {
        WatchEvent::Full { status } => full_line(status),
        WatchEvent::Changes { fields } => changes_line(name, fields, now_ms),
    }
}

fn full_line(s: &DaemonStatus) -> String {
    format!(
        "{} {} pid {}: {}; {}; {}; idle: {}\n",
        clock(s.times.now_ms),
        s.name,
        s.pid,
        s.state,
        clients_summary(&s.clients),
        inflight_summary(&s.inflight),
        idle_summary(&s.idle)
    )
}

fn changes_line(name: &str, fields: &Map<String, Value>, now_ms: u64) -> String {
    let at = fields
        .get("times")
        .and_then(|t| t["now_ms"].as_u64())
        .unwrap_or(now_ms);
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    let mut line = format!("{} {name} changed: {}", clock(at), names.join(", "));
    for (k, v) in fields {
        let summary = match k.as_str() {
            "state" => v.as_str().map(str::to_owned),
            "clients" => parse::<Vec<Client>>(v).map(|c| clients_summary(&c)),
            "inflight" => parse::<Vec<InflightCall>>(v).map(|c| inflight_summary(&c)),
            "idle" => parse::<Idle>(v).map(|i| format!("idle: {}", idle_summary(&i))),
            _ => continue,
        };
        let _ = write!(line, "; {}", summary.unwrap_or_else(|| format!("{k}: ?")));
    }
    line.push('\n');
    line
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

/// `2 clients (virsh pid 12, virt-admin pid 13 passive)`, `0 clients`.
pub fn clients_summary(clients: &[Client]) -> String {
    let n = clients.len();
    let mut s = format!("{n} client{}", if n == 1 { "" } else { "s" });
    if n > 0 {
        let names: Vec<String> = clients
            .iter()
            .take(LIST_MAX)
            .map(|c| {
                let passive = if c.passive { " passive" } else { "" };
                format!("{} pid {}{passive}", c.process.comm, c.process.pid)
            })
            .collect();
        let _ = write!(s, " ({}{})", names.join(", "), more(n));
    }
    s
}

/// `1 in flight (DomainCreate 2.1s, virsh pid 12)`, `0 in flight`.
pub fn inflight_summary(calls: &[InflightCall]) -> String {
    let n = calls.len();
    let mut s = format!("{n} in flight");
    if n > 0 {
        let mut oldest: Vec<&InflightCall> = calls.iter().collect();
        oldest.sort_by(|a, b| b.age_s.total_cmp(&a.age_s));
        let names: Vec<String> = oldest
            .iter()
            .take(LIST_MAX)
            .map(|c| {
                format!(
                    "{} {}, {} pid {}",
                    c.procedure,
                    fmt_secs(c.age_s),
                    c.client.comm,
                    c.client.pid
                )
            })
            .collect();
        let _ = write!(s, " ({}{})", names.join("; "), more(n));
    }
    s
}

fn more(n: usize) -> String {
    if n > LIST_MAX {
        format!(", +{} more", n - LIST_MAX)
    } else {
        String::new()
    }
}

/// `exits in 4.2s (timeout 5s)`, `held by 1 client (timeout 5s)`, `off`.
pub fn idle_summary(idle: &Idle) -> String {
    if idle.timeout_s == 0 {
        return "off (never exits when idle)".into();
    }
    let timeout = fmt_secs(f64::from(idle.timeout_s));
    if idle.armed {
        let left = idle.remaining_s.unwrap_or(f64::from(idle.timeout_s));
        return format!("exits in {} (timeout {timeout})", fmt_secs(left));
    }
    let mut held = Vec::new();
    if idle.active_clients > 0 {
        let n = idle.active_clients;
        held.push(format!("{n} client{}", if n == 1 { "" } else { "s" }));
    }
    for i in &idle.inhibitors {
        held.push(format!("{} {}", i.count, i.reason));
    }
    if held.is_empty() {
        format!("countdown stopped (timeout {timeout})")
    } else {
        format!("held by {} (timeout {timeout})", held.join(", "))
    }
}

/// `HH:MM:SS` (UTC) of an epoch-ms instant.
fn clock(ms: u64) -> String {
    let s = ms / 1000 % 86400;
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fake::{sample_call, sample_status};
    use serde_json::json;

    const NOW: u64 = 1_700_000_000_000;
    const OWN: i32 = 999;

    #[test]
    fn full_line_leaves_the_observer_out() {
        let mut w = Watcher::new(OWN);
        let ev = w
            .accept(WatchEvent::Full {
                status: Box::new(sample_status("virtqemud", 4242, NOW)),
            })
            .unwrap();
        let WatchEvent::Full { status } = &ev else {
            panic!("{ev:?}")
        };
        assert!(status.clients.iter().all(|c| c.process.pid != OWN), "{status:?}");
        let line = render_text("virtqemud", &ev, NOW);
        assert!(
            line.starts_with("22:13:20 virtqemud pid 4242: running; 1 client (virsh pid 123); "),
            "{line}"
        );
        assert!(line.contains("idle: held by 1 client (timeout 2m00s)"), "{line}");
        assert!(line.ends_with('\n') && line.lines().count() == 1, "{line}");
        let j: Value = serde_json::from_str(&render_json(&ev)).unwrap();
        assert_eq!(j["type"], "full");
        assert_eq!(j["status"]["pid"], 4242);
    }

    #[test]
    fn changes_name_fields_and_summarise_clients_and_idle() {
        let mut w = Watcher::new(OWN);
        let mut st = sample_status("virtqemud", 4242, NOW);
        st.inflight.clear();
        w.accept(WatchEvent::Full {
            status: Box::new(st.clone()),
        });
        let idle = json!({"timeout_s": 5, "armed": true, "remaining_s": 4.2,
            "active_clients": 0, "inhibitors": []});
        let mut fields = Map::new();
        // Only the observer itself is left: after filtering, one client fewer.
        fields.insert(
            "clients".into(),
            json!([serde_json::to_value(&st.clients[1]).unwrap()]),
        );
        fields.insert("idle".into(), idle);
        fields.insert(
            "times".into(),
            json!({"exec_ms": 1, "now_ms": NOW + 1000, "future": 1}),
        );
        let ev = w.accept(WatchEvent::Changes { fields }).unwrap();
        let line = render_text("virtqemud", &ev, 0);
        assert_eq!(
            line,
            "22:13:21 virtqemud changed: clients, idle, times; 0 clients; idle: exits in 4.2s (timeout 5s)\n"
        );
    }

    #[test]
    fn changes_only_to_the_observer_are_dropped() {
        let mut w = Watcher::new(OWN);
        let mut st = sample_status("virtqemud", 4242, NOW);
        st.inflight
            .push(sample_call(7, "DOMAIN_CREATE", 2.0, "virsh", 123, None, NOW));
        w.accept(WatchEvent::Full {
            status: Box::new(st.clone()),
        });
        // The daemon reports its clients again, observer included, and a new
        // OBSERVE call of the observer: nothing changed for the user.
        let mut inflight = serde_json::to_value(&st.inflight).unwrap();
        let mut own_call = inflight[0].clone();
        own_call["program"] = "OBSERVE".into();
        own_call["client"]["pid"] = OWN.into();
        inflight.as_array_mut().unwrap().push(own_call);
        let mut fields = Map::new();
        fields.insert("clients".into(), serde_json::to_value(&st.clients).unwrap());
        fields.insert("inflight".into(), inflight);
        assert_eq!(w.accept(WatchEvent::Changes { fields }), None);
    }

    #[test]
    fn a_second_full_state_shows_as_changes() {
        let mut w = Watcher::new(OWN);
        assert!(!w.has_state());
        let st = sample_status("virtqemud", 4242, NOW);
        w.accept(WatchEvent::Full {
            status: Box::new(st.clone()),
        });
        assert!(w.has_state());
        assert_eq!(
            w.accept(WatchEvent::Full {
                status: Box::new(st.clone())
            }),
            None
        );
        let mut later = st;
        later.state = "stopping".into();
        let Some(WatchEvent::Changes { fields }) = w.accept(WatchEvent::Full {
            status: Box::new(later),
        }) else {
            panic!("expected changes")
        };
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["state"]);
        let line = render_text("virtqemud", &WatchEvent::Changes { fields }, NOW);
        assert_eq!(line, "22:13:20 virtqemud changed: state; stopping\n");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = find(&Discovery::default(), "virtnope").unwrap_err();
        assert!(
            e.contains("unknown daemon \"virtnope\"") && e.contains("virtqemud"),
            "{e}"
        );
    }

    #[test]
    fn idle_summaries() {
        let mut i = Idle {
            timeout_s: 0,
            armed: false,
            remaining_s: None,
            active_clients: 0,
            inhibitors: vec![],
        };
        assert_eq!(idle_summary(&i), "off (never exits when idle)");
        i.timeout_s = 120;
        i.active_clients = 2;
        i.inhibitors.push(modvirt_wire::observe::Inhibitor {
            reason: "running domains".into(),
            count: 1,
            since_ms: NOW,
        });
        assert_eq!(
            idle_summary(&i),
            "held by 2 clients, 1 running domains (timeout 2m00s)"
        );
    }
}
