//! `ntx settle`: the keeper. Settles every escrow that is due (claims with a
//! quorum of accepting verifiers, refunds after a rejecting quorum or a missed
//! deadline) in as few transactions as the limits allow. Anyone may run it;
//! payouts always go to the parties the escrows name, never to the keeper.
//!
//! Once by default; with `--watch 30s` a round every 30 s until Ctrl-C or SIGTERM.
//! A round that fails (the chain unreachable, a Claim rolled back or lost) is
//! reported and the next round tries again: a watching keeper never gives up on
//! a payout, and cannot pay one twice (each escrow can be spent once).

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use ntx_node_agent::{Tally, collect_attestations};
use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::client::EscrowClient;
use ntx_offchain::protocol::{JobState, Settlement};
use ntx_offchain::wallet::Wallet;
use tokio_util::sync::CancellationToken;

use super::common::{
    ChainArgs, CliError, TxArgs, WalletArgs, block_on, describe_tx, parse_duration_ms,
    shutdown_signal, usage,
};

/// Escrows whose settlement is checked at once (spec and attestation fetches).
const CONCURRENT_CHECKS: usize = 32;

/// Arguments of `ntx settle`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    wallet: WalletArgs,
    #[command(flatten)]
    tx: TxArgs,
    /// Keep settling: a round every DURATION (e.g. 30s, 5m) until Ctrl-C or SIGTERM.
    /// A failed round is reported and retried in the next.
    #[arg(long, value_name = "DURATION")]
    watch: Option<String>,
}

/// Runs `ntx settle`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    block_on(settle(args, chain))
}

/// What a keeper can do with `escrow` now, and why not otherwise.
pub(in crate::cmd) async fn due(
    client: &EscrowClient,
    escrow: &EscrowUtxo,
    now_ms: u64,
) -> Result<Settlement, String> {
    let job = &escrow.datum;
    match job.state {
        JobState::Locked if now_ms > job.submit_by => Ok(Settlement::RefundNoShow),
        JobState::Locked => Err("waiting for the provider's result".into()),
        JobState::Submitted { .. } if now_ms > job.settle_by => Ok(Settlement::RefundTimeout),
        JobState::Submitted { result_hash } => {
            let spec = client.spec_doc(escrow).await.map_err(|e| e.to_string())?;
            let urls: Vec<String> = job
                .verifiers
                .iter()
                .filter_map(|k| spec.verifier_url(k).map(str::to_string))
                .collect();
            let found = collect_attestations(client.fetcher(), &urls, &job.job_id).await;
            let tally = Tally::of(
                &found,
                &client.deployment().script.hash(),
                &job.job_id,
                &result_hash,
                &job.verifiers,
            );
            let threshold = job.threshold as usize;
            if let Some(attestations) = tally.claim(threshold) {
                Ok(Settlement::Claim { attestations })
            } else if let Some(attestations) = tally.reject(threshold) {
                Ok(Settlement::RefundRejected { attestations })
            } else {
                Err(format!(
                    "no quorum yet ({} accept, {} reject of {threshold} needed)",
                    tally.accepts.len(),
                    tally.rejects.len()
                ))
            }
        }
    }
}

fn kind(s: &Settlement) -> &'static str {
    match s {
        Settlement::Claim { .. } => "claim",
        Settlement::RefundNoShow => "refund (no show)",
        Settlement::RefundTimeout => "refund (timeout)",
        Settlement::RefundRejected { .. } => "refund (rejected)",
        Settlement::Cancel => "cancel",
        Settlement::FastClaim { .. } => "claim (fast path)",
        Settlement::FastRefundRejected { .. } => "refund (rejected, fast path)",
    }
}

async fn settle(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    let every = match args.watch.as_deref() {
        None => None,
        Some(text) => Some(Duration::from_millis(
            parse_duration_ms(text).map_err(usage)?,
        )),
    };
    if every.is_some() && args.tx.holds_back() {
        return Err(usage(
            "--watch sends what is due round after round: drop --dry-run and --out-file",
        ));
    }
    let wallet = args.wallet.load(chain.network)?;
    let client = args.tx.client(chain.client().await?);
    let Some(every) = every else {
        let settled = round(&args, chain, &wallet, &client).await?;
        if settled == 0 && !chain.json {
            println!("nothing to settle");
        }
        return Ok(());
    };
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        on_signal.cancel();
    });
    eprintln!("keeper: a round every {every:?}; Ctrl-C stops it");
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            result = round(&args, chain, &wallet, &client) => {
                if let Err(e) = result {
                    eprintln!("keeper: the round failed ({e}); trying again in {every:?}");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    eprintln!("keeper stopped");
    Ok(())
}

/// One round: settles every escrow due now; returns how many were settled. Prints
/// each transaction (with `--json`, one JSON object with the transactions and the
/// escrows not yet due; one line per round when watching).
async fn round(
    args: &Args,
    chain: &ChainArgs,
    wallet: &Wallet,
    client: &EscrowClient,
) -> Result<usize, CliError> {
    let now_ms = client.slot_time(client.now_slot().await?);
    let scan = client.scan().await?;
    // Every escrow's verifiers are asked at once (at most CONCURRENT_CHECKS jobs
    // in flight), each URL within its own short budget: a slow or silent
    // verifier costs its own job's check, not the round.
    let checked: Vec<(EscrowUtxo, Result<Settlement, String>)> = stream::iter(scan.escrows)
        .map(|escrow| async move {
            let due = due(client, &escrow, now_ms).await;
            (escrow, due)
        })
        .buffered(CONCURRENT_CHECKS)
        .collect()
        .await;
    let mut items = Vec::new();
    let mut waiting = Vec::new();
    for (escrow, due) in checked {
        let id = hex::encode(escrow.datum.job_id);
        match due {
            Ok(s) => {
                eprintln!("  {id}: {}", kind(&s));
                items.push((escrow, s));
            }
            Err(why) => waiting.push(serde_json::json!({"job_id": id, "why": why})),
        }
    }
    if args.watch.is_none() || !items.is_empty() {
        eprintln!(
            "{} escrow(s) due, {} not yet, {} non-escrow UTxO(s) skipped",
            items.len(),
            waiting.len(),
            scan.skipped.len()
        );
    }
    let mut transactions = Vec::new();
    let mut settled = 0;
    while !items.is_empty() {
        let (prepared, rest) = client.settle(wallet, items).await?;
        let json = args.tx.finish(client, &prepared, "settlement").await?;
        settled += prepared.job_ids.len();
        if !chain.json {
            println!(
                "{}",
                describe_tx(&format!("settled {} job(s)", prepared.job_ids.len()), &json)
            );
        }
        transactions.push(json);
        if args.tx.holds_back() {
            // Later batches spend this one's change: build them after it lands.
            break;
        }
        items = rest;
    }
    if chain.json {
        let report = serde_json::json!({"transactions": transactions, "waiting": waiting});
        if args.watch.is_some() {
            println!("{report}");
        } else {
            println!("{report:#}");
        }
    }
    Ok(settled)
}
