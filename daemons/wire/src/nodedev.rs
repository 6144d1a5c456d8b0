//! Arguments and return values of the REMOTE program's node device
//! procedures (`remote_protocol.x`, `remote_node_*device*` /
//! `remote_connect_list_all_node_devices`), the public
//! `virConnectListAllNodeDeviceFlags`, and the node device events
//! (`remote_connect_node_device_event_*`, `remote_node_device_event_*_msg`).
//!
//! A node device travels as `remote_nonnull_node_device`: only its name.
//! Calls on one device name it with a plain string (`name`), not with the
//! struct.

use crate::xdr_struct;

/// `REMOTE_NODE_DEVICE_LIST_MAX`: names in a list reply.
pub const NODE_DEVICE_LIST_MAX: u32 = 65536;
/// `REMOTE_NODE_DEVICE_CAPS_LIST_MAX`: capability names of one device.
pub const NODE_DEVICE_CAPS_LIST_MAX: u32 = 65536;

/// `virConnectListAllNodeDeviceFlags`.
pub mod list {
    pub const CAP_SYSTEM: u32 = 1 << 0;
    pub const CAP_PCI_DEV: u32 = 1 << 1;
    pub const CAP_USB_DEV: u32 = 1 << 2;
    pub const CAP_USB_INTERFACE: u32 = 1 << 3;
    pub const CAP_NET: u32 = 1 << 4;
    pub const CAP_SCSI_HOST: u32 = 1 << 5;
    pub const CAP_SCSI_TARGET: u32 = 1 << 6;
    pub const CAP_SCSI: u32 = 1 << 7;
    pub const CAP_STORAGE: u32 = 1 << 8;
    pub const CAP_FC_HOST: u32 = 1 << 9;
    pub const CAP_VPORTS: u32 = 1 << 10;
    pub const CAP_SCSI_GENERIC: u32 = 1 << 11;
    pub const CAP_DRM: u32 = 1 << 12;
    pub const CAP_MDEV_TYPES: u32 = 1 << 13;
    pub const CAP_MDEV: u32 = 1 << 14;
    pub const CAP_CCW_DEV: u32 = 1 << 15;
    pub const CAP_CSS_DEV: u32 = 1 << 16;
    pub const CAP_VDPA: u32 = 1 << 17;
    pub const CAP_AP_CARD: u32 = 1 << 18;
    pub const CAP_AP_QUEUE: u32 = 1 << 19;
    pub const CAP_AP_MATRIX: u32 = 1 << 20;
    pub const CAP_VPD: u32 = 1 << 21;
    /// Every `CAP_*` flag (`VIR_CONNECT_LIST_NODE_DEVICES_FILTERS_CAP`).
    pub const FILTERS_CAP: u32 = (1 << 22) - 1;
    pub const INACTIVE: u32 = 1 << 30;
    pub const ACTIVE: u32 = 1 << 31;
    /// `VIR_CONNECT_LIST_NODE_DEVICES_FILTERS_ACTIVE`.
    pub const FILTERS_ACTIVE: u32 = ACTIVE | INACTIVE;
    /// Everything libvirt 9.0 accepts (`…_FILTERS_ALL`).
    pub const ALL: u32 = FILTERS_CAP | FILTERS_ACTIVE;
}

xdr_struct! {
    /// `remote_nonnull_node_device`.
    pub struct NonnullNodeDevice {
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_node_num_of_devices_args`.
    pub struct NodeNumOfDevicesArgs {
        pub cap: Option<String>,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_node_num_of_devices_ret` / `remote_node_device_num_of_caps_ret`.
    pub struct NodeNumRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// `remote_node_list_devices_args`.
    pub struct NodeListDevicesArgs {
        pub cap: Option<String>,
        pub maxnames: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_node_list_devices_ret`.
    pub struct NodeListDevicesRet {
        pub names: Vec<String> [max NODE_DEVICE_LIST_MAX],
    }
}

xdr_struct! {
    /// Arguments that are only a device name (`NODE_DEVICE_LOOKUP_BY_NAME`,
    /// `NODE_DEVICE_GET_PARENT`, `NODE_DEVICE_NUM_OF_CAPS`,
    /// `NODE_DEVICE_IS_ACTIVE`, `NODE_DEVICE_IS_PERSISTENT`,
    /// `NODE_DEVICE_GET_AUTOSTART`).
    pub struct NodeDeviceNameArgs {
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_node_device_lookup_by_name_ret`.
    pub struct NodeDeviceRet {
        pub dev: NonnullNodeDevice,
    }
}

xdr_struct! {
    /// `remote_node_device_get_xml_desc_args`.
    pub struct NodeDeviceGetXmlDescArgs {
        pub name: String,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_node_device_get_xml_desc_ret`.
    pub struct NodeDeviceGetXmlDescRet {
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_node_device_get_parent_ret`: none for the root device.
    pub struct NodeDeviceGetParentRet {
        pub parent: Option<String>,
    }
}

xdr_struct! {
    /// `remote_node_device_list_caps_args`.
    pub struct NodeDeviceListCapsArgs {
        pub name: String,
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// `remote_node_device_list_caps_ret`.
    pub struct NodeDeviceListCapsRet {
        pub names: Vec<String> [max NODE_DEVICE_CAPS_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_connect_list_all_node_devices_args`.
    pub struct ConnectListAllNodeDevicesArgs {
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_node_devices_ret`.
    pub struct ConnectListAllNodeDevicesRet {
        pub devices: Vec<NonnullNodeDevice> [max NODE_DEVICE_LIST_MAX],
        pub ret: u32,
    }
}

xdr_struct! {
    /// `remote_node_device_is_active_ret`.
    pub struct NodeDeviceIsActiveRet {
        pub active: i32,
    }
}

xdr_struct! {
    /// `remote_node_device_is_persistent_ret`.
    pub struct NodeDeviceIsPersistentRet {
        pub persistent: i32,
    }
}

xdr_struct! {
    /// `remote_node_device_get_autostart_ret`.
    pub struct NodeDeviceGetAutostartRet {
        pub autostart: i32,
    }
}

/// Node device events (`libvirt-nodedev.h` as of libvirt 9.0).
pub mod event {
    /// `virNodeDeviceEventID`.
    pub mod id {
        pub const LIFECYCLE: i32 = 0;
        pub const UPDATE: i32 = 1;
        /// `VIR_NODE_DEVICE_EVENT_ID_LAST`: event ids are below it.
        pub const LAST: i32 = 2;
    }

    /// `virNodeDeviceEventLifecycleType`; the detail is always 0.
    pub const CREATED: i32 = 0;
    pub const DELETED: i32 = 1;
    /// Mediated devices defined and undefined (not modelled here).
    pub const DEFINED: i32 = 2;
    pub const UNDEFINED: i32 = 3;
}

xdr_struct! {
    /// `remote_connect_node_device_event_register_any_args`.
    pub struct ConnectNodeDeviceEventRegisterAnyArgs {
        pub event_id: i32,
        /// Only this device's events, if set.
        pub dev: Option<NonnullNodeDevice>,
    }
}

xdr_struct! {
    /// `remote_connect_node_device_event_register_any_ret`.
    pub struct ConnectNodeDeviceEventRegisterAnyRet {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_node_device_event_deregister_any_args`.
    pub struct ConnectNodeDeviceEventDeregisterAnyArgs {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_node_device_event_lifecycle_msg`: the body of a
    /// `NODE_DEVICE_EVENT_LIFECYCLE` MESSAGE.
    pub struct NodeDeviceEventLifecycleMsg {
        pub callback_id: i32,
        pub dev: NonnullNodeDevice,
        /// [`event`]`::CREATED` … `UNDEFINED`.
        pub event: i32,
        pub detail: i32,
    }
}

xdr_struct! {
    /// `remote_node_device_event_update_msg`: the body of a
    /// `NODE_DEVICE_EVENT_UPDATE` MESSAGE.
    pub struct NodeDeviceEventUpdateMsg {
        pub callback_id: i32,
        pub dev: NonnullNodeDevice,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failure is the assertion
mod tests {
    use super::*;
    use crate::xdr::{XdrDecode, XdrEncode};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `virsh nodedev-list` against libvirt 9.0's virtnodedevd (trace
    /// virsh-nodedev-list-direct-virtnodedevd): the call and its reply.
    const LIST_ALL_REPLY: &str = concat!(
        "0000000c000000107063695f303030305f30305f30325f3000000009626c6f63",
        "6b5f76646100000000000008636f6d7075746572000000107063695f30303030",
        "5f30305f30335f300000001a6e65745f696662305f63615f33375f33625f6336",
        "5f34345f39380000000000107063695f303030305f30305f30355f3000000010",
        "7063695f303030305f30305f30305f30000000107063695f303030305f30305f",
        "30315f30000000107063695f303030305f30305f30345f300000001a6e65745f",
        "657468305f30325f66635f30305f30305f30305f30310000000000186e65745f",
        "6c6f5f30305f30305f30305f30305f30305f30300000001a6e65745f69666231",
        "5f31655f63665f62615f32305f62615f646200000000000c",
    );

    #[test]
    fn list_all_matches_libvirt_bytes() {
        let args = ConnectListAllNodeDevicesArgs::from_xdr(&hex("0000000180000000")).unwrap();
        assert_eq!((args.need_results, args.flags), (1, list::ACTIVE));
        let bytes = hex(LIST_ALL_REPLY);
        let ret = ConnectListAllNodeDevicesRet::from_xdr(&bytes).unwrap();
        assert_eq!(ret.ret, 12);
        assert_eq!(ret.devices.len(), 12);
        assert_eq!(ret.devices[1].name, "block_vda");
        assert_eq!(ret.devices[2].name, "computer");
        assert_eq!(ret.devices[10].name, "net_lo_00_00_00_00_00_00");
        assert_eq!(ret.to_xdr(), bytes);
    }

    #[test]
    fn parent_is_optional() {
        let none = NodeDeviceGetParentRet { parent: None };
        assert_eq!(none.to_xdr(), [0, 0, 0, 0]);
        let some = NodeDeviceGetParentRet {
            parent: Some("computer".into()),
        };
        let bytes = some.to_xdr();
        assert_eq!(&bytes[..8], &[0, 0, 0, 1, 0, 0, 0, 8]);
        assert_eq!(NodeDeviceGetParentRet::from_xdr(&bytes).unwrap(), some);
        let args = NodeListDevicesArgs {
            cap: Some("pci".into()),
            maxnames: 4,
            flags: 0,
        };
        assert_eq!(NodeListDevicesArgs::from_xdr(&args.to_xdr()).unwrap(), args);
    }

    #[test]
    fn flag_groups_are_libvirts() {
        assert_eq!(list::FILTERS_CAP, 0x3f_ffff);
        assert_eq!(list::ALL, 0xc03f_ffff);
    }

    #[test]
    fn event_types_round_trip_in_libvirts_layout() {
        // "usb_1_1": length 7, three bytes of padding.
        let dev = NonnullNodeDevice {
            name: "usb_1_1".into(),
        };
        let dev_bytes = [&[0, 0, 0, 7][..], b"usb_1_1", &[0]].concat();

        // Registration for one device: event id, then the optional device.
        let args = ConnectNodeDeviceEventRegisterAnyArgs {
            event_id: event::id::UPDATE,
            dev: Some(dev.clone()),
        };
        let want = [&[0, 0, 0, 1, 0, 0, 0, 1][..], &dev_bytes].concat();
        assert_eq!(args.to_xdr(), want);
        assert_eq!(
            ConnectNodeDeviceEventRegisterAnyArgs::from_xdr(&want).unwrap(),
            args
        );
        // For every device: the pointer is absent.
        let any = ConnectNodeDeviceEventRegisterAnyArgs::from_xdr(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((any.event_id, any.dev), (event::id::LIFECYCLE, None));
        // A pointer flag other than 0 or 1 is refused.
        assert!(ConnectNodeDeviceEventRegisterAnyArgs::from_xdr(&[0, 0, 0, 0, 0, 0, 0, 2]).is_err());

        let ret = ConnectNodeDeviceEventRegisterAnyRet { callback_id: 5 };
        assert_eq!(ret.to_xdr(), [0, 0, 0, 5]);
        assert_eq!(
            ConnectNodeDeviceEventRegisterAnyRet::from_xdr(&[0, 0, 0, 5]).unwrap(),
            ret
        );
        let dereg = ConnectNodeDeviceEventDeregisterAnyArgs::from_xdr(&[0, 0, 0, 9]).unwrap();
        assert_eq!(dereg.callback_id, 9);
        assert_eq!(dereg.to_xdr(), [0, 0, 0, 9]);

        let msg = NodeDeviceEventLifecycleMsg {
            callback_id: 2,
            dev: dev.clone(),
            event: event::DELETED,
            detail: 0,
        };
        let want = [&[0, 0, 0, 2][..], &dev_bytes, &[0, 0, 0, 1, 0, 0, 0, 0]].concat();
        assert_eq!(msg.to_xdr(), want);
        assert_eq!(NodeDeviceEventLifecycleMsg::from_xdr(&want).unwrap(), msg);
        assert!(NodeDeviceEventLifecycleMsg::from_xdr(&want[..want.len() - 4]).is_err());

        let update = NodeDeviceEventUpdateMsg { callback_id: 3, dev };
        let want = [&[0, 0, 0, 3][..], &dev_bytes].concat();
        assert_eq!(update.to_xdr(), want);
        assert_eq!(NodeDeviceEventUpdateMsg::from_xdr(&want).unwrap(), update);
        // Trailing bytes are not an update message.
        assert!(NodeDeviceEventUpdateMsg::from_xdr(&[&want[..], &[0, 0, 0, 0]].concat()).is_err());
    }
}
