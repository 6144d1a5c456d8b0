//! Across daemons: a call that waits on a peer daemon shows as one wait-for
//! chain in `virt-daemons hangs` and as one trace over both daemons; and
//! every declared metric is really updated by a real workload.

use modvirt_admin::observe::ObserveClient;
use modvirt_runtime::observe::metrics::Metrics;
use modvirt_tests::{Daemon, DaemonOptions, virt_daemons, wait_for};
use serde_json::Value;
use std::time::Duration;

/// `virttestnetd` (a renamed test daemon answering network lookups slowly)
/// and `virttestd` forwarding network lookups to it, in one root.
fn two_daemons(network_ms: u64) -> (Daemon, Daemon) {
    let net = Daemon::start(
        "virttestnetd",
        DaemonOptions {
            binary: Some("virttestd".into()),
            env: vec![
                ("MODVIRT_TESTD_NAME".into(), "virttestnetd".into()),
                ("MODVIRT_TESTD_NETWORK_MS".into(), network_ms.to_string()),
            ],
            ..Default::default()
        },
    );
    let peer = format!("virttestnetd:{}", net.socket("sock").display());
    let front = Daemon::start_beside(
        &net,
        "virttestd",
        DaemonOptions {
            env: vec![
                ("MODVIRT_TESTD_PEER".into(), peer),
                ("MODVIRT_TESTD_SUSPEND_MS".into(), "8000".into()),
            ],
            ..Default::default()
        },
    );
    (net, front)
}

#[test]
fn a_call_waiting_on_a_peer_daemon_is_one_chain_and_one_trace() {
    let (net, front) = two_daemons(4000);
    let root = net.root.path();
    let client = front.spawn_virsh(&["net-uuid", "default"]);
    let mut text = String::new();
    let found = wait_for(Duration::from_secs(8), || {
        text = virt_daemons(root, &["hangs", "--older-than", "1"]);
        text.contains("waiting on virttestnetd NETWORK_LOOKUP_BY_NAME")
    });
    assert!(found, "hangs:\n{text}");
    assert!(text.contains(&format!("virsh(pid {})", client.pid())), "{text}");
    assert!(
        text.contains(&format!("from virttestd(pid {})", front.pid())),
        "the callee's call names its caller:\n{text}"
    );
    assert!(text.contains("test network lookup of default"), "{text}");
    let json: Value =
        serde_json::from_str(&virt_daemons(root, &["hangs", "--older-than", "1", "--json"])).unwrap();
    let hops = json["hangs"][0]["hops"].as_array().expect("a chain");
    assert!(hops.len() >= 2, "{json:#}");

    // When it completes, one trace covers both daemons: server span in
    // virttestd → client span → server span in virttestnetd.
    let mut client = client;
    assert!(
        client
            .wait_exit(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
    let mut trace = Value::Null;
    let joined = wait_for(Duration::from_secs(5), || {
        trace = serde_json::from_str(&virt_daemons(root, &["trace", "--json"])).unwrap();
        trace["traces"].as_array().is_some_and(|ts| {
            ts.iter().any(|t| {
                let s = t.to_string();
                s.contains("virttestnetd") && s.contains("virttestnetd/NETWORK_LOOKUP_BY_NAME")
            })
        })
    });
    assert!(joined, "no trace spans both daemons: {trace:#}");
}

#[test]
fn every_declared_metric_is_updated_by_a_real_workload() {
    let (net, front) = two_daemons(100);
    // A peer call that completes, then a job that holds a lock while we look.
    let mut lookup = front.spawn_virsh(&["net-uuid", "default"]);
    assert!(
        lookup
            .wait_exit(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
    let _holder = front.spawn_virsh(&["suspend", "vm1"]);
    let _waiter = front.spawn_virsh(&["suspend", "vm1"]);
    let admin = front.socket("admin-sock");
    let mut text = String::new();
    let busy = wait_for(Duration::from_secs(8), || {
        let mut c = ObserveClient::connect(&admin, Duration::from_secs(2)).expect("connect");
        text = c.metrics().expect("METRICS");
        text.contains("modvirt_job_lock_waiters 1")
    });
    assert!(busy, "never saw the job lock contended:\n{text}");
    let missing: Vec<&str> = Metrics::declared()
        .iter()
        .copied()
        .filter(|name| {
            !text.lines().any(|l| {
                !l.starts_with('#')
                    && (l.starts_with(&format!("{name} "))
                        || l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name}_bucket"))
                        || l.starts_with(&format!("{name}_count")))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "declared metrics never updated: {missing:?}\n{text}"
    );
    assert!(text.contains(r#"modvirt_peer_calls_total{peer="virttestnetd",procedure="NETWORK_LOOKUP_BY_NAME",result="ok"} 1"#), "{text}");
    drop(net);
}
