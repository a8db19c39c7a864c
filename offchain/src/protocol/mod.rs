//! The escrow protocol's types and codecs: everything that must agree, byte for
//! byte, with the validator in `contracts/` (see docs/PROTOCOL.md).

mod address;
mod announcement;
mod attestation;
pub mod data;
mod datum;
mod hash;
mod redeemer;

pub use address::{Address, Credential, StakeCredential};
pub use announcement::{
    ANNOUNCEMENT_DOMAIN, announcement_message, sign_announcement, verify_announcement,
};
pub use attestation::{
    ATTESTATION_DOMAIN, ATTESTATION_MESSAGE_LEN, Verdict, attestation_message, sign_attestation,
    verify_attestation,
};
pub use data::{DataError, FromPlutusData, ToPlutusData};
pub use datum::{Asset, JobDatum, JobState, MAINNET_NTX_POLICY, NTX_DECIMALS, OutputReference};
pub use hash::{blake2b_224, blake2b_256, job_id};
pub use redeemer::{Attestation, JobOrigin, MintAction, Settlement, SpendAction};

/// The inline datum that tags a settlement's payout outputs: the escrow's
/// script hash as a byte string. Only tagged outputs count towards a payee.
pub fn payout_datum(script_hash: &[u8; 28]) -> pallas_primitives::PlutusData {
    data::bytes(script_hash)
}
