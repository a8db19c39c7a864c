//! The `generate` job spec: model hash, chat messages, token limit, decoding rule.
//!
//! Every number is an integer (the project hashes specs as RFC 8785 canonical JSON,
//! which refuses non-integers): temperature and top-p are given in thousandths
//! (`temperature_milli`, `top_p_milli`), and the seed must fit 53 bits.

use std::fmt;

use crate::error::InferenceError;
use crate::hash::{Hash32, input_digest};
use crate::model::ModelFile;

/// The file name the GGUF model has inside the model directory.
pub const GGUF_FILE: &str = "model.gguf";
/// Most new tokens one job may ask for.
pub const MAX_NEW_TOKENS: u32 = 2048;
/// Most messages one job may carry.
pub const MAX_MESSAGES: usize = 256;
/// Most UTF-8 bytes of all message contents together.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest `temperature_milli` (10.0).
pub const MAX_TEMPERATURE_MILLI: u32 = 10_000;
/// Largest seed: 2^53 − 1, the largest integer a JSON number carries exactly.
pub const MAX_SEED: u64 = (1 << 53) - 1;

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the assistant (replaces the template's default system prompt).
    System,
    /// The requester.
    User,
    /// An earlier answer of the assistant.
    Assistant,
}

impl Role {
    /// The role's name in the chat template.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said (UTF-8).
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// How the next token is chosen from the model's logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", try_from = "RawDecoding")]
pub enum Decoding {
    /// The token with the largest logit (the lowest id among equal ones).
    Greedy,
    /// Seeded nucleus sampling: logits divided by the temperature, restricted to the
    /// smallest set of most likely tokens whose probability reaches `top_p`, and drawn
    /// with the Gumbel-max rule from noise that the seed, the position and the token id
    /// fix (see `node-agent/README.md`).
    Sample {
        /// Temperature in thousandths, 1..=10000 (700 = 0.7).
        temperature_milli: u32,
        /// Nucleus mass in thousandths, 1..=1000 (1000 = no truncation).
        top_p_milli: u32,
        /// Seed of the noise, 0..=2^53−1.
        seed: u64,
    },
}

/// The JSON form, so that unknown fields are refused in every mode (serde ignores
/// extra fields next to a unit variant's tag).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecoding {
    mode: String,
    temperature_milli: Option<u32>,
    top_p_milli: Option<u32>,
    seed: Option<u64>,
}

impl TryFrom<RawDecoding> for Decoding {
    type Error = String;

    fn try_from(r: RawDecoding) -> Result<Self, String> {
        match (r.mode.as_str(), r.temperature_milli, r.top_p_milli, r.seed) {
            ("greedy", None, None, None) => Ok(Self::Greedy),
            ("greedy", ..) => {
                Err("greedy decoding takes no temperature_milli, top_p_milli or seed".into())
            }
            ("sample", Some(temperature_milli), Some(top_p_milli), Some(seed)) => {
                Ok(Self::Sample {
                    temperature_milli,
                    top_p_milli,
                    seed,
                })
            }
            ("sample", ..) => {
                Err("sample decoding needs temperature_milli, top_p_milli and seed".into())
            }
            (other, ..) => Err(format!(
                "unknown decoding mode `{other}`, expected `greedy` or `sample`"
            )),
        }
    }
}

impl Decoding {
    /// Mode byte in the result header: 0 greedy, 1 sample.
    pub fn mode_byte(&self) -> u8 {
        match self {
            Self::Greedy => 0,
            Self::Sample { .. } => 1,
        }
    }

    /// `(temperature_milli, top_p_milli, seed)`, zeros for greedy.
    pub fn params(&self) -> (u32, u32, u64) {
        match *self {
            Self::Greedy => (0, 0, 0),
            Self::Sample {
                temperature_milli,
                top_p_milli,
                seed,
            } => (temperature_milli, top_p_milli, seed),
        }
    }

    /// Refuses settings outside the documented ranges.
    pub fn validate(&self) -> Result<(), InferenceError> {
        if let Self::Sample {
            temperature_milli,
            top_p_milli,
            seed,
        } = *self
        {
            if temperature_milli == 0 || temperature_milli > MAX_TEMPERATURE_MILLI {
                return Err(InferenceError::spec(format!(
                    "temperature_milli {temperature_milli} is outside 1..={MAX_TEMPERATURE_MILLI} \
                     (use {{\"mode\":\"greedy\"}} for temperature 0)"
                )));
            }
            if top_p_milli == 0 || top_p_milli > 1000 {
                return Err(InferenceError::spec(format!(
                    "top_p_milli {top_p_milli} is outside 1..=1000"
                )));
            }
            if seed > MAX_SEED {
                return Err(InferenceError::spec(format!(
                    "seed {seed} exceeds 2^53−1, the largest integer a JSON number carries exactly"
                )));
            }
        }
        Ok(())
    }
}

/// The parameters of a `generate` job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    /// blake2b-256 of the GGUF file (the whole model: weights, tokenizer, template).
    pub model: Hash32,
    /// The conversation; the model's chat template is applied by the agent, followed by
    /// the assistant prompt.
    pub messages: Vec<Message>,
    /// Generation stops after this many new tokens (1..=[`MAX_NEW_TOKENS`]) or at the
    /// end-of-turn token, whichever comes first.
    pub max_new_tokens: u32,
    /// The decoding rule.
    pub decoding: Decoding,
}

impl GenerateSpec {
    /// Refuses specs the agent will not run, with the reason.
    pub fn validate(&self) -> Result<(), InferenceError> {
        if self.messages.is_empty() {
            return Err(InferenceError::spec("generate job has no messages"));
        }
        if self.messages.len() > MAX_MESSAGES {
            return Err(InferenceError::spec(format!(
                "generate job has {} messages; at most {MAX_MESSAGES} are accepted",
                self.messages.len()
            )));
        }
        let bytes: usize = self.messages.iter().map(|m| m.content.len()).sum();
        if bytes > MAX_MESSAGE_BYTES {
            return Err(InferenceError::spec(format!(
                "generate job's messages have {bytes} bytes; at most {MAX_MESSAGE_BYTES} are accepted"
            )));
        }
        if self.max_new_tokens == 0 || self.max_new_tokens > MAX_NEW_TOKENS {
            return Err(InferenceError::spec(format!(
                "max_new_tokens {} is outside 1..={MAX_NEW_TOKENS}",
                self.max_new_tokens
            )));
        }
        self.decoding.validate()
    }

    /// The one model file: [`GGUF_FILE`] with the spec's hash.
    pub fn model_files(&self) -> Vec<ModelFile> {
        vec![ModelFile {
            name: GGUF_FILE,
            expected: self.model,
        }]
    }

    /// The messages digest of the result header: [`input_digest`] over
    /// `role₀, content₀, role₁, content₁, …` (each u32-length-prefixed).
    pub fn messages_digest(&self) -> Hash32 {
        let flat: Vec<&str> = self
            .messages
            .iter()
            .flat_map(|m| [m.role.as_str(), m.content.as_str()])
            .collect();
        input_digest(&flat)
    }
}

/// blake2b-256 over token ids as u32 little-endian (the prompt digest of the header).
pub fn token_digest(ids: &[u32]) -> Hash32 {
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
    Hash32::of(&bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(decoding: Decoding) -> GenerateSpec {
        GenerateSpec {
            model: Hash32([1; 32]),
            messages: vec![Message::new(Role::User, "hi")],
            max_new_tokens: 16,
            decoding,
        }
    }

    #[test]
    fn json_shape_and_refusals() {
        let h = Hash32([1; 32]).to_hex();
        let greedy = format!(
            r#"{{"model":"{h}","messages":[{{"role":"user","content":"hi"}}],"max_new_tokens":16,"decoding":{{"mode":"greedy"}}}}"#
        );
        let s: GenerateSpec = serde_json::from_str(&greedy).unwrap();
        assert_eq!(s, spec(Decoding::Greedy));
        let sample = greedy.replace(
            r#"{"mode":"greedy"}"#,
            r#"{"mode":"sample","temperature_milli":700,"top_p_milli":900,"seed":42}"#,
        );
        let s: GenerateSpec = serde_json::from_str(&sample).unwrap();
        assert_eq!(
            s.decoding,
            Decoding::Sample {
                temperature_milli: 700,
                top_p_milli: 900,
                seed: 42
            }
        );
        // Fractions are not integers: refused at parse time.
        let float = sample.replace("700", "0.7");
        assert!(serde_json::from_str::<GenerateSpec>(&float).is_err());
        // Unknown fields, anywhere.
        let extra = greedy.replace(r#""mode":"greedy""#, r#""mode":"greedy","seed":1"#);
        assert!(serde_json::from_str::<GenerateSpec>(&extra).is_err());
        let missing = sample.replace(r#","seed":42"#, "");
        assert!(serde_json::from_str::<GenerateSpec>(&missing).is_err());
        let role = greedy.replace("user", "tool");
        assert!(serde_json::from_str::<GenerateSpec>(&role).is_err());
    }

    #[test]
    fn ranges_are_checked() {
        assert!(spec(Decoding::Greedy).validate().is_ok());
        let bad = |d| spec(d).validate().unwrap_err().to_string();
        let s = |t, p, seed| Decoding::Sample {
            temperature_milli: t,
            top_p_milli: p,
            seed,
        };
        assert!(bad(s(0, 900, 1)).contains("temperature_milli"));
        assert!(bad(s(10_001, 900, 1)).contains("temperature_milli"));
        assert!(bad(s(700, 0, 1)).contains("top_p_milli"));
        assert!(bad(s(700, 1001, 1)).contains("top_p_milli"));
        assert!(bad(s(700, 1000, MAX_SEED + 1)).contains("seed"));
        assert!(spec(s(700, 1000, MAX_SEED)).validate().is_ok());
        let mut zero = spec(Decoding::Greedy);
        zero.max_new_tokens = 0;
        assert!(zero.validate().is_err());
        zero.max_new_tokens = MAX_NEW_TOKENS + 1;
        assert!(zero.validate().is_err());
        zero.max_new_tokens = 1;
        zero.messages.clear();
        assert!(zero.validate().is_err());
    }

    #[test]
    fn messages_digest_separates_roles_and_contents() {
        let a = spec(Decoding::Greedy);
        let mut b = a.clone();
        b.messages[0].role = Role::System;
        assert_ne!(a.messages_digest(), b.messages_digest());
        assert_eq!(a.messages_digest(), input_digest(&["user", "hi"]));
        assert_ne!(token_digest(&[1, 2]), token_digest(&[2, 1]));
        assert_eq!(token_digest(&[1]), Hash32::of(&[1, 0, 0, 0]));
    }
}
