//! The provider loop.
//!
//! Every poll it reads the deployment's escrows, picks up new ones addressed to its
//! agent key, and drives each of its jobs one step, as the chain and its state say:
//!
//! `accepted` → (spec fetched and hash-checked, inference on the blocking pool, bytes
//! stored) `computed` → (the fast path, [`fast_path`]: the result announced to the
//! verifiers; a quorum within `fast_path_secs` → `claiming` straight from the lock)
//! → (otherwise: Submit signed and **recorded**, then sent) `submitting` →
//! (on chain) `submitted` → (attestations collected from the spec's verifier URLs and
//! pushes; a quorum of Accepts) `claiming` → `paid`.
//!
//! A job is refused (recorded with the reason, nothing submitted) when its datum pays
//! another payout address, its price is under the floor (or, once the spec is read,
//! under the offer's price for its task), its verifiers, threshold or judging window
//! break the provider's verifier policy (checked first, before anything is fetched), too little time is left before
//! `submit_by` for the estimated inference, its spec does not match its hash or cannot
//! be parsed, no configured model directory holds its model, or the engine refuses it.
//! Transactions from the agent's wallet are built and sent one at a time (so two never
//! pick the same coins). Claims wait in one queue while the wallet is busy, and all
//! that are waiting when it frees go in one settlement (the client splits batches
//! that exceed the limits): under load a provider sends about one Claim per block
//! instead of one per job.
//!
//! The steps live in files of their own: [`compute`] (price, time left,
//! inference), [`fast_path`], [`submit`] and [`claim`] (each transaction
//! recorded before it is sent, and sent again as recorded).

mod claim;
mod compute;
mod fast_path;
mod submit;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ntx_offchain::Network;
use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::market::{VerifierPolicy, verifier_keys};
use ntx_offchain::protocol::{self, JobState, Settlement};
use ntx_offchain::wallet::{PaymentAddress, Wallet};
use tokio::sync::Mutex as AsyncMutex;

use super::attest::{Tally, collect_attestations};
use super::config::ProviderConfig;
use super::slots::Slots;
use super::store::{JobRecord, Role, Stage};
use super::{AgentError, Backoff, Ctx, GiveUp, Inflight, InflightGuard, Problem};

/// Assumed inference time per input until one has been measured.
const DEFAULT_MS_PER_INPUT: u64 = 200;

/// A refused job is recorded as such, with its reason.
const GIVE_UP: GiveUp = GiveUp {
    role: Role::Provider,
    stage: Stage::Refused,
    says: "job refused",
};

pub(crate) struct Provider {
    cfg: ProviderConfig,
    policy: VerifierPolicy,
    network: Network,
    wallet: Wallet,
    payout: protocol::Address,
    inflight: Inflight,
    /// Jobs fetching their spec or computing (`max_concurrent_jobs` computing).
    slots: Slots,
    /// One wallet transaction at a time (coin selection must not race).
    writer: Arc<AsyncMutex<()>>,
    /// Claims ready to send, each holding its job's in-flight guard until it is sent
    /// (or fails, and the job goes back to the poll).
    queued_claims: std::sync::Mutex<Vec<(EscrowUtxo, Settlement, InflightGuard)>>,
    retry_after: Backoff,
    ms_per_input: AtomicU64,
    /// Jobs announced on the fast path, and when (chain time, ms). In memory: after
    /// a restart a job is announced again and waits again.
    announced: std::sync::Mutex<HashMap<[u8; 32], fast_path::Waiting>>,
}

impl Provider {
    /// The provider of `cfg` on `network`; besides the jobs computing, up to
    /// `waiting` more may be fetching their spec or waiting for a compute slot.
    pub fn new(
        cfg: ProviderConfig,
        network: Network,
        waiting: usize,
    ) -> Result<Provider, AgentError> {
        let wallet =
            Wallet::from_skey_files(network, &cfg.agent_key_file, None).map_err(|source| {
                AgentError::Key {
                    role: "agent",
                    path: cfg.agent_key_file.display().to_string(),
                    reason: source.to_string(),
                }
            })?;
        let payout = PaymentAddress::parse(&cfg.payout_address, network)
            .map_err(|e| super::ConfigError::Invalid(format!("provider.payout_address: {e}")))?;
        let policy = cfg.policy.policy()?;
        let max_concurrent_jobs = cfg.max_concurrent_jobs;
        if policy.listed_keys().is_empty() && !policy.needs_market() {
            tracing::warn!(
                "provider.policy lists no verifiers: every job will be refused; list the verifiers you trust or set any_live_verifier = true"
            );
        }
        Ok(Provider {
            policy,
            payout: protocol::Address::from(payout.as_pallas()),
            wallet,
            cfg,
            network,
            inflight: Inflight::default(),
            slots: Slots::new(max_concurrent_jobs, waiting),
            writer: Arc::new(AsyncMutex::new(())),
            queued_claims: std::sync::Mutex::new(Vec::new()),
            retry_after: Backoff::new(Duration::from_secs(2)),
            ms_per_input: AtomicU64::new(DEFAULT_MS_PER_INPUT),
            announced: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The agent's wallet (its key is the datum's `agent` and the offer's key).
    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    /// The wallet's one-transaction-at-a-time lock.
    pub fn writer(&self) -> Arc<AsyncMutex<()>> {
        self.writer.clone()
    }

    /// The verifier policy this provider enforces.
    pub fn policy(&self) -> &VerifierPolicy {
        &self.policy
    }

    pub async fn run(self: Arc<Self>, ctx: Arc<Ctx>) {
        tracing::info!(agent = %hex::encode(self.wallet.key_hash()),
            wallet = %self.wallet.address().to_bech32(), "provider running");
        super::poll_until_cancelled(&ctx, "provider", || self.clone().tick(&ctx)).await;
    }

    async fn tick(self: Arc<Self>, ctx: &Arc<Ctx>) -> Result<(), String> {
        let escrows = ctx.client.escrows().await.map_err(|e| e.to_string())?;
        let now = ctx.now_ms().await.map_err(|e| e.to_string())?;
        let key = self.wallet.key_hash();
        let mine: HashMap<[u8; 32], EscrowUtxo> = escrows
            .into_iter()
            .filter(|e| e.datum.agent == key)
            .map(|e| (e.datum.job_id, e))
            .collect();
        let mut new = Vec::new();
        for (id, escrow) in &mine {
            if ctx
                .store
                .job(id, Role::Provider)
                .map_err(|e| e.to_string())?
                .is_none()
            {
                new.push(escrow);
            }
        }
        if !new.is_empty() {
            // Only an "any live verifier" policy needs the market to decide.
            let live = if self.policy.needs_market() {
                let listing = ctx.client.market().await.map_err(|e| e.to_string())?;
                verifier_keys(listing.offers.iter().map(|o| &o.offer))
            } else {
                BTreeSet::new()
            };
            for escrow in new {
                self.consider(ctx, escrow, now, &live)
                    .map_err(|e| e.to_string())?;
            }
        }
        let mut claims = Vec::new();
        let jobs = ctx
            .store
            .jobs(Some(Role::Provider))
            .map_err(|e| e.to_string())?;
        for rec in jobs {
            if rec.stage.is_final()
                || self.inflight.contains(&rec.job_id)
                || self.retry_after.waiting(&rec.job_id)
            {
                continue;
            }
            let escrow = mine.get(&rec.job_id).cloned();
            if let Err(e) = self
                .clone()
                .advance(ctx, rec, escrow, now, &mut claims)
                .await
            {
                tracing::warn!(error = %e, "provider step failed");
            }
        }
        if !claims.is_empty() {
            self.queued_claims
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(claims.into_iter().filter_map(|(escrow, settlement)| {
                    let guard = self.inflight.claim(escrow.datum.job_id)?;
                    Some((escrow, settlement, guard))
                }));
            let this = self.clone();
            let c = ctx.clone();
            ctx.spawn(async move { this.claim_queued(&c).await });
        }
        Ok(())
    }

    /// First sight of an escrow addressed to this agent: accept or refuse it.
    /// `live` holds the keys of the live verifier offers (read only for an "any live
    /// verifier" policy). Nothing is fetched or computed for a refused job.
    fn consider(
        &self,
        ctx: &Ctx,
        escrow: &EscrowUtxo,
        now: u64,
        live: &BTreeSet<[u8; 32]>,
    ) -> Result<(), super::StoreError> {
        let d = &escrow.datum;
        let mut rec = JobRecord::new(
            d.job_id,
            Role::Provider,
            Stage::Accepted,
            d.spec_hash,
            d.price,
            d.submit_by,
            d.settle_by,
            d.threshold,
            d.verifiers.clone(),
        );
        let refusal = if d.state != JobState::Locked {
            Some(
                "a result was already submitted with this agent key (by another instance?)"
                    .to_string(),
            )
        } else if d.provider != self.payout {
            Some(format!(
                "the datum pays {} but this agent's payout address is {}",
                describe_address(&d.provider, self.network),
                self.cfg.payout_address
            ))
        } else if d.price < self.cfg.price_floor {
            Some(format!(
                "price {} is under the floor {}",
                d.price, self.cfg.price_floor
            ))
        } else if let Err(violation) =
            self.policy
                .check(&d.verifiers, d.threshold, d.submit_by, d.settle_by, live)
        {
            Some(format!(
                "the job breaks this provider's verifier policy: {violation}"
            ))
        } else if now + self.cfg.submit_margin_secs * 1000 >= d.submit_by {
            Some(format!(
                "only {} ms left before submit_by, less than the {} s margin",
                d.submit_by.saturating_sub(now),
                self.cfg.submit_margin_secs
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            tracing::warn!(job = %rec.id_hex(), reason = %why, "job refused");
            rec.stage = Stage::Refused;
            rec.failure = Some(why);
        } else {
            tracing::info!(job = %rec.id_hex(), price = d.price, "job accepted");
        }
        ctx.store.save(&rec)
    }

    async fn advance(
        self: Arc<Self>,
        ctx: &Arc<Ctx>,
        mut rec: JobRecord,
        escrow: Option<EscrowUtxo>,
        now: u64,
        claims: &mut Vec<(EscrowUtxo, Settlement)>,
    ) -> Result<(), String> {
        let store = &ctx.store;
        let save = |rec: &JobRecord| store.save(rec).map_err(|e| e.to_string());
        let Some(escrow) = escrow else {
            // The escrow is gone: our claim landed, or someone settled it.
            if rec.stage == Stage::Claiming
                && let Some(tx) = rec.claim_tx
                && ctx.client.chain().tx_metadata(&tx).await.is_ok()
            {
                rec.stage = Stage::Paid;
                rec.claim_cbor = None;
                rec.submit_cbor = None;
                tracing::info!(job = %rec.id_hex(), tx = %hex::encode(tx), "paid");
            } else {
                rec.failure = Some(format!(
                    "the escrow was settled by another transaction while {}",
                    rec.stage
                ));
                rec.stage = if matches!(rec.stage, Stage::Accepted | Stage::Computed)
                    && now > rec.submit_by
                {
                    Stage::Expired
                } else {
                    Stage::Closed
                };
                tracing::warn!(job = %rec.id_hex(), stage = %rec.stage, "escrow gone");
            }
            return save(&rec);
        };
        match (rec.stage, escrow.datum.state) {
            (Stage::Accepted, JobState::Locked) => {
                if now >= rec.submit_by {
                    rec.stage = Stage::Expired;
                    rec.failure = Some("submit_by passed before inference started".into());
                    return save(&rec);
                }
                let Some(admitted) = self.slots.enter() else {
                    return Ok(());
                };
                let Some(guard) = self.inflight.claim(rec.job_id) else {
                    return Ok(());
                };
                let this = self.clone();
                let c = ctx.clone();
                ctx.spawn(async move {
                    let id = rec.job_id;
                    if let Err(p) = this.compute(&c, rec, escrow).await {
                        super::record_problem(&c, &this.retry_after, &GIVE_UP, id, p);
                    }
                    drop((admitted, guard));
                });
                Ok(())
            }
            (Stage::Computed, JobState::Locked) => {
                if now >= rec.submit_by {
                    rec.stage = Stage::Expired;
                    rec.failure = Some("submit_by passed before the result was submitted".into());
                    tracing::warn!(job = %rec.id_hex(), "submit deadline missed");
                    self.forget_announcement(&rec.job_id);
                    return save(&rec);
                }
                if self.fast_path(ctx, &mut rec, &escrow, now, claims)? {
                    return Ok(());
                }
                let Some(guard) = self.inflight.claim(rec.job_id) else {
                    return Ok(());
                };
                let this = self.clone();
                let c = ctx.clone();
                ctx.spawn(async move {
                    this.submit(&c, rec, escrow).await;
                    drop(guard);
                });
                Ok(())
            }
            (Stage::Submitting | Stage::Submitted, JobState::Locked) => {
                // Our Submit is not (or no longer, after a rollback) on chain: send the
                // recorded transaction again; build a new one only if it cannot land.
                if rec.stage == Stage::Submitted {
                    tracing::warn!(job = %rec.id_hex(), "submitted result no longer on chain (rollback?): resending");
                    rec.stage = Stage::Submitting;
                    save(&rec)?;
                }
                self.resend_in_task(ctx, rec, Resend::Submit);
                Ok(())
            }
            (Stage::Claiming, JobState::Locked) => {
                // A fast-path claim is recorded but not (yet) on chain.
                self.resend_in_task(ctx, rec, Resend::Claim);
                Ok(())
            }
            (_, JobState::Locked) => Ok(()),
            (stage, JobState::Submitted { result_hash }) => {
                if rec.result_hash != Some(result_hash) {
                    rec.stage = Stage::Failed;
                    rec.failure = Some(format!(
                        "another result ({}) is on chain for this job",
                        hex::encode(result_hash)
                    ));
                    return save(&rec);
                }
                if matches!(stage, Stage::Accepted | Stage::Computed | Stage::Submitting) {
                    rec.stage = Stage::Submitted;
                    // The Submit that landed (after a crash or a rebuild it may not be
                    // the last one recorded): the escrow's output is its output 0.
                    rec.submit_tx = Some(escrow.utxo.reference.transaction_id);
                    tracing::info!(job = %rec.id_hex(), "result on chain");
                    save(&rec)?;
                }
                if rec.stage == Stage::Claiming {
                    self.resend_in_task(ctx, rec, Resend::Claim);
                    return Ok(());
                }
                let (job_id, urls, verifiers) =
                    (rec.job_id, rec.verifier_urls.clone(), rec.verifiers.clone());
                if self.watch(ctx, rec, escrow, result_hash, now, claims)? {
                    self.collect(ctx, job_id, urls, result_hash, verifiers);
                }
                Ok(())
            }
        }
    }

    /// Asks the job's verifiers for their attestations in a task of its own (the
    /// job stays in flight meanwhile), storing the valid ones for the next poll's
    /// tally: a slow or silent verifier delays only this job, each URL within its
    /// own short budget, and never the loop that serves the others.
    fn collect(
        &self,
        ctx: &Arc<Ctx>,
        job_id: [u8; 32],
        urls: Vec<String>,
        result_hash: [u8; 32],
        verifiers: Vec<[u8; 32]>,
    ) {
        if urls.is_empty() {
            return;
        }
        let Some(guard) = self.inflight.claim(job_id) else {
            return;
        };
        let c = ctx.clone();
        ctx.spawn(async move {
            for a in collect_attestations(c.client.fetcher(), &urls, &job_id).await {
                let valid = Tally::of(&[a], &c.script_hash, &job_id, &result_hash, &verifiers);
                if valid != Tally::default()
                    && let Err(e) = c.store.put_attestation(&a, "received")
                {
                    tracing::error!(job = %hex::encode(job_id), error = %e, "cannot store an attestation");
                }
            }
            drop(guard);
        });
    }

    /// A submitted job: tallies the attestations stored so far, then claims,
    /// gives up or warns. Returns whether the job still waits for a quorum.
    fn watch(
        &self,
        ctx: &Arc<Ctx>,
        mut rec: JobRecord,
        escrow: EscrowUtxo,
        result_hash: [u8; 32],
        now: u64,
        claims: &mut Vec<(EscrowUtxo, Settlement)>,
    ) -> Result<bool, String> {
        let store = &ctx.store;
        let tally = tally_of(ctx, &rec, &result_hash)?;
        let threshold = rec.threshold as usize;
        let summary = format!(
            "{} accept, {} reject of {} needed",
            tally.accepts.len(),
            tally.rejects.len(),
            threshold
        );
        if rec.verdict.as_deref() != Some(summary.as_str()) {
            rec.verdict = Some(summary.clone());
            store.save(&rec).map_err(|e| e.to_string())?;
        }
        if now >= rec.settle_by {
            rec.stage = Stage::Expired;
            rec.failure = Some(format!("settle_by passed without a quorum ({summary})"));
            tracing::warn!(job = %rec.id_hex(), %summary, "settle deadline passed without a quorum: the requester can refund");
            return store.save(&rec).map_err(|e| e.to_string()).map(|()| false);
        }
        if let Some(attestations) = tally.claim(threshold) {
            claims.push((escrow, Settlement::Claim { attestations }));
            return Ok(false);
        }
        if tally.reject(threshold).is_some() {
            rec.stage = Stage::Rejected;
            rec.failure = Some(format!("the verifiers rejected the result ({summary})"));
            tracing::warn!(job = %rec.id_hex(), %summary, "result rejected by a quorum");
            return store.save(&rec).map_err(|e| e.to_string()).map(|()| false);
        }
        if !rec.settle_warned && now + self.cfg.settle_warning_secs * 1000 >= rec.settle_by {
            tracing::warn!(job = %rec.id_hex(), %summary, ms_left = rec.settle_by - now,
                "settle deadline near without a quorum");
            rec.settle_warned = true;
            store.save(&rec).map_err(|e| e.to_string())?;
        }
        Ok(true)
    }
}

/// Which recorded transaction [`Provider::resend_in_task`] sends again.
enum Resend {
    Submit,
    Claim,
}

impl Provider {
    /// Sends `rec`'s recorded Submit or claim again in a task of its own, the
    /// job in flight meanwhile (nothing, if it already is).
    fn resend_in_task(self: &Arc<Self>, ctx: &Arc<Ctx>, rec: JobRecord, what: Resend) {
        let Some(guard) = self.inflight.claim(rec.job_id) else {
            return;
        };
        let (this, c) = (self.clone(), ctx.clone());
        ctx.spawn(async move {
            match what {
                Resend::Submit => this.resend_submit(&c, rec).await,
                Resend::Claim => this.resend_claim(&c, rec).await,
            }
            drop(guard);
        });
    }
}

/// The valid attestations stored for `rec` over `result_hash`.
fn tally_of(ctx: &Ctx, rec: &JobRecord, result_hash: &[u8; 32]) -> Result<Tally, String> {
    let all = ctx
        .store
        .attestations(&rec.job_id)
        .map_err(|e| e.to_string())?;
    Ok(Tally::of(
        &all,
        &ctx.script_hash,
        &rec.job_id,
        result_hash,
        &rec.verifiers,
    ))
}

fn save(ctx: &Ctx, rec: &JobRecord) -> Result<(), Problem> {
    ctx.store
        .save(rec)
        .map_err(|e| Problem::Retry(e.to_string()))
}

fn describe_address(a: &protocol::Address, network: Network) -> String {
    a.to_shelley(network.address_network())
        .to_bech32()
        .unwrap_or_else(|_| format!("{a:?}"))
}
