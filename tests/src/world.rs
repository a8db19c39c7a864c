//! The world the in-process agent tests (`agent_daemon.rs`, `agent_faults.rs`) run
//! in: a [`LiveDevnet`] with 200 ms slots and the escrow deployed, the tiny BERT,
//! a funded requester, an empty payout wallet, the agent key, three verifier keys
//! and the loopback ports the provider and the verifiers listen on.

use std::path::PathBuf;
use std::time::Duration;

use ntx_node_agent::{AgentConfig, BertFiles, HttpState, Store};
use ntx_offchain::Network;
use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::client::{EscrowClient, JobSpecDoc, LockRequest};
use ntx_offchain::wallet::{Signer, SigningKey, Wallet};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::LiveDevnet;
use crate::agents::{
    Agent, AgentToml, EMBED_INPUTS, ProviderToml, embed_spec, free_port, init_logs, lock_one,
    submit_records, tiny_bert_in, two_of_n_lock, verifier_keys, verifier_urls,
};

/// The price of every job the agent tests lock, and the provider's price floor.
pub const PRICE: u64 = 7_000_000;
/// The devnet's slot length.
pub const SLOT_MS: u64 = 200;
/// Upper bound for anything the agents do here; reaching it fails the test.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A devnet with the escrow deployed, and everything one provider and three
/// verifiers (2-of-3) need to run on it.
pub struct AgentWorld {
    /// The devnet.
    pub live: LiveDevnet,
    /// The chain API the agents use (the devnet's own unless a test puts a proxy
    /// in front of it).
    pub chain_url: String,
    /// The requester's client.
    pub client: EscrowClient,
    /// Holds the deployment, the model, the key files and the agents' state.
    pub dir: tempfile::TempDir,
    /// The deployment file.
    pub deployment: PathBuf,
    /// The tiny BERT's folder.
    pub model_dir: PathBuf,
    /// The tiny BERT's hashes.
    pub model: BertFiles,
    /// Pays for the jobs (100 ADA, ten prices).
    pub requester: Wallet,
    /// Where the provider's claims pay; empty at first.
    pub payout: Wallet,
    /// The provider's agent key (unfunded: see [`AgentWorld::fund_agent`]).
    pub agent_key: SigningKey,
    /// The three verifiers' keys, sorted by public key.
    pub verifier_keys: Vec<SigningKey>,
    /// Verifier `i` listens on `verifier_ports[i]`.
    pub verifier_ports: Vec<u16>,
    /// The provider listens here.
    pub provider_port: u16,
    /// How long [`AgentWorld::wait_for`] waits.
    pub patience: Duration,
}

impl AgentWorld {
    /// A fresh devnet ([`SLOT_MS`] slots), deployed; the tiny BERT written; patience
    /// [`PATIENCE`].
    pub async fn new() -> AgentWorld {
        init_logs();
        let live = LiveDevnet::start(SLOT_MS).await;
        let (info, client) = live.deploy().await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let deployment = dir.path().join("deployment.json");
        info.save(&deployment).expect("deployment saved");
        let (model_dir, model) = tiny_bert_in(dir.path());
        AgentWorld {
            chain_url: live.url.clone(),
            requester: live.wallet(2, 100, 10 * PRICE),
            payout: live.wallet(3, 0, 0),
            agent_key: SigningKey::from_normal_bytes(&[4; 32]),
            verifier_ports: (0..3).map(|_| free_port()).collect(),
            provider_port: free_port(),
            verifier_keys: verifier_keys(3),
            patience: PATIENCE,
            client,
            live,
            dir,
            deployment,
            model_dir,
            model,
        }
    }

    /// Polls `f` until it gives `Some`, failing after [`AgentWorld::patience`].
    pub async fn wait_for<T, F, Fut>(&self, what: &str, f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        crate::agents::wait_for(what, self.patience, f).await
    }

    /// The provider's agent wallet.
    pub fn agent_wallet(&self) -> Wallet {
        Wallet::new(Network::Devnet, self.agent_key.clone(), None)
    }

    /// Pays `ada` ADA into the agent wallet.
    pub fn fund_agent(&self, ada: u64) {
        self.live
            .devnet
            .fund_now(
                &self.agent_wallet().address().to_bech32(),
                ada * 1_000_000,
                0,
            )
            .expect("the faucet pays");
    }

    /// The agents' shared TOML: this world's deployment, folders and chain.
    pub fn agent_toml(&self) -> AgentToml<'_> {
        AgentToml::new(
            &self.deployment,
            self.dir.path(),
            &self.model_dir,
            &self.chain_url,
        )
    }

    /// The provider: price floor [`PRICE`], paying [`AgentWorld::payout`].
    pub fn provider_config(&self) -> AgentConfig {
        let p = ProviderToml::sole(&self.agent_key, self.provider_port, &self.payout, PRICE);
        self.agent_toml().provider(&p)
    }

    /// The provider on the fast path: it announces each result to the verifiers
    /// and waits up to `secs` for a quorum before it submits.
    pub fn fast_provider_config(&self, secs: u64) -> AgentConfig {
        let p = ProviderToml {
            fast_path_secs: secs,
            ..ProviderToml::sole(&self.agent_key, self.provider_port, &self.payout, PRICE)
        };
        self.agent_toml().provider(&p)
    }

    /// Verifier `i`.
    pub fn verifier_config(&self, i: usize) -> AgentConfig {
        let (key, port) = (&self.verifier_keys[i], self.verifier_ports[i]);
        self.agent_toml().verifier(i, key, port)
    }

    /// Starts the three verifiers.
    pub fn start_verifiers(&self) -> Vec<Agent> {
        (0..3)
            .map(|i| Agent::start(self.verifier_config(i)))
            .collect()
    }

    /// The verifiers' URLs.
    pub fn verifier_urls(&self) -> Vec<String> {
        verifier_urls(&self.verifier_ports)
    }

    /// An `embed` job on the tiny BERT, checked by the three verifiers.
    pub fn spec(&self) -> JobSpecDoc {
        embed_spec(
            &self.model,
            &self.verifier_keys,
            &self.verifier_ports,
            &EMBED_INPUTS,
        )
    }

    /// Locks one job for the provider and returns its id.
    pub async fn lock(&self) -> [u8; 32] {
        self.lock_with(PRICE, &self.payout, 90_000).await
    }

    /// Locks one job at `price`, paying `payout`, due `submit_in_ms` from now.
    pub async fn lock_with(&self, price: u64, payout: &Wallet, submit_in_ms: u64) -> [u8; 32] {
        self.lock_spec(self.spec(), price, payout, submit_in_ms)
            .await
    }

    /// Locks `spec` at `price`, paying `payout`, due `submit_in_ms` from now.
    pub async fn lock_spec(
        &self,
        spec: JobSpecDoc,
        price: u64,
        payout: &Wallet,
        submit_in_ms: u64,
    ) -> [u8; 32] {
        let request = self.lock_request(&spec, price, payout, submit_in_ms).await;
        lock_one(&self.client, &self.requester, request, |_| {}).await
    }

    /// The lock of `spec` for the provider at `price`, paying `payout`, due
    /// `submit_in_ms` from now and settled 90 s after that.
    pub async fn lock_request(
        &self,
        spec: &JobSpecDoc,
        price: u64,
        payout: &Wallet,
        submit_in_ms: u64,
    ) -> LockRequest {
        let now = self
            .client
            .slot_time(self.client.now_slot().await.expect("now"));
        two_of_n_lock(
            &self.requester,
            payout,
            self.agent_key.key_hash(),
            &self.verifier_keys,
            spec,
            price,
            (now + submit_in_ms, now + submit_in_ms + 90_000),
        )
    }

    /// The NTX units `w` holds.
    pub fn ntx(&self, w: &Wallet) -> u64 {
        self.live.balance(w).1
    }

    /// The escrow of `job_id`, while it is unspent.
    pub async fn escrow(&self, job_id: &[u8; 32]) -> Option<EscrowUtxo> {
        self.client.escrow(job_id).await.ok()
    }

    /// Submit records on chain for `job_id`.
    pub async fn submit_records(&self, job_id: &[u8; 32]) -> usize {
        submit_records(self.live.chain.as_ref(), job_id).await
    }

    /// Waits (for `what`) until `agent` has `job_id` at `stage`; returns its row.
    pub async fn wait_stage(
        &self,
        what: &str,
        agent: &Agent,
        job_id: &[u8; 32],
        stage: &str,
    ) -> serde_json::Value {
        self.wait_for(what, || async {
            agent.job(job_id).await.filter(|j| j["stage"] == stage)
        })
        .await
    }

    /// Waits until the payout wallet holds one [`PRICE`] and `provider` has recorded
    /// `job_id` as paid; returns its row.
    pub async fn wait_paid(&self, provider: &Agent, job_id: &[u8; 32]) -> serde_json::Value {
        self.wait_for("the provider's payout", || async {
            (self.ntx(&self.payout) == PRICE).then_some(())
        })
        .await;
        self.wait_stage(
            "the provider to record the payment",
            provider,
            job_id,
            "paid",
        )
        .await
    }

    /// Serves the stopped provider's state (`config`) on its port through the
    /// agent's HTTP API alone, until [`StateServer::stop`].
    pub async fn serve_provider_state(&self, config: &AgentConfig) -> StateServer {
        let store = Store::open(&config.state_dir).expect("the provider's state");
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .expect("the provider's port");
        let state = HttpState {
            store,
            script_hash: self.client.deployment().script.hash(),
            roles: vec!["provider"],
            operator_token: None,
            announcements: None,
        };
        let stop = CancellationToken::new();
        let task = {
            let c = stop.clone();
            tokio::spawn(async move {
                ntx_node_agent::serve_agent_http(
                    listener,
                    state,
                    async move { c.cancelled().await },
                )
                .await
            })
        };
        StateServer { stop, task }
    }
}

/// A provider's state served by [`AgentWorld::serve_provider_state`].
pub struct StateServer {
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl StateServer {
    /// Stops serving and waits until the port is free.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("joined").expect("served");
    }
}

/// Stops `provider` (when there is one), then every verifier.
pub async fn stop_all(provider: Option<&mut Agent>, verifiers: &mut [Agent]) {
    if let Some(p) = provider {
        p.stop().await;
    }
    for v in verifiers {
        v.stop().await;
    }
}
