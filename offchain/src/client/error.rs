//! What can go wrong between a command and the chain.

use crate::BlueprintError;
use crate::builder::BuildError;
use crate::chain::ChainError;

/// Why a client operation failed.
///
/// [`ClientError::is_user_error`] tells input the user can fix (exit code 2 in
/// `ntx`) from failures of the chain or the provider.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request is invalid; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// The wallet cannot pay for the transaction.
    #[error("{0}")]
    InsufficientFunds(String),
    /// The job id names no escrow of this deployment.
    #[error(
        "job {0} is not an escrow of this deployment (settled, never locked, or locked under another deployment): check the id with `ntx job list`"
    )]
    NotAnEscrow(String),
    /// The transaction is over the protocol's size or execution limits.
    #[error(
        "the transaction is over the protocol's limits: {size} bytes (limit {max_size}), {units:?} declared (limit {max_units:?}): split it"
    )]
    OverLimit {
        /// Its size in bytes.
        size: u64,
        /// The maximum transaction size.
        max_size: u64,
        /// The execution units it declares.
        units: crate::ExUnits,
        /// The per-transaction execution limit.
        max_units: crate::ExUnits,
    },
    /// The deployment file or the deployment on chain is wrong.
    #[error("deployment: {0}")]
    Deployment(String),
    /// A job spec or a protocol record could not be read.
    #[error("{0}")]
    Record(String),
    /// The transaction could not be built.
    #[error(transparent)]
    Build(BuildError),
    /// The chain provider failed or rejected the transaction.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The HTTP client for peers' URLs could not start.
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    /// The embedded blueprint could not be applied.
    #[error(transparent)]
    Blueprint(#[from] BlueprintError),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

impl ClientError {
    /// Whether the user can fix this by changing the input (exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            ClientError::Invalid(_)
                | ClientError::InsufficientFunds(_)
                | ClientError::OverLimit { .. }
                | ClientError::NotAnEscrow(_)
                | ClientError::Deployment(_)
                | ClientError::Build(BuildError::Invalid(_))
                | ClientError::Build(BuildError::Balance(_))
        )
    }
}

impl From<BuildError> for ClientError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::Balance(b @ crate::tx::BalanceError::InsufficientFunds { .. }) => {
                ClientError::InsufficientFunds(b.to_string())
            }
            other => ClientError::Build(other),
        }
    }
}
