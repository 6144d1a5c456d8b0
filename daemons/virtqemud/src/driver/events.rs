//! Domain event callbacks (`CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY` /
//! `_DEREGISTER_ANY`) and their delivery, as libvirt's remote driver does:
//! each registration belongs to one client connection, has a callback id,
//! an event id and optionally one domain; events go out as REMOTE `MESSAGE`
//! frames with serial 1. The list itself, its checks and refusals, and
//! forgetting the registrations of clients that have gone, are the
//! runtime's ([`modvirt_runtime::events`]); the domain events, and how
//! libvirt's refusals name them, are ours.

use modvirt_runtime::events::{EventKind, EventList, Listener};
use modvirt_wire::domain::{DomainEventCallbackLifecycleMsg, DomainEventCallbackRebootMsg, event};
use modvirt_wire::remote::NonnullDomain;

/// `REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE`.
pub const PROC_LIFECYCLE: i32 = 318;
/// `REMOTE_PROC_DOMAIN_EVENT_CALLBACK_REBOOT`.
pub const PROC_REBOOT: i32 = 319;

/// The callbacks of the daemon.
#[derive(Debug, Default)]
pub struct EventCallbacks {
    /// Registrations; the two calls are answered with [`KIND`]'s checks.
    pub list: EventList,
}

/// A domain event to deliver.
#[derive(Debug, Clone)]
pub enum DomainEvent {
    Lifecycle { event: i32, detail: i32 },
    Reboot,
}

/// Domain events as libvirt's refusals word them; any of libvirt 9.0's
/// event ids may be registered, only lifecycle and reboot are ever sent.
pub const KIND: EventKind = EventKind::new("domain", "unsupported event ID", event::id::LAST);

impl EventCallbacks {
    /// Sends `ev` of `dom` to every client registered for it, each on a
    /// task of its own (a client that does not read never holds us up).
    pub fn emit(&self, dom: &NonnullDomain, ev: &DomainEvent) {
        send(&self.list, dom, ev);
    }
}

/// Sends `ev` of `dom` to the clients in `list` registered for it.
fn send<C: Listener>(list: &EventList<C>, dom: &NonnullDomain, ev: &DomainEvent) {
    let uuid = dom.uuid;
    match *ev {
        DomainEvent::Lifecycle { event, detail } => list.emit(PROC_LIFECYCLE, |callback_id, f| {
            f.wants(event::id::LIFECYCLE, &uuid)
                .then(|| DomainEventCallbackLifecycleMsg {
                    callback_id,
                    dom: dom.clone(),
                    event,
                    detail,
                })
        }),
        DomainEvent::Reboot => list.emit(PROC_REBOOT, |callback_id, f| {
            f.wants(event::id::REBOOT, &uuid)
                .then(|| DomainEventCallbackRebootMsg {
                    callback_id,
                    dom: dom.clone(),
                })
        }),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_runtime::events::{Recorder, frame};
    use modvirt_wire::message::split_body;
    use modvirt_wire::program::REMOTE_PROGRAM;
    use modvirt_wire::remote::Uuid;
    use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
    use modvirt_wire::{MessageType, XdrDecode};

    #[test]
    fn lifecycle_messages_are_remote_messages_with_serial_1() {
        let dom = NonnullDomain {
            name: "vm".into(),
            uuid: Uuid([7; 16]),
            id: 3,
        };
        let frame = frame(
            PROC_LIFECYCLE,
            &DomainEventCallbackLifecycleMsg {
                callback_id: 4,
                dom: dom.clone(),
                event: event::STARTED,
                detail: event::started::BOOTED,
            },
        );
        let (h, payload) = split_body(&frame[4..]).unwrap();
        assert_eq!(
            (h.prog, h.proc_, h.type_, h.serial),
            (REMOTE_PROGRAM, 318, MessageType::Message, 1)
        );
        let m = DomainEventCallbackLifecycleMsg::from_xdr(payload).unwrap();
        assert_eq!((m.callback_id, m.dom, m.event), (4, dom, event::STARTED));
    }

    #[test]
    fn refusals_word_domain_events_as_libvirt_does() {
        let cbs = EventList::<Recorder>::default();
        let a = Recorder::new(1);
        let refused = |id| cbs.register_checked(&a, id, None, &KIND).unwrap_err();
        assert_eq!(refused(-1).to_string(), "unsupported event ID -1");
        let last = event::id::LAST;
        assert_eq!(refused(last).to_string(), format!("unsupported event ID {last}"));
        // Any of libvirt's event ids, even one never sent.
        let id = cbs.register_checked(&a, last - 1, None, &KIND).unwrap();
        let gone = RpcError::from(cbs.deregister_checked(&a, id + 1, &KIND).unwrap_err());
        let want = format!("internal error: domain event callback {} not registered", id + 1);
        assert_eq!(gone.message, Some(want));
        assert_eq!(
            (gone.code, gone.domain),
            (ErrorCode::INTERNAL_ERROR, ErrorDomain::RPC)
        );
    }

    #[test]
    fn each_event_goes_to_whom_wants_it() {
        let cbs = EventList::<Recorder>::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        let dom = NonnullDomain {
            name: "vm".into(),
            uuid: Uuid([7; 16]),
            id: 3,
        };
        let register = |c, id, dom| cbs.register_checked(c, id, dom, &KIND).unwrap();
        let life = register(&a, event::id::LIFECYCLE, Some(dom.uuid));
        let reboot = register(&b, event::id::REBOOT, None);
        register(&b, event::id::LIFECYCLE, Some(Uuid([8; 16])));
        let sent = |c: &Recorder| -> Vec<(i32, Vec<u8>)> {
            c.take()
                .iter()
                .map(|f| {
                    let (h, payload) = split_body(&f[4..]).unwrap();
                    (h.proc_, payload.to_vec())
                })
                .collect()
        };
        let started = DomainEvent::Lifecycle {
            event: event::STARTED,
            detail: event::started::BOOTED,
        };
        send(&cbs, &dom, &started);
        send(&cbs, &dom, &DomainEvent::Reboot);
        let got = sent(&a);
        assert_eq!(got.len(), 1, "a wants only lifecycle events");
        assert_eq!(got[0].0, PROC_LIFECYCLE);
        let m = DomainEventCallbackLifecycleMsg::from_xdr(&got[0].1).unwrap();
        assert_eq!(
            (m.callback_id, m.event, m.detail),
            (life, event::STARTED, event::started::BOOTED)
        );
        let got = sent(&b);
        assert_eq!(got.len(), 1, "b's lifecycle registration is for another domain");
        assert_eq!(got[0].0, PROC_REBOOT);
        let m = DomainEventCallbackRebootMsg::from_xdr(&got[0].1).unwrap();
        assert_eq!((m.callback_id, m.dom), (reboot, dom));
    }
}
