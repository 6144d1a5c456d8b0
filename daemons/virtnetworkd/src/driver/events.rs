//! Network event callbacks (`CONNECT_NETWORK_EVENT_REGISTER_ANY` /
//! `_DEREGISTER_ANY`) and their delivery, as libvirt's remote driver does
//! for a network connection: each registration belongs to one client
//! connection, has a callback id, an event id and optionally one network
//! (matched by UUID); events go out as REMOTE `MESSAGE` frames
//! (`NETWORK_EVENT_LIFECYCLE`) with serial 1. The list itself, and
//! forgetting the registrations of clients that have gone (or closed their
//! connection), is the runtime's ([`modvirt_runtime::events`]); the network
//! events and their errors are ours.
//!
//! Read-only connections may register, as in libvirt: events reveal no
//! more than listing networks does.

use super::Core;
use modvirt_runtime::client::Client;
use modvirt_runtime::dispatch::{CallResult, decode_args, encode_ret};
use modvirt_runtime::events::{Callbacks, EventFilter, Listener};
use modvirt_wire::network::{
    ConnectNetworkEventDeregisterAnyArgs, ConnectNetworkEventRegisterAnyArgs,
    ConnectNetworkEventRegisterAnyRet, NetworkEventLifecycleMsg, event,
};
use modvirt_wire::remote::{NonnullNetwork, Uuid};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::sync::Arc;

/// `REMOTE_PROC_NETWORK_EVENT_LIFECYCLE`.
pub const PROC_LIFECYCLE: i32 = 315;

/// The callbacks of the daemon (of stand-in clients in unit tests).
#[derive(Debug)]
pub struct EventCallbacks<C = Client> {
    list: Callbacks<EventFilter, C>,
}

impl<C> Default for EventCallbacks<C> {
    fn default() -> Self {
        Self {
            list: Callbacks::default(),
        }
    }
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
    /// Registers `event_id` (libvirt 9.0 knows only lifecycle) for `client`,
    /// for every network or only `net`; returns the callback id.
    pub fn register(&self, client: &Arc<C>, event_id: i32, net: Option<Uuid>) -> Result<i32, EventError> {
        if !(0..event::id::LAST).contains(&event_id) {
            return Err(EventError::UnknownEvent(event_id));
        }
        Ok(self.list.register(
            client,
            EventFilter {
                event_id,
                object: net,
            },
        ))
    }

    /// Removes a registration of `client` (another client's id is unknown
    /// to it, as in libvirt).
    pub fn deregister(&self, client: &C, callback_id: i32) -> Result<(), EventError> {
        if self.list.deregister(client, callback_id) {
            Ok(())
        } else {
            Err(EventError::UnknownCallback(callback_id))
        }
    }

    /// Registrations of clients still connected.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload of lifecycle `event` of `net` for a registration, if
    /// it wants it.
    fn lifecycle(
        net: &NonnullNetwork,
        event: i32,
    ) -> impl FnMut(i32, &EventFilter) -> Option<NetworkEventLifecycleMsg> + '_ {
        move |callback_id, f| {
            f.wants(event::id::LIFECYCLE, &net.uuid)
                .then(|| NetworkEventLifecycleMsg {
                    callback_id,
                    net: net.clone(),
                    event,
                    detail: 0,
                })
        }
    }

    /// The lifecycle frames to send for `event` of `net`, and to whom.
    /// Clients gone are forgotten.
    pub fn frames(&self, net: &NonnullNetwork, event: i32) -> Vec<(Arc<C>, Vec<u8>)> {
        self.list.frames(PROC_LIFECYCLE, Self::lifecycle(net, event))
    }

    /// Sends lifecycle `event` of `net` to every client registered for it,
    /// each on a task of its own (a client that does not read never holds
    /// the driver up).
    pub fn emit(&self, net: &NonnullNetwork, event: i32) {
        self.list.emit(PROC_LIFECYCLE, Self::lifecycle(net, event));
    }
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
    use modvirt_wire::message::split_body;
    use modvirt_wire::program::REMOTE_PROGRAM;
    use modvirt_wire::{MessageType, Status, XdrDecode};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A client that records the frames delivered to it.
    #[derive(Debug)]
    struct Fake {
        id: u64,
        gone: AtomicBool,
        got: Mutex<Vec<Vec<u8>>>,
    }

    impl Listener for Fake {
        fn id(&self) -> u64 {
            self.id
        }

        fn gone(&self) -> bool {
            self.gone.load(Ordering::Relaxed)
        }

        fn deliver(self: Arc<Self>, frame: Vec<u8>) {
            self.got.lock().unwrap().push(frame);
        }
    }

    fn fake(id: u64) -> Arc<Fake> {
        Arc::new(Fake {
            id,
            gone: AtomicBool::new(false),
            got: Mutex::new(Vec::new()),
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

    #[test]
    fn emit_delivers_lifecycle_frames_to_the_registered() {
        let cbs = EventCallbacks::<Fake>::default();
        let (a, b) = (fake(1), fake(2));
        let id = cbs
            .register(&a, event::id::LIFECYCLE, Some(Uuid([1; 16])))
            .unwrap();
        cbs.register(&b, event::id::LIFECYCLE, Some(Uuid([2; 16])))
            .unwrap();
        cbs.emit(&net("one", 1), event::STARTED);
        let got = std::mem::take(&mut *a.got.lock().unwrap());
        assert_eq!(
            sent(got.into_iter().map(|f| (a.clone(), f)).collect()),
            [(1, id, event::STARTED)]
        );
        assert!(b.got.lock().unwrap().is_empty());
    }
}
