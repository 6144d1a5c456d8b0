//! Which daemon owns a procedure, and forwarding to it. A REMOTE procedure
//! of a secondary driver (network, storage, secret, node device, interface,
//! nwfilter) that reaches a daemon of another driver is forwarded to the
//! owner's read-write socket in the same runtime directory, as libvirt's
//! hypervisor daemons do: on a peer connection opened with the client's
//! identity (`CONNECT_SET_IDENTITY`), starting the owner if nobody listens
//! there (see [`crate::peer::spawn`]). The owner's reply, or error, goes back
//! unchanged; a peer that does not answer costs the call
//! `peer_call_timeout` and a timeout error, never a hung daemon.

use crate::dispatch::{CallContext, CallResult};
use crate::peer::session::Session;
use crate::peer::spawn::SpawnSpec;
use crate::peer::{PeerCaller, PeerTarget};
use modvirt_wire::RpcError;
use modvirt_wire::program::Driver;

/// The daemon and URI scheme that own `driver`'s procedures; `None` for
/// connection-level and admin procedures.
pub fn owner(driver: Driver) -> Option<(&'static str, &'static str)> {
    Some(match driver {
        Driver::Hypervisor => ("virtqemud", "qemu"),
        Driver::Network => ("virtnetworkd", "network"),
        Driver::Storage => ("virtstoraged", "storage"),
        Driver::Secret => ("virtsecretd", "secret"),
        Driver::NodeDevice => ("virtnodedevd", "nodedev"),
        Driver::Interface => ("virtinterfaced", "interface"),
        Driver::NwFilter => ("virtnwfilterd", "nwfilter"),
        Driver::Connection | Driver::Admin => return None,
    })
}

/// The daemon owning URI scheme `scheme` (`qemu` → `virtqemud`).
pub fn owner_of_scheme(scheme: &str) -> Option<&'static str> {
    [
        Driver::Hypervisor,
        Driver::Network,
        Driver::Storage,
        Driver::Secret,
        Driver::NodeDevice,
        Driver::Interface,
        Driver::NwFilter,
    ]
    .into_iter()
    .filter_map(owner)
    .find(|(_, s)| *s == scheme)
    .map(|(daemon, _)| daemon)
}

/// Whether this daemon (serving `scheme`) forwards `driver`'s procedures:
/// the secondary drivers it does not own itself.
pub fn forwards(scheme: &str, driver: Driver) -> bool {
    !matches!(driver, Driver::Hypervisor) && owner(driver).is_some_and(|(_, s)| s != scheme)
}

/// How long a call passed on through a client's session may take: longer
/// than the owner's own peer calls, so that the owner's timeout errors
/// reach the client rather than ours.
pub fn session_timeout(d: &crate::DaemonShared) -> std::time::Duration {
    d.peers.call_timeout().saturating_mul(4)
}

/// Where daemon `daemon`, serving `scheme`, listens on this daemon's root,
/// how to start it, and the identity calls on it are made for.
pub fn peer_target(
    d: &crate::DaemonShared,
    daemon: &str,
    scheme: &str,
    identity: Option<crate::identity::Identity>,
) -> PeerTarget {
    PeerTarget {
        daemon: daemon.to_owned(),
        socket: d.paths.run_dir.join(format!("{daemon}-sock")),
        uri: format!("{scheme}:///system"),
        identity,
        spawn: SpawnSpec::beside_self(daemon, d.paths.root.as_deref()).ok(),
    }
}

/// The peer target for daemon `daemon` serving `scheme`, for calls made for
/// `ctx`'s client.
fn target(ctx: &CallContext, daemon: &str, scheme: &str) -> PeerTarget {
    peer_target(
        &ctx.daemon,
        daemon,
        scheme,
        Some(ctx.client.effective_identity().clone()),
    )
}

/// Opens a session for `ctx`'s client with the daemon owning `scheme`
/// (its `CONNECT_OPEN`), so that its calls go there from now on.
///
/// Sessions, like shared peer connections, are opened read-write, even
/// for a read-only client: the owner accepts the client's identity
/// (`CONNECT_SET_IDENTITY`) only on a read-write connection, and this
/// daemon refuses a read-only client's write procedures itself, from the
/// table, before anything is passed on.
pub async fn open_session(ctx: &CallContext, daemon: &str, scheme: &str) -> Result<(), RpcError> {
    let d = &ctx.daemon;
    let target = target(ctx, daemon, scheme);
    let session = d
        .peers
        .open_session(
            PeerCaller::of(ctx),
            &target,
            0,
            &ctx.client,
            session_timeout(d),
            true,
        )
        .await?;
    tracing::debug!(target: "remote.connect", "client {} passed on to {daemon}", ctx.client.id);
    ctx.client.set_session(Some(std::sync::Arc::new(session)));
    Ok(())
}

/// Whether a call of procedure `p` of program `prog`, from a client with
/// `session`, takes the session's fast path ([`Session::relay`]): every
/// REMOTE call for the session's daemon but the connection's own
/// handshake and close, which [`through_session`] and the REMOTE handler
/// take care of.
pub fn relayed(session: &Session, prog: u32, p: &modvirt_wire::Procedure) -> bool {
    use crate::remote::procs;
    prog == modvirt_wire::program::REMOTE_PROGRAM
        && !matches!(
            p.number,
            procs::AUTH_LIST | procs::CONNECT_SUPPORTS_FEATURE | procs::CONNECT_OPEN | procs::CONNECT_CLOSE
        )
        && owner(p.driver).is_none_or(|(daemon, _)| daemon == session.daemon)
}

/// Passes a call of a client with a session on: to the session's daemon,
/// or, for another driver's procedure, to that driver's daemon.
pub async fn through_session(ctx: &CallContext, session: &Session, payload: Vec<u8>) -> CallResult {
    let p = ctx.procedure;
    let d = &ctx.daemon;
    match owner(p.driver) {
        Some((daemon, _)) if daemon != session.daemon => forward(ctx, payload).await,
        _ => {
            d.peers
                .session_call(
                    PeerCaller::of(ctx),
                    session,
                    p.number,
                    p.name,
                    payload,
                    session_timeout(d),
                )
                .await
        }
    }
}

/// Whether `p` registers or deregisters event callbacks
/// (`CONNECT_NETWORK_EVENT_REGISTER_ANY`, …).
fn is_event_registration(p: &modvirt_wire::Procedure) -> bool {
    p.name.starts_with("CONNECT_")
        && (p.name.ends_with("_EVENT_REGISTER_ANY") || p.name.ends_with("_EVENT_DEREGISTER_ANY"))
}

/// Forwards the call `ctx` (with its XDR `payload`) to the daemon owning
/// its procedure and returns that daemon's reply. Event registrations go
/// on a connection of the client's own to the owner, as libvirt's
/// daemons open a driver connection per client, so that the events come
/// back to this client: see [`through_side_session`].
pub async fn forward(ctx: &CallContext, payload: Vec<u8>) -> CallResult {
    let p = ctx.procedure;
    let Some((daemon, scheme)) = owner(p.driver) else {
        return Err(crate::dispatch::no_support(p));
    };
    if is_event_registration(p) {
        return through_side_session(ctx, daemon, scheme, payload).await;
    }
    let d = &ctx.daemon;
    let target = target(ctx, daemon, scheme);
    d.peers
        .call(d, ctx, &target, p.number, p.name, payload, d.peers.call_timeout())
        .await
}

/// Passes the call `ctx` on through the client's own connection to
/// `daemon` (opened on first use, reopened after it broke), whose events
/// are relayed to the client. The connection lasts until the client closes;
/// its registrations with the owner go with it.
async fn through_side_session(
    ctx: &CallContext,
    daemon: &'static str,
    scheme: &str,
    payload: Vec<u8>,
) -> CallResult {
    let d = &ctx.daemon;
    let mut sessions = ctx.client.side_sessions.lock().await;
    let session = match sessions.get(daemon).filter(|s| s.is_open()) {
        Some(session) => std::sync::Arc::clone(session),
        None => {
            let session = d
                .peers
                .open_session(
                    PeerCaller::of(ctx),
                    &target(ctx, daemon, scheme),
                    0,
                    &ctx.client,
                    session_timeout(d),
                    false,
                )
                .await?;
            tracing::debug!(target: "remote.connect", "client {}: events of {daemon} on a connection of its own", ctx.client.id);
            let session = std::sync::Arc::new(session);
            sessions.insert(daemon, std::sync::Arc::clone(&session));
            session
        }
    };
    drop(sessions);
    let p = ctx.procedure;
    d.peers
        .session_call(
            PeerCaller::of(ctx),
            &session,
            p.number,
            p.name,
            payload,
            d.peers.call_timeout(),
        )
        .await
}

/// Calls REMOTE procedure `number` with XDR `args` on the daemon owning
/// it, on behalf of `ctx`'s call (and with its client's identity): a
/// driver asking another one, as virtqemud asks virtnetworkd for the bridge
/// of a guest's network. The owner is started if needed.
pub async fn call(ctx: &CallContext, number: i32, args: Vec<u8>) -> CallResult {
    let Some(p) = modvirt_wire::program::REMOTE.procedure(number) else {
        return Err(RpcError::plain(
            modvirt_wire::ErrorCode::INTERNAL_ERROR,
            modvirt_wire::ErrorDomain::RPC,
            format!("no REMOTE procedure {number}"),
        ));
    };
    let Some((daemon, scheme)) = owner(p.driver) else {
        return Err(crate::dispatch::no_support(p));
    };
    let d = &ctx.daemon;
    let target = target(ctx, daemon, scheme);
    d.peers
        .call(d, ctx, &target, p.number, p.name, args, d.peers.call_timeout())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondary_procedures_go_to_their_owner() {
        assert_eq!(owner(Driver::Network), Some(("virtnetworkd", "network")));
        assert!(forwards("qemu", Driver::Network));
        assert!(forwards("qemu", Driver::NodeDevice));
        assert!(!forwards("network", Driver::Network), "its own");
        assert!(!forwards("qemu", Driver::Hypervisor));
        assert!(
            !forwards("network", Driver::Hypervisor),
            "only the proxy routes domain calls"
        );
        assert!(!forwards("qemu", Driver::Connection));
    }
}
