//! Storage pool event callbacks (`CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY`
//! / `_DEREGISTER_ANY`) and their delivery, as libvirt's remote driver does
//! for a storage connection: each registration belongs to one client
//! connection, has a callback id, an event id (`LIFECYCLE` or `REFRESH`)
//! and optionally one pool (matched by UUID); events go out as REMOTE
//! `MESSAGE` frames with serial 1: `STORAGE_POOL_EVENT_LIFECYCLE` (the
//! pool, the lifecycle event, detail 0) and `STORAGE_POOL_EVENT_REFRESH`
//! (the pool). The list itself, its checks and refusals, and forgetting
//! the registrations of clients that have gone, are the runtime's
//! ([`modvirt_runtime::events`]); the storage pool events, and how
//! libvirt's refusals name them, are ours.
//!
//! When each event is sent is the procedures' business ([`super::procs`],
//! [`super::lifecycle`]). Read-only connections may register, as in
//! libvirt: events reveal no more than listing pools does.

use super::Core;
use modvirt_runtime::client::Client;
use modvirt_runtime::dispatch::{CallResult, decode_args, encode_ret};
use modvirt_runtime::events::{EventFilter, EventKind, EventList, Listener};
use modvirt_wire::storage::{
    ConnectStoragePoolEventDeregisterAnyArgs, ConnectStoragePoolEventRegisterAnyArgs,
    ConnectStoragePoolEventRegisterAnyRet, NonnullStoragePool, StoragePoolEventLifecycleMsg,
    StoragePoolEventRefreshMsg, event,
};
use std::sync::Arc;

/// `REMOTE_PROC_STORAGE_POOL_EVENT_LIFECYCLE`.
pub const PROC_LIFECYCLE: i32 = 370;
/// `REMOTE_PROC_STORAGE_POOL_EVENT_REFRESH`.
pub const PROC_REFRESH: i32 = 373;

/// Storage pool events as libvirt's refusals word them ("unsupported
/// storage pool event ID 2", "storage pool event callback 3 not
/// registered").
const KIND: EventKind = EventKind::new(
    "storage pool",
    "unsupported storage pool event ID",
    event::id::LAST,
);

/// The callbacks of the daemon (`C`: the client connection, a stand-in in
/// unit tests).
#[derive(Debug)]
pub struct EventCallbacks<C: Listener = Client> {
    /// Registrations, for every pool or one (matched by UUID).
    list: EventList<C>,
}

impl<C: Listener> Default for EventCallbacks<C> {
    fn default() -> Self {
        Self {
            list: EventList::default(),
        }
    }
}

impl<C: Listener> EventCallbacks<C> {
    /// Sends lifecycle `event` (`event::DEFINED` … `DELETED`) of `pool` to
    /// every client registered for it; returns how many it went to. Each
    /// is written on a task of its own: a client that does not read never
    /// holds the driver up.
    pub fn lifecycle(&self, pool: &NonnullStoragePool, event: i32) -> usize {
        self.list.emit(PROC_LIFECYCLE, lifecycle(pool, event))
    }

    /// Sends the refresh event of `pool` (listed again by `pool-refresh`)
    /// to every client registered for it; returns how many it went to.
    pub fn refreshed(&self, pool: &NonnullStoragePool) -> usize {
        self.list.emit(PROC_REFRESH, refresh(pool))
    }

    /// Answers `CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY` (XDR args `p`) of
    /// `client`.
    pub fn register(&self, client: &Arc<C>, p: &[u8]) -> CallResult {
        let a: ConnectStoragePoolEventRegisterAnyArgs = decode_args(p)?;
        let pool = a.pool.map(|p| p.uuid);
        let callback_id = self.list.register_checked(client, a.event_id, pool, &KIND)?;
        tracing::debug!(
            target: "storage",
            "client {}: storage pool event callback {callback_id} registered (event {})",
            client.id(),
            a.event_id
        );
        encode_ret(&ConnectStoragePoolEventRegisterAnyRet { callback_id })
    }

    /// Answers `CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY` (XDR args `p`)
    /// of `client`: only its own callbacks, once.
    pub fn deregister(&self, client: &C, p: &[u8]) -> CallResult {
        let a: ConnectStoragePoolEventDeregisterAnyArgs = decode_args(p)?;
        self.list.deregister_checked(client, a.callback_id, &KIND)?;
        encode_ret(&())
    }
}

/// The lifecycle payload for a registration, if it wants it.
fn lifecycle(
    pool: &NonnullStoragePool,
    event: i32,
) -> impl FnMut(i32, &EventFilter) -> Option<StoragePoolEventLifecycleMsg> + '_ {
    move |callback_id, f| {
        f.wants(event::id::LIFECYCLE, &pool.uuid)
            .then(|| StoragePoolEventLifecycleMsg {
                callback_id,
                pool: pool.clone(),
                event,
                detail: 0,
            })
    }
}

/// The refresh payload for a registration, if it wants it.
fn refresh(
    pool: &NonnullStoragePool,
) -> impl FnMut(i32, &EventFilter) -> Option<StoragePoolEventRefreshMsg> + '_ {
    move |callback_id, f| {
        f.wants(event::id::REFRESH, &pool.uuid)
            .then(|| StoragePoolEventRefreshMsg {
                callback_id,
                pool: pool.clone(),
            })
    }
}

/// `CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY`.
pub fn register(core: &Core, client: &Arc<Client>, p: &[u8]) -> CallResult {
    core.events.register(client, p)
}

/// `CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY`.
pub fn deregister(core: &Core, client: &Client, p: &[u8]) -> CallResult {
    core.events.deregister(client, p)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use modvirt_runtime::events::Recorder;
    use modvirt_wire::message::split_body;
    use modvirt_wire::program::REMOTE_PROGRAM;
    use modvirt_wire::remote::Uuid;
    use modvirt_wire::{ErrorCode, ErrorDomain, MessageType, RpcError, Status, XdrDecode, XdrEncode};

    type Cbs = EventCallbacks<Recorder>;

    fn pool(name: &str, uuid: u8) -> NonnullStoragePool {
        NonnullStoragePool {
            name: name.into(),
            uuid: Uuid([uuid; 16]),
        }
    }

    /// Registers `c` for `event_id` of every pool, or of `only`, through
    /// the call's handler; returns the callback id.
    fn register(cbs: &Cbs, c: &Arc<Recorder>, event_id: i32, only: Option<&NonnullStoragePool>) -> i32 {
        let args = ConnectStoragePoolEventRegisterAnyArgs {
            event_id,
            pool: only.cloned(),
        };
        let ret = cbs.register(c, &args.to_xdr()).unwrap();
        ConnectStoragePoolEventRegisterAnyRet::from_xdr(&ret)
            .unwrap()
            .callback_id
    }

    fn deregister(cbs: &Cbs, c: &Recorder, callback_id: i32) -> Result<(), RpcError> {
        let args = ConnectStoragePoolEventDeregisterAnyArgs { callback_id };
        cbs.deregister(c, &args.to_xdr()).map(|_| ())
    }

    /// What `c` received since last asked: for each frame, the callback
    /// id, the pool name and the lifecycle event (`None` for a refresh).
    fn got(c: &Recorder) -> Vec<(i32, String, Option<i32>)> {
        c.take()
            .iter()
            .map(|f| {
                let len = u32::from_be_bytes(f[..4].try_into().unwrap()) as usize;
                assert_eq!(len, f.len());
                let (h, payload) = split_body(&f[4..]).unwrap();
                assert_eq!(
                    (h.prog, h.type_, h.serial, h.status),
                    (REMOTE_PROGRAM, MessageType::Message, 1, Status::Ok)
                );
                match h.proc_ {
                    PROC_LIFECYCLE => {
                        let m = StoragePoolEventLifecycleMsg::from_xdr(payload).unwrap();
                        assert_eq!(m.detail, 0);
                        (m.callback_id, m.pool.name, Some(m.event))
                    }
                    PROC_REFRESH => {
                        let m = StoragePoolEventRefreshMsg::from_xdr(payload).unwrap();
                        (m.callback_id, m.pool.name, None)
                    }
                    other => panic!("unexpected procedure {other}"),
                }
            })
            .collect()
    }

    #[test]
    fn each_registration_gets_only_its_event_and_pool() {
        let cbs = Cbs::default();
        let (a, b, c) = (Recorder::new(1), Recorder::new(2), Recorder::new(3));
        let (one, two) = (pool("one", 1), pool("two", 2));
        let life_all = register(&cbs, &a, event::id::LIFECYCLE, None);
        let refresh_all = register(&cbs, &a, event::id::REFRESH, None);
        let life_two = register(&cbs, &b, event::id::LIFECYCLE, Some(&two));
        let refresh_one = register(&cbs, &c, event::id::REFRESH, Some(&one));

        assert_eq!(cbs.lifecycle(&one, event::DEFINED), 1);
        assert_eq!(cbs.lifecycle(&two, event::CREATED), 2);
        assert_eq!(cbs.refreshed(&one), 2);
        assert_eq!(cbs.refreshed(&two), 1);
        assert_eq!(
            got(&a),
            [
                (life_all, "one".into(), Some(event::DEFINED)),
                (life_all, "two".into(), Some(event::CREATED)),
                (refresh_all, "one".into(), None),
                (refresh_all, "two".into(), None),
            ]
        );
        assert_eq!(got(&b), [(life_two, "two".into(), Some(event::CREATED))]);
        assert_eq!(got(&c), [(refresh_one, "one".into(), None)]);
    }

    #[test]
    fn every_lifecycle_event_goes_out_with_detail_zero() {
        let cbs = Cbs::default();
        let a = Recorder::new(1);
        let id = register(&cbs, &a, event::id::LIFECYCLE, None);
        let p = pool("p", 7);
        let all = [
            event::DEFINED,
            event::UNDEFINED,
            event::STARTED,
            event::STOPPED,
            event::CREATED,
            event::DELETED,
        ];
        for e in all {
            cbs.lifecycle(&p, e);
        }
        let want: Vec<_> = all.iter().map(|e| (id, "p".to_owned(), Some(*e))).collect();
        assert_eq!(got(&a), want);
    }

    #[test]
    fn unknown_event_ids_and_callbacks_get_libvirts_errors() {
        let cbs = Cbs::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        for id in [2, -1, i32::MAX, i32::MIN] {
            let args = ConnectStoragePoolEventRegisterAnyArgs {
                event_id: id,
                pool: None,
            };
            let e = cbs.register(&a, &args.to_xdr()).unwrap_err();
            assert_eq!((e.code, e.domain), (ErrorCode::INTERNAL_ERROR, ErrorDomain::RPC));
            let want = format!("internal error: unsupported storage pool event ID {id}");
            assert_eq!(e.message.as_deref(), Some(want.as_str()));
        }
        // Arguments that are not XDR are refused, not trusted.
        assert!(cbs.register(&a, &[0, 0]).is_err());
        assert_eq!(
            cbs.lifecycle(&pool("p", 1), event::DEFINED),
            0,
            "nothing registered"
        );

        let id = register(&cbs, &a, event::id::REFRESH, None);
        // Another client cannot remove it; its owner can, once.
        let e = deregister(&cbs, &b, id).unwrap_err();
        assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);
        assert_eq!(
            e.message.as_deref(),
            Some(format!("internal error: storage pool event callback {id} not registered").as_str())
        );
        assert_eq!(cbs.refreshed(&pool("p", 1)), 1);
        assert_eq!(got(&a), [(id, "p".into(), None)]);
        deregister(&cbs, &a, id).unwrap();
        assert!(deregister(&cbs, &a, id).is_err(), "only once");
        assert_eq!(cbs.refreshed(&pool("p", 1)), 0);
        assert!(a.take().is_empty());
    }

    #[test]
    fn clients_that_left_get_nothing() {
        let cbs = Cbs::default();
        let (a, b) = (Recorder::new(1), Recorder::new(2));
        register(&cbs, &a, event::id::LIFECYCLE, None);
        let id = register(&cbs, &b, event::id::LIFECYCLE, None);
        a.set_gone(true);
        assert_eq!(cbs.lifecycle(&pool("p", 1), event::STOPPED), 1);
        assert!(a.take().is_empty());
        assert_eq!(got(&b), [(id, "p".into(), Some(event::STOPPED))]);
    }
}
