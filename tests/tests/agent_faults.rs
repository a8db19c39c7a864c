//! Faults in the agents' lives, end to end: one provider and three verifiers (2-of-3),
//! each a real `ntx_node_agent::run_agent` with its own SQLite state, on a devnet
//! served over HTTP with a running clock (200 ms slots), computing on the tiny BERT.
//! The provider is stopped at each stage of a job that `agent_daemon.rs` does not
//! already cover (it has "after inference, before submit", "submit recorded but never
//! sent" and "submit removed by a rollback"): after submitting (before a quorum),
//! after a quorum (before claiming) and after claiming. On restart the chain must hold
//! exactly one Submit and one Claim for the job, and the provider must be paid once.
//! Submits are counted from the transaction metadata under the escrow's label; claims
//! from the payout address's history (that address receives nothing but claims).
//!
//! The stops are the agent's own shutdown (its cancellation token), which drops
//! whatever the agent was awaiting: the same points a SIGKILL would leave behind,
//! since every step's state is written to SQLite before the next begins.
//!
//! Then the chain provider misbehaving: a proxy between the agents (and the requester's
//! `EscrowClient`) and the devnet answers 429, 500 or stalls on a share of requests, or
//! lets every transaction submission through and loses its answer; each job must still
//! be paid once, with one Submit.
//!
//! Set `RUST_LOG=ntx_node_agent=debug` to watch the agents.

#[path = "agent_faults/hostile_peers.rs"]
mod hostile_peers;

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use ntx_offchain::Network;
use ntx_offchain::chain::{BlockRange, Blockfrost, ChainError, ChainProvider};
use ntx_offchain::client::{ClientError, DeploymentInfo, EscrowClient};
use ntx_offchain::protocol::JobState;
use ntx_tests::agents::Agent;
use ntx_tests::proxy::{Upstream, is_submit};
use ntx_tests::world::{AgentWorld, PRICE, stop_all};

/// The agent tests' world; its locks are retried when the chain API fails them.
struct World(AgentWorld);

impl Deref for World {
    type Target = AgentWorld;

    fn deref(&self) -> &AgentWorld {
        &self.0
    }
}

impl DerefMut for World {
    fn deref_mut(&mut self) -> &mut AgentWorld {
        &mut self.0
    }
}

impl World {
    async fn new() -> World {
        World(AgentWorld::new().await)
    }

    /// Locks one job for the provider and returns its id, retrying a lock the
    /// chain API failed (this shadows [`AgentWorld::lock`]).
    async fn lock(&self) -> [u8; 32] {
        let request = self
            .lock_request(&self.spec(), PRICE, &self.payout, 90_000)
            .await;
        // The provider here may fail a request beyond the client's retries
        // (roughly 0.3^6 per request): a requester's script retries the whole
        // lock, as `ntx` users would. `send` finds a lock whose answer was lost.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = async {
                let prepared = self
                    .client
                    .lock(&self.requester, vec![request.clone()])
                    .await?;
                self.client.send(&prepared, 1).await?;
                Ok::<_, ClientError>(prepared.job_ids[0])
            }
            .await;
            match sent {
                Ok(id) => return id,
                Err(e @ ClientError::Chain(ChainError::Network { .. })) if attempts < 5 => {
                    eprintln!("lock attempt {attempts} failed, retrying: {e}");
                }
                Err(e) => panic!("the lock failed: {e}"),
            }
        }
    }

    /// Claim transactions on chain: every transaction that paid the payout address,
    /// which receives nothing else.
    async fn claim_txs(&self) -> usize {
        let addr = pallas_addresses::Address::Shelley(self.payout.address().as_pallas().clone());
        self.live
            .chain
            .address_transactions(&addr, BlockRange::ALL)
            .await
            .expect("the payout address's history")
            .len()
    }

    /// The chain's account of one settled job: one Submit, one Claim, paid once.
    async fn assert_settled_once(&self, job_id: &[u8; 32]) {
        assert_eq!(
            self.submit_records(job_id).await,
            1,
            "exactly one Submit on chain"
        );
        assert_eq!(self.claim_txs().await, 1, "exactly one Claim on chain");
        assert_eq!(self.ntx(&self.payout), PRICE, "the provider paid once");
        assert!(self.escrow(job_id).await.is_none(), "the escrow is spent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_stopped_after_submitting_claims_once_after_a_restart() {
    let w = World::new().await;
    w.fund_agent(50);
    let config = w.provider_config();
    // No verifier runs yet, so the job stays submitted while the provider is down.
    let mut provider = Agent::start(config.clone());
    let job_id = w.lock().await;
    let row = w
        .wait_stage("the Submit on chain", &provider, &job_id, "submitted")
        .await;
    provider.stop().await;
    drop(provider);
    assert_eq!(w.submit_records(&job_id).await, 1);
    assert_eq!(w.claim_txs().await, 0);
    assert!(matches!(
        w.escrow(&job_id).await.expect("escrow").datum.state,
        JobState::Submitted { .. }
    ));

    let mut verifiers = w.start_verifiers();
    let mut provider = Agent::start(config);
    let paid = w.wait_paid(&provider, &job_id).await;
    assert_eq!(
        paid["submit_tx"], row["submit_tx"],
        "the first Submit was kept"
    );
    assert_eq!(paid["compute_runs"], 1, "not recomputed");
    w.assert_settled_once(&job_id).await;
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_stopped_after_a_quorum_claims_once_after_a_restart() {
    let w = World::new().await;
    w.fund_agent(50);
    let config = w.provider_config();
    let mut provider = Agent::start(config.clone());
    let job_id = w.lock().await;
    w.wait_stage("the Submit on chain", &provider, &job_id, "submitted")
        .await;
    provider.stop().await;
    drop(provider);
    // While the provider's loops are down, only its HTTP API serves its state: the
    // verifiers fetch the result and push their attestations into it, so that the
    // provider holds a quorum it has not claimed with.
    let server = w.serve_provider_state(&config).await;
    let mut verifiers = w.start_verifiers();
    for v in &verifiers {
        w.wait_stage("an attestation delivered", v, &job_id, "pushed")
            .await;
    }
    server.stop().await;
    assert_eq!(
        w.claim_txs().await,
        0,
        "nobody claimed while the provider was down"
    );
    assert_eq!(w.ntx(&w.payout), 0);

    let mut provider = Agent::start(config);
    w.wait_paid(&provider, &job_id).await;
    w.assert_settled_once(&job_id).await;
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_stopped_after_claiming_does_nothing_more_after_a_restart() {
    let w = World::new().await;
    w.fund_agent(50);
    let config = w.provider_config();
    let mut verifiers = w.start_verifiers();
    let mut provider = Agent::start(config.clone());
    let job_id = w.lock().await;
    let before = w.wait_paid(&provider, &job_id).await;
    provider.stop().await;
    drop(provider);
    w.assert_settled_once(&job_id).await;

    // Restarted, it reads the paid job back and leaves it alone. A second job locked
    // afterwards shows the restarted provider has polled the chain past the first one.
    let mut provider = Agent::start(config);
    let second = w.lock().await;
    w.wait_for("the second job's payout", || async {
        (w.ntx(&w.payout) == 2 * PRICE).then_some(())
    })
    .await;
    let after = w
        .wait_stage(
            "the first job still recorded as paid",
            &provider,
            &job_id,
            "paid",
        )
        .await;
    assert_eq!(
        after["claim_tx"], before["claim_tx"],
        "the first Claim was kept"
    );
    assert_eq!(after["submit_tx"], before["submit_tx"]);
    assert_eq!(
        w.submit_records(&job_id).await,
        1,
        "one Submit for the first job"
    );
    assert_eq!(
        w.submit_records(&second).await,
        1,
        "one Submit for the second job"
    );
    assert_eq!(w.claim_txs().await, 2, "one Claim per job");
    assert_eq!(w.ntx(&w.payout), 2 * PRICE, "each job paid once");
    stop_all(Some(&mut provider), &mut verifiers).await;
}

/// Which faults the proxy injects.
#[derive(Clone, Copy)]
enum Faults {
    /// 429s, 500s and stalls on a fixed share of requests; none of them reaches the devnet.
    Transient,
    /// Every transaction submission is forwarded to the devnet, and its answer replaced
    /// by a 500: the transaction took effect, the caller cannot know.
    LostSubmitAnswers,
}

/// What the faulty proxy did, by kind.
#[derive(Default)]
struct FaultCounts {
    requests: AtomicU64,
    too_many: AtomicU64,
    server_errors: AtomicU64,
    stalls: AtomicU64,
    lost_answers: AtomicU64,
}

impl FaultCounts {
    fn report(&self) -> String {
        format!(
            "{} requests through the proxy; 429: {}, 500: {}, stalled: {}, submit answers lost: {}",
            self.requests.load(Ordering::SeqCst),
            self.too_many.load(Ordering::SeqCst),
            self.server_errors.load(Ordering::SeqCst),
            self.stalls.load(Ordering::SeqCst),
            self.lost_answers.load(Ordering::SeqCst),
        )
    }
}

struct Proxy {
    upstream: Upstream,
    faults: Faults,
    counts: Arc<FaultCounts>,
}

/// A proxy in front of the devnet's Blockfrost API that misbehaves. With
/// [`Faults::Transient`], by request number: 1 in 7 gets a 429 (with `Retry-After: 1`),
/// 1 in 11 a 500, and 1 in 13 is held for 3 s before being forwarded (a slow provider;
/// a stall past the client's 60 s timeout would end in the same retry as a 500, only
/// slower).
async fn start_faulty_proxy(upstream_api: &str, faults: Faults) -> (String, Arc<FaultCounts>) {
    let counts = Arc::new(FaultCounts::default());
    let state = Arc::new(Proxy {
        upstream: Upstream::new(upstream_api),
        faults,
        counts: counts.clone(),
    });
    let router = axum::Router::new().fallback(forward).with_state(state);
    (ntx_tests::proxy::serve(router).await, counts)
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let n = proxy.counts.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let is_submit = is_submit(&method, &uri);
    if let Faults::Transient = proxy.faults {
        if n % 7 == 0 {
            proxy.counts.too_many.fetch_add(1, Ordering::SeqCst);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, "1")],
                r#"{"status_code":429,"error":"Project Over Limit","message":"slow down"}"#,
            )
                .into_response();
        }
        if n % 11 == 0 {
            proxy.counts.server_errors.fetch_add(1, Ordering::SeqCst);
            return server_error();
        }
        if n % 13 == 0 {
            proxy.counts.stalls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    let Some(answer) = proxy.upstream.forward(&method, &uri, &headers, body).await else {
        return server_error();
    };
    if let Faults::LostSubmitAnswers = proxy.faults
        && is_submit
        && answer.status.is_success()
    {
        proxy.counts.lost_answers.fetch_add(1, Ordering::SeqCst);
        return server_error();
    }
    answer.into_response()
}

fn server_error() -> axum::response::Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"{"status_code":500,"error":"Internal Server Error","message":"injected"}"#,
    )
        .into_response()
}

/// Runs three jobs with the agents (and, when `client_too`, the requester's client)
/// behind a proxy injecting `faults`; checks each job is paid once with one Submit.
async fn three_jobs_behind(faults: Faults, client_too: bool) {
    let mut w = World::new().await;
    w.fund_agent(50);
    let (proxy_url, counts) = start_faulty_proxy(&w.live.url, faults).await;
    w.chain_url = proxy_url.clone();
    if client_too {
        let faulty: Arc<dyn ChainProvider> = Arc::new(
            Blockfrost::for_network(Network::Devnet, Some(proxy_url.as_str())).expect("a client"),
        );
        let info = DeploymentInfo::load(&w.deployment).expect("the deployment");
        w.client = EscrowClient::connect(faulty, &info)
            .await
            .expect("connects through the proxy");
    }
    let mut verifiers = w.start_verifiers();
    let mut provider = Agent::start(w.provider_config());
    let jobs = [w.lock().await, w.lock().await, w.lock().await];
    w.wait_for("every job paid", || async {
        (w.ntx(&w.payout) == 3 * PRICE).then_some(())
    })
    .await;
    for job in &jobs {
        w.wait_stage("the payment recorded", &provider, job, "paid")
            .await;
        assert_eq!(w.submit_records(job).await, 1, "one Submit per job");
        assert!(w.escrow(job).await.is_none(), "the escrow is spent");
    }
    let claims = w.claim_txs().await;
    assert!(
        (1..=3).contains(&claims),
        "at most one Claim per job (several may share a transaction): {claims}"
    );
    assert_eq!(w.ntx(&w.payout), 3 * PRICE, "each job paid once");
    eprintln!("{}", counts.report());
    match faults {
        Faults::Transient => {
            for (kind, c) in [
                ("429", &counts.too_many),
                ("500", &counts.server_errors),
                ("stall", &counts.stalls),
            ] {
                assert!(c.load(Ordering::SeqCst) > 0, "no {kind} was injected");
            }
        }
        Faults::LostSubmitAnswers => {
            assert!(
                counts.lost_answers.load(Ordering::SeqCst) > 0,
                "no answer lost"
            );
        }
    }
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_and_client_behind_a_provider_answering_429_500_and_stalling_settle_each_job_once() {
    three_jobs_behind(Faults::Transient, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_whose_submit_answers_are_lost_settle_each_job_once() {
    three_jobs_behind(Faults::LostSubmitAnswers, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_whose_submit_answer_is_lost_still_reports_the_lock() {
    three_jobs_behind(Faults::LostSubmitAnswers, true).await;
}
