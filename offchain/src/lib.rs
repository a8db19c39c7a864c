//! ntx-escrow's off-chain library.
//!
//! - [`protocol`]: the escrow's datum, redeemers, attestation message, job ids
//!   and their Plutus data encoding, field for field as the validator in
//!   `contracts/` (docs/PROTOCOL.md is the prose version).
//! - [`audit`]: the auditor behind `ntx audit`: rebuilds every escrow's
//!   lifecycle from the chain, checks each settlement against the protocol,
//!   re-verifies attestations, and reports totals, findings and a chart.
//! - [`blueprint`]: the compiled validator from `contracts/plutus.json`, applied to
//!   a settlement asset: script, hash, addresses and job-token policy.
//! - [`chain`]: one async trait for the chain (parameters, tip, UTxOs, submit,
//!   confirmations, metadata) and its Blockfrost-compatible HTTP provider.
//! - [`client`]: the escrow against a live chain (deployment file, job specs,
//!   metadata records, and [`client::EscrowClient`]'s lock, submit, settle).
//! - [`builder`]: the escrow's transactions (lock, submit, settle), evaluated,
//!   priced and balanced.
//! - [`evaluate`]: execution units computed locally with `uplc`.
//! - [`market`]: offers on chain (signed, replaceable, expiring) and a
//!   provider's verifier policy.
//! - [`network`]: mainnet, preprod, preview and the devnet.
//! - [`sandbox`]: a chain-less sandbox that runs the real builders and evaluator
//!   on synthetic UTxOs (contract tests, `ntx bench contract`).
//! - [`tx`]: Conway transactions assembled field by field, fees and min-ADA.
//! - [`wallet`]: keys (TextEnvelope, bech32, BIP-39/CIP-1852), addresses checked
//!   against the network, and the [`wallet::Signer`] that transactions sign with.

pub mod audit;
pub mod blueprint;
pub mod builder;
pub mod chain;
pub mod client;
pub mod evaluate;
pub mod fetch;
pub mod market;
pub mod network;
pub mod protocol;
pub mod sandbox;
pub mod tx;
pub mod wallet;

pub use blueprint::{Blueprint, BlueprintError, EscrowScript};
pub use evaluate::{EvalError, Evaluator, ExUnits, RedeemerCost, SlotConfig};
pub use network::{Network, UnknownNetwork};
