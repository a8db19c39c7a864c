//! Fuzzing (proptest) of the job-spec parser and its canonical form
//! (`JobSpecDoc::parse`, `canonical_json`): a requester writes the spec, agents
//! and auditors read it from chain metadata or a URL, so arbitrary bytes must be
//! refused with a reason, never a panic, and the canonical bytes (what
//! `spec_hash` covers) must not depend on formatting.
//!
//! A longer run: `PROPTEST_CASES=100000 cargo test -p ntx-offchain --test fuzz_spec --release`.

mod common;

use common::config;
use ntx_offchain::client::{JobSpecDoc, SpecError, VerifierEndpoint, canonical_json};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

/// Any JSON value: integers (some beyond ±2^53), floats, any strings and keys.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(|i| json!(i)),
        any::<u64>().prop_map(|u| json!(u)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Json::String),
        any::<String>().prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map("[a-z_]{0,6}|\\PC{0,4}", inner, 0..6)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON the canonical form carries: integers within ±2^53, ASCII keys.
fn integral_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(|i| json!(i)),
        any::<String>().prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::btree_map("[ -~]{0,6}", inner, 0..5)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// A spec that parses: version 1, an object `job` of integer-only JSON, and
/// verifiers with 32-byte hex keys.
fn valid_doc() -> impl Strategy<Value = JobSpecDoc> {
    (
        prop::collection::btree_map("[a-z_]{1,8}", integral_json(), 0..5),
        prop::collection::vec((any::<[u8; 32]>(), "[a-z0-9:/.]{0,20}"), 0..4),
    )
        .prop_map(|(job, verifiers)| JobSpecDoc {
            version: 1,
            job: Json::Object(job.into_iter().collect()),
            verifiers: verifiers
                .into_iter()
                .map(|(k, url)| VerifierEndpoint {
                    key: hex::encode(k),
                    url,
                })
                .collect(),
        })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes_are_refused_or_parsed_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = JobSpecDoc::parse(&bytes);
    }

    #[test]
    fn arbitrary_json_is_refused_or_parsed_never_a_panic(v in json_value()) {
        let text = serde_json::to_vec(&v).expect("json serialises");
        if let Ok(doc) = JobSpecDoc::parse(&text) {
            // Whatever parses has canonical bytes and a hash.
            prop_assert!(doc.hash().is_ok());
        }
        let wrapped = serde_json::to_vec(&json!({"version": 1, "job": v, "verifiers": []})).expect("json");
        let _ = JobSpecDoc::parse(&wrapped);
    }

    #[test]
    fn canonical_json_is_a_fixed_point_and_keeps_the_value(v in json_value()) {
        match canonical_json(&v) {
            Ok(bytes) => {
                let back: Json = serde_json::from_slice(&bytes).expect("canonical bytes are JSON");
                prop_assert_eq!(&back, &v);
                prop_assert_eq!(canonical_json(&back).expect("still canonical"), bytes);
            }
            Err(e) => prop_assert!(matches!(e, SpecError::NotCanonical(_)), "{e}"),
        }
    }

    #[test]
    fn the_spec_hash_does_not_depend_on_formatting(doc in valid_doc()) {
        let compact = serde_json::to_vec(&doc).expect("json");
        let pretty = serde_json::to_vec_pretty(&doc).expect("json");
        let a = JobSpecDoc::parse(&compact).expect("a valid spec parses");
        let b = JobSpecDoc::parse(&pretty).expect("a valid spec parses pretty-printed");
        prop_assert_eq!(a.hash().expect("hash"), b.hash().expect("hash"));
        prop_assert_eq!(a.hash().expect("hash"), doc.hash().expect("hash"));
        let canonical = doc.canonical_bytes().expect("canonical");
        prop_assert_eq!(JobSpecDoc::parse(&canonical).expect("canonical parses"), doc);
    }

    #[test]
    fn a_mutated_valid_spec_never_panics(
        doc in valid_doc(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = doc.canonical_bytes().expect("canonical");
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte | 1;
        }
        let _ = JobSpecDoc::parse(&bytes);
    }
}

#[test]
fn deeply_nested_json_is_refused_with_a_reason() {
    // serde_json stops at 128 levels; the parser must say so, not crash.
    let depth = 100_000;
    let mut text = "[".repeat(depth);
    text.push_str(&"]".repeat(depth));
    let doc = format!("{{\"version\":1,\"job\":{{\"x\":{text}}}}}");
    let err = JobSpecDoc::parse(doc.as_bytes()).expect_err("refused");
    assert!(matches!(err, SpecError::Syntax(_)), "{err}");
}

#[test]
fn refusals_say_why() {
    for (text, needle) in [
        (r#"{"version":1,"job":{"t":1.5}}"#, "not an integer"),
        (r#"{"version":1,"job":{"t":9007199254740993}}"#, "2^53"),
        (r#"{"version":2,"job":{}}"#, "version 2"),
        (r#"{"version":1,"job":[]}"#, "`job` must be an object"),
        (
            r#"{"version":1,"job":{},"verifiers":[{"key":"00","url":""}]}"#,
            "32 bytes",
        ),
        (r#"{"version":1,"job":{},"extra":1}"#, "unknown field"),
        ("not json", "not JSON"),
    ] {
        let err = JobSpecDoc::parse(text.as_bytes()).expect_err(text);
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
}
