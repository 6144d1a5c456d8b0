//! The REMOTE network procedures, one function each, and the table that
//! routes a call to them. Anything not here answers `VIR_ERR_NO_SUPPORT`.
//! Changes of state send libvirt's lifecycle events ([`super::events`]):
//! `Defined` on every define (new or replacing), `Undefined`, `Started` on
//! start and create, `Stopped` on destroy (a transient network then goes
//! without an `Undefined`).

use super::nets::{Net, Nets, failed, internal, invalid, io_error, not_found};
use super::{Core, events, host};
use crate::network::{BridgeUse, NetworkDef};
use modvirt_runtime::dispatch::{CallContext, CallFuture, CallResult, check_flags, decode_args, encode_ret};
use modvirt_wire::network::*;
use modvirt_wire::remote::{NetworkLookupByNameArgs, NetworkRet};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::sync::Arc;

/// Routes a call; `None` for procedures this driver does not implement.
pub fn dispatch(core: Arc<Core>, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
    let p = ctx.procedure;
    // Event callbacks belong to the calling client.
    if matches!(p.number, 313 | 314) {
        let client = ctx.client.clone();
        let payload = payload.to_vec();
        return Some(Box::pin(async move {
            if p.number == 313 {
                events::register(&core, &client, &payload)
            } else {
                events::deregister(&core, &client, &payload)
            }
        }));
    }
    let handler: fn(&Core, &[u8], &'static modvirt_wire::Procedure) -> CallResult = match p.number {
        36 => list_defined,
        38 => list_active,
        39 => create,
        40 | 437 => create_xml,
        41 | 432 => define_xml,
        42 => destroy,
        43 => get_xml_desc,
        44 => get_autostart,
        45 => get_bridge_name,
        46 => lookup_by_name,
        47 => lookup_by_uuid,
        48 => set_autostart,
        49 => undefine,
        50 => num_of_defined,
        52 => num_of_active,
        152 => is_active,
        153 => is_persistent,
        283 => list_all,
        341 => super::leases::get_dhcp_leases,
        _ => return None,
    };
    let payload = payload.to_vec();
    Some(Box::pin(async move { handler(&core, &payload, p) }))
}

fn ret_net(net: &Net) -> CallResult {
    encode_ret(&NetworkRet { net: net.wire() })
}

fn int(v: bool) -> i32 {
    i32::from(v)
}

fn xml_error(e: crate::network::NetworkXmlError) -> RpcError {
    RpcError::plain(ErrorCode(e.code()), ErrorDomain(e.domain()), e.message())
}

/// Parses a network XML as `define`/`create` take it, with libvirt's errors.
fn parse(core: &Core, xml: &str, nets: &Nets) -> Result<NetworkDef, RpcError> {
    let mut def = NetworkDef::parse(xml, &mut core.rng()).map_err(xml_error)?;
    let uuid = def.uuid;
    // Listed once, when a candidate bridge name is first checked (picking
    // `virbrN` may check several).
    let host_links = std::cell::OnceCell::new();
    let bridge_use = |name: &str| {
        if nets.bridge_in_use(name, Some(&uuid)) {
            BridgeUse::OtherNetwork
        } else if host_links.get_or_init(host::link_names).contains(name) {
            BridgeUse::HostDevice
        } else {
            BridgeUse::Free
        }
    };
    def.assign_defaults(&bridge_use, &mut core.rng())
        .map_err(xml_error)?;
    Ok(def)
}

fn lookup_by_name(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkLookupByNameArgs = decode_args(p)?;
    let nets = core.nets();
    let net = nets
        .by_name(&a.name)
        .ok_or_else(|| not_found(format!("no network with matching name '{}'", a.name)))?;
    ret_net(net)
}

fn lookup_by_uuid(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkLookupByUuidArgs = decode_args(p)?;
    let nets = core.nets();
    let net = nets.by_uuid(&a.uuid.0).ok_or_else(|| {
        not_found(format!(
            "no network with matching uuid '{}'",
            modvirt_xml::format_uuid(&a.uuid.0)
        ))
    })?;
    ret_net(net)
}

fn list_all(core: &Core, p: &[u8], proc_: &'static modvirt_wire::Procedure) -> CallResult {
    let a: ConnectListAllNetworksArgs = decode_args(p)?;
    check_flags(a.flags, list::ALL, proc_)?;
    let nets = core.nets();
    let f = a.flags;
    let pick =
        |want: u32, not: u32, v: bool| f & (want | not) == 0 || (f & want != 0 && v) || (f & not != 0 && !v);
    let found: Vec<_> = nets
        .iter()
        .filter(|n| pick(list::ACTIVE, list::INACTIVE, n.active()))
        .filter(|n| pick(list::PERSISTENT, list::TRANSIENT, n.persistent))
        .filter(|n| pick(list::AUTOSTART, list::NO_AUTOSTART, n.autostart))
        .map(Net::wire)
        .collect();
    let ret = found.len() as u32;
    encode_ret(&ConnectListAllNetworksRet {
        nets: if a.need_results != 0 { found } else { Vec::new() },
        ret,
    })
}

fn names(core: &Core, p: &[u8], active: bool) -> CallResult {
    let a: ConnectListNetworksArgs = decode_args(p)?;
    let max = usize::try_from(a.maxnames).unwrap_or(0);
    let nets = core.nets();
    let names = nets
        .iter()
        .filter(|n| n.active() == active)
        .map(|n| n.def.name.clone())
        .take(max)
        .collect();
    encode_ret(&ConnectListNetworksRet { names })
}

fn list_active(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    names(core, p, true)
}

fn list_defined(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    names(core, p, false)
}

fn count(core: &Core, active: bool) -> CallResult {
    let n = core.nets().iter().filter(|n| n.active() == active).count();
    encode_ret(&ConnectNumOfNetworksRet {
        num: i32::try_from(n).unwrap_or(i32::MAX),
    })
}

fn num_of_active(core: &Core, _: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    count(core, true)
}

fn num_of_defined(core: &Core, _: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    count(core, false)
}

fn define_xml(core: &Core, p: &[u8], proc_: &'static modvirt_wire::Procedure) -> CallResult {
    let (xml, flags) = if proc_.number == 432 {
        let a: NetworkXmlFlagsArgs = decode_args(p)?;
        (a.xml, a.flags)
    } else {
        (decode_args::<NetworkXmlArgs>(p)?.xml, 0)
    };
    check_flags(flags, DEFINE_VALIDATE, proc_)?;
    let mut nets = core.nets();
    let def = parse(core, &xml, &nets)?;
    nets.check_unique(&def)?;
    let path = core.store.config_path(&def.name);
    core.store
        .save_config(&def.name, &def.to_xml())
        .map_err(|e| io_error("write network definition", &path, &e))?;
    let net = match nets.by_uuid(&def.uuid) {
        Some(old) => Net {
            def,
            persistent: true,
            ..old.clone()
        },
        None => Net {
            def,
            live: None,
            persistent: true,
            autostart: false,
        },
    };
    let ret = ret_net(&net);
    tracing::info!(target: "network", "defined network '{}'", net.def.name);
    core.events.emit(&net.wire(), event::DEFINED);
    nets.insert(net);
    ret
}

fn create_xml(core: &Core, p: &[u8], proc_: &'static modvirt_wire::Procedure) -> CallResult {
    let (xml, flags) = if proc_.number == 437 {
        let a: NetworkXmlFlagsArgs = decode_args(p)?;
        (a.xml, a.flags)
    } else {
        (decode_args::<NetworkXmlArgs>(p)?.xml, 0)
    };
    check_flags(flags, DEFINE_VALIDATE, proc_)?;
    let mut nets = core.nets();
    let def = parse(core, &xml, &nets)?;
    if nets.check_unique(&def)? {
        if nets.by_uuid(&def.uuid).is_some_and(Net::active) {
            return Err(invalid(format!("network '{}' is already active", def.name)));
        }
        return Err(failed(format!("network '{}' is already defined", def.name)));
    }
    let name = def.name.clone();
    nets.insert(Net {
        def,
        live: None,
        persistent: false,
        autostart: false,
    });
    if let Err(e) = start(core, &mut nets, &name) {
        if let Some(uuid) = nets.by_name(&name).map(|n| n.def.uuid) {
            nets.remove(&uuid);
        }
        return Err(e);
    }
    let net = nets
        .by_name(&name)
        .ok_or_else(|| internal("network vanished while starting"))?;
    core.events.emit(&net.wire(), event::STARTED);
    ret_net(net)
}

/// Brings network `name` up on the host and records it as active.
pub(super) fn start(core: &Core, nets: &mut Nets, name: &str) -> Result<(), RpcError> {
    let net = nets
        .by_name_mut(name)
        .ok_or_else(|| not_found(format!("no network with matching name '{name}'")))?;
    if net.active() {
        return Err(invalid("network is already active"));
    }
    let live = net.def.clone();
    host::start(&live, &core.store)?;
    let path = core.store.status_path(name);
    if let Err(e) = core.store.save_status(name, &live.to_xml()) {
        let _ = host::stop(&live, &core.store);
        return Err(io_error("write network status", &path, &e));
    }
    tracing::info!(target: "network", "network '{name}' started");
    net.live = Some(live);
    Ok(())
}

fn create(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkArgs = decode_args(p)?;
    let mut nets = core.nets();
    let net = nets.get(&a.net)?.wire();
    start(core, &mut nets, &net.name)?;
    core.events.emit(&net, event::STARTED);
    encode_ret(&())
}

fn destroy(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkArgs = decode_args(p)?;
    let mut nets = core.nets();
    let net = nets.get_mut(&a.net)?;
    let Some(live) = net.live.clone() else {
        return Err(invalid(format!("network '{}' is not active", net.def.name)));
    };
    host::stop(&live, &core.store)?;
    net.live = None;
    let (name, uuid, persistent) = (net.def.name.clone(), net.def.uuid, net.persistent);
    // Stopped, whatever happens to its status file below.
    core.events.emit(&net.wire(), event::STOPPED);
    let path = core.store.status_path(&name);
    core.store
        .delete_status(&name)
        .map_err(|e| io_error("remove network status", &path, &e))?;
    if !persistent {
        nets.remove(&uuid);
        super::dnsmasq::remove_files(&core.store.dnsmasq_files(&name));
    }
    tracing::info!(target: "network", "network '{name}' destroyed");
    encode_ret(&())
}

fn undefine(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkArgs = decode_args(p)?;
    let mut nets = core.nets();
    let net = nets.get_mut(&a.net)?;
    if !net.persistent {
        return Err(invalid("can't undefine transient network"));
    }
    let name = net.def.name.clone();
    let path = core.store.config_path(&name);
    core.store
        .delete_config(&name)
        .map_err(|e| io_error("remove network definition", &path, &e))?;
    core.events.emit(&net.wire(), event::UNDEFINED);
    if net.active() {
        // An active network stays up, transient, as in libvirt.
        net.persistent = false;
        net.autostart = false;
    } else {
        let uuid = net.def.uuid;
        nets.remove(&uuid);
        super::dnsmasq::remove_files(&core.store.dnsmasq_files(&name));
    }
    tracing::info!(target: "network", "undefined network '{name}'");
    encode_ret(&())
}

fn get_xml_desc(core: &Core, p: &[u8], proc_: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkGetXmlDescArgs = decode_args(p)?;
    check_flags(a.flags, XML_INACTIVE, proc_)?;
    let nets = core.nets();
    let net = nets.get(&a.net)?;
    encode_ret(&NetworkGetXmlDescRet {
        xml: net.shown(a.flags & XML_INACTIVE != 0).to_xml(),
    })
}

fn get_bridge_name(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkArgs = decode_args(p)?;
    let nets = core.nets();
    let net = nets.get(&a.net)?;
    let name = net
        .shown(false)
        .bridge_name()
        .ok_or_else(|| internal(format!("network '{}' does not have a bridge name.", net.def.name)))?;
    encode_ret(&NetworkGetBridgeNameRet {
        name: name.to_owned(),
    })
}

fn get_autostart(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkArgs = decode_args(p)?;
    let nets = core.nets();
    encode_ret(&NetworkGetAutostartRet {
        autostart: int(nets.get(&a.net)?.autostart),
    })
}

fn set_autostart(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkSetAutostartArgs = decode_args(p)?;
    let mut nets = core.nets();
    let net = nets.get_mut(&a.net)?;
    if !net.persistent {
        return Err(invalid("cannot set autostart for transient network"));
    }
    let on = a.autostart != 0;
    if net.autostart != on {
        let path = core.store.autostart_path(&net.def.name);
        core.store.set_autostart(&net.def.name, on).map_err(|e| {
            io_error(
                if on {
                    "create autostart link"
                } else {
                    "remove autostart link"
                },
                &path,
                &e,
            )
        })?;
        net.autostart = on;
    }
    encode_ret(&())
}

fn is_active(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkArgs = decode_args(p)?;
    let nets = core.nets();
    encode_ret(&NetworkIsActiveRet {
        active: int(nets.get(&a.net)?.active()),
    })
}

fn is_persistent(core: &Core, p: &[u8], _: &'static modvirt_wire::Procedure) -> CallResult {
    let a: NetworkArgs = decode_args(p)?;
    let nets = core.nets();
    encode_ret(&NetworkIsPersistentRet {
        persistent: int(nets.get(&a.net)?.persistent),
    })
}
