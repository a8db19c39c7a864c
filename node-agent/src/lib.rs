//! Provider and verifier daemon for ntx-escrow: the inference core.
//!
//! A provider computes a job's *canonical result bytes* and publishes
//! `result_hash = blake2b-256(bytes)`; a verifier fetches the bytes, checks them against
//! the chain and the job, recomputes, and accepts when every value is within tolerance
//! (candle's CPU output is reproducible on one machine but not across CPU classes or
//! padding lengths, so equal hashes are the fast path, not the rule).
//!
//! | module | what it holds |
//! |---|---|
//! | `device` | [`select_device`]: the one place that picks the candle device (CPU; CUDA with the `cuda` feature) |
//! | `hash` | [`Hash32`] (blake2b-256), [`input_digest`] |
//! | `model` | [`verify_files`] (hash check before loading), the model cache |
//! | `embed` | task `embed`: [`EmbedSpec`], [`BertEmbedder`] (load recipe, tokenise/truncate, batch-1 BERT, mean pooling, L2) |
//! | `result` | canonical bytes: [`EmbedResult`], [`EmbedHeader`], [`ParseError`], [`quantize`] |
//! | `verify` | the verifier rule: [`Verdict`], [`Rejection`], [`TOLERANCE`] |
//! | `generate` | task `generate`: [`GenerateSpec`], [`GenerateModel`] (GGUF llama, tokenizer and chat template from the file, decoding rule, teacher-forced verifier), [`GenerateResult`], [`write_tiny_llama`] |
//! | `task` | the [`Task`] abstraction, [`JobSpec`], [`Progress`] and the [`Engine`] the daemon calls |
//! | `tiny` | [`write_tiny_bert`]: a deterministic tiny BERT for tests |
//! | `daemon` | the node agent (`ntx agent run`): [`run_agent`], [`AgentConfig`], [`Store`], the HTTP API ([`agent_router`]), attestations ([`SignedAttestation`], [`Tally`]) |
//!
//! Everything here is synchronous and CPU-bound: the daemon calls [`Engine::compute`]
//! and [`Engine::verify`] on a blocking pool. The byte layout is documented in
//! `node-agent/README.md` and in the `result` module.

mod answer;
mod daemon;
mod device;
mod embed;
mod error;
mod generate;
mod hash;
mod model;
mod result;
mod task;
mod tiny;
mod verify;

pub use answer::Answer;
pub use daemon::{
    AgentConfig, AgentError, CONFIG_ENV, ChainConfig, ConfigError, ENV_OVERRIDES, FetchConfig,
    HttpState, JobRecord, ModelIndex, OfferConfig, PolicyConfig, ProviderConfig, Role as AgentRole,
    SignedAttestation, SignedResult, Stage, Store, StoreError, Tally, VerifierConfig,
    collect_attestations, router as agent_router, run as run_agent, run_with as run_agent_with,
    serve_http as serve_agent_http,
};
pub use device::{describe as describe_device, select_device};
pub use embed::{
    BertEmbedder, BertFiles, CONFIG_FILE, DEFAULT_MAX_LEN, EmbedPipeline, EmbedSpec,
    MAX_INPUT_BYTES, MAX_INPUTS, MIN_MAX_LEN, TOKENIZER_FILE, WEIGHTS_FILE,
    encode as encode_embeddings,
};
pub use error::InferenceError;
pub use generate::gguf::{CHATML_TEMPLATE, ChatTemplate, MAX_CONTEXT, SMOLLM2_TEMPLATE};
pub use generate::llama::LlamaConfig;
pub use generate::result::{GENERATE_HEADER_LEN, GenerateHeader, GenerateResult, StopReason};
pub use generate::rule::{
    Finding, argmax, check as check_token, choose as choose_token, gumbel, uniform,
};
pub use generate::spec::{
    Decoding, GGUF_FILE, GenerateSpec, MAX_MESSAGE_BYTES, MAX_MESSAGES, MAX_NEW_TOKENS, MAX_SEED,
    MAX_TEMPERATURE_MILLI, Message, Role, token_digest,
};
pub use generate::tiny::{TinyLlama, write_tiny_llama};
pub use generate::{
    GenerateModel, Generation, LOGIT_TOLERANCE, compare_headers as compare_generate_headers,
};
pub use hash::{Hash32, HashParseError, input_digest};
pub use model::{ModelFile, verify_files};
pub use result::{
    COMMON_PREFIX_LEN, EMBED_HEADER_LEN, EmbedHeader, EmbedResult, FORMAT_VERSION, MAGIC,
    Normalize, Padding, ParseError, Pooling, SCALE_LOG2, dequantize, peek_task, quantize,
};
pub use task::{
    ComputedResult, DEFAULT_CACHE_CAPACITY, EmbedTask, Engine, GenerateTask, JobSpec, Progress,
    Task, TaskTag,
};
pub use tiny::{TinyBert, write_tiny_bert};
pub use verify::{
    Acceptance, HeaderField, Rejection, TOLERANCE, Verdict, check_embed, compare_headers,
    compare_values,
};

/// The candle device type, re-exported so callers need not depend on candle.
pub use candle_core::Device;
