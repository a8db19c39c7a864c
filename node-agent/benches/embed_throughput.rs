//! Embedding throughput of the agent's canonical `embed` pipeline on all-MiniLM-L6-v2:
//! batch 1, no padding, tokenisation + BERT + mean pooling + L2 + quantisation, i.e.
//! exactly what [`ntx_node_agent::BertEmbedder::compute`] does for a job.
//!
//! `cargo bench -p ntx-node-agent --bench embed_throughput`
//!
//! candle and gemm size their thread pools once per process from `RAYON_NUM_THREADS`,
//! so the benchmark re-runs itself once per thread count (1 and 2). The model comes
//! from `$NTX_MINILM_DIR` or the fetch script's default cache directory.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ntx_node_agent::{BertEmbedder, BertFiles, Device, EmbedPipeline, EmbedSpec};

const SENTENCES: &[&str] = &[
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "The new movie is awesome.",
    "The cat sits outside.",
    "The new movie is so great and everyone in the cinema loved it.",
    "I love pasta with tomato sauce and a little basil.",
    "Do you like pizza?",
    "The stock market fell sharply on Monday after the central bank raised interest rates again.",
    "Requesters lock NTX in a Cardano escrow for AI compute jobs.",
    "A provider runs inference and publishes the hash of the canonical result bytes.",
    "Verifiers recompute the embeddings and accept them within a tolerance of one quantum.",
    "Rain is expected across the north of the country on Thursday, with snow on high ground.",
    "He plays the guitar in a small jazz band every Friday night.",
    "The committee will publish its final report after the summer break.",
    "How do I reset my password if I no longer have access to my email account?",
    "Scientists discovered a new species of frog in the rainforest.",
    "The train to Berlin was delayed by forty minutes because of a signal failure.",
    "She finished the marathon in under three hours.",
    "Please send me the invoice by the end of the week.",
    "Open-source models can run on commodity hardware with good performance.",
    "The museum is closed on Mondays and public holidays.",
    "Quantum computers may one day break today's public-key cryptography.",
    "Our team shipped the release candidate yesterday evening after fixing the last regression in the parser.",
    "Birds sing.",
    "What is the capital of Australia?",
    "The recipe calls for two cups of flour, one egg, a pinch of salt and a glass of milk.",
];

fn model_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("NTX_MINILM_DIR") {
        return Some(PathBuf::from(d));
    }
    let cache = std::env::var_os("NTX_MODEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ntx-escrow")))?;
    Some(cache.join("all-minilm-l6-v2"))
}

fn child(dir: PathBuf) {
    let t = Instant::now();
    let files = BertFiles::of_dir(&dir).unwrap();
    let hashed = t.elapsed();
    let model = BertEmbedder::load(&dir, &files, &Device::Cpu).unwrap();
    let loaded = t.elapsed();
    let spec = EmbedSpec {
        model: files,
        pipeline: EmbedPipeline::default(),
        inputs: SENTENCES.iter().map(|s| s.to_string()).collect(),
    };
    let tokens: usize = model
        .tokenize(&spec.inputs, spec.pipeline.max_len)
        .unwrap()
        .iter()
        .map(Vec::len)
        .sum();
    // Warm-up, then rounds of the whole set until 10 s have passed (at least 5).
    let first = model.compute(&spec).unwrap();
    let mut rounds = Vec::new();
    let start = Instant::now();
    while rounds.len() < 5 || start.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        let r = model.compute(&spec).unwrap();
        rounds.push(t.elapsed());
        assert_eq!(r, first, "repeated runs must give identical results");
    }
    rounds.sort();
    let n = SENTENCES.len() as f64;
    let median = rounds[rounds.len() / 2].as_secs_f64();
    let best = rounds[0].as_secs_f64();
    println!(
        "threads={:<2} sentences={} mean_tokens={:.1} rounds={} median {:.1} sentences/s ({:.2} ms/sentence), best {:.1} sentences/s",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
        SENTENCES.len(),
        tokens as f64 / n,
        rounds.len(),
        n / median,
        1e3 * median / n,
        n / best,
    );
    println!(
        "threads={:<2} model load: hashing the 3 files {:.0} ms, hash check + load {:.0} ms (first load in this process)",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
        hashed.as_secs_f64() * 1e3,
        (loaded - hashed).as_secs_f64() * 1e3,
    );
}

fn main() {
    let Some(dir) = model_dir().filter(|d| d.join("model.safetensors").is_file()) else {
        eprintln!(
            "embed_throughput SKIPPED: all-MiniLM-L6-v2 not found (set NTX_MINILM_DIR or run node-agent/scripts/fetch-minilm.sh)"
        );
        return;
    };
    if std::env::var_os("NTX_BENCH_CHILD").is_some() {
        child(dir);
        return;
    }
    println!(
        "all-MiniLM-L6-v2 from {}, candle 0.11.1, F32, CPU",
        dir.display()
    );
    for threads in [1, 2] {
        let status = Command::new(std::env::current_exe().unwrap())
            .env("NTX_BENCH_CHILD", "1")
            .env("RAYON_NUM_THREADS", threads.to_string())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "benchmark child with {threads} threads failed"
        );
    }
}
