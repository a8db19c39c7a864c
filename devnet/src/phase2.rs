//! Phase 2: run the transaction's Plutus scripts with uplc, then close uplc's
//! two gaps: each redeemer is held to its *own* declared budget (uplc shares
//! one budget across redeemers), and a Plutus V3 script must return unit.
//!
//! uplc is built on pallas 0.35 while this crate uses pallas 1.4, so only CBOR
//! bytes cross the boundary.

use std::cell::Cell;

use pallas_codec::minicbor;
use pallas_primitives::conway::Redeemer;

use crate::error::LedgerError;
use crate::ledger::RedeemerReport;
use crate::params::Params;

/// A redeemer as declared in the witness set, with the script it runs.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    pub tag: u8,
    pub index: u32,
    pub mem: u64,
    pub steps: u64,
    pub data_hash: String,
    /// (language 1..=3, script hash hex) when known.
    pub script: Option<(u8, String)>,
}

/// Slot configuration handed to uplc (for POSIX-time validity ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotConfig {
    /// POSIX milliseconds of slot `zero_slot`.
    pub zero_time: u64,
    /// First slot of the configuration.
    pub zero_slot: u64,
    /// Slot length in milliseconds.
    pub slot_length: u32,
}

impl SlotConfig {
    /// POSIX milliseconds at the start of `slot`.
    pub fn slot_to_posix_ms(&self, slot: u64) -> u64 {
        self.zero_time + (slot.saturating_sub(self.zero_slot)) * self.slot_length as u64
    }

    /// The slot containing POSIX time `ms`.
    pub fn posix_ms_to_slot(&self, ms: u64) -> u64 {
        self.zero_slot + ms.saturating_sub(self.zero_time) / self.slot_length.max(1) as u64
    }
}

/// Why phase 2 did not pass.
#[derive(Debug)]
pub(crate) enum Phase2Error {
    /// The scripts and redeemers do not line up: a phase-1 (UTXOW) failure.
    Structural(LedgerError),
    /// A script failed or overran its budget: a phase-2 failure.
    Script(LedgerError),
}

/// Name of a redeemer tag, as Blockfrost and Ogmios write it.
pub(crate) fn tag_name(tag: u8) -> &'static str {
    match tag {
        0 => "spend",
        1 => "mint",
        2 => "cert",
        3 => "reward",
        4 => "vote",
        _ => "propose",
    }
}

thread_local! {
    static STARTED: Cell<usize> = const { Cell::new(0) };
}

fn note_redeemer<R>(_: &R) {
    STARTED.with(|c| c.set(c.get() + 1));
}

/// Measured units of each redeemer, without judging them (for `/utils/txs/evaluate`).
pub(crate) fn measure(
    tx: &[u8],
    utxos: &[(Vec<u8>, Vec<u8>)],
    params: &Params,
    slot_config: SlotConfig,
) -> Result<Vec<(u8, u32, u64, u64)>, String> {
    let run = std::panic::catch_unwind(|| {
        uplc::tx::eval_phase_two_raw_with_protocol(
            tx,
            utxos,
            Some(&params.cost_models_cbor()),
            (params.max_tx_ex_steps, params.max_tx_ex_mem),
            (
                slot_config.zero_time,
                slot_config.zero_slot,
                slot_config.slot_length,
            ),
            params.protocol_major as u16,
            true,
            note_redeemer,
        )
    });
    let results = match run {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("the script evaluator panicked on this transaction".into()),
    };
    let mut out = Vec::new();
    for (rbytes, _) in results {
        let r: Redeemer = minicbor::decode(&rbytes).map_err(|e| e.to_string())?;
        out.push((r.tag as u8, r.index, r.ex_units.mem, r.ex_units.steps));
    }
    Ok(out)
}

/// Runs every redeemer and judges the outcome like the ledger.
pub(crate) fn run(
    tx: &[u8],
    utxos: &[(Vec<u8>, Vec<u8>)],
    declared: &[Declared],
    params: &Params,
    slot_config: SlotConfig,
) -> Result<Vec<RedeemerReport>, Phase2Error> {
    STARTED.with(|c| c.set(0));
    let cost_models = params.cost_models_cbor();
    let run = std::panic::catch_unwind(|| {
        uplc::tx::eval_phase_two_raw_with_protocol(
            tx,
            utxos,
            Some(&cost_models),
            // uplc shares this budget across redeemers; each redeemer is
            // checked against its own declared units below.
            (params.max_tx_ex_steps, params.max_tx_ex_mem),
            (
                slot_config.zero_time,
                slot_config.zero_slot,
                slot_config.slot_length,
            ),
            params.protocol_major as u16,
            true,
            note_redeemer,
        )
    });
    let started = STARTED.with(|c| c.get());
    let purpose_of = |i: usize| {
        declared
            .get(i)
            .map(|d| format!("{}:{}", tag_name(d.tag), d.index))
            .unwrap_or_else(|| "a script".into())
    };
    let results = match run {
        Ok(Ok(r)) => r,
        Ok(Err(uplc::tx::error::Error::Machine(err, _budget, traces))) => {
            return Err(Phase2Error::Script(LedgerError::ScriptFailure {
                purpose: purpose_of(started.saturating_sub(1)),
                detail: err.to_string(),
                logs: traces.iter().map(|t| t.to_string()).collect(),
            }));
        }
        Ok(Err(uplc::tx::error::Error::RedeemerError { tag, index, err })) => {
            let purpose = format!("{}:{index}", tag.to_lowercase());
            return Err(match *err {
                uplc::tx::error::Error::Machine(err, _budget, traces) => {
                    Phase2Error::Script(LedgerError::ScriptFailure {
                        purpose,
                        detail: err.to_string(),
                        logs: traces.iter().map(|t| t.to_string()).collect(),
                    })
                }
                other => Phase2Error::Structural(LedgerError::RedeemerMismatch(format!(
                    "{purpose}: {other}"
                ))),
            });
        }
        Ok(Err(e)) => {
            return Err(Phase2Error::Structural(LedgerError::RedeemerMismatch(
                e.to_string(),
            )));
        }
        Err(_) => {
            return Err(Phase2Error::Structural(LedgerError::RedeemerMismatch(
                "the script evaluator panicked on this transaction".into(),
            )));
        }
    };

    let mut reports = Vec::new();
    for (rbytes, eval) in results {
        let r: Redeemer = minicbor::decode(&rbytes).map_err(|e| {
            Phase2Error::Structural(LedgerError::RedeemerMismatch(format!(
                "cannot read the evaluator's redeemer: {e}"
            )))
        })?;
        let tag = r.tag as u8;
        let Some(d) = declared.iter().find(|d| d.tag == tag && d.index == r.index) else {
            return Err(Phase2Error::Structural(LedgerError::RedeemerMismatch(
                format!("no declared redeemer {}:{}", tag_name(tag), r.index),
            )));
        };
        let purpose = format!("{}:{}", tag_name(tag), r.index);
        let lang = match d.script.as_ref().map(|s| s.0) {
            Some(1) => uplc::Language::PlutusV1,
            Some(2) => uplc::Language::PlutusV2,
            _ => uplc::Language::PlutusV3,
        };
        if eval.failed(false, &lang) {
            return Err(Phase2Error::Script(LedgerError::ScriptFailure {
                purpose,
                detail: "the Plutus V3 script did not return unit (a V3 script must return () to succeed)"
                    .into(),
                logs: eval.logs(),
            }));
        }
        if r.ex_units.mem > d.mem || r.ex_units.steps > d.steps {
            return Err(Phase2Error::Script(LedgerError::ExUnitsExceeded {
                purpose,
                mem: r.ex_units.mem,
                steps: r.ex_units.steps,
                declared_mem: d.mem,
                declared_steps: d.steps,
            }));
        }
        reports.push(RedeemerReport {
            purpose: tag_name(tag).to_string(),
            index: r.index,
            script_hash: d.script.as_ref().map(|s| s.1.clone()).unwrap_or_default(),
            redeemer_data_hash: d.data_hash.clone(),
            unit_mem: d.mem,
            unit_steps: d.steps,
            measured_mem: r.ex_units.mem,
            measured_steps: r.ex_units.steps,
            fee: crate::fees::script_fee(params, d.mem, d.steps),
        });
    }
    Ok(reports)
}
