//! BIP-39 mnemonics (English) and CIP-1852 key derivation.
//!
//! The root key is Icarus' (CIP-3): PBKDF2-HMAC-SHA512 with the passphrase as
//! password and the mnemonic's entropy as salt, 4096 iterations, 96 bytes,
//! then the Ed25519-BIP32 bit tweaks. Children are derived with
//! BIP32-Ed25519 (Khovratovich and Law, derivation scheme V2, as in
//! cardano-addresses and cardano-serialization-lib).

use std::fmt;
use std::sync::LazyLock;

use cryptoxide::digest::Digest;
use cryptoxide::hmac::Hmac;
use cryptoxide::pbkdf2::pbkdf2;
use cryptoxide::sha2::{Sha256, Sha512};
use rand::TryRngCore;
use zeroize::Zeroizing;

use super::key::{KeyError, SigningKey};

const WORDS: &str = include_str!("english.txt");

/// The BIP-39 English word list (2048 words, sorted).
pub fn word_list() -> impl Iterator<Item = &'static str> {
    WORDS.lines()
}

static WORD_LIST: LazyLock<Vec<&'static str>> = LazyLock::new(|| WORDS.lines().collect());

fn word_index(word: &str) -> Option<usize> {
    // The list is sorted (checked by a test).
    WORD_LIST.binary_search(&word).ok()
}

/// The hardened-derivation bit of a BIP32 index.
pub const HARDENED: u32 = 0x8000_0000;

/// CIP-1852's purpose, `1852'`.
pub const PURPOSE: u32 = 1852 | HARDENED;
/// Cardano's coin type, `1815'`.
pub const COIN_TYPE: u32 = 1815 | HARDENED;
/// The role of external (receiving) payment keys.
pub const ROLE_EXTERNAL: u32 = 0;
/// The role of stake keys.
pub const ROLE_STAKE: u32 = 2;

/// Why a mnemonic was refused. Never quotes the words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MnemonicError {
    /// Not 12, 15, 18, 21 or 24 words.
    #[error(
        "a recovery phrase has 12, 15, 18, 21 or 24 words, this one has {0}: check that it is complete"
    )]
    WordCount(usize),
    /// A word not in the English list.
    #[error(
        "word {position} of the recovery phrase is not in the BIP-39 English word list: check its spelling"
    )]
    UnknownWord {
        /// 1-based position.
        position: usize,
    },
    /// The checksum bits disagree.
    #[error(
        "the recovery phrase's checksum does not match: a word is wrong or two are swapped; check it against your backup"
    )]
    Checksum,
    /// Entropy of an unsupported length.
    #[error("entropy of {0} bytes: BIP-39 takes 16, 20, 24, 28 or 32")]
    EntropyLength(usize),
    /// The operating system gave no randomness.
    #[error("the operating system's random number generator failed ({0}): no phrase was generated")]
    Random(String),
}

/// A BIP-39 mnemonic, held as its entropy (zeroized on drop).
#[derive(Clone)]
pub struct Mnemonic {
    entropy: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mnemonic({} words, <redacted>)", self.word_count())
    }
}

impl Mnemonic {
    /// Parses an English phrase: words separated by whitespace, any case.
    pub fn parse(phrase: &str) -> Result<Self, MnemonicError> {
        let words: Vec<&str> = phrase.split_whitespace().collect();
        if ![12, 15, 18, 21, 24].contains(&words.len()) {
            return Err(MnemonicError::WordCount(words.len()));
        }
        let total_bits = words.len() * 11;
        let checksum_bits = total_bits / 33;
        let entropy_bits = total_bits - checksum_bits;
        let mut bits = Zeroizing::new(Vec::with_capacity(total_bits));
        for (i, word) in words.iter().enumerate() {
            let lower = Zeroizing::new(word.to_lowercase());
            let index = word_index(&lower).ok_or(MnemonicError::UnknownWord { position: i + 1 })?;
            bits.extend((0..11).rev().map(|b| (index >> b) & 1 == 1));
        }
        let mut entropy = Zeroizing::new(vec![0u8; entropy_bits / 8]);
        for (i, bit) in bits[..entropy_bits].iter().enumerate() {
            if *bit {
                entropy[i / 8] |= 0x80 >> (i % 8);
            }
        }
        let hash = sha256(&entropy);
        let expected = (0..checksum_bits).map(|i| hash[i / 8] & (0x80 >> (i % 8)) != 0);
        if !expected.eq(bits[entropy_bits..].iter().copied()) {
            return Err(MnemonicError::Checksum);
        }
        Ok(Mnemonic { entropy })
    }

    /// The mnemonic of `entropy` (16, 20, 24, 28 or 32 bytes).
    pub fn from_entropy(entropy: &[u8]) -> Result<Self, MnemonicError> {
        if ![16, 20, 24, 28, 32].contains(&entropy.len()) {
            return Err(MnemonicError::EntropyLength(entropy.len()));
        }
        Ok(Mnemonic {
            entropy: Zeroizing::new(entropy.to_vec()),
        })
    }

    /// A new mnemonic of `words` words (12, 15, 18, 21 or 24) from the
    /// operating system's randomness.
    pub fn generate(words: usize) -> Result<Self, MnemonicError> {
        if ![12, 15, 18, 21, 24].contains(&words) {
            return Err(MnemonicError::WordCount(words));
        }
        let mut entropy = Zeroizing::new(vec![0u8; words * 11 * 32 / 33 / 8]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut entropy)
            .map_err(|e| MnemonicError::Random(e.to_string()))?;
        Ok(Mnemonic { entropy })
    }

    /// The number of words.
    pub fn word_count(&self) -> usize {
        self.entropy.len() * 8 * 33 / 32 / 11
    }

    /// The entropy (a secret).
    pub fn entropy(&self) -> &[u8] {
        &self.entropy
    }

    /// The phrase, words separated by single spaces (a secret).
    pub fn phrase(&self) -> Zeroizing<String> {
        let checksum_bits = self.entropy.len() * 8 / 32;
        let hash = sha256(&self.entropy);
        let bytes_bit = |bytes: &[u8], i: usize| usize::from(bytes[i / 8] & (0x80 >> (i % 8)) != 0);
        let entropy_bits = self.entropy.len() * 8;
        let bit = |i: usize| {
            if i < entropy_bits {
                bytes_bit(&self.entropy, i)
            } else {
                bytes_bit(&hash, i - entropy_bits)
            }
        };
        debug_assert_eq!((entropy_bits + checksum_bits) % 11, 0);
        let words = &*WORD_LIST;
        let mut out = Zeroizing::new(String::new());
        for w in 0..self.word_count() {
            let index = (0..11).fold(0usize, |acc, b| (acc << 1) | bit(w * 11 + b));
            if w > 0 {
                out.push(' ');
            }
            out.push_str(words[index]);
        }
        out
    }

    /// The Icarus root key (CIP-3), with an optional passphrase ("" for none).
    pub fn root_key(&self, passphrase: &str) -> ExtendedPrivateKey {
        let mut out = Zeroizing::new([0u8; 96]);
        let mut mac = Hmac::new(Sha512::new(), passphrase.as_bytes());
        pbkdf2(&mut mac, &self.entropy, 4096, &mut out[..]);
        out[0] &= 0b1111_1000;
        out[31] &= 0b0001_1111;
        out[31] |= 0b0100_0000;
        ExtendedPrivateKey { bytes: out }
    }

    /// The CIP-1852 key at `m/1852'/1815'/account'/role/index`.
    pub fn derive(&self, passphrase: &str, account: u32, role: u32, index: u32) -> SigningKey {
        self.root_key(passphrase)
            .derive_path(&[PURPOSE, COIN_TYPE, account | HARDENED, role, index])
            .to_signing_key()
    }

    /// The first payment key of account 0: `m/1852'/1815'/0'/0/0`.
    pub fn payment_key(&self, passphrase: &str) -> SigningKey {
        self.derive(passphrase, 0, ROLE_EXTERNAL, 0)
    }

    /// The stake key of account 0: `m/1852'/1815'/0'/2/0`.
    pub fn stake_key(&self, passphrase: &str) -> SigningKey {
        self.derive(passphrase, 0, ROLE_STAKE, 0)
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.input(data);
    let mut out = [0u8; 32];
    h.result(&mut out);
    out
}

/// A BIP32-Ed25519 extended private key: 64-byte key and 32-byte chain code.
/// `Debug` redacts it; it is zeroized on drop.
#[derive(Clone)]
pub struct ExtendedPrivateKey {
    bytes: Zeroizing<[u8; 96]>,
}

impl fmt::Debug for ExtendedPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ExtendedPrivateKey {{ public: {}, secret: <redacted> }}",
            hex::encode(self.public_key())
        )
    }
}

impl ExtendedPrivateKey {
    fn key(&self) -> [u8; 64] {
        let mut k = [0u8; 64];
        k.copy_from_slice(&self.bytes[..64]);
        k
    }

    /// The Ed25519 verification key.
    pub fn public_key(&self) -> [u8; 32] {
        let key = Zeroizing::new(self.key());
        cryptoxide::ed25519::extended_to_public(&key)
    }

    /// The chain code.
    pub fn chain_code(&self) -> [u8; 32] {
        let mut c = [0u8; 32];
        c.copy_from_slice(&self.bytes[64..]);
        c
    }

    /// The child at `index` (hardened when `index >= HARDENED`): BIP32-Ed25519
    /// V2 derivation, by the `ed25519-bip32` crate (the implementation
    /// cardano-serialization-lib uses).
    pub fn derive(&self, index: u32) -> ExtendedPrivateKey {
        let parent = ed25519_bip32::XPrv::from_slice_verified(&self.bytes[..])
            .expect("Icarus keys and their V2 children keep the Ed25519-BIP32 bit pattern");
        let child = parent.derive(ed25519_bip32::DerivationScheme::V2, index);
        let mut out = Zeroizing::new([0u8; 96]);
        out.copy_from_slice(child.as_ref());
        ExtendedPrivateKey { bytes: out }
    }

    /// The descendant along `path`.
    pub fn derive_path(&self, path: &[u32]) -> ExtendedPrivateKey {
        path.iter().fold(self.clone(), |k, &i| k.derive(i))
    }

    /// The signing key (with its chain code, so it can be written as a
    /// cardano-cli extended TextEnvelope).
    pub fn to_signing_key(&self) -> SigningKey {
        let key = Zeroizing::new(self.key());
        let cc = self.chain_code();
        SigningKey::from_extended_bytes(&key, Some(&cc))
            .expect("Icarus keys and their V2 children keep the Ed25519-BIP32 bit pattern")
    }

    /// cardano-address' `xsk` bech32 form (key and chain code, 96 bytes) with
    /// `hrp` (`root_xsk`, `acct_xsk`, `addr_xsk`). A secret.
    pub fn to_bech32(&self, hrp: &str) -> Result<Zeroizing<String>, KeyError> {
        let hrp_parsed = bech32::Hrp::parse(hrp).map_err(|_| KeyError::Bech32Prefix {
            what: "signing key",
            hrp: hrp.to_owned(),
            expected: "use root_xsk, acct_xsk or addr_xsk",
        })?;
        bech32::encode::<bech32::Bech32>(hrp_parsed, &self.bytes[..])
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Bech32 {
                what: "signing key",
                example: "root_xsk1…",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_list_is_bip39_english() {
        // sha256 of bitcoin/bips bip-0039/english.txt.
        assert_eq!(
            hex::encode(sha256(WORDS.as_bytes())),
            "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"
        );
        let words: Vec<&str> = word_list().collect();
        assert_eq!(words.len(), 2048);
        assert!(words.windows(2).all(|w| w[0] < w[1]), "sorted");
    }

    #[test]
    fn bip39_reference_vectors() {
        // Trezor's BIP-39 vectors (python-mnemonic vectors.json), entropy → words.
        let cases = [
            (
                "00000000000000000000000000000000",
                "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
            ),
            (
                "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
                "legal winner thank year wave sausage worth useful legal winner thank yellow",
            ),
            (
                "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote",
            ),
        ];
        for (entropy, phrase) in cases {
            let entropy = hex::decode(entropy).expect("hex");
            let m = Mnemonic::from_entropy(&entropy).expect("entropy");
            assert_eq!(m.phrase().as_str(), phrase);
            let parsed = Mnemonic::parse(phrase).expect("parse");
            assert_eq!(parsed.entropy(), &entropy[..]);
        }
    }

    #[test]
    fn generated_phrases_round_trip() {
        for words in [12, 15, 18, 21, 24] {
            let m = Mnemonic::generate(words).expect("os randomness");
            assert_eq!(m.word_count(), words);
            let again = Mnemonic::parse(&m.phrase()).expect("own phrase parses");
            assert_eq!(again.entropy(), m.entropy());
        }
    }
}
