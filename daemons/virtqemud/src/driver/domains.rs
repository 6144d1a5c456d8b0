//! The domains a QEMU driver knows: persistent definitions and running
//! guests, found by name, UUID or id. Each domain sits behind its own lock;
//! state-changing work also takes the domain's job lock (the runtime's
//! `JobLocks`), so one job runs at a time and waiting shows in `hangs`.

use crate::domain::DomainDef;
use crate::qemu::{QemuProcess, Qmp};
use modvirt_runtime::idle::Inhibitor;
use modvirt_wire::domain::{list, state};
use modvirt_wire::remote::{NonnullDomain, Uuid};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// A running (or paused) guest.
#[derive(Debug)]
pub struct Running {
    pub id: i32,
    pub process: QemuProcess,
    pub qmp: Qmp,
    /// The definition it runs with.
    pub live: DomainDef,
    pub state: i32,
    pub reason: i32,
    /// When `state` last changed.
    pub since: Instant,
    /// Set by destroy/shutdown so the exit is reported with that reason.
    pub stopping: Option<i32>,
    /// The reason the next STOP event is for (set by `suspend` before it
    /// sends `stop`).
    pub pause_reason: Option<i32>,
    /// Keeps the daemon from idling out while the guest runs.
    pub _hold: Inhibitor,
}

/// What the driver knows of one domain.
#[derive(Debug)]
pub struct DomainState {
    /// The persistent (or, for a transient guest, its only) definition.
    pub def: DomainDef,
    pub persistent: bool,
    pub autostart: bool,
    pub run: Option<Running>,
    /// Why it last stopped (`VIR_DOMAIN_SHUTOFF_*`), while shut off.
    pub shutoff_reason: i32,
}

impl DomainState {
    /// `virDomainState` and reason now.
    pub fn state(&self) -> (i32, i32) {
        match &self.run {
            Some(r) => (r.state, r.reason),
            None => (state::SHUTOFF, self.shutoff_reason),
        }
    }

    pub fn id(&self) -> i32 {
        self.run.as_ref().map_or(-1, |r| r.id)
    }
}

/// One domain: identity outside the lock, the rest inside.
#[derive(Debug)]
pub struct Dom {
    pub uuid: [u8; 16],
    pub name: String,
    state: Mutex<DomainState>,
}

impl Dom {
    pub fn new(def: DomainDef, persistent: bool, autostart: bool) -> Arc<Dom> {
        Arc::new(Dom {
            uuid: def.uuid,
            name: def.name.clone(),
            state: Mutex::new(DomainState {
                def,
                persistent,
                autostart,
                run: None,
                shutoff_reason: modvirt_wire::domain::reason::shutoff::UNKNOWN,
            }),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, DomainState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The wire form (`id` -1 when not running).
    pub fn wire(&self) -> NonnullDomain {
        NonnullDomain {
            name: self.name.clone(),
            uuid: Uuid(self.uuid),
            id: self.lock().id(),
        }
    }

    /// The job-lock object name.
    pub fn job_object(&self) -> String {
        format!("domain:{}", self.name)
    }
}

/// Every domain of the driver.
#[derive(Debug, Default)]
pub struct Domains {
    inner: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    by_uuid: HashMap<[u8; 16], Arc<Dom>>,
    by_name: HashMap<String, [u8; 16]>,
}

/// libvirt's `VIR_ERR_NO_DOMAIN` from the QEMU driver.
pub fn no_domain(detail: String) -> RpcError {
    RpcError::new(
        ErrorCode::NO_DOMAIN,
        ErrorDomain::QEMU,
        "Domain not found",
        detail,
    )
}

/// `VIR_ERR_OPERATION_INVALID` (e.g. "domain is not running").
pub fn invalid(detail: impl Into<String>) -> RpcError {
    RpcError::new(
        ErrorCode::OPERATION_INVALID,
        ErrorDomain::QEMU,
        "Requested operation is not valid",
        detail,
    )
}

/// `VIR_ERR_INTERNAL_ERROR`.
pub fn internal(detail: impl Into<String>) -> RpcError {
    RpcError::new(
        ErrorCode::INTERNAL_ERROR,
        ErrorDomain::QEMU,
        "internal error",
        detail,
    )
}

/// `VIR_ERR_OPERATION_FAILED`.
pub fn failed(detail: impl Into<String>) -> RpcError {
    RpcError::new(
        ErrorCode::OPERATION_FAILED,
        ErrorDomain::QEMU,
        "operation failed",
        detail,
    )
}

impl Index {
    /// libvirt's error when `name` or `uuid` belongs to another domain.
    fn conflict(&self, name: &str, uuid: &[u8; 16]) -> Option<RpcError> {
        if let Some(other) = self.by_name.get(name)
            && other != uuid
        {
            return Some(invalid(format!(
                "domain '{name}' already exists with uuid {}",
                crate::domain::format_uuid(other)
            )));
        }
        if let Some(other) = self.by_uuid.get(uuid)
            && other.name != name
        {
            return Some(invalid(format!(
                "domain '{}' is already defined with uuid {}",
                other.name,
                crate::domain::format_uuid(uuid)
            )));
        }
        None
    }
}

impl Domains {
    fn lock(&self) -> MutexGuard<'_, Index> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn by_name(&self, name: &str) -> Result<Arc<Dom>, RpcError> {
        let idx = self.lock();
        idx.by_name
            .get(name)
            .and_then(|u| idx.by_uuid.get(u))
            .cloned()
            .ok_or_else(|| no_domain(format!("no domain with matching name '{name}'")))
    }

    pub fn by_uuid(&self, uuid: &[u8; 16]) -> Result<Arc<Dom>, RpcError> {
        self.lock().by_uuid.get(uuid).cloned().ok_or_else(|| {
            no_domain(format!(
                "no domain with matching uuid '{}'",
                crate::domain::format_uuid(uuid)
            ))
        })
    }

    /// The domain a client names: by UUID, as libvirt's remote driver does
    /// (the name is only for the message).
    pub fn get(&self, dom: &NonnullDomain) -> Result<Arc<Dom>, RpcError> {
        self.lock().by_uuid.get(&dom.uuid.0).cloned().ok_or_else(|| {
            no_domain(format!(
                "no domain with matching uuid '{}' ({})",
                dom.uuid, dom.name
            ))
        })
    }

    pub fn by_id(&self, id: i32) -> Result<Arc<Dom>, RpcError> {
        self.all()
            .into_iter()
            .find(|d| id >= 0 && d.lock().id() == id)
            .ok_or_else(|| no_domain(format!("no domain with matching id {id}")))
    }

    /// Every domain, sorted by name.
    pub fn all(&self) -> Vec<Arc<Dom>> {
        let mut v: Vec<Arc<Dom>> = self.lock().by_uuid.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn len(&self) -> usize {
        self.lock().by_uuid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a new domain; refuses a name or UUID already used by another
    /// domain, with libvirt's messages.
    pub fn insert(&self, dom: Arc<Dom>) -> Result<(), RpcError> {
        let mut idx = self.lock();
        if let Some(e) = idx.conflict(&dom.name, &dom.uuid) {
            return Err(e);
        }
        idx.by_name.insert(dom.name.clone(), dom.uuid);
        idx.by_uuid.insert(dom.uuid, dom);
        Ok(())
    }

    /// Refuses `name` or `uuid` if another domain holds either (the same
    /// domain, both matching, is fine).
    pub fn check_unique(&self, name: &str, uuid: &[u8; 16]) -> Result<(), RpcError> {
        self.lock().conflict(name, uuid).map_or(Ok(()), Err)
    }

    /// Forgets a domain (undefined and not running, or a transient one that stopped).
    pub fn remove(&self, dom: &Dom) {
        let mut idx = self.lock();
        if idx
            .by_uuid
            .get(&dom.uuid)
            .is_some_and(|d| std::ptr::eq(d.as_ref(), dom))
        {
            idx.by_uuid.remove(&dom.uuid);
            idx.by_name.remove(&dom.name);
        }
    }
}

/// Whether a domain passes `virConnectListAllDomains` filter `flags`.
pub fn matches_filter(st: &DomainState, flags: u32) -> bool {
    let active = st.run.is_some();
    let (s, _) = st.state();
    let group = |a: u32, b: u32, in_a: bool| {
        flags & (a | b) == 0 || (flags & a != 0 && in_a) || (flags & b != 0 && !in_a)
    };
    let state_ok = flags & (list::RUNNING | list::PAUSED | list::SHUTOFF | list::OTHER) == 0
        || (flags & list::RUNNING != 0 && s == state::RUNNING)
        || (flags & list::PAUSED != 0 && s == state::PAUSED)
        || (flags & list::SHUTOFF != 0 && s == state::SHUTOFF)
        || (flags & list::OTHER != 0 && !matches!(s, state::RUNNING | state::PAUSED | state::SHUTOFF));
    group(list::ACTIVE, list::INACTIVE, active)
        && group(list::PERSISTENT, list::TRANSIENT, st.persistent)
        && state_ok
        // No managed save images and no snapshots exist in this driver.
        && group(list::MANAGEDSAVE, list::NO_MANAGEDSAVE, false)
        && group(list::AUTOSTART, list::NO_AUTOSTART, st.autostart)
        && group(list::HAS_SNAPSHOT, list::NO_SNAPSHOT, false)
        && group(list::HAS_CHECKPOINT, list::NO_CHECKPOINT, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dom_state(persistent: bool, autostart: bool) -> DomainState {
        let xml = "<domain type='qemu'><name>t</name><memory>65536</memory><vcpu>1</vcpu>\
                   <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>";
        let def = DomainDef::parse(xml, &mut || 7u64).expect("parse");
        DomainState {
            def,
            persistent,
            autostart,
            run: None,
            shutoff_reason: 0,
        }
    }

    #[test]
    fn list_filters_follow_libvirt() {
        let st = dom_state(true, true);
        assert!(matches_filter(&st, 0));
        assert!(matches_filter(
            &st,
            list::INACTIVE | list::PERSISTENT | list::AUTOSTART
        ));
        assert!(
            matches_filter(&st, list::ACTIVE | list::INACTIVE),
            "both halves of a group: either"
        );
        assert!(!matches_filter(&st, list::ACTIVE));
        assert!(!matches_filter(&st, list::TRANSIENT));
        assert!(!matches_filter(&st, list::NO_AUTOSTART));
        assert!(matches_filter(&st, list::SHUTOFF) && !matches_filter(&st, list::RUNNING));
        assert!(!matches_filter(&st, list::PAUSED | list::OTHER));
        assert!(matches_filter(
            &st,
            list::NO_SNAPSHOT | list::NO_MANAGEDSAVE | list::NO_CHECKPOINT
        ));
        assert!(!matches_filter(&st, list::HAS_SNAPSHOT) && !matches_filter(&st, list::MANAGEDSAVE));
        let transient = dom_state(false, false);
        assert!(matches_filter(&transient, list::TRANSIENT | list::NO_AUTOSTART));
    }

    #[test]
    fn names_and_uuids_stay_unique() {
        let d = Domains::default();
        let a = Dom::new(dom_state(true, false).def, true, false);
        d.insert(a.clone()).expect("first");
        assert!(d.by_name("t").is_ok() && d.by_uuid(&a.uuid).is_ok());
        let mut other = dom_state(true, false).def;
        other.uuid[0] ^= 1;
        let e = d
            .insert(Dom::new(other, true, false))
            .expect_err("same name, other uuid");
        assert!(e.text().contains("already exists with uuid"), "{}", e.text());
        d.remove(&a);
        assert!(d.is_empty());
        assert!(
            d.by_name("t")
                .unwrap_err()
                .text()
                .contains("no domain with matching name 't'")
        );
    }
}
