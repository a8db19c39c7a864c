//! The fast path between agents: the provider announces its result to the
//! verifiers, which judge it while the escrow is still locked; a quorum pays
//! the provider straight from the lock, and without one in time the provider
//! submits as before.

use super::*;
use ntx_node_agent::SignedResult;
use ntx_offchain::wallet::SigningKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quorum_off_chain_pays_the_provider_straight_from_the_lock() {
    let w = World::new().await;
    w.fund_agent(50);
    let mut verifiers = w.start_verifiers();
    let mut provider = Agent::start(w.fast_provider_config(60));
    let job_id = w.lock().await;
    let row = w.wait_paid(&provider, &job_id).await;
    assert!(row["submit_tx"].is_null(), "no Submit: {row}");
    assert_eq!(w.submit_records(&job_id).await, 0);
    // The claim names where the result is served, for requesters and auditors.
    let claim_tx: [u8; 32] = hex::decode(row["claim_tx"].as_str().expect("claim tx"))
        .expect("hex")
        .try_into()
        .expect("32");
    let result_hash: [u8; 32] = hex::decode(row["result_hash"].as_str().expect("hash"))
        .expect("hex")
        .try_into()
        .expect("32");
    let location = w
        .client
        .result_location_in(&claim_tx, &job_id, &result_hash)
        .await
        .expect("the settle record names the result");
    assert_eq!(
        location.result_url,
        format!("{}/results/{}", provider.url, hex::encode(result_hash))
    );
    let audit = ntx_tests::agents::audit_all_claimed(w.live.chain.as_ref(), &w.client, 1).await;
    assert!(audit.jobs[0].fast_path);
    assert_eq!(audit.jobs[0].result_tx, Some(hex::encode(claim_tx)));
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_quorum_in_time_the_provider_submits_and_is_paid_as_before() {
    let w = World::new().await;
    w.fund_agent(50);
    // No verifier runs yet: the announcements reach no one.
    let mut provider = Agent::start(w.fast_provider_config(2));
    let job_id = w.lock().await;
    w.wait_for("the provider to fall back to a Submit", || async {
        (w.submit_records(&job_id).await == 1).then_some(())
    })
    .await;
    let mut verifiers = w.start_verifiers();
    let row = w.wait_paid(&provider, &job_id).await;
    assert!(row["submit_tx"].is_string(), "{row}");
    assert_eq!(w.submit_records(&job_id).await, 1);
    stop_all(Some(&mut provider), &mut verifiers).await;
}

/// An announcement a verifier must not take: anyone could otherwise hand it a
/// wrong result for a locked job, and its honest Reject would refund the
/// requester before the provider had even answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verifier_takes_announcements_only_from_the_jobs_agent() {
    let w = World::new().await;
    let mut verifiers = w.start_verifiers();
    let job_id = w.lock().await;
    let script = w.client.deployment().script.hash();
    let stranger = SigningKey::from_normal_bytes(&[0x66; 32]);
    let url = format!("{}/results", verifiers[0].url);
    let http = reqwest::Client::new();
    let post = |a: SignedResult| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.post(&url)
                .json(&a)
                .send()
                .await
                .expect("answered")
                .status()
                .as_u16()
        }
    };
    let bogus = [0x13; 32];
    let target = "http://127.0.0.1:9/results/x".to_string();
    // The verifier's poll must have seen the lock before any announcement counts.
    let agent = w.agent_wallet();
    w.wait_for("the verifier to know the locked job", || async {
        let a = SignedResult::sign(&agent, script, job_id, bogus, target.clone());
        (post(a).await != 404).then_some(())
    })
    .await;
    assert_eq!(
        post(SignedResult::sign(
            &stranger,
            script,
            job_id,
            [0x15; 32],
            target.clone()
        ))
        .await,
        403,
        "a stranger's announcement"
    );
    assert_eq!(
        post(SignedResult::sign(
            &agent,
            [0x5e; 28],
            job_id,
            bogus,
            target.clone()
        ))
        .await,
        400,
        "another deployment"
    );
    assert_eq!(
        post(SignedResult::sign(
            &agent,
            script,
            [0x42; 32],
            bogus,
            target.clone()
        ))
        .await,
        404,
        "a job that is not locked for this verifier"
    );
    assert_eq!(
        post(SignedResult::sign(
            &agent,
            script,
            job_id,
            [0x14; 32],
            target.clone()
        ))
        .await,
        409,
        "a second result after the agent's first"
    );
    let oversized = SignedResult::sign(&agent, script, job_id, bogus, "h".repeat(2_000));
    assert_eq!(post(oversized).await, 400, "an oversized URL");
    // The verifier judges the agent's announced result, and only that one: its
    // row names the agent's hash, never the stranger's.
    let row = w
        .wait_for("the verifier to take up the announced result", || async {
            verifiers[0].job(&job_id).await
        })
        .await;
    assert_eq!(row["result_hash"], hex::encode(bogus), "{row}");
    for v in &mut verifiers {
        v.stop().await;
    }
}
