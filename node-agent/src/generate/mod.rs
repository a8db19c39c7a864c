//! Task `generate`: chat completion with a llama-family GGUF model, and its verifier.
//!
//! - `spec`: the job spec ([`GenerateSpec`], [`Decoding`], [`Message`]).
//! - `gguf`: hyper-parameters, tokenizer (built from the GGUF's vocabulary and merges),
//!   chat template and stop tokens, all from the one file.
//! - `llama`: the decoder over candle's quantized matmuls, KV cache outside the model.
//! - `rule`: the decoding rule (greedy; seeded Gumbel-max nucleus sampling) and its
//!   check with tolerance ε.
//! - `result`: the canonical result bytes.
//! - `tiny`: a deterministic tiny llama GGUF for tests.
//!
//! The provider generates token by token with a KV cache; the verifier runs **one**
//! forward pass over prompt + generated tokens (teacher forcing) and checks every
//! generated token against the rule with [`LOGIT_TOLERANCE`].

pub(crate) mod gguf;
pub(crate) mod llama;
pub(crate) mod result;
pub(crate) mod rule;
pub(crate) mod spec;
pub(crate) mod tiny;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::gguf_file;
use tokenizers::Tokenizer;

use crate::error::InferenceError;
use crate::hash::Hash32;
use crate::model::{ModelFile, verify_files};
use crate::task::Progress;
use crate::verify::{Acceptance, HeaderField, Rejection, Verdict};

use self::gguf::{ChatTemplate, read_meta};
use self::llama::{Llama, LlamaConfig};
use self::result::{GenerateHeader, GenerateResult, StopReason};
use self::rule::Finding;
use self::spec::{GGUF_FILE, GenerateSpec, token_digest};

/// ε: the largest difference of two logits at one position that the verifier forgives
/// (each logit of an honest provider may differ from the verifier's by up to ε/2).
/// Chosen from measurements on SmolLM2-135M-Instruct Q4_1; see `node-agent/README.md`.
pub const LOGIT_TOLERANCE: f64 = 3.0;

/// A provider's run: the result and, when asked for, the logits of every step.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The canonical result.
    pub result: GenerateResult,
    /// The logits each token was chosen from (empty unless asked for).
    pub logits: Vec<Vec<f32>>,
}

/// A loaded GGUF chat model.
pub struct GenerateModel {
    llama: Llama,
    /// The verifier's copy with dense F32 weights, made on the first check.
    dense: std::sync::OnceLock<Llama>,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    stop_tokens: Vec<u32>,
    model_hash: Hash32,
    path: PathBuf,
}

impl std::fmt::Debug for GenerateModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateModel")
            .field("model_hash", &self.model_hash)
            .field("config", self.llama.config())
            .field("stop_tokens", &self.stop_tokens)
            .finish()
    }
}

fn candle(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> InferenceError {
    InferenceError::candle(context)
}

impl GenerateModel {
    /// Loads `dir/model.gguf` after checking that its blake2b-256 is `model_hash`.
    pub fn load(dir: &Path, model_hash: Hash32, device: &Device) -> Result<Self, InferenceError> {
        verify_files(
            dir,
            &[ModelFile {
                name: GGUF_FILE,
                expected: model_hash,
            }],
        )?;
        Self::load_verified(dir, model_hash, device)
    }

    /// Loads a file whose hash the caller has just checked.
    pub(crate) fn load_verified(
        dir: &Path,
        model_hash: Hash32,
        device: &Device,
    ) -> Result<Self, InferenceError> {
        let path = dir.join(GGUF_FILE);
        let file = File::open(&path).map_err(|source| InferenceError::ModelFileUnreadable {
            path: path.clone(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader)
            .map_err(candle(format!("reading GGUF {}", path.display())))?;
        let meta = read_meta(&content, &path)?;
        let llama = Llama::load(&content, &mut reader, meta.config, device)
            .map_err(candle(format!("loading weights from {}", path.display())))?;
        Ok(Self {
            llama,
            dense: std::sync::OnceLock::new(),
            tokenizer: meta.tokenizer,
            template: meta.template,
            stop_tokens: meta.stop_tokens,
            model_hash,
            path,
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        self.llama.config()
    }

    /// blake2b-256 of the GGUF file.
    pub fn model_hash(&self) -> Hash32 {
        self.model_hash
    }

    /// Token ids that end generation.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop_tokens
    }

    /// The prompt text: the chat template applied to the messages.
    pub fn prompt_text(&self, spec: &GenerateSpec) -> String {
        self.template.render(&spec.messages)
    }

    /// The prompt's token ids.
    pub fn prompt_tokens(&self, spec: &GenerateSpec) -> Result<Vec<u32>, InferenceError> {
        let text = self.prompt_text(spec);
        let enc = self
            .tokenizer
            .encode(text.as_str(), false)
            .map_err(|e| self.tok_err(format!("cannot tokenise the prompt: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of a plain text (no template, specials recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, InferenceError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| self.tok_err(format!("cannot tokenise: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of generated ids: decoded, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, InferenceError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| self.tok_err(format!("cannot decode generated ids: {e}")))
    }

    fn tok_err(&self, reason: String) -> InferenceError {
        InferenceError::Tokenizer {
            path: self.path.clone(),
            reason,
        }
    }

    /// Refuses a job whose prompt plus token limit does not fit the context.
    fn check_fits(&self, spec: &GenerateSpec, prompt: &[u32]) -> Result<(), InferenceError> {
        let need = prompt.len() + spec.max_new_tokens as usize;
        if prompt.is_empty() || need > self.config().context {
            return Err(InferenceError::spec(format!(
                "prompt of {} tokens plus max_new_tokens {} exceeds the {}-token context",
                prompt.len(),
                spec.max_new_tokens,
                self.config().context
            )));
        }
        Ok(())
    }

    /// The header an honest result of `spec` carries, for `n` tokens stopped by `stop`.
    pub fn header(
        &self,
        spec: &GenerateSpec,
        prompt: &[u32],
        stop: StopReason,
        n: u32,
    ) -> Result<GenerateHeader, InferenceError> {
        if spec.model != self.model_hash {
            return Err(InferenceError::Internal(
                "generate model loaded for another file than the spec names".into(),
            ));
        }
        Ok(GenerateHeader {
            model_hash: self.model_hash,
            decoding: spec.decoding,
            max_new_tokens: spec.max_new_tokens,
            messages_digest: spec.messages_digest(),
            prompt_tokens: u32::try_from(prompt.len())
                .map_err(|_| InferenceError::spec("prompt too long"))?,
            prompt_digest: token_digest(prompt),
            stop,
            n,
        })
    }

    /// The canonical result of `spec` (provider side), reporting tokens so far.
    pub fn generate(
        &self,
        spec: &GenerateSpec,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<GenerateResult, InferenceError> {
        let prompt = self.prompt_tokens(spec)?;
        let decoding = spec.decoding;
        let mut choose = |logits: &[f32], i: u32| rule::choose(&decoding, logits, i);
        Ok(self
            .generate_custom(spec, &prompt, &mut choose, progress, false)?
            .result)
    }

    /// Generation with any context and any token choice, under the header an honest
    /// provider of `spec` writes. The provider uses [`Self::generate`]; this exists for
    /// measurements (`keep_logits`) and for tests that play a cheating provider.
    pub fn generate_custom(
        &self,
        spec: &GenerateSpec,
        context: &[u32],
        choose: &mut dyn FnMut(&[f32], u32) -> u32,
        progress: &mut dyn FnMut(Progress),
        keep_logits: bool,
    ) -> Result<Generation, InferenceError> {
        spec.validate()?;
        let prompt = self.prompt_tokens(spec)?;
        self.check_fits(spec, &prompt)?;
        if context.is_empty()
            || context.len() + spec.max_new_tokens as usize > self.config().context
        {
            return Err(InferenceError::spec("context does not fit the model"));
        }
        let total = u64::from(spec.max_new_tokens);
        progress(Progress {
            done: 0,
            total,
            unit: "tokens",
        });
        let mut cache = self.llama.new_cache();
        let mut logits = self
            .llama
            .forward(context, &mut cache, 1)
            .map_err(candle("running the prompt"))?;
        let mut tokens = Vec::with_capacity(spec.max_new_tokens as usize);
        let mut kept = Vec::new();
        let stop = loop {
            let row: Vec<f32> = logits
                .squeeze(0)
                .and_then(|t| t.to_vec1())
                .map_err(candle("reading logits"))?;
            if row.iter().any(|z| !z.is_finite()) {
                return Err(InferenceError::NonFinite {
                    input: tokens.len(),
                });
            }
            let i = tokens.len() as u32;
            let token = choose(&row, i);
            if keep_logits {
                kept.push(row);
            }
            tokens.push(token);
            progress(Progress {
                done: tokens.len() as u64,
                total,
                unit: "tokens",
            });
            if self.stop_tokens.contains(&token) {
                break StopReason::EndOfTurn;
            }
            if tokens.len() as u32 == spec.max_new_tokens {
                break StopReason::MaxTokens;
            }
            logits = self
                .llama
                .forward(&[token], &mut cache, 1)
                .map_err(candle("generating a token"))?;
        };
        let header = self.header(spec, &prompt, stop, tokens.len() as u32)?;
        let text = self.decode(&tokens)?;
        Ok(Generation {
            result: GenerateResult {
                header,
                tokens,
                text,
            },
            logits: kept,
        })
    }

    /// The logits at every generated position from one forward pass over
    /// `prompt ++ tokens[..n−1]` (teacher forcing): row `i` is what token `i` was
    /// chosen from.
    ///
    /// `dense`: run the verifier's F32 copy of the weights (what [`Self::check`] does)
    /// instead of the quantised kernels the provider runs.
    pub fn teacher_forced_logits(
        &self,
        prompt: &[u32],
        tokens: &[u32],
        dense: bool,
    ) -> Result<Vec<Vec<f32>>, InferenceError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let llama = if dense { self.dense()? } else { &self.llama };
        let mut seq = prompt.to_vec();
        seq.extend_from_slice(&tokens[..tokens.len() - 1]);
        let mut cache = llama.new_cache();
        llama
            .forward(&seq, &mut cache, tokens.len())
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(candle("teacher-forced forward pass"))
    }

    fn dense(&self) -> Result<&Llama, InferenceError> {
        if let Some(d) = self.dense.get() {
            return Ok(d);
        }
        let d = self
            .llama
            .dequantized()
            .map_err(candle("dequantising the weights for verification"))?;
        Ok(self.dense.get_or_init(|| d))
    }

    /// Verifier side: steps 2–6 of the rule for `provider_bytes` (the engine has
    /// compared their hash with the chain).
    pub fn check(
        &self,
        spec: &GenerateSpec,
        provider_bytes: &[u8],
        eps: f64,
    ) -> Result<Verdict, InferenceError> {
        let provider = match GenerateResult::parse(provider_bytes) {
            Ok(r) => r,
            Err(e) => return Ok(Verdict::Reject(Rejection::Malformed(e))),
        };
        let prompt = self.prompt_tokens(spec)?;
        self.check_fits(spec, &prompt)?;
        let h = &provider.header;
        let expected = self.header(spec, &prompt, h.stop, h.n)?;
        if let Some(r) = compare_headers(&expected, h) {
            return Ok(Verdict::Reject(r));
        }
        if let Some(reason) = self.stop_rule_violation(spec, &provider) {
            return Ok(Verdict::Reject(Rejection::StopRule { reason }));
        }
        let text = self.decode(&provider.tokens)?;
        if text != provider.text {
            let at = text
                .bytes()
                .zip(provider.text.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            return Ok(Verdict::Reject(Rejection::TextMismatch {
                at_byte: at as u64,
            }));
        }
        let logits = self.teacher_forced_logits(&prompt, &provider.tokens, true)?;
        let mut max_gap = 0f64;
        for (i, (row, &token)) in logits.iter().zip(&provider.tokens).enumerate() {
            if row.iter().any(|z| !z.is_finite()) {
                return Err(InferenceError::NonFinite { input: i });
            }
            match rule::check(&spec.decoding, row, i as u32, token, eps) {
                Finding::Consistent { gap } => max_gap = max_gap.max(gap),
                other => {
                    return Ok(Verdict::Reject(Rejection::OffRule {
                        position: i as u32,
                        token,
                        reason: describe(&other),
                    }));
                }
            }
        }
        Ok(Verdict::Accept(Acceptance::RuleConsistent {
            tokens: provider.header.n,
            max_gap_micro: (max_gap * 1e6).round().clamp(0.0, f64::from(u32::MAX)) as u32,
        }))
    }

    fn stop_rule_violation(&self, spec: &GenerateSpec, r: &GenerateResult) -> Option<String> {
        let n = r.tokens.len();
        let vocab = self.config().vocab;
        if let Some(&bad) = r.tokens.iter().find(|&&t| t as usize >= vocab) {
            return Some(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            ));
        }
        if n > spec.max_new_tokens as usize {
            return Some(format!(
                "{n} tokens exceed max_new_tokens {}",
                spec.max_new_tokens
            ));
        }
        if let Some(i) = r.tokens[..n.saturating_sub(1)]
            .iter()
            .position(|t| self.stop_tokens.contains(t))
        {
            return Some(format!(
                "an end-of-turn token at position {i} is followed by more tokens"
            ));
        }
        let last_stops = r
            .tokens
            .last()
            .is_some_and(|t| self.stop_tokens.contains(t));
        match r.header.stop {
            StopReason::EndOfTurn if !last_stops => {
                Some("stop reason is end_of_turn but the last token is not one".into())
            }
            StopReason::MaxTokens if last_stops => {
                Some("stop reason is max_tokens but the last token ends the turn".into())
            }
            StopReason::MaxTokens if n != spec.max_new_tokens as usize => Some(format!(
                "stop reason is max_tokens after {n} of {} tokens",
                spec.max_new_tokens
            )),
            _ => None,
        }
    }
}

fn describe(f: &Finding) -> String {
    match f {
        Finding::Consistent { gap } => format!("consistent (gap {gap:.4})"),
        Finding::BelowMax { gap, best } => {
            format!("greedy: logit {gap:.4} below the maximum (token {best}), over ε")
        }
        Finding::OutsideNucleus {
            mass_above,
            provider_at_least,
        } => format!(
            "outside the top-p set: tokens surely above it hold {mass_above:.4} of the mass \
             (≥ {provider_at_least:.4} for any honest provider)"
        ),
        Finding::LostDraw { winner, gap } => {
            format!("the seeded draw picks token {winner} by {gap:.4} logits, over ε")
        }
    }
}

/// Compares a provider's header with the one the job requires (stop reason and n come
/// from the provider); the first differing field is named.
pub fn compare_headers(expected: &GenerateHeader, found: &GenerateHeader) -> Option<Rejection> {
    fn diff<T: PartialEq + std::fmt::Display>(
        field: HeaderField,
        e: &T,
        f: &T,
    ) -> Option<Rejection> {
        (e != f).then(|| Rejection::HeaderMismatch {
            field,
            expected: e.to_string(),
            found: f.to_string(),
        })
    }
    let (et, ep, es) = expected.decoding.params();
    let (ft, fp, fs) = found.decoding.params();
    diff(
        HeaderField::ModelHash,
        &expected.model_hash,
        &found.model_hash,
    )
    .or_else(|| {
        diff(
            HeaderField::Decoding,
            &expected.decoding.mode_byte(),
            &found.decoding.mode_byte(),
        )
    })
    .or_else(|| diff(HeaderField::TemperatureMilli, &et, &ft))
    .or_else(|| diff(HeaderField::TopPMilli, &ep, &fp))
    .or_else(|| diff(HeaderField::Seed, &es, &fs))
    .or_else(|| {
        diff(
            HeaderField::MaxNewTokens,
            &expected.max_new_tokens,
            &found.max_new_tokens,
        )
    })
    .or_else(|| {
        diff(
            HeaderField::MessagesDigest,
            &expected.messages_digest,
            &found.messages_digest,
        )
    })
    .or_else(|| {
        diff(
            HeaderField::PromptTokens,
            &expected.prompt_tokens,
            &found.prompt_tokens,
        )
    })
    .or_else(|| {
        diff(
            HeaderField::PromptDigest,
            &expected.prompt_digest,
            &found.prompt_digest,
        )
    })
}
