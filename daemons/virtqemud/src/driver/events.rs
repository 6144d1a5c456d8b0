//! Domain event callbacks (`CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY` /
//! `_DEREGISTER_ANY`) and their delivery, as libvirt's remote driver does:
//! each registration belongs to one client connection, has a callback id,
//! an event id and optionally one domain; events go out as REMOTE `MESSAGE`
//! frames with serial 1. The list itself, and forgetting the registrations
//! of clients that have gone, is the runtime's
//! ([`modvirt_runtime::events`]); the domain events are ours.

use modvirt_runtime::client::Client;
use modvirt_runtime::events::{Callbacks, EventFilter};
use modvirt_wire::domain::{DomainEventCallbackLifecycleMsg, DomainEventCallbackRebootMsg, event};
use modvirt_wire::remote::{NonnullDomain, Uuid};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::sync::Arc;

/// `REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE`.
pub const PROC_LIFECYCLE: i32 = 318;
/// `REMOTE_PROC_DOMAIN_EVENT_CALLBACK_REBOOT`.
pub const PROC_REBOOT: i32 = 319;

/// The callbacks of one daemon.
#[derive(Debug, Default)]
pub struct EventCallbacks {
    list: Callbacks<EventFilter, Client>,
}

/// A domain event to deliver.
#[derive(Debug, Clone)]
pub enum DomainEvent {
    Lifecycle { event: i32, detail: i32 },
    Reboot,
}

/// Why a registration or deregistration was refused; on the wire
/// libvirt's `VIR_ERR_INTERNAL_ERROR` from the RPC layer.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("unsupported event ID {0}")]
    UnknownEvent(i32),
    #[error("domain event callback {0} not registered")]
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

impl EventCallbacks {
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
        Ok(self.list.register(
            client,
            EventFilter {
                event_id,
                object: domain,
            },
        ))
    }

    /// Removes a registration of `client`.
    pub fn deregister(&self, client: &Client, callback_id: i32) -> Result<(), EventError> {
        if self.list.deregister(client, callback_id) {
            Ok(())
        } else {
            Err(EventError::UnknownCallback(callback_id))
        }
    }

    /// Registrations alive now.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `ev` of `dom` to every client registered for it, each on a
    /// task of its own (a client that does not read never holds us up).
    pub fn emit(&self, dom: &NonnullDomain, ev: &DomainEvent) {
        let uuid = dom.uuid;
        match *ev {
            DomainEvent::Lifecycle { event, detail } => self.list.emit(PROC_LIFECYCLE, |callback_id, f| {
                f.wants(event::id::LIFECYCLE, &uuid)
                    .then(|| DomainEventCallbackLifecycleMsg {
                        callback_id,
                        dom: dom.clone(),
                        event,
                        detail,
                    })
            }),
            DomainEvent::Reboot => self.list.emit(PROC_REBOOT, |callback_id, f| {
                f.wants(event::id::REBOOT, &uuid)
                    .then(|| DomainEventCallbackRebootMsg {
                        callback_id,
                        dom: dom.clone(),
                    })
            }),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_runtime::events::frame;
    use modvirt_wire::message::split_body;
    use modvirt_wire::program::REMOTE_PROGRAM;
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
    fn refusals_are_libvirts_internal_errors_from_the_rpc_layer() {
        let cases = [
            (
                EventError::UnknownEvent(event::id::LAST),
                format!("internal error: unsupported event ID {}", event::id::LAST),
            ),
            (
                EventError::UnknownEvent(-1),
                "internal error: unsupported event ID -1".to_owned(),
            ),
            (
                EventError::UnknownCallback(42),
                "internal error: domain event callback 42 not registered".to_owned(),
            ),
        ];
        for (e, want) in cases {
            let rpc = RpcError::from(e);
            assert_eq!(
                (rpc.code, rpc.domain),
                (ErrorCode::INTERNAL_ERROR, ErrorDomain::RPC)
            );
            assert_eq!(rpc.message.as_deref(), Some(want.as_str()));
        }
    }
}
