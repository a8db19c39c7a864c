//! Canonical result bytes of task `generate` (format version 1, task tag 2).
//!
//! Little-endian throughout; `result_hash = blake2b-256(all bytes)`.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"NTXR"` |
//! | 4 | 2 | format version u16 = 1 |
//! | 6 | 1 | task tag u8 = 2 (`generate`) |
//! | 7 | 32 | model hash: blake2b-256 of the GGUF file |
//! | 39 | 1 | decoding mode u8: 0 greedy, 1 sample |
//! | 40 | 4 | temperature_milli u32 (0 for greedy) |
//! | 44 | 4 | top_p_milli u32 (0 for greedy) |
//! | 48 | 8 | seed u64 (0 for greedy) |
//! | 56 | 4 | max_new_tokens u32 |
//! | 60 | 32 | messages digest ([`crate::GenerateSpec::messages_digest`]) |
//! | 92 | 4 | prompt token count u32 |
//! | 96 | 32 | prompt digest: blake2b-256 of the prompt token ids as u32 LE |
//! | 128 | 1 | stop reason u8: 1 end-of-turn token, 2 token limit |
//! | 129 | 4 | n u32: generated tokens, ≥ 1, the end-of-turn token included |
//! | 133 | 4·n | generated token ids, u32 each |
//! | 133+4n | rest | the text: the generated ids decoded, special tokens skipped (UTF-8) |

use std::fmt;

use crate::generate::spec::Decoding;
use crate::hash::Hash32;
use crate::result::{FORMAT_VERSION, MAGIC, ParseError, Reader, peek_task};
use crate::task::TaskTag;

/// Size of the `generate` header; the token ids start here.
pub const GENERATE_HEADER_LEN: usize = 133;

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StopReason {
    /// The model produced an end-of-turn token (the last id).
    EndOfTurn = 1,
    /// `max_new_tokens` were generated.
    MaxTokens = 2,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EndOfTurn => "end_of_turn",
            Self::MaxTokens => "max_tokens",
        })
    }
}

/// The `generate` result header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateHeader {
    /// blake2b-256 of the GGUF file.
    pub model_hash: Hash32,
    /// The decoding rule.
    pub decoding: Decoding,
    /// The spec's token limit.
    pub max_new_tokens: u32,
    /// Digest of the spec's messages.
    pub messages_digest: Hash32,
    /// Number of prompt tokens (template applied).
    pub prompt_tokens: u32,
    /// blake2b-256 of the prompt token ids.
    pub prompt_digest: Hash32,
    /// Why generation stopped.
    pub stop: StopReason,
    /// Number of generated tokens.
    pub n: u32,
}

/// A parsed or freshly generated result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateResult {
    /// The header.
    pub header: GenerateHeader,
    /// The generated token ids (`header.n` of them).
    pub tokens: Vec<u32>,
    /// The ids decoded.
    pub text: String,
}

fn bad(field: &'static str, value: impl Into<u64>) -> ParseError {
    ParseError::BadField {
        field,
        value: value.into(),
    }
}

impl GenerateHeader {
    /// Writes the 133 header bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        let (t, p, seed) = self.decoding.params();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.push(TaskTag::Generate as u8);
        out.extend_from_slice(self.model_hash.as_bytes());
        out.push(self.decoding.mode_byte());
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&p.to_le_bytes());
        out.extend_from_slice(&seed.to_le_bytes());
        out.extend_from_slice(&self.max_new_tokens.to_le_bytes());
        out.extend_from_slice(self.messages_digest.as_bytes());
        out.extend_from_slice(&self.prompt_tokens.to_le_bytes());
        out.extend_from_slice(self.prompt_digest.as_bytes());
        out.push(self.stop as u8);
        out.extend_from_slice(&self.n.to_le_bytes());
    }

    /// Parses the header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let task = peek_task(bytes)?;
        if task != TaskTag::Generate {
            return Err(ParseError::WrongTask {
                expected: TaskTag::Generate,
                found: task,
            });
        }
        if bytes.len() < GENERATE_HEADER_LEN {
            return Err(ParseError::TooShort {
                len: bytes.len(),
                need: GENERATE_HEADER_LEN,
            });
        }
        let mut r = Reader::after_prefix(bytes);
        let model_hash = r.hash();
        let mode = r.u8();
        let (temperature_milli, top_p_milli, seed) = (r.u32(), r.u32(), r.u64());
        let decoding = match mode {
            0 => {
                if temperature_milli != 0 {
                    return Err(bad("temperature_milli", temperature_milli));
                }
                if top_p_milli != 0 {
                    return Err(bad("top_p_milli", top_p_milli));
                }
                if seed != 0 {
                    return Err(bad("seed", seed));
                }
                Decoding::Greedy
            }
            1 => Decoding::Sample {
                temperature_milli,
                top_p_milli,
                seed,
            },
            v => return Err(bad("decoding mode", v)),
        };
        let max_new_tokens = r.u32();
        let messages_digest = r.hash();
        let prompt_tokens = r.u32();
        let prompt_digest = r.hash();
        let stop = match r.u8() {
            1 => StopReason::EndOfTurn,
            2 => StopReason::MaxTokens,
            v => return Err(bad("stop reason", v)),
        };
        let n = r.u32();
        if n == 0 {
            return Err(bad("n", 0u8));
        }
        debug_assert_eq!(r.position(), GENERATE_HEADER_LEN);
        Ok(Self {
            model_hash,
            decoding,
            max_new_tokens,
            messages_digest,
            prompt_tokens,
            prompt_digest,
            stop,
            n,
        })
    }
}

impl GenerateResult {
    /// The canonical bytes: header, token ids, text.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(GENERATE_HEADER_LEN + 4 * self.tokens.len() + self.text.len());
        self.header.write(&mut out);
        for t in &self.tokens {
            out.extend_from_slice(&t.to_le_bytes());
        }
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Parses canonical bytes; rejects anything malformed with the reason.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let header = GenerateHeader::parse(bytes)?;
        let ids_len = 4u64 * u64::from(header.n);
        let rest = bytes.len() - GENERATE_HEADER_LEN;
        if (rest as u64) < ids_len {
            return Err(ParseError::TokenPayload {
                n: header.n,
                found: rest,
            });
        }
        let ids_end = GENERATE_HEADER_LEN + ids_len as usize;
        let tokens = bytes[GENERATE_HEADER_LEN..ids_end]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let text = std::str::from_utf8(&bytes[ids_end..])
            .map_err(|e| ParseError::TextNotUtf8 {
                valid_up_to: e.valid_up_to(),
            })?
            .to_string();
        Ok(Self {
            header,
            tokens,
            text,
        })
    }

    /// `result_hash`: blake2b-256 of the canonical bytes.
    pub fn hash(&self) -> Hash32 {
        Hash32::of(&self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> GenerateResult {
        GenerateResult {
            header: GenerateHeader {
                model_hash: Hash32([1; 32]),
                decoding: Decoding::Sample {
                    temperature_milli: 700,
                    top_p_milli: 900,
                    seed: 0x0102_0304_0506,
                },
                max_new_tokens: 64,
                messages_digest: Hash32([2; 32]),
                prompt_tokens: 300,
                prompt_digest: Hash32([3; 32]),
                stop: StopReason::EndOfTurn,
                n: 2,
            },
            tokens: vec![0x0a0b_0c0d, 2],
            text: "hé".into(),
        }
    }

    #[test]
    fn layout_is_exactly_as_documented() {
        let b = sample().to_bytes();
        assert_eq!(b.len(), GENERATE_HEADER_LEN + 8 + 3);
        assert_eq!(&b[0..7], b"NTXR\x01\x00\x02");
        assert_eq!(&b[7..39], &[1; 32]);
        assert_eq!(b[39], 1);
        assert_eq!(&b[40..44], &700u32.to_le_bytes());
        assert_eq!(&b[44..48], &900u32.to_le_bytes());
        assert_eq!(&b[48..56], &[6, 5, 4, 3, 2, 1, 0, 0]);
        assert_eq!(&b[56..60], &[64, 0, 0, 0]);
        assert_eq!(&b[60..92], &[2; 32]);
        assert_eq!(&b[92..96], &[44, 1, 0, 0]);
        assert_eq!(&b[96..128], &[3; 32]);
        assert_eq!(b[128], 1);
        assert_eq!(&b[129..133], &[2, 0, 0, 0]);
        assert_eq!(&b[133..141], &[0x0d, 0x0c, 0x0b, 0x0a, 2, 0, 0, 0]);
        assert_eq!(&b[141..], "hé".as_bytes());
    }

    #[test]
    fn round_trip_and_greedy_zeros() {
        let r = sample();
        assert_eq!(GenerateResult::parse(&r.to_bytes()).unwrap(), r);
        let mut g = sample();
        g.header.decoding = Decoding::Greedy;
        let bytes = g.to_bytes();
        assert_eq!(&bytes[39..56], &[0; 17]);
        assert_eq!(GenerateResult::parse(&bytes).unwrap(), g);
        let mut bad_seed = bytes.clone();
        bad_seed[50] = 1;
        assert!(
            GenerateResult::parse(&bad_seed)
                .unwrap_err()
                .to_string()
                .contains("seed")
        );
    }

    #[test]
    fn malformed_bytes_are_named() {
        let good = sample().to_bytes();
        for len in 0..GENERATE_HEADER_LEN + 8 {
            assert!(GenerateResult::parse(&good[..len]).is_err(), "len {len}");
        }
        let mut b = good.clone();
        b[39] = 7;
        assert!(
            GenerateResult::parse(&b)
                .unwrap_err()
                .to_string()
                .contains("decoding mode")
        );
        let mut b = good.clone();
        b[128] = 0;
        assert!(
            GenerateResult::parse(&b)
                .unwrap_err()
                .to_string()
                .contains("stop reason")
        );
        let mut b = good.clone();
        b[129..133].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            GenerateResult::parse(&b),
            Err(ParseError::TokenPayload { .. })
        ));
        let mut b = good.clone();
        b.push(0xff);
        assert!(matches!(
            GenerateResult::parse(&b),
            Err(ParseError::TextNotUtf8 { valid_up_to: 3 })
        ));
        // An embed result is not a generate result.
        let mut b = good.clone();
        b[6] = 1;
        assert!(matches!(
            GenerateResult::parse(&b),
            Err(ParseError::WrongTask { .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let good = sample().to_bytes();
        for b in crate::result::mutations(&good, 0x2545_f491_4f6c_dd1d).take(20_000) {
            let _ = GenerateResult::parse(&b);
        }
    }
}
