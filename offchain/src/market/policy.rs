//! A provider's verifier policy: whom it lets judge its work.
//!
//! The escrow pays whoever a quorum of the datum's verifiers vouches for, and
//! refunds the requester on a quorum of Rejects. A requester who names its own
//! key as the only verifier gets the answer for free. So a provider accepts a job
//! only when every verifier is one it accepts, the threshold is at least its
//! minimum, and `settle_by − submit_by` leaves the verifiers time to judge.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::offer::{MAX_OFFER_ITEMS, hex_array};

/// Which verifiers a provider accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptVerifiers {
    /// Only these ed25519 keys (hex). The safe default: an empty list accepts no job.
    Listed(Vec<String>),
    /// Any verifier with a live, validly signed offer for this deployment.
    AnyLive,
}

/// A provider's rules for the verifiers, threshold and judging window of its jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierPolicy {
    /// Whom it accepts.
    pub accept: AcceptVerifiers,
    /// The lowest `threshold` it accepts.
    pub min_threshold: u32,
    /// The shortest `settle_by − submit_by` it accepts, in ms.
    pub min_judge_window_ms: u64,
}

/// Why a job breaks a provider's verifier policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// A verifier the provider does not accept.
    #[error("verifier {0} is not one this provider accepts")]
    UnacceptedVerifier(String),
    /// The threshold is below the provider's minimum.
    #[error("threshold {threshold} is below this provider's minimum of {min}")]
    ThresholdTooLow {
        /// The datum's.
        threshold: u32,
        /// The policy's.
        min: u32,
    },
    /// Too little time between the submit and settle deadlines.
    #[error(
        "settle_by − submit_by is {window_ms} ms; this provider needs at least {min_ms} ms for its verifiers to judge"
    )]
    JudgingWindowTooShort {
        /// The datum's.
        window_ms: u64,
        /// The policy's.
        min_ms: u64,
    },
}

impl VerifierPolicy {
    /// The safe default: only `keys`, at least one attestation, five minutes to judge.
    pub fn listed(keys: &[[u8; 32]]) -> VerifierPolicy {
        VerifierPolicy {
            accept: AcceptVerifiers::Listed(keys.iter().map(hex::encode).collect()),
            min_threshold: 1,
            min_judge_window_ms: 300_000,
        }
    }

    /// Field checks (key shapes, list size, a threshold of at least 1).
    pub fn validate(&self) -> Result<(), String> {
        if self.min_threshold == 0 {
            return Err("the policy's min_threshold must be at least 1".into());
        }
        if let AcceptVerifiers::Listed(keys) = &self.accept {
            if keys.len() > MAX_OFFER_ITEMS {
                return Err(format!(
                    "the policy lists {} verifiers; at most {MAX_OFFER_ITEMS}",
                    keys.len()
                ));
            }
            for k in keys {
                hex_array::<32>(k, "a listed verifier key").map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The listed keys (empty for [`AcceptVerifiers::AnyLive`]).
    pub fn listed_keys(&self) -> BTreeSet<[u8; 32]> {
        match &self.accept {
            AcceptVerifiers::Listed(keys) => keys
                .iter()
                .filter_map(|k| hex_array::<32>(k, "key").ok())
                .collect(),
            AcceptVerifiers::AnyLive => BTreeSet::new(),
        }
    }

    /// Whether the policy needs the live verifier offers to decide.
    pub fn needs_market(&self) -> bool {
        self.accept == AcceptVerifiers::AnyLive
    }

    /// Whether `key` may judge: listed, or (for `AnyLive`) in `live`.
    pub fn accepts(&self, key: &[u8; 32], live: &BTreeSet<[u8; 32]>) -> bool {
        match &self.accept {
            AcceptVerifiers::Listed(_) => self.listed_keys().contains(key),
            AcceptVerifiers::AnyLive => live.contains(key),
        }
    }

    /// Checks a job's verifiers, threshold and deadlines; `live` holds the keys of
    /// the live verifier offers (only read for `AnyLive`).
    pub fn check(
        &self,
        verifiers: &[[u8; 32]],
        threshold: u32,
        submit_by: u64,
        settle_by: u64,
        live: &BTreeSet<[u8; 32]>,
    ) -> Result<(), PolicyViolation> {
        if let Some(v) = verifiers.iter().find(|v| !self.accepts(v, live)) {
            return Err(PolicyViolation::UnacceptedVerifier(hex::encode(v)));
        }
        if threshold < self.min_threshold {
            return Err(PolicyViolation::ThresholdTooLow {
                threshold,
                min: self.min_threshold,
            });
        }
        let window_ms = settle_by.saturating_sub(submit_by);
        if window_ms < self.min_judge_window_ms {
            return Err(PolicyViolation::JudgingWindowTooShort {
                window_ms,
                min_ms: self.min_judge_window_ms,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];
    const MINE: [u8; 32] = [9; 32];

    fn policy() -> VerifierPolicy {
        VerifierPolicy {
            accept: AcceptVerifiers::Listed(vec![hex::encode(A), hex::encode(B)]),
            min_threshold: 2,
            min_judge_window_ms: 60_000,
        }
    }

    #[test]
    fn accepts_listed_verifiers_at_the_threshold_and_window() {
        policy()
            .check(&[A, B], 2, 1_000, 61_000, &BTreeSet::new())
            .unwrap();
    }

    #[test]
    fn refuses_the_requesters_own_verifier() {
        assert_eq!(
            policy().check(&[A, MINE], 2, 0, 100_000, &BTreeSet::new()),
            Err(PolicyViolation::UnacceptedVerifier(hex::encode(MINE)))
        );
        assert!(
            policy()
                .check(&[MINE], 1, 0, 100_000, &BTreeSet::new())
                .is_err()
        );
    }

    #[test]
    fn refuses_a_threshold_below_the_minimum() {
        assert_eq!(
            policy().check(&[A, B], 1, 0, 100_000, &BTreeSet::new()),
            Err(PolicyViolation::ThresholdTooLow {
                threshold: 1,
                min: 2
            })
        );
    }

    #[test]
    fn refuses_a_job_with_no_time_to_judge() {
        assert!(matches!(
            policy().check(&[A, B], 2, 100_000, 100_001, &BTreeSet::new()),
            Err(PolicyViolation::JudgingWindowTooShort { window_ms: 1, .. })
        ));
    }

    #[test]
    fn any_live_accepts_exactly_the_live_offers() {
        let p = VerifierPolicy {
            accept: AcceptVerifiers::AnyLive,
            ..policy()
        };
        let live: BTreeSet<_> = [A, B].into();
        p.check(&[A, B], 2, 0, 100_000, &live).unwrap();
        assert!(p.check(&[A, MINE], 2, 0, 100_000, &live).is_err());
        assert!(p.check(&[A, B], 2, 0, 100_000, &BTreeSet::new()).is_err());
    }

    #[test]
    fn the_default_accepts_only_what_is_listed() {
        let p = VerifierPolicy::listed(&[]);
        assert!(p.check(&[A], 1, 0, 1 << 40, &[A].into()).is_err());
        assert!(p.validate().is_ok());
        let p = VerifierPolicy {
            min_threshold: 0,
            ..policy()
        };
        assert!(p.validate().is_err());
    }
}
