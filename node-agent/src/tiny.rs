//! A tiny BERT generated deterministically, so tests need no download.
//!
//! [`write_tiny_bert`] writes `config.json`, `vocab.txt`, `tokenizer.json` and
//! `model.safetensors` into a directory. The same options give byte-identical files on
//! every machine: weights come from a fixed-seed xorshift64* generator turned into
//! floats with exact integer arithmetic, and both file writers sort their contents.
//! The weights are random (the embeddings mean nothing), but the architecture, tensor
//! names and tokenizer pipeline are those of all-MiniLM-L6-v2.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::embed::{BertFiles, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use crate::error::InferenceError;

/// Shape and seed of a tiny BERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TinyBert {
    /// Seed of the weight generator.
    pub seed: u64,
    /// `hidden_size` (embedding width).
    pub hidden: usize,
    /// `num_hidden_layers`.
    pub layers: usize,
    /// `num_attention_heads` (must divide `hidden`).
    pub heads: usize,
    /// `intermediate_size`.
    pub intermediate: usize,
    /// `max_position_embeddings`.
    pub max_positions: usize,
}

impl Default for TinyBert {
    fn default() -> Self {
        Self {
            seed: 0x6e74_7865_7363_726f, // "ntxescro"
            hidden: 32,
            layers: 2,
            heads: 4,
            intermediate: 64,
            max_positions: 512,
        }
    }
}

const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

const WORDS: &str = "the of and to in is was for on that with as by at it from he she they we you \
i this be are or an not his her their have has had were but which one all also after more first \
new two can who will would been there when time other its into only over than then some what so \
about up out no year years people city world work day made may most used like just do did does \
how many much very well good great small large big long little old young high low right left \
cat cats dog dogs bird fish house car road tree water fire sun moon star sky rain snow wind \
red blue green black white light dark fast slow hot cold happy sad man woman child children \
eat eats ate run runs ran see sees saw go goes went come came make makes take took give gave \
find found think know knew say said tell told ask asked play played love loved sleep sleeps \
compute computer model models node nodes job jobs chain block token tokens pay paid price \
result results hash verify check proof escrow data text sentence sentences embedding vector \
quick brown fox jumps lazy hello world test testing example";

/// The vocabulary: specials, single characters, `##` continuations, then words.
fn vocabulary() -> Vec<String> {
    let mut vocab: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    let chars: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    vocab.extend(chars.iter().map(|c| c.to_string()));
    vocab.extend(".,!?;:'\"()-/".chars().map(|c| c.to_string()));
    vocab.extend(chars.iter().map(|c| format!("##{c}")));
    let suffixes = ["ed", "ing", "er", "ly", "es"].map(|s| format!("##{s}"));
    for token in suffixes
        .into_iter()
        .chain(WORDS.split_whitespace().map(str::to_string))
    {
        if !vocab.contains(&token) {
            vocab.push(token);
        }
    }
    vocab
}

/// xorshift64* (Vigna): a fixed, portable sequence for a given seed (both tiny
/// models' weights come from it).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1) with 24 random bits: exact in f32, identical everywhere.
    pub(crate) fn symmetric(&mut self) -> f32 {
        let bits = (self.next_u64() >> 40) as i32; // 0 .. 2^24
        (bits - (1 << 23)) as f32 / (1 << 23) as f32
    }
    pub(crate) fn fill(&mut self, n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n).map(|_| offset + scale * self.symmetric()).collect()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InferenceError + '_ {
    move |source| InferenceError::ModelFileUnreadable {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a tiny BERT into `dir` (created if needed) and returns its file hashes.
pub fn write_tiny_bert(dir: &Path, opts: &TinyBert) -> Result<BertFiles, InferenceError> {
    if opts.heads == 0
        || !opts.hidden.is_multiple_of(opts.heads)
        || opts.layers == 0
        || opts.max_positions < 3
    {
        return Err(InferenceError::spec(format!(
            "invalid tiny BERT shape {opts:?}"
        )));
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let vocab = vocabulary();

    // vocab.txt, then the tokenizer built from it with the tokenizers crate.
    let vocab_path = dir.join("vocab.txt");
    let mut vocab_txt = vocab.join("\n");
    vocab_txt.push('\n');
    std::fs::write(&vocab_path, vocab_txt).map_err(io_err(&vocab_path))?;
    let tokenizer_path = dir.join(TOKENIZER_FILE);
    let tok_err = |reason: String| InferenceError::Tokenizer {
        path: tokenizer_path.clone(),
        reason,
    };
    let vocab_str = vocab_path
        .to_str()
        .ok_or_else(|| tok_err("model directory path is not UTF-8".into()))?;
    let wordpiece = WordPiece::from_file(vocab_str)
        .unk_token("[UNK]".into())
        .continuing_subword_prefix("##".into())
        .max_input_chars_per_word(100)
        .build()
        .map_err(|e| tok_err(format!("building WordPiece: {e}")))?;
    let id = |t: &str| vocab.iter().position(|v| v == t).unwrap_or(0) as u32;
    let mut tokenizer = Tokenizer::new(wordpiece);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), id("[SEP]")),
            ("[CLS]".into(), id("[CLS]")),
        )))
        .with_decoder(Some(WordPieceDecoder::default()));
    let specials: Vec<AddedToken> = SPECIALS
        .iter()
        .map(|s| AddedToken::from(*s, true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    tokenizer
        .save(&tokenizer_path, true)
        .map_err(|e| tok_err(format!("saving: {e}")))?;

    // config.json in the shape candle-transformers' bert::Config reads.
    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab.len(),
        "hidden_size": opts.hidden,
        "num_hidden_layers": opts.layers,
        "num_attention_heads": opts.heads,
        "intermediate_size": opts.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": opts.max_positions,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": id("[PAD]"),
        "position_embedding_type": "absolute",
        "use_cache": true,
    });
    let config_path = dir.join(CONFIG_FILE);
    let config_text = serde_json::to_string_pretty(&config)
        .map_err(|e| InferenceError::Internal(format!("serialising config: {e}")))?;
    std::fs::write(&config_path, config_text).map_err(io_err(&config_path))?;

    // Weights, generated in a fixed order. Linear weights are [out, in].
    let mut rng = Rng::new(opts.seed);
    let (h, m) = (opts.hidden, opts.intermediate);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
        let n = shape.iter().product();
        let data = rng.fill(n, scale, offset);
        tensors.push((name, shape, data));
    };
    let linear_scale = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
    add(
        "embeddings.word_embeddings.weight".into(),
        vec![vocab.len(), h],
        1.0,
        0.0,
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        vec![opts.max_positions, h],
        0.5,
        0.0,
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        vec![2, h],
        0.1,
        0.0,
    );
    add("embeddings.LayerNorm.weight".into(), vec![h], 0.2, 1.0);
    add("embeddings.LayerNorm.bias".into(), vec![h], 0.1, 0.0);
    for l in 0..opts.layers {
        let p = format!("encoder.layer.{l}");
        for part in ["query", "key", "value"] {
            add(
                format!("{p}.attention.self.{part}.weight"),
                vec![h, h],
                linear_scale(h),
                0.0,
            );
            add(format!("{p}.attention.self.{part}.bias"), vec![h], 0.1, 0.0);
        }
        add(
            format!("{p}.attention.output.dense.weight"),
            vec![h, h],
            linear_scale(h),
            0.0,
        );
        add(
            format!("{p}.attention.output.dense.bias"),
            vec![h],
            0.1,
            0.0,
        );
        add(
            format!("{p}.attention.output.LayerNorm.weight"),
            vec![h],
            0.2,
            1.0,
        );
        add(
            format!("{p}.attention.output.LayerNorm.bias"),
            vec![h],
            0.1,
            0.0,
        );
        add(
            format!("{p}.intermediate.dense.weight"),
            vec![m, h],
            linear_scale(h),
            0.0,
        );
        add(format!("{p}.intermediate.dense.bias"), vec![m], 0.1, 0.0);
        add(
            format!("{p}.output.dense.weight"),
            vec![h, m],
            linear_scale(m),
            0.0,
        );
        add(format!("{p}.output.dense.bias"), vec![h], 0.1, 0.0);
        add(format!("{p}.output.LayerNorm.weight"), vec![h], 0.2, 1.0);
        add(format!("{p}.output.LayerNorm.bias"), vec![h], 0.1, 0.0);
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    let map = tensors
        .into_iter()
        .map(|(name, shape, data)| Ok((name, Tensor::from_vec(data, shape, &Device::Cpu)?)))
        .collect::<candle_core::Result<HashMap<String, Tensor>>>()
        .map_err(InferenceError::candle("building tiny BERT tensors"))?;
    // safetensors sorts tensors by dtype and name, so the file does not depend on the
    // map's iteration order.
    candle_core::safetensors::save(&map, &weights_path).map_err(InferenceError::candle(
        format!("writing {}", weights_path.display()),
    ))?;

    BertFiles::of_dir(dir)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rng_is_fixed() {
        let mut r = Rng::new(1);
        let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut r = Rng::new(1);
        assert_eq!(first, (0..3).map(|_| r.next_u64()).collect::<Vec<_>>());
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            let x = r.symmetric();
            assert!((-1.0..1.0).contains(&x));
        }
    }

    #[test]
    fn vocabulary_has_specials_first_and_no_duplicates() {
        let v = vocabulary();
        assert_eq!(&v[..5], &SPECIALS);
        let mut sorted = v.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), v.len());
        assert!(v.len() > 200 && v.len() < 1000, "{}", v.len());
    }

    #[test]
    fn generation_is_byte_identical_and_seed_dependent() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        let fa = write_tiny_bert(a.path(), &TinyBert::default()).unwrap();
        let fb = write_tiny_bert(b.path(), &TinyBert::default()).unwrap();
        assert_eq!(fa, fb);
        let other = TinyBert {
            seed: 1,
            ..TinyBert::default()
        };
        let fc = write_tiny_bert(c.path(), &other).unwrap();
        assert_ne!(fa.weights, fc.weights);
        assert_eq!(fa.tokenizer, fc.tokenizer);
        assert_eq!(fa.config, fc.config);
    }

    #[test]
    fn default_tiny_model_files_are_pinned() {
        // The generator uses integer arithmetic and sorted writers only, so these hold
        // on every platform; a change here changes every tiny-model result.
        let dir = tempfile::tempdir().unwrap();
        let files = write_tiny_bert(dir.path(), &TinyBert::default()).unwrap();
        assert_eq!(
            files.weights.to_hex(),
            "b0e4da5b45224fdaff6bb589ea3a48a2cceadc96afbc551f8edd2941ad4db418"
        );
        assert_eq!(
            files.config.to_hex(),
            "3644278717732b077fcba99c94c958efbc8ad61e567d01271239fb93007f327e"
        );
        assert_eq!(
            files.tokenizer.to_hex(),
            "89b3f23165ccff4e79b4ba8d15c6fc36aeb80c1973d9ad02616a1e77d7cd6e5c"
        );
    }

    #[test]
    fn tokenizer_behaves_like_bert() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_bert(dir.path(), &TinyBert::default()).unwrap();
        let tok = Tokenizer::from_file(dir.path().join(TOKENIZER_FILE)).unwrap();
        let enc = tok.encode("The Quick brown FOX jumps!", true).unwrap();
        assert_eq!(
            enc.get_tokens(),
            &[
                "[CLS]", "the", "quick", "brown", "fox", "jumps", "!", "[SEP]"
            ]
        );
        // Unknown words fall back to word pieces, never to nothing.
        let enc = tok.encode("zebra", true).unwrap();
        assert_eq!(
            enc.get_tokens(),
            &["[CLS]", "z", "##e", "##b", "##r", "##a", "[SEP]"]
        );
        let enc = tok.encode("ü€", true).unwrap();
        assert!(
            enc.get_tokens().contains(&"[UNK]".to_string()),
            "{:?}",
            enc.get_tokens()
        );
    }
}
