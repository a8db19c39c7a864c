//! `ntx devnet up|fund|advance`: serve the embedded devnet over HTTP on
//! loopback, and use its admin API (faucet, time travel) from the command line.

use std::path::PathBuf;

use clap::Subcommand;
use miette::{IntoDiagnostic, WrapErr};
use ntx_offchain::Network;
use ntx_offchain::chain::Blockfrost;
use ntx_offchain::wallet::PaymentAddress;
use tokio_util::sync::CancellationToken;

use super::common::{ChainArgs, CliError, block_on, parse_duration_ms, parse_ntx, usage};

/// Arguments of `ntx devnet`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start (or resume) a devnet and serve its Blockfrost-compatible API until Ctrl-C.
    Up {
        /// Loopback port (0 picks a free one).
        #[arg(long, default_value_t = 3000, env = "NTX_DEVNET_PORT")]
        port: u16,
        /// Where the chain is kept; an existing directory is resumed.
        #[arg(long, default_value = ".devnet", env = "NTX_DEVNET_DATA_DIR")]
        data_dir: PathBuf,
        /// Slot length in milliseconds (new chains only).
        #[arg(long, default_value_t = 1000)]
        slot_length_ms: u64,
        /// Genesis file (new chains only); the default funds a few accounts.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Make a block at least every N slots even when nothing waits, as a
        /// real chain does (mainnet averages one per 20 slots), so
        /// confirmations grow on an idle chain; 0: blocks only for pending
        /// transactions.
        #[arg(long, default_value_t = 20, value_name = "N")]
        block_every_slots: u64,
    },
    /// Pay ADA and devnet NTX from the faucet to an address (confirmed at once).
    Fund {
        /// The address (bech32).
        address: String,
        /// ADA to send.
        #[arg(long, default_value = "100")]
        ada: u64,
        /// NTX to send (6 decimals).
        #[arg(long, default_value = "0")]
        ntx: String,
    },
    /// Move the devnet's clock forward (time travel) and produce a block.
    Advance {
        /// How far: e.g. 90s, 30m, 2h.
        by: String,
    },
}

/// Runs `ntx devnet`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    match args.command {
        Command::Up {
            port,
            data_dir,
            slot_length_ms,
            genesis,
            block_every_slots,
        } => up(port, data_dir, slot_length_ms, genesis, block_every_slots)
            .map_err(|e| CliError::Failed(format!("{e:?}"))),
        Command::Fund { address, ada, ntx } => {
            let units = if ntx == "0" {
                0
            } else {
                parse_ntx(&ntx).map_err(usage)?
            };
            PaymentAddress::parse(&address, chain.network).map_err(|e| usage(e.to_string()))?;
            let body =
                serde_json::json!({"address": address, "lovelace": ada * 1_000_000, "ntx": units});
            let answer = block_on(async {
                let answer = admin_post(chain, "fund", body).await?;
                // The faucet's payment waits in the mempool: put it in a block now.
                admin_post(chain, "block", serde_json::json!({})).await?;
                Ok(answer)
            })?;
            chain.print(answer.clone(), || {
                format!(
                    "funded {address}: {ada} ADA, {} NTX (tx {})",
                    super::common::ntx(units),
                    answer["tx_hash"].as_str().unwrap_or("?")
                )
            });
            Ok(())
        }
        Command::Advance { by } => {
            let ms = parse_duration_ms(&by).map_err(usage)?;
            block_on(async {
                let status = admin_get(chain, "status").await?;
                let slot_ms = status["slot_length_ms"].as_u64().unwrap_or(1000).max(1);
                let slots = ms.div_ceil(slot_ms);
                admin_post(chain, "advance", serde_json::json!({"slots": slots})).await?;
                let block = admin_post(chain, "block", serde_json::json!({})).await?;
                chain.print(block.clone(), || {
                    format!("advanced {slots} slots; tip now at slot {}", block["slot"])
                });
                Ok(())
            })
        }
    }
}

fn admin_url(chain: &ChainArgs, path: &str) -> Result<String, CliError> {
    if chain.network != Network::Devnet {
        return Err(usage(format!(
            "{} has no admin API: this needs --network devnet",
            chain.network
        )));
    }
    let base = chain
        .provider_url
        .as_deref()
        .unwrap_or(Blockfrost::DEVNET_URL);
    let root = base.trim_end_matches('/').trim_end_matches("/api/v0");
    Ok(format!("{root}/devnet/{path}"))
}

async fn admin_answer(
    r: Result<reqwest::Response, reqwest::Error>,
    url: &str,
) -> Result<serde_json::Value, CliError> {
    let r = r.map_err(|e| {
        CliError::Failed(format!(
            "the devnet at {url} is unreachable: {e} (start it with `ntx devnet up`)"
        ))
    })?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    if status.is_client_error() {
        return Err(usage(format!(
            "the devnet refused it: {}",
            body["message"].as_str().unwrap_or("?")
        )));
    }
    if !status.is_success() {
        return Err(CliError::Failed(format!(
            "the devnet answered HTTP {status}: {body}"
        )));
    }
    Ok(body)
}

/// GET on the devnet's admin API (`/devnet/{path}`).
pub async fn admin_get(chain: &ChainArgs, path: &str) -> Result<serde_json::Value, CliError> {
    let url = admin_url(chain, path)?;
    admin_answer(reqwest::Client::new().get(&url).send().await, &url).await
}

/// POST on the devnet's admin API.
pub async fn admin_post(
    chain: &ChainArgs,
    path: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, CliError> {
    let url = admin_url(chain, path)?;
    admin_answer(
        reqwest::Client::new().post(&url).json(&body).send().await,
        &url,
    )
    .await
}

fn up(
    port: u16,
    data_dir: PathBuf,
    slot_length_ms: u64,
    genesis: Option<PathBuf>,
    block_every_slots: u64,
) -> miette::Result<()> {
    let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("stopping the devnet…");
            on_signal.cancel();
        });
        let config = ntx_devnet::ServeConfig {
            port,
            data_dir: data_dir.clone(),
            slot_length_ms,
            genesis,
            block_every_slots,
        };
        ntx_devnet::serve(config, cancel, |addr, devnet| {
            println!(
                "devnet serving http://{addr}/api/v0 (network magic {})",
                devnet.network_magic()
            );
            println!("chain and keys in {}", data_dir.display());
        })
        .await
        .into_diagnostic()
        .wrap_err("the devnet stopped with an error")
    })
}
