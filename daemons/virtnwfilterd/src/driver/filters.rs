//! The filters the driver knows, libvirt's rules for (re)defining one
//! (`virNWFilterObjListAssignDef`: name and UUID stay paired, no reference
//! loop) and libvirt's errors for the nwfilter driver.

use crate::nwfilter::NwFilterDef;
use modvirt_wire::nwfilter::NonnullNwfilter;
use modvirt_wire::remote::Uuid;
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use modvirt_xml::format_uuid;
use std::collections::HashSet;

/// `VIR_ERR_NO_NWFILTER`.
pub const NO_NWFILTER: ErrorCode = ErrorCode(62);

/// All filters, in definition order.
#[derive(Debug, Default)]
pub struct Filters {
    list: Vec<NwFilterDef>,
}

pub fn wire(def: &NwFilterDef) -> NonnullNwfilter {
    NonnullNwfilter {
        name: def.name.clone(),
        uuid: Uuid(def.uuid),
    }
}

impl Filters {
    pub fn iter(&self) -> impl Iterator<Item = &NwFilterDef> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn by_name(&self, name: &str) -> Option<&NwFilterDef> {
        self.list.iter().find(|f| f.name == name)
    }

    pub fn by_uuid(&self, uuid: &[u8; 16]) -> Option<&NwFilterDef> {
        self.list.iter().find(|f| &f.uuid == uuid)
    }

    /// The filter a call names (by UUID, as libvirt looks them up).
    pub fn get(&self, f: &NonnullNwfilter) -> Result<&NwFilterDef, RpcError> {
        self.by_uuid(&f.uuid.0).ok_or_else(|| no_uuid(&f.uuid.0))
    }

    /// libvirt's checks before `def` is added or replaces the filter of
    /// its name.
    pub fn check_define(&self, def: &NwFilterDef) -> Result<(), RpcError> {
        if let Some(same_uuid) = self.by_uuid(&def.uuid) {
            if same_uuid.name != def.name {
                return Err(failed(format!(
                    "filter with same UUID but different name ('{}') already exists",
                    same_uuid.name
                )));
            }
        } else if let Some(same_name) = self.by_name(&def.name) {
            return Err(failed(format!(
                "filter '{}' already exists with uuid {}",
                def.name,
                format_uuid(&same_name.uuid)
            )));
        }
        if self.leads_to(def, &def.name, &mut HashSet::new()) {
            return Err(failed("filter would introduce a loop"));
        }
        Ok(())
    }

    /// Whether `def`'s references reach a filter called `target`
    /// (through the defined filters; each is followed once).
    fn leads_to<'a>(&'a self, def: &'a NwFilterDef, target: &str, seen: &mut HashSet<&'a str>) -> bool {
        def.references().any(|r| {
            r == target
                || (seen.insert(r)
                    && self
                        .by_name(r)
                        .is_some_and(|next| self.leads_to(next, target, seen)))
        })
    }

    /// Adds `def` or replaces the filter of its name.
    pub fn put(&mut self, def: NwFilterDef) {
        match self.list.iter_mut().find(|f| f.name == def.name) {
            Some(old) => *old = def,
            None => self.list.push(def),
        }
    }

    pub fn remove(&mut self, uuid: &[u8; 16]) -> Option<NwFilterDef> {
        let at = self.list.iter().position(|f| &f.uuid == uuid)?;
        Some(self.list.remove(at))
    }
}

fn err(code: ErrorCode, prefix: &str, detail: impl Into<String>) -> RpcError {
    RpcError::new(code, ErrorDomain::NWFILTER, prefix, detail)
}

/// `VIR_ERR_NO_NWFILTER` for a UUID.
pub fn no_uuid(uuid: &[u8; 16]) -> RpcError {
    err(
        NO_NWFILTER,
        "Network filter not found",
        format!("no nwfilter with matching uuid '{}'", format_uuid(uuid)),
    )
}

/// `VIR_ERR_NO_NWFILTER` for a name.
pub fn no_name(name: &str) -> RpcError {
    err(
        NO_NWFILTER,
        "Network filter not found",
        format!("no nwfilter with matching name '{name}'"),
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
        ErrorDomain::NWFILTER,
        format!("cannot {what} '{}': {e}", path.display()),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn def(name: &str, uuid: u8, refs: &[&str]) -> NwFilterDef {
        let refs: String = refs
            .iter()
            .map(|r| format!("<filterref filter='{r}'/>"))
            .collect();
        let uuid = format_uuid(&[uuid; 16]);
        NwFilterDef::parse(
            &format!("<filter name='{name}'><uuid>{uuid}</uuid>{refs}</filter>"),
            &mut || 1,
        )
        .unwrap()
    }

    #[test]
    fn names_and_uuids_stay_paired() {
        let mut f = Filters::default();
        f.put(def("a", 1, &[]));
        assert!(f.check_define(&def("a", 1, &["x"])).is_ok());
        let e = f.check_define(&def("b", 1, &[])).unwrap_err();
        assert_eq!(
            e.text(),
            "operation failed: filter with same UUID but different name ('a') already exists"
        );
        let e = f.check_define(&def("a", 2, &[])).unwrap_err();
        assert_eq!(
            e.text(),
            "operation failed: filter 'a' already exists with uuid 01010101-0101-0101-0101-010101010101"
        );
        assert_eq!(
            (e.code, e.domain),
            (ErrorCode::OPERATION_FAILED, ErrorDomain::NWFILTER)
        );
    }

    #[test]
    fn loops_are_refused() {
        let mut f = Filters::default();
        // A reference to a filter that does not exist yet is fine.
        f.put(def("a", 1, &["b"]));
        f.put(def("b", 2, &["c", "missing"]));
        let e = f.check_define(&def("c", 3, &["a"])).unwrap_err();
        assert_eq!(e.text(), "operation failed: filter would introduce a loop");
        assert!(f.check_define(&def("self", 4, &["self"])).is_err());
        assert!(f.check_define(&def("c", 3, &["b2"])).is_ok());
        // Loops already on disk between other filters do not hang the check.
        f.put(def("x", 5, &["y"]));
        f.put(def("y", 6, &["x"]));
        assert!(f.check_define(&def("z", 7, &["x"])).is_ok());
    }

    #[test]
    fn lookup_errors() {
        assert_eq!(
            no_name("nosuch").text(),
            "Network filter not found: no nwfilter with matching name 'nosuch'"
        );
        let e = Filters::default()
            .get(&NonnullNwfilter {
                name: "x".into(),
                uuid: Uuid([0xab; 16]),
            })
            .unwrap_err();
        assert_eq!((e.code.0, e.domain.0), (62, 33));
        assert_eq!(
            e.text(),
            "Network filter not found: no nwfilter with matching uuid 'abababab-abab-abab-abab-abababababab'"
        );
    }
}
