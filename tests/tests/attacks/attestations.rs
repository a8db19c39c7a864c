//! Attacks: attestations.

use super::*;

#[test]
fn claim_with_attestations_for_another_job() {
    let scene = Scene::new();
    let escrows = submitted(&scene, 2);
    // Genuine accepts, same verifiers, same result hash — but for the other job.
    let for_b = scene.attest(&escrows[1], Verdict::Accept, &[0, 1]);
    scene.refused(
        "another job",
        &claim_with(&scene, &escrows[0], for_b),
        reward_purpose(),
    );
}

#[test]
fn claim_with_attestations_for_another_deployment() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    // The same contract deployed for other settlement assets (mainnet NTX, a fake
    // asset): a verifier's genuine accept there must not count here.
    for other in [
        Asset::mainnet_ntx(),
        Asset {
            policy: always_policy(),
            name: b"FAKE".to_vec(),
        },
    ] {
        let hash = Blueprint::embedded()
            .escrow(&other)
            .expect("the blueprint applies")
            .hash();
        assert_ne!(hash, scene.dep.script.hash());
        let signers = [(&scene.verifiers[0], 0), (&scene.verifiers[1], 1)];
        let atts = scene.attest_as(&escrow, Verdict::Accept, &signers, hash, RESULT);
        scene.refused(
            "another deployment",
            &claim_with(&scene, &escrow, atts),
            reward_purpose(),
        );
    }
}

#[test]
fn claim_with_attestations_for_another_result() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let signers = [(&scene.verifiers[0], 0), (&scene.verifiers[2], 2)];
    let atts = scene.attest_as(
        &escrow,
        Verdict::Accept,
        &signers,
        scene.dep.script.hash(),
        [0x78; 32],
    );
    scene.refused(
        "another result",
        &claim_with(&scene, &escrow, atts),
        reward_purpose(),
    );
}

#[test]
fn claim_with_reject_attestations_or_a_refund_with_accepts() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    // The verdict byte is signed: rejects cannot claim, accepts cannot refund.
    let rejects = scene.attest(&escrow, Verdict::Reject, &[0, 1]);
    scene.refused(
        "claim with rejects",
        &claim_with(&scene, &escrow, rejects),
        reward_purpose(),
    );
    let accepts = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let draft = scene.settle_draft(
        vec![(
            escrow,
            Settlement::RefundRejected {
                attestations: accepts,
            },
        )],
        scene.now(),
    );
    let tx = scene.force_as_keeper(draft);
    scene.refused("refund with accepts", &tx, reward_purpose());
}

#[test]
fn claim_reusing_one_verifiers_signature() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let one = scene.attest(&escrow, Verdict::Accept, &[1]).remove(0);
    // The same attestation twice (index 1, index 1).
    scene.refused(
        "same index twice",
        &claim_with(&scene, &escrow, vec![one, one]),
        reward_purpose(),
    );
    // Verifier 1's signature presented as verifier 0's and as its own.
    let relabelled = Attestation {
        verifier_index: 0,
        ..one
    };
    scene.refused(
        "one signature, two indexes",
        &claim_with(&scene, &escrow, vec![relabelled, one]),
        reward_purpose(),
    );
    // Descending indexes (1, 0), each a genuine signature.
    let zero = scene.attest(&escrow, Verdict::Accept, &[0]).remove(0);
    scene.refused(
        "descending",
        &claim_with(&scene, &escrow, vec![one, zero]),
        reward_purpose(),
    );
}

#[test]
fn claim_with_a_quorum_of_keys_not_in_the_datum() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let signers = [(&scene.outsiders[0], 0), (&scene.outsiders[1], 1)];
    let atts = scene.attest_as(
        &escrow,
        Verdict::Accept,
        &signers,
        scene.dep.script.hash(),
        RESULT,
    );
    scene.refused(
        "outsiders",
        &claim_with(&scene, &escrow, atts),
        reward_purpose(),
    );
    // One genuine verifier plus an outsider claiming an index past the list.
    let mut atts = scene.attest(&escrow, Verdict::Accept, &[0]);
    atts.extend(scene.attest_as(
        &escrow,
        Verdict::Accept,
        &[(&scene.outsiders[2], 3)],
        scene.dep.script.hash(),
        RESULT,
    ));
    scene.refused(
        "index past the list",
        &claim_with(&scene, &escrow, atts),
        reward_purpose(),
    );
}

#[test]
fn claim_below_the_threshold() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let atts = scene.attest(&escrow, Verdict::Accept, &[2]);
    scene.refused(
        "one of 2-of-3",
        &claim_with(&scene, &escrow, atts),
        reward_purpose(),
    );
}
