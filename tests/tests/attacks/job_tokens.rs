//! Attacks: job tokens.

use super::*;

/// A Lock draft's single job, renamed to `new_id` everywhere (mint, value, datum).
fn rename_job(draft: &mut Draft, policy: [u8; 28], new_id: [u8; 32]) {
    let old = draft.mint[&policy].keys().next().expect("one job").clone();
    draft
        .mint
        .insert(policy, BTreeMap::from([(new_id.to_vec(), 1)]));
    let out = &mut draft.outputs[0];
    out.value
        .assets
        .insert(policy, BTreeMap::from([(new_id.to_vec(), 1)]));
    let Datum::Inline(d) = &out.datum else {
        panic!("an inline datum")
    };
    let mut datum = JobDatum::from_plutus_data(d).expect("a job datum");
    assert_eq!(datum.job_id.to_vec(), old);
    datum.job_id = new_id;
    out.datum = Datum::Inline(datum.to_plutus_data());
}

#[test]
fn lock_with_a_job_token_not_named_by_a_spent_seed() {
    let scene = Scene::new();
    let policy = scene.dep.script.policy_id();
    let mut draft = scene.lock_draft(1);
    // An id from an output that the lock does not spend.
    let elsewhere = scene.world.fund(&scene.requester, 2_000_000, 0);
    rename_job(&mut draft, policy, job_id(&elsewhere.reference));
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("unseeded job token", &tx, "mint:0");
}

#[test]
fn minting_a_second_token_for_a_job_id() {
    let scene = Scene::new();
    let policy = scene.dep.script.policy_id();
    let escrows = scene.lock(2);
    let existing = escrows[0].datum.job_id;
    // A new lock minting a token with an existing job's id (its seed is spent).
    let mut draft = scene.lock_draft(1);
    rename_job(&mut draft, policy, existing);
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("second token via a lock", &tx, "mint:0");
    // A lock minting two tokens for its fresh job.
    let mut draft = scene.lock_draft(1);
    for names in draft.mint.values_mut() {
        for q in names.values_mut() {
            *q = 2;
        }
    }
    if let Some(assets) = draft.outputs[0].value.assets.get_mut(&policy) {
        for q in assets.values_mut() {
            *q = 2;
        }
    }
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("two tokens in a lock", &tx, "mint:0");
    // A settlement (Burn redeemer) of job A that also mints a copy of job B's token.
    let mut draft = scene.settle_draft(vec![(escrows[0].clone(), Settlement::Cancel)], scene.now());
    let b = escrows[1].datum.job_id;
    draft.mint.entry(policy).or_default().insert(b.to_vec(), 1);
    let tx = scene.force(
        draft,
        &scene.mallory,
        &[&scene.mallory.key, &scene.requester.key, &scene.agent.key],
    );
    scene.refused("copy minted in a settlement", &tx, "mint:0");
}

#[test]
fn lock_with_a_job_token_minted_under_another_policy() {
    let scene = Scene::new();
    let token = [0x42; 32];
    let forged = look_alike(&scene, always_policy(), token);
    let tx = forge(&scene, vec![forged], BTreeMap::from([(token.to_vec(), 1)]));
    // Anyone may pay to a script address: the ledger accepts the forgery...
    let utxo = land_at_escrow(&scene, &tx);
    // ...but it is no escrow: off-chain code refuses it,
    let refused = EscrowUtxo::from_utxo(&scene.dep, utxo.clone());
    assert!(
        refused.is_err(),
        "off-chain code must not take it for an escrow"
    );
    // and a claim of it, with attestations by the keys its datum names, fails.
    let fake = EscrowUtxo {
        datum: JobDatum::from_plutus_data(match &utxo.output.datum {
            Datum::Inline(d) => d,
            _ => panic!("inline datum"),
        })
        .expect("its datum decodes"),
        utxo,
    };
    let atts = scene.attest_as(
        &fake,
        Verdict::Accept,
        &[(&scene.outsiders[0], 0)],
        scene.dep.script.hash(),
        RESULT,
    );
    let mut draft = scene.settle_draft(
        vec![(fake, Settlement::Claim { attestations: atts })],
        scene.now(),
    );
    // It has no job token to burn.
    draft.mint.clear();
    draft
        .redeemers
        .retain(|r| !matches!(r.purpose, ScriptPurpose::Mint(_)));
    let tx = scene.force_as_keeper(draft);
    scene.refused("claim a forged escrow", &tx, reward_purpose());
}

#[test]
fn lock_with_a_junk_token_bundle_or_an_oversized_datum() {
    let scene = Scene::new();
    let policy = scene.dep.script.policy_id();
    // 60 junk tokens stuffed into the escrow output, minted in the same lock.
    let mut draft = scene.lock_draft(1);
    let junk: BTreeMap<Vec<u8>, i64> = (0..60u8).map(|i| (vec![i; 32], 1)).collect();
    draft.mint.insert(always_policy(), junk.clone());
    draft.outputs[0].value.lovelace += 20_000_000;
    for name in junk.keys() {
        draft.outputs[0].value.add_asset(always_policy(), name, 1);
    }
    draft.plutus_v3_scripts.push(ALWAYS_SUCCEEDS.to_vec());
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Mint(always_policy()),
        data: data::int(0),
        ex_units: ExUnits::default(),
    });
    let purpose = format!(
        "mint:{}",
        draft
            .mint
            .keys()
            .position(|p| *p == policy)
            .expect("escrow policy")
    );
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("junk bundle", &tx, &purpose);
    // A datum with a twelfth field of 8 KB.
    let mut draft = scene.lock_draft(1);
    let mut fields = lock_datum_fields(&draft);
    fields.push(data::list(
        (0..128).map(|i| data::bytes(&[i as u8; 64])).collect(),
    ));
    draft.outputs[0].datum = Datum::Inline(data::constr(0, fields));
    draft.outputs[0].value.lovelace += 40_000_000;
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("oversized datum", &tx, "mint:0");
}
