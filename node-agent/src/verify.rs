//! The verifier rule.
//!
//! 1. blake2b-256 of the provider's bytes must equal the on-chain `result_hash`
//!    (done by [`crate::Engine::verify`] before any model is touched);
//! 2. the bytes must parse;
//! 3. the header must match the job: model, config and tokenizer hashes, pipeline
//!    settings, input digest, n and dim (and the scale);
//! 4. the verifier recomputes the result itself; identical bytes are accepted at once;
//! 5. otherwise Accept when every quantised value is within ±[`TOLERANCE`] of the
//!    verifier's own, Reject otherwise.
//!
//! Honest CPUs, thread counts and padding policies differ by < 3e-7 (≈ 0.005 quanta at
//! 2^-14), while the cheapest cheats measured differ by ≥ 2e-3 (bf16) — see
//! `shared/notes/candle-reproducibility.md`.

use std::fmt;

use crate::embed::{BertEmbedder, EmbedSpec};
use crate::error::InferenceError;
use crate::hash::Hash32;
use crate::result::{EmbedHeader, EmbedResult, ParseError};

/// Largest accepted difference between a provider's and the verifier's quantised value.
pub const TOLERANCE: u32 = 1;

/// A verifier's decision on a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Sign Accept.
    Accept(Acceptance),
    /// Sign Reject.
    Reject(Rejection),
}

impl Verdict {
    /// Whether this is an Accept.
    pub fn is_accept(&self) -> bool {
        matches!(self, Self::Accept(_))
    }
}

/// Why a result was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// The verifier's own bytes are identical (the fast path).
    IdenticalBytes,
    /// Bytes differ, but every value is within tolerance.
    WithinTolerance {
        /// Largest |provider − verifier| over all values (≤ [`TOLERANCE`]).
        max_deviation: u32,
        /// How many values differ at all.
        differing_values: u64,
    },
    /// `generate`: every generated token is consistent with the decoding rule within
    /// [`crate::LOGIT_TOLERANCE`] on the verifier's teacher-forced logits.
    RuleConsistent {
        /// Tokens checked.
        tokens: u32,
        /// The tightest check's gap in millionths of a logit (greedy: the largest
        /// `max z − z_t`), clamped at 0.
        max_gap_micro: u32,
    },
}

/// Which header field disagreed with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    /// blake2b-256 of `model.safetensors`.
    ModelHash,
    /// blake2b-256 of `config.json`.
    ConfigHash,
    /// blake2b-256 of `tokenizer.json`.
    TokenizerHash,
    /// Pooling rule.
    Pooling,
    /// Normalisation.
    Normalize,
    /// Token limit.
    MaxLen,
    /// Padding policy.
    Padding,
    /// Digest of the inputs.
    InputDigest,
    /// Number of inputs.
    N,
    /// Embedding width.
    Dim,
    /// Quantisation scale.
    ScaleLog2,
    /// `generate`: decoding mode (0 greedy, 1 sample).
    Decoding,
    /// `generate`: temperature in thousandths.
    TemperatureMilli,
    /// `generate`: nucleus mass in thousandths.
    TopPMilli,
    /// `generate`: sampling seed.
    Seed,
    /// `generate`: token limit.
    MaxNewTokens,
    /// `generate`: digest of the chat messages.
    MessagesDigest,
    /// `generate`: number of prompt tokens.
    PromptTokens,
    /// `generate`: digest of the prompt token ids.
    PromptDigest,
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ModelHash => "model_hash",
            Self::ConfigHash => "config_hash",
            Self::TokenizerHash => "tokenizer_hash",
            Self::Pooling => "pooling",
            Self::Normalize => "normalize",
            Self::MaxLen => "max_len",
            Self::Padding => "padding",
            Self::InputDigest => "input_digest",
            Self::N => "n",
            Self::Dim => "dim",
            Self::ScaleLog2 => "scale_log2",
            Self::Decoding => "decoding",
            Self::TemperatureMilli => "temperature_milli",
            Self::TopPMilli => "top_p_milli",
            Self::Seed => "seed",
            Self::MaxNewTokens => "max_new_tokens",
            Self::MessagesDigest => "messages_digest",
            Self::PromptTokens => "prompt_tokens",
            Self::PromptDigest => "prompt_digest",
        })
    }
}

/// Why a result was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not the ones the provider committed to on chain.
    #[error("result bytes hash to {actual}, but the chain has {onchain}")]
    HashMismatch {
        /// `result_hash` on chain.
        onchain: Hash32,
        /// blake2b-256 of the bytes received.
        actual: Hash32,
    },
    /// The bytes do not parse.
    #[error("malformed result: {0}")]
    Malformed(ParseError),
    /// The header describes another job.
    #[error("result header field {field} is {found}, the job needs {expected}")]
    HeaderMismatch {
        /// The first field that differs.
        field: HeaderField,
        /// What the job needs.
        expected: String,
        /// What the header says.
        found: String,
    },
    /// Some value is further than the tolerance from the verifier's.
    #[error(
        "{values_over} value(s) differ by more than ±{TOLERANCE}: max deviation {max_deviation} \
         quanta (2^-14 each) at input {input}, component {component}"
    )]
    OutOfTolerance {
        /// Largest |provider − verifier| in quanta.
        max_deviation: u32,
        /// Input (row) of the largest deviation.
        input: u32,
        /// Component (column) of the largest deviation.
        component: u16,
        /// How many values exceed the tolerance.
        values_over: u64,
    },
    /// `generate`: the token ids break the stopping rule (an end-of-turn token before
    /// the end, a missing one, too many tokens, an id outside the vocabulary).
    #[error("generated tokens break the stopping rule: {reason}")]
    StopRule {
        /// What is wrong.
        reason: String,
    },
    /// `generate`: the text is not the decoding of the token ids.
    #[error("result text differs from the decoded token ids from byte {at_byte}")]
    TextMismatch {
        /// First differing byte.
        at_byte: u64,
    },
    /// `generate`: a token is not what the decoding rule allows on the verifier's
    /// teacher-forced logits, even with the tolerance.
    #[error("generated token {token} at position {position} breaks the decoding rule: {reason}")]
    OffRule {
        /// Position among the generated tokens (0 = first).
        position: u32,
        /// The token id.
        token: u32,
        /// Which check failed, with its numbers.
        reason: String,
    },
}

impl Acceptance {
    /// The variant's name, without the numbers (which come from the bytes judged).
    pub fn kind(&self) -> &'static str {
        match self {
            Acceptance::IdenticalBytes => "IdenticalBytes",
            Acceptance::WithinTolerance { .. } => "WithinTolerance",
            Acceptance::RuleConsistent { .. } => "RuleConsistent",
        }
    }
}

impl Rejection {
    /// The variant's name, without its details: status endpoints publish this,
    /// never hashes or contents of the bytes judged.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::HashMismatch { .. } => "HashMismatch",
            Rejection::Malformed(_) => "Malformed",
            Rejection::HeaderMismatch { .. } => "HeaderMismatch",
            Rejection::OutOfTolerance { .. } => "OutOfTolerance",
            Rejection::StopRule { .. } => "StopRule",
            Rejection::TextMismatch { .. } => "TextMismatch",
            Rejection::OffRule { .. } => "OffRule",
        }
    }
}

/// Compares a header with the one the job requires; the first differing field wins.
pub fn compare_headers(expected: &EmbedHeader, found: &EmbedHeader) -> Option<Rejection> {
    fn diff<T: PartialEq + fmt::Display>(field: HeaderField, e: &T, f: &T) -> Option<Rejection> {
        (e != f).then(|| Rejection::HeaderMismatch {
            field,
            expected: e.to_string(),
            found: f.to_string(),
        })
    }
    diff(
        HeaderField::ModelHash,
        &expected.model_hash,
        &found.model_hash,
    )
    .or_else(|| {
        diff(
            HeaderField::ConfigHash,
            &expected.config_hash,
            &found.config_hash,
        )
    })
    .or_else(|| {
        diff(
            HeaderField::TokenizerHash,
            &expected.tokenizer_hash,
            &found.tokenizer_hash,
        )
    })
    .or_else(|| diff(HeaderField::Pooling, &expected.pooling, &found.pooling))
    .or_else(|| {
        diff(
            HeaderField::Normalize,
            &expected.normalize,
            &found.normalize,
        )
    })
    .or_else(|| diff(HeaderField::MaxLen, &expected.max_len, &found.max_len))
    .or_else(|| diff(HeaderField::Padding, &expected.padding, &found.padding))
    .or_else(|| {
        diff(
            HeaderField::InputDigest,
            &expected.input_digest,
            &found.input_digest,
        )
    })
    .or_else(|| diff(HeaderField::N, &expected.n, &found.n))
    .or_else(|| diff(HeaderField::Dim, &expected.dim, &found.dim))
    .or_else(|| {
        diff(
            HeaderField::ScaleLog2,
            &expected.scale_log2,
            &found.scale_log2,
        )
    })
}

/// Compares the values of two results with equal headers (step 5).
pub fn compare_values(provider: &EmbedResult, own: &EmbedResult) -> Verdict {
    let dim = usize::from(own.header.dim.max(1));
    let mut max_deviation = 0u32;
    let mut at = 0usize;
    let mut differing = 0u64;
    let mut over = 0u64;
    for (i, (&p, &o)) in provider.values.iter().zip(&own.values).enumerate() {
        let d = (i32::from(p) - i32::from(o)).unsigned_abs();
        if d > 0 {
            differing += 1;
        }
        if d > TOLERANCE {
            over += 1;
        }
        if d > max_deviation {
            max_deviation = d;
            at = i;
        }
    }
    if provider.values.len() != own.values.len() {
        // Headers matched, so this only happens for hand-built results; count the
        // missing values as out of tolerance.
        over += provider.values.len().abs_diff(own.values.len()) as u64;
        max_deviation = max_deviation.max(u32::from(u16::MAX));
    }
    if over == 0 {
        Verdict::Accept(Acceptance::WithinTolerance {
            max_deviation,
            differing_values: differing,
        })
    } else {
        Verdict::Reject(Rejection::OutOfTolerance {
            max_deviation,
            input: u32::try_from(at / dim).unwrap_or(u32::MAX),
            component: u16::try_from(at % dim).unwrap_or(u16::MAX),
            values_over: over,
        })
    }
}

/// Steps 2–5 for `embed` (step 1 is the engine's), with a loaded model.
pub fn check_embed(
    model: &BertEmbedder,
    spec: &EmbedSpec,
    provider_bytes: &[u8],
) -> Result<Verdict, InferenceError> {
    let provider = match EmbedResult::parse(provider_bytes) {
        Ok(r) => r,
        Err(e) => return Ok(Verdict::Reject(Rejection::Malformed(e))),
    };
    let expected = model.header(spec)?;
    if let Some(rejection) = compare_headers(&expected, &provider.header) {
        return Ok(Verdict::Reject(rejection));
    }
    let own = model.compute(spec)?;
    if own.to_bytes() == provider_bytes {
        return Ok(Verdict::Accept(Acceptance::IdenticalBytes));
    }
    Ok(compare_values(&provider, &own))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::result::{Normalize, Padding, Pooling, SCALE_LOG2};

    fn result(values: Vec<i16>) -> EmbedResult {
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
                dim: 2,
                scale_log2: SCALE_LOG2,
            },
            values,
        }
    }

    #[test]
    fn tolerance_is_plus_minus_one_quantum() {
        let own = result(vec![10, -10, 0, 5]);
        let v = compare_values(&result(vec![11, -11, 0, 5]), &own);
        assert_eq!(
            v,
            Verdict::Accept(Acceptance::WithinTolerance {
                max_deviation: 1,
                differing_values: 2
            })
        );
        let v = compare_values(&result(vec![10, -10, 0, 7]), &own);
        assert_eq!(
            v,
            Verdict::Reject(Rejection::OutOfTolerance {
                max_deviation: 2,
                input: 1,
                component: 1,
                values_over: 1
            })
        );
        // Extremes do not overflow.
        let v = compare_values(
            &result(vec![i16::MIN, 0, 0, 0]),
            &result(vec![i16::MAX, 0, 0, 0]),
        );
        assert!(matches!(
            v,
            Verdict::Reject(Rejection::OutOfTolerance {
                max_deviation: 65535,
                ..
            })
        ));
    }

    #[test]
    fn first_differing_header_field_is_named() {
        let a = result(vec![0; 4]).header;
        assert!(compare_headers(&a, &a).is_none());
        let mut b = a.clone();
        b.max_len = 64;
        b.n = 3;
        let r = compare_headers(&a, &b).unwrap();
        assert!(matches!(
            r,
            Rejection::HeaderMismatch {
                field: HeaderField::MaxLen,
                ..
            }
        ));
        assert_eq!(
            r.to_string(),
            "result header field max_len is 64, the job needs 128"
        );
    }
}
