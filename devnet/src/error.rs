//! Errors. [`LedgerError`] is a transaction's rejection: each variant names the
//! ledger rule it breaks (the Haskell ledger's predicate-failure name in
//! parentheses) and says what to change. [`DevnetError`] is everything else.

use crate::params::ParamsError;

/// A rejected transaction: which ledger rule it breaks.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LedgerError {
    /// The bytes are not a Conway transaction.
    #[error("the transaction is not valid Conway-era CBOR ({0}); build it for the Conway era")]
    Decode(String),
    /// The ledger's CBOR decoder refuses the bytes (an empty set or map where the
    /// CDDL wants a non-empty one, a zero quantity, a repeated key).
    #[error(
        "the transaction does not decode as the Conway ledger decodes it: {detail} (ledger decoder: {rule})"
    )]
    Undecodable {
        /// The ledger's name for the failure.
        rule: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A metadata value breaks the UTXOW metadata rule.
    #[error("{0} (UTXOW rule: InvalidMetadata)")]
    InvalidMetadata(String),
    /// No spending inputs.
    #[error("the transaction spends no inputs (UTXO rule: InputSetEmptyUTxO)")]
    NoInputs,
    /// An input (spent, collateral or reference) is not in the UTxO set.
    #[error(
        "{kind} {input} is not in the UTxO set: it never existed or was spent in a block (UTXO rule: BadInputsUTxO); refresh your UTxOs"
    )]
    UnknownInput {
        /// `tx_hash#index`.
        input: String,
        /// "input", "collateral input" or "reference input".
        kind: &'static str,
    },
    /// An input is already spent by a transaction waiting in the mempool.
    #[error(
        "{kind} {input} is already spent by pending transaction {by} in the mempool (double spend; UTXO rule: BadInputsUTxO); wait for a block or spend another output"
    )]
    DoubleSpend {
        /// `tx_hash#index`.
        input: String,
        /// "input" or "collateral input" or "reference input".
        kind: &'static str,
        /// The pending transaction.
        by: String,
    },
    /// An output is both spent and referenced.
    #[error(
        "{input} is both a spent input and a reference input (Conway UTXO rule: BabbageNonDisjointRefInputs); reference it or spend it, not both"
    )]
    NonDisjointRefInputs {
        /// `tx_hash#index`.
        input: String,
    },
    /// Current slot is before the validity interval's start.
    #[error(
        "the transaction is not valid yet: current slot {slot} is before its validity start {start} (UTXO rule: OutsideValidityIntervalUTxO)"
    )]
    NotYetValid {
        /// Current slot.
        slot: u64,
        /// `invalid_before`.
        start: u64,
    },
    /// Current slot is at or after the TTL.
    #[error(
        "the transaction has expired: current slot {slot} is not before its TTL {ttl}; the interval is [start, ttl) (UTXO rule: OutsideValidityIntervalUTxO)"
    )]
    Expired {
        /// Current slot.
        slot: u64,
        /// `invalid_hereafter`.
        ttl: u64,
    },
    /// An address or the body's network id is not for this network.
    #[error(
        "{what} is not for network id 0 (UTXO rule: {rule}); the devnet is a testnet (network id 0)"
    )]
    WrongNetwork {
        /// What was wrong.
        what: String,
        /// WrongNetwork, WrongNetworkInTxBody or WrongNetworkWithdrawal.
        rule: &'static str,
    },
    /// The transaction is larger than `max_tx_size`.
    #[error(
        "the transaction is {size} bytes, over the {max}-byte limit (UTXO rule: MaxTxSizeUTxO)"
    )]
    TxTooLarge {
        /// Size in bytes.
        size: u64,
        /// `max_tx_size`.
        max: u64,
    },
    /// The fee is below the minimum.
    #[error(
        "the fee {paid} is below the minimum {min} = size fee {size_fee} + script fee {script_fee} + reference-script fee {ref_script_fee} (UTXO rule: FeeTooSmallUTxO); raise the fee"
    )]
    FeeTooSmall {
        /// Declared fee.
        paid: u64,
        /// Minimum.
        min: u64,
        /// `a*size+b`.
        size_fee: u64,
        /// Execution-unit prices.
        script_fee: u64,
        /// Tiered reference-script fee.
        ref_script_fee: u64,
    },
    /// An output holds less lovelace than min-UTxO.
    #[error(
        "{which} holds {coin} lovelace, below its minimum {min} = coinsPerUTxOByte * (160 + {size} bytes) (UTXO rule: BabbageOutputTooSmallUTxO)"
    )]
    OutputTooSmall {
        /// "output #i" or "collateral return".
        which: String,
        /// Lovelace it holds.
        coin: u64,
        /// Required.
        min: u64,
        /// Serialized size.
        size: u64,
    },
    /// An output's value is too large when serialized.
    #[error(
        "{which}'s value is {size} bytes serialized, over max_val_size {max} (UTXO rule: OutputTooBigUTxO)"
    )]
    OutputValueTooBig {
        /// "output #i".
        which: String,
        /// Serialized value size.
        size: u64,
        /// Limit.
        max: u64,
    },
    /// Too many reference-script bytes.
    #[error(
        "the reference scripts this transaction uses total {size} bytes, over the {max}-byte per-transaction cap (LEDGER rule: ConwayTxRefScriptsSizeTooBig)"
    )]
    RefScriptsTooBig {
        /// Total size.
        size: u64,
        /// Cap.
        max: u64,
    },
    /// Declared execution units exceed the per-transaction maximum.
    #[error(
        "the redeemers declare mem {mem} / steps {steps} in total, over the per-transaction maximum mem {max_mem} / steps {max_steps} (UTXO rule: ExUnitsTooBigUTxO)"
    )]
    ExUnitsTooBig {
        /// Σ mem.
        mem: u64,
        /// Σ steps.
        steps: u64,
        /// Limit.
        max_mem: u64,
        /// Limit.
        max_steps: u64,
    },
    /// Scripts run but no collateral.
    #[error(
        "the transaction runs Plutus scripts but has no collateral inputs (UTXO rule: NoCollateralInputs)"
    )]
    NoCollateral,
    /// Too many collateral inputs.
    #[error(
        "{count} collateral inputs, over the maximum {max} (UTXO rule: TooManyCollateralInputs)"
    )]
    TooManyCollateralInputs {
        /// Count.
        count: u64,
        /// Limit.
        max: u64,
    },
    /// A collateral input is locked by a script.
    #[error(
        "collateral input {input} is locked by a script; collateral must be key-locked (UTXO rule: ScriptsNotPaidUTxO)"
    )]
    CollateralNotVKey {
        /// `tx_hash#index`.
        input: String,
    },
    /// Collateral minus its return is not pure ADA.
    #[error(
        "the collateral inputs minus the collateral return hold native assets; return every token in the collateral return output (UTXO rule: CollateralContainsNonADA)"
    )]
    CollateralHasAssets,
    /// Collateral below `fee * collateral_percent / 100`.
    #[error(
        "collateral {provided} lovelace is below the required {required} (= {percent}% of the fee) (UTXO rule: InsufficientCollateral)"
    )]
    InsufficientCollateral {
        /// Net collateral.
        provided: u64,
        /// Required.
        required: u64,
        /// `collateral_percent`.
        percent: u64,
    },
    /// `total_collateral` disagrees with the collateral balance.
    #[error(
        "total_collateral says {declared} but collateral inputs minus collateral return is {actual} (UTXO rule: IncorrectTotalCollateralField)"
    )]
    IncorrectTotalCollateral {
        /// Declared.
        declared: u64,
        /// Actual.
        actual: i128,
    },
    /// Consumed ≠ produced.
    #[error(
        "value is not preserved: consumed {consumed} (inputs + mint + withdrawals + refunds) but produced {produced} (outputs + fee + burn + deposits + donation) (UTXO rule: ValueNotConservedUTxO)"
    )]
    ValueNotConserved {
        /// Consumed, rendered.
        consumed: String,
        /// Produced, rendered.
        produced: String,
    },
    /// A certificate breaks a delegation rule.
    #[error("certificate #{index}: {reason} (DELEG rule: {rule})")]
    Certificate {
        /// Position in the body.
        index: usize,
        /// What is wrong.
        reason: String,
        /// The ledger's failure name.
        rule: &'static str,
    },
    /// A withdrawal breaks the withdrawal rule.
    #[error("withdrawal from {account}: {reason} (Conway LEDGER rule: {rule})")]
    Withdrawal {
        /// Reward account (hex).
        account: String,
        /// What is wrong.
        reason: String,
        /// The ledger's failure name.
        rule: &'static str,
    },
    /// A key witness is missing.
    #[error(
        "missing signature of key {key_hash}, needed for {purpose} (UTXOW rule: MissingVKeyWitnessesUTXOW); sign with that key"
    )]
    MissingVKeyWitness {
        /// Key hash (hex).
        key_hash: String,
        /// Why it is needed.
        purpose: String,
    },
    /// A signature does not verify.
    #[error(
        "the signature by vkey {vkey} does not verify against the transaction body hash (UTXOW rule: InvalidWitnessesUTXOW)"
    )]
    InvalidSignature {
        /// Public key (hex).
        vkey: String,
    },
    /// A needed script is provided neither in the witness set nor by reference.
    #[error(
        "script {hash}, needed for {purpose}, is neither in the witness set nor in a reference input (UTXOW rule: MissingScriptWitnessesUTXOW)"
    )]
    MissingScript {
        /// Script hash.
        hash: String,
        /// Why it is needed.
        purpose: String,
    },
    /// A script is in the witness set although a spent or reference input
    /// already provides it.
    #[error(
        "script {hash} is in the witness set but an input's reference script already provides it (UTXOW rule: ExtraneousScriptWitnessesUTXOW); drop it from the witness set"
    )]
    ExtraneousScript {
        /// Script hash.
        hash: String,
    },
    /// A native script evaluates to false.
    #[error(
        "native script {hash} ({purpose}) is not satisfied by the signatures and validity interval (UTXOW rule: ScriptWitnessNotValidatingUTXOW)"
    )]
    NativeScriptFailed {
        /// Script hash.
        hash: String,
        /// Why it runs.
        purpose: String,
    },
    /// A feature the devnet does not model.
    #[error("{0} is not supported by the devnet")]
    Unsupported(String),
    /// A structural rule checked by pallas-validate, under the ledger's name.
    #[error("{message} (Conway rule: {rule}; found by pallas-validate's {pallas})")]
    Phase1 {
        /// The ledger's predicate failure (e.g. `MissingVKeyWitnessesUTXOW`).
        rule: &'static str,
        /// pallas-validate's name for it.
        pallas: String,
        /// pallas-validate's message.
        message: String,
    },
    /// The redeemers do not match the scripts that must run.
    #[error(
        "redeemers and scripts do not match: {0} (UTXOW rules: MissingRedeemers / ExtraRedeemers / MissingScriptWitnessesUTXOW)"
    )]
    RedeemerMismatch(String),
    /// A Plutus script failed (is_valid = true).
    #[error("script failure (UTXOS rule: ValidationTagMismatch, is_valid=true but a script fails): {purpose}: {detail}{}", if .logs.is_empty() { String::new() } else { format!("; trace: {}", .logs.join(" | ")) })]
    ScriptFailure {
        /// e.g. `spend:0`.
        purpose: String,
        /// Machine error.
        detail: String,
        /// Script traces.
        logs: Vec<String>,
    },
    /// A script used more than its redeemer declares.
    #[error(
        "{purpose} used mem {mem} / steps {steps}, more than its redeemer declares (mem {declared_mem} / steps {declared_steps}); the script fails (UTXOS rule: ValidationTagMismatch); raise the redeemer's ex units"
    )]
    ExUnitsExceeded {
        /// e.g. `spend:0`.
        purpose: String,
        /// Measured.
        mem: u64,
        /// Measured.
        steps: u64,
        /// Declared.
        declared_mem: u64,
        /// Declared.
        declared_steps: u64,
    },
    /// is_valid = false but every script succeeds.
    #[error(
        "the transaction is marked is_valid = false but all its scripts succeed (UTXOS rule: ValidationTagMismatch)"
    )]
    ValidTagMismatch,
}

/// Everything that can go wrong outside a transaction's own rules.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// A transaction was rejected.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The mempool has no room for the transaction now (a node's answer;
    /// Blockfrost's HTTP 425): send it again after a block.
    #[error(
        "the mempool is full: {used} of {capacity} bytes are waiting and the transaction has {size}; resubmit it after the next block"
    )]
    MempoolFull {
        /// The transaction's size.
        size: u64,
        /// Bytes already waiting.
        used: u64,
        /// The mempool's capacity in bytes.
        capacity: u64,
    },
    /// The database failed.
    #[error("devnet database error: {0}")]
    Store(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("devnet I/O error on {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Bad protocol parameters.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// Bad genesis file or data dir contents.
    #[error("genesis: {0}")]
    Genesis(String),
    /// A request was malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Something was not found.
    #[error("{0}")]
    NotFound(String),
    /// A stored record could not be decoded (the data dir is corrupt).
    #[error("corrupt devnet state: {0}")]
    Corrupt(String),
}

impl DevnetError {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        DevnetError::Io {
            path: path.to_string(),
            source,
        }
    }
}
