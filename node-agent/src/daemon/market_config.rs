//! The agent config's market sections: a provider's `[provider.policy]` (whom
//! it lets judge its work) and each role's `[….offer]` (what it advertises on
//! chain, at what price, for how long).

use serde::Deserialize;

use ntx_offchain::market::{AcceptVerifiers, VerifierPolicy};

use super::config::ConfigError;

/// `[provider.policy]`: the verifier policy the provider's agent enforces and its
/// offer states. The default is safe: only the verifiers listed here (none, so no
/// job is accepted until some are listed or `any_live_verifier` is set).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The ed25519 keys (hex) of the verifiers this provider accepts.
    #[serde(default)]
    pub verifiers: Vec<String>,
    /// Accept any verifier that has a live, validly signed offer for the deployment
    /// (instead of the list).
    #[serde(default)]
    pub any_live_verifier: bool,
    /// The lowest threshold accepted.
    #[serde(default = "default_min_threshold")]
    pub min_threshold: u32,
    /// The shortest `settle_by − submit_by` accepted, in seconds.
    #[serde(default = "default_judge_window")]
    pub min_judge_window_secs: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            verifiers: Vec::new(),
            any_live_verifier: false,
            min_threshold: default_min_threshold(),
            min_judge_window_secs: default_judge_window(),
        }
    }
}

fn default_min_threshold() -> u32 {
    1
}
fn default_judge_window() -> u64 {
    300
}

impl PolicyConfig {
    /// The policy, checked.
    pub fn policy(&self) -> Result<VerifierPolicy, ConfigError> {
        if self.any_live_verifier && !self.verifiers.is_empty() {
            return Err(ConfigError::Invalid(
                "provider.policy: give either `verifiers` or `any_live_verifier = true`, not both"
                    .into(),
            ));
        }
        let policy = VerifierPolicy {
            accept: if self.any_live_verifier {
                AcceptVerifiers::AnyLive
            } else {
                AcceptVerifiers::Listed(self.verifiers.iter().map(|k| k.to_lowercase()).collect())
            },
            min_threshold: self.min_threshold,
            min_judge_window_ms: self.min_judge_window_secs.saturating_mul(1000),
        };
        policy
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("provider.policy: {e}")))?;
        Ok(policy)
    }
}

/// `[provider.offer]` / `[verifier.offer]`: the offer the agent keeps on chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferConfig {
    /// Publish the offer at start-up and keep it fresh (it needs ADA in the
    /// agent key's wallet for the deposit and fees).
    #[serde(default = "default_publish")]
    pub publish: bool,
    /// How long each published offer lives, in seconds (it is refreshed when a
    /// quarter of that is left).
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    /// Price of an `embed` job, in settlement-asset units (default: the provider's
    /// `price_floor`; 0 for a verifier, which the escrow does not pay).
    #[serde(default)]
    pub embed_price: Option<u64>,
    /// Price of a `generate` job before its tokens (default as `embed_price`).
    #[serde(default)]
    pub generate_price: Option<u64>,
    /// Price of each requested new token of a `generate` job.
    #[serde(default)]
    pub generate_price_per_token: u64,
}

impl Default for OfferConfig {
    fn default() -> Self {
        OfferConfig {
            publish: default_publish(),
            ttl_secs: default_ttl(),
            embed_price: None,
            generate_price: None,
            generate_price_per_token: 0,
        }
    }
}

fn default_publish() -> bool {
    true
}
fn default_ttl() -> u64 {
    24 * 3600
}

impl OfferConfig {
    /// Range checks.
    pub fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let max = ntx_offchain::market::MAX_OFFER_TTL_MS / 1000;
        if self.ttl_secs < 60 || self.ttl_secs > max {
            return Err(ConfigError::Invalid(format!(
                "{section}.offer.ttl_secs = {} is outside 60..={max}",
                self.ttl_secs
            )));
        }
        Ok(())
    }
}
