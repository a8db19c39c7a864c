//! The `embed` task end to end on the generated tiny BERT (no download needed).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::Path;

use common::*;
use ntx_node_agent::{
    Acceptance, BertFiles, Device, EMBED_HEADER_LEN, EmbedPipeline, EmbedResult, EmbedSpec, Engine,
    Hash32, HeaderField, InferenceError, JobSpec, ParseError, Rejection, TinyBert, Verdict,
    input_digest, write_tiny_bert,
};
use tempfile::TempDir;

struct Fixture {
    dir: TempDir,
    files: BertFiles,
    engine: Engine,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = write_tiny_bert(&dir.path().join("model"), &TinyBert::default()).unwrap();
        Self {
            dir,
            files,
            engine: Engine::new(Device::Cpu),
        }
    }
    fn model_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("model")
    }
    fn spec(&self, inputs: &[&str]) -> EmbedSpec {
        EmbedSpec {
            model: self.files,
            pipeline: EmbedPipeline::default(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
        }
    }
    fn job(&self, inputs: &[&str]) -> JobSpec {
        JobSpec::Embed(self.spec(inputs))
    }
    fn embedder(&self, spec: &EmbedSpec) -> std::sync::Arc<ntx_node_agent::BertEmbedder> {
        self.engine
            .model::<ntx_node_agent::EmbedTask>(spec, &self.model_dir())
            .unwrap()
    }
    fn verify(&self, job: &JobSpec, bytes: &[u8]) -> Verdict {
        self.engine
            .verify(job, &self.model_dir(), bytes, &Hash32::of(bytes))
            .unwrap()
    }
}

const INPUTS: &[&str] = &[
    "The quick brown fox jumps over the lazy dog.",
    "a cat sat on the house",
    "Hello world!",
    "compute the hash of the result and verify the proof on the chain",
    "zebra xylophone quiz",
    "",
];

fn rejection(v: Verdict) -> Rejection {
    match v {
        Verdict::Reject(r) => r,
        Verdict::Accept(a) => panic!("expected Reject, got Accept({a:?})"),
    }
}

#[test]
fn repeated_runs_give_identical_bytes_and_a_correct_header() {
    let f = Fixture::new();
    let job = f.job(INPUTS);
    let first = f.engine.compute(&job, &f.model_dir()).unwrap();
    let second = f.engine.compute(&job, &f.model_dir()).unwrap();
    let fresh = Engine::new(Device::Cpu)
        .compute(&job, &f.model_dir())
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(first, fresh);
    assert_eq!(first.hash, Hash32::of(&first.bytes));
    assert_eq!(f.engine.cached_models(), 1);

    let r = EmbedResult::parse(&first.bytes).unwrap();
    assert_eq!(r.header.model_hash, f.files.weights);
    assert_eq!(r.header.config_hash, f.files.config);
    assert_eq!(r.header.tokenizer_hash, f.files.tokenizer);
    assert_eq!(r.header.input_digest, input_digest(INPUTS));
    assert_eq!((r.header.n, r.header.dim, r.header.max_len), (6, 32, 128));
    assert_eq!(first.bytes.len(), EMBED_HEADER_LEN + 6 * 32 * 2);
    for norm in row_norms(&first.bytes) {
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
    // Different inputs give different embeddings (the model is not degenerate).
    assert_ne!(r.row(0).unwrap(), r.row(1).unwrap());
    // The verifier's fast path.
    assert_eq!(
        f.verify(&job, &first.bytes),
        Verdict::Accept(Acceptance::IdenticalBytes)
    );
}

#[test]
fn other_thread_counts_are_accepted() {
    let f = Fixture::new();
    let spec = f.spec(INPUTS);
    let job = JobSpec::Embed(spec.clone());
    let here = f.engine.compute(&job, &f.model_dir()).unwrap().bytes;
    for threads in [1, 2] {
        let bytes = compute_in_subprocess(&f.model_dir(), &spec, threads, f.dir.path());
        let verdict = f.verify(&job, &bytes);
        println!(
            "tiny, RAYON_NUM_THREADS={threads}: identical={} verdict={verdict:?}",
            bytes == here
        );
        assert!(verdict.is_accept(), "{verdict:?}");
    }
}

#[test]
fn padded_batches_are_accepted_by_the_tolerance_rule() {
    let f = Fixture::new();
    let spec = f.spec(INPUTS);
    let job = JobSpec::Embed(spec.clone());
    let canonical = f.engine.compute(&job, &f.model_dir()).unwrap().bytes;
    let model = f.embedder(&spec);
    let canonical_f32 = model.embed(&spec.inputs, &spec.pipeline).unwrap();
    for pad_to in [0, 40, 128] {
        let bytes = padded(&model, &spec, pad_to);
        let verdict = f.verify(&job, &bytes);
        // The f32 values do differ (measured: ~150 of 192 by up to 1.2e-7); the
        // quantised bytes usually do not.
        let padded_f32 = model
            .embed_padded(&spec.inputs, &spec.pipeline, pad_to)
            .unwrap();
        let f32_differ = canonical_f32
            .iter()
            .flatten()
            .zip(padded_f32.iter().flatten())
            .filter(|(a, b)| a != b)
            .count();
        println!(
            "tiny, padded to {pad_to}: {f32_differ} f32 values differ, identical bytes={} \
             max deviation {} verdict={verdict:?}",
            bytes == canonical,
            max_deviation(&bytes, &canonical)
        );
        assert!(verdict.is_accept(), "pad_to {pad_to}: {verdict:?}");
    }
}

#[test]
fn cheats_are_rejected() {
    let f = Fixture::new();
    let spec = f.spec(INPUTS);
    let job = JobSpec::Embed(spec.clone());
    let model = f.embedder(&spec);

    let cheats = [
        (
            "one layer dropped",
            with_dropped_layer(&model, &spec, &f.model_dir(), f.dir.path()),
        ),
        (
            "one character changed",
            with_changed_input(&model, &spec, 1, "a bat sat on the house"),
        ),
        (
            "values rounded through bf16",
            through_bf16_bytes(&model, &spec),
        ),
    ];
    for (what, bytes) in cheats {
        let r = rejection(f.verify(&job, &bytes));
        println!("tiny, {what}: {r}");
        assert!(
            matches!(r, Rejection::OutOfTolerance { max_deviation, .. } if max_deviation > 1),
            "{what}: {r:?}"
        );
    }

    // An honest header for the changed input is caught before recomputation.
    let mut other = spec.clone();
    other.inputs[1] = "a bat sat on the house".into();
    let bytes = model.compute(&other).unwrap().to_bytes();
    let r = rejection(f.verify(&job, &bytes));
    assert!(
        matches!(
            r,
            Rejection::HeaderMismatch {
                field: HeaderField::InputDigest,
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn tampered_bytes_are_rejected_with_the_right_reason() {
    let f = Fixture::new();
    let job = f.job(INPUTS);
    let honest = f.engine.compute(&job, &f.model_dir()).unwrap();
    let dir = f.model_dir();

    // Bytes that are not the ones on chain.
    let mut flipped = honest.bytes.clone();
    flipped[EMBED_HEADER_LEN] ^= 1;
    let r = rejection(f.engine.verify(&job, &dir, &flipped, &honest.hash).unwrap());
    assert!(matches!(r, Rejection::HashMismatch { onchain, .. } if onchain == honest.hash));

    // A header describing another job (max_len 64), consistently hashed.
    let mut header = honest.bytes.clone();
    header[105..107].copy_from_slice(&64u16.to_le_bytes());
    let r = rejection(f.verify(&job, &header));
    assert_eq!(
        r.to_string(),
        "result header field max_len is 64, the job needs 128"
    );

    // Another model hash.
    let mut model = honest.bytes.clone();
    model[7] ^= 0xff;
    let r = rejection(f.verify(&job, &model));
    assert!(matches!(
        r,
        Rejection::HeaderMismatch {
            field: HeaderField::ModelHash,
            ..
        }
    ));

    // Truncated payload.
    let truncated = &honest.bytes[..honest.bytes.len() - 2];
    let r = rejection(f.verify(&job, truncated));
    assert!(
        matches!(r, Rejection::Malformed(ParseError::PayloadLength { .. })),
        "{r:?}"
    );

    // Garbage.
    let r = rejection(f.verify(&job, b"not a result"));
    assert!(matches!(
        r,
        Rejection::Malformed(ParseError::BadMagic { .. })
    ));

    // Values nudged by exactly the tolerance are accepted, by one more rejected.
    let mut result = EmbedResult::parse(&honest.bytes).unwrap();
    result.values[5] += 1;
    result.values[40] -= 1;
    let v = f.verify(&job, &result.to_bytes());
    assert_eq!(
        v,
        Verdict::Accept(Acceptance::WithinTolerance {
            max_deviation: 1,
            differing_values: 2
        })
    );
    result.values[40] -= 1;
    let r = rejection(f.verify(&job, &result.to_bytes()));
    assert_eq!(
        r,
        Rejection::OutOfTolerance {
            max_deviation: 2,
            input: 1,
            component: 8,
            values_over: 1
        }
    );
}

#[test]
fn model_files_that_do_not_match_the_spec_are_refused() {
    let f = Fixture::new();
    let mut spec = f.spec(INPUTS);
    spec.model.weights = Hash32([0x11; 32]);
    let err = f
        .engine
        .compute(&JobSpec::Embed(spec), &f.model_dir())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, InferenceError::ModelHashMismatch { .. }),
        "{err:?}"
    );
    assert!(text.contains("model.safetensors"), "{text}");
    assert!(text.contains(&"11".repeat(32)), "{text}");
    assert!(text.contains(&f.files.weights.to_hex()), "{text}");
    assert_eq!(f.engine.cached_models(), 0);

    // A file changed on disk after the spec was written.
    let cfg = f.model_dir().join("config.json");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push(' ');
    std::fs::write(&cfg, text).unwrap();
    let err = f
        .engine
        .compute(&f.job(INPUTS), &f.model_dir())
        .unwrap_err();
    assert!(
        matches!(&err, InferenceError::ModelHashMismatch { path, .. } if path.ends_with("config.json")),
        "{err:?}"
    );

    // A missing directory.
    let err = f
        .engine
        .compute(&f.job(INPUTS), Path::new("/nonexistent/model"))
        .unwrap_err();
    assert!(
        matches!(err, InferenceError::ModelFileUnreadable { .. }),
        "{err:?}"
    );
}

#[test]
fn long_inputs_are_truncated_to_max_len_tokens() {
    let f = Fixture::new();
    let words: Vec<String> = (0..300).map(|i| format!("word{}", i % 10)).collect();
    let long = words.join(" ");
    let mut spec = f.spec(&[&long]);
    spec.pipeline.max_len = 16;
    let model = f.embedder(&spec);
    let ids = model.tokenize(&spec.inputs, 16).unwrap();
    assert_eq!(ids[0].len(), 16);
    let full = model.tokenize(&spec.inputs, 512).unwrap();
    assert_eq!(&ids[0][..15], &full[0][..15]);
    assert_eq!(ids[0][15], full[0][full[0].len() - 1], "[SEP] is kept");

    // The embedding of the long input equals that of the shortest prefix of words
    // that also fills the 14 word-piece slots.
    let long_result = model.compute(&spec).unwrap();
    let mut prefix_len = 1;
    let prefix = loop {
        let candidate = words[..prefix_len].join(" ");
        let t = model.tokenize(&[candidate.as_str()], 512).unwrap()[0].clone();
        if t.len() - 2 >= 14 {
            break candidate;
        }
        prefix_len += 1;
    };
    let mut short = f.spec(&[&prefix]);
    short.pipeline.max_len = 16;
    let short_result = model.compute(&short).unwrap();
    let short_ids = model.tokenize(&short.inputs, 16).unwrap();
    assert_eq!(short_ids, ids);
    assert_eq!(long_result.values, short_result.values);

    // Truncation changes the bits: the same input at max_len 128 differs.
    let mut wide = spec.clone();
    wide.pipeline.max_len = 128;
    assert_ne!(model.compute(&wide).unwrap().values, long_result.values);
}

#[test]
fn malformed_specs_are_refused() {
    let f = Fixture::new();
    let err = f.engine.compute(&f.job(&[]), &f.model_dir()).unwrap_err();
    assert!(matches!(err, InferenceError::InvalidSpec { .. }), "{err:?}");
    let mut spec = f.spec(INPUTS);
    spec.pipeline.max_len = 600;
    let err = f
        .engine
        .compute(&JobSpec::Embed(spec), &f.model_dir())
        .unwrap_err();
    assert!(err.to_string().contains("512 positions"), "{err}");
}
