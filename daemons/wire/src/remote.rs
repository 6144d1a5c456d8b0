//! Arguments and return values of the REMOTE program's connection-level
//! procedures (`remote_protocol.x`). Procedures without arguments or
//! results use `()`.

use crate::xdr_struct;

/// `REMOTE_AUTH_TYPE_LIST_MAX`.
pub const AUTH_TYPE_LIST_MAX: u32 = 20;
/// `REMOTE_AUTH_NONE`.
pub const AUTH_NONE: i32 = 0;
/// `REMOTE_AUTH_SASL`.
pub const AUTH_SASL: i32 = 1;
/// `REMOTE_AUTH_POLKIT`.
pub const AUTH_POLKIT: i32 = 2;

/// `VIR_DRV_FEATURE_*` numbers a client may probe with `CONNECT_SUPPORTS_FEATURE`.
pub mod feature {
    pub const MIGRATION_V1: i32 = 1;
    pub const REMOTE: i32 = 2;
    pub const MIGRATION_V2: i32 = 3;
    pub const MIGRATION_P2P: i32 = 4;
    pub const MIGRATION_DIRECT: i32 = 5;
    pub const FD_PASSING: i32 = 8;
    pub const TYPED_PARAM_STRING: i32 = 9;
    pub const PROGRAM_KEEPALIVE: i32 = 10;
    pub const XML_MIGRATABLE: i32 = 11;
    pub const MIGRATION_OFFLINE: i32 = 12;
    pub const MIGRATION_PARAMS: i32 = 13;
    pub const REMOTE_EVENT_CALLBACK: i32 = 14;
    pub const REMOTE_CLOSE_CALLBACK: i32 = 15;
    pub const NETWORK_UPDATE_HAS_CORRECT_ORDER: i32 = 16;
}

xdr_struct! {
    /// `remote_auth_list_ret`.
    pub struct AuthListRet {
        pub types: Vec<i32> [max AUTH_TYPE_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_connect_supports_feature_args`.
    pub struct ConnectSupportsFeatureArgs {
        pub feature: i32,
    }
}

xdr_struct! {
    /// `remote_connect_supports_feature_ret`.
    pub struct ConnectSupportsFeatureRet {
        pub supported: i32,
    }
}

xdr_struct! {
    /// `remote_connect_open_args`: the URI without `socket`/`mode`, and flags.
    pub struct ConnectOpenArgs {
        pub name: Option<String>,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_get_type_ret`.
    pub struct ConnectGetTypeRet {
        pub type_: String,
    }
}

xdr_struct! {
    /// `remote_connect_get_version_ret` (hypervisor version, major*1e6+minor*1e3+micro).
    pub struct ConnectGetVersionRet {
        pub hv_ver: u64,
    }
}

xdr_struct! {
    /// `remote_connect_get_lib_version_ret`.
    pub struct ConnectGetLibVersionRet {
        pub lib_ver: u64,
    }
}

xdr_struct! {
    /// `remote_connect_get_hostname_ret`.
    pub struct ConnectGetHostnameRet {
        pub hostname: String,
    }
}

xdr_struct! {
    /// `remote_connect_get_uri_ret`.
    pub struct ConnectGetUriRet {
        pub uri: String,
    }
}

xdr_struct! {
    /// `remote_connect_is_secure_ret`.
    pub struct ConnectIsSecureRet {
        pub secure: i32,
    }
}

/// `major.minor.micro` → libvirt's packed version number.
pub const fn pack_version(major: u64, minor: u64, micro: u64) -> u64 {
    major * 1_000_000 + minor * 1_000 + micro
}

/// A domain UUID (`remote_uuid`, 16-byte fixed opaque).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

impl crate::xdr::XdrEncode for Uuid {
    fn encode(&self, enc: &mut crate::xdr::Encoder) {
        enc.opaque_fixed(&self.0);
    }
}

impl crate::xdr::XdrDecode for Uuid {
    fn decode(dec: &mut crate::xdr::Decoder<'_>) -> Result<Self, crate::xdr::XdrError> {
        let mut u = [0u8; 16];
        u.copy_from_slice(dec.opaque_fixed(16)?);
        Ok(Uuid(u))
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

xdr_struct! {
    /// `remote_nonnull_domain`.
    pub struct NonnullDomain {
        pub name: String,
        pub uuid: Uuid,
        pub id: i32,
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_name_args`.
    pub struct DomainLookupByNameArgs {
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_name_ret` (also `_by_uuid`, `_by_id`).
    pub struct DomainRet {
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// Arguments that are only a domain (`DOMAIN_SUSPEND`, `DOMAIN_RESUME`, …).
    pub struct DomainArgs {
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// `remote_nonnull_network`.
    pub struct NonnullNetwork {
        pub name: String,
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_network_lookup_by_name_args`.
    pub struct NetworkLookupByNameArgs {
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_network_lookup_by_name_ret`.
    pub struct NetworkRet {
        pub net: NonnullNetwork,
    }
}

/// `REMOTE_CONNECT_IDENTITY_PARAMS_MAX`.
pub const CONNECT_IDENTITY_PARAMS_MAX: u32 = 20;

xdr_struct! {
    /// `remote_connect_set_identity_args`: the identity a privileged client
    /// (a hypervisor daemon or the proxy) acts for, as typed parameters
    /// (`VIR_CONNECT_IDENTITY_*`: `user-name`, `unix-user-id`, `group-name`,
    /// `unix-group-id`, `process-id`, `process-time`, …).
    pub struct ConnectSetIdentityArgs {
        pub params: Vec<crate::typed_param::TypedParam> [max CONNECT_IDENTITY_PARAMS_MAX],
        pub flags: u32,
    }
}
