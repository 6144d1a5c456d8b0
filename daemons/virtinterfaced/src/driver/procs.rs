//! The REMOTE interface procedures, one function each, the table that
//! routes a call to them, and libvirt's errors for them. Anything not here
//! answers `VIR_ERR_NO_SUPPORT`, as libvirt's read-only udev backend does.

use crate::host::{HostError, HostLinks, is_active, mac_text};
use modvirt_runtime::dispatch::{CallContext, CallFuture, CallResult, check_flags, decode_args, encode_ret};
use modvirt_wire::interface::*;
use modvirt_wire::{ErrorCode, ErrorDomain, Procedure, RpcError};

/// `VIR_ERR_NO_INTERFACE`.
const NO_INTERFACE: ErrorCode = ErrorCode(57);
/// `VIR_ERR_MULTIPLE_INTERFACES`.
const MULTIPLE_INTERFACES: ErrorCode = ErrorCode(59);

/// Routes a call; `None` for procedures this driver does not implement.
pub fn dispatch(ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
    let p = ctx.procedure;
    let handler: fn(&HostLinks, &[u8], &'static Procedure) -> CallResult = match p.number {
        126 => num_of_active,
        127 => list_active,
        128 => lookup_by_name,
        129 => lookup_by_mac,
        130 => get_xml_desc,
        137 => num_of_inactive,
        138 => list_inactive,
        156 => active,
        284 => list_all,
        _ => return None,
    };
    let payload = payload.to_vec();
    Some(Box::pin(async move {
        tokio::task::spawn_blocking(move || {
            let links = HostLinks::read().map_err(|e| error(&e))?;
            handler(&links, &payload, p)
        })
        .await
        .map_err(|e| {
            RpcError::new(
                ErrorCode::INTERNAL_ERROR,
                ErrorDomain::INTERFACE,
                "internal error",
                format!("interface call failed: {e}"),
            )
        })?
    }))
}

/// libvirt's code and wording for a failure.
pub fn error(e: &HostError) -> RpcError {
    match e {
        HostError::NotFound(_) => RpcError::new(
            NO_INTERFACE,
            ErrorDomain::INTERFACE,
            "Interface not found",
            e.to_string(),
        ),
        HostError::Netlink(_) | HostError::ReadFile { .. } => {
            RpcError::plain(ErrorCode::SYSTEM_ERROR, ErrorDomain::INTERFACE, e.to_string())
        }
        _ => RpcError::new(
            ErrorCode::INTERNAL_ERROR,
            ErrorDomain::INTERFACE,
            "internal error",
            e.to_string(),
        ),
    }
}

fn wire(l: &modvirt_netlink::Link) -> NonnullInterface {
    NonnullInterface {
        name: l.name.clone(),
        mac: mac_text(l),
    }
}

fn found(links: &HostLinks, name: &str) -> Result<NonnullInterface, RpcError> {
    links
        .by_name(name)
        .map(wire)
        .ok_or_else(|| error(&HostError::NotFound(name.to_owned())))
}

/// Listed interfaces whose operational state is `up` (`active`) or
/// `down` (not active): libvirt's old calls leave out `unknown` and the
/// other states on both sides.
fn by_state(links: &HostLinks, active: bool) -> Vec<String> {
    links
        .listed()
        .into_iter()
        .filter(|l| {
            if active {
                is_active(l)
            } else {
                l.oper_state == modvirt_netlink::OperState::Down
            }
        })
        .map(|l| l.name.clone())
        .collect()
}

fn num(links: &HostLinks, active: bool) -> CallResult {
    encode_ret(&ConnectNumOfInterfacesRet {
        num: i32::try_from(by_state(links, active).len()).unwrap_or(i32::MAX),
    })
}

fn names(links: &HostLinks, p: &[u8], active: bool) -> CallResult {
    let a: ConnectListInterfacesArgs = decode_args(p)?;
    let max = usize::try_from(a.maxnames)
        .unwrap_or(0)
        .min(INTERFACE_LIST_MAX as usize);
    let mut names = by_state(links, active);
    names.truncate(max);
    encode_ret(&ConnectListInterfacesRet { names })
}

fn num_of_active(links: &HostLinks, _: &[u8], _: &'static Procedure) -> CallResult {
    num(links, true)
}

fn num_of_inactive(links: &HostLinks, _: &[u8], _: &'static Procedure) -> CallResult {
    num(links, false)
}

fn list_active(links: &HostLinks, p: &[u8], _: &'static Procedure) -> CallResult {
    names(links, p, true)
}

fn list_inactive(links: &HostLinks, p: &[u8], _: &'static Procedure) -> CallResult {
    names(links, p, false)
}

fn list_all(links: &HostLinks, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: ConnectListAllInterfacesArgs = decode_args(p)?;
    check_flags(a.flags, list::ALL, proc_)?;
    let f = a.flags;
    let ifaces: Vec<NonnullInterface> = links
        .listed()
        .into_iter()
        .filter(|l| {
            let up = is_active(l);
            f & list::ALL == 0 || (f & list::ACTIVE != 0 && up) || (f & list::INACTIVE != 0 && !up)
        })
        .map(wire)
        .collect();
    let ret = u32::try_from(ifaces.len()).unwrap_or(u32::MAX);
    encode_ret(&ConnectListAllInterfacesRet {
        ifaces: if a.need_results != 0 { ifaces } else { Vec::new() },
        ret,
    })
}

fn lookup_by_name(links: &HostLinks, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: InterfaceLookupByNameArgs = decode_args(p)?;
    encode_ret(&InterfaceRet {
        iface: found(links, &a.name)?,
    })
}

fn lookup_by_mac(links: &HostLinks, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: InterfaceLookupByMacStringArgs = decode_args(p)?;
    let matches: Vec<_> = links
        .listed()
        .into_iter()
        .filter(|l| mac_text(l) == a.mac)
        .collect();
    match matches.as_slice() {
        [one] => encode_ret(&InterfaceRet { iface: wire(one) }),
        [] => Err(RpcError::new(
            NO_INTERFACE,
            ErrorDomain::INTERFACE,
            "Interface not found",
            format!("couldn't find interface with MAC address '{}'", a.mac),
        )),
        _ => Err(RpcError::new(
            MULTIPLE_INTERFACES,
            ErrorDomain::INTERFACE,
            "multiple matching interfaces found",
            format!("the MAC address '{}' matches multiple interfaces", a.mac),
        )),
    }
}

fn get_xml_desc(links: &HostLinks, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: InterfaceGetXmlDescArgs = decode_args(p)?;
    check_flags(a.flags, XML_INACTIVE, proc_)?;
    let def = links.def(&a.iface.name).map_err(|e| error(&e))?;
    encode_ret(&InterfaceGetXmlDescRet { xml: def.to_xml() })
}

fn active(links: &HostLinks, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: InterfaceArgs = decode_args(p)?;
    found(links, &a.iface.name)?;
    let up = links.by_name(&a.iface.name).is_some_and(is_active);
    encode_ret(&InterfaceIsActiveRet {
        active: i32::from(up),
    })
}
