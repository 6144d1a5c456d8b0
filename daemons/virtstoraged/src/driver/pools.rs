//! The pools the driver knows, with their volumes: definitions, whether
//! each pool is persistent, active, autostarted or busy, and libvirt's
//! errors for looking them up.
//!
//! Busy, as libvirt counts it: a pool is `starting` while it is built,
//! started and first refreshed, and has `jobs` while volumes are being
//! created in it or it is being refreshed; both keep it from being
//! destroyed, deleted or undefined meanwhile (the registry lock is not held
//! across the slow parts).

use crate::conf::{PoolDef, VolDef, format_uuid, sanitize_path};
use modvirt_wire::error::LEVEL_ERROR;
use modvirt_wire::remote::Uuid;
use modvirt_wire::storage::{NonnullStoragePool, NonnullStorageVol};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};

/// One volume of an active pool.
#[derive(Debug, Clone)]
pub struct Vol {
    pub def: VolDef,
    /// Being created: listed, but not yet usable.
    pub building: bool,
}

impl Vol {
    pub fn key(&self) -> &str {
        self.def.key.as_deref().unwrap_or("")
    }

    pub fn path(&self) -> &str {
        self.def.target.path.as_deref().unwrap_or("")
    }
}

/// One pool.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The live definition while active, else the persistent one.
    pub def: PoolDef,
    /// A persistent definition given while the pool was active: it takes
    /// over when the pool stops (`pool-dumpxml --inactive` shows it).
    pub new_def: Option<PoolDef>,
    pub active: bool,
    pub persistent: bool,
    pub autostart: bool,
    pub starting: bool,
    pub jobs: u32,
    pub vols: Vec<Vol>,
}

impl Pool {
    pub fn new(def: PoolDef, persistent: bool) -> Self {
        Self {
            def,
            new_def: None,
            active: false,
            persistent,
            autostart: false,
            starting: false,
            jobs: 0,
            vols: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn wire(&self) -> NonnullStoragePool {
        NonnullStoragePool {
            name: self.def.name.clone(),
            uuid: Uuid(self.def.uuid),
        }
    }

    pub fn vol_wire(&self, vol: &Vol) -> NonnullStorageVol {
        NonnullStorageVol {
            pool: self.def.name.clone(),
            name: vol.def.name.clone(),
            key: vol.key().to_owned(),
        }
    }

    /// What `pool-dumpxml` shows (`--inactive`: the pending persistent
    /// definition, if there is one).
    pub fn shown(&self, inactive: bool) -> &PoolDef {
        match &self.new_def {
            Some(new) if inactive => new,
            _ => &self.def,
        }
    }

    /// Refuses an operation while the pool starts or has jobs running.
    pub fn check_idle(&self) -> Result<(), RpcError> {
        if self.starting {
            return Err(invalid(format!("storage pool '{}' is starting up", self.name())));
        }
        if self.jobs > 0 {
            return Err(internal(format!(
                "pool '{}' has asynchronous jobs running.",
                self.name()
            )));
        }
        Ok(())
    }

    pub fn require_active(&self) -> Result<(), RpcError> {
        if self.active {
            Ok(())
        } else {
            Err(invalid(format!("storage pool '{}' is not active", self.name())))
        }
    }

    pub fn vol(&self, name: &str) -> Option<&Vol> {
        self.vols.iter().find(|v| v.def.name == name)
    }

    pub fn vol_mut(&mut self, name: &str) -> Option<&mut Vol> {
        self.vols.iter_mut().find(|v| v.def.name == name)
    }

    /// After the pool stopped: a persistent pool takes its pending
    /// definition; `false` when a transient pool must be dropped
    /// (`virStoragePoolUpdateInactive`).
    pub fn became_inactive(&mut self) -> bool {
        self.active = false;
        self.vols.clear();
        if let Some(new) = self.new_def.take() {
            self.def = new;
        }
        self.persistent
    }
}

/// All pools, in definition order.
#[derive(Debug, Default)]
pub struct Pools {
    list: Vec<Pool>,
}

impl Pools {
    pub fn iter(&self) -> impl Iterator<Item = &Pool> {
        self.list.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Pool> {
        self.list.iter_mut()
    }

    pub fn by_name(&self, name: &str) -> Option<&Pool> {
        self.list.iter().find(|p| p.def.name == name)
    }

    pub fn by_name_mut(&mut self, name: &str) -> Option<&mut Pool> {
        self.list.iter_mut().find(|p| p.def.name == name)
    }

    pub fn by_uuid(&self, uuid: &[u8; 16]) -> Option<&Pool> {
        self.list.iter().find(|p| &p.def.uuid == uuid)
    }

    pub fn by_uuid_mut(&mut self, uuid: &[u8; 16]) -> Option<&mut Pool> {
        self.list.iter_mut().find(|p| &p.def.uuid == uuid)
    }

    /// The pool a call names (by UUID, as libvirt looks them up).
    pub fn get(&self, pool: &NonnullStoragePool) -> Result<&Pool, RpcError> {
        self.by_uuid(&pool.uuid.0)
            .ok_or_else(|| pool_not_found_uuid(pool))
    }

    pub fn get_mut(&mut self, pool: &NonnullStoragePool) -> Result<&mut Pool, RpcError> {
        let uuid = pool.uuid.0;
        self.by_uuid_mut(&uuid).ok_or_else(|| pool_not_found_uuid(pool))
    }

    /// The pool of a volume a call names (by the pool's name).
    pub fn named(&self, name: &str) -> Result<&Pool, RpcError> {
        self.by_name(name).ok_or_else(|| pool_not_found_name(name))
    }

    pub fn named_mut(&mut self, name: &str) -> Result<&mut Pool, RpcError> {
        self.by_name_mut(name).ok_or_else(|| pool_not_found_name(name))
    }

    /// The volume a call names, in its active pool
    /// (`virStorageVolDefFromVol`).
    pub fn vol(&self, vol: &NonnullStorageVol) -> Result<(&Pool, &Vol), RpcError> {
        let pool = self.named(&vol.pool)?;
        pool.require_active()?;
        let found = pool.vol(&vol.name).ok_or_else(|| vol_not_found_name(&vol.name))?;
        Ok((pool, found))
    }

    /// The first active pool with a volume whose key is `key`.
    pub fn vol_by_key(&self, key: &str) -> Option<(&Pool, &Vol)> {
        self.list
            .iter()
            .filter(|p| p.active)
            .find_map(|p| p.vols.iter().find(|v| v.key() == key).map(|v| (p, v)))
    }

    /// The first active pool with a volume at `path` (cleaned up as
    /// libvirt does first), and the error libvirt gives when there is none.
    pub fn vol_by_path(&self, path: &str) -> Result<(&Pool, &Vol), RpcError> {
        let clean = sanitize_path(path);
        self.list
            .iter()
            .filter(|p| p.active)
            .find_map(|p| p.vols.iter().find(|v| v.path() == clean).map(|v| (p, v)))
            .ok_or_else(|| {
                if clean == path {
                    vol_not_found(format!("no storage vol with matching path '{path}'"))
                } else {
                    vol_not_found(format!("no storage vol with matching path '{path}' ({clean})"))
                }
            })
    }

    /// libvirt's checks before a definition is added
    /// (`virStoragePoolObjSourceFindDuplicate`, `virStoragePoolObjIsDuplicate`):
    /// another pool on the same directory, the same UUID under another
    /// name, the same name under another UUID, and (`check_live`, for
    /// `pool-create`) an active pool. `Ok(true)` when `def` is for a pool
    /// already known.
    pub fn check_duplicate(&self, def: &PoolDef, check_live: bool) -> Result<bool, RpcError> {
        if let Some(other) = self.list.iter().find(|p| {
            p.def.name != def.name && p.def.pool_type == def.pool_type && p.def.target_path == def.target_path
        }) {
            return Err(failed(format!(
                "Storage source conflict with pool: '{}'",
                other.name()
            )));
        }
        if let Some(same) = self.by_uuid(&def.uuid) {
            if same.def.name != def.name {
                return Err(failed(format!(
                    "pool '{}' is already defined with uuid {}",
                    same.name(),
                    format_uuid(&same.def.uuid)
                )));
            }
            if check_live {
                if same.active {
                    return Err(invalid(format!("pool is already active as '{}'", same.name())));
                }
                if same.starting {
                    return Err(invalid(format!("pool '{}' is starting up", same.name())));
                }
            }
            return Ok(true);
        }
        if let Some(same) = self.by_name(&def.name) {
            return Err(failed(format!(
                "pool '{}' already exists with uuid {}",
                def.name,
                format_uuid(&same.def.uuid)
            )));
        }
        Ok(false)
    }

    pub fn insert(&mut self, pool: Pool) {
        match self.list.iter_mut().find(|p| p.def.uuid == pool.def.uuid) {
            Some(old) => *old = pool,
            None => self.list.push(pool),
        }
    }

    pub fn remove(&mut self, uuid: &[u8; 16]) -> Option<Pool> {
        let at = self.list.iter().position(|p| &p.def.uuid == uuid)?;
        Some(self.list.remove(at))
    }
}

fn err(code: ErrorCode, prefix: &str, detail: impl Into<String>) -> RpcError {
    RpcError::new(code, ErrorDomain::STORAGE, prefix, detail)
}

/// `VIR_ERR_NO_STORAGE_POOL` (49).
pub fn pool_not_found(detail: impl Into<String>) -> RpcError {
    err(ErrorCode(49), "Storage pool not found", detail)
}

pub fn pool_not_found_name(name: &str) -> RpcError {
    pool_not_found(format!("no storage pool with matching name '{name}'"))
}

fn pool_not_found_uuid(pool: &NonnullStoragePool) -> RpcError {
    pool_not_found(format!(
        "no storage pool with matching uuid '{}' ({})",
        format_uuid(&pool.uuid.0),
        pool.name
    ))
}

/// `VIR_ERR_NO_STORAGE_VOL` (50).
pub fn vol_not_found(detail: impl Into<String>) -> RpcError {
    err(ErrorCode(50), "Storage volume not found", detail)
}

pub fn vol_not_found_name(name: &str) -> RpcError {
    vol_not_found(format!("no storage vol with matching name '{name}'"))
}

/// `VIR_ERR_STORAGE_VOL_EXIST` (90): libvirt's message puts the detail in
/// the middle (`storage volume 'x' exists already`).
pub fn vol_exists(name: &str) -> RpcError {
    let detail = format!("'{name}'");
    RpcError {
        code: ErrorCode(90),
        domain: ErrorDomain::STORAGE,
        message: Some(format!("storage volume {detail} exists already")),
        level: LEVEL_ERROR,
        dom: None,
        str1: Some("storage volume %s exists already".into()),
        str2: Some(detail),
        str3: None,
        int1: -1,
        int2: -1,
        net: None,
    }
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

/// `VIR_ERR_CONFIG_UNSUPPORTED`.
pub fn unsupported(detail: impl Into<String>) -> RpcError {
    err(ErrorCode(67), "unsupported configuration", detail)
}

/// `VIR_ERR_INVALID_ARG`.
pub fn invalid_arg(detail: impl Into<String>) -> RpcError {
    err(ErrorCode::INVALID_ARG, "invalid argument", detail)
}

/// `VIR_ERR_SYSTEM_ERROR` as `virReportSystemError` makes it: `what:
/// strerror(errno)`, with the errno in `int1`.
pub fn system_error(domain: ErrorDomain, what: &str, e: &std::io::Error) -> RpcError {
    let errno = e.raw_os_error();
    let text = errno.map_or_else(
        || e.to_string(),
        |n| nix::errno::Errno::from_raw(n).desc().to_owned(),
    );
    let mut out = RpcError::plain(ErrorCode::SYSTEM_ERROR, domain, format!("{what}: {text}"));
    out.int1 = errno.unwrap_or(-1);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::conf::PoolDef;

    fn def(name: &str, uuid: u8, path: &str) -> PoolDef {
        let xml = format!(
            "<pool type='dir'><name>{name}</name><uuid>{}</uuid><target><path>{path}</path></target></pool>",
            format_uuid(&[uuid; 16])
        );
        PoolDef::parse(&xml, &mut || 0u64).unwrap()
    }

    #[test]
    fn duplicates_are_refused_as_libvirt_refuses_them() {
        let mut pools = Pools::default();
        pools.insert(Pool::new(def("a", 1, "/srv/a"), true));
        assert_eq!(pools.check_duplicate(&def("a", 1, "/srv/a2"), false), Ok(true));
        assert_eq!(pools.check_duplicate(&def("b", 2, "/srv/b"), false), Ok(false));
        let text = |e: RpcError| (e.code.0, e.domain.0, e.text().to_owned());
        assert_eq!(
            text(pools.check_duplicate(&def("b", 2, "/srv/a"), false).unwrap_err()),
            (
                9,
                18,
                "operation failed: Storage source conflict with pool: 'a'".into()
            )
        );
        assert_eq!(
            text(pools.check_duplicate(&def("b", 1, "/srv/b"), false).unwrap_err()),
            (
                9,
                18,
                "operation failed: pool 'a' is already defined with uuid 01010101-0101-0101-0101-010101010101".into()
            )
        );
        assert_eq!(
            text(pools.check_duplicate(&def("a", 2, "/srv/b"), false).unwrap_err()),
            (
                9,
                18,
                "operation failed: pool 'a' already exists with uuid 01010101-0101-0101-0101-010101010101"
                    .into()
            )
        );
        pools.by_name_mut("a").unwrap().active = true;
        assert_eq!(
            text(pools.check_duplicate(&def("a", 1, "/srv/a"), true).unwrap_err()),
            (
                55,
                18,
                "Requested operation is not valid: pool is already active as 'a'".into()
            )
        );
    }

    #[test]
    fn lookups_name_what_was_not_found() {
        let mut pools = Pools::default();
        pools.insert(Pool::new(def("a", 1, "/srv/a"), true));
        let wire = NonnullStoragePool {
            name: "gone".into(),
            uuid: Uuid([2; 16]),
        };
        let e = pools.get(&wire).unwrap_err();
        assert_eq!((e.code.0, e.domain.0), (49, 18));
        assert_eq!(
            e.text(),
            "Storage pool not found: no storage pool with matching uuid '02020202-0202-0202-0202-020202020202' (gone)"
        );
        let vol = NonnullStorageVol {
            pool: "a".into(),
            name: "x".into(),
            key: "/srv/a/x".into(),
        };
        assert_eq!(
            pools.vol(&vol).unwrap_err().text(),
            "Requested operation is not valid: storage pool 'a' is not active"
        );
        pools.by_name_mut("a").unwrap().active = true;
        let e = pools.vol(&vol).unwrap_err();
        assert_eq!(
            (e.code.0, e.text()),
            (
                50,
                "Storage volume not found: no storage vol with matching name 'x'"
            )
        );
        assert_eq!(
            pools.vol_by_path("/srv//a/x").unwrap_err().text(),
            "Storage volume not found: no storage vol with matching path '/srv//a/x' (/srv/a/x)"
        );
        let e = vol_exists("x");
        assert_eq!(
            (e.code.0, e.domain.0, e.text()),
            (90, 18, "storage volume 'x' exists already")
        );
        let e = system_error(
            ErrorDomain::STORAGE,
            "failed to remove pool '/srv/a'",
            &std::io::Error::from_raw_os_error(39),
        );
        assert_eq!((e.code.0, e.int1), (38, 39));
        assert_eq!(e.text(), "failed to remove pool '/srv/a': Directory not empty");
    }
}
