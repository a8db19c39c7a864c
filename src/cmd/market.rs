//! `ntx market list`: the deployment's live provider and verifier offers, read
//! from the chain (one query of the registry stake address), each with whether
//! its agent answers `/health` right now.

use std::time::Duration;

use clap::Subcommand;
use ntx_offchain::market::{LiveOffer, OfferRole, model_has};

use super::common::{ChainArgs, CliError, block_on, ntx, parse_ntx, usage};
use super::job::TaskKind;

/// How long an agent has to answer `/health`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Arguments of `ntx market`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the live offers.
    List {
        /// Only offers serving this task.
        #[arg(long, value_enum)]
        task: Option<TaskKind>,
        /// Only offers with a model one of whose file hashes is this (hex).
        #[arg(long, value_name = "HASH")]
        model: Option<String>,
        /// Only providers asking at most this, in NTX per job (the base price).
        #[arg(long, value_name = "NTX")]
        max_price: Option<String>,
    },
}

/// Runs `ntx market`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    match args.command {
        Command::List {
            task,
            model,
            max_price,
        } => {
            let max_price = max_price
                .as_deref()
                .map(|p| parse_ntx(p).map_err(|e| usage(format!("--max-price: {e}"))))
                .transpose()?;
            block_on(list(chain, task, model, max_price))
        }
    }
}

/// Whether the agent at `base` answers `GET {base}/health` with a success
/// within [`HEALTH_TIMEOUT`] (redirects are not followed).
pub async fn answers_health(base: &str) -> bool {
    let Ok(http) = reqwest::Client::builder()
        .timeout(HEALTH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    else {
        return false;
    };
    let url = format!("{}/health", base.trim_end_matches('/'));
    matches!(http.get(url).send().await, Ok(r) if r.status().is_success())
}

async fn list(
    chain: &ChainArgs,
    task: Option<TaskKind>,
    model: Option<String>,
    max_price: Option<u64>,
) -> Result<(), CliError> {
    let client = chain.client().await?;
    let listing = client.market().await?;
    let task = task.map(|t| t.to_string());
    let shown: Vec<&LiveOffer> = listing
        .offers
        .iter()
        .filter(|o| {
            o.offer.tasks.iter().any(|t| {
                task.as_deref().is_none_or(|want| t.task == want)
                    && model.as_deref().is_none_or(|m| model_has(&t.model, m))
                    && (o.offer.role == OfferRole::Verifier
                        || max_price.is_none_or(|max| t.price <= max))
            })
        })
        .collect();
    let health = health_of(shown.iter().map(|o| o.offer.url.clone()).collect()).await;
    let rows: Vec<serde_json::Value> = shown
        .iter()
        .zip(&health)
        .map(|(o, healthy)| {
            serde_json::json!({
                "role": o.offer.role.as_str(),
                "key": o.offer.key,
                "payout": o.offer.payout,
                "url": o.offer.url,
                "healthy": healthy,
                "tasks": o.offer.tasks,
                "policy": o.offer.policy,
                "issued_ms": o.offer.issued_ms,
                "expires_ms": o.offer.expires_ms,
                "utxo": format!("{}#{}", hex::encode(o.utxo.transaction_id), o.utxo.output_index),
            })
        })
        .collect();
    let json = serde_json::json!({
        "offers": rows,
        "ignored_utxos": listing.ignored.len(),
    });
    chain.print(json, || {
        if shown.is_empty() {
            return "no live offers match".to_string();
        }
        let mut text = String::new();
        for (o, healthy) in shown.iter().zip(&health) {
            text += &format!(
                "{:<8} {}  {}  {}\n",
                o.offer.role.as_str(),
                &o.offer.key[..16.min(o.offer.key.len())],
                o.offer.url,
                if *healthy { "up" } else { "not answering" }
            );
            for t in &o.offer.tasks {
                let price = match (o.offer.role, t.price_per_token) {
                    (OfferRole::Verifier, _) => String::new(),
                    (_, 0) => format!("  {} NTX", ntx(t.price)),
                    (_, per) => format!("  {} NTX + {} per token", ntx(t.price), ntx(per)),
                };
                text += &format!(
                    "         {:<9} model {}{price}\n",
                    t.task,
                    model_text(&t.model)
                );
            }
        }
        text.trim_end().to_string()
    });
    Ok(())
}

/// A model value in one line: its first hash, shortened.
fn model_text(model: &serde_json::Value) -> String {
    let text = match model {
        serde_json::Value::String(s) => s.clone(),
        other => other
            .as_object()
            .and_then(|m| m.values().find_map(|v| v.as_str().map(str::to_string)))
            .unwrap_or_else(|| other.to_string()),
    };
    text.chars().take(16).collect::<String>() + "…"
}

/// Asks every URL's `/health` at once, keeping their order.
async fn health_of(urls: Vec<String>) -> Vec<bool> {
    let asks: Vec<_> = urls
        .into_iter()
        .map(|url| tokio::spawn(async move { answers_health(&url).await }))
        .collect();
    let mut out = Vec::with_capacity(asks.len());
    for ask in asks {
        out.push(ask.await.unwrap_or(false));
    }
    out
}
