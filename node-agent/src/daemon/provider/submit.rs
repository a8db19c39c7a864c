//! The provider's Submit: built, signed and recorded before it is sent, and
//! sent again as recorded until it lands or can no longer.

use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::chain::ChainError;
use ntx_offchain::client::ClientError;
use ntx_offchain::protocol::JobState;

use super::super::store::{JobRecord, Stage};
use super::super::{Ctx, Problem};
use super::{GIVE_UP, Provider};

impl Provider {
    /// Builds the Submit, records it, then sends it.
    pub(super) async fn submit(&self, ctx: &Ctx, mut rec: JobRecord, escrow: EscrowUtxo) {
        let (Some(hash), Some(url)) = (rec.result_hash, rec.result_url.clone()) else {
            super::super::record_problem(
                ctx,
                &self.retry_after,
                &GIVE_UP,
                rec.job_id,
                Problem::Refuse("computed without a result".into()),
            );
            return;
        };
        let _writer = self.writer.lock().await;
        let prepared = match ctx.client.submit(&self.wallet, &escrow, hash, &url).await {
            Ok(p) => p,
            Err(e) => {
                let hint = match &e {
                    ClientError::InsufficientFunds(_) => format!(
                        " (send ADA to the agent wallet {})",
                        self.wallet.address().to_bech32()
                    ),
                    _ => String::new(),
                };
                tracing::warn!(job = %rec.id_hex(), error = %e, "cannot build the Submit{hint}; will retry");
                self.retry_after.wait(rec.job_id, ctx.poll);
                return;
            }
        };
        rec.stage = Stage::Submitting;
        rec.submit_tx = Some(prepared.tx_id());
        rec.submit_cbor = Some(prepared.cbor().to_vec());
        if let Err(e) = ctx.store.save(&rec) {
            tracing::error!(job = %rec.id_hex(), error = %e, "cannot record the Submit: not sending it");
            return;
        }
        tracing::info!(job = %rec.id_hex(), tx = %hex::encode(prepared.tx_id()), "submitting");
        match ctx.client.send(&prepared, 1).await {
            Ok(_) => {
                rec.stage = Stage::Submitted;
                if let Err(e) = ctx.store.save(&rec) {
                    tracing::error!(error = %e, "cannot record the confirmed Submit");
                }
                tracing::info!(job = %rec.id_hex(), "submitted");
            }
            Err(e) => {
                tracing::warn!(job = %rec.id_hex(), error = %e, "Submit not confirmed yet; will check the chain");
            }
        }
    }

    /// Sends the recorded Submit again; if the ledger refuses it (its inputs are gone
    /// or it expired) and the escrow is still locked, the next poll builds a new one.
    pub(super) async fn resend_submit(&self, ctx: &Ctx, mut rec: JobRecord) {
        let Some(cbor) = rec.submit_cbor.clone() else {
            rec.stage = Stage::Computed;
            let _ = ctx.store.save(&rec);
            return;
        };
        let _writer = self.writer.lock().await;
        match self.resend(ctx, &cbor).await {
            Ok(()) => {
                // The next poll sees the escrow submitted and records it.
                tracing::info!(job = %rec.id_hex(), "recorded Submit re-sent");
            }
            Err(ClientError::Chain(ChainError::Rejected { reason, .. })) => {
                tracing::warn!(job = %rec.id_hex(), %reason, "recorded Submit can no longer land; building a new one");
                if let Ok(escrow) = ctx.client.escrow(&rec.job_id).await
                    && escrow.datum.state == JobState::Locked
                {
                    rec.stage = Stage::Computed;
                    rec.submit_tx = None;
                    rec.submit_cbor = None;
                    let _ = ctx.store.save(&rec);
                }
            }
            Err(e) => {
                tracing::warn!(job = %rec.id_hex(), error = %e, "cannot re-send the Submit; will retry");
                self.retry_after.wait(rec.job_id, ctx.poll);
            }
        }
    }

    /// Sends recorded signed bytes again ([`ntx_offchain::client::EscrowClient::resend`]: a refusal is an
    /// answer only once the transaction is not found pending or on chain either).
    pub(super) async fn resend(&self, ctx: &Ctx, cbor: &[u8]) -> Result<(), ClientError> {
        ctx.client.resend(cbor, 1).await.map(|_| ())
    }
}
