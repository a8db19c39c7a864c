//! The fast path's result announcement (protocol v1.1): what a provider's agent
//! signs when it pushes a result to its job's verifiers before anything is on
//! chain.
//!
//! `"NTXR1"` (5 ASCII bytes) ‖ escrow script hash (28) ‖ `job_id` (32) ‖
//! `result_hash` (32) ‖ the result URL (UTF-8), signed with the agent's hot key,
//! whose blake2b-224 hash is the datum's `agent`. A verifier judges a locked job
//! only on such an announcement: without it anyone could hand it a wrong result
//! for a job, and its honest Reject would refund the requester early.

use pallas_crypto::key::ed25519::{PublicKey, Signature};

use crate::wallet::Signer;

/// The message's first five bytes; the digit is the protocol version.
pub const ANNOUNCEMENT_DOMAIN: &[u8; 5] = b"NTXR1";

/// The bytes the agent signs for `result_hash` of `job_id`, served at `url`.
pub fn announcement_message(
    script_hash: &[u8; 28],
    job_id: &[u8; 32],
    result_hash: &[u8; 32],
    url: &str,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(5 + 28 + 32 + 32 + url.len());
    m.extend_from_slice(ANNOUNCEMENT_DOMAIN);
    m.extend_from_slice(script_hash);
    m.extend_from_slice(job_id);
    m.extend_from_slice(result_hash);
    m.extend_from_slice(url.as_bytes());
    m
}

/// The agent's signature of an announcement.
pub fn sign_announcement<S: Signer + ?Sized>(key: &S, message: &[u8]) -> [u8; 64] {
    key.sign(message)
}

/// Whether `signature` is `public_key`'s over the announcement `message`.
pub fn verify_announcement(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    PublicKey::from(*public_key).verify(message, &Signature::from(*signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::SigningKey;

    #[test]
    fn an_announcement_binds_deployment_job_result_and_url() {
        let key = SigningKey::from_normal_bytes(&[7; 32]);
        let m = announcement_message(&[1; 28], &[2; 32], &[3; 32], "http://p/results/x");
        let sig = sign_announcement(&key, &m);
        assert!(verify_announcement(&key.public_key(), &m, &sig));
        for other in [
            announcement_message(&[9; 28], &[2; 32], &[3; 32], "http://p/results/x"),
            announcement_message(&[1; 28], &[9; 32], &[3; 32], "http://p/results/x"),
            announcement_message(&[1; 28], &[2; 32], &[9; 32], "http://p/results/x"),
            announcement_message(&[1; 28], &[2; 32], &[3; 32], "http://p/results/y"),
        ] {
            assert!(!verify_announcement(&key.public_key(), &other, &sig));
        }
    }
}
