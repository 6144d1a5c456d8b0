//! Arguments and return values of the REMOTE program's secret procedures
//! (`remote_protocol.x`, `remote_secret_*` / `remote_connect_*_secrets`),
//! the secret event callbacks (`remote_connect_secret_event_*`,
//! `remote_secret_event_lifecycle_msg`,
//! `remote_secret_event_value_changed_msg`), the public
//! `virSecretUsageType`, `virConnectListAllSecretsFlags`,
//! `virSecretDefineFlags` and the secret event enums.
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

/// Secret events (`libvirt-secret.h` as of libvirt 9.0).
pub mod event {
    /// `virSecretEventID`.
    pub mod id {
        pub const LIFECYCLE: i32 = 0;
        pub const VALUE_CHANGED: i32 = 1;
        /// `VIR_SECRET_EVENT_ID_LAST`: event ids are below it.
        pub const LAST: i32 = 2;
    }

    /// `virSecretEventLifecycleType`; the detail is always 0.
    pub const DEFINED: i32 = 0;
    pub const UNDEFINED: i32 = 1;
}

xdr_struct! {
    /// `remote_connect_secret_event_register_any_args`.
    pub struct ConnectSecretEventRegisterAnyArgs {
        pub event_id: i32,
        /// Only this secret's events (matched by UUID), if set.
        pub secret: Option<NonnullSecret>,
    }
}

xdr_struct! {
    /// `remote_connect_secret_event_register_any_ret`.
    pub struct ConnectSecretEventRegisterAnyRet {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_secret_event_deregister_any_args`.
    pub struct ConnectSecretEventDeregisterAnyArgs {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_secret_event_lifecycle_msg`: the body of a
    /// `SECRET_EVENT_LIFECYCLE` MESSAGE.
    pub struct SecretEventLifecycleMsg {
        pub callback_id: i32,
        pub secret: NonnullSecret,
        /// [`event`]`::DEFINED` or `UNDEFINED`.
        pub event: i32,
        pub detail: i32,
    }
}

xdr_struct! {
    /// `remote_secret_event_value_changed_msg`: the body of a
    /// `SECRET_EVENT_VALUE_CHANGED` MESSAGE (the secret only, never its
    /// value).
    pub struct SecretEventValueChangedMsg {
        pub callback_id: i32,
        pub secret: NonnullSecret,
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

    fn xdr_string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
        out.resize(out.len().next_multiple_of(4), 0);
    }

    #[test]
    fn secret_event_types_round_trip_in_libvirts_layout() {
        let secret = NonnullSecret {
            uuid: Uuid([5; 16]),
            usage_type: usage::CEPH,
            usage_id: "client.x".into(),
        };
        let mut secret_bytes = vec![5u8; 16];
        secret_bytes.extend_from_slice(&[0, 0, 0, 2]);
        xdr_string(&mut secret_bytes, "client.x");

        // Registration for one secret: event id, then the optional secret.
        let args = ConnectSecretEventRegisterAnyArgs {
            event_id: event::id::VALUE_CHANGED,
            secret: Some(secret.clone()),
        };
        let mut want = vec![0, 0, 0, 1, 0, 0, 0, 1];
        want.extend_from_slice(&secret_bytes);
        assert_eq!(args.to_xdr(), want);
        assert_eq!(ConnectSecretEventRegisterAnyArgs::from_xdr(&want).unwrap(), args);
        // For every secret: the pointer is absent.
        let any = ConnectSecretEventRegisterAnyArgs::from_xdr(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((any.event_id, any.secret), (event::id::LIFECYCLE, None));
        // A pointer flag other than 0 or 1 is refused.
        assert!(ConnectSecretEventRegisterAnyArgs::from_xdr(&[0, 0, 0, 0, 0, 0, 0, 2]).is_err());

        let ret = ConnectSecretEventRegisterAnyRet { callback_id: 4 };
        assert_eq!(ret.to_xdr(), [0, 0, 0, 4]);
        assert_eq!(
            ConnectSecretEventRegisterAnyRet::from_xdr(&[0, 0, 0, 4]).unwrap(),
            ret
        );
        let dereg = ConnectSecretEventDeregisterAnyArgs::from_xdr(&[0, 0, 0, 9]).unwrap();
        assert_eq!(dereg.callback_id, 9);
        assert_eq!(dereg.to_xdr(), [0, 0, 0, 9]);

        let msg = SecretEventLifecycleMsg {
            callback_id: 3,
            secret: secret.clone(),
            event: event::UNDEFINED,
            detail: 0,
        };
        let mut want = vec![0, 0, 0, 3];
        want.extend_from_slice(&secret_bytes);
        want.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(msg.to_xdr(), want);
        assert_eq!(SecretEventLifecycleMsg::from_xdr(&want).unwrap(), msg);
        assert!(SecretEventLifecycleMsg::from_xdr(&want[..want.len() - 4]).is_err());

        // A secret without usage: usage type 0, the empty usage id.
        let unused = NonnullSecret {
            uuid: Uuid([6; 16]),
            usage_type: usage::NONE,
            usage_id: String::new(),
        };
        let msg = SecretEventValueChangedMsg {
            callback_id: 7,
            secret: unused,
        };
        let mut want = vec![0, 0, 0, 7];
        want.extend_from_slice(&[6; 16]);
        want.extend_from_slice(&[0; 8]);
        assert_eq!(msg.to_xdr(), want);
        assert_eq!(SecretEventValueChangedMsg::from_xdr(&want).unwrap(), msg);
        assert!(SecretEventValueChangedMsg::from_xdr(&want[..want.len() - 1]).is_err());
    }
}
