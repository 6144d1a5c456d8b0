//! Wire test vectors: every frame of the libvirt 9.0 captures in
//! `tests/vectors/` (copied from `shared/reference/libvirt-9.0/traces/`:
//! real Debian `virsh`/`virt-admin` 9.0 talking to real 9.0 daemons through
//! a logging proxy) must parse, and every payload modvirt models must decode
//! and re-encode byte for byte.
//!
//! Trace format, one frame per header line followed by its payload hexdump:
//!
//! ```text
//! t=0.05 conn=1 S>C len=36 prog=0x20008086(REMOTE) vers=1 proc=66(AUTH_LIST) type=1(REPLY) serial=0 status=0(OK) plen=8
//!   decoded remote_error: {…}          (error replies only)
//!     000000  00 00 00 01 00 00 00 00                          |........|
//! ```

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;

mod trace_file;
use trace_file::{Frame, Json, all_frames, flat_json, json_int, json_opt_str, vectors_dir};

use modvirt_wire::admin;
use modvirt_wire::domain;
use modvirt_wire::message::{self, Header, MessageType, Status};
use modvirt_wire::program::{
    self, ADMIN, ADMIN_PROGRAM, KEEPALIVE_PROGRAM, ProcKind, REMOTE, REMOTE_PROGRAM,
};
use modvirt_wire::remote;
use modvirt_wire::typed_param::{TypedParam, TypedValue};
use modvirt_wire::{RpcError, XdrDecode, XdrEncode, XdrError};

// ---------------------------------------------------------------------------
// The payload models
// ---------------------------------------------------------------------------

/// Decodes a whole payload as `T` (no trailing bytes) and encodes it again.
fn round_trip<T: XdrDecode + XdrEncode>(payload: &[u8]) -> Result<Vec<u8>, XdrError> {
    Ok(T::from_xdr(payload)?.to_xdr())
}

type RoundTrip = fn(&[u8]) -> Result<Vec<u8>, XdrError>;

const CALL: i32 = 0;
const REPLY: i32 = 1;
const MESSAGE: i32 = 2;

/// (program, procedure, message type) → the type modelling that payload.
fn models() -> BTreeMap<(u32, i32, i32), RoundTrip> {
    use admin::*;
    use domain::*;
    use remote::*;
    let r = REMOTE_PROGRAM;
    let a = ADMIN_PROGRAM;
    let k = KEEPALIVE_PROGRAM;
    let rows: Vec<((u32, i32, i32), RoundTrip)> = vec![
        // REMOTE, connection level
        ((r, 1, CALL), round_trip::<ConnectOpenArgs>),
        ((r, 1, REPLY), round_trip::<()>),
        ((r, 2, CALL), round_trip::<()>),
        ((r, 2, REPLY), round_trip::<()>),
        ((r, 3, CALL), round_trip::<()>),
        ((r, 3, REPLY), round_trip::<ConnectGetTypeRet>),
        ((r, 4, CALL), round_trip::<()>),
        ((r, 4, REPLY), round_trip::<ConnectGetVersionRet>),
        ((r, 59, CALL), round_trip::<()>),
        ((r, 59, REPLY), round_trip::<ConnectGetHostnameRet>),
        ((r, 60, CALL), round_trip::<ConnectSupportsFeatureArgs>),
        ((r, 60, REPLY), round_trip::<ConnectSupportsFeatureRet>),
        ((r, 66, CALL), round_trip::<()>),
        ((r, 66, REPLY), round_trip::<AuthListRet>),
        ((r, 110, CALL), round_trip::<()>),
        ((r, 110, REPLY), round_trip::<ConnectGetUriRet>),
        ((r, 149, CALL), round_trip::<()>),
        ((r, 149, REPLY), round_trip::<ConnectIsSecureRet>),
        ((r, 157, CALL), round_trip::<()>),
        ((r, 157, REPLY), round_trip::<remote::ConnectGetLibVersionRet>),
        ((r, 360, CALL), round_trip::<()>),
        ((r, 360, REPLY), round_trip::<()>),
        ((r, 361, CALL), round_trip::<()>),
        ((r, 361, REPLY), round_trip::<()>),
        // REMOTE, domains and node
        ((r, 9, CALL), round_trip::<DomainArgs>),
        ((r, 9, REPLY), round_trip::<()>),
        ((r, 11, CALL), round_trip::<DomainDefineXmlArgs>),
        ((r, 11, REPLY), round_trip::<DomainRet>),
        ((r, 12, CALL), round_trip::<DomainArgs>),
        ((r, 12, REPLY), round_trip::<()>),
        ((r, 14, CALL), round_trip::<DomainFlagsArgs>),
        ((r, 14, REPLY), round_trip::<StringRet>),
        ((r, 15, CALL), round_trip::<DomainArgs>),
        ((r, 15, REPLY), round_trip::<IntRet>),
        ((r, 16, CALL), round_trip::<DomainArgs>),
        ((r, 16, REPLY), round_trip::<DomainGetInfoRet>),
        ((r, 19, CALL), round_trip::<DomainArgs>),
        ((r, 19, REPLY), round_trip::<StringRet>),
        ((r, 23, CALL), round_trip::<DomainLookupByNameArgs>),
        ((r, 23, REPLY), round_trip::<DomainRet>),
        ((r, 24, CALL), round_trip::<DomainLookupByUuidArgs>),
        ((r, 24, REPLY), round_trip::<DomainRet>),
        ((r, 51, CALL), round_trip::<()>),
        ((r, 51, REPLY), round_trip::<CountRet>),
        ((r, 121, CALL), round_trip::<DomainArgs>),
        ((r, 121, REPLY), round_trip::<DomainGetSecurityLabelRet>),
        ((r, 122, CALL), round_trip::<()>),
        ((r, 122, REPLY), round_trip::<NodeGetSecurityModelRet>),
        ((r, 150, CALL), round_trip::<DomainArgs>),
        ((r, 150, REPLY), round_trip::<IntRet>),
        ((r, 151, CALL), round_trip::<DomainArgs>),
        ((r, 151, REPLY), round_trip::<IntRet>),
        ((r, 183, CALL), round_trip::<DomainFlagsArgs>),
        ((r, 183, REPLY), round_trip::<IntRet>),
        ((r, 187, CALL), round_trip::<DomainFlagsArgs>),
        ((r, 187, REPLY), round_trip::<IntRet>),
        ((r, 212, CALL), round_trip::<DomainFlagsArgs>),
        ((r, 212, REPLY), round_trip::<DomainGetStateRet>),
        ((r, 231, CALL), round_trip::<DomainFlagsArgs>),
        ((r, 231, REPLY), round_trip::<()>),
        ((r, 273, CALL), round_trip::<ConnectListAllDomainsArgs>),
        ((r, 273, REPLY), round_trip::<ConnectListAllDomainsRet>),
        ((r, 426, CALL), round_trip::<DomainFlagsArgs>),
        ((r, 426, REPLY), round_trip::<DomainGetMessagesRet>),
        // ADMIN, procedures 1–19
        ((a, 1, CALL), round_trip::<FlagsArgs>),
        ((a, 1, REPLY), round_trip::<()>),
        ((a, 2, CALL), round_trip::<()>),
        ((a, 2, REPLY), round_trip::<()>),
        ((a, 3, CALL), round_trip::<()>),
        ((a, 3, REPLY), round_trip::<admin::ConnectGetLibVersionRet>),
        ((a, 4, CALL), round_trip::<ConnectListServersArgs>),
        ((a, 4, REPLY), round_trip::<ConnectListServersRet>),
        ((a, 5, CALL), round_trip::<ConnectLookupServerArgs>),
        ((a, 5, REPLY), round_trip::<ConnectLookupServerRet>),
        ((a, 6, CALL), round_trip::<ServerArgs>),
        ((a, 6, REPLY), round_trip::<ThreadpoolParametersRet>),
        ((a, 7, CALL), round_trip::<ServerSetThreadpoolParametersArgs>),
        ((a, 7, REPLY), round_trip::<()>),
        ((a, 8, CALL), round_trip::<ServerListClientsArgs>),
        ((a, 8, REPLY), round_trip::<ServerListClientsRet>),
        ((a, 9, CALL), round_trip::<ServerLookupClientArgs>),
        ((a, 9, REPLY), round_trip::<ServerLookupClientRet>),
        ((a, 10, CALL), round_trip::<ClientArgs>),
        ((a, 10, REPLY), round_trip::<ClientGetInfoRet>),
        ((a, 11, CALL), round_trip::<ClientArgs>),
        ((a, 11, REPLY), round_trip::<()>),
        ((a, 12, CALL), round_trip::<ServerArgs>),
        ((a, 12, REPLY), round_trip::<ClientLimitsRet>),
        ((a, 13, CALL), round_trip::<ServerSetClientLimitsArgs>),
        ((a, 13, REPLY), round_trip::<()>),
        ((a, 14, CALL), round_trip::<FlagsArgs>),
        ((a, 14, REPLY), round_trip::<ConnectGetLoggingOutputsRet>),
        ((a, 15, CALL), round_trip::<FlagsArgs>),
        ((a, 15, REPLY), round_trip::<ConnectGetLoggingFiltersRet>),
        ((a, 16, CALL), round_trip::<ConnectSetLoggingOutputsArgs>),
        ((a, 16, REPLY), round_trip::<()>),
        ((a, 17, CALL), round_trip::<ConnectSetLoggingFiltersArgs>),
        ((a, 17, REPLY), round_trip::<()>),
        ((a, 18, CALL), round_trip::<ServerArgs>),
        ((a, 18, REPLY), round_trip::<()>),
        ((a, 19, CALL), round_trip::<ConnectSetDaemonTimeoutArgs>),
        ((a, 19, REPLY), round_trip::<()>),
        // KEEPALIVE: both directions send both, always empty
        ((k, program::KEEPALIVE_PING, MESSAGE), round_trip::<()>),
        ((k, program::KEEPALIVE_PONG, MESSAGE), round_trip::<()>),
    ];
    let n = rows.len();
    let map: BTreeMap<_, _> = rows.into_iter().collect();
    assert_eq!(map.len(), n, "duplicate model row");
    map
}

/// The first OK frame of (prog, proc, type) in trace `file`, decoded as `T`.
fn first<T: XdrDecode>(frames: &[Frame], file: &str, prog: u32, proc_: i32, type_: i32) -> T {
    let f = frames
        .iter()
        .filter(|f| f.at.split_once(':').is_some_and(|(name, _)| name == file))
        .find(|f| f.prog == prog && f.proc_ == proc_ && f.type_ == type_ && f.status == 0)
        .unwrap_or_else(|| panic!("no OK frame {prog:#x}/{proc_}/{type_} in {file}"));
    T::from_xdr(&f.payload).unwrap()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn every_frame_parses() {
    let (files, frames) = all_frames();
    assert!(
        files >= 50,
        "only {files} trace files in {}",
        vectors_dir().display()
    );
    assert!(frames.len() >= 1400, "only {} frames parsed", frames.len());
    for f in &frames {
        let wire = f.wire_bytes();
        assert_eq!(wire.len() as u32, f.len, "{}: len= vs 28 + payload", f.at);
        let (h, payload) = message::decode_frame(&wire).unwrap_or_else(|e| panic!("{}: {e}", f.at));
        assert_eq!(h.prog, f.prog, "{}", f.at);
        assert_eq!(h.vers, f.vers, "{}", f.at);
        assert_eq!(h.proc_, f.proc_, "{}", f.at);
        assert_eq!(h.type_.to_i32(), f.type_, "{}", f.at);
        assert_eq!(h.serial, f.serial, "{}", f.at);
        assert_eq!(h.status.to_i32(), f.status, "{}", f.at);
        assert_eq!(payload, &f.payload[..], "{}", f.at);
        let length_word = u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]);
        assert_eq!(message::check_length(length_word), Ok(wire.len() - 4), "{}", f.at);
        // And our encoder writes the same frame.
        let again = message::encode_frame(&h, |e| e.opaque_fixed(payload));
        assert_eq!(again, wire, "{}: encode_frame", f.at);
    }
}

#[test]
fn error_replies_decode_and_re_encode() {
    let (_, frames) = all_frames();
    let errors: Vec<&Frame> = frames.iter().filter(|f| f.status == 1).collect();
    assert!(errors.len() >= 10, "only {} error replies", errors.len());
    for f in errors {
        assert_eq!(f.type_, REPLY, "{}: error status on a non-reply", f.at);
        let e = RpcError::from_xdr(&f.payload).unwrap_or_else(|err| panic!("{}: {err}", f.at));
        assert_eq!(e.to_xdr(), f.payload, "{}: re-encoded error differs", f.at);
        let json = f
            .decoded_error
            .as_deref()
            .unwrap_or_else(|| panic!("{}: no decoded JSON", f.at));
        let j = flat_json(json);
        assert_eq!(e.code.0, json_int(&j["code"]), "{}", f.at);
        assert_eq!(e.domain.0, json_int(&j["domain"]), "{}", f.at);
        assert_eq!(e.message, json_opt_str(&j["message"]), "{}", f.at);
        assert_eq!(e.level, json_int(&j["level"]), "{}", f.at);
        assert_eq!(e.str1, json_opt_str(&j["str1"]), "{}", f.at);
        assert_eq!(e.str2, json_opt_str(&j["str2"]), "{}", f.at);
        assert_eq!(e.str3, json_opt_str(&j["str3"]), "{}", f.at);
        assert_eq!(e.int1, json_int(&j["int1"]), "{}", f.at);
        assert_eq!(e.int2, json_int(&j["int2"]), "{}", f.at);
        assert_eq!(j["dom"], Json::Null, "{}: the traces carry no domain", f.at);
        assert!(e.dom.is_none() && e.net.is_none(), "{}", f.at);
    }
}

#[test]
fn modelled_payloads_round_trip() {
    let (_, frames) = all_frames();
    let models = models();
    let mut checked: BTreeMap<(u32, i32, i32), usize> = BTreeMap::new();
    for f in frames.iter().filter(|f| f.status == 0) {
        let key = (f.prog, f.proc_, f.type_);
        let Some(rt) = models.get(&key) else { continue };
        let again = rt(&f.payload).unwrap_or_else(|e| {
            panic!(
                "{}: {} {} payload does not decode: {e}",
                f.at, f.prog_name, f.proc_name
            )
        });
        assert_eq!(
            again, f.payload,
            "{}: {} {} re-encodes differently",
            f.at, f.prog_name, f.proc_name
        );
        *checked.entry(key).or_default() += 1;
    }
    let total: usize = checked.values().sum();
    eprintln!(
        "{total} modelled payloads round-tripped over {} keys",
        checked.len()
    );
    assert!(total >= 700, "only {total} modelled frames checked: {checked:?}");
    // Every ADMIN procedure virt-admin exercised in the captures was modelled.
    for n in [1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 15, 19] {
        for t in [CALL, REPLY] {
            let seen = checked.get(&(ADMIN_PROGRAM, n, t)).copied().unwrap_or(0);
            assert!(seen > 0, "ADMIN {n} type {t} never checked");
        }
    }
    for n in [1, 2, 3, 4, 59, 60, 66, 360, 361] {
        assert!(
            checked.contains_key(&(REMOTE_PROGRAM, n, REPLY)),
            "REMOTE {n} reply never checked"
        );
    }
    for n in [program::KEEPALIVE_PING, program::KEEPALIVE_PONG] {
        assert!(
            checked.contains_key(&(KEEPALIVE_PROGRAM, n, MESSAGE)),
            "KEEPALIVE {n} never checked"
        );
    }
}

#[test]
fn keepalive_frames_are_empty_serial_zero_messages() {
    let (_, frames) = all_frames();
    let ka: Vec<&Frame> = frames.iter().filter(|f| f.prog == KEEPALIVE_PROGRAM).collect();
    assert!(ka.len() >= 16, "only {} keepalive frames", ka.len());
    for f in &ka {
        assert_eq!(
            (f.type_, f.serial, f.status, f.plen),
            (MESSAGE, 0, 0, 0),
            "{}",
            f.at
        );
        assert_eq!(f.vers, program::KEEPALIVE_VERSION, "{}", f.at);
    }
    // Both sides ping and both sides answer.
    for (ping, c2s) in [(true, true), (true, false), (false, true), (false, false)] {
        let proc_ = if ping {
            program::KEEPALIVE_PING
        } else {
            program::KEEPALIVE_PONG
        };
        assert!(ka.iter().any(|f| f.proc_ == proc_ && f.client_to_server == c2s));
    }
}

#[test]
fn trace_procedures_exist_in_the_tables_with_the_same_names() {
    let (_, frames) = all_frames();
    for f in &frames {
        let (table_prog, row) = match f.prog {
            REMOTE_PROGRAM => (REMOTE.name, REMOTE.procedure(f.proc_)),
            ADMIN_PROGRAM => (ADMIN.name, ADMIN.procedure(f.proc_)),
            KEEPALIVE_PROGRAM => {
                assert_eq!(f.prog_name, "KEEPALIVE", "{}", f.at);
                let name = program::procedure_name(f.prog, f.proc_);
                assert_eq!(name, Some(f.proc_name.as_str()), "{}", f.at);
                continue;
            }
            other => panic!("{}: program {other:#x} has no table", f.at),
        };
        assert_eq!(f.prog_name, table_prog, "{}", f.at);
        let row = row.unwrap_or_else(|| panic!("{}: {} {} missing", f.at, f.prog_name, f.proc_));
        assert_eq!(row.name, f.proc_name, "{}: {} {}", f.at, f.prog_name, f.proc_);
        assert_eq!(
            row.kind,
            ProcKind::Call,
            "{}: clients only call in these traces",
            f.at
        );
        assert_eq!(program::procedure_name(f.prog, f.proc_), Some(row.name));
    }
}

#[test]
fn call_and_reply_headers_pair_up() {
    let (_, frames) = all_frames();
    for f in frames.iter().filter(|f| f.type_ == REPLY) {
        assert!(!f.client_to_server, "{}: reply from the client", f.at);
    }
    for f in frames.iter().filter(|f| f.type_ == CALL) {
        assert!(f.client_to_server, "{}: call from the server", f.at);
        // Header::reply keeps program, version, procedure and serial.
        let h = Header {
            prog: f.prog,
            vers: f.vers,
            proc_: f.proc_,
            type_: MessageType::Call,
            serial: f.serial,
            status: Status::Ok,
        };
        let reply = h.reply(Status::Ok);
        assert_eq!(
            (reply.type_, reply.serial, reply.proc_),
            (MessageType::Reply, f.serial, f.proc_)
        );
    }
}

#[test]
fn decoded_values_match_what_the_clients_printed() {
    let (_, frames) = all_frames();
    // virsh: one auth type, NONE; the keepalive feature probe is answered 1.
    let auth: remote::AuthListRet = first(&frames, "virsh-hostname.txt", REMOTE_PROGRAM, 66, REPLY);
    assert_eq!(auth.types, vec![remote::AUTH_NONE]);
    let probe: remote::ConnectSupportsFeatureArgs =
        first(&frames, "virsh-hostname.txt", REMOTE_PROGRAM, 60, CALL);
    assert_eq!(probe.feature, remote::feature::PROGRAM_KEEPALIVE);
    let open: remote::ConnectOpenArgs = first(&frames, "virsh-hostname.txt", REMOTE_PROGRAM, 1, CALL);
    assert_eq!(open.name.as_deref(), Some("qemu:///system"));

    // virt-admin srv-threadpool-info virtqemud: six UINT fields, in this order
    // (nWorkers before freeWorkers before prioWorkers), values 5/20/5/5/5/0.
    let pool: admin::ThreadpoolParametersRet = first(
        &frames,
        "virt-admin-srv-threadpool-info.txt",
        ADMIN_PROGRAM,
        6,
        REPLY,
    );
    use admin::field::*;
    let want = [
        (THREADPOOL_WORKERS_MIN, 5),
        (THREADPOOL_WORKERS_MAX, 20),
        (THREADPOOL_WORKERS_CURRENT, 5),
        (THREADPOOL_WORKERS_FREE, 5),
        (THREADPOOL_WORKERS_PRIORITY, 5),
        (THREADPOOL_JOB_QUEUE_DEPTH, 0),
    ];
    let want: Vec<TypedParam> = want
        .iter()
        .map(|(f, v)| TypedParam::new(f, TypedValue::UInt(*v)))
        .collect();
    assert_eq!(pool.params, want);
    // The admin server's pool: one worker is busy answering this very call,
    // and it has no priority workers.
    let pool: admin::ThreadpoolParametersRet = first(
        &frames,
        "virt-admin-srv-threadpool-info-admin.txt",
        ADMIN_PROGRAM,
        6,
        REPLY,
    );
    let values: Vec<Option<u64>> = pool.params.iter().map(|p| p.value.as_u64()).collect();
    assert_eq!(values, [Some(5), Some(20), Some(5), Some(4), Some(0), Some(0)]);

    // virt-admin client-info: `readonly` is a BOOLEAN, uid an INT.
    let info: admin::ClientGetInfoRet =
        first(&frames, "virt-admin-client-info.txt", ADMIN_PROGRAM, 10, REPLY);
    assert_eq!(
        info.params[0],
        TypedParam::new(CLIENT_INFO_READONLY, TypedValue::Boolean(false))
    );
    assert_eq!(
        info.params[1],
        TypedParam::new(CLIENT_INFO_UNIX_USER_ID, TypedValue::Int(0))
    );

    // virt-admin srv-clients-info: the four client-limit fields.
    let limits: admin::ClientLimitsRet = first(
        &frames,
        "virt-admin-srv-clients-info.txt",
        ADMIN_PROGRAM,
        12,
        REPLY,
    );
    let names: Vec<&str> = limits.params.iter().map(|p| p.field.as_str()).collect();
    for want in [
        SERVER_CLIENTS_MAX,
        SERVER_CLIENTS_CURRENT,
        SERVER_CLIENTS_UNAUTH_MAX,
        SERVER_CLIENTS_UNAUTH_CURRENT,
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }

    // virt-admin srv-clients-list: one unix client of server virtqemud.
    let list: admin::ServerListClientsRet = first(
        &frames,
        "virt-admin-srv-clients-list.txt",
        ADMIN_PROGRAM,
        8,
        REPLY,
    );
    assert_eq!(list.ret, 1);
    assert_eq!(list.clients[0].srv.name, "virtqemud");
    assert_eq!(list.clients[0].transport, admin::transport::UNIX);

    // virt-admin srv-list on virtqemud: its own server first, then admin.
    let servers: admin::ConnectListServersRet =
        first(&frames, "virt-admin-srv-list.txt", ADMIN_PROGRAM, 4, REPLY);
    let names: Vec<&str> = servers.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!((names, servers.ret), (vec!["virtqemud", "admin"], 2));

    // virt-admin daemon-log-outputs / -filters: no filters is a NULL string.
    let outputs: admin::ConnectGetLoggingOutputsRet = first(
        &frames,
        "virt-admin-daemon-log-outputs.txt",
        ADMIN_PROGRAM,
        14,
        REPLY,
    );
    assert_eq!((outputs.outputs.as_str(), outputs.noutputs), ("3:stderr", 1));
    let filters: admin::ConnectGetLoggingFiltersRet = first(
        &frames,
        "virt-admin-daemon-log-filters.txt",
        ADMIN_PROGRAM,
        15,
        REPLY,
    );
    assert_eq!((filters.filters, filters.nfilters), (None, 0));

    // virt-admin daemon-timeout --timeout 30.
    let timeout: admin::ConnectSetDaemonTimeoutArgs = first(
        &frames,
        "virt-admin-daemon-timeout-30.txt",
        ADMIN_PROGRAM,
        19,
        CALL,
    );
    assert_eq!((timeout.timeout, timeout.flags), (30, 0));
}

#[test]
fn json_reader_handles_escapes() {
    let j = flat_json(r#"{"s": "a\"b\\c\u00e9\ud83d\ude00'", "n": -12, "z": null}"#);
    assert_eq!(j["s"], Json::Str("a\"b\\c\u{e9}\u{1f600}'".into()));
    assert_eq!(j["n"], Json::Num(-12));
    assert_eq!(j["z"], Json::Null);
}
