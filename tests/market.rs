//! The market end to end: real agents (a provider and three verifiers, each
//! publishing its offer on chain) against a devnet served in this process, and
//! the `ntx` binary as a requester who knows nothing but a wallet.
//!
//! - `ntx market list` finds the offers; `ntx ask` and `ntx job run` pick the
//!   provider and verifiers, lock, wait, and print the verified answer;
//!   `ntx job status` and `ntx job result` read a settled job back from the chain.
//! - A withdrawn offer, and an expired one, are gone from `ntx market list`.
//! - The provider refuses, before computing anything, jobs that break its policy:
//!   the free-compute attack (the requester's own key as the only verifier), a
//!   threshold below its minimum, a judging window below its minimum. The
//!   requester of the free-compute job takes the ordinary no-show refund.
//! - `ntx job result` refuses bytes whose hash is not the chain's, and never
//!   prints them.

use std::path::PathBuf;
use std::time::Duration;

use ntx_node_agent::{AgentConfig, BertFiles, TinyLlama, write_tiny_llama};
use ntx_offchain::Network;
use ntx_offchain::audit::{self, Outcome};
use ntx_offchain::builder::JobTerms;
use ntx_offchain::client::{EscrowClient, LockRequest, SpecSource};
use ntx_offchain::protocol::{Settlement, blake2b_256};
use ntx_offchain::wallet::{Signer, SigningKey, Wallet};
use ntx_tests::LiveDevnet;
use ntx_tests::agents::{
    Agent, AgentToml, ProviderToml, address, embed_spec, free_port, init_logs, lock_one,
    submit_records, tiny_bert_in, verifier_keys, wait_for,
};
use ntx_tests::cli::{Ntx, agent_config_toml};
use serde_json::Value as Json;

const PRICE: u64 = 5_000_000;
const PER_TOKEN: u64 = 1_000;
const SLOT_MS: u64 = 200;
const PATIENCE: Duration = Duration::from_secs(90);
/// The provider's policy: two attestations, 30 s to judge.
const MIN_THRESHOLD: u32 = 2;
const MIN_JUDGE_WINDOW_SECS: u64 = 30;

/// A devnet, a deployment, the agents with their offers live, and the `ntx`
/// binary in a folder holding the deployment file.
struct Market {
    live: LiveDevnet,
    dir: tempfile::TempDir,
    cli: Ntx,
    client: EscrowClient,
    model: BertFiles,
    payout: Wallet,
    verifier_keys: Vec<SigningKey>,
    verifier_ports: Vec<u16>,
    verifier_configs: Vec<AgentConfig>,
    provider: Agent,
    verifiers: Vec<Agent>,
}

fn funded(live: &LiveDevnet, key: &SigningKey, ada: u64) -> Wallet {
    let wallet = Wallet::new(Network::Devnet, key.clone(), None);
    live.devnet
        .fund_now(&wallet.address().to_bech32(), ada * 1_000_000, 0)
        .expect("the faucet pays");
    wallet
}

impl Market {
    async fn open() -> Market {
        init_logs();
        let live = LiveDevnet::start(SLOT_MS).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (info, client) = live.deploy().await;
        let deployment = dir.path().join(".ntx/devnet/deployment.json");
        info.save(&deployment).expect("the deployment file");
        let (bert_dir, model) = tiny_bert_in(dir.path());
        let llama_dir = dir.path().join("tiny-llama");
        write_tiny_llama(&llama_dir, &TinyLlama::default()).expect("the tiny llama");

        let agent_key = SigningKey::from_normal_bytes(&[4; 32]);
        funded(&live, &agent_key, 100);
        let payout = live.wallet(5, 0, 0);
        let verifier_keys = verifier_keys(3);
        let toml = AgentToml::new(&deployment, dir.path(), &bert_dir, live.url.clone());

        let provider_port = free_port();
        let mut provider = toml.provider(&ProviderToml::sole(
            &agent_key,
            provider_port,
            &payout,
            PRICE,
        ));
        provider.models.push(llama_dir.clone());
        let p = provider.provider.as_mut().expect("a provider");
        p.policy.verifiers = verifier_keys
            .iter()
            .map(|k| hex::encode(k.public_key()))
            .collect();
        p.policy.min_threshold = MIN_THRESHOLD;
        p.policy.min_judge_window_secs = MIN_JUDGE_WINDOW_SECS;
        p.offer.publish = true;
        p.offer.ttl_secs = 3600;
        p.offer.embed_price = Some(PRICE);
        p.offer.generate_price = Some(PRICE);
        p.offer.generate_price_per_token = PER_TOKEN;

        let verifier_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut verifier_configs = Vec::new();
        for (i, key) in verifier_keys.iter().enumerate() {
            funded(&live, key, 20);
            let mut c = toml.verifier(i, key, verifier_ports[i]);
            c.models.push(llama_dir.clone());
            let v = c.verifier.as_mut().expect("a verifier");
            v.offer.publish = true;
            v.offer.ttl_secs = 3600;
            verifier_configs.push(c);
        }
        let verifiers = verifier_configs.iter().cloned().map(Agent::start).collect();
        let provider = Agent::start(provider);

        let cli = Ntx::new(env!("CARGO_BIN_EXE_ntx"), dir.path(), &live.url);
        let market = Market {
            live,
            dir,
            cli,
            client,
            model,
            payout,
            verifier_keys,
            verifier_ports,
            verifier_configs,
            provider,
            verifiers,
        };
        market.wait_for_offers(1, 3).await;
        market
    }

    /// `ntx market list --json`'s offers.
    fn offers(&self, filters: &[&str]) -> Vec<Json> {
        let mut args = vec!["market", "list"];
        args.extend_from_slice(filters);
        self.cli.json(&args)["offers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn count(offers: &[Json], role: &str) -> usize {
        offers.iter().filter(|o| o["role"] == role).count()
    }

    async fn wait_for_offers(&self, providers: usize, verifiers: usize) {
        wait_for("the offers on chain", PATIENCE, || async {
            let offers = self.offers(&[]);
            (Self::count(&offers, "provider") == providers
                && Self::count(&offers, "verifier") == verifiers)
                .then_some(())
        })
        .await;
    }

    /// A requester's key file `requester.skey`, funded with 100 ADA and 100 NTX.
    fn requester_file(&self) -> String {
        let made = self.cli.new_wallets(&["requester"]);
        let addr = made["requester"]["address"].as_str().expect("address");
        self.cli.fund(addr, "100", "100");
        "requester.skey".into()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_requester_with_only_a_wallet_asks_the_market_and_gets_a_verified_answer() {
    let m = Market::open().await;
    let wallet = m.requester_file();

    // The market: one provider, three verifiers, all answering /health.
    let offers = m.offers(&[]);
    assert_eq!(offers.len(), 4, "{offers:#?}");
    assert!(offers.iter().all(|o| o["healthy"] == true), "{offers:#?}");
    let provider = offers
        .iter()
        .find(|o| o["role"] == "provider")
        .expect("a provider");
    assert_eq!(provider["payout"], m.payout.address().to_bech32().as_str());
    let cheap = m.offers(&["--task", "generate", "--max-price", "0.5"]);
    assert_eq!(Market::count(&cheap, "provider"), 0, "{cheap:#?}");
    assert_eq!(Market::count(&cheap, "verifier"), 3, "{cheap:#?}");

    // One command, from a wallet alone.
    let asked = m.cli.json(&[
        "ask",
        "What does an escrow do?",
        "--wallet",
        &wallet,
        "--max-new-tokens",
        "8",
    ]);
    assert_eq!(asked["outcome"], "claimed", "{asked:#}");
    assert_eq!(asked["answer"]["task"], "generate", "{asked:#}");
    assert!(asked["answer"]["text"].is_string(), "{asked:#}");
    assert!(
        asked["answer"]["tokens"]
            .as_u64()
            .is_some_and(|t| (1..=8).contains(&t))
    );
    assert_eq!(asked["price_units"], PRICE + 8 * PER_TOKEN);
    assert_eq!(asked["threshold"], MIN_THRESHOLD);
    let job = asked["job_id"].as_str().expect("a job id").to_string();
    let result_hash = asked["result_hash"].as_str().expect("a result hash");

    // The settled job, read back from the chain.
    let status = m.cli.json(&["job", "status", &job]);
    assert_eq!(status["outcome"], "claimed", "{status:#}");
    assert_eq!(status["paid_to"], m.payout.address().to_bech32().as_str());
    assert_eq!(status["submit"]["result_hash"], result_hash);
    for step in ["lock", "submit", "settlement"] {
        assert!(status[step]["tx"].is_string(), "{step}: {status:#}");
    }
    assert_eq!(status["findings"], serde_json::json!([]));
    let result = m.cli.json(&["job", "result", &job]);
    assert_eq!(result["answer"], asked["answer"]);
    let out = m.path("answer.txt");
    let (code, text, err) = m.cli.run(&["job", "result", &job, "--out", "answer.txt"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(&out).expect("--out"),
        text,
        "--out holds what is printed"
    );

    // Embeddings through `ntx job run`.
    let ran = m.cli.json(&[
        "job",
        "run",
        "--task",
        "embed",
        "--input",
        "hello world",
        "--input",
        "a second text",
        "--wallet",
        &wallet,
    ]);
    assert_eq!(ran["outcome"], "claimed", "{ran:#}");
    assert_eq!(
        ran["answer"]["embeddings"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(ran["price_units"], PRICE);

    // Bad requests: one line, exit 2, nothing locked.
    m.cli.refused(
        &["ask", "hi", "--wallet", &wallet, "--max-price", "0.001"],
        "no live provider offer",
    );
    m.cli
        .refused(&["job", "status", &"ab".repeat(32)], "never locked");
    m.cli.refused(
        &["job", "run", "--task", "embed", "--wallet", &wallet],
        "--input",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn withdrawn_and_expired_offers_leave_the_market_list() {
    let mut m = Market::open().await;

    // A verifier stops and withdraws its offer.
    m.verifiers[2].stop().await;
    let config = m.path("verifier-3.toml");
    std::fs::write(&config, agent_config_toml(&m.verifier_configs[2])).expect("a config");
    let withdrawn = m.cli.json(&[
        "agent",
        "offer",
        "--config",
        config.to_str().expect("utf-8"),
        "--withdraw",
    ]);
    assert_eq!(withdrawn[0]["withdrawn"], true, "{withdrawn:#}");
    assert!(
        withdrawn[0]["fee_lovelace"]
            .as_u64()
            .is_some_and(|f| f < 500_000)
    );
    m.wait_for_offers(1, 2).await;
    let keys: Vec<String> = m
        .offers(&[])
        .iter()
        .filter_map(|o| o["key"].as_str().map(str::to_string))
        .collect();
    assert!(!keys.contains(&hex::encode(m.verifier_keys[2].public_key())));

    // The provider stops; an hour and a bit later its offer has expired.
    m.provider.stop().await;
    for agent in &mut m.verifiers[..2] {
        agent.stop().await;
    }
    m.live.advance(3_700_000 / SLOT_MS);
    let left = m.offers(&[]);
    assert!(left.is_empty(), "expired offers are not listed: {left:#?}");
}

/// `verifiers` judging `threshold`-of-n, due in 60 s, with `window_ms` to judge.
fn lock_request(
    m: &Market,
    requester: &Wallet,
    verifiers: &[SigningKey],
    ports: &[u16],
    threshold: u32,
    window_ms: u64,
    now: u64,
) -> LockRequest {
    let spec = embed_spec(&m.model, verifiers, ports, &["free compute?"]);
    let agent = SigningKey::from_normal_bytes(&[4; 32]);
    LockRequest {
        terms: JobTerms {
            requester: address(requester),
            provider: address(&m.payout),
            agent: Wallet::new(Network::Devnet, agent, None).key_hash(),
            spec_hash: spec.hash().expect("hash"),
            price: PRICE,
            verifiers: verifiers.iter().map(|k| k.public_key()).collect(),
            threshold,
            submit_by: now + 60_000,
            settle_by: now + 60_000 + window_ms,
        },
        spec: SpecSource::Inline(spec.canonical_bytes().expect("canonical")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_provider_refuses_each_policy_violation_and_the_requester_is_refunded() {
    let m = Market::open().await;
    let requester = m.live.wallet(20, 100, 100 * PRICE);
    let own = SigningKey::from_normal_bytes(&[0x77; 32]);
    let now = m.client.slot_time(m.client.now_slot().await.expect("tip"));
    let window = MIN_JUDGE_WINDOW_SECS * 1000;
    let free = [own];
    let cases: Vec<(&str, LockRequest)> = vec![
        (
            "the requester's own key as the only verifier, threshold 1",
            lock_request(&m, &requester, &free, &[free_port()], 1, window, now),
        ),
        (
            "a threshold below the minimum",
            lock_request(
                &m,
                &requester,
                &m.verifier_keys,
                &m.verifier_ports,
                1,
                window,
                now,
            ),
        ),
        (
            "no time to judge",
            lock_request(
                &m,
                &requester,
                &m.verifier_keys,
                &m.verifier_ports,
                2,
                10_000,
                now,
            ),
        ),
    ];
    let mut refused = Vec::new();
    for (why, request) in cases {
        refused.push((why, lock_one(&m.client, &requester, request, |_| {}).await));
    }
    // A job within the policy, locked the same way, is computed and paid.
    let good = lock_one(
        &m.client,
        &requester,
        lock_request(
            &m,
            &requester,
            &m.verifier_keys,
            &m.verifier_ports,
            2,
            window,
            now,
        ),
        |_| {},
    )
    .await;

    for (why, job) in &refused {
        let row = wait_for(why, PATIENCE, || async {
            m.provider
                .job(job)
                .await
                .filter(|r| r["stage"] == "refused")
        })
        .await;
        assert!(
            row.to_string().contains("policy"),
            "{why}: the reason is recorded: {row:#}"
        );
    }
    wait_for("the good job paid", PATIENCE, || async {
        m.provider.job(&good).await.filter(|r| r["stage"] == "paid")
    })
    .await;
    for (why, job) in &refused {
        assert_eq!(
            submit_records(m.live.chain.as_ref(), job).await,
            0,
            "{why}: nothing submitted"
        );
    }

    // The free-compute job: after submit_by, the ordinary no-show refund.
    m.live.advance(61_000 / SLOT_MS);
    let escrow = m.client.escrow(&refused[0].1).await.expect("still locked");
    let (refund, _) = m
        .client
        .settle(&requester, vec![(escrow, Settlement::RefundNoShow)])
        .await
        .expect("the refund builds");
    m.client.send(&refund, 1).await.expect("refunded");
    let history = audit::collect_history(
        m.live.chain.as_ref(),
        audit::Target::of(&m.client.deployment().script),
        Network::Devnet,
        audit::SlotRange::default(),
    )
    .await
    .expect("the history");
    let report = audit::check(&history, Network::Devnet);
    let outcome = |id: &[u8; 32]| {
        report
            .jobs
            .iter()
            .find(|j| j.job_id == hex::encode(id))
            .map(|j| j.outcome)
    };
    assert_eq!(outcome(&refused[0].1), Some(Outcome::RefundedNoShow));
    assert_eq!(outcome(&good), Some(Outcome::Claimed));
    assert!(report.is_clean(), "{}", audit::render_table(&report));
}

/// Serves `body` at every path of a loopback port; returns its base URL.
async fn serve(body: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let app = axum::Router::new().fallback(move || async move { body });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_result_refuses_bytes_whose_hash_is_not_the_chains() {
    let live = LiveDevnet::start(SLOT_MS).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (info, client) = live.deploy().await;
    info.save(&dir.path().join(".ntx/devnet/deployment.json"))
        .expect("the deployment file");
    let requester = live.wallet(20, 100, 100 * PRICE);
    let agent = live.wallet(4, 100, 0);
    let (_, model) = tiny_bert_in(dir.path());
    let keys = verifier_keys(2);
    let spec = embed_spec(&model, &keys, &[1, 2], &["x"]);
    let now = client.slot_time(client.now_slot().await.expect("tip"));
    let job = lock_one(
        &client,
        &requester,
        LockRequest {
            terms: JobTerms {
                requester: address(&requester),
                provider: address(&agent),
                agent: agent.key_hash(),
                spec_hash: spec.hash().expect("hash"),
                price: PRICE,
                verifiers: keys.iter().map(|k| k.public_key()).collect(),
                threshold: 2,
                submit_by: now + 60_000,
                settle_by: now + 120_000,
            },
            spec: SpecSource::Inline(spec.canonical_bytes().expect("canonical")),
        },
        |_| {},
    )
    .await;
    // The provider commits to one answer and serves another.
    let committed = blake2b_256(b"the answer the chain commits to");
    let url = serve(b"TAMPERED answer").await;
    let escrow = client.escrow(&job).await.expect("locked");
    let submit = client
        .submit(&agent, &escrow, committed, &format!("{url}/results/x"))
        .await
        .expect("the submit builds");
    client.send(&submit, 1).await.expect("submitted");

    let cli = Ntx::new(env!("CARGO_BIN_EXE_ntx"), dir.path(), &live.url);
    let (code, out, err) = cli.run(&["job", "result", &hex::encode(job)]);
    assert_eq!(code, 1, "refused: {err}");
    assert!(err.contains("result_hash"), "says why: {err}");
    assert!(
        !out.contains("TAMPERED") && !err.contains("TAMPERED"),
        "the bytes are never shown: {out} {err}"
    );
    let (code, out, _) = cli.run(&["job", "result", &hex::encode(job), "--json"]);
    assert_eq!(code, 1);
    assert!(!out.contains("TAMPERED"));
    let (code, _, _) = cli.run(&["job", "result", &hex::encode(job), "--out", "answer.txt"]);
    assert_eq!(code, 1);
    assert!(!dir.path().join("answer.txt").exists(), "nothing written");
}
