//! The compiled validator (`contracts/plutus.json`) run by `uplc` on real Conway
//! transactions built by this crate: the proof that the Rust encodings and the
//! contract agree, path by path, and that a few attacks fail.

use ntx_offchain::builder::{BuildError, EscrowUtxo};
use ntx_offchain::protocol::{Asset, Attestation, Settlement, Verdict};
use ntx_offchain::protocol::{SpendAction, ToPlutusData};
use ntx_offchain::sandbox::Sandbox;
use ntx_offchain::tx::{Datum, Draft, DraftRedeemer, ScriptPurpose, TxOutput, Value};

const PRICE: u64 = 25_000_000;
const SUBMIT_BY: u64 = 1_000;
const SETTLE_BY: u64 = 2_000;

fn sandbox() -> Sandbox {
    Sandbox::new(Asset {
        policy: [0xab; 28],
        name: b"NTX".to_vec(),
    })
}

fn locked(sb: &mut Sandbox) -> EscrowUtxo {
    let terms = sb.terms(PRICE, SUBMIT_BY, SETTLE_BY);
    let (_, mut escrows) = sb.lock(&[terms], 100).expect("lock is accepted");
    escrows.remove(0)
}

fn submitted(sb: &mut Sandbox) -> EscrowUtxo {
    let escrow = locked(sb);
    let (_, escrow) = sb
        .submit(&escrow, [0x77; 32], SUBMIT_BY)
        .expect("submit is accepted");
    escrow
}

fn is_script_failure<T: std::fmt::Debug>(result: Result<T, BuildError>) -> bool {
    if let Err(e) = &result {
        eprintln!("rejected: {e}");
    }
    matches!(result, Err(BuildError::Script(_)))
}

/// Whether the validator refuses the keeper's claim of `escrow` with
/// `attestations` at `SUBMIT_BY + 1`, its draft `tamper`ed with first.
fn claim_fails(
    sb: &mut Sandbox,
    escrow: EscrowUtxo,
    attestations: Vec<Attestation>,
    tamper: impl FnOnce(&mut Draft),
) -> bool {
    is_script_failure(sb.settle_draft(
        vec![(escrow, Settlement::Claim { attestations })],
        SUBMIT_BY + 1,
        tamper,
        &[],
    ))
}

fn payout_to(finished: &ntx_offchain::builder::Finished, address: &[u8]) -> Value {
    let mut total = Value::default();
    for o in finished
        .draft
        .outputs
        .iter()
        .filter(|o| o.address == address && matches!(o.datum, Datum::Inline(_)))
    {
        total.add(&o.value);
    }
    total
}

#[test]
fn lock_submit_and_claim_with_two_of_three() {
    let mut sb = sandbox();
    let escrow = submitted(&mut sb);
    let attestations = sb.attest(&escrow, Verdict::Accept, &[0, 2]);
    let payout = escrow.payout(&sb.deployment);
    let finished = sb
        .settle(
            vec![(escrow, Settlement::Claim { attestations })],
            SUBMIT_BY + 10,
            &[],
        )
        .expect("claim is accepted");
    assert_eq!(
        payout_to(&finished, &sb.provider.address_bytes.clone()),
        payout
    );
    assert_eq!(payout.quantity_of(&[0xab; 28], b"NTX"), PRICE);
}

#[test]
fn refund_after_a_no_show() {
    let mut sb = sandbox();
    let escrow = locked(&mut sb);
    let payout = escrow.payout(&sb.deployment);
    let finished = sb
        .settle(vec![(escrow, Settlement::RefundNoShow)], SUBMIT_BY + 1, &[])
        .expect("refund is accepted");
    assert_eq!(
        payout_to(&finished, &sb.requester.address_bytes.clone()),
        payout
    );
}

#[test]
fn refund_after_the_settle_deadline() {
    let mut sb = sandbox();
    let escrow = submitted(&mut sb);
    sb.settle(
        vec![(escrow, Settlement::RefundTimeout)],
        SETTLE_BY + 1,
        &[],
    )
    .expect("refund is accepted");
}

#[test]
fn refund_on_a_rejecting_quorum() {
    let mut sb = sandbox();
    let escrow = submitted(&mut sb);
    let attestations = sb.attest(&escrow, Verdict::Reject, &[1, 2]);
    sb.settle(
        vec![(escrow, Settlement::RefundRejected { attestations })],
        SUBMIT_BY + 5,
        &[],
    )
    .expect("refund is accepted");
}

#[test]
fn cancel_signed_by_requester_and_agent() {
    let mut sb = sandbox();
    let escrow = locked(&mut sb);
    let requester = ntx_offchain::sandbox::Party::from_seed(1, sb.deployment.network);
    let agent = ntx_offchain::sandbox::Party::from_seed(3, sb.deployment.network);
    sb.settle(
        vec![(escrow, Settlement::Cancel)],
        50,
        &[&requester, &agent],
    )
    .expect("cancel is accepted");
}

#[test]
fn a_batch_of_claims_pays_one_merged_output() {
    let mut sb = sandbox();
    let terms: Vec<_> = (0..3)
        .map(|_| sb.terms(PRICE, SUBMIT_BY, SETTLE_BY))
        .collect();
    let (_, escrows) = sb.lock(&terms, 100).expect("batch lock is accepted");
    let mut claims = Vec::new();
    for escrow in escrows {
        let (_, escrow) = sb.submit(&escrow, [0x42; 32], SUBMIT_BY).expect("submit");
        let attestations = sb.attest(&escrow, Verdict::Accept, &[0, 1]);
        claims.push((escrow, Settlement::Claim { attestations }));
    }
    let finished = sb
        .settle(claims, SUBMIT_BY + 1, &[])
        .expect("batch claim is accepted");
    let paid = payout_to(&finished, &sb.provider.address_bytes.clone());
    assert_eq!(paid.quantity_of(&[0xab; 28], b"NTX"), 3 * PRICE);
}

// ## Attacks: the builder is bypassed by tampering with its draft.

#[test]
fn a_claim_with_signatures_over_another_result_fails() {
    let mut sb = sandbox();
    let escrow = submitted(&mut sb);
    let mut forged = escrow.clone();
    forged.datum.state = ntx_offchain::protocol::JobState::Submitted {
        result_hash: [0x78; 32],
    };
    let attestations = sb.attest(&forged, Verdict::Accept, &[0, 1]);
    assert!(claim_fails(&mut sb, escrow, attestations, |_| {}));
}

#[test]
fn a_claim_with_a_repeated_verifier_fails() {
    let mut sb = sandbox();
    let escrow = submitted(&mut sb);
    let mut attestations = sb.attest(&escrow, Verdict::Accept, &[1]);
    attestations.push(attestations[0]);
    assert!(claim_fails(&mut sb, escrow, attestations, |_| {}));
}

#[test]
fn a_claim_that_pays_the_keeper_fails() {
    let mut sb = sandbox();
    let escrow = submitted(&mut sb);
    let attestations = sb.attest(&escrow, Verdict::Accept, &[0, 1]);
    let keeper = sb.keeper.address_bytes.clone();
    assert!(claim_fails(&mut sb, escrow, attestations, |draft| {
        draft.outputs[0].address = keeper
    }));
}

#[test]
fn a_claim_one_unit_short_fails() {
    let mut sb = sandbox();
    let escrow = submitted(&mut sb);
    let attestations = sb.attest(&escrow, Verdict::Accept, &[0, 1]);
    assert!(claim_fails(&mut sb, escrow, attestations, |draft| {
        let v = draft.outputs[0]
            .value
            .assets
            .values_mut()
            .next()
            .and_then(|a| a.values_mut().next());
        if let Some(q) = v {
            *q -= 1;
        }
    }));
}

#[test]
fn a_claim_that_keeps_the_job_token_fails() {
    let mut sb = sandbox();
    let escrow = submitted(&mut sb);
    let attestations = sb.attest(&escrow, Verdict::Accept, &[0, 1]);
    let policy = sb.deployment.script.policy_id();
    let job_id = escrow.datum.job_id;
    assert!(claim_fails(&mut sb, escrow, attestations, |draft| {
        draft.mint.clear();
        draft
            .redeemers
            .retain(|r| !matches!(r.purpose, ntx_offchain::tx::ScriptPurpose::Mint(_)));
        draft.outputs[0].value.add_asset(policy, &job_id, 1);
    }));
}

#[test]
fn a_claim_after_settle_by_fails() {
    let mut sb = sandbox();
    let escrow = submitted(&mut sb);
    let attestations = sb.attest(&escrow, Verdict::Accept, &[0, 1]);
    assert!(claim_fails(&mut sb, escrow, attestations, |draft| {
        draft.invalid_from_slot = Some(SETTLE_BY + 1)
    }));
}

#[test]
fn a_refund_before_submit_by_fails() {
    let mut sb = sandbox();
    let escrow = locked(&mut sb);
    let result = sb.settle_draft(
        vec![(escrow, Settlement::RefundNoShow)],
        SUBMIT_BY + 1,
        |draft| draft.valid_from_slot = Some(SUBMIT_BY),
        &[],
    );
    assert!(is_script_failure(result));
}

#[test]
fn a_submit_without_the_agent_fails() {
    let mut sb = sandbox();
    let escrow = locked(&mut sb);
    let address = sb.agent.address_bytes.clone();
    let funding = vec![sb.utxo(&address, Value::lovelace(10_000_000))];
    let collateral = sb.utxo(&address, Value::lovelace(5_000_000));
    let mut draft = ntx_offchain::builder::submit(
        &sb.deployment,
        &escrow,
        [7; 32],
        funding,
        collateral,
        SUBMIT_BY,
    )
    .expect("builds");
    draft.required_signers.clear();
    assert!(is_script_failure(sb.deployment.finish(
        draft,
        &address,
        &[&sb.agent.key],
        0
    )));
}

#[test]
fn a_settlement_spending_dust_at_the_escrow_address_fails() {
    let mut sb = sandbox();
    let escrow = locked(&mut sb);
    // A copy of the escrow's datum and funds, without the job token.
    let mut dust_output: TxOutput = escrow.utxo.output.clone();
    dust_output
        .value
        .assets
        .remove(&sb.deployment.script.policy_id());
    let dust = ntx_offchain::tx::Utxo {
        reference: ntx_offchain::protocol::OutputReference {
            transaction_id: [0x01; 32],
            output_index: 7,
        },
        output: dust_output,
    };
    let result = sb.settle_draft(
        vec![(escrow, Settlement::RefundNoShow)],
        SUBMIT_BY + 1,
        |draft| {
            draft.inputs.push(dust.clone());
            draft.redeemers.push(DraftRedeemer {
                purpose: ScriptPurpose::Spend(dust.reference),
                data: ntx_offchain::protocol::data::list(vec![]),
                ex_units: Default::default(),
            });
            // Every escrow-address input now needs its index and a settlement.
            let indexes: Vec<_> = draft
                .redeemers
                .iter()
                .map(|r| match &r.purpose {
                    ScriptPurpose::Spend(reference) => draft.input_index(reference),
                    _ => None,
                })
                .collect();
            for (redeemer, index) in draft.redeemers.iter_mut().zip(indexes) {
                if let Some(input_index) = index {
                    redeemer.data = SpendAction::Settle { input_index }.to_plutus_data();
                }
                if matches!(redeemer.purpose, ScriptPurpose::Reward(_)) {
                    redeemer.data =
                        vec![Settlement::RefundNoShow, Settlement::RefundNoShow].to_plutus_data();
                }
            }
        },
        &[],
    );
    assert!(
        is_script_failure(result),
        "dust must never be spendable in a settlement"
    );
}

/// A payee the escrow could never pay (a script payment credential, or a stake
/// pointer) is refused by the builder with the reason, before anything is built;
/// payees with an inline stake key or script are fine (docs/SECURITY.md row 24).
#[test]
fn a_lock_refuses_payees_the_escrow_cannot_pay() {
    use ntx_offchain::protocol::{Credential, StakeCredential};
    let mut sb = sandbox();
    let honest = sb.terms(PRICE, SUBMIT_BY, SETTLE_BY);
    let pointer = Some(StakeCredential::Pointer {
        slot: 1,
        transaction_index: 2,
        certificate_index: 3,
    });
    let mut provider_pointer = honest.clone();
    provider_pointer.provider.stake = pointer;
    let mut requester_script = honest.clone();
    requester_script.requester.payment = Credential::Script([7; 28]);
    for (terms, role) in [
        (provider_pointer, "provider"),
        (requester_script, "requester"),
    ] {
        match sb.lock(&[terms], 100) {
            Err(BuildError::Invalid(why)) => assert!(
                why.contains(&format!("the {role}'s address cannot be paid")),
                "{why}"
            ),
            other => panic!("{role}: expected a refusal, got {other:?}"),
        }
    }
    let mut staked = honest;
    staked.provider.stake = Some(StakeCredential::Inline(Credential::Key([9; 28])));
    staked.requester.stake = Some(StakeCredential::Inline(Credential::Script([8; 28])));
    sb.lock(&[staked], 100)
        .expect("payees with an inline stake credential are accepted on chain");
}
