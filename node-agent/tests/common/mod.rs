//! Helpers shared by the integration tests: honest variants and cheats.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ntx_node_agent::{
    BertEmbedder, BertFiles, CONFIG_FILE, Device, EmbedResult, EmbedSpec, Hash32, JobSpec,
    TOKENIZER_FILE, WEIGHTS_FILE, encode_embeddings,
};

/// Writes a copy of the model in `src` whose config drops the last layer (the weights
/// file is linked, not copied; the extra layer's tensors are simply not loaded).
pub fn dropped_layer_variant(src: &Path, dst: &Path) -> BertFiles {
    std::fs::create_dir_all(dst).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join(CONFIG_FILE)).unwrap()).unwrap();
    let layers = config["num_hidden_layers"].as_u64().unwrap();
    config["num_hidden_layers"] = (layers - 1).into();
    std::fs::write(
        dst.join(CONFIG_FILE),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    std::fs::copy(src.join(TOKENIZER_FILE), dst.join(TOKENIZER_FILE)).unwrap();
    let weights = std::fs::canonicalize(src.join(WEIGHTS_FILE)).unwrap();
    std::os::unix::fs::symlink(weights, dst.join(WEIGHTS_FILE)).unwrap();
    BertFiles::of_dir(dst).unwrap()
}

/// Round an f32 to the nearest bf16 (ties to even) and back.
pub fn through_bf16(x: f32) -> f32 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) & 0xffff_0000;
    f32::from_bits(rounded)
}

/// A cheating provider's bytes: values computed some other way, under the header an
/// honest provider would write for `spec`.
pub fn forged(honest: &BertEmbedder, spec: &EmbedSpec, rows: &[Vec<f32>]) -> Vec<u8> {
    encode_embeddings(honest.header(spec).unwrap(), rows).to_bytes()
}

/// The cheat "inference on other inputs than the job's".
pub fn with_changed_input(
    honest: &BertEmbedder,
    spec: &EmbedSpec,
    index: usize,
    replacement: &str,
) -> Vec<u8> {
    let mut inputs = spec.inputs.clone();
    inputs[index] = replacement.to_string();
    let rows = honest.embed(&inputs, &spec.pipeline).unwrap();
    forged(honest, spec, &rows)
}

/// The cheat "values rounded through bf16".
pub fn through_bf16_bytes(honest: &BertEmbedder, spec: &EmbedSpec) -> Vec<u8> {
    let rows: Vec<Vec<f32>> = honest
        .embed(&spec.inputs, &spec.pipeline)
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().map(through_bf16).collect())
        .collect();
    forged(honest, spec, &rows)
}

/// The cheat "one layer dropped": run the shallower model, claim the real one.
pub fn with_dropped_layer(
    honest: &BertEmbedder,
    spec: &EmbedSpec,
    model_dir: &Path,
    scratch: &Path,
) -> Vec<u8> {
    let dir = scratch.join("dropped-layer");
    let files = dropped_layer_variant(model_dir, &dir);
    let shallow = BertEmbedder::load(&dir, &files, &Device::Cpu).unwrap();
    assert_eq!(shallow.layers() + 1, honest.layers());
    let rows = shallow.embed(&spec.inputs, &spec.pipeline).unwrap();
    forged(honest, spec, &rows)
}

/// The honest variant "one padded batch of length `pad_to`".
pub fn padded(honest: &BertEmbedder, spec: &EmbedSpec, pad_to: usize) -> Vec<u8> {
    let rows = honest
        .embed_padded(&spec.inputs, &spec.pipeline, pad_to)
        .unwrap();
    forged(honest, spec, &rows)
}

/// Runs the `ntx-embed compute` binary in a fresh process with `threads` rayon threads
/// (candle and gemm read RAYON_NUM_THREADS once per process) and returns the bytes.
pub fn compute_in_subprocess(
    model_dir: &Path,
    spec: &EmbedSpec,
    threads: usize,
    scratch: &Path,
) -> Vec<u8> {
    let job_path = scratch.join(format!("job-{threads}.json"));
    let out_path: PathBuf = scratch.join(format!("result-{threads}.bin"));
    let job = JobSpec::Embed(spec.clone());
    std::fs::write(&job_path, serde_json::to_string(&job).unwrap()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ntx-embed"))
        .arg("compute")
        .arg(model_dir)
        .arg(&job_path)
        .arg(&out_path)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ntx-embed failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(printed.trim(), Hash32::of(&bytes).to_hex());
    bytes
}

/// Largest |a − b| in quanta between two parsed results' values.
pub fn max_deviation(a: &[u8], b: &[u8]) -> u32 {
    let a = EmbedResult::parse(a).unwrap();
    let b = EmbedResult::parse(b).unwrap();
    a.values
        .iter()
        .zip(&b.values)
        .map(|(x, y)| (i32::from(*x) - i32::from(*y)).unsigned_abs())
        .max()
        .unwrap_or(0)
}

/// Euclidean norm of each row of a result, dequantised.
pub fn row_norms(bytes: &[u8]) -> Vec<f32> {
    let r = EmbedResult::parse(bytes).unwrap();
    (0..r.header.n as usize)
        .map(|i| {
            r.row(i)
                .unwrap()
                .iter()
                .map(|&q| ntx_node_agent::dequantize(q).powi(2))
                .sum::<f32>()
                .sqrt()
        })
        .collect()
}
