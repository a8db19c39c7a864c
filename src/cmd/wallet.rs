//! `ntx wallet new|address|balance`: keys, their address, and what they hold.

use std::path::PathBuf;

use clap::Subcommand;
use ntx_offchain::wallet::{KeyRole, PaymentAddress, SigningKey};

use super::common::{ChainArgs, CliError, WalletArgs, ada, block_on, load_wallet, ntx, usage};

/// Arguments of `ntx wallet`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make a new payment key pair (cardano-cli TextEnvelope files).
    New {
        /// Where to write the signing key; the verification key goes next to it (`.vkey`).
        #[arg(long, default_value = "wallet.skey")]
        out: PathBuf,
    },
    /// Print a wallet's address on --network.
    Address {
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Print what an address (or a wallet's address) holds.
    Balance {
        #[command(flatten)]
        wallet: WalletArgs,
        /// An address to look at instead of a wallet's.
        #[arg(long)]
        address: Option<String>,
    },
}

/// Runs `ntx wallet`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    match args.command {
        Command::New { out } => {
            let vkey = out.with_extension("vkey");
            let key = SigningKey::generate().map_err(|e| CliError::Failed(e.to_string()))?;
            key.write_key_pair(&out, &vkey, KeyRole::Payment)
                .map_err(|e| usage(e.to_string()))?;
            let wallet = load_wallet(&out, chain.network)?;
            let address = wallet.address().to_bech32();
            chain.print(
                serde_json::json!({
                    "skey": out.display().to_string(),
                    "vkey": vkey.display().to_string(),
                    "address": address,
                    "key_hash": hex::encode(wallet.key_hash()),
                    "public_key": hex::encode(wallet.verification_key().to_bytes()),
                }),
                || {
                    format!(
                        "wrote {} and {}\naddress ({}): {address}\nkey hash: {}",
                        out.display(),
                        vkey.display(),
                        chain.network,
                        hex::encode(wallet.key_hash())
                    )
                },
            );
            Ok(())
        }
        Command::Address { wallet } => {
            let wallet = wallet.load(chain.network)?;
            let address = wallet.address().to_bech32();
            chain.print(
                serde_json::json!({
                    "network": chain.network.name(),
                    "address": address,
                    "key_hash": hex::encode(wallet.key_hash()),
                    "public_key": hex::encode(wallet.verification_key().to_bytes()),
                }),
                || address.clone(),
            );
            Ok(())
        }
        Command::Balance { wallet, address } => {
            let address = match address {
                Some(a) => {
                    PaymentAddress::parse(&a, chain.network).map_err(|e| usage(format!("{e}")))?
                }
                None => wallet.load(chain.network)?.address(),
            };
            block_on(balance(chain, address))
        }
    }
}

async fn balance(chain: &ChainArgs, address: PaymentAddress) -> Result<(), CliError> {
    let provider = chain.chain()?;
    let pallas = pallas_addresses::Address::Shelley(address.as_pallas().clone());
    let utxos = provider.utxos_at(&pallas).await?;
    let settlement = chain
        .deployment_info()
        .ok()
        .and_then(|i| i.settlement().ok());
    let lovelace: u64 = utxos.iter().map(|u| u.output.value.lovelace).sum();
    let units: u64 = settlement.as_ref().map_or(0, |s| {
        utxos
            .iter()
            .map(|u| u.output.value.quantity_of(&s.policy, &s.name))
            .sum()
    });
    chain.print(
        serde_json::json!({
            "address": address.to_bech32(),
            "lovelace": lovelace,
            "ntx_units": units,
            "utxos": utxos.len(),
        }),
        || {
            let mut text = format!(
                "{}\n  {} ADA in {} UTxO(s)",
                address.to_bech32(),
                ada(lovelace),
                utxos.len()
            );
            if settlement.is_some() {
                text += &format!("\n  {} NTX", ntx(units));
            } else {
                text += "\n  (NTX unknown: no deployment file; run `ntx deploy` first)";
            }
            text
        },
    );
    Ok(())
}
