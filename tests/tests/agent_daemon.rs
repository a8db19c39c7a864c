//! The node agent daemon end to end: one provider and three verifiers (2-of-3), each a
//! real `ntx_node_agent::run_agent` with its own SQLite state and HTTP server, on a
//! devnet served over HTTP with a running clock (200 ms slots), computing on the
//! deterministic tiny BERT. Balances are read from the chain; the agents' state from
//! their `/jobs` endpoints.
//!
//! Set `RUST_LOG=ntx_node_agent=debug` to watch the agents.

use ntx_offchain::fetch::{AddressPolicy, PeerFetcher};
use std::ops::Deref;
use std::time::Duration;

use ntx_node_agent::{
    BertFiles, EmbedResult, HttpState, Store, Tally, TinyBert, collect_attestations,
    write_tiny_bert,
};
use ntx_offchain::client::JobSpecDoc;
use ntx_offchain::protocol::{JobState, Settlement};
use ntx_offchain::wallet::Signer;
use ntx_tests::agents::Agent;
use ntx_tests::world::{AgentWorld, PRICE, stop_all};

/// The agent tests' world, with the tiny llama beside the tiny BERT for `generate` jobs.
struct World {
    base: AgentWorld,
    llama: ntx_node_agent::Hash32,
}

impl Deref for World {
    type Target = AgentWorld;

    fn deref(&self) -> &AgentWorld {
        &self.base
    }
}

impl World {
    async fn new() -> World {
        let base = AgentWorld::new().await;
        // The same folder serves `generate` jobs: the tiny llama's `model.gguf`.
        let llama = ntx_node_agent::write_tiny_llama(
            &base.model_dir,
            &ntx_node_agent::TinyLlama::default(),
        )
        .expect("tiny llama");
        World { base, llama }
    }

    /// A `generate` job on the tiny llama: greedy, 16 new tokens.
    fn generate_spec(&self) -> JobSpecDoc {
        let mut doc = self.spec();
        doc.job = serde_json::json!({
            "task": "generate",
            "model": self.llama.to_hex(),
            "messages": [{"role": "user", "content": "Say something."}],
            "max_new_tokens": 16,
            "decoding": {"mode": "greedy"},
        });
        doc
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_is_computed_verified_and_paid_without_a_human() {
    let w = World::new().await;
    w.fund_agent(50);
    let mut verifiers = w.start_verifiers();
    let mut provider = Agent::start(w.provider_config());
    let requester_before = w.ntx(&w.requester);

    let job_id = w.lock().await;
    assert_eq!(w.ntx(&w.requester), requester_before - PRICE);
    let owed = w
        .escrow(&job_id)
        .await
        .expect("locked")
        .payout(w.client.deployment());

    w.wait_for("the provider's payout", || async {
        (w.ntx(&w.payout) == PRICE).then_some(())
    })
    .await;
    assert!(w.escrow(&job_id).await.is_none(), "the escrow is settled");
    assert_eq!(w.ntx(&w.requester), requester_before - PRICE);
    assert_eq!(
        w.live.balance(&w.payout),
        (owed.lovelace, PRICE),
        "the provider gets the price and the escrow's ADA deposit"
    );

    let row = w
        .wait_stage(
            "the provider to record the payment",
            &provider,
            &job_id,
            "paid",
        )
        .await;
    assert_eq!(row["compute_runs"], 1);
    assert!(row["claim_tx"].is_string() && row["submit_tx"].is_string());
    assert_eq!(w.submit_records(&job_id).await, 1);

    // Every verifier judged the honest result Accept and serves a valid attestation.
    // (The claim needed two; the third may sign a moment later.)
    let http = reqwest::Client::new();
    let result_hash: [u8; 32] = hex::decode(row["result_hash"].as_str().expect("hash"))
        .expect("hex")
        .try_into()
        .expect("32");
    let keys: Vec<[u8; 32]> = w.verifier_keys.iter().map(|k| k.public_key()).collect();
    let script = w.client.deployment().script.hash();
    let tally = w
        .wait_for("three attestations served", || async {
            let served = collect_attestations(
                &PeerFetcher::new(AddressPolicy::AllowPrivate).expect("a fetcher"),
                &w.verifier_urls(),
                &job_id,
            )
            .await;
            (served.len() == 3).then(|| Tally::of(&served, &script, &job_id, &result_hash, &keys))
        })
        .await;
    assert_eq!(tally.accepts.len(), 3, "{tally:?}");
    assert!(tally.rejects.is_empty());
    // The provider serves the bytes it committed to.
    let bytes = http
        .get(format!(
            "{}/results/{}",
            provider.url,
            hex::encode(result_hash)
        ))
        .send()
        .await
        .expect("served")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(ntx_offchain::protocol::blake2b_256(&bytes), result_hash);
    let health: serde_json::Value = http
        .get(format!("{}/health", provider.url))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["jobs"]["paid"], 1);

    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cheating_provider_is_rejected_and_the_requester_refunded() {
    let w = World::new().await;
    w.fund_agent(50);
    let mut verifiers = w.start_verifiers();
    let requester_before = w.ntx(&w.requester);
    let job_id = w.lock().await;

    // The cheat: embeddings from a model with one layer dropped, under a header that
    // names the job's model, served by the agent's own HTTP API.
    let wrong_dir = w.dir.path().join("wrong-model");
    std::fs::create_dir_all(&wrong_dir).expect("dir");
    write_tiny_bert(
        &wrong_dir,
        &TinyBert {
            layers: 1,
            ..TinyBert::default()
        },
    )
    .expect("wrong model");
    let mut spec = w.spec();
    let wrong = BertFiles::of_dir(&wrong_dir).expect("hashes");
    spec.job["model"] = serde_json::json!({
        "weights": wrong.weights.to_hex(), "config": wrong.config.to_hex(),
        "tokenizer": wrong.tokenizer.to_hex()});
    let job = ntx_node_agent::JobSpec::from_json(&spec.job.to_string()).expect("job");
    let engine = ntx_node_agent::Engine::new(ntx_node_agent::Device::Cpu);
    let computed = engine.compute(&job, &wrong_dir).expect("computes");
    let mut forged = EmbedResult::parse(&computed.bytes).expect("parses");
    forged.header.model_hash = w.model.weights;
    forged.header.config_hash = w.model.config;
    forged.header.tokenizer_hash = w.model.tokenizer;
    let bytes = forged.to_bytes();
    let hash = ntx_offchain::protocol::blake2b_256(&bytes);

    let store = Store::open(&w.dir.path().join("cheat-state")).expect("store");
    store.write_result(&hash, &bytes).expect("stored");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let cheat_url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = ntx_node_agent::agent_router(HttpState {
        store,
        script_hash: w.client.deployment().script.hash(),
        roles: vec!["provider"],
        operator_token: None,
        announcements: None,
    });
    tokio::spawn(async move { axum_serve(listener, router).await });

    let escrow = w.escrow(&job_id).await.expect("locked");
    let agent = w.agent_wallet();
    let prepared = w
        .client
        .submit(
            &agent,
            &escrow,
            hash,
            &format!("{cheat_url}/results/{}", hex::encode(hash)),
        )
        .await
        .expect("submit builds");
    w.client.send(&prepared, 1).await.expect("submitted");

    // The verifiers reject it; anyone can then refund the requester with their attestations.
    let keys: Vec<[u8; 32]> = w.verifier_keys.iter().map(|k| k.public_key()).collect();
    let script = w.client.deployment().script.hash();
    let tally = w
        .wait_for("every verifier's attestation", || async {
            let served = collect_attestations(
                &PeerFetcher::new(AddressPolicy::AllowPrivate).expect("a fetcher"),
                &w.verifier_urls(),
                &job_id,
            )
            .await;
            (served.len() == 3).then(|| Tally::of(&served, &script, &job_id, &hash, &keys))
        })
        .await;
    assert_eq!(tally.rejects.len(), 3, "every verifier rejects the cheat");
    for v in &verifiers {
        let row = w
            .wait_for("the verifier's verdict recorded", || async {
                v.job(&job_id).await.filter(|j| j["verdict"].is_string())
            })
            .await;
        assert!(
            row["verdict"]
                .as_str()
                .unwrap_or("")
                .contains("OutOfTolerance"),
            "{row}"
        );
    }
    let escrow = w.escrow(&job_id).await.expect("submitted");
    assert!(matches!(escrow.datum.state, JobState::Submitted { .. }));
    let attestations = tally.reject(2).expect("a quorum");
    let (refund, rest) = w
        .client
        .settle(
            &w.requester,
            vec![(escrow, Settlement::RefundRejected { attestations })],
        )
        .await
        .expect("refund builds");
    assert!(rest.is_empty());
    w.client.send(&refund, 1).await.expect("refunded");
    assert_eq!(w.ntx(&w.requester), requester_before);
    assert_eq!(w.ntx(&w.payout), 0);
    for v in &mut verifiers {
        v.stop().await;
    }
}

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) {
    let _ = axum::serve(listener, router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_quorum_forms_with_one_verifier_offline() {
    let w = World::new().await;
    w.fund_agent(50);
    // Verifier 1 never starts: its URL in the spec answers nothing.
    let mut verifiers: Vec<Agent> = [0, 2]
        .into_iter()
        .map(|i| Agent::start(w.verifier_config(i)))
        .collect();
    let mut provider = Agent::start(w.provider_config());
    let job_id = w.lock().await;
    let row = w.wait_paid(&provider, &job_id).await;
    assert_eq!(row["verdict"], "2 accept, 0 reject of 2 needed");
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_killed_before_submitting_resumes_without_submitting_twice() {
    let w = World::new().await;
    // The agent wallet is empty: the provider computes, then cannot pay for the Submit.
    let mut verifiers = w.start_verifiers();
    let config = w.provider_config();
    let mut provider = Agent::start(config.clone());
    let job_id = w.lock().await;
    let row = w
        .wait_stage("the result to be computed", &provider, &job_id, "computed")
        .await;
    let result_hash = row["result_hash"].clone();
    provider.stop().await;
    drop(provider);

    // What the killed provider left behind: the result, no transaction.
    {
        let store = Store::open(&config.state_dir).expect("state");
        let rec = store
            .job(&job_id, ntx_node_agent::AgentRole::Provider)
            .expect("reads")
            .expect("the job is remembered");
        assert_eq!(rec.stage, ntx_node_agent::Stage::Computed);
        assert_eq!(rec.compute_runs, 1);
        assert!(rec.submit_tx.is_none());
    }
    assert_eq!(w.submit_records(&job_id).await, 0);
    let escrow = w.escrow(&job_id).await.expect("still locked");
    assert_eq!(escrow.datum.state, JobState::Locked);

    w.fund_agent(50);
    let mut provider = Agent::start(config);
    let row = w.wait_paid(&provider, &job_id).await;
    assert_eq!(
        row["compute_runs"], 1,
        "the stored result was reused, not recomputed"
    );
    assert_eq!(row["result_hash"], result_hash);
    assert_eq!(
        w.submit_records(&job_id).await,
        1,
        "exactly one Submit on chain"
    );
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submit_removed_by_a_rollback_is_sent_again() {
    let w = World::new().await;
    w.fund_agent(50);
    // No verifier runs, so the job stays submitted.
    let mut provider = Agent::start(w.provider_config());
    let job_id = w.lock().await;
    let row = w
        .wait_stage("the Submit on chain", &provider, &job_id, "submitted")
        .await;
    let submit_tx: [u8; 32] = hex::decode(row["submit_tx"].as_str().expect("tx"))
        .expect("hex")
        .try_into()
        .expect("32");
    let confirmation = w
        .live
        .chain
        .await_tx(
            &submit_tx,
            &ntx_offchain::chain::AwaitOptions::new(1, Duration::from_secs(30)),
        )
        .await
        .expect("confirmed");
    let depth = w.live.devnet.tip().height - confirmation.block_height + 1;
    w.live
        .devnet
        .rollback(depth, ntx_devnet::RollbackMode::Drop)
        .expect("rolls back");
    assert_eq!(
        w.escrow(&job_id).await.expect("escrow").datum.state,
        JobState::Locked,
        "the rollback removed the Submit"
    );
    let escrow = w
        .wait_for("the Submit back on chain", || async {
            w.escrow(&job_id)
                .await
                .filter(|e| matches!(e.datum.state, JobState::Submitted { .. }))
        })
        .await;
    assert_eq!(
        escrow.utxo.reference.transaction_id, submit_tx,
        "the recorded transaction itself was sent again"
    );
    assert_eq!(w.submit_records(&job_id).await, 1);
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_the_provider_must_not_take_are_refused_and_nothing_is_submitted() {
    let w = World::new().await;
    w.fund_agent(50);
    let mut provider = Agent::start(w.provider_config());
    let stranger = w.live.wallet(9, 0, 0);
    let cheap = w.lock_with(PRICE - 1, &w.payout, 90_000).await;
    let elsewhere = w.lock_with(PRICE, &stranger, 90_000).await;
    // submit_margin_secs is 5: a job due in 3 s cannot be started.
    let hurried = w.lock_with(PRICE, &w.payout, 3_000).await;
    for (job, reason) in [(cheap, "floor"), (elsewhere, "pays"), (hurried, "margin")] {
        let row = w
            .wait_stage("the refusal", &provider, &job, "refused")
            .await;
        let failure = row["failure"].as_str().unwrap_or_default().to_string();
        assert!(failure.contains(reason), "{failure}");
        assert_eq!(row["compute_runs"], 0);
    }
    // An acceptable job still goes through after the refusals.
    let good = w.lock().await;
    w.wait_stage("the good job's Submit", &provider, &good, "submitted")
        .await;
    for job in [cheap, elsewhere, hurried] {
        assert_eq!(w.submit_records(&job).await, 0);
        let e = w.escrow(&job).await.expect("still there");
        assert_eq!(e.datum.state, JobState::Locked);
    }
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_that_are_ready_together_go_in_one_transaction() {
    let w = World::new().await;
    w.fund_agent(50);
    let config = w.provider_config();
    let mut provider = Agent::start(config.clone());
    let jobs = [w.lock().await, w.lock().await, w.lock().await];
    for job in &jobs {
        w.wait_stage("every Submit on chain", &provider, job, "submitted")
            .await;
    }
    provider.stop().await;
    drop(provider);
    // While the provider's loops are down, its state is served by the agent's own HTTP
    // API alone: the verifiers fetch the results and push their attestations into it.
    let server = w.serve_provider_state(&config).await;
    let mut verifiers = w.start_verifiers();
    for v in &verifiers {
        for job in &jobs {
            w.wait_stage("an attestation delivered", v, job, "pushed")
                .await;
        }
    }
    server.stop().await;
    // Restarted, the provider finds all three ready in one poll and claims them together.
    let mut provider = Agent::start(config);
    w.wait_for("the provider's payout", || async {
        (w.ntx(&w.payout) == 3 * PRICE).then_some(())
    })
    .await;
    let mut claim_txs = Vec::new();
    for job in &jobs {
        let row = w
            .wait_stage("the payments recorded", &provider, job, "paid")
            .await;
        claim_txs.push(row["claim_tx"].clone());
    }
    assert!(claim_txs[0].is_string());
    assert!(
        claim_txs.iter().all(|t| *t == claim_txs[0]),
        "one claim transaction for the three jobs: {claim_txs:?}"
    );
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submit_recorded_but_never_sent_is_sent_as_recorded_after_a_restart() {
    let w = World::new().await;
    let mut verifiers = w.start_verifiers();
    let config = w.provider_config();
    // Unfunded, the provider computes and stops short of submitting.
    let mut provider = Agent::start(config.clone());
    let job_id = w.lock().await;
    w.wait_stage("the result to be computed", &provider, &job_id, "computed")
        .await;
    provider.stop().await;
    drop(provider);
    w.fund_agent(50);

    // The state a crash leaves right after the provider recorded its signed Submit and
    // before it sent it.
    let store = Store::open(&config.state_dir).expect("state");
    let mut rec = store
        .job(&job_id, ntx_node_agent::AgentRole::Provider)
        .expect("reads")
        .expect("remembered");
    let escrow = w.escrow(&job_id).await.expect("locked");
    let prepared = w
        .client
        .submit(
            &w.agent_wallet(),
            &escrow,
            rec.result_hash.expect("a result"),
            rec.result_url.as_deref().expect("a URL"),
        )
        .await
        .expect("the Submit builds");
    rec.stage = ntx_node_agent::Stage::Submitting;
    rec.submit_tx = Some(prepared.tx_id());
    rec.submit_cbor = Some(prepared.cbor().to_vec());
    store.save(&rec).expect("recorded");
    drop(store);
    assert_eq!(w.submit_records(&job_id).await, 0, "nothing was sent");

    let mut provider = Agent::start(config);
    let row = w.wait_paid(&provider, &job_id).await;
    assert_eq!(
        row["submit_tx"],
        hex::encode(prepared.tx_id()),
        "the recorded transaction itself landed"
    );
    assert_eq!(w.submit_records(&job_id).await, 1);
    assert_eq!(row["compute_runs"], 1);
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_generate_job_goes_from_lock_to_payout() {
    let w = World::new().await;
    w.fund_agent(50);
    let mut provider = Agent::start(w.provider_config());
    let mut verifiers = w.start_verifiers();
    let before = w.ntx(&w.requester);
    let job_id = w
        .lock_spec(w.generate_spec(), PRICE, &w.payout, 90_000)
        .await;
    w.wait_for("the generate job's payout", || async {
        (w.ntx(&w.payout) == PRICE).then_some(())
    })
    .await;
    assert!(w.escrow(&job_id).await.is_none(), "the escrow is settled");
    assert_eq!(w.ntx(&w.requester), before - PRICE);
    assert_eq!(w.submit_records(&job_id).await, 1);
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[path = "agent_daemon/fast_path.rs"]
mod fast_path;
