//! The idle timer: libvirt's `--timeout` semantics.
//!
//! A daemon exits `timeout` seconds after it last became idle: no client
//! connected, no call in flight and no inhibitor held (start-up in
//! progress, later running guests, …). Every change of clients, calls,
//! inhibitors or the timeout itself restarts the countdown; a timeout of 0
//! disables it. Clients, calls and inhibitors are RAII guards, so nothing
//! can leak on an error path.
//!
//! Calls are on the hot path, so they are counted with atomics: a call
//! takes the timer's lock only when it may change whether the daemon is
//! idle, i.e. when it is the first or last call in flight while no client
//! counts. Clients and named inhibitors always go through the lock.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The reason shown for calls in flight (`in-flight calls`, with their count).
pub const CALLS_REASON: &str = "in-flight calls";

#[derive(Debug)]
struct State {
    timeout: u32,
    clients: usize,
    next_id: u64,
    inhibitors: BTreeMap<u64, (Cow<'static, str>, Instant)>,
    idle_since: Instant,
    /// Whether the daemon was idle when last evaluated.
    was_idle: bool,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    changed: Notify,
    /// Calls in flight, striped so that calls on different cores do not
    /// share a cache line (outside the lock: see the module doc). A call may
    /// end on another stripe than it started on; only the sum means anything.
    calls: [Stripe; STRIPES],
    /// `State::clients`, readable without the lock; written under it.
    clients: AtomicUsize,
}

/// Stripes of the call counter.
const STRIPES: usize = 8;

#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicIsize);

/// This thread's stripe (threads are spread round-robin).
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    MINE.with(|m| *m)
}

impl Inner {
    /// Calls in flight now.
    fn calls(&self) -> usize {
        let sum: isize = self.calls.iter().map(|s| s.0.load(Ordering::SeqCst)).sum();
        sum.max(0) as usize
    }

    /// No client, no call, no inhibitor (whatever the timeout).
    fn is_idle(&self, s: &State) -> bool {
        s.clients == 0 && s.inhibitors.is_empty() && self.calls() == 0
    }

    /// When the countdown ends, if it runs (idle with a timeout).
    fn deadline(&self, s: &State) -> Option<Instant> {
        (s.timeout > 0 && self.is_idle(s)).then(|| s.idle_since + Duration::from_secs(s.timeout.into()))
    }
}

/// One group of inhibitors in a status snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InhibitorGroup {
    pub reason: String,
    pub count: u32,
    /// Age of the oldest.
    pub age: Duration,
}

/// A snapshot of the timer for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleStatus {
    pub timeout: u32,
    pub clients: usize,
    /// Calls in flight (they hold the timer too: reported as
    /// [`CALLS_REASON`] by the status snapshot, which knows their ages).
    pub calls: usize,
    /// Grouped by reason, in reason order.
    pub inhibitors: Vec<InhibitorGroup>,
    /// Seconds left before exit, if the countdown is running.
    pub remaining: Option<Duration>,
}

/// Cloneable handle to a daemon's idle timer.
#[derive(Debug, Clone)]
pub struct IdleTimer {
    inner: Arc<Inner>,
}

/// Held while something keeps the daemon from exiting; released on drop.
#[derive(Debug)]
#[must_use = "the inhibitor is released when dropped"]
pub struct Inhibitor {
    timer: IdleTimer,
    id: u64,
}

/// Held while a client is connected; released on drop.
#[derive(Debug)]
#[must_use = "the client is counted as gone when dropped"]
pub struct ClientPresence {
    timer: IdleTimer,
}

/// Held while a call is in flight; released on drop.
#[derive(Debug)]
#[must_use = "the call is counted as finished when dropped"]
pub struct CallHold {
    timer: IdleTimer,
}

impl IdleTimer {
    pub fn new(timeout_secs: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    timeout: timeout_secs,
                    clients: 0,
                    next_id: 0,
                    inhibitors: BTreeMap::new(),
                    idle_since: Instant::now(),
                    was_idle: true,
                }),
                changed: Notify::new(),
                calls: Default::default(),
                clients: AtomicUsize::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a change and re-evaluates idleness. Observers of the timer
    /// are woken only when it matters to them — the daemon turns idle or
    /// busy, or the timeout changes. The countdown restarts whenever the
    /// daemon turns idle.
    fn update(&self, f: impl FnOnce(&mut State)) {
        let wake = {
            let mut s = self.lock();
            let timeout = s.timeout;
            f(&mut s);
            self.inner.clients.store(s.clients, Ordering::SeqCst);
            let idle = self.inner.is_idle(&s);
            if idle && (!s.was_idle || s.timeout != timeout) {
                s.idle_since = Instant::now();
            }
            let wake = idle != s.was_idle || s.timeout != timeout;
            s.was_idle = idle;
            wake
        };
        if wake {
            self.inner.changed.notify_waiters();
        }
    }

    pub fn timeout(&self) -> u32 {
        self.lock().timeout
    }

    /// Changes the timeout live (0 disables); the countdown restarts.
    pub fn set_timeout(&self, secs: u32) {
        self.update(|s| s.timeout = secs);
    }

    pub fn inhibit(&self, reason: impl Into<Cow<'static, str>>) -> Inhibitor {
        let reason = reason.into();
        let mut id = 0;
        self.update(|s| {
            id = s.next_id;
            s.next_id += 1;
            s.inhibitors.insert(id, (reason, Instant::now()));
        });
        Inhibitor {
            timer: self.clone(),
            id,
        }
    }

    pub fn client_connected(&self) -> ClientPresence {
        self.update(|s| s.clients += 1);
        ClientPresence { timer: self.clone() }
    }

    /// Counts a call in flight until the hold is dropped.
    ///
    /// Lock-free unless no client counts (a call outliving its client): the
    /// counter changes first, then the client count is read (both
    /// `SeqCst`), while a client leaving writes its count first and then
    /// reads the counter, so at least one side sees the other and
    /// re-evaluates under the lock.
    pub fn call_started(&self) -> CallHold {
        self.count_call();
        CallHold { timer: self.clone() }
    }

    /// [`IdleTimer::call_started`] for an owner that ends the call itself
    /// with [`IdleTimer::call_finished`] (the dispatcher, which holds the
    /// daemon anyway: no second handle per call).
    pub fn count_call(&self) {
        let inner = &self.inner;
        inner.calls[stripe()].0.fetch_add(1, Ordering::SeqCst);
        if inner.clients.load(Ordering::SeqCst) == 0 {
            self.update(|_| {});
        }
    }

    /// A call counted with [`IdleTimer::count_call`] has ended.
    pub fn call_finished(&self) {
        let inner = &self.inner;
        inner.calls[stripe()].0.fetch_sub(1, Ordering::SeqCst);
        if inner.clients.load(Ordering::SeqCst) == 0 {
            self.update(|_| {});
        }
    }

    pub fn status(&self) -> IdleStatus {
        let s = self.lock();
        let now = Instant::now();
        let mut groups: BTreeMap<&str, InhibitorGroup> = BTreeMap::new();
        for (reason, since) in s.inhibitors.values() {
            let age = now.duration_since(*since);
            let g = groups.entry(reason).or_insert_with(|| InhibitorGroup {
                reason: reason.to_string(),
                count: 0,
                age,
            });
            g.count += 1;
            g.age = g.age.max(age);
        }
        IdleStatus {
            timeout: s.timeout,
            clients: s.clients,
            calls: self.inner.calls(),
            inhibitors: groups.into_values().collect(),
            remaining: self.inner.deadline(&s).map(|d| d.saturating_duration_since(now)),
        }
    }

    /// The daemon has been idle for the whole timeout, now.
    pub fn is_expired(&self) -> bool {
        self.inner
            .deadline(&self.lock())
            .is_some_and(|d| Instant::now() >= d)
    }

    /// Resolves once the daemon has been idle for the whole timeout.
    pub async fn expired(&self) {
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let deadline = self.inner.deadline(&self.lock());
            match deadline {
                None => changed.await,
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d) => {
                            // Re-check: a change may have raced the sleep.
                            if self.inner.deadline(&self.lock()).is_some_and(|d| Instant::now() >= d) {
                                return;
                            }
                        }
                        _ = &mut changed => {}
                    }
                }
            }
        }
    }
}

impl Drop for Inhibitor {
    fn drop(&mut self) {
        let id = self.id;
        self.timer.update(|s| {
            s.inhibitors.remove(&id);
        });
    }
}

impl Drop for ClientPresence {
    fn drop(&mut self) {
        self.timer.update(|s| s.clients = s.clients.saturating_sub(1));
    }
}

impl Drop for CallHold {
    fn drop(&mut self) {
        self.timer.call_finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_after_timeout_when_idle() {
        let t = IdleTimer::new(5);
        let start = tokio::time::Instant::now();
        t.expired().await;
        assert!(start.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn client_holds_and_restart_on_leave() {
        let t = IdleTimer::new(5);
        let c = t.client_connected();
        let t2 = t.clone();
        let h = tokio::spawn(async move { t2.expired().await });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!h.is_finished(), "must not expire while a client is connected");
        let left = tokio::time::Instant::now();
        drop(c);
        h.await.ok();
        assert!(
            left.elapsed() >= Duration::from_secs(5),
            "countdown restarts when the last client leaves"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn inhibitor_and_zero_timeout() {
        let t = IdleTimer::new(1);
        let i = t.inhibit("start-up");
        let _j = t.inhibit("start-up");
        let groups = t.status().inhibitors;
        assert_eq!(groups.len(), 1);
        assert_eq!((groups[0].reason.as_str(), groups[0].count), ("start-up", 2));
        drop(_j);
        assert_eq!(t.status().remaining, None);
        t.set_timeout(0);
        drop(i);
        let t2 = t.clone();
        let h = tokio::spawn(async move { t2.expired().await });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!h.is_finished(), "timeout 0 disables the idle exit");
        t.set_timeout(2);
        h.await.ok();
    }

    #[tokio::test(start_paused = true)]
    async fn calls_in_flight_hold_the_timer() {
        let t = IdleTimer::new(5);
        let a = t.call_started();
        let b = t.call_started();
        let st = t.status();
        assert_eq!(st.remaining, None, "calls in flight stop the countdown");
        assert_eq!(st.calls, 2);
        assert!(
            st.inhibitors.is_empty(),
            "calls are reported by the status snapshot"
        );
        let t2 = t.clone();
        let h = tokio::spawn(async move { t2.expired().await });
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(a);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!h.is_finished(), "one call still in flight");
        let done = tokio::time::Instant::now();
        drop(b);
        assert_eq!(t.status().calls, 0);
        assert_eq!(t.status().remaining, Some(Duration::from_secs(5)));
        h.await.ok();
        assert!(
            done.elapsed() >= Duration::from_secs(5),
            "the countdown starts at the last call"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_outliving_its_client_holds_the_timer() {
        let t = IdleTimer::new(5);
        let c = t.client_connected();
        let call = t.call_started();
        drop(c);
        assert_eq!(t.status().remaining, None);
        drop(call);
        assert_eq!(t.status().remaining, Some(Duration::from_secs(5)));
    }

    /// Calls and clients coming and going on many threads at once always
    /// leave the timer in the right state: the fast path never misses the
    /// last change.
    #[test]
    fn concurrent_calls_and_clients_settle_idle() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _enter = rt.enter();
        let t = IdleTimer::new(7);
        for _ in 0..20 {
            std::thread::scope(|scope| {
                for n in 0..4 {
                    let t = t.clone();
                    scope.spawn(move || {
                        for i in 0..2_000 {
                            if (i + n) % 3 == 0 {
                                let _c = t.client_connected();
                                let _k = t.call_started();
                            } else {
                                let _k = t.call_started();
                            }
                        }
                    });
                }
            });
            let st = t.status();
            assert_eq!((st.clients, st.calls), (0, 0));
            assert!(st.inhibitors.is_empty(), "{st:?}");
            assert!(st.remaining.is_some(), "idle after the storm: {st:?}");
            assert!(t.lock().was_idle, "the last change was evaluated");
            let _busy = t.call_started();
            assert_eq!(t.status().remaining, None);
        }
    }
}
