//! The escrow against a live chain: what `ntx`, the node agent and keepers call.
//!
//! - [`EscrowClient`]: connect to a deployment through any
//!   [`crate::chain::ChainProvider`], scan the escrow address (dust skipped),
//!   and build, sign and send Lock, Submit, Settle (largest batch that fits)
//!   and Cancel, with coin selection and collateral chosen or created.
//! - Offers: [`EscrowClient::market`] reads the live offers,
//!   [`EscrowClient::publish_offer`] and [`EscrowClient::withdraw_offer`] put
//!   one up or take it down (`offers`).
//! - [`DeploymentInfo`]: the deployment file `ntx deploy` writes.
//! - [`JobSpecDoc`], [`canonical_json`]: job specs and their canonical bytes
//!   (RFC 8785), which `spec_hash` covers.
//! - [`LockRecord`], [`SubmitRecord`], [`SettleRecord`]: this protocol's transaction metadata
//!   under [`METADATA_LABEL`] (the spec, or its URL; where results are served).

mod deployment;
mod error;
mod escrow;
mod offers;
mod record;
mod result;
mod spec;

pub use deployment::{Deployed, DeploymentInfo, parse_output_reference};
pub use error::ClientError;
pub use escrow::{
    COLLATERAL_LOVELACE, EscrowClient, EscrowScan, LockRequest, Prepared, RESEND_AFTER, ResultUrls,
    TX_VALIDITY_MS,
};
pub use offers::MAX_SWEPT;
pub use record::{
    FastResult, LockRecord, METADATA_LABEL, RECORD_VERSION, RecordError, ResultLocation,
    SettleRecord, SpecSource, SubmitRecord,
};
pub use result::{ResultFetchError, fetch_result};
pub use spec::{JobSpecDoc, SPEC_VERSION, SpecError, VerifierEndpoint, canonical_json};
