//! The provider's inference: the price checked against its offer, the time
//! left before `submit_by` estimated, the job run on the blocking pool and its
//! bytes stored.

use std::sync::atomic::Ordering;
use std::time::Instant;

use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::client::JobSpecDoc;

use super::super::store::{JobRecord, Stage};
use super::super::{Ctx, Problem};
use super::{Provider, save};
use crate::InferenceError;

impl Provider {
    /// Refuses a job priced under what this provider's offer asks for its task.
    pub(super) fn check_price(&self, doc: &JobSpecDoc, price: u64) -> Result<(), Problem> {
        let task = doc
            .job
            .get("task")
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        let tokens = doc
            .job
            .get("max_new_tokens")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let offer = &self.cfg.offer;
        let asked = match task {
            "generate" => offer
                .generate_price
                .unwrap_or(self.cfg.price_floor)
                .saturating_add(offer.generate_price_per_token.saturating_mul(tokens)),
            _ => offer.embed_price.unwrap_or(self.cfg.price_floor),
        };
        if price < asked {
            return Err(Problem::Refuse(format!(
                "price {price} is under this provider's price {asked} for a {task} job"
            )));
        }
        Ok(())
    }

    /// Fetches and checks the spec (holding a download slot, not a compute slot),
    /// then waits for a compute slot, runs inference on the blocking pool and
    /// stores the bytes.
    pub(super) async fn compute(
        &self,
        ctx: &Ctx,
        mut rec: JobRecord,
        escrow: EscrowUtxo,
    ) -> Result<(), Problem> {
        let (doc, job) = ctx.spec(&escrow).await?;
        self.check_price(&doc, escrow.datum.price)?;
        let dir = ctx.model_dir(&doc)?;
        let inputs = doc
            .job
            .get("inputs")
            .and_then(|i| i.as_array())
            .map_or(1, Vec::len) as u64;
        let _slot = self.slots.compute().await;
        let estimate_ms = inputs * self.ms_per_input.load(Ordering::Relaxed) * 2
            + self.cfg.submit_margin_secs * 1000;
        let now = ctx
            .now_ms()
            .await
            .map_err(|e| Problem::Retry(e.to_string()))?;
        if now + estimate_ms >= rec.submit_by {
            return Err(Problem::Refuse(format!(
                "{inputs} inputs need about {estimate_ms} ms with the margin, but only {} ms are left before submit_by",
                rec.submit_by.saturating_sub(now)
            )));
        }
        rec.verifier_urls = rec
            .verifiers
            .iter()
            .filter_map(|k| doc.verifier_url(k).map(str::to_string))
            .collect();
        // Count the run before it starts, so a crash mid-inference shows in the state.
        rec.compute_runs += 1;
        save(ctx, &rec)?;
        tracing::info!(job = %rec.id_hex(), task = %job.task(), inputs, model = %dir.display(), "computing");
        let engine = ctx.engine.clone();
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || engine.compute(&job, &dir))
            .await
            .map_err(|e| Problem::Retry(format!("inference task failed: {e}")))?;
        let result = result.map_err(|e| match e {
            InferenceError::InvalidSpec { .. } | InferenceError::ModelHashMismatch { .. } => {
                Problem::Refuse(e.to_string())
            }
            other => Problem::Refuse(format!("inference failed: {other}")),
        })?;
        let elapsed = started.elapsed().as_millis() as u64;
        self.ms_per_input
            .store((elapsed / inputs.max(1)).max(1), Ordering::Relaxed);
        let hash = result.hash.0;
        let path = ctx
            .store
            .write_result(&hash, &result.bytes)
            .map_err(|e| Problem::Retry(e.to_string()))?;
        rec.result_hash = Some(hash);
        rec.result_path = Some(path.display().to_string());
        rec.result_url = Some(format!(
            "{}/results/{}",
            self.cfg.public_url.trim_end_matches('/'),
            hex::encode(hash)
        ));
        rec.stage = Stage::Computed;
        save(ctx, &rec)?;
        tracing::info!(job = %rec.id_hex(), result = %hex::encode(hash), ms = elapsed, "computed");
        Ok(())
    }
}
