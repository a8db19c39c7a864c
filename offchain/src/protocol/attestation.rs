//! Verifier attestations: the 98-byte message, signing and checking.
//!
//! `"NTXE1"` (5 ASCII bytes) ‖ verdict (`0x01` accept, `0x00` reject) ‖ escrow
//! script hash (28) ‖ `job_id` (32) ‖ `result_hash` (32). The script hash binds a
//! signature to one deployment (and so one network and settlement asset), the job
//! id to one job: a signature cannot be replayed anywhere else.

use pallas_crypto::key::ed25519::{PublicKey, Signature};

use crate::wallet::Signer;

use super::redeemer::Attestation;

/// The message's first five bytes; the digit is the protocol version.
pub const ATTESTATION_DOMAIN: &[u8; 5] = b"NTXE1";

/// The length of an attestation message.
pub const ATTESTATION_MESSAGE_LEN: usize = 98;

/// A verifier's verdict on a submitted result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The result is within the task's tolerance of the verifier's own.
    Accept,
    /// It is not.
    Reject,
}

impl Verdict {
    /// The verdict's byte in the message.
    pub fn byte(self) -> u8 {
        match self {
            Verdict::Accept => 0x01,
            Verdict::Reject => 0x00,
        }
    }
}

/// The bytes a verifier signs for one job's result.
pub fn attestation_message(
    verdict: Verdict,
    script_hash: &[u8; 28],
    job_id: &[u8; 32],
    result_hash: &[u8; 32],
) -> [u8; ATTESTATION_MESSAGE_LEN] {
    let mut message = [0u8; ATTESTATION_MESSAGE_LEN];
    message[..5].copy_from_slice(ATTESTATION_DOMAIN);
    message[5] = verdict.byte();
    message[6..34].copy_from_slice(script_hash);
    message[34..66].copy_from_slice(job_id);
    message[66..].copy_from_slice(result_hash);
    message
}

/// Signs an attestation as verifier number `verifier_index` of the job.
pub fn sign_attestation<S: Signer + ?Sized>(
    key: &S,
    verifier_index: u32,
    message: &[u8; ATTESTATION_MESSAGE_LEN],
) -> Attestation {
    Attestation {
        verifier_index,
        signature: key.sign(message),
    }
}

/// Whether `signature` is `public_key`'s signature of `message`, as the
/// validator's `verify_ed25519_signature` decides it.
pub fn verify_attestation(
    public_key: &[u8; 32],
    message: &[u8; ATTESTATION_MESSAGE_LEN],
    signature: &[u8; 64],
) -> bool {
    PublicKey::from(*public_key).verify(message, &Signature::from(*signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> pallas_crypto::key::ed25519::SecretKey {
        pallas_crypto::key::ed25519::SecretKey::from([seed; 32])
    }

    /// The contract's test vectors (`contracts/scripts/attestation_vectors.py`)
    /// were signed with the same seeds: the Rust signer must produce them exactly.
    #[test]
    fn signatures_match_the_contract_test_vectors() {
        let script_hash: [u8; 28] = hex::decode("5ec7".repeat(14))
            .expect("hex")
            .try_into()
            .expect("28");
        let job_a: [u8; 32] =
            hex::decode("56664296ffc0310952b2bc81548beb7512c002c4ffac4dea24041ad10ac40fdd")
                .expect("hex")
                .try_into()
                .expect("32");
        let message = attestation_message(Verdict::Accept, &script_hash, &job_a, &[0x77; 32]);
        // outsider_accept_a in contracts/lib/tests/vectors.ak (seed 9).
        let signed = sign_attestation(&key(9), 0, &message);
        let vectors = include_str!("../../../contracts/lib/tests/vectors.ak");
        let (_, after) = vectors
            .split_once("pub const outsider_accept_a")
            .expect("vector present");
        let value = after.split('"').nth(1).expect("a hex literal");
        assert_eq!(value, hex::encode(signed.signature));
        let public: [u8; 32] = key(9).public_key().into();
        assert!(verify_attestation(&public, &message, &signed.signature));
    }

    #[test]
    fn a_signature_does_not_verify_for_another_verdict_job_result_or_deployment() {
        let sk = key(1);
        let pk: [u8; 32] = sk.public_key().into();
        let msg = attestation_message(Verdict::Accept, &[1; 28], &[2; 32], &[3; 32]);
        let sig = sign_attestation(&sk, 0, &msg).signature;
        assert_eq!(msg.len(), 98);
        assert_eq!(&msg[..6], b"NTXE1\x01");
        assert!(verify_attestation(&pk, &msg, &sig));
        for other in [
            attestation_message(Verdict::Reject, &[1; 28], &[2; 32], &[3; 32]),
            attestation_message(Verdict::Accept, &[9; 28], &[2; 32], &[3; 32]),
            attestation_message(Verdict::Accept, &[1; 28], &[9; 32], &[3; 32]),
            attestation_message(Verdict::Accept, &[1; 28], &[2; 32], &[9; 32]),
        ] {
            assert!(!verify_attestation(&pk, &other, &sig));
        }
    }
}
