//! The agent's offer on chain: published at start-up when it is missing or says
//! something else than the config, refreshed when a quarter of its lifetime is
//! left, and retried after a failure (an unfunded wallet, a busy chain) without
//! stopping the agent. `ntx agent offer --withdraw` takes it down.

use std::sync::Arc;
use std::time::Duration;

use ntx_offchain::market::{OFFER_VERSION, Offer, OfferRole, TaskOffer, VerifierPolicy};
use ntx_offchain::wallet::{Signer, Wallet};
use tokio::sync::Mutex as AsyncMutex;

use super::Ctx;
use super::config::OfferConfig;
use super::models::ModelIndex;

/// How long after a failed publication the agent tries again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The longest the agent goes without checking its offer is still on chain
/// (a rollback, a moved devnet clock, or a withdrawal by hand can remove it).
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// What an agent advertises, and with which wallet it pays for it.
pub(crate) struct OfferKeeper {
    /// Pays the deposit and fees; its key is the offer's key.
    pub wallet: Wallet,
    /// The offer as the config says (times filled in at publication).
    pub template: Offer,
    /// Each offer's lifetime.
    pub ttl_ms: u64,
    /// The wallet's transactions, one at a time (shared with the provider loop).
    pub writer: Arc<AsyncMutex<()>>,
}

/// The task entries for `models` at the config's prices; `default_price` when the
/// config gives none.
pub(crate) fn task_offers(
    models: &ModelIndex,
    cfg: &OfferConfig,
    default_price: u64,
) -> Vec<TaskOffer> {
    models
        .served()
        .iter()
        .map(|m| {
            let (price, per_token) = match m.task {
                "generate" => (
                    cfg.generate_price.unwrap_or(default_price),
                    cfg.generate_price_per_token,
                ),
                _ => (cfg.embed_price.unwrap_or(default_price), 0),
            };
            TaskOffer {
                task: m.task.into(),
                model: m.model.clone(),
                price,
                price_per_token: per_token,
            }
        })
        .collect()
}

impl OfferKeeper {
    /// A keeper for `role`, advertising `wallet`'s key at `url`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &Ctx,
        wallet: Wallet,
        role: OfferRole,
        url: &str,
        tasks: Vec<TaskOffer>,
        payout: Option<String>,
        policy: Option<VerifierPolicy>,
        cfg: &OfferConfig,
        writer: Arc<AsyncMutex<()>>,
    ) -> OfferKeeper {
        OfferKeeper {
            template: Offer {
                version: OFFER_VERSION,
                deployment: hex::encode(ctx.script_hash),
                role,
                key: hex::encode(wallet.public_key()),
                payout,
                url: url.trim_end_matches('/').to_string(),
                tasks,
                policy,
                issued_ms: 0,
                expires_ms: 0,
            },
            wallet,
            ttl_ms: cfg.ttl_secs * 1000,
            writer,
        }
    }

    /// Keeps the offer on chain until the agent is cancelled.
    pub async fn run(self: Arc<Self>, ctx: Arc<Ctx>) {
        if self.template.tasks.is_empty() {
            tracing::warn!("no model directory holds a complete model: no offer is published");
            return;
        }
        loop {
            let wait = match self.step(&ctx).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(role = %self.template.role, error = %e,
                        "cannot publish the offer; retrying in 30 s");
                    RETRY_AFTER
                }
            };
            tokio::select! {
                _ = ctx.cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Publishes when needed; returns how long until the next look.
    async fn step(&self, ctx: &Ctx) -> Result<Duration, String> {
        let now = ctx.now_ms().await.map_err(|e| e.to_string())?;
        let listing = ctx.client.market().await.map_err(|e| e.to_string())?;
        let key = self.wallet.public_key();
        let refresh_at = |o: &Offer| o.expires_ms.saturating_sub(self.ttl_ms / 4);
        if let Some(live) = listing.by_key(self.template.role, &key)
            && same_terms(&live.offer, &self.template)
            && now < refresh_at(&live.offer)
        {
            return Ok(Duration::from_millis(refresh_at(&live.offer) - now).min(LOOK_EVERY));
        }
        let offer = Offer {
            issued_ms: now,
            expires_ms: now + self.ttl_ms,
            ..self.template.clone()
        };
        let _one_at_a_time = self.writer.lock().await;
        let prepared = ctx
            .client
            .publish_offer(&self.wallet, offer.clone())
            .await
            .map_err(|e| e.to_string())?;
        ctx.client
            .send(&prepared, 1)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(role = %offer.role, tx = %hex::encode(prepared.tx_id()),
            expires_ms = offer.expires_ms, "offer published");
        Ok(Duration::from_millis(self.ttl_ms * 3 / 4).min(LOOK_EVERY))
    }
}

/// Whether two offers say the same apart from their times.
fn same_terms(a: &Offer, b: &Offer) -> bool {
    Offer {
        issued_ms: 0,
        expires_ms: 0,
        ..a.clone()
    } == Offer {
        issued_ms: 0,
        expires_ms: 0,
        ..b.clone()
    }
}
