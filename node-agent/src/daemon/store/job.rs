//! One job as the agent keeps it: its [`Role`], its [`Stage`], and the
//! [`JobRecord`] row (what `GET /jobs` serves).

use std::fmt;
use std::str::FromStr;

use super::{StoreError, now_ms};

/// Which role a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The provider's view of a job addressed to its agent key.
    Provider,
    /// The verifier's view of a job that lists its key.
    Verifier,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Verifier => "verifier",
        }
    }
}

/// Where a job is, for this agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Provider: checks passed; waiting for (or in) inference.
    Accepted,
    /// Provider: result bytes stored; not yet submitted.
    Computed,
    /// Provider: a signed Submit is recorded and being sent.
    Submitting,
    /// Provider: the result hash is on chain; collecting attestations.
    Submitted,
    /// Provider: a signed Claim is recorded and being sent.
    Claiming,
    /// Provider: the claim is on chain.
    Paid,
    /// Verifier: the result is checked and the attestation signed and served.
    Signed,
    /// Verifier: the attestation was also delivered to the provider.
    Pushed,
    /// The agent will not run this job (the reason is recorded).
    Refused,
    /// The agent could not complete it (the reason is recorded).
    Failed,
    /// Provider: a quorum of verifiers rejected the result.
    Rejected,
    /// A deadline passed before the agent's part was done.
    Expired,
    /// The escrow was settled by someone else's transaction.
    Closed,
}

impl Stage {
    const ALL: [Stage; 13] = [
        Stage::Accepted,
        Stage::Computed,
        Stage::Submitting,
        Stage::Submitted,
        Stage::Claiming,
        Stage::Paid,
        Stage::Signed,
        Stage::Pushed,
        Stage::Refused,
        Stage::Failed,
        Stage::Rejected,
        Stage::Expired,
        Stage::Closed,
    ];

    /// The name stored in the database and shown by `/jobs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Accepted => "accepted",
            Stage::Computed => "computed",
            Stage::Submitting => "submitting",
            Stage::Submitted => "submitted",
            Stage::Claiming => "claiming",
            Stage::Paid => "paid",
            Stage::Signed => "signed",
            Stage::Pushed => "pushed",
            Stage::Refused => "refused",
            Stage::Failed => "failed",
            Stage::Rejected => "rejected",
            Stage::Expired => "expired",
            Stage::Closed => "closed",
        }
    }

    /// Whether nothing more happens to the job.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Stage::Paid
                | Stage::Pushed
                | Stage::Refused
                | Stage::Failed
                | Stage::Rejected
                | Stage::Expired
                | Stage::Closed
        )
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown stage {s:?}")))
    }
}

/// One job as this agent sees it in one role. Its JSON (the operator's
/// `/jobs`) leaves out the local result path and the signed transactions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobRecord {
    /// The job id.
    #[serde(serialize_with = "ser_hex")]
    pub job_id: [u8; 32],
    /// The role.
    pub role: Role,
    /// Where it is.
    pub stage: Stage,
    /// `spec_hash` from the datum.
    #[serde(serialize_with = "ser_hex")]
    pub spec_hash: [u8; 32],
    /// Price in settlement-asset units.
    pub price: u64,
    /// POSIX ms.
    pub submit_by: u64,
    /// POSIX ms.
    pub settle_by: u64,
    /// Attestations needed.
    pub threshold: u32,
    /// The datum's verifier keys, in datum order.
    #[serde(serialize_with = "ser_hex_list")]
    pub verifiers: Vec<[u8; 32]>,
    /// Attestation URLs from the job spec (provider: where to collect).
    pub verifier_urls: Vec<String>,
    /// The result hash (computed by the provider, or read from the chain by a verifier).
    #[serde(serialize_with = "ser_hex_opt")]
    pub result_hash: Option<[u8; 32]>,
    /// Where the result bytes are stored (provider). A local path: never served.
    #[serde(skip)]
    pub result_path: Option<String>,
    /// Where the result bytes are served (provider: its own URL; verifier: the provider's).
    pub result_url: Option<String>,
    /// The Submit transaction's id.
    #[serde(serialize_with = "ser_hex_opt")]
    pub submit_tx: Option<[u8; 32]>,
    /// The signed Submit transaction, kept until it is on chain.
    #[serde(skip)]
    pub submit_cbor: Option<Vec<u8>>,
    /// The Claim transaction's id.
    #[serde(serialize_with = "ser_hex_opt")]
    pub claim_tx: Option<[u8; 32]>,
    /// The signed Claim transaction, kept until it is on chain.
    #[serde(skip)]
    pub claim_cbor: Option<Vec<u8>>,
    /// Verifier: its verdict and why; provider: the tally.
    pub verdict: Option<String>,
    /// How many times inference ran for this job.
    pub compute_runs: u32,
    /// Why it was refused or failed.
    pub failure: Option<String>,
    /// Whether the approaching settle deadline was reported.
    pub settle_warned: bool,
    /// Unix ms of the last change.
    pub updated_at: u64,
}

impl JobRecord {
    /// A new row in `stage`, with the datum's terms.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job_id: [u8; 32],
        role: Role,
        stage: Stage,
        spec_hash: [u8; 32],
        price: u64,
        submit_by: u64,
        settle_by: u64,
        threshold: u32,
        verifiers: Vec<[u8; 32]>,
    ) -> JobRecord {
        JobRecord {
            job_id,
            role,
            stage,
            spec_hash,
            price,
            submit_by,
            settle_by,
            threshold,
            verifiers,
            verifier_urls: Vec::new(),
            result_hash: None,
            result_path: None,
            result_url: None,
            submit_tx: None,
            submit_cbor: None,
            claim_tx: None,
            claim_cbor: None,
            verdict: None,
            compute_runs: 0,
            failure: None,
            settle_warned: false,
            updated_at: now_ms(),
        }
    }

    /// The job id in hex.
    pub fn id_hex(&self) -> String {
        hex::encode(self.job_id)
    }
}

fn ser_hex<S: serde::Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}
fn ser_hex_opt<S: serde::Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&hex::encode(v)),
        None => s.serialize_none(),
    }
}
fn ser_hex_list<S: serde::Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(hex::encode))
}
