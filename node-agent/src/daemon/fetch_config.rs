//! `[fetch]`: how the agent fetches URLs that came from chain data or from
//! another party (specs, results, attestations; docs/SECURITY.md, "Fetching
//! strangers' URLs"): which addresses it may reach, how many bytes and how long
//! each kind may take, and how many downloads run at once.

use std::time::Duration;

use ntx_offchain::Network;
use ntx_offchain::fetch::{AddressPolicy, FetchError, Limit, Limits, PeerFetcher};
use serde::Deserialize;

use super::config::ConfigError;

/// `[fetch]`. Every key is optional; the defaults are [`Limits::default`] and the
/// network's [`AddressPolicy::default_for`] (private addresses only on the devnet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchConfig {
    /// Reach loopback, private and link-local addresses too (a devnet or a
    /// private cluster). Unset: allowed on the devnet only.
    #[serde(default)]
    pub allow_private_addresses: Option<bool>,
    /// The largest spec accepted, in bytes.
    #[serde(default)]
    pub max_spec_bytes: Option<usize>,
    /// The largest result accepted, in bytes.
    #[serde(default)]
    pub max_result_bytes: Option<usize>,
    /// The largest attestations answer accepted, in bytes.
    #[serde(default)]
    pub max_attestations_bytes: Option<usize>,
    /// The whole time one spec fetch may take, in seconds.
    #[serde(default)]
    pub spec_timeout_secs: Option<u64>,
    /// The whole time one result fetch may take, in seconds.
    #[serde(default)]
    pub result_timeout_secs: Option<u64>,
    /// The whole time one attestation fetch or push may take, in seconds.
    #[serde(default)]
    pub attestations_timeout_secs: Option<u64>,
    /// Spec and result downloads in flight at once, over both roles.
    #[serde(default = "default_concurrent_downloads")]
    pub max_concurrent_downloads: usize,
}

fn default_concurrent_downloads() -> usize {
    8
}

impl Default for FetchConfig {
    fn default() -> FetchConfig {
        FetchConfig {
            allow_private_addresses: None,
            max_spec_bytes: None,
            max_result_bytes: None,
            max_attestations_bytes: None,
            spec_timeout_secs: None,
            result_timeout_secs: None,
            attestations_timeout_secs: None,
            max_concurrent_downloads: default_concurrent_downloads(),
        }
    }
}

impl FetchConfig {
    /// The address policy on `network`.
    pub fn policy(&self, network: Network) -> AddressPolicy {
        match self.allow_private_addresses {
            Some(allow) => AddressPolicy::from_allow(allow),
            None => AddressPolicy::default_for(network),
        }
    }

    /// The limits, defaults replaced by what is set.
    pub fn limits(&self) -> Limits {
        let pick = |default: Limit, bytes: Option<usize>, secs: Option<u64>| Limit {
            max_bytes: bytes.unwrap_or(default.max_bytes),
            budget: secs.map_or(default.budget, Duration::from_secs),
        };
        let d = Limits::default();
        Limits {
            spec: pick(d.spec, self.max_spec_bytes, self.spec_timeout_secs),
            result: pick(d.result, self.max_result_bytes, self.result_timeout_secs),
            attestations: pick(
                d.attestations,
                self.max_attestations_bytes,
                self.attestations_timeout_secs,
            ),
        }
    }

    /// The fetcher this section describes, on `network`.
    pub fn fetcher(&self, network: Network) -> Result<PeerFetcher, FetchError> {
        Ok(PeerFetcher::new(self.policy(network))?.with_limits(self.limits()))
    }

    /// Refuses zero sizes, zero timeouts and zero concurrency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sizes = [
            ("max_spec_bytes", self.max_spec_bytes),
            ("max_result_bytes", self.max_result_bytes),
            ("max_attestations_bytes", self.max_attestations_bytes),
        ];
        let times = [
            ("spec_timeout_secs", self.spec_timeout_secs),
            ("result_timeout_secs", self.result_timeout_secs),
            ("attestations_timeout_secs", self.attestations_timeout_secs),
        ];
        let zero = sizes
            .iter()
            .filter(|(_, v)| *v == Some(0))
            .map(|(k, _)| *k)
            .chain(times.iter().filter(|(_, v)| *v == Some(0)).map(|(k, _)| *k))
            .chain((self.max_concurrent_downloads == 0).then_some("max_concurrent_downloads"))
            .next();
        match zero {
            Some(key) => Err(ConfigError::Invalid(format!(
                "fetch.{key} must be at least 1"
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_keys_keep_the_defaults_and_set_ones_replace_them() {
        let cfg: FetchConfig =
            toml::from_str("max_result_bytes = 1000\nspec_timeout_secs = 3").expect("parses");
        let limits = cfg.limits();
        assert_eq!(limits.result.max_bytes, 1000);
        assert_eq!(limits.result.budget, Limit::RESULT.budget);
        assert_eq!(limits.spec.budget, Duration::from_secs(3));
        assert_eq!(limits.spec.max_bytes, Limit::SPEC.max_bytes);
        assert_eq!(limits.attestations, Limit::ATTESTATIONS);
        assert_eq!(cfg.max_concurrent_downloads, 8);
        assert_eq!(FetchConfig::default().max_concurrent_downloads, 8);
    }

    #[test]
    fn private_addresses_follow_the_network_unless_set() {
        let unset = FetchConfig::default();
        assert_eq!(unset.policy(Network::Devnet), AddressPolicy::AllowPrivate);
        assert_eq!(unset.policy(Network::Preprod), AddressPolicy::PublicOnly);
        assert_eq!(unset.policy(Network::Mainnet), AddressPolicy::PublicOnly);
        let no: FetchConfig = toml::from_str("allow_private_addresses = false").expect("parses");
        assert_eq!(no.policy(Network::Devnet), AddressPolicy::PublicOnly);
        let yes: FetchConfig = toml::from_str("allow_private_addresses = true").expect("parses");
        assert_eq!(yes.policy(Network::Preprod), AddressPolicy::AllowPrivate);
    }

    #[test]
    fn zero_limits_are_refused_with_their_key() {
        for key in [
            "max_spec_bytes",
            "result_timeout_secs",
            "max_concurrent_downloads",
        ] {
            let cfg: FetchConfig = toml::from_str(&format!("{key} = 0")).expect("parses");
            let err = cfg.validate().expect_err("zero refused");
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FetchConfig>("max_bytes = 1").is_err());
    }
}
