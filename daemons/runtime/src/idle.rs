//! The idle timer: libvirt's `--timeout` semantics.
//!
//! A daemon exits `timeout` seconds after it last became idle: no client
//! connected and no inhibitor held (start-up in progress, later running
//! guests, …). Every change of clients, inhibitors or the timeout itself
//! restarts the countdown; a timeout of 0 disables it. Clients and
//! inhibitors are RAII guards, so nothing can leak on an error path.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    timeout: u32,
    clients: usize,
    next_id: u64,
    inhibitors: BTreeMap<u64, (Cow<'static, str>, Instant)>,
    idle_since: Instant,
}

impl State {
    /// No client, no inhibitor (whatever the timeout).
    fn is_idle(&self) -> bool {
        self.clients == 0 && self.inhibitors.is_empty()
    }

    /// Idle with a timeout: the countdown runs.
    fn is_armed(&self) -> bool {
        self.is_idle() && self.timeout > 0
    }

    /// When the countdown ends, if it runs.
    fn deadline(&self) -> Option<Instant> {
        self.is_armed()
            .then(|| self.idle_since + Duration::from_secs(self.timeout.into()))
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    changed: Notify,
}

/// A snapshot of the timer for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleStatus {
    pub timeout: u32,
    pub clients: usize,
    pub inhibitors: Vec<(String, Duration)>,
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
                }),
                changed: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a change. Observers of the timer are woken only when it
    /// matters to them — the daemon turns idle or busy, or the timeout
    /// changes — so the per-call in-flight inhibitor costs a lock, not a
    /// wake-up. The countdown restarts whenever the daemon turns idle.
    fn update(&self, f: impl FnOnce(&mut State)) {
        let wake = {
            let mut s = self.lock();
            let was_idle = s.is_idle();
            let timeout = s.timeout;
            f(&mut s);
            let idle = s.is_idle();
            if idle && (!was_idle || s.timeout != timeout) {
                s.idle_since = Instant::now();
            }
            idle != was_idle || s.timeout != timeout
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

    pub fn status(&self) -> IdleStatus {
        let s = self.lock();
        let now = Instant::now();
        IdleStatus {
            timeout: s.timeout,
            clients: s.clients,
            inhibitors: s
                .inhibitors
                .values()
                .map(|(r, since)| (r.to_string(), now.duration_since(*since)))
                .collect(),
            remaining: s.deadline().map(|d| d.saturating_duration_since(now)),
        }
    }

    /// Resolves once the daemon has been idle for the whole timeout.
    pub async fn expired(&self) {
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let deadline = self.lock().deadline();
            match deadline {
                None => changed.await,
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d) => {
                            // Re-check: a change may have raced the sleep.
                            if self.lock().deadline().is_some_and(|d| Instant::now() >= d) {
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
        assert_eq!(t.status().inhibitors.len(), 1);
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
}
