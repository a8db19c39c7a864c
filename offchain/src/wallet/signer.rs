//! What signs a transaction: anything that holds an Ed25519 key.

use pallas_crypto::key::ed25519::{SecretKey, SecretKeyExtended};

use crate::protocol::blake2b_224;

/// An Ed25519 signer: a key that signs transaction ids (and attestations).
///
/// Implemented by [`super::SigningKey`], [`super::Wallet`] and pallas'
/// `SecretKey` / `SecretKeyExtended`, so transaction drafts take any of them
/// as `&dyn Signer`.
pub trait Signer {
    /// The 32-byte Ed25519 verification key.
    fn public_key(&self) -> [u8; 32];

    /// The 64-byte Ed25519 signature of `msg`.
    fn sign(&self, msg: &[u8]) -> [u8; 64];

    /// The blake2b-224 hash of the verification key: the key's credential in
    /// addresses and `required_signers`.
    fn key_hash(&self) -> [u8; 28] {
        blake2b_224(&self.public_key())
    }
}

impl Signer for SecretKey {
    fn public_key(&self) -> [u8; 32] {
        SecretKey::public_key(self).into()
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(SecretKey::sign(self, msg).as_ref());
        out
    }
}

impl Signer for SecretKeyExtended {
    fn public_key(&self) -> [u8; 32] {
        SecretKeyExtended::public_key(self).into()
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(SecretKeyExtended::sign(self, msg).as_ref());
        out
    }
}

impl<S: Signer + ?Sized> Signer for &S {
    fn public_key(&self) -> [u8; 32] {
        (**self).public_key()
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        (**self).sign(msg)
    }
}

/// Checks an Ed25519 signature made by `public_key` over `msg`.
pub fn verify(public_key: &[u8; 32], msg: &[u8], signature: &[u8; 64]) -> bool {
    let pk = pallas_crypto::key::ed25519::PublicKey::from(*public_key);
    pk.verify(
        msg,
        &pallas_crypto::key::ed25519::Signature::from(*signature),
    )
}
