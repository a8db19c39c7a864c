//! An embedded, single-process Cardano chain for development and tests.
//!
//! Work in progress: see the devnet issue. This crate knows nothing of the escrow.
