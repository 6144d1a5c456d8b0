use super::fake::{FakeObserveServer, FakeReplies, sample_status};
use super::*;
use modvirt_wire::Status;
use modvirt_wire::message::encode_frame;
use modvirt_wire::observe::Span;
use std::time::Instant;

fn span(seq: u64) -> Span {
    Span {
        seq,
        trace_id: format!("{:032x}", seq / 10),
        span_id: format!("{seq:016x}"),
        parent_span_id: None,
        name: "CALL".into(),
        start_unix_ns: seq,
        duration_ns: 1,
        attributes: vec![],
        status: "ok".into(),
    }
}

fn server(dir: &Path, replies: FakeReplies) -> FakeObserveServer {
    FakeObserveServer::start(&dir.join("virtqemud-admin-sock"), replies).unwrap()
}

#[test]
fn a_session_speaks_only_observe() {
    let dir = tempfile::tempdir().unwrap();
    let status = sample_status("virtqemud", 42, 1_000_000);
    let fake = server(
        dir.path(),
        FakeReplies {
            status: serde_json::to_string(&status).unwrap(),
            metrics: "modvirt_up 1\n".into(),
            spans: (0..2500).map(span).collect(),
            ..Default::default()
        },
    );
    let mut c = ObserveClient::connect(fake.path(), Duration::from_secs(2)).unwrap();
    assert_eq!(c.status().unwrap(), status);
    assert_eq!(c.metrics().unwrap(), "modvirt_up 1\n");
    let page = c.spans(2400, 50).unwrap();
    assert_eq!((page.spans.len(), page.next_cursor), (50, 2450));
    let all = c.all_spans(100_000).unwrap();
    assert_eq!(all.spans.len(), 2500, "pages are followed");
    assert_eq!(all.next_cursor, 2500);
    assert_eq!(c.all_spans(1200).unwrap().spans.len(), 1200);
    c.close().unwrap();
    let calls = fake.calls();
    assert!(
        calls.iter().all(|&(prog, _)| prog == OBSERVE_PROGRAM),
        "{calls:?}"
    );
    assert_eq!(calls.first(), Some(&(OBSERVE_PROGRAM, procs::OPEN)));
    assert_eq!(calls.last(), Some(&(OBSERVE_PROGRAM, procs::CLOSE)));
}

fn watch_events(events_before_reply: bool) {
    let dir = tempfile::tempdir().unwrap();
    let status = sample_status("virtqemud", 42, 1_000_000);
    let full = serde_json::to_string(&WatchEvent::Full {
        status: Box::new(status.clone()),
    })
    .unwrap();
    let change = r#"{"type":"changes","fields":{"state":"stopping"}}"#.to_owned();
    let fake = server(
        dir.path(),
        FakeReplies {
            watch_events: vec![full, change],
            events_before_reply,
            ..Default::default()
        },
    );
    let mut c = ObserveClient::connect(fake.path(), Duration::from_millis(300)).unwrap();
    let mut seen = Vec::new();
    let mut quiet = 0;
    c.watch(Duration::from_millis(50), |w| {
        match w {
            Watched::Event(e) => seen.push(e),
            Watched::Quiet(_) => quiet += 1,
        }
        if quiet > 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(seen.len(), 2);
    assert!(matches!(&seen[0], WatchEvent::Full { status: s } if **s == status));
    match &seen[1] {
        WatchEvent::Changes { fields } => assert_eq!(fields["state"], "stopping"),
        other => panic!("unexpected {other:?}"),
    }
    c.close().unwrap();
    assert!(fake.calls().contains(&(OBSERVE_PROGRAM, procs::UNWATCH)));
}

#[test]
fn watch_delivers_events_until_break() {
    watch_events(false);
}

#[test]
fn watch_events_that_overtake_the_reply_are_kept_in_order() {
    watch_events(true);
}

#[test]
fn a_hung_daemon_costs_one_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let fake = server(
        dir.path(),
        FakeReplies {
            hang_status: true,
            ..Default::default()
        },
    );
    let mut c = ObserveClient::connect(fake.path(), Duration::from_millis(200)).unwrap();
    let t = Instant::now();
    let e = c.status().unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(e.to_string(), "no answer within 0.2 s");
}

#[test]
fn newer_schema_and_garbage_are_refused() {
    let e = parse_doc::<DaemonStatus>("STATUS", r#"{"schema": 2, "name": "x"}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "STATUS document has schema 2; this tool understands 1"
    );
    let e = parse_doc::<WatchEvent>("WATCH_EVENT", r#"{"type":"full","status":{"schema":9}}"#).unwrap_err();
    assert!(matches!(e, ObserveError::Schema { got: 9, .. }), "{e:?}");
    let e = parse_doc::<DaemonStatus>("STATUS", "{").unwrap_err();
    assert!(matches!(e, ObserveError::Document { .. }), "{e:?}");
}

#[test]
fn connect_errors_name_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody-admin-sock");
    let e = ObserveClient::connect(&path, Duration::from_secs(1)).unwrap_err();
    assert!(e.to_string().contains("nobody-admin-sock"), "{e}");
    assert!(!e.is_timeout());
}

#[test]
fn a_daemon_without_observe_says_so() {
    // A real libvirt daemon answers OBSERVE calls with an error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libvirt-admin-sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut r = crate::FrameReader::new();
        let h = r.next_frame(&mut s).unwrap();
        let err = modvirt_wire::RpcError::new(
            modvirt_wire::ErrorCode::RPC,
            modvirt_wire::ErrorDomain::RPC,
            "cannot find program",
            format!("{:#x}", h.prog),
        );
        use modvirt_wire::XdrEncode;
        use std::io::Write;
        s.write_all(&encode_frame(&h.reply(Status::Error), |e| err.encode(e)))
            .unwrap();
    });
    let e = ObserveClient::connect(&path, Duration::from_secs(2)).unwrap_err();
    assert!(
        matches!(
            e,
            ObserveError::Call {
                procedure: "OPEN",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("cannot find program"), "{e}");
    t.join().unwrap();
}
