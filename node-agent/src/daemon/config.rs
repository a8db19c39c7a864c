//! The agent's configuration: a TOML file, then `NTX_*` environment overrides.
//!
//! Layers, later ones winning: built-in defaults, the file (`--config PATH`, else
//! `$NTX_AGENT_CONFIG`, else `./agent.toml` when it exists), then the environment
//! variables listed in [`ENV_OVERRIDES`]. Relative paths in a file are resolved against
//! the file's directory (`~/` against `$HOME`); relative paths from the environment
//! against the working directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ntx_offchain::Network;
use serde::Deserialize;

pub use super::fetch_config::FetchConfig;
pub use super::market_config::{OfferConfig, PolicyConfig};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the agent config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has the wrong shape.
    #[error("the agent config {origin} is invalid: {detail}")]
    Parse {
        /// The file, or "the environment".
        origin: String,
        /// What is wrong (names the key).
        detail: String,
    },
    /// A value is out of range or inconsistent.
    #[error("the agent config is invalid: {0}")]
    Invalid(String),
}

/// The environment variables that override the file: `(variable, dotted key)`.
/// Values are read as TOML when they parse as a TOML value (numbers, booleans, arrays),
/// else as a plain string.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("NTX_NETWORK", "chain.network"),
    ("NTX_PROVIDER_URL", "chain.provider_url"),
    ("NTX_DEPLOYMENT", "deployment"),
    ("NTX_STATE_DIR", "state_dir"),
    ("NTX_LISTEN", "listen"),
    ("NTX_MODELS", "models"),
    ("NTX_POLL_INTERVAL_MS", "poll_interval_ms"),
    ("NTX_AGENT_KEY_FILE", "provider.agent_key_file"),
    ("NTX_PAYOUT_ADDRESS", "provider.payout_address"),
    ("NTX_PRICE_FLOOR", "provider.price_floor"),
    ("NTX_MAX_CONCURRENT_JOBS", "provider.max_concurrent_jobs"),
    ("NTX_PROVIDER_PUBLIC_URL", "provider.public_url"),
    ("NTX_SUBMIT_MARGIN_SECS", "provider.submit_margin_secs"),
    ("NTX_SETTLE_WARNING_SECS", "provider.settle_warning_secs"),
    ("NTX_FAST_PATH_SECS", "provider.fast_path_secs"),
    ("NTX_VERIFIER_KEY_FILE", "verifier.key_file"),
    ("NTX_VERIFIER_PUBLIC_URL", "verifier.public_url"),
    (
        "NTX_VERIFIER_MAX_CONCURRENT_JOBS",
        "verifier.max_concurrent_jobs",
    ),
    ("NTX_FETCH_ALLOW_PRIVATE", "fetch.allow_private_addresses"),
    ("NTX_OPERATOR_TOKEN", "operator_token"),
];

/// Where to find the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "NTX_AGENT_CONFIG";

/// How the agent reaches the chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// `mainnet`, `preprod`, `preview` or `devnet`.
    #[serde(deserialize_with = "network_from_str")]
    pub network: Network,
    /// A Blockfrost-compatible base URL; `None`: blockfrost.io (public networks,
    /// `BLOCKFROST_PROJECT_ID`) or the local devnet.
    #[serde(default)]
    pub provider_url: Option<String>,
}

fn network_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Network, D::Error> {
    let s = String::deserialize(d)?;
    Network::from_str(&s).map_err(serde::de::Error::custom)
}

/// The provider role: picks up jobs addressed to its agent key, computes, submits, claims.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The agent's hot key (cardano-cli `.skey`): signs Submit, pays fees and claims.
    pub agent_key_file: PathBuf,
    /// Where payouts go (bech32); a job whose datum pays anyone else is refused.
    pub payout_address: String,
    /// The lowest price accepted, in settlement-asset units (NTX: 10^-6 NTX).
    #[serde(default)]
    pub price_floor: u64,
    /// Jobs computed at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrent_jobs: usize,
    /// This agent's URL as others reach it: results are served at `{public_url}/results/{hash}`.
    pub public_url: String,
    /// A job is started only when at least this long remains before `submit_by`.
    #[serde(default = "default_submit_margin")]
    pub submit_margin_secs: u64,
    /// A submitted job without a quorum this close to `settle_by` is reported.
    #[serde(default = "default_settle_warning")]
    pub settle_warning_secs: u64,
    /// The fast path: a computed result is announced to the job's verifiers and
    /// waits this long for a quorum off chain, to be claimed straight from the
    /// lock (two transactions per job instead of three); without one by then
    /// (or `submit_margin_secs` before `submit_by`) it is submitted as before.
    /// 0 always submits.
    #[serde(default = "default_fast_path")]
    pub fast_path_secs: u64,
    /// Whom this provider lets judge its work (`[provider.policy]`).
    #[serde(default)]
    pub policy: PolicyConfig,
    /// What it advertises on chain (`[provider.offer]`).
    #[serde(default)]
    pub offer: OfferConfig,
}

/// The verifier role: re-checks submitted results and signs attestations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierConfig {
    /// The verifier's ed25519 key (cardano-cli `.skey`); its public key is what job
    /// datums list.
    pub key_file: PathBuf,
    /// This agent's URL as others reach it (what job specs list for this verifier).
    pub public_url: String,
    /// Jobs judged (downloaded, recomputed, signed) at once.
    #[serde(default = "default_verifier_concurrency")]
    pub max_concurrent_jobs: usize,
    /// What it advertises on chain (`[verifier.offer]`); fees and the deposit are
    /// paid from the key's own enterprise address.
    #[serde(default)]
    pub offer: OfferConfig,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Chain access.
    pub chain: ChainConfig,
    /// The deployment file (`ntx deploy` writes it).
    pub deployment: PathBuf,
    /// SQLite state and result bytes.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// HTTP listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Model directories this agent can run and check (each holds one model's files).
    #[serde(default)]
    pub models: Vec<PathBuf>,
    /// How often the chain is polled, in milliseconds.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// The provider role, if this agent is a provider.
    #[serde(default)]
    pub provider: Option<ProviderConfig>,
    /// The verifier role, if this agent is a verifier.
    #[serde(default)]
    pub verifier: Option<VerifierConfig>,
    /// How URLs from chain data and peers are fetched (`[fetch]`).
    #[serde(default)]
    pub fetch: FetchConfig,
    /// A secret that admits a request to the operator's routes (`GET /jobs`) as
    /// `Authorization: Bearer …` from anywhere; unset, they answer loopback only.
    #[serde(default)]
    pub operator_token: Option<String>,
}

fn default_concurrency() -> usize {
    1
}
fn default_verifier_concurrency() -> usize {
    2
}
fn default_submit_margin() -> u64 {
    30
}
fn default_fast_path() -> u64 {
    30
}
fn default_settle_warning() -> u64 {
    300
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(".ntx-agent")
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7070))
}
fn default_poll() -> u64 {
    2000
}

impl AgentConfig {
    /// Loads the layered configuration: `path` (or `$NTX_AGENT_CONFIG`, or
    /// `./agent.toml`), then the process environment.
    pub fn load(path: Option<&Path>) -> Result<AgentConfig, ConfigError> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => match std::env::var_os(CONFIG_ENV) {
                Some(p) => Some(PathBuf::from(p)),
                None => Some(PathBuf::from("agent.toml")).filter(|p| p.is_file()),
            },
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with(file.as_deref(), &env)
    }

    /// [`AgentConfig::load`] with an explicit file and environment (for tests).
    pub fn load_with(
        file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<AgentConfig, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    origin: path.display().to_string(),
                    detail: e.to_string(),
                })?;
                let base = path.parent().unwrap_or(Path::new("."));
                resolve_paths(table, base)
            }
            None => toml::Table::new(),
        };
        for (var, key) in ENV_OVERRIDES {
            if let Some((_, value)) = env.iter().find(|(k, _)| k == var) {
                set_dotted(&mut table, key, env_value(value));
            }
        }
        let origin = file
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(environment only)".into());
        let config: AgentConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    origin,
                    detail: e.to_string(),
                })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a config from TOML text (paths stay as written).
    pub fn from_toml(text: &str) -> Result<AgentConfig, ConfigError> {
        let config: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: "(text)".into(),
            detail: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.provider.is_none() && self.verifier.is_none() {
            return Err(ConfigError::Invalid(
                "no role: add a [provider] section, a [verifier] section, or both".into(),
            ));
        }
        if self.poll_interval_ms == 0 {
            return Err(ConfigError::Invalid(
                "poll_interval_ms must be at least 1".into(),
            ));
        }
        if let Some(p) = &self.provider {
            if p.max_concurrent_jobs == 0 {
                return Err(ConfigError::Invalid(
                    "provider.max_concurrent_jobs must be at least 1".into(),
                ));
            }
            check_url("provider.public_url", &p.public_url)?;
            p.policy.policy()?;
            p.offer.validate("provider")?;
            ntx_offchain::wallet::PaymentAddress::parse(&p.payout_address, self.chain.network)
                .map_err(|e| ConfigError::Invalid(format!("provider.payout_address: {e}")))?;
        }
        if let Some(v) = &self.verifier {
            if v.max_concurrent_jobs == 0 {
                return Err(ConfigError::Invalid(
                    "verifier.max_concurrent_jobs must be at least 1".into(),
                ));
            }
            check_url("verifier.public_url", &v.public_url)?;
            v.offer.validate("verifier")?;
        }
        self.fetch.validate()?;
        if self.operator_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::Invalid(
                "operator_token must be at least 16 characters (e.g. `openssl rand -hex 16`)"
                    .into(),
            ));
        }
        if (self.provider.is_some() || self.verifier.is_some()) && self.models.is_empty() {
            return Err(ConfigError::Invalid(
                "models is empty: list the model directories this agent serves".into(),
            ));
        }
        Ok(())
    }
}

fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(ConfigError::Invalid(format!(
            "{key} = {url:?} is not an http(s) URL"
        ))),
    }
}

/// Makes the file's relative paths relative to the file's directory.
fn resolve_paths(mut table: toml::Table, base: &Path) -> toml::Table {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let fix = |v: &mut toml::Value| {
        if let toml::Value::String(s) = v {
            if let (Some(rest), Some(home)) = (s.strip_prefix("~/"), &home) {
                *s = home.join(rest).display().to_string();
            } else if Path::new(s.as_str()).is_relative() {
                *s = base.join(s.as_str()).display().to_string();
            }
        }
    };
    for key in ["deployment", "state_dir"] {
        if let Some(v) = table.get_mut(key) {
            fix(v);
        }
    }
    if let Some(toml::Value::Array(models)) = table.get_mut("models") {
        models.iter_mut().for_each(fix);
    }
    for (section, key) in [("provider", "agent_key_file"), ("verifier", "key_file")] {
        if let Some(toml::Value::Table(t)) = table.get_mut(section)
            && let Some(v) = t.get_mut(key)
        {
            fix(v);
        }
    }
    table
}

fn env_value(text: &str) -> toml::Value {
    let wrapped = format!("v = {text}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.into())),
        Err(_) => toml::Value::String(text.into()),
    }
}

fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                set_dotted(t, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SAMPLE: &str = r#"
deployment = "deployment.json"
state_dir = "state"
listen = "127.0.0.1:7100"
models = ["models/minilm"]

[chain]
network = "devnet"
provider_url = "http://127.0.0.1:3000/api/v0"

[provider]
agent_key_file = "agent.skey"
payout_address = "PAYOUT"
price_floor = 1000000
public_url = "http://127.0.0.1:7100"
"#;

    fn sample() -> String {
        let payout =
            ntx_offchain::wallet::PaymentAddress::enterprise(Network::Devnet, [7; 28]).to_bech32();
        SAMPLE.replace("PAYOUT", &payout)
    }

    #[test]
    fn file_paths_are_relative_to_the_file_and_env_overrides_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, sample()).unwrap();
        let c = AgentConfig::load_with(Some(&path), &[]).unwrap();
        assert_eq!(c.deployment, dir.path().join("deployment.json"));
        assert_eq!(c.models, vec![dir.path().join("models/minilm")]);
        let p = c.provider.as_ref().unwrap();
        assert_eq!(p.agent_key_file, dir.path().join("agent.skey"));
        assert_eq!(p.price_floor, 1_000_000);
        assert_eq!(p.max_concurrent_jobs, 1);
        assert!(c.verifier.is_none());

        let env = vec![
            ("NTX_PRICE_FLOOR".to_string(), "5".to_string()),
            ("NTX_LISTEN".to_string(), "0.0.0.0:9000".to_string()),
            ("NTX_MODELS".to_string(), r#"["/m/a", "/m/b"]"#.to_string()),
            ("NTX_VERIFIER_KEY_FILE".to_string(), "/k/v.skey".to_string()),
            (
                "NTX_VERIFIER_PUBLIC_URL".to_string(),
                "http://10.0.0.2:7000".to_string(),
            ),
            ("NTX_MINILM_DIR".to_string(), "/ignored".to_string()),
        ];
        let c = AgentConfig::load_with(Some(&path), &env).unwrap();
        assert_eq!(c.provider.as_ref().unwrap().price_floor, 5);
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.models, vec![PathBuf::from("/m/a"), PathBuf::from("/m/b")]);
        let v = c.verifier.unwrap();
        assert_eq!(v.key_file, PathBuf::from("/k/v.skey"));
    }

    #[test]
    fn the_committed_examples_load() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let p = AgentConfig::load_with(Some(&examples.join("agent-provider.toml")), &[]).unwrap();
        let provider = p.provider.unwrap();
        assert!(p.verifier.is_none());
        assert!(provider.agent_key_file.is_absolute());
        assert!(!p.models[0].starts_with("~"));
        let v = AgentConfig::load_with(Some(&examples.join("agent-verifier.toml")), &[]).unwrap();
        assert!(v.provider.is_none() && v.verifier.is_some());
        assert_ne!(p.listen, v.listen);
    }

    #[test]
    fn mistakes_are_named() {
        let err = AgentConfig::from_toml(&sample().replace("price_floor", "price_flor"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("price_flor"), "{err}");
        let err = AgentConfig::from_toml(&sample().replace("\"devnet\"", "\"moon\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("moon"), "{err}");
        let no_role: String = sample().split("[provider]").next().unwrap().to_string();
        let err = AgentConfig::from_toml(&no_role).unwrap_err().to_string();
        assert!(err.contains("no role"), "{err}");
        let err = AgentConfig::from_toml(&sample().replace("http://127.0.0.1:7100", "ftp://x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("public_url"), "{err}");
        let err = AgentConfig::from_toml(&sample().replace("addr_test1", "addr1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("payout_address"), "{err}");
    }
}
