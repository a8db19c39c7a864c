//! The protocol's hashes: blake2b-256 for ids and content, blake2b-224 for scripts.

use blake2::digest::consts::{U28, U32};
use blake2::{Blake2b, Digest};

use super::data::{self, ToPlutusData};
use super::datum::OutputReference;

/// blake2b-256 of `bytes`: job ids, spec hashes, result hashes.
pub fn blake2b_256(bytes: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(bytes).into()
}

/// blake2b-224 of `bytes`: script and key hashes.
pub fn blake2b_224(bytes: &[u8]) -> [u8; 28] {
    Blake2b::<U28>::digest(bytes).into()
}

/// A job's id: `blake2b_256(serialise_data(seed))`, where `seed` is an output the
/// lock transaction spends. Unique on chain, since an output is spent only once.
pub fn job_id(seed: &OutputReference) -> [u8; 32] {
    blake2b_256(&data::encode(&seed.to_plutus_data()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same vectors as the Aiken fixtures (`contracts/lib/tests/vectors.ak`),
    /// whose test `job_ids_are_seed_hashes` checks them with the on-chain builtins.
    #[test]
    fn job_ids_match_the_contract_test_vectors() {
        let a = OutputReference {
            transaction_id: [0x11; 32],
            output_index: 0,
        };
        let b = OutputReference {
            transaction_id: [0x22; 32],
            output_index: 1,
        };
        assert_eq!(
            hex::encode(job_id(&a)),
            "56664296ffc0310952b2bc81548beb7512c002c4ffac4dea24041ad10ac40fdd"
        );
        assert_eq!(
            hex::encode(job_id(&b)),
            "235c2aed648598d2483efeaf2909a0cad82c2d8771bc2fc16a9476435212271a"
        );
    }
}
