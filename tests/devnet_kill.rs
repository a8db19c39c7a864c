//! The devnet killed with SIGKILL while agents are mid-job, then restarted from its
//! data directory on the same port.
//!
//! `ntx devnet up` runs as a child process (200 ms slots, a chain in a temporary data
//! directory). A requester locks four jobs for one provider agent, checked by three
//! verifier agents (2-of-3), all real `ntx_node_agent::run_agent`s in this process
//! pointed at the devnet's URL. As soon as the provider has a Submit or a Claim
//! recorded and in flight, the devnet is killed (`Child::kill`, SIGKILL on unix): no
//! shutdown, no flush. The agents keep running; their chain calls fail (the test
//! waits until both the provider's and a verifier's poll have failed), then the same
//! command is run again.
//!
//! Must hold: every block the devnet reported before the kill is still there, with
//! the same hash at the same height; the agents carry on by themselves; every job
//! settles with one Submit on chain, the provider is paid each price and each
//! escrow's ADA exactly, the requester holds exactly what it held after locking, and
//! the auditor finds nothing over the whole chain.
//!
//! A second test kills the devnet while a requester's `ntx job lock` waits for its
//! transaction, which the devnet had accepted into its mempool (the mempool is in
//! memory only, so the kill loses it): after the restart the command must send the
//! same transaction again and land it once, well before its 300 s wait runs out.
//!
//! Set `RUST_LOG=ntx_node_agent=info` to watch the agents; the devnet's own output is
//! in the failure messages.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ntx_node_agent::{AgentConfig, BertFiles};
use ntx_offchain::Network;
use ntx_offchain::chain::{BlockRange, Blockfrost, ChainProvider};
use ntx_offchain::client::{EscrowClient, JobSpecDoc, RESEND_AFTER};
use ntx_offchain::protocol::Asset;
use ntx_offchain::wallet::{Signer, SigningKey, Wallet};
use ntx_tests::agents::{
    Agent, AgentToml, ProviderToml, audit_all_claimed, embed_spec, free_port, lock_one,
    submit_records, tiny_bert_in, two_of_n_lock, verifier_keys, wait_for,
};
use ntx_tests::cli::{Ntx, Process, fee, finish_within, lock_args};
use serde_json::Value as Json;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

const PRICE: u64 = 7_000_000;
const JOBS: usize = 4;
const SLOT_MS: u64 = 200;
/// Upper bound for any one wait here; reaching it fails the test.
const PATIENCE: Duration = Duration::from_secs(90);

// --- the agents' warnings ---------------------------------------------------------

/// Every WARN or ERROR event the agents log: (when, target, message).
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<(Instant, String, String)>>>);

impl Warnings {
    /// Whether an event from a target containing `target` with a message
    /// containing `message` was logged after `since`.
    fn seen_since(&self, since: Instant, target: &str, message: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(t, tg, m)| *t >= since && tg.contains(target) && m.contains(message))
    }
}

struct MessageOf(String);

impl Visit for MessageOf {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.0 += &format!(" {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        // More verbose levels compare greater: keep WARN and ERROR.
        if *meta.level() > Level::WARN || !meta.target().starts_with("ntx_node_agent") {
            return;
        }
        let mut message = MessageOf(String::new());
        event.record(&mut message);
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push((
            Instant::now(),
            meta.target().to_string(),
            message.0,
        ));
    }
}

/// Records the agents' warnings; prints logs as `RUST_LOG` asks.
fn init_logs() -> Warnings {
    let warnings = Warnings::default();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(tracing_subscriber::EnvFilter::from_default_env()),
        )
        .with(warnings.clone())
        .init();
    warnings
}

// --- the devnet process -------------------------------------------------------------

/// `ntx devnet up --data-dir {data} --port {port}` as a child process, serving;
/// SIGKILLed when dropped. `run` names its log file.
async fn devnet_up(data: &Path, port: u16, slot_ms: u64, logs: &Path, run: &str) -> Process {
    ntx_tests::cli::devnet_up(
        env!("CARGO_BIN_EXE_ntx"),
        data,
        port,
        slot_ms,
        logs,
        run,
        PATIENCE,
    )
    .await
}

// --- the chain, over HTTP -------------------------------------------------------------

/// The devnet's API as this test reads it.
struct Api {
    http: reqwest::Client,
    /// `http://127.0.0.1:{port}`.
    root: String,
}

impl Api {
    fn url(&self) -> String {
        format!("{}/api/v0", self.root)
    }

    async fn get(&self, path: &str) -> Result<Json, String> {
        let r = self
            .http
            .get(format!("{}{path}", self.root))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let body: Json = r.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("GET {path}: HTTP {status}: {body}"));
        }
        Ok(body)
    }

    async fn post(&self, path: &str, body: Json) -> Json {
        let r = self
            .http
            .post(format!("{}{path}", self.root))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status();
        let answer: Json = r.json().await.unwrap_or_default();
        assert!(status.is_success(), "POST {path}: HTTP {status}: {answer}");
        answer
    }

    /// Pays `ada` ADA and `ntx` units to `wallet` from the faucet, in a block.
    async fn fund(&self, wallet: &Wallet, ada: u64, ntx: u64) {
        let address = wallet.address().to_bech32();
        self.post(
            "/devnet/fund",
            serde_json::json!({"address": address, "lovelace": ada * 1_000_000, "ntx": ntx}),
        )
        .await;
        self.post("/devnet/block", serde_json::json!({})).await;
    }

    async fn tip_height(&self) -> Result<u64, String> {
        let tip = self.get("/api/v0/blocks/latest").await?;
        tip["height"]
            .as_u64()
            .ok_or_else(|| format!("no height in {tip}"))
    }

    /// Adds every block up to the tip that `blocks` lacks: height → hash.
    async fn record_blocks(&self, blocks: &mut BTreeMap<u64, String>) -> Result<(), String> {
        let tip = self.tip_height().await?;
        for h in 0..=tip {
            if blocks.contains_key(&h) {
                continue;
            }
            let b = self.get(&format!("/api/v0/blocks/{h}")).await?;
            let hash = b["hash"].as_str().ok_or_else(|| format!("no hash: {b}"))?;
            blocks.insert(h, hash.to_string());
        }
        Ok(())
    }
}

// --- the test ---------------------------------------------------------------------

struct World {
    api: Api,
    chain: Arc<dyn ChainProvider>,
    client: EscrowClient,
    dir: tempfile::TempDir,
    deployment: PathBuf,
    model_dir: PathBuf,
    model: BertFiles,
    requester: Wallet,
    payout: Wallet,
    agent_key: SigningKey,
    verifier_keys: Vec<SigningKey>,
    verifier_ports: Vec<u16>,
    provider_port: u16,
}

fn wallet(seed: u8) -> Wallet {
    Wallet::new(
        Network::Devnet,
        SigningKey::from_normal_bytes(&[seed; 32]),
        None,
    )
}

impl World {
    /// The agents' shared TOML: this world's deployment, folders and chain.
    fn agent_toml(&self) -> AgentToml<'_> {
        AgentToml::new(
            &self.deployment,
            self.dir.path(),
            &self.model_dir,
            self.api.url(),
        )
    }

    fn provider_config(&self) -> AgentConfig {
        let p = ProviderToml::sole(&self.agent_key, self.provider_port, &self.payout, PRICE);
        self.agent_toml().provider(&p)
    }

    fn verifier_config(&self, i: usize) -> AgentConfig {
        let (key, port) = (&self.verifier_keys[i], self.verifier_ports[i]);
        self.agent_toml().verifier(i, key, port)
    }

    /// Job `n`: an `embed` job on the tiny BERT, checked by the three verifiers.
    fn spec(&self, n: usize) -> JobSpecDoc {
        let first = format!("job {n}: a man is eating food.");
        let inputs = [first.as_str(), "hello world"];
        embed_spec(
            &self.model,
            &self.verifier_keys,
            &self.verifier_ports,
            &inputs,
        )
    }

    /// Locks job `n` (one transaction, confirmed) and returns its id.
    async fn lock(&self, n: usize) -> [u8; 32] {
        let spec = self.spec(n);
        let now = self
            .client
            .slot_time(self.client.now_slot().await.expect("now"));
        let request = two_of_n_lock(
            &self.requester,
            &self.payout,
            self.agent_key.key_hash(),
            &self.verifier_keys,
            &spec,
            PRICE,
            (now + 120_000, now + 240_000),
        );
        lock_one(&self.client, &self.requester, request, |_| {}).await
    }

    /// Lovelace and NTX units held by `w`, read from the chain.
    async fn balance(&self, w: &Wallet) -> (u64, u64) {
        let ntx = self.client.deployment().script.settlement().clone();
        let addr = pallas_addresses::Address::Shelley(w.address().as_pallas().clone());
        self.chain
            .utxos_at(&addr)
            .await
            .expect("the devnet answers")
            .iter()
            .map(|u| {
                (
                    u.output.value.lovelace,
                    u.output.value.quantity_of(&ntx.policy, &ntx.name),
                )
            })
            .fold((0, 0), |(l, n), (a, b)| (l + a, n + b))
    }

    async fn submit_records(&self, job_id: &[u8; 32]) -> usize {
        submit_records(self.chain.as_ref(), job_id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_devnet_killed_mid_job_and_restarted_loses_no_block_and_every_job_settles() {
    let warnings = init_logs();
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("devnet");
    let port = free_port();
    let mut devnet = devnet_up(&data, port, SLOT_MS, dir.path(), "first").await;
    let api = Api {
        http: reqwest::Client::new(),
        root: format!("http://127.0.0.1:{port}"),
    };
    let chain: Arc<dyn ChainProvider> = Arc::new(
        Blockfrost::for_network(Network::Devnet, Some(api.url().as_str())).expect("a client"),
    );
    let status = api
        .get("/devnet/status")
        .await
        .expect("the devnet's status");
    let unit = hex::decode(status["ntx_unit"].as_str().expect("the NTX unit")).expect("hex");
    let ntx = Asset {
        policy: unit[..28].try_into().expect("a policy id"),
        name: unit[28..].to_vec(),
    };

    let deployer = wallet(1);
    api.fund(&deployer, 100, 0).await;
    let info = EscrowClient::deploy(chain.clone(), Network::Devnet, &ntx, &deployer)
        .await
        .expect("deploys")
        .info;
    let client = EscrowClient::connect(chain.clone(), &info)
        .await
        .expect("connects");
    let deployment = dir.path().join("deployment.json");
    info.save(&deployment).expect("deployment saved");
    let (model_dir, model) = tiny_bert_in(dir.path());
    let verifier_keys = verifier_keys(3);
    let w = World {
        requester: wallet(2),
        payout: wallet(3),
        agent_key: SigningKey::from_normal_bytes(&[4; 32]),
        verifier_ports: (0..3).map(|_| free_port()).collect(),
        provider_port: free_port(),
        verifier_keys,
        api,
        chain,
        client,
        dir,
        deployment,
        model_dir,
        model,
    };
    w.api.fund(&w.requester, 100, JOBS as u64 * PRICE).await;
    let agent_wallet = Wallet::new(Network::Devnet, w.agent_key.clone(), None);
    w.api.fund(&agent_wallet, 50, 0).await;

    let mut verifiers: Vec<Agent> = (0..3).map(|i| Agent::start(w.verifier_config(i))).collect();
    let mut jobs = Vec::new();
    for n in 0..JOBS {
        jobs.push(w.lock(n).await);
    }
    let after_locks = w.balance(&w.requester).await;
    assert_eq!(after_locks.1, 0, "every NTX is in the escrows");
    // What each escrow pays the provider: the price and the escrow's ADA.
    let mut owed_lovelace = 0;
    for id in &jobs {
        let escrow = w.client.escrow(id).await.expect("locked");
        owed_lovelace += escrow.payout(w.client.deployment()).lovelace;
    }
    // The provider starts once every escrow has been read: started earlier, it could
    // claim a job before the loop above reads its escrow.
    let mut provider = Agent::start(w.provider_config());

    // Mid-job: the provider has a Submit or a Claim recorded and not yet confirmed.
    // Meanwhile every block the devnet reports is recorded.
    let mut blocks = BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    let in_flight = loop {
        w.api
            .record_blocks(&mut blocks)
            .await
            .expect("the blocks so far");
        let rows = provider.jobs().await;
        let sending: Vec<Json> = rows
            .iter()
            .filter(|j| j["stage"] == "submitting" || j["stage"] == "claiming")
            .cloned()
            .collect();
        if !sending.is_empty() {
            break sending;
        }
        let paid = rows.iter().filter(|j| j["stage"] == "paid").count();
        assert!(
            paid < JOBS && Instant::now() < deadline,
            "never caught the provider sending a transaction (rows: {rows:?})"
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    };
    w.api
        .record_blocks(&mut blocks)
        .await
        .expect("the blocks so far");
    let mempool = w
        .api
        .get("/devnet/status")
        .await
        .map(|s| s["mempool"].clone());
    devnet.kill();
    let killed_at = Instant::now();
    let (&kill_height, kill_hash) = blocks.last_key_value().expect("blocks");
    let kill_hash = kill_hash.clone();
    eprintln!(
        "killed the devnet at height {kill_height} ({} s in), mempool {mempool:?}, provider sending: {}",
        started.elapsed().as_secs(),
        in_flight
            .iter()
            .map(|j| format!("{} {}", j["job_id"], j["stage"]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        w.api.get("/api/v0/blocks/latest").await.is_err(),
        "the devnet is down"
    );

    // The agents notice: their chain calls fail (after the client's retries), and
    // they keep running.
    wait_for(
        "the provider and a verifier to fail a poll",
        PATIENCE,
        || async {
            (warnings.seen_since(killed_at, "ntx_node_agent", "provider poll failed")
                && warnings.seen_since(killed_at, "ntx_node_agent", "verifier poll failed"))
            .then_some(())
        },
    )
    .await;
    for a in verifiers.iter().chain([&provider]) {
        let health = reqwest::get(format!("{}/health", a.url))
            .await
            .expect("the agent still serves");
        assert!(health.status().is_success(), "{}", a.url);
    }
    let outage = killed_at.elapsed();

    // The same command again, on the same data directory and port.
    let devnet = devnet_up(&data, port, SLOT_MS, w.dir.path(), "second").await;
    for (h, hash) in &blocks {
        let b = w
            .api
            .get(&format!("/api/v0/blocks/{h}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "block {h} (reported before the kill) is gone: {e}\n{}",
                    devnet.output()
                )
            });
        assert_eq!(
            b["hash"].as_str(),
            Some(hash.as_str()),
            "block {h} changed across the kill"
        );
    }
    let resumed_height = w.api.tip_height().await.expect("the tip");
    assert!(
        resumed_height >= kill_height,
        "the tip went back from {kill_height} to {resumed_height}"
    );

    // The agents carry on by themselves: every job is paid.
    wait_for("every job paid after the restart", PATIENCE, || async {
        (w.balance(&w.payout).await.1 == JOBS as u64 * PRICE).then_some(())
    })
    .await;
    for id in &jobs {
        wait_for("the provider to record the payment", PATIENCE, || async {
            provider.job(id).await.filter(|j| j["stage"] == "paid")
        })
        .await;
        assert!(w.client.escrow(id).await.is_err(), "the escrow is spent");
        assert_eq!(w.submit_records(id).await, 1, "one Submit on chain per job");
    }
    let payout_addr = pallas_addresses::Address::Shelley(w.payout.address().as_pallas().clone());
    let claims = w
        .chain
        .address_transactions(&payout_addr, BlockRange::ALL)
        .await
        .expect("the payout address's history")
        .len();
    assert!(
        (1..=JOBS).contains(&claims),
        "at most one Claim per job (several may share a transaction): {claims}"
    );
    assert_eq!(
        w.balance(&w.payout).await,
        (owed_lovelace, JOBS as u64 * PRICE),
        "the provider is paid each price and each escrow's ADA, once"
    );
    assert_eq!(
        w.balance(&w.requester).await,
        after_locks,
        "the requester neither paid more nor got anything back"
    );
    audit_all_claimed(w.chain.as_ref(), &w.client, JOBS).await;
    // The block at the kill's height is still the one reported then, and the chain
    // grew on it.
    let next = w
        .api
        .get(&format!("/api/v0/blocks/{}", kill_height + 1))
        .await
        .expect("the chain grew after the restart");
    assert_eq!(next["previous_block"].as_str(), Some(kill_hash.as_str()));
    eprintln!(
        "devnet down {:.1} s; {} blocks kept; {claims} claim transaction(s); test took {:.1} s",
        outage.as_secs_f64(),
        blocks.len(),
        started.elapsed().as_secs_f64()
    );

    provider.stop().await;
    for v in &mut verifiers {
        v.stop().await;
    }
    drop(devnet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_the_killed_devnet_lost_from_its_mempool_is_sent_again_and_lands_once() {
    // Slow slots: the lock waits in the mempool long enough to be killed there.
    const SLOW_SLOT_MS: u64 = 3000;
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("devnet");
    let port = free_port();
    let mut devnet = devnet_up(&data, port, SLOW_SLOT_MS, dir.path(), "first").await;
    let api = Api {
        http: reqwest::Client::new(),
        root: format!("http://127.0.0.1:{port}"),
    };
    let cli = Ntx::new(env!("CARGO_BIN_EXE_ntx"), dir.path(), api.url());
    let ntx = |args: &[&str]| cli.json(args);
    let keys = cli.new_wallets(&["requester", "provider", "agent"]);
    let field = |who: &str, f: &str| keys[who][f].as_str().expect(f).to_string();
    let requester = field("requester", "address");
    cli.fund(&requester, "300", "100");
    // A pure-ADA UTxO for collateral, so the lock is the only transaction sent.
    ntx(&["devnet", "fund", &requester, "--ada", "10"]);
    ntx(&["deploy", "--wallet", "requester.skey"]);
    let spec = serde_json::json!({
        "version": 1,
        "job": {"task": "embed", "inputs": ["hello"]},
        "verifiers": [{"key": keys["agent"]["public_key"], "url": "http://127.0.0.1:1"}],
    });
    std::fs::write(dir.path().join("job.json"), spec.to_string()).expect("spec");
    let before = cli.balance("requester.skey");

    let started = Instant::now();
    let mut args = lock_args(
        &field("provider", "address"),
        &field("agent", "key_hash"),
        "3",
        "30m",
        "1h",
    );
    args.push("--json".into());
    let mut lock = cli.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // The lock in the mempool: kill the devnet there, and start it again at once.
    let status = loop {
        if let Ok(s) = api.get("/devnet/status").await
            && s["mempool"].as_u64() > Some(0)
        {
            break s;
        }
        assert!(
            lock.try_wait().expect("the child").is_none(),
            "ntx job lock ended before its transaction was seen in the mempool"
        );
        assert!(started.elapsed() < PATIENCE, "no lock in the mempool");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    devnet.kill();
    let devnet = devnet_up(&data, port, SLOW_SLOT_MS, dir.path(), "second").await;
    let tip_then = status["tip"]["height"].as_u64().expect("a height");
    let tip_now = api.tip_height().await.expect("the tip");
    if tip_now > tip_then {
        // The lock's block was made between the status and the kill.
        eprintln!("note: the lock made it into block {tip_now} before the kill");
    }

    let patience = RESEND_AFTER + Duration::from_secs(50);
    let out = finish_within(
        lock,
        started,
        patience,
        "ntx job lock (the lost lock was not sent again?)",
        || devnet.output(),
    )
    .await;
    let took = started.elapsed();
    let locked: Json = serde_json::from_slice(&out.stdout).expect("JSON");
    let tx = locked["tx_id"].as_str().expect("tx id");
    let on_chain = api
        .get(&format!("/api/v0/txs/{tx}"))
        .await
        .expect("the lock is on chain");
    assert!(on_chain["block_height"].as_u64() > Some(tip_then));
    let escrows = cli.escrows();
    assert_eq!(escrows.len(), 1, "one escrow: {escrows:?}");
    let job = locked["job_id"].as_str().expect("job id");
    let shown = ntx(&["job", "show", job]);
    let deposit = shown["deposit_lovelace"].as_u64().expect("deposit");
    assert_eq!(
        cli.balance("requester.skey"),
        (before.0 - deposit - fee(&locked), before.1 - 3_000_000),
        "locked once, to the lovelace and the unit"
    );
    eprintln!("the lost lock landed {took:.1?} after it was sent");
}
