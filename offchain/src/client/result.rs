//! A requester fetching a job's result bytes from the URL its submit record
//! names, checked against the chain: bytes whose blake2b-256 is not the on-chain
//! `result_hash` are refused, never returned.

use super::error::ClientError;
use crate::fetch::{FetchError, FetchKind, PeerFetcher};
use crate::protocol::blake2b_256;

/// Why result bytes were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ResultFetchError {
    /// The bytes were not fetched (refused URL, too large, too slow, unreachable).
    #[error("the provider's result was not fetched: {0}")]
    Fetch(FetchError),
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

/// Downloads `url` with `fetcher` (no redirects, only addresses its policy
/// permits, the body counted against its [`FetchKind::Result`] limit while reading) and
/// returns the bytes only if their blake2b-256 is `expected`.
pub async fn fetch_result(
    fetcher: &PeerFetcher,
    url: &str,
    expected: &[u8; 32],
) -> Result<Vec<u8>, ResultFetchError> {
    let bytes = fetcher
        .get(url, FetchKind::Result)
        .await
        .map_err(ResultFetchError::Fetch)?;
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
