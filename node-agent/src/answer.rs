//! What a requester reads out of result bytes: the embeddings or the text.
//!
//! The bytes must already have been checked against the chain's `result_hash`;
//! this only decodes them (and never panics on hostile bytes).

use crate::GenerateResult;
use crate::result::{EmbedResult, ParseError, dequantize, peek_task};
use crate::task::TaskTag;

/// A decoded answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum Answer {
    /// One vector per input, dequantised.
    Embed {
        /// The vectors, in input order.
        embeddings: Vec<Vec<f32>>,
    },
    /// The generated text.
    Generate {
        /// The text.
        text: String,
        /// How many tokens were generated.
        tokens: usize,
    },
}

impl Answer {
    /// Decodes canonical result bytes of either task.
    pub fn decode(bytes: &[u8]) -> Result<Answer, ParseError> {
        match peek_task(bytes)? {
            TaskTag::Embed => {
                let r = EmbedResult::parse(bytes)?;
                let embeddings = (0..r.header.n as usize)
                    .filter_map(|i| r.row(i))
                    .map(|row| row.iter().map(|q| dequantize(*q)).collect())
                    .collect();
                Ok(Answer::Embed { embeddings })
            }
            TaskTag::Generate => {
                let r = GenerateResult::parse(bytes)?;
                Ok(Answer::Generate {
                    tokens: r.tokens.len(),
                    text: r.text,
                })
            }
        }
    }

    /// The answer as a person reads it: the text, or one JSON array per vector.
    pub fn to_text(&self) -> String {
        match self {
            Answer::Generate { text, .. } => text.clone(),
            Answer::Embed { embeddings } => embeddings
                .iter()
                .map(|v| serde_json::to_string(v).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The answer in one line: the text (quoted), or the vectors' count and width
    /// and the first vector's start.
    pub fn summary(&self) -> String {
        match self {
            Answer::Generate { text, tokens } => format!("{text:?} ({tokens} tokens)"),
            Answer::Embed { embeddings } => {
                let width = embeddings.first().map_or(0, Vec::len);
                let start: Vec<String> = embeddings
                    .first()
                    .map(|v| v.iter().take(3).map(|x| format!("{x:.3}")).collect())
                    .unwrap_or_default();
                format!(
                    "{} vectors of {width} dims, the first [{}, …]",
                    embeddings.len(),
                    start.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn summary_is_one_line() {
        let embed = Answer::Embed {
            embeddings: vec![vec![0.5, -0.25, 1.0, 2.0], vec![0.0; 4]],
        };
        assert_eq!(
            embed.summary(),
            "2 vectors of 4 dims, the first [0.500, -0.250, 1.000, …]"
        );
        let text = Answer::Generate {
            text: "hi\nthere".into(),
            tokens: 2,
        };
        assert_eq!(text.summary(), "\"hi\\nthere\" (2 tokens)");
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"NTX", &[0u8; 200][..], &[0xff; 64][..]] {
            assert!(Answer::decode(bytes).is_err());
        }
    }
}
