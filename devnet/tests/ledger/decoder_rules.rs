//! What the Conway ledger's decoder refuses although pallas' decoder reads it:
//! each case is an honest payment with one entry of its body (or its auxiliary
//! data) changed at the CBOR level, and must be refused as undecodable, naming
//! the ledger's failure, before any other rule runs.

use pallas_codec::minicbor::{Decoder, Encoder};

use super::*;

/// The start and end of the transaction body in `tx`, and its entry count.
fn body_span(tx: &[u8]) -> (usize, usize, usize, u64) {
    let mut d = Decoder::new(tx);
    d.array().unwrap();
    let start = d.position();
    let n = d.map().unwrap().unwrap();
    let entries = d.position();
    for _ in 0..2 * n {
        d.skip().unwrap();
    }
    (start, entries, d.position(), n)
}

/// `tx` with `key => value` (CBOR) added to its body.
fn with_entry(tx: &[u8], key: u64, value: &[u8]) -> Vec<u8> {
    let (start, entries, end, n) = body_span(tx);
    let mut body = Vec::new();
    let mut e = Encoder::new(&mut body);
    e.map(n + 1).unwrap();
    body.extend_from_slice(&tx[entries..end]);
    Encoder::new(&mut body).u64(key).unwrap();
    body.extend_from_slice(value);
    [&tx[..start], &body, &tx[end..]].concat()
}

/// `tx` with its auxiliary data (the last element) replaced by `aux` (CBOR).
fn with_auxiliary(tx: &[u8], aux: &[u8]) -> Vec<u8> {
    let mut d = Decoder::new(tx);
    assert_eq!(d.array().unwrap(), Some(4));
    d.skip().unwrap();
    d.skip().unwrap();
    d.skip().unwrap();
    let at = d.position();
    [&tx[..at], aux].concat()
}

fn cbor(f: impl FnOnce(&mut Encoder<&mut Vec<u8>>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    f(&mut e);
    out
}

fn honest(d: &ntx_devnet::Devnet) -> Vec<u8> {
    let alice = d.key("alice").unwrap();
    let bob = d.key("bob").unwrap();
    let input = first_utxo(d, &alice);
    payment(d, &alice, input, &addr(&bob), 3_000_000).build(&d.params(), &[&alice])
}

fn refused_undecodable(d: &ntx_devnet::Devnet, what: &str, tx: &[u8], says: &str) {
    match rejected(d, tx) {
        LedgerError::Undecodable { rule, detail } => {
            assert_eq!(rule, "DeserialiseFailure", "{what}");
            assert!(detail.contains(says), "{what}: {detail}");
        }
        other => panic!("{what}: refused, but not by the decoder: {other}"),
    }
}

#[test]
fn empty_sets_and_maps_the_cddl_makes_non_empty_are_undecodable() {
    let d = devnet();
    let tx = honest(&d);
    let empty_set = cbor(|e| {
        e.tag(pallas_codec::minicbor::data::Tag::new(258))
            .unwrap()
            .array(0)
            .unwrap();
    });
    let empty_array = cbor(|e| {
        e.array(0).unwrap();
    });
    let empty_map = cbor(|e| {
        e.map(0).unwrap();
    });
    let cases: [(&str, u64, &[u8], &str); 9] = [
        ("certificates", 4, &empty_array, "the certificates is empty"),
        ("withdrawals", 5, &empty_map, "the withdrawals is empty"),
        ("mint", 9, &empty_map, "the mint is empty"),
        (
            "collateral",
            13,
            &empty_set,
            "the collateral inputs is empty",
        ),
        (
            "required signers",
            14,
            &empty_set,
            "the required signers is empty",
        ),
        (
            "required signers, untagged",
            14,
            &empty_array,
            "the required signers is empty",
        ),
        (
            "reference inputs",
            18,
            &empty_set,
            "the reference inputs is empty",
        ),
        ("votes", 19, &empty_map, "the voting procedures is empty"),
        (
            "proposals",
            20,
            &empty_set,
            "the proposal procedures is empty",
        ),
    ];
    for (what, key, value, says) in cases {
        refused_undecodable(&d, what, &with_entry(&tx, key, value), says);
    }
}

#[test]
fn zero_quantities_a_zero_donation_and_repeated_keys_are_undecodable() {
    let d = devnet();
    let tx = honest(&d);
    let zero_mint = cbor(|e| {
        e.map(1)
            .unwrap()
            .bytes(&[7; 28])
            .unwrap()
            .map(1)
            .unwrap()
            .bytes(b"X")
            .unwrap()
            .i64(0)
            .unwrap();
    });
    refused_undecodable(
        &d,
        "a zero mint",
        &with_entry(&tx, 9, &zero_mint),
        "must be non-zero",
    );
    let empty_bundle = cbor(|e| {
        e.map(1).unwrap().bytes(&[7; 28]).unwrap().map(0).unwrap();
    });
    refused_undecodable(
        &d,
        "a policy with no assets",
        &with_entry(&tx, 9, &empty_bundle),
        "is empty",
    );
    let zero = cbor(|e| {
        e.u64(0).unwrap();
    });
    refused_undecodable(
        &d,
        "a zero donation",
        &with_entry(&tx, 22, &zero),
        "treasury donation is 0",
    );
    let fee = cbor(|e| {
        e.u64(200_000).unwrap();
    });
    refused_undecodable(&d, "two fees", &with_entry(&tx, 2, &fee), "has key 2 twice");
}

#[test]
fn an_output_holding_zero_of_an_asset_is_undecodable() {
    let d = devnet();
    let tx = honest(&d);
    let alice = d.key("alice").unwrap();
    // A second output list would repeat key 1; use the collateral return (16),
    // which carries an output of the same shape.
    let output = cbor(|e| {
        e.map(2)
            .unwrap()
            .u8(0)
            .unwrap()
            .bytes(&addr(&alice))
            .unwrap()
            .u8(1)
            .unwrap()
            .array(2)
            .unwrap()
            .u64(2_000_000)
            .unwrap()
            .map(1)
            .unwrap()
            .bytes(&[7; 28])
            .unwrap()
            .map(1)
            .unwrap()
            .bytes(b"X")
            .unwrap()
            .u64(0)
            .unwrap();
    });
    refused_undecodable(
        &d,
        "an output with 0 of an asset",
        &with_entry(&tx, 16, &output),
        "must be positive",
    );
}

#[test]
fn metadata_strings_longer_than_64_bytes_are_invalid_metadata() {
    let d = devnet();
    let tx = honest(&d);
    for (what, long) in [
        (
            "text",
            cbor(|e| {
                e.map(1)
                    .unwrap()
                    .u64(674)
                    .unwrap()
                    .str(&"x".repeat(65))
                    .unwrap();
            }),
        ),
        (
            "bytes in a list",
            cbor(|e| {
                e.map(1)
                    .unwrap()
                    .u64(674)
                    .unwrap()
                    .array(1)
                    .unwrap()
                    .bytes(&[1; 65])
                    .unwrap();
            }),
        ),
    ] {
        let aux = [&[0xd9, 0x01, 0x03, 0xa1, 0x00][..], &long].concat(); // #6.259({0: …})
        match rejected(&d, &with_auxiliary(&tx, &aux)) {
            LedgerError::InvalidMetadata(detail) => {
                assert!(detail.contains("65 bytes"), "{what}: {detail}")
            }
            other => panic!("{what}: not InvalidMetadata: {other}"),
        }
    }
    // 64 bytes is allowed (the transaction is then refused by a later rule).
    let fine = cbor(|e| {
        e.map(1)
            .unwrap()
            .u64(674)
            .unwrap()
            .str(&"x".repeat(64))
            .unwrap();
    });
    let aux = [&[0xd9, 0x01, 0x03, 0xa1, 0x00][..], &fine].concat();
    let err = rejected(&d, &with_auxiliary(&tx, &aux));
    assert!(!matches!(err, LedgerError::InvalidMetadata(_)), "{err}");
}
