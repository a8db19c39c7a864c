//! What every escrow transaction needs: the deployment, prices, the evaluator.

use crate::wallet::Signer;

use crate::blueprint::EscrowScript;
use crate::evaluate::{EvalError, Evaluator, RedeemerCost};
use crate::network::Network;
use crate::tx::{BalanceError, Draft, DraftError, EncodedTx, FeeParams, Utxo};

/// Declared execution units are the measured ones plus this margin.
pub const EXECUTION_MARGIN_PERCENT: u64 = 5;

/// One escrow deployment on one network.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The escrow script.
    pub script: EscrowScript,
    /// The UTxO that carries the script for reference.
    pub script_utxo: Utxo,
    /// The network.
    pub network: Network,
    /// The network's fee parameters.
    pub fee_params: FeeParams,
    /// The network's evaluator (cost models, limits, slot config).
    pub evaluator: Evaluator,
    /// The Plutus V3 cost model, for script data hashes.
    pub cost_model_v3: Vec<i64>,
}

/// Why an escrow transaction could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The request itself is invalid (says what to change).
    #[error("{0}")]
    Invalid(String),
    /// The scripts reject the transaction as built.
    #[error(transparent)]
    Script(#[from] EvalError),
    /// The wallet cannot pay for it.
    #[error(transparent)]
    Balance(#[from] BalanceError),
    /// The draft is malformed.
    #[error(transparent)]
    Draft(#[from] DraftError),
}

/// A balanced, signed transaction and what it costs.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The transaction.
    pub tx: EncodedTx,
    /// Its fee in lovelace.
    pub fee: u64,
    /// What each script used on the final bytes (declared units add the margin).
    pub costs: Vec<RedeemerCost>,
    /// The draft it was encoded from.
    pub draft: Draft,
}

impl Deployment {
    /// Evaluates the draft's scripts, declares their units with the margin,
    /// balances with change to `change_address`, signs with `signers` (sizing
    /// the fee for `extra_signers` more witnesses added later), and checks the
    /// scripts again on the final bytes.
    pub fn finish(
        &self,
        mut draft: Draft,
        change_address: &[u8],
        signers: &[&dyn Signer],
        extra_signers: usize,
    ) -> Result<Finished, BuildError> {
        draft.cost_model_v3 = Some(self.cost_model_v3.clone());
        draft.network_id = Some(self.network.id());
        if !draft.redeemers.is_empty() {
            // Measure on a balanced draft, so the context the scripts see (fee,
            // change) is the final one up to a few lovelace.
            draft.balance(change_address, &self.fee_params, signers, extra_signers)?;
            let probe = draft.encode(&[], 0)?;
            let costs = self.evaluator.evaluate(&probe.cbor, &draft.resolved())?;
            let keys = draft
                .redeemers
                .iter()
                .map(|r| draft.redeemer_key(&r.purpose))
                .collect::<Result<Vec<_>, _>>()?;
            for (redeemer, key) in draft.redeemers.iter_mut().zip(keys) {
                let measured = costs
                    .iter()
                    .find(|c| (c.tag, c.index) == key)
                    .ok_or_else(|| BuildError::Invalid(format!("no cost measured for {key:?}")))?;
                redeemer.ex_units = measured.ex_units.with_margin(EXECUTION_MARGIN_PERCENT);
            }
        }
        let tx = draft.balance(change_address, &self.fee_params, signers, extra_signers)?;
        let costs = if draft.redeemers.is_empty() {
            Vec::new()
        } else {
            self.evaluator.evaluate(&tx.cbor, &draft.resolved())?
        };
        Ok(Finished {
            fee: draft.fee,
            tx,
            costs,
            draft,
        })
    }
}
