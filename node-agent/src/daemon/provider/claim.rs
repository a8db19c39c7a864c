//! The provider's claims: queued while the wallet is busy and sent together,
//! recorded before they are sent, and sent again as recorded.

use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::chain::ChainError;
use ntx_offchain::client::{ClientError, ResultUrls};
use ntx_offchain::protocol::Settlement;

use super::super::Ctx;
use super::super::store::{JobRecord, Role, Stage};
use super::Provider;

impl Provider {
    /// Once the wallet is free, claims every job queued by then in as few
    /// transactions as fit. A task that finds the queue empty (an earlier one took
    /// its jobs along) does nothing.
    pub(super) async fn claim_queued(&self, ctx: &Ctx) {
        let _writer = self.writer.lock().await;
        let queued =
            std::mem::take(&mut *self.queued_claims.lock().unwrap_or_else(|p| p.into_inner()));
        if queued.is_empty() {
            return;
        }
        let (items, guards): (Vec<_>, Vec<_>) = queued
            .into_iter()
            .map(|(escrow, settlement, guard)| ((escrow, settlement), guard))
            .unzip();
        self.claim(ctx, items).await;
        drop(guards);
    }

    /// Claims every job in `items` in as few transactions as fit (the caller holds
    /// the wallet).
    pub(super) async fn claim(&self, ctx: &Ctx, mut items: Vec<(EscrowUtxo, Settlement)>) {
        // Fast-path claims record where their result is served.
        let urls: ResultUrls = items
            .iter()
            .filter(|(_, s)| s.fast_result_hash().is_some())
            .filter_map(|(e, _)| {
                let rec = ctx.store.job(&e.datum.job_id, Role::Provider).ok()??;
                Some((e.datum.job_id, rec.result_url?))
            })
            .collect();
        while !items.is_empty() {
            let settled = ctx
                .client
                .settle_with_results(&self.wallet, items, &urls)
                .await;
            let (prepared, rest) = match settled {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot build the claim; will retry");
                    return;
                }
            };
            let tx = prepared.tx_id();
            let mut recs = Vec::new();
            for id in &prepared.job_ids {
                if let Ok(Some(mut rec)) = ctx.store.job(id, Role::Provider) {
                    rec.stage = Stage::Claiming;
                    rec.claim_tx = Some(tx);
                    rec.claim_cbor = Some(prepared.cbor().to_vec());
                    if let Err(e) = ctx.store.save(&rec) {
                        tracing::error!(error = %e, "cannot record the claim: not sending it");
                        return;
                    }
                    recs.push(rec);
                }
            }
            tracing::info!(tx = %hex::encode(tx), jobs = recs.len(), "claiming");
            match ctx.client.send(&prepared, 1).await {
                Ok(_) => {
                    for mut rec in recs {
                        rec.stage = Stage::Paid;
                        rec.claim_cbor = None;
                        rec.submit_cbor = None;
                        if let Err(e) = ctx.store.save(&rec) {
                            tracing::error!(error = %e, "cannot record the payment");
                        }
                        tracing::info!(job = %rec.id_hex(), tx = %hex::encode(tx), price = rec.price, "paid");
                    }
                }
                Err(e) => {
                    tracing::warn!(tx = %hex::encode(tx), error = %e, "claim not confirmed yet; will check the chain");
                    return;
                }
            }
            items = rest;
        }
    }

    /// Sends a recorded claim again; if it cannot land, the job goes back to
    /// collecting (on the path it was claimed on).
    pub(super) async fn resend_claim(&self, ctx: &Ctx, mut rec: JobRecord) {
        let collecting = if rec.submit_tx.is_some() {
            Stage::Submitted
        } else {
            Stage::Computed
        };
        let Some(cbor) = rec.claim_cbor.clone() else {
            rec.stage = collecting;
            let _ = ctx.store.save(&rec);
            return;
        };
        let _writer = self.writer.lock().await;
        match self.resend(ctx, &cbor).await {
            Ok(()) => tracing::info!(job = %rec.id_hex(), "recorded claim re-sent"),
            Err(ClientError::Chain(ChainError::Rejected { reason, .. })) => {
                tracing::warn!(job = %rec.id_hex(), %reason, "recorded claim can no longer land; claiming again");
                rec.stage = collecting;
                rec.claim_tx = None;
                rec.claim_cbor = None;
                let _ = ctx.store.save(&rec);
            }
            Err(e) => {
                tracing::warn!(job = %rec.id_hex(), error = %e, "cannot re-send the claim; will retry");
                self.retry_after.wait(rec.job_id, ctx.poll);
            }
        }
    }
}
