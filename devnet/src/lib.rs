//! An embedded, single-process Cardano chain for development and tests.
//!
//! It judges transactions like the ledger does (Conway era, network id 0,
//! network magic [`NETWORK_MAGIC`]) and knows nothing of the escrow.
//!
//! Map of the crate:
//! - [`params`]: protocol parameters, a bundled mainnet snapshot (PV 10,
//!   real cost models) in Blockfrost's shape.
//! - [`genesis`]: the genesis file, key files (cardano-cli TextEnvelope),
//!   the devnet NTX policy.
//! - `phase1`: the submit pipeline: our exact checks for what
//!   pallas-validate 1.4 skips or gets wrong, then pallas-validate's
//!   structural rules; `phase2`: Plutus through uplc, with per-redeemer
//!   budgets and the V3 unit rule; `fees`: the fee and min-UTxO formulas.
//! - `chain`: state, mempool, clock, blocks, rollback, faucet ([`Devnet`]);
//!   `store`: SQLite persistence, one transaction per block.
//! - `http`: the Blockfrost-compatible API and the `/devnet/` admin API
//!   ([`serve`]); [`bench`]: throughput measurement.
//! - [`txbuilder`]: a small transaction builder for the faucet, tests and benchmarks.
//!
//! ```no_run
//! # fn main() -> Result<(), ntx_devnet::DevnetError> {
//! let devnet = ntx_devnet::Devnet::open(ntx_devnet::DevnetConfig::default())?;
//! let alice = devnet.key("alice").expect("genesis account");
//! let out = devnet.fund_now(&alice.address().to_bech32().unwrap_or_default(), 5_000_000, 0)?;
//! # let _ = out; Ok(()) }
//! ```

pub mod bench;
mod chain;
mod decoder;
mod error;
mod fees;
pub mod genesis;
mod http;
mod ledger;
mod ledger_rules;
mod mempool;
pub mod params;
mod phase1;
mod phase2;
mod store;
pub mod txbuilder;
mod value;

pub use chain::{ClockMode, Devnet, DevnetConfig, Rollback, RollbackMode, Status};
pub use error::{DevnetError, LedgerError};
pub use fees::{
    MAX_REF_SCRIPT_SIZE_PER_TX, MinFee, min_collateral, min_fee, min_utxo, ref_script_fee,
    script_fee,
};
pub use genesis::{GenesisAccount, GenesisConfig, GenesisUtxo, KeyPair, NETWORK_MAGIC};
pub use http::{ServeConfig, metadatum_json, router, serve, serve_devnet};

pub use ledger::{Account, Credential, OutRef, RedeemerReport, ValidatedTx};
pub use params::{Params, ProtocolParams};
pub use phase2::SlotConfig;
pub use store::{BlockInfo, OutputRecord, TxRecord};
pub use value::{OutputView, Value, script_hash};
