//! QMP client against a scripted fake QEMU on a unix socket.

use super::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

const T: Duration = Duration::from_secs(5);

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}"#;

/// The QEMU end of one connection.
struct FakeQemu {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl FakeQemu {
    /// Accepts one client and sends the greeting.
    async fn accept(listener: &UnixListener, greeting: &str) -> FakeQemu {
        let (s, _) = listener.accept().await.expect("accept");
        let (rd, wr) = s.into_split();
        let mut q = FakeQemu {
            rd: BufReader::new(rd),
            wr,
        };
        q.send_raw(greeting).await;
        q
    }

    /// Accepts, greets and answers `qmp_capabilities`.
    async fn ready(listener: &UnixListener) -> FakeQemu {
        let mut q = Self::accept(listener, GREETING).await;
        let (cmd, id, _) = q.command().await.expect("capabilities");
        assert_eq!(cmd, "qmp_capabilities");
        q.send(json!({"return": {}, "id": id})).await;
        q
    }

    /// The next command: (name, id, arguments); `None` at end of file.
    async fn command(&mut self) -> Option<(String, u64, Value)> {
        let mut line = String::new();
        if self.rd.read_line(&mut line).await.expect("read") == 0 {
            return None;
        }
        let v: Value = serde_json::from_str(&line).expect("command is JSON");
        Some((
            v["execute"].as_str().expect("execute").to_owned(),
            v["id"].as_u64().expect("id"),
            v.get("arguments").cloned().unwrap_or(Value::Null),
        ))
    }

    async fn send(&mut self, v: Value) {
        self.send_raw(&v.to_string()).await;
    }

    async fn send_raw(&mut self, line: &str) {
        self.wr
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
    }
}

fn listener() -> (tempfile::TempDir, PathBuf, UnixListener) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("qmp.sock");
    let l = UnixListener::bind(&path).expect("bind");
    (dir, path, l)
}

#[tokio::test]
async fn qemu_qmp_handshake_command_and_interleaved_event() {
    let (_dir, path, l) = listener();
    let server = tokio::spawn(async move {
        let mut q = FakeQemu::ready(&l).await;
        let (cmd, id, args) = q.command().await.expect("command");
        assert_eq!(cmd, "query-status");
        assert_eq!(args, Value::Null);
        q.send(
            json!({"event": "RESUME", "data": {}, "timestamp": {"seconds": 1700000000, "microseconds": 5}}),
        )
        .await;
        q.send(json!({"return": {"status": "running", "running": true}, "id": id}))
            .await;
        let (cmd, id, args) = q.command().await.expect("command");
        assert_eq!((cmd.as_str(), args), ("stop", json!({"x": 1})));
        q.send(json!({"return": {}, "id": id})).await;
        q
    });
    let (qmp, mut events) = Qmp::connect(&path, T).await.expect("connect");
    let g = qmp.greeting();
    assert_eq!((g.major, g.minor, g.micro), (7, 2, 22));
    assert_eq!(g.package, "Debian 1:7.2+dfsg-7");
    assert_eq!(g.capabilities, vec!["oob".to_owned()]);
    assert_eq!(qmp.peer_pid(), Some(std::process::id() as i32));
    let status = qmp.execute("query-status", None).await.expect("query-status");
    assert_eq!(status["status"], "running");
    let ev = events.recv().await.expect("event");
    assert_eq!(ev.name, "RESUME");
    assert_eq!(
        ev.timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_micros(5))
    );
    qmp.execute("stop", Some(json!({"x": 1}))).await.expect("stop");
    assert!(qmp.busy_since().is_none());
    let _q = server.await.expect("server");
}

#[tokio::test]
async fn qemu_qmp_replies_matched_by_id_out_of_order() {
    let (_dir, path, l) = listener();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut q = FakeQemu::ready(&l).await;
        let a = q.command().await.expect("first");
        let b = q.command().await.expect("second");
        go_rx.await.expect("go");
        q.send(json!({"return": b.0, "id": b.1})).await;
        q.send(json!({"return": a.0, "id": a.1})).await;
        q
    });
    let (qmp, _events) = Qmp::connect(&path, T).await.expect("connect");
    let (q1, q2) = (qmp.clone(), qmp.clone());
    let first = tokio::spawn(async move { q1.execute("first", None).await });
    // Make "first" strictly older than "second".
    while qmp.pending().is_empty() {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = tokio::spawn(async move { q2.execute("second", None).await });
    while qmp.pending().len() < 2 {
        tokio::task::yield_now().await;
    }
    let pending = qmp.pending();
    assert_eq!(pending[0].0, "first");
    assert_eq!(pending[1].0, "second");
    assert_eq!(qmp.busy_since(), Some(pending[0].1));
    go_tx.send(()).expect("go");
    assert_eq!(first.await.expect("join").expect("first"), "first");
    assert_eq!(second.await.expect("join").expect("second"), "second");
    assert!(qmp.pending().is_empty());
    let _q = server.await.expect("server");
}

#[tokio::test]
async fn qemu_qmp_error_reply_becomes_command_error() {
    let (_dir, path, l) = listener();
    let server = tokio::spawn(async move {
        let mut q = FakeQemu::ready(&l).await;
        let (_, id, _) = q.command().await.expect("command");
        q.send(json!({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}, "id": id}))
            .await;
        q
    });
    let (qmp, _events) = Qmp::connect(&path, T).await.expect("connect");
    let err = qmp.execute("nope", None).await.expect_err("must fail");
    match &err {
        QmpError::Command { command, class, desc } => {
            assert_eq!(command, "nope");
            assert_eq!(class, "CommandNotFound");
            assert_eq!(desc, "The command nope has not been found");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "unable to execute QEMU command 'nope': The command nope has not been found"
    );
    let _q = server.await.expect("server");
}

#[tokio::test]
async fn qemu_qmp_close_fails_pending_and_ends_events() {
    let (_dir, path, l) = listener();
    let server = tokio::spawn(async move {
        let mut q = FakeQemu::ready(&l).await;
        let _ = q.command().await.expect("command");
        q.send(json!({"event": "SHUTDOWN", "data": {"guest": false}}))
            .await;
        // QEMU exits without replying.
    });
    let (qmp, mut events) = Qmp::connect(&path, T).await.expect("connect");
    let err = qmp.execute("quit", None).await.expect_err("closed");
    assert!(
        matches!(&err, QmpError::Closed { command } if command == "quit"),
        "{err:?}"
    );
    assert!(err.to_string().contains("QEMU exited"), "{err}");
    assert_eq!(events.recv().await.expect("event").name, "SHUTDOWN");
    assert!(events.recv().await.is_none(), "event channel must end");
    assert!(qmp.is_closed());
    assert!(qmp.busy_since().is_none());
    let err = qmp.execute("query-status", None).await.expect_err("closed");
    assert!(matches!(err, QmpError::Closed { .. }), "{err:?}");
    server.await.expect("server");
}

#[tokio::test]
async fn qemu_qmp_timeout_keeps_monitor_occupied_until_reply() {
    let (_dir, path, l) = listener();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut q = FakeQemu::ready(&l).await;
        let (_, id, _) = q.command().await.expect("command");
        go_rx.await.expect("go");
        q.send(json!({"return": {}, "id": id})).await;
        let (_, id, _) = q.command().await.expect("command");
        q.send(json!({"return": 7, "id": id})).await;
        q
    });
    let (qmp, _events) = Qmp::connect(&path, T).await.expect("connect");
    let err = qmp
        .execute_with_timeout("slow", None, Duration::from_millis(50))
        .await
        .expect_err("timeout");
    assert!(
        matches!(&err, QmpError::Timeout { command, .. } if command == "slow"),
        "{err:?}"
    );
    assert_eq!(qmp.pending().len(), 1, "QEMU still works on it");
    assert!(qmp.busy_since().is_some());
    go_tx.send(()).expect("go");
    // The late reply is dropped, the next command works and the monitor is idle.
    assert_eq!(qmp.execute("next", None).await.expect("next"), 7);
    assert!(qmp.pending().is_empty());
    let _q = server.await.expect("server");
}

#[tokio::test]
async fn qemu_qmp_connect_errors() {
    let (dir, path, l) = listener();
    let err = Qmp::connect(&dir.path().join("absent.sock"), T)
        .await
        .expect_err("no socket");
    assert!(matches!(err, QmpError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("No such file or directory"), "{err}");

    let server = tokio::spawn(async move {
        let bad = FakeQemu::accept(&l, r#"{"hello": 1}"#).await;
        let (mute, _) = l.accept().await.expect("accept");
        (bad, mute)
    });
    let err = Qmp::connect(&path, T).await.expect_err("bad greeting");
    assert!(matches!(err, QmpError::Greeting { .. }), "{err:?}");
    assert!(err.to_string().contains("no \"QMP\" member"), "{err}");
    let err = Qmp::connect(&path, Duration::from_millis(100))
        .await
        .expect_err("silent server");
    assert!(matches!(err, QmpError::ConnectTimeout { .. }), "{err:?}");
    let _keep = server.await.expect("server");
}

#[tokio::test]
async fn qemu_qmp_last_handle_drop_closes_connection() {
    let (_dir, path, l) = listener();
    let server = tokio::spawn(async move {
        let mut q = FakeQemu::ready(&l).await;
        q.command().await
    });
    let (qmp, mut events) = Qmp::connect(&path, T).await.expect("connect");
    let clone = qmp.clone();
    drop(qmp);
    assert!(!clone.is_closed());
    drop(clone);
    let next = tokio::time::timeout(T, server).await.expect("server sees EOF");
    assert!(next.expect("server").is_none());
    assert!(
        tokio::time::timeout(T, events.recv())
            .await
            .expect("events end")
            .is_none()
    );
}
