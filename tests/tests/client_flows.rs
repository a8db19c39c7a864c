//! Every path of the escrow's state machine through `EscrowClient`, against a
//! devnet served over HTTP (the Blockfrost client, as `ntx` uses it), with
//! balances checked to the lovelace and the NTX unit after every step.

use ntx_offchain::Network;
use ntx_offchain::builder::{EscrowUtxo, JobTerms};
use ntx_offchain::client::{
    ClientError, DeploymentInfo, EscrowClient, JobSpecDoc, LockRequest, Prepared, SpecSource,
};
use ntx_offchain::protocol::{
    Address, JobState, Settlement, Verdict, attestation_message, sign_attestation,
};
use ntx_offchain::wallet::{Signer, Wallet};
use ntx_tests::LiveDevnet;

const PRICE: u64 = 12_500_000;
const SLOT_MS: u64 = 100;

struct Setup {
    live: LiveDevnet,
    client: EscrowClient,
    requester: Wallet,
    provider: Wallet,
    agent: Wallet,
    keeper: Wallet,
    verifiers: Vec<Wallet>,
}

fn address(w: &Wallet) -> Address {
    Address::from(w.address().as_pallas())
}

async fn setup() -> Setup {
    let live = LiveDevnet::start(SLOT_MS).await;
    let (_, client) = live.deploy().await;
    let mut verifiers: Vec<Wallet> = (0..3).map(|i| live.wallet(0x30 + i, 0, 0)).collect();
    verifiers.sort_by_key(|v| v.public_key());
    Setup {
        requester: live.wallet(2, 100, 10 * PRICE),
        provider: live.wallet(3, 0, 0),
        agent: live.wallet(4, 50, 0),
        keeper: live.wallet(5, 50, 0),
        verifiers,
        client,
        live,
    }
}

impl Setup {
    fn spec(&self, n: usize) -> JobSpecDoc {
        JobSpecDoc::parse(
            format!(
                r#"{{"version":1,"job":{{"task":"embed","inputs":["sentence {n}"]}},"verifiers":[]}}"#
            )
            .as_bytes(),
        )
        .expect("a spec")
    }

    async fn request(&self, n: usize, submit_in_ms: u64, settle_in_ms: u64) -> LockRequest {
        let now = self
            .client
            .slot_time(self.client.now_slot().await.expect("now"));
        let spec = self.spec(n);
        LockRequest {
            terms: JobTerms {
                requester: address(&self.requester),
                provider: address(&self.provider),
                agent: self.agent.key_hash(),
                spec_hash: spec.hash().expect("hash"),
                price: PRICE,
                verifiers: self.verifiers.iter().map(|v| v.public_key()).collect(),
                threshold: 2,
                submit_by: now + submit_in_ms,
                settle_by: now + settle_in_ms,
            },
            spec: SpecSource::Inline(spec.canonical_bytes().expect("bytes")),
        }
    }

    /// Locks one job and checks what it cost the requester.
    async fn lock_one(&self, submit_in_ms: u64, settle_in_ms: u64) -> EscrowUtxo {
        // The requester's one UTxO holds NTX: the client first makes a
        // pure-ADA collateral UTxO (a payment to itself).
        let collateral = self
            .client
            .collateral(&self.requester)
            .await
            .expect("collateral");
        assert!(collateral.output.value.assets.is_empty());
        let before = self.live.balance(&self.requester);
        let request = self.request(0, submit_in_ms, settle_in_ms).await;
        let prepared = self
            .client
            .lock(&self.requester, vec![request])
            .await
            .expect("lock builds");
        self.send(&prepared).await;
        let escrow = self
            .client
            .escrow(&prepared.job_ids[0])
            .await
            .expect("the escrow is on chain");
        let deposit = escrow.utxo.output.value.lovelace;
        assert_eq!(
            self.live.balance(&self.requester),
            (before.0 - prepared.fee() - deposit, before.1 - PRICE),
            "the requester paid the price, the deposit and the fee"
        );
        escrow
    }

    async fn submit(&self, escrow: &EscrowUtxo, result_hash: [u8; 32]) -> EscrowUtxo {
        self.client
            .collateral(&self.agent)
            .await
            .expect("collateral");
        let before = self.live.balance(&self.agent);
        let prepared = self
            .client
            .submit(
                &self.agent,
                escrow,
                result_hash,
                "http://provider.invalid/results/x",
            )
            .await
            .expect("submit builds");
        self.send(&prepared).await;
        assert_eq!(
            self.live.balance(&self.agent),
            (before.0 - prepared.fee(), 0),
            "the agent paid the fee only"
        );
        let escrow = self
            .client
            .escrow(&escrow.datum.job_id)
            .await
            .expect("still an escrow");
        assert_eq!(escrow.datum.state, JobState::Submitted { result_hash });
        escrow
    }

    fn attest(
        &self,
        escrow: &EscrowUtxo,
        verdict: Verdict,
        who: &[u32],
    ) -> Vec<ntx_offchain::protocol::Attestation> {
        let JobState::Submitted { result_hash } = escrow.datum.state else {
            panic!("not submitted")
        };
        attest_over(self, escrow, verdict, who, result_hash)
    }

    async fn send(&self, prepared: &Prepared) {
        self.client
            .send(prepared, 1)
            .await
            .expect("the devnet accepts it");
    }

    /// Settles `items` in one transaction paid by the keeper; checks the
    /// keeper paid only the fee and that the escrows are gone.
    async fn settle(&self, items: Vec<(EscrowUtxo, Settlement)>) -> Prepared {
        let n = items.len();
        self.client
            .collateral(&self.keeper)
            .await
            .expect("collateral");
        let ids: Vec<[u8; 32]> = items.iter().map(|(e, _)| e.datum.job_id).collect();
        let before = self.live.balance(&self.keeper);
        let (prepared, rest) = self
            .client
            .settle(&self.keeper, items)
            .await
            .expect("the settlement builds");
        assert!(rest.is_empty(), "all {n} fit in one transaction");
        self.send(&prepared).await;
        assert_eq!(
            self.live.balance(&self.keeper),
            (before.0 - prepared.fee(), before.1),
            "the keeper paid the fee and got nothing else"
        );
        for id in ids {
            assert!(matches!(
                self.client.escrow(&id).await,
                Err(ClientError::NotAnEscrow(_))
            ));
        }
        prepared
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_submit_two_of_three_accept_and_a_keepers_claim_pays_the_provider() {
    let s = setup().await;
    let escrow = s.lock_one(60_000, 120_000).await;
    let spec = s
        .client
        .job_spec(&escrow)
        .await
        .expect("the lock record has the spec");
    assert_eq!(
        spec,
        SpecSource::Inline(s.spec(0).canonical_bytes().expect("bytes"))
    );
    let deposit = escrow.utxo.output.value.lovelace;
    let escrow = s.submit(&escrow, [0x77; 32]).await;
    let record = s
        .client
        .submit_record(&escrow)
        .await
        .expect("read")
        .expect("present");
    assert_eq!(record.result_url, "http://provider.invalid/results/x");
    assert_eq!(
        s.client
            .job_spec(&escrow)
            .await
            .expect("found through the submit record"),
        spec
    );
    let requester = s.live.balance(&s.requester);
    let attestations = s.attest(&escrow, Verdict::Accept, &[0, 2]);
    s.settle(vec![(escrow, Settlement::Claim { attestations })])
        .await;
    assert_eq!(
        s.live.balance(&s.provider),
        (deposit, PRICE),
        "the provider got price and deposit"
    );
    assert_eq!(
        s.live.balance(&s.requester),
        requester,
        "the requester is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_show_is_refunded_once_the_submit_deadline_has_passed() {
    let s = setup().await;
    let escrow = s.lock_one(5_000, 10_000).await;
    let early = s
        .client
        .settle(&s.keeper, vec![(escrow.clone(), Settlement::RefundNoShow)])
        .await
        .expect_err("too early");
    assert!(early.to_string().contains("has until"), "{early}");
    s.live.advance(5_000 / SLOT_MS + 1);
    let requester = s.live.balance(&s.requester);
    let deposit = escrow.utxo.output.value.lovelace;
    s.settle(vec![(escrow, Settlement::RefundNoShow)]).await;
    assert_eq!(
        s.live.balance(&s.requester),
        (requester.0 + deposit, requester.1 + PRICE)
    );
    assert_eq!(s.live.balance(&s.provider), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_paid_into_the_escrows_reward_account_goes_to_the_next_settler() {
    let s = setup().await;
    let escrow = s.lock_one(2_000, 10_000).await;
    // Anyone can make this happen on a testnet: a governance proposal whose
    // deposit returns to the escrow's reward account. The ledger then accepts
    // only withdrawals of exactly that balance.
    let stake = s.client.deployment().script.stake_address(Network::Devnet);
    let paid: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/devnet/rewards",
            s.live.url.trim_end_matches("/api/v0")
        ))
        .json(&serde_json::json!({
            "stake_address": stake.to_bech32().expect("bech32"),
            "lovelace": 3_000_000
        }))
        .send()
        .await
        .expect("the devnet answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(paid["withdrawable_amount"], "3000000", "{paid}");
    assert_eq!(s.client.reward_balance().await.expect("balance"), 3_000_000);
    s.live.advance(2_000 / SLOT_MS + 1);
    s.client.collateral(&s.keeper).await.expect("collateral");
    let before = s.live.balance(&s.keeper);
    let (prepared, _) = s
        .client
        .settle(&s.keeper, vec![(escrow, Settlement::RefundNoShow)])
        .await
        .expect("the refund builds");
    s.send(&prepared).await;
    assert_eq!(
        s.live.balance(&s.keeper),
        (before.0 + 3_000_000 - prepared.fee(), before.1),
        "the settler withdrew the whole balance"
    );
    assert_eq!(s.client.reward_balance().await.expect("balance"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploying_over_a_registered_stake_credential_leaves_the_registration_alone() {
    let s = setup().await;
    // The setup's deployment registered the credential; a second deployment of
    // the same script (as a stranger could make first) must not try again.
    let stranger = s.live.wallet(0x40, 100, 0);
    let again = EscrowClient::deploy(
        s.live.chain.clone(),
        Network::Devnet,
        &s.live.ntx,
        &stranger,
    )
    .await
    .expect("deploys over the registered credential");
    assert!(!again.registered_stake);
    let client = EscrowClient::connect(s.live.chain.clone(), &again.info)
        .await
        .expect("connects");
    assert_eq!(
        client.deployment().script.hash(),
        s.client.deployment().script.hash()
    );
    let lovelace = s.live.balance(&stranger).0;
    assert!(
        lovelace > 100_000_000 - 25_000_000,
        "no stake deposit was paid: {lovelace}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_without_a_quorum_is_refunded_after_the_settle_deadline() {
    let s = setup().await;
    let escrow = s.lock_one(30_000, 40_000).await;
    let escrow = s.submit(&escrow, [0x55; 32]).await;
    let early = s
        .client
        .settle(&s.keeper, vec![(escrow.clone(), Settlement::RefundTimeout)])
        .await
        .expect_err("too early");
    assert!(early.to_string().contains("may still claim"), "{early}");
    s.live.advance(40_000 / SLOT_MS + 1);
    let attestations = s.attest(&escrow, Verdict::Accept, &[0, 1]);
    let late = s
        .client
        .settle(
            &s.keeper,
            vec![(escrow.clone(), Settlement::Claim { attestations })],
        )
        .await
        .expect_err("too late to claim");
    assert!(late.to_string().contains("deadline has passed"), "{late}");
    let requester = s.live.balance(&s.requester);
    let deposit = escrow.utxo.output.value.lovelace;
    s.settle(vec![(escrow, Settlement::RefundTimeout)]).await;
    assert_eq!(
        s.live.balance(&s.requester),
        (requester.0 + deposit, requester.1 + PRICE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejecting_quorum_refunds_the_requester_at_once() {
    let s = setup().await;
    let escrow = s.lock_one(60_000, 120_000).await;
    let escrow = s.submit(&escrow, [0x66; 32]).await;
    let requester = s.live.balance(&s.requester);
    let deposit = escrow.utxo.output.value.lovelace;
    let attestations = s.attest(&escrow, Verdict::Reject, &[1, 2]);
    s.settle(vec![(escrow, Settlement::RefundRejected { attestations })])
        .await;
    assert_eq!(
        s.live.balance(&s.requester),
        (requester.0 + deposit, requester.1 + PRICE)
    );
    assert_eq!(s.live.balance(&s.provider), (0, 0));
}

/// Attestations of `verdict` over `result_hash` by the verifiers `who`.
fn attest_over(
    s: &Setup,
    escrow: &EscrowUtxo,
    verdict: Verdict,
    who: &[u32],
    result_hash: [u8; 32],
) -> Vec<ntx_offchain::protocol::Attestation> {
    let message = attestation_message(
        verdict,
        &s.client.deployment().script.hash(),
        &escrow.datum.job_id,
        &result_hash,
    );
    who.iter()
        .map(|i| sign_attestation(&s.verifiers[*i as usize], *i, &message))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_pays_from_the_lock_and_records_the_result_for_auditors() {
    let s = setup().await;
    let accepted = s.lock_one(60_000, 120_000).await;
    let rejected = s.lock_one(60_000, 120_000).await;
    let deposit = accepted.utxo.output.value.lovelace;
    let (good, bad) = ([0x71; 32], [0x72; 32]);
    let items = vec![
        (
            accepted.clone(),
            Settlement::FastClaim {
                result_hash: good,
                attestations: attest_over(&s, &accepted, Verdict::Accept, &[0, 2], good),
            },
        ),
        (
            rejected.clone(),
            Settlement::FastRefundRejected {
                result_hash: bad,
                attestations: attest_over(&s, &rejected, Verdict::Reject, &[1, 2], bad),
            },
        ),
    ];
    // Without the results' URLs the settlement is refused before it is built.
    let refused = s
        .client
        .settle(&s.keeper, items.clone())
        .await
        .expect_err("a fast-path settlement names its result");
    assert!(matches!(refused, ClientError::Invalid(_)), "{refused}");
    let urls = ntx_offchain::client::ResultUrls::from([
        (
            accepted.datum.job_id,
            format!("http://provider.invalid/results/{}", hex::encode(good)),
        ),
        (
            rejected.datum.job_id,
            "http://provider.invalid/results/bad".to_string(),
        ),
    ]);
    s.client.collateral(&s.keeper).await.expect("collateral");
    let requester = s.live.balance(&s.requester);
    let (prepared, rest) = s
        .client
        .settle_with_results(&s.keeper, items, &urls)
        .await
        .expect("the fast-path settlement builds");
    assert!(rest.is_empty());
    s.send(&prepared).await;
    assert_eq!(
        s.live.balance(&s.provider),
        (deposit, PRICE),
        "paid from the lock"
    );
    assert_eq!(
        s.live.balance(&s.requester),
        (requester.0 + deposit, requester.1 + PRICE),
        "the rejected job refunded at once"
    );
    // The settlement's record names each result, as a Submit's would.
    for (escrow, hash, url) in [
        (&accepted, good, hex::encode(good)),
        (&rejected, bad, "bad".to_string()),
    ] {
        let record = s
            .client
            .result_location_in(&prepared.tx_id(), &escrow.datum.job_id, &hash)
            .await
            .expect("the settle record names the job");
        assert_eq!(
            record.result_url,
            format!("http://provider.invalid/results/{url}")
        );
    }
    // The auditor rebuilds both lifecycles without a Submit, and finds nothing.
    let target = ntx_offchain::audit::Target {
        script_hash: s.client.deployment().script.hash(),
        settlement: s.client.deployment().script.settlement().clone(),
    };
    let history = ntx_offchain::audit::collect_history(
        s.live.chain.as_ref(),
        target,
        Network::Devnet,
        Default::default(),
    )
    .await
    .expect("the history is collected");
    let audit = ntx_offchain::audit::check(&history, Network::Devnet);
    assert!(
        audit.is_clean(),
        "{}",
        ntx_offchain::audit::render_table(&audit)
    );
    for (escrow, hash, outcome) in [
        (&accepted, good, ntx_offchain::audit::Outcome::Claimed),
        (
            &rejected,
            bad,
            ntx_offchain::audit::Outcome::RefundedRejected,
        ),
    ] {
        let job = audit
            .jobs
            .iter()
            .find(|j| j.job_id == hex::encode(escrow.datum.job_id))
            .expect("the job is audited");
        assert_eq!(job.outcome, outcome);
        assert!(job.fast_path && job.submit_tx.is_none());
        assert_eq!(job.result_hash, Some(hex::encode(hash)));
        assert_eq!(job.result_tx, Some(hex::encode(prepared.tx_id())));
        assert_eq!(job.attestations, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_closes_at_submit_by() {
    let s = setup().await;
    let escrow = s.lock_one(3_000, 60_000).await;
    s.live.advance(3_000 / SLOT_MS + 1);
    let hash = [0x71; 32];
    let items = vec![(
        escrow.clone(),
        Settlement::FastClaim {
            result_hash: hash,
            attestations: attest_over(&s, &escrow, Verdict::Accept, &[0, 1], hash),
        },
    )];
    let urls = ntx_offchain::client::ResultUrls::from([(
        escrow.datum.job_id,
        "http://provider.invalid/results/late".to_string(),
    )]);
    let late = s
        .client
        .settle_with_results(&s.keeper, items, &urls)
        .await
        .expect_err("past submit_by the fast path is closed");
    assert!(
        matches!(late, ClientError::Build(_) | ClientError::Invalid(_)),
        "{late}"
    );
    assert!(
        s.client.escrow(&escrow.datum.job_id).await.is_ok(),
        "untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_needs_the_requester_and_the_agent() {
    let s = setup().await;
    let escrow = s.lock_one(60_000, 120_000).await;
    let before = s.live.balance(&s.requester);
    let deposit = escrow.utxo.output.value.lovelace;

    // Without the agent's witness the ledger refuses it.
    let unsigned = s
        .client
        .cancel(&s.requester, None, &escrow)
        .await
        .expect("builds for external signing");
    let refused = s
        .client
        .send(&unsigned, 1)
        .await
        .expect_err("the agent has not signed");
    assert!(refused.to_string().contains("rejected"), "{refused}");
    assert_eq!(s.live.balance(&s.requester), before, "nothing moved");

    let prepared = s
        .client
        .cancel(&s.requester, Some(&s.agent), &escrow)
        .await
        .expect("cancel builds");
    s.send(&prepared).await;
    assert_eq!(
        s.live.balance(&s.requester),
        (before.0 + deposit - prepared.fee(), before.1 + PRICE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_jobs_lock_in_batches_and_settle_in_one_claim_despite_dust() {
    let s = setup().await;
    s.live
        .devnet
        .fund_now(&s.requester.address().to_bech32(), 500_000_000, 50 * PRICE)
        .expect("funds");
    // One seed UTxO per job.
    let split = s
        .client
        .split(&s.requester, 50, 5_000_000)
        .await
        .expect("split builds");
    s.send(&split).await;

    let mut ids = Vec::new();
    for chunk in 0..5 {
        let mut requests = Vec::new();
        for i in 0..10 {
            requests.push(s.request(chunk * 10 + i, 300_000, 600_000).await);
        }
        let prepared = s
            .client
            .lock(&s.requester, requests)
            .await
            .expect("10 jobs lock");
        s.send(&prepared).await;
        ids.extend(prepared.job_ids.clone());
    }
    assert_eq!(ids.len(), 50);

    let mut submitted = Vec::new();
    for id in &ids {
        let escrow = s.client.escrow(id).await.expect("locked");
        submitted.push(s.submit(&escrow, [0x42; 32]).await);
    }

    // Dust at the script address: ADA alone, and NTX without a job token.
    let script_address = s
        .client
        .deployment()
        .script
        .address(Network::Devnet)
        .to_vec();
    let bech32 = pallas_bech32(&script_address);
    s.live.devnet.fund_now(&bech32, 2_000_000, 0).expect("dust");
    s.live.devnet.fund_now(&bech32, 2_000_000, 7).expect("junk");
    let scan = s.client.scan().await.expect("scan");
    assert_eq!(scan.escrows.len(), 50);
    assert_eq!(
        scan.skipped.len(),
        3,
        "two dust UTxOs and the reference script"
    );

    let deposits: u64 = submitted.iter().map(|e| e.utxo.output.value.lovelace).sum();
    let items = submitted
        .into_iter()
        .map(|e| {
            let attestations = s.attest(&e, Verdict::Accept, &[0, 1]);
            (e, Settlement::Claim { attestations })
        })
        .collect();
    let claim = s.settle(items).await;
    assert_eq!(s.live.balance(&s.provider), (deposits, 50 * PRICE));
    assert_eq!(claim.job_ids.len(), 50);
    assert_eq!(
        s.client.scan().await.expect("scan").skipped.len(),
        3,
        "dust untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_before_anything_is_submitted() {
    let s = setup().await;
    let before = s.live.balance(&s.requester);
    let mut past = s.request(0, 60_000, 120_000).await;
    past.terms.submit_by = 1;
    let e = s
        .client
        .lock(&s.requester, vec![past])
        .await
        .expect_err("past deadline");
    assert!(
        e.is_user_error() && e.to_string().contains("not in the future"),
        "{e}"
    );

    let mut greedy = s.request(0, 60_000, 120_000).await;
    greedy.terms.price = 1_000 * PRICE;
    let e = s
        .client
        .lock(&s.requester, vec![greedy])
        .await
        .expect_err("too poor");
    assert!(matches!(e, ClientError::InsufficientFunds(_)), "{e}");

    let mainnet = Wallet::new(
        Network::Mainnet,
        ntx_offchain::wallet::SigningKey::from_normal_bytes(&[9; 32]),
        None,
    );
    let ok = s.request(0, 60_000, 120_000).await;
    let e = s
        .client
        .lock(&mainnet, vec![ok])
        .await
        .expect_err("wrong network");
    assert!(e.to_string().contains("mainnet wallet"), "{e}");

    let e = s.client.escrow(&[0xee; 32]).await.expect_err("no such job");
    assert!(matches!(e, ClientError::NotAnEscrow(_)));
    assert_eq!(s.live.balance(&s.requester), before, "nothing was spent");

    // A deployment file for another asset names another script.
    let mut info: DeploymentInfo = s.client.info().clone();
    info.settlement_name = hex::encode(b"XYZ");
    let e = EscrowClient::connect(s.live.chain.clone(), &info)
        .await
        .expect_err("mismatch");
    assert!(e.to_string().contains("redeploy"), "{e}");
    let _ = s.live.chain.tip().await.expect("still up");
}

fn pallas_bech32(address: &[u8]) -> String {
    pallas_addresses::Address::from_bytes(address)
        .expect("an address")
        .to_bech32()
        .expect("bech32")
}
