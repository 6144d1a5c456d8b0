//! The devices of one enumeration, by name, and libvirt's errors for
//! looking them up and listing them.

use crate::device::{CapType, Device};
use modvirt_wire::nodedev::list;
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::collections::BTreeMap;

/// `VIR_ERR_NO_NODE_DEVICE`.
const NO_NODE_DEVICE: ErrorCode = ErrorCode(53);

/// Devices in name order, from enumeration number `generation`.
#[derive(Debug, Default)]
pub struct Registry {
    devices: BTreeMap<String, Device>,
    generation: u64,
}

impl Registry {
    /// A later device of the same name replaces an earlier one, as in
    /// libvirt's list.
    pub fn new(devices: Vec<Device>, generation: u64) -> Registry {
        Registry {
            devices: devices.into_iter().map(|d| (d.name.clone(), d)).collect(),
            generation,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Device> {
        self.devices.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// Devices with capability `cap` (by name; an unknown name matches
    /// none), or all without one (`NODE_NUM_OF_DEVICES`, `NODE_LIST_DEVICES`).
    pub fn with_cap<'a>(&'a self, cap: Option<&str>) -> impl Iterator<Item = &'a Device> + 'a {
        let wanted = cap.map(CapType::from_name);
        self.iter().filter(move |d| match wanted {
            None => true,
            Some(None) => false,
            Some(Some(t)) => d.has_cap(t),
        })
    }

    /// Devices `virConnectListAllNodeDevices` gives for `flags`: any of the
    /// capabilities asked for, and the activity asked for.
    pub fn matching(&self, flags: u32) -> impl Iterator<Item = &Device> {
        self.iter().filter(move |d| {
            let caps = flags & list::FILTERS_CAP;
            if caps != 0 && !d.cap_types().iter().any(|t| t.list_flag() & caps != 0) {
                return false;
            }
            if flags & list::FILTERS_ACTIVE != 0 {
                let active = d.active();
                return (flags & list::ACTIVE != 0 && active) || (flags & list::INACTIVE != 0 && !active);
            }
            true
        })
    }
}

/// `Node device not found: no node device with matching name '…'`.
pub fn not_found(name: &str) -> RpcError {
    RpcError::new(
        NO_NODE_DEVICE,
        ErrorDomain::NODEDEV,
        "Node device not found",
        format!("no node device with matching name '{name}'"),
    )
}

/// `VIR_ERR_INTERNAL_ERROR`.
pub fn internal(detail: impl Into<String>) -> RpcError {
    RpcError::new(
        ErrorCode::INTERNAL_ERROR,
        ErrorDomain::NODEDEV,
        "internal error",
        detail,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failure is the assertion
mod tests {
    use super::*;
    use crate::device::{COMPUTER, Capability, SystemCap};

    fn reg() -> Registry {
        let dev = |name: &str, cap: Capability| Device {
            name: name.into(),
            sysfs_path: None,
            devnode: None,
            devlinks: Vec::new(),
            parent: None,
            driver: None,
            cap,
        };
        Registry::new(
            vec![
                dev("scsi_target0_0_0", Capability::ScsiTarget("target0:0:0".into())),
                dev(COMPUTER, Capability::System(SystemCap::default())),
                dev("scsi_generic_sg0", Capability::ScsiGeneric("/dev/sg0".into())),
            ],
            1,
        )
    }

    fn names<'a>(it: impl Iterator<Item = &'a Device>) -> Vec<&'a str> {
        it.map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn list_flags_filter_by_any_capability_and_activity() {
        let r = reg();
        assert_eq!(
            names(r.matching(0)),
            ["computer", "scsi_generic_sg0", "scsi_target0_0_0"]
        );
        assert_eq!(
            names(r.matching(list::CAP_SYSTEM | list::CAP_SCSI_GENERIC | list::ACTIVE)),
            ["computer", "scsi_generic_sg0"]
        );
        assert_eq!(names(r.matching(list::CAP_FC_HOST)), Vec::<&str>::new());
        assert_eq!(names(r.matching(list::INACTIVE)), Vec::<&str>::new());
        assert_eq!(names(r.with_cap(Some("scsi_target"))), ["scsi_target0_0_0"]);
        assert_eq!(names(r.with_cap(Some("bogus"))), Vec::<&str>::new());
        assert_eq!(r.with_cap(None).count(), 3);
        assert_eq!(
            not_found("x").text(),
            "Node device not found: no node device with matching name 'x'"
        );
    }
}
