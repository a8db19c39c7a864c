//! What a requester asks for, from the command line: the task and its inputs
//! (`--input`, `--input-file`, `--prompt`, decoding flags) or a `--spec` file,
//! turned into the market query and, once a provider is chosen, the job object
//! of the spec it will run.

use std::path::PathBuf;

use ntx_node_agent::JobSpec;
use ntx_offchain::market::{Choice, Want};

use crate::cmd::common::{CliError, parse_ntx, usage};

/// The tasks a requester can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskKind {
    /// Sentence embeddings: one vector per input.
    Embed,
    /// Chat completion: text answering the prompt.
    Generate,
}

impl TaskKind {
    fn name(self) -> &'static str {
        match self {
            TaskKind::Embed => "embed",
            TaskKind::Generate => "generate",
        }
    }
}

/// The job part of `ntx job run`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RequestArgs {
    /// The task (or give --spec).
    #[arg(long, value_enum, required_unless_present = "spec")]
    pub task: Option<TaskKind>,
    /// A text to embed (repeat for more).
    #[arg(long = "input", value_name = "TEXT")]
    pub inputs: Vec<String>,
    /// A file of texts to embed, one per line (empty lines skipped).
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// The question or instruction for `generate`.
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// A system message for `generate` (replaces the model's default).
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// For `generate`: stop after this many new tokens.
    #[arg(long, default_value_t = 128)]
    pub max_new_tokens: u32,
    /// For `generate`: always take the most likely token (the default).
    #[arg(long, conflicts_with = "temperature")]
    pub greedy: bool,
    /// For `generate`: sample at this temperature (e.g. 0.7), seeded.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// With --temperature: the nucleus mass (0 < p ≤ 1).
    #[arg(long, default_value_t = 1.0, requires = "temperature")]
    pub top_p: f64,
    /// With --temperature: the seed (default: random); the same seed gives the same text.
    #[arg(long, requires = "temperature")]
    pub seed: Option<u64>,
    /// A job file instead of the flags above: the spec's `job` object
    /// (`{"task": …, …}`, `model` optional), or a whole version-1 spec whose
    /// `job` is taken (its verifiers are chosen from the market anew).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["task", "inputs", "input_file", "prompt"])]
    pub spec: Option<PathBuf>,
    /// Only models one of whose file hashes is this (hex).
    #[arg(long, value_name = "HASH")]
    pub model: Option<String>,
    /// The most you pay, in NTX (e.g. 2.5).
    #[arg(long, value_name = "NTX")]
    pub max_price: Option<String>,
    /// Only this provider: its agent key hash, offer key or payout address.
    #[arg(long)]
    pub provider: Option<String>,
    /// How many verifiers to name (at least the provider's minimum threshold).
    #[arg(long, default_value_t = 3)]
    pub verifiers: usize,
}

/// A request, checked: the market query and the job object without its model.
#[derive(Debug, Clone)]
pub struct Request {
    /// What to look for in the market.
    pub want: Want,
    /// The spec's `job`, whose `model` the chosen offer fills in (or, from a
    /// file, must match).
    pub job: serde_json::Value,
}

impl RequestArgs {
    /// Checks the flags (before the chain is asked anything).
    pub fn request(&self) -> Result<Request, CliError> {
        let max_price = self
            .max_price
            .as_deref()
            .map(|p| parse_ntx(p).map_err(|e| usage(format!("--max-price: {e}"))))
            .transpose()?;
        if let Some(m) = &self.model
            && !hex::decode(m).is_ok_and(|b| b.len() == 32)
        {
            return Err(usage(
                "--model is not a model hash: give the blake2b-256 of one of its files, 64 hex characters",
            ));
        }
        let job = match (&self.spec, self.task) {
            (Some(path), _) => job_from_file(path)?,
            (None, Some(TaskKind::Embed)) => serde_json::json!({
                "task": "embed",
                "inputs": self.embed_inputs()?,
            }),
            (None, Some(TaskKind::Generate)) => self.generate_job()?,
            (None, None) => return Err(usage("give --task embed|generate, or --spec FILE")),
        };
        let task = job["task"].as_str().unwrap_or_default().to_string();
        let max_new_tokens = job["max_new_tokens"].as_u64().unwrap_or(0);
        let model = self.model.clone().or_else(|| first_hash(&job["model"]));
        Ok(Request {
            want: Want {
                task,
                model,
                max_price,
                max_new_tokens,
                provider: self.provider.clone(),
                verifiers: self.verifiers,
            },
            job,
        })
    }

    fn embed_inputs(&self) -> Result<Vec<String>, CliError> {
        let mut inputs = self.inputs.clone();
        if let Some(path) = &self.input_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
            inputs.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string),
            );
        }
        if inputs.is_empty() {
            return Err(usage(
                "an embed job needs texts: give --input TEXT (repeatable) or --input-file FILE",
            ));
        }
        if self.prompt.is_some() || self.temperature.is_some() {
            return Err(usage(
                "--prompt and --temperature are for --task generate; embed takes --input",
            ));
        }
        Ok(inputs)
    }

    fn generate_job(&self) -> Result<serde_json::Value, CliError> {
        let Some(prompt) = &self.prompt else {
            return Err(usage("a generate job needs --prompt TEXT"));
        };
        if !self.inputs.is_empty() || self.input_file.is_some() {
            return Err(usage(
                "--input and --input-file are for --task embed; generate takes --prompt",
            ));
        }
        let mut messages = Vec::new();
        if let Some(system) = &self.system {
            messages.push(serde_json::json!({"role": "system", "content": system}));
        }
        messages.push(serde_json::json!({"role": "user", "content": prompt}));
        let decoding = match self.temperature {
            None => serde_json::json!({"mode": "greedy"}),
            Some(t) => {
                let temperature_milli = milli(t, "--temperature")?;
                let top_p_milli = milli(self.top_p, "--top-p")?;
                let seed = self
                    .seed
                    .unwrap_or_else(|| rand::random::<u64>() & ((1 << 53) - 1));
                serde_json::json!({
                    "mode": "sample",
                    "temperature_milli": temperature_milli,
                    "top_p_milli": top_p_milli,
                    "seed": seed,
                })
            }
        };
        Ok(serde_json::json!({
            "task": "generate",
            "messages": messages,
            "max_new_tokens": self.max_new_tokens,
            "decoding": decoding,
        }))
    }
}

impl Request {
    /// The job the chosen provider runs: the request with the offer's model,
    /// checked as the agents will check it.
    pub fn job_for(&self, choice: &Choice) -> Result<serde_json::Value, CliError> {
        let mut job = self.job.clone();
        match job.get("model") {
            Some(model) if *model != choice.task.model => {
                return Err(usage(
                    "the spec's model is not the one the chosen provider serves: drop `model` from the file, or pick the provider with --provider",
                ));
            }
            _ => job["model"] = choice.task.model.clone(),
        }
        let parsed = JobSpec::from_json(&job.to_string()).map_err(|e| usage(e.to_string()))?;
        parsed.validate().map_err(|e| usage(e.to_string()))?;
        Ok(job)
    }
}

fn job_from_file(path: &PathBuf) -> Result<serde_json::Value, CliError> {
    let text = std::fs::read(path)
        .map_err(|e| usage(format!("cannot read the spec {}: {e}", path.display())))?;
    let json: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| usage(format!("{} is not JSON: {e}", path.display())))?;
    let job = if json.get("version").is_some() {
        json["job"].clone()
    } else {
        json
    };
    match job["task"].as_str() {
        Some("embed" | "generate") => Ok(job),
        _ => Err(usage(format!(
            "{}: the job names no known `task` (embed or generate)",
            path.display()
        ))),
    }
}

/// The first 32-byte hex string in a spec's `model` value.
fn first_hash(model: &serde_json::Value) -> Option<String> {
    match model {
        serde_json::Value::String(s) if hex::decode(s).is_ok_and(|b| b.len() == 32) => {
            Some(s.clone())
        }
        serde_json::Value::Array(items) => items.iter().find_map(first_hash),
        serde_json::Value::Object(map) => map.values().find_map(first_hash),
        _ => None,
    }
}

fn milli(x: f64, flag: &str) -> Result<u32, CliError> {
    let m = (x * 1000.0).round();
    if !(1.0..=10_000.0).contains(&m) {
        return Err(usage(format!(
            "{flag} {x} is outside the range the agents run (0.001 to 10; top-p at most 1)"
        )));
    }
    Ok(m as u32)
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
