//! Arguments and return values of the REMOTE program's network procedures
//! (`remote_protocol.x`, `remote_network_*` / `remote_connect_*_networks*`),
//! and the public `virConnectListAllNetworksFlags`.

use crate::remote::{NonnullNetwork, Uuid};
use crate::xdr_struct;

/// `REMOTE_NETWORK_LIST_MAX`.
pub const NETWORK_LIST_MAX: u32 = 16384;
/// `REMOTE_NETWORK_NAME_LIST_MAX`.
pub const NETWORK_NAME_LIST_MAX: u32 = 16384;

/// `virConnectListAllNetworksFlags`.
pub mod list {
    pub const INACTIVE: u32 = 1 << 0;
    pub const ACTIVE: u32 = 1 << 1;
    pub const PERSISTENT: u32 = 1 << 2;
    pub const TRANSIENT: u32 = 1 << 3;
    pub const AUTOSTART: u32 = 1 << 4;
    pub const NO_AUTOSTART: u32 = 1 << 5;
    pub const ALL: u32 = (1 << 6) - 1;
}

/// `virNetworkXMLFlags`.
pub const XML_INACTIVE: u32 = 1 << 0;

/// `virNetworkDefineFlags` / `virNetworkCreateFlags`: `VALIDATE`.
pub const DEFINE_VALIDATE: u32 = 1 << 0;

xdr_struct! {
    /// Arguments that are only a network (`NETWORK_CREATE`, `NETWORK_DESTROY`,
    /// `NETWORK_UNDEFINE`, `NETWORK_GET_AUTOSTART`, `NETWORK_GET_BRIDGE_NAME`,
    /// `NETWORK_IS_ACTIVE`, `NETWORK_IS_PERSISTENT`).
    pub struct NetworkArgs {
        pub net: NonnullNetwork,
    }
}

xdr_struct! {
    /// `remote_network_lookup_by_uuid_args`.
    pub struct NetworkLookupByUuidArgs {
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_network_define_xml_args` / `remote_network_create_xml_args`.
    pub struct NetworkXmlArgs {
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_network_define_xml_flags_args` / `remote_network_create_xml_flags_args`.
    pub struct NetworkXmlFlagsArgs {
        pub xml: String,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_get_xml_desc_args`.
    pub struct NetworkGetXmlDescArgs {
        pub net: NonnullNetwork,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_get_xml_desc_ret`.
    pub struct NetworkGetXmlDescRet {
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_network_get_bridge_name_ret`.
    pub struct NetworkGetBridgeNameRet {
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_network_get_autostart_ret`.
    pub struct NetworkGetAutostartRet {
        pub autostart: i32,
    }
}

xdr_struct! {
    /// `remote_network_set_autostart_args`.
    pub struct NetworkSetAutostartArgs {
        pub net: NonnullNetwork,
        pub autostart: i32,
    }
}

xdr_struct! {
    /// `remote_network_is_active_ret`.
    pub struct NetworkIsActiveRet {
        pub active: i32,
    }
}

xdr_struct! {
    /// `remote_network_is_persistent_ret`.
    pub struct NetworkIsPersistentRet {
        pub persistent: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_networks_args`.
    pub struct ConnectListAllNetworksArgs {
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_networks_ret`.
    pub struct ConnectListAllNetworksRet {
        pub nets: Vec<NonnullNetwork> [max NETWORK_LIST_MAX],
        pub ret: u32,
    }
}

xdr_struct! {
    /// `remote_connect_num_of_networks_ret` / `…_defined_networks_ret`.
    pub struct ConnectNumOfNetworksRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_networks_args` / `…_defined_networks_args`.
    pub struct ConnectListNetworksArgs {
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_networks_ret` / `…_defined_networks_ret`.
    pub struct ConnectListNetworksRet {
        pub names: Vec<String> [max NETWORK_NAME_LIST_MAX],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::{XdrDecode, XdrEncode};

    #[test]
    fn list_all_reply_matches_libvirt_bytes() {
        // virsh net-list --all against libvirt 9.0's virtnetworkd: one
        // network "default" (trace virsh-net-list-all-direct-virtnetworkd).
        let uuid = [
            0x26, 0x86, 0xf4, 0x35, 0xc3, 0xcc, 0x4b, 0x5a, 0xbb, 0x83, 0x5e, 0xd9, 0x67, 0xa9, 0x4a, 0x59,
        ];
        let ret = ConnectListAllNetworksRet {
            nets: vec![NonnullNetwork {
                name: "default".into(),
                uuid: Uuid(uuid),
            }],
            ret: 1,
        };
        let mut want = vec![0, 0, 0, 1, 0, 0, 0, 7];
        want.extend_from_slice(b"default\0");
        want.extend_from_slice(&uuid);
        want.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(ret.to_xdr(), want);
        let args = ConnectListAllNetworksArgs::from_xdr(&[0, 0, 0, 1, 0, 0, 0, 3]).unwrap();
        assert_eq!(
            (args.need_results, args.flags),
            (1, list::INACTIVE | list::ACTIVE)
        );
    }
}
