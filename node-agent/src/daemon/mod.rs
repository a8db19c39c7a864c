//! The node agent daemon: `ntx agent run --config agent.toml`.
//!
//! | module | what it holds |
//! |---|---|
//! | `config` | [`AgentConfig`]: TOML file, `--config`, `NTX_*` overrides; roles provider / verifier / both |
//! | `store` | [`Store`]: SQLite state (jobs with their [`Stage`], transactions, attestations) and result bytes |
//! | `http` | the HTTP API: public `/results/{hash}`, `/attestations/{job_id}`, `POST /attestations`, `/health`; the operator's `/jobs` |
//! | `slots` | how many jobs a role fetches for and computes at once |
//! | `fetch_config` | `[fetch]`: address policy, size and time limits, download concurrency |
//! | `attest` | [`SignedAttestation`] (the JSON agents exchange), [`Tally`], [`collect_attestations`] |
//! | `models` | [`ModelIndex`]: which configured directory holds a job's model files, and which models it serves |
//! | `market_config` | `[provider.policy]` and `[….offer]`: the verifier policy and the offer's prices and lifetime |
//! | `offer` | the offer keeper: publishes the agent's offer when missing or stale, refreshes it before expiry |
//! | `provider` | the provider loop: pick up, check, compute, submit, collect, claim (batched) |
//! | `verifier` | the verifier loop: fetch, check, recompute, sign, serve, push |
//!
//! [`run`] starts everything under one [`CancellationToken`]: cancel it (Ctrl-C in
//! `ntx agent run`) and the loops stop between steps, the HTTP server drains, and
//! `run` returns once every task has ended. Everything the agent must not forget is in
//! SQLite before it acts, so a killed agent resumes where it was (see `store`).

mod announce;
mod attest;
mod config;
mod fetch_config;
mod http;
mod market_config;
mod models;
mod offer;
mod provider;
mod slots;
mod store;
mod verifier;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::chain::{Blockfrost, ChainProvider};
use ntx_offchain::client::{ClientError, DeploymentInfo, EscrowClient, JobSpecDoc, SpecSource};
use ntx_offchain::fetch::FetchKind;
use ntx_offchain::market::OfferRole;
use ntx_offchain::protocol::blake2b_256;
use ntx_offchain::wallet::Wallet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use announce::SignedResult;
pub use attest::{SignedAttestation, Tally, collect_attestations};
pub use config::{
    AgentConfig, CONFIG_ENV, ChainConfig, ConfigError, ENV_OVERRIDES, FetchConfig, OfferConfig,
    PolicyConfig, ProviderConfig, VerifierConfig,
};
pub use http::{HttpState, router, serve as serve_http};
pub use models::ModelIndex;
pub use store::{JobRecord, Role, Stage, Store, StoreError};

use crate::{Engine, JobSpec};

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain or the deployment (the message says what to fix).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A key file.
    #[error("cannot load the {role} key {path}: {reason}")]
    Key {
        /// Which key.
        role: &'static str,
        /// Its file.
        path: String,
        /// Why (never the key itself).
        reason: String,
    },
    /// The inference engine.
    #[error(transparent)]
    Engine(#[from] crate::InferenceError),
    /// Files or sockets.
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        error: std::io::Error,
    },
}

/// What the provider and verifier loops share.
pub(crate) struct Ctx {
    pub client: EscrowClient,
    pub store: Store,
    pub engine: Arc<Engine>,
    pub models: ModelIndex,
    pub script_hash: [u8; 28],
    pub poll: Duration,
    pub cancel: CancellationToken,
    pub tasks: TaskTracker,
    /// Spec and result downloads in flight, over both roles (`[fetch]
    /// max_concurrent_downloads`).
    pub downloads: Arc<tokio::sync::Semaphore>,
}

impl Ctx {
    /// The chain's current time, POSIX ms.
    pub async fn now_ms(&self) -> Result<u64, ClientError> {
        Ok(self.client.slot_time(self.client.now_slot().await?))
    }

    /// Runs `fut` as a tracked task that stops when the agent is cancelled.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = fut => {}
            }
        });
    }

    /// Downloads `url`, a URL from chain data, within `kind`'s limit and the agent's
    /// address policy (docs/SECURITY.md, "Fetching strangers' URLs").
    /// Waits for one of the agent's download slots first.
    pub async fn download(&self, url: &str, kind: FetchKind) -> Result<Vec<u8>, Problem> {
        let _slot = self
            .downloads
            .acquire()
            .await
            .map_err(|e| Problem::Retry(e.to_string()))?;
        self.client.fetcher().get(url, kind).await.map_err(|e| {
            if e.is_final() {
                Problem::Refuse(e.to_string())
            } else {
                Problem::Retry(e.to_string())
            }
        })
    }

    /// The job's spec: fetched from the lock record (inline or by URL), its hash
    /// checked against the datum, then parsed.
    pub async fn spec(&self, escrow: &EscrowUtxo) -> Result<(JobSpecDoc, JobSpec), Problem> {
        let source = self.client.job_spec(escrow).await.map_err(|e| match e {
            ClientError::Chain(_) => Problem::Retry(e.to_string()),
            other => Problem::Refuse(format!("no readable spec: {other}")),
        })?;
        let bytes = match source {
            SpecSource::Inline(bytes) => bytes,
            SpecSource::Url(url) => self.download(&url, FetchKind::Spec).await?,
        };
        // What is recorded (and served at `/jobs`) never quotes the fetched bytes
        // or their hash; the log has the details.
        let id = hex::encode(escrow.datum.job_id);
        let actual = blake2b_256(&bytes);
        if actual != escrow.datum.spec_hash {
            tracing::warn!(job = %id, actual = %hex::encode(actual), "the spec's hash is not the datum's");
            return Err(Problem::Refuse(format!(
                "the spec does not hash to the datum's spec_hash {}",
                hex::encode(escrow.datum.spec_hash)
            )));
        }
        let doc = JobSpecDoc::parse(&bytes).map_err(|e| {
            tracing::warn!(job = %id, error = %e, "unreadable spec");
            Problem::Refuse("the spec is not a job spec document (the agent's log says why)".into())
        })?;
        let job = JobSpec::from_json(&doc.job.to_string()).map_err(|e| {
            tracing::warn!(job = %id, error = %e, "the spec's job is invalid");
            Problem::Refuse(
                "the spec's job is not one this agent runs (the agent's log says why)".into(),
            )
        })?;
        Ok((doc, job))
    }

    /// The configured model directory that holds every file `doc`'s job names.
    pub fn model_dir(&self, doc: &JobSpecDoc) -> Result<std::path::PathBuf, Problem> {
        self.models
            .find(&doc.job)
            .map(std::path::Path::to_path_buf)
            .ok_or_else(|| {
                Problem::Refuse(
                    "no configured model directory holds the files this job names".into(),
                )
            })
    }
}

/// Why a step did not complete.
#[derive(Debug)]
pub(crate) enum Problem {
    /// Permanent: record the reason and do not try again.
    Refuse(String),
    /// Transient (network, chain): try again later.
    Retry(String),
}

/// Job ids with a task running, so that one job is never driven twice at once.
#[derive(Clone, Default)]
pub(crate) struct Inflight(Arc<Mutex<HashSet<[u8; 32]>>>);

/// Removes its job from [`Inflight`] when dropped (the task ended or was cancelled).
pub(crate) struct InflightGuard(Inflight, [u8; 32]);

impl Inflight {
    /// Marks `id` busy, or `None` when it already is.
    pub fn claim(&self, id: [u8; 32]) -> Option<InflightGuard> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(id).then(|| InflightGuard(self.clone(), id))
    }

    /// Whether `id` is busy.
    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

/// Job ids not to retry before a given instant (after a transient failure), each
/// waiting at least a poll interval and at least the loop's own minimum.
pub(crate) struct Backoff {
    until: Mutex<HashMap<[u8; 32], Instant>>,
    min: Duration,
}

impl Backoff {
    /// A back-off whose waits last at least `min`.
    pub fn new(min: Duration) -> Self {
        Backoff {
            until: Mutex::new(HashMap::new()),
            min,
        }
    }

    /// Whether `id` is still waiting.
    pub fn waiting(&self, id: &[u8; 32]) -> bool {
        let map = self.until.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).is_some_and(|t| Instant::now() < *t)
    }

    /// Makes `id` wait a `poll` interval (at least the minimum) before its next try.
    pub fn wait(&self, id: [u8; 32], poll: Duration) {
        self.until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Instant::now() + poll.max(self.min));
    }
}

/// How a loop records a job it gives up on.
pub(crate) struct GiveUp {
    /// Whose record it is.
    pub role: Role,
    /// The stage the job ends in.
    pub stage: Stage,
    /// What the log says.
    pub says: &'static str,
}

/// Records a step's `problem` for job `id`: a transient one makes the job wait
/// (`backoff`); a permanent one ends it as `give_up` says, with the reason.
pub(crate) fn record_problem(
    ctx: &Ctx,
    backoff: &Backoff,
    give_up: &GiveUp,
    id: [u8; 32],
    problem: Problem,
) {
    match problem {
        Problem::Retry(why) => {
            tracing::warn!(job = %hex::encode(id), reason = %why, "will retry");
            backoff.wait(id, ctx.poll);
        }
        Problem::Refuse(why) => {
            tracing::warn!(job = %hex::encode(id), reason = %why, "{}", give_up.says);
            if let Ok(Some(mut rec)) = ctx.store.job(&id, give_up.role) {
                rec.stage = give_up.stage;
                rec.failure = Some(why);
                if let Err(e) = ctx.store.save(&rec) {
                    tracing::error!(error = %e, "cannot record that the job was given up");
                }
            }
        }
    }
}

/// Calls `step` once per poll interval until the agent is cancelled, logging (and
/// riding out) failed polls; `role` names the loop in the logs.
pub(crate) async fn poll_until_cancelled<F, Fut>(ctx: &Ctx, role: &'static str, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut tick = tokio::time::interval(ctx.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = step().await {
            tracing::warn!(error = %e, "{role} poll failed; retrying");
        }
    }
    tracing::info!("{role} stopped");
}

/// Runs the agent until `cancel`: HTTP API, provider loop, verifier loop, as the
/// configuration says. Returns once everything has stopped.
pub async fn run(config: AgentConfig, cancel: CancellationToken) -> Result<(), AgentError> {
    run_with(config, cancel, |_| {}).await
}

/// [`run`], calling `on_ready` with the HTTP address once it listens.
pub async fn run_with(
    config: AgentConfig,
    cancel: CancellationToken,
    on_ready: impl FnOnce(SocketAddr) + Send + 'static,
) -> Result<(), AgentError> {
    let network = config.chain.network;
    let info = DeploymentInfo::load(&config.deployment)?;
    let chain: Arc<dyn ChainProvider> = Arc::new(
        Blockfrost::for_network(network, config.chain.provider_url.as_deref())
            .map_err(ClientError::from)?,
    );
    let mut client = EscrowClient::connect(chain, &info).await?;
    client.set_fetcher(config.fetch.fetcher(network).map_err(ClientError::from)?);
    let script_hash = client.deployment().script.hash();
    let store = Store::open(&config.state_dir)?;
    let dirs = config.models.clone();
    let models = tokio::task::spawn_blocking(move || ModelIndex::scan(&dirs))
        .await
        .map_err(|e| AgentError::Io {
            context: "indexing the model directories".into(),
            error: std::io::Error::other(e.to_string()),
        })?
        .map_err(|error| AgentError::Io {
            context: "indexing the model directories".into(),
            error,
        })?;
    let engine = Arc::new(Engine::on_selected_device()?);
    let mut roles = Vec::new();
    let provider = match &config.provider {
        Some(p) => {
            roles.push("provider");
            Some(provider::Provider::new(
                p.clone(),
                network,
                config.fetch.max_concurrent_downloads,
            )?)
        }
        None => None,
    };
    let announcements = config
        .verifier
        .as_ref()
        .map(|_| announce::Announcements::default());
    let verifier = match &config.verifier {
        Some(v) => {
            roles.push("verifier");
            Some(verifier::Verifier::new(
                v.clone(),
                config.fetch.max_concurrent_downloads,
                announcements.clone().unwrap_or_default(),
            )?)
        }
        None => None,
    };
    let tasks = TaskTracker::new();
    let waiting = config.fetch.max_concurrent_downloads;
    let ctx = Arc::new(Ctx {
        client,
        store: store.clone(),
        engine,
        models,
        script_hash,
        poll: Duration::from_millis(config.poll_interval_ms),
        cancel: cancel.clone(),
        tasks: tasks.clone(),
        downloads: Arc::new(tokio::sync::Semaphore::new(waiting)),
    });
    let state = HttpState {
        store,
        script_hash,
        roles: roles.clone(),
        operator_token: config.operator_token.clone(),
        announcements,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| AgentError::Io {
            context: format!("cannot listen on {}", config.listen),
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| AgentError::Io {
        context: "listener".into(),
        error,
    })?;
    tracing::info!(%addr, roles = ?roles, script = %hex::encode(script_hash), "agent started");
    on_ready(addr);
    let server = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            http::serve(listener, state, async move { cancel.cancelled().await }).await
        })
    };
    let mut keepers = Vec::new();
    if let (Some(p), Some(cfg)) = (&provider, &config.provider)
        && cfg.offer.publish
    {
        keepers.push(offer::OfferKeeper::new(
            &ctx,
            p.wallet().clone(),
            OfferRole::Provider,
            &cfg.public_url,
            offer::task_offers(&ctx.models, &cfg.offer, cfg.price_floor),
            Some(cfg.payout_address.clone()),
            Some(p.policy().clone()),
            &cfg.offer,
            p.writer(),
        ));
    }
    if let Some(cfg) = &config.verifier
        && cfg.offer.publish
    {
        let wallet =
            Wallet::from_skey_files(network, &cfg.key_file, None).map_err(|e| AgentError::Key {
                role: "verifier",
                path: cfg.key_file.display().to_string(),
                reason: e.to_string(),
            })?;
        keepers.push(offer::OfferKeeper::new(
            &ctx,
            wallet,
            OfferRole::Verifier,
            &cfg.public_url,
            offer::task_offers(&ctx.models, &cfg.offer, 0),
            None,
            None,
            &cfg.offer,
            Arc::new(tokio::sync::Mutex::new(())),
        ));
    }
    for keeper in keepers {
        let keeper = Arc::new(keeper);
        let ctx = ctx.clone();
        tasks.spawn(async move { keeper.run(ctx).await });
    }
    if let Some(p) = provider {
        let p = Arc::new(p);
        let ctx = ctx.clone();
        tasks.spawn(async move { p.run(ctx).await });
    }
    if let Some(v) = verifier {
        let v = Arc::new(v);
        let ctx = ctx.clone();
        tasks.spawn(async move { v.run(ctx).await });
    }
    cancel.cancelled().await;
    tracing::info!("agent stopping");
    tasks.close();
    tasks.wait().await;
    let served = server.await.map_err(|e| AgentError::Io {
        context: "HTTP server".into(),
        error: std::io::Error::other(e.to_string()),
    })?;
    served.map_err(|error| AgentError::Io {
        context: "HTTP server".into(),
        error,
    })?;
    tracing::info!("agent stopped");
    Ok(())
}
