//! `ntx job run`: the requester's path in one command. Reads the market,
//! picks a provider whose offer serves the task within the price and verifiers
//! its policy accepts, locks, follows the job through locked → submitted →
//! settled, and prints the answer only after checking its bytes against the
//! result hash on chain. Ctrl-C stops waiting; the job stays as it is on chain.

use std::path::PathBuf;
use std::time::Instant;

use ntx_offchain::audit::Outcome;
use ntx_offchain::builder::JobTerms;
use ntx_offchain::client::{EscrowClient, JobSpecDoc, LockRequest, SpecSource};
use ntx_offchain::market::{Choice, choose};
use ntx_offchain::protocol::Address;
use ntx_offchain::wallet::PaymentAddress;

use super::history::{answer_json, job_history, paid_to, verified_answer, write_answer};
use super::request::RequestArgs;
use super::wait::{Progress, Timeline, until_settled};
use crate::cmd::common::{
    ChainArgs, CliError, WalletArgs, ntx, parse_duration_ms, shutdown_signal, usage,
};
use crate::cmd::market::answers_health;

/// The settle window when neither the requester nor the provider's policy asks
/// for more.
const DEFAULT_SETTLE_WITHIN_MS: u64 = 10 * 60 * 1000;

/// `ntx job run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub request: RequestArgs,
    #[command(flatten)]
    pub wallet: WalletArgs,
    /// Time the provider has to put its result on chain (e.g. 10m).
    #[arg(long, default_value = "10m")]
    pub submit_within: String,
    /// Time after the submit deadline for the verifiers' quorum (default: 10m,
    /// or the provider's minimum judging window if longer).
    #[arg(long)]
    pub settle_within: Option<String>,
    /// Also write the answer (its text form) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `ntx job run`.
pub async fn run(chain: &ChainArgs, args: Args) -> Result<(), CliError> {
    let progress = Progress {
        start: Instant::now(),
        show: !chain.json,
    };
    let request = args.request.request()?;
    let submit_within = parse_duration_ms(&args.submit_within)
        .map_err(|e| usage(format!("--submit-within: {e}")))?;
    let settle_within = args
        .settle_within
        .as_deref()
        .map(|s| parse_duration_ms(s).map_err(|e| usage(format!("--settle-within: {e}"))))
        .transpose()?;
    let wallet = args.wallet.load(chain.network)?;
    let client = chain.client().await?;

    progress.say("reading the market");
    let listing = client.market().await?;
    let choice = choose(&listing, &request.want).map_err(|e| usage(e.to_string()))?;
    let settle_within = match settle_within {
        Some(ms) if ms < choice.min_judge_window_ms => {
            return Err(usage(format!(
                "--settle-within is shorter than the {} s the chosen provider gives its verifiers: give at least that, or leave it out",
                choice.min_judge_window_ms / 1000
            )));
        }
        Some(ms) => ms,
        None => DEFAULT_SETTLE_WITHIN_MS.max(choice.min_judge_window_ms),
    };
    let job = request.job_for(&choice)?;
    progress.say(format!(
        "provider {} for {} NTX; {} of {} verifiers must agree",
        choice.provider.offer.url,
        ntx(choice.price),
        choice.threshold,
        choice.verifiers.len()
    ));
    if !answers_health(&choice.provider.offer.url).await {
        return Err(CliError::Failed(format!(
            "the chosen provider's URL {} does not answer /health: nothing was locked; try again later or pick another with --provider",
            choice.provider.offer.url
        )));
    }

    let (id, lock_json) =
        lock(&client, &wallet, &choice, job, submit_within, settle_within).await?;
    let hex_id = hex::encode(id);
    progress.say(format!(
        "locked job {hex_id} (tx {})",
        lock_json["tx_id"].as_str().unwrap_or("?")
    ));
    let timeline = Timeline {
        locked: progress.start.elapsed(),
        ..Timeline::default()
    };
    let timeline = tokio::select! {
        t = until_settled(&client, &wallet, &id, timeline, progress) => t?,
        _ = shutdown_signal() => {
            return Err(CliError::Failed(format!(
                "stopped waiting; job {hex_id} goes on as it is on chain: `ntx job status {hex_id}` follows it, `ntx job result {hex_id}` fetches its answer"
            )));
        }
    };

    let history = job_history(&client, &id).await?;
    let report = &history.report;
    progress.say(format!(
        "settled: {}{}",
        report.outcome.name(),
        paid_to(report)
            .map(|p| format!(", paid to {p}"))
            .unwrap_or_default()
    ));
    if report.outcome != Outcome::Claimed {
        return Err(CliError::Failed(format!(
            "job {hex_id} was not paid to the provider ({}): the {} NTX went back to you; `ntx job status {hex_id}` shows its history",
            report.outcome.name(),
            ntx(choice.price)
        )));
    }
    let answer = verified_answer(&client, report).await?;
    progress.say(format!(
        "answer fetched ({} bytes); its blake2b-256 is the result hash on chain",
        answer.bytes.len()
    ));
    write_answer(args.out.as_ref(), &answer)?;

    let mut json = answer_json(&answer);
    json["job_id"] = hex_id.clone().into();
    json["task"] = request.want.task.clone().into();
    json["price_units"] = choice.price.into();
    json["provider"] = serde_json::json!({
        "key": choice.provider.offer.key,
        "payout": choice.provider.offer.payout,
        "url": choice.provider.offer.url,
    });
    json["verifiers"] = choice
        .verifiers
        .iter()
        .map(|v| serde_json::json!({"key": v.offer.key, "url": v.offer.url}))
        .collect::<Vec<_>>()
        .into();
    json["threshold"] = choice.threshold.into();
    json["lock"] = lock_json;
    json["outcome"] = report.outcome.name().into();
    json["timeline_ms"] = serde_json::json!({
        "locked": timeline.locked.as_millis() as u64,
        "submitted": timeline.submitted.map(|d| d.as_millis() as u64),
        "settled": timeline.settled.as_millis() as u64,
    });
    chain.print(json, || answer.answer.to_text());
    Ok(())
}

/// Locks the job with the chosen parties; returns its id and the lock's JSON.
async fn lock(
    client: &EscrowClient,
    wallet: &ntx_offchain::wallet::Wallet,
    choice: &Choice,
    job: serde_json::Value,
    submit_within: u64,
    settle_within: u64,
) -> Result<([u8; 32], serde_json::Value), CliError> {
    let doc = serde_json::json!({
        "version": 1,
        "job": job,
        "verifiers": choice.verifiers.iter()
            .map(|v| serde_json::json!({"key": v.offer.key, "url": v.offer.url}))
            .collect::<Vec<_>>(),
    });
    let spec = JobSpecDoc::parse(doc.to_string().as_bytes())
        .map_err(|e| CliError::Failed(format!("the job spec built from the offers: {e}")))?;
    let offer = &choice.provider.offer;
    let payout = offer
        .payout
        .as_deref()
        .and_then(|p| PaymentAddress::parse(p, client.network()).ok())
        .ok_or_else(|| {
            CliError::Failed("the chosen provider's offer has no valid payout address".into())
        })?;
    let agent = offer
        .key_hash()
        .map_err(|e| CliError::Failed(format!("the chosen provider's offer: {e}")))?;
    let now = client.slot_time(client.now_slot().await?);
    let terms = JobTerms {
        requester: Address::from(wallet.address().as_pallas()),
        provider: Address::from(payout.as_pallas()),
        agent,
        spec_hash: spec.hash().map_err(|e| usage(e.to_string()))?,
        price: choice.price,
        verifiers: spec.verifier_keys(),
        threshold: choice.threshold,
        submit_by: now + submit_within,
        settle_by: now + submit_within + settle_within,
    };
    let canonical = spec.canonical_bytes().map_err(|e| usage(e.to_string()))?;
    let prepared = client
        .lock(
            wallet,
            vec![LockRequest {
                terms: terms.clone(),
                spec: SpecSource::Inline(canonical),
            }],
        )
        .await?;
    let confirmation = client.send(&prepared, 1).await?;
    let json = serde_json::json!({
        "tx_id": hex::encode(prepared.tx_id()),
        "fee_lovelace": prepared.fee(),
        "slot": confirmation.slot,
        "submit_by_ms": terms.submit_by,
        "settle_by_ms": terms.settle_by,
    });
    Ok((prepared.job_ids[0], json))
}
