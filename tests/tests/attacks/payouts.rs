//! Attacks: payouts.

use super::*;

#[test]
fn two_claims_paid_by_one_output() {
    let scene = Scene::new();
    let escrows = submitted(&scene, 2);
    let claims = escrows
        .iter()
        .map(|e| {
            let attestations = scene.attest(e, Verdict::Accept, &[0, 1]);
            (e.clone(), Settlement::Claim { attestations })
        })
        .collect();
    let mut draft = scene.settle_draft(claims, scene.now());
    // The builder merged both payouts into output 0; pay only one escrow's worth
    // (the other goes to mallory's change).
    let one = escrows[0].payout(&scene.dep);
    assert_eq!(draft.outputs[0].address, scene.provider.address_bytes);
    draft.outputs[0].value = one;
    let tx = scene.force_as_keeper(draft);
    scene.refused("two claims, one payout", &tx, reward_purpose());
}

#[test]
fn stealing_the_lovelace_deposit() {
    let scene = Scene::new();
    let escrows = submitted(&scene, 1);
    let escrow = escrows[0].clone();
    let attestations = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let mut draft = scene.claim_draft(escrow.clone(), attestations);
    // The provider gets the NTX with the minimum ADA; the rest of the deposit
    // goes to mallory's change.
    let mut output = draft.outputs[0].clone();
    output.value.lovelace = 0;
    output.value.lovelace = scene.dep.fee_params.min_ada(output.to_cbor().len() + 8);
    assert!(output.value.lovelace < escrow.utxo.output.value.lovelace);
    draft.outputs[0] = output;
    let tx = scene.force_as_keeper(draft);
    scene.refused("deposit stolen", &tx, reward_purpose());
    // Untagged payout: the provider is paid in full, but in an output without the
    // payout tag, so it does not count (and mallory could claim it counts twice).
    let attestations = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let mut draft = scene.claim_draft(escrow, attestations);
    draft.outputs[0].datum = Datum::None;
    let tx = scene.force_as_keeper(draft);
    scene.refused("untagged payout", &tx, reward_purpose());
}

#[test]
fn settlement_paired_with_a_submit_in_one_transaction() {
    let scene = Scene::new();
    let escrows = scene.lock(2);
    let done = scene.submit(&escrows[0], RESULT);
    let attestations = scene.attest(&done, Verdict::Accept, &[0, 1]);
    // Claim escrow A and, in the same transaction, Submit escrow B, whose
    // continuing output the withdraw handler would otherwise see among outputs.
    let mut draft = scene.claim_draft(done, attestations);
    let locked = &escrows[1];
    draft.inputs.push(locked.utxo.clone());
    let mut datum = locked.datum.clone();
    datum.state = JobState::Submitted {
        result_hash: RESULT,
    };
    let continuing = TxOutput {
        datum: Datum::Inline(datum.to_plutus_data()),
        ..locked.utxo.output.clone()
    };
    draft.outputs.insert(0, continuing);
    // Indexes shift: recompute every spend redeemer's input index.
    reindex_spends(&mut draft);
    let input_index = draft.input_index(&locked.utxo.reference).expect("input");
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Spend(locked.utxo.reference),
        data: SpendAction::Submit {
            input_index,
            output_index: 0,
            result_hash: RESULT,
        }
        .to_plutus_data(),
        ex_units: ExUnits::default(),
    });
    draft.required_signers.insert(scene.agent.key_hash);
    let tx = scene.force(
        draft,
        &scene.mallory,
        &[&scene.mallory.key, &scene.agent.key],
    );
    let err = scene.attack("settle + submit", &tx);
    assert!(
        matches!(err, LedgerError::ScriptFailure { .. }),
        "a phase-2 failure: {err}"
    );
}
