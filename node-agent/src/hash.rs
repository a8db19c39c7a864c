//! blake2b-256 digests: the one hash the protocol uses for files, inputs and results.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

type Blake2b256 = Blake2b<U32>;

/// A blake2b-256 digest (32 bytes). Shown and parsed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// blake2b-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Blake2b256::digest(bytes).into())
    }

    /// blake2b-256 of a file's contents, read in chunks (the file is not held in memory).
    pub fn of_file(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let mut hasher = Blake2b256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let read = file.read(&mut buf)?;
            if read == 0 {
                break;
            }
            hasher.update(&buf[..read]);
        }
        Ok(Self(hasher.finalize().into()))
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a blake2b-256 hash: expected 64 hex digits, got {input:?}")]
pub struct HashParseError {
    input: String,
}

impl FromStr for Hash32 {
    type Err = HashParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| HashParseError {
            input: s.chars().take(80).collect(),
        })?;
        Ok(Self(out))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl serde::Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// blake2b-256 over the inputs in order, each as a u32 little-endian byte length
/// followed by its UTF-8 bytes. This is the `input digest` of the result header.
///
/// # Panics
/// Never for inputs the pipeline accepts: it refuses any input over
/// [`crate::MAX_INPUT_BYTES`] before hashing. An input of 4 GiB or more would not fit
/// the u32 prefix and panics.
pub fn input_digest<S: AsRef<str>>(inputs: &[S]) -> Hash32 {
    let mut hasher = Blake2b256::new();
    for input in inputs {
        let bytes = input.as_ref().as_bytes();
        let len = u32::try_from(bytes.len()).expect("input shorter than 4 GiB");
        hasher.update(len.to_le_bytes());
        hasher.update(bytes);
    }
    Hash32(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_vector_of_empty_input() {
        // blake2b-256("") from RFC 7693's reference implementation.
        assert_eq!(
            Hash32::of(b"").to_hex(),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
    }

    #[test]
    fn hex_round_trip_and_rejects_bad_hex() {
        let h = Hash32::of(b"abc");
        assert_eq!(h.to_hex().parse::<Hash32>().unwrap(), h);
        assert!("zz".parse::<Hash32>().is_err());
        assert!(h.to_hex()[..62].parse::<Hash32>().is_err());
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Hash32>(&json).unwrap(), h);
    }

    #[test]
    fn input_digest_is_length_prefixed() {
        // Without the length prefix ["ab","c"] and ["a","bc"] would collide.
        assert_ne!(input_digest(&["ab", "c"]), input_digest(&["a", "bc"]));
        let mut manual = Vec::new();
        for s in ["ab", "c"] {
            manual.extend_from_slice(&(s.len() as u32).to_le_bytes());
            manual.extend_from_slice(s.as_bytes());
        }
        assert_eq!(input_digest(&["ab", "c"]), Hash32::of(&manual));
    }

    #[test]
    fn file_hash_equals_bytes_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        assert_eq!(Hash32::of_file(&path).unwrap(), Hash32::of(&data));
    }
}
