//! Typed parameters (`virTypedParameter` on the wire): a field name and a
//! value discriminated by its type (INT 1, UINT 2, LLONG 3, ULLONG 4,
//! DOUBLE 5, BOOLEAN 6, STRING 7). The admin program uses them for thread
//! pool, client-limit and client-info parameters.

use crate::xdr::{Decoder, Encoder, XdrDecode, XdrEncode, XdrError};

/// The value arm of a typed parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue {
    Int(i32),
    UInt(u32),
    LLong(i64),
    ULLong(u64),
    Double(f64),
    Boolean(bool),
    String(String),
}

impl TypedValue {
    pub fn type_code(&self) -> i32 {
        match self {
            Self::Int(_) => 1,
            Self::UInt(_) => 2,
            Self::LLong(_) => 3,
            Self::ULLong(_) => 4,
            Self::Double(_) => 5,
            Self::Boolean(_) => 6,
            Self::String(_) => 7,
        }
    }

    /// The value as an unsigned number, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::Int(v) => u64::try_from(v).ok(),
            Self::UInt(v) => Some(u64::from(v)),
            Self::LLong(v) => u64::try_from(v).ok(),
            Self::ULLong(v) => Some(v),
            _ => None,
        }
    }
}

/// One typed parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedParam {
    pub field: String,
    pub value: TypedValue,
}

impl TypedParam {
    pub fn new(field: &str, value: TypedValue) -> Self {
        Self {
            field: field.to_owned(),
            value,
        }
    }
}

impl XdrEncode for TypedParam {
    fn encode(&self, enc: &mut Encoder) {
        enc.string(&self.field);
        enc.i32(self.value.type_code());
        match &self.value {
            TypedValue::Int(v) => enc.i32(*v),
            TypedValue::UInt(v) => enc.u32(*v),
            TypedValue::LLong(v) => enc.i64(*v),
            TypedValue::ULLong(v) => enc.u64(*v),
            TypedValue::Double(v) => enc.f64(*v),
            TypedValue::Boolean(v) => enc.i32(i32::from(*v)),
            TypedValue::String(v) => enc.string(v),
        }
    }
}

impl XdrDecode for TypedParam {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        let field = dec.string()?;
        let t = dec.i32()?;
        let value = match t {
            1 => TypedValue::Int(dec.i32()?),
            2 => TypedValue::UInt(dec.u32()?),
            3 => TypedValue::LLong(dec.i64()?),
            4 => TypedValue::ULLong(dec.u64()?),
            5 => TypedValue::Double(dec.f64()?),
            6 => TypedValue::Boolean(dec.i32()? != 0),
            7 => TypedValue::String(dec.string()?),
            value => {
                return Err(XdrError::BadDiscriminant {
                    what: "typed parameter type",
                    value,
                });
            }
        };
        Ok(Self { field, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_param_layout() {
        let p = TypedParam::new("minWorkers", TypedValue::UInt(5));
        let b = p.to_xdr();
        assert_eq!(
            b,
            [&[0, 0, 0, 10][..], b"minWorkers\0\0", &[0, 0, 0, 2, 0, 0, 0, 5]].concat()
        );
        assert_eq!(TypedParam::from_xdr(&b).unwrap(), p);
    }

    #[test]
    fn unknown_type_rejected() {
        let mut e = Encoder::new();
        e.string("x");
        e.i32(9);
        e.i32(0);
        assert!(matches!(
            TypedParam::from_xdr(&e.into_vec()),
            Err(XdrError::BadDiscriminant { value: 9, .. })
        ));
    }
}
