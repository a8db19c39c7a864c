//! Addresses as Plutus scripts see them: a payment credential and an optional
//! stake credential, without the network (which the ledger keeps elsewhere).

use pallas_addresses::{
    Network, Pointer, ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart,
};
use pallas_crypto::hash::Hash;
use pallas_primitives::PlutusData;

use super::data::{self, DataError, FromPlutusData, ToPlutusData};

/// A payment or staking credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Credential {
    /// The blake2b-224 hash of an ed25519 verification key.
    Key([u8; 28]),
    /// The hash of a script.
    Script([u8; 28]),
}

impl Credential {
    /// The credential's 28-byte hash.
    pub fn hash(&self) -> &[u8; 28] {
        match self {
            Credential::Key(h) | Credential::Script(h) => h,
        }
    }
}

/// How an address delegates its stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StakeCredential {
    /// A stake key or script.
    Inline(Credential),
    /// A pointer to a stake registration certificate.
    Pointer {
        /// The certificate's slot.
        slot: u64,
        /// The transaction's index in its block.
        transaction_index: u64,
        /// The certificate's index in its transaction.
        certificate_index: u64,
    },
}

/// A Shelley address, without its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    /// Who can spend from the address.
    pub payment: Credential,
    /// Where its stake is delegated, if anywhere.
    pub stake: Option<StakeCredential>,
}

impl Address {
    /// Whether the escrow accepts this address as a payee: a key payment
    /// credential and no stake part or an inline one (the lock refuses script
    /// payees and stake pointers).
    pub fn is_payee(&self) -> bool {
        matches!(self.payment, Credential::Key(_))
            && !matches!(self.stake, Some(StakeCredential::Pointer { .. }))
    }

    /// The ledger address on `network`.
    pub fn to_shelley(&self, network: Network) -> ShelleyAddress {
        let payment = match self.payment {
            Credential::Key(h) => ShelleyPaymentPart::Key(Hash::new(h)),
            Credential::Script(h) => ShelleyPaymentPart::Script(Hash::new(h)),
        };
        let delegation = match self.stake {
            None => ShelleyDelegationPart::Null,
            Some(StakeCredential::Inline(Credential::Key(h))) => {
                ShelleyDelegationPart::Key(Hash::new(h))
            }
            Some(StakeCredential::Inline(Credential::Script(h))) => {
                ShelleyDelegationPart::Script(Hash::new(h))
            }
            Some(StakeCredential::Pointer {
                slot,
                transaction_index,
                certificate_index,
            }) => ShelleyDelegationPart::Pointer(Pointer::new(
                slot,
                transaction_index,
                certificate_index,
            )),
        };
        ShelleyAddress::new(network, payment, delegation)
    }
}

impl From<&ShelleyAddress> for Address {
    fn from(address: &ShelleyAddress) -> Self {
        let payment = match address.payment() {
            ShelleyPaymentPart::Key(h) => Credential::Key(**h),
            ShelleyPaymentPart::Script(h) => Credential::Script(**h),
        };
        let stake = match address.delegation() {
            ShelleyDelegationPart::Null => None,
            ShelleyDelegationPart::Key(h) => Some(StakeCredential::Inline(Credential::Key(**h))),
            ShelleyDelegationPart::Script(h) => {
                Some(StakeCredential::Inline(Credential::Script(**h)))
            }
            ShelleyDelegationPart::Pointer(p) => Some(StakeCredential::Pointer {
                slot: p.slot(),
                transaction_index: p.tx_idx(),
                certificate_index: p.cert_idx(),
            }),
        };
        Address { payment, stake }
    }
}

impl ToPlutusData for Credential {
    fn to_plutus_data(&self) -> PlutusData {
        match self {
            Credential::Key(h) => data::constr(0, vec![data::bytes(h)]),
            Credential::Script(h) => data::constr(1, vec![data::bytes(h)]),
        }
    }
}

impl FromPlutusData for Credential {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        let (index, _) = data::as_variant(d, "credential")?;
        let (_, fields) = data::as_constr(d, "credential", 1)?;
        let hash = data::as_array::<28>(&fields[0], "credential hash")?;
        match index {
            0 => Ok(Credential::Key(hash)),
            1 => Ok(Credential::Script(hash)),
            _ => Err(DataError::shape("credential", "constructor 0 or 1", d)),
        }
    }
}

impl ToPlutusData for StakeCredential {
    fn to_plutus_data(&self) -> PlutusData {
        match self {
            StakeCredential::Inline(c) => data::constr(0, vec![c.to_plutus_data()]),
            StakeCredential::Pointer {
                slot,
                transaction_index,
                certificate_index,
            } => data::constr(
                1,
                vec![
                    data::int(i128::from(*slot)),
                    data::int(i128::from(*transaction_index)),
                    data::int(i128::from(*certificate_index)),
                ],
            ),
        }
    }
}

impl FromPlutusData for StakeCredential {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        match data::as_variant(d, "stake credential")? {
            (0, _) => {
                let (_, f) = data::as_constr(d, "stake credential", 1)?;
                Ok(StakeCredential::Inline(Credential::from_plutus_data(
                    &f[0],
                )?))
            }
            (1, _) => {
                let (_, f) = data::as_constr(d, "stake pointer", 3)?;
                Ok(StakeCredential::Pointer {
                    slot: data::as_int_in(&f[0], "pointer slot")?,
                    transaction_index: data::as_int_in(&f[1], "pointer transaction index")?,
                    certificate_index: data::as_int_in(&f[2], "pointer certificate index")?,
                })
            }
            _ => Err(DataError::shape(
                "stake credential",
                "constructor 0 or 1",
                d,
            )),
        }
    }
}

impl ToPlutusData for Address {
    fn to_plutus_data(&self) -> PlutusData {
        let stake = match &self.stake {
            Some(s) => data::constr(0, vec![s.to_plutus_data()]),
            None => data::constr(1, vec![]),
        };
        data::constr(0, vec![self.payment.to_plutus_data(), stake])
    }
}

impl FromPlutusData for Address {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        let (index, f) = data::as_constr(d, "address", 2)?;
        if index != 0 {
            return Err(DataError::shape("address", "constructor 0", d));
        }
        let payment = Credential::from_plutus_data(&f[0])?;
        let stake = match data::as_variant(&f[1], "address stake part")? {
            (0, [s]) => Some(StakeCredential::from_plutus_data(s)?),
            (1, []) => None,
            _ => {
                return Err(DataError::shape(
                    "address stake part",
                    "Some(credential) or None",
                    &f[1],
                ));
            }
        };
        Ok(Address { payment, stake })
    }
}
