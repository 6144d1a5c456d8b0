//! A client connection passed on whole to the daemon that owns its URI, as
//! libvirt's daemons do when `CONNECT_OPEN` names another driver's URI
//! (`virsh -c qemu:///system` on virtnetworkd's socket) and as `virtproxyd`
//! does for every client: a connection of its own to the owner, opened with
//! the client's URI, read-only flag and identity, that lives as long as the
//! client's. Calls go through it with their serials renumbered (each is an
//! observed peer call); the owner's REMOTE MESSAGEs (events) are relayed to
//! the client unchanged. When the owner's side closes, so does the
//! client's, as with libvirt.
//!
//! Most calls take the fast path, [`Session::relay`]: the client's reader
//! writes the call to the owner and the session's reader writes the reply
//! to the client, with no task in between (two wake-ups per call, the
//! least a hop can cost). The call is still observed as the proxy's own
//! call (in-flight, waiting on the owner, its server span, metrics and
//! `modvirt_peer_calls`); it has no client span of its own: the owner's
//! server span continues the proxy's call span directly.

use super::connection::{Connection, Deliver, OpenOptions};
use super::{PeerCaller, PeerTarget, Peers, Via};
use crate::client::Client;
use crate::daemon::DaemonShared;
use crate::observe::inflight::CallRecord;
use modvirt_wire::Procedure;
use modvirt_wire::RpcError;
use modvirt_wire::message::encode_frame;
use modvirt_wire::observe::CallContextMsg;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How many events may wait for a slow client before the owner's reader waits.
const EVENT_BACKLOG: usize = 256;

/// One client's connection to the owner of its URI.
#[derive(Debug)]
pub struct Session {
    conn: Connection,
    /// The owner (`virtqemud`, …).
    pub daemon: String,
    /// Relays events to the client; stops with the session.
    relay: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

impl Session {
    /// Whether the connection to the owner is still up.
    pub fn is_open(&self) -> bool {
        self.conn.claim()
    }

    /// Passes the call `record` of `procedure` with XDR `args` on to the
    /// owner and returns once it is written; `deliver` gets the owner's
    /// reply or error (see [`Connection::relay`]), within
    /// [`crate::route::session_timeout`].
    pub async fn relay(
        &self,
        d: &Arc<DaemonShared>,
        record: &Arc<CallRecord>,
        procedure: &'static Procedure,
        args: &[u8],
        deliver: Deliver,
    ) {
        let context = CallContextMsg {
            traceparent: record.traceparent().unwrap_or_default(),
            caller_daemon: d.peers.self_name().to_owned(),
            caller_call: record.id,
        };
        let started = Instant::now();
        let daemon = Arc::clone(d);
        let peer = self.daemon.clone();
        let deliver: Deliver = Box::new(move |result| {
            daemon
                .metrics
                .peer_call_finished(&peer, procedure.name, result.is_ok(), started.elapsed());
            deliver(result)
        });
        self.conn
            .relay(
                &context,
                record,
                procedure.number,
                procedure.name,
                args,
                crate::route::session_timeout(d),
                deliver,
            )
            .await;
    }
}

impl Peers {
    /// Opens `client`'s session with the owner `target` (its URI, identity
    /// and how to start it), with `CONNECT_OPEN` flags `flags`. When the
    /// owner's side closes, so does the client's if `ends_client` (the
    /// client's whole connection was passed on); otherwise the session is
    /// just over ([`Session::is_open`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn open_session(
        &self,
        caller: PeerCaller<'_>,
        target: &PeerTarget,
        flags: u32,
        client: &Arc<Client>,
        timeout: Duration,
        ends_client: bool,
    ) -> Result<Session, RpcError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(EVENT_BACKLOG);
        let options = OpenOptions {
            idle_close: None,
            flags,
            events: Some(tx),
            keepalive: Some(self.keepalive),
        };
        let mut out = None;
        let via = Via::Open {
            target,
            options: &options,
            out: &mut out,
        };
        self.call_via(
            caller,
            &target.daemon,
            via,
            1,
            "CONNECT_OPEN",
            Vec::new(),
            timeout,
        )
        .await?;
        let conn = out.ok_or_else(|| {
            RpcError::plain(
                modvirt_wire::ErrorCode::INTERNAL_ERROR,
                modvirt_wire::ErrorDomain::RPC,
                format!("connection to {} was not opened", target.daemon),
            )
        })?;
        let weak: Weak<Client> = Arc::downgrade(client);
        let daemon = target.daemon.clone();
        let relay = tokio::spawn(async move {
            while let Some((header, payload)) = rx.recv().await {
                let Some(client) = weak.upgrade() else { return };
                let frame = encode_frame(&header, |e| e.raw(&payload));
                client.send(&frame).await;
            }
            // The owner's side closed: so does the client's, if it was
            // passed on whole.
            if ends_client && let Some(client) = weak.upgrade() {
                tracing::info!(target: "rpc.peer", "client {}: connection to {daemon} closed; closing the client", client.id);
                client.close();
            }
        });
        Ok(Session {
            conn,
            daemon: target.daemon.clone(),
            relay,
        })
    }

    /// Passes call `proc_` (`procedure`) with XDR `args` on through `session`.
    #[allow(clippy::too_many_arguments)]
    pub async fn session_call(
        &self,
        caller: PeerCaller<'_>,
        session: &Session,
        proc_: i32,
        procedure: &'static str,
        args: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        self.call_via(
            caller,
            &session.daemon,
            Via::Session(&session.conn),
            proc_,
            procedure,
            args,
            timeout,
        )
        .await
    }
}
