//! Everything the agent reads from the one GGUF file: hyper-parameters, the tokenizer
//! (built with the tokenizers crate from the vocabulary and merges the file carries),
//! the chat template and the end-of-turn tokens.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::InferenceError;
use crate::generate::llama::LlamaConfig;
use crate::generate::spec::{Message, Role};

/// Longest sequence the agent runs, whatever the model's own context length.
pub const MAX_CONTEXT: usize = 4096;

/// SmolLM2-Instruct's chat template (ChatML with a default system prompt), as its GGUF
/// metadata carries it.
pub const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Plain ChatML (no default system prompt).
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A chat template the agent implements. The GGUF's `tokenizer.chat_template` must be
/// byte-for-byte one of the known Jinja sources; the agent does not run Jinja.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then
    /// `<|im_start|>assistant\n`; when the first message is not a system message, a
    /// system message with `default_system` comes first (if any).
    ChatMl {
        /// The template's default system prompt.
        default_system: Option<String>,
    },
}

impl ChatTemplate {
    /// The template for a GGUF's `tokenizer.chat_template`, if it is a known one.
    pub fn recognize(jinja: &str) -> Option<Self> {
        if jinja == SMOLLM2_TEMPLATE {
            Some(Self::ChatMl {
                default_system: Some(
                    "You are a helpful AI assistant named SmolLM, trained by Hugging Face".into(),
                ),
            })
        } else if jinja == CHATML_TEMPLATE {
            Some(Self::ChatMl {
                default_system: None,
            })
        } else {
            None
        }
    }

    /// The prompt text: the messages, then the assistant prompt.
    pub fn render(&self, messages: &[Message]) -> String {
        let Self::ChatMl { default_system } = self;
        let mut out = String::new();
        let turn = |out: &mut String, role: &str, content: &str| {
            out.push_str("<|im_start|>");
            out.push_str(role);
            out.push('\n');
            out.push_str(content);
            out.push_str("<|im_end|>\n");
        };
        if let (Some(system), Some(first)) = (default_system, messages.first())
            && first.role != Role::System
        {
            turn(&mut out, "system", system);
        }
        for m in messages {
            turn(&mut out, m.role.as_str(), &m.content);
        }
        out.push_str("<|im_start|>assistant\n");
        out
    }

    /// The token text that ends an assistant turn.
    pub fn end_of_turn(&self) -> &'static str {
        "<|im_end|>"
    }
}

/// What the agent needs from a GGUF's metadata.
pub struct GgufMeta {
    /// Model hyper-parameters.
    pub config: LlamaConfig,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The chat template.
    pub template: ChatTemplate,
    /// Token ids that end generation (`tokenizer.ggml.eos_token_id` and the template's
    /// end-of-turn token), sorted.
    pub stop_tokens: Vec<u32>,
}

fn bad(path: &Path, reason: impl Into<String>) -> InferenceError {
    InferenceError::BadModelConfig {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn get<'a>(
    ct: &'a gguf_file::Content,
    path: &Path,
    key: &str,
) -> Result<&'a Value, InferenceError> {
    ct.metadata
        .get(key)
        .ok_or_else(|| bad(path, format!("GGUF metadata has no `{key}`")))
}

fn get_u32(ct: &gguf_file::Content, path: &Path, key: &str) -> Result<u32, InferenceError> {
    let v = get(ct, path, key)?;
    match v {
        Value::U8(x) => Ok(u32::from(*x)),
        Value::U16(x) => Ok(u32::from(*x)),
        Value::U32(x) => Ok(*x),
        Value::I32(x) if *x >= 0 => Ok(*x as u32),
        Value::U64(x) if *x <= u64::from(u32::MAX) => Ok(*x as u32),
        _ => Err(bad(
            path,
            format!("`{key}` is {v:?}, expected an unsigned integer"),
        )),
    }
}

fn get_f32(ct: &gguf_file::Content, path: &Path, key: &str) -> Result<f32, InferenceError> {
    get(ct, path, key)?
        .to_f32()
        .map_err(|e| bad(path, format!("`{key}`: {e}")))
}

fn get_str<'a>(
    ct: &'a gguf_file::Content,
    path: &Path,
    key: &str,
) -> Result<&'a str, InferenceError> {
    get(ct, path, key)?
        .to_string()
        .map(String::as_str)
        .map_err(|e| bad(path, format!("`{key}`: {e}")))
}

fn get_strings(
    ct: &gguf_file::Content,
    path: &Path,
    key: &str,
) -> Result<Vec<String>, InferenceError> {
    get(ct, path, key)?
        .to_vec()
        .map_err(|e| bad(path, format!("`{key}`: {e}")))?
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| bad(path, format!("`{key}` holds a non-string: {e}")))
        })
        .collect()
}

/// Reads hyper-parameters, tokenizer, template and stop tokens from GGUF metadata.
pub fn read_meta(ct: &gguf_file::Content, path: &Path) -> Result<GgufMeta, InferenceError> {
    let arch = get_str(ct, path, "general.architecture")?;
    if arch != "llama" {
        return Err(bad(
            path,
            format!("architecture `{arch}` is not supported (only `llama`)"),
        ));
    }
    let n = |key: &str| get_u32(ct, path, &format!("llama.{key}")).map(|v| v as usize);
    let (dim, heads, layers) = (
        n("embedding_length")?,
        n("attention.head_count")?,
        n("block_count")?,
    );
    let kv_heads = n("attention.head_count_kv").unwrap_or(heads);
    if heads == 0 || kv_heads == 0 || dim % heads != 0 || heads % kv_heads != 0 {
        return Err(bad(
            path,
            format!("{heads} heads, {kv_heads} KV heads and width {dim} do not fit together"),
        ));
    }
    let head_dim = dim / heads;
    if let Ok(rope) = n("rope.dimension_count")
        && rope != head_dim
    {
        return Err(bad(
            path,
            format!("partial RoPE ({rope} of {head_dim}) is not supported"),
        ));
    }
    let context = n("context_length").unwrap_or(MAX_CONTEXT).min(MAX_CONTEXT);
    let rope_base = get_f32(ct, path, "llama.rope.freq_base").unwrap_or(10_000.0);
    let rms_eps = f64::from(get_f32(ct, path, "llama.attention.layer_norm_rms_epsilon")?);

    // Tokenizer.
    let model = get_str(ct, path, "tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(bad(
            path,
            format!("tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"),
        ));
    }
    let pre = get_str(ct, path, "tokenizer.ggml.pre").unwrap_or("default");
    // llama.cpp's pre-tokenizer regexes: `smollm` and `starcoder` split digits one by
    // one, then apply GPT-2's regex; `gpt2`/`default` apply GPT-2's regex only.
    let split_digits = match pre {
        "smollm" | "starcoder" | "refact" => true,
        "gpt2" | "default" => false,
        other => {
            return Err(bad(
                path,
                format!(
                    "pre-tokenizer `{other}` is not supported (smollm, starcoder, refact, gpt2)"
                ),
            ));
        }
    };
    let tokens = get_strings(ct, path, "tokenizer.ggml.tokens")?;
    let merges = get_strings(ct, path, "tokenizer.ggml.merges")?;
    let merges = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| bad(path, format!("merge `{m}` is not two tokens")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    if vocab.len() != tokens.len() {
        return Err(bad(path, "the token list has duplicates"));
    }
    let tok_err = |reason: String| InferenceError::Tokenizer {
        path: path.to_path_buf(),
        reason,
    };
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| tok_err(format!("cannot build BPE from the GGUF vocabulary: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    if split_digits {
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            byte_level.into(),
        ])));
    } else {
        tokenizer.with_pre_tokenizer(Some(byte_level));
    }
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    // Control tokens (type 3) are special: matched as a whole in the prompt, skipped
    // when decoding.
    if let Ok(types) = get(ct, path, "tokenizer.ggml.token_type").and_then(|v| {
        v.to_vec()
            .map_err(|e| bad(path, format!("`tokenizer.ggml.token_type`: {e}")))
    }) {
        let specials: Vec<AddedToken> = types
            .iter()
            .zip(&tokens)
            .filter(|(t, _)| matches!(t, Value::I32(3) | Value::U32(3)))
            .map(|(_, tok)| AddedToken::from(tok.clone(), true))
            .collect();
        tokenizer.add_special_tokens(&specials);
    }

    let jinja = get_str(ct, path, "tokenizer.chat_template")?;
    let template = ChatTemplate::recognize(jinja).ok_or_else(|| {
        bad(
            path,
            format!(
                "chat template is not one the agent implements (ChatML, SmolLM2): {:?}",
                jinja.chars().take(120).collect::<String>()
            ),
        )
    })?;
    let mut stop_tokens = vec![get_u32(ct, path, "tokenizer.ggml.eos_token_id")?];
    if let Some(&eot) = tokens
        .iter()
        .position(|t| t == template.end_of_turn())
        .as_ref()
    {
        stop_tokens.push(eot as u32);
    }
    stop_tokens.sort_unstable();
    stop_tokens.dedup();
    let vocab = tokens.len();
    if stop_tokens.iter().any(|&t| t as usize >= vocab) {
        return Err(bad(
            path,
            "the end-of-sequence token is outside the vocabulary",
        ));
    }
    Ok(GgufMeta {
        config: LlamaConfig {
            vocab,
            dim,
            layers,
            heads,
            kv_heads,
            head_dim,
            rope_base,
            rms_eps,
            context,
        },
        tokenizer,
        template,
        stop_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_like_their_jinja() {
        let t = ChatTemplate::recognize(SMOLLM2_TEMPLATE);
        assert!(t.is_some());
        let Some(t) = t else { return };
        let user = [Message::new(Role::User, "Hi")];
        assert_eq!(
            t.render(&user),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
             Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let with_system = [
            Message::new(Role::System, "Be brief."),
            Message::new(Role::User, "Hi"),
            Message::new(Role::Assistant, "Hello."),
            Message::new(Role::User, "Bye"),
        ];
        assert_eq!(
            t.render(&with_system),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        let plain = ChatTemplate::recognize(CHATML_TEMPLATE);
        assert_eq!(
            plain.map(|p| p.render(&user)).as_deref(),
            Some("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        );
        assert!(ChatTemplate::recognize("{{ messages }}").is_none());
    }
}
