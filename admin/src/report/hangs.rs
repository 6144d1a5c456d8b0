//! `virt-daemons hangs`: in-flight calls older than a threshold, each with
//! its wait-for chain across daemons.
//!
//! Every in-flight call waits on at most one thing, so from any call there
//! is one path: a job lock leads to the holder call in the same daemon
//! (`WaitOn::JobLock.holder_call`); a call into a peer leads to that call
//! in the peer daemon (`WaitOn::Peer.peer_call`, or the peer's call whose
//! `caller` names this one). A path that comes back to a call already on
//! it is a cycle — a deadlock. Chains start at the old calls no other old
//! call waits on (so each appears once, as deep as it goes); calls left
//! over (only reachable inside a cycle) start their own.

use super::why::describe_wait;
use super::{Snapshot, fmt_secs};
use modvirt_wire::observe::{ClientRef, InflightCall, WaitOn};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// One call on a chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    pub daemon: String,
    pub call: u64,
    pub procedure: String,
    pub age_s: f64,
    pub client: ClientRef,
    pub waiting_on: Option<WaitOn>,
}

/// A wait-for chain, from the oldest blocked call to what blocks it all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    pub hops: Vec<Hop>,
    /// The chain leads back to one of its own calls (deadlock).
    pub cycle: bool,
    /// Where it ends when that is not a call: `qmp reply from qemu pid 9`,
    /// `virtnetworkd is not answering: …`, `cycle back to virtqemud #17`.
    pub end: Option<String>,
}

type Key<'a> = (&'a str, u64);

/// The wait-for graph of every answering daemon's in-flight calls.
struct Graph<'a> {
    calls: HashMap<Key<'a>, &'a InflightCall>,
    /// (caller daemon, caller call) → the call it made.
    callee_of: HashMap<(&'a str, u64), Key<'a>>,
    /// Daemons that are known but did not answer, with why.
    silent: HashMap<&'a str, String>,
}

enum Next<'a> {
    Call(Key<'a>),
    End(Option<String>),
}

impl<'a> Graph<'a> {
    fn new(snap: &'a Snapshot) -> Self {
        let mut calls = HashMap::new();
        let mut callee_of = HashMap::new();
        let mut silent = HashMap::new();
        for o in &snap.daemons {
            match o.live() {
                Some(s) => {
                    for c in &s.inflight {
                        let key = (o.name(), c.id);
                        calls.insert(key, c);
                        if let Some(link) = &c.caller {
                            callee_of.insert((link.daemon.as_str(), link.call), key);
                        }
                    }
                }
                None => {
                    let why = match o.probe_error() {
                        Some(e) => format!("is not answering: {e}"),
                        None => format!("is {}", o.state_label()),
                    };
                    silent.insert(o.name(), why);
                }
            }
        }
        Graph {
            calls,
            callee_of,
            silent,
        }
    }

    fn next(&self, (daemon, id): Key<'a>) -> Next<'a> {
        let call = self.calls[&(daemon, id)];
        let by_caller = self.callee_of.get(&(daemon, id)).copied();
        match &call.waiting_on {
            Some(WaitOn::JobLock { holder_call, .. }) => {
                match self.calls.get_key_value(&(daemon, *holder_call)) {
                    Some((k, _)) => Next::Call(*k),
                    None => Next::End(Some(format!("holder #{holder_call} is no longer in flight"))),
                }
            }
            Some(WaitOn::Peer {
                daemon: peer,
                peer_call,
                ..
            }) => {
                let direct = peer_call.and_then(|pc| self.calls.get_key_value(&(peer.as_str(), pc)));
                match (direct, by_caller) {
                    (Some((k, _)), _) => Next::Call(*k),
                    (None, Some(k)) => Next::Call(k),
                    (None, None) => Next::End(Some(match self.silent.get(peer.as_str()) {
                        Some(why) => format!("{peer} {why}"),
                        None => format!("{peer} shows no matching call"),
                    })),
                }
            }
            Some(other @ (WaitOn::Process { .. } | WaitOn::Other { .. })) => {
                Next::End(Some(describe_wait(other)))
            }
            None => match by_caller {
                Some(k) => Next::Call(k),
                None => Next::End(None),
            },
        }
    }

    fn hop(&self, (daemon, id): Key<'a>) -> Hop {
        let c = self.calls[&(daemon, id)];
        Hop {
            daemon: daemon.to_owned(),
            call: id,
            procedure: c.procedure.clone(),
            age_s: c.age_s,
            client: c.client.clone(),
            waiting_on: c.waiting_on.clone(),
        }
    }

    fn chain(&self, start: Key<'a>, seen: &mut HashSet<Key<'a>>) -> Chain {
        let mut on_chain = HashSet::new();
        let mut hops = Vec::new();
        let mut at = start;
        loop {
            seen.insert(at);
            on_chain.insert(at);
            hops.push(self.hop(at));
            match self.next(at) {
                Next::Call(k) if on_chain.contains(&k) => {
                    return Chain {
                        hops,
                        cycle: true,
                        end: Some(format!("cycle back to {} #{}", k.0, k.1)),
                    };
                }
                Next::Call(k) => at = k,
                Next::End(end) => {
                    return Chain {
                        hops,
                        cycle: false,
                        end,
                    };
                }
            }
        }
    }
}

/// Chains for every call older than `older_than_s`, oldest first.
pub fn find(snap: &Snapshot, older_than_s: f64) -> Vec<Chain> {
    let g = Graph::new(snap);
    let mut old: Vec<Key<'_>> = g
        .calls
        .iter()
        .filter(|(_, c)| c.age_s >= older_than_s)
        .map(|(k, _)| *k)
        .collect();
    old.sort_by(|a, b| g.calls[b].age_s.total_cmp(&g.calls[a].age_s).then(a.cmp(b)));
    // Calls another old call waits on are shown inside that call's chain.
    let targets: HashSet<Key<'_>> = old
        .iter()
        .filter_map(|&k| match g.next(k) {
            Next::Call(t) => Some(t),
            Next::End(_) => None,
        })
        .collect();
    let mut seen = HashSet::new();
    let mut chains = Vec::new();
    for &k in old.iter().filter(|k| !targets.contains(k)) {
        chains.push(g.chain(k, &mut seen));
    }
    for &k in &old {
        if !seen.contains(&k) {
            chains.push(g.chain(k, &mut seen));
        }
    }
    chains
}

fn who(c: &ClientRef) -> String {
    format!("{}(pid {})", c.comm, c.pid)
}

/// `virsh(pid 123) → virtqemud DOMAIN_CREATE #17 (47s) waiting on …`, one
/// hop per line.
pub fn render_text(snap: &Snapshot, older_than_s: f64) -> String {
    let chains = find(snap, older_than_s);
    let mut out = String::new();
    if chains.is_empty() {
        let _ = writeln!(
            out,
            "no in-flight call older than {} in {} answering daemon(s)",
            fmt_secs(older_than_s),
            snap.live().count()
        );
    }
    for chain in &chains {
        for (i, h) in chain.hops.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "{} → ", who(&h.client));
            } else {
                let _ = write!(out, "    → ");
            }
            let _ = write!(
                out,
                "{} {} #{} ({})",
                h.daemon,
                h.procedure,
                h.call,
                fmt_secs(h.age_s)
            );
            if i > 0 && !h.client.comm.is_empty() {
                let _ = write!(out, " from {}", who(&h.client));
            }
            match &h.waiting_on {
                Some(w) => {
                    let _ = writeln!(out, " waiting on {}", describe_wait(w));
                }
                None => out.push('\n'),
            }
        }
        match (&chain.end, chain.cycle) {
            (Some(end), true) => {
                let _ = writeln!(out, "    ↺ {end}: a deadlock");
            }
            (Some(end), false) if !ends_with_wait(chain) => {
                let _ = writeln!(out, "    ✗ {end}");
            }
            _ => {}
        }
        out.push('\n');
    }
    for o in &snap.daemons {
        if let Some(e) = o.probe_error() {
            let _ = writeln!(out, "{}: not answering: {e}", o.name());
        }
    }
    out
}

/// Whether the chain's end is just the last hop's own wait (already printed).
fn ends_with_wait(chain: &Chain) -> bool {
    match (chain.hops.last().and_then(|h| h.waiting_on.as_ref()), &chain.end) {
        (Some(w @ (WaitOn::Process { .. } | WaitOn::Other { .. })), Some(end)) => describe_wait(w) == *end,
        _ => false,
    }
}

/// `{"older_than_s": 5, "hangs": [Chain…], "errors": [{daemon, error}]}`.
pub fn render_json(snap: &Snapshot, older_than_s: f64) -> Value {
    json!({
        "older_than_s": older_than_s,
        "hangs": find(snap, older_than_s),
        "errors": snap.daemons.iter().filter_map(|o| {
            Some(json!({"daemon": o.name(), "error": o.probe_error()?.to_string()}))
        }).collect::<Vec<_>>(),
    })
}
