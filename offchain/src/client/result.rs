//! A requester fetching a job's result bytes from the URL its submit record
//! names, checked against the chain: bytes whose blake2b-256 is not the on-chain
//! `result_hash` are refused, never returned.

use std::time::{Duration, Instant};

use super::error::ClientError;
use crate::protocol::blake2b_256;

/// Largest result a requester downloads by default.
pub const MAX_RESULT_BYTES: usize = 64 << 20;

/// How long a result download may take in all.
pub const RESULT_TIME_BUDGET: Duration = Duration::from_secs(60);

/// Why result bytes were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ResultFetchError {
    /// The URL did not answer, or answered with an error status.
    #[error("the provider's result URL {url} did not serve the bytes: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
    },
    /// More bytes than the cap.
    #[error("the result at {url} is larger than {cap} bytes: refused")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        cap: usize,
    },
    /// The bytes are not the ones the chain commits to.
    #[error(
        "the bytes served at {url} hash to {actual}, but the chain's result_hash is {expected}: refused (the provider serves something else than what it submitted)"
    )]
    HashMismatch {
        /// The URL.
        url: String,
        /// blake2b-256 of what was served.
        actual: String,
        /// The on-chain result hash.
        expected: String,
    },
}

impl From<ResultFetchError> for ClientError {
    fn from(e: ResultFetchError) -> Self {
        ClientError::Record(e.to_string())
    }
}

/// Downloads `url` (no redirects, at most `cap` bytes counted while reading,
/// within [`RESULT_TIME_BUDGET`]) and returns the bytes only if their blake2b-256
/// is `expected`.
pub async fn fetch_result(
    url: &str,
    expected: &[u8; 32],
    cap: usize,
) -> Result<Vec<u8>, ResultFetchError> {
    let unreachable = |detail: String| ResultFetchError::Unreachable {
        url: url.to_string(),
        detail,
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let started = Instant::now();
    let mut response = client
        .get(url)
        .timeout(RESULT_TIME_BUDGET)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| unreachable(e.to_string()))?;
    let too_large = || ResultFetchError::TooLarge {
        url: url.to_string(),
        cap,
    };
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    loop {
        let left = RESULT_TIME_BUDGET.saturating_sub(started.elapsed());
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .map_err(|_| unreachable(format!("no complete answer within {RESULT_TIME_BUDGET:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let Some(chunk) = chunk else { break };
        if bytes.len() + chunk.len() > cap {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    let actual = blake2b_256(&bytes);
    if actual != *expected {
        return Err(ResultFetchError::HashMismatch {
            url: url.to_string(),
            actual: hex::encode(actual),
            expected: hex::encode(expected),
        });
    }
    Ok(bytes)
}
