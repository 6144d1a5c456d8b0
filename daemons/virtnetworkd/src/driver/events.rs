//! Network event callbacks (`CONNECT_NETWORK_EVENT_REGISTER_ANY` /
//! `_DEREGISTER_ANY`) and their delivery, as libvirt's remote driver does
//! for a network connection: each registration belongs to one client
//! connection, has a callback id, an event id and optionally one network
//! (matched by UUID); events go out as REMOTE `MESSAGE` frames
//! (`NETWORK_EVENT_LIFECYCLE`) with serial 1. The list itself, its checks
//! and refusals, and forgetting the registrations of clients that have gone
//! (or closed their connection), are the runtime's
//! ([`modvirt_runtime::events`]); the network events, and how libvirt's
//! refusals name them, are ours.
//!
//! Read-only connections may register, as in libvirt: events reveal no
//! more than listing networks does.

use super::Core;
use modvirt_runtime::client::Client;
use modvirt_runtime::dispatch::{CallResult, decode_args, encode_ret};
use modvirt_runtime::events::{EventFilter, EventKind, EventList};
use modvirt_wire::network::{
    ConnectNetworkEventDeregisterAnyArgs, ConnectNetworkEventRegisterAnyArgs,
    ConnectNetworkEventRegisterAnyRet, NetworkEventLifecycleMsg, event,
};
use modvirt_wire::remote::NonnullNetwork;
use std::sync::Arc;

/// `REMOTE_PROC_NETWORK_EVENT_LIFECYCLE`.
pub const PROC_LIFECYCLE: i32 = 315;

/// Network events as libvirt's refusals word them (libvirt 9.0 knows only
/// lifecycle).
const KIND: EventKind = EventKind::new("network", "unsupported network event ID", event::id::LAST);

/// The callbacks of the daemon.
#[derive(Debug, Default)]
pub struct EventCallbacks {
    /// Registrations, for every network or one (matched by UUID).
    pub list: EventList,
}

impl EventCallbacks {
    /// Sends lifecycle `event` of `net` to every client registered for it,
    /// each on a task of its own (a client that does not read never holds
    /// the driver up).
    pub fn emit(&self, net: &NonnullNetwork, event: i32) {
        self.list.emit(PROC_LIFECYCLE, lifecycle(net, event));
    }
}

/// The payload of lifecycle `event` of `net` for a registration, if it
/// wants it.
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

/// `CONNECT_NETWORK_EVENT_REGISTER_ANY`.
pub fn register(core: &Core, client: &Arc<Client>, p: &[u8]) -> CallResult {
    let a: ConnectNetworkEventRegisterAnyArgs = decode_args(p)?;
    let (list, net) = (&core.events.list, a.net.map(|n| n.uuid));
    let callback_id = list.register_checked(client, a.event_id, net, &KIND)?;
    tracing::debug!(target: "network", "client {}: network event callback {callback_id} registered", client.id);
    encode_ret(&ConnectNetworkEventRegisterAnyRet { callback_id })
}

/// `CONNECT_NETWORK_EVENT_DEREGISTER_ANY`.
pub fn deregister(core: &Core, client: &Client, p: &[u8]) -> CallResult {
    let a: ConnectNetworkEventDeregisterAnyArgs = decode_args(p)?;
    let list = &core.events.list;
    list.deregister_checked(client, a.callback_id, &KIND)?;
    encode_ret(&())
}

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_runtime::events::{Listener, Recorder};
    use modvirt_wire::RpcError;
    use modvirt_wire::message::split_body;
    use modvirt_wire::program::REMOTE_PROGRAM;
    use modvirt_wire::remote::Uuid;
    use modvirt_wire::{MessageType, Status, XdrDecode};

    fn net(name: &str, uuid: u8) -> NonnullNetwork {
        NonnullNetwork {
            name: name.into(),
            uuid: Uuid([uuid; 16]),
        }
    }

    /// The lifecycle frames for `event` of `net`, and to whom.
    fn frames(cbs: &EventList<Recorder>, net: &NonnullNetwork, event: i32) -> Vec<(Arc<Recorder>, Vec<u8>)> {
        cbs.frames(PROC_LIFECYCLE, lifecycle(net, event))
    }

    /// (client id, callback id, event) of each frame, decoded.
    fn sent(frames: Vec<(Arc<Recorder>, Vec<u8>)>) -> Vec<(u64, i32, i32)> {
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
                (c.id(), m.callback_id, m.event)
            })
            .collect()
    }

    /// Registers `c` for lifecycle events of every network, or of `only`.
    fn register(cbs: &EventList<Recorder>, c: &Arc<Recorder>, only: Option<u8>) -> i32 {
        let net = only.map(|b| Uuid([b; 16]));
        cbs.register_checked(c, event::id::LIFECYCLE, net, &KIND).unwrap()
    }

    #[test]
    fn a_registration_for_one_network_sees_only_its_events() {
        let cbs = EventList::<Recorder>::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        let all = register(&cbs, &a, None);
        let only = register(&cbs, &b, Some(2));
        assert_ne!(all, only);
        assert_eq!(
            sent(frames(&cbs, &net("one", 1), event::DEFINED)),
            [(1, all, event::DEFINED)]
        );
        assert_eq!(
            sent(frames(&cbs, &net("two", 2), event::STOPPED)),
            [(1, all, event::STOPPED), (2, only, event::STOPPED)]
        );
        let m = frames(&cbs, &net("two", 2), event::STARTED);
        let (_, payload) = split_body(&m[1].1[4..]).unwrap();
        assert_eq!(
            NetworkEventLifecycleMsg::from_xdr(payload).unwrap().net,
            net("two", 2)
        );
    }

    #[test]
    fn unknown_event_ids_and_callbacks_get_libvirts_errors() {
        let cbs = EventList::<Recorder>::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        for id in [1, -1, i32::MAX] {
            let rpc = RpcError::from(cbs.register_checked(&a, id, None, &KIND).unwrap_err());
            let want = format!("internal error: unsupported network event ID {id}");
            assert_eq!(rpc.message.as_deref(), Some(want.as_str()));
        }
        assert!(cbs.is_empty());
        let id = register(&cbs, &a, None);
        // Another client cannot remove it; its owner can, once.
        let e = cbs.deregister_checked(&b, id, &KIND).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("network event callback {id} not registered")
        );
        cbs.deregister_checked(&a, id, &KIND).unwrap();
        assert!(cbs.deregister_checked(&a, id, &KIND).is_err());
        assert!(frames(&cbs, &net("one", 1), event::DEFINED).is_empty());
    }

    #[test]
    fn lifecycle_events_reach_the_registered_gone_or_not() {
        let cbs = EventList::<Recorder>::default();
        let (a, b, c) = (Recorder::new(1), Recorder::new(2), Recorder::new(3));
        let id = register(&cbs, &a, Some(1));
        register(&cbs, &b, Some(2));
        register(&cbs, &c, None);
        c.set_gone(true);
        cbs.emit(PROC_LIFECYCLE, lifecycle(&net("one", 1), event::STARTED));
        let got = a.take();
        assert_eq!(
            sent(got.into_iter().map(|f| (a.clone(), f)).collect()),
            [(1, id, event::STARTED)]
        );
        assert!(b.take().is_empty(), "another network's");
        assert!(c.take().is_empty(), "gone");
    }
}
