//! The REMOTE node device procedures, one function each, and the table
//! that routes a call to them. All of them first wait for the first
//! enumeration (a deregistration of events need not: there is nothing to
//! remove before it). Anything not here (creating, defining, detaching
//! devices) answers `VIR_ERR_NO_SUPPORT`.

use super::registry::{Registry, not_found};
use super::{Core, events};
use crate::sysfs;
use modvirt_runtime::dispatch::{CallContext, CallFuture, CallResult, check_flags, decode_args, encode_ret};
use modvirt_wire::Procedure;
use modvirt_wire::nodedev::*;
use std::sync::Arc;

/// Routes a call; `None` for procedures this driver does not implement.
pub fn dispatch(core: Arc<Core>, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
    let p = ctx.procedure;
    // Event callbacks belong to the calling client.
    if matches!(p.number, 374 | 375) {
        let (client, call, payload) = (ctx.client.clone(), ctx.call.clone(), payload.to_vec());
        return Some(Box::pin(async move {
            if p.number == 374 {
                events::register(&core, &client, &call, &payload).await
            } else {
                events::deregister(&core, &client, &payload)
            }
        }));
    }
    if !matches!(p.number, 111..=117 | 285 | 433 | 435 | 436) {
        return None;
    }
    let call = ctx.call.clone();
    let payload = payload.to_vec();
    Some(Box::pin(async move {
        core.wait_ready(&call).await;
        let a = &payload;
        match p.number {
            111 => num_of_devices(&core, a, p).await,
            112 => list_devices(&core, a, p).await,
            113 => lookup_by_name(&core, a).await,
            114 => get_xml_desc(&core, a, p).await,
            115 => get_parent(&core, a).await,
            116 => num_of_caps(&core, a).await,
            117 => list_caps(&core, a).await,
            285 => list_all(&core, a, p).await,
            433 => get_autostart(&core, a).await,
            435 => is_persistent(&core, a).await,
            _ => is_active(&core, a).await,
        }
    }))
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn take(maxnames: i32) -> usize {
    usize::try_from(maxnames).unwrap_or(0)
}

async fn num_of_devices(core: &Arc<Core>, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: NodeNumOfDevicesArgs = decode_args(p)?;
    check_flags(a.flags, 0, proc_)?;
    let reg = core.fresh().await?;
    encode_ret(&NodeNumRet {
        num: count(reg.with_cap(a.cap.as_deref()).count()),
    })
}

async fn list_devices(core: &Arc<Core>, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: NodeListDevicesArgs = decode_args(p)?;
    check_flags(a.flags, 0, proc_)?;
    let reg = core.fresh().await?;
    let names = reg
        .with_cap(a.cap.as_deref())
        .map(|d| d.name.clone())
        .take(take(a.maxnames).min(NODE_DEVICE_LIST_MAX as usize))
        .collect();
    encode_ret(&NodeListDevicesRet { names })
}

async fn list_all(core: &Arc<Core>, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: ConnectListAllNodeDevicesArgs = decode_args(p)?;
    check_flags(a.flags, list::ALL, proc_)?;
    let reg: Arc<Registry> = core.fresh().await?;
    let found: Vec<NonnullNodeDevice> = reg
        .matching(a.flags)
        .map(|d| NonnullNodeDevice { name: d.name.clone() })
        .collect();
    let ret = u32::try_from(found.len()).unwrap_or(u32::MAX);
    encode_ret(&ConnectListAllNodeDevicesRet {
        devices: if a.need_results != 0 { found } else { Vec::new() },
        ret,
    })
}

async fn lookup_by_name(core: &Arc<Core>, p: &[u8]) -> CallResult {
    let a: NodeDeviceNameArgs = decode_args(p)?;
    let dev = core.lookup(&a.name).await?;
    encode_ret(&NodeDeviceRet {
        dev: NonnullNodeDevice { name: dev.name },
    })
}

async fn get_xml_desc(core: &Arc<Core>, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: NodeDeviceGetXmlDescArgs = decode_args(p)?;
    check_flags(a.flags, 0, proc_)?;
    let dev = core.lookup(&a.name).await?;
    // Driver, link state, sizes… as they are now.
    let host = core.host.clone();
    let fresh = tokio::task::spawn_blocking(move || sysfs::reread(&host, &dev))
        .await
        .map_err(|e| super::registry::internal(format!("cannot read device: {e}")))?
        .ok_or_else(|| not_found(&a.name))?;
    encode_ret(&NodeDeviceGetXmlDescRet { xml: fresh.to_xml() })
}

async fn get_parent(core: &Arc<Core>, p: &[u8]) -> CallResult {
    let a: NodeDeviceNameArgs = decode_args(p)?;
    let dev = core.lookup(&a.name).await?;
    // The root device has none: libvirt's daemon answers that as a null
    // parent, not as an error.
    encode_ret(&NodeDeviceGetParentRet { parent: dev.parent })
}

async fn num_of_caps(core: &Arc<Core>, p: &[u8]) -> CallResult {
    let a: NodeDeviceNameArgs = decode_args(p)?;
    let dev = core.lookup(&a.name).await?;
    encode_ret(&NodeNumRet {
        num: count(dev.cap_types().len()),
    })
}

async fn list_caps(core: &Arc<Core>, p: &[u8]) -> CallResult {
    let a: NodeDeviceListCapsArgs = decode_args(p)?;
    let dev = core.lookup(&a.name).await?;
    let names = dev
        .cap_types()
        .into_iter()
        .map(|t| t.name().to_owned())
        .take(take(a.maxnames))
        .collect();
    encode_ret(&NodeDeviceListCapsRet { names })
}

async fn is_active(core: &Arc<Core>, p: &[u8]) -> CallResult {
    let a: NodeDeviceNameArgs = decode_args(p)?;
    let dev = core.lookup(&a.name).await?;
    encode_ret(&NodeDeviceIsActiveRet {
        active: i32::from(dev.active()),
    })
}

async fn is_persistent(core: &Arc<Core>, p: &[u8]) -> CallResult {
    let a: NodeDeviceNameArgs = decode_args(p)?;
    let dev = core.lookup(&a.name).await?;
    encode_ret(&NodeDeviceIsPersistentRet {
        persistent: i32::from(dev.persistent()),
    })
}

async fn get_autostart(core: &Arc<Core>, p: &[u8]) -> CallResult {
    let a: NodeDeviceNameArgs = decode_args(p)?;
    let dev = core.lookup(&a.name).await?;
    encode_ret(&NodeDeviceGetAutostartRet {
        autostart: i32::from(dev.autostart()),
    })
}
