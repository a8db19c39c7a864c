//! Attacks on the fast path (protocol v1.1): `FastClaim` and
//! `FastRefundRejected` settle a `Locked` escrow straight away, the result hash
//! in the redeemer. Each is an honest fast-path draft, tampered with.

use super::*;

/// Accepting (or rejecting) attestations by the job's verifiers at `indexes`
/// over `result`, for a still-locked escrow.
fn attest_locked(
    scene: &Scene,
    escrow: &EscrowUtxo,
    verdict: Verdict,
    indexes: &[u32],
    result: [u8; 32],
) -> Vec<Attestation> {
    let signers: Vec<(&Party, u32)> = indexes
        .iter()
        .map(|i| (&scene.verifiers[*i as usize], *i))
        .collect();
    scene.attest_as(escrow, verdict, &signers, scene.dep.script.hash(), result)
}

fn fast_claim(result_hash: [u8; 32], attestations: Vec<Attestation>) -> Settlement {
    Settlement::FastClaim {
        result_hash,
        attestations,
    }
}

fn fast_claim_with(scene: &Scene, escrow: &EscrowUtxo, settlement: Settlement) -> EncodedTx {
    scene.force_as_keeper(scene.settle_draft(vec![(escrow.clone(), settlement)], scene.now()))
}

#[test]
fn forcing_honest_fast_claims_and_refunds_is_accepted() {
    let scene = Scene::new();
    let escrows = scene.lock(2);
    let accepts = attest_locked(&scene, &escrows[0], Verdict::Accept, &[0, 2], RESULT);
    let tx = fast_claim_with(&scene, &escrows[0], fast_claim(RESULT, accepts));
    scene
        .world
        .devnet
        .submit(&tx.cbor)
        .expect("an honest forced fast claim is accepted");
    let rejects = attest_locked(&scene, &escrows[1], Verdict::Reject, &[1, 2], RESULT);
    let refund = Settlement::FastRefundRejected {
        result_hash: RESULT,
        attestations: rejects,
    };
    let tx = fast_claim_with(&scene, &escrows[1], refund);
    scene
        .world
        .devnet
        .submit(&tx.cbor)
        .expect("an honest forced fast refund is accepted");
    scene.world.devnet.produce_block().expect("a block");
    assert_eq!(
        scene.paid_to_provider(),
        PRICE,
        "one job paid, one refunded"
    );
}

#[test]
fn fast_claim_after_submit_by() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    let accepts = attest_locked(&scene, &escrow, Verdict::Accept, &[0, 1], RESULT);
    let submit_by = escrow.datum.submit_by;
    let mut draft = scene.settle_draft(vec![(escrow, fast_claim(RESULT, accepts))], scene.now());
    // Past submit_by, still well before settle_by: only the slow path may claim.
    let past = scene.slot_of(submit_by) + 1;
    scene
        .world
        .devnet
        .advance_to_slot(past)
        .expect("time passes");
    let now = scene.now();
    draft.valid_from_slot = Some(now);
    draft.invalid_from_slot = Some(now + 50);
    let tx = scene.force_as_keeper(draft);
    scene.refused("fast claim after submit_by", &tx, reward_purpose());
}

#[test]
fn fast_claim_with_attestations_for_another_result_job_or_deployment() {
    let scene = Scene::new();
    let escrows = scene.lock(2);
    let escrow = &escrows[0];
    // Signed over another result than the redeemer names.
    let other_result = attest_locked(&scene, escrow, Verdict::Accept, &[0, 1], [0x78; 32]);
    scene.refused(
        "another result",
        &fast_claim_with(&scene, escrow, fast_claim(RESULT, other_result)),
        reward_purpose(),
    );
    // Signed for the other job of the same lock.
    let other_job = attest_locked(&scene, &escrows[1], Verdict::Accept, &[0, 1], RESULT);
    scene.refused(
        "another job",
        &fast_claim_with(&scene, escrow, fast_claim(RESULT, other_job)),
        reward_purpose(),
    );
    // Signed for another deployment's script hash.
    let signers = [(&scene.verifiers[0], 0), (&scene.verifiers[1], 1)];
    let other_deployment = scene.attest_as(escrow, Verdict::Accept, &signers, [0x5e; 28], RESULT);
    scene.refused(
        "another deployment",
        &fast_claim_with(&scene, escrow, fast_claim(RESULT, other_deployment)),
        reward_purpose(),
    );
    // Rejections presented as a claim.
    let rejects = attest_locked(&scene, escrow, Verdict::Reject, &[0, 1], RESULT);
    scene.refused(
        "rejects as a claim",
        &fast_claim_with(&scene, escrow, fast_claim(RESULT, rejects)),
        reward_purpose(),
    );
}

#[test]
fn fast_claim_below_the_threshold() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    let one = attest_locked(&scene, &escrow, Verdict::Accept, &[2], RESULT);
    scene.refused(
        "one of 2-of-3",
        &fast_claim_with(&scene, &escrow, fast_claim(RESULT, one)),
        reward_purpose(),
    );
}

#[test]
fn fast_claim_of_a_submitted_escrow() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    // Honest accepts over the submitted hash, but on the fast path: the builder
    // refuses it, so tamper with an honest slow claim's redeemer.
    let accepts = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let mut draft = scene.claim_draft(escrow, accepts.clone());
    let withdraw = draft
        .redeemers
        .iter_mut()
        .find(|r| matches!(r.purpose, ScriptPurpose::Reward(_)))
        .expect("the withdraw redeemer");
    withdraw.data = vec![fast_claim(RESULT, accepts)].to_plutus_data();
    let tx = scene.force_as_keeper(draft);
    scene.refused("fast claim of a submitted escrow", &tx, reward_purpose());
}

#[test]
fn fast_claim_with_a_submit_of_the_same_escrow_in_one_transaction() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    let accepts = attest_locked(&scene, &escrow, Verdict::Accept, &[0, 1], RESULT);
    let mut draft = scene.settle_draft(
        vec![(escrow.clone(), fast_claim(RESULT, accepts))],
        scene.now(),
    );
    // The escrow is spent as a Submit (continuing, the payout dropped for it)
    // while the withdraw handler fast-claims it: settled and kept at once.
    let mut datum = escrow.datum.clone();
    datum.state = JobState::Submitted {
        result_hash: RESULT,
    };
    let continuing = TxOutput {
        datum: Datum::Inline(datum.to_plutus_data()),
        ..escrow.utxo.output.clone()
    };
    draft.outputs = vec![continuing];
    let input_index = draft.input_index(&escrow.utxo.reference).expect("input");
    let spend = draft
        .redeemers
        .iter_mut()
        .find(|r| r.purpose == ScriptPurpose::Spend(escrow.utxo.reference))
        .expect("the escrow's spend redeemer");
    spend.data = SpendAction::Submit {
        input_index,
        output_index: 0,
        result_hash: RESULT,
    }
    .to_plutus_data();
    // The job token continues with the escrow instead of burning.
    draft.mint.clear();
    draft
        .redeemers
        .retain(|r| !matches!(r.purpose, ScriptPurpose::Mint(_)));
    draft.required_signers.insert(scene.agent.key_hash);
    let purpose = spend_purpose(&draft, &escrow);
    let tx = scene.force(
        draft,
        &scene.mallory,
        &[&scene.mallory.key, &scene.agent.key],
    );
    let err = scene.attack("fast claim + submit of one escrow", &tx);
    assert!(
        matches!(&err, LedgerError::ScriptFailure { purpose: p, .. } if *p == purpose || p == reward_purpose()),
        "a phase-2 failure of the Submit or the withdraw handler: {err}"
    );
}

#[test]
fn a_batch_mixing_fast_and_slow_claims_pays_each_or_nothing() {
    let scene = Scene::new();
    let escrows = scene.lock(2);
    let slow = scene.submit(&escrows[0], RESULT);
    let fast = escrows[1].clone();
    let slow_accepts = scene.attest(&slow, Verdict::Accept, &[0, 1]);
    let fast_accepts = attest_locked(&scene, &fast, Verdict::Accept, &[1, 2], RESULT);
    let items = vec![
        (
            slow.clone(),
            Settlement::Claim {
                attestations: slow_accepts.clone(),
            },
        ),
        (fast.clone(), fast_claim(RESULT, fast_accepts.clone())),
    ];
    // Pay only one escrow's worth: the merged payout is short.
    let mut draft = scene.settle_draft(items.clone(), scene.now());
    draft.outputs[0].value = fast.payout(&scene.dep);
    scene.refused(
        "mixed batch, one payout",
        &scene.force_as_keeper(draft),
        reward_purpose(),
    );
    // The fast claim's attestations moved onto the slow claim and back: each
    // settlement must carry its own job's signatures.
    let swapped = vec![
        (
            slow.clone(),
            Settlement::Claim {
                attestations: fast_accepts.clone(),
            },
        ),
        (fast.clone(), fast_claim(RESULT, slow_accepts)),
    ];
    scene.refused(
        "mixed batch, swapped attestations",
        &scene.force_as_keeper(scene.settle_draft(swapped, scene.now())),
        reward_purpose(),
    );
    // Honest, the batch goes through and pays both.
    let draft = scene.settle_draft(items, scene.now());
    let honest = scene.finish_as_keeper(draft, "the mixed batch evaluates");
    scene.world.submit(&honest).expect("the mixed batch lands");
    assert_eq!(scene.paid_to_provider(), 2 * PRICE);
}
