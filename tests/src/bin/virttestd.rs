//! `virttestd`: a daemon with a *test* driver, compiled only into the test
//! crate. It runs the real modvirt runtime with a tiny fake hypervisor so
//! the observability core can be exercised with the real `virsh` before
//! real drivers exist:
//!
//! - start-up: a `driver` phase with an `enumerate` step (`3 test objects`);
//!   `MODVIRT_TESTD_INIT_MS` makes it slow.
//! - `DOMAIN_LOOKUP_BY_NAME`: every name exists (a fake domain).
//! - `DOMAIN_SUSPEND`: takes the domain's job lock, then "works" for
//!   `MODVIRT_TESTD_SUSPEND_MS` (default 3000) while marked as waiting on
//!   a process — so a second `virsh suspend` of the same domain waits on
//!   the job lock, visibly.
//! - `DOMAIN_RESUME`: takes and releases the job lock.
//!
//! - `NETWORK_LOOKUP_BY_NAME`: with `MODVIRT_TESTD_PEER=<daemon>:<socket>`,
//!   forwarded to that peer daemon (a peer call); without it, answered here
//!   after `MODVIRT_TESTD_NETWORK_MS` (default 0) marked as waiting.
//!
//! - shutdown: takes `MODVIRT_TESTD_SHUTDOWN_MS` (default 0), as a driver
//!   releasing its resources would.
//!
//! `MODVIRT_TESTD_NAME` renames the daemon (several test daemons can then
//! share one root, as the real daemons do).

use modvirt_runtime::dispatch::{CallContext, CallFuture, decode_args, encode_ret};
use modvirt_runtime::observe::inflight::Waiting;
use modvirt_runtime::observe::phases::PhaseGuard;
use modvirt_runtime::peer::PeerTarget;
use modvirt_runtime::{DaemonShared, DaemonSpec, DriverInfo, InitFuture, VersionFuture};
use modvirt_wire::remote::{
    DomainArgs, DomainLookupByNameArgs, DomainRet, NetworkLookupByNameArgs, NetworkRet, NonnullDomain,
    NonnullNetwork, Uuid,
};
use modvirt_wire::{ErrorDomain, RpcError};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

const DOMAIN_LOOKUP_BY_NAME: i32 = 23;
const DOMAIN_RESUME: i32 = 28;
const DOMAIN_SUSPEND: i32 = 34;
const NETWORK_LOOKUP_BY_NAME: i32 = 46;
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

fn env_ms(key: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(key)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn fake_domain(name: &str) -> NonnullDomain {
    let mut uuid = [0u8; 16];
    for (i, b) in name.bytes().enumerate() {
        uuid[i % 16] ^= b;
    }
    NonnullDomain {
        name: name.to_owned(),
        uuid: Uuid(uuid),
        id: 1,
    }
}

#[derive(Debug)]
struct TestDriver;

async fn job(ctx: CallContext, dom: NonnullDomain, work: Duration) -> Result<Vec<u8>, RpcError> {
    let locks = ctx.daemon.observer.job_locks.clone();
    let _job = locks
        .acquire(&format!("domain:{}", dom.name), &ctx.call, JOB_TIMEOUT)
        .await
        .map_err(|e| e.to_rpc(ErrorDomain::QEMU))?;
    if !work.is_zero() {
        let _w = ctx.call.wait_on(Waiting::Process {
            description: format!("test operation on {} ({} ms)", dom.name, work.as_millis()),
            pid: None,
        });
        tokio::time::sleep(work).await;
    }
    encode_ret(&())
}

/// `MODVIRT_TESTD_PEER=<daemon>:<socket>`.
fn peer() -> Option<PeerTarget> {
    let v = std::env::var("MODVIRT_TESTD_PEER").ok()?;
    let (daemon, socket) = v.split_once(':')?;
    Some(PeerTarget {
        daemon: daemon.to_owned(),
        socket: socket.into(),
        uri: "qemu:///system".into(),
        identity: None,
        spawn: None,
    })
}

async fn network_lookup(ctx: CallContext, payload: Vec<u8>) -> Result<Vec<u8>, RpcError> {
    if let Some(target) = peer() {
        return ctx
            .daemon
            .peers
            .call(
                &ctx.daemon,
                &ctx,
                &target,
                NETWORK_LOOKUP_BY_NAME,
                "NETWORK_LOOKUP_BY_NAME",
                payload,
                PEER_TIMEOUT,
            )
            .await;
    }
    let a: NetworkLookupByNameArgs = decode_args(&payload)?;
    let work = env_ms("MODVIRT_TESTD_NETWORK_MS", 0);
    if !work.is_zero() {
        let _w = ctx.call.wait_on(Waiting::Other {
            description: format!("test network lookup of {} ({} ms)", a.name, work.as_millis()),
        });
        tokio::time::sleep(work).await;
    }
    encode_ret(&NetworkRet {
        net: NonnullNetwork {
            uuid: fake_domain(&a.name).uuid,
            name: a.name,
        },
    })
}

impl DriverInfo for TestDriver {
    fn uri_scheme(&self) -> &'static str {
        "qemu"
    }

    fn type_name(&self) -> &'static str {
        "TEST"
    }

    fn version(&self) -> VersionFuture {
        Box::pin(async { Ok(1_000_000) })
    }

    fn init(&self, _daemon: Arc<DaemonShared>, phase: PhaseGuard) -> InitFuture {
        Box::pin(async move {
            let step = phase.step("enumerate");
            tokio::time::sleep(env_ms("MODVIRT_TESTD_INIT_MS", 5)).await;
            step.detail("3 test objects");
            Ok(())
        })
    }

    fn shutdown(&self) -> modvirt_runtime::remote::ShutdownFuture {
        let ms = env_ms("MODVIRT_TESTD_SHUTDOWN_MS", 0);
        Box::pin(async move { tokio::time::sleep(ms).await })
    }

    fn call(&self, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
        let ctx = ctx.clone();
        let payload = payload.to_vec();
        Some(match ctx.procedure.number {
            DOMAIN_LOOKUP_BY_NAME => Box::pin(async move {
                let a: DomainLookupByNameArgs = decode_args(&payload)?;
                encode_ret(&DomainRet {
                    dom: fake_domain(&a.name),
                })
            }),
            DOMAIN_SUSPEND => Box::pin(async move {
                let a: DomainArgs = decode_args(&payload)?;
                job(ctx, a.dom, env_ms("MODVIRT_TESTD_SUSPEND_MS", 3000)).await
            }),
            NETWORK_LOOKUP_BY_NAME => Box::pin(network_lookup(ctx, payload)),
            DOMAIN_RESUME => Box::pin(async move {
                let a: DomainArgs = decode_args(&payload)?;
                job(ctx, a.dom, Duration::ZERO).await
            }),
            _ => return None,
        })
    }
}

fn main() -> ExitCode {
    let name: &'static str = match std::env::var("MODVIRT_TESTD_NAME") {
        // Leaked once: the daemon's name lives as long as the process.
        Ok(n) if !n.is_empty() => Box::leak(n.into_boxed_str()),
        _ => "virttestd",
    };
    modvirt_runtime::main(DaemonSpec {
        name,
        about: "modvirt test daemon (test driver, for the test suite only)",
        driver: Arc::new(TestDriver),
    })
}
