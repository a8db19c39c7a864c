//! Escrow transactions: Deploy, Lock, Submit and Settle, built as [`Draft`]s
//! from explicit UTxOs, then evaluated with `uplc`, priced and balanced.
//!
//! Builders take every input up front (coin selection first), because the
//! escrow's redeemers carry input and output indexes that must not shift.

mod context;
mod deploy;
mod lock;
mod select;
mod settle;
mod submit;

pub use context::{BuildError, Deployment, EXECUTION_MARGIN_PERCENT, Finished};
pub use deploy::deploy;
pub use lock::{JobTerms, lock};
pub use select::select_coins;
pub use settle::{EscrowUtxo, settle};
pub use submit::submit;
