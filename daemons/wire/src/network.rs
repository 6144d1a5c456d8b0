//! Arguments and return values of the REMOTE program's network procedures
//! (`remote_protocol.x`, `remote_network_*` / `remote_connect_*_networks*`),
//! the network event callbacks (`remote_connect_network_event_*`,
//! `remote_network_event_lifecycle_msg`), and the public
//! `virConnectListAllNetworksFlags`.

use crate::remote::{NonnullNetwork, Uuid};
use crate::xdr_struct;

/// `REMOTE_NETWORK_LIST_MAX`.
pub const NETWORK_LIST_MAX: u32 = 16384;
/// `REMOTE_NETWORK_NAME_LIST_MAX`.
pub const NETWORK_NAME_LIST_MAX: u32 = 16384;
/// `REMOTE_NETWORK_DHCP_LEASES_MAX`: leases in one `NETWORK_GET_DHCP_LEASES` reply.
pub const NETWORK_DHCP_LEASES_MAX: u32 = 65536;

/// `virIPAddrType`: the `type` of a DHCP lease.
pub mod ip_addr_type {
    pub const IPV4: i32 = 0;
    pub const IPV6: i32 = 1;
}

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

xdr_struct! {
    /// `remote_network_dhcp_lease`: one lease (`virNetworkDHCPLease`).
    pub struct NetworkDhcpLease {
        /// The network's bridge.
        pub iface: String,
        /// When the lease expires, in seconds since the epoch (0: never).
        pub expirytime: i64,
        /// `type`: [`ip_addr_type`].
        pub addr_type: i32,
        pub mac: Option<String>,
        /// DHCPv6 identity association id.
        pub iaid: Option<String>,
        pub ipaddr: String,
        /// The prefix length of the network's address of that family.
        pub prefix: u32,
        pub hostname: Option<String>,
        /// DHCPv4 client id or DHCPv6 DUID.
        pub clientid: Option<String>,
    }
}

xdr_struct! {
    /// `remote_network_get_dhcp_leases_args`.
    pub struct NetworkGetDhcpLeasesArgs {
        pub net: NonnullNetwork,
        /// Only leases of this MAC address.
        pub mac: Option<String>,
        /// 0: only count the leases (`ret`), sending none.
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_network_get_dhcp_leases_ret`.
    pub struct NetworkGetDhcpLeasesRet {
        pub leases: Vec<NetworkDhcpLease> [max NETWORK_DHCP_LEASES_MAX],
        /// How many leases there are (sent or not).
        pub ret: u32,
    }
}

/// Network events (`libvirt-network.h` as of libvirt 9.0).
pub mod event {
    /// `virNetworkEventID`: libvirt 9.0 has only `LIFECYCLE`
    /// (`METADATA_CHANGE` came in 9.8).
    pub mod id {
        pub const LIFECYCLE: i32 = 0;
        /// `VIR_NETWORK_EVENT_ID_LAST`: event ids are below it.
        pub const LAST: i32 = 1;
    }

    /// `virNetworkEventLifecycleType`; the detail is always 0.
    pub const DEFINED: i32 = 0;
    pub const UNDEFINED: i32 = 1;
    pub const STARTED: i32 = 2;
    pub const STOPPED: i32 = 3;
}

xdr_struct! {
    /// `remote_connect_network_event_register_any_args`.
    pub struct ConnectNetworkEventRegisterAnyArgs {
        pub event_id: i32,
        /// Only this network's events, if set.
        pub net: Option<NonnullNetwork>,
    }
}

xdr_struct! {
    /// `remote_connect_network_event_register_any_ret`.
    pub struct ConnectNetworkEventRegisterAnyRet {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_network_event_deregister_any_args`.
    pub struct ConnectNetworkEventDeregisterAnyArgs {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_network_event_lifecycle_msg`: the body of a
    /// `NETWORK_EVENT_LIFECYCLE` MESSAGE.
    pub struct NetworkEventLifecycleMsg {
        pub callback_id: i32,
        pub net: NonnullNetwork,
        /// [`event`]`::DEFINED` … `STOPPED`.
        pub event: i32,
        pub detail: i32,
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

    fn xdr_string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
        out.resize(out.len().next_multiple_of(4), 0);
    }

    #[test]
    fn dhcp_leases_round_trip_in_libvirts_layout() {
        let uuid = [7u8; 16];
        let args = NetworkGetDhcpLeasesArgs {
            net: NonnullNetwork {
                name: "default".into(),
                uuid: Uuid(uuid),
            },
            mac: Some("52:54:00:aa:bb:cc".into()),
            need_results: 1,
            flags: 0,
        };
        let mut want = Vec::new();
        xdr_string(&mut want, "default");
        want.extend_from_slice(&uuid);
        want.extend_from_slice(&[0, 0, 0, 1]);
        xdr_string(&mut want, "52:54:00:aa:bb:cc");
        want.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(args.to_xdr(), want);
        assert_eq!(NetworkGetDhcpLeasesArgs::from_xdr(&want).unwrap(), args);
        let no_mac = NetworkGetDhcpLeasesArgs {
            mac: None,
            need_results: 0,
            ..args
        };
        assert_eq!(
            NetworkGetDhcpLeasesArgs::from_xdr(&no_mac.to_xdr()).unwrap(),
            no_mac
        );

        let ret = NetworkGetDhcpLeasesRet {
            leases: vec![NetworkDhcpLease {
                iface: "virbr0".into(),
                expirytime: 0x6600_0000,
                addr_type: ip_addr_type::IPV4,
                mac: Some("52:54:00:aa:bb:cc".into()),
                iaid: None,
                ipaddr: "192.168.122.10".into(),
                prefix: 24,
                hostname: Some("vm1".into()),
                clientid: None,
            }],
            ret: 1,
        };
        let mut want = vec![0, 0, 0, 1];
        xdr_string(&mut want, "virbr0");
        want.extend_from_slice(&0x6600_0000i64.to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        xdr_string(&mut want, "52:54:00:aa:bb:cc");
        want.extend_from_slice(&[0, 0, 0, 0]);
        xdr_string(&mut want, "192.168.122.10");
        want.extend_from_slice(&[0, 0, 0, 24, 0, 0, 0, 1]);
        xdr_string(&mut want, "vm1");
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(ret.to_xdr(), want);
        assert_eq!(NetworkGetDhcpLeasesRet::from_xdr(&want).unwrap(), ret);
    }

    #[test]
    fn a_dhcp_leases_reply_over_libvirts_maximum_is_refused() {
        let mut bytes = (NETWORK_DHCP_LEASES_MAX + 1).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(
            NetworkGetDhcpLeasesRet::from_xdr(&bytes),
            Err(crate::xdr::XdrError::TooLong {
                what: "leases",
                len: 65537,
                max: 65536
            })
        ));
        // A count with no leases behind it is refused too, not trusted.
        let mut short = 2u32.to_be_bytes().to_vec();
        short.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(
            NetworkGetDhcpLeasesRet::from_xdr(&short),
            Err(crate::xdr::XdrError::Truncated { .. })
        ));
    }

    #[test]
    fn network_event_types_round_trip_in_libvirts_layout() {
        let net = NonnullNetwork {
            name: "mvnet".into(),
            uuid: Uuid([9; 16]),
        };
        let mut net_bytes = Vec::new();
        xdr_string(&mut net_bytes, "mvnet");
        net_bytes.extend_from_slice(&[9; 16]);

        // Registration for one network: event id, then the optional network.
        let args = ConnectNetworkEventRegisterAnyArgs {
            event_id: event::id::LIFECYCLE,
            net: Some(net.clone()),
        };
        let mut want = vec![0, 0, 0, 0, 0, 0, 0, 1];
        want.extend_from_slice(&net_bytes);
        assert_eq!(args.to_xdr(), want);
        assert_eq!(ConnectNetworkEventRegisterAnyArgs::from_xdr(&want).unwrap(), args);
        // For every network: the pointer is absent.
        let any = ConnectNetworkEventRegisterAnyArgs::from_xdr(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((any.event_id, any.net), (0, None));

        let ret = ConnectNetworkEventRegisterAnyRet { callback_id: 3 };
        assert_eq!(ret.to_xdr(), [0, 0, 0, 3]);
        assert_eq!(
            ConnectNetworkEventRegisterAnyRet::from_xdr(&[0, 0, 0, 3]).unwrap(),
            ret
        );
        let dereg = ConnectNetworkEventDeregisterAnyArgs::from_xdr(&[0, 0, 0, 7]).unwrap();
        assert_eq!(dereg.callback_id, 7);
        assert_eq!(dereg.to_xdr(), [0, 0, 0, 7]);

        let msg = NetworkEventLifecycleMsg {
            callback_id: 2,
            net,
            event: event::STOPPED,
            detail: 0,
        };
        let mut want = vec![0, 0, 0, 2];
        want.extend_from_slice(&net_bytes);
        want.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 0]);
        assert_eq!(msg.to_xdr(), want);
        assert_eq!(NetworkEventLifecycleMsg::from_xdr(&want).unwrap(), msg);
        // A message cut short is refused.
        assert!(NetworkEventLifecycleMsg::from_xdr(&want[..want.len() - 4]).is_err());
    }
}
