//! XDR (RFC 4506) as libvirt uses it: big-endian 4-byte units, strings and
//! variable opaques carry a `u32` length and are zero-padded to 4 bytes,
//! optional data (`type *name`) is a `bool` followed by the value, and
//! discriminated unions are an `i32` tag followed by the arm.
//!
//! Decoding is defensive: every length is checked against the declared
//! maximum *and* against the bytes left in the frame before anything is
//! allocated, so a hostile length can never make us allocate more than the
//! frame that carried it.

use thiserror::Error;

/// libvirt's `REMOTE_STRING_MAX` / `ADMIN_STRING_MAX` / `VIR_NET_MESSAGE_STRING_MAX`.
pub const STRING_MAX: u32 = 4_194_304;

/// What went wrong while decoding XDR.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XdrError {
    #[error("payload truncated: needed {needed} more bytes at offset {offset}, {left} left")]
    Truncated {
        offset: usize,
        needed: usize,
        left: usize,
    },
    #[error("{what} length {len} exceeds its maximum of {max}")]
    TooLong { what: &'static str, len: u32, max: u32 },
    #[error("invalid boolean value {0} (expected 0 or 1)")]
    BadBool(u32),
    #[error("string is not valid UTF-8")]
    BadUtf8,
    #[error("non-zero padding bytes")]
    BadPadding,
    #[error("unknown discriminant {value} for {what}")]
    BadDiscriminant { what: &'static str, value: i32 },
    #[error("{0} trailing bytes after the payload")]
    TrailingBytes(usize),
}

/// Appends XDR-encoded values to a byte vector.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Continue encoding at the end of `buf` (e.g. after a message header).
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.u32(u32::from(v));
    }

    fn pad(&mut self, len: usize) {
        let pad = (4 - len % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
    }

    /// Appends already-encoded XDR bytes as they are.
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Fixed-length opaque: bytes then padding, no length word.
    pub fn opaque_fixed(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
        self.pad(v.len());
    }

    /// Variable-length opaque: length word, bytes, padding.
    pub fn opaque(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.opaque_fixed(v);
    }

    pub fn string(&mut self, v: &str) {
        self.opaque(v.as_bytes());
    }

    /// Optional data: `bool` present flag, then the value.
    pub fn option<T>(&mut self, v: Option<&T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            Some(v) => {
                self.bool(true);
                f(self, v);
            }
            None => self.bool(false),
        }
    }

    pub fn opt_string(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.bool(true);
                self.string(s);
            }
            None => self.bool(false),
        }
    }

    /// Variable-length array: count word, then each element.
    pub fn array<T: XdrEncode>(&mut self, v: &[T]) {
        self.u32(v.len() as u32);
        for item in v {
            item.encode(self);
        }
    }
}

/// Reads XDR values from a byte slice, checking every bound.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails unless every byte has been consumed.
    pub fn finish(&self) -> Result<(), XdrError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(XdrError::TrailingBytes(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        if self.remaining() < n {
            return Err(XdrError::Truncated {
                offset: self.pos,
                needed: n,
                left: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn word(&mut self) -> Result<[u8; 4], XdrError> {
        let s = self.take(4)?;
        Ok([s[0], s[1], s[2], s[3]])
    }

    fn dword(&mut self) -> Result<[u8; 8], XdrError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u32(&mut self) -> Result<u32, XdrError> {
        Ok(u32::from_be_bytes(self.word()?))
    }

    pub fn i32(&mut self) -> Result<i32, XdrError> {
        Ok(i32::from_be_bytes(self.word()?))
    }

    pub fn u64(&mut self) -> Result<u64, XdrError> {
        Ok(u64::from_be_bytes(self.dword()?))
    }

    pub fn i64(&mut self) -> Result<i64, XdrError> {
        Ok(i64::from_be_bytes(self.dword()?))
    }

    pub fn f64(&mut self) -> Result<f64, XdrError> {
        Ok(f64::from_bits(u64::from_be_bytes(self.dword()?)))
    }

    pub fn bool(&mut self) -> Result<bool, XdrError> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(XdrError::BadBool(v)),
        }
    }

    fn skip_pad(&mut self, len: usize) -> Result<(), XdrError> {
        let pad = (4 - len % 4) % 4;
        if self.take(pad)?.iter().any(|b| *b != 0) {
            return Err(XdrError::BadPadding);
        }
        Ok(())
    }

    /// Fixed-length opaque of `len` bytes (plus padding).
    pub fn opaque_fixed(&mut self, len: usize) -> Result<&'a [u8], XdrError> {
        let s = self.take(len)?;
        self.skip_pad(len)?;
        Ok(s)
    }

    /// Variable-length opaque with a declared maximum.
    pub fn opaque(&mut self, what: &'static str, max: u32) -> Result<&'a [u8], XdrError> {
        let len = self.u32()?;
        if len > max {
            return Err(XdrError::TooLong { what, len, max });
        }
        self.opaque_fixed(len as usize)
    }

    /// A string bounded by `STRING_MAX`.
    pub fn string(&mut self) -> Result<String, XdrError> {
        self.string_max("string", STRING_MAX)
    }

    pub fn string_max(&mut self, what: &'static str, max: u32) -> Result<String, XdrError> {
        let bytes = self.opaque(what, max)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| XdrError::BadUtf8)
    }

    pub fn option<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, XdrError>,
    ) -> Result<Option<T>, XdrError> {
        if self.bool()? {
            Ok(Some(f(self)?))
        } else {
            Ok(None)
        }
    }

    pub fn opt_string(&mut self) -> Result<Option<String>, XdrError> {
        self.option(|d| d.string())
    }

    /// Variable-length array with a declared maximum element count.
    ///
    /// Capacity is reserved for at most as many elements as the remaining
    /// bytes could hold (every XDR item is at least 4 bytes), never `len`.
    pub fn array<T: XdrDecode>(&mut self, what: &'static str, max: u32) -> Result<Vec<T>, XdrError> {
        let len = self.u32()?;
        if len > max {
            return Err(XdrError::TooLong { what, len, max });
        }
        let plausible = self.remaining() / 4;
        let mut out = Vec::with_capacity((len as usize).min(plausible));
        for _ in 0..len {
            out.push(T::decode(self)?);
        }
        Ok(out)
    }
}

/// A value with an XDR encoding.
pub trait XdrEncode {
    fn encode(&self, enc: &mut Encoder);

    fn to_xdr(&self) -> Vec<u8> {
        let mut enc = Encoder::new();
        self.encode(&mut enc);
        enc.into_vec()
    }
}

/// A value with an XDR decoding; all bounds are enforced by the implementation.
pub trait XdrDecode: Sized {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError>;

    /// Decodes a whole payload, refusing trailing bytes.
    fn from_xdr(buf: &[u8]) -> Result<Self, XdrError> {
        let mut dec = Decoder::new(buf);
        let v = Self::decode(&mut dec)?;
        dec.finish()?;
        Ok(v)
    }
}

macro_rules! prim {
    ($t:ty, $m:ident) => {
        impl XdrEncode for $t {
            fn encode(&self, enc: &mut Encoder) {
                enc.$m(*self);
            }
        }
        impl XdrDecode for $t {
            fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
                dec.$m()
            }
        }
    };
}
prim!(u32, u32);
prim!(i32, i32);
prim!(u64, u64);
prim!(i64, i64);
prim!(bool, bool);
prim!(f64, f64);

impl XdrEncode for String {
    fn encode(&self, enc: &mut Encoder) {
        enc.string(self);
    }
}

impl XdrDecode for String {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        dec.string()
    }
}

impl XdrEncode for () {
    fn encode(&self, _: &mut Encoder) {}
}

impl XdrDecode for () {
    fn decode(_: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(())
    }
}

/// Optional data of any encodable type (XDR `type *name`).
impl<T: XdrEncode> XdrEncode for Option<T> {
    fn encode(&self, enc: &mut Encoder) {
        enc.option(self.as_ref(), |e, v| v.encode(e));
    }
}

impl<T: XdrDecode> XdrDecode for Option<T> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        dec.option(T::decode)
    }
}

/// Declares a struct whose XDR form is its fields in order.
///
/// Array fields must name their maximum: `servers: Vec<AdminServer> [max 16384]`.
#[macro_export]
macro_rules! xdr_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty $([max $max:expr])? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        impl $crate::xdr::XdrEncode for $name {
            #[allow(unused_variables)] // empty structs encode nothing
            fn encode(&self, enc: &mut $crate::xdr::Encoder) {
                $( $crate::xdr_struct!(@enc enc, self.$field $(, $max)?); )*
            }
        }

        impl $crate::xdr::XdrDecode for $name {
            #[allow(unused_variables)] // empty structs decode nothing
            fn decode(dec: &mut $crate::xdr::Decoder<'_>) -> Result<Self, $crate::xdr::XdrError> {
                Ok(Self {
                    $( $field: $crate::xdr_struct!(@dec dec, $ty, stringify!($field) $(, $max)?), )*
                })
            }
        }
    };
    (@enc $enc:ident, $v:expr) => { $crate::xdr::XdrEncode::encode(&$v, $enc) };
    (@enc $enc:ident, $v:expr, $max:expr) => { $enc.array(&$v) };
    (@dec $dec:ident, $ty:ty, $what:expr) => { <$ty as $crate::xdr::XdrDecode>::decode($dec)? };
    (@dec $dec:ident, $ty:ty, $what:expr, $max:expr) => { $dec.array($what, $max)? };
}

#[cfg(test)]
mod tests {
    use super::*;

    xdr_struct! {
        /// Example with every field kind.
        pub struct Sample {
            pub name: String,
            pub opt: Option<String>,
            pub id: u64,
            pub items: Vec<u32> [max 3],
        }
    }

    #[test]
    fn string_is_length_prefixed_and_padded() {
        let mut e = Encoder::new();
        e.string("qemu:///system");
        assert_eq!(
            e.into_vec(),
            b"\0\0\0\x0eqemu:///system\0\0".to_vec(),
            "14 bytes + 2 bytes padding"
        );
    }

    #[test]
    fn struct_round_trips() {
        let s = Sample {
            name: "a".into(),
            opt: Some("bc".into()),
            id: 7,
            items: vec![1, 2],
        };
        let bytes = s.to_xdr();
        assert_eq!(bytes.len(), 8 + 4 + 8 + 8 + 4 + 8);
        assert_eq!(Sample::from_xdr(&bytes).unwrap(), s);
    }

    #[test]
    fn array_max_enforced() {
        let s = Sample {
            name: String::new(),
            opt: None,
            id: 0,
            items: vec![1, 2, 3, 4],
        };
        let err = Sample::from_xdr(&s.to_xdr()).unwrap_err();
        assert_eq!(
            err,
            XdrError::TooLong {
                what: "items",
                len: 4,
                max: 3
            }
        );
    }

    #[test]
    fn string_max_enforced_before_reading() {
        let mut d = Decoder::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.string(), Err(XdrError::TooLong { .. })));
    }

    #[test]
    fn huge_array_count_does_not_preallocate() {
        // Claims 16384 elements but carries none: must fail on truncation.
        let mut d = Decoder::new(&[0, 0, 0x40, 0]);
        let r: Result<Vec<u64>, _> = d.array("x", 16384);
        assert!(matches!(r, Err(XdrError::Truncated { .. })));
    }

    #[test]
    fn bad_bool_and_padding_rejected() {
        assert_eq!(Decoder::new(&[0, 0, 0, 2]).bool(), Err(XdrError::BadBool(2)));
        assert_eq!(
            Decoder::new(&[0, 0, 0, 1, b'a', 1, 0, 0]).string(),
            Err(XdrError::BadPadding)
        );
    }

    #[test]
    fn trailing_bytes_rejected() {
        assert_eq!(u32::from_xdr(&[0; 8]), Err(XdrError::TrailingBytes(4)));
    }
}
