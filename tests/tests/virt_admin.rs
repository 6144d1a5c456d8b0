//! The real Debian `virt-admin` 9.0 against `virtqemud`'s admin socket:
//! servers, worker pools, clients, client limits, logging and the idle
//! timeout. Every setter is checked to really change the daemon, and the
//! texts are compared with what real libvirt prints (see
//! `shared/reference/libvirt-9.0/traces/`).

use modvirt_tests::{
    Daemon, DaemonOptions, InteractiveVirsh, assert_contains, err_stderr, field, ok_stdout, wait_for,
};
use std::time::Duration;

fn start() -> Daemon {
    Daemon::start("virtqemud", DaemonOptions::default())
}

/// `virt-admin …` stdout, asserting success.
fn admin(d: &Daemon, args: &[&str]) -> String {
    ok_stdout(&d.virt_admin(args))
}

/// `key : value` lines of `srv-threadpool-info` / `client-info` / … as pairs.
fn fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn threadpool(d: &Daemon, server: &str) -> String {
    admin(d, &["srv-threadpool-info", server])
}

/// The rows of `srv-clients-list`: (id, transport, connected since).
fn clients(d: &Daemon) -> Vec<(u64, String, String)> {
    admin(d, &["srv-clients-list", "virtqemud"])
        .lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            let id = it.next().and_then(|s| s.parse().ok()).expect("client id");
            let transport = it.next().unwrap_or_default().to_owned();
            let since: Vec<&str> = it.collect();
            (id, transport, since.join(" "))
        })
        .collect()
}

/// Starts an interactive virsh and waits until the daemon lists it.
fn connected_virsh(d: &Daemon, readonly: bool) -> (InteractiveVirsh, u64) {
    let before: Vec<u64> = clients(d).into_iter().map(|c| c.0).collect();
    let v = d.interactive_virsh(readonly);
    let mut id = None;
    let ok = wait_for(Duration::from_secs(10), || {
        id = clients(d).into_iter().map(|c| c.0).find(|i| !before.contains(i));
        id.is_some()
    });
    assert!(
        ok,
        "virsh never showed up in srv-clients-list; its stderr: {}",
        v.stderr()
    );
    (v, id.expect("client id"))
}

/// `2026-11-26 01:28:57+0000`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b' '
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && s.ends_with("+0000")
}

#[test]
fn uri_and_version() {
    let d = start();
    assert_eq!(admin(&d, &["uri"]), format!("{}\n\n", d.admin_uri()));
    assert_eq!(
        admin(&d, &["version"]),
        "Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\n\
         Running against daemon: 9.0.0\n\n"
    );
}

#[test]
fn srv_list_and_default_thread_pools() {
    let d = start();
    assert_eq!(
        admin(&d, &["srv-list"]),
        " Id   Name\n-----------------\n 0    virtqemud\n 1    admin\n\n"
    );
    // As real virtqemud: 5/20 workers, 5 priority workers, all free.
    let main = "minWorkers     : 5\nmaxWorkers     : 20\nnWorkers       : 5\nfreeWorkers    : 5\n\
                prioWorkers    : 5\njobQueueDepth  : 0\n\n";
    let mut last = String::new();
    assert!(
        wait_for(Duration::from_secs(5), || {
            last = threadpool(&d, "virtqemud");
            last == main
        }),
        "{last}"
    );
    // The admin server has no priority workers; one worker is busy
    // answering this very call.
    let admin_pool = "minWorkers     : 5\nmaxWorkers     : 20\nnWorkers       : 5\nfreeWorkers    : 4\n\
                      prioWorkers    : 0\njobQueueDepth  : 0\n\n";
    assert!(
        wait_for(Duration::from_secs(5), || {
            last = threadpool(&d, "admin");
            last == admin_pool
        }),
        "{last}"
    );
}

#[test]
fn threadpool_set_resizes_the_pool() {
    let d = start();
    let out = admin(
        &d,
        &[
            "srv-threadpool-set",
            "virtqemud",
            "--min-workers",
            "2",
            "--max-workers",
            "3",
            "--priority-workers",
            "1",
        ],
    );
    assert_eq!(out.trim(), "");
    let mut info = String::new();
    let shrunk = wait_for(Duration::from_secs(5), || {
        info = threadpool(&d, "virtqemud");
        field(&info, "nWorkers").as_deref() == Some("3")
            && field(&info, "prioWorkers").as_deref() == Some("1")
    });
    assert!(shrunk, "the excess workers did not exit:\n{info}");
    assert_eq!(field(&info, "minWorkers").as_deref(), Some("2"));
    assert_eq!(field(&info, "maxWorkers").as_deref(), Some("3"));
    // The smaller pool still serves calls.
    assert!(!ok_stdout(&d.virsh(&["hostname"])).trim().is_empty());

    // Raising the minimum starts workers at once.
    admin(
        &d,
        &[
            "srv-threadpool-set",
            "virtqemud",
            "--max-workers",
            "10",
            "--min-workers",
            "8",
        ],
    );
    let grown = wait_for(Duration::from_secs(5), || {
        info = threadpool(&d, "virtqemud");
        field(&info, "nWorkers").as_deref() == Some("8")
    });
    assert!(grown, "{info}");
    assert_eq!(field(&info, "maxWorkers").as_deref(), Some("10"));

    // min > max (the client cannot see it: only --min-workers is sent) is
    // refused by the daemon, and nothing changes.
    let err = err_stderr(&d.virt_admin(&["srv-threadpool-set", "virtqemud", "--min-workers", "25"]));
    assert_eq!(
        err,
        "error: Unable to change server workerpool parameters\n\
         error: invalid argument: minWorkers (25) cannot be larger than maxWorkers (10)\n"
    );
    let after = threadpool(&d, "virtqemud");
    assert_eq!(field(&after, "minWorkers").as_deref(), Some("8"));
    assert_eq!(field(&after, "maxWorkers").as_deref(), Some("10"));
    assert_eq!(field(&after, "nWorkers").as_deref(), Some("8"));
    // The admin server's pool was never touched.
    let admin_pool = threadpool(&d, "admin");
    assert_eq!(field(&admin_pool, "minWorkers").as_deref(), Some("5"));
    assert_eq!(field(&admin_pool, "maxWorkers").as_deref(), Some("20"));
}

#[test]
fn clients_list_info_and_disconnect() {
    let d = start();
    assert!(clients(&d).is_empty());
    let (mut rw, rw_id) = connected_virsh(&d, false);
    let (ro, ro_id) = connected_virsh(&d, true);

    let list = clients(&d);
    assert_eq!(list.len(), 2, "{list:?}");
    for (id, transport, since) in &list {
        assert!([rw_id, ro_id].contains(id), "{list:?}");
        assert_eq!(transport, "unix");
        assert!(is_timestamp(since), "{since:?}");
    }

    let info = admin(&d, &["client-info", "virtqemud", &rw_id.to_string()]);
    let f = fields(&info);
    let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
    // Same fields, same order as real libvirt (trace virt-admin-client-info).
    assert_eq!(
        keys,
        [
            "id",
            "connection_time",
            "transport",
            "readonly",
            "unix_user_id",
            "unix_user_name",
            "unix_group_id",
            "unix_group_name",
            "unix_process_id"
        ]
    );
    let uid = nix::unistd::getuid().as_raw();
    let user = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .expect("current user")
        .name;
    assert_eq!(field(&info, "id"), Some(rw_id.to_string()));
    assert_contains(&info, "connection_time: ");
    assert_eq!(field(&info, "transport").as_deref(), Some("unix"));
    assert_eq!(field(&info, "readonly").as_deref(), Some("no"));
    assert_eq!(field(&info, "unix_user_id"), Some(uid.to_string()));
    assert_eq!(field(&info, "unix_user_name"), Some(user));
    assert_eq!(field(&info, "unix_process_id"), Some(rw.pid().to_string()));

    let info = admin(&d, &["client-info", "virtqemud", &ro_id.to_string()]);
    assert_eq!(field(&info, "readonly").as_deref(), Some("yes"));
    assert_eq!(field(&info, "unix_process_id"), Some(ro.pid().to_string()));

    let out = admin(&d, &["client-disconnect", "virtqemud", &rw_id.to_string()]);
    assert_eq!(out, format!("Client '{rw_id}' disconnected\n"));
    let gone = wait_for(Duration::from_secs(5), || {
        clients(&d).iter().all(|c| c.0 != rw_id)
    });
    assert!(gone, "{:?}", clients(&d));
    assert_eq!(clients(&d).len(), 1, "the other client stays");
    // virsh notices through its close callback.
    let noticed = wait_for(Duration::from_secs(10), || {
        // "… due to I/O error" or "… due to end of file", as the close races.
        rw.stderr()
            .contains(&format!("error: Disconnected from {}", d.uri(false)))
    });
    assert!(noticed, "virsh stderr: {}", rw.stderr());
    let err = err_stderr(&d.virt_admin(&["client-info", "virtqemud", &rw_id.to_string()]));
    assert_eq!(
        err,
        format!("error: Client not found: No client with matching ID '{rw_id}'\n")
    );
    assert!(rw.close().is_some(), "virsh did not quit at end of input");
}

#[test]
fn unknown_server_and_client() {
    let d = start();
    assert_eq!(
        err_stderr(&d.virt_admin(&["client-info", "virtqemud", "999999"])),
        "error: Client not found: No client with matching ID '999999'\n"
    );
    assert_eq!(
        err_stderr(&d.virt_admin(&["client-disconnect", "virtqemud", "999999"])),
        "error: Client not found: No client with matching ID '999999'\n"
    );
    assert_eq!(
        err_stderr(&d.virt_admin(&["srv-threadpool-info", "nosuch"])),
        "error: Server not found: No server named 'nosuch'\n"
    );
    let err = err_stderr(&d.virt_admin(&["srv-clients-list", "nosuch"]));
    assert_contains(&err, "Server not found: No server named 'nosuch'");
    let err = err_stderr(&d.virt_admin(&["srv-clients-info", "nosuch"]));
    assert_contains(&err, "Server not found: No server named 'nosuch'");
}

#[test]
fn client_limit_suspends_accepting_and_restores() {
    let d = start();
    let (mut first, _) = connected_virsh(&d, false);
    assert_eq!(
        admin(&d, &["srv-clients-info", "virtqemud"]),
        "nclients_max        : 5000\nnclients            : 1\nnclients_unauth_max : 20\n\
         nclients_unauth     : 0\n\n"
    );

    // A maximum below the unauthenticated maximum is refused, and changes nothing.
    let err = err_stderr(&d.virt_admin(&["srv-clients-set", "virtqemud", "--max-clients", "1"]));
    assert_contains(
        &err,
        "Unable to change server's client-related configuration limits",
    );
    assert_contains(&err, "The overall maximum number of clients (1)");
    assert_eq!(
        field(&admin(&d, &["srv-clients-info", "virtqemud"]), "nclients_max").as_deref(),
        Some("5000")
    );

    admin(
        &d,
        &[
            "srv-clients-set",
            "virtqemud",
            "--max-clients",
            "1",
            "--max-unauth-clients",
            "0",
        ],
    );
    let info = admin(&d, &["srv-clients-info", "virtqemud"]);
    assert_eq!(field(&info, "nclients_max").as_deref(), Some("1"));
    assert_eq!(field(&info, "nclients").as_deref(), Some("1"));
    assert_eq!(field(&info, "nclients_unauth_max").as_deref(), Some("0"));

    // As libvirt, a full server stops accepting: a new client waits in the
    // socket's backlog (it is not refused) until there is room again.
    let mut waiting = std::process::Command::new(modvirt_tests::require_tool("virsh"))
        .arg("-c")
        .arg(d.uri(false))
        .arg("hostname")
        .env_remove("LIBVIRT_DEFAULT_URI")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn virsh");
    let _guard = modvirt_tests::PidGuard(waiting.id() as i32);
    assert!(
        wait_for(Duration::from_secs(5), || d
            .stderr()
            .contains("Temporarily suspending services")),
        "daemon stderr: {}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        waiting.try_wait().expect("try_wait").is_none(),
        "a client beyond max_clients must wait"
    );
    // The first client is unaffected.
    first.send("hostname");
    let host = nix::unistd::gethostname().expect("hostname");
    let host = host.to_string_lossy();
    assert!(
        wait_for(Duration::from_secs(10), || first
            .stdout()
            .lines()
            .any(|l| l.trim_start_matches("virsh # ").trim() == host)),
        "{}",
        first.stdout()
    );
    // The admin server has its own limit.
    assert_eq!(clients(&d).len(), 1);

    admin(&d, &["srv-clients-set", "virtqemud", "--max-clients", "10"]);
    // Room again: the waiting client is accepted and answered.
    let out = waiting.wait_with_output().expect("waiting virsh");
    assert_eq!(ok_stdout(&out).trim(), host);
    assert_eq!(ok_stdout(&d.virsh(&["hostname"])).trim(), host);
    assert!(first.close().is_some());
}

#[test]
fn log_filters_read_and_set() {
    let d = start();
    assert_eq!(admin(&d, &["daemon-log-filters"]), " Logging filters: \n\n");
    assert_eq!(
        admin(&d, &["daemon-log-filters", "--filters", "1:rpc 3:daemon"]).trim(),
        ""
    );
    assert_eq!(
        admin(&d, &["daemon-log-filters"]),
        " Logging filters: 1:rpc 3:daemon\n\n"
    );
    let err = err_stderr(&d.virt_admin(&["daemon-log-filters", "--filters", "9:rpc"]));
    assert_contains(&err, "Invalid log filter '9:rpc'");
    assert_eq!(
        admin(&d, &["daemon-log-filters"]),
        " Logging filters: 1:rpc 3:daemon\n\n",
        "a refused change changes nothing"
    );
}

#[test]
fn log_outputs_really_change_logging() {
    let d = start();
    assert_eq!(
        admin(&d, &["daemon-log-outputs"]),
        " Logging outputs: 3:stderr\n\n"
    );
    let file = d.root.path().join("x.log");
    let spec = format!("1:file:{}", file.display());
    admin(&d, &["daemon-log-outputs", "--outputs", &spec]);
    admin(&d, &["daemon-log-filters", "--filters", "1:rpc"]);
    assert_eq!(
        admin(&d, &["daemon-log-outputs"]),
        format!(" Logging outputs: {spec}\n\n")
    );

    let before = std::fs::read_to_string(&file).unwrap_or_default();
    ok_stdout(&d.virsh(&["hostname"]));
    let debug_line = |s: &str| {
        s.lines()
            .any(|l| l.contains(": debug : rpc.") && l.contains("virsh"))
    };
    assert!(!debug_line(&before), "{before}");
    let mut text = String::new();
    let logged = wait_for(Duration::from_secs(5), || {
        text = std::fs::read_to_string(&file).unwrap_or_default();
        debug_line(&text)
    });
    assert!(
        logged,
        "no debug line about the virsh client in {}:\n{text}",
        file.display()
    );

    let err = err_stderr(&d.virt_admin(&["daemon-log-outputs", "--outputs", "1:bogus"]));
    assert_contains(&err, "Unable to change daemon logging settings");
    assert_contains(&err, "Invalid log output '1:bogus'");
    let missing = format!("1:file:{}", d.root.path().join("nodir/x.log").display());
    let err = err_stderr(&d.virt_admin(&["daemon-log-outputs", "--outputs", &missing]));
    assert_contains(&err, "cannot open log file");
    assert_eq!(
        admin(&d, &["daemon-log-outputs"]),
        format!(" Logging outputs: {spec}\n\n"),
        "refused changes change nothing"
    );
}

#[test]
fn daemon_timeout_makes_idle_daemon_exit() {
    let mut d = start();
    // Started without --timeout: it stays.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(d.exited().is_none(), "exited without a timeout: {}", d.stderr());
    assert_eq!(admin(&d, &["daemon-timeout", "--timeout", "1"]).trim(), "");
    let status = d.wait_exit(Duration::from_secs(15));
    assert!(status.is_some(), "still running 15 s after daemon-timeout 1");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", d.stderr());
    assert!(!d.socket("sock").exists());
}
