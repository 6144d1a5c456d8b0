//! The REMOTE storage volume procedures, one function each (routed by
//! [`super::procs::dispatch`]).
//!
//! A volume is named on the wire by its pool's name and its own name (and
//! key); lookups by key or path search every active pool. Creating one
//! registers it as `building` and counts a job on its pool, then makes the
//! file without the registry lock (raw: on the blocking pool; qcow2:
//! `qemu-img create`), then reads back what it made, as libvirt does.

use super::lifecycle::{self, JobGuard};
use super::pools::{Vol, internal, invalid, unsupported, vol_exists, vol_not_found, vol_not_found_name};
use super::procs::{Call, xml_error};
use super::{backend, qemu_img};
use crate::conf::{VolDef, VolFormat, VolType};
use modvirt_runtime::dispatch::{CallResult, check_flags, decode_args, encode_ret};
use modvirt_wire::RpcError;
use modvirt_wire::storage::*;
use std::path::{Path, PathBuf};

fn ret_vol(vol: NonnullStorageVol) -> CallResult {
    encode_ret(&VolRet { vol })
}

pub(super) fn lookup_by_name(call: &Call) -> CallResult {
    let a: VolLookupByNameArgs = decode_args(&call.args)?;
    let pools = call.core.pools();
    let pool = pools.get(&a.pool)?;
    pool.require_active()?;
    let vol = pool.vol(&a.name).ok_or_else(|| vol_not_found_name(&a.name))?;
    ret_vol(pool.vol_wire(vol))
}

pub(super) fn lookup_by_key(call: &Call) -> CallResult {
    let a: VolLookupByStringArgs = decode_args(&call.args)?;
    let pools = call.core.pools();
    let (pool, vol) = pools
        .vol_by_key(&a.key)
        .ok_or_else(|| vol_not_found(format!("no storage vol with matching key {}", a.key)))?;
    ret_vol(pool.vol_wire(vol))
}

pub(super) fn lookup_by_path(call: &Call) -> CallResult {
    let a: VolLookupByStringArgs = decode_args(&call.args)?;
    let pools = call.core.pools();
    let (pool, vol) = pools.vol_by_path(&a.key)?;
    ret_vol(pool.vol_wire(vol))
}

pub(super) fn get_path(call: &Call) -> CallResult {
    let a: VolArgs = decode_args(&call.args)?;
    let pools = call.core.pools();
    let (_, vol) = pools.vol(&a.vol)?;
    encode_ret(&VolGetPathRet {
        name: vol.path().to_owned(),
    })
}

/// `vol-delete`: removes the file (or directory) and forgets the volume.
pub(super) fn delete(call: &Call) -> CallResult {
    let a: VolFlagsArgs = decode_args(&call.args)?;
    let mut pools = call.core.pools();
    let (_, vol) = pools.vol(&a.vol)?;
    check_flags(a.flags, 0, call.proc_)?;
    if vol.building {
        return Err(invalid(format!(
            "volume '{}' is still being allocated.",
            vol.def.name
        )));
    }
    let is_dir = vol.def.vol_type == VolType::Dir;
    let allocation = vol.def.allocation;
    backend::delete_volume(Path::new(vol.path()), is_dir).map_err(|e| e.to_rpc())?;
    let pool = pools.named_mut(&a.vol.pool)?;
    pool.vols.retain(|v| v.def.name != a.vol.name);
    pool.def.allocation = pool.def.allocation.saturating_sub(allocation);
    pool.def.available = pool.def.available.saturating_add(allocation);
    tracing::info!(target: "storage", "deleted volume '{}' of storage pool '{}'", a.vol.name, a.vol.pool);
    encode_ret(&())
}

/// The volume's current facts, read from its file (libvirt refreshes a
/// volume on `vol-info` and `vol-dumpxml`), kept for the next listing.
async fn refresh_vol(call: &Call, wire: &NonnullStorageVol) -> Result<VolDef, RpcError> {
    let path = {
        let pools = call.core.pools();
        let (_, vol) = pools.vol(wire)?;
        PathBuf::from(vol.path())
    };
    let fresh = lifecycle::probe_volume(&wire.name, &path, Some(&call.record)).await?;
    if let Some(vol) = call
        .core
        .pools()
        .by_name_mut(&wire.pool)
        .and_then(|p| p.vol_mut(&wire.name))
        .filter(|v| !v.building)
    {
        vol.def = fresh.clone();
    }
    Ok(fresh)
}

pub(super) async fn get_info(call: Call) -> CallResult {
    let (vol, flags) = if call.proc_.number == 378 {
        let a: VolFlagsArgs = decode_args(&call.args)?;
        (a.vol, a.flags)
    } else {
        (decode_args::<VolArgs>(&call.args)?.vol, 0)
    };
    check_flags(flags, VOL_GET_PHYSICAL, call.proc_)?;
    let def = refresh_vol(&call, &vol).await?;
    encode_ret(&VolGetInfoRet {
        type_: def.vol_type.number(),
        capacity: def.capacity,
        allocation: if flags & VOL_GET_PHYSICAL != 0 {
            def.physical
        } else {
            def.allocation
        },
    })
}

pub(super) async fn get_xml_desc(call: Call) -> CallResult {
    let a: VolFlagsArgs = decode_args(&call.args)?;
    check_flags(a.flags, 0, call.proc_)?;
    let def = refresh_vol(&call, &a.vol).await?;
    encode_ret(&XmlRet { xml: def.to_xml() })
}

/// What `vol-create` is about to make.
struct NewVol {
    def: VolDef,
    path: PathBuf,
    wire: NonnullStorageVol,
    pool_uuid: [u8; 16],
    job: JobGuard,
}

/// Checks a new volume against its pool and registers it as building
/// (`storageVolCreateXML` + `virStorageBackendFileSystemVolCreate`).
fn register(call: &Call, a: &VolCreateXmlArgs) -> Result<NewVol, RpcError> {
    let mut pools = call.core.pools();
    let pool = pools.get_mut(&a.pool)?;
    pool.require_active()?;
    let mut def = VolDef::parse(&a.xml).map_err(|e| xml_error(&e))?;
    if pool.vol(&def.name).is_some() {
        return Err(vol_exists(&def.name));
    }
    // Volumes of a dir pool are its own files: no way out of it.
    if def.name.contains('/') {
        return Err(invalid(format!(
            "volume name '{}' cannot contain '/' in name",
            def.name
        )));
    }
    let path = PathBuf::from(format!("{}/{}", pool.def.target_path, def.name));
    if path.symlink_metadata().is_ok() {
        return Err(invalid(format!(
            "volume target path '{}' already exists",
            path.display()
        )));
    }
    match def.target.format {
        VolFormat::Raw | VolFormat::Qcow2 | VolFormat::Dir => {}
        other => {
            return Err(unsupported(format!(
                "creating volumes of format '{other}' is not supported by this virtstoraged (raw, qcow2 and dir only)"
            )));
        }
    }
    if def.target.format == VolFormat::Raw && a.flags & vol_create::PREALLOC_METADATA != 0 {
        return Err(unsupported(
            "metadata preallocation is not supported for raw volumes",
        ));
    }
    let shown = path.display().to_string();
    def.key = Some(shown.clone());
    def.target.path = Some(shown);
    def.vol_type = if def.target.format == VolFormat::Dir {
        VolType::Dir
    } else {
        VolType::File
    };
    pool.vols.push(Vol {
        def: def.clone(),
        building: true,
    });
    let wire = pool.vol_wire(pool.vols.last().ok_or_else(|| internal("volume vanished"))?);
    let job = JobGuard::mark(&call.core, pool);
    Ok(NewVol {
        def,
        path,
        wire,
        pool_uuid: pool.def.uuid,
        job,
    })
}

/// Makes the volume's file (or directory).
async fn make(call: &Call, new: &NewVol, prealloc_metadata: bool) -> Result<(), RpcError> {
    let (path, def) = (new.path.clone(), new.def.clone());
    match def.target.format {
        VolFormat::Dir => {
            lifecycle::blocking(move || backend::create_dir_volume(&path, &def.target.perms)).await
        }
        VolFormat::Qcow2 => {
            let made = match qemu_img::create(&def, &path, prealloc_metadata, Some(&call.record)).await {
                Ok(()) => {
                    let set_path = path.clone();
                    lifecycle::blocking(move || backend::set_volume_perms(&set_path, &def.target.perms)).await
                }
                Err(e) => Err(e.to_rpc()),
            };
            if made.is_err() {
                let _ = std::fs::remove_file(&path);
            }
            made
        }
        _ => {
            lifecycle::blocking(move || {
                backend::create_raw(&path, def.capacity, def.allocation, &def.target.perms)
            })
            .await
        }
    }
}

/// `vol-create` / `vol-create-as`.
pub(super) async fn create_xml(call: Call) -> CallResult {
    let a: VolCreateXmlArgs = decode_args(&call.args)?;
    check_flags(
        a.flags,
        vol_create::PREALLOC_METADATA | vol_create::VALIDATE,
        call.proc_,
    )?;
    let new = register(&call, &a)?;
    let forget = |core: &super::Core| {
        if let Some(pool) = core.pools().by_uuid_mut(&new.pool_uuid) {
            pool.vols.retain(|v| v.def.name != new.def.name);
        }
    };
    if let Err(e) = make(&call, &new, a.flags & vol_create::PREALLOC_METADATA != 0).await {
        forget(&call.core);
        return Err(e);
    }
    let made = match lifecycle::probe_volume(&new.def.name, &new.path, Some(&call.record)).await {
        Ok(made) => made,
        Err(e) => {
            let _ = backend::delete_volume(&new.path, new.def.vol_type == VolType::Dir);
            forget(&call.core);
            return Err(e);
        }
    };
    {
        let mut pools = call.core.pools();
        let pool = pools
            .by_uuid_mut(&new.pool_uuid)
            .ok_or_else(|| internal("storage pool vanished while creating a volume"))?;
        pool.def.allocation = pool.def.allocation.saturating_add(made.allocation);
        pool.def.available = pool.def.available.saturating_sub(made.allocation);
        if let Some(vol) = pool.vol_mut(&new.def.name) {
            vol.def = made;
            vol.building = false;
        }
    }
    tracing::info!(target: "storage", "created volume '{}' in storage pool '{}'", new.wire.name, new.wire.pool);
    drop(new.job);
    ret_vol(new.wire)
}
