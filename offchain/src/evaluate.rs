//! Script execution units, computed locally with `uplc` (the evaluator the devnet
//! and Aiken use) instead of trusting a provider's evaluate endpoint.
//!
//! `uplc` links its own pallas (0.35): only CBOR bytes cross between the two.

use pallas_codec::minicbor;
use pallas_primitives::conway::{Redeemer, RedeemerTag};

/// Execution units: memory and CPU steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ExUnits {
    /// Memory units.
    pub mem: u64,
    /// CPU steps.
    pub steps: u64,
}

impl ExUnits {
    /// These units plus `margin_percent` percent, rounded up.
    pub fn with_margin(self, margin_percent: u64) -> ExUnits {
        let up = |x: u64| x + (x * margin_percent).div_ceil(100);
        ExUnits {
            mem: up(self.mem),
            steps: up(self.steps),
        }
    }
}

impl std::ops::Add for ExUnits {
    type Output = ExUnits;
    fn add(self, rhs: ExUnits) -> ExUnits {
        ExUnits {
            mem: self.mem + rhs.mem,
            steps: self.steps + rhs.steps,
        }
    }
}

/// How slots map to POSIX time on a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotConfig {
    /// POSIX ms at `zero_slot`.
    pub zero_time_ms: u64,
    /// The slot at `zero_time_ms`.
    pub zero_slot: u64,
    /// Milliseconds per slot.
    pub slot_length_ms: u32,
}

impl SlotConfig {
    /// Mainnet's Shelley-era slot config.
    pub const MAINNET: SlotConfig = SlotConfig {
        zero_time_ms: 1_596_059_091_000,
        zero_slot: 4_492_800,
        slot_length_ms: 1000,
    };

    /// The POSIX time (ms) at which `slot` starts.
    pub fn slot_to_posix_ms(&self, slot: u64) -> u64 {
        self.zero_time_ms + slot.saturating_sub(self.zero_slot) * u64::from(self.slot_length_ms)
    }

    /// The slot containing POSIX time `ms` (the first slot for earlier times).
    pub fn posix_ms_to_slot(&self, ms: u64) -> u64 {
        self.zero_slot + ms.saturating_sub(self.zero_time_ms) / u64::from(self.slot_length_ms)
    }
}

/// What one redeemer's script consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedeemerCost {
    /// The script purpose.
    pub tag: RedeemerTag,
    /// The purpose's index (input, policy, withdrawal…).
    pub index: u32,
    /// Measured execution units.
    pub ex_units: ExUnits,
}

/// Why a transaction's scripts could not be evaluated, or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A script rejected the transaction (the message carries its traces).
    #[error("a script rejected the transaction: {0}")]
    ScriptFailed(String),
    /// A V3 script finished without returning unit.
    #[error("{0} finished without returning unit, which Plutus V3 requires")]
    NotUnit(String),
    /// The scripts need more units than the protocol allows per transaction.
    #[error(
        "the scripts need {needed:?}, over the per-transaction limit {limit:?}: settle fewer escrows per transaction"
    )]
    OverBudget {
        /// What the scripts used in total.
        needed: ExUnits,
        /// The protocol's per-transaction maximum.
        limit: ExUnits,
    },
    /// The evaluator's own bookkeeping failed (e.g. undecodable redeemer bytes).
    #[error("could not read the evaluator's result: {0}")]
    Internal(String),
}

/// Evaluates Plutus V3 scripts under a network's cost models and limits.
#[derive(Debug, Clone)]
pub struct Evaluator {
    /// CBOR of the conway `CostModels` map, or `None` for uplc's built-in defaults.
    pub cost_models: Option<Vec<u8>>,
    /// The protocol's maximum execution units per transaction.
    pub max_tx_ex_units: ExUnits,
    /// The network's slot configuration.
    pub slot_config: SlotConfig,
    /// The protocol's major version (selects builtin semantics).
    pub protocol_major: u16,
}

impl Evaluator {
    /// Runs every redeemer of `tx` (Conway CBOR) against its resolved inputs
    /// (`(input CBOR, output CBOR)` pairs, covering spent and reference inputs).
    pub fn evaluate(
        &self,
        tx: &[u8],
        resolved: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Vec<RedeemerCost>, EvalError> {
        let limit = self.max_tx_ex_units;
        let results = uplc::tx::eval_phase_two_raw_with_protocol(
            tx,
            resolved,
            self.cost_models.as_deref(),
            (limit.steps, limit.mem),
            (
                self.slot_config.zero_time_ms,
                self.slot_config.zero_slot,
                self.slot_config.slot_length_ms,
            ),
            self.protocol_major,
            true,
            |_| (),
        )
        .map_err(|e| match e {
            uplc::tx::error::Error::Machine(err, _, traces) => EvalError::ScriptFailed(format!(
                "{err}{}",
                traces
                    .iter()
                    .map(|t| format!("\n  trace: {t}"))
                    .collect::<String>()
            )),
            other => EvalError::ScriptFailed(other.to_string()),
        })?;

        let mut costs = Vec::with_capacity(results.len());
        for (redeemer_cbor, result) in results {
            let redeemer: Redeemer =
                minicbor::decode(&redeemer_cbor).map_err(|e| EvalError::Internal(e.to_string()))?;
            let purpose = format!("the {:?} script at index {}", redeemer.tag, redeemer.index);
            if result.failed(false, &uplc::Language::PlutusV3) {
                return Err(EvalError::NotUnit(purpose));
            }
            costs.push(RedeemerCost {
                tag: redeemer.tag,
                index: redeemer.index,
                ex_units: ExUnits {
                    mem: redeemer.ex_units.mem,
                    steps: redeemer.ex_units.steps,
                },
            });
        }
        let needed = costs
            .iter()
            .fold(ExUnits::default(), |acc, c| acc + c.ex_units);
        if needed.mem > limit.mem || needed.steps > limit.steps {
            return Err(EvalError::OverBudget { needed, limit });
        }
        Ok(costs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_and_time_convert_both_ways() {
        let sc = SlotConfig::MAINNET;
        let slot = 140_000_000;
        assert_eq!(sc.posix_ms_to_slot(sc.slot_to_posix_ms(slot)), slot);
        assert_eq!(sc.posix_ms_to_slot(sc.slot_to_posix_ms(slot) + 999), slot);
    }

    #[test]
    fn margins_round_up() {
        let units = ExUnits {
            mem: 101,
            steps: 1000,
        }
        .with_margin(10);
        assert_eq!(
            units,
            ExUnits {
                mem: 112,
                steps: 1100
            }
        );
    }
}
