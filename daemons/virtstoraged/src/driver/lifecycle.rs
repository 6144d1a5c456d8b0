//! Starting, refreshing and probing, the slow parts of the driver: they
//! list directories and run `qemu-img`, so they run without the registry
//! lock. The pool is marked busy instead ([`StartGuard`]: starting;
//! [`JobGuard`]: an asynchronous job), which keeps it from being
//! destroyed, deleted or undefined meanwhile, as libvirt does; the guards
//! clear the mark whatever happens.
//!
//! Asked to (`announce`: calls are, start-up is not), a start sends the
//! `Started` event and a refresh the refresh event, or `Stopped` when the
//! pool stopped; under the registry lock, where the pool changes, so that
//! events of one pool go out in the order of its changes.

use super::pools::{Pool, Vol, internal, system_error};
use super::{Core, backend, qemu_img};
use crate::conf::{PoolDef, VolDef};
use modvirt_runtime::observe::inflight::CallRecord;
use modvirt_wire::storage::event;
use modvirt_wire::{ErrorDomain, RpcError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Marks a pool as starting; when dropped, clears the mark, and a pool
/// that did not become active goes back to its inactive definition (a
/// transient one goes away).
#[derive(Debug)]
pub struct StartGuard {
    core: Arc<Core>,
    uuid: [u8; 16],
}

impl StartGuard {
    /// The caller has checked the pool is idle; this marks it.
    pub fn mark(core: &Arc<Core>, pool: &mut Pool) -> Self {
        pool.starting = true;
        Self {
            core: core.clone(),
            uuid: pool.def.uuid,
        }
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        let mut pools = self.core.pools();
        let Some(pool) = pools.by_uuid_mut(&self.uuid) else {
            return;
        };
        pool.starting = false;
        if !pool.active && !pool.became_inactive() {
            pools.remove(&self.uuid);
        }
    }
}

/// Counts an asynchronous job on a pool while it lives.
#[derive(Debug)]
pub struct JobGuard {
    core: Arc<Core>,
    uuid: [u8; 16],
}

impl JobGuard {
    pub fn mark(core: &Arc<Core>, pool: &mut Pool) -> Self {
        pool.jobs += 1;
        Self {
            core: core.clone(),
            uuid: pool.def.uuid,
        }
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if let Some(pool) = self.core.pools().by_uuid_mut(&self.uuid) {
            pool.jobs = pool.jobs.saturating_sub(1);
        }
    }
}

fn join_error(e: &tokio::task::JoinError) -> RpcError {
    internal(format!("storage backend task failed: {e}"))
}

/// Runs blocking backend work on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, backend::BackendError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| join_error(&e))?
        .map_err(|e| e.to_rpc())
}

/// What a refresh found, ready to install in the pool.
#[derive(Debug)]
pub struct Refreshed {
    pub vols: Vec<Vol>,
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
    pub perms: crate::conf::Perms,
}

impl Refreshed {
    /// Replaces the pool's volumes and sizes; volumes being created
    /// meanwhile stay as they are.
    pub fn install(self, pool: &mut Pool) {
        let building: Vec<Vol> = pool.vols.drain(..).filter(|v| v.building).collect();
        pool.vols = self.vols;
        pool.vols
            .retain(|v| !building.iter().any(|b| b.def.name == v.def.name));
        pool.vols.extend(building);
        pool.def.capacity = self.capacity;
        pool.def.allocation = self.allocation;
        pool.def.available = self.available;
        pool.def.perms = self.perms;
    }
}

/// Lists the pool's directory as volumes and measures it
/// (`refreshPool`); qcow2 images are measured with `qemu-img info`.
pub async fn scan_pool(def: &PoolDef, call: Option<&Arc<CallRecord>>) -> Result<Refreshed, RpcError> {
    let target = PathBuf::from(&def.target_path);
    let scan = blocking(move || backend::scan(&target)).await?;
    let mut vols = Vec::with_capacity(scan.entries.len());
    for (name, path, facts) in scan.entries {
        let mut vol = facts.to_vol_def(&name, &path);
        if facts.qcow2 {
            measure_qcow2(&mut vol, &path, call).await;
        }
        vols.push(Vol {
            def: vol,
            building: false,
        });
    }
    Ok(Refreshed {
        vols,
        capacity: scan.capacity,
        allocation: scan.allocation,
        available: scan.available,
        perms: scan.perms,
    })
}

/// Fills a qcow2 volume's virtual size and details; an image `qemu-img`
/// cannot read keeps its file size (and a warning in the log).
async fn measure_qcow2(vol: &mut VolDef, path: &Path, call: Option<&Arc<CallRecord>>) {
    match qemu_img::info(path, call).await {
        Ok(info) => info.apply(vol),
        Err(qemu_img::QemuImgError::Missing) => tracing::warn!(
            target: "storage",
            "qemu-img is not installed: qcow2 image '{}' shows its file size as capacity",
            path.display()
        ),
        Err(e) => tracing::warn!(target: "storage", "cannot read qcow2 image '{}': {e}", path.display()),
    }
}

/// A volume's current facts (`refreshVol`), from the file at `path`.
pub async fn probe_volume(
    name: &str,
    path: &Path,
    call: Option<&Arc<CallRecord>>,
) -> Result<VolDef, RpcError> {
    let facts = backend::probe(path).map_err(|e| e.to_rpc())?.ok_or_else(|| {
        system_error(
            ErrorDomain::STORAGE,
            &format!("cannot stat file '{}'", path.display()),
            &std::io::Error::from_raw_os_error(nix::errno::Errno::ENOENT as i32),
        )
    })?;
    let mut vol = facts.to_vol_def(name, path);
    if facts.qcow2 {
        measure_qcow2(&mut vol, path, call).await;
    }
    Ok(vol)
}

/// Starts a pool the caller marked as starting (`guard`): builds it when
/// asked, writes its status file, lists its volumes, and marks it active;
/// then sends `Started` if `announce`.
pub async fn start(
    core: &Arc<Core>,
    guard: StartGuard,
    build: bool,
    call: Option<&Arc<CallRecord>>,
    announce: bool,
) -> Result<(), RpcError> {
    let def = core
        .pools()
        .by_uuid(&guard.uuid)
        .map(|p| p.def.clone())
        .ok_or_else(|| internal("storage pool vanished while starting"))?;
    if build {
        let to_build = def.clone();
        blocking(move || backend::build_pool(&to_build)).await?;
    }
    let status = core.store.status_path(&def.name);
    core.store
        .save_status(&def.name, &def.to_state_xml())
        .map_err(|e| {
            system_error(
                ErrorDomain::STORAGE,
                &format!("cannot write storage pool status '{}'", status.display()),
                &e,
            )
        })?;
    let refreshed = match scan_pool(&def, call).await {
        Ok(r) => r,
        Err(e) => {
            let _ = core.store.delete_status(&def.name);
            return Err(e);
        }
    };
    let mut pools = core.pools();
    let pool = pools
        .by_uuid_mut(&guard.uuid)
        .ok_or_else(|| internal("storage pool vanished while starting"))?;
    refreshed.install(pool);
    pool.active = true;
    if announce {
        core.events.lifecycle(&pool.wire(), event::STARTED);
    }
    tracing::info!(target: "storage", "storage pool '{}' started", def.name);
    drop(pools);
    drop(guard);
    Ok(())
}

/// Refreshes an active pool the caller marked with a job; a pool whose
/// directory cannot be listed any more stops (libvirt's
/// `storagePoolRefresh`). If `announce`, sends the refresh event, or
/// `Stopped` when the pool stopped.
pub async fn refresh(
    core: &Arc<Core>,
    job: JobGuard,
    call: Option<&Arc<CallRecord>>,
    announce: bool,
) -> Result<(), RpcError> {
    let def = core
        .pools()
        .by_uuid(&job.uuid)
        .map(|p| p.def.clone())
        .ok_or_else(|| internal("storage pool vanished while refreshing"))?;
    let found = scan_pool(&def, call).await;
    let mut pools = core.pools();
    let Some(pool) = pools.by_uuid_mut(&job.uuid) else {
        return Err(internal("storage pool vanished while refreshing"));
    };
    match found {
        Ok(r) => {
            r.install(pool);
            if announce {
                core.events.refreshed(&pool.wire());
            }
            Ok(())
        }
        Err(e) => {
            let _ = core.store.delete_status(&def.name);
            if announce {
                core.events.lifecycle(&pool.wire(), event::STOPPED);
            }
            if !pool.became_inactive() {
                pools.remove(&def.uuid);
            }
            tracing::warn!(target: "storage", "storage pool '{}' stopped: its refresh failed: {}", def.name, e.text());
            Err(e)
        }
    }
}

/// At start-up: refreshes every pool that was active; returns (pools
/// refreshed, volumes found). A pool that cannot be refreshed stops.
pub async fn refresh_all(core: &Arc<Core>) -> (usize, usize) {
    let jobs: Vec<JobGuard> = core
        .pools()
        .iter_mut()
        .filter(|p| p.active)
        .map(|p| JobGuard::mark(core, p))
        .collect();
    let mut refreshed = 0;
    for job in jobs {
        match refresh(core, job, None, false).await {
            Ok(()) => refreshed += 1,
            Err(e) => tracing::warn!(target: "storage", "{}", e.text()),
        }
    }
    let volumes = core
        .pools()
        .iter()
        .filter(|p| p.active)
        .map(|p| p.vols.len())
        .sum();
    (refreshed, volumes)
}

/// At start-up: starts every autostarted pool that is not active; returns
/// how many started.
pub async fn autostart(core: &Arc<Core>) -> usize {
    let guards: Vec<(String, StartGuard)> = core
        .pools()
        .iter_mut()
        .filter(|p| p.autostart && !p.active && !p.starting)
        .map(|p| (p.def.name.clone(), StartGuard::mark(core, p)))
        .collect();
    let mut started = 0;
    for (name, guard) in guards {
        match start(core, guard, false, None, false).await {
            Ok(()) => started += 1,
            Err(e) => {
                tracing::warn!(target: "storage", "Failed to autostart storage pool '{name}': {}", e.text());
            }
        }
    }
    started
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::conf::{Perms, VolDef};

    fn vol(name: &str, building: bool) -> Vol {
        let xml = format!(
            "<volume><name>{name}</name><capacity>{}</capacity></volume>",
            name.len()
        );
        Vol {
            def: VolDef::parse(&xml).unwrap(),
            building,
        }
    }

    #[test]
    fn a_refresh_keeps_volumes_being_created() {
        let def = PoolDef::parse(
            "<pool type='dir'><name>p</name><target><path>/p</path></target></pool>",
            &mut || 3u64,
        )
        .unwrap();
        let mut pool = Pool::new(def, true);
        pool.vols = vec![vol("old", false), vol("new.qcow2", true)];
        Refreshed {
            // The half-made image is on disk already; the listing sees it.
            vols: vec![vol("new.qcow2", false), vol("other", false)],
            capacity: 10,
            allocation: 4,
            available: 6,
            perms: Perms {
                mode: Some(0o711),
                ..Perms::default()
            },
        }
        .install(&mut pool);
        let names: Vec<(&str, bool)> = pool
            .vols
            .iter()
            .map(|v| (v.def.name.as_str(), v.building))
            .collect();
        assert_eq!(names, [("other", false), ("new.qcow2", true)]);
        assert_eq!(
            (pool.def.capacity, pool.def.allocation, pool.def.available),
            (10, 4, 6)
        );
        assert_eq!(pool.def.perms.mode, Some(0o711));
    }
}
