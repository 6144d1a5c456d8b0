//! In-flight calls: what every call in progress is, who made it, how old it
//! is and what it waits on right now.
//!
//! The client reader registers each call ([`InflightRegistry::start`]) and
//! holds the returned [`CallGuard`] until the reply is written; handlers
//! mark what they wait on with [`CallRecord::wait_on`], whose guard clears
//! the mark. Both are RAII, so no error path can leave a stale record.

use modvirt_wire::observe::{CallerLink, ClientRef, InflightCall, WaitOn};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::unix_ms;

/// What a call waits on, as recorded (ages are computed when observed).
#[derive(Debug, Clone, PartialEq)]
pub enum Waiting {
    JobLock {
        object: String,
        holder_call: u64,
        holder_procedure: String,
        holder_since: Instant,
    },
    Process {
        description: String,
        pid: Option<i32>,
    },
    Peer {
        daemon: String,
        procedure: String,
        serial: u32,
        peer_call: Option<u64>,
    },
    Other {
        description: String,
    },
}

impl Waiting {
    pub fn to_wire(&self, now: Instant) -> WaitOn {
        match self {
            Self::JobLock {
                object,
                holder_call,
                holder_procedure,
                holder_since,
            } => WaitOn::JobLock {
                object: object.clone(),
                holder_call: *holder_call,
                holder_procedure: holder_procedure.clone(),
                held_s: now.duration_since(*holder_since).as_secs_f64(),
            },
            Self::Process { description, pid } => WaitOn::Process {
                description: description.clone(),
                pid: *pid,
            },
            Self::Peer {
                daemon,
                procedure,
                serial,
                peer_call,
            } => WaitOn::Peer {
                daemon: daemon.clone(),
                procedure: procedure.clone(),
                serial: *serial,
                peer_call: *peer_call,
            },
            Self::Other { description } => WaitOn::Other {
                description: description.clone(),
            },
        }
    }
}

/// One call in progress.
#[derive(Debug)]
pub struct CallRecord {
    pub id: u64,
    pub program: &'static str,
    pub procedure: &'static str,
    pub serial: u32,
    pub client: Arc<ClientRef>,
    pub started: Instant,
    /// The call's span, if traced; its trace id is formatted only when observed.
    span: Option<super::spans::CallSpan>,
    pub caller: Mutex<Option<CallerLink>>,
    waiting: Mutex<Vec<(u64, Waiting)>>,
    next_wait: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CallRecord {
    fn new(
        id: u64,
        program: &'static str,
        procedure: &'static str,
        serial: u32,
        client: Arc<ClientRef>,
        started: Instant,
        span: Option<super::spans::CallSpan>,
    ) -> Arc<CallRecord> {
        Arc::new(CallRecord {
            id,
            program,
            procedure,
            serial,
            client,
            started,
            span,
            caller: Mutex::new(None),
            waiting: Mutex::new(Vec::new()),
            next_wait: AtomicU64::new(0),
        })
    }

    /// Marks what this call waits on until the guard is dropped. Nested
    /// waits stack: the innermost is reported.
    pub fn wait_on(self: &Arc<Self>, what: Waiting) -> WaitGuard {
        let token = self.next_wait.fetch_add(1, Ordering::Relaxed);
        lock(&self.waiting).push((token, what));
        WaitGuard {
            record: self.clone(),
            token,
        }
    }

    pub fn waiting(&self) -> Option<Waiting> {
        lock(&self.waiting).last().map(|(_, w)| w.clone())
    }

    pub fn span(&self) -> Option<&super::spans::CallSpan> {
        self.span.as_ref()
    }

    /// The W3C `traceparent` of this call's span, for spans it opens.
    pub fn traceparent(&self) -> Option<String> {
        self.span.as_ref().map(super::spans::CallSpan::traceparent)
    }

    pub fn set_caller(&self, caller: CallerLink) {
        *lock(&self.caller) = Some(caller);
    }

    pub fn to_wire(&self, now: Instant) -> InflightCall {
        InflightCall {
            id: self.id,
            program: self.program.to_owned(),
            procedure: self.procedure.to_owned(),
            serial: self.serial,
            client: (*self.client).clone(),
            // The wall-clock start, derived when observed (no clock read per call).
            started_ms: unix_ms().saturating_sub(now.duration_since(self.started).as_millis() as u64),
            age_s: now.duration_since(self.started).as_secs_f64(),
            waiting_on: self.waiting().map(|w| w.to_wire(now)),
            trace_id: self.span.as_ref().map(super::spans::CallSpan::trace_id),
            caller: lock(&self.caller).clone(),
        }
    }
}

/// Clears a wait mark when dropped.
#[derive(Debug)]
#[must_use = "the wait mark is cleared when the guard is dropped"]
pub struct WaitGuard {
    record: Arc<CallRecord>,
    token: u64,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        lock(&self.record.waiting).retain(|(t, _)| *t != self.token);
    }
}

/// Whether a call gets a span, and whose trace it belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Trace<'a> {
    /// A new trace.
    Root,
    /// The trace of this W3C `traceparent` (a new one if it is malformed).
    Continue(&'a str),
}

/// Independent slabs, so calls of different clients on different cores
/// rarely share a lock.
const SHARDS: usize = 8;

/// The calls in progress in one daemon.
///
/// Slabs: a call takes a free slot of its client's shard and gives it back
/// when it ends, so registering and unregistering cost a short lock and no
/// search.
#[derive(Debug, Default)]
pub struct InflightRegistry {
    shards: [Mutex<Slots>; SHARDS],
}

#[derive(Debug, Default)]
struct Slots {
    calls: Vec<Option<Arc<CallRecord>>>,
    free: Vec<usize>,
    len: usize,
    /// Calls this shard has registered so far (for ids).
    issued: u64,
}

/// A registered call's place in the registry, for [`InflightRegistry::unregister`].
/// Owners that hold the daemon anyway (the dispatcher) keep this rather
/// than a [`CallGuard`], which would hold the registry a second time.
#[derive(Debug)]
#[must_use = "a registered call must be unregistered"]
pub struct CallSlot {
    shard: usize,
    slot: usize,
    pub record: Arc<CallRecord>,
}

/// Removes its call from the registry when dropped.
#[derive(Debug)]
#[must_use = "the call is unregistered when the guard is dropped"]
pub struct CallGuard {
    registry: Arc<InflightRegistry>,
    slot: Option<CallSlot>,
    pub record: Arc<CallRecord>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.registry.unregister(slot);
        }
    }
}

impl InflightRegistry {
    /// Registers a call that is not traced.
    pub fn start(
        self: &Arc<Self>,
        program: &'static str,
        procedure: &'static str,
        serial: u32,
        client: Arc<ClientRef>,
    ) -> CallGuard {
        let slot = self.register(program, procedure, serial, client, Instant::now(), None);
        CallGuard {
            registry: self.clone(),
            record: slot.record.clone(),
            slot: Some(slot),
        }
    }

    /// Registers a call that started at `started`, with a span if `trace`
    /// says so; [`InflightRegistry::unregister`] it when it ends.
    pub fn register(
        &self,
        program: &'static str,
        procedure: &'static str,
        serial: u32,
        client: Arc<ClientRef>,
        started: Instant,
        trace: Option<Trace<'_>>,
    ) -> CallSlot {
        if !cfg!(feature = "observe-calls") {
            // Instrumentation compiled out: handlers still get a record to
            // mark waits on, but observers never see it.
            let record = CallRecord::new(0, program, procedure, serial, client, started, None);
            return CallSlot {
                shard: 0,
                slot: usize::MAX,
                record,
            };
        }
        let shard = (client.id % SHARDS as u64) as usize;
        let mut slots = lock(&self.shards[shard]);
        // Unique without a counter shared by every core: the shard's own
        // count, times the number of shards, plus the shard.
        slots.issued += 1;
        let id = slots.issued * SHARDS as u64 + shard as u64;
        let span = trace.map(|t| {
            super::spans::CallSpan::start(
                match t {
                    Trace::Root => None,
                    Trace::Continue(parent) => Some(parent),
                },
                id,
                started,
            )
        });
        let record = CallRecord::new(id, program, procedure, serial, client, started, span);
        slots.len += 1;
        let slot = match slots.free.pop() {
            Some(slot) => {
                slots.calls[slot] = Some(record.clone());
                slot
            }
            None => {
                slots.calls.push(Some(record.clone()));
                slots.calls.len() - 1
            }
        };
        drop(slots);
        CallSlot { shard, slot, record }
    }

    /// Removes a call registered with [`InflightRegistry::register`].
    pub fn unregister(&self, call: CallSlot) {
        if call.slot == usize::MAX {
            return; // never registered (instrumentation compiled out)
        }
        let taken = {
            let mut slots = lock(&self.shards[call.shard]);
            let taken = slots.calls.get_mut(call.slot).and_then(Option::take);
            if taken.is_some() {
                slots.free.push(call.slot);
                slots.len -= 1;
            }
            taken
        };
        // `call.record` still holds the call: nothing is freed under the lock.
        drop(taken);
    }

    pub fn get(&self, id: u64) -> Option<Arc<CallRecord>> {
        let shard = &self.shards[(id % SHARDS as u64) as usize];
        lock(shard).calls.iter().flatten().find(|c| c.id == id).cloned()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every call in progress, oldest first.
    pub fn snapshot(&self, now: Instant) -> Vec<InflightCall> {
        let mut calls: Vec<Arc<CallRecord>> = self
            .shards
            .iter()
            .flat_map(|s| lock(s).calls.iter().flatten().cloned().collect::<Vec<_>>())
            .collect();
        calls.sort_unstable_by_key(|c| (c.started, c.id));
        calls.iter().map(|c| c.to_wire(now)).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A client of the calls the tests start: `virsh` (pid 2) on server `s`.
    pub(crate) fn client() -> Arc<ClientRef> {
        Arc::new(ClientRef {
            server: "s".into(),
            id: 1,
            pid: 2,
            comm: "virsh".into(),
        })
    }

    #[test]
    fn guards_register_and_unregister() {
        let r = Arc::new(InflightRegistry::default());
        let a = r.start("REMOTE", "DOMAIN_CREATE", 3, client());
        let b = r.start("REMOTE", "DOMAIN_SUSPEND", 4, client());
        assert_eq!(r.len(), 2);
        let w = a.record.wait_on(Waiting::Process {
            description: "qmp reply from qemu pid 9".into(),
            pid: Some(9),
        });
        let snap = r.snapshot(Instant::now());
        assert_eq!(snap[0].procedure, "DOMAIN_CREATE");
        assert!(matches!(
            snap[0].waiting_on,
            Some(WaitOn::Process { pid: Some(9), .. })
        ));
        assert_eq!(snap[1].waiting_on, None);
        drop(w);
        assert_eq!(r.snapshot(Instant::now())[0].waiting_on, None);
        drop(a);
        assert_eq!(r.len(), 1);
        drop(b);
        assert!(r.is_empty());
    }

    #[test]
    fn slots_are_reused_and_order_is_by_start() {
        let r = Arc::new(InflightRegistry::default());
        let a = r.start("REMOTE", "A", 1, client());
        let b = r.start("REMOTE", "B", 2, client());
        drop(a);
        // C takes A's slot (same client, same shard), yet is listed after
        // B, and found by its id.
        let c = r.start("REMOTE", "C", 3, client());
        let (bs, cs) = (b.slot.as_ref().unwrap(), c.slot.as_ref().unwrap());
        assert_eq!((cs.shard, cs.slot), (bs.shard, bs.slot - 1));
        let names: Vec<String> = r
            .snapshot(Instant::now())
            .into_iter()
            .map(|c| c.procedure)
            .collect();
        assert_eq!(names, ["B", "C"]);
        assert_eq!(r.get(c.record.id).map(|x| x.procedure), Some("C"));
        assert!(r.get(1).is_none(), "A is gone");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn calls_of_many_clients_list_oldest_first() {
        let r = Arc::new(InflightRegistry::default());
        let mut guards: Vec<CallGuard> = (0..20u64)
            .map(|i| {
                let c = Arc::new(ClientRef {
                    id: i * 7,
                    ..(*client()).clone()
                });
                r.start("REMOTE", "X", i as u32, c)
            })
            .collect();
        guards.retain(|g| g.record.serial % 3 != 0);
        let serials: Vec<u32> = r.snapshot(Instant::now()).iter().map(|c| c.serial).collect();
        let want: Vec<u32> = (0..20).filter(|s| s % 3 != 0).collect();
        assert_eq!(serials, want);
        assert_eq!(r.len(), want.len());
        assert!(guards.iter().all(|g| r.get(g.record.id).is_some()));
    }

    #[test]
    fn nested_waits_report_innermost() {
        let r = Arc::new(InflightRegistry::default());
        let a = r.start("REMOTE", "X", 1, client());
        let outer = a.record.wait_on(Waiting::Other {
            description: "outer".into(),
        });
        {
            let _inner = a.record.wait_on(Waiting::Other {
                description: "inner".into(),
            });
            assert_eq!(
                a.record.waiting(),
                Some(Waiting::Other {
                    description: "inner".into()
                })
            );
        }
        assert_eq!(
            a.record.waiting(),
            Some(Waiting::Other {
                description: "outer".into()
            })
        );
        drop(outer);
        assert_eq!(a.record.waiting(), None);
    }
}
