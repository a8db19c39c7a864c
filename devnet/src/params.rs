//! Protocol parameters: a bundled snapshot of mainnet's Conway parameters in
//! Blockfrost's `/epochs/latest/parameters` shape, overridable from the genesis file.

use std::collections::BTreeMap;

use pallas_codec::minicbor;
use pallas_primitives::{
    RationalNumber,
    alonzo::ExUnitPrices,
    conway::{CostModels, DRepVotingThresholds, PoolVotingThresholds},
};
use pallas_validate::utils::{ConwayProtParams, MultiEraProtocolParameters};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The bundled snapshot: mainnet, protocol version 10.0 (Plomin), with the real
/// Plutus V1 (166), V2 (175) and V3 (297 entries) cost models.
pub const MAINNET_PARAMS_JSON: &str = include_str!("../params/mainnet-conway-pv10.json");

/// Why a parameter set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The JSON does not have Blockfrost's `/epochs/latest/parameters` shape.
    #[error(
        "protocol parameters are not in Blockfrost's /epochs/latest/parameters shape: {0}; fix the genesis file's \"protocol_params\" overrides"
    )]
    Shape(#[from] serde_json::Error),
    /// A number field could not be read.
    #[error("protocol parameter {field} = {value:?} is not a valid number")]
    Number {
        /// The JSON field.
        field: &'static str,
        /// Its text.
        value: String,
    },
    /// A cost model is missing.
    #[error("protocol parameters lack the {0} cost model (cost_models_raw.{0})")]
    MissingCostModel(&'static str),
}

/// Protocol parameters, as Blockfrost returns them (numbers that Blockfrost
/// writes as strings are strings here too).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProtocolParams {
    /// Every field of the JSON, kept verbatim so `/epochs/latest/parameters`
    /// returns exactly what was loaded.
    #[serde(flatten)]
    pub raw: serde_json::Map<String, Json>,
}

fn as_u64(raw: &serde_json::Map<String, Json>, field: &'static str) -> Result<u64, ParamsError> {
    let v = raw.get(field).ok_or(ParamsError::Number {
        field,
        value: "missing".into(),
    })?;
    let parsed = match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| ParamsError::Number {
        field,
        value: v.to_string(),
    })
}

fn as_f64(raw: &serde_json::Map<String, Json>, field: &'static str) -> Result<f64, ParamsError> {
    let v = raw.get(field).ok_or(ParamsError::Number {
        field,
        value: "missing".into(),
    })?;
    let parsed = match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| ParamsError::Number {
        field,
        value: v.to_string(),
    })
}

/// A decimal price such as `0.0577` as an exact fraction (`577/10000`).
fn decimal_to_rational(x: f64) -> RationalNumber {
    // Prices are published with at most 7 significant decimals; scale to 10^10.
    let denominator: u64 = 10_000_000_000;
    let numerator = (x * denominator as f64).round() as u64;
    let g = gcd(numerator, denominator);
    RationalNumber {
        numerator: numerator / g,
        denominator: denominator / g,
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// The parameters the devnet's rules read, as plain numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Fee per transaction byte (`min_fee_a`).
    pub min_fee_a: u64,
    /// Fixed fee (`min_fee_b`).
    pub min_fee_b: u64,
    /// Maximum transaction size in bytes.
    pub max_tx_size: u64,
    /// Maximum block body size in bytes.
    pub max_block_size: u64,
    /// Maximum serialized size of an output's value, in bytes.
    pub max_val_size: u64,
    /// Stake key deposit.
    pub key_deposit: u64,
    /// Pool deposit.
    pub pool_deposit: u64,
    /// Lovelace per byte of UTxO.
    pub coins_per_utxo_byte: u64,
    /// Price of a memory unit.
    pub price_mem: RationalNumber,
    /// Price of a CPU step.
    pub price_step: RationalNumber,
    /// Per-transaction execution limit (mem).
    pub max_tx_ex_mem: u64,
    /// Per-transaction execution limit (steps).
    pub max_tx_ex_steps: u64,
    /// Per-block execution limit (mem).
    pub max_block_ex_mem: u64,
    /// Per-block execution limit (steps).
    pub max_block_ex_steps: u64,
    /// Collateral as a percentage of the fee.
    pub collateral_percent: u64,
    /// Maximum number of collateral inputs.
    pub max_collateral_inputs: u64,
    /// Base price of a reference-script byte (lovelace), before tiering.
    pub min_fee_ref_script_cost_per_byte: u64,
    /// Protocol major version.
    pub protocol_major: u64,
    /// Protocol minor version.
    pub protocol_minor: u64,
    /// Plutus V1 cost model.
    pub cost_model_v1: Vec<i64>,
    /// Plutus V2 cost model.
    pub cost_model_v2: Vec<i64>,
    /// Plutus V3 cost model.
    pub cost_model_v3: Vec<i64>,
}

impl ProtocolParams {
    /// The bundled mainnet snapshot.
    pub fn mainnet() -> Self {
        // The bundled file is tested to parse (see tests); a failure here is a build defect.
        #[allow(clippy::expect_used)]
        serde_json::from_str(MAINNET_PARAMS_JSON).expect("bundled parameters parse")
    }

    /// The bundled snapshot with `overrides` (a JSON object of Blockfrost
    /// fields) laid over it, field by field.
    pub fn with_overrides(overrides: &serde_json::Map<String, Json>) -> Result<Self, ParamsError> {
        let mut p = Self::mainnet();
        for (k, v) in overrides {
            p.raw.insert(k.clone(), v.clone());
        }
        p.parsed()?;
        Ok(p)
    }

    /// The numbers the rules use.
    pub fn parsed(&self) -> Result<Params, ParamsError> {
        let r = &self.raw;
        let raw_models = r.get("cost_models_raw").cloned().unwrap_or(Json::Null);
        let model = |name: &'static str| -> Result<Vec<i64>, ParamsError> {
            let v = raw_models
                .get(name)
                .ok_or(ParamsError::MissingCostModel(name))?;
            Ok(serde_json::from_value(v.clone())?)
        };
        Ok(Params {
            min_fee_a: as_u64(r, "min_fee_a")?,
            min_fee_b: as_u64(r, "min_fee_b")?,
            max_tx_size: as_u64(r, "max_tx_size")?,
            max_block_size: as_u64(r, "max_block_size")?,
            max_val_size: as_u64(r, "max_val_size")?,
            key_deposit: as_u64(r, "key_deposit")?,
            pool_deposit: as_u64(r, "pool_deposit")?,
            coins_per_utxo_byte: as_u64(r, "coins_per_utxo_size")?,
            price_mem: decimal_to_rational(as_f64(r, "price_mem")?),
            price_step: decimal_to_rational(as_f64(r, "price_step")?),
            max_tx_ex_mem: as_u64(r, "max_tx_ex_mem")?,
            max_tx_ex_steps: as_u64(r, "max_tx_ex_steps")?,
            max_block_ex_mem: as_u64(r, "max_block_ex_mem")?,
            max_block_ex_steps: as_u64(r, "max_block_ex_steps")?,
            collateral_percent: as_u64(r, "collateral_percent")?,
            max_collateral_inputs: as_u64(r, "max_collateral_inputs")?,
            min_fee_ref_script_cost_per_byte: as_u64(r, "min_fee_ref_script_cost_per_byte")?,
            protocol_major: as_u64(r, "protocol_major_ver")?,
            protocol_minor: as_u64(r, "protocol_minor_ver")?,
            cost_model_v1: model("PlutusV1")?,
            cost_model_v2: model("PlutusV2")?,
            cost_model_v3: model("PlutusV3")?,
        })
    }

    /// The JSON Blockfrost serves at `/epochs/latest/parameters`, for `epoch`,
    /// with `cost_models` (named) derived from `cost_models_raw`.
    pub fn to_blockfrost_json(&self, epoch: u64) -> Json {
        let mut m = self.raw.clone();
        m.insert("epoch".into(), Json::from(epoch));
        // The OpenAPI schema names this one `pvtpp_security_group`; Blockfrost
        // serves both spellings.
        if let Some(v) = m.get("pvt_p_p_security_group").cloned() {
            m.entry("pvtpp_security_group").or_insert(v);
        }
        if let Some(Json::Object(raw)) = self.raw.get("cost_models_raw") {
            let mut named = serde_json::Map::new();
            for (lang, values) in raw {
                let names = cost_model_names(lang);
                let mut obj = serde_json::Map::new();
                if let Json::Array(vals) = values {
                    for (i, v) in vals.iter().enumerate() {
                        let key = names.get(i).cloned().unwrap_or_else(|| format!("{i:03}"));
                        obj.insert(key, v.clone());
                    }
                }
                named.insert(lang.clone(), Json::Object(obj));
            }
            m.insert("cost_models".into(), Json::Object(named));
        }
        Json::Object(m)
    }
}

/// Blockfrost's names of a language's cost-model entries, in ledger order
/// (taken from uplc's parameter tables: `AddInteger_cpu_arguments_intercept`
/// becomes `addInteger-cpu-arguments-intercept`).
fn cost_model_names(lang: &str) -> Vec<String> {
    use uplc::machine::cost_model::ParamName;
    let names: Vec<ParamName> = match lang {
        "PlutusV1" => ParamName::V1.to_vec(),
        "PlutusV2" => ParamName::V2.to_vec(),
        "PlutusV3" => ParamName::V3.to_vec(),
        _ => Vec::new(),
    };
    names
        .into_iter()
        .map(|n| {
            let s = format!("{n:?}").replace('_', "-");
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        })
        .collect()
}

impl Params {
    /// Conway `CostModels` as CBOR, as uplc's raw API wants them.
    pub fn cost_models_cbor(&self) -> Vec<u8> {
        let models = self.cost_models();
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail.
        let _ = minicbor::encode(&models, &mut buf);
        buf
    }

    /// Conway `CostModels`.
    pub fn cost_models(&self) -> CostModels {
        CostModels {
            plutus_v1: Some(self.cost_model_v1.clone()),
            plutus_v2: Some(self.cost_model_v2.clone()),
            plutus_v3: Some(self.cost_model_v3.clone()),
            unknown: BTreeMap::new(),
        }
    }

    /// pallas-validate's Conway parameter set.
    pub fn to_pallas(
        &self,
        system_start_ms: u64,
        slot_length_ms: u64,
    ) -> MultiEraProtocolParameters {
        let half = RationalNumber {
            numerator: 1,
            denominator: 2,
        };
        let system_start = chrono_from_ms(system_start_ms);
        MultiEraProtocolParameters::Conway(ConwayProtParams {
            system_start,
            epoch_length: crate::genesis::EPOCH_LENGTH,
            slot_length: slot_length_ms.div_ceil(1000).max(1),
            minfee_a: self.min_fee_a as u32,
            minfee_b: self.min_fee_b as u32,
            max_block_body_size: self.max_block_size as u32,
            max_transaction_size: self.max_tx_size as u32,
            max_block_header_size: 1100,
            key_deposit: self.key_deposit,
            pool_deposit: self.pool_deposit,
            desired_number_of_stake_pools: 500,
            protocol_version: (self.protocol_major, self.protocol_minor),
            min_pool_cost: 170_000_000,
            ada_per_utxo_byte: self.coins_per_utxo_byte,
            cost_models_for_script_languages: self.cost_models(),
            execution_costs: ExUnitPrices {
                mem_price: self.price_mem.clone(),
                step_price: self.price_step.clone(),
            },
            max_tx_ex_units: pallas_primitives::ExUnits {
                mem: self.max_tx_ex_mem,
                steps: self.max_tx_ex_steps,
            },
            max_block_ex_units: pallas_primitives::ExUnits {
                mem: self.max_block_ex_mem,
                steps: self.max_block_ex_steps,
            },
            max_value_size: self.max_val_size as u32,
            collateral_percentage: self.collateral_percent as u32,
            max_collateral_inputs: self.max_collateral_inputs as u32,
            expansion_rate: RationalNumber {
                numerator: 3,
                denominator: 1000,
            },
            treasury_growth_rate: RationalNumber {
                numerator: 1,
                denominator: 5,
            },
            maximum_epoch: 18,
            pool_pledge_influence: RationalNumber {
                numerator: 3,
                denominator: 10,
            },
            pool_voting_thresholds: PoolVotingThresholds {
                motion_no_confidence: half.clone(),
                committee_normal: half.clone(),
                committee_no_confidence: half.clone(),
                hard_fork_initiation: half.clone(),
                security_voting_threshold: half.clone(),
            },
            drep_voting_thresholds: DRepVotingThresholds {
                motion_no_confidence: half.clone(),
                committee_normal: half.clone(),
                committee_no_confidence: half.clone(),
                update_constitution: half.clone(),
                hard_fork_initiation: half.clone(),
                pp_network_group: half.clone(),
                pp_economic_group: half.clone(),
                pp_technical_group: half.clone(),
                pp_governance_group: half.clone(),
                treasury_withdrawal: half,
            },
            min_committee_size: 7,
            committee_term_limit: 146,
            governance_action_validity_period: 6,
            governance_action_deposit: 100_000_000_000,
            drep_deposit: 500_000_000,
            drep_inactivity_period: 20,
            minfee_refscript_cost_per_byte: RationalNumber {
                numerator: self.min_fee_ref_script_cost_per_byte,
                denominator: 1,
            },
        })
    }
}

fn chrono_from_ms(ms: u64) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .fixed_offset()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_snapshot_parses_with_mainnet_values() {
        let p = ProtocolParams::mainnet().parsed().expect("parses");
        assert_eq!(p.min_fee_a, 44);
        assert_eq!(p.min_fee_b, 155_381);
        assert_eq!(p.max_tx_ex_mem, 16_500_000);
        assert_eq!(p.max_tx_ex_steps, 10_000_000_000);
        assert_eq!(p.cost_model_v1.len(), 166);
        assert_eq!(p.cost_model_v2.len(), 175);
        assert_eq!(p.cost_model_v3.len(), 297);
        assert_eq!(p.protocol_major, 10);
        assert_eq!(
            p.price_mem,
            RationalNumber {
                numerator: 577,
                denominator: 10_000
            }
        );
        assert_eq!(
            p.price_step,
            RationalNumber {
                numerator: 721,
                denominator: 10_000_000
            }
        );
    }

    #[test]
    fn named_cost_models_use_blockfrost_names() {
        let j = ProtocolParams::mainnet().to_blockfrost_json(3);
        let v3 = &j["cost_models"]["PlutusV3"];
        assert_eq!(v3["addInteger-cpu-arguments-intercept"], 100_788);
        assert_eq!(v3.as_object().map(|o| o.len()), Some(297));
        assert_eq!(j["epoch"], 3);
    }
}
