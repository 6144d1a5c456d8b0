//! Arguments and return values of the REMOTE program's storage procedures
//! (`remote_protocol.x`, `remote_storage_pool_*`, `remote_storage_vol_*`
//! and `remote_connect_*_storage_pools*`), and the public flag values of
//! `libvirt-storage.h` the storage driver checks; and the storage pool
//! event callbacks (`remote_connect_storage_pool_event_*`,
//! `remote_storage_pool_event_lifecycle_msg`,
//! `remote_storage_pool_event_refresh_msg`).
//!
//! A pool travels as `remote_nonnull_storage_pool` (name + UUID), a volume
//! as `remote_nonnull_storage_vol` (pool name, volume name, key). libvirt's
//! `unsigned char` / `char` fields (`state` of a pool, `type` of a volume)
//! are XDR ints on the wire.

use crate::remote::Uuid;
use crate::xdr_struct;

/// `REMOTE_STORAGE_POOL_LIST_MAX` (also bounds lists of pool names).
pub const STORAGE_POOL_LIST_MAX: u32 = 4096;
/// `REMOTE_STORAGE_VOL_LIST_MAX` (also bounds lists of volume names).
pub const STORAGE_VOL_LIST_MAX: u32 = 16384;

/// `virConnectListAllStoragePoolsFlags`: three state groups, then one bit
/// per pool type (`DIR` … `ISCSI_DIRECT`).
pub mod list {
    pub const INACTIVE: u32 = 1 << 0;
    pub const ACTIVE: u32 = 1 << 1;
    pub const PERSISTENT: u32 = 1 << 2;
    pub const TRANSIENT: u32 = 1 << 3;
    pub const AUTOSTART: u32 = 1 << 4;
    pub const NO_AUTOSTART: u32 = 1 << 5;
    /// `VIR_CONNECT_LIST_STORAGE_POOLS_DIR`; the other types follow, one
    /// bit each, up to `ISCSI_DIRECT` (`1 << 19`).
    pub const DIR: u32 = 1 << 6;
    pub const TYPES: u32 = ((1 << 20) - 1) & !((1 << 6) - 1);
    pub const ALL: u32 = (1 << 20) - 1;
}

/// `virStoragePoolState`.
pub mod pool_state {
    pub const INACTIVE: u32 = 0;
    pub const BUILDING: u32 = 1;
    pub const RUNNING: u32 = 2;
    pub const DEGRADED: u32 = 3;
    pub const INACCESSIBLE: u32 = 4;
}

/// `virStorageVolType`.
pub mod vol_type {
    pub const FILE: i32 = 0;
    pub const BLOCK: i32 = 1;
    pub const DIR: i32 = 2;
    pub const NETWORK: i32 = 3;
    pub const NETDIR: i32 = 4;
    pub const PLOOP: i32 = 5;
}

/// `virStoragePoolBuildFlags`.
pub mod build {
    pub const REPAIR: u32 = 1 << 0;
    pub const RESIZE: u32 = 1 << 1;
    pub const NO_OVERWRITE: u32 = 1 << 2;
    pub const OVERWRITE: u32 = 1 << 3;
}

/// `virStoragePoolCreateFlags`.
pub mod create {
    pub const WITH_BUILD: u32 = 1 << 0;
    pub const WITH_BUILD_OVERWRITE: u32 = 1 << 1;
    pub const WITH_BUILD_NO_OVERWRITE: u32 = 1 << 2;
}

/// `virStorageVolCreateFlags`.
pub mod vol_create {
    pub const PREALLOC_METADATA: u32 = 1 << 0;
    pub const REFLINK: u32 = 1 << 1;
    pub const VALIDATE: u32 = 1 << 2;
}

/// `VIR_STORAGE_POOL_DEFINE_VALIDATE`.
pub const DEFINE_VALIDATE: u32 = 1 << 0;
/// `VIR_STORAGE_XML_INACTIVE`.
pub const XML_INACTIVE: u32 = 1 << 0;
/// `VIR_STORAGE_VOL_GET_PHYSICAL`.
pub const VOL_GET_PHYSICAL: u32 = 1 << 0;

xdr_struct! {
    /// `remote_nonnull_storage_pool`.
    pub struct NonnullStoragePool {
        pub name: String,
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_nonnull_storage_vol`.
    pub struct NonnullStorageVol {
        pub pool: String,
        pub name: String,
        pub key: String,
    }
}

xdr_struct! {
    /// Arguments that are only a pool (`STORAGE_POOL_UNDEFINE`, `_DESTROY`,
    /// `_GET_INFO`, `_GET_AUTOSTART`, `_NUM_OF_VOLUMES`, `_IS_ACTIVE`,
    /// `_IS_PERSISTENT`).
    pub struct PoolArgs {
        pub pool: NonnullStoragePool,
    }
}

xdr_struct! {
    /// A pool and flags (`STORAGE_POOL_CREATE`, `_BUILD`, `_DELETE`,
    /// `_REFRESH`, `_GET_XML_DESC`).
    pub struct PoolFlagsArgs {
        pub pool: NonnullStoragePool,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_lookup_by_*_ret`, `…_create_xml_ret`,
    /// `…_define_xml_ret`.
    pub struct PoolRet {
        pub pool: NonnullStoragePool,
    }
}

xdr_struct! {
    /// `remote_storage_pool_lookup_by_name_args` (also
    /// `…_lookup_by_target_path_args`: one string).
    pub struct PoolLookupByNameArgs {
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_storage_pool_lookup_by_uuid_args`.
    pub struct PoolLookupByUuidArgs {
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_storage_pool_lookup_by_volume_args`.
    pub struct PoolLookupByVolumeArgs {
        pub vol: NonnullStorageVol,
    }
}

xdr_struct! {
    /// `remote_storage_pool_define_xml_args` / `…_create_xml_args`.
    pub struct PoolXmlArgs {
        pub xml: String,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_get_xml_desc_ret` / `remote_storage_vol_get_xml_desc_ret`.
    pub struct XmlRet {
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_storage_pool_get_info_ret`.
    pub struct PoolGetInfoRet {
        pub state: u32,
        pub capacity: u64,
        pub allocation: u64,
        pub available: u64,
    }
}

xdr_struct! {
    /// `remote_storage_pool_get_autostart_ret`.
    pub struct PoolGetAutostartRet {
        pub autostart: i32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_set_autostart_args`.
    pub struct PoolSetAutostartArgs {
        pub pool: NonnullStoragePool,
        pub autostart: i32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_num_of_volumes_ret`, and the `num` of
    /// `remote_connect_num_of_*storage_pools_ret`.
    pub struct NumRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_is_active_ret`.
    pub struct PoolIsActiveRet {
        pub active: i32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_is_persistent_ret`.
    pub struct PoolIsPersistentRet {
        pub persistent: i32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_list_volumes_args`.
    pub struct PoolListVolumesArgs {
        pub pool: NonnullStoragePool,
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_list_volumes_ret`.
    pub struct PoolListVolumesRet {
        pub names: Vec<String> [max STORAGE_VOL_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_connect_list_storage_pools_args` / `…_defined_storage_pools_args`.
    pub struct ConnectListStoragePoolsArgs {
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_storage_pools_ret` / `…_defined_storage_pools_ret`.
    pub struct ConnectListStoragePoolsRet {
        pub names: Vec<String> [max STORAGE_POOL_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_connect_list_all_storage_pools_args`.
    pub struct ConnectListAllStoragePoolsArgs {
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_storage_pools_ret`.
    pub struct ConnectListAllStoragePoolsRet {
        pub pools: Vec<NonnullStoragePool> [max STORAGE_POOL_LIST_MAX],
        pub ret: u32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_list_all_volumes_args`.
    pub struct PoolListAllVolumesArgs {
        pub pool: NonnullStoragePool,
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_list_all_volumes_ret`.
    pub struct PoolListAllVolumesRet {
        pub vols: Vec<NonnullStorageVol> [max STORAGE_VOL_LIST_MAX],
        pub ret: u32,
    }
}

xdr_struct! {
    /// `remote_storage_vol_lookup_by_name_args`.
    pub struct VolLookupByNameArgs {
        pub pool: NonnullStoragePool,
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_storage_vol_lookup_by_key_args` / `…_by_path_args` (one string).
    pub struct VolLookupByStringArgs {
        pub key: String,
    }
}

xdr_struct! {
    /// `remote_storage_vol_lookup_by_*_ret`, `remote_storage_vol_create_xml_ret`.
    pub struct VolRet {
        pub vol: NonnullStorageVol,
    }
}

xdr_struct! {
    /// `remote_storage_vol_create_xml_args`.
    pub struct VolCreateXmlArgs {
        pub pool: NonnullStoragePool,
        pub xml: String,
        pub flags: u32,
    }
}

xdr_struct! {
    /// Arguments that are only a volume (`STORAGE_VOL_GET_INFO`, `_GET_PATH`).
    pub struct VolArgs {
        pub vol: NonnullStorageVol,
    }
}

xdr_struct! {
    /// A volume and flags (`STORAGE_VOL_DELETE`, `_GET_XML_DESC`,
    /// `_GET_INFO_FLAGS`).
    pub struct VolFlagsArgs {
        pub vol: NonnullStorageVol,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_storage_vol_get_info_ret` / `…_get_info_flags_ret`.
    pub struct VolGetInfoRet {
        pub type_: i32,
        pub capacity: u64,
        pub allocation: u64,
    }
}

xdr_struct! {
    /// `remote_storage_vol_get_path_ret`.
    pub struct VolGetPathRet {
        pub name: String,
    }
}

/// Storage pool events (`libvirt-storage.h` as of libvirt 9.0).
pub mod event {
    /// `virStoragePoolEventID`: libvirt 9.0 has `LIFECYCLE` and `REFRESH`.
    pub mod id {
        pub const LIFECYCLE: i32 = 0;
        pub const REFRESH: i32 = 1;
        /// `VIR_STORAGE_POOL_EVENT_ID_LAST`: event ids are below it.
        pub const LAST: i32 = 2;
    }

    /// `virStoragePoolEventLifecycleType`; the detail is always 0.
    pub const DEFINED: i32 = 0;
    pub const UNDEFINED: i32 = 1;
    pub const STARTED: i32 = 2;
    pub const STOPPED: i32 = 3;
    /// The pool's storage was built (`pool-build`).
    pub const CREATED: i32 = 4;
    /// The pool's storage was deleted (`pool-delete`).
    pub const DELETED: i32 = 5;
}

xdr_struct! {
    /// `remote_connect_storage_pool_event_register_any_args`.
    pub struct ConnectStoragePoolEventRegisterAnyArgs {
        pub event_id: i32,
        /// Only this pool's events, if set.
        pub pool: Option<NonnullStoragePool>,
    }
}

xdr_struct! {
    /// `remote_connect_storage_pool_event_register_any_ret`.
    pub struct ConnectStoragePoolEventRegisterAnyRet {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_storage_pool_event_deregister_any_args`.
    pub struct ConnectStoragePoolEventDeregisterAnyArgs {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_event_lifecycle_msg`: the body of a
    /// `STORAGE_POOL_EVENT_LIFECYCLE` MESSAGE.
    pub struct StoragePoolEventLifecycleMsg {
        pub callback_id: i32,
        pub pool: NonnullStoragePool,
        /// [`event`]`::DEFINED` … `DELETED`.
        pub event: i32,
        pub detail: i32,
    }
}

xdr_struct! {
    /// `remote_storage_pool_event_refresh_msg`: the body of a
    /// `STORAGE_POOL_EVENT_REFRESH` MESSAGE.
    pub struct StoragePoolEventRefreshMsg {
        pub callback_id: i32,
        pub pool: NonnullStoragePool,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::xdr::{XdrDecode, XdrEncode};

    #[test]
    fn list_all_matches_libvirt_bytes() {
        // virsh pool-list --all against libvirt 9.0's virtstoraged with no
        // pool (trace virsh-pool-list-all-direct-virtstoraged).
        let args = ConnectListAllStoragePoolsArgs::from_xdr(&[0, 0, 0, 1, 0, 0, 0, 3]).unwrap();
        assert_eq!(
            (args.need_results, args.flags),
            (1, list::INACTIVE | list::ACTIVE)
        );
        let ret = ConnectListAllStoragePoolsRet {
            pools: vec![],
            ret: 0,
        };
        assert_eq!(ret.to_xdr(), [0u8; 8]);
        assert_eq!(args.to_xdr(), [0, 0, 0, 1, 0, 0, 0, 3]);
    }

    #[test]
    fn pool_and_volume_layouts() {
        let uuid = [7u8; 16];
        let ret = ConnectListAllStoragePoolsRet {
            pools: vec![NonnullStoragePool {
                name: "p".into(),
                uuid: Uuid(uuid),
            }],
            ret: 1,
        };
        let mut want = vec![0, 0, 0, 1, 0, 0, 0, 1, b'p', 0, 0, 0];
        want.extend_from_slice(&uuid);
        want.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(ret.to_xdr(), want);

        let info = VolGetInfoRet {
            type_: vol_type::FILE,
            capacity: 1 << 32,
            allocation: 4096,
        };
        assert_eq!(
            info.to_xdr(),
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]
        );
        let pool_info = PoolGetInfoRet {
            state: pool_state::RUNNING,
            capacity: 1,
            allocation: 2,
            available: 3,
        };
        let bytes = pool_info.to_xdr();
        assert_eq!(&bytes[..4], &[0, 0, 0, 2], "state is a 4-byte XDR int");
        assert_eq!(PoolGetInfoRet::from_xdr(&bytes).unwrap(), pool_info);

        let vol = VolRet {
            vol: NonnullStorageVol {
                pool: "p".into(),
                name: "a.img".into(),
                key: "/x/a.img".into(),
            },
        };
        assert_eq!(VolRet::from_xdr(&vol.to_xdr()).unwrap(), vol);
    }

    #[test]
    fn list_bounds_are_enforced_on_decode() {
        let mut bytes = (STORAGE_POOL_LIST_MAX + 1).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        assert!(ConnectListStoragePoolsRet::from_xdr(&bytes).is_err());
        assert_eq!(list::TYPES & list::ALL, list::TYPES);
        assert_eq!(list::TYPES & 0x3f, 0);
        assert_ne!(list::TYPES & list::DIR, 0);
    }

    #[test]
    fn storage_pool_event_types_round_trip_in_libvirts_layout() {
        let pool = NonnullStoragePool {
            name: "pool1".into(),
            uuid: Uuid([5; 16]),
        };
        // "pool1": length, bytes, 3 bytes of padding; then the UUID.
        let mut pool_bytes = vec![0, 0, 0, 5, b'p', b'o', b'o', b'l', b'1', 0, 0, 0];
        pool_bytes.extend_from_slice(&[5; 16]);

        // Registration for one pool: event id, then the optional pool.
        let args = ConnectStoragePoolEventRegisterAnyArgs {
            event_id: event::id::REFRESH,
            pool: Some(pool.clone()),
        };
        let mut want = vec![0, 0, 0, 1, 0, 0, 0, 1];
        want.extend_from_slice(&pool_bytes);
        assert_eq!(args.to_xdr(), want);
        assert_eq!(
            ConnectStoragePoolEventRegisterAnyArgs::from_xdr(&want).unwrap(),
            args
        );
        // For every pool: the pointer is absent.
        let any = ConnectStoragePoolEventRegisterAnyArgs::from_xdr(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((any.event_id, any.pool), (event::id::LIFECYCLE, None));
        // A pointer flag other than 0 or 1 is refused.
        assert!(ConnectStoragePoolEventRegisterAnyArgs::from_xdr(&[0, 0, 0, 0, 0, 0, 0, 2]).is_err());

        let ret = ConnectStoragePoolEventRegisterAnyRet { callback_id: 4 };
        assert_eq!(ret.to_xdr(), [0, 0, 0, 4]);
        assert_eq!(
            ConnectStoragePoolEventRegisterAnyRet::from_xdr(&[0, 0, 0, 4]).unwrap(),
            ret
        );
        let dereg = ConnectStoragePoolEventDeregisterAnyArgs::from_xdr(&[0, 0, 0, 9]).unwrap();
        assert_eq!(dereg.callback_id, 9);
        assert_eq!(dereg.to_xdr(), [0, 0, 0, 9]);

        let msg = StoragePoolEventLifecycleMsg {
            callback_id: 2,
            pool: pool.clone(),
            event: event::DELETED,
            detail: 0,
        };
        let mut want = vec![0, 0, 0, 2];
        want.extend_from_slice(&pool_bytes);
        want.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 0]);
        assert_eq!(msg.to_xdr(), want);
        assert_eq!(StoragePoolEventLifecycleMsg::from_xdr(&want).unwrap(), msg);
        // A message cut short is refused.
        assert!(StoragePoolEventLifecycleMsg::from_xdr(&want[..want.len() - 4]).is_err());

        let refresh = StoragePoolEventRefreshMsg { callback_id: 7, pool };
        let mut want = vec![0, 0, 0, 7];
        want.extend_from_slice(&pool_bytes);
        assert_eq!(refresh.to_xdr(), want);
        assert_eq!(StoragePoolEventRefreshMsg::from_xdr(&want).unwrap(), refresh);
        assert!(StoragePoolEventRefreshMsg::from_xdr(&want[..want.len() - 1]).is_err());
    }
}
