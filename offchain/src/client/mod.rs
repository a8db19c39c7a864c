//! The escrow against a live chain: what `ntx`, the node agent and keepers call.
//!
//! - [`EscrowClient`]: connect to a deployment through any
//!   [`crate::chain::ChainProvider`], scan the escrow address (dust skipped),
//!   and build, sign and send Lock, Submit, Settle (largest batch that fits)
//!   and Cancel, with coin selection and collateral chosen or created.
//! - [`DeploymentInfo`]: the deployment file `ntx deploy` writes.
//! - [`JobSpecDoc`], [`canonical_json`]: job specs and their canonical bytes
//!   (RFC 8785), which `spec_hash` covers.
//! - [`LockRecord`], [`SubmitRecord`]: this protocol's transaction metadata
//!   under [`METADATA_LABEL`] (the spec, or its URL; where results are served).

mod deployment;
mod error;
mod escrow;
mod record;
mod spec;

pub use deployment::{DeploymentInfo, parse_output_reference};
pub use error::ClientError;
pub use escrow::{
    COLLATERAL_LOVELACE, EscrowClient, EscrowScan, LockRequest, Prepared, RESEND_AFTER,
    TX_VALIDITY_MS,
};
pub use record::{
    LockRecord, METADATA_LABEL, RECORD_VERSION, RecordError, SpecSource, SubmitRecord,
};
pub use spec::{JobSpecDoc, SPEC_VERSION, SpecError, VerifierEndpoint, canonical_json};
