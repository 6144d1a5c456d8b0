//! The secrets the driver knows (definitions and values, in definition
//! order), libvirt's rules for adding one (`virSecretObjListAdd`) and
//! libvirt's errors for the secret driver.

use crate::secret::{SecretDef, Usage};
use modvirt_wire::remote::Uuid;
use modvirt_wire::secret::NonnullSecret;
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use modvirt_xml::format_uuid;

/// `VIR_ERR_INVALID_SECRET`.
pub const INVALID_SECRET: ErrorCode = ErrorCode(65);
/// `VIR_ERR_NO_SECRET`.
pub const NO_SECRET: ErrorCode = ErrorCode(66);

/// One secret: its definition and, once set, its value.
#[derive(Clone)]
pub struct Secret {
    pub def: SecretDef,
    pub value: Option<Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    /// Never prints the value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("def", &self.def)
            .field(
                "value",
                &self.value.as_ref().map(|v| format!("{} bytes", v.len())),
            )
            .finish()
    }
}

impl Drop for Secret {
    /// Wipes the value before its memory is freed, as libvirt does.
    fn drop(&mut self) {
        if let Some(v) = &mut self.value {
            wipe(v);
        }
    }
}

/// Overwrites `bytes` with zeros (kept from being optimised away).
pub fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

impl Secret {
    pub fn wire(&self) -> NonnullSecret {
        NonnullSecret {
            uuid: Uuid(self.def.uuid),
            usage_type: self.def.usage.type_code(),
            usage_id: self.def.usage.id().to_owned(),
        }
    }
}

/// All secrets.
#[derive(Debug, Default)]
pub struct Secrets {
    list: Vec<Secret>,
}

/// libvirt's `usage_id`: absent for a secret without usage.
fn usage_id(usage: &Usage) -> Option<&str> {
    (*usage != Usage::None).then(|| usage.id())
}

impl Secrets {
    pub fn iter(&self) -> impl Iterator<Item = &Secret> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn by_uuid(&self, uuid: &[u8; 16]) -> Option<&Secret> {
        self.list.iter().find(|s| &s.def.uuid == uuid)
    }

    pub fn by_uuid_mut(&mut self, uuid: &[u8; 16]) -> Option<&mut Secret> {
        self.list.iter_mut().find(|s| &s.def.uuid == uuid)
    }

    /// The secret of usage `usage_type` with id `usage_id` (a secret
    /// without usage is never found this way).
    pub fn by_usage(&self, usage_type: i32, usage_id: &str) -> Option<&Secret> {
        self.list.iter().find(|s| {
            s.def.usage.type_code() == usage_type
                && s.def.usage != Usage::None
                && s.def.usage.id() == usage_id
        })
    }

    /// The secret a call names (by UUID), with libvirt's error if none.
    pub fn get(&self, secret: &NonnullSecret) -> Result<&Secret, RpcError> {
        self.by_uuid(&secret.uuid.0)
            .ok_or_else(|| no_secret_uuid(&secret.uuid.0))
    }

    pub fn get_mut(&mut self, secret: &NonnullSecret) -> Result<&mut Secret, RpcError> {
        let uuid = secret.uuid.0;
        self.by_uuid_mut(&uuid).ok_or_else(|| no_secret_uuid(&uuid))
    }

    /// libvirt's checks before `def` is added or replaces a definition:
    /// the same UUID must keep its usage id and may not drop `private`;
    /// a new UUID may not take a usage another secret has. Returns the
    /// definition being replaced, if any.
    pub fn check_define(&self, def: &SecretDef) -> Result<Option<&SecretDef>, RpcError> {
        let uuid = format_uuid(&def.uuid);
        if let Some(old) = self.by_uuid(&def.uuid) {
            if usage_id(&old.def.usage) != usage_id(&def.usage) {
                return Err(internal(format!(
                    "a secret with UUID {uuid} is already defined for use with {}",
                    // libvirt prints a missing usage id as "(null)".
                    usage_id(&old.def.usage).unwrap_or("(null)")
                )));
            }
            if old.def.private && !def.private {
                return Err(internal("cannot change private flag on existing secret"));
            }
            return Ok(Some(&old.def));
        }
        if let Some(other) = self.by_usage(def.usage.type_code(), def.usage.id()) {
            return Err(internal(format!(
                "a secret with UUID {} already defined for use with {}",
                format_uuid(&other.def.uuid),
                def.usage.id()
            )));
        }
        Ok(None)
    }

    /// Adds `def`, or replaces the definition of the secret with its UUID
    /// (keeping its value).
    pub fn put(&mut self, def: SecretDef) {
        match self.by_uuid_mut(&def.uuid) {
            Some(old) => old.def = def,
            None => self.list.push(Secret { def, value: None }),
        }
    }

    pub fn remove(&mut self, uuid: &[u8; 16]) -> Option<Secret> {
        let at = self.list.iter().position(|s| &s.def.uuid == uuid)?;
        Some(self.list.remove(at))
    }

    /// How many secrets are ephemeral (they keep the daemon alive).
    pub fn ephemeral(&self) -> usize {
        self.list.iter().filter(|s| s.def.ephemeral).count()
    }
}

fn err(code: ErrorCode, prefix: &str, detail: impl Into<String>) -> RpcError {
    RpcError::new(code, ErrorDomain::SECRET, prefix, detail)
}

/// `VIR_ERR_NO_SECRET` for a UUID.
pub fn no_secret_uuid(uuid: &[u8; 16]) -> RpcError {
    err(
        NO_SECRET,
        "Secret not found",
        format!("no secret with matching uuid '{}'", format_uuid(uuid)),
    )
}

/// `VIR_ERR_NO_SECRET` for a usage.
pub fn no_secret_usage(usage_id: &str) -> RpcError {
    err(
        NO_SECRET,
        "Secret not found",
        format!("no secret with matching usage '{usage_id}'"),
    )
}

/// `VIR_ERR_NO_SECRET`: the secret exists but has no value.
pub fn no_value(uuid: &[u8; 16]) -> RpcError {
    err(
        NO_SECRET,
        "Secret not found",
        format!("secret '{}' does not have a value", format_uuid(uuid)),
    )
}

/// `VIR_ERR_INVALID_SECRET`: a private secret's value was asked for.
pub fn private() -> RpcError {
    err(INVALID_SECRET, "Invalid secret", "secret is private")
}

/// `VIR_ERR_INTERNAL_ERROR`.
pub fn internal(detail: impl Into<String>) -> RpcError {
    err(ErrorCode::INTERNAL_ERROR, "internal error", detail)
}

/// `VIR_ERR_SYSTEM_ERROR` for a file the driver could not write or remove.
pub fn io_error(what: &str, path: &std::path::Path, e: &std::io::Error) -> RpcError {
    RpcError::plain(
        ErrorCode::SYSTEM_ERROR,
        ErrorDomain::SECRET,
        format!("cannot {what} '{}': {e}", path.display()),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn def(uuid: u8, usage: Usage, private: bool) -> SecretDef {
        SecretDef {
            ephemeral: false,
            private,
            uuid: [uuid; 16],
            description: None,
            usage,
        }
    }

    #[test]
    fn libvirts_define_rules() {
        let mut s = Secrets::default();
        s.put(def(1, Usage::Ceph("c".into()), true));
        s.put(def(2, Usage::None, false));
        assert_eq!(s.len(), 2);

        // Same UUID, same usage id: replaces.
        assert!(
            s.check_define(&def(1, Usage::Ceph("c".into()), true))
                .unwrap()
                .is_some()
        );
        // libvirt compares the ids only, not the usage types.
        assert!(
            s.check_define(&def(1, Usage::Tls("c".into()), true))
                .unwrap()
                .is_some()
        );
        let e = s
            .check_define(&def(1, Usage::Ceph("d".into()), true))
            .unwrap_err();
        assert_eq!(
            e.text(),
            "internal error: a secret with UUID 01010101-0101-0101-0101-010101010101 is already defined for use with c"
        );
        let e = s
            .check_define(&def(2, Usage::Ceph("d".into()), false))
            .unwrap_err();
        assert!(
            e.text().ends_with("already defined for use with (null)"),
            "{}",
            e.text()
        );
        let e = s
            .check_define(&def(1, Usage::Ceph("c".into()), false))
            .unwrap_err();
        assert_eq!(
            e.text(),
            "internal error: cannot change private flag on existing secret"
        );
        assert_eq!(
            (e.code, e.domain),
            (ErrorCode::INTERNAL_ERROR, ErrorDomain::SECRET)
        );
        // A new UUID may not take another secret's usage…
        let e = s
            .check_define(&def(3, Usage::Ceph("c".into()), false))
            .unwrap_err();
        assert_eq!(
            e.text(),
            "internal error: a secret with UUID 01010101-0101-0101-0101-010101010101 already defined for use with c"
        );
        // …but secrets without usage never clash.
        assert!(s.check_define(&def(3, Usage::None, false)).unwrap().is_none());

        assert!(s.by_usage(2, "c").is_some());
        assert!(s.by_usage(4, "c").is_none());
        assert!(s.by_usage(0, "").is_none());
    }

    #[test]
    fn lookups_fail_with_libvirts_errors() {
        let s = Secrets::default();
        let e = s
            .get(&NonnullSecret {
                uuid: Uuid([0xab; 16]),
                usage_type: 0,
                usage_id: String::new(),
            })
            .unwrap_err();
        assert_eq!((e.code.0, e.domain.0), (66, 30));
        assert_eq!(
            e.text(),
            "Secret not found: no secret with matching uuid 'abababab-abab-abab-abab-abababababab'"
        );
        assert_eq!(
            no_secret_usage("x").text(),
            "Secret not found: no secret with matching usage 'x'"
        );
        let p = private();
        assert_eq!(
            (p.code.0, p.domain.0, p.text()),
            (65, 30, "Invalid secret: secret is private")
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret {
            def: def(1, Usage::None, false),
            value: Some(b"hunter2".to_vec()),
        };
        let text = format!("{s:?}");
        assert!(!text.contains("hunter2") && !text.contains("104"), "{text}");
        assert!(text.contains("7 bytes"), "{text}");
    }
}
