//! Attacks: deadlines.

use super::*;

#[test]
fn refund_before_its_deadline() {
    let scene = Scene::new();
    let escrows = scene.lock(2);
    let start = scene.now();
    let after_submit_by = scene.slot_of(escrows[0].datum.submit_by) + 1;
    // No-show refund while the provider still has time (built as if later).
    let mut draft = scene.settle_draft(
        vec![(escrows[0].clone(), Settlement::RefundNoShow)],
        after_submit_by,
    );
    draft.valid_from_slot = Some(start);
    draft.invalid_from_slot = Some(start + 100);
    let tx = scene.force_as_keeper(draft);
    let err = scene.attack("no-show refund before submit_by", &tx);
    assert_script_failure("no-show refund", &err, reward_purpose());
    // No validity start at all: the script cannot know the deadline passed.
    let mut draft = scene.settle_draft(
        vec![(escrows[0].clone(), Settlement::RefundNoShow)],
        after_submit_by,
    );
    draft.valid_from_slot = None;
    draft.invalid_from_slot = Some(start + 100);
    let tx = scene.force_as_keeper(draft);
    let err = scene.attack("no-show refund without a lower bound", &tx);
    assert_script_failure("no-show refund, unbounded", &err, reward_purpose());
    // Timeout refund of a submitted job before settle_by.
    let done = scene.submit(&escrows[1], RESULT);
    let now = scene.now();
    let after_settle_by = scene.slot_of(done.datum.settle_by) + 1;
    let mut draft = scene.settle_draft(vec![(done, Settlement::RefundTimeout)], after_settle_by);
    draft.valid_from_slot = Some(now);
    draft.invalid_from_slot = Some(now + 100);
    let tx = scene.force_as_keeper(draft);
    let err = scene.attack("timeout refund before settle_by", &tx);
    assert_script_failure("timeout refund", &err, reward_purpose());
}

#[test]
fn claim_after_settle_by() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let attestations = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let escrow_settle_by = escrow.datum.settle_by;
    let draft = scene.claim_draft(escrow, attestations);
    // Go past settle_by.
    let past = scene.slot_of(escrow_settle_by) + 1;
    scene
        .world
        .devnet
        .advance_to_slot(past)
        .expect("time passes");
    let mut draft = draft;
    let now = scene.now();
    draft.valid_from_slot = Some(now);
    draft.invalid_from_slot = Some(now + 50);
    let tx = scene.force_as_keeper(draft);
    scene.refused("claim after settle_by", &tx, reward_purpose());
}

#[test]
fn cancel_without_both_signatures() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    // Requester alone: names only itself as a required signer.
    let mut draft = scene.settle_draft(vec![(escrow.clone(), Settlement::Cancel)], scene.now());
    draft.required_signers.remove(&scene.agent.key_hash);
    let tx = scene.force(
        draft,
        &scene.mallory,
        &[&scene.mallory.key, &scene.requester.key],
    );
    scene.refused("cancel without the agent", &tx, reward_purpose());
    // Agent alone.
    let mut draft = scene.settle_draft(vec![(escrow, Settlement::Cancel)], scene.now());
    draft.required_signers.remove(&scene.requester.key_hash);
    let tx = scene.force(
        draft,
        &scene.mallory,
        &[&scene.mallory.key, &scene.agent.key],
    );
    scene.refused("cancel without the requester", &tx, reward_purpose());
}
