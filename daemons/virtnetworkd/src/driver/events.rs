//! Network event callbacks (`CONNECT_NETWORK_EVENT_REGISTER_ANY` /
//! `_DEREGISTER_ANY`) and their delivery, as libvirt's remote driver does
//! for a network connection: each registration belongs to one client
//! connection, has a callback id, an event id and optionally one network
//! (matched by UUID); events go out as REMOTE `MESSAGE` frames
//! (`NETWORK_EVENT_LIFECYCLE`) with serial 1. Registrations of a client that
//! has gone (or closed its connection) are dropped when next seen.
//!
//! Read-only connections may register, as in libvirt: events reveal no
//! more than listing networks does.

use super::Core;
use modvirt_runtime::client::Client;
use modvirt_runtime::dispatch::{CallResult, decode_args, encode_ret};
use modvirt_wire::message::encode_frame;
use modvirt_wire::network::{
    ConnectNetworkEventDeregisterAnyArgs, ConnectNetworkEventRegisterAnyArgs,
    ConnectNetworkEventRegisterAnyRet, NetworkEventLifecycleMsg, event,
};
use modvirt_wire::program::{REMOTE_PROGRAM, REMOTE_VERSION};
use modvirt_wire::remote::{NonnullNetwork, Uuid};
use modvirt_wire::{ErrorCode, ErrorDomain, Header, MessageType, RpcError, Status, XdrEncode};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// `REMOTE_PROC_NETWORK_EVENT_LIFECYCLE`.
pub const PROC_LIFECYCLE: i32 = 315;

/// Whom events go to: a client connection (a stand-in in unit tests).
pub trait Listener: Send + Sync + 'static {
    /// The connection's id, unique in the daemon.
    fn id(&self) -> u64;
    /// Closed, failed, or no longer open: its registrations are void.
    fn gone(&self) -> bool;
}

impl Listener for Client {
    fn id(&self) -> u64 {
        self.id
    }

    fn gone(&self) -> bool {
        self.is_closed() || !self.is_open()
    }
}

#[derive(Debug)]
struct Registration<C> {
    callback_id: i32,
    event_id: i32,
    /// Only this network's events, if set.
    net: Option<Uuid>,
    client: Weak<C>,
    client_id: u64,
}

/// The callbacks of the daemon.
#[derive(Debug)]
pub struct EventCallbacks<C = Client> {
    inner: Mutex<Inner<C>>,
}

impl<C> Default for EventCallbacks<C> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                next_id: 0,
                list: Vec::new(),
            }),
        }
    }
}

#[derive(Debug)]
struct Inner<C> {
    next_id: i32,
    list: Vec<Registration<C>>,
}

/// Why a registration or deregistration was refused; on the wire
/// libvirt's `VIR_ERR_INTERNAL_ERROR` from the RPC layer.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("unsupported network event ID {0}")]
    UnknownEvent(i32),
    #[error("network event callback {0} not registered")]
    UnknownCallback(i32),
}

impl From<EventError> for RpcError {
    fn from(e: EventError) -> Self {
        RpcError::new(
            ErrorCode::INTERNAL_ERROR,
            ErrorDomain::RPC,
            "internal error",
            e.to_string(),
        )
    }
}

impl<C: Listener> EventCallbacks<C> {
    fn lock(&self) -> MutexGuard<'_, Inner<C>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `event_id` (libvirt 9.0 knows only lifecycle) for `client`,
    /// for every network or only `net`; returns the callback id.
    pub fn register(&self, client: &Arc<C>, event_id: i32, net: Option<Uuid>) -> Result<i32, EventError> {
        if !(0..event::id::LAST).contains(&event_id) {
            return Err(EventError::UnknownEvent(event_id));
        }
        let mut inner = self.lock();
        inner
            .list
            .retain(|r| r.client.upgrade().is_some_and(|c| !c.gone()));
        let callback_id = inner.next_id;
        inner.next_id = inner.next_id.wrapping_add(1).max(0);
        inner.list.push(Registration {
            callback_id,
            event_id,
            net,
            client: Arc::downgrade(client),
            client_id: client.id(),
        });
        Ok(callback_id)
    }

    /// Removes a registration of `client` (another client's id is unknown
    /// to it, as in libvirt).
    pub fn deregister(&self, client: &C, callback_id: i32) -> Result<(), EventError> {
        let mut inner = self.lock();
        let at = inner
            .list
            .iter()
            .position(|r| r.callback_id == callback_id && r.client_id == client.id())
            .ok_or(EventError::UnknownCallback(callback_id))?;
        inner.list.remove(at);
        Ok(())
    }

    /// Registrations of clients still connected.
    pub fn len(&self) -> usize {
        self.lock()
            .list
            .iter()
            .filter(|r| r.client.upgrade().is_some_and(|c| !c.gone()))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lifecycle frames to send for `event` of `net`, and to whom.
    /// Clients gone are forgotten.
    pub fn frames(&self, net: &NonnullNetwork, event: i32) -> Vec<(Arc<C>, Vec<u8>)> {
        let mut inner = self.lock();
        inner
            .list
            .retain(|r| r.client.upgrade().is_some_and(|c| !c.gone()));
        inner
            .list
            .iter()
            .filter(|r| r.event_id == event::id::LIFECYCLE && r.net.is_none_or(|u| u == net.uuid))
            .filter_map(|r| {
                let client = r.client.upgrade()?;
                let frame = message(
                    PROC_LIFECYCLE,
                    &NetworkEventLifecycleMsg {
                        callback_id: r.callback_id,
                        net: net.clone(),
                        event,
                        detail: 0,
                    },
                );
                Some((client, frame))
            })
            .collect()
    }
}

impl EventCallbacks<Client> {
    /// Sends lifecycle `event` of `net` to every client registered for it,
    /// each on a task of its own (a client that does not read never holds
    /// the driver up).
    pub fn emit(&self, net: &NonnullNetwork, event: i32) {
        for (client, frame) in self.frames(net, event) {
            tokio::spawn(async move { client.send(&frame).await });
        }
    }
}

/// A REMOTE event `MESSAGE` (serial 1, as libvirt sends them).
pub fn message(proc_: i32, body: &impl XdrEncode) -> Vec<u8> {
    let h = Header {
        prog: REMOTE_PROGRAM,
        vers: REMOTE_VERSION,
        proc_,
        type_: MessageType::Message,
        serial: 1,
        status: Status::Ok,
    };
    encode_frame(&h, |e| body.encode(e))
}

/// `CONNECT_NETWORK_EVENT_REGISTER_ANY`.
pub fn register(core: &Core, client: &Arc<Client>, p: &[u8]) -> CallResult {
    let a: ConnectNetworkEventRegisterAnyArgs = decode_args(p)?;
    let callback_id = core.events.register(client, a.event_id, a.net.map(|n| n.uuid))?;
    tracing::debug!(target: "network", "client {}: network event callback {callback_id} registered", client.id);
    encode_ret(&ConnectNetworkEventRegisterAnyRet { callback_id })
}

/// `CONNECT_NETWORK_EVENT_DEREGISTER_ANY`.
pub fn deregister(core: &Core, client: &Client, p: &[u8]) -> CallResult {
    let a: ConnectNetworkEventDeregisterAnyArgs = decode_args(p)?;
    core.events.deregister(client, a.callback_id)?;
    encode_ret(&())
}

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_wire::XdrDecode;
    use modvirt_wire::message::split_body;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Debug)]
    struct Fake {
        id: u64,
        gone: AtomicBool,
    }

    impl Listener for Fake {
        fn id(&self) -> u64 {
            self.id
        }

        fn gone(&self) -> bool {
            self.gone.load(Ordering::Relaxed)
        }
    }

    fn fake(id: u64) -> Arc<Fake> {
        Arc::new(Fake {
            id,
            gone: AtomicBool::new(false),
        })
    }

    fn net(name: &str, uuid: u8) -> NonnullNetwork {
        NonnullNetwork {
            name: name.into(),
            uuid: Uuid([uuid; 16]),
        }
    }

    /// (client id, callback id, event) of each frame, decoded.
    fn sent(frames: Vec<(Arc<Fake>, Vec<u8>)>) -> Vec<(u64, i32, i32)> {
        frames
            .into_iter()
            .map(|(c, f)| {
                let (h, payload) = split_body(&f[4..]).unwrap();
                assert_eq!(
                    (h.prog, h.proc_, h.type_, h.serial, h.status),
                    (REMOTE_PROGRAM, 315, MessageType::Message, 1, Status::Ok)
                );
                let m = NetworkEventLifecycleMsg::from_xdr(payload).unwrap();
                assert_eq!(m.detail, 0);
                (c.id, m.callback_id, m.event)
            })
            .collect()
    }

    #[test]
    fn a_registration_for_one_network_sees_only_its_events() {
        let cbs = EventCallbacks::<Fake>::default();
        let (a, b) = (fake(1), fake(2));
        let all = cbs.register(&a, event::id::LIFECYCLE, None).unwrap();
        let only = cbs
            .register(&b, event::id::LIFECYCLE, Some(Uuid([2; 16])))
            .unwrap();
        assert_ne!(all, only);
        assert_eq!(
            sent(cbs.frames(&net("one", 1), event::DEFINED)),
            [(1, all, event::DEFINED)]
        );
        assert_eq!(
            sent(cbs.frames(&net("two", 2), event::STOPPED)),
            [(1, all, event::STOPPED), (2, only, event::STOPPED)]
        );
        let m = cbs.frames(&net("two", 2), event::STARTED);
        let (_, payload) = split_body(&m[1].1[4..]).unwrap();
        assert_eq!(
            NetworkEventLifecycleMsg::from_xdr(payload).unwrap().net,
            net("two", 2)
        );
    }

    #[test]
    fn unknown_event_ids_and_callbacks_get_libvirts_errors() {
        let cbs = EventCallbacks::<Fake>::default();
        let a = fake(1);
        for id in [1, -1, i32::MAX] {
            let e = cbs.register(&a, id, None).unwrap_err();
            assert_eq!(e, EventError::UnknownEvent(id));
            let rpc = RpcError::from(e);
            assert_eq!(
                (rpc.code, rpc.domain),
                (ErrorCode::INTERNAL_ERROR, ErrorDomain::RPC)
            );
            assert_eq!(
                rpc.message.as_deref(),
                Some(format!("internal error: unsupported network event ID {id}").as_str())
            );
        }
        assert!(cbs.is_empty());
        let id = cbs.register(&a, event::id::LIFECYCLE, None).unwrap();
        // Another client cannot remove it; its owner can, once.
        let b = fake(2);
        assert_eq!(cbs.deregister(&b, id), Err(EventError::UnknownCallback(id)));
        assert_eq!(
            RpcError::from(EventError::UnknownCallback(7)).message.as_deref(),
            Some("internal error: network event callback 7 not registered")
        );
        cbs.deregister(&a, id).unwrap();
        assert_eq!(cbs.deregister(&a, id), Err(EventError::UnknownCallback(id)));
        assert!(cbs.frames(&net("one", 1), event::DEFINED).is_empty());
    }

    #[test]
    fn clients_that_left_lose_their_registrations() {
        let cbs = EventCallbacks::<Fake>::default();
        let (a, b, c) = (fake(1), fake(2), fake(3));
        for x in [&a, &b, &c] {
            cbs.register(x, event::id::LIFECYCLE, None).unwrap();
        }
        assert_eq!(cbs.len(), 3);
        drop(a);
        b.gone.store(true, Ordering::Relaxed);
        assert_eq!(
            sent(cbs.frames(&net("one", 1), event::UNDEFINED))
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>(),
            [3]
        );
        assert_eq!(cbs.len(), 1);
        // Callback ids are never reused for a new registration.
        let next = cbs.register(&c, event::id::LIFECYCLE, None).unwrap();
        assert_eq!(next, 3);
    }
}
