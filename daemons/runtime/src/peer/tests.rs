//! Peer calls against a fake peer daemon ([`fake_peer`]).

mod fake_peer;
mod relay;

use super::*;
use crate::observe::inflight::{CallGuard, InflightRegistry};
use crate::observe::spans::SpanRecorder;
use fake_peer::*;
use modvirt_wire::observe as o;
use modvirt_wire::remote::{ConnectOpenArgs, ConnectSupportsFeatureArgs, feature};
use modvirt_wire::{XdrDecode, XdrEncode};
use std::path::Path;
use tracing_subscriber::layer::SubscriberExt;

/// The calling daemon: its metrics and the in-flight call it makes peer calls for.
struct Caller {
    metrics: Metrics,
    _registry: Arc<InflightRegistry>,
    guard: CallGuard,
}

impl Caller {
    fn new() -> Caller {
        let registry = Arc::new(InflightRegistry::default());
        let client = o::ClientRef {
            server: "virtqemud".into(),
            id: 1,
            pid: 4242,
            comm: "virsh".into(),
        };
        let guard = registry.start("REMOTE", "DOMAIN_CREATE", 9, Arc::new(client));
        Caller {
            metrics: Metrics::new("virtqemud", "test"),
            _registry: registry,
            guard,
        }
    }

    fn as_peer(&self) -> PeerCaller<'_> {
        PeerCaller {
            metrics: &self.metrics,
            call: &self.guard.record,
        }
    }

    fn id(&self) -> u64 {
        self.guard.record.id
    }

    fn waiting(&self) -> Option<Waiting> {
        self.guard.record.waiting()
    }

    /// `modvirt_peer_calls_total{peer="virtnetworkd",procedure="NETWORK_LOOKUP_BY_NAME",result}`.
    fn peer_calls(&self, result: &str) -> f64 {
        let text = self.metrics.render(&empty_status());
        let labels = [
            format!("peer=\"{NETWORK}\""),
            format!("procedure=\"{}\"", LOOKUP.1),
            format!("result=\"{result}\""),
        ];
        text.lines()
            .filter(|l| l.starts_with("modvirt_peer_calls_total{"))
            .find(|l| labels.iter().all(|label| l.contains(label.as_str())))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    }
}

fn empty_status() -> o::DaemonStatus {
    o::DaemonStatus {
        schema: o::SCHEMA,
        name: "virtqemud".into(),
        version: "test".into(),
        pid: 1,
        state: "running".into(),
        activation: o::Activation {
            cause: o::Cause::Manual,
            socket: None,
            client: None,
            peer: None,
        },
        times: o::Times::default(),
        idle: o::Idle {
            timeout_s: 0,
            armed: false,
            remaining_s: None,
            active_clients: 0,
            inhibitors: Vec::new(),
        },
        servers: Vec::new(),
        clients: Vec::new(),
        inflight: Vec::new(),
        job_locks: Vec::new(),
        phases: Vec::new(),
        process: o::ProcessStats {
            rss_bytes: 0,
            cpu_seconds: 0.0,
            open_fds: 0,
            threads: 0,
        },
        dropped_events: 0,
    }
}

/// `NETWORK_LOOKUP_BY_NAME(arg)` → the fake peer's string reply.
async fn lookup(
    peers: &Peers,
    caller: &Caller,
    target: &PeerTarget,
    arg: &str,
    timeout: Duration,
) -> Result<String, RpcError> {
    let args = arg.to_owned().to_xdr();
    let reply = peers
        .call_as(caller.as_peer(), target, LOOKUP.0, LOOKUP.1, args, timeout)
        .await?;
    Ok(String::from_xdr(&reply).unwrap())
}

/// `e` is libvirt's timeout error for the lookup after `after` seconds.
fn assert_lookup_timed_out(e: &RpcError, after: &str) {
    assert_eq!(
        e.text(),
        format!(
            "Timed out during operation: no reply from virtnetworkd to NETWORK_LOOKUP_BY_NAME after {after} s"
        )
    );
    assert_eq!(
        (e.code, e.domain),
        (ErrorCode::OPERATION_TIMEOUT, ErrorDomain::RPC)
    );
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn attr<'a>(span: &'a o::Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn first_call_opens_like_virsh_and_every_call_carries_the_context() {
    let (recorder, layer) = SpanRecorder::new("virtqemud", 64);
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::Registry::default().with(layer));
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    let server = tracing::info_span!(target: "rpc.call", "REMOTE.DOMAIN_CREATE", otel.kind = "server");

    let got = lookup(&peers, &caller, &fake.target(), "echo default", LONG)
        .instrument(server.clone())
        .await;
    assert_eq!(got.as_deref(), Ok("default"));
    drop(server);

    let seen = fake.until(is_lookup).await;
    assert_eq!(connections(&seen), [1]);
    let handshake = calls(&seen);
    let procs: Vec<(u32, i32, u32)> = handshake.iter().map(SeenCall::key).collect();
    assert_eq!(procs, [(1, 66, 0), (1, 60, 1), (1, 1, 2), (1, LOOKUP.0, 3)]);
    assert_eq!(
        ConnectSupportsFeatureArgs::from_xdr(&handshake[1].args)
            .unwrap()
            .feature,
        feature::PROGRAM_KEEPALIVE
    );
    assert_eq!(
        ConnectOpenArgs::from_xdr(&handshake[2].args).unwrap(),
        ConnectOpenArgs {
            name: Some(URI.into()),
            flags: 0
        }
    );
    assert_eq!(String::from_xdr(&handshake[3].args).unwrap(), "echo default");

    // Every CALL, handshake included, came right after its context.
    let contexts: Vec<CallContextMsg> = handshake.iter().map(|c| c.context.clone().unwrap()).collect();
    for c in &contexts {
        assert_eq!(c.caller_daemon, "virtqemud");
        assert_eq!(c.caller_call, caller.id());
        assert_eq!(c.traceparent, contexts[0].traceparent);
    }
    let tp: Vec<&str> = contexts[0].traceparent.split('-').collect();
    assert!(
        tp.len() == 4 && tp[0] == "00" && is_hex(tp[1], 32) && is_hex(tp[2], 16) && tp[3] == "01",
        "{tp:?}"
    );

    // The client span: a child of the server span, named for the peer call,
    // and the span the traceparent names.
    let spans = recorder.page(0, 100).spans;
    let server = spans.iter().find(|s| s.name == "REMOTE.DOMAIN_CREATE").unwrap();
    let client = spans
        .iter()
        .find(|s| s.name == "virtnetworkd/NETWORK_LOOKUP_BY_NAME")
        .unwrap();
    assert_eq!(client.parent_span_id.as_deref(), Some(server.span_id.as_str()));
    assert_eq!(client.trace_id, server.trace_id);
    assert_eq!(
        (tp[1], tp[2]),
        (client.trace_id.as_str(), client.span_id.as_str())
    );
    for (k, v) in [
        ("otel.kind", "client"),
        ("rpc.system", "libvirt"),
        ("rpc.service", "REMOTE"),
        ("rpc.method", "NETWORK_LOOKUP_BY_NAME"),
        ("peer.daemon", "virtnetworkd"),
        ("rpc.result", "ok"),
    ] {
        assert_eq!(attr(client, k), Some(v), "{k} in {client:#?}");
    }
    assert_eq!(client.status, "ok");
    assert_eq!(caller.peer_calls("ok"), 1.0);
    assert_eq!(caller.waiting(), None);

    // The second call reuses the connection: no handshake, next serial.
    let got = lookup(&peers, &caller, &fake.target(), "echo again", LONG).await;
    assert_eq!(got.as_deref(), Ok("again"));
    let seen = fake.until(is_lookup).await;
    assert_eq!(connections(&seen), [] as [u32; 0]);
    let procs: Vec<(u32, i32, u32)> = calls(&seen).iter().map(SeenCall::key).collect();
    assert_eq!(procs, [(1, LOOKUP.0, 4)]);
    assert_eq!(caller.peer_calls("ok"), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_the_connection_and_get_their_own_replies() {
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    let target = fake.target();
    assert_eq!(
        lookup(&peers, &caller, &target, "echo warm", LONG)
            .await
            .as_deref(),
        Ok("warm")
    );

    let (slow, medium, fast) = tokio::join!(
        lookup(&peers, &caller, &target, "delay 300 slow", LONG),
        lookup(&peers, &caller, &target, "delay 100 medium", LONG),
        lookup(&peers, &caller, &target, "echo fast", LONG),
    );
    assert_eq!(slow.as_deref(), Ok("slow"));
    assert_eq!(medium.as_deref(), Ok("medium"));
    assert_eq!(fast.as_deref(), Ok("fast"));

    let seen = fake.drain();
    assert_eq!(connections(&seen), [1], "one connection for all four calls");
    let tag_of = |serial: u32| {
        calls(&seen)
            .into_iter()
            .find(|c| c.serial == serial)
            .map(|c| String::from_xdr(&c.args).unwrap())
            .unwrap()
    };
    let replied: Vec<String> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Replied { serial } if *serial > 3 => Some(tag_of(*serial)),
            _ => None,
        })
        .collect();
    assert_eq!(
        replied,
        ["echo fast", "delay 100 medium", "delay 300 slow"],
        "replies out of order"
    );
    assert_eq!(caller.peer_calls("ok"), 4.0);
}

#[tokio::test]
async fn the_call_waits_on_the_peer_while_its_reply_is_out() {
    let fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    let target = fake.target();
    let (got, during) = tokio::join!(lookup(&peers, &caller, &target, "delay 300 x", LONG), async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        caller.waiting()
    });
    assert_eq!(got.as_deref(), Ok("x"));
    assert_eq!(
        during,
        Some(Waiting::Peer {
            daemon: NETWORK.into(),
            procedure: LOOKUP.1.into(),
            serial: 3,
            peer_call: None,
        })
    );
    assert_eq!(caller.waiting(), None);
}

#[tokio::test]
async fn keepalive_pings_are_answered() {
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    assert_eq!(
        lookup(&peers, &caller, &fake.target(), "ping p", LONG)
            .await
            .as_deref(),
        Ok("p")
    );
    let seen = fake.until(|s| matches!(s, Seen::Pong(_))).await;
    assert!(matches!(seen.last(), Some(Seen::Pong(1))));
}

#[tokio::test]
async fn a_lost_connection_fails_pending_calls_and_the_next_call_reconnects() {
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    let target = fake.target();
    assert_eq!(
        lookup(&peers, &caller, &target, "echo a", LONG).await.as_deref(),
        Ok("a")
    );

    let (pending, dropping) = tokio::join!(lookup(&peers, &caller, &target, "silent", LONG), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        lookup(&peers, &caller, &target, "drop", LONG).await
    });
    for e in [pending.unwrap_err(), dropping.unwrap_err()] {
        assert_eq!(
            e.text(),
            "connection to virtnetworkd lost: the peer closed the connection"
        );
        assert_eq!((e.code, e.domain), (ErrorCode::SYSTEM_ERROR, ErrorDomain::RPC));
    }
    assert_eq!(caller.waiting(), None);
    fake.until(|s| matches!(s, Seen::Closed(1))).await;

    assert_eq!(
        lookup(&peers, &caller, &target, "echo b", LONG).await.as_deref(),
        Ok("b")
    );
    let seen = fake.until(is_lookup).await;
    assert_eq!(connections(&seen), [2]);
    let procs: Vec<(u32, i32, u32)> = calls(&seen).iter().map(SeenCall::key).collect();
    assert_eq!(procs, [(2, 66, 0), (2, 60, 1), (2, 1, 2), (2, LOOKUP.0, 3)]);
    assert_eq!((caller.peer_calls("ok"), caller.peer_calls("error")), (2.0, 2.0));
}

#[tokio::test]
async fn a_silent_peer_times_out_and_its_late_reply_is_discarded() {
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    let target = fake.target();

    let started = Instant::now();
    let e = lookup(&peers, &caller, &target, "silent", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_lookup_timed_out(&e, "0.2");
    assert_eq!(caller.waiting(), None);

    let e = lookup(
        &peers,
        &caller,
        &target,
        "delay 300 late",
        Duration::from_millis(100),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.text(),
        "Timed out during operation: no reply from virtnetworkd to NETWORK_LOOKUP_BY_NAME after 0.1 s"
    );
    // The late reply arrives, finds nobody, and is dropped.
    fake.until(|s| matches!(s, Seen::Replied { serial: 4 })).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        lookup(&peers, &caller, &target, "echo on-time", LONG)
            .await
            .as_deref(),
        Ok("on-time")
    );
    assert_eq!(
        connections(&fake.drain()),
        [] as [u32; 0],
        "the connection survived"
    );
    assert_eq!((caller.peer_calls("ok"), caller.peer_calls("error")), (1.0, 2.0));
}

#[tokio::test]
async fn peer_errors_are_returned_unchanged_and_mark_the_span() {
    let (recorder, layer) = SpanRecorder::new("virtqemud", 64);
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::Registry::default().with(layer));
    let fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    let e = lookup(&peers, &caller, &fake.target(), "error", LONG)
        .await
        .unwrap_err();
    assert_eq!(e, network_not_found());
    assert_eq!(caller.peer_calls("error"), 1.0);
    let spans = recorder.page(0, 100).spans;
    let client = spans
        .iter()
        .find(|s| s.name == "virtnetworkd/NETWORK_LOOKUP_BY_NAME")
        .unwrap();
    assert_eq!(client.status, "error");
    assert_eq!(attr(client, "rpc.result"), Some("error"));
    assert_eq!(attr(client, "otel.status_code"), Some("ERROR"));
    assert_eq!(attr(client, "otel.status_message"), Some(e.text()));
}

#[tokio::test]
async fn a_refused_open_is_returned_and_the_next_call_tries_again() {
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    let target = PeerTarget {
        uri: REFUSED_URI.into(),
        ..fake.target()
    };
    for conn in [1, 2] {
        let e = lookup(&peers, &caller, &target, "echo x", LONG)
            .await
            .unwrap_err();
        assert_eq!(e, refused());
        let seen = fake.until(|s| matches!(s, Seen::Closed(_))).await;
        assert_eq!(connections(&seen), [conn]);
        assert!(!seen.iter().any(is_lookup));
    }
    assert_eq!(caller.peer_calls("error"), 2.0);
}

/// A call to a virtnetworkd whose `socket` nobody serves fails as
/// libvirt's would: `Failed to connect socket to '…': {reason}`.
async fn assert_connect_fails(caller: &Caller, socket: &Path, reason: &str) {
    let target = PeerTarget {
        daemon: NETWORK.into(),
        socket: socket.to_owned(),
        uri: URI.into(),
        identity: None,
        spawn: None,
    };
    let e = lookup(&Peers::new("virtqemud"), caller, &target, "echo x", LONG)
        .await
        .unwrap_err();
    assert_eq!(
        e.text(),
        format!("Failed to connect socket to '{}': {reason}", socket.display())
    );
    assert_eq!((e.code, e.domain), (ErrorCode::SYSTEM_ERROR, ErrorDomain::RPC));
}

#[tokio::test]
async fn a_missing_socket_is_reported_as_libvirt_does() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("virtnetworkd-sock");
    let caller = Caller::new();
    assert_connect_fails(&caller, &socket, "No such file or directory").await;
    assert_eq!(caller.peer_calls("error"), 1.0);
    assert_eq!(caller.waiting(), None);
}

#[tokio::test]
async fn a_stale_socket_is_reported_as_libvirt_does() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("virtnetworkd-sock");
    // Bound, then closed: the file stays, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert_connect_fails(&Caller::new(), &socket, "Connection refused").await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_reopened_on_demand() {
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud").with_idle_close(Duration::from_millis(200));
    let target = fake.target();
    assert_eq!(
        lookup(&peers, &caller, &target, "echo a", LONG).await.as_deref(),
        Ok("a")
    );
    // A call outlasting the idle limit keeps the connection.
    assert_eq!(
        lookup(&peers, &caller, &target, "delay 400 b", LONG)
            .await
            .as_deref(),
        Ok("b")
    );
    let seen = fake.until(|s| matches!(s, Seen::Closed(_))).await;
    assert!(matches!(seen.last(), Some(Seen::Closed(1))));
    assert_eq!(connections(&seen), [1]);
    assert_eq!(
        lookup(&peers, &caller, &target, "echo c", LONG).await.as_deref(),
        Ok("c")
    );
    assert_eq!(connections(&fake.until(is_lookup).await), [2]);
}

#[tokio::test]
async fn a_dropped_call_clears_its_wait_and_counts_as_an_error() {
    let fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    let cancelled = tokio::time::timeout(
        Duration::from_millis(150),
        lookup(&peers, &caller, &fake.target(), "silent", LONG),
    )
    .await;
    assert!(cancelled.is_err());
    assert_eq!(caller.waiting(), None);
    assert_eq!(caller.peer_calls("error"), 1.0);
}

#[test]
fn errors_map_to_libvirt_codes() {
    let timeout = PeerError::Timeout {
        daemon: NETWORK.into(),
        procedure: "NETWORK_CREATE",
        after: Duration::from_secs(30),
    }
    .to_rpc_error();
    assert_eq!(
        timeout.text(),
        "Timed out during operation: no reply from virtnetworkd to NETWORK_CREATE after 30 s"
    );
    assert_eq!(timeout.str1.as_deref(), Some("Timed out during operation: %s"));
    assert_eq!(timeout.code, ErrorCode::OPERATION_TIMEOUT);

    let connect = PeerError::Connect {
        socket: "/run/libvirt/virtnetworkd-sock".into(),
        source: io::Error::from_raw_os_error(nix::errno::Errno::EACCES as i32),
    }
    .to_rpc_error();
    assert_eq!(
        connect.text(),
        "Failed to connect socket to '/run/libvirt/virtnetworkd-sock': Permission denied"
    );
    assert_eq!(
        (connect.code, connect.domain),
        (ErrorCode::SYSTEM_ERROR, ErrorDomain::RPC)
    );

    let auth = RpcError::from(PeerError::AuthUnsupported {
        daemon: NETWORK.into(),
        types: vec![2],
    });
    assert_eq!((auth.code, auth.domain), (ErrorCode(45), ErrorDomain::RPC));

    let bad = RpcError::from(PeerError::BadReply {
        daemon: NETWORK.into(),
        procedure: "AUTH_LIST",
        detail: "cannot decode the result: x".into(),
    });
    assert_eq!(bad.code, ErrorCode::RPC);
    assert_eq!(
        bad.text(),
        "unexpected reply from virtnetworkd to AUTH_LIST: cannot decode the result: x"
    );

    assert_eq!(RpcError::from(PeerError::Remote(refused())), refused());
}

#[tokio::test]
async fn a_connection_for_a_client_sets_its_identity_right_after_open() {
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud");
    let identity = crate::identity::Identity {
        pid: 4242,
        uid: 1000,
        gid: 100,
        process_time: 77,
        user_name: Some("alice".into()),
        group_name: None,
    };
    let target = PeerTarget {
        identity: Some(identity.clone()),
        ..fake.target()
    };
    let got = lookup(&peers, &caller, &target, "echo x", LONG).await;
    assert_eq!(got.as_deref(), Ok("x"));
    let seen = fake.until(is_lookup).await;
    let handshake = calls(&seen);
    let procs: Vec<(u32, i32, u32)> = handshake.iter().map(SeenCall::key).collect();
    assert_eq!(
        procs,
        [(1, 66, 0), (1, 60, 1), (1, 1, 2), (1, 419, 3), (1, LOOKUP.0, 4)]
    );
    let args = modvirt_wire::remote::ConnectSetIdentityArgs::from_xdr(&handshake[3].args).unwrap();
    assert_eq!(args.flags, 0);
    assert_eq!(crate::identity::Identity::from_params(&args.params), Ok(identity));
    // Another identity is another connection; the same one reuses it.
    let other = PeerTarget {
        identity: None,
        ..fake.target()
    };
    lookup(&peers, &caller, &other, "echo y", LONG).await.unwrap();
    lookup(&peers, &caller, &target, "echo z", LONG).await.unwrap();
    let later = fake.drain();
    assert_eq!(connections(&later), [2]);
    let conn_of = |tag: &str| {
        later.iter().find_map(|s| match s {
            Seen::Call { conn, args, .. } if String::from_xdr(args).ok().as_deref() == Some(tag) => {
                Some(*conn)
            }
            _ => None,
        })
    };
    assert_eq!((conn_of("echo y"), conn_of("echo z")), (Some(2), Some(1)));
}

#[tokio::test]
async fn a_peer_that_never_answers_pings_is_given_up_and_reopened() {
    // The fake peer does not answer keepalive PINGs.
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let peers = Peers::new("virtqemud").with_keepalive(Duration::from_millis(50), 2);
    let target = fake.target();
    assert_eq!(
        lookup(&peers, &caller, &target, "echo a", LONG).await.as_deref(),
        Ok("a")
    );
    let seen = fake.until(|s| matches!(s, Seen::Closed(_))).await;
    assert_eq!(connections(&seen), [1]);
    assert_eq!(
        lookup(&peers, &caller, &target, "echo b", LONG).await.as_deref(),
        Ok("b")
    );
    assert_eq!(
        connections(&fake.drain()),
        [2],
        "a new connection after the dead one"
    );
}
