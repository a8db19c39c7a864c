//! A Conway transaction being assembled: every field explicit, encoded to the
//! exact bytes that are hashed, priced and submitted.
//!
//! Inputs are kept in the ledger's order (sorted by transaction id, then index),
//! so the indexes the escrow's redeemers carry are positions in
//! [`Draft::sorted_inputs`]. Redeemers name their purpose by what they validate
//! (an input, a policy, a reward account) and get their ledger index at encoding.

use std::collections::{BTreeMap, BTreeSet};

use pallas_codec::minicbor;
use pallas_codec::utils::{Bytes, KeepRaw, NonEmptySet, Set};
use pallas_primitives::conway::{
    AuxiliaryData, Certificate, RedeemerTag, Redeemers, RedeemersKey, RedeemersValue,
    TransactionBody, VKeyWitness, WitnessSet,
};
use pallas_primitives::{ExUnits as PallasExUnits, Metadatum, NetworkId, PlutusData, PlutusScript};

use super::output::{Mint, TxOutput, Utxo, mint_to_pallas, reference_to_input};
use crate::evaluate::ExUnits;
use crate::protocol::{OutputReference, blake2b_256};
use crate::wallet::Signer;

/// What a redeemer validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptPurpose {
    /// Spending this input.
    Spend(OutputReference),
    /// Minting or burning under this policy.
    Mint([u8; 28]),
    /// Withdrawing from this reward account (raw stake-address bytes).
    Reward(Vec<u8>),
}

/// One redeemer: its purpose, its data and the units it may use.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftRedeemer {
    /// What it validates.
    pub purpose: ScriptPurpose,
    /// The redeemer data.
    pub data: PlutusData,
    /// Declared execution units.
    pub ex_units: ExUnits,
}

/// A transaction under construction. Fields are public: builders fill them in.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// Spent inputs, with the outputs they spend.
    pub inputs: Vec<Utxo>,
    /// Referenced inputs (reference scripts, read-only data).
    pub reference_inputs: Vec<Utxo>,
    /// Collateral inputs (pure ADA, key addresses).
    pub collateral: Vec<Utxo>,
    /// Outputs, in order.
    pub outputs: Vec<TxOutput>,
    /// Where collateral goes back if the scripts fail.
    pub collateral_return: Option<TxOutput>,
    /// The collateral taken if the scripts fail.
    pub total_collateral: Option<u64>,
    /// The fee in lovelace.
    pub fee: u64,
    /// First valid slot.
    pub valid_from_slot: Option<u64>,
    /// First invalid slot (the ledger's TTL is exclusive).
    pub invalid_from_slot: Option<u64>,
    /// Tokens minted and burned.
    pub mint: Mint,
    /// Withdrawals: reward account bytes → lovelace.
    pub withdrawals: BTreeMap<Vec<u8>, u64>,
    /// Certificates, in order.
    pub certificates: Vec<Certificate>,
    /// Lovelace the certificates lock away as deposits.
    pub deposit: u64,
    /// Key hashes that must sign (scripts see them as `extra_signatories`).
    pub required_signers: BTreeSet<[u8; 28]>,
    /// Plutus V3 scripts carried in the witness set (not by reference).
    pub plutus_v3_scripts: Vec<Vec<u8>>,
    /// Redeemers.
    pub redeemers: Vec<DraftRedeemer>,
    /// Transaction metadata: label → value.
    pub metadata: BTreeMap<u64, Metadatum>,
    /// The network id, when the transaction should state it.
    pub network_id: Option<u8>,
    /// The Plutus V3 cost model, for the script data hash (needed with redeemers).
    pub cost_model_v3: Option<Vec<i64>>,
    /// Where [`Draft::balance`] put the change output, so balancing again replaces it.
    pub(crate) change_at: Option<usize>,
}

/// A transaction the draft cannot encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    /// A redeemer names an input, policy or account the transaction does not have.
    #[error("a redeemer validates {0}, which the transaction does not contain")]
    DanglingRedeemer(String),
    /// The same input is listed twice.
    #[error("input {0} is listed twice")]
    DuplicateInput(String),
    /// Redeemers need the cost model for the script data hash.
    #[error(
        "the transaction has redeemers but no Plutus V3 cost model to hash: fetch the protocol parameters first"
    )]
    MissingCostModel,
    /// The transaction has no inputs.
    #[error("a transaction needs at least one input")]
    NoInputs,
}

/// An encoded transaction: its id and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedTx {
    /// The transaction id (blake2b-256 of the body bytes).
    pub id: [u8; 32],
    /// The whole transaction's CBOR.
    pub cbor: Vec<u8>,
}

impl Draft {
    /// The inputs' references in ledger order.
    pub fn sorted_inputs(&self) -> Vec<OutputReference> {
        let set: BTreeSet<_> = self.inputs.iter().map(|u| u.reference).collect();
        set.into_iter().collect()
    }

    /// The ledger index of an input.
    pub fn input_index(&self, reference: &OutputReference) -> Option<u32> {
        self.sorted_inputs()
            .iter()
            .position(|r| r == reference)
            .map(|i| i as u32)
    }

    /// Every resolved input the scripts may see (spent, then referenced), as
    /// `(input CBOR, output CBOR)` for [`crate::Evaluator`].
    pub fn resolved(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.inputs
            .iter()
            .chain(&self.reference_inputs)
            .map(Utxo::resolved)
            .collect()
    }

    /// The total declared execution units.
    pub fn total_ex_units(&self) -> ExUnits {
        self.redeemers
            .iter()
            .fold(ExUnits::default(), |acc, r| acc + r.ex_units)
    }

    /// Bytes of reference scripts the transaction's inputs carry (spent and
    /// referenced), which the reference-script fee prices.
    pub fn ref_script_bytes(&self) -> usize {
        self.inputs
            .iter()
            .chain(&self.reference_inputs)
            .filter_map(|u| u.output.script_ref.as_ref())
            .map(|s| s.size())
            .sum()
    }

    /// The ledger's key for a redeemer: its tag and the index of what it validates.
    pub fn redeemer_key(&self, purpose: &ScriptPurpose) -> Result<(RedeemerTag, u32), DraftError> {
        let index = match purpose {
            ScriptPurpose::Spend(reference) => self.input_index(reference),
            ScriptPurpose::Mint(policy) => {
                self.mint.keys().position(|p| p == policy).map(|i| i as u32)
            }
            ScriptPurpose::Reward(account) => self
                .withdrawals
                .keys()
                .position(|a| a == account)
                .map(|i| i as u32),
        };
        let tag = match purpose {
            ScriptPurpose::Spend(_) => RedeemerTag::Spend,
            ScriptPurpose::Mint(_) => RedeemerTag::Mint,
            ScriptPurpose::Reward(_) => RedeemerTag::Reward,
        };
        index
            .map(|i| (tag, i))
            .ok_or_else(|| DraftError::DanglingRedeemer(format!("{purpose:?}")))
    }

    fn redeemers_map(&self) -> Result<BTreeMap<RedeemersKey, RedeemersValue>, DraftError> {
        let mut map = BTreeMap::new();
        for r in &self.redeemers {
            let (tag, index) = self.redeemer_key(&r.purpose)?;
            map.insert(
                RedeemersKey { tag, index },
                RedeemersValue {
                    data: r.data.clone(),
                    ex_units: PallasExUnits {
                        mem: r.ex_units.mem,
                        steps: r.ex_units.steps,
                    },
                },
            );
        }
        Ok(map)
    }

    fn auxiliary_data(&self) -> Option<Vec<u8>> {
        if self.metadata.is_empty() {
            return None;
        }
        // The Shelley form (a plain metadata map) is valid in every later era.
        let aux = AuxiliaryData::Shelley(self.metadata.clone().into_iter().collect());
        Some(cbor(&aux))
    }

    /// Encodes the transaction, signed by `keys`, with `extra_witnesses` appended
    /// (e.g. dummy witnesses to size a transaction before it is signed).
    pub fn encode(
        &self,
        keys: &[&dyn Signer],
        extra_witnesses: usize,
    ) -> Result<EncodedTx, DraftError> {
        if self.inputs.is_empty() {
            return Err(DraftError::NoInputs);
        }
        let sorted = self.sorted_inputs();
        if sorted.len() != self.inputs.len() {
            return Err(DraftError::DuplicateInput(
                "(a repeated reference)".to_owned(),
            ));
        }
        let redeemers = self.redeemers_map()?;
        let redeemers_cbor =
            (!redeemers.is_empty()).then(|| cbor(&Redeemers::Map(redeemers.clone())));
        let script_data_hash = match &redeemers_cbor {
            None => None,
            Some(r) => {
                let model = self
                    .cost_model_v3
                    .as_ref()
                    .ok_or(DraftError::MissingCostModel)?;
                Some(script_data_hash(r, model))
            }
        };
        let aux = self.auxiliary_data();
        let set = |refs: Vec<OutputReference>| {
            NonEmptySet::try_from(refs.iter().map(reference_to_input).collect::<Vec<_>>()).ok()
        };
        let body = TransactionBody {
            inputs: Set::from(sorted.iter().map(reference_to_input).collect::<Vec<_>>()),
            outputs: self.outputs.iter().map(TxOutput::to_pallas).collect(),
            fee: self.fee,
            ttl: self.invalid_from_slot,
            certificates: NonEmptySet::try_from(self.certificates.clone()).ok(),
            withdrawals: (!self.withdrawals.is_empty()).then(|| {
                self.withdrawals
                    .iter()
                    .map(|(a, c)| (Bytes::from(a.clone()), *c))
                    .collect()
            }),
            auxiliary_data_hash: aux.as_ref().map(|a| blake2b_256(a).into()),
            validity_interval_start: self.valid_from_slot,
            mint: mint_to_pallas(&self.mint),
            script_data_hash: script_data_hash.map(Into::into),
            collateral: set(self.collateral.iter().map(|u| u.reference).collect()),
            required_signers: NonEmptySet::try_from(
                self.required_signers
                    .iter()
                    .map(|k| (*k).into())
                    .collect::<Vec<_>>(),
            )
            .ok(),
            network_id: self.network_id.map(|n| {
                if n == 1 {
                    NetworkId::Mainnet
                } else {
                    NetworkId::Testnet
                }
            }),
            collateral_return: self.collateral_return.as_ref().map(TxOutput::to_pallas),
            total_collateral: self.total_collateral,
            reference_inputs: set(self
                .reference_inputs
                .iter()
                .map(|u| u.reference)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()),
            voting_procedures: None,
            proposal_procedures: None,
            treasury_value: None,
            donation: None,
        };
        let body_bytes = cbor(&body);
        let id = blake2b_256(&body_bytes);

        let mut vkeys: Vec<VKeyWitness> = keys
            .iter()
            .map(|k| VKeyWitness {
                vkey: Bytes::from(k.public_key().to_vec()),
                signature: Bytes::from(k.sign(&id).to_vec()),
            })
            .collect();
        vkeys.extend((0..extra_witnesses).map(|i| VKeyWitness {
            vkey: Bytes::from(vec![i as u8; 32]),
            signature: Bytes::from(vec![0; 64]),
        }));
        let witnesses = WitnessSet {
            vkeywitness: NonEmptySet::try_from(vkeys).ok(),
            native_script: None,
            bootstrap_witness: None,
            plutus_v1_script: None,
            plutus_data: None,
            redeemer: (!redeemers.is_empty()).then(|| KeepRaw::from(Redeemers::Map(redeemers))),
            plutus_v2_script: None,
            plutus_v3_script: NonEmptySet::try_from(
                self.plutus_v3_scripts
                    .iter()
                    .map(|s| PlutusScript::<3>(s.clone().into()))
                    .collect::<Vec<_>>(),
            )
            .ok(),
        };

        // [body, witnesses, is_valid, auxiliary data], with the body's exact bytes.
        let mut out = vec![0x84];
        out.extend_from_slice(&body_bytes);
        out.extend_from_slice(&cbor(&witnesses));
        out.push(0xf5);
        match aux {
            Some(a) => out.extend_from_slice(&a),
            None => out.push(0xf6),
        }
        Ok(EncodedTx { id, cbor: out })
    }
}

/// `blake2b_256(redeemers ‖ language views)` for a transaction with redeemers,
/// Plutus V3 scripts only and no witness datums (escrows use inline datums).
pub fn script_data_hash(redeemers_cbor: &[u8], cost_model_v3: &[i64]) -> [u8; 32] {
    // Language views: { 2: [cost model, definite list] } (V3 is encoded plainly).
    let mut views = Vec::new();
    let mut e = minicbor::Encoder::new(&mut views);
    let _ = e
        .map(1)
        .and_then(|e| e.u8(2))
        .and_then(|e| e.array(cost_model_v3.len() as u64));
    for c in cost_model_v3 {
        let _ = e.i64(*c);
    }
    let mut preimage = redeemers_cbor.to_vec();
    preimage.extend_from_slice(&views);
    blake2b_256(&preimage)
}

fn cbor<T: minicbor::Encode<()>>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = minicbor::encode(value, &mut out);
    out
}
