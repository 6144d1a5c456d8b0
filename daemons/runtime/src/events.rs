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
//! stand-in in tests). The driver keeps its event ids, procedure numbers,
//! payloads and errors.

use crate::client::Client;
use modvirt_wire::message::encode_frame;
use modvirt_wire::program::{REMOTE_PROGRAM, REMOTE_VERSION};
use modvirt_wire::remote::Uuid;
use modvirt_wire::{Header, MessageType, Status, XdrEncode};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Whom events go to: a client connection (a stand-in in unit tests).
pub trait Listener: Send + Sync + 'static {
    /// The connection's id, unique in the daemon.
    fn id(&self) -> u64;
    /// Closed, failed, or no longer open: its registrations are void.
    fn gone(&self) -> bool;
    /// Sends one whole event frame without waiting for it to be written
    /// (a client that does not read never holds the driver up).
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
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { self.send(&frame).await });
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

    type Cbs = Callbacks<EventFilter, Fake>;

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
                (c.id, id)
            })
            .collect()
    }

    #[test]
    fn filters_pick_the_event_and_the_object() {
        let cbs = Cbs::default();
        let (a, b) = (fake(1), fake(2));
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
        let (a, b) = (fake(1), fake(2));
        let ida = cbs.register(&a, filter(0, None));
        let idb = cbs.register(&b, filter(0, None));
        cbs.register(&b, filter(1, None));
        assert_eq!(cbs.emit(318, |id, f| (f.event_id == 0).then_some(id)), 2);
        let got = |c: &Fake| -> Vec<_> { c.got.lock().unwrap().iter().map(|f| decode(f)).collect() };
        assert_eq!(got(&a), [(318, MessageType::Message, 1, Status::Ok, ida)]);
        assert_eq!(got(&b), [(318, MessageType::Message, 1, Status::Ok, idb)]);
        assert_eq!(cbs.emit(318, |_, _| None::<i32>), 0);
    }

    #[test]
    fn only_the_owner_deregisters_and_only_once() {
        let cbs = Cbs::default();
        let (a, b) = (fake(1), fake(2));
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
        let (a, b, c) = (fake(1), fake(2), fake(3));
        for x in [&a, &b, &c] {
            cbs.register(x, filter(0, None));
        }
        assert_eq!(cbs.len(), 3);
        drop(a);
        b.gone.store(true, Ordering::Relaxed);
        assert_eq!(cbs.len(), 1);
        assert_eq!(sent_to(&cbs, 0, 1), [(3, 2)]);
        assert_eq!(cbs.lock().list.len(), 1, "the departed are forgotten");
        // Nor does a registration of theirs come back with the client.
        b.gone.store(false, Ordering::Relaxed);
        assert_eq!(sent_to(&cbs, 0, 1), [(3, 2)]);
        // Callback ids are not reused for a new registration.
        assert_eq!(cbs.register(&c, filter(0, None)), 3);
    }

    #[test]
    fn ids_wrap_past_the_largest_and_skip_those_in_use() {
        let cbs = Cbs::default();
        let a = fake(1);
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
}
