//! Chain access: one async trait, [`ChainProvider`], for everything the
//! builders, the `ntx` commands and the auditor read from or send to a chain
//! (an address's history and raw transactions included), and its
//! Blockfrost-compatible HTTP implementation, [`Blockfrost`] (blockfrost.io,
//! Yaci DevKit's store, this project's devnet).
//!
//! In the dolos style the trait lives in the core and adapters sit at the
//! edge: builders take `&dyn ChainProvider` (or a generic `P: ChainProvider`)
//! and never see HTTP or JSON. The trait uses `async-trait` (boxed futures)
//! so that it stays dyn-compatible: `ntx` picks a provider at run time and
//! holds it as `Box<dyn ChainProvider>` / `Arc<dyn ChainProvider>`.
//!
//! Values come back in this crate's own types: UTxOs as [`crate::tx::Utxo`],
//! prices as [`crate::tx::FeeParams`], evaluation settings as
//! [`crate::Evaluator`]. Every failure is a [`ChainError`] that tells a
//! ledger rejection apart from a missing item, a network failure and a
//! malformed response.

mod blockfrost;
mod convert;
mod params;
mod rejection;
mod retry;

use std::time::Duration;

use pallas_addresses::{Address, StakeAddress};
use tokio_util::sync::CancellationToken;

pub use blockfrost::{Blockfrost, PROJECT_ID_ENV};
pub use params::{CostModels, ProtocolParams};
pub use rejection::{LedgerRule, rules_named_in};
pub use retry::RetryPolicy;

use crate::evaluate::{ExUnits, SlotConfig};
use crate::protocol::{OutputReference, blake2b_256};
use crate::tx::Utxo;

/// A transaction id (blake2b-256 of the body).
pub type TxId = [u8; 32];

/// The chain's tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Absolute slot of the tip block.
    pub slot: u64,
    /// Block height (number of blocks since genesis).
    pub height: u64,
    /// The tip block's hash.
    pub hash: [u8; 32],
}

/// A registered reward (stake) account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardAccount {
    /// Lovelace a withdrawal must take, exactly (the ledger accepts no other amount).
    pub withdrawable: u64,
}

/// How much of one asset one address holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetHolding {
    /// The asset's name under the policy asked for.
    pub name: Vec<u8>,
    /// The holder's address bytes.
    pub address: Vec<u8>,
    /// The quantity it holds.
    pub quantity: u64,
}

/// Where a transaction sits on the chain, once awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmation {
    /// The transaction.
    pub tx_id: TxId,
    /// The block that includes it.
    pub block_hash: [u8; 32],
    /// That block's height.
    pub block_height: u64,
    /// That block's slot.
    pub slot: u64,
    /// Blocks on the chain from the including block to the tip, both counted:
    /// 1 when the transaction is in the tip block.
    pub confirmations: u64,
}

/// How [`ChainProvider::await_tx`] waits.
#[derive(Debug, Clone)]
pub struct AwaitOptions {
    /// Confirmations wanted (1: in a block; see [`Confirmation::confirmations`]).
    /// 0 is treated as 1.
    pub confirmations: u64,
    /// Give up with [`ChainError::Timeout`] after this long.
    pub timeout: Duration,
    /// First pause between polls; doubles up to `max_poll`.
    pub first_poll: Duration,
    /// Longest pause between polls.
    pub max_poll: Duration,
    /// Stop early with [`ChainError::Cancelled`] when cancelled.
    pub cancel: CancellationToken,
}

impl AwaitOptions {
    /// `confirmations` within `timeout`, polling from 500 ms up to 10 s, never cancelled.
    pub fn new(confirmations: u64, timeout: Duration) -> AwaitOptions {
        AwaitOptions {
            confirmations,
            timeout,
            first_poll: Duration::from_millis(500),
            max_poll: Duration::from_secs(10),
            cancel: CancellationToken::new(),
        }
    }

    /// These options, stopped by `cancel`.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> AwaitOptions {
        self.cancel = cancel;
        self
    }

    /// These options, polling from `first` up to `max`.
    pub fn with_poll(mut self, first: Duration, max: Duration) -> AwaitOptions {
        self.first_poll = first;
        self.max_poll = max;
        self
    }
}

/// The id of a signed Conway transaction: blake2b-256 of its body's bytes as sent
/// (`None` when the bytes are not a transaction).
pub fn tx_id_of(tx_cbor: &[u8]) -> Option<TxId> {
    let tx: pallas_primitives::conway::Tx<'_> = pallas_codec::minicbor::decode(tx_cbor).ok()?;
    Some(blake2b_256(tx.transaction_body.raw_cbor()))
}

/// The polls of one [`ChainProvider::await_tx`] that `options` describe: pauses
/// from `first_poll`, doubling up to `max_poll`, until the timeout or the cancel
/// token; and the test of whether a transaction found in a block is deep enough.
pub struct AwaitSchedule<'a> {
    options: &'a AwaitOptions,
    start: tokio::time::Instant,
    deadline: tokio::time::Instant,
    pause: Duration,
}

impl<'a> AwaitSchedule<'a> {
    /// A schedule starting now.
    pub fn new(options: &'a AwaitOptions) -> Self {
        let start = tokio::time::Instant::now();
        AwaitSchedule {
            options,
            start,
            deadline: start + options.timeout,
            pause: options.first_poll.max(Duration::from_millis(1)),
        }
    }

    /// Confirmations wanted (at least 1).
    pub fn wanted(&self) -> u64 {
        self.options.confirmations.max(1)
    }

    /// [`ChainError::Cancelled`] once the options' token is cancelled.
    pub fn check_cancelled(&self) -> Result<(), ChainError> {
        if self.options.cancel.is_cancelled() {
            return Err(ChainError::Cancelled);
        }
        Ok(())
    }

    /// `tx`'s confirmation when its block (`height`, `hash`, `slot`) is deep
    /// enough under a tip at `tip_height`.
    pub fn confirmed(
        &self,
        tx: &TxId,
        (block_height, block_hash, slot): (u64, [u8; 32], u64),
        tip_height: u64,
    ) -> Option<Confirmation> {
        let confirmations = (tip_height + 1).saturating_sub(block_height);
        (confirmations >= self.wanted()).then_some(Confirmation {
            tx_id: *tx,
            block_hash,
            block_height,
            slot,
            confirmations,
        })
    }

    /// Waits until the next poll of `tx`: [`ChainError::Timeout`] once the
    /// timeout has passed, [`ChainError::Cancelled`] if cancelled meanwhile.
    pub async fn pause(&mut self, tx: &TxId) -> Result<(), ChainError> {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return Err(ChainError::Timeout {
                tx: hex::encode(tx),
                wanted: self.wanted(),
                waited: now - self.start,
            });
        }
        tokio::select! {
            _ = self.options.cancel.cancelled() => return Err(ChainError::Cancelled),
            _ = tokio::time::sleep(self.pause.min(self.deadline - now)) => {}
        }
        self.pause = (self.pause * 2).min(self.options.max_poll.max(self.options.first_poll));
        Ok(())
    }
}

/// One metadata entry of a transaction, as JSON (Blockfrost's `json_metadata`
/// shape: byte strings as `"0x…"` text, maps with text keys).
#[derive(Debug, Clone, PartialEq)]
pub struct TxMetadata {
    /// The metadata label.
    pub label: u64,
    /// The value under that label.
    pub json: serde_json::Value,
}

/// A range of blocks, by height, both ends included (`None`: open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockRange {
    /// First block height listed.
    pub from: Option<u64>,
    /// Last block height listed.
    pub to: Option<u64>,
}

impl BlockRange {
    /// Every block.
    pub const ALL: BlockRange = BlockRange {
        from: None,
        to: None,
    };

    /// Whether `height` is in the range.
    pub fn contains(&self, height: u64) -> bool {
        self.from.is_none_or(|f| height >= f) && self.to.is_none_or(|t| height <= t)
    }
}

/// A transaction that touched an address (spent from it or paid to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressTx {
    /// The transaction.
    pub tx_id: TxId,
    /// Height of the block that includes it.
    pub block_height: u64,
    /// Its index within that block.
    pub tx_index: u64,
    /// POSIX seconds of that block.
    pub block_time: u64,
}

/// Where a confirmed transaction is, and whether its scripts passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxInfo {
    /// The transaction.
    pub tx_id: TxId,
    /// The block that includes it.
    pub block_hash: [u8; 32],
    /// That block's height.
    pub block_height: u64,
    /// That block's slot.
    pub slot: u64,
    /// POSIX seconds of that block.
    pub block_time: u64,
    /// Its index within the block.
    pub index: u64,
    /// `false` when its scripts failed and only its collateral was taken
    /// (Blockfrost's `valid_contract`).
    pub valid_contract: bool,
}

/// A transaction's metadata under one label (from a search by label).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledMetadata {
    /// The transaction carrying it.
    pub tx_id: TxId,
    /// The value under the label.
    pub json: serde_json::Value,
}

/// What a redeemer validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemerPurpose {
    /// Spending an input.
    Spend,
    /// Minting or burning.
    Mint,
    /// A certificate.
    Cert,
    /// A withdrawal.
    Reward,
    /// A governance vote.
    Vote,
    /// A governance proposal.
    Propose,
    /// A purpose this crate does not know, as the provider named it.
    Other(String),
}

/// A redeemer of a confirmed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRedeemer {
    /// What it validated.
    pub purpose: RedeemerPurpose,
    /// Its index among the transaction's items of that purpose.
    pub index: u32,
    /// The script it ran.
    pub script_hash: [u8; 28],
    /// blake2b-256 of the redeemer data's CBOR.
    pub redeemer_data_hash: [u8; 32],
    /// The units it declared.
    pub ex_units: ExUnits,
    /// Lovelace its units cost.
    pub fee: u64,
}

/// Why a chain operation failed.
///
/// Messages never contain the provider's credentials (the Blockfrost project
/// id travels only in a header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The ledger rejected a submitted transaction (HTTP 400 on submit); the
    /// message is the ledger's (or the devnet's) reason and names the rule.
    /// Build it with [`ChainError::rejected`], which reads the rules.
    #[error("the ledger rejected the transaction: {reason}")]
    Rejected {
        /// The provider's message.
        reason: String,
        /// The ledger rules the message names, read once from it.
        rules: Vec<LedgerRule>,
    },
    /// The item does not exist (HTTP 404): an unknown transaction, script, output.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked up.
        what: String,
    },
    /// The provider could not be reached, or kept failing (429/425/5xx or a
    /// connection error) until the retry budget ran out.
    #[error("the chain provider is unreachable after {attempts} attempt(s) at {endpoint}: {last}")]
    Network {
        /// The path asked for (no host, no credentials).
        endpoint: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The provider answered with something this client cannot read.
    #[error("bad response from {endpoint}: {detail}")]
    BadResponse {
        /// The path asked for.
        endpoint: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The provider refused the request for another reason (HTTP 400 outside
    /// submit, 402/403 quota or credentials, 418 banned, …).
    #[error("the chain provider refused {endpoint} (HTTP {status}): {message}")]
    Refused {
        /// The path asked for.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The provider serves another network than the one asked for.
    #[error(
        "the provider serves network magic {served}, but {expected} was asked for: check --network and --provider-url"
    )]
    WrongNetwork {
        /// The network asked for.
        expected: String,
        /// The magic the provider reports.
        served: u64,
    },
    /// The client is misconfigured (a missing project id, a bad URL).
    #[error("{0}")]
    Config(String),
    /// [`ChainProvider::await_tx`] ran out of time.
    #[error("transaction {tx} did not reach {wanted} confirmation(s) within {waited:?}")]
    Timeout {
        /// The transaction id (hex).
        tx: String,
        /// Confirmations wanted.
        wanted: u64,
        /// How long it waited.
        waited: Duration,
    },
    /// [`ChainProvider::await_tx`] was cancelled.
    #[error("waiting for the transaction was cancelled")]
    Cancelled,
    /// This provider cannot answer this kind of question (e.g. a node socket
    /// keeps no index of an address's history).
    #[error(
        "this chain provider cannot {operation}: use a Blockfrost-compatible provider (--provider-url)"
    )]
    Unsupported {
        /// What was asked.
        operation: String,
    },
}

impl ChainError {
    /// A ledger rejection with the provider's message `reason`, its rules read
    /// from it.
    pub fn rejected(reason: impl Into<String>) -> ChainError {
        let reason = reason.into();
        ChainError::Rejected {
            rules: rejection::rules_named_in(&reason),
            reason,
        }
    }

    /// Whether this is a ledger rejection for `rule`.
    pub fn is_rejection_by(&self, rule: LedgerRule) -> bool {
        matches!(self, ChainError::Rejected { rules, .. } if rules.contains(&rule))
    }
}

/// A Cardano chain, as the off-chain code needs it.
///
/// Implementations must be cheap to share (`Send + Sync`); all methods take
/// `&self`.
#[async_trait::async_trait]
pub trait ChainProvider: Send + Sync {
    /// The current protocol parameters.
    async fn protocol_params(&self) -> Result<ProtocolParams, ChainError>;

    /// The tip block.
    async fn tip(&self) -> Result<Tip, ChainError>;

    /// How slots map to POSIX time (for validity intervals and script evaluation).
    async fn slot_config(&self) -> Result<SlotConfig, ChainError>;

    /// Every UTxO at `address` (all pages; empty for an address never seen).
    async fn utxos_at(&self, address: &Address) -> Result<Vec<Utxo>, ChainError>;

    /// Every UTxO at any address whose stake part is `stake` (all pages; empty for
    /// a credential never seen). Blockfrost: `/accounts/{stake_address}/utxos`.
    async fn utxos_at_stake(&self, stake: &StakeAddress) -> Result<Vec<Utxo>, ChainError>;

    /// Who holds each asset of `policy` now (Blockfrost's `/assets/policy/…`
    /// and `/assets/{unit}/addresses`).
    async fn policy_holdings(&self, policy: &[u8; 28]) -> Result<Vec<AssetHolding>, ChainError>;

    /// The reward account of `stake`; `None` when it is not registered.
    async fn reward_account(
        &self,
        stake: &StakeAddress,
    ) -> Result<Option<RewardAccount>, ChainError>;

    /// The UTxOs at `address` that hold some of one asset (all pages).
    async fn utxos_at_with_asset(
        &self,
        address: &Address,
        policy: &[u8; 28],
        name: &[u8],
    ) -> Result<Vec<Utxo>, ChainError>;

    /// The output at `reference`: `Ok(None)` when the provider reports it spent,
    /// [`ChainError::NotFound`] when the transaction or the index does not exist.
    async fn utxo_by_ref(&self, reference: &OutputReference) -> Result<Option<Utxo>, ChainError>;

    /// Submits a signed transaction (its CBOR) and returns its id.
    async fn submit(&self, tx_cbor: &[u8]) -> Result<TxId, ChainError>;

    /// Waits until `tx` has `options.confirmations` confirmations.
    async fn await_tx(&self, tx: &TxId, options: &AwaitOptions)
    -> Result<Confirmation, ChainError>;

    /// A confirmed transaction's metadata, by label.
    async fn tx_metadata(&self, tx: &TxId) -> Result<Vec<TxMetadata>, ChainError>;

    /// A confirmed transaction's redeemers.
    async fn tx_redeemers(&self, tx: &TxId) -> Result<Vec<TxRedeemer>, ChainError>;

    /// Every transaction's metadata under `label` (all pages, oldest first).
    async fn metadata_by_label(&self, label: u64) -> Result<Vec<LabelledMetadata>, ChainError>;

    /// Every confirmed transaction that spent from or paid to `address`, in
    /// `range`, oldest first (all pages; empty for an address never seen).
    /// Blockfrost: `/addresses/{address}/transactions?from=&to=`.
    ///
    /// The default answers [`ChainError::Unsupported`], for providers that
    /// keep no address index.
    async fn address_transactions(
        &self,
        address: &Address,
        range: BlockRange,
    ) -> Result<Vec<AddressTx>, ChainError> {
        let _ = (address, range);
        Err(ChainError::Unsupported {
            operation: "list an address's transactions".into(),
        })
    }

    /// A confirmed transaction's CBOR, as it was submitted (Blockfrost:
    /// `/txs/{hash}/cbor`). The default answers [`ChainError::Unsupported`].
    async fn tx_cbor(&self, tx: &TxId) -> Result<Vec<u8>, ChainError> {
        let _ = tx;
        Err(ChainError::Unsupported {
            operation: "serve a transaction's CBOR".into(),
        })
    }

    /// Where a confirmed transaction is ([`ChainError::NotFound`] if it is in
    /// no block). Blockfrost: `/txs/{hash}`. The default answers
    /// [`ChainError::Unsupported`].
    async fn tx_info(&self, tx: &TxId) -> Result<TxInfo, ChainError> {
        let _ = tx;
        Err(ChainError::Unsupported {
            operation: "locate a transaction".into(),
        })
    }

    /// The slot a transaction built now lands in: the later of the tip's slot
    /// and the wall clock's (blocks can be far apart, so the tip alone lags).
    /// Chains with their own clock (a devnet on a manual clock) override it.
    async fn current_slot(&self) -> Result<u64, ChainError> {
        let tip = self.tip().await?;
        let sc = self.slot_config().await?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Ok(tip.slot.max(sc.posix_ms_to_slot(now_ms)))
    }

    /// The UTxOs at several references, in order (see [`ChainProvider::utxo_by_ref`]).
    async fn utxos_by_ref(
        &self,
        references: &[OutputReference],
    ) -> Result<Vec<Option<Utxo>>, ChainError> {
        let mut out = Vec::with_capacity(references.len());
        for r in references {
            out.push(self.utxo_by_ref(r).await?);
        }
        Ok(out)
    }
}
