//! The networks the driver knows: definitions, whether each is persistent,
//! active and autostarted, and libvirt's errors for looking them up.

use crate::network::NetworkDef;
use modvirt_wire::remote::{NonnullNetwork, Uuid};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use modvirt_xml::format_uuid;

/// One network.
#[derive(Debug, Clone)]
pub struct Net {
    /// The persistent (or, for a transient network, the only) definition.
    pub def: NetworkDef,
    /// While active: the definition it was started with.
    pub live: Option<NetworkDef>,
    pub persistent: bool,
    pub autostart: bool,
}

impl Net {
    pub fn active(&self) -> bool {
        self.live.is_some()
    }

    pub fn wire(&self) -> NonnullNetwork {
        NonnullNetwork {
            name: self.def.name.clone(),
            uuid: Uuid(self.def.uuid),
        }
    }

    /// The definition `dumpxml` shows: the live one while active, unless
    /// the inactive one is asked for.
    pub fn shown(&self, inactive: bool) -> &NetworkDef {
        match &self.live {
            Some(live) if !inactive => live,
            _ => &self.def,
        }
    }
}

/// All networks, in definition order.
#[derive(Debug, Default)]
pub struct Nets {
    list: Vec<Net>,
}

impl Nets {
    pub fn iter(&self) -> impl Iterator<Item = &Net> {
        self.list.iter()
    }

    pub fn by_name(&self, name: &str) -> Option<&Net> {
        self.list.iter().find(|n| n.def.name == name)
    }

    pub fn by_name_mut(&mut self, name: &str) -> Option<&mut Net> {
        self.list.iter_mut().find(|n| n.def.name == name)
    }

    pub fn by_uuid(&self, uuid: &[u8; 16]) -> Option<&Net> {
        self.list.iter().find(|n| &n.def.uuid == uuid)
    }

    /// The network a call names (by UUID, as libvirt looks them up), with
    /// libvirt's error when there is none.
    pub fn get(&self, net: &NonnullNetwork) -> Result<&Net, RpcError> {
        self.by_uuid(&net.uuid.0).ok_or_else(|| not_found_uuid(net))
    }

    pub fn get_mut(&mut self, net: &NonnullNetwork) -> Result<&mut Net, RpcError> {
        let uuid = net.uuid.0;
        self.list
            .iter_mut()
            .find(|n| n.def.uuid == uuid)
            .ok_or_else(|| not_found_uuid(net))
    }

    /// Refuses a definition whose name or UUID belongs to another network
    /// (libvirt's `virNetworkObjIsDuplicate`); `Ok(true)` when it replaces
    /// the definition of the same network.
    pub fn check_unique(&self, def: &NetworkDef) -> Result<bool, RpcError> {
        if let Some(same_uuid) = self.by_uuid(&def.uuid) {
            if same_uuid.def.name != def.name {
                return Err(failed(format!(
                    "network '{}' is already defined with uuid {}",
                    same_uuid.def.name,
                    format_uuid(&def.uuid)
                )));
            }
            return Ok(true);
        }
        if let Some(same_name) = self.by_name(&def.name) {
            return Err(failed(format!(
                "network '{}' already exists with uuid {}",
                def.name,
                format_uuid(&same_name.def.uuid)
            )));
        }
        Ok(false)
    }

    pub fn insert(&mut self, net: Net) {
        match self.list.iter_mut().find(|n| n.def.uuid == net.def.uuid) {
            Some(old) => *old = net,
            None => self.list.push(net),
        }
    }

    pub fn remove(&mut self, uuid: &[u8; 16]) -> Option<Net> {
        let at = self.list.iter().position(|n| &n.def.uuid == uuid)?;
        Some(self.list.remove(at))
    }

    /// Whether some network's definition (live or persistent) uses bridge `name`.
    pub fn bridge_in_use(&self, name: &str, except: Option<&[u8; 16]>) -> bool {
        self.list.iter().filter(|n| Some(&n.def.uuid) != except).any(|n| {
            n.def.bridge_name() == Some(name) || n.live.as_ref().and_then(|l| l.bridge_name()) == Some(name)
        })
    }
}

fn err(code: ErrorCode, prefix: &str, detail: impl Into<String>) -> RpcError {
    RpcError::new(code, ErrorDomain::NETWORK, prefix, detail)
}

/// `VIR_ERR_NO_NETWORK`: `Network not found: …`.
pub fn not_found(detail: impl Into<String>) -> RpcError {
    err(ErrorCode::NO_NETWORK, "Network not found", detail)
}

fn not_found_uuid(net: &NonnullNetwork) -> RpcError {
    not_found(format!(
        "no network with matching uuid '{}' ({})",
        format_uuid(&net.uuid.0),
        net.name
    ))
}

/// `VIR_ERR_OPERATION_INVALID`.
pub fn invalid(detail: impl Into<String>) -> RpcError {
    err(
        ErrorCode::OPERATION_INVALID,
        "Requested operation is not valid",
        detail,
    )
}

/// `VIR_ERR_OPERATION_FAILED`.
pub fn failed(detail: impl Into<String>) -> RpcError {
    err(ErrorCode::OPERATION_FAILED, "operation failed", detail)
}

/// `VIR_ERR_INTERNAL_ERROR`.
pub fn internal(detail: impl Into<String>) -> RpcError {
    err(ErrorCode::INTERNAL_ERROR, "internal error", detail)
}

/// `VIR_ERR_SYSTEM_ERROR` for a file the driver could not write.
pub fn io_error(what: &str, path: &std::path::Path, e: &std::io::Error) -> RpcError {
    RpcError::plain(
        ErrorCode::SYSTEM_ERROR,
        ErrorDomain::NETWORK,
        format!("cannot {what} '{}': {}", path.display(), e),
    )
}
