//! Fuzzing (proptest) of the decoders that read chain data an attacker writes:
//! datums and redeemers as CBOR bytes and as Plutus data trees. Anyone can put
//! any datum at the escrow address and any redeemer in a transaction the
//! auditor reads, so none of these may panic; each refuses bad input with an
//! error. (Valid values' round trips are in `protocol_roundtrip.rs`.)
//!
//! Case counts are modest so that `cargo test` stays quick; a longer run:
//! `PROPTEST_CASES=100000 cargo test -p ntx-offchain --test fuzz_datum --release`.

mod common;

use common::config;
use ntx_offchain::protocol::{
    Address, Attestation, Credential, FromPlutusData, JobDatum, JobState, MintAction,
    OutputReference, Settlement, SpendAction, ToPlutusData, data,
};
use pallas_primitives::PlutusData;
use proptest::prelude::*;

/// Any Plutus data tree, biased toward the shapes the protocol uses.
fn plutus_data() -> impl Strategy<Value = PlutusData> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| data::int(i128::from(i))),
        any::<i128>().prop_map(data::int),
        prop::collection::vec(any::<u8>(), 0..70).prop_map(|b| data::bytes(&b)),
        prop::sample::select(vec![0usize, 28, 32, 64]).prop_map(|n| data::bytes(&vec![7; n])),
    ];
    leaf.prop_recursive(4, 64, 12, |inner| {
        prop_oneof![
            (0u64..8, prop::collection::vec(inner.clone(), 0..12))
                .prop_map(|(i, f)| data::constr(i, f)),
            // Large constructor indexes use CBOR's other tag ranges.
            (
                prop::sample::select(vec![7u64, 127, 128, 1000, 1u64 << 40]),
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(i, f)| data::constr(i, f)),
            prop::collection::vec(inner.clone(), 0..6).prop_map(data::list),
            prop::collection::vec((inner.clone(), inner), 0..4).prop_map(data::map),
        ]
    })
}

/// Runs every decoder of the protocol on `d`; none may panic. Whatever decodes
/// must encode back to data that decodes to the same value.
fn decode_all(d: &PlutusData) {
    fn check<T: FromPlutusData + ToPlutusData + PartialEq + std::fmt::Debug>(d: &PlutusData) {
        if let Ok(v) = T::from_plutus_data(d) {
            let again =
                T::from_plutus_data(&v.to_plutus_data()).expect("a decoded value re-decodes");
            assert_eq!(again, v);
        }
    }
    check::<JobDatum>(d);
    check::<JobState>(d);
    check::<Address>(d);
    check::<Credential>(d);
    check::<OutputReference>(d);
    check::<MintAction>(d);
    check::<SpendAction>(d);
    check::<Settlement>(d);
    check::<Vec<Settlement>>(d);
    check::<Attestation>(d);
}

fn valid_datum() -> JobDatum {
    JobDatum {
        job_id: [1; 32],
        requester: Address {
            payment: Credential::Key([2; 28]),
            stake: None,
        },
        provider: Address {
            payment: Credential::Key([3; 28]),
            stake: None,
        },
        agent: [4; 28],
        spec_hash: [5; 32],
        price: 25_000_000,
        verifiers: vec![[6; 32], [7; 32], [8; 32]],
        threshold: 2,
        submit_by: 1_000,
        settle_by: 2_000,
        state: JobState::Submitted {
            result_hash: [9; 32],
        },
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_data_decoder(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(d) = data::decode(&bytes) {
            decode_all(&d);
        }
    }

    #[test]
    fn arbitrary_data_trees_never_panic_a_protocol_decoder(d in plutus_data()) {
        decode_all(&d);
        // And through CBOR.
        let bytes = data::encode(&d);
        let back = data::decode(&bytes).expect("our own encoding decodes");
        decode_all(&back);
    }

    #[test]
    fn a_datum_with_one_field_replaced_is_refused_or_still_a_datum(
        field in 0usize..12,
        replacement in plutus_data(),
    ) {
        let datum = valid_datum().to_plutus_data();
        let (_, fields) = data::as_constr(&datum, "datum", 11).expect("a valid datum");
        let mut fields = fields.to_vec();
        if field < fields.len() {
            fields[field] = replacement;
        } else {
            fields.push(replacement); // a twelfth field
        }
        let tampered = data::constr(0, fields);
        decode_all(&tampered);
        if field == 11 {
            prop_assert!(JobDatum::from_plutus_data(&tampered).is_err(), "twelve fields are refused");
        }
    }

    #[test]
    fn a_mutated_datum_encoding_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = data::encode(&valid_datum().to_plutus_data());
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte | 1;
        }
        if truncate {
            let n = cut.index(bytes.len());
            bytes.truncate(n);
        }
        if let Ok(d) = data::decode(&bytes) {
            decode_all(&d);
        }
    }
}

#[test]
fn deeply_nested_data_is_refused_without_a_stack_overflow() {
    // 0x9f (indefinite list) nested 100,000 deep: an attacker's datum is at most
    // a transaction's size (16 KB), but the decoder must not recurse to death on
    // a crafted blob handed to it off chain either.
    for depth in [1_000usize, 16_384] {
        let mut bytes = vec![0x9f; depth];
        bytes.extend(std::iter::repeat_n(0xff, depth));
        let result = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || data::decode(&bytes).map(|d| decode_all(&d)).is_ok())
            .expect("a thread")
            .join();
        assert!(
            result.is_ok(),
            "decoding {depth} nested lists must not crash"
        );
    }
}
