//! The deployment file: which escrow a command talks to, on which network.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ClientError;
use crate::Network;
use crate::protocol::{Asset, OutputReference};

/// What [`crate::client::EscrowClient::deploy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// The deployment, to save and share.
    pub info: DeploymentInfo,
    /// Whether this deployment registered the escrow's stake credential; `false`
    /// when someone had registered it already (anyone may, for the deposit), so
    /// the registration was left out and no deposit paid.
    pub registered_stake: bool,
}

/// One escrow deployment, as `ntx deploy` writes it and every other command
/// reads it (JSON):
///
/// ```json
/// {"network": "devnet", "settlement_policy": "<hex 28>", "settlement_name": "4e5458",
///  "script_hash": "<hex 28>", "script_ref": "<tx id hex>#0"}
/// ```
/// The script follows from the settlement asset (the blueprint's parameter);
/// `script_hash` is kept to catch a file used with another build's blueprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentInfo {
    /// The network it lives on (`mainnet`, `preprod`, `preview`, `devnet`).
    pub network: String,
    /// The settlement asset's policy id, hex.
    pub settlement_policy: String,
    /// The settlement asset's name, hex.
    pub settlement_name: String,
    /// The escrow script's hash, hex.
    pub script_hash: String,
    /// The UTxO carrying the script for reference: `<tx id hex>#<index>`.
    pub script_ref: String,
}

impl DeploymentInfo {
    /// The file's contents for a deployment.
    pub fn new(
        network: Network,
        settlement: &Asset,
        script_hash: &[u8; 28],
        script_ref: &OutputReference,
    ) -> DeploymentInfo {
        DeploymentInfo {
            network: network.name().to_string(),
            settlement_policy: hex::encode(settlement.policy),
            settlement_name: hex::encode(&settlement.name),
            script_hash: hex::encode(script_hash),
            script_ref: format!(
                "{}#{}",
                hex::encode(script_ref.transaction_id),
                script_ref.output_index
            ),
        }
    }

    /// Reads a deployment file.
    pub fn load(path: &Path) -> Result<DeploymentInfo, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ClientError::Deployment(format!(
                "cannot read {}: {e}: run `ntx deploy` first, or pass --deployment",
                path.display()
            ))
        })?;
        let info: DeploymentInfo = serde_json::from_str(&text).map_err(|e| {
            ClientError::Deployment(format!("{} is not a deployment file: {e}", path.display()))
        })?;
        info.network()?;
        info.settlement()?;
        info.script_ref()?;
        Ok(info)
    }

    /// Writes the file (pretty JSON), creating its folder.
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let io = |source| ClientError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| ClientError::Deployment(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(io)
    }

    /// The network.
    pub fn network(&self) -> Result<Network, ClientError> {
        self.network
            .parse()
            .map_err(|e: crate::UnknownNetwork| ClientError::Deployment(e.to_string()))
    }

    /// The settlement asset.
    pub fn settlement(&self) -> Result<Asset, ClientError> {
        let policy = hex::decode(&self.settlement_policy)
            .ok()
            .and_then(|p| <[u8; 28]>::try_from(p).ok())
            .ok_or_else(|| {
                ClientError::Deployment("settlement_policy is not 28 bytes of hex".into())
            })?;
        let name = hex::decode(&self.settlement_name)
            .ok()
            .filter(|n| n.len() <= 32)
            .ok_or_else(|| {
                ClientError::Deployment("settlement_name is not at most 32 bytes of hex".into())
            })?;
        Ok(Asset { policy, name })
    }

    /// The reference-script UTxO.
    pub fn script_ref(&self) -> Result<OutputReference, ClientError> {
        parse_output_reference(&self.script_ref)
            .map_err(|e| ClientError::Deployment(format!("script_ref: {e}")))
    }
}

/// Reads `<tx id hex>#<index>`.
pub fn parse_output_reference(s: &str) -> Result<OutputReference, String> {
    let (tx, ix) = s
        .split_once('#')
        .ok_or_else(|| format!("{s:?} is not of the form <tx id>#<index>"))?;
    let transaction_id = hex::decode(tx)
        .ok()
        .and_then(|t| <[u8; 32]>::try_from(t).ok())
        .ok_or_else(|| format!("{tx:?} is not a 32-byte transaction id in hex"))?;
    let output_index = ix
        .parse()
        .map_err(|_| format!("{ix:?} is not an output index"))?;
    Ok(OutputReference {
        transaction_id,
        output_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_files_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/deployment.json");
        let asset = Asset::mainnet_ntx();
        let r = OutputReference {
            transaction_id: [3; 32],
            output_index: 1,
        };
        let info = DeploymentInfo::new(Network::Preprod, &asset, &[4; 28], &r);
        info.save(&path).expect("saves");
        let back = DeploymentInfo::load(&path).expect("loads");
        assert_eq!(back, info);
        assert_eq!(back.settlement().expect("asset"), asset);
        assert_eq!(back.script_ref().expect("ref"), r);
        assert_eq!(back.network().expect("network"), Network::Preprod);
    }

    #[test]
    fn bad_files_say_what_to_do() {
        let e =
            DeploymentInfo::load(Path::new("/nonexistent/deployment.json")).expect_err("missing");
        assert!(e.to_string().contains("ntx deploy"));
        assert!(parse_output_reference("abc#0").is_err());
        assert!(parse_output_reference(&format!("{}#x", "00".repeat(32))).is_err());
    }
}
