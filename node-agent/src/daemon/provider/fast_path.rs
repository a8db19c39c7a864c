//! The provider's fast path (protocol v1.1): a computed result is announced to
//! the job's verifiers at once ([`super::super::announce`]), and if a quorum of
//! them accepts it within `fast_path_secs`, the job is claimed straight from
//! the lock with a `FastClaim` — no Submit. Without a quorum by then (or
//! `submit_margin_secs` before `submit_by`) the result is submitted as before,
//! so a slow quorum never exposes the provider to a no-show refund; the
//! verifiers' attestations count the same on either path.

use std::sync::Arc;

use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::fetch::FetchKind;
use ntx_offchain::protocol::Settlement;

use super::super::Ctx;
use super::super::announce::SignedResult;
use super::super::store::{JobRecord, Stage};
use super::Provider;

/// How soon a waiting job's announcement is first sent again (a verifier that
/// had not yet seen the lock answered 404) and its attestations asked for; the
/// gap then doubles, up to [`MAX_ASK_GAP_MS`], so that hundreds of jobs waiting
/// at once do not become a storm of requests to the verifiers.
const FIRST_ASK_GAP_MS: u64 = 1_000;

/// The longest gap between two asks for one waiting job.
const MAX_ASK_GAP_MS: u64 = 16_000;

/// A job waiting on the fast path (chain time, ms).
#[derive(Debug, Clone, Copy)]
pub(super) struct Waiting {
    /// When it was first announced.
    since: u64,
    /// When it is next announced and asked.
    next_ask: u64,
    /// The gap after that.
    gap: u64,
}

impl Provider {
    /// One step of a computed, still-locked job on the fast path. Returns
    /// whether the job stays on it (announced and waiting, claimed, or
    /// rejected); `false` means: submit it now.
    pub(super) fn fast_path(
        &self,
        ctx: &Arc<Ctx>,
        rec: &mut JobRecord,
        escrow: &EscrowUtxo,
        now: u64,
        claims: &mut Vec<(EscrowUtxo, Settlement)>,
    ) -> Result<bool, String> {
        let (Some(result_hash), Some(url)) = (rec.result_hash, rec.result_url.clone()) else {
            return Ok(false);
        };
        let margin = self.cfg.submit_margin_secs * 1000;
        if self.cfg.fast_path_secs == 0
            || rec.verifier_urls.is_empty()
            || now + margin >= rec.submit_by
        {
            self.forget_announcement(&rec.job_id);
            return Ok(false);
        }
        let (started, ask) = {
            let mut announced = self.announced.lock().unwrap_or_else(|p| p.into_inner());
            let w = announced.entry(rec.job_id).or_insert(Waiting {
                since: now,
                next_ask: now,
                gap: FIRST_ASK_GAP_MS,
            });
            let ask = now >= w.next_ask;
            if ask {
                w.next_ask = now + w.gap;
                w.gap = (w.gap * 2).min(MAX_ASK_GAP_MS);
            }
            (w.since, ask)
        };
        if ask {
            // Verifiers take the same announcement again (it is idempotent).
            self.announce(ctx, rec, result_hash, url);
        }
        let tally = super::tally_of(ctx, rec, &result_hash)?;
        let threshold = rec.threshold as usize;
        if let Some(attestations) = tally.claim(threshold) {
            tracing::info!(job = %rec.id_hex(), "quorum off chain: claiming on the fast path");
            claims.push((
                escrow.clone(),
                Settlement::FastClaim {
                    result_hash,
                    attestations,
                },
            ));
            return Ok(true);
        }
        if tally.reject(threshold).is_some() {
            rec.stage = Stage::Rejected;
            rec.failure = Some("the verifiers rejected the announced result".into());
            tracing::warn!(job = %rec.id_hex(), "announced result rejected by a quorum");
            self.forget_announcement(&rec.job_id);
            ctx.store.save(rec).map_err(|e| e.to_string())?;
            return Ok(true);
        }
        if now >= started + self.cfg.fast_path_secs * 1000 {
            tracing::info!(job = %rec.id_hex(), "no quorum on the fast path: submitting");
            self.forget_announcement(&rec.job_id);
            return Ok(false);
        }
        if ask {
            self.collect(
                ctx,
                rec.job_id,
                rec.verifier_urls.clone(),
                result_hash,
                rec.verifiers.clone(),
            );
        }
        Ok(true)
    }

    /// Pushes the signed announcement to every verifier URL of the job, each in
    /// a task of its own (its own budget and the fetcher's address policy).
    fn announce(&self, ctx: &Arc<Ctx>, rec: &JobRecord, result_hash: [u8; 32], url: String) {
        let signed =
            SignedResult::sign(&self.wallet, ctx.script_hash, rec.job_id, result_hash, url);
        for base in &rec.verifier_urls {
            let target = format!("{}/results", base.trim_end_matches('/'));
            let (c, signed, job) = (ctx.clone(), signed.clone(), rec.id_hex());
            ctx.spawn(async move {
                match c
                    .client
                    .fetcher()
                    .post_json(&target, &signed, FetchKind::Attestations)
                    .await
                {
                    Ok((status, _)) if (200..300).contains(&status) => {
                        tracing::info!(%job, verifier = %target, "result announced");
                    }
                    Ok((status, body)) => {
                        let body = String::from_utf8_lossy(&body);
                        tracing::info!(%job, verifier = %target, %status, %body,
                            "announcement not taken: that verifier will judge the Submit");
                    }
                    Err(e) => {
                        tracing::info!(%job, verifier = %target, error = %e, "cannot announce");
                    }
                }
            });
        }
    }

    pub(super) fn forget_announcement(&self, job_id: &[u8; 32]) {
        self.announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(job_id);
    }
}
