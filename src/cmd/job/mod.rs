//! `ntx job run|status|result|lock|show|list|cancel|refund`: a requester's jobs.

mod history;
mod request;
mod run;
mod wait;

pub use history::verified_answer;
pub use request::{RequestArgs, TaskKind};
pub use run::{Args as RunArgs, run as run_job};

use std::path::PathBuf;

use clap::Subcommand;
use ntx_offchain::builder::{EscrowUtxo, JobTerms};
use ntx_offchain::client::{EscrowClient, JobSpecDoc, LockRequest, SpecSource};
use ntx_offchain::protocol::{Address, JobState, Settlement};
use ntx_offchain::wallet::PaymentAddress;

use crate::cmd::common::{
    ChainArgs, CliError, TxArgs, WalletArgs, block_on, describe_tx, load_wallet, ntx,
    parse_duration_ms, parse_job_id, parse_ntx, usage,
};

/// Arguments of `ntx job`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find a provider and verifiers in the market, lock, wait, and print the
    /// verified answer.
    Run(Box<RunArgs>),
    /// A job's whole history from the chain (settled jobs too).
    Status {
        /// The job id (hex).
        job_id: String,
    },
    /// Fetch a job's result and check it against the result hash on chain.
    Result {
        /// The job id (hex).
        job_id: String,
        /// Also write the answer (its text form) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Lock NTX in an escrow for one job whose parties you name.
    Lock(LockArgs),
    /// Show one job's escrow.
    Show {
        /// The job id (hex).
        job_id: String,
    },
    /// List the deployment's open escrows.
    List {
        /// Only jobs whose requester or provider is this address.
        #[arg(long)]
        party: Option<String>,
    },
    /// Cancel a job that has no result yet (the requester and the job's agent sign).
    Cancel {
        /// The job id (hex).
        job_id: String,
        #[command(flatten)]
        wallet: WalletArgs,
        /// The agent's signing key; without it, use --out-file and have the agent sign.
        #[arg(long)]
        agent_key: Option<PathBuf>,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Refund a job whose provider missed the submit deadline, or whose result
    /// found no quorum by the settle deadline (anyone may send it; the
    /// requester is paid).
    Refund {
        /// The job id (hex).
        job_id: String,
        #[command(flatten)]
        wallet: WalletArgs,
        #[command(flatten)]
        tx: TxArgs,
    },
}

/// `ntx job lock`.
#[derive(Debug, clap::Args)]
struct LockArgs {
    #[command(flatten)]
    wallet: WalletArgs,
    /// The job spec (JSON, version 1): the task and the verifiers' keys and URLs.
    #[arg(long)]
    spec: PathBuf,
    /// Put this URL in the lock record instead of the spec itself; it must
    /// serve the spec's canonical bytes (printed with --json as `spec_canonical`).
    #[arg(long)]
    spec_url: Option<String>,
    /// The provider's payout address (bech32).
    #[arg(long)]
    provider: String,
    /// The provider's agent key hash (hex, 28 bytes), which signs the result.
    #[arg(long)]
    agent: String,
    /// Price in NTX, up to 6 decimals (e.g. 12.5).
    #[arg(long, allow_hyphen_values = true)]
    price: String,
    /// Attestations needed (default: a majority of the spec's verifiers).
    #[arg(long)]
    threshold: Option<u32>,
    /// Time the provider has to put its result on chain (e.g. 30m).
    #[arg(long, default_value = "30m")]
    submit_within: String,
    /// Time after the submit deadline for the verifiers' quorum to claim (e.g. 1h).
    #[arg(long, default_value = "1h")]
    settle_within: String,
    #[command(flatten)]
    tx: TxArgs,
}

/// Runs `ntx job`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    let chain = chain.clone();
    block_on(async move {
        match args.command {
            Command::Run(run_args) => run::run(&chain, *run_args).await,
            Command::Status { job_id } => history::status(&chain, &job_id).await,
            Command::Result { job_id, out } => history::result(&chain, &job_id, out).await,
            Command::Lock(lock_args) => lock(&chain, lock_args).await,
            Command::Show { job_id } => show(&chain, &job_id).await,
            Command::List { party } => list(&chain, party).await,
            Command::Cancel {
                job_id,
                wallet,
                agent_key,
                tx,
            } => cancel(&chain, &job_id, wallet, agent_key, tx).await,
            Command::Refund { job_id, wallet, tx } => refund(&chain, &job_id, wallet, tx).await,
        }
    })
}

async fn lock(chain: &ChainArgs, args: LockArgs) -> Result<(), CliError> {
    // Everything the user typed is checked before the chain is asked anything.
    let price = parse_ntx(&args.price).map_err(usage)?;
    let submit_within = parse_duration_ms(&args.submit_within).map_err(usage)?;
    let settle_within = parse_duration_ms(&args.settle_within).map_err(usage)?;
    let text = std::fs::read(&args.spec)
        .map_err(|e| usage(format!("cannot read the spec {}: {e}", args.spec.display())))?;
    let spec =
        JobSpecDoc::parse(&text).map_err(|e| usage(format!("{}: {e}", args.spec.display())))?;
    let verifiers = spec.verifier_keys();
    if verifiers.is_empty() {
        return Err(usage(
            "the spec lists no verifiers: add {\"key\", \"url\"} entries to its `verifiers`",
        ));
    }
    let threshold = args.threshold.unwrap_or(verifiers.len() as u32 / 2 + 1);
    if threshold == 0 || threshold as usize > verifiers.len() {
        return Err(usage(format!(
            "--threshold must be between 1 and the {} verifiers the spec lists",
            verifiers.len()
        )));
    }
    let provider = PaymentAddress::parse(&args.provider, chain.network)
        .map_err(|e| usage(format!("--provider: {e}")))?;
    if provider.payment_key_hash().is_none() {
        return Err(usage(
            "--provider must be a key address (not a script): the escrow pays key credentials only",
        ));
    }
    let agent: [u8; 28] = hex::decode(&args.agent)
        .ok()
        .and_then(|a| a.try_into().ok())
        .ok_or_else(|| {
            usage(
                "--agent is not a key hash: give the provider's agent key hash, 56 hex characters",
            )
        })?;
    let wallet = args.wallet.load(chain.network)?;
    let canonical = spec.canonical_bytes().map_err(|e| usage(e.to_string()))?;

    let client = args.tx.client(chain.client().await?);
    let now = client.slot_time(client.now_slot().await?);
    let terms = JobTerms {
        requester: Address::from(wallet.address().as_pallas()),
        provider: Address::from(provider.as_pallas()),
        agent,
        spec_hash: spec.hash().map_err(|e| usage(e.to_string()))?,
        price,
        verifiers,
        threshold,
        submit_by: now + submit_within,
        settle_by: now + submit_within + settle_within,
    };
    let source = match &args.spec_url {
        Some(url) => SpecSource::Url(url.clone()),
        None => SpecSource::Inline(canonical.clone()),
    };
    let prepared = client
        .lock(
            &wallet,
            vec![LockRequest {
                terms: terms.clone(),
                spec: source,
            }],
        )
        .await?;
    let mut json = args.tx.finish(&client, &prepared, "lock").await?;
    json["job_id"] = hex::encode(prepared.job_ids[0]).into();
    json["price_units"] = price.into();
    json["submit_by_ms"] = terms.submit_by.into();
    json["settle_by_ms"] = terms.settle_by.into();
    json["spec_hash"] = hex::encode(terms.spec_hash).into();
    if args.spec_url.is_some() {
        json["spec_canonical"] = String::from_utf8_lossy(&canonical).into_owned().into();
    }
    chain.print(json.clone(), || {
        format!(
            "{}\n  job {}\n  {} NTX locked; result due by {}, claim by {}",
            describe_tx("lock", &json),
            hex::encode(prepared.job_ids[0]),
            ntx(price),
            when(terms.submit_by),
            when(terms.settle_by)
        )
    });
    Ok(())
}

/// POSIX ms as UTC text.
fn when(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn escrow_json(client: &EscrowClient, e: &EscrowUtxo) -> serde_json::Value {
    let d = &e.datum;
    let network = client.network().address_network();
    let (state, result) = match &d.state {
        JobState::Locked => ("locked", None),
        JobState::Submitted { result_hash } => ("submitted", Some(hex::encode(result_hash))),
    };
    serde_json::json!({
        "job_id": hex::encode(d.job_id),
        "state": state,
        "result_hash": result,
        "utxo": format!("{}#{}", hex::encode(e.utxo.reference.transaction_id), e.utxo.reference.output_index),
        "requester": d.requester.to_shelley(network).to_bech32().unwrap_or_default(),
        "provider": d.provider.to_shelley(network).to_bech32().unwrap_or_default(),
        "agent": hex::encode(d.agent),
        "spec_hash": hex::encode(d.spec_hash),
        "price_units": d.price,
        "deposit_lovelace": e.utxo.output.value.lovelace,
        "verifiers": d.verifiers.iter().map(hex::encode).collect::<Vec<_>>(),
        "threshold": d.threshold,
        "submit_by_ms": d.submit_by,
        "settle_by_ms": d.settle_by,
    })
}

async fn show(chain: &ChainArgs, job_id: &str) -> Result<(), CliError> {
    let id = parse_job_id(job_id)?;
    let client = chain.client().await?;
    let escrow = client.escrow(&id).await?;
    let json = escrow_json(&client, &escrow);
    chain.print(json.clone(), || {
        format!(
            "job {}\n  state      {}{}\n  price      {} NTX (+ {} ADA deposit)\n  requester  {}\n  provider   {}\n  agent      {}\n  verifiers  {} of {}\n  submit by  {}\n  settle by  {}",
            json["job_id"].as_str().unwrap_or(""),
            json["state"].as_str().unwrap_or(""),
            json["result_hash"].as_str().map(|h| format!(" (result {h})")).unwrap_or_default(),
            ntx(escrow.datum.price),
            crate::cmd::common::ada(escrow.utxo.output.value.lovelace),
            json["requester"].as_str().unwrap_or(""),
            json["provider"].as_str().unwrap_or(""),
            json["agent"].as_str().unwrap_or(""),
            escrow.datum.threshold,
            escrow.datum.verifiers.len(),
            when(escrow.datum.submit_by),
            when(escrow.datum.settle_by),
        )
    });
    Ok(())
}

async fn list(chain: &ChainArgs, party: Option<String>) -> Result<(), CliError> {
    let party = party
        .map(|p| {
            PaymentAddress::parse(&p, chain.network)
                .map(|a| Address::from(a.as_pallas()).payment)
                .map_err(|e| usage(format!("--party: {e}")))
        })
        .transpose()?;
    let client = chain.client().await?;
    let scan = client.scan().await?;
    let mut escrows: Vec<&EscrowUtxo> = scan
        .escrows
        .iter()
        .filter(|e| {
            party.is_none_or(|p| e.datum.requester.payment == p || e.datum.provider.payment == p)
        })
        .collect();
    escrows.sort_by_key(|e| (e.datum.submit_by, e.datum.job_id));
    let json = serde_json::json!({
        "escrows": escrows.iter().map(|e| escrow_json(&client, e)).collect::<Vec<_>>(),
        "skipped_utxos": scan.skipped.len(),
    });
    chain.print(json, || {
        if escrows.is_empty() {
            return "no open escrows".to_string();
        }
        let mut text = format!("{:<64}  {:<9}  {:>14}  submit by\n", "job", "state", "NTX");
        for e in &escrows {
            let state = match e.datum.state {
                JobState::Locked => "locked",
                JobState::Submitted { .. } => "submitted",
            };
            text += &format!(
                "{}  {:<9}  {:>14}  {}\n",
                hex::encode(e.datum.job_id),
                state,
                ntx(e.datum.price),
                when(e.datum.submit_by)
            );
        }
        text.trim_end().to_string()
    });
    Ok(())
}

async fn cancel(
    chain: &ChainArgs,
    job_id: &str,
    wallet: WalletArgs,
    agent_key: Option<PathBuf>,
    tx: TxArgs,
) -> Result<(), CliError> {
    let id = parse_job_id(job_id)?;
    let wallet = wallet.load(chain.network)?;
    let agent = agent_key
        .map(|p| load_wallet(&p, chain.network))
        .transpose()?;
    if agent.is_none() && tx.out_file.is_none() {
        return Err(usage(
            "cancelling needs the agent's signature: pass --agent-key, or --out-file to have the agent sign",
        ));
    }
    let client = tx.client(chain.client().await?);
    let escrow = client.escrow(&id).await?;
    let prepared = client
        .cancel(
            &wallet,
            agent
                .as_ref()
                .map(|a| a as &dyn ntx_offchain::wallet::Signer),
            &escrow,
        )
        .await?;
    let json = tx.finish(&client, &prepared, "cancel").await?;
    chain.print(json.clone(), || describe_tx("cancel", &json));
    Ok(())
}

async fn refund(
    chain: &ChainArgs,
    job_id: &str,
    wallet: WalletArgs,
    tx: TxArgs,
) -> Result<(), CliError> {
    let id = parse_job_id(job_id)?;
    let wallet = wallet.load(chain.network)?;
    let client = tx.client(chain.client().await?);
    let escrow = client.escrow(&id).await?;
    let now = client.slot_time(client.now_slot().await?);
    let settlement = match escrow.datum.state {
        JobState::Locked if now > escrow.datum.submit_by => Settlement::RefundNoShow,
        JobState::Submitted { .. } if now > escrow.datum.settle_by => Settlement::RefundTimeout,
        JobState::Locked => {
            return Err(usage(format!(
                "job {job_id} is not refundable yet: its provider has until {} to submit (or cancel it with the agent's signature)",
                when(escrow.datum.submit_by)
            )));
        }
        JobState::Submitted { .. } => {
            return Err(usage(format!(
                "job {job_id} is not refundable yet: its verifiers may claim until {} (a rejecting quorum refunds at once through `ntx settle`)",
                when(escrow.datum.settle_by)
            )));
        }
    };
    let (prepared, _) = client.settle(&wallet, vec![(escrow, settlement)]).await?;
    let json = tx.finish(&client, &prepared, "refund").await?;
    chain.print(json.clone(), || describe_tx("refund", &json));
    Ok(())
}
