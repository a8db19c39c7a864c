//! `ntx agent offer --config agent.toml [--withdraw]`: the offers of the agent's
//! keys on chain, or their withdrawal (the deposits come back to each key's
//! wallet). A running agent publishes its offer again: stop it first.

use std::path::PathBuf;

use ntx_node_agent::AgentConfig;
use ntx_offchain::client::EscrowClient;
use ntx_offchain::market::OfferRole;
use ntx_offchain::wallet::{Signer, Wallet};

use crate::cmd::common::{ChainArgs, CliError, block_on, usage};

/// Arguments of `ntx agent offer`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agent's TOML config file (its keys are the offers' keys).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Take the offers down (spend them back to each key's wallet).
    #[arg(long)]
    withdraw: bool,
}

/// Runs `ntx agent offer`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    let config = AgentConfig::load(args.config.as_deref()).map_err(|e| usage(e.to_string()))?;
    let network = config.chain.network;
    let mut keys = Vec::new();
    if let Some(p) = &config.provider {
        keys.push((OfferRole::Provider, p.agent_key_file.clone()));
    }
    if let Some(v) = &config.verifier {
        keys.push((OfferRole::Verifier, v.key_file.clone()));
    }
    let wallets = keys
        .into_iter()
        .map(|(role, path)| {
            Wallet::from_skey_files(network, &path, None)
                .map(|w| (role, w))
                .map_err(|e| usage(format!("{}: {e}", path.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut chain = chain.clone();
    chain.network = network;
    if chain.deployment.is_none() {
        chain.deployment = Some(config.deployment.clone());
    }
    if chain.provider_url.is_none() {
        chain.provider_url = config.chain.provider_url.clone();
    }
    block_on(async move {
        let client = chain.client().await?;
        let mut rows = Vec::new();
        for (role, wallet) in &wallets {
            rows.push(if args.withdraw {
                withdraw(&client, *role, wallet).await?
            } else {
                show(&client, *role, wallet).await?
            });
        }
        let text = rows
            .iter()
            .map(|r| r["text"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        chain.print(serde_json::Value::Array(rows), || text);
        Ok(())
    })
}

async fn show(
    client: &EscrowClient,
    role: OfferRole,
    wallet: &Wallet,
) -> Result<serde_json::Value, CliError> {
    let listing = client.market().await?;
    Ok(match listing.by_key(role, &wallet.public_key()) {
        Some(live) => serde_json::json!({
            "role": role.as_str(),
            "live": true,
            "utxo": format!("{}#{}", hex::encode(live.utxo.transaction_id), live.utxo.output_index),
            "offer": live.offer,
            "text": format!("{role}: live offer at {}, expires at {} ms", live.offer.url, live.offer.expires_ms),
        }),
        None => serde_json::json!({
            "role": role.as_str(),
            "live": false,
            "text": format!("{role}: no live offer for key {}", hex::encode(wallet.public_key())),
        }),
    })
}

async fn withdraw(
    client: &EscrowClient,
    role: OfferRole,
    wallet: &Wallet,
) -> Result<serde_json::Value, CliError> {
    let prepared = client.withdraw_offer(wallet).await?;
    client.send(&prepared, 1).await?;
    Ok(serde_json::json!({
        "role": role.as_str(),
        "withdrawn": true,
        "tx_id": hex::encode(prepared.tx_id()),
        "fee_lovelace": prepared.fee(),
        "text": format!("{role}: offer withdrawn in {} (stop the agent, or it publishes again)", hex::encode(prepared.tx_id())),
    }))
}
