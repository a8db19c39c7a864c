//! Ledger state types: output references, stake credentials, reward accounts,
//! and the result of validating a transaction (what applying it changes).

use std::fmt;

use pallas_crypto::hash::Hash;
use serde::{Deserialize, Serialize};

/// A reference to a transaction output (`tx_hash#index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutRef {
    /// Transaction id.
    pub tx_hash: Hash<32>,
    /// Output index.
    pub index: u32,
}

impl OutRef {
    /// New reference.
    pub fn new(tx_hash: Hash<32>, index: u32) -> Self {
        Self { tx_hash, index }
    }

    /// CBOR of the ledger's `TransactionInput` (`[hash, index]`).
    pub fn to_cbor(&self) -> Vec<u8> {
        let input = pallas_primitives::TransactionInput {
            transaction_id: self.tx_hash,
            index: self.index as u64,
        };
        let mut buf = Vec::new();
        let _ = pallas_codec::minicbor::encode(&input, &mut buf);
        buf
    }
}

impl fmt::Display for OutRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.tx_hash, self.index)
    }
}

impl From<&pallas_primitives::TransactionInput> for OutRef {
    fn from(i: &pallas_primitives::TransactionInput) -> Self {
        OutRef::new(i.transaction_id, i.index as u32)
    }
}

/// A stake credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Credential {
    /// A verification-key hash.
    Key(Hash<28>),
    /// A script hash.
    Script(Hash<28>),
}

impl Credential {
    /// The hash.
    pub fn hash(&self) -> &Hash<28> {
        match self {
            Credential::Key(h) | Credential::Script(h) => h,
        }
    }

    /// From pallas's credential.
    pub fn from_pallas(c: &pallas_primitives::StakeCredential) -> Self {
        match c {
            pallas_primitives::StakeCredential::AddrKeyhash(h) => Credential::Key(*h),
            pallas_primitives::StakeCredential::ScriptHash(h) => Credential::Script(*h),
        }
    }

    /// The reward address bytes on network 0 (header 0xe0 key / 0xf0 script).
    pub fn reward_address(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(29);
        v.push(match self {
            Credential::Key(_) => 0xe0,
            Credential::Script(_) => 0xf0,
        });
        v.extend_from_slice(self.hash().as_ref());
        v
    }

    /// Text key used in storage: `key:<hex>` or `script:<hex>`.
    pub fn to_key(&self) -> String {
        match self {
            Credential::Key(h) => format!("key:{h}"),
            Credential::Script(h) => format!("script:{h}"),
        }
    }

    /// Inverse of [`Credential::to_key`].
    pub fn from_key(s: &str) -> Option<Self> {
        let (kind, h) = s.split_once(':')?;
        let bytes = hex::decode(h).ok()?;
        let arr: [u8; 28] = bytes.try_into().ok()?;
        match kind {
            "key" => Some(Credential::Key(Hash::new(arr))),
            "script" => Some(Credential::Script(Hash::new(arr))),
            _ => None,
        }
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key())
    }
}

/// A registered reward account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Reward balance (the devnet pays no rewards, so this stays 0 unless seeded).
    pub balance: u64,
    /// Deposit paid at registration, refunded at deregistration.
    pub deposit: u64,
}

/// What the rules need to know about the ledger: UTxOs and reward accounts,
/// as seen by a new transaction (the chain plus the mempool).
pub trait LedgerView {
    /// Looks an output up.
    fn utxo(&self, r: &OutRef) -> Lookup<'_>;
    /// A reward account, if registered.
    fn account(&self, c: &Credential) -> Option<Account>;
}

/// The result of looking an output up.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// Unspent; its CBOR.
    Unspent(&'a [u8]),
    /// Spent by a transaction still in the mempool.
    SpentByPending(Hash<32>),
    /// Not in the UTxO set.
    Unknown,
}

/// One redeemer's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemerReport {
    /// "spend", "mint", "cert", "reward", "vote" or "propose".
    pub purpose: String,
    /// Redeemer index.
    pub index: u32,
    /// Hash of the script it ran.
    pub script_hash: String,
    /// Hash of the redeemer data (blake2b-256 of its CBOR).
    pub redeemer_data_hash: String,
    /// Declared memory.
    pub unit_mem: u64,
    /// Declared steps.
    pub unit_steps: u64,
    /// Measured memory.
    pub measured_mem: u64,
    /// Measured steps.
    pub measured_steps: u64,
    /// `ceil(prices · declared units)` of this redeemer.
    pub fee: u64,
}

/// A transaction that passed the rules, and what applying it changes.
#[derive(Debug, Clone)]
pub struct ValidatedTx {
    /// Transaction id.
    pub hash: Hash<32>,
    /// The CBOR as submitted.
    pub cbor: Vec<u8>,
    /// The is_valid flag (false: only collateral is taken).
    pub is_valid: bool,
    /// Lovelace the chain keeps: the fee, or the collateral for is_valid=false.
    pub fee: u64,
    /// Outputs spent (inputs, or collateral inputs when is_valid=false).
    pub consumed: Vec<OutRef>,
    /// Outputs created with their CBOR.
    pub produced: Vec<(OutRef, Vec<u8>)>,
    /// Reward-account changes in order (None = deregistered).
    pub account_updates: Vec<(Credential, Option<Account>)>,
    /// Redeemer outcomes.
    pub redeemers: Vec<RedeemerReport>,
    /// Size in bytes.
    pub size: u64,
    /// Σ declared mem.
    pub ex_mem: u64,
    /// Σ declared steps.
    pub ex_steps: u64,
    /// Net deposit (deposits − refunds).
    pub deposit: i64,
    /// Validity start.
    pub invalid_before: Option<u64>,
    /// TTL.
    pub invalid_hereafter: Option<u64>,
}
