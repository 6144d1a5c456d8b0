//! Arguments and return values of the REMOTE program's secret procedures
//! (`remote_protocol.x`, `remote_secret_*` / `remote_connect_*_secrets`),
//! the public `virSecretUsageType`, `virConnectListAllSecretsFlags` and
//! `virSecretDefineFlags`.
//!
//! A secret travels as `remote_nonnull_secret`: its UUID, usage type and
//! usage id (the empty string for a secret without usage); its value as a
//! variable opaque of at most [`SECRET_VALUE_MAX`] bytes.

use crate::remote::Uuid;
use crate::xdr::{Decoder, Encoder, XdrDecode, XdrEncode, XdrError};
use crate::xdr_struct;

/// `REMOTE_SECRET_VALUE_MAX`: the largest value a secret can hold.
pub const SECRET_VALUE_MAX: u32 = 65536;
/// `REMOTE_SECRET_LIST_MAX`.
pub const SECRET_LIST_MAX: u32 = 16384;
/// `REMOTE_SECRET_UUID_LIST_MAX`.
pub const SECRET_UUID_LIST_MAX: u32 = 16384;

/// `virSecretUsageType`.
pub mod usage {
    pub const NONE: i32 = 0;
    pub const VOLUME: i32 = 1;
    pub const CEPH: i32 = 2;
    pub const ISCSI: i32 = 3;
    pub const TLS: i32 = 4;
    pub const VTPM: i32 = 5;
}

/// `virConnectListAllSecretsFlags`.
pub mod list {
    pub const EPHEMERAL: u32 = 1 << 0;
    pub const NO_EPHEMERAL: u32 = 1 << 1;
    pub const PRIVATE: u32 = 1 << 2;
    pub const NO_PRIVATE: u32 = 1 << 3;
    pub const ALL: u32 = (1 << 4) - 1;
}

/// `virSecretDefineFlags`: `VALIDATE`.
pub const DEFINE_VALIDATE: u32 = 1 << 0;

xdr_struct! {
    /// `remote_nonnull_secret`.
    pub struct NonnullSecret {
        pub uuid: Uuid,
        pub usage_type: i32,
        pub usage_id: String,
    }
}

/// A secret's value: `opaque value<REMOTE_SECRET_VALUE_MAX>`. The bound is
/// checked before anything is copied.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretValue(pub Vec<u8>);

impl std::fmt::Debug for SecretValue {
    /// Never prints the value itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue({} bytes)", self.0.len())
    }
}

impl XdrEncode for SecretValue {
    fn encode(&self, enc: &mut Encoder) {
        enc.opaque(&self.0);
    }
}

impl XdrDecode for SecretValue {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(SecretValue(dec.opaque("value", SECRET_VALUE_MAX)?.to_vec()))
    }
}

xdr_struct! {
    /// `remote_connect_num_of_secrets_ret`.
    pub struct ConnectNumOfSecretsRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_secrets_args`.
    pub struct ConnectListSecretsArgs {
        pub maxuuids: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_secrets_ret`.
    pub struct ConnectListSecretsRet {
        pub uuids: Vec<String> [max SECRET_UUID_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_secret_lookup_by_uuid_args`.
    pub struct SecretLookupByUuidArgs {
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// `remote_secret_lookup_by_uuid_ret`, `…_by_usage_ret`, `…_define_xml_ret`.
    pub struct SecretRet {
        pub secret: NonnullSecret,
    }
}

xdr_struct! {
    /// `remote_secret_define_xml_args`.
    pub struct SecretDefineXmlArgs {
        pub xml: String,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_secret_get_xml_desc_args` / `remote_secret_get_value_args`.
    pub struct SecretFlagsArgs {
        pub secret: NonnullSecret,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_secret_get_xml_desc_ret`.
    pub struct SecretGetXmlDescRet {
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_secret_set_value_args`.
    pub struct SecretSetValueArgs {
        pub secret: NonnullSecret,
        pub value: SecretValue,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_secret_get_value_ret`.
    pub struct SecretGetValueRet {
        pub value: SecretValue,
    }
}

xdr_struct! {
    /// `remote_secret_undefine_args`.
    pub struct SecretArgs {
        pub secret: NonnullSecret,
    }
}

xdr_struct! {
    /// `remote_secret_lookup_by_usage_args`.
    pub struct SecretLookupByUsageArgs {
        pub usage_type: i32,
        pub usage_id: String,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_secrets_args`.
    pub struct ConnectListAllSecretsArgs {
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_secrets_ret`.
    pub struct ConnectListAllSecretsRet {
        pub secrets: Vec<NonnullSecret> [max SECRET_LIST_MAX],
        pub ret: u32,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn empty_list_matches_libvirt_bytes() {
        // virsh secret-list against libvirt 9.0's virtsecretd with no
        // secrets (trace virsh-secret-list-direct-virtsecretd).
        let args = ConnectListAllSecretsArgs::from_xdr(&[0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
        assert_eq!((args.need_results, args.flags), (1, 0));
        let ret = ConnectListAllSecretsRet {
            secrets: Vec::new(),
            ret: 0,
        };
        assert_eq!(ret.to_xdr(), [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn secret_and_value_round_trip() {
        let secret = NonnullSecret {
            uuid: Uuid([7; 16]),
            usage_type: usage::CEPH,
            usage_id: "client.admin".into(),
        };
        let args = SecretSetValueArgs {
            secret: secret.clone(),
            value: SecretValue(b"abcde".to_vec()),
            flags: 0,
        };
        let bytes = args.to_xdr();
        let mut want = vec![7u8; 16];
        want.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 12]);
        want.extend_from_slice(b"client.admin");
        want.extend_from_slice(&[0, 0, 0, 5]);
        want.extend_from_slice(b"abcde\0\0\0");
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(bytes, want);
        assert_eq!(SecretSetValueArgs::from_xdr(&bytes).unwrap(), args);
        assert_eq!(format!("{:?}", args.value), "SecretValue(5 bytes)");
    }

    #[test]
    fn value_longer_than_the_maximum_is_refused() {
        let mut bytes = (SECRET_VALUE_MAX + 1).to_be_bytes().to_vec();
        bytes.resize(4 + SECRET_VALUE_MAX as usize + 4, 0);
        assert_eq!(
            SecretGetValueRet::from_xdr(&bytes).unwrap_err(),
            XdrError::TooLong {
                what: "value",
                len: SECRET_VALUE_MAX + 1,
                max: SECRET_VALUE_MAX
            }
        );
        let mut ok = SECRET_VALUE_MAX.to_be_bytes().to_vec();
        ok.resize(4 + SECRET_VALUE_MAX as usize, 1);
        assert_eq!(
            SecretGetValueRet::from_xdr(&ok).unwrap().value.0.len(),
            SECRET_VALUE_MAX as usize
        );
    }
}
