//! The REMOTE secret procedures, one function each, and the table that
//! routes a call to them. Anything not here answers `VIR_ERR_NO_SUPPORT`.
//!
//! Every change holds the registry lock from its checks to its last file,
//! so concurrent calls see a secret before or after a change, never half.
//! A change that succeeded sends libvirt 9.0's events
//! ([`super::events`]), ephemeral and private secrets alike: `Defined` on
//! every define (new or replacing a definition, with the new usage),
//! `Undefined` on undefine, "value changed" on every set-value (the same
//! value again too). A call that fails sends nothing.

use super::secrets::{Secret, Secrets, io_error, no_secret_usage, no_secret_uuid, no_value, private, wipe};
use super::{Core, events};
use crate::secret::{SecretDef, SecretXmlError};
use modvirt_runtime::dispatch::{CallContext, CallFuture, CallResult, check_flags, decode_args, encode_ret};
use modvirt_wire::secret::*;
use modvirt_wire::xdr::Encoder;
use modvirt_wire::{ErrorCode, ErrorDomain, Procedure, RpcError};
use std::sync::Arc;

type Handler = fn(&Core, &[u8], &'static Procedure) -> CallResult;

/// Routes a call; `None` for procedures this driver does not implement.
pub fn dispatch(core: Arc<Core>, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
    let p = ctx.procedure;
    // Event callbacks belong to the calling client.
    if matches!(p.number, 380 | 381) {
        let client = ctx.client.clone();
        let payload = payload.to_vec();
        return Some(Box::pin(async move {
            if p.number == 380 {
                events::register(&core, &client, &payload)
            } else {
                events::deregister(&core, &client, &payload)
            }
        }));
    }
    let handler: Handler = match p.number {
        139 => num_of_secrets,
        140 => list_secrets,
        141 => lookup_by_uuid,
        142 => define_xml,
        143 => get_xml_desc,
        144 => set_value,
        145 => get_value,
        146 => undefine,
        147 => lookup_by_usage,
        287 => list_all,
        _ => return None,
    };
    let mut payload = payload.to_vec();
    Some(Box::pin(async move {
        let result = handler(&core, &payload, p);
        // SECRET_SET_VALUE carries a value: leave no copy behind.
        wipe(&mut payload);
        result
    }))
}

fn xml_error(e: SecretXmlError) -> RpcError {
    RpcError::plain(ErrorCode(e.code()), ErrorDomain(e.domain()), e.message())
}

fn ret_secret(s: &Secret) -> CallResult {
    encode_ret(&SecretRet { secret: s.wire() })
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn num_of_secrets(core: &Core, _: &[u8], _: &'static Procedure) -> CallResult {
    encode_ret(&ConnectNumOfSecretsRet {
        num: count(core.secrets().len()),
    })
}

fn list_secrets(core: &Core, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: ConnectListSecretsArgs = decode_args(p)?;
    let max = usize::try_from(a.maxuuids).unwrap_or(0);
    let uuids = core
        .secrets()
        .iter()
        .take(max)
        .map(|s| s.def.uuid_string())
        .collect();
    encode_ret(&ConnectListSecretsRet { uuids })
}

fn list_all(core: &Core, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: ConnectListAllSecretsArgs = decode_args(p)?;
    check_flags(a.flags, list::ALL, proc_)?;
    let f = a.flags;
    let pick = |yes: u32, no: u32, v: bool| f & (yes | no) == 0 || (f & yes != 0 && v) || (f & no != 0 && !v);
    let secrets = core.secrets();
    let found: Vec<_> = secrets
        .iter()
        .filter(|s| pick(list::EPHEMERAL, list::NO_EPHEMERAL, s.def.ephemeral))
        .filter(|s| pick(list::PRIVATE, list::NO_PRIVATE, s.def.private))
        .map(Secret::wire)
        .collect();
    let ret = u32::try_from(found.len()).unwrap_or(u32::MAX);
    encode_ret(&ConnectListAllSecretsRet {
        secrets: if a.need_results != 0 { found } else { Vec::new() },
        ret,
    })
}

fn lookup_by_uuid(core: &Core, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: SecretLookupByUuidArgs = decode_args(p)?;
    let secrets = core.secrets();
    let s = secrets
        .by_uuid(&a.uuid.0)
        .ok_or_else(|| no_secret_uuid(&a.uuid.0))?;
    ret_secret(s)
}

fn lookup_by_usage(core: &Core, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: SecretLookupByUsageArgs = decode_args(p)?;
    let secrets = core.secrets();
    let s = secrets
        .by_usage(a.usage_type, &a.usage_id)
        .ok_or_else(|| no_secret_usage(&a.usage_id))?;
    ret_secret(s)
}

fn define_xml(core: &Core, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: SecretDefineXmlArgs = decode_args(p)?;
    // VALIDATE asks for libvirt's RelaxNG check; the parser's own checks
    // are what modvirt validates against.
    check_flags(a.flags, DEFINE_VALIDATE, proc_)?;
    let def = SecretDef::parse(&a.xml, &mut core.rng()).map_err(xml_error)?;
    let mut secrets = core.secrets();
    let was_ephemeral = secrets.check_define(&def)?.map(|old| old.ephemeral);
    save_for_define(core, &secrets, &def, was_ephemeral)?;
    let uuid = def.uuid;
    tracing::info!(target: "secret", "defined secret {}", def.uuid_string());
    secrets.put(def);
    core.hold_for_ephemeral(&secrets);
    let s = secrets.by_uuid(&uuid).ok_or_else(|| no_secret_uuid(&uuid))?;
    core.events.lifecycle(&s.wire(), event::DEFINED);
    ret_secret(s)
}

/// What a (re)definition changes on disk, as libvirt's `secretDefineXML`:
/// a persistent secret gets its `UUID.xml` (and its value, if it was
/// ephemeral until now); a secret turned ephemeral loses both files.
fn save_for_define(
    core: &Core,
    secrets: &Secrets,
    def: &SecretDef,
    was_ephemeral: Option<bool>,
) -> Result<(), RpcError> {
    let store = &core.store;
    let uuid = def.uuid;
    if !def.ephemeral {
        let value = secrets.by_uuid(&uuid).and_then(|s| s.value.as_deref());
        let wrote_value = match (was_ephemeral, value) {
            (Some(true), Some(v)) => {
                store
                    .save_value(&uuid, v)
                    .map_err(|e| io_error("write secret value", &store.value_path(&uuid), &e))?;
                true
            }
            _ => false,
        };
        if let Err(e) = store.save_def(def) {
            if wrote_value {
                store.delete_value(&uuid);
            }
            return Err(io_error("write secret definition", &store.xml_path(&uuid), &e));
        }
    } else if was_ephemeral == Some(false) {
        store
            .delete_def(&uuid)
            .map_err(|e| io_error("unlink", &store.xml_path(&uuid), &e))?;
        store.delete_value(&uuid);
    }
    Ok(())
}

fn get_xml_desc(core: &Core, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: SecretFlagsArgs = decode_args(p)?;
    check_flags(a.flags, 0, proc_)?;
    let secrets = core.secrets();
    encode_ret(&SecretGetXmlDescRet {
        xml: secrets.get(&a.secret)?.def.to_xml(),
    })
}

fn set_value(core: &Core, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let mut a: SecretSetValueArgs = decode_args(p)?;
    let result = store_value(core, &mut a, proc_);
    wipe(&mut a.value.0);
    result
}

fn store_value(core: &Core, a: &mut SecretSetValueArgs, proc_: &'static Procedure) -> CallResult {
    check_flags(a.flags, 0, proc_)?;
    let mut secrets = core.secrets();
    let s = secrets.get_mut(&a.secret)?;
    let uuid = s.def.uuid;
    if !s.def.ephemeral {
        let store = &core.store;
        store
            .save_value(&uuid, &a.value.0)
            .map_err(|e| io_error("write secret value", &store.value_path(&uuid), &e))?;
    }
    if let Some(old) = &mut s.value {
        wipe(old);
    }
    s.value = Some(std::mem::take(&mut a.value.0));
    tracing::info!(target: "secret", "value of secret {} set", s.def.uuid_string());
    core.events.value_changed(&s.wire());
    encode_ret(&())
}

fn get_value(core: &Core, p: &[u8], proc_: &'static Procedure) -> CallResult {
    let a: SecretFlagsArgs = decode_args(p)?;
    check_flags(a.flags, 0, proc_)?;
    let secrets = core.secrets();
    let s = secrets.get(&a.secret)?;
    // libvirt refuses a private secret's value to every client call; only
    // its own daemons' internal calls may read it.
    if s.def.private {
        return Err(private());
    }
    let value = s.value.as_deref().ok_or_else(|| no_value(&s.def.uuid))?;
    // remote_secret_get_value_ret, encoded from the value in place so that
    // no other copy of it is made.
    let mut enc = Encoder::new();
    enc.opaque(value);
    Ok(enc.into_vec())
}

fn undefine(core: &Core, p: &[u8], _: &'static Procedure) -> CallResult {
    let a: SecretArgs = decode_args(p)?;
    let mut secrets = core.secrets();
    let s = secrets.get(&a.secret)?;
    let (uuid, ephemeral, wire) = (s.def.uuid, s.def.ephemeral, s.wire());
    let store = &core.store;
    if !ephemeral {
        store
            .delete_def(&uuid)
            .map_err(|e| io_error("unlink", &store.xml_path(&uuid), &e))?;
    }
    // Undefined once its definition is gone, whatever becomes of the value.
    core.events.lifecycle(&wire, event::UNDEFINED);
    store.delete_value(&uuid);
    if let Some(gone) = secrets.remove(&uuid) {
        tracing::info!(target: "secret", "undefined secret {}", gone.def.uuid_string());
    }
    core.hold_for_ephemeral(&secrets);
    encode_ret(&())
}
