//! Running node agents inside a test: a started agent, its TOML configuration
//! ([`AgentToml`], [`ProviderToml`]), the tiny BERT and the `embed` job spec the
//! agents compute, the chain-side checks (Submit records, the whole-chain audit),
//! and the small helpers the agent tests, the load test, `devnet_kill` and the
//! latency bench share.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ntx_node_agent::{AgentConfig, BertFiles, TinyBert, write_tiny_bert};
use ntx_offchain::Network;
use ntx_offchain::audit::{
    Audit, Outcome, SlotRange, Target, check, collect_history, render_table,
};
use ntx_offchain::builder::JobTerms;
use ntx_offchain::chain::ChainProvider;
use ntx_offchain::client::{EscrowClient, JobSpecDoc, LockRequest, METADATA_LABEL, SpecSource};
use ntx_offchain::protocol::Address;
use ntx_offchain::wallet::{KeyRole, Signer, SigningKey, Wallet};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Sends `tracing` output to the test's captured output (`RUST_LOG` filters it).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A wallet's address as the escrow's datum holds it.
pub fn address(w: &Wallet) -> Address {
    Address::from(w.address().as_pallas())
}

/// Writes `key` as `{dir}/{name}.skey` (cardano-cli TextEnvelope).
pub fn write_key(dir: &Path, name: &str, key: &SigningKey) -> PathBuf {
    let path = dir.join(format!("{name}.skey"));
    let text = key.to_text_envelope(KeyRole::Payment).expect("a plain key");
    std::fs::write(&path, text.as_bytes()).expect("key written");
    path
}

/// What every agent a test starts shares in its TOML: the deployment, the model
/// folder, the chain and how often to poll it, and the folder its key file and
/// state folder go in. [`AgentToml::provider`] and [`AgentToml::verifier`] add a
/// role and give the parsed [`AgentConfig`].
pub struct AgentToml<'a> {
    /// The deployment file (`deployment = …`).
    pub deployment: &'a Path,
    /// Where each agent's `{name}.skey` and state folder are made.
    pub dir: &'a Path,
    /// The one model folder (`models = […]`).
    pub model_dir: &'a Path,
    /// The devnet's Blockfrost-style API (`[chain] provider_url`).
    pub chain_url: String,
    /// `poll_interval_ms`.
    pub poll_interval_ms: u64,
}

/// A provider agent's own settings, for [`AgentToml::provider`].
pub struct ProviderToml<'a> {
    /// Its key file is written as `{dir}/{key_name}.skey`.
    pub key_name: &'a str,
    /// The agent key.
    pub key: &'a SigningKey,
    /// Its state folder: `{dir}/{state}`.
    pub state: &'a str,
    /// It listens on, and advertises, `127.0.0.1:{port}`.
    pub port: u16,
    /// Where its claims pay.
    pub payout: &'a Wallet,
    /// `price_floor`.
    pub price_floor: u64,
    /// `max_concurrent_jobs`.
    pub max_concurrent_jobs: u32,
    /// `fast_path_secs` (0: the slow path only, Submit then Claim).
    pub fast_path_secs: u64,
}

impl<'a> ProviderToml<'a> {
    /// The lone provider of the agent tests: key file `agent.skey`, state folder
    /// `provider-state`, two jobs at a time, on the slow path (Submit, then
    /// Claim: what most agent tests follow step by step).
    pub fn sole(key: &'a SigningKey, port: u16, payout: &'a Wallet, price_floor: u64) -> Self {
        ProviderToml {
            key_name: "agent",
            key,
            state: "provider-state",
            port,
            payout,
            price_floor,
            max_concurrent_jobs: 2,
            fast_path_secs: 0,
        }
    }
}

impl<'a> AgentToml<'a> {
    /// Agents polling every 200 ms.
    pub fn new(
        deployment: &'a Path,
        dir: &'a Path,
        model_dir: &'a Path,
        chain_url: impl Into<String>,
    ) -> Self {
        AgentToml {
            deployment,
            dir,
            model_dir,
            chain_url: chain_url.into(),
            poll_interval_ms: 200,
        }
    }

    /// The settings every role shares, for an agent keeping its state in
    /// `{dir}/{state}` and listening on `port`.
    fn common(&self, state: &str, port: u16) -> String {
        format!(
            r#"deployment = "{}"
state_dir = "{}"
listen = "127.0.0.1:{port}"
models = ["{}"]
poll_interval_ms = {}

[chain]
network = "devnet"
provider_url = "{}"
"#,
            self.deployment.display(),
            self.dir.join(state).display(),
            self.model_dir.display(),
            self.poll_interval_ms,
            self.chain_url,
        )
    }

    /// A provider (5 s submit margin, 30 s settle warning, `fast_path_secs` as
    /// given) whose policy accepts the
    /// test verifiers ([`verifier_keys`]`(8)`) at any threshold and judging window,
    /// and which publishes no offer; writes its key file.
    pub fn provider(&self, p: &ProviderToml<'_>) -> AgentConfig {
        let key = write_key(self.dir, p.key_name, p.key);
        let accepted: Vec<String> = verifier_keys(8)
            .iter()
            .map(|k| format!("\"{}\"", hex::encode(k.public_key())))
            .collect();
        let toml = format!(
            r#"{}
[provider]
agent_key_file = "{}"
payout_address = "{}"
price_floor = {}
max_concurrent_jobs = {}
public_url = "http://127.0.0.1:{}"
submit_margin_secs = 5
settle_warning_secs = 30
fast_path_secs = {}

[provider.policy]
verifiers = [{}]
min_judge_window_secs = 0

[provider.offer]
publish = false
"#,
            self.common(p.state, p.port),
            key.display(),
            p.payout.address().to_bech32(),
            p.price_floor,
            p.max_concurrent_jobs,
            p.port,
            p.fast_path_secs,
            accepted.join(", "),
        );
        AgentConfig::from_toml(&toml).expect("a provider config")
    }

    /// Verifier `i` (key file `verifier-{i}.skey`, state folder
    /// `verifier-{i}-state`) on `port`; writes its key file.
    pub fn verifier(&self, i: usize, key: &SigningKey, port: u16) -> AgentConfig {
        let name = format!("verifier-{i}");
        let key = write_key(self.dir, &name, key);
        let toml = format!(
            r#"{}
[verifier]
key_file = "{}"
public_url = "http://127.0.0.1:{port}"

[verifier.offer]
publish = false
"#,
            self.common(&format!("{name}-state"), port),
            key.display(),
        );
        AgentConfig::from_toml(&toml).expect("a verifier config")
    }
}

/// The three sentences the agent tests' `embed` jobs carry.
pub const EMBED_INPUTS: [&str; 3] = [
    "A man is eating food.",
    "The new movie is awesome.",
    "hello world",
];

/// `n` verifier keys (seeds `0x60`, `0x61`, …), sorted by public key.
pub fn verifier_keys(n: u8) -> Vec<SigningKey> {
    let mut keys: Vec<SigningKey> = (0..n)
        .map(|i| SigningKey::from_normal_bytes(&[0x60 + i; 32]))
        .collect();
    keys.sort_by_key(|k| k.public_key());
    keys
}

/// Writes the deterministic tiny BERT into `{dir}/tiny-bert`; returns that folder
/// and the model's hashes.
pub fn tiny_bert_in(dir: &Path) -> (PathBuf, BertFiles) {
    let model_dir = dir.join("tiny-bert");
    std::fs::create_dir_all(&model_dir).expect("model dir");
    let model = write_tiny_bert(&model_dir, &TinyBert::default()).expect("tiny BERT");
    (model_dir, model)
}

/// The auditor over the whole chain (`collect_history` and `check`, every slot)
/// for `client`'s escrow: it must find nothing, and exactly `jobs` jobs, every one
/// claimed. Returns the audit.
pub async fn audit_all_claimed(
    chain: &dyn ChainProvider,
    client: &EscrowClient,
    jobs: usize,
) -> Audit {
    let history = collect_history(
        chain,
        Target::of(&client.deployment().script),
        Network::Devnet,
        SlotRange::default(),
    )
    .await
    .expect("the history is collected");
    let audit = check(&history, Network::Devnet);
    assert!(audit.is_clean(), "{}", render_table(&audit));
    assert_eq!(audit.jobs.len(), jobs);
    assert!(
        audit.jobs.iter().all(|j| j.outcome == Outcome::Claimed),
        "every job claimed"
    );
    audit
}

/// The URLs of verifiers listening on loopback `ports`.
pub fn verifier_urls(ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect()
}

/// An `embed` job spec on `model` for `inputs`, naming verifier `keys[i]` at
/// loopback port `ports[i]`.
pub fn embed_spec(
    model: &BertFiles,
    keys: &[SigningKey],
    ports: &[u16],
    inputs: &[&str],
) -> JobSpecDoc {
    let verifiers: Vec<serde_json::Value> = keys
        .iter()
        .zip(verifier_urls(ports))
        .map(|(k, url)| serde_json::json!({"key": hex::encode(k.public_key()), "url": url}))
        .collect();
    let doc = serde_json::json!({
        "version": 1,
        "job": {
            "task": "embed",
            "model": {
                "weights": model.weights.to_hex(),
                "config": model.config.to_hex(),
                "tokenizer": model.tokenizer.to_hex(),
            },
            "inputs": inputs,
        },
        "verifiers": verifiers,
    });
    JobSpecDoc::parse(doc.to_string().as_bytes()).expect("a spec")
}

/// How many Submit records `chain` holds for `job_id` (transaction metadata under
/// the escrow's label).
pub async fn submit_records(chain: &dyn ChainProvider, job_id: &[u8; 32]) -> usize {
    let id = format!("0x{}", hex::encode(job_id));
    chain
        .metadata_by_label(METADATA_LABEL)
        .await
        .expect("metadata")
        .iter()
        .filter(|m| m.json["op"] == "submit" && m.json["job"] == id.as_str())
        .count()
}

/// One agent running in this process; cancelled when dropped.
pub struct Agent {
    /// Its HTTP API.
    pub url: String,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Agent {
    /// Starts `ntx_node_agent::run_agent` with `config`.
    pub fn start(config: AgentConfig) -> Agent {
        let cancel = CancellationToken::new();
        let url = format!("http://{}", config.listen);
        let c = cancel.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = ntx_node_agent::run_agent(config, c).await {
                panic!("the agent stopped with an error: {e}");
            }
        });
        Agent {
            url,
            cancel,
            task: Some(task),
        }
    }

    /// Cancels the agent and waits until it has stopped (graceful shutdown).
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            t.await.expect("the agent task ends cleanly");
        }
    }

    /// The agent's job rows (`GET /jobs`, page after page).
    pub async fn jobs(&self) -> Vec<serde_json::Value> {
        const PAGE: usize = 500;
        let mut rows = Vec::new();
        loop {
            let url = format!("{}/jobs?limit={PAGE}&offset={}", self.url, rows.len());
            let Ok(r) = reqwest::get(url).await else {
                return rows;
            };
            let page: Vec<serde_json::Value> = r.json().await.unwrap_or_default();
            let last = page.len() < PAGE;
            rows.extend(page);
            if last {
                return rows;
            }
        }
    }

    /// The agent's row for one job.
    pub async fn job(&self, job_id: &[u8; 32]) -> Option<serde_json::Value> {
        let id = hex::encode(job_id);
        self.jobs().await.into_iter().find(|j| j["job_id"] == id)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Polls `f` every 200 ms until it gives `Some`; fails the test after `patience`.
pub async fn wait_for<T, F, Fut>(what: &str, patience: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < patience, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Builds `request` as one lock transaction paid by `requester`, hands its id to
/// `before_send`, sends it and waits for one confirmation; returns the job's id.
pub async fn lock_one(
    client: &EscrowClient,
    requester: &Wallet,
    request: LockRequest,
    before_send: impl FnOnce([u8; 32]),
) -> [u8; 32] {
    let prepared = client
        .lock(requester, vec![request])
        .await
        .expect("the lock builds");
    before_send(prepared.tx_id());
    client.send(&prepared, 1).await.expect("locked");
    prepared.job_ids[0]
}

/// The lock of one job the agent tests give their provider: `requester` pays
/// `price` for `spec` (inline) to `payout`, served by the agent whose key hash is
/// `agent`, checked 2-of-n by `verifier_keys`, due by `submit_by` and settled by
/// `settle_by` (POSIX ms).
pub fn two_of_n_lock(
    requester: &Wallet,
    payout: &Wallet,
    agent: [u8; 28],
    verifier_keys: &[SigningKey],
    spec: &JobSpecDoc,
    price: u64,
    (submit_by, settle_by): (u64, u64),
) -> LockRequest {
    LockRequest {
        terms: JobTerms {
            requester: address(requester),
            provider: address(payout),
            agent,
            spec_hash: spec.hash().expect("hash"),
            price,
            verifiers: verifier_keys.iter().map(|k| k.public_key()).collect(),
            threshold: 2,
            submit_by,
            settle_by,
        },
        spec: SpecSource::Inline(spec.canonical_bytes().expect("canonical")),
    }
}
