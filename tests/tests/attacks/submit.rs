//! Attacks: submit.

use super::*;

#[test]
fn submit_without_the_agent_key() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    // Mallory submits her own result and does not name the agent as a signer:
    // the script sees no agent signature.
    let mut draft = scene.submit_draft(&escrow, [0x66; 32], &scene.mallory);
    draft.required_signers.clear();
    let purpose = spend_purpose(&draft, &escrow);
    let tx = scene.force_as_keeper(draft);
    scene.refused("no agent signer", &tx, &purpose);
    // She names the agent as a required signer but cannot sign for it.
    let draft = scene.submit_draft(&escrow, [0x66; 32], &scene.mallory);
    let tx = scene.force_as_keeper(draft);
    let err = scene.attack("agent signer, no signature", &tx);
    let wants_witness = match &err {
        LedgerError::MissingVKeyWitness { key_hash, .. } => {
            *key_hash == hex::encode(scene.agent.key_hash)
        }
        LedgerError::Phase1 { rule, .. } => *rule == "MissingVKeyWitnessesUTXOW",
        _ => false,
    };
    assert!(wants_witness, "the ledger wants the agent's witness: {err}");
}

#[test]
fn submit_that_rewrites_the_continuing_datum() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    type Edit = fn(&mut JobDatum, &Scene);
    let edits: [(&str, Edit); 9] = [
        ("price", |d, _| d.price /= 2),
        ("provider", |d, s| d.provider = s.mallory.address),
        ("requester", |d, s| d.requester = s.mallory.address),
        ("agent", |d, s| d.agent = s.mallory.key_hash),
        ("verifiers", |d, s| {
            d.verifiers = s.outsiders.iter().map(|p| p.public_key).collect();
        }),
        ("threshold", |d, _| d.threshold = 1),
        ("submit_by", |d, _| d.submit_by += 1_000_000),
        ("settle_by", |d, _| d.settle_by += 1_000_000),
        ("spec_hash", |d, _| d.spec_hash = [0; 32]),
    ];
    for (what, edit) in edits {
        let mut draft = scene.submit_draft(&escrow, RESULT, &scene.agent);
        let mut datum = escrow.datum.clone();
        datum.state = JobState::Submitted {
            result_hash: RESULT,
        };
        edit(&mut datum, &scene);
        draft.outputs[0].datum = Datum::Inline(datum.to_plutus_data());
        let purpose = spend_purpose(&draft, &escrow);
        // The agent itself (a rogue provider) signs.
        let tx = scene.force(draft, &scene.agent, &[&scene.agent.key]);
        let err = scene.attack(&format!("submit rewrites {what}"), &tx);
        assert_script_failure(what, &err, &purpose);
    }
}

#[test]
fn submit_whose_continuing_output_drops_value() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    let ntx = scene.world.ntx.clone();
    let policy = scene.dep.script.policy_id();
    let job = escrow.datum.job_id;
    type Edit = fn(&mut TxOutput, &Asset, &[u8; 28], &[u8; 32], &Scene);
    let edits: [(&str, Edit); 5] = [
        ("all the NTX", |o, ntx, _, _, _| {
            o.value.assets.remove(&ntx.policy);
        }),
        ("one NTX unit", |o, ntx, _, _, _| {
            if let Some(q) = o
                .value
                .assets
                .get_mut(&ntx.policy)
                .and_then(|a| a.get_mut(&ntx.name))
            {
                *q -= 1;
            }
        }),
        ("the job token", |o, _, policy, _, _| {
            o.value.assets.remove(policy);
        }),
        ("part of the deposit", |o, _, _, _, _| {
            o.value.lovelace -= 100_000
        }),
        ("the escrow address", |o, _, _, _, s| {
            o.address = s.agent.address_bytes.clone();
        }),
    ];
    for (what, edit) in edits {
        let mut draft = scene.submit_draft(&escrow, RESULT, &scene.agent);
        edit(&mut draft.outputs[0], &ntx, &policy, &job, &scene);
        let purpose = spend_purpose(&draft, &escrow);
        let tx = scene.force(draft, &scene.agent, &[&scene.agent.key]);
        let err = scene.attack(&format!("submit drops {what}"), &tx);
        if what == "part of the deposit" {
            // The lock's deposit is exactly the submitted escrow's minimum, so the
            // ledger's min-UTxO rule refuses before the script's value check runs.
            assert!(
                matches!(err, LedgerError::OutputTooSmall { .. }),
                "{what}: BabbageOutputTooSmallUTxO, got: {err}"
            );
        } else {
            assert_script_failure(what, &err, &purpose);
        }
    }
}

#[test]
fn submit_after_submit_by_or_twice() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    // Valid past submit_by: the builder refuses, so stretch its validity.
    let mut draft = scene.submit_draft(&escrow, RESULT, &scene.agent);
    draft.invalid_from_slot = Some(scene.slot_of(escrow.datum.submit_by) + 10);
    let purpose = spend_purpose(&draft, &escrow);
    let tx = scene.force(draft, &scene.agent, &[&scene.agent.key]);
    scene.refused("submit valid past submit_by", &tx, &purpose);
    // A second submit over an already submitted escrow (a result swap).
    let done = scene.submit(&escrow, RESULT);
    let mut again = done.clone();
    again.datum.state = JobState::Locked; // so the builder agrees to build it
    let mut draft = scene.submit_draft(&again, [0x99; 32], &scene.agent);
    draft.inputs.retain(|u| u.reference != done.utxo.reference);
    draft.inputs.push(done.utxo.clone());
    let purpose = spend_purpose(&draft, &done);
    let tx = scene.force(draft, &scene.agent, &[&scene.agent.key]);
    scene.refused("second submit", &tx, &purpose);
}
