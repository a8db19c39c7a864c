//! What the auditor reads: a deployment's transactions, decoded from their
//! CBOR into the few fields the protocol's rules speak about.
//!
//! A [`History`] is plain data. [`super::collect_history`] fills one from a
//! chain; tests build or edit one by hand to feed the checks forged events.

use std::collections::BTreeMap;

use pallas_codec::minicbor;
use pallas_primitives::PlutusData;
use pallas_primitives::conway::{RedeemerTag, Redeemers, Tx};

use crate::evaluate::SlotConfig;
use crate::protocol::{Asset, OutputReference, blake2b_256};
use crate::tx::TxOutput;

/// The deployment being audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The escrow's script hash: payment credential, job-token policy, stake credential.
    pub script_hash: [u8; 28],
    /// The settlement asset (NTX).
    pub settlement: Asset,
}

/// One input of a transaction, with the output it spends when the auditor
/// resolved it (it resolves every input that a spend redeemer names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxInput {
    /// The output spent.
    pub reference: OutputReference,
    /// That output, if resolved.
    pub output: Option<TxOutput>,
}

/// The redeemers a transaction gives the escrow script, undecoded (decoding
/// them is part of the audit: a malformed one is a finding).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EscrowRedeemers {
    /// The `mint` handler's redeemer (the escrow policy's).
    pub mint: Option<PlutusData>,
    /// Spend redeemers, by input index (ledger order). Includes other
    /// scripts' inputs; the checks only read the escrow's.
    pub spend: BTreeMap<u32, PlutusData>,
    /// The `withdraw` handler's redeemer (the escrow's stake credential).
    pub withdraw: Option<PlutusData>,
}

/// A transaction of the deployment's history, as the checks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct EscrowTx {
    /// Its id.
    pub id: [u8; 32],
    /// Height of its block.
    pub block_height: u64,
    /// Index in its block.
    pub block_index: u64,
    /// Slot of its block.
    pub slot: u64,
    /// `false` when its scripts failed: only its collateral moved, and the
    /// checks ignore it.
    pub valid: bool,
    /// First slot it is valid in.
    pub valid_from_slot: Option<u64>,
    /// First slot it is no longer valid in.
    pub invalid_from_slot: Option<u64>,
    /// Key hashes it declares as signers (the scripts' `extra_signatories`).
    pub required_signers: Vec<[u8; 28]>,
    /// Inputs, in ledger order (sorted by transaction id, then index).
    pub inputs: Vec<TxInput>,
    /// Outputs, in order.
    pub outputs: Vec<TxOutput>,
    /// Tokens minted (positive) or burned (negative) under the escrow policy.
    pub mint: BTreeMap<Vec<u8>, i64>,
    /// Whether it withdraws from the escrow's stake credential (which runs
    /// the `withdraw` handler).
    pub withdraws: bool,
    /// The escrow script's redeemers.
    pub redeemers: EscrowRedeemers,
}

/// Why a transaction could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transaction {tx} cannot be read: {detail}")]
pub struct DecodeError {
    /// The transaction (hex), or its position when its id is unknown.
    pub tx: String,
    /// What is wrong.
    pub detail: String,
}

/// Where a transaction is on the chain (what the CBOR does not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPosition {
    /// Height.
    pub height: u64,
    /// Index in the block.
    pub index: u64,
    /// Slot.
    pub slot: u64,
}

impl EscrowTx {
    /// Decodes a Conway transaction's CBOR and keeps what concerns the escrow
    /// with `script_hash`. Inputs come back unresolved.
    pub fn decode(
        cbor: &[u8],
        at: BlockPosition,
        script_hash: &[u8; 28],
    ) -> Result<EscrowTx, DecodeError> {
        let tx: Tx<'_> = minicbor::decode(cbor).map_err(|e| DecodeError {
            tx: format!("at block {} index {}", at.height, at.index),
            detail: format!("not a Conway transaction ({e})"),
        })?;
        let id = blake2b_256(tx.transaction_body.raw_cbor());
        let fail = |detail: String| DecodeError {
            tx: hex::encode(id),
            detail,
        };
        let body = &*tx.transaction_body;
        let mut inputs: Vec<OutputReference> = body
            .inputs
            .iter()
            .map(|i| OutputReference {
                transaction_id: *i.transaction_id,
                output_index: i.index,
            })
            .collect();
        inputs.sort();
        inputs.dedup();
        let outputs = body
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let bytes = minicbor::to_vec(o)
                    .map_err(|e| fail(format!("output {i} cannot be re-encoded ({e})")))?;
                TxOutput::from_cbor(&bytes).map_err(|e| fail(format!("output {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut mint = BTreeMap::new();
        let mut policies: Vec<[u8; 28]> = Vec::new();
        if let Some(m) = &body.mint {
            for (policy, names) in m.iter() {
                policies.push(**policy);
                if **policy == *script_hash {
                    for (name, q) in names.iter() {
                        mint.insert(name.to_vec(), i64::from(q));
                    }
                }
            }
        }
        policies.sort();
        let mut accounts: Vec<Vec<u8>> = body
            .withdrawals
            .iter()
            .flat_map(|w| w.keys().map(|k| k.to_vec()))
            .collect();
        accounts.sort();
        let is_ours = |account: &[u8]| {
            account.len() == 29 && account[0] >> 4 == 0xf && account[1..] == script_hash[..]
        };
        let withdraws = accounts.iter().any(|a| is_ours(a));

        let mut redeemers = EscrowRedeemers::default();
        let mut take = |tag: RedeemerTag, index: u32, data: &PlutusData| match tag {
            RedeemerTag::Spend => {
                redeemers.spend.insert(index, data.clone());
            }
            RedeemerTag::Mint if policies.get(index as usize) == Some(script_hash) => {
                redeemers.mint = Some(data.clone());
            }
            RedeemerTag::Reward if accounts.get(index as usize).is_some_and(|a| is_ours(a)) => {
                redeemers.withdraw = Some(data.clone());
            }
            _ => {}
        };
        match tx.transaction_witness_set.redeemer.as_deref() {
            Some(Redeemers::List(list)) => {
                for r in list {
                    take(r.tag, r.index, &r.data);
                }
            }
            Some(Redeemers::Map(map)) => {
                for (k, v) in map {
                    take(k.tag, k.index, &v.data);
                }
            }
            None => {}
        }
        Ok(EscrowTx {
            id,
            block_height: at.height,
            block_index: at.index,
            slot: at.slot,
            valid: tx.success,
            valid_from_slot: body.validity_interval_start,
            invalid_from_slot: body.ttl,
            required_signers: body
                .required_signers
                .iter()
                .flat_map(|s| s.iter().map(|h| **h))
                .collect(),
            inputs: inputs
                .into_iter()
                .map(|reference| TxInput {
                    reference,
                    output: None,
                })
                .collect(),
            outputs,
            mint,
            withdraws,
            redeemers,
        })
    }

    /// The references of the inputs a spend redeemer names (script inputs):
    /// the ones the auditor must resolve.
    pub fn script_inputs(&self) -> Vec<OutputReference> {
        self.redeemers
            .spend
            .keys()
            .filter_map(|i| self.inputs.get(*i as usize).map(|x| x.reference))
            .collect()
    }
}

/// A deployment's history over a range of slots: every transaction that paid
/// to or spent from the escrow address, in chain order.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The deployment.
    pub target: Target,
    /// Slot ↔ POSIX time, for the deadlines.
    pub slot_config: SlotConfig,
    /// First slot audited.
    pub from_slot: u64,
    /// Last slot audited (the tip's when the range is open).
    pub to_slot: u64,
    /// POSIX ms at `to_slot`: the "now" against which unsettled escrows are
    /// judged overdue.
    pub now_ms: u64,
    /// The transactions, oldest first.
    pub txs: Vec<EscrowTx>,
    /// Where the deployment's job tokens sit now, at any address (read when
    /// the audit runs, whatever its range).
    pub holdings: Vec<crate::chain::AssetHolding>,
}
