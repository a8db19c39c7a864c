//! The `generate` task on the deterministic tiny llama (always runs): honest results
//! (also from other processes with 1 and 2 threads) are accepted; other models,
//! truncated prompts, other temperatures, edited tokens and tampered bytes are rejected.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::process::Command;

use ntx_node_agent::{
    Acceptance, Decoding, Device, Engine, GGUF_FILE, GenerateModel, GenerateResult, GenerateSpec,
    Hash32, HeaderField, InferenceError, JobSpec, LOGIT_TOLERANCE, Message, Progress, Rejection,
    Role, StopReason, TinyLlama, Verdict, argmax, choose_token, write_tiny_llama,
};

struct Tiny {
    dir: tempfile::TempDir,
    hash: Hash32,
    model: GenerateModel,
}

fn tiny() -> Tiny {
    let dir = tempfile::tempdir().unwrap();
    let hash = write_tiny_llama(dir.path(), &TinyLlama::default()).unwrap();
    let model = GenerateModel::load(dir.path(), hash, &Device::Cpu).unwrap();
    Tiny { dir, hash, model }
}

fn spec(hash: Hash32, decoding: Decoding, max_new_tokens: u32) -> GenerateSpec {
    GenerateSpec {
        model: hash,
        messages: vec![
            Message::new(Role::System, "You are a helpful assistant."),
            Message::new(
                Role::User,
                "Tell me about the quick brown fox and the lazy dog, in 3 sentences.",
            ),
        ],
        max_new_tokens,
        decoding,
    }
}

const SAMPLE: Decoding = Decoding::Sample {
    temperature_milli: 700,
    top_p_milli: 900,
    seed: 20_261_127,
};

fn verify(engine: &Engine, dir: &Path, spec: &GenerateSpec, bytes: &[u8]) -> Verdict {
    engine
        .verify(
            &JobSpec::Generate(spec.clone()),
            dir,
            bytes,
            &Hash32::of(bytes),
        )
        .unwrap()
}

fn assert_off_rule(v: &Verdict, what: &str) -> u32 {
    match v {
        Verdict::Reject(Rejection::OffRule { position, .. }) => *position,
        other => panic!("{what}: expected an off-rule rejection, got {other:?}"),
    }
}

/// A cheating provider: picks tokens with `choose` (and/or from another context), and
/// writes the header an honest provider of `spec` writes.
fn forged(
    model: &GenerateModel,
    spec: &GenerateSpec,
    context: &[u32],
    choose: &mut dyn FnMut(&[f32], u32) -> u32,
) -> Vec<u8> {
    model
        .generate_custom(spec, context, choose, &mut |_| {}, false)
        .unwrap()
        .result
        .to_bytes()
}

#[test]
fn tiny_model_file_is_pinned_and_reads_back() {
    // Integer weight generation, candle's scalar quantisers and an ordered writer: the
    // same bytes on every platform. A change here changes every tiny-model result.
    let t = tiny();
    assert_eq!(
        t.hash.to_hex(),
        "d8ebab9c1f18804fdbdced81067b941b893372a3c3bafa57710c6dc01de78c4d"
    );
    let c = t.model.config();
    assert_eq!(
        (c.dim, c.layers, c.heads, c.kv_heads, c.head_dim),
        (64, 2, 4, 2, 16)
    );
    assert_eq!(t.model.stop_tokens(), &[2]);
}

#[test]
fn tokenizer_and_template_come_from_the_file() {
    let t = tiny();
    let s = spec(t.hash, Decoding::Greedy, 8);
    let text = t.model.prompt_text(&s);
    assert!(text.starts_with("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"));
    assert!(text.ends_with("<|im_start|>assistant\n"));
    let ids = t.model.prompt_tokens(&s).unwrap();
    // Specials are single tokens; digits are split one by one (the `smollm` rule).
    assert_eq!(ids[0], 1);
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 2);
    let digits = t.model.encode("123").unwrap();
    assert_eq!(digits.len(), 3);
    // The merges apply: fewer tokens than bytes.
    let words = t.model.encode("the quick brown fox").unwrap();
    assert!(words.len() < 10, "{words:?}");
    for text in ["the quick brown fox", "Ünïcödé 漢字 🚀\n\tx", "don't 42"] {
        let ids = t.model.encode(text).unwrap();
        assert_eq!(t.model.decode(&ids).unwrap(), text);
    }
    // Decoding skips special tokens.
    let mut ids = t.model.encode("hello").unwrap();
    ids.push(2);
    assert_eq!(t.model.decode(&ids).unwrap(), "hello");
}

#[test]
fn honest_results_are_deterministic_and_accepted() {
    let t = tiny();
    let engine = Engine::new(Device::Cpu);
    for decoding in [Decoding::Greedy, SAMPLE] {
        let s = spec(t.hash, decoding, 40);
        let job = JobSpec::Generate(s.clone());
        let mut seen: Vec<Progress> = Vec::new();
        let a = engine
            .compute_with_progress(&job, t.dir.path(), &mut |p| seen.push(p))
            .unwrap();
        let b = engine.compute(&job, t.dir.path()).unwrap();
        assert_eq!(a, b, "repeated runs give identical bytes");
        let r = GenerateResult::parse(&a.bytes).unwrap();
        assert!(
            r.tokens.len() >= 16,
            "tiny model stopped after {} tokens",
            r.tokens.len()
        );
        assert_eq!(r.header.n as usize, r.tokens.len());
        assert_eq!(
            r.header.prompt_tokens as usize,
            t.model.prompt_tokens(&s).unwrap().len()
        );
        // Progress: 0, then one report per token, ending at n of max_new_tokens.
        assert_eq!(seen.len(), r.tokens.len() + 1);
        assert!(
            seen.iter()
                .enumerate()
                .all(|(i, p)| p.done == i as u64 && p.total == 40)
        );
        let v = verify(&engine, t.dir.path(), &s, &a.bytes);
        match v {
            Verdict::Accept(Acceptance::RuleConsistent { tokens, .. }) => {
                assert_eq!(tokens, r.header.n)
            }
            other => panic!("{decoding:?}: honest result rejected: {other:?}"),
        }
    }
}

#[test]
fn greedy_matches_argmax_of_the_step_logits() {
    let t = tiny();
    let s = spec(t.hash, Decoding::Greedy, 24);
    let prompt = t.model.prompt_tokens(&s).unwrap();
    let mut choose = |z: &[f32], i: u32| choose_token(&s.decoding, z, i);
    let g = t
        .model
        .generate_custom(&s, &prompt, &mut choose, &mut |_| {}, true)
        .unwrap();
    for (z, &tok) in g.logits.iter().zip(&g.result.tokens) {
        assert_eq!(argmax(z), tok);
    }
    // Teacher forcing reproduces the step logits closely.
    let tf = t
        .model
        .teacher_forced_logits(&prompt, &g.result.tokens, false)
        .unwrap();
    let dz = g
        .logits
        .iter()
        .zip(&tf)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0f32, f32::max);
    assert!(f64::from(dz) < LOGIT_TOLERANCE / 10.0, "{dz}");
}

/// Runs `ntx-embed compute` (any job) in a fresh process with `threads` threads.
fn compute_in_subprocess(dir: &Path, job: &JobSpec, threads: usize, scratch: &Path) -> Vec<u8> {
    let job_path = scratch.join(format!("job-{threads}.json"));
    let out = scratch.join(format!("out-{threads}.bin"));
    std::fs::write(&job_path, serde_json::to_string(job).unwrap()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ntx-embed"))
        .arg("compute")
        .arg(dir)
        .arg(&job_path)
        .arg(&out)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out).unwrap()
}

#[test]
fn results_from_other_thread_counts_are_accepted() {
    let t = tiny();
    let engine = Engine::new(Device::Cpu);
    let scratch = tempfile::tempdir().unwrap();
    for decoding in [Decoding::Greedy, SAMPLE] {
        let s = spec(t.hash, decoding, 32);
        let job = JobSpec::Generate(s.clone());
        let own = engine.compute(&job, t.dir.path()).unwrap().bytes;
        for threads in [1, 2] {
            let bytes = compute_in_subprocess(t.dir.path(), &job, threads, scratch.path());
            let v = verify(&engine, t.dir.path(), &s, &bytes);
            assert!(v.is_accept(), "{threads} threads: {v:?}");
            // Measured: identical bytes here (the quantised matmuls compute each output
            // element in one place whatever the thread count).
            assert_eq!(bytes, own, "{decoding:?} with {threads} threads");
        }
    }
}

#[test]
fn output_of_another_model_is_rejected() {
    let t = tiny();
    let other_dir = tempfile::tempdir().unwrap();
    let other_hash = write_tiny_llama(
        other_dir.path(),
        &TinyLlama {
            seed: 7,
            ..TinyLlama::default()
        },
    )
    .unwrap();
    let other = GenerateModel::load(other_dir.path(), other_hash, &Device::Cpu).unwrap();
    let engine = Engine::new(Device::Cpu);
    for decoding in [Decoding::Greedy, SAMPLE] {
        let s = spec(t.hash, decoding, 32);
        let other_spec = GenerateSpec {
            model: other_hash,
            ..s.clone()
        };
        let prompt = other.prompt_tokens(&other_spec).unwrap();
        let mut choose = |z: &[f32], i: u32| choose_token(&decoding, z, i);
        let mut r = other
            .generate_custom(&other_spec, &prompt, &mut choose, &mut |_| {}, false)
            .unwrap()
            .result;
        // Honestly labelled: the header names the other model.
        let v = verify(&engine, t.dir.path(), &s, &r.to_bytes());
        assert!(
            matches!(
                v,
                Verdict::Reject(Rejection::HeaderMismatch {
                    field: HeaderField::ModelHash,
                    ..
                })
            ),
            "{v:?}"
        );
        // Relabelled as the job's model: the tokens give it away.
        r.header.model_hash = t.hash;
        let v = verify(&engine, t.dir.path(), &s, &r.to_bytes());
        assert_off_rule(&v, "another model");
    }
}

#[test]
fn truncated_prompt_is_rejected() {
    let t = tiny();
    let engine = Engine::new(Device::Cpu);
    for decoding in [Decoding::Greedy, SAMPLE] {
        let s = spec(t.hash, decoding, 32);
        let prompt = t.model.prompt_tokens(&s).unwrap();
        // Cheap cheats: only the last 8 prompt tokens, or only the first half.
        let mut choose = |z: &[f32], i: u32| choose_token(&decoding, z, i);
        for (what, context) in [
            ("last 8 tokens", &prompt[prompt.len() - 8..]),
            ("first half", &prompt[..prompt.len() / 2]),
        ] {
            let bytes = forged(&t.model, &s, context, &mut choose);
            assert_off_rule(&verify(&engine, t.dir.path(), &s, &bytes), what);
        }
        // Saying so in the header is a header mismatch.
        let short = GenerateSpec {
            messages: s.messages[1..].to_vec(),
            ..s.clone()
        };
        let honest_short = t.model.generate(&short, &mut |_| {}).unwrap().to_bytes();
        let v = verify(&engine, t.dir.path(), &s, &honest_short);
        assert!(
            matches!(
                v,
                Verdict::Reject(Rejection::HeaderMismatch {
                    field: HeaderField::MessagesDigest,
                    ..
                })
            ),
            "{v:?}"
        );
    }
}

#[test]
fn other_temperature_or_decoding_is_rejected() {
    let t = tiny();
    let engine = Engine::new(Device::Cpu);
    let s = spec(t.hash, SAMPLE, 48);
    let prompt = t.model.prompt_tokens(&s).unwrap();
    let Decoding::Sample {
        top_p_milli, seed, ..
    } = SAMPLE
    else {
        unreachable!()
    };
    // A much hotter temperature (colder ones, another seed or plain greedy pick tokens
    // within ε of the top ones and cannot be told apart from honest noise).
    for cheat in [
        Decoding::Sample {
            temperature_milli: 10_000,
            top_p_milli,
            seed,
        },
        Decoding::Sample {
            temperature_milli: 5000,
            top_p_milli: 1000,
            seed: seed + 1,
        },
    ] {
        let mut choose = |z: &[f32], i: u32| choose_token(&cheat, z, i);
        let bytes = forged(&t.model, &s, &prompt, &mut choose);
        assert_off_rule(
            &verify(&engine, t.dir.path(), &s, &bytes),
            &format!("{cheat:?}"),
        );
        // And the header of the settings actually used does not match the job.
        let honest_other = t
            .model
            .generate(
                &GenerateSpec {
                    decoding: cheat,
                    ..s.clone()
                },
                &mut |_| {},
            )
            .unwrap()
            .to_bytes();
        let v = verify(&engine, t.dir.path(), &s, &honest_other);
        assert!(
            matches!(v, Verdict::Reject(Rejection::HeaderMismatch { .. })),
            "{v:?}"
        );
    }
    // Hot sampling when the job asks for greedy.
    let g = spec(t.hash, Decoding::Greedy, 48);
    let hot = Decoding::Sample {
        temperature_milli: 5000,
        top_p_milli: 1000,
        seed,
    };
    let mut choose = |z: &[f32], i: u32| choose_token(&hot, z, i);
    let bytes = forged(&t.model, &g, &prompt, &mut choose);
    assert_off_rule(
        &verify(&engine, t.dir.path(), &g, &bytes),
        "sampled for greedy",
    );
}

#[test]
fn edited_tokens_are_rejected() {
    let t = tiny();
    let engine = Engine::new(Device::Cpu);
    for decoding in [Decoding::Greedy, SAMPLE] {
        let s = spec(t.hash, decoding, 32);
        let prompt = t.model.prompt_tokens(&s).unwrap();
        let honest = t.model.generate(&s, &mut |_| {}).unwrap();
        let logits = t
            .model
            .teacher_forced_logits(&prompt, &honest.tokens, true)
            .unwrap();
        for pos in [0usize, 5, honest.tokens.len() / 2] {
            // Replace the token by the least likely one and re-decode the text, so only
            // the token choice is wrong.
            let mut r = honest.clone();
            let z = &logits[pos];
            let worst = (0..z.len()).min_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap() as u32;
            r.tokens[pos] = worst;
            r.text = t.model.decode(&r.tokens).unwrap();
            let v = verify(&engine, t.dir.path(), &s, &r.to_bytes());
            assert_eq!(assert_off_rule(&v, "edited token"), pos as u32, "{v:?}");
        }
        // Text edited without the tokens.
        let mut r = honest.clone();
        r.text.push('!');
        let v = verify(&engine, t.dir.path(), &s, &r.to_bytes());
        assert!(
            matches!(v, Verdict::Reject(Rejection::TextMismatch { .. })),
            "{v:?}"
        );
        // Tokens cut short but claiming the limit, or claiming an end of turn.
        let mut r = honest.clone();
        r.tokens.truncate(10);
        r.header.n = 10;
        r.text = t.model.decode(&r.tokens).unwrap();
        for stop in [StopReason::MaxTokens, StopReason::EndOfTurn] {
            r.header.stop = stop;
            let v = verify(&engine, t.dir.path(), &s, &r.to_bytes());
            assert!(
                matches!(v, Verdict::Reject(Rejection::StopRule { .. })),
                "{v:?}"
            );
        }
        // An end-of-turn token in the middle.
        let mut r = honest.clone();
        r.tokens[3] = 2;
        r.text = t.model.decode(&r.tokens).unwrap();
        let v = verify(&engine, t.dir.path(), &s, &r.to_bytes());
        assert!(
            matches!(v, Verdict::Reject(Rejection::StopRule { .. })),
            "{v:?}"
        );
        // Bytes that are not the ones on chain.
        let bytes = honest.to_bytes();
        let v = engine
            .verify(
                &JobSpec::Generate(s.clone()),
                t.dir.path(),
                &bytes,
                &Hash32([9; 32]),
            )
            .unwrap();
        assert!(
            matches!(v, Verdict::Reject(Rejection::HashMismatch { .. })),
            "{v:?}"
        );
        // Garbage.
        let v = verify(&engine, t.dir.path(), &s, &bytes[..100]);
        assert!(
            matches!(v, Verdict::Reject(Rejection::Malformed(_))),
            "{v:?}"
        );
    }
}

#[test]
fn header_fields_are_checked_one_by_one() {
    let t = tiny();
    let engine = Engine::new(Device::Cpu);
    let s = spec(t.hash, SAMPLE, 16);
    let honest = t.model.generate(&s, &mut |_| {}).unwrap();
    type Edit = Box<dyn Fn(&mut GenerateResult)>;
    let cases: Vec<(HeaderField, Edit)> = vec![
        (
            HeaderField::Seed,
            Box::new(|r| {
                r.header.decoding = Decoding::Sample {
                    temperature_milli: 700,
                    top_p_milli: 900,
                    seed: 1,
                }
            }),
        ),
        (
            HeaderField::TopPMilli,
            Box::new(|r| {
                r.header.decoding = Decoding::Sample {
                    temperature_milli: 700,
                    top_p_milli: 901,
                    seed: 20_261_127,
                }
            }),
        ),
        (
            HeaderField::MaxNewTokens,
            Box::new(|r| r.header.max_new_tokens = 17),
        ),
        (
            HeaderField::PromptTokens,
            Box::new(|r| r.header.prompt_tokens -= 1),
        ),
        (
            HeaderField::PromptDigest,
            Box::new(|r| r.header.prompt_digest = Hash32([0; 32])),
        ),
    ];
    for (field, edit) in cases {
        let mut r = honest.clone();
        edit(&mut r);
        let v = verify(&engine, t.dir.path(), &s, &r.to_bytes());
        match v {
            Verdict::Reject(Rejection::HeaderMismatch { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn wrong_model_file_and_impossible_jobs_are_refused() {
    let t = tiny();
    let engine = Engine::new(Device::Cpu);
    let wrong = spec(Hash32([5; 32]), Decoding::Greedy, 8);
    let err = engine
        .compute(&JobSpec::Generate(wrong), t.dir.path())
        .unwrap_err();
    assert!(
        matches!(err, InferenceError::ModelHashMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(GGUF_FILE));
    // Prompt + max_new_tokens beyond the tiny model's 1024-token context.
    let long = spec(t.hash, Decoding::Greedy, 1024);
    let err = engine
        .compute(&JobSpec::Generate(long), t.dir.path())
        .unwrap_err();
    assert!(matches!(err, InferenceError::InvalidSpec { .. }), "{err}");
}

/// `ntx-embed tiny-llama`, `compute … RUNS` and `verify` as a script (or the GPU check,
/// `scripts/gpu-check.sh`) uses them: the hash printed is the model's, every run is
/// timed on stderr with its tokens per second, the result is the in-process one and is
/// accepted; a RUNS that is not a count is a usage error.
#[test]
fn the_cli_writes_the_tiny_llama_and_times_repeated_runs() {
    let t = tiny();
    let scratch = tempfile::tempdir().unwrap();
    let cli = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_ntx-embed"))
            .args(args)
            .output()
            .unwrap()
    };
    let dir = scratch.path().join("model");
    let out = cli(&["tiny-llama".as_ref(), dir.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        t.hash.to_string()
    );

    let job = JobSpec::Generate(spec(t.hash, SAMPLE, 16));
    let job_path = scratch.path().join("job.json");
    std::fs::write(&job_path, serde_json::to_string(&job).unwrap()).unwrap();
    let result = scratch.path().join("out.bin");
    let compute = |runs: &str| {
        cli(&[
            "compute".as_ref(),
            dir.as_os_str(),
            job_path.as_os_str(),
            result.as_os_str(),
            runs.as_ref(),
        ])
    };
    let out = compute("2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for run in ["run 1 on cpu:", "run 2 on cpu:"] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(run))
            .unwrap_or_else(|| panic!("no {run:?} in {stderr}"));
        assert!(
            line.contains("16 tokens") && line.contains("tokens/s"),
            "{line}"
        );
    }
    let bytes = std::fs::read(&result).unwrap();
    let engine = Engine::new(Device::Cpu);
    assert_eq!(bytes, engine.compute(&job, t.dir.path()).unwrap().bytes);
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(hash, Hash32::of(&bytes).to_string());

    let out = cli(&[
        "verify".as_ref(),
        dir.as_os_str(),
        job_path.as_os_str(),
        result.as_os_str(),
        hash.as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("accept: RuleConsistent"));

    let out = compute("twice");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RUNS must be a count"));
}
