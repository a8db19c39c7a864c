//! Settle: Claim, Refund and Cancel any number of escrows in one transaction,
//! on the slow path (from `Submitted`) and the fast path (from `Locked`).

use std::collections::BTreeMap;

use super::{BuildError, Deployment};
use crate::protocol::{
    Credential, FromPlutusData, JobDatum, JobState, MintAction, Settlement, SpendAction,
    ToPlutusData, payout_datum,
};
use crate::tx::{Datum, Draft, DraftRedeemer, ScriptPurpose, TxOutput, Utxo, Value};

/// A UTxO at the escrow address that is a genuine escrow: it holds its job token
/// and a well-formed datum. Anything else at the address is dust, never settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowUtxo {
    /// The UTxO.
    pub utxo: Utxo,
    /// Its datum.
    pub datum: JobDatum,
}

impl EscrowUtxo {
    /// Reads an escrow, or says why the UTxO is not one.
    pub fn from_utxo(deployment: &Deployment, utxo: Utxo) -> Result<EscrowUtxo, BuildError> {
        let script = &deployment.script;
        let not =
            |why: &str| BuildError::Invalid(format!("{} is not an escrow: {why}", describe(&utxo)));
        let address = pallas_addresses::Address::from_bytes(&utxo.output.address)
            .map_err(|_| not("its address is malformed"))?;
        let on_script = matches!(&address, pallas_addresses::Address::Shelley(a)
            if crate::protocol::Address::from(a).payment == Credential::Script(script.hash()));
        if !on_script {
            return Err(not("it is not at the escrow's script address"));
        }
        let Datum::Inline(data) = &utxo.output.datum else {
            return Err(not("it has no inline datum"));
        };
        let datum = JobDatum::from_plutus_data(data).map_err(|e| not(&e.to_string()))?;
        let value = &utxo.output.value;
        let settlement = script.settlement();
        let expected = Value::lovelace(value.lovelace)
            .with_asset(
                settlement.policy,
                &settlement.name,
                value.quantity_of(&settlement.policy, &settlement.name),
            )
            .with_asset(script.policy_id(), &datum.job_id, 1);
        if *value != expected {
            return Err(not(
                "it does not hold exactly its job token, the settlement asset and ADA",
            ));
        }
        Ok(EscrowUtxo { utxo, datum })
    }

    /// What a settlement pays out: the escrow's value less its job token.
    pub fn payout(&self, deployment: &Deployment) -> Value {
        let mut value = self.utxo.output.value.clone();
        value.assets.remove(&deployment.script.policy_id());
        value
    }
}

/// The latest exclusive upper bound (a slot) that keeps a transaction valid
/// only before or at `deadline_ms`: the last slot whose start is at most the
/// deadline. `None` when that is not after `now_slot` (the deadline has passed).
fn last_slot_by(sc: &crate::SlotConfig, deadline_ms: u64, now_slot: u64) -> Option<u64> {
    let last = sc.posix_ms_to_slot(deadline_ms);
    (sc.slot_to_posix_ms(last) <= deadline_ms && last > now_slot).then_some(last)
}

fn describe(utxo: &Utxo) -> String {
    format!(
        "{}#{}",
        hex::encode(utxo.reference.transaction_id),
        utxo.reference.output_index
    )
}

/// Settles each escrow as its [`Settlement`] says, paid for by `funding`.
/// The transaction is valid from `now_slot` for up to `ttl_slots`, shortened so
/// that claims land before their `settle_by`; settlements that are not yet
/// (or no longer) allowed in that window are refused with the reason.
///
/// The settlement runs the script's `withdraw` handler, so it withdraws from the
/// escrow's reward account, and the ledger takes only its whole balance:
/// `reward_balance` is that balance as the chain has it now (0 unless someone
/// paid into the account, e.g. as a governance proposal's deposit return). It
/// goes to the change, i.e. to whoever settles.
pub fn settle(
    deployment: &Deployment,
    escrows: Vec<(EscrowUtxo, Settlement)>,
    funding: Vec<Utxo>,
    collateral: Utxo,
    now_slot: u64,
    ttl_slots: u64,
    reward_balance: u64,
) -> Result<Draft, BuildError> {
    if escrows.is_empty() {
        return Err(BuildError::Invalid("nothing to settle".into()));
    }
    let sc = deployment.evaluator.slot_config;
    let lower_ms = sc.slot_to_posix_ms(now_slot);
    let mut invalid_from = now_slot + ttl_slots;
    let mut signers = Vec::new();
    for (escrow, settlement) in &escrows {
        let job = &escrow.datum;
        let id = hex::encode(job.job_id);
        let submitted = matches!(job.state, JobState::Submitted { .. });
        let fail = |why: String| Err(BuildError::Invalid(format!("job {id}: {why}")));
        match settlement {
            Settlement::Claim { .. } => {
                if !submitted {
                    return fail("no result was submitted, so there is nothing to claim".into());
                }
                let Some(last) = last_slot_by(&sc, job.settle_by, now_slot) else {
                    return fail("its settle deadline has passed: it can only be refunded".into());
                };
                invalid_from = invalid_from.min(last);
            }
            Settlement::FastClaim { .. } | Settlement::FastRefundRejected { .. } if submitted => {
                return fail(
                    "a result was submitted: settle it on the slow path (Claim or RefundRejected)"
                        .into(),
                );
            }
            Settlement::FastClaim { .. } => {
                let Some(last) = last_slot_by(&sc, job.submit_by, now_slot) else {
                    return fail(
                        "its submit deadline has passed: the fast path is closed, submit or refund"
                            .into(),
                    );
                };
                invalid_from = invalid_from.min(last);
            }
            Settlement::RefundNoShow | Settlement::Cancel if submitted => {
                return fail(
                    "a result was submitted: it is claimed, rejected or refunded after settle_by"
                        .into(),
                );
            }
            Settlement::RefundNoShow if lower_ms <= job.submit_by => {
                return fail(format!(
                    "the provider has until {} ms to submit",
                    job.submit_by
                ));
            }
            Settlement::RefundTimeout if !submitted => {
                return fail("no result was submitted: refund it as a no-show".into());
            }
            Settlement::RefundTimeout if lower_ms <= job.settle_by => {
                return fail(format!(
                    "a quorum may still claim it until {} ms",
                    job.settle_by
                ));
            }
            Settlement::RefundRejected { .. } if !submitted => {
                return fail("no result was submitted, so there is nothing to reject".into());
            }
            Settlement::Cancel => {
                let crate::protocol::Credential::Key(requester) = job.requester.payment else {
                    return fail("the requester is not a key address".into());
                };
                signers.push(requester);
                signers.push(job.agent);
            }
            _ => {}
        }
    }

    let script = &deployment.script;
    let mut inputs = funding;
    inputs.extend(escrows.iter().map(|(e, _)| e.utxo.clone()));
    let mut draft = Draft {
        inputs,
        collateral: vec![collateral],
        ..Draft::default()
    };
    let order = draft.sorted_inputs();

    // Payouts merged per payee, in first-seen order of the sorted escrows.
    let mut sorted: Vec<_> = escrows.iter().collect();
    sorted.sort_by_key(|(e, _)| order.iter().position(|r| *r == e.utxo.reference));
    let mut payouts: Vec<(Vec<u8>, Value)> = Vec::new();
    for (escrow, settlement) in &sorted {
        let payee = if settlement.pays_provider() {
            escrow.datum.provider
        } else {
            escrow.datum.requester
        };
        let address = payee
            .to_shelley(deployment.network.address_network())
            .to_vec();
        let value = escrow.payout(deployment);
        match payouts.iter_mut().find(|(a, _)| *a == address) {
            Some((_, v)) => v.add(&value),
            None => payouts.push((address, value)),
        }
        draft
            .mint
            .entry(script.policy_id())
            .or_default()
            .insert(escrow.datum.job_id.to_vec(), -1);
        let input_index = draft
            .input_index(&escrow.utxo.reference)
            .ok_or_else(|| BuildError::Invalid("an escrow input is missing".into()))?;
        draft.redeemers.push(DraftRedeemer {
            purpose: ScriptPurpose::Spend(escrow.utxo.reference),
            data: SpendAction::Settle { input_index }.to_plutus_data(),
            ex_units: Default::default(),
        });
    }
    for (address, value) in payouts {
        draft
            .outputs
            .push(TxOutput::new(address, value).with_inline_datum(payout_datum(&script.hash())));
    }
    let account = script.stake_address(deployment.network).to_vec();
    draft.withdrawals = BTreeMap::from([(account.clone(), reward_balance)]);
    let settlements: Vec<Settlement> = sorted.iter().map(|(_, s)| s.clone()).collect();
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Mint(script.policy_id()),
        data: MintAction::Burn.to_plutus_data(),
        ex_units: Default::default(),
    });
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Reward(account),
        data: settlements.to_plutus_data(),
        ex_units: Default::default(),
    });
    draft.required_signers.extend(signers);
    draft.reference_inputs.push(deployment.script_utxo.clone());
    draft.valid_from_slot = Some(now_slot);
    draft.invalid_from_slot = Some(invalid_from);
    Ok(draft)
}
