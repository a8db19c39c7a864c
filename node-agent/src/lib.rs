//! Provider and verifier daemon for ntx-escrow.
//!
//! Work in progress: see the node-agent issue.
