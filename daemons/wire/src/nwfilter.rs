//! Arguments and return values of the REMOTE program's network filter
//! procedures (`remote_protocol.x`, `remote_nwfilter_*` /
//! `remote_connect_*_nwfilters`) and the public `virNWFilterDefineFlags`.
//!
//! A filter travels as `remote_nonnull_nwfilter`: its name and UUID.

use crate::remote::Uuid;
use crate::xdr_struct;

/// `REMOTE_NWFILTER_LIST_MAX` (for names and for filters).
pub const NWFILTER_LIST_MAX: u32 = 16384;

/// `virNWFilterDefineFlags`: `VALIDATE`.
pub const DEFINE_VALIDATE: u32 = 1 << 0;

xdr_struct! {
    /// `remote_nonnull_nwfilter`.
    pub struct NonnullNwfilter {
        pub name: String,
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_nwfilter_lookup_by_name_args`.
    pub struct NwfilterLookupByNameArgs {
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_nwfilter_lookup_by_uuid_args`.
    pub struct NwfilterLookupByUuidArgs {
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_nwfilter_lookup_by_{name,uuid}_ret`,
    /// `remote_nwfilter_define_xml{,_flags}_ret`.
    pub struct NwfilterRet {
        pub nwfilter: NonnullNwfilter,
    }
}

xdr_struct! {
    /// `remote_nwfilter_define_xml_args`.
    pub struct NwfilterDefineXmlArgs {
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_nwfilter_define_xml_flags_args`.
    pub struct NwfilterDefineXmlFlagsArgs {
        pub xml: String,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_nwfilter_undefine_args`.
    pub struct NwfilterArgs {
        pub nwfilter: NonnullNwfilter,
    }
}

xdr_struct! {
    /// `remote_nwfilter_get_xml_desc_args`.
    pub struct NwfilterGetXmlDescArgs {
        pub nwfilter: NonnullNwfilter,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_nwfilter_get_xml_desc_ret`.
    pub struct NwfilterGetXmlDescRet {
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_connect_num_of_nwfilters_ret`.
    pub struct ConnectNumOfNwfiltersRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_nwfilters_args`.
    pub struct ConnectListNwfiltersArgs {
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_nwfilters_ret`.
    pub struct ConnectListNwfiltersRet {
        pub names: Vec<String> [max NWFILTER_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_connect_list_all_nwfilters_args`.
    pub struct ConnectListAllNwfiltersArgs {
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_nwfilters_ret`.
    pub struct ConnectListAllNwfiltersRet {
        pub filters: Vec<NonnullNwfilter> [max NWFILTER_LIST_MAX],
        pub ret: u32,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::xdr::{XdrDecode, XdrEncode};

    #[test]
    fn list_all_reply_matches_libvirt_bytes() {
        // virsh nwfilter-list against libvirt 9.0's virtnwfilterd: the
        // start of the reply, its first two filters (trace
        // virsh-nwfilter-list-direct-virtnwfilterd).
        let first = [
            0x85, 0x20, 0x73, 0x3b, 0x32, 0xa9, 0x41, 0x0b, 0xb6, 0x87, 0xa8, 0x89, 0xaa, 0x06, 0x7e, 0xb0,
        ];
        let second = [
            0xb1, 0x8a, 0xf2, 0xcd, 0x2f, 0xa1, 0x49, 0x8a, 0x84, 0x47, 0x44, 0x01, 0x60, 0x1e, 0x77, 0xe6,
        ];
        let ret = ConnectListAllNwfiltersRet {
            filters: vec![
                NonnullNwfilter {
                    name: "clean-traffic-gateway".into(),
                    uuid: Uuid(first),
                },
                NonnullNwfilter {
                    name: "allow-ipv6".into(),
                    uuid: Uuid(second),
                },
            ],
            ret: 24,
        };
        let mut want = vec![0, 0, 0, 2, 0, 0, 0, 0x15];
        want.extend_from_slice(b"clean-traffic-gateway\0\0\0");
        want.extend_from_slice(&first);
        want.extend_from_slice(&[0, 0, 0, 0x0a]);
        want.extend_from_slice(b"allow-ipv6\0\0");
        want.extend_from_slice(&second);
        want.extend_from_slice(&[0, 0, 0, 0x18]);
        assert_eq!(ret.to_xdr(), want);
        assert_eq!(ConnectListAllNwfiltersRet::from_xdr(&want).unwrap(), ret);
        let args = ConnectListAllNwfiltersArgs::from_xdr(&[0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
        assert_eq!((args.need_results, args.flags), (1, 0));
    }

    #[test]
    fn define_flags_round_trip() {
        let a = NwfilterDefineXmlFlagsArgs {
            xml: "<filter name='x'/>".into(),
            flags: DEFINE_VALIDATE,
        };
        assert_eq!(NwfilterDefineXmlFlagsArgs::from_xdr(&a.to_xdr()).unwrap(), a);
    }
}
