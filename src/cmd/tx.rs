//! `ntx tx sign|submit`: the offline signing round trip on cardano-cli
//! transaction envelopes. A transaction written with `--out-file` (e.g. a
//! Cancel that the requester and the agent sign on two machines) is signed
//! here, or with `cardano-cli conway transaction sign`, and submitted here, or
//! with `cardano-cli conway transaction submit`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ntx_offchain::chain::AwaitOptions;
use ntx_offchain::tx::witness;
use ntx_offchain::wallet::{Signer, Wallet};

use super::common::{ChainArgs, CliError, block_on, load_wallet, usage};

/// Arguments of `ntx tx`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Add key witnesses to a transaction envelope (placeholders are dropped).
    Sign {
        /// The transaction envelope to sign.
        #[arg(long, value_name = "FILE")]
        tx_file: PathBuf,
        /// A key to sign with (cardano-cli `.skey`, bech32 or recovery phrase);
        /// repeat for several.
        #[arg(long, value_name = "FILE", required = true)]
        signing_key_file: Vec<PathBuf>,
        /// Where to write the signed envelope.
        #[arg(long, value_name = "FILE")]
        out_file: PathBuf,
    },
    /// Submit a signed transaction envelope and wait for one confirmation.
    Submit {
        /// The signed transaction envelope.
        #[arg(long, value_name = "FILE")]
        tx_file: PathBuf,
    },
}

/// The envelope types read (cardano-cli writes the first two, `ntx --out-file`
/// the third).
const TX_TYPES: [&str; 3] = [
    "Witnessed Tx ConwayEra",
    "Tx ConwayEra",
    "Unwitnessed Tx ConwayEra",
];

/// Runs `ntx tx`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    match args.command {
        Command::Sign {
            tx_file,
            signing_key_file,
            out_file,
        } => sign(chain, &tx_file, &signing_key_file, &out_file),
        Command::Submit { tx_file } => block_on(submit(chain, &tx_file)),
    }
}

/// The transaction bytes and description of a cardano-cli envelope.
fn read_envelope(path: &Path) -> Result<(Vec<u8>, String), CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{} is not a JSON envelope: {e}", path.display())))?;
    let kind = json["type"].as_str().unwrap_or_default();
    if !TX_TYPES.contains(&kind) {
        return Err(usage(format!(
            "{} holds a {kind:?}, not a Conway transaction envelope (one of {TX_TYPES:?})",
            path.display()
        )));
    }
    let cbor = json["cborHex"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| usage(format!("{}: cborHex is missing or not hex", path.display())))?;
    let description = json["description"].as_str().unwrap_or_default().to_string();
    Ok((cbor, description))
}

fn sign(
    chain: &ChainArgs,
    tx_file: &Path,
    keys: &[PathBuf],
    out_file: &Path,
) -> Result<(), CliError> {
    let (cbor, description) = read_envelope(tx_file)?;
    let wallets: Vec<Wallet> = keys
        .iter()
        .map(|k| load_wallet(k, chain.network))
        .collect::<Result<_, _>>()?;
    let signers: Vec<&dyn Signer> = wallets.iter().map(|w| w as &dyn Signer).collect();
    let (signed, id) =
        witness::add_signatures(&cbor, &signers).map_err(|e| usage(e.to_string()))?;
    let envelope = serde_json::json!({
        "type": TX_TYPES[0],
        "description": description,
        "cborHex": hex::encode(&signed),
    });
    std::fs::write(out_file, format!("{envelope:#}\n"))
        .map_err(|e| CliError::Failed(format!("{}: {e}", out_file.display())))?;
    let json = serde_json::json!({
        "tx_id": hex::encode(id),
        "signed_by": wallets.iter().map(|w| hex::encode(w.key_hash())).collect::<Vec<_>>(),
        "out_file": out_file.display().to_string(),
    });
    chain.print(json, || {
        format!(
            "signed tx {} with {} key(s)\n  written to {}",
            hex::encode(id),
            wallets.len(),
            out_file.display()
        )
    });
    Ok(())
}

async fn submit(chain: &ChainArgs, tx_file: &Path) -> Result<(), CliError> {
    let (cbor, description) = read_envelope(tx_file)?;
    let provider = chain.chain()?;
    eprintln!("submitting {description} …");
    let id = provider
        .submit(&cbor)
        .await
        .map_err(ntx_offchain::client::ClientError::from)?;
    let confirmation = provider
        .await_tx(&id, &AwaitOptions::new(1, Duration::from_secs(300)))
        .await
        .map_err(ntx_offchain::client::ClientError::from)?;
    let json = serde_json::json!({
        "tx_id": hex::encode(id),
        "submitted": true,
        "block_height": confirmation.block_height,
        "slot": confirmation.slot,
    });
    chain.print(json, || {
        format!(
            "submitted tx {}\n  confirmed in block {}",
            hex::encode(id),
            confirmation.block_height
        )
    });
    Ok(())
}
