//! Dispatch of calls to a program's handler.
//!
//! A server serves one program (`REMOTE` for `<d>-sock`/`<d>-sock-ro`,
//! `ADMIN` for `<d>-admin-sock`). The client loop checks everything the
//! procedure table can answer — unknown program or procedure, read-only
//! access, connection not open — before a call reaches a worker; handlers
//! only see well-formed calls. Errors follow libvirt's codes and wording.

use crate::client::Client;
use crate::daemon::DaemonShared;
use modvirt_wire::{
    Driver, ErrorCode, ErrorDomain, Header, Procedure, Program, RpcError, XdrDecode, XdrEncode,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler returns: the encoded reply payload, or a libvirt error.
pub type CallResult = Result<Vec<u8>, RpcError>;
pub type CallFuture = Pin<Box<dyn Future<Output = CallResult> + Send + 'static>>;

/// Everything a handler may need about the call in progress.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub daemon: Arc<DaemonShared>,
    pub client: Arc<Client>,
    pub header: Header,
    pub procedure: &'static Procedure,
    /// This call's in-flight record: mark what it waits on with `wait_on`.
    pub call: Arc<crate::observe::inflight::CallRecord>,
}

/// A program's handlers.
pub trait ProgramHandler: Send + Sync + 'static {
    fn program(&self) -> &'static Program;
    /// Procedures callable before `CONNECT_OPEN`.
    fn allowed_before_open(&self, procedure: i32) -> bool;
    fn call(&self, ctx: CallContext, payload: Vec<u8>) -> CallFuture;
}

/// Decodes call arguments, mapping failure to libvirt's RPC error.
pub fn decode_args<T: XdrDecode>(payload: &[u8]) -> Result<T, RpcError> {
    T::from_xdr(payload).map_err(|e| {
        RpcError::plain(
            ErrorCode::RPC,
            ErrorDomain::RPC,
            format!("Unable to decode message payload: {e}"),
        )
    })
}

/// Encodes a reply payload.
pub fn encode_ret<T: XdrEncode>(v: &T) -> CallResult {
    Ok(v.to_xdr())
}

/// `DOMAIN_CREATE_XML` → `virDomainCreateXML`: the public API's name, for messages.
pub fn api_name(procedure: &str) -> String {
    let mut out = String::from("vir");
    for word in procedure.split('_') {
        if let Some(spelled) = api_word(word) {
            out.push_str(spelled);
            continue;
        }
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first);
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    out
}

/// Procedure-name words that libvirt's API names do not spell as `Word`
/// (checked against every REMOTE procedure and libvirt.so 9.0's symbols).
fn api_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "XML" => "XML",
        "UUID" => "UUID",
        "ID" => "ID",
        "URI" => "URI",
        "OS" => "OS",
        "MAC" => "MAC",
        "CPU" => "CPU",
        "NMI" => "NMI",
        "PM" => "PM",
        "SCSI" => "SCSI",
        "WWN" => "WWN",
        "DHCP" => "DHCP",
        "FD" => "FD",
        "SEV" => "SEV",
        "SSH" => "SSH",
        "NWFILTER" => "NWFilter",
        "NWFILTERS" => "NWFilters",
        "IOTHREAD" => "IOThread",
        "FSTRIM" => "FSTrim",
        "FSFREEZE" => "FSFreeze",
        "FSTHAW" => "FSThaw",
        "FSINFO" => "FSInfo",
        _ => return None,
    })
}

/// The error domain libvirt reports for a driver's API.
pub fn driver_domain(driver: Driver) -> ErrorDomain {
    match driver {
        Driver::Connection => ErrorDomain::NONE,
        Driver::Hypervisor => ErrorDomain::DOMAIN,
        Driver::Network => ErrorDomain::NETWORK,
        Driver::Storage => ErrorDomain::STORAGE,
        Driver::Secret => ErrorDomain::SECRET,
        Driver::NodeDevice => ErrorDomain::NODEDEV,
        Driver::Interface => ErrorDomain::INTERFACE,
        Driver::NwFilter => ErrorDomain::NWFILTER,
        Driver::Admin => ErrorDomain::ADMIN,
    }
}

/// `VIR_ERR_NO_SUPPORT` naming the API, as libvirt's drivers report it.
pub fn no_support(p: &Procedure) -> RpcError {
    RpcError::new(
        ErrorCode::NO_SUPPORT,
        driver_domain(p.driver),
        "this function is not supported by the connection driver",
        api_name(p.name),
    )
}

/// `VIR_ERR_OPERATION_DENIED` for a state-changing call on a read-only connection.
pub fn read_only_denied(p: &Procedure) -> RpcError {
    RpcError::new(
        ErrorCode::OPERATION_DENIED,
        driver_domain(p.driver),
        "operation forbidden",
        format!("read only access prevents {}", api_name(p.name)),
    )
}

/// `VIR_ERR_INVALID_ARG` for flags a procedure does not take.
pub fn check_flags(flags: u32, allowed: u32, p: &Procedure) -> Result<(), RpcError> {
    let bad = flags & !allowed;
    if bad != 0 {
        return Err(RpcError::new(
            ErrorCode::INVALID_ARG,
            driver_domain(p.driver),
            "invalid argument",
            format!("unsupported flags (0x{bad:x}) in function {}", api_name(p.name)),
        ));
    }
    Ok(())
}

/// Errors the dispatcher itself produces, before any handler runs.
pub fn unknown_program(h: &Header) -> RpcError {
    RpcError::plain(
        ErrorCode::RPC,
        ErrorDomain::RPC,
        format!("Cannot find program {} version {}", h.prog, h.vers),
    )
}

pub fn unknown_procedure(h: &Header) -> RpcError {
    RpcError::plain(
        ErrorCode::RPC,
        ErrorDomain::RPC,
        format!("unknown procedure: {}", h.proc_),
    )
}

pub fn unexpected_type(h: &Header) -> RpcError {
    RpcError::plain(
        ErrorCode::RPC,
        ErrorDomain::RPC,
        format!("Unexpected message type {}", h.type_.to_i32()),
    )
}

pub fn unexpected_status(h: &Header) -> RpcError {
    RpcError::plain(
        ErrorCode::RPC,
        ErrorDomain::RPC,
        format!("Unexpected message status {}", h.status.to_i32()),
    )
}

pub fn event_called(p: &Procedure) -> RpcError {
    RpcError::plain(
        ErrorCode::RPC,
        ErrorDomain::RPC,
        format!("procedure {} is an event the server sends, not a call", p.name),
    )
}

pub fn not_open() -> RpcError {
    RpcError::new(
        ErrorCode::INTERNAL_ERROR,
        ErrorDomain::RPC,
        "internal error",
        "connection not open",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names() {
        assert_eq!(api_name("CONNECT_LIST_ALL_DOMAINS"), "virConnectListAllDomains");
        assert_eq!(api_name("DOMAIN_CREATE"), "virDomainCreate");
        assert_eq!(api_name("NODE_GET_INFO"), "virNodeGetInfo");
        assert_eq!(api_name("DOMAIN_DEFINE_XML"), "virDomainDefineXML");
        assert_eq!(api_name("DOMAIN_LOOKUP_BY_UUID"), "virDomainLookupByUUID");
        assert_eq!(api_name("NWFILTER_GET_XML_DESC"), "virNWFilterGetXMLDesc");
        assert_eq!(
            api_name("CONNECT_LIST_ALL_NWFILTERS"),
            "virConnectListAllNWFilters"
        );
        assert_eq!(api_name("DOMAIN_GET_IOTHREAD_INFO"), "virDomainGetIOThreadInfo");
        assert_eq!(api_name("DOMAIN_GET_FSINFO"), "virDomainGetFSInfo");
        assert_eq!(api_name("DOMAIN_SET_BLOCK_IO_TUNE"), "virDomainSetBlockIoTune");
    }

    #[test]
    fn no_support_matches_libvirt_wording() {
        let p = Procedure {
            number: 273,
            name: "CONNECT_LIST_ALL_DOMAINS",
            readonly_ok: true,
            priority: modvirt_wire::Priority::Normal,
            driver: Driver::Hypervisor,
            kind: modvirt_wire::ProcKind::Call,
        };
        let e = no_support(&p);
        assert_eq!(
            e.text(),
            "this function is not supported by the connection driver: virConnectListAllDomains"
        );
        assert_eq!((e.code, e.domain), (ErrorCode::NO_SUPPORT, ErrorDomain::DOMAIN));
    }
}
