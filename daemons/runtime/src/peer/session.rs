//! A client connection passed on whole to the daemon that owns its URI, as
//! libvirt's daemons do when `CONNECT_OPEN` names another driver's URI
//! (`virsh -c qemu:///system` on virtnetworkd's socket) and as `virtproxyd`
//! does for every client: a connection of its own to the owner, opened with
//! the client's URI, read-only flag and identity, that lives as long as the
//! client's. Calls go through it with their serials renumbered (each is an
//! observed peer call); the owner's REMOTE MESSAGEs (events) are relayed to
//! the client unchanged. When the owner's side closes, so does the
//! client's, as with libvirt.

use super::connection::{Connection, OpenOptions};
use super::{PeerCaller, PeerTarget, Peers, Via};
use crate::client::Client;
use modvirt_wire::RpcError;
use modvirt_wire::message::encode_frame;
use std::sync::{Arc, Weak};
use std::time::Duration;
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

impl Peers {
    /// Opens `client`'s session with the owner `target` (its URI, identity
    /// and how to start it), with `CONNECT_OPEN` flags `flags`.
    pub async fn open_session(
        &self,
        caller: PeerCaller<'_>,
        target: &PeerTarget,
        flags: u32,
        client: &Arc<Client>,
        timeout: Duration,
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
            // The owner's side closed: so does the client's.
            if let Some(client) = weak.upgrade() {
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
