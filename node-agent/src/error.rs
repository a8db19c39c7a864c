//! The one error type of the inference core.

use std::path::PathBuf;

use crate::hash::Hash32;

/// Why a job could not be computed or checked. Every variant says what went wrong and
/// what to do; the daemon logs it, records it in the job's state and submits nothing.
///
/// A verifier that gets an `InferenceError` has no opinion on the result (it neither
/// accepts nor rejects); a bad result is a [`crate::Verdict::Reject`], not an error.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The job spec itself is unacceptable (no inputs, an input too long, a max_len the
    /// model cannot take, ...). Refuse the job.
    #[error("job spec refused: {reason}")]
    InvalidSpec {
        /// What is wrong with the spec.
        reason: String,
    },

    /// A model file is missing or unreadable.
    #[error(
        "cannot read model file {path}: {source}; put the model's files in that directory \
         (for all-MiniLM-L6-v2 run node-agent/scripts/fetch-minilm.sh DIR)"
    )]
    ModelFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A model file's blake2b-256 differs from the one the job spec names.
    #[error(
        "model file {path} has blake2b-256 {actual} but the job spec names {expected}: \
         these are not the files the job asks for; refuse the job or install the right files"
    )]
    ModelHashMismatch {
        /// The file.
        path: PathBuf,
        /// The hash the job spec names.
        expected: Hash32,
        /// The hash of the file on disk.
        actual: Hash32,
    },

    /// `config.json` is not a BERT config candle understands, or the model is not
    /// one this pipeline supports.
    #[error("model config {path} is not usable: {reason}")]
    BadModelConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// `tokenizer.json` could not be loaded or an input could not be tokenised.
    #[error("tokenizer {path}: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizers crate's message.
        reason: String,
    },

    /// candle failed (loading weights, running the model, choosing a device).
    #[error("candle failed while {context}: {source}")]
    Candle {
        /// What the agent was doing.
        context: String,
        /// candle's error.
        source: candle_core::Error,
    },

    /// The model produced NaN or infinity: the weights are broken for this dtype or
    /// device. Nothing is submitted.
    #[error(
        "the model produced a non-finite value for input {input} (NaN or infinity); \
         the weights or device are unusable for this job (F32 on CPU is the supported setup)"
    )]
    NonFinite {
        /// Index of the input.
        input: usize,
    },

    /// Result bytes this agent produced itself failed its own checks (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl InferenceError {
    pub(crate) fn spec(reason: impl Into<String>) -> Self {
        Self::InvalidSpec {
            reason: reason.into(),
        }
    }

    pub(crate) fn candle(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> Self {
        let context = context.into();
        move |source| Self::Candle { context, source }
    }
}
