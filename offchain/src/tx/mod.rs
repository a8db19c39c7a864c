//! Conway transactions: owned outputs and UTxOs, a [`Draft`] encoded to the exact
//! bytes that are hashed, priced and submitted, and the ledger's fee rules.

mod balance;
mod draft;
mod fee;
mod output;
pub mod witness;

pub use balance::BalanceError;
pub use draft::{Draft, DraftError, DraftRedeemer, EncodedTx, ScriptPurpose, script_data_hash};
pub(crate) use fee::gcd;
pub use fee::{FeeParams, Ratio};
pub use output::{Assets, Datum, Mint, OutputDecodeError, ScriptRef, TxOutput, Utxo, Value};
