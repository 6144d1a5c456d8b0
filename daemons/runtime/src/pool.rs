//! The worker pool of a server (libvirt's `virThreadPool`, on tokio tasks).
//!
//! Calls are queued as jobs. Normal workers take any job, priority workers
//! only high-priority ones (so `destroy` still runs when every normal worker
//! is stuck). The pool keeps between `min` and `max` normal workers: a job
//! arriving while none is free starts another worker up to `max`. Resizing
//! is live: raising `min`/`prio` starts workers at once, lowering `max` or
//! `prio` makes the excess exit as soon as they are idle.

use modvirt_wire::Priority;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;
use tokio::sync::Notify;

type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The figures `virt-admin srv-threadpool-info` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub min_workers: usize,
    pub max_workers: usize,
    pub n_workers: usize,
    pub free_workers: usize,
    pub prio_workers: usize,
    pub job_queue_depth: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("minWorkers ({min}) cannot be larger than maxWorkers ({max})")]
    MinAboveMax { min: usize, max: usize },
    #[error("maxWorkers must not be 0")]
    ZeroMax,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<(Priority, Job)>,
    min: usize,
    max: usize,
    prio_target: usize,
    n_workers: usize,
    free_workers: usize,
    n_prio: usize,
    free_prio: usize,
    high_jobs: usize,
    /// Free workers whose turn a client reader is using (see [`WorkerPool::borrow_free_worker`]).
    borrowed: usize,
}

struct Inner {
    name: String,
    state: Mutex<State>,
    work: Notify,
    prio_work: Notify,
}

/// A cloneable handle to a worker pool.
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("name", &self.inner.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl WorkerPool {
    /// Creates the pool and starts `min` normal and `prio` priority workers.
    /// Must be called inside a tokio runtime.
    pub fn new(name: &str, min: usize, max: usize, prio: usize) -> Result<Self, PoolError> {
        check(min, max)?;
        let pool = WorkerPool {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                state: Mutex::new(State {
                    min,
                    max,
                    prio_target: prio,
                    ..State::default()
                }),
                work: Notify::new(),
                prio_work: Notify::new(),
            }),
        };
        pool.spawn_missing();
        Ok(pool)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock; recover anyway.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> PoolStats {
        let s = self.lock();
        PoolStats {
            min_workers: s.min,
            max_workers: s.max,
            n_workers: s.n_workers,
            free_workers: s.free_workers.saturating_sub(s.borrowed),
            prio_workers: s.n_prio,
            job_queue_depth: s.jobs.len(),
        }
    }

    /// Queues a job; starts a worker if none is free and the pool may grow.
    pub fn submit(&self, priority: Priority, job: impl Future<Output = ()> + Send + 'static) {
        let mut s = self.lock();
        s.jobs.push_back((priority, Box::pin(job)));
        let grow = s.free_workers <= s.borrowed && s.n_workers < s.max;
        if priority == Priority::High {
            s.high_jobs += 1;
        }
        if grow {
            s.n_workers += 1;
        }
        drop(s);
        if grow {
            self.spawn_worker(false);
        }
        self.inner.work.notify_one();
        if priority == Priority::High {
            self.inner.prio_work.notify_one();
        }
    }

    /// Takes a free worker's turn, if one is free, to run a call in the
    /// caller's task: it counts as busy until the returned guard is dropped.
    /// Lets a call that completes at once skip the hand-over to a worker
    /// task, without growing the pool.
    pub fn borrow_free_worker(&self) -> Option<BorrowedWorker<'_>> {
        let mut s = self.lock();
        if s.free_workers > s.borrowed {
            s.borrowed += 1;
            Some(BorrowedWorker { pool: self })
        } else {
            None
        }
    }

    /// Changes the pool's limits (each `None` keeps the current value).
    pub fn set_limits(
        &self,
        min: Option<usize>,
        max: Option<usize>,
        prio: Option<usize>,
    ) -> Result<(), PoolError> {
        {
            let mut s = self.lock();
            let new_min = min.unwrap_or(s.min);
            let new_max = max.unwrap_or(s.max);
            check(new_min, new_max)?;
            s.min = new_min;
            s.max = new_max;
            if let Some(p) = prio {
                s.prio_target = p;
            }
        }
        self.spawn_missing();
        // Wake idle workers so that any excess notices and exits.
        self.inner.work.notify_waiters();
        self.inner.prio_work.notify_waiters();
        Ok(())
    }

    fn spawn_missing(&self) {
        let (normal, prio) = {
            let mut s = self.lock();
            let normal = s.min.saturating_sub(s.n_workers);
            let prio = s.prio_target.saturating_sub(s.n_prio);
            s.n_workers += normal;
            s.n_prio += prio;
            (normal, prio)
        };
        for _ in 0..normal {
            self.spawn_worker(false);
        }
        for _ in 0..prio {
            self.spawn_worker(true);
        }
    }

    fn spawn_worker(&self, prio: bool) {
        let pool = self.clone();
        tokio::spawn(async move { pool.worker(prio).await });
    }

    /// Takes the next job this worker may run, or says it must exit.
    fn next_job(s: &mut State, prio: bool) -> Result<Option<Job>, ()> {
        if prio {
            if s.n_prio > s.prio_target {
                s.n_prio -= 1;
                return Err(());
            }
            if s.high_jobs == 0 {
                return Ok(None);
            }
            let idx = s.jobs.iter().position(|(p, _)| *p == Priority::High);
            Ok(idx.and_then(|i| s.jobs.remove(i)).map(|(_, j)| {
                s.high_jobs -= 1;
                j
            }))
        } else {
            if s.n_workers > s.max {
                s.n_workers -= 1;
                return Err(());
            }
            Ok(s.jobs.pop_front().map(|(p, j)| {
                if p == Priority::High {
                    s.high_jobs -= 1;
                }
                j
            }))
        }
    }

    async fn worker(self, prio: bool) {
        let notify = if prio {
            &self.inner.prio_work
        } else {
            &self.inner.work
        };
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let job = {
                let mut s = self.lock();
                match Self::next_job(&mut s, prio) {
                    Err(()) => return,
                    Ok(Some(job)) => Some(job),
                    Ok(None) => {
                        if prio {
                            s.free_prio += 1;
                        } else {
                            s.free_workers += 1;
                        }
                        None
                    }
                }
            };
            match job {
                Some(job) => job.await,
                None => {
                    notified.await;
                    let mut s = self.lock();
                    if prio {
                        s.free_prio -= 1;
                    } else {
                        s.free_workers -= 1;
                    }
                }
            }
        }
    }
}

/// A free worker's turn, taken by [`WorkerPool::borrow_free_worker`].
#[derive(Debug)]
pub struct BorrowedWorker<'a> {
    pool: &'a WorkerPool,
}

impl Drop for BorrowedWorker<'_> {
    fn drop(&mut self) {
        self.pool.lock().borrowed -= 1;
    }
}

fn check(min: usize, max: usize) -> Result<(), PoolError> {
    if max == 0 {
        return Err(PoolError::ZeroMax);
    }
    if min > max {
        return Err(PoolError::MinAboveMax { min, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use std::time::Duration;
    use tokio::sync::oneshot;

    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_min_and_prio_workers() {
        let p = WorkerPool::new("t", 3, 10, 2).unwrap();
        settle().await;
        let s = p.stats();
        assert_eq!((s.n_workers, s.free_workers, s.prio_workers), (3, 3, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grows_to_max_and_queues_beyond() {
        let p = WorkerPool::new("t", 1, 3, 0).unwrap();
        let mut gates = Vec::new();
        for _ in 0..5 {
            let (tx, rx) = oneshot::channel::<()>();
            gates.push(tx);
            p.submit(Priority::Normal, async move {
                let _ = rx.await;
            });
        }
        settle().await;
        let s = p.stats();
        assert_eq!((s.n_workers, s.free_workers, s.job_queue_depth), (3, 0, 2));
        drop(gates);
        settle().await;
        let s = p.stats();
        assert_eq!((s.free_workers, s.job_queue_depth), (3, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn priority_worker_runs_high_job_when_normal_are_stuck() {
        let p = WorkerPool::new("t", 1, 1, 1).unwrap();
        let (_block_tx, block_rx) = oneshot::channel::<()>();
        p.submit(Priority::Normal, async move {
            let _ = block_rx.await;
        });
        let (done_tx, done_rx) = oneshot::channel();
        p.submit(Priority::High, async move {
            let _ = done_tx.send(());
        });
        tokio::time::timeout(Duration::from_secs(5), done_rx)
            .await
            .unwrap()
            .unwrap();
        // A normal job, by contrast, waits behind the stuck worker.
        let (n_tx, n_rx) = oneshot::channel();
        p.submit(Priority::Normal, async move {
            let _ = n_tx.send(());
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(200), n_rx)
                .await
                .is_err()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resizes_live() {
        let p = WorkerPool::new("t", 5, 20, 5).unwrap();
        settle().await;
        p.set_limits(Some(2), Some(3), Some(1)).unwrap();
        settle().await;
        let s = p.stats();
        assert_eq!(
            (s.min_workers, s.max_workers, s.n_workers, s.prio_workers),
            (2, 3, 3, 1)
        );
        p.set_limits(Some(6), Some(8), None).unwrap();
        settle().await;
        assert_eq!(p.stats().n_workers, 6);
        assert_eq!(
            p.set_limits(Some(9), None, None),
            Err(PoolError::MinAboveMax { min: 9, max: 8 })
        );
        assert_eq!(p.set_limits(None, Some(0), None), Err(PoolError::ZeroMax));
        assert_eq!(p.stats().n_workers, 6, "a refused change changes nothing");
    }
}
