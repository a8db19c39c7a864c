//! The provider agent, a real `ntx agent run --config provider.toml` child process,
//! killed with SIGKILL (`Child::kill`) at each stage of a job, and restarted with the
//! same command on the same state folder.
//!
//! A devnet served in this process (200 ms slots), the tiny BERT, three verifiers
//! (2-of-3) running in this process. The provider reaches the chain through a proxy
//! that the test switches between passing everything and holding one kind of request
//! (never answering it, or answering only after forwarding it), so that each kill
//! lands at a chosen point rather than wherever the timing puts it. One job is killed
//! five times:
//!
//! 1. **after fetching the spec**: the proxy holds every request after the one that
//!    read the lock's metadata (the inline spec), so the provider is stopped before
//!    inference (its row `accepted`, no inference run counted);
//! 2. **after inference**: the proxy holds the agent wallet's UTxO query that building
//!    the Submit needs; killed once the row says `computed`;
//! 3. **after submitting**: the Submit is forwarded to the devnet and its answer held;
//!    killed once the escrow is submitted on chain (the row still says `submitting`);
//! 4. **after a quorum**: the verifiers' attestations reach the provider, which records
//!    its Claim (`claiming`) and sends it; the proxy holds the Claim unforwarded;
//! 5. **after claiming**: restarted, the provider sends the recorded Claim again; the
//!    proxy forwards it and holds the answer; killed once the escrow is gone from the
//!    chain (the row still says `claiming`).
//!
//! The sixth run, with nothing held, must record the job paid. Then: exactly one
//! Submit record for the job, exactly one transaction paying the payout address
//! (which receives nothing but claims), the provider paid the price and the escrow's
//! ADA exactly once, the requester holding exactly what it held after locking, one
//! inference run, and the auditor finding nothing.
//!
//! A kill is sent the moment the test sees the stage; the process may have gone a
//! little further by the time SIGKILL lands (in 2 and 4 it is held where it is; in 1
//! it cannot pass the held request). `a_provider_killed_whenever_a_row_changes_stage`
//! kills without holding anything, at whatever the provider is doing when one of its
//! rows changes stage, over three jobs.
//!
//! The second test found a bug: a recorded Claim refused on resending because it
//! was itself pending or on chain was forgotten, and the job recorded `closed`, not
//! `paid` (fixed in `resend_claim`, `node-agent/src/daemon/provider.rs`).
//!
//! The provider's logs are in `{tempdir}/provider-{run}.log`; a failure prints the
//! last run's.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use ntx_node_agent::BertFiles;
use ntx_offchain::Network;
use ntx_offchain::chain::BlockRange;
use ntx_offchain::client::EscrowClient;
use ntx_offchain::protocol::JobState;
use ntx_offchain::wallet::{SigningKey, Wallet};
use ntx_tests::LiveDevnet;
use ntx_tests::agents::{
    Agent, AgentToml, ProviderToml, audit_all_claimed, embed_spec, free_port, init_logs, lock_one,
    submit_records, tiny_bert_in, two_of_n_lock, verifier_keys,
};
use ntx_tests::cli::{Process, agent_config_toml, wait_until_serving};
use ntx_tests::proxy::{Upstream, is_submit, path};
use serde_json::Value as Json;

const PRICE: u64 = 7_000_000;
const SLOT_MS: u64 = 200;
/// Upper bound for any one wait here; reaching it fails the test. A restarted
/// provider whose recorded Claim was refused looks for it for up to 30 s
/// (`EscrowClient::resend`) before claiming anew, and a wait can span two such
/// restarts.
const PATIENCE: Duration = Duration::from_secs(120);

// --- the proxy between the provider and the devnet -----------------------------------

/// What the proxy does with the provider's requests.
#[derive(Clone, Debug)]
enum Mode {
    /// Forwards everything.
    Pass,
    /// Forwards until it has answered a request whose path contains this, then holds
    /// every request (never forwarded, never answered).
    HoldAfter(String),
    /// Holds every request whose path contains this.
    Hold(String),
    /// Forwards transaction submissions, then holds their answers.
    HoldSubmitAnswers,
}

struct Gate {
    upstream: Upstream,
    mode: Mutex<Mode>,
    /// Set once [`Mode::HoldAfter`]'s request was answered.
    tripped: std::sync::atomic::AtomicBool,
    /// Requests held so far (all modes).
    held: AtomicUsize,
    /// Transaction submissions forwarded to the devnet.
    submits_forwarded: AtomicUsize,
}

impl Gate {
    fn set(&self, mode: Mode) {
        self.tripped.store(false, Ordering::SeqCst);
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Never returns: the request is held until the connection or the test ends.
    async fn hold(&self) -> Response {
        self.held.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
        unreachable!()
    }
}

async fn gated(
    axum::extract::State(g): axum::extract::State<Arc<Gate>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mode = g.mode.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let submit = is_submit(&method, &uri);
    match &mode {
        Mode::HoldAfter(_) if g.tripped.load(Ordering::SeqCst) => return g.hold().await,
        Mode::Hold(p) if path(&uri).contains(p.as_str()) => return g.hold().await,
        _ => {}
    }
    let Some(answer) = g.upstream.forward(&method, &uri, &headers, body).await else {
        return axum::http::StatusCode::BAD_GATEWAY.into_response();
    };
    if submit {
        g.submits_forwarded.fetch_add(1, Ordering::SeqCst);
    }
    match &mode {
        Mode::HoldAfter(p) if path(&uri).contains(p.as_str()) => {
            g.tripped.store(true, Ordering::SeqCst);
        }
        Mode::HoldSubmitAnswers if submit => return g.hold().await,
        _ => {}
    }
    answer.into_response()
}

// --- the world ------------------------------------------------------------------------

struct World {
    live: LiveDevnet,
    client: EscrowClient,
    dir: tempfile::TempDir,
    model: BertFiles,
    requester: Wallet,
    payout: Wallet,
    agent: Wallet,
    verifier_keys: Vec<SigningKey>,
    verifier_ports: Vec<u16>,
    verifiers: Vec<Agent>,
    gate: Arc<Gate>,
    /// `ntx agent run --config {config}`.
    config: PathBuf,
    /// The provider's HTTP API.
    provider_url: String,
    runs: usize,
}

impl World {
    async fn new(jobs: u64) -> World {
        init_logs();
        let live = LiveDevnet::start(SLOT_MS).await;
        let (info, client) = live.deploy().await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let deployment = dir.path().join("deployment.json");
        info.save(&deployment).expect("deployment saved");
        let (model_dir, model) = tiny_bert_in(dir.path());
        let agent_key = SigningKey::from_normal_bytes(&[4; 32]);
        let agent = Wallet::new(Network::Devnet, agent_key.clone(), None);
        live.devnet
            .fund_now(&agent.address().to_bech32(), 50_000_000, 0)
            .expect("the faucet pays");
        let payout = live.wallet(3, 0, 0);
        let verifier_keys = verifier_keys(3);
        let verifier_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();

        // The verifiers use the devnet directly; the provider goes through the gate.
        let toml = AgentToml::new(&deployment, dir.path(), &model_dir, live.url.clone());
        let verifiers = (0..3)
            .map(|i| Agent::start(toml.verifier(i, &verifier_keys[i], verifier_ports[i])))
            .collect();
        let gate = Arc::new(Gate {
            upstream: Upstream::new(&live.url),
            mode: Mutex::new(Mode::Pass),
            tripped: Default::default(),
            held: AtomicUsize::new(0),
            submits_forwarded: AtomicUsize::new(0),
        });
        let gate_url =
            ntx_tests::proxy::serve(axum::Router::new().fallback(gated).with_state(gate.clone()))
                .await;
        let port = free_port();
        let provider = AgentToml::new(&deployment, dir.path(), &model_dir, gate_url)
            .provider(&ProviderToml::sole(&agent_key, port, &payout, PRICE));
        let config = dir.path().join("provider.toml");
        std::fs::write(&config, agent_config_toml(&provider)).expect("provider.toml");
        World {
            requester: live.wallet(2, 100, jobs * PRICE),
            payout,
            agent,
            verifier_keys,
            verifier_ports,
            verifiers,
            gate,
            config,
            provider_url: format!("http://127.0.0.1:{port}"),
            runs: 0,
            client,
            live,
            dir,
            model,
        }
    }

    /// Starts `ntx agent run --config provider.toml` (no `NTX_*` variable from this
    /// process's environment) and waits until its API answers.
    async fn start_provider(&mut self) -> Process {
        self.runs += 1;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ntx"));
        cmd.args(["agent", "run", "--config"])
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info");
        for (var, _) in std::env::vars() {
            if var.starts_with("NTX_") {
                cmd.env_remove(var);
            }
        }
        let log = self.dir.path().join(format!("provider-{}.log", self.runs));
        let mut provider = Process::spawn(cmd, log);
        let health = format!("{}/health", self.provider_url);
        wait_until_serving(&mut provider, &health, PATIENCE, "ntx agent run").await;
        provider
    }

    /// Job `n`: an `embed` job on the tiny BERT, locked (confirmed); returns its id.
    /// `before_send` gets the lock's transaction id before it is sent.
    async fn lock(&self, n: usize, before_send: impl FnOnce([u8; 32])) -> [u8; 32] {
        let first = format!("job {n}: a man is eating food.");
        let spec = embed_spec(
            &self.model,
            &self.verifier_keys,
            &self.verifier_ports,
            &[first.as_str(), "hello world"],
        );
        let now = self
            .client
            .slot_time(self.client.now_slot().await.expect("now"));
        let request = two_of_n_lock(
            &self.requester,
            &self.payout,
            self.agent.key_hash(),
            &self.verifier_keys,
            &spec,
            PRICE,
            (now + 120_000, now + 240_000),
        );
        lock_one(&self.client, &self.requester, request, before_send).await
    }

    /// The provider's rows (`GET /jobs`); none while it is down.
    async fn rows(&self) -> Vec<Json> {
        let Ok(r) = reqwest::get(format!("{}/jobs", self.provider_url)).await else {
            return Vec::new();
        };
        r.json().await.unwrap_or_default()
    }

    /// The provider's row for `job_id`.
    async fn row(&self, job_id: &[u8; 32]) -> Option<Json> {
        let id = hex::encode(job_id);
        self.rows().await.into_iter().find(|j| j["job_id"] == id)
    }

    /// Polls every 5 ms (a stage can be short) until `f` gives `Some`, failing the
    /// test with the provider's log after [`PATIENCE`].
    async fn watch<T, F, Fut>(&self, provider: &mut Process, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(v) = f().await {
                return v;
            }
            provider.assert_running("ntx agent run");
            assert!(
                start.elapsed() < PATIENCE,
                "gave up waiting for {what}:\n{}",
                provider.output()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn escrow_state(&self, job_id: &[u8; 32]) -> Option<JobState> {
        self.client.escrow(job_id).await.ok().map(|e| e.datum.state)
    }

    /// Transactions that paid the payout address (it receives nothing but claims).
    async fn claim_txs(&self) -> usize {
        let addr = pallas_addresses::Address::Shelley(self.payout.address().as_pallas().clone());
        self.live
            .chain
            .address_transactions(&addr, BlockRange::ALL)
            .await
            .expect("the payout address's history")
            .len()
    }

    /// Every provider run's warnings and errors, by run.
    fn warnings(&self) -> String {
        let mut out = String::new();
        for run in 1..=self.runs {
            let log = self.dir.path().join(format!("provider-{run}.log"));
            let text = std::fs::read_to_string(log).unwrap_or_default();
            for line in text
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            {
                out += &format!("run {run}: {line}\n");
            }
        }
        out
    }

    async fn stop(mut self) {
        for v in &mut self.verifiers {
            v.stop().await;
        }
    }
}

/// Kills `provider` (SIGKILL) and says where, with its row then.
fn kill(provider: &mut Process, stage: &str, row: &Json) {
    provider.kill();
    eprintln!(
        "killed {stage}: row stage {}, compute runs {}",
        row["stage"], row["compute_runs"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_killed_at_each_stage_of_a_job_submits_and_claims_once() {
    let started = Instant::now();
    let mut w = World::new(1).await;
    let g = w.gate.clone();
    let paid_before = w.live.balance(&w.payout);
    assert_eq!(paid_before, (0, 0));

    // 1. After fetching the spec: everything after the lock's metadata is held.
    let mut provider = w.start_provider().await;
    let job_id = w
        .lock(0, |lock_tx| {
            g.set(Mode::HoldAfter(format!(
                "/txs/{}/metadata",
                hex::encode(lock_tx)
            )))
        })
        .await;
    let after_lock = w.live.balance(&w.requester);
    let owed = w
        .client
        .escrow(&job_id)
        .await
        .expect("locked")
        .payout(w.client.deployment());
    let row = w
        .watch(
            &mut provider,
            "the spec fetched, then a request held",
            || async {
                let row = w.row(&job_id).await?;
                (g.tripped.load(Ordering::SeqCst) && g.held() > 0).then_some(row)
            },
        )
        .await;
    kill(&mut provider, "after fetching the spec", &row);
    assert_eq!(row["stage"], "accepted");
    assert_eq!(row["compute_runs"], 0, "stopped before inference");

    // 2. After inference: building the Submit needs the agent wallet's UTxOs; held.
    let agent_addr = w.agent.address().to_bech32();
    g.set(Mode::Hold(format!("/addresses/{agent_addr}/utxos")));
    let mut provider = w.start_provider().await;
    let row = w
        .watch(&mut provider, "the job computed", || async {
            w.row(&job_id).await.filter(|r| r["stage"] == "computed")
        })
        .await;
    kill(&mut provider, "after inference", &row);
    assert_eq!(row["compute_runs"], 1);
    assert_eq!(submit_records(w.live.chain.as_ref(), &job_id).await, 0);

    // 3. After submitting: the Submit reaches the devnet, its answer is held.
    g.set(Mode::HoldSubmitAnswers);
    let mut provider = w.start_provider().await;
    w.watch(&mut provider, "the Submit on chain", || async {
        matches!(
            w.escrow_state(&job_id).await,
            Some(JobState::Submitted { .. })
        )
        .then_some(())
    })
    .await;
    let row = w.row(&job_id).await.expect("the row");
    kill(&mut provider, "after submitting", &row);
    assert_eq!(row["stage"], "submitting", "it never heard the answer");

    // 4. After a quorum: the verifiers' attestations reach the provider, which
    // records its Claim and sends it; the Claim is held, never forwarded.
    g.set(Mode::Hold("/tx/submit".into()));
    let held = g.held();
    let mut provider = w.start_provider().await;
    let row = w
        .watch(&mut provider, "the Claim recorded and held", || async {
            let row = w.row(&job_id).await?;
            (row["stage"] == "claiming" && g.held() > held).then_some(row)
        })
        .await;
    kill(&mut provider, "after a quorum", &row);
    assert!(
        row["verdict"]
            .as_str()
            .is_some_and(|v| v.starts_with("2 accept") || v.starts_with("3 accept")),
        "a quorum: {row}"
    );
    assert!(matches!(
        w.escrow_state(&job_id).await,
        Some(JobState::Submitted { .. })
    ));
    assert_eq!(w.claim_txs().await, 0, "the Claim never reached the chain");

    // 5. After claiming: the recorded Claim is sent again, lands, its answer is held.
    g.set(Mode::HoldSubmitAnswers);
    let mut provider = w.start_provider().await;
    w.watch(&mut provider, "the Claim on chain", || async {
        w.escrow_state(&job_id).await.is_none().then_some(())
    })
    .await;
    let row = w.row(&job_id).await.expect("the row");
    kill(&mut provider, "after claiming", &row);
    assert_eq!(row["stage"], "claiming", "it never heard the answer");

    // 6. Nothing held: the provider reads its Claim from the chain.
    g.set(Mode::Pass);
    let mut provider = w.start_provider().await;
    let paid = w
        .watch(&mut provider, "the job recorded paid", || async {
            w.row(&job_id).await.filter(|r| r["stage"] == "paid")
        })
        .await;
    assert_eq!(paid["compute_runs"], 1, "one inference run");
    assert_eq!(
        submit_records(w.live.chain.as_ref(), &job_id).await,
        1,
        "exactly one Submit"
    );
    assert_eq!(w.claim_txs().await, 1, "exactly one Claim");
    assert_eq!(
        w.live.balance(&w.payout),
        (owed.lovelace, PRICE),
        "the provider paid the price and the escrow's ADA, once"
    );
    assert_eq!(
        w.live.balance(&w.requester),
        after_lock,
        "the requester paid nothing more"
    );
    assert_eq!(w.live.balance(&w.agent).1, 0, "the agent holds no NTX");
    audit_all_claimed(w.live.chain.as_ref(), &w.client, 1).await;
    eprintln!(
        "{} provider runs; {} requests held; {} submissions forwarded; test took {:.1} s",
        w.runs,
        g.held(),
        g.submits_forwarded.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );
    drop(provider);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_killed_whenever_a_row_changes_stage() {
    const JOBS: usize = 3;
    /// Kills at most this many times, so that the jobs finish.
    const KILLS: usize = 10;
    let started = Instant::now();
    let mut w = World::new(JOBS as u64).await;
    let mut provider = w.start_provider().await;
    let mut jobs = Vec::new();
    for n in 0..JOBS {
        jobs.push(w.lock(n, |_| {}).await);
    }
    let after_locks = w.live.balance(&w.requester);
    let mut owed = 0;
    for id in &jobs {
        let escrow = w.client.escrow(id).await.expect("locked");
        owed += escrow.payout(w.client.deployment()).lovelace;
    }

    // Whenever a row's stage differs from the last one seen, SIGKILL and restart.
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    let mut kills: Vec<String> = Vec::new();
    loop {
        let rows = w.rows().await;
        let stages: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r["job_id"].to_string(), r["stage"].to_string()))
            .collect();
        let paid = stages.iter().filter(|(_, s)| s == "\"paid\"").count();
        if paid == JOBS {
            break;
        }
        let changed: Vec<String> = stages
            .iter()
            .filter(|(id, s)| seen.get(id) != Some(s))
            .map(|(_, s)| s.clone())
            .collect();
        seen.extend(stages);
        if !changed.is_empty() && kills.len() < KILLS {
            provider.kill();
            kills.push(changed.join("+"));
            provider = w.start_provider().await;
        }
        provider.assert_running("ntx agent run");
        assert!(
            started.elapsed() < PATIENCE,
            "not every job paid (kills at {kills:?}; rows {rows:?}); the provider's warnings:\n{}",
            w.warnings()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("killed at: {}", kills.join(", "));
    assert!(kills.len() >= 3, "killed a few times: {kills:?}");
    for id in &jobs {
        assert_eq!(
            submit_records(w.live.chain.as_ref(), id).await,
            1,
            "exactly one Submit per job"
        );
        assert!(w.client.escrow(id).await.is_err(), "the escrow is spent");
    }
    let claims = w.claim_txs().await;
    assert!(
        (1..=JOBS).contains(&claims),
        "at most one Claim per job (several may share a transaction): {claims}"
    );
    assert_eq!(
        w.live.balance(&w.payout),
        (owed, JOBS as u64 * PRICE),
        "each price and each escrow's ADA paid once"
    );
    assert_eq!(w.live.balance(&w.requester), after_locks);
    audit_all_claimed(w.live.chain.as_ref(), &w.client, JOBS).await;
    eprintln!(
        "{} kills, {} provider runs, {claims} claim transaction(s); test took {:.1} s",
        kills.len(),
        w.runs,
        started.elapsed().as_secs_f64()
    );
    drop(provider);
    w.stop().await;
}
