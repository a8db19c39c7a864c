//! Attacks: escrows live only at the escrow address, and only with their token.

use super::*;

/// A job locked at the escrow's payment credential but with Mallory's stake key:
/// the ledger would take it, Mallory would earn the deposit's staking rewards,
/// and every reader (agents, `ntx job`, `ntx settle`, `ntx audit`), which look at
/// the escrow address itself, would miss it. The lock requires the escrow
/// output's address to be exactly the escrow address.
#[test]
fn a_lock_at_the_escrow_credential_with_a_foreign_stake_part_is_refused() {
    let scene = Scene::new();
    let network = scene.escrow_address()[0] & 0x0f;
    for (what, header, stake) in [
        ("Mallory's stake key", 0x10, scene.mallory.key_hash),
        (
            "the script as its own stake part",
            0x30,
            scene.dep.script.hash(),
        ),
    ] {
        let mut draft = scene.lock_draft(1);
        let mut address = vec![header | network];
        address.extend(scene.dep.script.hash());
        address.extend(stake);
        draft.outputs[0].address = address;
        let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
        scene.refused(what, &tx, "mint:0");
    }
}

/// Anyone can pay a look-alike to the escrow address: a `Locked` datum naming
/// Mallory's own key as agent, without a job token. Submit requires the job
/// token, so the look-alike is never turned into a "submitted" job.
#[test]
fn submitting_a_look_alike_without_a_job_token() {
    let scene = Scene::new();
    let mut terms = scene.terms();
    terms.agent = scene.mallory.key_hash;
    let datum = terms.datum([0x42; 32]);
    let value = ntx_offchain::tx::Value::lovelace(5_000_000).with_asset(
        scene.world.ntx.policy,
        &scene.world.ntx.name,
        PRICE,
    );
    let out =
        TxOutput::new(scene.escrow_address(), value).with_inline_datum(datum.to_plutus_data());
    let tx = forge(&scene, vec![out], BTreeMap::new());
    let fake = EscrowUtxo {
        utxo: land_at_escrow(&scene, &tx),
        datum,
    };
    let draft = scene.submit_draft(&fake, RESULT, &scene.mallory);
    let purpose = spend_purpose(&draft, &fake);
    let tx = scene.force(draft, &scene.mallory, &[&scene.mallory.key]);
    scene.refused("a Submit of a token-less look-alike", &tx, &purpose);
}
