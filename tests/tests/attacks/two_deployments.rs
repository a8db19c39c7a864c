//! Attacks: two deployments in one transaction.

use super::*;

/// The escrow deployed a second time, for `asset`: the same contract, another
/// script hash, address, policy and stake credential.
fn deploy_for(scene: &Scene, asset: &Asset) -> Deployment {
    let script = Blueprint::embedded()
        .escrow(asset)
        .expect("the blueprint applies");
    let deployer = Party::from_seed(0x65, Network::Devnet);
    let funding = vec![scene.world.fund(&deployer, 50_000_000, 0)];
    let draft = builder::deploy(
        &script,
        Network::Devnet,
        &scene.world.fee_params,
        scene.world.key_deposit,
        funding,
        true,
    )
    .expect("deploy builds");
    let mut dep = Deployment {
        script,
        script_utxo: Utxo {
            reference: ntx_offchain::protocol::OutputReference {
                transaction_id: [0; 32],
                output_index: 0,
            },
            output: draft.outputs[0].clone(),
        },
        ..scene.dep.clone()
    };
    let finished = dep
        .finish(draft, &deployer.address_bytes, &[&deployer.key], 0)
        .expect("deploy evaluates");
    scene
        .world
        .submit(&finished)
        .expect("the second deployment is accepted");
    dep.script_utxo.reference.transaction_id = finished.tx.id;
    dep
}

/// One transaction settling `a` (main deployment) and `b` (deployment `dep_b`):
/// the two builders' drafts merged, spend indexes recomputed.
fn merged_claims(
    scene: &Scene,
    a: (EscrowUtxo, Settlement),
    dep_b: &Deployment,
    b: (EscrowUtxo, Settlement),
) -> Draft {
    let mut m = scene.settle_draft(vec![a], scene.now());
    let spare = scene.world.fund(&scene.mallory, 5_000_000, 0);
    let db =
        builder::settle(dep_b, vec![b], vec![], spare, scene.now(), 100, 0).expect("settle builds");
    m.inputs.extend(db.inputs);
    m.mint.extend(db.mint);
    m.withdrawals.extend(db.withdrawals);
    m.reference_inputs.extend(db.reference_inputs);
    m.outputs.extend(db.outputs);
    m.redeemers.extend(db.redeemers);
    m.invalid_from_slot = m.invalid_from_slot.min(db.invalid_from_slot);
    reindex_spends(&mut m);
    m
}

#[test]
fn one_output_paying_two_deployments_settlements() {
    let scene = Scene::new();
    // Mallory mints a FAKE asset (always-succeeds policy) for the requester, and
    // the escrow is deployed a second time, for FAKE.
    let fake = Asset {
        policy: always_policy(),
        name: b"FAKE".to_vec(),
    };
    let to_requester = TxOutput::new(
        scene.requester.address_bytes.clone(),
        ntx_offchain::tx::Value::lovelace(20_000_000).with_asset(fake.policy, &fake.name, PRICE),
    );
    let tx = forge(
        &scene,
        vec![to_requester],
        BTreeMap::from([(fake.name.clone(), PRICE as i64)]),
    );
    scene
        .world
        .devnet
        .submit(&tx.cbor)
        .expect("the FAKE mint is accepted");
    scene.world.devnet.produce_block().expect("a block");
    let dep_b = deploy_for(&scene, &fake);
    assert_ne!(dep_b.script.hash(), scene.dep.script.hash());

    // Job A in the NTX escrow, job B in the FAKE escrow, same provider, both submitted.
    let a = submitted(&scene, 1).remove(0);
    let funding = scene
        .world
        .utxos(&scene.requester.address_bytes)
        .into_iter()
        .filter(|u| u.output.value.quantity_of(&fake.policy, &fake.name) > 0)
        .collect();
    let collateral = scene.world.fund(&scene.requester, 5_000_000, 0);
    let draft = builder::lock(
        &dep_b,
        &[scene.terms()],
        funding,
        collateral,
        scene.now() + 100,
        Default::default(),
    )
    .expect("lock B builds");
    let lock = dep_b
        .finish(
            draft,
            &scene.requester.address_bytes,
            &[&scene.requester.key],
            0,
        )
        .expect("lock B evaluates");
    scene.world.submit(&lock).expect("lock B is accepted");
    let b_utxo = scene
        .world
        .utxos(&dep_b.script.address(Network::Devnet).to_vec())
        .into_iter()
        .find(|u| u.reference.transaction_id == lock.tx.id)
        .expect("escrow B");
    let b = EscrowUtxo::from_utxo(&dep_b, b_utxo).expect("escrow B is an escrow");
    let funding = vec![scene.world.fund(&scene.agent, 5_000_000, 0)];
    let collateral = scene.world.fund(&scene.agent, 5_000_000, 0);
    let draft = builder::submit(&dep_b, &b, RESULT, funding, collateral, scene.now() + 50)
        .expect("submit B builds");
    let submit = dep_b
        .finish(draft, &scene.agent.address_bytes, &[&scene.agent.key], 0)
        .expect("submit B evaluates");
    scene.world.submit(&submit).expect("submit B is accepted");
    let b_utxo = scene
        .world
        .utxos(&dep_b.script.address(Network::Devnet).to_vec())
        .into_iter()
        .find(|u| u.reference.transaction_id == submit.tx.id)
        .expect("escrow B, submitted");
    let b = EscrowUtxo::from_utxo(&dep_b, b_utxo).expect("still an escrow");
    let atts_a = scene.attest(&a, Verdict::Accept, &[0, 1]);
    let signers = [(&scene.verifiers[0], 0), (&scene.verifiers[1], 1)];
    let atts_b = scene.attest_as(&b, Verdict::Accept, &signers, dep_b.script.hash(), RESULT);
    let claim_a = (
        a.clone(),
        Settlement::Claim {
            attestations: atts_a,
        },
    );
    let claim_b = (
        b.clone(),
        Settlement::Claim {
            attestations: atts_b,
        },
    );

    // The attack: one output, tagged for A, carries both assets but only one
    // deposit; B's deposit goes to mallory.
    let mut draft = merged_claims(&scene, claim_a.clone(), &dep_b, claim_b.clone());
    let provider = scene.provider.address_bytes.clone();
    let mut single = a.payout(&scene.dep);
    single.add_asset(fake.policy, &fake.name, PRICE);
    draft.outputs.retain(|o| o.address != provider);
    draft.outputs.insert(
        0,
        TxOutput::new(provider.clone(), single).with_inline_datum(
            ntx_offchain::protocol::payout_datum(&scene.dep.script.hash()),
        ),
    );
    let b_account = dep_b.script.stake_address(Network::Devnet).to_vec();
    let (_, b_index) = draft
        .redeemer_key(&ScriptPurpose::Reward(b_account))
        .expect("B's withdrawal");
    let tx = scene.force_as_keeper(draft);
    scene.refused(
        "one output for two deployments",
        &tx,
        &format!("withdraw:{b_index}"),
    );

    // The control: the same merged transaction with each payout tagged for its
    // own deployment is accepted, and the provider gets both.
    let draft = merged_claims(&scene, claim_a, &dep_b, claim_b);
    let both = scene.finish_as_keeper(draft, "the honest merged claim evaluates");
    scene
        .world
        .submit(&both)
        .expect("the honest merged claim is accepted");
    let paid = |policy: &[u8; 28], name: &[u8]| -> u64 {
        scene
            .world
            .utxos(&provider)
            .iter()
            .map(|u| u.output.value.quantity_of(policy, name))
            .sum()
    };
    assert_eq!(paid(&scene.world.ntx.policy, &scene.world.ntx.name), PRICE);
    assert_eq!(paid(&fake.policy, &fake.name), PRICE);
}
