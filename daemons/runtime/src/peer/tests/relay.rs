//! Relayed calls ([`Connection::relay`], a session's fast path): the reader
//! hands each reply on itself, with the caller's wait mark held until then,
//! and fails relayed calls when the connection is lost or their deadline
//! passes.

use super::*;
use tokio::sync::oneshot;

/// A connection to `fake` as a session opens it (no idle close).
async fn open(fake: &FakePeer, caller: &Caller, keepalive: Option<(Duration, u32)>) -> Connection {
    let scope = CallScope {
        daemon: NETWORK,
        record: &caller.guard.record,
        context: CallContextMsg {
            traceparent: String::new(),
            caller_daemon: "virtproxyd".into(),
            caller_call: caller.id(),
        },
        deadline: tokio::time::Instant::now() + LONG,
        timeout: LONG,
    };
    let options = connection::OpenOptions {
        keepalive,
        ..Default::default()
    };
    Connection::open(&scope, &fake.target(), &options).await.unwrap()
}

/// Relays `NETWORK_LOOKUP_BY_NAME(arg)`; the receiver gets what is delivered.
async fn relay(
    conn: &Connection,
    caller: &Caller,
    arg: &str,
    timeout: Duration,
) -> oneshot::Receiver<Result<Vec<u8>, RpcError>> {
    let (tx, rx) = oneshot::channel();
    let deliver: Deliver = Box::new(move |result| {
        Box::pin(async move {
            let _ = tx.send(result);
        })
    });
    let context = CallContextMsg {
        traceparent: String::new(),
        caller_daemon: "virtproxyd".into(),
        caller_call: caller.id(),
    };
    conn.relay(
        &context,
        &caller.guard.record,
        LOOKUP.0,
        LOOKUP.1,
        &arg.to_owned().to_xdr(),
        timeout,
        deliver,
    )
    .await;
    rx
}

fn text(reply: Result<Vec<u8>, RpcError>) -> Result<String, String> {
    reply
        .map(|payload| String::from_xdr(&payload).unwrap())
        .map_err(|e| e.text().to_owned())
}

#[tokio::test]
async fn replies_and_errors_are_delivered_with_the_wait_mark_held_until_then() {
    let mut fake = FakePeer::start();
    let caller = Caller::new();
    let conn = open(&fake, &caller, None).await;

    let reply = relay(&conn, &caller, "echo a", LONG).await.await.unwrap();
    assert_eq!(text(reply), Ok("a".to_owned()));
    let error = relay(&conn, &caller, "error", LONG).await.await.unwrap();
    assert_eq!(error.unwrap_err(), network_not_found());

    let pending = relay(&conn, &caller, "delay 300 late", LONG).await;
    match caller.waiting() {
        Some(Waiting::Peer {
            daemon, procedure, ..
        }) => {
            assert_eq!((daemon.as_str(), procedure.as_str()), (NETWORK, LOOKUP.1));
        }
        other => panic!("waiting on {other:?}"),
    }
    assert_eq!(text(pending.await.unwrap()), Ok("late".to_owned()));
    assert_eq!(caller.waiting(), None, "the mark goes with the reply");

    // Each relayed call carries its caller's context.
    let seen = fake.until(is_lookup).await;
    let context = calls(&seen)
        .into_iter()
        .filter(|c| c.proc_ == LOOKUP.0)
        .find_map(|c| c.context)
        .expect("a CALL_CONTEXT before the call");
    assert_eq!(
        (context.caller_daemon.as_str(), context.caller_call),
        ("virtproxyd", caller.id())
    );
}

#[tokio::test]
async fn a_lost_connection_fails_every_relayed_call() {
    let fake = FakePeer::start();
    let caller = Caller::new();
    let conn = open(&fake, &caller, None).await;
    let silent = relay(&conn, &caller, "silent", LONG).await;
    let dropping = relay(&conn, &caller, "drop", LONG).await;
    for rx in [silent, dropping] {
        assert_eq!(
            text(rx.await.unwrap()),
            Err("connection to virtnetworkd lost: the peer closed the connection".to_owned())
        );
    }
    assert_eq!(caller.waiting(), None);
    // A closed connection refuses new calls at once.
    let after = relay(&conn, &caller, "echo b", LONG).await.await.unwrap();
    assert!(
        text(after)
            .unwrap_err()
            .starts_with("connection to virtnetworkd lost")
    );
}

#[tokio::test]
async fn a_silent_peer_times_out_on_the_readers_tick_and_the_connection_survives() {
    let fake = FakePeer::start();
    let caller = Caller::new();
    // Keepalive every 400 ms (answered by the fake peer): the reader ticks
    // every 100 ms.
    let conn = open(&fake, &caller, Some((Duration::from_millis(400), 5))).await;
    let started = Instant::now();
    let silent = relay(&conn, &caller, "silent", Duration::from_millis(200)).await;
    assert_lookup_timed_out(&silent.await.unwrap().unwrap_err(), "0.2");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "timed out after {waited:?}"
    );
    assert_eq!(caller.waiting(), None);
    let reply = relay(&conn, &caller, "echo on-time", LONG).await.await.unwrap();
    assert_eq!(text(reply), Ok("on-time".to_owned()));
}
