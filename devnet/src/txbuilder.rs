//! A small Conway transaction builder: enough for the devnet's faucet, its
//! tests and its benchmark (payments, multi-asset, native and Plutus V3
//! scripts, reference scripts, inline datums, certificates, withdrawals,
//! collateral). It does no coin selection; [`TxBuilder::balance_fee`] sets
//! the minimum fee and takes it from a change output.

use std::collections::BTreeMap;

use pallas_codec::minicbor;
use pallas_codec::utils::{Bytes, CborWrap, KeepRaw, NonEmptySet, Nullable, Set};
use pallas_crypto::hash::{Hash, Hasher};
use pallas_primitives::conway::{
    AuxiliaryData, Certificate, DatumOption, NativeScript, PlutusData, PostAlonzoTransactionOutput,
    RedeemerTag, Redeemers, RedeemersKey, RedeemersValue, ScriptRef, TransactionBody,
    TransactionOutput, Tx, VKeyWitness, WitnessSet,
};
use pallas_primitives::{ExUnits, Metadata, NonZeroInt, PlutusScript, TransactionInput};

use crate::genesis::KeyPair;
use crate::ledger::OutRef;
use crate::params::Params;
use crate::value::Value;

/// A datum attached to an output.
#[derive(Debug, Clone, PartialEq)]
pub enum OutDatum {
    /// None.
    None,
    /// By hash.
    Hash(Hash<32>),
    /// Inline (PlutusData CBOR).
    Inline(Vec<u8>),
}

/// An output to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Address bytes.
    pub address: Vec<u8>,
    /// Value.
    pub value: Value,
    /// Datum.
    pub datum: OutDatum,
    /// Reference script: (0 native / 1..3 Plutus, bytes).
    pub script_ref: Option<(u8, Vec<u8>)>,
}

impl Output {
    /// Pays `value` to `address`.
    pub fn new(address: &[u8], value: Value) -> Self {
        Self {
            address: address.to_vec(),
            value,
            datum: OutDatum::None,
            script_ref: None,
        }
    }

    /// With an inline datum.
    pub fn inline_datum(mut self, data_cbor: &[u8]) -> Self {
        self.datum = OutDatum::Inline(data_cbor.to_vec());
        self
    }

    /// With a Plutus V3 reference script (the script's CBOR bytes, as in a blueprint).
    pub fn v3_script_ref(mut self, script: &[u8]) -> Self {
        self.script_ref = Some((3, script.to_vec()));
        self
    }

    /// The pallas output.
    pub fn to_pallas(&self) -> TransactionOutput<'static> {
        let datum_option = match &self.datum {
            OutDatum::None => None,
            OutDatum::Hash(h) => Some(KeepRaw::from(DatumOption::Hash(*h))),
            OutDatum::Inline(cbor) => minicbor::decode::<PlutusData>(cbor)
                .ok()
                .map(|d| KeepRaw::from(DatumOption::Data(CborWrap(KeepRaw::from(d))))),
        };
        let script_ref = self.script_ref.as_ref().and_then(|(tag, b)| {
            Some(CborWrap(match tag {
                0 => ScriptRef::NativeScript(KeepRaw::from(
                    minicbor::decode::<NativeScript>(b).ok()?,
                )),
                1 => ScriptRef::PlutusV1Script(PlutusScript::<1>(Bytes::from(b.clone()))),
                2 => ScriptRef::PlutusV2Script(PlutusScript::<2>(Bytes::from(b.clone()))),
                _ => ScriptRef::PlutusV3Script(PlutusScript::<3>(Bytes::from(b.clone()))),
            }))
        });
        TransactionOutput::PostAlonzo(KeepRaw::from(PostAlonzoTransactionOutput {
            address: Bytes::from(self.address.clone()),
            value: self.value.to_conway(),
            datum_option,
            script_ref,
        }))
    }

    /// CBOR of the output.
    pub fn to_cbor(&self) -> Vec<u8> {
        minicbor::to_vec(self.to_pallas()).unwrap_or_default()
    }
}

/// A redeemer to attach.
#[derive(Debug, Clone, PartialEq)]
pub struct RedeemerSpec {
    /// Purpose.
    pub tag: RedeemerTag,
    /// Index (sorted inputs / sorted policies / sorted reward accounts / cert position).
    pub index: u32,
    /// PlutusData CBOR.
    pub data: Vec<u8>,
    /// Declared budget.
    pub ex_units: ExUnits,
}

/// The builder. Fill the fields, then [`TxBuilder::build`].
#[derive(Debug, Clone)]
pub struct TxBuilder {
    /// Spent inputs.
    pub inputs: Vec<OutRef>,
    /// Reference inputs.
    pub reference_inputs: Vec<OutRef>,
    /// Collateral inputs.
    pub collateral: Vec<OutRef>,
    /// Collateral return.
    pub collateral_return: Option<Output>,
    /// total_collateral field.
    pub total_collateral: Option<u64>,
    /// Outputs.
    pub outputs: Vec<Output>,
    /// Fee.
    pub fee: u64,
    /// `invalid_hereafter`.
    pub ttl: Option<u64>,
    /// `invalid_before`.
    pub valid_from: Option<u64>,
    /// Mint (negative = burn).
    pub mint: BTreeMap<Hash<28>, BTreeMap<Vec<u8>, i64>>,
    /// Certificates.
    pub certificates: Vec<Certificate>,
    /// Withdrawals (reward address bytes → amount).
    pub withdrawals: BTreeMap<Vec<u8>, u64>,
    /// Required signers.
    pub required_signers: Vec<Hash<28>>,
    /// Native scripts in the witness set.
    pub native_scripts: Vec<NativeScript>,
    /// Plutus V3 scripts in the witness set (script CBOR bytes).
    pub plutus_v3_scripts: Vec<Vec<u8>>,
    /// Datums in the witness set (PlutusData CBOR).
    pub datums: Vec<Vec<u8>>,
    /// Redeemers.
    pub redeemers: Vec<RedeemerSpec>,
    /// Plutus languages whose cost models enter the script-data hash (1..=3);
    /// languages of witness-set scripts are added automatically, reference
    /// scripts' languages must be listed here.
    pub languages: Vec<u8>,
    /// Metadata.
    pub metadata: Option<Metadata>,
    /// The is_valid flag.
    pub is_valid: bool,
}

impl Default for TxBuilder {
    fn default() -> Self {
        Self {
            inputs: Vec::new(),
            reference_inputs: Vec::new(),
            collateral: Vec::new(),
            collateral_return: None,
            total_collateral: None,
            outputs: Vec::new(),
            fee: 0,
            ttl: None,
            valid_from: None,
            mint: BTreeMap::new(),
            certificates: Vec::new(),
            withdrawals: BTreeMap::new(),
            required_signers: Vec::new(),
            native_scripts: Vec::new(),
            plutus_v3_scripts: Vec::new(),
            datums: Vec::new(),
            redeemers: Vec::new(),
            languages: Vec::new(),
            metadata: None,
            is_valid: true,
        }
    }
}

fn tx_inputs(list: &[OutRef]) -> Vec<TransactionInput> {
    let mut v: Vec<TransactionInput> = list
        .iter()
        .map(|r| TransactionInput {
            transaction_id: r.tx_hash,
            index: r.index as u64,
        })
        .collect();
    v.sort_by_key(|a| (a.transaction_id, a.index));
    v
}

impl TxBuilder {
    fn witness_set(&self, params: &Params) -> WitnessSet<'static> {
        let redeemers = if self.redeemers.is_empty() {
            None
        } else {
            let mut m = BTreeMap::new();
            for r in &self.redeemers {
                let data = minicbor::decode::<PlutusData>(&r.data).unwrap_or_else(|_| {
                    PlutusData::Array(pallas_codec::utils::MaybeIndefArray::Def(vec![]))
                });
                m.insert(
                    RedeemersKey {
                        tag: r.tag,
                        index: r.index,
                    },
                    RedeemersValue {
                        data,
                        ex_units: r.ex_units,
                    },
                );
            }
            Some(KeepRaw::from(Redeemers::Map(m)))
        };
        let datums = NonEmptySet::from_vec(
            self.datums
                .iter()
                .filter_map(|d| minicbor::decode::<PlutusData>(d).ok())
                .map(KeepRaw::from)
                .collect(),
        )
        .map(KeepRaw::from);
        let mut ws = WitnessSet {
            vkeywitness: None,
            native_script: NonEmptySet::from_vec(
                self.native_scripts
                    .iter()
                    .cloned()
                    .map(KeepRaw::from)
                    .collect(),
            ),
            bootstrap_witness: None,
            plutus_v1_script: None,
            plutus_data: datums,
            redeemer: redeemers,
            plutus_v2_script: None,
            plutus_v3_script: NonEmptySet::from_vec(
                self.plutus_v3_scripts
                    .iter()
                    .map(|s| PlutusScript::<3>(Bytes::from(s.clone())))
                    .collect(),
            ),
        };
        let _ = params;
        ws.vkeywitness = None;
        ws
    }

    fn body(&self, params: &Params, ws: &WitnessSet<'_>) -> TransactionBody<'static> {
        let mut langs: Vec<u8> = self.languages.clone();
        if !self.plutus_v3_scripts.is_empty() {
            langs.push(3);
        }
        if langs.is_empty() && !self.redeemers.is_empty() {
            langs.push(3);
        }
        langs.sort();
        langs.dedup();
        let script_data_hash = if ws.redeemer.is_some() || ws.plutus_data.is_some() {
            let views: pallas_primitives::conway::LanguageViews = langs
                .iter()
                .map(|l| {
                    let model = match l {
                        1 => params.cost_model_v1.clone(),
                        2 => params.cost_model_v2.clone(),
                        _ => params.cost_model_v3.clone(),
                    };
                    (l - 1, model)
                })
                .collect();
            let views = if langs.is_empty() { None } else { Some(views) };
            pallas_primitives::conway::ScriptData::build_for(ws, &views).map(|sd| sd.hash())
        } else {
            None
        };
        let mint = if self.mint.is_empty() {
            None
        } else {
            let mut m = BTreeMap::new();
            for (p, names) in &self.mint {
                let mut inner = BTreeMap::new();
                for (n, q) in names {
                    if let Ok(nz) = NonZeroInt::try_from(*q) {
                        inner.insert(Bytes::from(n.clone()), nz);
                    }
                }
                m.insert(*p, inner);
            }
            Some(m)
        };
        let aux_hash = self
            .aux()
            .map(|a| Hasher::<256>::hash(&minicbor::to_vec(&a).unwrap_or_default()));
        TransactionBody {
            inputs: Set::from(tx_inputs(&self.inputs)),
            outputs: self.outputs.iter().map(Output::to_pallas).collect(),
            fee: self.fee,
            ttl: self.ttl,
            certificates: NonEmptySet::from_vec(self.certificates.clone()),
            withdrawals: if self.withdrawals.is_empty() {
                None
            } else {
                Some(
                    self.withdrawals
                        .iter()
                        .map(|(k, v)| (Bytes::from(k.clone()), *v))
                        .collect(),
                )
            },
            auxiliary_data_hash: aux_hash,
            validity_interval_start: self.valid_from,
            mint,
            script_data_hash,
            collateral: NonEmptySet::from_vec(tx_inputs(&self.collateral)),
            required_signers: NonEmptySet::from_vec(self.required_signers.clone()),
            network_id: None,
            collateral_return: self.collateral_return.as_ref().map(Output::to_pallas),
            total_collateral: self.total_collateral,
            reference_inputs: NonEmptySet::from_vec(tx_inputs(&self.reference_inputs)),
            voting_procedures: None,
            proposal_procedures: None,
            treasury_value: None,
            donation: None,
        }
    }

    fn aux(&self) -> Option<AuxiliaryData> {
        self.metadata.clone().map(AuxiliaryData::Shelley)
    }

    /// The transaction id the built transaction will have.
    pub fn tx_hash(&self, params: &Params) -> Hash<32> {
        let ws = self.witness_set(params);
        let body = self.body(params, &ws);
        Hasher::<256>::hash(&minicbor::to_vec(&body).unwrap_or_default())
    }

    /// Builds and signs the transaction; returns its CBOR.
    pub fn build(&self, params: &Params, signers: &[&KeyPair]) -> Vec<u8> {
        let mut ws = self.witness_set(params);
        let body = self.body(params, &ws);
        let body_bytes = minicbor::to_vec(&body).unwrap_or_default();
        let hash = Hasher::<256>::hash(&body_bytes);
        ws.vkeywitness = NonEmptySet::from_vec(
            signers
                .iter()
                .map(|k| VKeyWitness {
                    vkey: Bytes::from(k.public_key().to_vec()),
                    signature: Bytes::from(k.sign(hash.as_ref()).to_vec()),
                })
                .collect(),
        );
        let tx = Tx {
            transaction_body: KeepRaw::from(body),
            transaction_witness_set: KeepRaw::from(ws),
            success: self.is_valid,
            auxiliary_data: match self.aux() {
                Some(a) => Nullable::Some(KeepRaw::from(a)),
                None => Nullable::Null,
            },
        };
        minicbor::to_vec(&tx).unwrap_or_default()
    }

    /// Sets the fee to the minimum for the signed transaction (reference
    /// scripts totalling `ref_script_bytes`) and takes the difference from
    /// `outputs[change]`'s lovelace. Returns the fee.
    pub fn balance_fee(
        &mut self,
        params: &Params,
        signers: &[&KeyPair],
        change: usize,
        ref_script_bytes: u64,
    ) -> u64 {
        let (mem, steps) = self.redeemers.iter().fold((0, 0), |(m, s), r| {
            (m + r.ex_units.mem, s + r.ex_units.steps)
        });
        let start = self.fee;
        for _ in 0..4 {
            let size = self.build(params, signers).len() as u64;
            let fee = crate::fees::min_fee(params, size, mem, steps, ref_script_bytes).total();
            if fee == self.fee {
                break;
            }
            if let Some(o) = self.outputs.get_mut(change) {
                o.value.coin = (o.value.coin + self.fee).saturating_sub(fee);
            }
            self.fee = fee;
        }
        let _ = start;
        self.fee
    }
}
