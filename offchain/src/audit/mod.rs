//! The auditor: replays a deployment's escrows from the chain and checks every
//! step against the protocol (docs/PROTOCOL.md, "What `ntx audit` checks").
//!
//! It trusts nothing but the chain, read through [`crate::chain::ChainProvider`]:
//!
//! 1. [`collect_history`] lists every transaction that paid to or spent from
//!    the escrow address (lock, submit, settlements; the job-token mints and
//!    burns ride in the same transactions), fetches each one's CBOR and
//!    decodes it into an [`EscrowTx`]: validity interval, signers, inputs
//!    (script inputs resolved), outputs, the escrow policy's mints and burns,
//!    and the escrow's redeemers. The result is a [`History`]: plain data.
//! 2. [`check`] rebuilds each job's lifecycle from a [`History`] and checks
//!    each [`Rule`]: job token minted once by a well-formed lock; Submit
//!    signed by the agent before `submit_by`; every settlement allowed by its
//!    rule (state, validity interval, Cancel's signers); claims and rejections
//!    carrying at least `threshold` distinct valid ed25519 attestations over
//!    the 98-byte message (re-verified here); the payee paid at least the
//!    escrow's value in payout-tagged outputs; the token burned once; nothing
//!    leaving an escrow otherwise; nothing unsettled past `settle_by`. It
//!    also totals jobs and settlement-asset amounts per provider and
//!    requester, and a timeline of what is locked, paid and refunded.
//!    Because [`check`] takes data, tests feed it forged histories that no
//!    ledger would accept.
//! 3. [`recompute`] (optional) asks a [`ResultChecker`] (the CLI's, backed by
//!    the node agent) to re-run settled jobs and flags a quorum that signed a
//!    result the re-run disagrees with.
//! 4. [`render_table`], [`render_json`] and [`render_html`] write the report
//!    (the HTML is one self-contained file with an inline SVG chart).

mod check;
mod collect;
mod history;
mod report;

pub use check::{
    Audit, Finding, JobReport, Outcome, PartyTotals, Rule, TargetReport, TimelinePoint,
    attestation_problems, check,
};
pub use collect::{AuditError, SlotRange, collect_history, escrow_address};
pub use history::{
    BlockPosition, DecodeError, EscrowRedeemers, EscrowTx, History, Target, TxInput,
};
pub use report::{format_units, render_html, render_json, render_table};

use crate::blueprint::EscrowScript;

impl Target {
    /// The deployment of an applied escrow script.
    pub fn of(script: &EscrowScript) -> Target {
        Target {
            script_hash: script.hash(),
            settlement: script.settlement().clone(),
        }
    }
}

/// What a re-run of a job says about the result its quorum judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    /// The re-run agrees with the submitted result (within the task's tolerance).
    Agrees,
    /// The re-run disagrees, and why.
    Disagrees(String),
    /// The job could not be re-run (spec, result bytes or model files
    /// unavailable), and why; reported as a note, not a finding.
    Unavailable(String),
}

/// Re-runs jobs for [`recompute`]. `offchain` does not run models: the `ntx`
/// command implements this with the node agent's verifier rule.
#[async_trait::async_trait]
pub trait ResultChecker: Send + Sync {
    /// Fetches `job`'s spec and result bytes, re-runs it, and applies the
    /// verifier's rule to the submitted result.
    async fn recheck(&self, job: &JobReport) -> Recheck;
}

/// Re-runs every claimed or rejected job with `checker` and adds a
/// [`Rule::Recompute`] finding for each quorum the re-run contradicts: a
/// claim paid for a result the re-run rejects, or a refund for a result it accepts.
pub async fn recompute(audit: &mut Audit, checker: &dyn ResultChecker) {
    for job in audit.jobs.clone() {
        let claimed = match job.outcome {
            Outcome::Claimed => true,
            Outcome::RefundedRejected => false,
            _ => continue,
        };
        match (checker.recheck(&job).await, claimed) {
            (Recheck::Agrees, true) | (Recheck::Disagrees(_), false) => {}
            (Recheck::Disagrees(why), true) => audit.findings.push(Finding {
                rule: Rule::Recompute,
                job_id: Some(job.job_id.clone()),
                tx_id: job.settle_tx.clone(),
                detail: format!("the quorum accepted a result the re-run rejects: {why}"),
            }),
            (Recheck::Agrees, false) => audit.findings.push(Finding {
                rule: Rule::Recompute,
                job_id: Some(job.job_id.clone()),
                tx_id: job.settle_tx.clone(),
                detail: "the quorum rejected a result the re-run accepts".into(),
            }),
            (Recheck::Unavailable(why), _) => audit
                .notes
                .push(format!("job {} was not re-run: {why}", job.job_id)),
        }
    }
}
