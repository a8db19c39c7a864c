//! The escrow's redeemers, one type per handler, as `contracts/lib/escrow/types.ak`.

use pallas_primitives::PlutusData;

use super::data::{self, DataError, FromPlutusData, ToPlutusData};

/// Where a locked job comes from: indexes into the lock transaction's inputs
/// (the seed) and outputs (the escrow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobOrigin {
    /// Index of the seed input among the transaction's (sorted) inputs.
    pub seed_input: u32,
    /// Index of the escrow output among the transaction's outputs.
    pub escrow_output: u32,
}

/// The `mint` handler's redeemer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MintAction {
    /// Mint one job token per job; `jobs` in the order of the job ids.
    Lock {
        /// One entry per minted job token.
        jobs: Vec<JobOrigin>,
    },
    /// Burn job tokens in a settlement.
    Burn,
}

/// The `spend` handler's redeemer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpendAction {
    /// The agent commits to its result; the escrow continues at `output_index`.
    Submit {
        /// Index of the escrow input being spent.
        input_index: u32,
        /// Index of the continuing escrow output.
        output_index: u32,
        /// blake2b-256 of the canonical result bytes.
        result_hash: [u8; 32],
    },
    /// Settled by the `withdraw` handler in the same transaction.
    Settle {
        /// Index of the escrow input being spent.
        input_index: u32,
    },
}

/// One verifier's signature over the attestation message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attestation {
    /// The verifier's index in the datum's `verifiers`.
    pub verifier_index: u32,
    /// ed25519 signature over the 98-byte attestation message.
    pub signature: [u8; 64],
}

/// How one escrow is settled; the `withdraw` redeemer lists one per escrow input,
/// in the order of the transaction's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Settlement {
    /// Pay the provider: a quorum accepted the result, before `settle_by`.
    Claim {
        /// At least `threshold` accepting attestations, indexes ascending.
        attestations: Vec<Attestation>,
    },
    /// Refund the requester: no result by `submit_by`.
    RefundNoShow,
    /// Refund the requester: no claim by `settle_by`.
    RefundTimeout,
    /// Refund the requester: a quorum rejected the result.
    RefundRejected {
        /// At least `threshold` rejecting attestations, indexes ascending.
        attestations: Vec<Attestation>,
    },
    /// Refund the requester before any result, signed by requester and agent.
    Cancel,
    /// The fast path: pay the provider straight from `Locked`, by `submit_by`,
    /// when a quorum accepted `result_hash`.
    FastClaim {
        /// blake2b-256 of the canonical result bytes the verifiers accepted.
        result_hash: [u8; 32],
        /// At least `threshold` accepting attestations, indexes ascending.
        attestations: Vec<Attestation>,
    },
    /// The fast path: refund the requester straight from `Locked` when a quorum
    /// rejected `result_hash`.
    FastRefundRejected {
        /// blake2b-256 of the result bytes the verifiers rejected.
        result_hash: [u8; 32],
        /// At least `threshold` rejecting attestations, indexes ascending.
        attestations: Vec<Attestation>,
    },
}

impl Settlement {
    /// Whether it pays the provider (a claim, on either path).
    pub fn pays_provider(&self) -> bool {
        matches!(
            self,
            Settlement::Claim { .. } | Settlement::FastClaim { .. }
        )
    }

    /// The result hash a fast-path settlement names (`None` on the slow path,
    /// where the hash is the datum's).
    pub fn fast_result_hash(&self) -> Option<[u8; 32]> {
        match self {
            Settlement::FastClaim { result_hash, .. }
            | Settlement::FastRefundRejected { result_hash, .. } => Some(*result_hash),
            _ => None,
        }
    }

    /// The verdict and attestations it carries, if any.
    pub fn attestations(&self) -> Option<(super::Verdict, &[Attestation])> {
        use super::Verdict;
        match self {
            Settlement::Claim { attestations } | Settlement::FastClaim { attestations, .. } => {
                Some((Verdict::Accept, attestations))
            }
            Settlement::RefundRejected { attestations }
            | Settlement::FastRefundRejected { attestations, .. } => {
                Some((Verdict::Reject, attestations))
            }
            _ => None,
        }
    }
}

impl ToPlutusData for JobOrigin {
    fn to_plutus_data(&self) -> PlutusData {
        data::constr(
            0,
            vec![
                data::int(i128::from(self.seed_input)),
                data::int(i128::from(self.escrow_output)),
            ],
        )
    }
}

impl FromPlutusData for JobOrigin {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        let (index, f) = data::as_constr(d, "job origin", 2)?;
        if index != 0 {
            return Err(DataError::shape("job origin", "constructor 0", d));
        }
        Ok(JobOrigin {
            seed_input: data::as_int_in(&f[0], "seed_input")?,
            escrow_output: data::as_int_in(&f[1], "escrow_output")?,
        })
    }
}

impl ToPlutusData for MintAction {
    fn to_plutus_data(&self) -> PlutusData {
        match self {
            MintAction::Lock { jobs } => data::constr(
                0,
                vec![data::list(
                    jobs.iter().map(ToPlutusData::to_plutus_data).collect(),
                )],
            ),
            MintAction::Burn => data::constr(1, vec![]),
        }
    }
}

impl FromPlutusData for MintAction {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        match data::as_variant(d, "mint redeemer")? {
            (0, [jobs]) => Ok(MintAction::Lock {
                jobs: data::as_list(jobs, "jobs")?
                    .iter()
                    .map(JobOrigin::from_plutus_data)
                    .collect::<Result<_, _>>()?,
            }),
            (1, []) => Ok(MintAction::Burn),
            _ => Err(DataError::shape(
                "mint redeemer",
                "Lock { jobs } or Burn",
                d,
            )),
        }
    }
}

impl ToPlutusData for SpendAction {
    fn to_plutus_data(&self) -> PlutusData {
        match self {
            SpendAction::Submit {
                input_index,
                output_index,
                result_hash,
            } => data::constr(
                0,
                vec![
                    data::int(i128::from(*input_index)),
                    data::int(i128::from(*output_index)),
                    data::bytes(result_hash),
                ],
            ),
            SpendAction::Settle { input_index } => {
                data::constr(1, vec![data::int(i128::from(*input_index))])
            }
        }
    }
}

impl FromPlutusData for SpendAction {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        match data::as_variant(d, "spend redeemer")? {
            (0, [i, o, h]) => Ok(SpendAction::Submit {
                input_index: data::as_int_in(i, "input_index")?,
                output_index: data::as_int_in(o, "output_index")?,
                result_hash: data::as_array(h, "result_hash")?,
            }),
            (1, [i]) => Ok(SpendAction::Settle {
                input_index: data::as_int_in(i, "input_index")?,
            }),
            _ => Err(DataError::shape(
                "spend redeemer",
                "Submit { .. } or Settle { .. }",
                d,
            )),
        }
    }
}

impl ToPlutusData for Attestation {
    fn to_plutus_data(&self) -> PlutusData {
        data::constr(
            0,
            vec![
                data::int(i128::from(self.verifier_index)),
                data::bytes(&self.signature),
            ],
        )
    }
}

impl FromPlutusData for Attestation {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        let (index, f) = data::as_constr(d, "attestation", 2)?;
        if index != 0 {
            return Err(DataError::shape("attestation", "constructor 0", d));
        }
        Ok(Attestation {
            verifier_index: data::as_int_in(&f[0], "verifier_index")?,
            signature: data::as_array(&f[1], "signature")?,
        })
    }
}

fn attestations(list: &[Attestation]) -> PlutusData {
    data::list(list.iter().map(ToPlutusData::to_plutus_data).collect())
}

fn read_attestations(d: &PlutusData) -> Result<Vec<Attestation>, DataError> {
    data::as_list(d, "attestations")?
        .iter()
        .map(Attestation::from_plutus_data)
        .collect()
}

impl ToPlutusData for Settlement {
    fn to_plutus_data(&self) -> PlutusData {
        match self {
            Settlement::Claim { attestations: a } => data::constr(0, vec![attestations(a)]),
            Settlement::RefundNoShow => data::constr(1, vec![]),
            Settlement::RefundTimeout => data::constr(2, vec![]),
            Settlement::RefundRejected { attestations: a } => {
                data::constr(3, vec![attestations(a)])
            }
            Settlement::Cancel => data::constr(4, vec![]),
            Settlement::FastClaim {
                result_hash,
                attestations: a,
            } => data::constr(5, vec![data::bytes(result_hash), attestations(a)]),
            Settlement::FastRefundRejected {
                result_hash,
                attestations: a,
            } => data::constr(6, vec![data::bytes(result_hash), attestations(a)]),
        }
    }
}

impl FromPlutusData for Settlement {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        match data::as_variant(d, "settlement")? {
            (0, [a]) => Ok(Settlement::Claim {
                attestations: read_attestations(a)?,
            }),
            (1, []) => Ok(Settlement::RefundNoShow),
            (2, []) => Ok(Settlement::RefundTimeout),
            (3, [a]) => Ok(Settlement::RefundRejected {
                attestations: read_attestations(a)?,
            }),
            (4, []) => Ok(Settlement::Cancel),
            (5, [h, a]) => Ok(Settlement::FastClaim {
                result_hash: data::as_array(h, "result_hash")?,
                attestations: read_attestations(a)?,
            }),
            (6, [h, a]) => Ok(Settlement::FastRefundRejected {
                result_hash: data::as_array(h, "result_hash")?,
                attestations: read_attestations(a)?,
            }),
            _ => Err(DataError::shape(
                "settlement",
                "Claim, RefundNoShow, RefundTimeout, RefundRejected, Cancel, FastClaim or FastRefundRejected",
                d,
            )),
        }
    }
}

/// The `withdraw` handler's redeemer: one settlement per escrow input.
impl ToPlutusData for Vec<Settlement> {
    fn to_plutus_data(&self) -> PlutusData {
        data::list(self.iter().map(ToPlutusData::to_plutus_data).collect())
    }
}

impl FromPlutusData for Vec<Settlement> {
    fn from_plutus_data(d: &PlutusData) -> Result<Self, DataError> {
        data::as_list(d, "settlements")?
            .iter()
            .map(Settlement::from_plutus_data)
            .collect()
    }
}
