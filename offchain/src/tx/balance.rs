//! Balancing: the fee on the exact bytes, the change output and the collateral.

use crate::wallet::Signer;

use super::draft::{Draft, DraftError, EncodedTx};
use super::fee::FeeParams;
use super::output::{TxOutput, Value};

/// A transaction that cannot be balanced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    /// The inputs do not cover the outputs, burns, deposits and fee.
    #[error(
        "the inputs hold {available:?} but the transaction needs {needed:?}: add funds to the wallet"
    )]
    InsufficientFunds {
        /// What the inputs, withdrawals and mints provide.
        available: Value,
        /// What the outputs, burns, deposit and fee take.
        needed: Value,
    },
    /// What is left over is too little for a change output.
    #[error(
        "the change ({0} lovelace) is below the minimum for an output: add a little ADA to the wallet"
    )]
    ChangeBelowMinimum(u64),
    /// The collateral does not cover the collateral the fee requires.
    #[error(
        "the collateral inputs hold {have} lovelace but {needed} are required: add a pure-ADA UTxO"
    )]
    InsufficientCollateral {
        /// Lovelace in the collateral inputs.
        have: u64,
        /// The required collateral.
        needed: u64,
    },
    /// The fee did not settle (it should in two or three rounds).
    #[error("the fee did not converge")]
    NoConvergence,
    /// The draft itself is malformed.
    #[error(transparent)]
    Draft(#[from] DraftError),
}

impl Draft {
    fn consumed(&self) -> Value {
        let mut v = Value::default();
        for u in &self.inputs {
            v.add(&u.output.value);
        }
        v.lovelace += self.withdrawals.values().sum::<u64>();
        for (policy, names) in &self.mint {
            for (name, q) in names {
                if *q > 0 {
                    v.add_asset(*policy, name, q.unsigned_abs());
                }
            }
        }
        v
    }

    fn produced(&self) -> Value {
        let mut v = Value::lovelace(self.fee + self.deposit);
        for o in &self.outputs {
            v.add(&o.value);
        }
        for (policy, names) in &self.mint {
            for (name, q) in names {
                if *q < 0 {
                    v.add_asset(*policy, name, q.unsigned_abs());
                }
            }
        }
        v
    }

    /// Sets the fee, a change output to `change_address` (appended last) and, when
    /// the transaction runs scripts, the collateral return and total collateral.
    /// The fee is
    /// computed on the exact bytes signed by `signers` (plus `extra_signers`
    /// witnesses that will be added later, e.g. by a hardware wallet).
    pub fn balance(
        &mut self,
        change_address: &[u8],
        params: &FeeParams,
        signers: &[&dyn Signer],
        extra_signers: usize,
    ) -> Result<EncodedTx, BalanceError> {
        if let Some(at) = self.change_at.take() {
            self.outputs.truncate(at);
        }
        let fixed_outputs = self.outputs.len();
        self.fee = 0;
        for _ in 0..8 {
            self.outputs.truncate(fixed_outputs);
            let available = self.consumed();
            let needed = self.produced();
            let change =
                available
                    .checked_sub(&needed)
                    .ok_or_else(|| BalanceError::InsufficientFunds {
                        available: available.clone(),
                        needed: needed.clone(),
                    })?;
            if change != Value::default() {
                let output = TxOutput::new(change_address.to_vec(), change);
                let min = params.min_ada(output.to_cbor().len());
                if output.value.lovelace < min {
                    return Err(BalanceError::ChangeBelowMinimum(output.value.lovelace));
                }
                self.change_at = Some(self.outputs.len());
                self.outputs.push(output);
            }
            self.set_collateral(params)?;
            let encoded = self.encode(signers, extra_signers)?;
            let fee = params.min_fee(
                encoded.cbor.len(),
                self.total_ex_units(),
                self.ref_script_bytes(),
            );
            if fee <= self.fee {
                return Ok(encoded);
            }
            self.fee = fee;
        }
        Err(BalanceError::NoConvergence)
    }

    fn set_collateral(&mut self, params: &FeeParams) -> Result<(), BalanceError> {
        if self.redeemers.is_empty() || self.collateral.is_empty() {
            return Ok(());
        }
        let needed = (self.fee * params.collateral_percent).div_ceil(100);
        let mut have = Value::default();
        for u in &self.collateral {
            have.add(&u.output.value);
        }
        if have.lovelace < needed {
            return Err(BalanceError::InsufficientCollateral {
                have: have.lovelace,
                needed,
            });
        }
        let address = self.collateral[0].output.address.clone();
        let mut back = have;
        back.lovelace -= needed;
        self.collateral_return = Some(TxOutput::new(address, back));
        self.total_collateral = Some(needed);
        Ok(())
    }
}
