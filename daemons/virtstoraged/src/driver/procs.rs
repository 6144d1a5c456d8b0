//! The REMOTE storage procedures, routed by number: the pool procedures
//! here, the volume ones in [`super::vol_procs`]. Anything not routed
//! answers `VIR_ERR_NO_SUPPORT`. Procedures that list directories or run
//! `qemu-img` are async and leave the registry lock while they do.
//!
//! Changes of a pool send libvirt's lifecycle events ([`super::events`]),
//! as its storage driver does: `Defined` on every define (new or
//! replacing), `Undefined`, `Started` on start and create (also with a
//! build: no `Created` then), `Stopped` on destroy (a transient pool then
//! goes without an `Undefined`) and when a refresh finds the pool gone,
//! `Created` on build, `Deleted` on delete; a `pool-refresh` that
//! succeeds sends the refresh event. Start-up (reloading, refreshing and
//! autostarting pools) sends none: nobody can have registered yet.

use super::lifecycle::{self, JobGuard, StartGuard};
use super::pools::{Pool, internal, invalid, invalid_arg, pool_not_found, system_error};
use super::{Core, backend, events, vol_procs};
use crate::conf::{PoolDef, StorageXmlError, format_uuid, sanitize_path, validate_pool_name};
use modvirt_runtime::dispatch::{CallContext, CallFuture, CallResult, check_flags, decode_args, encode_ret};
use modvirt_runtime::observe::inflight::CallRecord;
use modvirt_wire::storage::*;
use modvirt_wire::{ErrorCode, ErrorDomain, Procedure, RpcError};
use std::sync::Arc;

/// One call: the driver, the encoded arguments, the procedure and its
/// in-flight record (to mark what it waits on).
#[derive(Debug)]
pub struct Call {
    pub core: Arc<Core>,
    pub args: Vec<u8>,
    pub proc_: &'static Procedure,
    pub record: Arc<CallRecord>,
}

type SyncHandler = fn(&Call) -> CallResult;

/// Routes a call; `None` for procedures this driver does not implement.
pub fn dispatch(core: Arc<Core>, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
    // Event callbacks belong to the calling client.
    if matches!(ctx.procedure.number, 368 | 369) {
        let (client, number, payload) = (ctx.client.clone(), ctx.procedure.number, payload.to_vec());
        return Some(Box::pin(async move {
            if number == 368 {
                events::register(&core, &client, &payload)
            } else {
                events::deregister(&core, &client, &payload)
            }
        }));
    }
    let call = Call {
        core,
        args: payload.to_vec(),
        proc_: ctx.procedure,
        record: ctx.call.clone(),
    };
    let handler: SyncHandler = match ctx.procedure.number {
        71 => num_active,
        72 => list_active,
        73 => num_defined,
        74 => list_defined,
        76 => return Some(Box::pin(create_xml(call))),
        77 => define_xml,
        78 => return Some(Box::pin(create(call))),
        79 => return Some(Box::pin(build(call))),
        80 => destroy,
        81 => delete,
        82 => undefine,
        83 => return Some(Box::pin(refresh(call))),
        84 => lookup_by_name,
        85 => lookup_by_uuid,
        86 => lookup_by_volume,
        87 => get_info,
        88 => get_xml_desc,
        89 => get_autostart,
        90 => set_autostart,
        91 => num_of_volumes,
        92 => list_volumes,
        93 => return Some(Box::pin(vol_procs::create_xml(call))),
        94 => vol_procs::delete,
        95 => vol_procs::lookup_by_name,
        96 => vol_procs::lookup_by_key,
        97 => vol_procs::lookup_by_path,
        98 | 378 => return Some(Box::pin(vol_procs::get_info(call))),
        99 => return Some(Box::pin(vol_procs::get_xml_desc(call))),
        100 => vol_procs::get_path,
        154 => is_active,
        155 => is_persistent,
        281 => list_all,
        282 => list_all_volumes,
        391 => lookup_by_target_path,
        _ => return None,
    };
    Some(Box::pin(async move { handler(&call) }))
}

pub(super) fn int(v: bool) -> i32 {
    i32::from(v)
}

/// A pool or volume XML refusal on the wire, unchanged.
pub(super) fn xml_error(e: &StorageXmlError) -> RpcError {
    RpcError::plain(ErrorCode(e.code()), ErrorDomain(e.domain()), e.message())
}

fn ret_pool(pool: &Pool) -> CallResult {
    encode_ret(&PoolRet { pool: pool.wire() })
}

/// `VIR_EXCLUSIVE_FLAGS_RET` for the build flags.
fn check_build_flags(flags: u32, p: &Procedure) -> Result<(), RpcError> {
    check_flags(flags, build::OVERWRITE | build::NO_OVERWRITE, p)?;
    if flags & build::OVERWRITE != 0 && flags & build::NO_OVERWRITE != 0 {
        return Err(invalid_arg(
            "Flags 'VIR_STORAGE_POOL_BUILD_OVERWRITE' and 'VIR_STORAGE_POOL_BUILD_NO_OVERWRITE' are mutually exclusive",
        ));
    }
    Ok(())
}

fn count(call: &Call, active: bool) -> CallResult {
    let n = call.core.pools().iter().filter(|p| p.active == active).count();
    encode_ret(&NumRet {
        num: i32::try_from(n).unwrap_or(i32::MAX),
    })
}

fn num_active(call: &Call) -> CallResult {
    count(call, true)
}

fn num_defined(call: &Call) -> CallResult {
    count(call, false)
}

fn names(call: &Call, active: bool) -> CallResult {
    let a: ConnectListStoragePoolsArgs = decode_args(&call.args)?;
    let max = usize::try_from(a.maxnames)
        .unwrap_or(0)
        .min(STORAGE_POOL_LIST_MAX as usize);
    let names = call
        .core
        .pools()
        .iter()
        .filter(|p| p.active == active)
        .map(|p| p.def.name.clone())
        .take(max)
        .collect();
    encode_ret(&ConnectListStoragePoolsRet { names })
}

fn list_active(call: &Call) -> CallResult {
    names(call, true)
}

fn list_defined(call: &Call) -> CallResult {
    names(call, false)
}

fn list_all(call: &Call) -> CallResult {
    let a: ConnectListAllStoragePoolsArgs = decode_args(&call.args)?;
    check_flags(a.flags, list::ALL, call.proc_)?;
    let f = a.flags;
    let pick =
        |want: u32, not: u32, v: bool| f & (want | not) == 0 || (f & want != 0 && v) || (f & not != 0 && !v);
    // Every pool here is a `dir` pool.
    let type_ok = f & list::TYPES == 0 || f & list::DIR != 0;
    let found: Vec<_> = call
        .core
        .pools()
        .iter()
        .filter(|_| type_ok)
        .filter(|p| pick(list::ACTIVE, list::INACTIVE, p.active))
        .filter(|p| pick(list::PERSISTENT, list::TRANSIENT, p.persistent))
        .filter(|p| pick(list::AUTOSTART, list::NO_AUTOSTART, p.autostart))
        .map(Pool::wire)
        .collect();
    let ret = u32::try_from(found.len()).unwrap_or(u32::MAX);
    encode_ret(&ConnectListAllStoragePoolsRet {
        pools: if a.need_results != 0 { found } else { Vec::new() },
        ret,
    })
}

fn lookup_by_name(call: &Call) -> CallResult {
    let a: PoolLookupByNameArgs = decode_args(&call.args)?;
    ret_pool(call.core.pools().named(&a.name)?)
}

fn lookup_by_uuid(call: &Call) -> CallResult {
    let a: PoolLookupByUuidArgs = decode_args(&call.args)?;
    let pools = call.core.pools();
    let pool = pools.by_uuid(&a.uuid.0).ok_or_else(|| {
        pool_not_found(format!(
            "no storage pool with matching uuid '{}'",
            format_uuid(&a.uuid.0)
        ))
    })?;
    ret_pool(pool)
}

fn lookup_by_volume(call: &Call) -> CallResult {
    let a: PoolLookupByVolumeArgs = decode_args(&call.args)?;
    ret_pool(call.core.pools().named(&a.vol.pool)?)
}

fn lookup_by_target_path(call: &Call) -> CallResult {
    let a: PoolLookupByNameArgs = decode_args(&call.args)?;
    let clean = sanitize_path(&a.name);
    let pools = call.core.pools();
    let pool = pools
        .iter()
        .find(|p| p.active && p.def.target_path == clean)
        .ok_or_else(|| {
            if clean == a.name {
                pool_not_found(format!("no storage pool with matching target path '{}'", a.name))
            } else {
                pool_not_found(format!(
                    "no storage pool with matching target path '{}' ({clean})",
                    a.name
                ))
            }
        })?;
    ret_pool(pool)
}

/// Parses a pool XML as define and create take it.
fn parse(call: &Call, xml: &str) -> Result<PoolDef, RpcError> {
    PoolDef::parse(xml, &mut call.core.rng()).map_err(|e| xml_error(&e))
}

fn define_xml(call: &Call) -> CallResult {
    let a: PoolXmlArgs = decode_args(&call.args)?;
    check_flags(a.flags, DEFINE_VALIDATE, call.proc_)?;
    let def = parse(call, &a.xml)?;
    validate_pool_name(&def.name).map_err(|e| xml_error(&e))?;
    let mut pools = call.core.pools();
    let known = pools.check_duplicate(&def, false)?;
    let store = &call.core.store;
    store.save_config(&def.name, &def.to_xml()).map_err(|e| {
        system_error(
            ErrorDomain::STORAGE,
            &format!(
                "cannot write storage pool config '{}'",
                store.config_path(&def.name).display()
            ),
            &e,
        )
    })?;
    tracing::info!(target: "storage", "defined storage pool '{}'", def.name);
    let uuid = def.uuid;
    match pools.by_uuid_mut(&uuid).filter(|_| known) {
        Some(pool) if pool.active || pool.starting => {
            pool.new_def = Some(def);
            pool.persistent = true;
        }
        Some(pool) => {
            pool.def = def;
            pool.persistent = true;
        }
        None => pools.insert(Pool::new(def, true)),
    }
    let pool = pools
        .by_uuid(&uuid)
        .ok_or_else(|| internal("storage pool vanished while defining"))?;
    call.core.events.lifecycle(&pool.wire(), event::DEFINED);
    ret_pool(pool)
}

/// `pool-create`: a transient pool started from XML (or a defined,
/// inactive one started with this definition).
async fn create_xml(call: Call) -> CallResult {
    let a: PoolXmlArgs = decode_args(&call.args)?;
    check_flags(
        a.flags,
        create::WITH_BUILD | create::WITH_BUILD_OVERWRITE | create::WITH_BUILD_NO_OVERWRITE,
        call.proc_,
    )?;
    let def = parse(&call, &a.xml)?;
    let (guard, wire) = {
        let mut pools = call.core.pools();
        let uuid = def.uuid;
        if pools.check_duplicate(&def, true)? {
            let pool = pools
                .by_uuid_mut(&uuid)
                .ok_or_else(|| internal("storage pool vanished while creating"))?;
            let old = std::mem::replace(&mut pool.def, def);
            pool.new_def.get_or_insert(old);
        } else {
            pools.insert(Pool::new(def, false));
        }
        let pool = pools
            .by_uuid_mut(&uuid)
            .ok_or_else(|| internal("storage pool vanished while creating"))?;
        (StartGuard::mark(&call.core, pool), pool.wire())
    };
    lifecycle::start(&call.core, guard, a.flags != 0, Some(&call.record), true).await?;
    encode_ret(&PoolRet { pool: wire })
}

/// `pool-start`.
async fn create(call: Call) -> CallResult {
    let a: PoolFlagsArgs = decode_args(&call.args)?;
    check_flags(
        a.flags,
        create::WITH_BUILD | create::WITH_BUILD_OVERWRITE | create::WITH_BUILD_NO_OVERWRITE,
        call.proc_,
    )?;
    let guard = {
        let mut pools = call.core.pools();
        let pool = pools.get_mut(&a.pool)?;
        if pool.active {
            return Err(invalid(format!(
                "storage pool '{}' is already active",
                pool.name()
            )));
        }
        if pool.starting {
            return Err(invalid(format!("storage pool '{}' is starting up", pool.name())));
        }
        StartGuard::mark(&call.core, pool)
    };
    lifecycle::start(&call.core, guard, a.flags != 0, Some(&call.record), true).await?;
    encode_ret(&())
}

/// `pool-build`: makes the pool's directory.
async fn build(call: Call) -> CallResult {
    let a: PoolFlagsArgs = decode_args(&call.args)?;
    let (guard, def, wire) = {
        let mut pools = call.core.pools();
        let pool = pools.get_mut(&a.pool)?;
        if pool.active {
            return Err(invalid(format!(
                "storage pool '{}' is already active",
                pool.name()
            )));
        }
        if pool.starting {
            return Err(invalid(format!("storage pool '{}' is starting up", pool.name())));
        }
        check_build_flags(a.flags, call.proc_)?;
        (StartGuard::mark(&call.core, pool), pool.def.clone(), pool.wire())
    };
    let built = lifecycle::blocking(move || backend::build_pool(&def)).await;
    if built.is_ok() {
        // Sent while the pool is still marked as starting: no start,
        // destroy or undefine of it can come in between.
        call.core.events.lifecycle(&wire, event::CREATED);
    }
    drop(guard);
    built?;
    encode_ret(&())
}

/// `pool-destroy`: the pool stops being active; its files stay.
fn destroy(call: &Call) -> CallResult {
    let a: PoolArgs = decode_args(&call.args)?;
    let mut pools = call.core.pools();
    let pool = pools.get_mut(&a.pool)?;
    if !pool.active {
        return Err(invalid(format!("storage pool '{}' is not active", pool.name())));
    }
    pool.check_idle()?;
    let (name, uuid, wire) = (pool.def.name.clone(), pool.def.uuid, pool.wire());
    let _ = call.core.store.delete_status(&name);
    call.core.events.lifecycle(&wire, event::STOPPED);
    if !pool.became_inactive() {
        pools.remove(&uuid);
    }
    tracing::info!(target: "storage", "storage pool '{name}' destroyed");
    encode_ret(&())
}

/// `pool-delete`: removes the (empty) directory of an inactive pool.
fn delete(call: &Call) -> CallResult {
    let a: PoolFlagsArgs = decode_args(&call.args)?;
    let pools = call.core.pools();
    let pool = pools.get(&a.pool)?;
    if pool.active {
        return Err(invalid(format!("storage pool '{}' is still active", pool.name())));
    }
    pool.check_idle()?;
    check_flags(a.flags, 0, call.proc_)?;
    let _ = call.core.store.delete_status(pool.name());
    backend::delete_pool(&pool.def).map_err(|e| e.to_rpc())?;
    call.core.events.lifecycle(&pool.wire(), event::DELETED);
    tracing::info!(target: "storage", "storage pool '{}' deleted", pool.name());
    encode_ret(&())
}

fn undefine(call: &Call) -> CallResult {
    let a: PoolArgs = decode_args(&call.args)?;
    let mut pools = call.core.pools();
    let pool = pools.get(&a.pool)?;
    if pool.active {
        return Err(invalid(format!("storage pool '{}' is still active", pool.name())));
    }
    pool.check_idle()?;
    let (name, uuid, wire) = (pool.def.name.clone(), pool.def.uuid, pool.wire());
    call.core.store.delete_config(&name).map_err(|e| {
        system_error(
            ErrorDomain::STORAGE,
            &format!("cannot remove config for {name}"),
            &e,
        )
    })?;
    call.core.events.lifecycle(&wire, event::UNDEFINED);
    pools.remove(&uuid);
    tracing::info!(target: "storage", "undefined storage pool '{name}'");
    encode_ret(&())
}

/// `pool-refresh`: lists the directory again.
async fn refresh(call: Call) -> CallResult {
    let a: PoolFlagsArgs = decode_args(&call.args)?;
    check_flags(a.flags, 0, call.proc_)?;
    let job = {
        let mut pools = call.core.pools();
        let pool = pools.get_mut(&a.pool)?;
        pool.require_active()?;
        pool.check_idle()?;
        JobGuard::mark(&call.core, pool)
    };
    lifecycle::refresh(&call.core, job, Some(&call.record), true).await?;
    encode_ret(&())
}

fn get_info(call: &Call) -> CallResult {
    let a: PoolArgs = decode_args(&call.args)?;
    let pools = call.core.pools();
    let pool = pools.get(&a.pool)?;
    encode_ret(&PoolGetInfoRet {
        state: if pool.active {
            pool_state::RUNNING
        } else {
            pool_state::INACTIVE
        },
        capacity: pool.def.capacity,
        allocation: pool.def.allocation,
        available: pool.def.available,
    })
}

fn get_xml_desc(call: &Call) -> CallResult {
    let a: PoolFlagsArgs = decode_args(&call.args)?;
    check_flags(a.flags, XML_INACTIVE, call.proc_)?;
    let pools = call.core.pools();
    let pool = pools.get(&a.pool)?;
    encode_ret(&XmlRet {
        xml: pool.shown(a.flags & XML_INACTIVE != 0).to_xml(),
    })
}

fn get_autostart(call: &Call) -> CallResult {
    let a: PoolArgs = decode_args(&call.args)?;
    encode_ret(&PoolGetAutostartRet {
        autostart: int(call.core.pools().get(&a.pool)?.autostart),
    })
}

fn set_autostart(call: &Call) -> CallResult {
    let a: PoolSetAutostartArgs = decode_args(&call.args)?;
    let mut pools = call.core.pools();
    let pool = pools.get_mut(&a.pool)?;
    if !pool.persistent {
        return Err(internal("pool has no config file"));
    }
    let on = a.autostart != 0;
    if pool.autostart != on {
        let store = &call.core.store;
        let (link, config) = (store.autostart_path(pool.name()), store.config_path(pool.name()));
        store.set_autostart(pool.name(), on).map_err(|e| {
            let what = if on {
                format!(
                    "Failed to create symlink '{}' to '{}'",
                    link.display(),
                    config.display()
                )
            } else {
                format!("Failed to delete symlink '{}'", link.display())
            };
            system_error(ErrorDomain::STORAGE, &what, &e)
        })?;
        pool.autostart = on;
    }
    encode_ret(&())
}

fn num_of_volumes(call: &Call) -> CallResult {
    let a: PoolArgs = decode_args(&call.args)?;
    let pools = call.core.pools();
    let pool = pools.get(&a.pool)?;
    pool.require_active()?;
    encode_ret(&NumRet {
        num: i32::try_from(pool.vols.len()).unwrap_or(i32::MAX),
    })
}

fn list_volumes(call: &Call) -> CallResult {
    let a: PoolListVolumesArgs = decode_args(&call.args)?;
    let pools = call.core.pools();
    let pool = pools.get(&a.pool)?;
    pool.require_active()?;
    let max = usize::try_from(a.maxnames)
        .unwrap_or(0)
        .min(STORAGE_VOL_LIST_MAX as usize);
    encode_ret(&PoolListVolumesRet {
        names: pool.vols.iter().map(|v| v.def.name.clone()).take(max).collect(),
    })
}

fn list_all_volumes(call: &Call) -> CallResult {
    let a: PoolListAllVolumesArgs = decode_args(&call.args)?;
    check_flags(a.flags, 0, call.proc_)?;
    let pools = call.core.pools();
    let pool = pools.get(&a.pool)?;
    pool.require_active()?;
    let vols: Vec<_> = pool.vols.iter().map(|v| pool.vol_wire(v)).collect();
    let ret = u32::try_from(vols.len()).unwrap_or(u32::MAX);
    encode_ret(&PoolListAllVolumesRet {
        vols: if a.need_results != 0 { vols } else { Vec::new() },
        ret,
    })
}

fn is_active(call: &Call) -> CallResult {
    let a: PoolArgs = decode_args(&call.args)?;
    encode_ret(&PoolIsActiveRet {
        active: int(call.core.pools().get(&a.pool)?.active),
    })
}

fn is_persistent(call: &Call) -> CallResult {
    let a: PoolArgs = decode_args(&call.args)?;
    encode_ret(&PoolIsPersistentRet {
        persistent: int(call.core.pools().get(&a.pool)?.persistent),
    })
}
