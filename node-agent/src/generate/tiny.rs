//! A tiny llama GGUF generated deterministically, so tests need no download.
//!
//! [`write_tiny_llama`] writes `model.gguf` with the structure of SmolLM2-135M-Instruct's
//! file: `llama` architecture, Q4_1 attention and MLP weights, a Q8_0 token embedding
//! tied to the output, F32 norms, a byte-level BPE vocabulary (the three ChatML
//! specials first, then the 256 byte symbols, then merges of a few hundred English
//! words), the `smollm` pre-tokenizer and SmolLM2's chat template. The weights come
//! from a fixed-seed xorshift64* turned into floats with exact integer arithmetic, so
//! the same options give the same bytes everywhere. The weights are random: the text
//! means nothing, but every code path of the real model runs.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::error::InferenceError;
use crate::generate::gguf::SMOLLM2_TEMPLATE;
use crate::generate::spec::GGUF_FILE;
use crate::hash::Hash32;
use crate::tiny::Rng;

/// Shape and seed of a tiny llama.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TinyLlama {
    /// Seed of the weight generator.
    pub seed: u64,
    /// Embedding width (a multiple of 32).
    pub dim: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// MLP width (a multiple of 32).
    pub ffn: usize,
    /// Context length written to the metadata.
    pub context: u32,
    /// Scale of the token embedding (and so of the logits).
    pub embed_scale_milli: u32,
}

impl Default for TinyLlama {
    fn default() -> Self {
        Self {
            seed: 0x6e74_7867_656e_7431, // "ntxgent1"
            dim: 64,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            ffn: 128,
            context: 1024,
            embed_scale_milli: 1500,
        }
    }
}

const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

const WORDS: &str = "the of and to in is was for on that with as by at it from he she they we you \
i this be are or an not his her their have has had were but which one all also after more first \
new two can who will would been there when time other its into only over than then some what so \
about up out no year years people city world work day made may most used like just do did does \
how many much very well good great small large big long little old young high low right left \
cat dog bird fish house car road tree water fire sun moon star sky rain snow wind red blue green \
hello world assistant user system help helpful answer question please thank thanks sure here \
compute model node job chain block token pay price result hash verify check proof escrow data \
text sentence quick brown fox jumps lazy test example capital france paris write poem story \
tell me about explain why because what's it's don't";

/// GPT-2's byte-to-symbol map: printable bytes map to themselves, the rest to U+0100….
fn byte_symbols() -> Vec<char> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let mut next = 256u32;
    (0u32..256)
        .map(|b| {
            let code = if printable(b) {
                b
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(code).unwrap_or('?')
        })
        .collect()
}

/// The vocabulary and merges: specials, byte symbols, then left-to-right merges of each
/// word with and without the leading-space symbol `Ġ`.
fn vocabulary() -> (Vec<String>, Vec<String>) {
    let symbols = byte_symbols();
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    tokens.extend(symbols.iter().map(char::to_string));
    let mut known: std::collections::HashSet<String> = tokens.iter().cloned().collect();
    let mut merges = Vec::new();
    let space = symbols[usize::from(b' ')];
    for word in WORDS.split_whitespace() {
        let plain: Vec<char> = word.bytes().map(|b| symbols[usize::from(b)]).collect();
        let spaced: Vec<char> = std::iter::once(space)
            .chain(plain.iter().copied())
            .collect();
        for chars in [plain, spaced] {
            let mut left = chars[0].to_string();
            for &c in &chars[1..] {
                let merged = format!("{left}{c}");
                if known.insert(merged.clone()) {
                    merges.push(format!("{left} {c}"));
                    tokens.push(merged.clone());
                }
                left = merged;
            }
        }
    }
    (tokens, merges)
}

impl Rng {
    /// A tensor of `shape` with values `offset + scale · u`, `u` uniform in [-1, 1).
    fn tensor(&mut self, shape: &[usize], scale: f32, offset: f32) -> candle_core::Result<Tensor> {
        let n = shape.iter().product();
        Tensor::from_vec(self.fill(n, scale, offset), shape, &Device::Cpu)
    }
}

/// Writes `dir/model.gguf` and returns its blake2b-256 (the spec's `model`).
pub fn write_tiny_llama(dir: &Path, opts: &TinyLlama) -> Result<Hash32, InferenceError> {
    if !opts.dim.is_multiple_of(32)
        || !opts.ffn.is_multiple_of(32)
        || opts.heads == 0
        || opts.kv_heads == 0
        || !opts.dim.is_multiple_of(opts.heads)
        || !opts.heads.is_multiple_of(opts.kv_heads)
    {
        return Err(InferenceError::Internal(format!(
            "tiny llama shape {opts:?} does not fit the quantised blocks"
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| InferenceError::ModelFileUnreadable {
        path: dir.to_path_buf(),
        source,
    })?;
    type Parts = (Vec<(String, Value)>, Vec<(String, QTensor)>);
    let build = || -> candle_core::Result<Parts> {
        let (tokens, merges) = vocabulary();
        let head_dim = opts.dim / opts.heads;
        let kv_dim = head_dim * opts.kv_heads;
        let u32v = |v: usize| Value::U32(v as u32);
        let str_array =
            |xs: &[String]| Value::Array(xs.iter().cloned().map(Value::String).collect());
        let types: Vec<Value> = (0..tokens.len())
            .map(|i| Value::I32(if i < SPECIALS.len() { 3 } else { 1 }))
            .collect();
        let metadata: Vec<(String, Value)> = vec![
            ("general.architecture".into(), Value::String("llama".into())),
            (
                "general.name".into(),
                Value::String("ntx tiny llama".into()),
            ),
            ("llama.block_count".into(), u32v(opts.layers)),
            ("llama.context_length".into(), Value::U32(opts.context)),
            ("llama.embedding_length".into(), u32v(opts.dim)),
            ("llama.feed_forward_length".into(), u32v(opts.ffn)),
            ("llama.attention.head_count".into(), u32v(opts.heads)),
            ("llama.attention.head_count_kv".into(), u32v(opts.kv_heads)),
            ("llama.rope.freq_base".into(), Value::F32(10_000.0)),
            (
                "llama.attention.layer_norm_rms_epsilon".into(),
                Value::F32(1e-5),
            ),
            ("llama.rope.dimension_count".into(), u32v(head_dim)),
            ("llama.vocab_size".into(), u32v(tokens.len())),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
            ("tokenizer.ggml.tokens".into(), str_array(&tokens)),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
            ("tokenizer.ggml.merges".into(), str_array(&merges)),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
            ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
            ("tokenizer.ggml.padding_token_id".into(), Value::U32(2)),
            (
                "tokenizer.chat_template".into(),
                Value::String(SMOLLM2_TEMPLATE.into()),
            ),
        ];
        let mut rng = Rng::new(opts.seed);
        let mut tensors: Vec<(String, QTensor)> = Vec::new();
        let embed_scale = opts.embed_scale_milli as f32 / 1000.0;
        let embed = rng.tensor(&[tokens.len(), opts.dim], embed_scale, 0.0)?;
        tensors.push((
            "token_embd.weight".into(),
            QTensor::quantize(&embed, GgmlDType::Q8_0)?,
        ));
        let norm = |rng: &mut Rng| -> candle_core::Result<QTensor> {
            QTensor::quantize(&rng.tensor(&[opts.dim], 0.2, 1.0)?, GgmlDType::F32)
        };
        tensors.push(("output_norm.weight".into(), norm(&mut rng)?));
        for l in 0..opts.layers {
            let mut linear = |name: &str, out: usize, inp: usize| -> candle_core::Result<()> {
                // Attention values and output are scaled up so that the context, not only
                // the current token, moves the logits (as in a trained model).
                let gain = if matches!(name, "attn_v" | "attn_output") {
                    3.0
                } else {
                    1.0
                };
                let w = rng.tensor(&[out, inp], gain / (inp as f32).sqrt(), 0.0)?;
                tensors.push((
                    format!("blk.{l}.{name}.weight"),
                    QTensor::quantize(&w, GgmlDType::Q4_1)?,
                ));
                Ok(())
            };
            linear("attn_q", opts.dim, opts.dim)?;
            linear("attn_k", kv_dim, opts.dim)?;
            linear("attn_v", kv_dim, opts.dim)?;
            linear("attn_output", opts.dim, opts.dim)?;
            linear("ffn_gate", opts.ffn, opts.dim)?;
            linear("ffn_up", opts.ffn, opts.dim)?;
            linear("ffn_down", opts.dim, opts.ffn)?;
            tensors.push((format!("blk.{l}.attn_norm.weight"), norm(&mut rng)?));
            tensors.push((format!("blk.{l}.ffn_norm.weight"), norm(&mut rng)?));
        }
        Ok((metadata, tensors))
    };
    let (metadata, tensors) = build().map_err(InferenceError::candle("building the tiny llama"))?;
    let path = dir.join(GGUF_FILE);
    let io_err = |source| InferenceError::ModelFileUnreadable {
        path: path.clone(),
        source,
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io_err)?);
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut file, &md, &ts).map_err(InferenceError::candle(format!(
        "writing {}",
        path.display()
    )))?;
    std::io::Write::flush(&mut file).map_err(io_err)?;
    drop(file);
    Hash32::of_file(&path).map_err(io_err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn vocabulary_is_consistent() {
        let (tokens, merges) = vocabulary();
        assert_eq!(&tokens[..3], &SPECIALS);
        assert_eq!(tokens.len(), 3 + 256 + merges.len());
        let set: std::collections::HashSet<&String> = tokens.iter().collect();
        assert_eq!(set.len(), tokens.len());
        for m in &merges {
            let (a, b) = m.split_once(' ').unwrap();
            assert!(
                set.contains(&a.to_string()) && set.contains(&b.to_string()),
                "{m}"
            );
        }
        let symbols = byte_symbols();
        assert_eq!(symbols[usize::from(b' ')], 'Ġ');
        assert_eq!(symbols[usize::from(b'\n')], 'Ċ');
        assert_eq!(symbols[usize::from(b'a')], 'a');
    }

    #[test]
    fn generation_is_byte_identical_and_seed_dependent() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let ha = write_tiny_llama(a.path(), &TinyLlama::default()).unwrap();
        let hb = write_tiny_llama(b.path(), &TinyLlama::default()).unwrap();
        assert_eq!(ha, hb);
        let other = TinyLlama {
            seed: 1,
            ..TinyLlama::default()
        };
        assert_ne!(write_tiny_llama(c.path(), &other).unwrap(), ha);
    }
}
