//! A server: a named set of clients sharing a worker pool, client limits and
//! keepalive settings, serving one program (libvirt's `virNetServer`).
//! Every daemon has two: one named after the daemon (REMOTE program, on the
//! read-write and read-only sockets) and `admin` (ADMIN program).

use crate::client::Client;
use crate::config::ServerSettings;
use crate::dispatch::ProgramHandler;
use crate::pool::{PoolError, WorkerPool};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;
use tokio::sync::Notify;

/// Client limits (`max_clients`, `max_anonymous_clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    pub max_clients: usize,
    pub max_unauth: usize,
}

/// Per-client settings read when a client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    pub max_client_requests: usize,
    /// Seconds of silence before a PING; <= 0 disables keepalive.
    pub keepalive_interval: i32,
    pub keepalive_count: u32,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LimitError {
    #[error(
        "The overall maximum number of clients ({max}) must not be less than the number of \
         clients waiting for authentication ({unauth})"
    )]
    UnauthAboveMax { max: usize, unauth: usize },
    #[error("The maximum number of clients must be at least 1")]
    ZeroMax,
}

pub struct Server {
    pub name: String,
    pub pool: WorkerPool,
    /// The programs this server serves (libvirt's servers may serve several).
    pub programs: Vec<Arc<dyn ProgramHandler>>,
    limits: Mutex<ClientLimits>,
    settings: Mutex<ClientSettings>,
    clients: Mutex<BTreeMap<u64, Arc<Client>>>,
    next_client_id: AtomicU64,
    /// Signalled when a client leaves or the limits change.
    room: Notify,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("pool", &self.pool)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    /// Creates a server and starts its worker pool (needs a tokio runtime).
    pub fn new(
        name: &str,
        s: &ServerSettings,
        programs: Vec<Arc<dyn ProgramHandler>>,
    ) -> Result<Arc<Server>, PoolError> {
        let pool = WorkerPool::new(name, s.min_workers, s.max_workers, s.prio_workers)?;
        Ok(Arc::new(Server {
            name: name.to_owned(),
            pool,
            programs,
            limits: Mutex::new(ClientLimits {
                max_clients: s.max_clients,
                max_unauth: s.max_anonymous_clients,
            }),
            settings: Mutex::new(client_settings(s)),
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            room: Notify::new(),
        }))
    }

    /// Applies reloaded settings: pool sizes, limits, per-client settings
    /// (the latter for clients that connect from now on).
    pub fn apply(&self, s: &ServerSettings) -> Result<(), PoolError> {
        self.pool
            .set_limits(Some(s.min_workers), Some(s.max_workers), Some(s.prio_workers))?;
        *lock(&self.limits) = ClientLimits {
            max_clients: s.max_clients,
            max_unauth: s.max_anonymous_clients,
        };
        *lock(&self.settings) = client_settings(s);
        self.room.notify_waiters();
        Ok(())
    }

    /// The handler of program `prog`, if this server serves it.
    pub fn program(&self, prog: u32) -> Option<&Arc<dyn ProgramHandler>> {
        self.programs.iter().find(|p| p.program().id == prog)
    }

    pub fn limits(&self) -> ClientLimits {
        *lock(&self.limits)
    }

    pub fn set_limits(
        &self,
        max_clients: Option<usize>,
        max_unauth: Option<usize>,
    ) -> Result<(), LimitError> {
        let mut l = lock(&self.limits);
        let new = ClientLimits {
            max_clients: max_clients.unwrap_or(l.max_clients),
            max_unauth: max_unauth.unwrap_or(l.max_unauth),
        };
        if new.max_clients == 0 {
            return Err(LimitError::ZeroMax);
        }
        if new.max_unauth > new.max_clients {
            return Err(LimitError::UnauthAboveMax {
                max: new.max_clients,
                unauth: new.max_unauth,
            });
        }
        *l = new;
        drop(l);
        self.room.notify_waiters();
        Ok(())
    }

    pub fn client_settings(&self) -> ClientSettings {
        *lock(&self.settings)
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a client unless the server is full; returns the count it
    /// had when full.
    pub fn add_client(&self, client: Arc<Client>) -> Result<(), usize> {
        let max = self.limits().max_clients;
        let mut c = lock(&self.clients);
        if c.len() >= max {
            return Err(c.len());
        }
        c.insert(client.id, client);
        Ok(())
    }

    pub fn remove_client(&self, id: u64) {
        lock(&self.clients).remove(&id);
        self.room.notify_waiters();
    }

    /// True when `max_clients` clients are connected.
    pub fn is_full(&self) -> bool {
        self.nclients() >= self.limits().max_clients
    }

    /// Waits until the server has room for another client (libvirt stops
    /// accepting while full: new clients wait in the socket's backlog).
    pub async fn wait_for_room(&self) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if !self.is_full() {
                return;
            }
            room.await;
        }
    }

    pub fn clients(&self) -> Vec<Arc<Client>> {
        lock(&self.clients).values().cloned().collect()
    }

    pub fn client(&self, id: u64) -> Option<Arc<Client>> {
        lock(&self.clients).get(&id).cloned()
    }

    pub fn nclients(&self) -> usize {
        lock(&self.clients).len()
    }
}

fn client_settings(s: &ServerSettings) -> ClientSettings {
    ClientSettings {
        max_client_requests: s.max_client_requests.max(1),
        keepalive_interval: s.keepalive_interval,
        keepalive_count: s.keepalive_count,
    }
}
