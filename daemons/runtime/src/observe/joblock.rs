//! Job locks: one state-changing job per object at a time (libvirt's
//! per-domain job), with a registry observers can read: who holds each lock,
//! since when, and who waits for it.
//!
//! A waiting call is marked as waiting on the lock (and its holder) in the
//! in-flight registry for as long as it waits; after the timeout it fails
//! with libvirt's message naming the holder.

use super::inflight::{CallRecord, Waiting};
use super::unix_ms;
use modvirt_wire::observe::JobLock;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::Notify;

#[derive(Debug, Error, PartialEq)]
pub enum JobLockError {
    #[error("cannot acquire state change lock (held by {holder_api} for {held_s:.1} s)")]
    Timeout {
        object: String,
        holder_api: String,
        held_s: f64,
    },
}

impl JobLockError {
    /// libvirt's error for it: `VIR_ERR_OPERATION_TIMEOUT`, "Timed out
    /// during operation: cannot acquire state change lock (held by …)",
    /// from the driver's error domain.
    pub fn to_rpc(&self, domain: modvirt_wire::ErrorDomain) -> modvirt_wire::RpcError {
        modvirt_wire::RpcError::new(
            modvirt_wire::ErrorCode::OPERATION_TIMEOUT,
            domain,
            "Timed out during operation",
            self.to_string(),
        )
    }
}

#[derive(Debug)]
struct Holder {
    call: u64,
    procedure: String,
    since: Instant,
    since_ms: u64,
}

#[derive(Debug, Default)]
struct LockState {
    holder: Option<Holder>,
    waiters: VecDeque<u64>,
    released: Arc<Notify>,
}

/// Every job lock of a daemon.
#[derive(Debug, Default)]
pub struct JobLocks {
    locks: Mutex<BTreeMap<String, LockState>>,
}

/// Holds a job lock; released (and the next waiter woken) on drop.
#[derive(Debug)]
#[must_use = "the job lock is released when the guard is dropped"]
pub struct JobGuard {
    locks: Arc<JobLocks>,
    object: String,
    call: u64,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let mut locks = self.locks.lock();
        if let Some(st) = locks.get_mut(&self.object) {
            if st.holder.as_ref().map(|h| h.call) == Some(self.call) {
                st.holder = None;
            }
            st.released.notify_waiters();
            if st.holder.is_none() && st.waiters.is_empty() {
                locks.remove(&self.object);
            }
        }
    }
}

impl JobLocks {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, LockState>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the job lock on `object` for `call`, waiting up to `timeout`.
    pub async fn acquire(
        self: &Arc<Self>,
        object: &str,
        call: &Arc<CallRecord>,
        timeout: Duration,
    ) -> Result<JobGuard, JobLockError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut queued = false;
        loop {
            let (released, holder) = {
                let mut locks = self.lock();
                let st = locks.entry(object.to_owned()).or_default();
                let first_in_line = st.waiters.front().is_none_or(|w| *w == call.id);
                if st.holder.is_none() && first_in_line {
                    if queued {
                        st.waiters.pop_front();
                    }
                    st.holder = Some(Holder {
                        call: call.id,
                        procedure: call.procedure.to_owned(),
                        since: Instant::now(),
                        since_ms: unix_ms(),
                    });
                    return Ok(JobGuard {
                        locks: self.clone(),
                        object: object.to_owned(),
                        call: call.id,
                    });
                }
                if !queued {
                    st.waiters.push_back(call.id);
                    queued = true;
                }
                let holder = st.holder.as_ref().map(|h| (h.call, h.procedure.clone(), h.since));
                (st.released.clone(), holder)
            };
            let notified = released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _mark = holder.as_ref().map(|(hc, hp, since)| {
                call.wait_on(Waiting::JobLock {
                    object: object.to_owned(),
                    holder_call: *hc,
                    holder_procedure: hp.clone(),
                    holder_since: *since,
                })
            });
            if holder.is_none() {
                // Free but another waiter is first in line: let it run.
                tokio::task::yield_now().await;
                continue;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let mut locks = self.lock();
                let (api, held) = match locks.get_mut(object) {
                    Some(st) => {
                        st.waiters.retain(|w| *w != call.id);
                        st.released.notify_waiters();
                        st.holder
                            .as_ref()
                            .map(|h| (h.procedure.clone(), h.since.elapsed().as_secs_f64()))
                            .unwrap_or_default()
                    }
                    None => Default::default(),
                };
                return Err(JobLockError::Timeout {
                    object: object.to_owned(),
                    holder_api: crate::dispatch::api_name(&api),
                    held_s: held,
                });
            }
        }
    }

    /// The registry as observers see it.
    pub fn snapshot(&self, now: Instant) -> Vec<JobLock> {
        self.lock()
            .iter()
            .filter_map(|(object, st)| {
                st.holder.as_ref().map(|h| JobLock {
                    object: object.clone(),
                    holder_call: h.call,
                    holder_procedure: h.procedure.clone(),
                    since_ms: h.since_ms,
                    held_s: now.duration_since(h.since).as_secs_f64(),
                    waiters: st.waiters.iter().copied().collect(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::inflight::InflightRegistry;
    use super::super::inflight::tests::client;
    use super::*;
    use modvirt_wire::observe::WaitOn;

    #[tokio::test]
    async fn second_job_waits_visibly_then_runs() {
        let reg = Arc::new(InflightRegistry::default());
        let locks = Arc::new(JobLocks::default());
        let a = reg.start("REMOTE", "DOMAIN_SUSPEND", 1, client());
        let b = reg.start("REMOTE", "DOMAIN_RESUME", 2, client());
        let ga = locks
            .acquire("domain:vm1", &a.record, Duration::from_secs(5))
            .await
            .unwrap();
        let (locks2, brec) = (locks.clone(), b.record.clone());
        let waiter =
            tokio::spawn(async move { locks2.acquire("domain:vm1", &brec, Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let snap = locks.snapshot(Instant::now());
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].holder_procedure, "DOMAIN_SUSPEND");
        assert_eq!(snap[0].waiters, vec![b.record.id]);
        match b.record.waiting().map(|w| w.to_wire(Instant::now())) {
            Some(WaitOn::JobLock {
                holder_call, object, ..
            }) => {
                assert_eq!(holder_call, a.record.id);
                assert_eq!(object, "domain:vm1");
            }
            other => panic!("{other:?}"),
        }
        drop(ga);
        let gb = waiter.await.unwrap().unwrap();
        assert_eq!(b.record.waiting(), None, "the wait mark is cleared");
        assert_eq!(locks.snapshot(Instant::now())[0].holder_call, b.record.id);
        drop(gb);
        assert!(locks.snapshot(Instant::now()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_names_the_holder() {
        let reg = Arc::new(InflightRegistry::default());
        let locks = Arc::new(JobLocks::default());
        let a = reg.start("REMOTE", "DOMAIN_SUSPEND", 1, client());
        let b = reg.start("REMOTE", "DOMAIN_RESUME", 2, client());
        let _ga = locks
            .acquire("domain:vm1", &a.record, Duration::from_secs(5))
            .await
            .unwrap();
        let err = locks
            .acquire("domain:vm1", &b.record, Duration::from_secs(30))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("cannot acquire state change lock (held by virDomainSuspend"),
            "{msg}"
        );
        assert_eq!(locks.snapshot(Instant::now())[0].waiters, Vec::<u64>::new());
        assert_eq!(b.record.waiting(), None);
    }
}
