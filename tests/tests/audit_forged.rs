//! Forged histories the auditor must flag. The ledger would refuse each of
//! these transactions (the validator checks the same rules), so they are
//! made by editing the real devnet history the auditor collected, and the
//! checks run on that data. Each forgery must be flagged with its rule, on
//! the right job and transaction, and with nothing else.

mod audit_common;

use audit_common::{Scenario, scenario};
use ntx_offchain::Network;
use ntx_offchain::audit::{
    Audit, EscrowTx, History, JobReport, Recheck, ResultChecker, Rule, check, recompute,
    render_table,
};
use ntx_offchain::chain::AssetHolding;
use ntx_offchain::protocol::{
    FromPlutusData, Settlement, ToPlutusData, Verdict, attestation_message, payout_datum,
    sign_attestation,
};
use ntx_offchain::tx::{Datum, TxOutput};
use ntx_tests::Party;

fn forge(edit: impl FnOnce(&mut History)) -> Audit {
    let mut history = scenario().history.clone();
    edit(&mut history);
    check(&history, Network::Devnet)
}

fn tx<'h>(history: &'h mut History, id: &[u8; 32]) -> &'h mut EscrowTx {
    history
        .txs
        .iter_mut()
        .find(|t| t.id == *id)
        .expect("the transaction is in the history")
}

/// Every finding is `rule` on `job` in `tx` (`None`: no transaction), and there is one at least.
fn assert_only(audit: &Audit, rule: Rule, job: &[u8; 32], tx: Option<&[u8; 32]>) {
    assert!(!audit.findings.is_empty(), "nothing flagged");
    for f in &audit.findings {
        assert_eq!(f.rule, rule, "{}", render_table(audit));
        assert_eq!(f.job_id, Some(hex::encode(job)), "{}", render_table(audit));
        assert_eq!(f.tx_id, tx.map(hex::encode), "{}", render_table(audit));
    }
}

/// The history with transaction `id`'s withdraw-redeemer settlements edited.
fn forge_settlements(id: &[u8; 32], edit: impl FnOnce(&mut Vec<Settlement>)) -> Audit {
    forge(|h| edit_settlements(tx(h, id), edit))
}

/// The first output of `t` tagged with the deployment's payout datum.
fn payout_output<'t>(t: &'t mut EscrowTx, s: &Scenario) -> &'t mut TxOutput {
    let tag = payout_datum(&s.deployment.script.hash());
    t.outputs
        .iter_mut()
        .find(|o| matches!(&o.datum, Datum::Inline(d) if *d == tag))
        .expect("a payout output")
}

/// Some finding's detail contains `says`.
fn assert_says(audit: &Audit, says: &str) {
    assert!(details(audit).contains(says), "{}", details(audit));
}

fn details(audit: &Audit) -> String {
    audit
        .findings
        .iter()
        .map(|f| f.detail.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rewrites the settlements of a transaction's withdraw redeemer.
fn edit_settlements(t: &mut EscrowTx, edit: impl FnOnce(&mut Vec<Settlement>)) {
    let data = t.redeemers.withdraw.as_ref().expect("a withdraw redeemer");
    let mut list = Vec::<Settlement>::from_plutus_data(data).expect("decodes");
    edit(&mut list);
    t.redeemers.withdraw = Some(list.to_plutus_data());
}

fn attestations(list: &mut [Settlement]) -> &mut Vec<ntx_offchain::protocol::Attestation> {
    match &mut list[0] {
        Settlement::Claim { attestations } | Settlement::RefundRejected { attestations } => {
            attestations
        }
        other => panic!("no attestations in {other:?}"),
    }
}

#[test]
fn the_real_history_is_clean() {
    let audit = forge(|_| {});
    assert!(audit.is_clean(), "{}", render_table(&audit));
}

#[test]
fn a_claim_paying_the_wrong_party() {
    let s = scenario();
    let audit = forge(|h| {
        let payout = payout_output(tx(h, &s.txs.claim), s);
        payout.address = s.parties.requester_a.address_bytes.clone();
    });
    assert_only(&audit, Rule::Payout, &s.jobs.claimed, Some(&s.txs.claim));
    assert!(
        details(&audit).contains(&s.parties.provider_1.bech32),
        "{}",
        details(&audit)
    );
}

#[test]
fn a_payout_without_the_payout_tag_does_not_count() {
    let s = scenario();
    let audit = forge(|h| {
        let reject = tx(h, &s.txs.reject);
        let tag = payout_datum(&s.deployment.script.hash());
        for o in &mut reject.outputs {
            if matches!(&o.datum, Datum::Inline(d) if *d == tag) {
                o.datum = Datum::None;
            }
        }
    });
    assert_only(&audit, Rule::Payout, &s.jobs.rejected, Some(&s.txs.reject));
}

#[test]
fn a_short_payout() {
    let s = scenario();
    let ntx = &s.world.ntx;
    let audit = forge(|h| {
        let payout = payout_output(tx(h, &s.txs.claim), s);
        let names = payout.value.assets.get_mut(&ntx.policy).expect("NTX");
        *names.get_mut(&ntx.name).expect("NTX") -= 1;
    });
    assert_only(&audit, Rule::Payout, &s.jobs.claimed, Some(&s.txs.claim));
}

#[test]
fn a_forged_signature() {
    let s = scenario();
    let audit = forge_settlements(&s.txs.claim, |list| {
        attestations(list)[0].signature[7] ^= 0x01;
    });
    assert_only(
        &audit,
        Rule::Attestations,
        &s.jobs.claimed,
        Some(&s.txs.claim),
    );
    let d = details(&audit);
    assert!(
        d.contains("signature of verifier 0") && d.contains("does not verify"),
        "{d}"
    );
    assert!(
        d.contains("1 distinct valid accept signature(s), the threshold is 2"),
        "{d}"
    );
}

#[test]
fn a_duplicated_signature() {
    let s = scenario();
    let audit = forge_settlements(&s.txs.claim, |list| {
        let a = attestations(list);
        a[1] = a[0];
    });
    assert_only(
        &audit,
        Rule::Attestations,
        &s.jobs.claimed,
        Some(&s.txs.claim),
    );
    let d = details(&audit);
    assert!(d.contains("verifier 0 is counted twice"), "{d}");
    assert!(d.contains("threshold is 2"), "{d}");
}

#[test]
fn a_signature_by_an_outsider_or_for_another_job() {
    let s = scenario();
    let outsider = Party::from_seed(0x7f, Network::Devnet);
    let hash = s.deployment.script.hash();
    // The outsider signs the right message, claiming to be verifier 1.
    let message = attestation_message(Verdict::Accept, &hash, &s.jobs.claimed, &[0x11; 32]);
    let by_outsider = sign_attestation(&outsider.key, 1, &message);
    // A real verifier's accept for another job, replayed.
    let other = attestation_message(Verdict::Accept, &hash, &s.jobs.rejected, &[0x11; 32]);
    let replayed = sign_attestation(&s.parties.verifiers[2].key, 2, &other);
    for forged in [by_outsider, replayed] {
        let audit = forge_settlements(&s.txs.claim, |list| {
            attestations(list)[1] = forged;
        });
        assert_only(
            &audit,
            Rule::Attestations,
            &s.jobs.claimed,
            Some(&s.txs.claim),
        );
    }
    // Accept signatures used to refund as rejected.
    let accept = attestation_message(Verdict::Accept, &hash, &s.jobs.rejected, &[0x22; 32]);
    let audit = forge_settlements(&s.txs.reject, |list| {
        *attestations(list) = vec![
            sign_attestation(&s.parties.verifiers[1].key, 1, &accept),
            sign_attestation(&s.parties.verifiers[2].key, 2, &accept),
        ];
    });
    assert_only(
        &audit,
        Rule::Attestations,
        &s.jobs.rejected,
        Some(&s.txs.reject),
    );
    assert_says(&audit, "reject message");
}

#[test]
fn a_no_show_refund_before_submit_by() {
    let s = scenario();
    let audit = forge(|h| {
        let lock_slot = tx(h, &s.txs.lock_b).slot;
        tx(h, &s.txs.no_show).valid_from_slot = Some(lock_slot);
    });
    assert_only(
        &audit,
        Rule::SettlementRule,
        &s.jobs.no_show,
        Some(&s.txs.no_show),
    );
    assert_says(&audit, "not after submit_by");
}

#[test]
fn a_timeout_refund_before_settle_by() {
    let s = scenario();
    let audit = forge(|h| {
        let early = tx(h, &s.txs.no_show).slot;
        tx(h, &s.txs.timeout).valid_from_slot = Some(early);
    });
    assert_only(
        &audit,
        Rule::SettlementRule,
        &s.jobs.timeout,
        Some(&s.txs.timeout),
    );
    assert_says(&audit, "not after settle_by");
}

#[test]
fn a_claim_after_settle_by() {
    let s = scenario();
    let audit = forge(|h| {
        let late = tx(h, &s.txs.timeout).slot + 100;
        tx(h, &s.txs.claim).invalid_from_slot = Some(late);
    });
    assert_only(
        &audit,
        Rule::SettlementRule,
        &s.jobs.claimed,
        Some(&s.txs.claim),
    );
}

#[test]
fn a_cancel_without_the_agent() {
    let s = scenario();
    let audit = forge(|h| {
        let agent = s.parties.agent_2.key_hash;
        tx(h, &s.txs.cancel)
            .required_signers
            .retain(|k| *k != agent);
    });
    assert_only(
        &audit,
        Rule::SettlementRule,
        &s.jobs.cancelled,
        Some(&s.txs.cancel),
    );
    assert_says(&audit, "agent's signature");
}

#[test]
fn a_refund_that_calls_a_submitted_job_a_no_show() {
    let s = scenario();
    let audit = forge_settlements(&s.txs.timeout, |list| {
        list[0] = Settlement::RefundNoShow;
    });
    assert_only(
        &audit,
        Rule::SettlementRule,
        &s.jobs.timeout,
        Some(&s.txs.timeout),
    );
    assert_says(&audit, "already submitted");
}

#[test]
fn a_job_token_minted_twice() {
    let s = scenario();
    let audit = forge(|h| {
        let mut again = tx(h, &s.txs.lock_a).clone();
        again.id = [0xd0; 32];
        again.block_height = h.txs.last().map(|t| t.block_height + 1).unwrap_or(0);
        again.slot = h.txs.last().map(|t| t.slot).unwrap_or(0);
        h.txs.push(again);
    });
    assert_eq!(audit.findings.len(), 3, "{}", render_table(&audit));
    for f in &audit.findings {
        assert_eq!(f.rule, Rule::MintOnce);
        assert_eq!(f.tx_id, Some(hex::encode([0xd0; 32])));
    }
    let j = &scenario().jobs;
    let mut flagged: Vec<_> = audit
        .findings
        .iter()
        .filter_map(|f| f.job_id.clone())
        .collect();
    flagged.sort();
    let mut want = vec![
        hex::encode(j.claimed),
        hex::encode(j.rejected),
        hex::encode(j.timeout),
    ];
    want.sort();
    assert_eq!(flagged, want);
}

#[test]
fn a_job_token_minted_in_quantity_two() {
    let s = scenario();
    let audit = forge(|h| {
        tx(h, &s.txs.lock_b).mint.insert(s.jobs.open.to_vec(), 2);
    });
    assert_only(&audit, Rule::MintOnce, &s.jobs.open, Some(&s.txs.lock_b));
}

#[test]
fn a_settlement_that_does_not_burn() {
    let s = scenario();
    let audit = forge(|h| {
        tx(h, &s.txs.claim).mint.clear();
    });
    assert_only(&audit, Rule::BurnOnce, &s.jobs.claimed, Some(&s.txs.claim));
}

#[test]
fn an_escrow_spent_without_a_redeemer() {
    let s = scenario();
    let audit = forge(|h| {
        let claim = tx(h, &s.txs.claim);
        let escrow_input = claim
            .inputs
            .iter()
            .position(|i| {
                i.output.as_ref().is_some_and(|o| {
                    o.address == s.deployment.script.address(Network::Devnet).to_vec()
                })
            })
            .expect("the escrow input");
        claim.redeemers.spend.remove(&(escrow_input as u32));
        // And no burn or payout claims to settle it.
        claim.redeemers.withdraw = None;
        claim.mint.clear();
        claim.withdraws = false;
    });
    assert_only(
        &audit,
        Rule::EscrowLeak,
        &s.jobs.claimed,
        Some(&s.txs.claim),
    );
}

#[test]
fn a_submit_not_signed_by_the_agent() {
    let s = scenario();
    let audit = forge(|h| {
        tx(h, &s.txs.submits[0]).required_signers.clear();
    });
    assert_only(
        &audit,
        Rule::Submit,
        &s.jobs.claimed,
        Some(&s.txs.submits[0]),
    );
}

/// Judges results by a table of the right result hash per job spec: what a
/// re-run would compute.
struct KnownResults(Vec<(String, Option<String>)>);

#[async_trait::async_trait]
impl ResultChecker for KnownResults {
    async fn recheck(&self, job: &JobReport) -> Recheck {
        match self.0.iter().find(|(spec, _)| *spec == job.spec_hash) {
            Some((_, Some(right))) if job.result_hash.as_ref() == Some(right) => Recheck::Agrees,
            Some((_, Some(right))) => Recheck::Disagrees(format!("the re-run gives {right}")),
            _ => Recheck::Unavailable("no model files for this spec".into()),
        }
    }
}

#[tokio::test]
async fn a_quorum_that_signed_a_bad_result() {
    let s = scenario();
    let audit = check(&s.history, Network::Devnet);
    let spec = |id: &[u8; 32]| {
        audit
            .jobs
            .iter()
            .find(|j| j.job_id == hex::encode(id))
            .map(|j| j.spec_hash.clone())
            .expect("job")
    };
    // The claimed job's right result is not what was paid for; the rejected
    // job's result was right after all; the timeout is never re-run.
    let checker = KnownResults(vec![
        (spec(&s.jobs.claimed), Some(hex::encode([0x99; 32]))),
        (spec(&s.jobs.rejected), Some(hex::encode([0x22; 32]))),
    ]);
    let mut rechecked = audit.clone();
    recompute(&mut rechecked, &checker).await;
    assert_eq!(rechecked.findings.len(), 2, "{}", render_table(&rechecked));
    let by_job = |id: &[u8; 32]| {
        rechecked
            .findings
            .iter()
            .find(|f| f.job_id == Some(hex::encode(id)))
            .expect("flagged")
    };
    assert_eq!(by_job(&s.jobs.claimed).rule, Rule::Recompute);
    assert_eq!(
        by_job(&s.jobs.claimed).tx_id,
        Some(hex::encode(s.txs.claim))
    );
    assert!(
        by_job(&s.jobs.rejected)
            .detail
            .contains("rejected a result the re-run accepts")
    );

    // A checker that agrees with every quorum finds nothing; one without the
    // model files leaves notes, not findings.
    let agreeing = KnownResults(vec![
        (spec(&s.jobs.claimed), Some(hex::encode([0x11; 32]))),
        (spec(&s.jobs.rejected), Some(hex::encode([0x99; 32]))),
    ]);
    let mut fine = audit.clone();
    recompute(&mut fine, &agreeing).await;
    assert!(fine.is_clean());
    let mut blind = audit.clone();
    recompute(&mut blind, &KnownResults(Vec::new())).await;
    assert!(blind.is_clean());
    assert_eq!(blind.notes.len(), 2);
}

/// The escrow's payment credential with someone's stake key: not the escrow
/// address (the lock refuses it since 2026-12-04; an audit of an older chain, or
/// of a chain the contract did not guard, must still say so).
fn foreign_stake_address(s: &Scenario) -> Vec<u8> {
    let mut address = vec![0x10];
    address.extend(s.target.script_hash);
    address.extend([0x99; 28]);
    address
}

#[test]
fn a_job_token_held_outside_the_escrow_address() {
    let s = scenario();
    let elsewhere = foreign_stake_address(s);
    let audit = forge(|h| {
        h.holdings.push(AssetHolding {
            name: s.jobs.open.to_vec(),
            address: elsewhere,
            quantity: 1,
        })
    });
    assert_only(&audit, Rule::TokenElsewhere, &s.jobs.open, None);
}

#[test]
fn a_lock_to_the_script_credential_with_a_stake_part() {
    let s = scenario();
    let elsewhere = foreign_stake_address(s);
    let policy = s.target.script_hash;
    let audit = forge(|h| {
        let lock = tx(h, &s.txs.lock_b);
        let out = lock
            .outputs
            .iter_mut()
            .find(|o| {
                o.value
                    .assets
                    .get(&policy)
                    .is_some_and(|t| t.contains_key(s.jobs.open.as_slice()))
            })
            .expect("the open job's escrow output");
        out.address = elsewhere;
    });
    let flagged: Vec<_> = audit
        .findings
        .iter()
        .filter(|f| f.job_id == Some(hex::encode(s.jobs.open)))
        .collect();
    assert!(
        flagged
            .iter()
            .any(|f| f.rule == Rule::Lock && f.detail.contains("does not go to the escrow address")),
        "{}",
        render_table(&audit)
    );
}
