//! The mempool: validated transactions waiting for a block, with what they
//! spend, create and change, so that later submissions are validated against
//! the chain *and* what waits, as on a node.

use std::collections::{HashMap, HashSet};

use pallas_crypto::hash::Hash;

use crate::ledger::{Account, Credential, OutRef, ValidatedTx};

/// Transactions waiting for a block, in the order they were accepted.
#[derive(Default)]
pub(crate) struct Mempool {
    /// The transactions.
    pub txs: Vec<ValidatedTx>,
    /// Outputs they spend, and by which.
    pub spent: HashMap<OutRef, Hash<32>>,
    /// Outputs they create that none of them spends.
    pub produced: HashMap<OutRef, Vec<u8>>,
    /// Reward-account states after them.
    pub accounts: HashMap<Credential, Option<Account>>,
    /// Their ids.
    pub ids: HashSet<Hash<32>>,
    /// Their total size in bytes.
    bytes: u64,
}

impl Mempool {
    /// Adds `tx`, validated against the chain and what already waits.
    pub fn push(&mut self, tx: ValidatedTx) {
        for r in &tx.consumed {
            self.produced.remove(r);
            self.spent.insert(*r, tx.hash);
        }
        for (r, b) in &tx.produced {
            self.produced.insert(*r, b.clone());
        }
        for (c, a) in &tx.account_updates {
            self.accounts.insert(*c, *a);
        }
        self.ids.insert(tx.hash);
        self.bytes += tx.size;
        self.txs.push(tx);
    }

    /// Their total size in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Empties the mempool; returns what waited, in order.
    pub fn take_all(&mut self) -> Vec<ValidatedTx> {
        std::mem::take(self).txs
    }

    /// Puts back the transactions a block left over, re-checked as a node
    /// re-checks its mempool after a block: only for what the block can change.
    /// The block took a prefix of the mempool, validated in order (and dropped
    /// none of it), so a leftover's inputs and accounts are as they were when it
    /// was validated; what can change is time (its validity interval passing at
    /// `slot`) — checked here with its inputs against `utxo` and what waits,
    /// never its scripts or signatures again.
    pub fn readmit_leftover(
        &mut self,
        txs: Vec<ValidatedTx>,
        utxo: &HashMap<OutRef, Vec<u8>>,
        slot: u64,
    ) {
        for tx in txs {
            let expired = tx.invalid_hereafter.is_some_and(|t| slot >= t);
            let inputs_ok = tx.consumed.iter().all(|r| {
                !self.spent.contains_key(r)
                    && (utxo.contains_key(r) || self.produced.contains_key(r))
            });
            if expired || !inputs_ok {
                tracing::info!(tx = %tx.hash, expired, "dropped from the mempool after a block");
                continue;
            }
            self.push(tx);
        }
    }
}
