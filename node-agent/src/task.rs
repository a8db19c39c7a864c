//! The task abstraction and the [`Engine`] the daemon calls.
//!
//! A task is a [`Task`] implementation: which model files its spec names, how to load
//! them, how to compute canonical result bytes, and how a verifier checks someone
//! else's bytes. The engine does the task-independent parts the same way for every
//! task: refuse invalid specs, hash the model files before loading, cache loaded
//! models by those hashes, compare the on-chain hash before anything else.
//! [`JobSpec`] is the closed set of tasks this build runs: `embed` and `generate`, one
//! `Task` impl and one enum variant each. Long jobs report [`Progress`] through a
//! callback ([`Engine::compute_with_progress`]) the daemon forwards to its log and
//! status endpoint.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use candle_core::Device;

use crate::embed::{BertEmbedder, EmbedSpec};
use crate::error::InferenceError;
use crate::generate::spec::GenerateSpec;
use crate::generate::{GenerateModel, LOGIT_TOLERANCE};
use crate::hash::Hash32;
use crate::model::{CacheKey, ModelCache, ModelFile, verify_files};
use crate::verify::{Rejection, Verdict, check_embed};

/// The task tag byte in result headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TaskTag {
    /// Sentence embeddings.
    Embed = 1,
    /// Chat completion with a GGUF llama model.
    Generate = 2,
}

impl TaskTag {
    /// The tag for a header byte, if it names a task.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Embed),
            2 => Some(Self::Generate),
            _ => None,
        }
    }

    /// The task's name in job specs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Embed => "embed",
            Self::Generate => "generate",
        }
    }
}

impl fmt::Display for TaskTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How far a running job is, for logs and the status endpoint: `done` of `total`
/// `unit`s (`total` is an upper bound: a `generate` job may stop early at the
/// end-of-turn token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Units finished.
    pub done: u64,
    /// Units the job has at most.
    pub total: u64,
    /// What is counted (`"inputs"`, `"tokens"`).
    pub unit: &'static str,
}

/// One kind of job the agent can compute and verify.
pub trait Task {
    /// Tag written into result headers.
    const TAG: TaskTag;
    /// The job's parameters.
    type Spec;
    /// A loaded model, shared between jobs through the engine's cache.
    type Model: Send + Sync + 'static;

    /// Refuses specs the agent will not run (checked before any file is touched).
    fn validate(spec: &Self::Spec) -> Result<(), InferenceError>;
    /// The model's files and the hashes the spec names for them.
    fn model_files(spec: &Self::Spec) -> Vec<ModelFile>;
    /// Loads the model from `dir`, whose files the engine has just verified.
    fn load(dir: &Path, spec: &Self::Spec, device: &Device) -> Result<Self::Model, InferenceError>;
    /// The canonical result bytes (provider side), reporting progress as it goes.
    fn compute(
        model: &Self::Model,
        spec: &Self::Spec,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, InferenceError>;
    /// Checks a provider's bytes, whose hash the engine has already compared with the
    /// chain (verifier side).
    fn check(
        model: &Self::Model,
        spec: &Self::Spec,
        provider_bytes: &[u8],
    ) -> Result<Verdict, InferenceError>;
}

/// Task `embed` (see [`crate::BertEmbedder`]).
#[derive(Debug, Clone, Copy)]
pub struct EmbedTask;

impl Task for EmbedTask {
    const TAG: TaskTag = TaskTag::Embed;
    type Spec = EmbedSpec;
    type Model = BertEmbedder;

    fn validate(spec: &EmbedSpec) -> Result<(), InferenceError> {
        spec.validate()
    }
    fn model_files(spec: &EmbedSpec) -> Vec<ModelFile> {
        spec.model.model_files()
    }
    fn load(dir: &Path, spec: &EmbedSpec, device: &Device) -> Result<BertEmbedder, InferenceError> {
        BertEmbedder::load_verified(dir, &spec.model, device)
    }
    fn compute(
        model: &BertEmbedder,
        spec: &EmbedSpec,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, InferenceError> {
        let total = spec.inputs.len() as u64;
        let unit = "inputs";
        progress(Progress {
            done: 0,
            total,
            unit,
        });
        let bytes = model.compute(spec)?.to_bytes();
        progress(Progress {
            done: total,
            total,
            unit,
        });
        Ok(bytes)
    }
    fn check(
        model: &BertEmbedder,
        spec: &EmbedSpec,
        provider_bytes: &[u8],
    ) -> Result<Verdict, InferenceError> {
        check_embed(model, spec, provider_bytes)
    }
}

/// Task `generate` (see [`crate::GenerateModel`]): one GGUF file, decoding on the
/// provider, one teacher-forced pass on the verifier.
#[derive(Debug, Clone, Copy)]
pub struct GenerateTask;

impl Task for GenerateTask {
    const TAG: TaskTag = TaskTag::Generate;
    type Spec = GenerateSpec;
    type Model = GenerateModel;

    fn validate(spec: &GenerateSpec) -> Result<(), InferenceError> {
        spec.validate()
    }
    fn model_files(spec: &GenerateSpec) -> Vec<ModelFile> {
        spec.model_files()
    }
    fn load(
        dir: &Path,
        spec: &GenerateSpec,
        device: &Device,
    ) -> Result<GenerateModel, InferenceError> {
        GenerateModel::load_verified(dir, spec.model, device)
    }
    fn compute(
        model: &GenerateModel,
        spec: &GenerateSpec,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, InferenceError> {
        Ok(model.generate(spec, progress)?.to_bytes())
    }
    fn check(
        model: &GenerateModel,
        spec: &GenerateSpec,
        provider_bytes: &[u8],
    ) -> Result<Verdict, InferenceError> {
        model.check(spec, provider_bytes, LOGIT_TOLERANCE)
    }
}

/// A job of any task this build runs. JSON: `{"task": "embed", ...the task's spec}`;
/// an unknown task is a parse error naming the known ones.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum JobSpec {
    /// Sentence embeddings.
    Embed(EmbedSpec),
    /// Chat completion.
    Generate(GenerateSpec),
}

impl JobSpec {
    /// Parses a JSON job spec, refusing unknown tasks and fields with the reason.
    pub fn from_json(json: &str) -> Result<Self, InferenceError> {
        serde_json::from_str(json)
            .map_err(|e| InferenceError::spec(format!("cannot parse job spec: {e}")))
    }

    /// Refuses jobs the agent will not run (no inputs, too many tokens, bad
    /// decoding settings…), with the reason.
    pub fn validate(&self) -> Result<(), InferenceError> {
        match self {
            Self::Embed(spec) => spec.validate(),
            Self::Generate(spec) => spec.validate(),
        }
    }

    /// The job's task.
    pub fn task(&self) -> TaskTag {
        match self {
            Self::Embed(_) => TaskTag::Embed,
            Self::Generate(_) => TaskTag::Generate,
        }
    }
}

/// Result bytes and their hash, as the provider stores, serves and submits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedResult {
    /// Canonical result bytes (serve them at `GET /results/{hash}`).
    pub bytes: Vec<u8>,
    /// `result_hash = blake2b-256(bytes)` (goes on chain).
    pub hash: Hash32,
}

/// Models loaded at most this many at a time (all-MiniLM-L6-v2 is ~90 MB in memory).
pub const DEFAULT_CACHE_CAPACITY: usize = 4;

/// Runs and checks jobs on one device, with a cache of loaded models.
///
/// All methods are synchronous and CPU-bound (hundreds of milliseconds to seconds):
/// call them from a blocking pool (`tokio::task::spawn_blocking`), never on an async
/// worker. `Engine` is `Send + Sync`; share it in an `Arc`.
pub struct Engine {
    device: Device,
    cache: ModelCache,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("device", &crate::device::describe(&self.device))
            .field("cached_models", &self.cache.len())
            .finish()
    }
}

impl Engine {
    /// An engine on `device` with the default cache capacity.
    pub fn new(device: Device) -> Self {
        Self::with_cache_capacity(device, DEFAULT_CACHE_CAPACITY)
    }

    /// An engine on `device` keeping at most `capacity` models loaded.
    pub fn with_cache_capacity(device: Device, capacity: usize) -> Self {
        Self {
            device,
            cache: ModelCache::new(capacity),
        }
    }

    /// An engine on the device [`crate::select_device`] picks.
    pub fn on_selected_device() -> Result<Self, InferenceError> {
        Ok(Self::new(crate::device::select_device()?))
    }

    /// The device this engine runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of models currently cached.
    pub fn cached_models(&self) -> usize {
        self.cache.len()
    }

    /// The loaded model for `spec`, from the cache or after verifying and loading the
    /// files in `model_dir`.
    pub fn model<T: Task>(
        &self,
        spec: &T::Spec,
        model_dir: &Path,
    ) -> Result<Arc<T::Model>, InferenceError> {
        let files = T::model_files(spec);
        let key = CacheKey {
            task: T::TAG,
            files: files.iter().map(|f| f.expected).collect(),
        };
        if let Some(model) = self.cache.get::<T::Model>(&key) {
            return Ok(model);
        }
        verify_files(model_dir, &files)?;
        let model = Arc::new(T::load(model_dir, spec, &self.device)?);
        self.cache.insert(key, Arc::clone(&model));
        Ok(model)
    }

    /// Provider side for one task: validate, load (cached), compute, hash.
    pub fn compute_task<T: Task>(
        &self,
        spec: &T::Spec,
        model_dir: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ComputedResult, InferenceError> {
        T::validate(spec)?;
        let model = self.model::<T>(spec, model_dir)?;
        let bytes = T::compute(&model, spec, progress)?;
        let hash = Hash32::of(&bytes);
        Ok(ComputedResult { bytes, hash })
    }

    /// Verifier side for one task: the bytes' hash must equal the on-chain hash, then
    /// the task checks them (header, recomputation, tolerance).
    pub fn verify_task<T: Task>(
        &self,
        spec: &T::Spec,
        model_dir: &Path,
        provider_bytes: &[u8],
        onchain_hash: &Hash32,
    ) -> Result<Verdict, InferenceError> {
        let actual = Hash32::of(provider_bytes);
        if actual != *onchain_hash {
            return Ok(Verdict::Reject(Rejection::HashMismatch {
                onchain: *onchain_hash,
                actual,
            }));
        }
        T::validate(spec)?;
        let model = self.model::<T>(spec, model_dir)?;
        T::check(&model, spec, provider_bytes)
    }

    /// Provider side: the canonical result of `job`, with the model from `model_dir`.
    pub fn compute(
        &self,
        job: &JobSpec,
        model_dir: &Path,
    ) -> Result<ComputedResult, InferenceError> {
        self.compute_with_progress(job, model_dir, &mut |_| {})
    }

    /// [`Self::compute`], calling `progress` as the job advances (for `generate`: after
    /// every token). The callback runs on the computing thread: keep it cheap (e.g.
    /// store into an atomic or a watch channel).
    pub fn compute_with_progress(
        &self,
        job: &JobSpec,
        model_dir: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ComputedResult, InferenceError> {
        match job {
            JobSpec::Embed(spec) => self.compute_task::<EmbedTask>(spec, model_dir, progress),
            JobSpec::Generate(spec) => self.compute_task::<GenerateTask>(spec, model_dir, progress),
        }
    }

    /// Verifier side: Accept or Reject `provider_bytes` for `job`, given the result
    /// hash the provider put on chain. `Err` means this verifier could not decide
    /// (e.g. it lacks the model); it must then sign nothing.
    pub fn verify(
        &self,
        job: &JobSpec,
        model_dir: &Path,
        provider_bytes: &[u8],
        onchain_hash: &Hash32,
    ) -> Result<Verdict, InferenceError> {
        match job {
            JobSpec::Embed(spec) => {
                self.verify_task::<EmbedTask>(spec, model_dir, provider_bytes, onchain_hash)
            }
            JobSpec::Generate(spec) => {
                self.verify_task::<GenerateTask>(spec, model_dir, provider_bytes, onchain_hash)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unknown_task_is_refused_with_the_known_ones() {
        let err = JobSpec::from_json(r#"{"task":"translate","inputs":[]}"#).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, InferenceError::InvalidSpec { .. }));
        assert!(
            text.contains("translate") && text.contains("embed") && text.contains("generate"),
            "{text}"
        );
    }

    #[test]
    fn generate_spec_parses_as_a_job() {
        let h = Hash32([1; 32]).to_hex();
        let json = format!(
            r#"{{"task":"generate","model":"{h}","messages":[{{"role":"user","content":"Hi"}}],"max_new_tokens":8,"decoding":{{"mode":"sample","temperature_milli":700,"top_p_milli":900,"seed":1}}}}"#
        );
        let job = JobSpec::from_json(&json).unwrap();
        assert_eq!(job.task(), TaskTag::Generate);
        assert_eq!(serde_json::to_string(&job).unwrap(), json);
        let extra = json.replace(r#""max_new_tokens":8"#, r#""max_new_tokens":8,"n":1"#);
        assert!(JobSpec::from_json(&extra).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let h = Hash32([1; 32]).to_hex();
        let model = format!(r#"{{"weights":"{h}","config":"{h}","tokenizer":"{h}"}}"#);
        let ok = format!(r#"{{"task":"embed","model":{model},"inputs":["x"]}}"#);
        assert_eq!(JobSpec::from_json(&ok).unwrap().task(), TaskTag::Embed);
        let extra = format!(r#"{{"task":"embed","model":{model},"inputs":["x"],"seed":1}}"#);
        let err = JobSpec::from_json(&extra).unwrap_err().to_string();
        assert!(err.contains("seed"), "{err}");
        let no_task = format!(r#"{{"model":{model},"inputs":["x"]}}"#);
        assert!(JobSpec::from_json(&no_task).is_err());
    }

    #[test]
    fn tags_round_trip() {
        assert_eq!(TaskTag::from_u8(TaskTag::Embed as u8), Some(TaskTag::Embed));
        assert_eq!(TaskTag::from_u8(2), Some(TaskTag::Generate));
        assert_eq!(TaskTag::Generate.to_string(), "generate");
        assert_eq!(TaskTag::from_u8(0), None);
        assert_eq!(TaskTag::Embed.to_string(), "embed");
    }

    #[test]
    fn engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Engine>();
    }
}
