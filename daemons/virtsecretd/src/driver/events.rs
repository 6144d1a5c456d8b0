//! Secret event callbacks (`CONNECT_SECRET_EVENT_REGISTER_ANY` /
//! `_DEREGISTER_ANY`) and their delivery, as libvirt's remote driver does
//! for a secret connection: each registration belongs to one client
//! connection, has a callback id, an event id (lifecycle or value-changed)
//! and optionally one secret (matched by UUID); events go out as REMOTE
//! `MESSAGE` frames with serial 1: `SECRET_EVENT_LIFECYCLE` (`Defined`,
//! `Undefined`, detail 0) and `SECRET_EVENT_VALUE_CHANGED`. Both carry the
//! secret as a lookup returns it (UUID, usage type, usage id), never its
//! value. The list itself, its checks and refusals, and forgetting the
//! registrations of clients that have gone, are the runtime's
//! ([`modvirt_runtime::events`]); the secret events, and how libvirt's
//! refusals word them, are ours.
//!
//! Read-only connections may register, as in libvirt: events reveal no
//! more than listing secrets does.

use super::Core;
use modvirt_runtime::client::Client;
use modvirt_runtime::dispatch::{CallResult, decode_args, encode_ret};
use modvirt_runtime::events::{EventFilter, EventKind, EventList};
use modvirt_wire::secret::{
    ConnectSecretEventDeregisterAnyArgs, ConnectSecretEventRegisterAnyArgs, ConnectSecretEventRegisterAnyRet,
    NonnullSecret, SecretEventLifecycleMsg, SecretEventValueChangedMsg, event,
};
use std::sync::Arc;

/// `REMOTE_PROC_SECRET_EVENT_LIFECYCLE`.
pub const PROC_LIFECYCLE: i32 = 382;
/// `REMOTE_PROC_SECRET_EVENT_VALUE_CHANGED`.
pub const PROC_VALUE_CHANGED: i32 = 383;

/// Secret events as libvirt's refusals word them. libvirt 9.0's daemon
/// calls an unknown secret callback a "node device event callback" (its
/// deregistration handler was copied from the node device one), so that is
/// what a client is told here too.
const KIND: EventKind = EventKind::new("node device", "unsupported secret event ID", event::id::LAST);

/// The callbacks of the daemon.
#[derive(Debug, Default)]
pub struct EventCallbacks {
    /// Registrations, for every secret or one (matched by UUID).
    pub list: EventList,
}

impl EventCallbacks {
    /// Sends lifecycle `event` ([`event::DEFINED`] or
    /// [`event::UNDEFINED`]) of `secret` to every client registered for it.
    pub fn lifecycle(&self, secret: &NonnullSecret, event: i32) {
        self.list.emit(PROC_LIFECYCLE, lifecycle(secret, event));
    }

    /// Sends "value changed" of `secret` to every client registered for it.
    pub fn value_changed(&self, secret: &NonnullSecret) {
        self.list.emit(PROC_VALUE_CHANGED, value_changed(secret));
    }
}

/// The payload of lifecycle `event` of `secret` for a registration, if it
/// wants it.
fn lifecycle(
    secret: &NonnullSecret,
    event: i32,
) -> impl FnMut(i32, &EventFilter) -> Option<SecretEventLifecycleMsg> + '_ {
    move |callback_id, f| {
        f.wants(event::id::LIFECYCLE, &secret.uuid)
            .then(|| SecretEventLifecycleMsg {
                callback_id,
                secret: secret.clone(),
                event,
                detail: 0,
            })
    }
}

/// The payload of "value changed" of `secret` for a registration, if it
/// wants it.
fn value_changed(
    secret: &NonnullSecret,
) -> impl FnMut(i32, &EventFilter) -> Option<SecretEventValueChangedMsg> + '_ {
    move |callback_id, f| {
        f.wants(event::id::VALUE_CHANGED, &secret.uuid)
            .then(|| SecretEventValueChangedMsg {
                callback_id,
                secret: secret.clone(),
            })
    }
}

/// `CONNECT_SECRET_EVENT_REGISTER_ANY`. A secret named in the call need not
/// exist (libvirt only matches its UUID against later events).
pub fn register(core: &Core, client: &Arc<Client>, p: &[u8]) -> CallResult {
    let a: ConnectSecretEventRegisterAnyArgs = decode_args(p)?;
    let (list, secret) = (&core.events.list, a.secret.map(|s| s.uuid));
    let callback_id = list.register_checked(client, a.event_id, secret, &KIND)?;
    tracing::debug!(target: "secret", "client {}: secret event callback {callback_id} registered", client.id);
    encode_ret(&ConnectSecretEventRegisterAnyRet { callback_id })
}

/// `CONNECT_SECRET_EVENT_DEREGISTER_ANY`.
pub fn deregister(core: &Core, client: &Client, p: &[u8]) -> CallResult {
    let a: ConnectSecretEventDeregisterAnyArgs = decode_args(p)?;
    core.events
        .list
        .deregister_checked(client, a.callback_id, &KIND)?;
    encode_ret(&())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use modvirt_runtime::events::{Listener, Recorder};
    use modvirt_wire::message::split_body;
    use modvirt_wire::program::REMOTE_PROGRAM;
    use modvirt_wire::remote::Uuid;
    use modvirt_wire::secret::usage;
    use modvirt_wire::{ErrorCode, ErrorDomain, MessageType, RpcError, Status, XdrDecode};

    fn secret(uuid: u8) -> NonnullSecret {
        NonnullSecret {
            uuid: Uuid([uuid; 16]),
            usage_type: usage::CEPH,
            usage_id: format!("client.{uuid}"),
        }
    }

    type Frames = Vec<(Arc<Recorder>, Vec<u8>)>;

    /// The payload of a frame, its header checked: a REMOTE `MESSAGE` of
    /// procedure `proc_` with serial 1.
    fn payload(frame: &[u8], proc_: i32) -> &[u8] {
        let (h, payload) = split_body(&frame[4..]).unwrap();
        assert_eq!(
            (h.prog, h.proc_, h.type_, h.serial, h.status),
            (REMOTE_PROGRAM, proc_, MessageType::Message, 1, Status::Ok)
        );
        payload
    }

    /// (client id, callback id, secret, event) of each lifecycle frame.
    fn lifecycles(frames: Frames) -> Vec<(u64, i32, NonnullSecret, i32)> {
        frames
            .into_iter()
            .map(|(c, f)| {
                let m = SecretEventLifecycleMsg::from_xdr(payload(&f, PROC_LIFECYCLE)).unwrap();
                assert_eq!(m.detail, 0);
                (c.id(), m.callback_id, m.secret, m.event)
            })
            .collect()
    }

    /// (client id, callback id, secret) of each value-changed frame.
    fn changes(frames: Frames) -> Vec<(u64, i32, NonnullSecret)> {
        frames
            .into_iter()
            .map(|(c, f)| {
                let m = SecretEventValueChangedMsg::from_xdr(payload(&f, PROC_VALUE_CHANGED)).unwrap();
                (c.id(), m.callback_id, m.secret)
            })
            .collect()
    }

    fn register(cbs: &EventList<Recorder>, c: &Arc<Recorder>, event_id: i32, only: Option<u8>) -> i32 {
        let uuid = only.map(|b| Uuid([b; 16]));
        cbs.register_checked(c, event_id, uuid, &KIND).unwrap()
    }

    #[test]
    fn each_registration_gets_its_event_id_and_secret_only() {
        let cbs = EventList::<Recorder>::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        let life_all = register(&cbs, &a, event::id::LIFECYCLE, None);
        let life_two = register(&cbs, &b, event::id::LIFECYCLE, Some(2));
        let value_all = register(&cbs, &b, event::id::VALUE_CHANGED, None);
        let value_one = register(&cbs, &a, event::id::VALUE_CHANGED, Some(1));

        let one = secret(1);
        assert_eq!(
            lifecycles(cbs.frames(PROC_LIFECYCLE, lifecycle(&one, event::DEFINED))),
            [(1, life_all, one.clone(), event::DEFINED)]
        );
        let two = secret(2);
        assert_eq!(
            lifecycles(cbs.frames(PROC_LIFECYCLE, lifecycle(&two, event::UNDEFINED))),
            [
                (1, life_all, two.clone(), event::UNDEFINED),
                (2, life_two, two.clone(), event::UNDEFINED)
            ]
        );
        assert_eq!(
            changes(cbs.frames(PROC_VALUE_CHANGED, value_changed(&one))),
            [(2, value_all, one.clone()), (1, value_one, one.clone())]
        );
        assert_eq!(
            changes(cbs.frames(PROC_VALUE_CHANGED, value_changed(&two))),
            [(2, value_all, two)]
        );
    }

    #[test]
    fn unknown_event_ids_and_callbacks_get_libvirts_errors() {
        let cbs = EventList::<Recorder>::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        // libvirt 9.0 has lifecycle (0) and value-changed (1) only.
        for id in [2, -1, i32::MAX, i32::MIN] {
            let rpc = RpcError::from(cbs.register_checked(&a, id, None, &KIND).unwrap_err());
            assert_eq!(
                (rpc.code, rpc.domain),
                (ErrorCode::INTERNAL_ERROR, ErrorDomain::RPC)
            );
            let want = format!("internal error: unsupported secret event ID {id}");
            assert_eq!(rpc.message.as_deref(), Some(want.as_str()));
        }
        assert!(cbs.is_empty());
        let id = register(&cbs, &a, event::id::VALUE_CHANGED, None);
        // Another client cannot remove it (in libvirt's words); its owner
        // can, once.
        let rpc = RpcError::from(cbs.deregister_checked(&b, id, &KIND).unwrap_err());
        let want = format!("internal error: node device event callback {id} not registered");
        assert_eq!(rpc.message.as_deref(), Some(want.as_str()));
        cbs.deregister_checked(&a, id, &KIND).unwrap();
        assert!(cbs.deregister_checked(&a, id, &KIND).is_err());
        assert!(
            cbs.frames(PROC_VALUE_CHANGED, value_changed(&secret(1)))
                .is_empty()
        );
    }

    #[test]
    fn events_reach_the_registered_that_are_still_connected() {
        let cbs = EventList::<Recorder>::default();
        let (a, b, c) = (Recorder::new(1), Recorder::new(2), Recorder::new(3));
        let id = register(&cbs, &a, event::id::LIFECYCLE, Some(1));
        register(&cbs, &b, event::id::LIFECYCLE, Some(2));
        register(&cbs, &c, event::id::LIFECYCLE, None);
        c.set_gone(true);
        let one = secret(1);
        assert_eq!(cbs.emit(PROC_LIFECYCLE, lifecycle(&one, event::DEFINED)), 1);
        let got: Frames = a.take().into_iter().map(|f| (a.clone(), f)).collect();
        assert_eq!(lifecycles(got), [(1, id, one, event::DEFINED)]);
        assert!(b.take().is_empty(), "another secret's");
        assert!(c.take().is_empty(), "gone");
    }

    #[test]
    fn a_secret_without_usage_goes_with_an_empty_usage_id() {
        let cbs = EventList::<Recorder>::default();
        let a = Recorder::new(1);
        let id = register(&cbs, &a, event::id::VALUE_CHANGED, None);
        let unused = NonnullSecret {
            uuid: Uuid([9; 16]),
            usage_type: usage::NONE,
            usage_id: String::new(),
        };
        let got = changes(cbs.frames(PROC_VALUE_CHANGED, value_changed(&unused)));
        assert_eq!(got, [(1, id, unused)]);
    }
}
