//! Which configured model directory serves a job: every file in each directory is
//! hashed once at start-up (blake2b-256), and a job goes to the directory holding every
//! hash its spec's `model` object names. The engine checks the files again before
//! loading, so a file changed after start-up is refused, never used.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::Hash32;

/// The model directories and the hashes of their files.
#[derive(Debug, Clone, Default)]
pub struct ModelIndex {
    dirs: Vec<(PathBuf, HashSet<[u8; 32]>)>,
    served: Vec<ServedModel>,
}

/// A model a directory holds, as an offer names it: the task and the `model`
/// value a job spec gives (`embed`: the three BERT files' hashes; `generate`:
/// the GGUF file's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedModel {
    /// `embed` or `generate`.
    pub task: &'static str,
    /// The spec's `job.model`.
    pub model: serde_json::Value,
}

impl ModelIndex {
    /// Hashes the regular files directly inside each directory (blocking: call it on a
    /// blocking thread). A directory that cannot be read is an error.
    pub fn scan(dirs: &[PathBuf]) -> std::io::Result<ModelIndex> {
        let mut out = Vec::new();
        let mut served = Vec::new();
        for dir in dirs {
            let mut hashes = HashSet::new();
            let mut named = std::collections::HashMap::new();
            let entries = std::fs::read_dir(dir).map_err(|e| {
                std::io::Error::new(e.kind(), format!("model directory {}: {e}", dir.display()))
            })?;
            for entry in entries {
                let path = entry?.path();
                if path.is_file() {
                    let hash = Hash32::of_file(&path)?;
                    hashes.insert(hash.0);
                    if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                        named.insert(name.to_string(), hash);
                    }
                }
            }
            served.extend(served_by(&named));
            tracing::info!(dir = %dir.display(), files = hashes.len(), "model directory indexed");
            out.push((dir.clone(), hashes));
        }
        Ok(ModelIndex { dirs: out, served })
    }

    /// The models the directories hold, for the agent's offer.
    pub fn served(&self) -> &[ServedModel] {
        &self.served
    }

    /// The directory holding every file `job` names in its `model` object (hex hashes
    /// at any depth), if one does.
    pub fn find(&self, job: &serde_json::Value) -> Option<&Path> {
        let mut wanted = Vec::new();
        collect_hashes(job.get("model")?, &mut wanted);
        if wanted.is_empty() {
            return None;
        }
        self.dirs
            .iter()
            .find(|(_, have)| wanted.iter().all(|h| have.contains(h)))
            .map(|(dir, _)| dir.as_path())
    }
}

/// What one directory's files (name → hash) serve.
fn served_by(named: &std::collections::HashMap<String, Hash32>) -> Vec<ServedModel> {
    let mut out = Vec::new();
    if let (Some(w), Some(c), Some(t)) = (
        named.get(crate::WEIGHTS_FILE),
        named.get(crate::CONFIG_FILE),
        named.get(crate::TOKENIZER_FILE),
    ) {
        let files = crate::BertFiles {
            weights: *w,
            config: *c,
            tokenizer: *t,
        };
        if let Ok(model) = serde_json::to_value(files) {
            out.push(ServedModel {
                task: "embed",
                model,
            });
        }
    }
    if let Some(g) = named.get(crate::GGUF_FILE) {
        out.push(ServedModel {
            task: "generate",
            model: serde_json::Value::String(g.to_hex()),
        });
    }
    out
}

fn collect_hashes(v: &serde_json::Value, out: &mut Vec<[u8; 32]>) {
    match v {
        serde_json::Value::String(s) if s.len() == 64 => {
            if let Some(h) = hex::decode(s).ok().and_then(|b| b.try_into().ok()) {
                out.push(h);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_hashes(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| collect_hashes(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_job_goes_to_the_directory_with_all_its_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("w"), b"weights a").unwrap();
        std::fs::write(b.path().join("w"), b"weights b").unwrap();
        std::fs::write(b.path().join("c"), b"config").unwrap();
        let index = ModelIndex::scan(&[a.path().into(), b.path().into()]).unwrap();
        let h = |bytes: &[u8]| Hash32::of(bytes).to_hex();
        let job = serde_json::json!({"task": "embed",
            "model": {"weights": h(b"weights b"), "config": h(b"config")}});
        assert_eq!(index.find(&job), Some(b.path()));
        let job =
            serde_json::json!({"model": {"weights": h(b"weights a"), "config": h(b"config")}});
        assert_eq!(index.find(&job), None, "no directory has both");
        assert_eq!(index.find(&serde_json::json!({"task": "embed"})), None);
    }
}
