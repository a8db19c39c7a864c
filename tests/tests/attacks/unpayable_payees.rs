//! Attacks: unpayable payees.

use super::*;

/// A lock whose provider (or requester) address no ledger output can carry: a
/// stake key hash of 5 bytes, or a stake pointer. A provider who did such a job
/// could never be paid, and the requester would take the refund at `settle_by`
/// after the work was done. The lock's `is_payee` checks the stake part as well as
/// the payment credential and refuses all three (until it did, this was the
/// finding of docs/SECURITY.md row 24, stopped only off chain).
#[test]
fn a_lock_with_an_unpayable_payee_is_refused() {
    let scene = Scene::new();
    let inline_short = |kind: u64| {
        data::constr(
            0,
            vec![data::constr(
                0,
                vec![data::constr(kind, vec![data::bytes(&[1; 5])])],
            )],
        )
    };
    let pointer = data::constr(
        0,
        vec![data::constr(
            1,
            vec![data::int(1), data::int(2), data::int(3)],
        )],
    );
    let cases = [
        (
            "provider with a 5-byte stake key hash",
            2,
            scene.provider.key_hash,
            inline_short(0),
        ),
        (
            "provider with a stake pointer",
            2,
            scene.provider.key_hash,
            pointer,
        ),
        (
            "requester with a 5-byte stake script hash",
            1,
            scene.requester.key_hash,
            inline_short(1),
        ),
    ];
    for (what, field, key_hash, stake) in cases {
        let mut draft = scene.lock_draft(1);
        let mut fields = lock_datum_fields(&draft);
        fields[field] = data::constr(
            0,
            vec![data::constr(0, vec![data::bytes(&key_hash)]), stake],
        );
        draft.outputs[0].datum = Datum::Inline(data::constr(0, fields));
        let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
        let err = scene.attack(what, &tx);
        assert_script_failure(what, &err, "mint:0");
    }
}
