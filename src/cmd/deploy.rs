//! `ntx deploy`: publish the escrow as a reference script and register its
//! stake credential, once per network; writes the deployment file.

use ntx_offchain::Network;
use ntx_offchain::client::{DeploymentInfo, EscrowClient};
use ntx_offchain::protocol::Asset;

use super::common::{ChainArgs, CliError, WalletArgs, block_on, parse_asset, usage};
use super::devnet::admin_get;

/// Arguments of `ntx deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    wallet: WalletArgs,
    /// The settlement asset, `<policy id hex>.<asset name hex>` (default: NTX
    /// on mainnet, the devnet's NTX on the devnet).
    #[arg(long)]
    settlement: Option<String>,
    /// Replace an existing deployment file.
    #[arg(long)]
    force: bool,
}

/// Runs `ntx deploy`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    block_on(deploy(args, chain))
}

async fn deploy(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    let path = chain.deployment_path();
    if path.exists() && !args.force {
        return Err(usage(format!(
            "{} exists: this network already has a deployment (pass --force to deploy again, or --deployment <new file>)",
            path.display()
        )));
    }
    let settlement = match (&args.settlement, chain.network) {
        (Some(s), _) => parse_asset(s)?,
        (None, Network::Mainnet) => Asset::mainnet_ntx(),
        (None, Network::Devnet) => {
            let status = admin_get(chain, "status").await?;
            let unit = status["ntx_unit"]
                .as_str()
                .ok_or_else(|| CliError::Failed("the devnet's status has no ntx_unit".into()))?;
            parse_asset(unit)?
        }
        (None, n) => {
            return Err(usage(format!(
                "{n} has no default settlement asset: pass --settlement <policy id hex>.<asset name hex>"
            )));
        }
    };
    let wallet = args.wallet.load(chain.network)?;
    eprintln!(
        "deploying the escrow for {} on {} …",
        settlement.unit(),
        chain.network
    );
    let deployed =
        EscrowClient::deploy(chain.chain()?, chain.network, &settlement, &wallet).await?;
    let info: DeploymentInfo = deployed.info;
    info.save(&path)?;
    let mut json = serde_json::to_value(&info).unwrap_or_default();
    json["registered_stake"] = deployed.registered_stake.into();
    chain.print(json, || {
        let stake = if deployed.registered_stake {
            "  stake credential registered"
        } else {
            "  stake credential was registered already (by someone else): left as it is"
        };
        format!(
            "deployed: script {}\n  reference script at {}\n{stake}\n  written to {}",
            info.script_hash,
            info.script_ref,
            path.display()
        )
    });
    Ok(())
}
