//! Attacks: dust and replays.

use super::*;

#[test]
fn dust_and_junk_at_the_escrow_address_do_not_block_a_batch() {
    let scene = Scene::new();
    let escrows = submitted(&scene, 3);
    let address = scene.escrow_address();
    // Mallory litters the escrow address: plain ADA, NTX without datum, a copy of
    // an escrow without its job token, a look-alike with a forged token, and a
    // malformed datum.
    let mut copy = escrows[0].utxo.output.clone();
    copy.value.assets.remove(&scene.dep.script.policy_id());
    let junk = vec![
        TxOutput::new(
            address.clone(),
            ntx_offchain::tx::Value::lovelace(1_000_000),
        ),
        TxOutput::new(
            address.clone(),
            ntx_offchain::tx::Value::lovelace(2_000_000).with_asset(
                scene.world.ntx.policy,
                &scene.world.ntx.name,
                7,
            ),
        ),
        copy,
        look_alike(&scene, always_policy(), [0x42; 32]),
        TxOutput::new(
            address.clone(),
            ntx_offchain::tx::Value::lovelace(2_000_000),
        )
        .with_inline_datum(data::int(42)),
    ];
    let n_junk = junk.len();
    let tx = forge(&scene, junk, BTreeMap::from([([0x42u8; 32].to_vec(), 1)]));
    scene
        .world
        .devnet
        .submit(&tx.cbor)
        .expect("litter is a valid payment");
    scene.world.devnet.produce_block().expect("a block");

    // The keeper's view: everything at the address, filtered to genuine escrows.
    let all = scene.world.utxos(&address);
    let found: Vec<EscrowUtxo> = all
        .iter()
        .filter_map(|u| EscrowUtxo::from_utxo(&scene.dep, u.clone()).ok())
        .collect();
    assert_eq!(found.len(), 3, "exactly the three escrows are escrows");
    assert_eq!(
        all.len(),
        3 + n_junk + 1,
        "escrows, junk and the reference script"
    );

    // Sweeping the dust along in the batch is refused...
    let mut claims: Vec<(EscrowUtxo, Settlement)> = found
        .iter()
        .map(|e| {
            let attestations = scene.attest(e, Verdict::Accept, &[0, 1]);
            (e.clone(), Settlement::Claim { attestations })
        })
        .collect();
    let dust = all
        .iter()
        .find(|u| u.reference.transaction_id == tx.id && u.reference.output_index == 0)
        .expect("the plain dust")
        .clone();
    let mut draft = scene.settle_draft(claims.clone(), scene.now());
    draft.inputs.push(dust.clone());
    let order = draft.sorted_inputs();
    for r in &mut draft.redeemers {
        if let ScriptPurpose::Spend(reference) = &r.purpose {
            let input_index = order.iter().position(|x| x == reference).expect("input") as u32;
            r.data = SpendAction::Settle { input_index }.to_plutus_data();
        }
        if let ScriptPurpose::Reward(_) = &r.purpose {
            // Give the dust a settlement of its own, in input order.
            let mut entries: Vec<(usize, Settlement)> = claims
                .iter()
                .map(|(e, s)| {
                    (
                        order
                            .iter()
                            .position(|x| *x == e.utxo.reference)
                            .expect("in"),
                        s.clone(),
                    )
                })
                .collect();
            entries.push((
                order.iter().position(|x| *x == dust.reference).expect("in"),
                Settlement::RefundNoShow,
            ));
            entries.sort_by_key(|(i, _)| *i);
            let list: Vec<Settlement> = entries.into_iter().map(|(_, s)| s).collect();
            r.data = list.to_plutus_data();
        }
    }
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Spend(dust.reference),
        data: SpendAction::Settle {
            input_index: draft.input_index(&dust.reference).expect("input"),
        }
        .to_plutus_data(),
        ex_units: ExUnits::default(),
    });
    let forced = scene.force_as_keeper(draft);
    scene.refused("batch that sweeps dust", &forced, reward_purpose());

    // ...and the batch of the three genuine escrows, built as the keeper builds
    // it, goes through with the junk still there.
    claims.sort_by_key(|(e, _)| e.utxo.reference);
    let draft = scene.settle_draft(claims, scene.now());
    let settle = scene.finish_as_keeper(draft, "the batch evaluates");
    scene.world.submit(&settle).expect("the batch is accepted");
    let paid = scene.paid_to_provider();
    assert_eq!(paid, 3 * PRICE);
    assert_eq!(
        scene.world.utxos(&address).len(),
        n_junk + 1,
        "the junk and the reference script stay"
    );
}

#[test]
fn replaying_a_settlement() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let attestations = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let draft = scene.claim_draft(escrow, attestations);
    let claim = scene.finish_as_keeper(draft, "the claim evaluates");
    scene
        .world
        .devnet
        .submit(&claim.tx.cbor)
        .expect("the claim is accepted");
    // Replayed while the first copy waits in the mempool.
    match scene.world.devnet.submit(&claim.tx.cbor) {
        Err(DevnetError::Ledger(LedgerError::DoubleSpend { .. })) => {}
        other => panic!("the replay must be a double spend: {other:?}"),
    }
    scene.world.devnet.produce_block().expect("a block");
    // Replayed after it is in a block.
    let err = scene.attack("replayed claim", &claim.tx);
    assert!(
        matches!(err, LedgerError::UnknownInput { .. }),
        "the replay spends spent inputs (BadInputsUTxO): {err}"
    );
    assert!(err.to_string().contains("BadInputsUTxO"));
    let paid = scene.paid_to_provider();
    assert_eq!(paid, PRICE, "paid once");
}

#[test]
fn attestations_replayed_into_a_settlement_of_a_new_escrow() {
    // A replay across escrows: the settled job's attestations cannot claim a new
    // job locked later for the same result and verifiers.
    let scene = Scene::new();
    let old = submitted(&scene, 1).remove(0);
    let old_atts = scene.attest(&old, Verdict::Accept, &[0, 1]);
    let draft = scene.settle_draft(
        vec![(
            old,
            Settlement::Claim {
                attestations: old_atts.clone(),
            },
        )],
        scene.now(),
    );
    let claim = scene.finish_as_keeper(draft, "the claim evaluates");
    scene.world.submit(&claim).expect("accepted");
    let new = submitted(&scene, 1).remove(0);
    scene.refused(
        "old attestations, new job",
        &claim_with(&scene, &new, old_atts),
        reward_purpose(),
    );
}
