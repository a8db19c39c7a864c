//! Owned transaction outputs and UTxOs, independent of any provider's JSON.

use std::collections::BTreeMap;

use pallas_codec::minicbor;
use pallas_codec::utils::{Bytes, CborWrap, KeepRaw, NonZeroInt, PositiveCoin};
use pallas_primitives::conway::{
    DatumOption, NativeScript, PostAlonzoTransactionOutput, ScriptRef as PallasScriptRef,
    TransactionOutput, Value as PallasValue,
};
use pallas_primitives::{PlutusData, PlutusScript, TransactionInput};

use crate::protocol::OutputReference;

/// Native assets: policy id → asset name → quantity.
pub type Assets = BTreeMap<[u8; 28], BTreeMap<Vec<u8>, u64>>;

/// A multi-asset value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Value {
    /// Lovelace.
    pub lovelace: u64,
    /// Native assets; no zero quantities.
    pub assets: Assets,
}

impl Value {
    /// Only lovelace.
    pub fn lovelace(lovelace: u64) -> Value {
        Value {
            lovelace,
            assets: Assets::new(),
        }
    }

    /// This value with its lovelace set to `lovelace`.
    pub fn with_lovelace(mut self, lovelace: u64) -> Value {
        self.lovelace = lovelace;
        self
    }

    /// This value plus `quantity` of one asset.
    pub fn with_asset(mut self, policy: [u8; 28], name: &[u8], quantity: u64) -> Value {
        self.add_asset(policy, name, quantity);
        self
    }

    /// Adds `quantity` of one asset.
    pub fn add_asset(&mut self, policy: [u8; 28], name: &[u8], quantity: u64) {
        if quantity == 0 {
            return;
        }
        *self
            .assets
            .entry(policy)
            .or_default()
            .entry(name.to_vec())
            .or_default() += quantity;
    }

    /// The quantity of one asset.
    pub fn quantity_of(&self, policy: &[u8; 28], name: &[u8]) -> u64 {
        self.assets
            .get(policy)
            .and_then(|a| a.get(name))
            .copied()
            .unwrap_or(0)
    }

    /// Adds another value.
    pub fn add(&mut self, other: &Value) {
        self.lovelace += other.lovelace;
        for (policy, names) in &other.assets {
            for (name, q) in names {
                self.add_asset(*policy, name, *q);
            }
        }
    }

    /// Subtracts another value; `None` if any quantity would go negative.
    pub fn checked_sub(&self, other: &Value) -> Option<Value> {
        let mut out = self.clone();
        out.lovelace = out.lovelace.checked_sub(other.lovelace)?;
        for (policy, names) in &other.assets {
            for (name, q) in names {
                let entry = out.assets.get_mut(policy)?;
                let have = entry.get_mut(name)?;
                *have = have.checked_sub(*q)?;
                if *have == 0 {
                    entry.remove(name);
                    if entry.is_empty() {
                        out.assets.remove(policy);
                    }
                }
            }
        }
        Some(out)
    }

    fn to_pallas(&self) -> PallasValue {
        if self.assets.is_empty() {
            return PallasValue::Coin(self.lovelace);
        }
        let multiasset = self
            .assets
            .iter()
            .map(|(policy, names)| {
                let names = names
                    .iter()
                    .filter_map(|(n, q)| {
                        Some((Bytes::from(n.clone()), PositiveCoin::try_from(*q).ok()?))
                    })
                    .collect();
                ((*policy).into(), names)
            })
            .collect();
        PallasValue::Multiasset(self.lovelace, multiasset)
    }

    fn from_pallas(value: &PallasValue) -> Value {
        match value {
            PallasValue::Coin(c) => Value::lovelace(*c),
            PallasValue::Multiasset(c, assets) => {
                let mut v = Value::lovelace(*c);
                for (policy, names) in assets {
                    for (name, q) in names {
                        v.add_asset(**policy, name, u64::from(q));
                    }
                }
                v
            }
        }
    }
}

/// Tokens to mint (positive) or burn (negative): policy → name → quantity.
pub type Mint = BTreeMap<[u8; 28], BTreeMap<Vec<u8>, i64>>;

pub(crate) fn mint_to_pallas(mint: &Mint) -> Option<pallas_primitives::conway::Mint> {
    let out: pallas_primitives::conway::Mint = mint
        .iter()
        .filter_map(|(policy, names)| {
            let names: BTreeMap<_, _> = names
                .iter()
                .filter_map(|(n, q)| Some((Bytes::from(n.clone()), NonZeroInt::try_from(*q).ok()?)))
                .collect();
            (!names.is_empty()).then(|| ((*policy).into(), names))
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// An output's datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    /// No datum.
    None,
    /// A datum hash (the datum travels in the spending transaction).
    Hash([u8; 32]),
    /// An inline datum.
    Inline(PlutusData),
}

/// A script carried by an output for others to reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptRef {
    /// A native script.
    Native(NativeScript),
    /// A Plutus V1 script (CBOR-wrapped flat).
    PlutusV1(Vec<u8>),
    /// A Plutus V2 script.
    PlutusV2(Vec<u8>),
    /// A Plutus V3 script.
    PlutusV3(Vec<u8>),
}

impl ScriptRef {
    /// The script's size as the reference-script fee counts it.
    pub fn size(&self) -> usize {
        match self {
            ScriptRef::Native(script) => {
                let mut out = Vec::new();
                let _ = minicbor::encode(script, &mut out);
                out.len()
            }
            ScriptRef::PlutusV1(b) | ScriptRef::PlutusV2(b) | ScriptRef::PlutusV3(b) => b.len(),
        }
    }
}

/// A transaction output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutput {
    /// The address's raw bytes (header byte and credentials).
    pub address: Vec<u8>,
    /// What it holds.
    pub value: Value,
    /// Its datum.
    pub datum: Datum,
    /// A script it carries for reference.
    pub script_ref: Option<ScriptRef>,
}

/// An output that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid Conway transaction output: {0}")]
pub struct OutputDecodeError(pub String);

impl TxOutput {
    /// A plain output: an address and a value.
    pub fn new(address: Vec<u8>, value: Value) -> TxOutput {
        TxOutput {
            address,
            value,
            datum: Datum::None,
            script_ref: None,
        }
    }

    /// This output with an inline datum.
    pub fn with_inline_datum(mut self, datum: PlutusData) -> TxOutput {
        self.datum = Datum::Inline(datum);
        self
    }

    /// The output in pallas's (Babbage/Conway map) form.
    pub(crate) fn to_pallas(&self) -> TransactionOutput<'static> {
        let datum_option = match &self.datum {
            Datum::None => None,
            Datum::Hash(h) => Some(KeepRaw::from(DatumOption::Hash((*h).into()))),
            Datum::Inline(d) => Some(KeepRaw::from(DatumOption::Data(CborWrap(KeepRaw::from(
                d.clone(),
            ))))),
        };
        let script_ref = self.script_ref.as_ref().map(|s| {
            CborWrap(match s {
                ScriptRef::Native(script) => {
                    PallasScriptRef::NativeScript(KeepRaw::from(script.clone()))
                }
                ScriptRef::PlutusV1(b) => {
                    PallasScriptRef::PlutusV1Script(PlutusScript(b.clone().into()))
                }
                ScriptRef::PlutusV2(b) => {
                    PallasScriptRef::PlutusV2Script(PlutusScript(b.clone().into()))
                }
                ScriptRef::PlutusV3(b) => {
                    PallasScriptRef::PlutusV3Script(PlutusScript(b.clone().into()))
                }
            })
        });
        TransactionOutput::PostAlonzo(KeepRaw::from(PostAlonzoTransactionOutput {
            address: self.address.clone().into(),
            value: self.value.to_pallas(),
            datum_option,
            script_ref,
        }))
    }

    /// The output's CBOR, as it appears in a transaction.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = minicbor::encode(self.to_pallas(), &mut out);
        out
    }

    /// Reads an output from its CBOR (legacy array or post-Alonzo map form).
    pub fn from_cbor(bytes: &[u8]) -> Result<TxOutput, OutputDecodeError> {
        let output: TransactionOutput<'_> =
            minicbor::decode(bytes).map_err(|e| OutputDecodeError(e.to_string()))?;
        Ok(match output {
            TransactionOutput::Legacy(legacy) => TxOutput {
                address: legacy.address.to_vec(),
                value: match &legacy.amount {
                    pallas_primitives::alonzo::Value::Coin(c) => Value::lovelace(*c),
                    pallas_primitives::alonzo::Value::Multiasset(c, assets) => {
                        let mut v = Value::lovelace(*c);
                        for (policy, names) in assets {
                            for (name, q) in names {
                                v.add_asset(**policy, name, *q);
                            }
                        }
                        v
                    }
                },
                datum: legacy
                    .datum_hash
                    .map(|h| Datum::Hash(*h))
                    .unwrap_or(Datum::None),
                script_ref: None,
            },
            TransactionOutput::PostAlonzo(o) => TxOutput {
                address: o.address.to_vec(),
                value: Value::from_pallas(&o.value),
                datum: match o.datum_option.as_deref() {
                    None => Datum::None,
                    Some(DatumOption::Hash(h)) => Datum::Hash(**h),
                    Some(DatumOption::Data(d)) => Datum::Inline((*d.0).clone()),
                },
                script_ref: o.script_ref.as_ref().map(|s| match &s.0 {
                    PallasScriptRef::NativeScript(n) => ScriptRef::Native((**n).clone()),
                    PallasScriptRef::PlutusV1Script(p) => ScriptRef::PlutusV1(p.0.to_vec()),
                    PallasScriptRef::PlutusV2Script(p) => ScriptRef::PlutusV2(p.0.to_vec()),
                    PallasScriptRef::PlutusV3Script(p) => ScriptRef::PlutusV3(p.0.to_vec()),
                }),
            },
        })
    }
}

/// An unspent output and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utxo {
    /// Where the output is.
    pub reference: OutputReference,
    /// The output.
    pub output: TxOutput,
}

impl Utxo {
    pub(crate) fn input(&self) -> TransactionInput {
        reference_to_input(&self.reference)
    }

    /// `(input CBOR, output CBOR)`, as the evaluator takes resolved inputs.
    pub fn resolved(&self) -> (Vec<u8>, Vec<u8>) {
        let mut input = Vec::new();
        let _ = minicbor::encode(self.input(), &mut input);
        (input, self.output.to_cbor())
    }
}

pub(crate) fn reference_to_input(r: &OutputReference) -> TransactionInput {
    TransactionInput {
        transaction_id: r.transaction_id.into(),
        index: r.output_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_round_trip_through_cbor() {
        let output = TxOutput {
            address: vec![0x70; 29],
            value: Value::lovelace(2_000_000)
                .with_asset([1; 28], b"NTX", 25)
                .with_asset([2; 28], b"job", 1),
            datum: Datum::Inline(crate::protocol::data::bytes(&[9; 28])),
            script_ref: Some(ScriptRef::PlutusV3(vec![0x46, 1, 2, 3, 4, 5, 6])),
        };
        assert_eq!(
            TxOutput::from_cbor(&output.to_cbor()).expect("decodes"),
            output
        );
    }

    #[test]
    fn subtraction_removes_emptied_assets_and_refuses_to_go_negative() {
        let a = Value::lovelace(10).with_asset([1; 28], b"x", 5);
        let b = Value::lovelace(4).with_asset([1; 28], b"x", 5);
        assert_eq!(a.checked_sub(&b), Some(Value::lovelace(6)));
        assert_eq!(b.checked_sub(&a), None);
    }
}
