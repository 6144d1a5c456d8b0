//! Test fixtures for the metrics: a daemon in trouble (a [`DaemonStatus`]
//! with every field set) and a reader of the text exposition.

use modvirt_wire::observe::{self as o, DaemonStatus};
use std::collections::BTreeMap;

fn process(pid: i32, comm: &str) -> o::Process {
    o::Process {
        pid,
        uid: 0,
        comm: comm.into(),
    }
}

fn client(server: &str, id: u64, socket: &str, passive: bool) -> o::Client {
    o::Client {
        server: server.into(),
        id,
        socket: socket.into(),
        process: process(100 + id as i32, "virsh"),
        connected_ms: 1_700_000_001_000,
        passive,
    }
}

fn call(id: u64, procedure: &str, age_s: f64, waiting_on: Option<o::WaitOn>) -> o::InflightCall {
    o::InflightCall {
        id,
        program: "REMOTE".into(),
        procedure: procedure.into(),
        serial: id as u32,
        client: o::ClientRef {
            server: "virtqemud".into(),
            id: 1,
            pid: 101,
            comm: "virsh".into(),
        },
        started_ms: 1_700_000_010_000,
        age_s,
        waiting_on,
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        caller: None,
    }
}

fn phase(name: &str, start_ms: f64, duration_ms: Option<f64>, children: Vec<o::Phase>) -> o::Phase {
    o::Phase {
        name: name.into(),
        start_ms,
        duration_ms,
        detail: None,
        children,
    }
}

fn server(name: &str, max_clients: u32) -> o::Server {
    o::Server {
        name: name.into(),
        workers: o::Workers {
            min: 5,
            max: 20,
            total: 7,
            free: 4,
            priority: 5,
            queue_depth: 2,
        },
        clients: 3,
        max_clients,
    }
}

/// A daemon in trouble: every field set, every kind of wait present.
pub(super) fn status() -> DaemonStatus {
    let vm1_lock = || o::WaitOn::JobLock {
        object: "vm1".into(),
        holder_call: 10,
        holder_procedure: "DOMAIN_CREATE".into(),
        held_s: 47.5,
    };
    DaemonStatus {
        schema: o::SCHEMA,
        name: "virtqemud".into(),
        version: "0.1.0".into(),
        pid: 4242,
        state: "running".into(),
        activation: o::Activation {
            cause: o::Cause::Socket,
            socket: Some("virtqemud.socket".into()),
            client: Some(process(99, "virsh")),
            peer: None,
        },
        times: o::Times {
            exec_ms: 1_700_000_000_000,
            ready_ms: Some(1_700_000_000_250),
            first_client_ms: Some(1_700_000_000_300),
            now_ms: 1_700_000_060_000,
        },
        idle: o::Idle {
            timeout_s: 120,
            armed: false,
            remaining_s: None,
            active_clients: 2,
            inhibitors: vec![
                o::Inhibitor {
                    reason: "in-flight calls".into(),
                    count: 3,
                    since_ms: 1_700_000_010_000,
                },
                o::Inhibitor {
                    reason: "running guests".into(),
                    count: 2,
                    since_ms: 1_700_000_000_200,
                },
            ],
        },
        servers: vec![server("virtqemud", 5000), server("admin", 5)],
        clients: vec![
            client("virtqemud", 1, "rw", false),
            client("virtqemud", 2, "rw", false),
            client("virtqemud", 3, "ro", false),
            client("admin", 4, "admin", true),
        ],
        inflight: vec![
            call(
                10,
                "DOMAIN_CREATE",
                47.5,
                Some(o::WaitOn::Peer {
                    daemon: "virtnetworkd".into(),
                    procedure: "NETWORK_LOOKUP_BY_NAME".into(),
                    serial: 7,
                    peer_call: Some(3),
                }),
            ),
            call(11, "DOMAIN_SUSPEND", 12.0, Some(vm1_lock())),
            call(12, "DOMAIN_GET_INFO", 11.0, Some(vm1_lock())),
            call(
                13,
                "DOMAIN_GET_STATS",
                2.0,
                Some(o::WaitOn::Process {
                    description: "qmp reply from qemu pid 1234".into(),
                    pid: Some(1234),
                }),
            ),
            call(
                14,
                "NODE_DEVICE_LIST",
                0.5,
                Some(o::WaitOn::Other {
                    description: "enumeration".into(),
                }),
            ),
            call(15, "CONNECT_GET_VERSION", 0.001, None),
        ],
        job_locks: vec![
            o::JobLock {
                object: "vm1".into(),
                holder_call: 10,
                holder_procedure: "DOMAIN_CREATE".into(),
                since_ms: 1_700_000_012_500,
                held_s: 47.5,
                waiters: vec![11, 12],
            },
            o::JobLock {
                object: "vm2".into(),
                holder_call: 13,
                holder_procedure: "DOMAIN_GET_STATS".into(),
                since_ms: 1_700_000_058_000,
                held_s: 2.0,
                waiters: vec![],
            },
        ],
        phases: vec![
            phase("config", 1.0, Some(4.0), vec![]),
            phase("sockets", 5.0, Some(2.0), vec![]),
            phase(
                "qemu driver",
                7.0,
                Some(240.0),
                vec![
                    phase("enumerate devices", 7.0, Some(200.0), vec![]),
                    phase("reconnect guests", 207.0, Some(30.0), vec![]),
                    phase("autostart", 237.0, None, vec![]),
                ],
            ),
            phase("network driver", 250.0, None, vec![]),
        ],
        process: o::ProcessStats {
            rss_bytes: 24 << 20,
            cpu_seconds: 1.25,
            open_fds: 23,
            threads: 9,
        },
        dropped_events: 0,
    }
}

pub(super) type Labels = BTreeMap<String, String>;

/// Parses the sample lines of a text exposition.
pub(super) fn samples(text: &str) -> Vec<(String, Labels, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, labels, value) = match line.find('{') {
            Some(open) => {
                let close = line.rfind('}').expect("labels end");
                (
                    &line[..open],
                    parse_labels(&line[open + 1..close]),
                    &line[close + 1..],
                )
            }
            None => {
                let (name, value) = line.split_once(' ').expect("name value");
                (name, Labels::new(), value)
            }
        };
        let value = match value.trim() {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line:?}")),
        };
        out.push((name.to_owned(), labels, value));
    }
    out
}

fn parse_labels(mut s: &str) -> Labels {
    let mut labels = Labels::new();
    while !s.is_empty() {
        let (key, rest) = s.split_once("=\"").expect("label");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        s = rest[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The value of the one sample of `name` whose labels include `want`.
pub(super) fn value(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .collect();
    assert!(
        found.len() <= 1,
        "{name} {want:?} matches {} samples",
        found.len()
    );
    found.first().copied()
}

/// The metric family a sample line belongs to.
pub(super) fn family(sample: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && base.ends_with("_seconds")
        {
            return base;
        }
    }
    sample
}
