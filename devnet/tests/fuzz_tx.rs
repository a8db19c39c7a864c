//! Fuzzing (proptest) of the devnet's transaction decoding and validation and of
//! its HTTP handlers: arbitrary and mutated transactions are rejected with a
//! ledger rule, never a panic, and the chain keeps working; bad HTTP requests
//! get a 4xx with a reason.
//!
//! A longer run: `PROPTEST_CASES=20000 cargo test -p ntx-devnet --test fuzz_tx --release`.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use ntx_devnet::txbuilder::Output;
use ntx_devnet::{Devnet, DevnetError, Value};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// A valid, signed payment from alice to bob that pays an inline datum
/// consisting of `marker` (a 16-byte byte string), and the devnet it is valid on.
fn valid_payment() -> (Devnet, Vec<u8>) {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let bob = d.key("bob").unwrap();
    let input = first_utxo(&d, &alice);
    let mut b = payment(&d, &alice, input, &addr(&bob), 3_000_000);
    b.outputs[0] = Output::new(&addr(&bob), Value::lovelace(3_000_000)).inline_datum(&MARKER_DATUM);
    b.balance_fee(&d.params(), &[&alice], 1, 0);
    let tx = b.build(&d.params(), &[&alice]);
    d.validate(&tx).expect("the unmutated payment is valid");
    (d, tx)
}

/// PlutusData CBOR: the byte string `0xab` × 16.
const MARKER_DATUM: [u8; 17] = [
    0x50, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
    0xab,
];

/// Submits `tx`; anything but a ledger rejection or acceptance is a bug.
fn judge(d: &Devnet, tx: &[u8]) {
    match d.submit(tx) {
        Ok(_) | Err(DevnetError::Ledger(_)) => {}
        Err(e) => panic!("the devnet failed instead of judging: {e}"),
    }
}

/// The devnet still accepts an honest transaction.
fn still_works(d: &Devnet) {
    let alice = d.key("alice").unwrap();
    let carol = d.key("carol").or_else(|| d.key("bob")).unwrap();
    let input = richest_utxo(d, &alice);
    let b = payment(d, &alice, input, &addr(&carol), 1_500_000);
    d.submit(&b.build(&d.params(), &[&alice]))
        .expect("an honest payment after the fuzzing is accepted");
}

/// `cases` per property, unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_are_rejected_as_a_ledger_rule(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let d = devnet();
        let err = d.submit(&bytes).expect_err("random bytes are no transaction");
        prop_assert!(matches!(err, DevnetError::Ledger(_)), "{err}");
        let _ = d.validate(&bytes);
        let _ = d.evaluate(&bytes, &[]);
    }

    #[test]
    fn a_mutated_valid_transaction_is_judged_never_a_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (d, mut tx) = valid_payment();
        for (at, byte) in flips {
            let i = at.index(tx.len());
            tx[i] ^= byte | 1;
        }
        if truncate {
            let n = cut.index(tx.len());
            tx.truncate(n);
        }
        judge(&d, &tx);
        let _ = d.evaluate(&tx, &[]);
        d.produce_block().unwrap();
        still_works(&d);
    }
}

#[test]
fn a_datum_nested_thousands_deep_is_rejected_without_crashing() {
    // Splice a deeply nested inline datum (indefinite lists, 2 bytes a level)
    // into a valid payment in place of its marker datum. A transaction of about
    // 16 KB can nest ~8,000 levels; the devnet decodes submissions on a
    // 2 MiB-stack worker thread (tokio's blocking pool), so this runs on one too.
    for depth in [100usize, 1_000, 7_000] {
        let (d, tx) = valid_payment();
        // The inline datum is CBOR-in-CBOR: tag 24, byte string of MARKER_DATUM.
        let mut old = vec![0xd8, 0x18, 0x51];
        old.extend_from_slice(&MARKER_DATUM);
        let at = tx
            .windows(old.len())
            .position(|w| w == old.as_slice())
            .expect("the marker datum is in the transaction");
        let mut nested = vec![0x9f; depth];
        nested.extend(std::iter::repeat_n(0xff, depth));
        let mut new = vec![0xd8, 0x18, 0x59];
        new.extend_from_slice(&(nested.len() as u16).to_be_bytes());
        new.extend_from_slice(&nested);
        let mut forged = tx[..at].to_vec();
        forged.extend_from_slice(&new);
        forged.extend_from_slice(&tx[at + old.len()..]);
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let r = d.submit(&forged);
                (d, r.map(|_| ()).map_err(|e| e.to_string()))
            })
            .unwrap()
            .join()
            .expect("the devnet's submit must not panic");
        let (d, result) = outcome;
        eprintln!("depth {depth}: {result:?}");
        // The body changed, so the signature no longer verifies: rejected.
        assert!(result.is_err(), "depth {depth}: a forged body is rejected");
        still_works(&d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_http_requests_get_a_4xx_with_a_reason() {
    let d = devnet();
    let served = Served::start(&d).await;
    let api = served.api;
    let base = format!("http://{api}/api/v0");
    let http = reqwest::Client::new();

    let mut runner = proptest::test_runner::TestRunner::new(config(64));
    let garbage = (
        prop::collection::vec(any::<u8>(), 0..300),
        "[a-zA-Z0-9_%.~-]{0,70}",
        0usize..10,
    );
    let mut cases = Vec::new();
    for _ in 0..runner.config().cases {
        let tree = garbage.new_tree(&mut runner).unwrap();
        cases.push(tree.current());
    }
    for (body, word, route) in cases {
        let request = match route {
            0 => http
                .post(format!("{base}/tx/submit"))
                .header("content-type", "application/cbor")
                .body(body.clone()),
            1 => http
                .post(format!("{base}/tx/submit"))
                .header("content-type", "text/plain")
                .body(hex::encode(&body)),
            2 => http
                .post(format!("{base}/utils/txs/evaluate"))
                .body(body.clone()),
            3 => http.get(format!("{base}/addresses/{word}/utxos")),
            4 => http.get(format!("{base}/txs/{word}")),
            5 => http.get(format!("{base}/txs/{word}/cbor")),
            6 => http.get(format!("{base}/metadata/txs/labels/{word}")),
            7 => http.get(format!("{base}/blocks/{word}")),
            8 => http
                .post(format!("http://{api}/devnet/fund"))
                .body(body.clone()),
            _ => http
                .post(format!("http://{api}/devnet/advance"))
                .body(body.clone()),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            !status.is_server_error(),
            "route {route} with {word:?} / {} body bytes: {status} {text}",
            body.len()
        );
        if status.is_client_error() {
            assert!(
                !text.trim().is_empty(),
                "route {route}: a {status} says why"
            );
        }
    }
    // A rejected submission names the rule (Blockfrost's error JSON).
    let response = http
        .post(format!("{base}/tx/submit"))
        .header("content-type", "application/cbor")
        .body(vec![0x84, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("Conway"), "{text}");

    let _ = served.stop().await;
}
