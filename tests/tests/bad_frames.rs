//! Broken framing and misbehaving connections against a real `virtqemud`
//! (PRODUCT.md §4: bad input gets a libvirt-style error or a logged
//! disconnect, and never takes the daemon down): length words out of range,
//! malformed headers, truncated frames, silent and stalled clients,
//! keepalive, clients that never read, and a thousand clients at once.
//!
//! Each test starts its own daemon and talks to it with
//! [`RawClient`](modvirt_tests::raw::RawClient)s. For every case it checks
//! what the offending client gets (a disconnect or an error reply), that
//! disconnects leave a line in the daemon's log, and that the daemon still
//! serves everyone else (a raw `AUTH_LIST`/`CONNECT_OPEN`/hostname round
//! trip and the real `virsh hostname`). Wrong calls in well-formed frames
//! are in `bad_calls.rs`.
//!
//! Most daemons run with a 2 s stall limit ([`STALL_LIMIT`]); time bounds
//! are generous.

use modvirt_tests::raw::{
    GENEROUS, RawClient, Recv, STALL_LIMIT, assert_serves, is_keepalive, keepalive_frame, procs,
    start_with_short_keepalive,
};
use modvirt_tests::{
    Daemon, DaemonOptions, assert_logged, count_logged, field, ok_stdout, open_fds, proc_status_kib, wait_for,
};
use modvirt_wire::XdrDecode;
use modvirt_wire::message::MESSAGE_MAX;
use modvirt_wire::program::{KEEPALIVE_PING, KEEPALIVE_PONG};
use modvirt_wire::remote as r;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// For each length word in `lens`: sends it and then `filler` on a fresh
/// connection, expects the daemon to drop that client and log `why(len)`,
/// and checks that it still serves others.
fn assert_bad_lengths_dropped(d: &mut Daemon, lens: &[u32], filler: &[u8], why: impl Fn(u32) -> String) {
    for &len in lens {
        let mut c = RawClient::connect_rw(d);
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(filler);
        let _ = c.send(&bytes);
        c.expect_closed(GENEROUS);
        assert_logged(d, &why(len));
        assert_serves(d);
    }
}

// ---------------------------------------------------------------- 1, 2: lengths

#[test]
fn oversized_length_word_drops_client_without_allocating() {
    let mut d = start_with_short_keepalive("");
    let pid = d.pid();
    let rss_before = proc_status_kib(pid, "VmRSS");
    let too_large = [0x7fff_ffff, MESSAGE_MAX + 1, u32::MAX];
    assert_bad_lengths_dropped(&mut d, &too_large, &[0xab; 60], |len| {
        format!("packet of {len} bytes is too large, the maximum is {MESSAGE_MAX}")
    });
    // Sixteen clients announce the largest valid frame and stall after the
    // header: the body is buffered only as it arrives, so nothing near
    // 16 × 32 MiB is ever held.
    let mut big: Vec<RawClient> = (0..16)
        .map(|_| {
            let mut c = RawClient::connect_rw(&d);
            let (_, frame) = c.call_frame(procs::AUTH_LIST, &[]);
            let mut bytes = MESSAGE_MAX.to_be_bytes().to_vec();
            bytes.extend_from_slice(&frame[4..]);
            bytes.extend_from_slice(&[0; 1000]);
            c.send(&bytes).expect("send partial frame");
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let rss_during = proc_status_kib(pid, "VmRSS");
    assert!(
        rss_during < 64 * 1024,
        "VmRSS {rss_during} kB with 16 announced 32 MiB frames"
    );
    for c in &mut big {
        c.expect_closed(GENEROUS);
    }
    assert_logged(
        &d,
        &format!("a {MESSAGE_MAX}-byte frame incomplete: no data for 2s (1024 bytes received)"),
    );
    let rss_after = proc_status_kib(pid, "VmRSS");
    let peak = proc_status_kib(pid, "VmHWM");
    assert!(
        rss_after < 64 * 1024 && peak < 64 * 1024,
        "daemon memory grew: VmRSS {rss_before} → {rss_after} kB, peak {peak} kB"
    );
    assert_serves(&mut d);
}

#[test]
fn undersized_length_or_bad_header_drops_client() {
    let mut d = start_with_short_keepalive("");
    assert_bad_lengths_dropped(&mut d, &[0, 4, 27], &[0; 24], |len| {
        format!("packet of {len} bytes is too small, want at least 28")
    });
    // A whole frame whose header has an unknown message type or status.
    for (offset, value, why) in [
        (16, 9i32, "malformed message header: unknown message type 9"),
        (24, 7i32, "malformed message header: unknown message status 7"),
    ] {
        let mut c = RawClient::connect_rw(&d);
        c.auth_list();
        let (_, mut frame) = c.call_frame(procs::AUTH_LIST, &[]);
        frame[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
        let _ = c.send(&frame);
        c.expect_closed(GENEROUS);
        assert_logged(&d, why);
        assert_serves(&mut d);
    }
}

// ---------------------------------------------------------------- 7: truncated frames

#[test]
fn truncated_frame_drops_client_with_log() {
    let mut d = start_with_short_keepalive("");
    // Half-close after 40 of 100 announced bytes: the client sees the drop.
    let mut c = RawClient::connect_rw(&d);
    let (_, frame) = c.call_frame(procs::AUTH_LIST, &[0; 72]);
    assert_eq!(frame.len(), 100);
    c.send(&frame[..40]).expect("send");
    c.shutdown_write();
    c.expect_closed(GENEROUS);
    assert_logged(&d, "connection closed in the middle of a 100-byte frame");
    assert_serves(&mut d);

    // Full close after a good call and part of a second one.
    let mut c = RawClient::connect_rw(&d);
    c.auth_list();
    let (_, frame) = c.call_frame(procs::AUTH_LIST, &[0; 172]);
    c.send(&frame[..150]).expect("send");
    drop(c);
    assert_logged(&d, "connection closed in the middle of a 200-byte frame");
    assert_serves(&mut d);

    // Half-close inside the length word of a second frame.
    let mut c = RawClient::connect_rw(&d);
    c.auth_list();
    c.send(&[0, 0]).expect("send");
    c.shutdown_write();
    c.expect_closed(GENEROUS);
    assert_logged(&d, "connection closed in the middle of a length word");
    assert_serves(&mut d);
}

#[test]
fn log_lines_name_the_dropped_client() {
    // A drop line says which client, whose pid and command, and why.
    let d = start_with_short_keepalive("");
    let mut c = RawClient::connect_rw(&d);
    let _ = c.send(&5u32.to_be_bytes());
    c.expect_closed(GENEROUS);
    let me = std::process::id();
    assert_logged(&d, &format!("(pid {me}, "));
    assert_eq!(count_logged(&d, "packet of 5 bytes is too small"), 1);
}

// ---------------------------------------------------------------- 10: silence and stalls

#[test]
fn silent_and_stalled_clients_are_dropped_after_the_limit() {
    let mut d = start_with_short_keepalive("");
    let t0 = Instant::now();
    let mut silent = RawClient::connect_rw(&d);
    let mut half = RawClient::connect_rw(&d);
    let (_, frame) = half.call_frame(procs::AUTH_LIST, &[]);
    half.send(&frame[..14]).expect("send half a frame");
    // A client that made a call and then only sent part of a length word.
    let mut split_len = RawClient::connect_rw(&d);
    split_len.auth_list();
    split_len.send(&frame[..2]).expect("send half a length word");
    // A client that made a call and then idles is left alone (keepalive off).
    let mut idle = RawClient::connect_rw(&d);
    idle.auth_list();

    // Meanwhile everyone else is served at once.
    for _ in 0..5 {
        let t = Instant::now();
        RawClient::connect_rw(&d).assert_usable();
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "round trip took {:?}",
            t.elapsed()
        );
    }
    assert_serves(&mut d);

    silent.expect_closed(GENEROUS);
    let waited = t0.elapsed();
    assert!(
        waited >= STALL_LIMIT - Duration::from_millis(100) && waited < GENEROUS,
        "silent client dropped after {waited:?}"
    );
    half.expect_closed(GENEROUS);
    assert!(t0.elapsed() >= STALL_LIMIT - Duration::from_millis(100));
    split_len.expect_closed(GENEROUS);
    assert_logged(&d, "sent nothing within 2s of connecting");
    assert_logged(
        &d,
        "a 28-byte frame incomplete: no data for 2s (10 bytes received)",
    );
    assert_logged(&d, "a length word incomplete: no data for 2s");

    idle.expect_quiet(Duration::from_millis(500));
    idle.auth_list();
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 11: keepalive

/// A client that enabled keepalive and never answers: counts the PINGs it
/// gets until the daemon drops it; returns them and how long that took.
fn mute_keepalive_client(sock: &std::path::Path) -> (u32, Duration) {
    let mut c = RawClient::connect(sock);
    c.auth_list();
    c.enable_keepalive();
    let t0 = Instant::now();
    let mut pings = 0;
    loop {
        assert!(
            t0.elapsed() < GENEROUS,
            "mute client not dropped after {pings} PINGs"
        );
        match c.recv_within(GENEROUS) {
            Recv::Frame(h, p) => {
                assert!(is_keepalive(&h, KEEPALIVE_PING), "unexpected frame {h:?}");
                assert!(p.is_empty(), "PING with a payload");
                pings += 1;
            }
            Recv::Closed => break,
            Recv::TimedOut => panic!("mute client neither pinged nor dropped"),
        }
    }
    (pings, t0.elapsed())
}

/// A client that enabled keepalive and answers every PING with a PONG for
/// 5 s: it must stay connected and usable; returns the PINGs it got.
fn answering_keepalive_client(sock: &std::path::Path) -> u32 {
    let mut c = RawClient::connect(sock);
    c.auth_list();
    c.enable_keepalive();
    let t0 = Instant::now();
    let mut pings = 0;
    while t0.elapsed() < Duration::from_secs(5) {
        match c.recv_within(Duration::from_millis(200)) {
            Recv::Frame(h, _) => {
                assert!(is_keepalive(&h, KEEPALIVE_PING), "unexpected frame {h:?}");
                pings += 1;
                c.send(&keepalive_frame(KEEPALIVE_PONG)).expect("send PONG");
            }
            Recv::TimedOut => {}
            Recv::Closed => panic!("answering client dropped after {:?}", t0.elapsed()),
        }
    }
    c.auth_list();
    c.open(0);
    c.hostname();
    pings
}

#[test]
fn keepalive_pings_drop_mute_clients_and_keep_answering_ones() {
    let mut d = start_with_short_keepalive("");
    let sock = d.socket("sock");
    std::thread::scope(|s| {
        // Mute: gets PINGs, never answers, is dropped after ~interval × (count + 1).
        let mute = s.spawn(|| mute_keepalive_client(&sock));
        // Answering: replies to every PING with a PONG and stays connected.
        let answering = s.spawn(|| answering_keepalive_client(&sock));
        // The daemon answers a client's PING with a PONG, before and after open.
        let mut c = RawClient::connect(&sock);
        c.ping();
        c.auth_list();
        c.open(0);
        c.ping();

        let (pings, after) = mute.join().unwrap();
        assert!(pings >= 1, "mute client got no PING");
        assert!(
            after >= STALL_LIMIT - Duration::from_millis(100) && after < GENEROUS,
            "mute client dropped after {after:?}"
        );
        assert!(answering.join().unwrap() >= 1, "answering client got no PING");
    });
    assert_logged(&d, "No response from client");
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 12: many clients

/// `nclients` from `virt-admin srv-clients-info` output.
fn nclients(info: &str) -> Option<usize> {
    field(info, "nclients")?.parse().ok()
}

/// Connects `n` clients to `sock` and has each complete an `AUTH_LIST`
/// (all sent before any reply is read); returns them still connected.
fn connect_and_auth(sock: &std::path::Path, n: usize) -> Result<Vec<RawClient>, String> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(RawClient::try_connect(sock).map_err(|e| format!("connect: {e}"))?);
    }
    let mut sent = Vec::new();
    for c in &mut clients {
        let (h, frame) = c.call_frame(procs::AUTH_LIST, &[]);
        c.send(&frame).map_err(|e| format!("send: {e}"))?;
        sent.push(h);
    }
    for (c, h) in clients.iter_mut().zip(&sent) {
        let ret = c.reply_to(h).map_err(|e| format!("AUTH_LIST failed: {e}"))?;
        let ret = r::AuthListRet::from_xdr(&ret).map_err(|e| e.to_string())?;
        if ret.types != [r::AUTH_NONE] {
            return Err(format!("AUTH_LIST answered {:?}", ret.types));
        }
    }
    Ok(clients)
}

#[test]
fn a_thousand_concurrent_clients_are_served() {
    const THREADS: usize = 50;
    const PER_THREAD: usize = 20;
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = (THREADS * PER_THREAD + 200) as u64;
    if soft < want {
        assert!(
            hard >= want,
            "RLIMIT_NOFILE hard limit {hard} is below the {want} this test needs"
        );
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    // Default keepalive (30 s stall limit): the clients may take a while to start.
    let mut d = Daemon::start(
        "virtqemud",
        DaemonOptions {
            args: vec!["-v".into()],
            ..Default::default()
        },
    );
    let sock = d.socket("sock");
    let connected = Barrier::new(THREADS + 1);
    let release = Barrier::new(THREADS + 1);
    let results: Vec<Result<usize, String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    // Errors are collected, not raised, so the barriers are always reached.
                    let run = || connect_and_auth(&sock, PER_THREAD);
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                        .unwrap_or_else(|_| Err("client thread panicked".into()));
                    connected.wait();
                    release.wait();
                    outcome.map(|clients| clients.len())
                })
            })
            .collect();
        connected.wait();
        // All thousand are connected (or failed): the daemon still serves virsh.
        let t = Instant::now();
        let host = ok_stdout(&d.virsh(&["hostname"]));
        assert!(!host.trim().is_empty());
        assert!(t.elapsed() < GENEROUS, "virsh hostname took {:?}", t.elapsed());
        let info = ok_stdout(&d.virt_admin(&["srv-clients-info", "virtqemud"]));
        release.wait();
        let results = workers.into_iter().map(|w| w.join().unwrap()).collect();
        let current = nclients(&info).unwrap_or_else(|| panic!("no nclients in:\n{info}"));
        assert!(
            current >= THREADS * PER_THREAD,
            "daemon counted {current} clients:\n{info}"
        );
        results
    });
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} threads failed, e.g. {:?}",
        failures.len(),
        failures[0]
    );
    let served: usize = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    assert_eq!(served, THREADS * PER_THREAD);
    // They are gone again, and the daemon carries on.
    let drained = wait_for(GENEROUS, || {
        let info = d.virt_admin(&["srv-clients-info", "virtqemud"]);
        nclients(&String::from_utf8_lossy(&info.stdout)).is_some_and(|n| n < 10)
    });
    assert!(drained, "clients not removed after closing");
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 13: clients that never read

/// Pipelines calls on `c` until the daemon stops reading (its replies pile
/// up unread); panics if it never does.
fn fill_until_daemon_stops_reading(c: &mut RawClient) {
    let mut batch = Vec::new();
    for _ in 0..200 {
        batch.extend_from_slice(&c.call_frame(procs::AUTH_LIST, &[]).1);
    }
    c.set_write_timeout(Some(Duration::from_millis(200)));
    for _ in 0..100 {
        if c.send(&batch).is_err() {
            return;
        }
    }
    panic!("the daemon kept reading from a client that never reads");
}

#[test]
fn clients_that_never_read_replies_do_not_starve_others() {
    // Each hog pipelines calls and never reads, so the daemon's writes to it
    // block once its socket buffer is full. With the default 20 workers and
    // 5 requests per client, 6 hogs would hold every worker if a worker
    // waited for a client's socket.
    let mut d = start_with_short_keepalive("");
    let mut hogs: Vec<RawClient> = (0..6)
        .map(|_| {
            let mut c = RawClient::connect_rw(&d);
            fill_until_daemon_stops_reading(&mut c);
            c
        })
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        let mut c = RawClient::connect_rw(&d);
        let sent = c.call(procs::AUTH_LIST, &[]);
        match c.recv_within(Duration::from_secs(5)) {
            Recv::Frame(h, _) => assert_eq!(h.serial, sent.serial),
            other => panic!("a well-behaved client got {other:?} while others do not read their replies"),
        }
        assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    }
    assert_serves(&mut d);

    // A hog that enabled keepalive is dropped although its socket is full,
    // and its descriptor is closed without the hog reading anything.
    let fds_before = open_fds(d.pid());
    let mut hog = RawClient::connect_rw(&d);
    hog.enable_keepalive();
    fill_until_daemon_stops_reading(&mut hog);
    assert_logged(&d, "No response from client");
    let closed = wait_for(GENEROUS, || open_fds(d.pid()) <= fds_before);
    assert!(closed, "daemon still holds the dropped hog's socket");
    // What the daemon managed to write is still buffered; then EOF.
    loop {
        match hog.recv_within(GENEROUS) {
            Recv::Frame(..) => {}
            Recv::Closed => break,
            Recv::TimedOut => panic!("hog socket still open after its drop"),
        }
    }
    // Hogs that go away free everything they held.
    hogs.clear();
    assert_serves(&mut d);
}
