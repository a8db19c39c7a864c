//! Canonical result bytes: what the provider hashes, publishes and serves.
//!
//! Every result starts with the same 7 bytes, `magic "NTXR" | format version u16 LE |
//! task tag u8`, so a reader knows which task's layout follows. The `embed` layout
//! (format version 1, task tag 1) is, little-endian throughout:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"NTXR"` (`4e 54 58 52`) |
//! | 4 | 2 | format version u16 = 1 |
//! | 6 | 1 | task tag u8 = 1 (`embed`) |
//! | 7 | 32 | blake2b-256 of `model.safetensors` |
//! | 39 | 32 | blake2b-256 of `config.json` |
//! | 71 | 32 | blake2b-256 of `tokenizer.json` |
//! | 103 | 1 | pooling u8 = 1 (mean over the attention mask) |
//! | 104 | 1 | normalize u8 = 1 (L2) |
//! | 105 | 2 | max_len u16 (tokens, counting `[CLS]` and `[SEP]`) |
//! | 107 | 1 | padding u8 = 0 (none: each input alone, batch 1) |
//! | 108 | 32 | input digest (see [`crate::input_digest`]) |
//! | 140 | 4 | n u32 (number of inputs, ≥ 1) |
//! | 144 | 2 | dim u16 (embedding width, ≥ 1) |
//! | 146 | 1 | scale_log2 u8 = 14 |
//! | 147 | 2·n·dim | n rows of dim i16: `clamp(round_half_even(x · 2^14), -32768, 32767)` |
//!
//! `result_hash = blake2b-256(all bytes)`. Nothing may follow the payload.
//!
//! The `generate` layout (task tag 2) is documented in the `generate::result` module
//! and in `node-agent/README.md`.

use std::fmt;

use crate::hash::Hash32;
use crate::task::TaskTag;

/// The 4 bytes every result starts with.
pub const MAGIC: [u8; 4] = *b"NTXR";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Embeddings are stored as `round(x · 2^SCALE_LOG2)`.
pub const SCALE_LOG2: u8 = 14;
/// Size of the `embed` header; the payload starts here.
pub const EMBED_HEADER_LEN: usize = 147;
/// Size of the prefix shared by every task's layout (magic, version, task tag).
pub const COMMON_PREFIX_LEN: usize = 7;

/// How token vectors become one sentence vector. Byte value in the header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Pooling {
    /// Mean over the tokens whose attention mask is 1 (`[CLS]` and `[SEP]` included,
    /// as sentence-transformers does).
    #[default]
    Mean = 1,
}

/// Normalisation of the pooled vector. Byte value in the header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Normalize {
    /// Divide by the Euclidean norm (`max(norm, 1e-12)`).
    #[default]
    L2 = 1,
}

/// Padding policy. Byte value in the header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Padding {
    /// Every input runs alone (batch 1) at its own length: output bits depend on the
    /// padded length, so this is the only policy whose bits a verifier can reproduce.
    #[default]
    None = 0,
}

/// The `embed` result header: everything before the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedHeader {
    /// blake2b-256 of `model.safetensors`.
    pub model_hash: Hash32,
    /// blake2b-256 of `config.json`.
    pub config_hash: Hash32,
    /// blake2b-256 of `tokenizer.json`.
    pub tokenizer_hash: Hash32,
    /// Pooling rule.
    pub pooling: Pooling,
    /// Normalisation rule.
    pub normalize: Normalize,
    /// Token limit per input, `[CLS]` and `[SEP]` included.
    pub max_len: u16,
    /// Padding policy.
    pub padding: Padding,
    /// [`crate::input_digest`] of the inputs.
    pub input_digest: Hash32,
    /// Number of inputs (rows).
    pub n: u32,
    /// Embedding width (columns).
    pub dim: u16,
    /// Quantisation scale, always [`SCALE_LOG2`] in format version 1.
    pub scale_log2: u8,
}

/// A parsed or freshly computed `embed` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedResult {
    /// The header.
    pub header: EmbedHeader,
    /// `n · dim` quantised values, row after row.
    pub values: Vec<i16>,
}

/// Why result bytes could not be parsed. Parsing never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer bytes than the fixed header.
    #[error("result is {len} bytes, shorter than the {need}-byte header")]
    TooShort {
        /// Bytes given.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// The first 4 bytes are not `NTXR`.
    #[error("result does not start with the magic \"NTXR\" (found {found:02x?})")]
    BadMagic {
        /// The first 4 bytes.
        found: [u8; 4],
    },
    /// A format version this build does not know.
    #[error(
        "result format version {found} is not supported (this agent reads version {FORMAT_VERSION}); upgrade the agent"
    )]
    UnsupportedVersion {
        /// Version in the bytes.
        found: u16,
    },
    /// A task tag that names no known task.
    #[error("result task tag {found} names no known task")]
    UnknownTask {
        /// Tag in the bytes.
        found: u8,
    },
    /// A task this parser was not asked for.
    #[error("result is for task {found}, expected {expected}")]
    WrongTask {
        /// Task expected by the caller.
        expected: TaskTag,
        /// Task in the bytes.
        found: TaskTag,
    },
    /// A header byte that is not one of the defined values.
    #[error("result header field {field} has undefined value {value}")]
    BadField {
        /// Header field name.
        field: &'static str,
        /// Value found.
        value: u64,
    },
    /// The payload length does not match `n · dim`.
    #[error("result payload is {found} bytes but n={n} × dim={dim} needs {expected}")]
    PayloadLength {
        /// n in the header.
        n: u32,
        /// dim in the header.
        dim: u16,
        /// Bytes the header promises.
        expected: u128,
        /// Bytes present after the header.
        found: usize,
    },
    /// A `generate` result ends before its `n` token ids.
    #[error(
        "result holds {found} bytes after the header, fewer than the 4·n = 4·{n} its token ids need"
    )]
    TokenPayload {
        /// n in the header.
        n: u32,
        /// Bytes present after the header.
        found: usize,
    },
    /// A `generate` result's text is not UTF-8.
    #[error("result text is not UTF-8 (valid up to byte {valid_up_to} of the text)")]
    TextNotUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
}

/// Task tag of any result bytes (checks magic and version; does not parse the rest).
pub fn peek_task(bytes: &[u8]) -> Result<TaskTag, ParseError> {
    if bytes.len() < COMMON_PREFIX_LEN {
        return Err(ParseError::TooShort {
            len: bytes.len(),
            need: COMMON_PREFIX_LEN,
        });
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if magic != MAGIC {
        return Err(ParseError::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != FORMAT_VERSION {
        return Err(ParseError::UnsupportedVersion { found: version });
    }
    TaskTag::from_u8(bytes[6]).ok_or(ParseError::UnknownTask { found: bytes[6] })
}

/// A cursor that hands out fixed-size little-endian pieces of a result's header,
/// whose length the caller has checked (both tasks' headers use it).
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A cursor just after the prefix every result shares (magic, version, task).
    pub(crate) fn after_prefix(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            pos: COMMON_PREFIX_LEN,
        }
    }
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        // Callers check the total length first; `get` keeps this panic-free anyway.
        if let Some(piece) = self.bytes.get(self.pos..self.pos + N) {
            out.copy_from_slice(piece);
        }
        self.pos += N;
        out
    }
    /// How many bytes have been read (the prefix included).
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
    pub(crate) fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    pub(crate) fn hash(&mut self) -> Hash32 {
        Hash32(self.take())
    }
}

impl EmbedHeader {
    /// Writes the 147 header bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.push(TaskTag::Embed as u8);
        out.extend_from_slice(self.model_hash.as_bytes());
        out.extend_from_slice(self.config_hash.as_bytes());
        out.extend_from_slice(self.tokenizer_hash.as_bytes());
        out.push(self.pooling as u8);
        out.push(self.normalize as u8);
        out.extend_from_slice(&self.max_len.to_le_bytes());
        out.push(self.padding as u8);
        out.extend_from_slice(self.input_digest.as_bytes());
        out.extend_from_slice(&self.n.to_le_bytes());
        out.extend_from_slice(&self.dim.to_le_bytes());
        out.push(self.scale_log2);
    }

    /// Parses the header at the start of `bytes` (the payload is not checked).
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let task = peek_task(bytes)?;
        if task != TaskTag::Embed {
            return Err(ParseError::WrongTask {
                expected: TaskTag::Embed,
                found: task,
            });
        }
        if bytes.len() < EMBED_HEADER_LEN {
            return Err(ParseError::TooShort {
                len: bytes.len(),
                need: EMBED_HEADER_LEN,
            });
        }
        let mut r = Reader::after_prefix(bytes);
        let model_hash = r.hash();
        let config_hash = r.hash();
        let tokenizer_hash = r.hash();
        let pooling = match r.u8() {
            1 => Pooling::Mean,
            v => return Err(bad("pooling", v)),
        };
        let normalize = match r.u8() {
            1 => Normalize::L2,
            v => return Err(bad("normalize", v)),
        };
        let max_len = r.u16();
        let padding = match r.u8() {
            0 => Padding::None,
            v => return Err(bad("padding", v)),
        };
        let input_digest = r.hash();
        let n = r.u32();
        let dim = r.u16();
        let scale_log2 = r.u8();
        if scale_log2 != SCALE_LOG2 {
            return Err(bad("scale_log2", scale_log2));
        }
        if n == 0 {
            return Err(bad("n", 0u8));
        }
        if dim == 0 {
            return Err(bad("dim", 0u8));
        }
        debug_assert_eq!(r.position(), EMBED_HEADER_LEN);
        Ok(Self {
            model_hash,
            config_hash,
            tokenizer_hash,
            pooling,
            normalize,
            max_len,
            padding,
            input_digest,
            n,
            dim,
            scale_log2,
        })
    }
}

fn bad(field: &'static str, value: impl Into<u64>) -> ParseError {
    ParseError::BadField {
        field,
        value: value.into(),
    }
}

/// `clamp(round_half_even(x · 2^14))` as i16. NaN maps to 0; callers refuse NaN earlier.
pub fn quantize(x: f32) -> i16 {
    let scaled = (x * (1u32 << SCALE_LOG2) as f32).round_ties_even();
    // `as` saturates at the i16 bounds (and maps NaN to 0).
    scaled as i16
}

/// The value a quantised entry stands for.
pub fn dequantize(q: i16) -> f32 {
    f32::from(q) / (1u32 << SCALE_LOG2) as f32
}

impl EmbedResult {
    /// The canonical bytes: header then payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(EMBED_HEADER_LEN + 2 * self.values.len());
        self.header.write(&mut out);
        for v in &self.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parses canonical bytes; rejects anything malformed with the reason.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let header = EmbedHeader::parse(bytes)?;
        let expected = 2u128 * u128::from(header.n) * u128::from(header.dim);
        let found = bytes.len() - EMBED_HEADER_LEN;
        if expected != found as u128 {
            return Err(ParseError::PayloadLength {
                n: header.n,
                dim: header.dim,
                expected,
                found,
            });
        }
        let values = bytes[EMBED_HEADER_LEN..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(Self { header, values })
    }

    /// Row `i` (one input's embedding), if it exists.
    pub fn row(&self, i: usize) -> Option<&[i16]> {
        let dim = usize::from(self.header.dim);
        self.values.get(i * dim..(i + 1) * dim)
    }

    /// `result_hash`: blake2b-256 of the canonical bytes.
    pub fn hash(&self) -> Hash32 {
        Hash32::of(&self.to_bytes())
    }
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mean")
    }
}
impl fmt::Display for Normalize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("l2")
    }
}
impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("none")
    }
}

/// Random mutations of a valid result, for the parsers' no-panic tests: a fixed-seed
/// xorshift sets one byte of `good` and truncates the copy at a random length.
#[cfg(test)]
pub(crate) fn mutations(good: &[u8], seed: u64) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut s = seed;
    std::iter::repeat_with(move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let mut b = good.to_vec();
        let i = (s % b.len() as u64) as usize;
        b[i] = (s >> 32) as u8;
        b.truncate((s >> 40) as usize % (good.len() + 1));
        b
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> EmbedResult {
        EmbedResult {
            header: EmbedHeader {
                model_hash: Hash32([1; 32]),
                config_hash: Hash32([2; 32]),
                tokenizer_hash: Hash32([3; 32]),
                pooling: Pooling::Mean,
                normalize: Normalize::L2,
                max_len: 128,
                padding: Padding::None,
                input_digest: Hash32([4; 32]),
                n: 2,
                dim: 3,
                scale_log2: SCALE_LOG2,
            },
            values: vec![1, -2, 3, i16::MAX, i16::MIN, 0],
        }
    }

    #[test]
    fn layout_is_exactly_as_documented() {
        let bytes = sample().to_bytes();
        assert_eq!(bytes.len(), EMBED_HEADER_LEN + 12);
        assert_eq!(&bytes[0..4], b"NTXR");
        assert_eq!(&bytes[4..6], &[1, 0]);
        assert_eq!(bytes[6], 1);
        assert_eq!(&bytes[7..39], &[1; 32]);
        assert_eq!(&bytes[39..71], &[2; 32]);
        assert_eq!(&bytes[71..103], &[3; 32]);
        assert_eq!(&bytes[103..108], &[1, 1, 128, 0, 0]);
        assert_eq!(&bytes[108..140], &[4; 32]);
        assert_eq!(&bytes[140..144], &[2, 0, 0, 0]);
        assert_eq!(&bytes[144..146], &[3, 0]);
        assert_eq!(bytes[146], 14);
        assert_eq!(&bytes[147..151], &[1, 0, 0xfe, 0xff]);
        assert_eq!(&bytes[153..157], &[0xff, 0x7f, 0x00, 0x80]);
    }

    #[test]
    fn round_trip() {
        let r = sample();
        assert_eq!(EmbedResult::parse(&r.to_bytes()).unwrap(), r);
        assert_eq!(r.row(1).unwrap(), &[i16::MAX, i16::MIN, 0]);
        assert!(r.row(2).is_none());
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let q = 1.0 / 16384.0;
        assert_eq!(quantize(0.5 * q), 0);
        assert_eq!(quantize(1.5 * q), 2);
        assert_eq!(quantize(2.5 * q), 2);
        assert_eq!(quantize(-2.5 * q), -2);
        assert_eq!(quantize(1.0), 16384);
        assert_eq!(quantize(-1.0), -16384);
        assert_eq!(quantize(3.0), i16::MAX);
        assert_eq!(quantize(-3.0), i16::MIN);
        assert_eq!(dequantize(quantize(0.25)), 0.25);
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        let bytes = sample().to_bytes();
        for len in 0..bytes.len() {
            assert!(EmbedResult::parse(&bytes[..len]).is_err(), "len {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            EmbedResult::parse(&longer),
            Err(ParseError::PayloadLength { .. })
        ));
    }

    #[test]
    fn bad_fields_are_named() {
        let good = sample().to_bytes();
        let cases: &[(usize, u8, &str)] = &[
            (0, b'X', "magic"),
            (4, 2, "version"),
            (6, 9, "task"),
            (103, 2, "pooling"),
            (104, 0, "normalize"),
            (107, 1, "padding"),
            (146, 13, "scale_log2"),
        ];
        for &(offset, value, what) in cases {
            let mut b = good.clone();
            b[offset] = value;
            let err = EmbedResult::parse(&b).unwrap_err();
            let text = err.to_string();
            match what {
                "magic" => assert!(matches!(err, ParseError::BadMagic { .. }), "{text}"),
                "version" => assert!(
                    matches!(err, ParseError::UnsupportedVersion { found: 2 }),
                    "{text}"
                ),
                "task" => assert!(
                    matches!(err, ParseError::UnknownTask { found: 9 }),
                    "{text}"
                ),
                field => assert!(text.contains(field), "{text}"),
            }
        }
        // n = 0 and dim = 0 are malformed even with an empty payload.
        let mut zero_n = good[..EMBED_HEADER_LEN].to_vec();
        zero_n[140..144].copy_from_slice(&0u32.to_le_bytes());
        assert!(
            EmbedResult::parse(&zero_n)
                .unwrap_err()
                .to_string()
                .contains(" n ")
        );
    }

    #[test]
    fn huge_n_times_dim_does_not_overflow() {
        let mut b = sample().to_bytes();
        b[140..144].copy_from_slice(&u32::MAX.to_le_bytes());
        b[144..146].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            EmbedResult::parse(&b),
            Err(ParseError::PayloadLength { .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        for b in mutations(&sample().to_bytes(), 0x9e37_79b9_7f4a_7c15).take(20_000) {
            let _ = EmbedResult::parse(&b);
        }
    }
}
