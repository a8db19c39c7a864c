//! Shelley payment addresses, built from key hashes or parsed from bech32 and
//! checked against the network a command runs on.
//!
//! Preprod, preview and the devnet share network id 0 (`addr_test`), so an
//! address tells mainnet from "a testnet", not one testnet from another.

use std::fmt;

use pallas_addresses::{
    Address, Network as AddressNetwork, ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart,
};

use super::key::bech32_encode;
use crate::Network;

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not a bech32 Shelley address.
    #[error(
        "`{input}` is not a valid Cardano address ({reason}): pass a bech32 address starting with addr1 (mainnet) or addr_test1 (testnets)"
    )]
    Malformed {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A stake (reward) or Byron address where a payment address is needed.
    #[error("`{input}` is a {kind}, not a Shelley payment address: {hint}")]
    NotPayment {
        /// What was given.
        input: String,
        /// "stake (reward) address" or "Byron address".
        kind: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// An address of the other network.
    #[error("{input} is a {address_network} address but this command runs on {network}: {hint}")]
    WrongNetwork {
        /// What was given.
        input: String,
        /// "mainnet" or "testnet".
        address_network: &'static str,
        /// The command's network.
        network: Network,
        /// What to do.
        hint: String,
    },
}

/// A Shelley payment address (key or script payment part, with or without a
/// stake part) on a known network.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PaymentAddress(ShelleyAddress);

impl fmt::Debug for PaymentAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentAddress({})", self.to_bech32())
    }
}

impl fmt::Display for PaymentAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_bech32())
    }
}

impl PaymentAddress {
    /// An enterprise address (no stake part) of a payment key hash.
    pub fn enterprise(network: Network, payment_key_hash: [u8; 28]) -> Self {
        PaymentAddress(ShelleyAddress::new(
            network.address_network(),
            ShelleyPaymentPart::key_hash(payment_key_hash.into()),
            ShelleyDelegationPart::Null,
        ))
    }

    /// A base address: payment key hash and stake key hash.
    pub fn base(network: Network, payment_key_hash: [u8; 28], stake_key_hash: [u8; 28]) -> Self {
        PaymentAddress(ShelleyAddress::new(
            network.address_network(),
            ShelleyPaymentPart::key_hash(payment_key_hash.into()),
            ShelleyDelegationPart::key_hash(stake_key_hash.into()),
        ))
    }

    /// Parses a bech32 payment address and checks it belongs to `network`.
    pub fn parse(input: &str, network: Network) -> Result<Self, AddressError> {
        let input = input.trim();
        let malformed = |reason: String| AddressError::Malformed {
            input: input.to_owned(),
            reason,
        };
        let (hrp, data) = bech32::decode(input).map_err(|e| malformed(e.to_string()))?;
        let hrp = hrp.to_lowercase();
        let address = Address::from_bytes(&data).map_err(|e| malformed(e.to_string()))?;
        let shelley = match address {
            Address::Shelley(s) => s,
            Address::Stake(_) => {
                return Err(AddressError::NotPayment {
                    input: input.to_owned(),
                    kind: "stake (reward) address",
                    hint: "pass the wallet's addr… address (`ntx wallet address` prints it)",
                });
            }
            Address::Byron(_) => {
                return Err(AddressError::NotPayment {
                    input: input.to_owned(),
                    kind: "Byron address",
                    hint: "use a Shelley address (addr… or addr_test…)",
                });
            }
        };
        let expected_hrp = match shelley.network() {
            AddressNetwork::Mainnet => "addr",
            AddressNetwork::Testnet => "addr_test",
            AddressNetwork::Other(id) => {
                return Err(malformed(format!(
                    "network id {id} is neither mainnet (1) nor testnet (0)"
                )));
            }
        };
        if hrp != expected_hrp {
            return Err(malformed(format!(
                "prefix `{hrp}` but its header says `{expected_hrp}`"
            )));
        }
        if shelley.network() != network.address_network() {
            let (address_network, hint) = if shelley.network().is_mainnet() {
                (
                    "mainnet",
                    "use an addr_test… address or --network mainnet".to_owned(),
                )
            } else {
                (
                    "testnet",
                    "use an addr1… address or --network preprod|preview|devnet".to_owned(),
                )
            };
            return Err(AddressError::WrongNetwork {
                input: short(input),
                address_network,
                network,
                hint,
            });
        }
        Ok(PaymentAddress(shelley))
    }

    /// An address from its raw bytes (as in a transaction output), checked
    /// against `network`.
    pub fn from_bytes(bytes: &[u8], network: Network) -> Result<Self, AddressError> {
        let hrp = match bytes.first().map(|h| h & 0x0f) {
            Some(1) => "addr",
            _ => "addr_test",
        };
        Self::parse(&bech32_encode(hrp, bytes), network)
    }

    /// bech32 (`addr1…` or `addr_test1…`).
    pub fn to_bech32(&self) -> String {
        let hrp = if self.0.network().is_mainnet() {
            "addr"
        } else {
            "addr_test"
        };
        bech32_encode(hrp, &self.0.to_vec())
    }

    /// The raw bytes, as transaction outputs carry them.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    /// Whether it is a mainnet address.
    pub fn is_mainnet(&self) -> bool {
        self.0.network().is_mainnet()
    }

    /// The payment key hash, or `None` for a script address.
    pub fn payment_key_hash(&self) -> Option<[u8; 28]> {
        match self.0.payment() {
            ShelleyPaymentPart::Key(h) => Some(**h),
            ShelleyPaymentPart::Script(_) => None,
        }
    }

    /// The stake key hash, or `None` (enterprise, pointer or script stake part).
    pub fn stake_key_hash(&self) -> Option<[u8; 28]> {
        match self.0.delegation() {
            ShelleyDelegationPart::Key(h) => Some(**h),
            _ => None,
        }
    }

    /// The pallas address.
    pub fn as_pallas(&self) -> &ShelleyAddress {
        &self.0
    }
}

/// `addr1qx2f…35a3x`: long enough to recognise, short enough for one line.
fn short(address: &str) -> String {
    if address.chars().count() <= 24 {
        address.to_owned()
    } else {
        let head: String = address.chars().take(12).collect();
        let tail: String = address
            .chars()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{head}…{tail}")
    }
}
