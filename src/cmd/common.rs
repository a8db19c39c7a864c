//! What the chain-facing subcommands share: the network and provider flags,
//! the deployment file, the wallet, amounts and durations, transaction output
//! (`--dry-run`, `--out-file`), JSON or human output, and exit codes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ntx_offchain::Network;
use ntx_offchain::chain::{Blockfrost, ChainError, ChainProvider};
use ntx_offchain::client::{ClientError, DeploymentInfo, EscrowClient, Prepared};
use ntx_offchain::protocol::{Asset, NTX_DECIMALS};
use ntx_offchain::wallet::Wallet;

/// How a command failed: input the user can fix (exit code 2, nothing was
/// submitted) or a failure of the chain, the provider or the machine (exit 1).
#[derive(Debug)]
pub enum CliError {
    /// Bad input: one line saying what is wrong and what to do.
    Usage(String),
    /// Anything else.
    Failed(String),
    /// `ntx audit` checked everything and found broken rules (exit code 3, apart
    /// from "could not check", 1).
    Findings(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
            CliError::Findings(_) => 3,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) | CliError::Findings(m) => f.write_str(m),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        if e.is_user_error() {
            CliError::Usage(e.to_string())
        } else {
            CliError::Failed(e.to_string())
        }
    }
}

impl From<ChainError> for CliError {
    fn from(e: ChainError) -> Self {
        CliError::from(ClientError::from(e))
    }
}

/// Shorthand for a usage error.
pub fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// Which chain, through which provider, for which deployment.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// Network: mainnet, preprod, preview or devnet.
    #[arg(long, global = true, default_value = "devnet", env = "NTX_NETWORK")]
    pub network: Network,
    /// Blockfrost-compatible API root (default: blockfrost.io for public
    /// networks, with the project id in BLOCKFROST_PROJECT_ID; the local devnet
    /// at http://127.0.0.1:3000/api/v0).
    #[arg(long, global = true, env = "NTX_PROVIDER_URL")]
    pub provider_url: Option<String>,
    /// The deployment file `ntx deploy` wrote (default: .ntx/<network>/deployment.json).
    #[arg(long, global = true, env = "NTX_DEPLOYMENT")]
    pub deployment: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ChainArgs {
    /// The chain provider.
    pub fn chain(&self) -> Result<Arc<dyn ChainProvider>, CliError> {
        let provider = Blockfrost::for_network(self.network, self.provider_url.as_deref())
            .map_err(|e| usage(e.to_string()))?;
        Ok(Arc::new(provider))
    }

    /// Where the deployment file is.
    pub fn deployment_path(&self) -> PathBuf {
        self.deployment.clone().unwrap_or_else(|| {
            PathBuf::from(".ntx")
                .join(self.network.name())
                .join("deployment.json")
        })
    }

    /// The deployment file, checked against `--network`.
    pub fn deployment_info(&self) -> Result<DeploymentInfo, CliError> {
        let info = DeploymentInfo::load(&self.deployment_path())?;
        let network = info.network()?;
        if network != self.network {
            return Err(usage(format!(
                "the deployment file {} is for {network} but the command runs on {}: pass --network {network} or another --deployment",
                self.deployment_path().display(),
                self.network
            )));
        }
        Ok(info)
    }

    /// A client for the deployment.
    pub async fn client(&self) -> Result<EscrowClient, CliError> {
        let info = self.deployment_info()?;
        Ok(EscrowClient::connect(self.chain()?, &info).await?)
    }

    /// Prints `json` with `--json`, else `text`.
    pub fn print(&self, json: serde_json::Value, text: impl FnOnce() -> String) {
        use std::io::Write;
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = if self.json {
            writeln!(std::io::stdout(), "{json:#}")
        } else {
            writeln!(std::io::stdout(), "{}", text())
        };
    }
}

/// The wallet that signs and pays.
#[derive(Debug, Clone, clap::Args)]
pub struct WalletArgs {
    /// Signing key: a cardano-cli `.skey` file, or a file holding a bech32 key
    /// or a recovery phrase.
    #[arg(long, env = "NTX_WALLET")]
    pub wallet: Option<PathBuf>,
}

impl WalletArgs {
    /// Loads the wallet for `network`.
    pub fn load(&self, network: Network) -> Result<Wallet, CliError> {
        let path = self.wallet.as_ref().ok_or_else(|| {
            usage("no wallet: pass --wallet <file> (or set NTX_WALLET); make one with `ntx wallet new`")
        })?;
        load_wallet(path, network)
    }
}

/// A wallet from a key file (TextEnvelope, bech32 or recovery phrase).
pub fn load_wallet(path: &Path, network: Network) -> Result<Wallet, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read the wallet {}: {e}", path.display())))?;
    Wallet::from_secret_text(network, &text).map_err(|e| usage(format!("{}: {e}", path.display())))
}

/// `--dry-run` and `--out-file`: stop before submitting.
#[derive(Debug, Clone, clap::Args)]
pub struct TxArgs {
    /// Build the transaction unsigned (its fee sized for the witnesses), print
    /// its CBOR, fee and execution units, and submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the unsigned transaction as a cardano-cli envelope to this file
    /// (sign it with `ntx tx sign` or `cardano-cli conway transaction sign`,
    /// submit it with `ntx tx submit`) and submit nothing.
    #[arg(long)]
    pub out_file: Option<PathBuf>,
}

impl TxArgs {
    /// Whether to stop before submitting.
    pub fn holds_back(&self) -> bool {
        self.dry_run || self.out_file.is_some()
    }

    /// `client`, building unsigned transactions when nothing is to be submitted.
    pub fn client(&self, client: EscrowClient) -> EscrowClient {
        if self.holds_back() {
            client.unsigned()
        } else {
            client
        }
    }

    /// Submits `prepared` (waiting for one confirmation), or prints or writes
    /// it for a dry run. Returns the JSON that describes it.
    pub async fn finish(
        &self,
        client: &EscrowClient,
        prepared: &Prepared,
        what: &str,
    ) -> Result<serde_json::Value, CliError> {
        let units = prepared.ex_units();
        let mut json = serde_json::json!({
            "tx_id": hex::encode(prepared.tx_id()),
            "fee_lovelace": prepared.fee(),
            "size_bytes": prepared.cbor().len(),
            "ex_units": {"mem": units.mem, "steps": units.steps},
            "job_ids": prepared.job_ids.iter().map(hex::encode).collect::<Vec<_>>(),
        });
        // Sized for its witnesses with placeholders, which a signer replaces.
        let unsigned = || {
            ntx_offchain::tx::witness::without_placeholders(prepared.cbor())
                .map_err(|e| CliError::Failed(e.to_string()))
        };
        if let Some(path) = &self.out_file {
            let envelope = serde_json::json!({
                "type": "Unwitnessed Tx ConwayEra",
                "description": what,
                "cborHex": hex::encode(unsigned()?),
            });
            std::fs::write(path, format!("{envelope:#}\n"))
                .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
            json["out_file"] = path.display().to_string().into();
            json["submitted"] = false.into();
        } else if self.dry_run {
            json["cbor_hex"] = hex::encode(unsigned()?).into();
            json["submitted"] = false.into();
        } else {
            eprintln!("submitting {what} {} …", hex::encode(prepared.tx_id()));
            let confirmation = client.send(prepared, 1).await?;
            json["submitted"] = true.into();
            json["block_height"] = confirmation.block_height.into();
            json["slot"] = confirmation.slot.into();
        }
        Ok(json)
    }
}

/// Human text for a finished transaction's JSON.
pub fn describe_tx(what: &str, json: &serde_json::Value) -> String {
    let mut text = format!(
        "{what}: tx {}\n  fee {} ADA, {} bytes, {} mem / {} steps",
        json["tx_id"].as_str().unwrap_or("?"),
        ada(json["fee_lovelace"].as_u64().unwrap_or(0)),
        json["size_bytes"],
        json["ex_units"]["mem"],
        json["ex_units"]["steps"],
    );
    if let Some(h) = json["block_height"].as_u64() {
        text += &format!("\n  confirmed in block {h}");
    }
    if let Some(p) = json["out_file"].as_str() {
        text += &format!("\n  written to {p} (not submitted)");
    } else if let Some(c) = json["cbor_hex"].as_str() {
        text += &format!("\n  dry run, unsigned (not submitted); CBOR:\n  {c}");
    }
    text
}

/// Lovelace as ADA with 6 decimals.
pub fn ada(lovelace: u64) -> String {
    format!("{}.{:06}", lovelace / 1_000_000, lovelace % 1_000_000)
}

/// NTX units as NTX with 6 decimals.
pub fn ntx(units: u64) -> String {
    ada(units)
}

/// Parses an NTX amount with up to 6 decimals (`12.5`) into units; it must be above zero.
pub fn parse_ntx(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) {
        return Err(format!(
            "{s:?} is not an NTX amount: write a positive number with up to {NTX_DECIMALS} decimals, like 12.5"
        ));
    }
    if frac.len() > NTX_DECIMALS as usize {
        return Err(format!(
            "{s:?} has more than {NTX_DECIMALS} decimals: NTX's smallest unit is 0.000001"
        ));
    }
    let scale = 10u64.pow(NTX_DECIMALS);
    let frac_units = format!("{frac:0<6}").parse::<u64>().unwrap_or(0);
    let units = whole
        .parse::<u64>()
        .ok()
        .and_then(|w| w.checked_mul(scale))
        .and_then(|w| w.checked_add(frac_units))
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if units == 0 {
        return Err("the price must be above zero".into());
    }
    Ok(units)
}

/// Parses a duration such as `90s`, `30m`, `1h30m`, `2d` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration: write e.g. 90s, 30m, 1h30m or 2d");
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// `<policy>.<name>` or `<policy><name>` in hex.
pub fn parse_asset(s: &str) -> Result<Asset, CliError> {
    let s = s.trim();
    let (policy, name) = match s.split_once('.') {
        Some((p, n)) => (p, n),
        None if s.len() >= 56 && s.is_char_boundary(56) => s.split_at(56),
        None => (s, ""),
    };
    let bad = || {
        usage(format!(
            "{s:?} is not a settlement asset: write <policy id hex>.<asset name hex>, e.g. edfd7a1d77bcb8b884c474bdc92a16002d1fb720e454fa6e99344479.4e5458"
        ))
    };
    let policy = hex::decode(policy)
        .ok()
        .and_then(|p| <[u8; 28]>::try_from(p).ok())
        .ok_or_else(bad)?;
    let name = hex::decode(name)
        .ok()
        .filter(|n| n.len() <= 32)
        .ok_or_else(bad)?;
    Ok(Asset { policy, name })
}

/// Parses a 32-byte job id in hex.
pub fn parse_job_id(s: &str) -> Result<[u8; 32], CliError> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            usage(format!(
                "{s:?} is not a job id: a job id is 64 hex characters (see `ntx job list`)"
            ))
        })
}

/// Runs `f` on a fresh multi-threaded runtime.
pub fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::runtime::Runtime::new()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?
        .block_on(f)
}

/// Ctrl-C, or SIGTERM (what service managers send) on Unix.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntx_amounts_have_six_decimals_and_must_be_positive() {
        assert_eq!(parse_ntx("12.5"), Ok(12_500_000));
        assert_eq!(parse_ntx("1"), Ok(1_000_000));
        assert_eq!(parse_ntx("0.000001"), Ok(1));
        assert!(parse_ntx("0").is_err());
        assert!(parse_ntx("0.0").is_err());
        assert!(parse_ntx("-1").is_err());
        assert!(parse_ntx("1.0000001").is_err());
        assert!(parse_ntx("abc").is_err());
        assert!(parse_ntx(".5").is_err());
        assert!(parse_ntx("99999999999999999999").is_err());
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("30m"), Ok(1_800_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("2d"), Ok(172_800_000));
        for bad in ["", "30", "m", "1x", "0s", "-5m"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settlement_assets_read_with_or_without_a_dot() {
        let unit = "edfd7a1d77bcb8b884c474bdc92a16002d1fb720e454fa6e99344479";
        let dotted = parse_asset(&format!("{unit}.4e5458")).expect("dotted");
        let joined = parse_asset(&format!("{unit}4e5458")).expect("joined");
        assert_eq!(dotted, joined);
        assert_eq!(dotted, Asset::mainnet_ntx());
        assert!(matches!(parse_asset("zz.00"), Err(CliError::Usage(_))));
        assert!(matches!(parse_asset("abcd"), Err(CliError::Usage(_))));
    }

    #[test]
    fn job_ids_are_64_hex_characters() {
        assert!(parse_job_id(&"ab".repeat(32)).is_ok());
        assert!(matches!(parse_job_id("abc"), Err(CliError::Usage(_))));
    }
}
