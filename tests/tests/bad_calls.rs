//! Well-framed but wrong calls against a real `virtqemud` (PRODUCT.md §4:
//! bad input gets a libvirt-style error and never takes the daemon down):
//! unknown programs (the keepalive program included), versions, message
//! types and procedures, malformed XDR
//! payloads, calls before `CONNECT_OPEN`, pipelined calls beyond the
//! per-client limit, and state changes on a read-only connection.
//!
//! Each test starts its own daemon and talks to it with a
//! [`RawClient`](modvirt_tests::raw::RawClient). For every case it checks
//! the error reply (code, domain, message), that the offending connection
//! stays usable, and that the daemon still serves everyone else (a raw
//! `AUTH_LIST`/`CONNECT_OPEN`/hostname round trip and the real
//! `virsh hostname`). Framing, stalls and keepalive are in `bad_frames.rs`.

use modvirt_tests::ok_stdout;
use modvirt_tests::raw::{
    CONNECT_RO, RawClient, assert_decode_error, assert_rpc_error, assert_rpc_layer_error, assert_serves,
    call_header, keepalive_frame, procs, remote_call, start_with_short_keepalive, xdr,
};
use modvirt_wire::program::{KEEPALIVE_PING, KEEPALIVE_PROGRAM, KEEPALIVE_VERSION, REMOTE_PROGRAM};
use modvirt_wire::remote::{self as r, feature};
use modvirt_wire::{ErrorCode, ErrorDomain, Header, MessageType, RpcError, Status, XdrDecode, XdrEncode};
use std::collections::BTreeSet;

// ---------------------------------------------------------------- 3–6: header checks

#[test]
fn unknown_program_gets_error_and_connection_stays_usable() {
    let mut d = start_with_short_keepalive("");
    let mut c = RawClient::connect_rw(&d);
    let e = c.header_err(call_header(0x1234_5678, 1, procs::AUTH_LIST, 7));
    assert_rpc_layer_error(&e, "Cannot find program 305419896 version 1");
    c.assert_usable();
    assert_serves(&mut d);
}

#[test]
fn remote_program_wrong_version_gets_error() {
    let mut d = start_with_short_keepalive("");
    let mut c = RawClient::connect_rw(&d);
    let e = c.header_err(call_header(REMOTE_PROGRAM, 2, procs::AUTH_LIST, 3));
    assert_rpc_layer_error(&e, "Cannot find program 536903814 version 2");
    c.auth_list();
    assert_serves(&mut d);
}

#[test]
fn wrong_message_type_or_status_gets_error() {
    let mut d = start_with_short_keepalive("");
    let mut c = RawClient::connect_rw(&d);
    for (type_, status, text) in [
        (MessageType::Reply, Status::Ok, "Unexpected message type 1"),
        (MessageType::Stream, Status::Ok, "Unexpected message type 3"),
        (MessageType::Message, Status::Ok, "Unexpected message type 2"),
        (MessageType::Call, Status::Error, "Unexpected message status 1"),
    ] {
        let e = c.header_err(Header {
            type_,
            status,
            ..remote_call(procs::AUTH_LIST, 40)
        });
        assert_rpc_layer_error(&e, text);
    }
    c.auth_list();
    assert_serves(&mut d);
}

#[test]
fn keepalive_program_only_takes_messages() {
    // libvirt consumes KEEPALIVE v1 MESSAGEs; anything else addressed to
    // that program is an ordinary call to a program the server lacks.
    let mut d = start_with_short_keepalive("");
    let mut c = RawClient::connect_rw(&d);
    let e = c.header_err(call_header(
        KEEPALIVE_PROGRAM,
        KEEPALIVE_VERSION,
        KEEPALIVE_PING,
        9,
    ));
    assert_rpc_layer_error(&e, "Cannot find program 1801807216 version 1");
    // An unknown keepalive message is ignored, and a PING still answered.
    c.send(&keepalive_frame(7))
        .expect("send unknown keepalive message");
    c.ping();
    c.auth_list();
    assert_serves(&mut d);
}

#[test]
fn unknown_procedure_and_event_procedure_get_errors() {
    let mut d = start_with_short_keepalive("");
    let mut c = RawClient::connect_rw(&d);
    for proc_ in [9999, -1, 0] {
        let e = c.rpc_err(proc_, &[]);
        assert_rpc_layer_error(&e, &format!("unknown procedure: {proc_}"));
    }
    let e = c.rpc_err(procs::DOMAIN_EVENT_LIFECYCLE, &[]);
    assert_eq!((e.code, e.domain), (ErrorCode::RPC, ErrorDomain::RPC), "{e}");
    assert!(e.text().contains("DOMAIN_EVENT_LIFECYCLE"), "{e}");
    // The same after CONNECT_OPEN.
    c.auth_list();
    c.open(0);
    let e = c.rpc_err(9999, &[]);
    assert_rpc_layer_error(&e, "unknown procedure: 9999");
    let e = c.rpc_err(procs::DOMAIN_EVENT_LIFECYCLE, &[]);
    assert!(e.text().contains("DOMAIN_EVENT_LIFECYCLE"), "{e}");
    assert!(!c.hostname().is_empty());
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 7, 8: payloads

#[test]
fn malformed_xdr_gets_decode_error() {
    let mut d = start_with_short_keepalive("");
    let mut c = RawClient::connect_rw(&d);
    c.auth_list();
    // remote_connect_open_args { remote_string name; unsigned int flags; }
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // String length larger than the payload.
        (
            xdr(|e| {
                e.u32(1);
                e.u32(1000);
                e.raw(b"qemu:///");
                e.u32(0);
            }),
            "payload truncated",
        ),
        // Length beyond REMOTE_STRING_MAX.
        (
            xdr(|e| {
                e.u32(1);
                e.u32(0xffff_fff0);
            }),
            "exceeds its maximum",
        ),
        // Optional's bool neither 0 nor 1.
        (
            xdr(|e| {
                e.u32(7);
                e.string("qemu:///system");
                e.u32(0);
            }),
            "invalid boolean value 7",
        ),
        // Non-zero padding after the string.
        (
            xdr(|e| {
                e.u32(1);
                e.u32(1);
                e.raw(&[b'q', 1, 2, 3]);
                e.u32(0);
            }),
            "padding",
        ),
        // Flags missing.
        (
            xdr(|e| {
                e.u32(0);
            }),
            "payload truncated",
        ),
    ];
    for (payload, detail) in &cases {
        let e = c.rpc_err(procs::CONNECT_OPEN, payload);
        assert_decode_error(&e, detail);
    }
    // remote_connect_supports_feature_args { int feature; } with trailing bytes, or nothing.
    let e = c.rpc_err(
        procs::CONNECT_SUPPORTS_FEATURE,
        &xdr(|e| {
            e.i32(feature::PROGRAM_KEEPALIVE);
            e.u32(0);
        }),
    );
    assert_decode_error(&e, "4 trailing bytes");
    let e = c.rpc_err(procs::CONNECT_SUPPORTS_FEATURE, &[]);
    assert_decode_error(&e, "payload truncated");
    // The connection is still fine: it opens and answers.
    c.open(0);
    assert!(!c.hostname().is_empty());
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 9: before CONNECT_OPEN

#[test]
fn call_before_connect_open_gets_error() {
    let not_open = |e: &RpcError| {
        assert_rpc_error(
            e,
            ErrorCode::INTERNAL_ERROR,
            ErrorDomain::RPC,
            "internal error: connection not open",
        );
    };
    let mut d = start_with_short_keepalive("");
    let mut c = RawClient::connect_rw(&d);
    for proc_ in [procs::CONNECT_GET_HOSTNAME, procs::CONNECT_GET_TYPE] {
        not_open(&c.rpc_err(proc_, &[]));
    }
    // Feature probes other than keepalive also need an open connection.
    let args = r::ConnectSupportsFeatureArgs {
        feature: feature::TYPED_PARAM_STRING,
    };
    not_open(&c.rpc_err(procs::CONNECT_SUPPORTS_FEATURE, &args.to_xdr()));
    c.assert_usable();
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 13: per-client limit

#[test]
fn pipelined_calls_beyond_max_client_requests_are_all_answered() {
    let mut d = start_with_short_keepalive("max_client_requests = 1\n");
    let mut c = RawClient::connect_rw(&d);
    let mut batch = Vec::new();
    let mut sent = Vec::new();
    let open = r::ConnectOpenArgs {
        name: Some("qemu:///system".into()),
        flags: 0,
    }
    .to_xdr();
    for i in 0..10 {
        let (proc_, payload) = match i {
            0 => (procs::AUTH_LIST, &[][..]),
            1 => (procs::CONNECT_OPEN, &open[..]),
            _ => (procs::CONNECT_GET_HOSTNAME, &[][..]),
        };
        let (h, frame) = c.call_frame(proc_, payload);
        batch.extend_from_slice(&frame);
        sent.push(h);
    }
    c.send(&batch).expect("send batch");
    let mut answered = BTreeSet::new();
    for _ in 0..10 {
        let (h, p) = c.recv();
        let call = sent
            .iter()
            .find(|s| s.serial == h.serial)
            .unwrap_or_else(|| panic!("reply to unknown serial {}", h.serial));
        assert_eq!((h.proc_, h.type_), (call.proc_, MessageType::Reply));
        if h.status != Status::Ok {
            panic!(
                "call {} failed: {}",
                h.serial,
                RpcError::from_xdr(&p).map(|e| e.to_string()).unwrap_or_default()
            );
        }
        assert!(answered.insert(h.serial), "two replies to serial {}", h.serial);
    }
    assert_eq!(answered.len(), 10);
    assert!(!c.hostname().is_empty());
    assert_serves(&mut d);
}

// ---------------------------------------------------------------- 14: read-only socket

#[test]
fn read_only_socket_refuses_state_changes() {
    let mut d = start_with_short_keepalive("");
    let define = xdr(|e| e.string("<domain type='qemu'><name>x</name></domain>"));
    let denied = "operation forbidden: read only access prevents virDomainDefineXML";
    // Opened without VIR_CONNECT_RO: the socket alone makes it read-only.
    let mut c = RawClient::connect(&d.socket("sock-ro"));
    c.auth_list();
    c.open(0);
    assert!(!c.hostname().is_empty(), "reads work on the read-only socket");
    let e = c.rpc_err(procs::DOMAIN_DEFINE_XML, &define);
    assert_rpc_error(&e, ErrorCode::OPERATION_DENIED, ErrorDomain::DOMAIN, denied);
    let e = c.rpc_err(procs::NETWORK_DEFINE_XML, &define);
    assert_rpc_error(
        &e,
        ErrorCode::OPERATION_DENIED,
        ErrorDomain::NETWORK,
        "operation forbidden: read only access prevents virNetworkDefineXML",
    );
    c.auth_list();

    // Opened with VIR_CONNECT_RO on the read-write socket: refused the same way.
    let mut c = RawClient::connect_rw(&d);
    c.auth_list();
    c.open(CONNECT_RO);
    let e = c.rpc_err(procs::DOMAIN_DEFINE_XML, &define);
    assert_rpc_error(&e, ErrorCode::OPERATION_DENIED, ErrorDomain::DOMAIN, denied);

    // The real virsh on the read-only socket.
    ok_stdout(&d.virsh_ro(&["hostname"]));
    assert_serves(&mut d);
}
