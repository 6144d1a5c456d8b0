//! Node device event callbacks (`CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY`
//! / `_DEREGISTER_ANY`) and their delivery, as libvirt's remote driver
//! does for a node device connection: each registration belongs to one
//! client connection, has a callback id, an event id (`LIFECYCLE` or
//! `UPDATE`) and optionally one device, matched by name (libvirt takes any
//! name there, a device that does not exist yet too). Events go out as
//! REMOTE `MESSAGE`s (`NODE_DEVICE_EVENT_LIFECYCLE` with `CREATED` or
//! `DELETED`, detail 0; `NODE_DEVICE_EVENT_UPDATE`) with serial 1; what
//! they say comes from comparing enumerations ([`super::changes`]).
//!
//! The list, forgetting the registrations of clients that have gone, and
//! the wording of refusals are the runtime's ([`modvirt_runtime::events`]);
//! the filter by device name, the event types and payloads are ours.
//! Read-only connections may register, as in libvirt.

use super::Core;
use super::changes::Change;
use modvirt_runtime::client::Client;
use modvirt_runtime::dispatch::{CallResult, decode_args, encode_ret};
use modvirt_runtime::events::{Callbacks, EventError, EventKind, Listener};
use modvirt_runtime::observe::inflight::CallRecord;
use modvirt_wire::nodedev::{
    ConnectNodeDeviceEventDeregisterAnyArgs, ConnectNodeDeviceEventRegisterAnyArgs,
    ConnectNodeDeviceEventRegisterAnyRet, NodeDeviceEventLifecycleMsg, NodeDeviceEventUpdateMsg,
    NonnullNodeDevice, event,
};
use std::sync::Arc;

/// `REMOTE_PROC_NODE_DEVICE_EVENT_LIFECYCLE`.
pub const PROC_LIFECYCLE: i32 = 376;
/// `REMOTE_PROC_NODE_DEVICE_EVENT_UPDATE`.
pub const PROC_UPDATE: i32 = 377;

/// Node device events as libvirt's refusals word them.
const KIND: EventKind = EventKind::new("node device", "unsupported node device event ID", event::id::LAST);

/// What a registration wants: one event id, of every device or of the
/// one of this name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFilter {
    pub event_id: i32,
    pub device: Option<String>,
}

impl DeviceFilter {
    pub fn wants(&self, event_id: i32, name: &str) -> bool {
        self.event_id == event_id && self.device.as_deref().is_none_or(|d| d == name)
    }
}

/// Registrations, of every device or of one.
pub type DeviceCallbacks<C = Client> = Callbacks<DeviceFilter, C>;

/// The callbacks of the daemon.
#[derive(Debug, Default)]
pub struct EventCallbacks {
    pub list: DeviceCallbacks,
}

/// Registers event `event_id` of every device, or of device `device`, for
/// `client`; an event id libvirt 9.0 does not have is refused with its
/// error.
pub fn register_checked<C: Listener>(
    list: &DeviceCallbacks<C>,
    client: &Arc<C>,
    event_id: i32,
    device: Option<String>,
) -> Result<i32, EventError> {
    check_event_id(event_id)?;
    Ok(list.register(client, DeviceFilter { event_id, device }))
}

fn check_event_id(event_id: i32) -> Result<(), EventError> {
    if (0..event::id::LAST).contains(&event_id) {
        Ok(())
    } else {
        Err(EventError::UnknownEvent { kind: KIND, event_id })
    }
}

/// Removes registration `callback_id` of `client` (another client's is
/// unknown to it).
pub fn deregister_checked<C: Listener>(
    list: &DeviceCallbacks<C>,
    client: &C,
    callback_id: i32,
) -> Result<(), EventError> {
    if list.deregister(client, callback_id) {
        Ok(())
    } else {
        Err(EventError::UnknownCallback {
            kind: KIND,
            callback_id,
        })
    }
}

/// The frames of `change`, and to whom: each registration that wants it.
fn frames_of<C: Listener>(list: &DeviceCallbacks<C>, change: &Change) -> Vec<(Arc<C>, Vec<u8>)> {
    let name = change.name();
    let dev = || NonnullNodeDevice {
        name: name.to_owned(),
    };
    let lifecycle = |event| {
        list.frames(PROC_LIFECYCLE, |callback_id, f| {
            f.wants(event::id::LIFECYCLE, name)
                .then(|| NodeDeviceEventLifecycleMsg {
                    callback_id,
                    dev: dev(),
                    event,
                    detail: 0,
                })
        })
    };
    match change {
        Change::Created(_) => lifecycle(event::CREATED),
        Change::Deleted(_) => lifecycle(event::DELETED),
        Change::Updated(_) => list.frames(PROC_UPDATE, |callback_id, f| {
            f.wants(event::id::UPDATE, name)
                .then(|| NodeDeviceEventUpdateMsg {
                    callback_id,
                    dev: dev(),
                })
        }),
    }
}

/// Sends `changes` to every client registered for them: a client's frames
/// go in one write, in order (a task per frame could reorder them), on a
/// task of its own, so a client that does not read never holds the
/// driver up. Returns how many frames went out.
pub fn emit<C: Listener>(list: &DeviceCallbacks<C>, changes: &[Change]) -> usize {
    let mut per_client: Vec<(Arc<C>, Vec<u8>)> = Vec::new();
    let mut sent = 0;
    for change in changes {
        for (client, bytes) in frames_of(list, change) {
            sent += 1;
            match per_client.iter_mut().find(|(c, _)| c.id() == client.id()) {
                Some((_, buf)) => buf.extend_from_slice(&bytes),
                None => per_client.push((client, bytes)),
            }
        }
    }
    for (client, bytes) in per_client {
        client.deliver(bytes);
    }
    sent
}

/// `CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY`: once the devices are known
/// and current (so that a listener hears of changes after it registered,
/// not before), as libvirt waits for its first enumeration.
pub async fn register(
    core: &Arc<Core>,
    client: &Arc<Client>,
    call: &Arc<CallRecord>,
    p: &[u8],
) -> CallResult {
    let a: ConnectNodeDeviceEventRegisterAnyArgs = decode_args(p)?;
    check_event_id(a.event_id)?;
    core.wait_ready(call).await;
    if let Err(e) = core.fresh().await {
        tracing::warn!(target: "nodedev", "cannot read the devices before a registration: {}", e.text());
    }
    let callback_id = register_checked(&core.events.list, client, a.event_id, a.dev.map(|d| d.name))?;
    tracing::debug!(target: "nodedev", "client {}: node device event callback {callback_id} registered", client.id);
    encode_ret(&ConnectNodeDeviceEventRegisterAnyRet { callback_id })
}

/// `CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY`.
pub fn deregister(core: &Core, client: &Client, p: &[u8]) -> CallResult {
    let a: ConnectNodeDeviceEventDeregisterAnyArgs = decode_args(p)?;
    deregister_checked(&core.events.list, client, a.callback_id)?;
    encode_ret(&())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failure is the assertion
mod tests {
    use super::*;
    use modvirt_runtime::events::Recorder;
    use modvirt_wire::message::split_body;
    use modvirt_wire::program::REMOTE_PROGRAM;
    use modvirt_wire::{MessageType, RpcError, Status, XdrDecode};

    /// What a client was sent: (callback id, device, lifecycle event or
    /// `None` for an update), frame by frame.
    fn received(c: &Recorder) -> Vec<(i32, String, Option<i32>)> {
        let mut out = Vec::new();
        for write in c.take() {
            let mut rest = &write[..];
            while !rest.is_empty() {
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                let (h, payload) = split_body(&rest[4..len]).unwrap();
                assert_eq!(
                    (h.prog, h.type_, h.serial, h.status),
                    (REMOTE_PROGRAM, MessageType::Message, 1, Status::Ok)
                );
                out.push(match h.proc_ {
                    PROC_LIFECYCLE => {
                        let m = NodeDeviceEventLifecycleMsg::from_xdr(payload).unwrap();
                        assert_eq!(m.detail, 0);
                        (m.callback_id, m.dev.name, Some(m.event))
                    }
                    PROC_UPDATE => {
                        let m = NodeDeviceEventUpdateMsg::from_xdr(payload).unwrap();
                        (m.callback_id, m.dev.name, None)
                    }
                    other => panic!("procedure {other}"),
                });
                rest = &rest[len..];
            }
        }
        out
    }

    const LO: &str = "net_lo_00_00_00_00_00_00";
    const SG: &str = "scsi_generic_sg0";

    #[test]
    fn unknown_event_ids_and_callbacks_get_libvirts_errors() {
        let list = DeviceCallbacks::<Recorder>::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        for id in [2, -1, i32::MAX, i32::MIN] {
            let rpc = RpcError::from(register_checked(&list, &a, id, None).unwrap_err());
            let want = format!("internal error: unsupported node device event ID {id}");
            assert_eq!(rpc.message.as_deref(), Some(want.as_str()));
        }
        assert!(list.is_empty(), "a refusal registers nothing");
        let id = register_checked(&list, &a, event::id::UPDATE, Some("nosuch".into())).unwrap();
        let e = deregister_checked(&list, &*b, id).unwrap_err();
        assert_eq!(
            RpcError::from(e).message.as_deref(),
            Some(format!("internal error: node device event callback {id} not registered").as_str())
        );
        assert_eq!(list.len(), 1, "another client's refusal leaves it");
        deregister_checked(&list, &*a, id).unwrap();
        assert!(deregister_checked(&list, &*a, id).is_err(), "only once");
    }

    #[test]
    fn each_registration_gets_its_event_of_its_device_in_order() {
        let list = DeviceCallbacks::<Recorder>::default();
        let (a, b, c) = (Recorder::new(1), Recorder::new(2), Recorder::new(3));
        let all = register_checked(&list, &a, event::id::LIFECYCLE, None).unwrap();
        let lo = register_checked(&list, &b, event::id::LIFECYCLE, Some(LO.into())).unwrap();
        let upd = register_checked(&list, &c, event::id::UPDATE, None).unwrap();
        let also = register_checked(&list, &a, event::id::UPDATE, Some(SG.into())).unwrap();
        let changes = [
            Change::Deleted(SG.into()),
            Change::Created(LO.into()),
            Change::Updated(LO.into()),
            Change::Updated(SG.into()),
        ];
        assert_eq!(emit(&list, &changes), 6);
        assert_eq!(
            received(&a),
            [
                (all, SG.into(), Some(event::DELETED)),
                (all, LO.into(), Some(event::CREATED)),
                (also, SG.into(), None),
            ]
        );
        assert_eq!(received(&b), [(lo, LO.into(), Some(event::CREATED))]);
        assert_eq!(received(&c), [(upd, LO.into(), None), (upd, SG.into(), None)]);
        // One write per client and emission.
        emit(&list, &changes[1..2]);
        assert_eq!(a.take().len(), 1);
        assert_eq!(emit(&list, &[]), 0);
    }

    #[test]
    fn clients_that_left_hear_nothing() {
        let list = DeviceCallbacks::<Recorder>::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        register_checked(&list, &a, event::id::LIFECYCLE, None).unwrap();
        let id = register_checked(&list, &b, event::id::LIFECYCLE, None).unwrap();
        a.set_gone(true);
        assert_eq!(emit(&list, &[Change::Created(LO.into())]), 1);
        assert!(a.take().is_empty());
        assert_eq!(received(&b), [(id, LO.into(), Some(event::CREATED))]);
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn filters_match_the_event_and_the_name() {
        let f = DeviceFilter {
            event_id: event::id::UPDATE,
            device: Some(LO.into()),
        };
        assert!(f.wants(event::id::UPDATE, LO));
        assert!(!f.wants(event::id::LIFECYCLE, LO));
        assert!(!f.wants(event::id::UPDATE, SG));
        let any = DeviceFilter {
            event_id: event::id::LIFECYCLE,
            device: None,
        };
        assert!(any.wants(event::id::LIFECYCLE, SG));
    }
}
