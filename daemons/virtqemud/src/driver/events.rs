//! Domain event callbacks (`CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY` /
//! `_DEREGISTER_ANY`) and their delivery, as libvirt's remote driver does:
//! each registration belongs to one client connection, has a callback id,
//! an event id and optionally one domain; events go out as REMOTE `MESSAGE`
//! frames with serial 1. Registrations of a client that has gone are
//! dropped when next seen.

use modvirt_runtime::client::Client;
use modvirt_wire::domain::{DomainEventCallbackLifecycleMsg, DomainEventCallbackRebootMsg, event};
use modvirt_wire::message::encode_frame;
use modvirt_wire::program::{REMOTE_PROGRAM, REMOTE_VERSION};
use modvirt_wire::remote::{NonnullDomain, Uuid};
use modvirt_wire::{Header, MessageType, Status, XdrEncode};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// `REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE`.
pub const PROC_LIFECYCLE: i32 = 318;
/// `REMOTE_PROC_DOMAIN_EVENT_CALLBACK_REBOOT`.
pub const PROC_REBOOT: i32 = 319;

#[derive(Debug)]
struct Registration {
    callback_id: i32,
    event_id: i32,
    /// Only this domain's events, if set.
    domain: Option<Uuid>,
    client: Weak<Client>,
    client_id: u64,
}

/// The callbacks of one daemon.
#[derive(Debug, Default)]
pub struct EventCallbacks {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: i32,
    list: Vec<Registration>,
}

/// A domain event to deliver.
#[derive(Debug, Clone)]
pub enum DomainEvent {
    Lifecycle { event: i32, detail: i32 },
    Reboot,
}

impl DomainEvent {
    fn event_id(&self) -> i32 {
        match self {
            DomainEvent::Lifecycle { .. } => event::id::LIFECYCLE,
            DomainEvent::Reboot => event::id::REBOOT,
        }
    }
}

/// Why a registration was refused (libvirt's `VIR_ERR_INVALID_ARG`).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("unsupported event ID {0}")]
    UnknownEvent(i32),
    #[error("callback {0} not registered on this connection")]
    UnknownCallback(i32),
}

impl EventCallbacks {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `event_id` (any of libvirt 9.0's; only lifecycle and
    /// reboot are ever sent) for `client`; returns the callback id.
    pub fn register(
        &self,
        client: &Arc<Client>,
        event_id: i32,
        domain: Option<Uuid>,
    ) -> Result<i32, EventError> {
        if !(0..event::id::LAST).contains(&event_id) {
            return Err(EventError::UnknownEvent(event_id));
        }
        let mut inner = self.lock();
        inner.list.retain(|r| r.client.strong_count() > 0);
        let callback_id = inner.next_id;
        inner.next_id += 1;
        inner.list.push(Registration {
            callback_id,
            event_id,
            domain,
            client: Arc::downgrade(client),
            client_id: client.id,
        });
        Ok(callback_id)
    }

    /// Removes a registration of `client`.
    pub fn deregister(&self, client: &Client, callback_id: i32) -> Result<(), EventError> {
        let mut inner = self.lock();
        let before = inner.list.len();
        inner
            .list
            .retain(|r| !(r.callback_id == callback_id && r.client_id == client.id));
        if inner.list.len() == before {
            return Err(EventError::UnknownCallback(callback_id));
        }
        Ok(())
    }

    /// Registrations alive now.
    pub fn len(&self) -> usize {
        self.lock()
            .list
            .iter()
            .filter(|r| r.client.strong_count() > 0)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frames to send for `ev` of `dom`, and to whom. Clients gone or
    /// closed are forgotten.
    pub fn frames(&self, dom: &NonnullDomain, ev: &DomainEvent) -> Vec<(Arc<Client>, Vec<u8>)> {
        let mut inner = self.lock();
        inner
            .list
            .retain(|r| r.client.upgrade().is_some_and(|c| !c.is_closed()));
        inner
            .list
            .iter()
            .filter(|r| r.event_id == ev.event_id() && r.domain.is_none_or(|u| u == dom.uuid))
            .filter_map(|r| {
                let client = r.client.upgrade()?;
                let frame = match ev {
                    DomainEvent::Lifecycle { event, detail } => message(
                        PROC_LIFECYCLE,
                        &DomainEventCallbackLifecycleMsg {
                            callback_id: r.callback_id,
                            dom: dom.clone(),
                            event: *event,
                            detail: *detail,
                        },
                    ),
                    DomainEvent::Reboot => message(
                        PROC_REBOOT,
                        &DomainEventCallbackRebootMsg {
                            callback_id: r.callback_id,
                            dom: dom.clone(),
                        },
                    ),
                };
                Some((client, frame))
            })
            .collect()
    }

    /// Sends `ev` of `dom` to every client registered for it, each on a
    /// task of its own (a client that does not read never holds us up).
    pub fn emit(&self, dom: &NonnullDomain, ev: &DomainEvent) {
        for (client, frame) in self.frames(dom, ev) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_wire::XdrDecode;
    use modvirt_wire::message::split_body;

    #[test]
    fn lifecycle_messages_are_remote_messages_with_serial_1() {
        let dom = NonnullDomain {
            name: "vm".into(),
            uuid: Uuid([7; 16]),
            id: 3,
        };
        let frame = message(
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
}
