//! `virt-daemons watch` against a real daemon: the OBSERVE WATCH stream
//! (a full event, then changes) as the CLI prints it, with a real virsh
//! coming and going, and the rules every observer keeps: it connects only
//! to a running daemon and never keeps one awake.

use modvirt_tests::{bin, wait_for};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

fn virt_daemons_cmd(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("virt-daemons"));
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env_remove("MODVIRT_ROOT")
        .stdin(Stdio::null());
    cmd
}

/// A running `virt-daemons watch`, its stdout lines arriving on a channel;
/// killed by pid and reaped if the test ends early.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Watch {
    fn spawn(root: &Path, args: &[&str]) -> Watch {
        let mut child = virt_daemons_cmd(root, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn virt-daemons watch");
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        Watch {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line, or `None` at end of output; panics after `timeout`.
    fn next_line(&self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!("no line from watch within {timeout:?}"),
        }
    }

    /// Every line until the end of its output, then its exit status and
    /// stderr; panics if that takes longer than `timeout`.
    fn finish(mut self, timeout: Duration) -> (Vec<String>, ExitStatus, String) {
        let end = Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Some(l) = self.next_line(end.saturating_duration_since(Instant::now())) {
            lines.push(l);
        }
        let mut status = None;
        wait_for(end.saturating_duration_since(Instant::now()), || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        let status = status.expect("watch did not exit");
        let stderr = self.stderr.take().and_then(|h| h.join().ok());
        (lines, status, stderr.unwrap_or_default())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
}

fn output_of(cmd: &mut Command) -> Output {
    modvirt_tests::output_within(cmd, Duration::from_secs(20))
}

#[test]
fn watch_shows_full_state_then_a_virsh_connecting_and_stays_passive() {
    let mut d = modvirt_tests::virtqemud_with_idle_timeout(5);
    let root = d.root.path().to_owned();
    let watch = Watch::spawn(
        &root,
        &[
            "watch",
            "virtqemud",
            "--interval-ms",
            "200",
            "--count",
            "4",
            "--json",
        ],
    );

    let first = json(&watch.next_line(Duration::from_secs(10)).expect("a first event"));
    assert_eq!(first["type"], "full", "{first:#}");
    assert_eq!(first["status"]["pid"], d.pid(), "{first:#}");
    assert_eq!(first["status"]["name"], "virtqemud");
    let clients = first["status"]["clients"].as_array().expect("clients");
    assert!(
        clients.iter().all(|c| c["process"]["pid"] != watch.pid()),
        "the watcher leaves itself out: {clients:#?}"
    );

    // A real client arrives while the watch runs.
    let mut virsh = d.interactive_virsh(false);
    let (lines, status, stderr) = watch.finish(Duration::from_secs(20));
    assert!(status.success(), "watch failed ({status}): {stderr}\n{lines:#?}");
    assert_eq!(lines.len(), 3, "4 events in all, then exit: {lines:#?}");
    let events: Vec<Value> = lines.iter().map(|l| json(l)).collect();
    assert!(events.iter().all(|e| e["type"] == "changes"), "{events:#?}");
    let joined = events
        .iter()
        .find_map(|e| e["fields"]["clients"].as_array())
        .unwrap_or_else(|| panic!("no change of clients in {events:#?}"));
    assert!(
        joined
            .iter()
            .any(|c| c["process"]["pid"] == virsh.pid() && c["passive"] == false),
        "virsh (pid {}) among the new clients: {joined:#?}",
        virsh.pid()
    );

    // Watching kept nothing alive: once virsh quits, the idle timeout runs out.
    assert!(virsh.close().is_some(), "virsh did not quit");
    assert!(
        d.wait_exit(Duration::from_secs(20)).is_some(),
        "virtqemud --timeout 5 did not exit after being watched; stderr:\n{}",
        d.stderr()
    );
}

#[test]
fn watch_ends_cleanly_when_the_watched_daemon_idles_out() {
    let mut d = modvirt_tests::virtqemud_with_idle_timeout(3);
    let watch = Watch::spawn(d.root.path(), &["watch", "virtqemud", "--interval-ms", "200"]);
    let first = watch.next_line(Duration::from_secs(10)).expect("a first event");
    assert!(
        first.contains(&format!("virtqemud pid {}: running", d.pid())),
        "{first}"
    );
    assert!(first.contains("idle: exits in"), "an unheld countdown: {first}");
    // The open WATCH stream does not hold the idle timer: the daemon exits,
    // and the watch says so and ends with success.
    let (lines, status, stderr) = watch.finish(Duration::from_secs(20));
    assert!(
        d.wait_exit(Duration::from_secs(5)).is_some(),
        "virtqemud still runs"
    );
    assert!(status.success(), "watch failed ({status}): {stderr}\n{lines:#?}");
    let last = lines.last().expect("an end line");
    assert!(last.contains("virtqemud: watch ended"), "{lines:#?}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.contains("virtqemud changed: ")),
        "{lines:#?}"
    );
}

#[test]
fn watch_refuses_daemons_that_do_not_run_without_connecting() {
    let mut d = modvirt_tests::virtqemud_with_idle_timeout(1);
    assert!(d.wait_exit(Duration::from_secs(15)).is_some(), "idle exit");
    // Where socket activation would listen: connecting here would wake it.
    let wakes = modvirt_tests::counting_listener(&d.socket("admin-sock"));
    let root = d.root.path();

    let out = output_of(&mut virt_daemons_cmd(
        root,
        &["watch", "virtqemud", "--count", "1"],
    ));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("virtqemud is not running"), "{err}");
    assert!(out.stdout.is_empty(), "{out:?}");

    let out = output_of(&mut virt_daemons_cmd(root, &["watch", "virtnope"]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown daemon \"virtnope\""), "{err}");

    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        wakes.load(Ordering::SeqCst),
        0,
        "watch connected to a sleeping daemon"
    );
}
