//! Task `embed`: sentence embeddings with a BERT-family model (all-MiniLM-L6-v2 class).
//!
//! The canonical pipeline, which the result header pins:
//! 1. tokenise with the model's `tokenizer.json` (its normaliser, pre-tokeniser and
//!    `[CLS] … [SEP]` post-processor), truncated to `max_len` tokens *including* `[CLS]`
//!    and `[SEP]`: an input longer than that keeps its first `max_len − 2` word pieces
//!    (the tokenizer's own truncation/padding settings are ignored);
//! 2. run the model on that one input alone (batch 1, no padding, token type 0,
//!    attention mask all ones), F32;
//! 3. mean-pool the last hidden state over the attention mask (`[CLS]`/`[SEP]`
//!    included), summing in f32 in token order;
//! 4. L2-normalise: `x / max(‖x‖₂, 1e-12)`;
//! 5. quantise: `clamp(round_half_even(x · 2^14))` as i16.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::InferenceError;
use crate::hash::{Hash32, input_digest};
use crate::model::{ModelFile, verify_files};
use crate::result::{EmbedHeader, EmbedResult, Normalize, Padding, Pooling, SCALE_LOG2, quantize};

/// File name of the BERT config.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the tokenizer.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// File name of the weights.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// `max_len` when the spec gives none (all-MiniLM-L6-v2's `max_seq_length`).
pub const DEFAULT_MAX_LEN: u16 = 128;
/// Smallest `max_len` accepted: `[CLS]`, one word piece, `[SEP]`.
pub const MIN_MAX_LEN: u16 = 3;
/// Most inputs one job may carry; more is refused.
pub const MAX_INPUTS: usize = 4096;
/// Longest input in UTF-8 bytes; longer is refused (not truncated: truncation is by
/// tokens, and tokenising megabytes to keep 128 tokens is a denial of service).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// The blake2b-256 of each of a BERT model's three files, as the job spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertFiles {
    /// blake2b-256 of `model.safetensors`.
    pub weights: Hash32,
    /// blake2b-256 of `config.json`.
    pub config: Hash32,
    /// blake2b-256 of `tokenizer.json`.
    pub tokenizer: Hash32,
}

impl BertFiles {
    /// Hashes the three files in `dir` (for operators writing specs, and for tests).
    pub fn of_dir(dir: &Path) -> Result<Self, InferenceError> {
        let hash = |name: &str| {
            let path = dir.join(name);
            Hash32::of_file(&path)
                .map_err(|source| InferenceError::ModelFileUnreadable { path, source })
        };
        Ok(Self {
            weights: hash(WEIGHTS_FILE)?,
            config: hash(CONFIG_FILE)?,
            tokenizer: hash(TOKENIZER_FILE)?,
        })
    }

    /// The files with their expected hashes, config and tokenizer first (small files
    /// fail fast), weights last.
    pub fn model_files(&self) -> Vec<ModelFile> {
        vec![
            ModelFile {
                name: CONFIG_FILE,
                expected: self.config,
            },
            ModelFile {
                name: TOKENIZER_FILE,
                expected: self.tokenizer,
            },
            ModelFile {
                name: WEIGHTS_FILE,
                expected: self.weights,
            },
        ]
    }
}

fn default_max_len() -> u16 {
    DEFAULT_MAX_LEN
}

/// Pipeline settings of an `embed` job (all but `max_len` have one allowed value in
/// format version 1; they are explicit so the header and the spec can say so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedPipeline {
    /// Pooling rule (`"mean"`).
    #[serde(default)]
    pub pooling: Pooling,
    /// Normalisation (`"l2"`).
    #[serde(default)]
    pub normalize: Normalize,
    /// Token limit per input, `[CLS]` and `[SEP]` included (default 128).
    #[serde(default = "default_max_len")]
    pub max_len: u16,
    /// Padding policy (`"none"`).
    #[serde(default)]
    pub padding: Padding,
}

impl Default for EmbedPipeline {
    fn default() -> Self {
        Self {
            pooling: Pooling::Mean,
            normalize: Normalize::L2,
            max_len: DEFAULT_MAX_LEN,
            padding: Padding::None,
        }
    }
}

/// The parameters of an `embed` job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSpec {
    /// Hashes of the model's files.
    pub model: BertFiles,
    /// Pipeline settings.
    #[serde(default)]
    pub pipeline: EmbedPipeline,
    /// The texts to embed, in order (one embedding each).
    pub inputs: Vec<String>,
}

impl EmbedSpec {
    /// Refuses specs the agent will not run, with the reason.
    pub fn validate(&self) -> Result<(), InferenceError> {
        if self.inputs.is_empty() {
            return Err(InferenceError::spec("embed job has no inputs"));
        }
        if self.inputs.len() > MAX_INPUTS {
            return Err(InferenceError::spec(format!(
                "embed job has {} inputs; at most {MAX_INPUTS} are accepted, split the job",
                self.inputs.len()
            )));
        }
        if let Some((i, s)) = self
            .inputs
            .iter()
            .enumerate()
            .find(|(_, s)| s.len() > MAX_INPUT_BYTES)
        {
            return Err(InferenceError::spec(format!(
                "embed input {i} is {} bytes; at most {MAX_INPUT_BYTES} are accepted",
                s.len()
            )));
        }
        if self.pipeline.max_len < MIN_MAX_LEN {
            return Err(InferenceError::spec(format!(
                "max_len {} is below the minimum {MIN_MAX_LEN} ([CLS], one token, [SEP])",
                self.pipeline.max_len
            )));
        }
        Ok(())
    }

    /// [`input_digest`] of the inputs.
    pub fn input_digest(&self) -> Hash32 {
        input_digest(&self.inputs)
    }
}

/// A loaded BERT sentence-embedding model: weights, config and tokenizer.
pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    config: Config,
    files: BertFiles,
    device: Device,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("files", &self.files)
            .field("hidden_size", &self.config.hidden_size)
            .field("layers", &self.config.num_hidden_layers)
            .field("device", &crate::device::describe(&self.device))
            .finish()
    }
}

impl BertEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` after
    /// checking each file's blake2b-256 against `files`. F32 only; nothing is
    /// downloaded.
    pub fn load(dir: &Path, files: &BertFiles, device: &Device) -> Result<Self, InferenceError> {
        verify_files(dir, &files.model_files())?;
        Self::load_verified(dir, files, device)
    }

    /// Loads files whose hashes the caller has just checked.
    pub(crate) fn load_verified(
        dir: &Path,
        files: &BertFiles,
        device: &Device,
    ) -> Result<Self, InferenceError> {
        let config_path = dir.join(CONFIG_FILE);
        let tokenizer_path = dir.join(TOKENIZER_FILE);
        let weights_path = dir.join(WEIGHTS_FILE);

        let config_text = std::fs::read_to_string(&config_path).map_err(|source| {
            InferenceError::ModelFileUnreadable {
                path: config_path.clone(),
                source,
            }
        })?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| InferenceError::BadModelConfig {
                path: config_path.clone(),
                reason: format!("not a BERT config.json: {e}"),
            })?;
        if config.hidden_size > usize::from(u16::MAX) || config.hidden_size == 0 {
            return Err(InferenceError::BadModelConfig {
                path: config_path,
                reason: format!(
                    "hidden_size {} does not fit the result's u16 dim",
                    config.hidden_size
                ),
            });
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(InferenceError::BadModelConfig {
                path: config_path,
                reason: "hidden_size must be a multiple of num_attention_heads".into(),
            });
        }

        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| InferenceError::Tokenizer {
                path: tokenizer_path.clone(),
                reason: format!("cannot load: {e}"),
            })?;
        tokenizer.with_padding(None);

        // SAFETY of the mmap is candle's concern (`unsafe_code` is forbidden here), so
        // read the file instead: 90 MB for MiniLM, loaded once per cached model.
        let weights =
            std::fs::read(&weights_path).map_err(|source| InferenceError::ModelFileUnreadable {
                path: weights_path.clone(),
                source,
            })?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, device).map_err(
            InferenceError::candle(format!("reading {}", weights_path.display())),
        )?;
        let model = BertModel::load(vb, &config).map_err(InferenceError::candle(format!(
            "building BERT from {}",
            weights_path.display()
        )))?;
        Ok(Self {
            model,
            tokenizer,
            tokenizer_path,
            config,
            files: *files,
            device: device.clone(),
        })
    }

    /// The hashes this model was loaded with.
    pub fn files(&self) -> &BertFiles {
        &self.files
    }

    /// Embedding width (`hidden_size`).
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// Number of transformer layers.
    pub fn layers(&self) -> usize {
        self.config.num_hidden_layers
    }

    /// Longest token sequence the model takes (`max_position_embeddings`).
    pub fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn check_pipeline(&self, pipeline: &EmbedPipeline) -> Result<(), InferenceError> {
        if pipeline.max_len < MIN_MAX_LEN {
            return Err(InferenceError::spec(format!(
                "max_len {} is below the minimum {MIN_MAX_LEN}",
                pipeline.max_len
            )));
        }
        if usize::from(pipeline.max_len) > self.max_positions() {
            return Err(InferenceError::spec(format!(
                "max_len {} exceeds the model's {} positions",
                pipeline.max_len,
                self.max_positions()
            )));
        }
        Ok(())
    }

    /// Token ids of each input as the pipeline feeds them to the model: `[CLS] … [SEP]`,
    /// truncated to `max_len` tokens.
    pub fn tokenize<S: AsRef<str>>(
        &self,
        inputs: &[S],
        max_len: u16,
    ) -> Result<Vec<Vec<u32>>, InferenceError> {
        let tok_err = |reason: String| InferenceError::Tokenizer {
            path: self.tokenizer_path.clone(),
            reason,
        };
        let mut tokenizer = self.tokenizer.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: usize::from(max_len),
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| tok_err(format!("cannot truncate to {max_len} tokens: {e}")))?;
        inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let encoding = tokenizer
                    .encode(input.as_ref(), true)
                    .map_err(|e| tok_err(format!("cannot tokenise input {i}: {e}")))?;
                let ids = encoding.get_ids().to_vec();
                if ids.is_empty() || ids.len() > usize::from(max_len) {
                    return Err(tok_err(format!(
                        "input {i} gave {} tokens, outside 1..={max_len}",
                        ids.len()
                    )));
                }
                if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.config.vocab_size) {
                    return Err(tok_err(format!(
                        "token id {bad} is outside the model's vocabulary of {}; tokenizer and model do not belong together",
                        self.config.vocab_size
                    )));
                }
                Ok(ids)
            })
            .collect()
    }

    /// Runs a `[batch, seq]` batch; returns the last hidden state as `[batch][seq·dim]`.
    fn forward(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<Vec<Vec<f32>>, InferenceError> {
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let input_ids = Tensor::from_slice(ids, (batch, seq), &self.device)?;
            let token_type_ids = input_ids.zeros_like()?;
            let attention_mask = Tensor::from_slice(mask, (batch, seq), &self.device)?;
            let hidden = self
                .model
                .forward(&input_ids, &token_type_ids, Some(&attention_mask))?;
            hidden
                .to_dtype(DType::F32)?
                .flatten_from(1)?
                .to_vec2::<f32>()
        };
        run().map_err(InferenceError::candle("running BERT"))
    }

    /// The canonical embeddings (f32, before quantisation): each input alone, batch 1,
    /// no padding; mean pooling; L2 normalisation.
    pub fn embed<S: AsRef<str>>(
        &self,
        inputs: &[S],
        pipeline: &EmbedPipeline,
    ) -> Result<Vec<Vec<f32>>, InferenceError> {
        self.check_pipeline(pipeline)?;
        let tokens = self.tokenize(inputs, pipeline.max_len)?;
        tokens
            .iter()
            .enumerate()
            .map(|(i, ids)| {
                let mask = vec![1u32; ids.len()];
                let hidden = self.forward(ids, &mask, 1, ids.len())?;
                let row = hidden
                    .first()
                    .ok_or_else(|| InferenceError::Internal("empty batch".into()))?;
                pool_and_normalize(row, &mask, self.dim(), i)
            })
            .collect()
    }

    /// A *non-canonical* honest variant: all inputs in one batch, padded with the
    /// config's `pad_token_id` to `pad_to` tokens (at least the longest input). Its
    /// bits differ from [`Self::embed`] (the kernels see another shape) but stay
    /// within the verifier's tolerance. Providers use [`Self::embed`]; this exists so
    /// tests and measurements can show that.
    pub fn embed_padded<S: AsRef<str>>(
        &self,
        inputs: &[S],
        pipeline: &EmbedPipeline,
        pad_to: usize,
    ) -> Result<Vec<Vec<f32>>, InferenceError> {
        self.check_pipeline(pipeline)?;
        let tokens = self.tokenize(inputs, pipeline.max_len)?;
        let longest = tokens.iter().map(Vec::len).max().unwrap_or(0);
        let seq = pad_to.max(longest);
        if seq > self.max_positions() {
            return Err(InferenceError::spec(format!(
                "pad_to {seq} exceeds the model's {} positions",
                self.max_positions()
            )));
        }
        let pad = u32::try_from(self.config.pad_token_id).unwrap_or(0);
        let mut ids = Vec::with_capacity(tokens.len() * seq);
        let mut mask = Vec::with_capacity(tokens.len() * seq);
        for t in &tokens {
            ids.extend_from_slice(t);
            ids.resize(ids.len() + seq - t.len(), pad);
            mask.extend(std::iter::repeat_n(1u32, t.len()));
            mask.resize(mask.len() + seq - t.len(), 0);
        }
        let hidden = self.forward(&ids, &mask, tokens.len(), seq)?;
        hidden
            .iter()
            .enumerate()
            .map(|(i, row)| pool_and_normalize(row, &mask[i * seq..(i + 1) * seq], self.dim(), i))
            .collect()
    }

    /// The header this model and `spec` give (n and dim from the spec and model).
    pub fn header(&self, spec: &EmbedSpec) -> Result<EmbedHeader, InferenceError> {
        let n = u32::try_from(spec.inputs.len())
            .map_err(|_| InferenceError::spec("too many inputs"))?;
        let dim = u16::try_from(self.dim())
            .map_err(|_| InferenceError::Internal("dim over u16".into()))?;
        if spec.model != self.files {
            return Err(InferenceError::Internal(
                "embedder loaded for other model files than the spec names".into(),
            ));
        }
        Ok(EmbedHeader {
            model_hash: self.files.weights,
            config_hash: self.files.config,
            tokenizer_hash: self.files.tokenizer,
            pooling: spec.pipeline.pooling,
            normalize: spec.pipeline.normalize,
            max_len: spec.pipeline.max_len,
            padding: spec.pipeline.padding,
            input_digest: spec.input_digest(),
            n,
            dim,
            scale_log2: SCALE_LOG2,
        })
    }

    /// The canonical result of an `embed` job.
    pub fn compute(&self, spec: &EmbedSpec) -> Result<EmbedResult, InferenceError> {
        spec.validate()?;
        let header = self.header(spec)?;
        let rows = self.embed(&spec.inputs, &spec.pipeline)?;
        Ok(encode(header, &rows))
    }
}

/// Builds a result from a header and f32 embeddings (quantising them).
pub fn encode(header: EmbedHeader, rows: &[Vec<f32>]) -> EmbedResult {
    let values = rows
        .iter()
        .flat_map(|r| r.iter().map(|&x| quantize(x)))
        .collect();
    EmbedResult { header, values }
}

/// Mean pooling over the mask, then L2 normalisation. `hidden` is `[seq·dim]`.
fn pool_and_normalize(
    hidden: &[f32],
    mask: &[u32],
    dim: usize,
    input: usize,
) -> Result<Vec<f32>, InferenceError> {
    let mut sum = vec![0f32; dim];
    let mut count = 0u32;
    for (token, &m) in hidden.chunks_exact(dim).zip(mask) {
        if m != 0 {
            count += 1;
            for (s, &x) in sum.iter_mut().zip(token) {
                *s += x;
            }
        }
    }
    let count = count.max(1) as f32;
    for s in &mut sum {
        *s /= count;
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for s in &mut sum {
        *s /= norm;
    }
    if sum.iter().any(|x| !x.is_finite()) {
        return Err(InferenceError::NonFinite { input });
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pooling_uses_the_mask_and_normalises() {
        // Two tokens of dim 2 plus one masked-out token that must not count.
        let hidden = [1.0, 0.0, 3.0, 0.0, 100.0, 100.0];
        let v = pool_and_normalize(&hidden, &[1, 1, 0], 2, 0).unwrap();
        assert_eq!(v, vec![1.0, 0.0]);
        let v = pool_and_normalize(&[3.0, 4.0], &[1], 2, 0).unwrap();
        assert_eq!(v, vec![0.6, 0.8]);
        let err = pool_and_normalize(&[f32::NAN, 0.0], &[1], 2, 7).unwrap_err();
        assert!(matches!(err, InferenceError::NonFinite { input: 7 }));
    }

    #[test]
    fn spec_json_defaults_and_refusals() {
        let h = Hash32([0xab; 32]).to_hex();
        let json = format!(
            r#"{{"model":{{"weights":"{h}","config":"{h}","tokenizer":"{h}"}},"inputs":["a","b"]}}"#
        );
        let spec: EmbedSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(spec.pipeline, EmbedPipeline::default());
        assert_eq!(spec.pipeline.max_len, 128);
        spec.validate().unwrap();

        let bad_pool = json.replace(r#""inputs""#, r#""pipeline":{"pooling":"cls"},"inputs""#);
        assert!(serde_json::from_str::<EmbedSpec>(&bad_pool).is_err());

        let mut empty = spec.clone();
        empty.inputs.clear();
        assert!(
            empty
                .validate()
                .unwrap_err()
                .to_string()
                .contains("no inputs")
        );
        let mut long = spec.clone();
        long.inputs = vec!["x".repeat(MAX_INPUT_BYTES + 1)];
        assert!(long.validate().unwrap_err().to_string().contains("bytes"));
        let mut many = spec.clone();
        many.inputs = vec![String::new(); MAX_INPUTS + 1];
        assert!(many.validate().is_err());
        let mut short = spec;
        short.pipeline.max_len = 2;
        assert!(
            short
                .validate()
                .unwrap_err()
                .to_string()
                .contains("max_len")
        );
    }
}
