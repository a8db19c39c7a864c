//! Keys, addresses and signing for requesters, agents, verifiers and keepers.
//!
//! - [`SigningKey`] / [`VerificationKey`]: cardano-cli TextEnvelope files
//!   (`.skey`/`.vkey`, plain and BIP32 extended), bech32 (`ed25519_sk`,
//!   `ed25519e_sk`, `addr_xsk`, …) and fresh keys from the OS's randomness.
//! - [`Mnemonic`]: BIP-39 English phrases and CIP-1852 derivation (Icarus root
//!   key, BIP32-Ed25519), account 0.
//! - [`PaymentAddress`]: enterprise and base addresses, parsed and checked
//!   against the network a command runs on.
//! - [`Signer`]: what transaction drafts sign with; [`Wallet`] ties a payment
//!   key (and optionally a stake key) to a network.
//!
//! Secrets never reach `Debug` output or error messages.

mod address;
mod key;
mod mnemonic;
mod signer;

use std::fmt;
use std::path::Path;

pub use address::{AddressError, PaymentAddress};
pub use key::{KeyError, KeyRole, SigningKey, VerificationKey};
pub use mnemonic::{
    COIN_TYPE, ExtendedPrivateKey, HARDENED, Mnemonic, MnemonicError, PURPOSE, ROLE_EXTERNAL,
    ROLE_STAKE, word_list,
};
pub use signer::{Signer, verify};

use crate::Network;

/// Any wallet error, for callers that load keys from several sources.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// A key file or bech32 key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A recovery phrase.
    #[error(transparent)]
    Mnemonic(#[from] MnemonicError),
    /// An address.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// Text that is none of the accepted secret forms.
    #[error(
        "the secret key text is neither a cardano-cli TextEnvelope, a bech32 signing key (ed25519_sk1…, ed25519e_sk1…, addr_xsk1…) nor a 12–24 word recovery phrase"
    )]
    UnknownSecretFormat,
}

/// A payment key (and optionally a stake key) on a network: it signs, and it
/// knows its address.
#[derive(Clone)]
pub struct Wallet {
    network: Network,
    payment: SigningKey,
    stake: Option<SigningKey>,
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("network", &self.network)
            .field("address", &self.address().to_bech32())
            .field("payment", &self.payment)
            .field("stake", &self.stake)
            .finish()
    }
}

impl Wallet {
    /// A wallet of `payment` (and `stake`, for a base address) on `network`.
    pub fn new(network: Network, payment: SigningKey, stake: Option<SigningKey>) -> Self {
        Wallet {
            network,
            payment,
            stake,
        }
    }

    /// The CIP-1852 wallet of a recovery phrase: payment key
    /// `m/1852'/1815'/0'/0/0`, stake key `m/1852'/1815'/0'/2/0`, base address.
    pub fn from_mnemonic(network: Network, mnemonic: &Mnemonic, passphrase: &str) -> Self {
        Wallet::new(
            network,
            mnemonic.payment_key(passphrase),
            Some(mnemonic.stake_key(passphrase)),
        )
    }

    /// A wallet from cardano-cli key files: a payment `.skey` and, optionally,
    /// a stake `.skey` (then the address is a base address).
    pub fn from_skey_files(
        network: Network,
        payment: &Path,
        stake: Option<&Path>,
    ) -> Result<Self, KeyError> {
        let payment = SigningKey::read_skey(payment, KeyRole::Payment)?;
        let stake = stake
            .map(|p| SigningKey::read_skey(p, KeyRole::Stake))
            .transpose()?;
        Ok(Wallet::new(network, payment, stake))
    }

    /// A wallet from secret text (e.g. an environment variable): a payment
    /// TextEnvelope (JSON), a bech32 signing key, or a recovery phrase (no
    /// passphrase; its base address).
    pub fn from_secret_text(network: Network, text: &str) -> Result<Self, WalletError> {
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let key = SigningKey::from_text_envelope(trimmed, KeyRole::Payment)?;
            return Ok(Wallet::new(network, key, None));
        }
        let words = trimmed.split_whitespace().count();
        if words > 1 {
            let mnemonic = Mnemonic::parse(trimmed)?;
            return Ok(Wallet::from_mnemonic(network, &mnemonic, ""));
        }
        if words == 1 && trimmed.contains('1') {
            let key = SigningKey::from_bech32(trimmed)?;
            return Ok(Wallet::new(network, key, None));
        }
        Err(WalletError::UnknownSecretFormat)
    }

    /// The network it addresses.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The payment key.
    pub fn payment_key(&self) -> &SigningKey {
        &self.payment
    }

    /// The stake key, when the wallet has one.
    pub fn stake_key(&self) -> Option<&SigningKey> {
        self.stake.as_ref()
    }

    /// The payment verification key.
    pub fn verification_key(&self) -> VerificationKey {
        self.payment.verification_key()
    }

    /// The payment key hash (what `required_signers` and scripts see).
    pub fn key_hash(&self) -> [u8; 28] {
        self.verification_key().hash()
    }

    /// The wallet's address: base when it has a stake key, enterprise otherwise.
    pub fn address(&self) -> PaymentAddress {
        match &self.stake {
            Some(stake) => PaymentAddress::base(
                self.network,
                self.key_hash(),
                stake.verification_key().hash(),
            ),
            None => self.enterprise_address(),
        }
    }

    /// The enterprise address of the payment key (no stake part).
    pub fn enterprise_address(&self) -> PaymentAddress {
        PaymentAddress::enterprise(self.network, self.key_hash())
    }
}

impl Signer for Wallet {
    fn public_key(&self) -> [u8; 32] {
        self.payment.public_key()
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.payment.sign(msg)
    }
}
