//! Waiting for a locked job: locked → submitted → settled, with the time each
//! step took, doing on the way the keeper work the requester is owed (a
//! no-show refund after `submit_by`, a refund after a rejecting quorum, a
//! timeout refund after `settle_by`). The provider claims its own pay.

use std::time::{Duration, Instant};

use ntx_offchain::client::{ClientError, EscrowClient};
use ntx_offchain::protocol::{JobState, Settlement};
use ntx_offchain::wallet::Wallet;

use crate::cmd::common::CliError;
use crate::cmd::settle::due;

/// How often the escrow is read.
const POLL: Duration = Duration::from_secs(1);
/// How often the verifiers are asked for a rejecting quorum.
const ASK_VERIFIERS: Duration = Duration::from_secs(5);
/// Consecutive failed reads of the chain before giving up.
const MAX_FAILED_READS: u32 = 30;

/// When each step happened, counted from the start of the command.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// The lock confirmed.
    pub locked: Duration,
    /// The provider's Submit was first seen.
    pub submitted: Option<Duration>,
    /// The escrow was first seen gone (claimed or refunded).
    pub settled: Duration,
}

/// Progress lines on stderr (none under `--json`).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The command's start.
    pub start: Instant,
    /// Whether to print.
    pub show: bool,
}

impl Progress {
    /// Prints `line` with the time since the start.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.show {
            eprintln!(
                "[{:>6.1} s] {}",
                self.start.elapsed().as_secs_f64(),
                line.as_ref()
            );
        }
    }
}

/// Watches job `id` until its escrow is spent; `timeline.locked` is already set.
pub async fn until_settled(
    client: &EscrowClient,
    wallet: &Wallet,
    id: &[u8; 32],
    mut timeline: Timeline,
    progress: Progress,
) -> Result<Timeline, CliError> {
    let mut failed_reads = 0;
    let mut asked = Instant::now() - ASK_VERIFIERS;
    let mut waiting_said = "";
    loop {
        let escrow = match client.escrow(id).await {
            Ok(escrow) => escrow,
            Err(ClientError::NotAnEscrow(_)) => {
                timeline.settled = progress.start.elapsed();
                return Ok(timeline);
            }
            Err(e) => {
                failed_reads += 1;
                if failed_reads >= MAX_FAILED_READS {
                    return Err(CliError::Failed(format!(
                        "cannot read the job's escrow ({e}); the job is unchanged: `ntx job status {}` later",
                        hex::encode(id)
                    )));
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        failed_reads = 0;
        let now = client.slot_time(client.now_slot().await?);
        if let JobState::Submitted { result_hash } = escrow.datum.state
            && timeline.submitted.is_none()
        {
            timeline.submitted = Some(progress.start.elapsed());
            progress.say(format!(
                "submitted: result {} — the verifiers are re-running it",
                hex::encode(result_hash)
            ));
        }
        let owed = match escrow.datum.state {
            JobState::Locked if now <= escrow.datum.submit_by => {
                if waiting_said != "provider" {
                    progress.say("waiting for the provider's result");
                    waiting_said = "provider";
                }
                None
            }
            JobState::Submitted { .. }
                if now <= escrow.datum.settle_by && asked.elapsed() < ASK_VERIFIERS =>
            {
                None
            }
            _ => {
                asked = Instant::now();
                match due(client, &escrow, now).await {
                    Ok(Settlement::Claim { .. }) | Err(_) => None,
                    Ok(refund) => Some(refund),
                }
            }
        };
        if let Some(refund) = owed {
            progress.say(format!("{}: sending the refund", reason(&refund)));
            let sent = async {
                let (prepared, _) = client.settle(wallet, vec![(escrow, refund)]).await?;
                client.send(&prepared, 1).await
            };
            if let Err(e) = sent.await {
                // The provider's claim may have won the race; the next read tells.
                progress.say(format!(
                    "the refund did not go through ({e}); looking again"
                ));
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

fn reason(refund: &Settlement) -> &'static str {
    match refund {
        Settlement::RefundNoShow => "the provider missed its submit deadline",
        Settlement::RefundTimeout => "no quorum by the settle deadline",
        Settlement::RefundRejected { .. } | Settlement::FastRefundRejected { .. } => {
            "the verifiers rejected the result"
        }
        Settlement::Claim { .. } | Settlement::FastClaim { .. } | Settlement::Cancel => "settling",
    }
}
