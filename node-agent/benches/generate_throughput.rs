//! Text generation on SmolLM2-135M-Instruct Q4_1: tokens per second of the provider
//! (1 and 2 threads), the verifier's time as a fraction of the generator's for 64, 128
//! and 256 new tokens, the honest logit deviation that sets ε, and peak memory.
//!
//! `cargo bench -p ntx-node-agent --bench generate_throughput`
//!
//! candle sizes its thread pools once per process from `RAYON_NUM_THREADS`, so the
//! benchmark re-runs itself once per thread count. The model comes from
//! `$NTX_SMOLLM2_PATH` or the fetch script's default path. Each child writes its result
//! bytes to a scratch directory; the 2-thread child also verifies the 1-thread child's
//! results (an honest result from another thread count).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ntx_node_agent::{
    Decoding, Device, GenerateModel, GenerateSpec, Hash32, LOGIT_TOLERANCE, Message, Role, Verdict,
    choose_token,
};

fn model_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NTX_SMOLLM2_PATH") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("NTX_MODEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ntx-escrow")))?;
    Some(cache.join("smollm2/model.gguf"))
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

const PROMPTS: &[&str] = &[
    "Write a long, detailed essay about the history of the Roman Empire, from its founding to its fall.",
    "Explain step by step how a bicycle works, covering the frame, gears, brakes and wheels in detail.",
    "Tell me a long story about a dragon who wants to become a baker in a small mountain village.",
    "What are the main differences between Python and Rust? Give examples for memory management, error handling and concurrency.",
];

fn spec(model: Hash32, prompt: &str, n: u32, decoding: Decoding) -> GenerateSpec {
    GenerateSpec {
        model,
        messages: vec![Message::new(Role::User, prompt)],
        max_new_tokens: n,
        decoding,
    }
}

fn child(path: &Path, scratch: &Path) {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    let dir = path.parent().unwrap();
    let t = Instant::now();
    let hash = Hash32::of_file(path).unwrap();
    let hashed = t.elapsed();
    let model = GenerateModel::load(dir, hash, &Device::Cpu).unwrap();
    let loaded = t.elapsed();
    println!(
        "threads={threads} load: hashing {:.0} ms, hash check + load {:.0} ms, peak RSS {:.0} MiB",
        hashed.as_secs_f64() * 1e3,
        (loaded - hashed).as_secs_f64() * 1e3,
        peak_rss_mib()
    );
    // Warm-up (also builds the verifier's dense copy of the weights, once per model).
    let warm = spec(hash, PROMPTS[0], 8, Decoding::Greedy);
    let warm_bytes = model.generate(&warm, &mut |_| {}).unwrap().to_bytes();
    let t = Instant::now();
    model.check(&warm, &warm_bytes, LOGIT_TOLERANCE).unwrap();
    println!(
        "threads={threads} first check (dequantising the weights to F32 for the verifier): {:.0} ms, peak RSS {:.0} MiB",
        t.elapsed().as_secs_f64() * 1e3,
        peak_rss_mib()
    );

    println!(
        "threads={threads} {:>6} {:>4} {:>6} {:>8} {:>6} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} verdict",
        "decode",
        "new",
        "prompt",
        "gen ms",
        "tok/s",
        "verify ms",
        "fraction",
        "tf-q ms",
        "rel-q",
        "rel-d",
        "abs-d"
    );
    let sample = Decoding::Sample {
        temperature_milli: 700,
        top_p_milli: 900,
        seed: 42,
    };
    // Largest change of a logit difference z_j − z_top among the provider's 64 most
    // likely tokens (what the greedy and sampling checks compare), and largest plain
    // logit difference over the vocabulary.
    let deviation = |step: &[Vec<f32>], tf: &[Vec<f32>]| -> (f64, f64) {
        let mut rel = 0f64;
        let mut abs = 0f64;
        for (p, v) in step.iter().zip(tf) {
            let mut order: Vec<usize> = (0..p.len()).collect();
            order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
            let top = order[0];
            for &j in &order[..64] {
                let d = f64::from((v[j] - v[top]) - (p[j] - p[top]));
                rel = rel.max(d.abs());
            }
            for (x, y) in p.iter().zip(v) {
                abs = abs.max(f64::from((x - y).abs()));
            }
        }
        (rel, abs)
    };
    let mut worst = (0f64, 0f64, 0f64);
    for (decoding, name) in [(Decoding::Greedy, "greedy"), (sample, "sample")] {
        for (i, n) in [64u32, 128, 256].into_iter().enumerate() {
            let s = spec(hash, PROMPTS[i % PROMPTS.len()], n, decoding);
            let prompt = model.prompt_tokens(&s).unwrap();
            let t = Instant::now();
            let mut choose = |z: &[f32], i: u32| choose_token(&s.decoding, z, i);
            let g = model
                .generate_custom(&s, &prompt, &mut choose, &mut |_| {}, true)
                .unwrap();
            let gen_s = t.elapsed().as_secs_f64();
            let bytes = g.result.to_bytes();
            let t = Instant::now();
            let verdict = model.check(&s, &bytes, LOGIT_TOLERANCE).unwrap();
            let ver_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let tfq = model
                .teacher_forced_logits(&prompt, &g.result.tokens, false)
                .unwrap();
            let tfq_s = t.elapsed().as_secs_f64();
            let tfd = model
                .teacher_forced_logits(&prompt, &g.result.tokens, true)
                .unwrap();
            let (rel_q, _) = deviation(&g.logits, &tfq);
            let (rel_d, abs_d) = deviation(&g.logits, &tfd);
            worst = (worst.0.max(rel_q), worst.1.max(rel_d), worst.2.max(abs_d));
            let n_gen = g.result.tokens.len();
            let verdict = match verdict {
                Verdict::Accept(a) => format!("accept {a:?}"),
                Verdict::Reject(r) => format!("REJECT {r}"),
            };
            println!(
                "threads={threads} {name:>6} {n_gen:>4} {:>6} {:>8.0} {:>6.2} {:>9.0} {:>8.3} {:>8.0} {:>7.4} {:>7.4} {:>7.4} {verdict}",
                prompt.len(),
                gen_s * 1e3,
                n_gen as f64 / gen_s,
                ver_s * 1e3,
                ver_s / gen_s,
                tfq_s * 1e3,
                rel_q,
                rel_d,
                abs_d,
            );
            std::fs::write(scratch.join(format!("{name}-{n}-t{threads}.bin")), &bytes).unwrap();
            std::fs::write(
                scratch.join(format!("{name}-{n}-t{threads}.json")),
                serde_json::to_string(&s).unwrap(),
            )
            .unwrap();
        }
    }
    println!(
        "threads={threads} largest deviation of top-64 logit differences: quantised teacher forcing {:.4}, \
         dense F32 teacher forcing {:.4} (largest plain logit difference {:.4}); ε = {LOGIT_TOLERANCE}",
        worst.0, worst.1, worst.2
    );
    // Results of the other thread count, if that child ran first.
    if threads == "2" {
        let mut same = 0;
        let mut total = 0;
        for entry in std::fs::read_dir(scratch).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with("-t1.bin") {
                continue;
            }
            let other = std::fs::read(&p).unwrap();
            let s: GenerateSpec =
                serde_json::from_str(&std::fs::read_to_string(p.with_extension("json")).unwrap())
                    .unwrap();
            let own = std::fs::read(scratch.join(name.replace("-t1.bin", "-t2.bin"))).unwrap();
            total += 1;
            same += usize::from(own == other);
            let v = model.check(&s, &other, LOGIT_TOLERANCE).unwrap();
            if !v.is_accept() {
                println!("threads=2 REJECTED the 1-thread result {name}: {v:?}");
            }
        }
        println!(
            "threads=2 verified the {total} results of the 1-thread run; {same} of {total} byte-identical to this run's"
        );
    }
    println!(
        "threads={threads} peak RSS after all runs {:.0} MiB",
        peak_rss_mib()
    );
}

fn main() {
    let Some(path) = model_path().filter(|p| p.is_file()) else {
        eprintln!(
            "generate_throughput SKIPPED: SmolLM2 GGUF not found (set NTX_SMOLLM2_PATH or run node-agent/scripts/fetch-smollm2.sh)"
        );
        return;
    };
    if let Some(scratch) = std::env::var_os("NTX_BENCH_CHILD") {
        child(&path, Path::new(&scratch));
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    // The model must be named model.gguf inside its directory.
    let path = if path.file_name().is_some_and(|n| n == "model.gguf") {
        path
    } else {
        let link = scratch.path().join("model/model.gguf");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(std::fs::canonicalize(&path).unwrap(), &link).unwrap();
        link
    };
    println!(
        "SmolLM2-135M-Instruct Q4_1 from {}, candle 0.11.1, CPU; ε = {LOGIT_TOLERANCE}",
        path.display()
    );
    for threads in [1, 2] {
        let status = Command::new(std::env::current_exe().unwrap())
            .env("NTX_BENCH_CHILD", scratch.path())
            .env("NTX_SMOLLM2_PATH", &path)
            .env("RAYON_NUM_THREADS", threads.to_string())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "benchmark child with {threads} threads failed"
        );
    }
}
