//! Protocol parameters, read from Blockfrost's `/epochs/latest/parameters`
//! and turned into this crate's [`FeeParams`] and [`Evaluator`].

use pallas_codec::minicbor;
use serde_json::Value as Json;

use crate::evaluate::{Evaluator, ExUnits, SlotConfig};
use crate::tx::{FeeParams, Ratio, gcd};

/// Plutus cost models, as the ledger orders their entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostModels {
    /// Plutus V1.
    pub plutus_v1: Option<Vec<i64>>,
    /// Plutus V2.
    pub plutus_v2: Option<Vec<i64>>,
    /// Plutus V3.
    pub plutus_v3: Option<Vec<i64>>,
}

impl CostModels {
    /// The conway `CostModels` map `{0: [..], 1: [..], 2: [..]}` as CBOR (the
    /// languages present only), as [`Evaluator::cost_models`] takes it.
    pub fn to_cbor(&self) -> Vec<u8> {
        let models: Vec<(u8, &Vec<i64>)> = [
            (0u8, self.plutus_v1.as_ref()),
            (1, self.plutus_v2.as_ref()),
            (2, self.plutus_v3.as_ref()),
        ]
        .into_iter()
        .filter_map(|(k, m)| Some((k, m?)))
        .collect();
        let mut out = Vec::new();
        let mut e = minicbor::Encoder::new(&mut out);
        // Writing into a Vec cannot fail.
        let _ = e.map(models.len() as u64);
        for (k, values) in models {
            let _ = e.u8(k);
            let _ = e.array(values.len() as u64);
            for v in values {
                let _ = e.i64(*v);
            }
        }
        out
    }
}

/// The protocol parameters the off-chain code uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolParams {
    /// Lovelace per transaction byte.
    pub min_fee_a: u64,
    /// Lovelace per transaction.
    pub min_fee_b: u64,
    /// Largest transaction, in bytes.
    pub max_tx_size: u64,
    /// Largest serialized value of an output, in bytes.
    pub max_val_size: u64,
    /// Stake-key registration deposit.
    pub key_deposit: u64,
    /// Lovelace per memory unit.
    pub price_mem: Ratio,
    /// Lovelace per CPU step.
    pub price_steps: Ratio,
    /// Execution units one transaction may use.
    pub max_tx_ex_units: ExUnits,
    /// Execution units one block may use.
    pub max_block_ex_units: ExUnits,
    /// Lovelace per byte of a UTxO entry.
    pub coins_per_utxo_byte: u64,
    /// Collateral, as a percentage of the fee.
    pub collateral_percent: u64,
    /// Most collateral inputs a transaction may have.
    pub max_collateral_inputs: u64,
    /// Lovelace per reference-script byte (first tier).
    pub ref_script_cost_per_byte: Ratio,
    /// Protocol major version.
    pub protocol_major: u16,
    /// Protocol minor version.
    pub protocol_minor: u16,
    /// Cost models (from `cost_models_raw`).
    pub cost_models: CostModels,
}

impl ProtocolParams {
    /// The parameters that price a transaction.
    pub fn fee_params(&self) -> FeeParams {
        FeeParams {
            min_fee_a: self.min_fee_a,
            min_fee_b: self.min_fee_b,
            price_mem: self.price_mem,
            price_steps: self.price_steps,
            ref_script_cost_per_byte: self.ref_script_cost_per_byte,
            coins_per_utxo_byte: self.coins_per_utxo_byte,
            collateral_percent: self.collateral_percent,
        }
    }

    /// An evaluator under these cost models and limits, on a network with `slot_config`.
    pub fn evaluator(&self, slot_config: SlotConfig) -> Evaluator {
        Evaluator {
            cost_models: Some(self.cost_models.to_cbor()),
            max_tx_ex_units: self.max_tx_ex_units,
            slot_config,
            protocol_major: self.protocol_major,
        }
    }

    /// The Plutus V3 cost model (for [`crate::tx::Draft::cost_model_v3`] and
    /// the script data hash).
    pub fn cost_model_v3(&self) -> Option<Vec<i64>> {
        self.cost_models.plutus_v3.clone()
    }

    /// Reads Blockfrost's `/epochs/latest/parameters` JSON. Lovelace amounts may
    /// be strings or numbers; prices may be decimal numbers (`0.0577`,
    /// `7.21e-05`) or strings, and become exact ratios.
    pub fn from_blockfrost_json(j: &Json) -> Result<ProtocolParams, String> {
        let cost_models = match j.get("cost_models_raw") {
            Some(Json::Object(raw)) => CostModels {
                plutus_v1: cost_model(raw.get("PlutusV1"))?,
                plutus_v2: cost_model(raw.get("PlutusV2"))?,
                plutus_v3: cost_model(raw.get("PlutusV3"))?,
            },
            _ => return Err("`cost_models_raw` is missing".into()),
        };
        let coins_per_utxo_byte = uint(j, "coins_per_utxo_size").or_else(|e| {
            // Older Blockfrost versions only have the legacy name (per byte since Babbage).
            uint(j, "coins_per_utxo_word").map_err(|_| e)
        })?;
        Ok(ProtocolParams {
            min_fee_a: uint(j, "min_fee_a")?,
            min_fee_b: uint(j, "min_fee_b")?,
            max_tx_size: uint(j, "max_tx_size")?,
            max_val_size: uint(j, "max_val_size")?,
            key_deposit: uint(j, "key_deposit")?,
            price_mem: ratio(j, "price_mem")?,
            price_steps: ratio(j, "price_step")?,
            max_tx_ex_units: ExUnits {
                mem: uint(j, "max_tx_ex_mem")?,
                steps: uint(j, "max_tx_ex_steps")?,
            },
            max_block_ex_units: ExUnits {
                mem: uint(j, "max_block_ex_mem")?,
                steps: uint(j, "max_block_ex_steps")?,
            },
            coins_per_utxo_byte,
            collateral_percent: uint(j, "collateral_percent")?,
            max_collateral_inputs: uint(j, "max_collateral_inputs")?,
            ref_script_cost_per_byte: ratio(j, "min_fee_ref_script_cost_per_byte")?,
            protocol_major: u16::try_from(uint(j, "protocol_major_ver")?)
                .map_err(|_| "`protocol_major_ver` is out of range".to_string())?,
            protocol_minor: u16::try_from(uint(j, "protocol_minor_ver")?)
                .map_err(|_| "`protocol_minor_ver` is out of range".to_string())?,
            cost_models,
        })
    }
}

fn cost_model(v: Option<&Json>) -> Result<Option<Vec<i64>>, String> {
    match v {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Array(values)) => values
            .iter()
            .map(|x| {
                x.as_i64()
                    .ok_or_else(|| format!("cost model entry {x} is not a 64-bit integer"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(format!("a cost model is not an array: {other}")),
    }
}

/// A non-negative integer field, as a JSON number or a decimal string.
pub(crate) fn uint(j: &Json, field: &str) -> Result<u64, String> {
    json_u64(j.get(field).unwrap_or(&Json::Null))
        .ok_or_else(|| format!("`{field}` is missing or not a non-negative integer"))
}

pub(crate) fn json_u64(v: &Json) -> Option<u64> {
    match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ratio(j: &Json, field: &str) -> Result<Ratio, String> {
    let text = match j.get(field) {
        Some(Json::Number(n)) => n.to_string(),
        Some(Json::String(s)) => s.clone(),
        _ => return Err(format!("`{field}` is missing or not a number")),
    };
    decimal_ratio(&text).ok_or_else(|| format!("`{field}` ({text}) is not a non-negative decimal"))
}

/// The exact ratio a decimal text denotes (`0.0577` → 577/10000, `7.21e-5` →
/// 721/10000000), reduced.
pub(crate) fn decimal_ratio(text: &str) -> Option<Ratio> {
    let text = text.trim();
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut num: u128 = digits.trim_start_matches('0').parse().unwrap_or(0);
    let mut den: u128 = 1;
    let scale = exp - frac.len() as i32;
    for _ in 0..scale.unsigned_abs() {
        if scale > 0 {
            num = num.checked_mul(10)?;
        } else {
            den = den.checked_mul(10)?;
        }
    }
    let g = gcd(num, den);
    let (num, den) = (num / g, den / g);
    Some(Ratio::new(
        u64::try_from(num).ok()?,
        u64::try_from(den).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_become_exact_ratios() {
        assert_eq!(decimal_ratio("0.0577"), Some(Ratio::new(577, 10_000)));
        assert_eq!(decimal_ratio("7.21e-5"), Some(Ratio::new(721, 10_000_000)));
        assert_eq!(decimal_ratio("7.21E-05"), Some(Ratio::new(721, 10_000_000)));
        assert_eq!(decimal_ratio("15"), Some(Ratio::new(15, 1)));
        assert_eq!(decimal_ratio("15.0"), Some(Ratio::new(15, 1)));
        assert_eq!(decimal_ratio("1.5e1"), Some(Ratio::new(15, 1)));
        assert_eq!(decimal_ratio("0"), Some(Ratio::new(0, 1)));
        assert_eq!(decimal_ratio("-1"), None);
        assert_eq!(decimal_ratio("x"), None);
        assert_eq!(decimal_ratio(""), None);
    }

    #[test]
    fn serde_json_float_text_round_trips() {
        let j: Json = serde_json::from_str(r#"{"a": 7.21e-05, "b": 0.0577}"#).expect("json");
        assert_eq!(ratio(&j, "a"), Ok(Ratio::new(721, 10_000_000)));
        assert_eq!(ratio(&j, "b"), Ok(Ratio::new(577, 10_000)));
    }

    #[test]
    fn cost_models_cbor_is_a_map_of_language_to_array() {
        let cbor = CostModels {
            plutus_v1: None,
            plutus_v2: Some(vec![1]),
            plutus_v3: Some(vec![-1, 300]),
        }
        .to_cbor();
        // {1: [1], 2: [-1, 300]}
        assert_eq!(hex::encode(cbor), "a20181010282201901 2c".replace(' ', ""));
    }
}
