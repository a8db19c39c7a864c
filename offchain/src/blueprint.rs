//! The compiled escrow validator, from the CIP-57 blueprint `contracts/plutus.json`.
//!
//! The blueprint holds the validator before its parameter is applied. Applying the
//! settlement asset (NTX on mainnet, a devnet NTX elsewhere) gives the script whose
//! hash is at once the escrow's payment credential, the job tokens' policy id and
//! the stake credential whose `withdraw` handler settles batches.

use pallas_addresses::{
    ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart, StakeAddress, StakePayload,
};
use pallas_crypto::hash::Hash;
use serde::Deserialize;

use crate::network::Network;
use crate::protocol::{Asset, ToPlutusData, blake2b_224, data};

/// The blueprint built from this checkout's contracts (CI checks it is current).
const EMBEDDED: &str = include_str!("../../contracts/plutus.json");

/// The validator's title in the blueprint (any of its handlers: they share one script).
const ESCROW_TITLE: &str = "escrow.escrow.spend";

/// A blueprint that cannot give the escrow script.
#[derive(Debug, thiserror::Error)]
pub enum BlueprintError {
    /// The file is not a CIP-57 blueprint.
    #[error("the blueprint is not valid CIP-57 JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The validator is missing.
    #[error(
        "the blueprint has no validator `{ESCROW_TITLE}`: rebuild it with `aiken build` in contracts/"
    )]
    MissingValidator,
    /// The compiled code is not hex or not a Plutus program.
    #[error("the blueprint's compiled code is not a Plutus program: {0}")]
    BadCode(String),
    /// The blueprint was compiled for another Plutus version.
    #[error("the blueprint targets {0}; the escrow must be compiled for Plutus v3")]
    WrongPlutusVersion(String),
}

#[derive(Deserialize)]
struct Raw {
    preamble: Preamble,
    validators: Vec<RawValidator>,
}

#[derive(Deserialize)]
struct Preamble {
    #[serde(rename = "plutusVersion")]
    plutus_version: String,
}

#[derive(Deserialize)]
struct RawValidator {
    title: String,
    #[serde(rename = "compiledCode")]
    compiled_code: String,
}

/// The escrow validator before its parameter is applied.
#[derive(Debug, Clone)]
pub struct Blueprint {
    unapplied: Vec<u8>,
}

impl Blueprint {
    /// The blueprint compiled into this build (`contracts/plutus.json`).
    pub fn embedded() -> Self {
        // The embedded file is checked by this crate's tests and by CI.
        Self::from_json(EMBEDDED).unwrap_or_else(|e| panic!("contracts/plutus.json: {e}"))
    }

    /// Reads a blueprint's JSON.
    pub fn from_json(json: &str) -> Result<Self, BlueprintError> {
        let raw: Raw = serde_json::from_str(json)?;
        if raw.preamble.plutus_version != "v3" {
            return Err(BlueprintError::WrongPlutusVersion(
                raw.preamble.plutus_version,
            ));
        }
        let validator = raw
            .validators
            .into_iter()
            .find(|v| v.title == ESCROW_TITLE)
            .ok_or(BlueprintError::MissingValidator)?;
        let unapplied = hex::decode(validator.compiled_code)
            .map_err(|e| BlueprintError::BadCode(e.to_string()))?;
        Ok(Blueprint { unapplied })
    }

    /// The escrow script for one settlement asset.
    pub fn escrow(&self, settlement: &Asset) -> Result<EscrowScript, BlueprintError> {
        let params = data::encode(&data::list(vec![settlement.to_plutus_data()]));
        let cbor = uplc::tx::apply_params_to_script(&params, &self.unapplied)
            .map_err(|e| BlueprintError::BadCode(e.to_string()))?;
        Ok(EscrowScript::from_cbor(cbor, settlement.clone()))
    }
}

/// The escrow validator for one settlement asset: one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowScript {
    cbor: Vec<u8>,
    hash: [u8; 28],
    settlement: Asset,
}

impl EscrowScript {
    fn from_cbor(cbor: Vec<u8>, settlement: Asset) -> Self {
        let mut tagged = Vec::with_capacity(cbor.len() + 1);
        tagged.push(0x03); // Plutus V3's language tag.
        tagged.extend_from_slice(&cbor);
        let hash = blake2b_224(&tagged);
        EscrowScript {
            cbor,
            hash,
            settlement,
        }
    }

    /// The script as transactions carry it (CBOR-wrapped flat program).
    pub fn cbor(&self) -> &[u8] {
        &self.cbor
    }

    /// The script's size in bytes, as the reference-script fee counts it.
    pub fn size(&self) -> usize {
        self.cbor.len()
    }

    /// The script hash: the escrow's payment and stake credential.
    pub fn hash(&self) -> [u8; 28] {
        self.hash
    }

    /// The job tokens' policy id (the script hash).
    pub fn policy_id(&self) -> [u8; 28] {
        self.hash
    }

    /// The settlement asset this deployment pays in.
    pub fn settlement(&self) -> &Asset {
        &self.settlement
    }

    /// The escrow address on `network`: the script as payment credential and no
    /// stake credential (the deposits are not staked, so no rewards ever accrue to
    /// an account that settlements could sweep).
    pub fn address(&self, network: Network) -> ShelleyAddress {
        ShelleyAddress::new(
            network.address_network(),
            ShelleyPaymentPart::Script(Hash::new(self.hash)),
            ShelleyDelegationPart::Null,
        )
    }

    /// The reward account whose zero withdrawal runs the `withdraw` handler.
    pub fn stake_address(&self, network: Network) -> StakeAddress {
        StakeAddress::new(
            network.address_network(),
            StakePayload::Script(Hash::new(self.hash)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_blueprint_gives_one_script_per_settlement_asset() {
        let blueprint = Blueprint::embedded();
        let mainnet = blueprint.escrow(&Asset::mainnet_ntx()).expect("applies");
        let other = blueprint
            .escrow(&Asset {
                policy: [7; 28],
                name: b"NTX".to_vec(),
            })
            .expect("applies");
        assert_ne!(mainnet.hash(), other.hash());
        assert_eq!(mainnet.policy_id(), mainnet.hash());
        assert!(
            mainnet
                .address(Network::Mainnet)
                .to_bech32()
                .expect("bech32")
                .starts_with("addr1w")
        );
        assert!(
            mainnet
                .address(Network::Devnet)
                .to_bech32()
                .expect("bech32")
                .starts_with("addr_test1w")
        );
    }

    #[test]
    fn a_blueprint_for_another_plutus_version_is_refused() {
        let json = EMBEDDED.replacen("\"plutusVersion\": \"v3\"", "\"plutusVersion\": \"v2\"", 1);
        assert!(matches!(
            Blueprint::from_json(&json),
            Err(BlueprintError::WrongPlutusVersion(_))
        ));
    }
}
