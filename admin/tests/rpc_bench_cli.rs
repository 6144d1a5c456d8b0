//! End-to-end test of the `modvirt-rpc-bench` binary against its own echo
//! server: cold start (spawn, poll, AUTH_LIST, SIGTERM, cleanup), idle
//! memory with one client, and round trips, all in `--format kv`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modvirt-rpc-bench");

fn kv(args: &[&str]) -> HashMap<String, String> {
    let out = Command::new(BIN)
        .arg("--format")
        .arg("kv")
        .args(args)
        .output()
        .expect("run modvirt-rpc-bench");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("kv output is UTF-8")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn num(m: &HashMap<String, String>, key: &str) -> f64 {
    m.get(key)
        .unwrap_or_else(|| panic!("no {key} in {m:?}"))
        .parse()
        .expect("kv value is a number")
}

/// Stops the echo server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn coldstart_of_the_echo_server_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("cold.sock");
    let s = sock.to_str().unwrap();
    let m = kv(&[
        "coldstart",
        "--socket",
        s,
        "--runs",
        "2",
        "--pause",
        "0",
        "--",
        BIN,
        "echo-server",
        "--socket",
        s,
    ]);
    assert_eq!(m["coldstart_runs"], "2");
    let median = num(&m, "coldstart_ms_median");
    assert!(median > 0.0 && median < 10_000.0, "{median}");
    assert!(num(&m, "connect_ms_median") <= median);
    assert!(!sock.exists(), "the socket is removed after the last run");
}

#[test]
fn mem_and_rtt_against_a_running_echo_server() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("echo.sock");
    let s = sock.to_str().unwrap();
    let server = Server(
        Command::new(BIN)
            .args(["echo-server", "--socket", s])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&sock);
    let pid = server.0.id().to_string();
    let m = kv(&["mem", "--pid", &pid, "--socket", s, "--raw", "--settle", "0"]);
    assert!(num(&m, "idle_rss_kib") > 0.0);
    assert_eq!(
        num(&m, "idle_threads"),
        1.0,
        "no client yet: only the accept thread"
    );
    assert!(num(&m, "client_rss_kib") > 0.0);

    let m = kv(&[
        "rtt",
        "--socket",
        s,
        "--raw",
        "--conns",
        "3",
        "--seconds",
        "0.2",
        "--warmup",
        "0.05",
    ]);
    assert_eq!(m["rtt_conns"], "3");
    assert!(num(&m, "rtt_calls") > 0.0);
    let rate = num(&m, "rtt_calls_per_sec");
    assert!((num(&m, "rtt_us_per_call") - 1e6 / rate).abs() < 0.01 * (1e6 / rate));
    assert!(num(&m, "rtt_lat_p50_us") <= num(&m, "rtt_lat_p99_us"));
}

#[test]
fn bad_arguments_are_refused() {
    let out = Command::new(BIN)
        .args(["coldstart", "--socket", "/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("command line"));
    let out = Command::new(BIN)
        .args(["rtt", "--socket", "/x", "--seconds", "-1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(BIN)
        .args(["rtt", "--socket", "/x", "--raw", "--uri", "qemu:///system"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--raw and --uri conflict");
}
