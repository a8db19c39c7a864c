//! Lock: create escrows, one job token each, in one transaction.

use std::collections::BTreeMap;

use pallas_primitives::Metadatum;

use super::{BuildError, Deployment};
use crate::protocol::{Address, JobDatum, JobOrigin, JobState, MintAction, ToPlutusData, job_id};
use crate::tx::{Draft, DraftRedeemer, ScriptPurpose, TxOutput, Utxo, Value};

/// What a requester asks for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTerms {
    /// Refund payee.
    pub requester: Address,
    /// Payout payee.
    pub provider: Address,
    /// The provider's agent key hash (signs Submit).
    pub agent: [u8; 28],
    /// blake2b-256 of the job spec.
    pub spec_hash: [u8; 32],
    /// Price in settlement-asset units.
    pub price: u64,
    /// Verifier public keys (any order: the datum keeps them sorted).
    pub verifiers: Vec<[u8; 32]>,
    /// Attestations needed.
    pub threshold: u32,
    /// POSIX ms by which the result must be on chain.
    pub submit_by: u64,
    /// POSIX ms by which a claim must land.
    pub settle_by: u64,
}

impl JobTerms {
    /// The datum for this job, once its id is known.
    pub fn datum(&self, job_id: [u8; 32]) -> JobDatum {
        let mut verifiers = self.verifiers.clone();
        verifiers.sort();
        JobDatum {
            job_id,
            requester: self.requester,
            provider: self.provider,
            agent: self.agent,
            spec_hash: self.spec_hash,
            price: self.price,
            verifiers,
            threshold: self.threshold,
            submit_by: self.submit_by,
            settle_by: self.settle_by,
            state: JobState::Locked,
        }
    }
}

/// Locks `jobs`, one escrow each, funded by `funding` (which must hold at least
/// one UTxO per job: each job's id is the hash of its own seed input), with a
/// pure-ADA `collateral` UTxO. The transaction is valid until
/// `invalid_from_slot`; `metadata` goes in as is.
pub fn lock(
    deployment: &Deployment,
    jobs: &[JobTerms],
    funding: Vec<Utxo>,
    collateral: Utxo,
    invalid_from_slot: u64,
    metadata: BTreeMap<u64, Metadatum>,
) -> Result<Draft, BuildError> {
    if jobs.is_empty() {
        return Err(BuildError::Invalid(
            "nothing to lock: give at least one job".into(),
        ));
    }
    let slot_config = deployment.evaluator.slot_config;
    let upper_ms = slot_config.slot_to_posix_ms(invalid_from_slot);
    for (i, job) in jobs.iter().enumerate() {
        if job.price == 0 {
            return Err(BuildError::Invalid(format!(
                "job {i}: the price must be above zero"
            )));
        }
        if job.submit_by <= upper_ms {
            return Err(BuildError::Invalid(format!(
                "job {i}: the submit deadline must be after the transaction's validity ends ({upper_ms} ms): give the provider more time"
            )));
        }
        for (role, address) in [("requester", &job.requester), ("provider", &job.provider)] {
            if !address.is_payee() {
                return Err(BuildError::Invalid(format!(
                    "job {i}: the {role}'s address cannot be paid by the escrow: it needs a key payment credential and no stake pointer"
                )));
            }
        }
        if job.settle_by <= job.submit_by {
            return Err(BuildError::Invalid(format!(
                "job {i}: the settle deadline must come after the submit deadline"
            )));
        }
        let n = job.verifiers.len();
        if job.threshold == 0 || job.threshold as usize > n {
            return Err(BuildError::Invalid(format!(
                "job {i}: the threshold must be between 1 and the number of verifiers ({n})"
            )));
        }
        let mut keys = job.verifiers.clone();
        keys.sort();
        keys.dedup();
        if keys.len() != n {
            return Err(BuildError::Invalid(format!(
                "job {i}: a verifier key is listed twice"
            )));
        }
    }

    let mut draft = Draft {
        inputs: funding,
        collateral: vec![collateral],
        ..Draft::default()
    };
    let seeds = draft.sorted_inputs();
    if seeds.len() < jobs.len() {
        return Err(BuildError::Invalid(format!(
            "{} jobs need {} wallet UTxOs (one seed each) but the wallet gave {}: split a UTxO first",
            jobs.len(),
            jobs.len(),
            seeds.len()
        )));
    }
    let script = &deployment.script;
    let escrow_address = script.address(deployment.network).to_vec();
    let settlement = script.settlement().clone();
    let mut origins = BTreeMap::new();
    for (i, (job, seed)) in jobs.iter().zip(&seeds).enumerate() {
        let id = job_id(seed);
        let datum = job.datum(id);
        let value = Value::lovelace(0)
            .with_asset(settlement.policy, &settlement.name, job.price)
            .with_asset(script.policy_id(), &id, 1);
        let mut output =
            TxOutput::new(escrow_address.clone(), value).with_inline_datum(datum.to_plutus_data());
        // The deposit must cover the escrow at its largest: after Submit, whose
        // datum carries a 32-byte result hash and whose value cannot change.
        // (Measured with a full-width placeholder for the deposit itself.)
        let mut largest = datum.clone();
        largest.state = JobState::Submitted {
            result_hash: [0; 32],
        };
        let mut probe = output.clone().with_inline_datum(largest.to_plutus_data());
        probe.value.lovelace = u64::from(u32::MAX);
        output.value.lovelace = deployment.fee_params.min_ada(probe.to_cbor().len());
        draft.outputs.push(output);
        draft
            .mint
            .entry(script.policy_id())
            .or_default()
            .insert(id.to_vec(), 1);
        origins.insert(
            id,
            JobOrigin {
                seed_input: i as u32,
                escrow_output: i as u32,
            },
        );
    }
    draft.reference_inputs.push(deployment.script_utxo.clone());
    draft.invalid_from_slot = Some(invalid_from_slot);
    draft.metadata = metadata;
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Mint(script.policy_id()),
        data: MintAction::Lock {
            jobs: origins.into_values().collect(),
        }
        .to_plutus_data(),
        ex_units: Default::default(),
    });
    Ok(draft)
}
