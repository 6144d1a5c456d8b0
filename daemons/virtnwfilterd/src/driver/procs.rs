//! The REMOTE nwfilter procedures, one function each, and the table that
//! routes a call to them. Anything not here (filter bindings) answers
//! `VIR_ERR_NO_SUPPORT`.

use super::Core;
use super::filters::{Filters, io_error, no_name, no_uuid, wire};
use crate::nwfilter::{NwFilterDef, NwFilterXmlError};
use modvirt_runtime::dispatch::{CallContext, CallFuture, CallResult, check_flags, decode_args, encode_ret};
use modvirt_wire::nwfilter::*;
use modvirt_wire::{ErrorCode, ErrorDomain, Procedure, RpcError};
use std::sync::Arc;

type Handler = fn(&Core, &[u8], &'static Procedure) -> CallResult;

/// Routes a call; `None` for procedures this driver does not implement.
pub fn dispatch(core: Arc<Core>, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
    let p = ctx.procedure;
    let handler: Handler = match p.number {
        175 => lookup_by_name,
        176 => lookup_by_uuid,
        177 => get_xml_desc,
        178 => num_of_nwfilters,
        179 => list_nwfilters,
        180 | 431 => define_xml,
        181 => undefine,
        286 => list_all,
        _ => return None,
    };
    let payload = payload.to_vec();
    Some(Box::pin(async move { handler(&core, &payload, p) }))
}

fn xml_error(e: NwFilterXmlError) -> RpcError {
    RpcError::plain(ErrorCode(e.code()), ErrorDomain(e.domain()), e.message())
}

fn ret(def: &NwFilterDef) -> CallResult {
    encode_ret(&NwfilterRet { nwfilter: wire(def) })
}

fn lookup_by_name(core: &Core, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: NwfilterLookupByNameArgs = decode_args(p)?;
    let filters = core.filters();
    ret(filters.by_name(&a.name).ok_or_else(|| no_name(&a.name))?)
}

fn lookup_by_uuid(core: &Core, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: NwfilterLookupByUuidArgs = decode_args(p)?;
    let filters = core.filters();
    ret(filters.by_uuid(&a.uuid.0).ok_or_else(|| no_uuid(&a.uuid.0))?)
}

fn get_xml_desc(core: &Core, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: NwfilterGetXmlDescArgs = decode_args(p)?;
    check_flags(a.flags, 0, proc_)?;
    let filters = core.filters();
    encode_ret(&NwfilterGetXmlDescRet {
        xml: filters.get(&a.nwfilter)?.to_xml(),
    })
}

fn num_of_nwfilters(core: &Core, _: &[u8], _: &'static Procedure) -> CallResult {
    encode_ret(&ConnectNumOfNwfiltersRet {
        num: i32::try_from(core.filters().len()).unwrap_or(i32::MAX),
    })
}

fn list_nwfilters(core: &Core, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: ConnectListNwfiltersArgs = decode_args(p)?;
    let max = usize::try_from(a.maxnames).unwrap_or(0);
    let names = core.filters().iter().take(max).map(|f| f.name.clone()).collect();
    encode_ret(&ConnectListNwfiltersRet { names })
}

fn list_all(core: &Core, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: ConnectListAllNwfiltersArgs = decode_args(p)?;
    check_flags(a.flags, 0, proc_)?;
    let filters = core.filters();
    let found: Vec<_> = filters.iter().map(wire).collect();
    let ret = u32::try_from(found.len()).unwrap_or(u32::MAX);
    encode_ret(&ConnectListAllNwfiltersRet {
        filters: if a.need_results != 0 { found } else { Vec::new() },
        ret,
    })
}

fn define_xml(core: &Core, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let (xml, flags) = if proc_.number == 431 {
        let a: NwfilterDefineXmlFlagsArgs = decode_args(p)?;
        (a.xml, a.flags)
    } else {
        (decode_args::<NwfilterDefineXmlArgs>(p)?.xml, 0)
    };
    // VALIDATE asks for libvirt's RelaxNG check; the parser's own checks
    // are what modvirt validates against.
    check_flags(flags, DEFINE_VALIDATE, proc_)?;
    let def = NwFilterDef::parse(&xml, &mut core.rng()).map_err(xml_error)?;
    let mut filters = core.filters();
    save(core, &filters, &def)?;
    tracing::info!(target: "nwfilter", "defined network filter '{}'", def.name);
    let reply = ret(&def);
    filters.put(def);
    reply
}

/// Checks `def` against the other filters and writes it.
fn save(core: &Core, filters: &Filters, def: &NwFilterDef) -> Result<(), RpcError> {
    filters.check_define(def)?;
    core.store
        .save(def)
        .map_err(|e| io_error("write network filter", &core.store.path(&def.name), &e))
}

fn undefine(core: &Core, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: NwfilterArgs = decode_args(p)?;
    let mut filters = core.filters();
    let def = filters.get(&a.nwfilter)?;
    // No guest interface uses a filter here (they are not applied), so
    // none is ever "in use".
    let (name, uuid) = (def.name.clone(), def.uuid);
    core.store
        .delete(&name)
        .map_err(|e| io_error("remove network filter", &core.store.path(&name), &e))?;
    filters.remove(&uuid);
    tracing::info!(target: "nwfilter", "undefined network filter '{name}'");
    encode_ret(&())
}
