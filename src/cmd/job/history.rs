//! `ntx job status <id>` and `ntx job result <id>`: a job's whole history from the
//! chain (lock, submit, settlement), and its answer fetched from the URL in its
//! submit record and checked against the on-chain result hash. Both work for
//! settled jobs too: the history is the auditor's replay of the deployment.

use std::path::PathBuf;

use ntx_node_agent::Answer;
use ntx_offchain::audit::{self, Finding, JobReport, Outcome, SlotRange, Target};
use ntx_offchain::client::{EscrowClient, fetch_result};

use crate::cmd::common::{ChainArgs, CliError, parse_job_id, usage};

/// A job as the chain tells it, with the audit findings that concern it.
pub struct JobHistory {
    /// The replayed job.
    pub report: JobReport,
    /// Rules it broke (none for an honest job).
    pub findings: Vec<Finding>,
}

/// Replays the deployment and returns job `id`'s history; a usage error when the
/// deployment never locked such a job.
pub async fn job_history(client: &EscrowClient, id: &[u8; 32]) -> Result<JobHistory, CliError> {
    let target = Target::of(&client.deployment().script);
    let history = audit::collect_history(
        client.chain().as_ref(),
        target,
        client.network(),
        SlotRange::default(),
    )
    .await
    .map_err(|e| CliError::Failed(e.to_string()))?;
    let audit = audit::check(&history, client.network());
    let hex_id = hex::encode(id);
    let report = audit
        .jobs
        .iter()
        .find(|j| j.job_id == hex_id)
        .cloned()
        .ok_or_else(|| {
            usage(format!(
                "job {hex_id} was never locked under this deployment: check the id (`ntx job list` shows open jobs)"
            ))
        })?;
    let findings = audit
        .findings
        .into_iter()
        .filter(|f| f.job_id.as_deref() == Some(hex_id.as_str()))
        .collect();
    Ok(JobHistory { report, findings })
}

/// A job's verified answer: the result bytes, fetched from its submit record's
/// URL, whose blake2b-256 is the chain's result hash.
pub struct VerifiedAnswer {
    /// Where the bytes came from.
    pub url: String,
    /// The on-chain result hash (hex).
    pub result_hash: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Decoded.
    pub answer: Answer,
}

/// Fetches and checks `report`'s answer. Refuses (never returns) bytes whose
/// hash is not the chain's.
pub async fn verified_answer(
    client: &EscrowClient,
    report: &JobReport,
) -> Result<VerifiedAnswer, CliError> {
    let (Some(result_tx), Some(result_hash)) = (&report.result_tx, &report.result_hash) else {
        return Err(usage(format!(
            "job {} has no result on chain ({}): nothing to fetch",
            report.job_id,
            report.outcome.name()
        )));
    };
    let tx = parse_job_id(result_tx)?;
    let id = parse_job_id(&report.job_id)?;
    let expected = parse_job_id(result_hash)?;
    let record = client.result_location_in(&tx, &id, &expected).await?;
    let bytes = fetch_result(client.fetcher(), &record.result_url, &expected)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let answer = Answer::decode(&bytes).map_err(|e| {
        CliError::Failed(format!(
            "the result bytes match the chain but do not decode as a result: {e}"
        ))
    })?;
    Ok(VerifiedAnswer {
        url: record.result_url,
        result_hash: result_hash.clone(),
        bytes,
        answer,
    })
}

/// The answer as JSON.
pub fn answer_json(a: &VerifiedAnswer) -> serde_json::Value {
    serde_json::json!({
        "result_url": a.url,
        "result_hash": a.result_hash,
        "result_bytes": a.bytes.len(),
        "answer": a.answer,
    })
}

/// Writes the answer to `out` (its text form), if given.
pub fn write_answer(out: Option<&PathBuf>, a: &VerifiedAnswer) -> Result<(), CliError> {
    if let Some(path) = out {
        std::fs::write(path, a.answer.to_text() + "\n")
            .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// The history as JSON.
pub fn history_json(h: &JobHistory) -> serde_json::Value {
    let r = &h.report;
    serde_json::json!({
        "job_id": r.job_id,
        "outcome": r.outcome.name(),
        "price_units": r.price,
        "requester": r.requester,
        "provider": r.provider,
        "agent": r.agent,
        "quorum": r.quorum,
        "submit_by_ms": r.submit_by,
        "settle_by_ms": r.settle_by,
        "lock": {"tx": r.lock_tx, "slot": r.lock_slot},
        "submit": {"tx": r.submit_tx, "slot": r.submit_slot, "result_hash": r.result_hash},
        "settlement": {"tx": r.settle_tx, "slot": r.settle_slot, "attestations": r.attestations,
            "fast_path": r.fast_path},
        "result": {"hash": r.result_hash, "recorded_in": r.result_tx},
        "paid_to": paid_to(r),
        "findings": h.findings.iter().map(|f| serde_json::json!({
            "rule": f.rule.code(), "tx": f.tx_id, "detail": f.detail,
        })).collect::<Vec<_>>(),
    })
}

/// Who the settlement paid (bech32), if it is settled.
pub fn paid_to(r: &JobReport) -> Option<&str> {
    match r.outcome {
        Outcome::Claimed => Some(&r.provider),
        Outcome::RefundedNoShow
        | Outcome::RefundedTimeout
        | Outcome::RefundedRejected
        | Outcome::Cancelled => Some(&r.requester),
        Outcome::Locked | Outcome::Submitted | Outcome::Leaked => None,
    }
}

/// `ntx job status <id>`.
pub async fn status(chain: &ChainArgs, job_id: &str) -> Result<(), CliError> {
    let id = parse_job_id(job_id)?;
    let client = chain.client().await?;
    let h = job_history(&client, &id).await?;
    let json = history_json(&h);
    chain.print(json, || {
        let r = &h.report;
        let step = |name: &str, tx: &Option<String>, slot: Option<u64>| match tx {
            Some(tx) => format!("\n  {name:<10} {tx} (slot {})", slot.unwrap_or_default()),
            None => format!("\n  {name:<10} —"),
        };
        let mut text = format!(
            "job {}\n  outcome    {}{}\n  price      {} NTX, {} verifiers",
            r.job_id,
            r.outcome.name(),
            paid_to(r)
                .map(|p| format!(" (paid to {p})"))
                .unwrap_or_default(),
            crate::cmd::common::ntx(r.price),
            r.quorum
        );
        text += &step("lock", &r.lock_tx, r.lock_slot);
        if r.fast_path {
            text += "\n  submit     — (fast path: the settlement carries the result)";
        } else {
            text += &step("submit", &r.submit_tx, r.submit_slot);
        }
        if let Some(h) = &r.result_hash {
            text += &format!("\n  result     {h}");
        }
        text += &step("settlement", &r.settle_tx, r.settle_slot);
        if h.findings.is_empty() {
            text += "\n  audit      every rule holds";
        }
        for f in &h.findings {
            text += &format!("\n  finding    {}: {}", f.rule.code(), f.detail);
        }
        text
    });
    Ok(())
}

/// `ntx job result <id>`.
pub async fn result(chain: &ChainArgs, job_id: &str, out: Option<PathBuf>) -> Result<(), CliError> {
    let id = parse_job_id(job_id)?;
    let client = chain.client().await?;
    let h = job_history(&client, &id).await?;
    let a = verified_answer(&client, &h.report).await?;
    write_answer(out.as_ref(), &a)?;
    let mut json = answer_json(&a);
    json["job_id"] = h.report.job_id.clone().into();
    json["outcome"] = h.report.outcome.name().into();
    chain.print(json, || a.answer.to_text());
    Ok(())
}
