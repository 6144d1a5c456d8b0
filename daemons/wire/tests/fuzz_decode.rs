//! Property tests for the decoders: whatever bytes a peer sends, framing,
//! error payloads, typed parameters and every admin/remote argument or
//! return type either decode or fail with an error: never a panic, never an
//! allocation sized by a length the peer claims rather than by the bytes it
//! sent. Values built from arbitrary fields round-trip exactly.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use modvirt_wire::admin::{self, AdminClient, AdminServer};
use modvirt_wire::error::{ErrorDomainRef, ErrorNetworkRef};
use modvirt_wire::message::{self, FrameError, Header, MESSAGE_MAX, MIN_FRAME};
use modvirt_wire::remote;
use modvirt_wire::typed_param::{TypedParam, TypedValue};
use modvirt_wire::{Decoder, ErrorCode, ErrorDomain, RpcError, XdrDecode, XdrEncode, XdrError};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// A short string: printable ASCII most of the time, any Unicode sometimes
/// (so multi-byte UTF-8 and odd padding lengths both occur).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_:/ .'%-]{0,40}",
        1 => "\\PC{0,12}",
    ]
}

fn word_bytes(w: u32) -> Vec<u8> {
    w.to_be_bytes().to_vec()
}

fn xdr_string_bytes(s: &str) -> Vec<u8> {
    let mut e = modvirt_wire::Encoder::new();
    e.string(s);
    e.into_vec()
}

/// Bytes that look like XDR: words that are plausible booleans,
/// discriminants, counts and lengths, well-formed strings, and raw noise,
/// so decoders get past their first field and into the deep paths.
fn xdrish() -> impl Strategy<Value = Vec<u8>> {
    let chunk = prop_oneof![
        4 => prop_oneof![Just(0u32), Just(1), Just(2), Just(7), 0u32..16].prop_map(word_bytes),
        1 => prop_oneof![Just(16_384u32), Just(16_385), Just(u32::MAX), any::<u32>()]
            .prop_map(word_bytes),
        3 => text().prop_map(|s| xdr_string_bytes(&s)),
        1 => proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(chunk, 0..24).prop_map(|chunks| chunks.concat())
}

/// Arbitrary bytes or XDR-looking bytes.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..256), xdrish()]
}

fn uuid() -> impl Strategy<Value = [u8; 16]> {
    any::<[u8; 16]>()
}

fn rpc_error() -> impl Strategy<Value = RpcError> {
    let dom = proptest::option::of((text(), uuid(), any::<i32>()))
        .prop_map(|d| d.map(|(name, uuid, id)| ErrorDomainRef { name, uuid, id }));
    let net = proptest::option::of((text(), uuid()))
        .prop_map(|n| n.map(|(name, uuid)| ErrorNetworkRef { name, uuid }));
    let strs = (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    );
    (any::<(i32, i32, i32, i32, i32)>(), strs, dom, net).prop_map(
        |((code, domain, level, int1, int2), (message, str1, str2, str3), dom, net)| RpcError {
            code: ErrorCode(code),
            domain: ErrorDomain(domain),
            message,
            level,
            dom,
            str1,
            str2,
            str3,
            int1,
            int2,
            net,
        },
    )
}

fn typed_value() -> impl Strategy<Value = TypedValue> {
    prop_oneof![
        any::<i32>().prop_map(TypedValue::Int),
        any::<u32>().prop_map(TypedValue::UInt),
        any::<i64>().prop_map(TypedValue::LLong),
        any::<u64>().prop_map(TypedValue::ULLong),
        any::<f64>().prop_map(TypedValue::Double),
        any::<bool>().prop_map(TypedValue::Boolean),
        text().prop_map(TypedValue::String),
    ]
}

fn typed_param() -> impl Strategy<Value = TypedParam> {
    (text(), typed_value()).prop_map(|(field, value)| TypedParam { field, value })
}

fn admin_client() -> impl Strategy<Value = AdminClient> {
    (text(), any::<u64>(), any::<i64>(), any::<u32>()).prop_map(|(name, id, timestamp, transport)| {
        AdminClient {
            srv: AdminServer { name },
            id,
            timestamp,
            transport,
        }
    })
}

// ---------------------------------------------------------------------------
// Decoding everything
// ---------------------------------------------------------------------------

/// Decodes `b` as `T`. A value that decodes must encode back to exactly `b`
/// (the codec is canonical: strict booleans, zero padding, no trailing bytes).
fn canonical<T: XdrDecode + XdrEncode>(b: &[u8]) -> bool {
    match T::from_xdr(b) {
        Ok(v) => {
            assert_eq!(
                v.to_xdr(),
                b,
                "{} decoded but re-encodes differently",
                std::any::type_name::<T>()
            );
            true
        }
        Err(_) => false,
    }
}

/// Decodes `b` as `T`, which holds typed parameters: a BOOLEAN arm accepts
/// any int and re-encodes it as 0 or 1, so only the length is preserved.
fn lossy_bool<T: XdrDecode + XdrEncode>(b: &[u8]) -> bool {
    match T::from_xdr(b) {
        Ok(v) => {
            assert_eq!(v.to_xdr().len(), b.len(), "{}", std::any::type_name::<T>());
            true
        }
        Err(_) => false,
    }
}

/// Feeds `b` to every decoder modvirt has; returns how many accepted it.
fn decode_with_everything(b: &[u8]) -> usize {
    use admin::*;
    use remote::*;
    let mut ok = [
        canonical::<RpcError>(b),
        lossy_bool::<TypedParam>(b),
        // admin_protocol.x
        canonical::<AdminServer>(b),
        canonical::<AdminClient>(b),
        canonical::<FlagsArgs>(b),
        canonical::<admin::ConnectGetLibVersionRet>(b),
        canonical::<ConnectListServersArgs>(b),
        canonical::<ConnectListServersRet>(b),
        canonical::<ConnectLookupServerArgs>(b),
        canonical::<ConnectLookupServerRet>(b),
        canonical::<ServerArgs>(b),
        lossy_bool::<ThreadpoolParametersRet>(b),
        lossy_bool::<ServerSetThreadpoolParametersArgs>(b),
        canonical::<ServerListClientsArgs>(b),
        canonical::<ServerListClientsRet>(b),
        canonical::<ServerLookupClientArgs>(b),
        canonical::<ServerLookupClientRet>(b),
        canonical::<ClientArgs>(b),
        lossy_bool::<ClientGetInfoRet>(b),
        lossy_bool::<ClientLimitsRet>(b),
        lossy_bool::<ServerSetClientLimitsArgs>(b),
        canonical::<ConnectGetLoggingOutputsRet>(b),
        canonical::<ConnectGetLoggingFiltersRet>(b),
        canonical::<ConnectSetLoggingOutputsArgs>(b),
        canonical::<ConnectSetLoggingFiltersArgs>(b),
        canonical::<ConnectSetDaemonTimeoutArgs>(b),
        // remote_protocol.x, connection level
        canonical::<AuthListRet>(b),
        canonical::<ConnectSupportsFeatureArgs>(b),
        canonical::<ConnectSupportsFeatureRet>(b),
        canonical::<ConnectOpenArgs>(b),
        canonical::<ConnectGetTypeRet>(b),
        canonical::<ConnectGetVersionRet>(b),
        canonical::<remote::ConnectGetLibVersionRet>(b),
        canonical::<ConnectGetHostnameRet>(b),
        canonical::<ConnectGetUriRet>(b),
        canonical::<ConnectIsSecureRet>(b),
    ]
    .iter()
    .filter(|ok| **ok)
    .count();
    let mut dec = Decoder::new(b);
    ok += usize::from(Header::decode(&mut dec).is_ok());
    ok
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_decoder_panics(b in input()) {
        decode_with_everything(&b);
    }

    /// Valid encodings with one byte changed and the tail cut: inputs that
    /// get deep into the decoders before something is wrong.
    #[test]
    fn mutated_valid_payloads_never_panic(
        valid in prop_oneof![
            rpc_error().prop_map(|e| e.to_xdr()),
            proptest::collection::vec(typed_param(), 0..8)
                .prop_map(|params| admin::ClientGetInfoRet { params }.to_xdr()),
            proptest::collection::vec(admin_client(), 0..4)
                .prop_map(|clients| admin::ServerListClientsRet { clients, ret: 0 }.to_xdr()),
        ],
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = valid;
        if !b.is_empty() {
            let i = at.index(b.len());
            b[i] = byte;
            b.truncate(cut.index(b.len() + 1).max(i));
        }
        decode_with_everything(&b);
    }

    #[test]
    fn frames_never_panic(b in input()) {
        let _ = message::decode_frame(&b);
        let _ = message::split_body(&b);
    }

    /// A frame whose length word is right, so the header and payload get parsed.
    #[test]
    fn well_sized_frames_never_panic(body in proptest::collection::vec(any::<u8>(), 24..200)) {
        let mut frame = word_bytes(body.len() as u32 + 4);
        frame.extend_from_slice(&body);
        match message::decode_frame(&frame) {
            Ok((h, payload)) => {
                prop_assert_eq!(payload, &body[24..]);
                let again = message::encode_frame(&h, |e| e.opaque_fixed(payload));
                if payload.len() % 4 == 0 {
                    prop_assert_eq!(again, frame);
                }
            }
            Err(e) => prop_assert!(matches!(e, FrameError::BadType(_) | FrameError::BadStatus(_)), "{e}"),
        }
    }

    #[test]
    fn check_length_accepts_exactly_the_legal_range(len in any::<u32>()) {
        match message::check_length(len) {
            Ok(rest) => {
                prop_assert!((MIN_FRAME..=MESSAGE_MAX).contains(&len));
                prop_assert_eq!(rest, len as usize - 4);
            }
            Err(FrameError::TooSmall(n)) => prop_assert!(n == len && len < MIN_FRAME),
            Err(FrameError::TooLarge(n)) => prop_assert!(n == len && len > MESSAGE_MAX),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    /// A length word claiming more than 32 MiB is refused from the word
    /// alone, whatever follows it.
    #[test]
    fn oversized_length_word_is_refused_first(
        len in (MESSAGE_MAX + 1)..=u32::MAX,
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        prop_assert_eq!(message::check_length(len), Err(FrameError::TooLarge(len)));
        let mut frame = word_bytes(len);
        frame.extend_from_slice(&body);
        prop_assert_eq!(message::decode_frame(&frame), Err(FrameError::TooLarge(len)));
    }

    /// A legal length word with fewer bytes behind it than it claims fails.
    #[test]
    fn short_frames_are_refused(
        len in MIN_FRAME..=MESSAGE_MAX,
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut frame = word_bytes(len);
        frame.extend_from_slice(&body);
        prop_assume!(frame.len() != len as usize);
        prop_assert!(message::decode_frame(&frame).is_err());
    }

    /// Array counts up to the maximum with too few bytes behind them fail
    /// on truncation without reserving for the claimed count.
    #[test]
    fn claimed_array_counts_fail_fast(
        count in 1u32..=16_384,
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut b = word_bytes(count);
        b.extend_from_slice(&tail);
        // Every element takes at least 4 bytes, so `count` elements can't fit.
        prop_assume!((count as usize) * 4 > tail.len());
        let r: Result<Vec<u64>, _> = Decoder::new(&b).array("x", 16_384);
        prop_assert!(matches!(r, Err(XdrError::Truncated { .. })), "{:?}", r);
        prop_assert!(admin::ConnectListServersRet::from_xdr(&b).is_err());
        prop_assert!(admin::ServerListClientsRet::from_xdr(&b).is_err());
        prop_assert!(admin::ClientGetInfoRet::from_xdr(&b).is_err());
    }

    /// Counts above an array's maximum are refused from the count alone.
    #[test]
    fn array_counts_above_max_are_refused(count in 16_385u32..=u32::MAX) {
        let mut b = word_bytes(count);
        b.extend_from_slice(&[0; 16]);
        let err = admin::ConnectListServersRet::from_xdr(&b).unwrap_err();
        prop_assert_eq!(err, XdrError::TooLong { what: "servers", len: count, max: admin::SERVER_LIST_MAX });
    }

    /// String lengths beyond the bytes present fail before anything is copied.
    #[test]
    fn claimed_string_lengths_fail_fast(len in 1u32..=modvirt_wire::xdr::STRING_MAX, tail in proptest::collection::vec(any::<u8>(), 0..32)) {
        prop_assume!(len as usize > tail.len());
        let mut b = word_bytes(len);
        b.extend_from_slice(&tail);
        let r = Decoder::new(&b).string();
        prop_assert!(matches!(r, Err(XdrError::Truncated { .. })), "{:?}", r);
    }

    #[test]
    fn rpc_error_round_trips(e in rpc_error()) {
        let b = e.to_xdr();
        prop_assert_eq!(b.len() % 4, 0);
        prop_assert_eq!(RpcError::from_xdr(&b).unwrap(), e);
    }

    #[test]
    fn typed_param_round_trips(p in typed_param()) {
        let b = p.to_xdr();
        let back = TypedParam::from_xdr(&b).unwrap();
        prop_assert_eq!(back.to_xdr(), b, "bit-exact, NaN included");
        if !matches!(p.value, TypedValue::Double(d) if d.is_nan()) {
            prop_assert_eq!(back, p);
        }
    }

    #[test]
    fn admin_client_round_trips(c in admin_client()) {
        let b = c.to_xdr();
        prop_assert_eq!(AdminClient::from_xdr(&b).unwrap(), c.clone());
        let args = admin::ClientArgs { clnt: c, flags: 0 };
        prop_assert_eq!(admin::ClientArgs::from_xdr(&args.to_xdr()).unwrap(), args);
    }

    /// Decoded arrays never hold more capacity than a quarter of the input
    /// (every XDR item is at least 4 bytes), whatever count was claimed.
    #[test]
    fn decoded_arrays_are_sized_by_the_input(
        names in proptest::collection::vec(text(), 0..40),
        clients in proptest::collection::vec(admin_client(), 0..20),
        params in proptest::collection::vec(typed_param(), 0..32),
        noise in input(),
    ) {
        let servers = admin::ConnectListServersRet {
            servers: names.into_iter().map(|name| AdminServer { name }).collect(),
            ret: 0,
        };
        let b = servers.to_xdr();
        let back = admin::ConnectListServersRet::from_xdr(&b).unwrap();
        prop_assert!(back.servers.capacity() <= b.len() / 4);

        let list = admin::ServerListClientsRet { clients, ret: 1 };
        let b = list.to_xdr();
        let back = admin::ServerListClientsRet::from_xdr(&b).unwrap();
        prop_assert!(back.clients.capacity() <= b.len() / 4);

        let info = admin::ClientGetInfoRet { params };
        let b = info.to_xdr();
        let back = admin::ClientGetInfoRet::from_xdr(&b).unwrap();
        prop_assert!(back.params.capacity() <= b.len() / 4);

        // And whatever the noise decodes to.
        if let Ok(v) = admin::ConnectListServersRet::from_xdr(&noise) {
            prop_assert!(v.servers.capacity() <= noise.len() / 4);
        }
        if let Ok(v) = remote::AuthListRet::from_xdr(&noise) {
            prop_assert!(v.types.capacity() <= noise.len() / 4);
        }
        if let Ok(v) = admin::ThreadpoolParametersRet::from_xdr(&noise) {
            prop_assert!(v.params.capacity() <= noise.len() / 4);
        }
    }
}

/// The XDR-looking strategy does reach past the first field: a fair share of
/// its inputs decode as something, so `no_decoder_panics` exercises the
/// deep paths and not only "truncated at offset 0".
#[test]
fn xdrish_inputs_often_decode() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = xdrish();
    let mut accepted = 0;
    for _ in 0..2_000 {
        let b = strategy.new_tree(&mut runner).unwrap().current();
        accepted += decode_with_everything(&b);
    }
    eprintln!("{accepted} successful decodes from 2000 inputs");
    assert!(
        accepted >= 200,
        "only {accepted} successful decodes from 2000 inputs"
    );
}
