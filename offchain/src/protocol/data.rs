//! Plutus data: building and reading the values the escrow validator sees.
//!
//! Encodings follow the Plutus reference implementation (`serialiseData`):
//! constructor fields and non-empty lists as indefinite-length arrays, byte
//! strings longer than 64 bytes chunked. The on-chain job id is a hash of such
//! bytes, so this is a protocol matter, not a style choice.

use pallas_codec::minicbor;
use pallas_primitives::{
    BigInt, BoundedBytes, Constr, Int, KeyValuePairs, MaybeIndefArray, PlutusData,
};

/// A value with a fixed Plutus data encoding.
pub trait ToPlutusData {
    /// The value as Plutus data.
    fn to_plutus_data(&self) -> PlutusData;

    /// The value's CBOR bytes, as a script would `serialise_data` them.
    fn to_cbor(&self) -> Vec<u8> {
        encode(&self.to_plutus_data())
    }
}

/// A value that can be read back from its Plutus data encoding.
pub trait FromPlutusData: Sized {
    /// Reads the value, or says which part of the data has the wrong shape.
    fn from_plutus_data(data: &PlutusData) -> Result<Self, DataError>;

    /// Decodes CBOR bytes, then reads the value.
    fn from_cbor(bytes: &[u8]) -> Result<Self, DataError> {
        Self::from_plutus_data(&decode(bytes)?)
    }
}

/// Plutus data that does not have the shape a protocol type expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The bytes are not CBOR Plutus data.
    #[error("not valid CBOR Plutus data: {0}")]
    Cbor(String),
    /// A part of the data has the wrong kind or constructor.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// Which field or type was being read.
        what: &'static str,
        /// What the protocol requires there.
        expected: String,
        /// What the data holds instead.
        found: String,
    },
}

impl DataError {
    pub(crate) fn shape(
        what: &'static str,
        expected: impl Into<String>,
        found: &PlutusData,
    ) -> Self {
        DataError::Shape {
            what,
            expected: expected.into(),
            found: describe(found),
        }
    }
}

fn describe(data: &PlutusData) -> String {
    match data {
        PlutusData::Constr(c) => format!(
            "constructor {} with {} fields",
            c.constr_index(),
            c.fields.len()
        ),
        PlutusData::Map(m) => format!("a map of {} entries", m.len()),
        PlutusData::Array(a) => format!("a list of {} items", a.len()),
        PlutusData::BigInt(_) => "an integer".to_owned(),
        PlutusData::BoundedBytes(b) => format!("{} bytes", b.len()),
    }
}

/// CBOR bytes of Plutus data.
pub fn encode(data: &PlutusData) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = minicbor::encode(data, &mut out);
    out
}

/// Plutus data from CBOR bytes (the whole input must be one value).
pub fn decode(bytes: &[u8]) -> Result<PlutusData, DataError> {
    let mut decoder = minicbor::Decoder::new(bytes);
    let data: PlutusData = decoder
        .decode()
        .map_err(|e| DataError::Cbor(e.to_string()))?;
    if decoder.position() != bytes.len() {
        return Err(DataError::Cbor(format!(
            "{} trailing bytes after the value",
            bytes.len() - decoder.position()
        )));
    }
    Ok(data)
}

fn array(items: Vec<PlutusData>) -> MaybeIndefArray<PlutusData> {
    if items.is_empty() {
        MaybeIndefArray::Def(items)
    } else {
        MaybeIndefArray::Indef(items)
    }
}

/// `Constr index fields`.
pub fn constr(index: u64, fields: Vec<PlutusData>) -> PlutusData {
    let (tag, any_constructor) = match index {
        0..=6 => (121 + index, None),
        7..=127 => (1280 + index - 7, None),
        _ => (102, Some(index)),
    };
    PlutusData::Constr(Constr {
        tag,
        any_constructor,
        fields: array(fields),
    })
}

/// A byte string.
pub fn bytes(value: &[u8]) -> PlutusData {
    PlutusData::BoundedBytes(BoundedBytes::from(value.to_vec()))
}

/// An integer.
pub fn int(value: i128) -> PlutusData {
    match Int::try_from(value) {
        Ok(small) => PlutusData::BigInt(BigInt::Int(small)),
        Err(_) => {
            let magnitude = if value < 0 {
                (-(value + 1)) as u128
            } else {
                value as u128
            };
            let be: Vec<u8> = magnitude
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            if value < 0 {
                PlutusData::BigInt(BigInt::BigNInt(BoundedBytes::from(be)))
            } else {
                PlutusData::BigInt(BigInt::BigUInt(BoundedBytes::from(be)))
            }
        }
    }
}

/// A list.
pub fn list(items: Vec<PlutusData>) -> PlutusData {
    PlutusData::Array(array(items))
}

/// A map, in the given key order.
pub fn map(entries: Vec<(PlutusData, PlutusData)>) -> PlutusData {
    PlutusData::Map(KeyValuePairs::Def(entries))
}

/// Reads `Constr index fields` and checks the constructor has `arity` fields.
pub fn as_constr<'a>(
    data: &'a PlutusData,
    what: &'static str,
    arity: usize,
) -> Result<(u64, &'a [PlutusData]), DataError> {
    match data {
        PlutusData::Constr(c) if matches!(c.tag, 121..=127 | 1280..=1400 | 102) => {
            if c.tag == 102 && c.any_constructor.is_none() {
                return Err(DataError::shape(what, "a constructor", data));
            }
            let index = c.constr_index();
            if c.fields.len() != arity {
                return Err(DataError::shape(what, format!("{arity} fields"), data));
            }
            Ok((index, &c.fields[..]))
        }
        _ => Err(DataError::shape(what, "a constructor", data)),
    }
}

/// Reads a constructor of one type with several variants; the caller checks arity.
pub fn as_variant<'a>(
    data: &'a PlutusData,
    what: &'static str,
) -> Result<(u64, &'a [PlutusData]), DataError> {
    match data {
        PlutusData::Constr(c)
            if matches!(c.tag, 121..=127 | 1280..=1400)
                || (c.tag == 102 && c.any_constructor.is_some()) =>
        {
            Ok((c.constr_index(), &c.fields[..]))
        }
        _ => Err(DataError::shape(what, "a constructor", data)),
    }
}

/// Reads a byte string.
pub fn as_bytes<'a>(data: &'a PlutusData, what: &'static str) -> Result<&'a [u8], DataError> {
    match data {
        PlutusData::BoundedBytes(b) => Ok(&b[..]),
        _ => Err(DataError::shape(what, "bytes", data)),
    }
}

/// Reads a byte string of exactly `N` bytes.
pub fn as_array<const N: usize>(
    data: &PlutusData,
    what: &'static str,
) -> Result<[u8; N], DataError> {
    as_bytes(data, what)?
        .try_into()
        .map_err(|_| DataError::shape(what, format!("{N} bytes"), data))
}

/// Reads an integer.
pub fn as_int(data: &PlutusData, what: &'static str) -> Result<i128, DataError> {
    let magnitude = |b: &BoundedBytes| -> Result<i128, DataError> {
        if b.len() > 15 {
            return Err(DataError::shape(
                what,
                "an integer of at most 120 bits",
                data,
            ));
        }
        Ok(b.iter()
            .fold(0i128, |acc, byte| (acc << 8) | i128::from(*byte)))
    };
    match data {
        PlutusData::BigInt(BigInt::Int(i)) => Ok(i128::from(*i)),
        PlutusData::BigInt(BigInt::BigUInt(b)) => magnitude(b),
        PlutusData::BigInt(BigInt::BigNInt(b)) => Ok(-1 - magnitude(b)?),
        _ => Err(DataError::shape(what, "an integer", data)),
    }
}

/// Reads an integer that must fit `T` (e.g. a non-negative amount or an index).
pub fn as_int_in<T: TryFrom<i128>>(data: &PlutusData, what: &'static str) -> Result<T, DataError> {
    let value = as_int(data, what)?;
    T::try_from(value).map_err(|_| DataError::Shape {
        what,
        expected: format!("an integer in the range of {}", std::any::type_name::<T>()),
        found: value.to_string(),
    })
}

/// Reads a list.
pub fn as_list<'a>(
    data: &'a PlutusData,
    what: &'static str,
) -> Result<&'a [PlutusData], DataError> {
    match data {
        PlutusData::Array(items) => Ok(&items[..]),
        _ => Err(DataError::shape(what, "a list", data)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_use_the_compact_tags_then_the_general_form() {
        assert_eq!(hex::encode(encode(&constr(0, vec![]))), "d87980");
        assert_eq!(hex::encode(encode(&constr(1, vec![int(5)]))), "d87a9f05ff");
        assert_eq!(hex::encode(encode(&constr(7, vec![]))), "d9050080");
        assert_eq!(hex::encode(encode(&constr(200, vec![]))), "d8668218c880");
        for index in [0, 6, 7, 127, 128, 1000] {
            let (read, _) = as_variant(&constr(index, vec![]), "test").expect("a constructor");
            assert_eq!(read, index);
        }
    }

    #[test]
    fn integers_round_trip_through_big_integers() {
        for value in [
            0,
            1,
            -1,
            i128::from(u64::MAX),
            -i128::from(u64::MAX) - 1,
            1 << 100,
            -(1 << 100),
        ] {
            let data = decode(&encode(&int(value))).expect("decodes");
            assert_eq!(as_int(&data, "n").expect("an integer"), value, "{value}");
        }
    }

    #[test]
    fn decode_rejects_trailing_bytes_and_garbage() {
        assert!(matches!(decode(&[0x00, 0x00]), Err(DataError::Cbor(_))));
        assert!(matches!(decode(&[0xff]), Err(DataError::Cbor(_))));
    }
}
