//! The verifier loop.
//!
//! Every poll it reads the deployment's escrows and, for each one whose datum lists
//! this verifier's key and that it has not judged yet — in state
//! `Submitted{result_hash}`, or still `Locked` with a result its agent announced
//! (the fast path, [`super::announce`]) — reads the result URL (the submit record,
//! or the announcement), downloads the bytes, fetches
//! the spec from the lock record and checks its hash against the datum, then runs
//! [`crate::Engine::verify`] on the blocking pool (the bytes' hash against the chain,
//! the header against the job, recomputation, tolerance). It signs Accept or Reject
//! over the 98-byte attestation message, stores the attestation (served at
//! `GET /attestations/{job_id}`) and pushes it to the provider
//! (`POST {url}/attestations`, `url` being the one the provider's live offer
//! advertises; never one derived from a record a requester or provider wrote).
//! With no live offer of that provider, nothing is pushed: the attestation stays
//! served here for the provider and keepers to collect.
//!
//! At most `verifier.max_concurrent_jobs` jobs are recomputed at once; downloads
//! wait for one of the agent's download slots, not for a compute slot.
//!
//! When the engine cannot decide (the model is not installed, the spec is refused) the
//! verifier signs nothing and records why. Downloads that fail for a transient
//! reason are retried until the job's `settle_by`; a refused URL, an oversized
//! body or bytes that do not hash to the chain's result are final.

use std::sync::Arc;
use std::time::Duration;

use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::fetch::FetchKind;
use ntx_offchain::market::Listing;
use ntx_offchain::protocol::{JobState, Verdict as ChainVerdict};
use ntx_offchain::wallet::{KeyRole, Signer, SigningKey};

use super::announce::Announcements;
use super::attest::SignedAttestation;
use super::config::VerifierConfig;
use super::slots::Slots;
use super::store::{JobRecord, Role, Stage};
use super::{AgentError, Backoff, Ctx, GiveUp, Inflight, Problem};
use crate::{Hash32, Verdict};

/// A job this verifier cannot judge is recorded as failed: it signs nothing.
const GIVE_UP: GiveUp = GiveUp {
    role: Role::Verifier,
    stage: Stage::Failed,
    says: "cannot judge this job: signing nothing",
};

pub(crate) struct Verifier {
    key: SigningKey,
    inflight: Inflight,
    slots: Slots,
    retry_after: Backoff,
    /// The market as last read, and when: pushes within one poll interval
    /// share one read instead of a paged query each.
    market: tokio::sync::Mutex<Option<(std::time::Instant, Arc<Listing>)>>,
    /// Results announced for locked jobs (shared with `POST /results`).
    announcements: Announcements,
}

impl Verifier {
    /// The verifier of `cfg`; besides the jobs recomputing, up to `waiting` more
    /// may be downloading or waiting for a compute slot.
    pub fn new(
        cfg: VerifierConfig,
        waiting: usize,
        announcements: Announcements,
    ) -> Result<Verifier, AgentError> {
        let key = SigningKey::read_skey(&cfg.key_file, KeyRole::Payment).map_err(|source| {
            AgentError::Key {
                role: "verifier",
                path: cfg.key_file.display().to_string(),
                reason: source.to_string(),
            }
        })?;
        Ok(Verifier {
            key,
            inflight: Inflight::default(),
            slots: Slots::new(cfg.max_concurrent_jobs, waiting),
            market: tokio::sync::Mutex::new(None),
            retry_after: Backoff::new(Duration::from_secs(1)),
            announcements,
        })
    }

    pub async fn run(self: Arc<Self>, ctx: Arc<Ctx>) {
        tracing::info!(key = %hex::encode(self.key.public_key()), "verifier running");
        super::poll_until_cancelled(&ctx, "verifier", || self.clone().tick(&ctx)).await;
    }

    async fn tick(self: Arc<Self>, ctx: &Arc<Ctx>) -> Result<(), String> {
        let me = self.key.public_key();
        let escrows = ctx.client.escrows().await.map_err(|e| e.to_string())?;
        let now = ctx.now_ms().await.map_err(|e| e.to_string())?;
        self.announcements.set_locked(
            escrows
                .iter()
                .filter(|e| e.datum.state == JobState::Locked && e.datum.verifiers.contains(&me))
                .map(|e| (e.datum.job_id, e.datum.agent))
                .collect(),
        );
        for escrow in escrows {
            let d = &escrow.datum;
            let (result_hash, announced_url) = match d.state {
                JobState::Submitted { result_hash } => (result_hash, None),
                JobState::Locked => match self.announcements.get(&d.job_id) {
                    Some(a) => (a.result_hash, Some(a.result_url)),
                    None => continue,
                },
            };
            if !d.verifiers.contains(&me)
                || self.inflight.contains(&d.job_id)
                || self.retry_after.waiting(&d.job_id)
            {
                continue;
            }
            let rec = ctx
                .store
                .job(&d.job_id, Role::Verifier)
                .map_err(|e| e.to_string())?;
            let rec = match rec {
                Some(r) if r.result_hash == Some(result_hash) => r,
                _ => {
                    // New, or a different result after a rollback: judge it afresh.
                    let mut r = JobRecord::new(
                        d.job_id,
                        Role::Verifier,
                        Stage::Accepted,
                        d.spec_hash,
                        d.price,
                        d.submit_by,
                        d.settle_by,
                        d.threshold,
                        d.verifiers.clone(),
                    );
                    r.result_hash = Some(result_hash);
                    r.result_url = announced_url;
                    ctx.store.save(&r).map_err(|e| e.to_string())?;
                    r
                }
            };
            if rec.stage.is_final() {
                continue;
            }
            if now >= rec.settle_by {
                let mut rec = rec;
                rec.failure = Some("settle_by passed before the verdict was delivered".into());
                rec.stage = Stage::Expired;
                ctx.store.save(&rec).map_err(|e| e.to_string())?;
                continue;
            }
            let Some(admitted) = self.slots.enter() else {
                continue;
            };
            let Some(guard) = self.inflight.claim(d.job_id) else {
                continue;
            };
            let this = self.clone();
            let c = ctx.clone();
            ctx.spawn(async move {
                let id = rec.job_id;
                let outcome = match rec.stage {
                    Stage::Signed => this.push(&c, rec, &escrow).await,
                    _ => this.judge(&c, rec, escrow).await,
                };
                if let Err(p) = outcome {
                    super::record_problem(&c, &this.retry_after, &GIVE_UP, id, p);
                }
                drop((admitted, guard));
            });
        }
        Ok(())
    }

    /// Fetches, checks and signs; then pushes.
    async fn judge(
        &self,
        ctx: &Ctx,
        mut rec: JobRecord,
        escrow: EscrowUtxo,
    ) -> Result<(), Problem> {
        let Some(result_hash) = rec.result_hash else {
            return Err(Problem::Refuse("no result hash".into()));
        };
        let url = match (&escrow.datum.state, &rec.result_url) {
            // The fast path: the URL the agent's signed announcement names.
            (JobState::Locked, Some(url)) => url.clone(),
            _ => {
                ctx.client
                    .submit_record(&escrow)
                    .await
                    .map_err(|e| Problem::Retry(e.to_string()))?
                    .ok_or_else(|| Problem::Retry("the escrow has no submit record yet".into()))?
                    .result_url
            }
        };
        rec.result_url = Some(url.clone());
        let bytes = ctx.download(&url, FetchKind::Result).await?;
        let (doc, job) = ctx.spec(&escrow).await?;
        let dir = ctx.model_dir(&doc)?;
        let _slot = self.slots.compute().await;
        tracing::info!(job = %rec.id_hex(), bytes = bytes.len(), model = %dir.display(), "verifying");
        let engine = ctx.engine.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            engine.verify(&job, &dir, &bytes, &Hash32(result_hash))
        })
        .await
        .map_err(|e| Problem::Retry(format!("verification task failed: {e}")))?
        .map_err(|e| Problem::Refuse(format!("cannot decide: {e}")))?;
        // The record (served at `/jobs`) keeps the verdict's kind; its details,
        // which come from the bytes judged, go to the log only.
        let (chain_verdict, why, detail) = match &verdict {
            Verdict::Accept(a) => (
                ChainVerdict::Accept,
                format!("accept: {}", a.kind()),
                format!("{a:?}"),
            ),
            Verdict::Reject(r) => (
                ChainVerdict::Reject,
                format!("reject: {}", r.kind()),
                r.to_string(),
            ),
        };
        let attestation = SignedAttestation::sign(
            &self.key,
            chain_verdict,
            ctx.script_hash,
            rec.job_id,
            result_hash,
        );
        ctx.store
            .put_attestation(&attestation, "signed")
            .map_err(|e| Problem::Retry(e.to_string()))?;
        rec.verdict = Some(why.clone());
        rec.stage = Stage::Signed;
        ctx.store
            .save(&rec)
            .map_err(|e| Problem::Retry(e.to_string()))?;
        tracing::info!(job = %rec.id_hex(), verdict = %why, %detail, "attestation signed");
        self.push(ctx, rec, &escrow).await
    }

    /// The market's live offers, read at most once per poll interval.
    async fn market(&self, ctx: &Ctx) -> Result<Arc<Listing>, Problem> {
        let mut cached = self.market.lock().await;
        if let Some((at, listing)) = cached.as_ref()
            && at.elapsed() < ctx.poll
        {
            return Ok(listing.clone());
        }
        let listing = Arc::new(
            ctx.client
                .market()
                .await
                .map_err(|e| Problem::Retry(format!("cannot read the market: {e}")))?,
        );
        *cached = Some((std::time::Instant::now(), listing.clone()));
        Ok(listing)
    }

    /// Delivers the signed attestation to the URL the provider's live offer
    /// advertises.
    async fn push(
        &self,
        ctx: &Ctx,
        mut rec: JobRecord,
        escrow: &EscrowUtxo,
    ) -> Result<(), Problem> {
        let listing = self.market(ctx).await?;
        let Some(offer) = listing.provider_of(&escrow.datum, ctx.client.network()) else {
            rec.stage = Stage::Pushed;
            rec.failure = Some(
                "the provider has no live offer: nothing pushed, the attestation stays served here"
                    .into(),
            );
            ctx.store
                .save(&rec)
                .map_err(|e| Problem::Retry(e.to_string()))?;
            tracing::warn!(job = %rec.id_hex(), "the provider has no live offer: the attestation stays served here");
            return Ok(());
        };
        let url = offer.offer.url.trim_end_matches('/').to_string();
        let me = self.key.public_key();
        let attestation = ctx
            .store
            .attestations(&rec.job_id)
            .map_err(|e| Problem::Retry(e.to_string()))?
            .into_iter()
            .find(|a| a.verifier_key == me && Some(a.result_hash) == rec.result_hash)
            .ok_or_else(|| Problem::Refuse("the signed attestation is missing".into()))?;
        let (status, body) = ctx
            .client
            .fetcher()
            .post_json(
                &format!("{url}/attestations"),
                &attestation,
                FetchKind::Attestations,
            )
            .await
            .map_err(|e| {
                let why = format!("cannot push the attestation: {e}");
                if e.is_final() {
                    Problem::Refuse(why)
                } else {
                    Problem::Retry(why)
                }
            })?;
        if (200..300).contains(&status) {
            rec.stage = Stage::Pushed;
            ctx.store
                .save(&rec)
                .map_err(|e| Problem::Retry(e.to_string()))?;
            tracing::info!(job = %rec.id_hex(), provider = %url, "attestation delivered");
            Ok(())
        } else if (400..500).contains(&status) {
            // The provider does not want it (not its job, another result): it stays served here.
            let body = String::from_utf8_lossy(&body);
            rec.stage = Stage::Pushed;
            rec.failure = Some(format!("the provider refused the push ({status}): {body}"));
            ctx.store
                .save(&rec)
                .map_err(|e| Problem::Retry(e.to_string()))?;
            tracing::warn!(job = %rec.id_hex(), %status, %body, "provider refused the attestation; it stays served here");
            Ok(())
        } else {
            Err(Problem::Retry(format!("{url} answered {status}")))
        }
    }
}
