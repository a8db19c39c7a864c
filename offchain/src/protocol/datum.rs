//! The escrow's parameter and datum, field for field as `contracts/lib/escrow/types.ak`.

use pallas_primitives::PlutusData;

use super::address::Address;
use super::data::{self, DataError, FromPlutusData, ToPlutusData};

/// A reference to a transaction output (Plutus V3: the id is plain bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutputReference {
    /// The transaction that created the output.
    pub transaction_id: [u8; 32],
    /// The output's index in that transaction.
    pub output_index: u64,
}

impl ToPlutusData for OutputReference {
    fn to_plutus_data(&self) -> PlutusData {
        data::constr(
            0,
            vec![
                data::bytes(&self.transaction_id),
                data::int(i128::from(self.output_index)),
            ],
        )
    }
}

impl FromPlutusData for OutputReference {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        let (index, f) = data::as_constr(d, "output reference", 2)?;
        if index != 0 {
            return Err(DataError::shape("output reference", "constructor 0", d));
        }
        Ok(OutputReference {
            transaction_id: data::as_array(&f[0], "transaction id")?,
            output_index: data::as_int_in(&f[1], "output index")?,
        })
    }
}

/// A native asset: the validator's parameter names the one jobs are paid in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Asset {
    /// The minting policy's hash.
    pub policy: [u8; 28],
    /// The asset name (at most 32 bytes).
    pub name: Vec<u8>,
}

impl Asset {
    /// NTX on mainnet: NuNet's token, 6 decimals.
    pub fn mainnet_ntx() -> Asset {
        Asset {
            policy: MAINNET_NTX_POLICY,
            name: b"NTX".to_vec(),
        }
    }

    /// The asset's unit as Blockfrost writes it: policy hex then name hex.
    pub fn unit(&self) -> String {
        format!("{}{}", hex::encode(self.policy), hex::encode(&self.name))
    }
}

/// NTX's minting policy on mainnet.
pub const MAINNET_NTX_POLICY: [u8; 28] = [
    0xed, 0xfd, 0x7a, 0x1d, 0x77, 0xbc, 0xb8, 0xb8, 0x84, 0xc4, 0x74, 0xbd, 0xc9, 0x2a, 0x16, 0x00,
    0x2d, 0x1f, 0xb7, 0x20, 0xe4, 0x54, 0xfa, 0x6e, 0x99, 0x34, 0x44, 0x79,
];

/// NTX's decimals: 1 NTX is 1,000,000 units.
pub const NTX_DECIMALS: u32 = 6;

impl ToPlutusData for Asset {
    fn to_plutus_data(&self) -> PlutusData {
        data::constr(0, vec![data::bytes(&self.policy), data::bytes(&self.name)])
    }
}

impl FromPlutusData for Asset {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        let (index, f) = data::as_constr(d, "asset", 2)?;
        if index != 0 {
            return Err(DataError::shape("asset", "constructor 0", d));
        }
        Ok(Asset {
            policy: data::as_array(&f[0], "asset policy")?,
            name: data::as_bytes(&f[1], "asset name")?.to_vec(),
        })
    }
}

/// Where a job is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Funds locked; waiting for the provider's result.
    Locked,
    /// The provider committed to its result bytes.
    Submitted {
        /// blake2b-256 of the canonical result bytes.
        result_hash: [u8; 32],
    },
}

impl ToPlutusData for JobState {
    fn to_plutus_data(&self) -> PlutusData {
        match self {
            JobState::Locked => data::constr(0, vec![]),
            JobState::Submitted { result_hash } => data::constr(1, vec![data::bytes(result_hash)]),
        }
    }
}

impl FromPlutusData for JobState {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        match data::as_variant(d, "job state")? {
            (0, []) => Ok(JobState::Locked),
            (1, [h]) => Ok(JobState::Submitted {
                result_hash: data::as_array(h, "result hash")?,
            }),
            _ => Err(DataError::shape(
                "job state",
                "Locked or Submitted { result_hash }",
                d,
            )),
        }
    }
}

/// One job's escrow datum, held inline next to the job token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobDatum {
    /// blake2b-256 of the serialised seed output reference; the job token's name.
    pub job_id: [u8; 32],
    /// Refund payee (key payment credential).
    pub requester: Address,
    /// Payout payee (key payment credential; may be a cold wallet).
    pub provider: Address,
    /// The provider's hot key hash, which signs Submit.
    pub agent: [u8; 28],
    /// blake2b-256 of the canonical job spec bytes.
    pub spec_hash: [u8; 32],
    /// The price, in the settlement asset's smallest unit.
    pub price: u64,
    /// Verifiers' ed25519 public keys, strictly ascending.
    pub verifiers: Vec<[u8; 32]>,
    /// Attestations needed for a claim or a rejecting refund.
    pub threshold: u32,
    /// POSIX ms: the result must be on chain before this instant.
    pub submit_by: u64,
    /// POSIX ms: a quorum claim must land before this instant.
    pub settle_by: u64,
    /// Where the job is.
    pub state: JobState,
}

impl ToPlutusData for JobDatum {
    fn to_plutus_data(&self) -> PlutusData {
        data::constr(
            0,
            vec![
                data::bytes(&self.job_id),
                self.requester.to_plutus_data(),
                self.provider.to_plutus_data(),
                data::bytes(&self.agent),
                data::bytes(&self.spec_hash),
                data::int(i128::from(self.price)),
                data::list(self.verifiers.iter().map(|k| data::bytes(k)).collect()),
                data::int(i128::from(self.threshold)),
                data::int(i128::from(self.submit_by)),
                data::int(i128::from(self.settle_by)),
                self.state.to_plutus_data(),
            ],
        )
    }
}

impl FromPlutusData for JobDatum {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        let (index, f) = data::as_constr(d, "job datum", 11)?;
        if index != 0 {
            return Err(DataError::shape("job datum", "constructor 0", d));
        }
        Ok(JobDatum {
            job_id: data::as_array(&f[0], "job_id")?,
            requester: Address::from_plutus_data(&f[1])?,
            provider: Address::from_plutus_data(&f[2])?,
            agent: data::as_array(&f[3], "agent")?,
            spec_hash: data::as_array(&f[4], "spec_hash")?,
            price: data::as_int_in(&f[5], "price")?,
            verifiers: data::as_list(&f[6], "verifiers")?
                .iter()
                .map(|k| data::as_array(k, "verifier key"))
                .collect::<Result<_, _>>()?,
            threshold: data::as_int_in(&f[7], "threshold")?,
            submit_by: data::as_int_in(&f[8], "submit_by")?,
            settle_by: data::as_int_in(&f[9], "settle_by")?,
            state: JobState::from_plutus_data(&f[10])?,
        })
    }
}
