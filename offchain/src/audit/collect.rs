//! Reading a deployment's history from a chain, through [`ChainProvider`] only.

use std::collections::HashMap;

use pallas_addresses::{
    Address as LedgerAddress, ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart,
};
use pallas_crypto::hash::Hash;

use super::history::{BlockPosition, DecodeError, EscrowTx, History, Target};
use crate::chain::{BlockRange, ChainError, ChainProvider, TxId};
use crate::network::Network;
use crate::protocol::OutputReference;
use crate::tx::TxOutput;

/// Slots to audit, both ends included (`None`: from genesis, up to the tip).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot.
    pub from: Option<u64>,
    /// Last slot.
    pub to: Option<u64>,
}

/// Why an audit could not run (a finding is not an error: see [`super::Finding`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The chain provider failed.
    #[error("reading the chain failed: {0}")]
    Chain(#[from] ChainError),
    /// A transaction the provider served cannot be decoded.
    #[error("{0}; the provider may serve another era's or a corrupted transaction")]
    Decode(#[from] DecodeError),
    /// The slot range is empty or lies past the tip.
    #[error("{0}")]
    Range(String),
}

/// The escrow's address on `network`: its script hash, no stake part.
pub fn escrow_address(script_hash: &[u8; 28], network: Network) -> LedgerAddress {
    LedgerAddress::Shelley(ShelleyAddress::new(
        network.address_network(),
        ShelleyPaymentPart::Script(Hash::new(*script_hash)),
        ShelleyDelegationPart::Null,
    ))
}

/// Reads every transaction that paid to or spent from the escrow address of
/// `target` within `range`, decodes them, and resolves the inputs they spend
/// with a script (fetching the producing transactions the range leaves out).
pub async fn collect_history(
    chain: &dyn ChainProvider,
    target: Target,
    network: Network,
    range: SlotRange,
) -> Result<History, AuditError> {
    let tip = chain.tip().await?;
    let slot_config = chain.slot_config().await?;
    let from_slot = range.from.unwrap_or(0);
    let to_slot = range.to.unwrap_or(tip.slot);
    if from_slot > to_slot {
        return Err(AuditError::Range(format!(
            "--from-slot {from_slot} is after --to-slot {to_slot}: give a non-empty range"
        )));
    }
    let address = escrow_address(&target.script_hash, network);
    let listed = chain
        .address_transactions(&address, BlockRange::ALL)
        .await?;
    let mut txs = Vec::new();
    for entry in listed {
        let info = chain.tx_info(&entry.tx_id).await?;
        if info.slot < from_slot || info.slot > to_slot {
            continue;
        }
        let cbor = chain.tx_cbor(&entry.tx_id).await?;
        let at = BlockPosition {
            height: info.block_height,
            index: info.index,
            slot: info.slot,
        };
        let mut tx = EscrowTx::decode(&cbor, at, &target.script_hash)?;
        if tx.id != entry.tx_id {
            return Err(AuditError::Decode(DecodeError {
                tx: hex::encode(entry.tx_id),
                detail: format!("the provider served transaction {}", hex::encode(tx.id)),
            }));
        }
        tx.valid = tx.valid && info.valid_contract;
        txs.push(tx);
    }
    txs.sort_by_key(|t| (t.block_height, t.block_index));

    // Outputs of the transactions read (valid ones only: a failed
    // transaction creates only its collateral return).
    let mut outputs: HashMap<TxId, Option<Vec<TxOutput>>> = txs
        .iter()
        .map(|t| (t.id, t.valid.then(|| t.outputs.clone())))
        .collect();
    for tx in txs.iter_mut() {
        for r in tx.script_inputs() {
            if let std::collections::hash_map::Entry::Vacant(e) = outputs.entry(r.transaction_id) {
                e.insert(produced_outputs(chain, &r.transaction_id, &target.script_hash).await?);
            }
            let output = resolve(&outputs, &r);
            if let Some(input) = tx.inputs.iter_mut().find(|x| x.reference == r) {
                input.output = output;
            }
        }
    }
    let holdings = chain.policy_holdings(&target.script_hash).await?;
    Ok(History {
        holdings,
        target,
        slot_config,
        from_slot,
        to_slot,
        now_ms: slot_config.slot_to_posix_ms(to_slot),
        txs,
    })
}

fn resolve(
    outputs: &HashMap<TxId, Option<Vec<TxOutput>>>,
    r: &OutputReference,
) -> Option<TxOutput> {
    outputs
        .get(&r.transaction_id)?
        .as_ref()?
        .get(usize::try_from(r.output_index).ok()?)
        .cloned()
}

/// The outputs a transaction outside the range created (`None` when its
/// scripts failed, or it is not a Conway transaction, so none of its outputs
/// can be an escrow's).
async fn produced_outputs(
    chain: &dyn ChainProvider,
    tx: &TxId,
    script_hash: &[u8; 28],
) -> Result<Option<Vec<TxOutput>>, AuditError> {
    let cbor = chain.tx_cbor(tx).await?;
    let at = BlockPosition {
        height: 0,
        index: 0,
        slot: 0,
    };
    Ok(EscrowTx::decode(&cbor, at, script_hash)
        .ok()
        .filter(|t| t.valid)
        .map(|t| t.outputs))
}
