//! Submit: the agent commits to a result hash; the escrow continues in place.

use super::{BuildError, Deployment, EscrowUtxo};
use crate::protocol::{JobState, SpendAction, ToPlutusData};
use crate::tx::{Draft, DraftRedeemer, ScriptPurpose, TxOutput, Utxo};

/// Submits `result_hash` for `escrow`, paid for by `funding`, valid until
/// `invalid_from_slot` (which must not end after the job's `submit_by`).
pub fn submit(
    deployment: &Deployment,
    escrow: &EscrowUtxo,
    result_hash: [u8; 32],
    funding: Vec<Utxo>,
    collateral: Utxo,
    invalid_from_slot: u64,
) -> Result<Draft, BuildError> {
    let job = &escrow.datum;
    if job.state != JobState::Locked {
        return Err(BuildError::Invalid(format!(
            "job {} already has a result on chain",
            hex::encode(job.job_id)
        )));
    }
    let upper_ms = deployment
        .evaluator
        .slot_config
        .slot_to_posix_ms(invalid_from_slot);
    if upper_ms > job.submit_by {
        return Err(BuildError::Invalid(format!(
            "the submit deadline of job {} is {} ms but the transaction would be valid until {upper_ms} ms: submit with an earlier validity end, or the job is past its deadline",
            hex::encode(job.job_id),
            job.submit_by
        )));
    }
    let mut inputs = funding;
    inputs.push(escrow.utxo.clone());
    let mut draft = Draft {
        inputs,
        collateral: vec![collateral],
        ..Draft::default()
    };
    let input_index = draft
        .input_index(&escrow.utxo.reference)
        .ok_or_else(|| BuildError::Invalid("the escrow input is missing".into()))?;

    let mut datum = job.clone();
    datum.state = JobState::Submitted { result_hash };
    let continuing = TxOutput {
        datum: crate::tx::Datum::Inline(datum.to_plutus_data()),
        ..escrow.utxo.output.clone()
    };
    draft.outputs.push(continuing);
    draft.required_signers.insert(job.agent);
    draft.reference_inputs.push(deployment.script_utxo.clone());
    draft.invalid_from_slot = Some(invalid_from_slot);
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Spend(escrow.utxo.reference),
        data: SpendAction::Submit {
            input_index,
            output_index: 0,
            result_hash,
        }
        .to_plutus_data(),
        ex_units: Default::default(),
    });
    Ok(draft)
}
