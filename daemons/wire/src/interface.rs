//! Arguments and return values of the REMOTE program's host interface
//! procedures (`remote_protocol.x`, `remote_interface_*` /
//! `remote_connect_*_interfaces`), and the public
//! `virConnectListAllInterfacesFlags` and `virInterfaceXMLFlags`.
//!
//! An interface travels as `remote_nonnull_interface`: its name and its MAC
//! address as text (empty when it has none).

use crate::xdr_struct;

/// `REMOTE_INTERFACE_LIST_MAX`: interfaces (or names) in a list reply.
pub const INTERFACE_LIST_MAX: u32 = 16384;

/// `virConnectListAllInterfacesFlags`.
pub mod list {
    pub const INACTIVE: u32 = 1 << 0;
    pub const ACTIVE: u32 = 1 << 1;
    /// `VIR_CONNECT_LIST_INTERFACES_FILTERS_ACTIVE`: all libvirt 9.0 accepts.
    pub const ALL: u32 = INACTIVE | ACTIVE;
}

/// `virInterfaceXMLFlags`: `VIR_INTERFACE_XML_INACTIVE`.
pub const XML_INACTIVE: u32 = 1 << 0;

xdr_struct! {
    /// `remote_nonnull_interface`.
    pub struct NonnullInterface {
        pub name: String,
        pub mac: String,
    }
}

xdr_struct! {
    /// `remote_connect_num_of_interfaces_ret` / `…_defined_interfaces_ret`.
    pub struct ConnectNumOfInterfacesRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_interfaces_args` / `…_defined_interfaces_args`.
    pub struct ConnectListInterfacesArgs {
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_interfaces_ret` / `…_defined_interfaces_ret`.
    pub struct ConnectListInterfacesRet {
        pub names: Vec<String> [max INTERFACE_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_interface_lookup_by_name_args`.
    pub struct InterfaceLookupByNameArgs {
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_interface_lookup_by_mac_string_args`.
    pub struct InterfaceLookupByMacStringArgs {
        pub mac: String,
    }
}

xdr_struct! {
    /// `remote_interface_lookup_by_name_ret` / `…_by_mac_string_ret`.
    pub struct InterfaceRet {
        pub iface: NonnullInterface,
    }
}

xdr_struct! {
    /// Arguments that are only an interface (`INTERFACE_IS_ACTIVE`,
    /// `INTERFACE_UNDEFINE`).
    pub struct InterfaceArgs {
        pub iface: NonnullInterface,
    }
}

xdr_struct! {
    /// `remote_interface_get_xml_desc_args`.
    pub struct InterfaceGetXmlDescArgs {
        pub iface: NonnullInterface,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_interface_get_xml_desc_ret`.
    pub struct InterfaceGetXmlDescRet {
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_interface_is_active_ret`.
    pub struct InterfaceIsActiveRet {
        pub active: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_interfaces_args`.
    pub struct ConnectListAllInterfacesArgs {
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_interfaces_ret`.
    pub struct ConnectListAllInterfacesRet {
        pub ifaces: Vec<NonnullInterface> [max INTERFACE_LIST_MAX],
        pub ret: u32,
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

    /// `virsh iface-list --all` against libvirt 9.0's virtinterfaced
    /// (trace virsh-iface-list-direct-virtinterfaced).
    const LIST_ALL_REPLY: &str = concat!(
        "0000000400000004657468300000001130323a66633a30303a30303a30303a30",
        "3100000000000004696662300000001163613a33373a33623a63363a34343a39",
        "3800000000000004696662310000001131653a63663a62613a32303a62613a64",
        "62000000000000026c6f00000000001130303a30303a30303a30303a30303a30",
        "3000000000000004",
    );

    #[test]
    fn list_all_and_is_active_match_libvirt_bytes() {
        let args = ConnectListAllInterfacesArgs::from_xdr(&hex("0000000100000003")).unwrap();
        assert_eq!((args.need_results, args.flags), (1, list::ALL));
        let bytes = hex(LIST_ALL_REPLY);
        let ret = ConnectListAllInterfacesRet::from_xdr(&bytes).unwrap();
        assert_eq!(ret.ret, 4);
        let names: Vec<&str> = ret.ifaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "ifb0", "ifb1", "lo"]);
        assert_eq!(ret.ifaces[3].mac, "00:00:00:00:00:00");
        assert_eq!(ret.to_xdr(), bytes);

        let call = hex("000000026c6f00000000001130303a30303a30303a30303a30303a3030000000");
        let a = InterfaceArgs::from_xdr(&call).unwrap();
        assert_eq!(a.iface.name, "lo");
        assert_eq!(a.to_xdr(), call);
        assert_eq!(InterfaceIsActiveRet { active: 1 }.to_xdr(), hex("00000001"));
    }
}
