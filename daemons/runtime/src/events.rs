//! Clients' event callbacks, as libvirt's remote driver keeps them, for
//! every driver that sends events (domains, networks, …).
//!
//! The protocol: a client registers with its driver's
//! `…_EVENT_[CALLBACK_]REGISTER_ANY` call (an event id, optionally one
//! object) and is answered a callback id, unique in the daemon. Each event
//! then reaches it as a REMOTE program `MESSAGE` frame (serial 1, status
//! OK) of the event's procedure, whose payload starts with that callback id.
//! `…_DEREGISTER_ANY` with the id removes the registration; another
//! connection's id is unknown to a client. A registration belongs to its
//! client connection: once the client has gone (disconnected, failed, or
//! sent `CONNECT_CLOSE`) it is dropped when next seen.
//!
//! [`Callbacks`] is the list, generic over what a registration wants (most
//! drivers use [`EventFilter`]: an event id and optionally one object's
//! UUID) and over the client (a [`Listener`]: the real [`Client`], a
//! [`Recorder`] in tests). [`EventList`], the list of [`EventFilter`]s,
//! answers the two calls with libvirt's checks
//! ([`Callbacks::register_checked`], [`Callbacks::deregister_checked`]):
//! the event id must be one of the driver's [`EventKind`], and a client
//! removes only its own callbacks; a refusal is an [`EventError`],
//! `VIR_ERR_INTERNAL_ERROR` from the RPC layer worded for the kind
//! ("unsupported network event ID 9", "domain event callback 3 not
//! registered"). The driver keeps its kind, procedure numbers and payloads.

use crate::client::Client;
use modvirt_wire::message::encode_frame;
use modvirt_wire::program::{REMOTE_PROGRAM, REMOTE_VERSION};
use modvirt_wire::remote::Uuid;
use modvirt_wire::{ErrorCode, ErrorDomain, Header, MessageType, RpcError, Status, XdrEncode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Whom events go to: a client connection (a stand-in in unit tests).
pub trait Listener: Send + Sync + 'static {
    /// The connection's id, unique in the daemon.
    fn id(&self) -> u64;
    /// Closed, failed, or no longer open: its registrations are void.
    fn gone(&self) -> bool;
    /// Sends one whole event frame without waiting for it to be written
    /// (a client that does not read never holds the driver up); one
    /// client's frames are written in the order delivered.
    fn deliver(self: Arc<Self>, frame: Vec<u8>);
}

impl Listener for Client {
    fn id(&self) -> u64 {
        self.id
    }

    fn gone(&self) -> bool {
        self.is_closed() || !self.is_open()
    }

    fn deliver(self: Arc<Self>, frame: Vec<u8>) {
        // Events are emitted by calls and driver tasks, always on the
        // daemon's runtime; without one there is nobody to write to.
        if tokio::runtime::Handle::try_current().is_ok() {
            self.queue_event(frame);
        }
    }
}

/// What a registration usually wants: one event id, of every object or
/// only of the object with this UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFilter {
    pub event_id: i32,
    pub object: Option<Uuid>,
}

impl EventFilter {
    /// Whether event `event_id` of the object `uuid` is wanted.
    pub fn wants(&self, event_id: i32, uuid: &Uuid) -> bool {
        self.event_id == event_id && self.object.is_none_or(|u| u == *uuid)
    }
}

#[derive(Debug)]
struct Registration<F, C> {
    callback_id: i32,
    filter: F,
    client: Weak<C>,
    client_id: u64,
}

impl<F, C: Listener> Registration<F, C> {
    /// Its client, while connected.
    fn live(&self) -> Option<Arc<C>> {
        self.client.upgrade().filter(|c| !c.gone())
    }
}

/// The registrations of one driver's clients.
#[derive(Debug)]
pub struct Callbacks<F = EventFilter, C = Client> {
    inner: Mutex<Inner<F, C>>,
}

#[derive(Debug)]
struct Inner<F, C> {
    next_id: i32,
    list: Vec<Registration<F, C>>,
}

impl<F, C> Default for Callbacks<F, C> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                next_id: 0,
                list: Vec::new(),
            }),
        }
    }
}

/// The id after `id`: counting up, from 0 again past `i32::MAX` (callback
/// ids are never negative).
fn after(id: i32) -> i32 {
    id.checked_add(1).unwrap_or(0)
}

impl<F, C: Listener> Callbacks<F, C> {
    fn lock(&self) -> MutexGuard<'_, Inner<F, C>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `filter` for `client`; returns the callback id: one never
    /// handed out before, or (after 2³¹ registrations) one not in use.
    pub fn register(&self, client: &Arc<C>, filter: F) -> i32 {
        let mut inner = self.lock();
        inner.list.retain(|r| r.live().is_some());
        let mut callback_id = inner.next_id;
        while inner.list.iter().any(|r| r.callback_id == callback_id) {
            callback_id = after(callback_id);
        }
        inner.next_id = after(callback_id);
        inner.list.push(Registration {
            callback_id,
            filter,
            client: Arc::downgrade(client),
            client_id: client.id(),
        });
        callback_id
    }

    /// Removes registration `callback_id` of `client`; false when `client`
    /// has none with that id (another client's is unknown to it).
    #[must_use]
    pub fn deregister(&self, client: &C, callback_id: i32) -> bool {
        let mut inner = self.lock();
        let Some(at) = inner
            .list
            .iter()
            .position(|r| r.callback_id == callback_id && r.client_id == client.id())
        else {
            return false;
        };
        inner.list.remove(at);
        true
    }

    /// Registrations of clients still connected.
    pub fn len(&self) -> usize {
        self.lock().list.iter().filter(|r| r.live().is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frames of event procedure `proc_` to send, and to whom: `body`
    /// gives the payload for a registration (from its callback id and what
    /// it wants), or `None` when it does not want this event. Clients gone
    /// are forgotten.
    pub fn frames<B: XdrEncode>(
        &self,
        proc_: i32,
        mut body: impl FnMut(i32, &F) -> Option<B>,
    ) -> Vec<(Arc<C>, Vec<u8>)> {
        let mut inner = self.lock();
        inner.list.retain(|r| r.live().is_some());
        inner
            .list
            .iter()
            .filter_map(|r| {
                let payload = body(r.callback_id, &r.filter)?;
                Some((r.client.upgrade()?, frame(proc_, &payload)))
            })
            .collect()
    }

    /// Sends event procedure `proc_` to every client registered for it
    /// (`body` as for [`Callbacks::frames`]); returns how many it went to.
    pub fn emit<B: XdrEncode>(&self, proc_: i32, body: impl FnMut(i32, &F) -> Option<B>) -> usize {
        let frames = self.frames(proc_, body);
        let sent = frames.len();
        for (client, frame) in frames {
            client.deliver(frame);
        }
        sent
    }
}

/// A driver's kind of events, as libvirt's refusals of its
/// `…_REGISTER_ANY` and `…_DEREGISTER_ANY` calls word it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    name: &'static str,
    unsupported: &'static str,
    last: i32,
}

impl EventKind {
    /// Events of objects called `name` (`"domain"`, `"network"`: "domain
    /// event callback 3 not registered"), with event ids `0..last`
    /// (libvirt's `…_EVENT_ID_LAST`); an unknown event id is refused as
    /// "`unsupported` 9": libvirt names the kind there for networks
    /// (`"unsupported network event ID"`), not for domains (`"unsupported
    /// event ID"`).
    pub const fn new(name: &'static str, unsupported: &'static str, last: i32) -> Self {
        Self {
            name,
            unsupported,
            last,
        }
    }
}

/// Why a registration or deregistration was refused; on the wire
/// libvirt's `VIR_ERR_INTERNAL_ERROR` from the RPC layer, worded for the
/// kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// An event id the kind does not have.
    #[error("{} {event_id}", .kind.unsupported)]
    UnknownEvent { kind: EventKind, event_id: i32 },
    /// The client has no registration with this callback id.
    #[error("{} event callback {callback_id} not registered", .kind.name)]
    UnknownCallback { kind: EventKind, callback_id: i32 },
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

/// The usual list: registrations for one event id, of every object or of
/// one ([`EventFilter`]).
pub type EventList<C = Client> = Callbacks<EventFilter, C>;

impl<C: Listener> Callbacks<EventFilter, C> {
    /// Answers a `…_REGISTER_ANY` call of `kind`: registers event
    /// `event_id` of every object, or only of the one with UUID `object`,
    /// for `client`, and returns the callback id. Any event id of the kind
    /// is taken, also one the driver never sends.
    pub fn register_checked(
        &self,
        client: &Arc<C>,
        event_id: i32,
        object: Option<Uuid>,
        kind: &EventKind,
    ) -> Result<i32, EventError> {
        if !(0..kind.last).contains(&event_id) {
            return Err(EventError::UnknownEvent {
                kind: *kind,
                event_id,
            });
        }
        Ok(self.register(client, EventFilter { event_id, object }))
    }

    /// Answers a `…_DEREGISTER_ANY` call of `kind`: removes registration
    /// `callback_id` of `client` (another client's id is unknown to it, as
    /// in libvirt).
    pub fn deregister_checked(
        &self,
        client: &C,
        callback_id: i32,
        kind: &EventKind,
    ) -> Result<(), EventError> {
        if self.deregister(client, callback_id) {
            Ok(())
        } else {
            Err(EventError::UnknownCallback {
                kind: *kind,
                callback_id,
            })
        }
    }
}

/// A test aid: a stand-in client for unit tests of event senders (the
/// runtime's and the drivers'), never used by a daemon. It keeps the
/// frames delivered to it, and can be marked gone like a client that
/// disconnected or closed its connection.
#[derive(Debug)]
pub struct Recorder {
    id: u64,
    gone: AtomicBool,
    frames: Mutex<Vec<Vec<u8>>>,
}

impl Recorder {
    /// A connected client with connection id `id`, nothing delivered yet.
    pub fn new(id: u64) -> Arc<Self> {
        Arc::new(Self {
            id,
            gone: AtomicBool::new(false),
            frames: Mutex::new(Vec::new()),
        })
    }

    /// Marks the client gone, or back again (registrations dropped while it
    /// was gone stay dropped).
    pub fn set_gone(&self, gone: bool) {
        self.gone.store(gone, Ordering::Relaxed);
    }

    /// The frames delivered since the last call, each whole, oldest first.
    pub fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.frames.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Listener for Recorder {
    fn id(&self) -> u64 {
        self.id
    }

    fn gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    fn deliver(self: Arc<Self>, frame: Vec<u8>) {
        self.frames.lock().unwrap_or_else(|e| e.into_inner()).push(frame);
    }
}

/// A REMOTE event `MESSAGE` frame of procedure `proc_` (serial 1, as
/// libvirt sends them).
pub fn frame(proc_: i32, body: &impl XdrEncode) -> Vec<u8> {
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

    fn filter(event_id: i32, object: Option<u8>) -> EventFilter {
        EventFilter {
            event_id,
            object: object.map(|b| Uuid([b; 16])),
        }
    }

    /// The header's (proc, type, serial, status) and the payload, an i32.
    fn decode(frame: &[u8]) -> (i32, MessageType, u32, Status, i32) {
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len(), "the length word covers the frame");
        let (h, payload) = split_body(&frame[4..]).unwrap();
        assert_eq!((h.prog, h.vers), (REMOTE_PROGRAM, REMOTE_VERSION));
        (
            h.proc_,
            h.type_,
            h.serial,
            h.status,
            i32::from_xdr(payload).unwrap(),
        )
    }

    type Cbs = Callbacks<EventFilter, Recorder>;

    /// (client id, callback id) of each frame for event 0 of object `uuid`;
    /// the payload is the callback id.
    fn sent_to(cbs: &Cbs, event_id: i32, uuid: u8) -> Vec<(u64, i32)> {
        cbs.frames(77, |id, f| f.wants(event_id, &Uuid([uuid; 16])).then_some(id))
            .into_iter()
            .map(|(c, f)| {
                let (proc_, type_, serial, status, id) = decode(&f);
                assert_eq!(
                    (proc_, type_, serial, status),
                    (77, MessageType::Message, 1, Status::Ok)
                );
                (c.id(), id)
            })
            .collect()
    }

    #[test]
    fn filters_pick_the_event_and_the_object() {
        let cbs = Cbs::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        let all = cbs.register(&a, filter(0, None));
        let only_two = cbs.register(&b, filter(0, Some(2)));
        let other_event = cbs.register(&b, filter(5, None));
        assert_eq!((all, only_two, other_event), (0, 1, 2));
        assert_eq!(sent_to(&cbs, 0, 1), [(1, all)]);
        assert_eq!(sent_to(&cbs, 0, 2), [(1, all), (2, only_two)]);
        assert_eq!(sent_to(&cbs, 5, 9), [(2, other_event)]);
        assert!(sent_to(&cbs, 3, 1).is_empty());
    }

    #[test]
    fn emit_delivers_each_client_its_own_frame() {
        let cbs = Cbs::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        let ida = cbs.register(&a, filter(0, None));
        let idb = cbs.register(&b, filter(0, None));
        cbs.register(&b, filter(1, None));
        assert_eq!(cbs.emit(318, |id, f| (f.event_id == 0).then_some(id)), 2);
        let got = |c: &Recorder| -> Vec<_> { c.take().iter().map(|f| decode(f)).collect() };
        assert_eq!(got(&a), [(318, MessageType::Message, 1, Status::Ok, ida)]);
        assert_eq!(got(&b), [(318, MessageType::Message, 1, Status::Ok, idb)]);
        assert_eq!(cbs.emit(318, |_, _| None::<i32>), 0);
    }

    #[test]
    fn only_the_owner_deregisters_and_only_once() {
        let cbs = Cbs::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        let id = cbs.register(&a, filter(0, None));
        assert!(!cbs.deregister(&b, id), "another client's id is unknown to it");
        assert!(!cbs.deregister(&a, id + 1));
        assert_eq!(cbs.len(), 1);
        assert!(cbs.deregister(&a, id));
        assert!(!cbs.deregister(&a, id));
        assert!(cbs.is_empty());
        assert!(sent_to(&cbs, 0, 1).is_empty());
    }

    #[test]
    fn clients_that_left_lose_their_registrations() {
        let cbs = Cbs::default();
        let (a, b, c) = (Recorder::new(1), Recorder::new(2), Recorder::new(3));
        for x in [&a, &b, &c] {
            cbs.register(x, filter(0, None));
        }
        assert_eq!(cbs.len(), 3);
        drop(a);
        b.set_gone(true);
        assert_eq!(cbs.len(), 1);
        assert_eq!(sent_to(&cbs, 0, 1), [(3, 2)]);
        assert_eq!(cbs.lock().list.len(), 1, "the departed are forgotten");
        // Nor does a registration of theirs come back with the client.
        b.set_gone(false);
        assert_eq!(sent_to(&cbs, 0, 1), [(3, 2)]);
        // Callback ids are not reused for a new registration.
        assert_eq!(cbs.register(&c, filter(0, None)), 3);
    }

    #[test]
    fn ids_wrap_past_the_largest_and_skip_those_in_use() {
        let cbs = Cbs::default();
        let a = Recorder::new(1);
        assert_eq!(cbs.register(&a, filter(0, None)), 0);
        assert_eq!(cbs.register(&a, filter(0, None)), 1);
        cbs.lock().next_id = i32::MAX;
        assert_eq!(cbs.register(&a, filter(0, None)), i32::MAX);
        assert_eq!(cbs.register(&a, filter(0, None)), 2, "0 and 1 are in use");
        assert!(cbs.deregister(&a, 0));
        cbs.lock().next_id = 0;
        assert_eq!(cbs.register(&a, filter(0, None)), 0, "free again");
        assert_eq!(cbs.register(&a, filter(0, None)), 3);
    }

    const DOMAINS: EventKind = EventKind::new("domain", "unsupported event ID", 24);
    const NETWORKS: EventKind = EventKind::new("network", "unsupported network event ID", 1);

    /// The message of `e` on the wire, checked to be libvirt's internal
    /// error from the RPC layer.
    fn wire_message(e: EventError) -> String {
        let rpc = RpcError::from(e);
        assert_eq!(
            (rpc.code, rpc.domain),
            (ErrorCode::INTERNAL_ERROR, ErrorDomain::RPC)
        );
        rpc.message.expect("a message")
    }

    #[test]
    fn event_lists_take_only_their_kinds_event_ids() {
        for (kind, words) in [
            (DOMAINS, "unsupported event ID"),
            (NETWORKS, "unsupported network event ID"),
        ] {
            let list = EventList::<Recorder>::default();
            let a = Recorder::new(1);
            for event_id in [-1, kind.last, i32::MAX, i32::MIN] {
                let e = list.register_checked(&a, event_id, None, &kind).unwrap_err();
                assert_eq!(e, EventError::UnknownEvent { kind, event_id });
                assert_eq!(wire_message(e), format!("internal error: {words} {event_id}"));
            }
            assert!(list.is_empty(), "a refusal registers nothing");
            assert_eq!(list.register_checked(&a, 0, None, &kind), Ok(0));
            assert_eq!(
                list.register_checked(&a, kind.last - 1, Some(Uuid([1; 16])), &kind),
                Ok(1)
            );
            assert_eq!(list.len(), 2);
        }
    }

    #[test]
    fn event_lists_remove_only_the_clients_own_callbacks_once() {
        for kind in [DOMAINS, NETWORKS] {
            let list = EventList::<Recorder>::default();
            let (a, b) = (Recorder::new(1), Recorder::new(2));
            let id = list.register_checked(&a, 0, None, &kind).unwrap();
            let e = list.deregister_checked(&b, id, &kind).unwrap_err();
            assert_eq!(
                e,
                EventError::UnknownCallback {
                    kind,
                    callback_id: id
                }
            );
            assert_eq!(
                wire_message(e),
                format!("internal error: {} event callback {id} not registered", kind.name)
            );
            assert_eq!(list.len(), 1, "another client's refusal leaves it");
            assert_eq!(list.deregister_checked(&a, id, &kind), Ok(()));
            assert!(list.deregister_checked(&a, id, &kind).is_err(), "only once");
            assert!(list.is_empty());
        }
    }
}
