//! Property tests: every protocol value survives Rust → Plutus data → CBOR → Rust.

use ntx_offchain::protocol::{
    Address, Asset, Attestation, Credential, FromPlutusData, JobDatum, JobOrigin, JobState,
    MintAction, OutputReference, Settlement, SpendAction, StakeCredential, ToPlutusData,
};
use proptest::prelude::*;

fn credential() -> impl Strategy<Value = Credential> {
    prop_oneof![
        any::<[u8; 28]>().prop_map(Credential::Key),
        any::<[u8; 28]>().prop_map(Credential::Script)
    ]
}

fn address() -> impl Strategy<Value = Address> {
    let stake = prop_oneof![
        Just(None),
        credential().prop_map(|c| Some(StakeCredential::Inline(c))),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(slot, transaction_index, certificate_index)| {
                Some(StakeCredential::Pointer {
                    slot,
                    transaction_index,
                    certificate_index,
                })
            }
        ),
    ];
    (credential(), stake).prop_map(|(payment, stake)| Address { payment, stake })
}

fn state() -> impl Strategy<Value = JobState> {
    prop_oneof![
        Just(JobState::Locked),
        any::<[u8; 32]>().prop_map(|result_hash| JobState::Submitted { result_hash }),
    ]
}

prop_compose! {
    fn job_datum()(
        job_id in any::<[u8; 32]>(),
        requester in address(),
        provider in address(),
        agent in any::<[u8; 28]>(),
        spec_hash in any::<[u8; 32]>(),
        price in any::<u64>(),
        verifiers in prop::collection::vec(any::<[u8; 32]>(), 0..8),
        threshold in any::<u32>(),
        submit_by in any::<u64>(),
        settle_by in any::<u64>(),
        state in state(),
    ) -> JobDatum {
        JobDatum { job_id, requester, provider, agent, spec_hash, price, verifiers, threshold, submit_by, settle_by, state }
    }
}

fn attestation() -> impl Strategy<Value = Attestation> + Clone {
    (any::<u32>(), prop::collection::vec(any::<u8>(), 64)).prop_map(|(verifier_index, sig)| {
        Attestation {
            verifier_index,
            signature: sig.try_into().expect("64 bytes"),
        }
    })
}

fn settlement() -> impl Strategy<Value = Settlement> {
    let attestations = prop::collection::vec(attestation(), 0..5);
    prop_oneof![
        attestations
            .clone()
            .prop_map(|attestations| Settlement::Claim { attestations }),
        Just(Settlement::RefundNoShow),
        Just(Settlement::RefundTimeout),
        attestations.prop_map(|attestations| Settlement::RefundRejected { attestations }),
        Just(Settlement::Cancel),
    ]
}

fn round_trip<T: ToPlutusData + FromPlutusData + PartialEq + std::fmt::Debug>(value: &T) {
    let cbor = value.to_cbor();
    let back = T::from_cbor(&cbor).expect("decodes what it encoded");
    assert_eq!(&back, value);
    assert_eq!(back.to_cbor(), cbor, "re-encoding is byte-identical");
}

proptest! {
    #[test]
    fn job_datums_round_trip(datum in job_datum()) {
        round_trip(&datum);
    }

    #[test]
    fn mint_actions_round_trip(jobs in prop::collection::vec((any::<u32>(), any::<u32>()), 0..6), burn in any::<bool>()) {
        let action = if burn {
            MintAction::Burn
        } else {
            MintAction::Lock { jobs: jobs.into_iter().map(|(seed_input, escrow_output)| JobOrigin { seed_input, escrow_output }).collect() }
        };
        round_trip(&action);
    }

    #[test]
    fn spend_actions_round_trip(input_index in any::<u32>(), output_index in any::<u32>(), result_hash in any::<[u8; 32]>(), settle in any::<bool>()) {
        let action = if settle {
            SpendAction::Settle { input_index }
        } else {
            SpendAction::Submit { input_index, output_index, result_hash }
        };
        round_trip(&action);
    }

    #[test]
    fn settlements_round_trip(settlements in prop::collection::vec(settlement(), 0..6)) {
        round_trip(&settlements);
    }

    #[test]
    fn assets_and_references_round_trip(policy in any::<[u8; 28]>(), name in prop::collection::vec(any::<u8>(), 0..32), transaction_id in any::<[u8; 32]>(), output_index in any::<u64>()) {
        round_trip(&Asset { policy, name });
        round_trip(&OutputReference { transaction_id, output_index });
    }

    /// Decoding never panics, whatever the bytes.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = JobDatum::from_cbor(&bytes);
        let _ = Vec::<Settlement>::from_cbor(&bytes);
        let _ = SpendAction::from_cbor(&bytes);
        let _ = MintAction::from_cbor(&bytes);
    }
}

#[test]
fn a_datum_with_a_missing_field_says_which_shape_was_expected() {
    let data = ntx_offchain::protocol::data::constr(
        0,
        vec![ntx_offchain::protocol::data::bytes(&[0; 32])],
    );
    let err = JobDatum::from_plutus_data(&data).expect_err("one field is not eleven");
    assert!(
        err.to_string().contains("job datum: expected 11 fields"),
        "{err}"
    );
}
