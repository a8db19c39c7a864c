//! `ntx bench contract`: the escrow's size, execution units and mainnet fees,
//! measured by running the compiled validator on the real transactions.
//! `ntx bench build`: how long building, evaluating and signing one
//! transaction takes (the goal is under 5 ms).

use clap::{Subcommand, ValueEnum};
use miette::{IntoDiagnostic, miette};
use ntx_offchain::ExUnits;
use ntx_offchain::builder::{EscrowUtxo, Finished, JobTerms};
use ntx_offchain::client::{FastResult, SettleRecord};
use ntx_offchain::market::{
    OFFER_VERSION, Offer, OfferRole, SignedOffer, TaskOffer, VerifierPolicy,
};
use ntx_offchain::protocol::{Asset, Settlement, Verdict};
use ntx_offchain::sandbox::{MAINNET_MAX_TX_EX_UNITS, Party, Sandbox};
use ntx_offchain::tx::FeeParams;
use serde_json::json;

/// Arguments of `ntx bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    target: Target,
}

#[derive(Debug, Subcommand)]
enum Target {
    /// Script size; units and fees of every transaction kind; batch settlements.
    Contract {
        /// Output format (`--json` is shorthand for `--format json`).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Time to build, evaluate, balance and sign Lock, Submit and Claim.
    Build {
        /// Runs per transaction kind.
        #[arg(long, default_value_t = 200)]
        runs: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Markdown,
}

/// Runs `ntx bench`.
pub fn run(args: Args, json: bool) -> miette::Result<()> {
    match args.target {
        Target::Contract { format } => {
            let format = if json { Format::Json } else { format };
            let report = measure()?;
            print(&report, format);
            Ok(())
        }
        Target::Build { runs } => build_times(runs.max(1), json),
    }
}

/// Median and fastest wall time of `runs` calls of `f`, in microseconds.
fn time_it(runs: usize, mut f: impl FnMut() -> miette::Result<()>) -> miette::Result<(u128, u128)> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = std::time::Instant::now();
        f()?;
        times.push(start.elapsed().as_micros());
    }
    times.sort_unstable();
    Ok((times[times.len() / 2], times[0]))
}

/// Times the builders end to end on the sandbox: draft, two evaluations with
/// `uplc` (measure, then check the final bytes), fee balancing, signing.
fn build_times(runs: usize, json: bool) -> miette::Result<()> {
    let mut sb = Sandbox::new(asset());
    let terms = sb.terms(PRICE, SUBMIT_BY, SETTLE_BY);
    let (_, escrows) = sb
        .lock(std::slice::from_ref(&terms), 100)
        .into_diagnostic()?;
    let (_, submitted) = sb
        .submit(&escrows[0], RESULT, SUBMIT_BY)
        .into_diagnostic()?;
    let claim = sb.claims(vec![submitted]);
    let fast = sb.fast_claims(vec![escrows[0].clone()], RESULT);
    eprintln!("timing {runs} runs each of Lock, Submit, Claim and FastClaim …");
    let lock = time_it(runs, || {
        sb.lock(std::slice::from_ref(&terms), 100)
            .map(drop)
            .into_diagnostic()
    })?;
    let submit = time_it(runs, || {
        sb.submit(&escrows[0], RESULT, SUBMIT_BY)
            .map(drop)
            .into_diagnostic()
    })?;
    let settle = time_it(runs, || {
        sb.settle(claim.clone(), SUBMIT_BY + 1, &[])
            .map(drop)
            .into_diagnostic()
    })?;
    let fast_settle = time_it(runs, || {
        sb.settle(fast.clone(), 100, &[])
            .map(drop)
            .into_diagnostic()
    })?;
    let rows = [
        ("Lock (1 job)", lock),
        ("Submit", submit),
        ("Claim (2-of-3)", settle),
        ("FastClaim (2-of-3)", fast_settle),
    ];
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|(n, (median, min))| json!({"tx": n, "median_us": median, "min_us": min}))
            .collect();
        println!("{:#}", json!({"runs": runs, "build_and_sign": out}));
    } else {
        println!("build + evaluate + balance + sign, {runs} runs (goal: under 5 ms)");
        for (name, (median, min)) in rows {
            println!(
                "  {name:<18} median {:>7.3} ms   fastest {:>7.3} ms",
                median as f64 / 1000.0,
                min as f64 / 1000.0
            );
        }
    }
    Ok(())
}

const PRICE: u64 = 25_000_000;
const SUBMIT_BY: u64 = 1_000;
const SETTLE_BY: u64 = 2_000;
/// The largest batch lock that fits a transaction comfortably.
const LOCK_BATCH: usize = 10;

struct Row {
    name: String,
    size: usize,
    units: ExUnits,
    fee: u64,
}

impl Row {
    fn of(name: impl Into<String>, f: &Finished) -> Row {
        let units = f
            .costs
            .iter()
            .fold(ExUnits::default(), |acc, c| acc + c.ex_units);
        Row {
            name: name.into(),
            size: f.tx.cbor.len(),
            units,
            fee: f.fee,
        }
    }
}

struct Report {
    script_size: usize,
    rows: Vec<Row>,
    batches: Vec<Row>,
    largest_batch: usize,
    per_job: PerJob,
}

/// Fees per job, in lovelace, on each path; batched at [`LOCK_BATCH`] locks and
/// [`CLAIM_BATCH`] claims per transaction (the Submit is one per job).
struct PerJob {
    fast_unbatched: u64,
    fast_batched: u64,
    slow_unbatched: u64,
    slow_batched: u64,
}

impl PerJob {
    fn rows(&self) -> [(&'static str, u64); 4] {
        [
            ("per job, fast path (Lock + FastClaim)", self.fast_unbatched),
            (
                "per job, fast path, batched (10 locks, 50 claims)",
                self.fast_batched,
            ),
            (
                "per job, slow path (Lock + Submit + Claim)",
                self.slow_unbatched,
            ),
            (
                "per job, slow path, batched (10 locks, 50 claims)",
                self.slow_batched,
            ),
        ]
    }
}

/// Claims per batched settlement in the per-job figures.
const CLAIM_BATCH: usize = 50;

/// The URL a provider's settle record names (a realistic length).
fn result_url() -> String {
    format!(
        "https://provider-agent.example.org/results/{}",
        hex::encode(RESULT)
    )
}

const RESULT: [u8; 32] = [0x77; 32];

/// A fast-path settlement of `escrows`, carrying its settle record as the
/// client writes it.
fn fast_settle(sb: &mut Sandbox, escrows: &[EscrowUtxo]) -> miette::Result<Finished> {
    let record = SettleRecord {
        results: escrows
            .iter()
            .map(|e| FastResult {
                job_id: e.datum.job_id,
                result_hash: RESULT,
                result_url: result_url(),
            })
            .collect(),
    };
    let items = sb.fast_claims(escrows.to_vec(), RESULT);
    sb.settle_draft(items, 100, |d| d.metadata = record.to_metadata(), &[])
        .map_err(|e| miette!("a {}-job fast claim: {e}", escrows.len()))
}

/// `n` locked escrows, locked [`LOCK_BATCH`] at a time.
fn locked_jobs(sb: &mut Sandbox, n: usize) -> miette::Result<Vec<EscrowUtxo>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let k = (n - out.len()).min(LOCK_BATCH);
        let terms: Vec<JobTerms> = (0..k)
            .map(|_| sb.terms(PRICE, SUBMIT_BY, SETTLE_BY))
            .collect();
        let (_, escrows) = sb.lock(&terms, 100).into_diagnostic()?;
        out.extend(escrows);
    }
    Ok(out)
}

fn asset() -> Asset {
    Asset::mainnet_ntx()
}

fn submitted_jobs(sb: &mut Sandbox, n: usize) -> miette::Result<Vec<EscrowUtxo>> {
    let mut out = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let k = left.min(LOCK_BATCH);
        let terms: Vec<JobTerms> = (0..k)
            .map(|_| sb.terms(PRICE, SUBMIT_BY, SETTLE_BY))
            .collect();
        let (_, escrows) = sb.lock(&terms, 100).into_diagnostic()?;
        for e in escrows {
            let (_, e) = sb.submit(&e, RESULT, SUBMIT_BY).into_diagnostic()?;
            out.push(e);
        }
        left -= k;
    }
    Ok(out)
}

fn measure() -> miette::Result<Report> {
    let mut sb = Sandbox::new(asset());
    let script_size = sb.deployment.script.size();
    let mut rows = Vec::new();

    let terms = sb.terms(PRICE, SUBMIT_BY, SETTLE_BY);
    let (lock, escrows) = sb.lock(&[terms], 100).into_diagnostic()?;
    rows.push(Row::of("Lock (1 job)", &lock));
    let (submit, escrow) = sb
        .submit(&escrows[0], RESULT, SUBMIT_BY)
        .into_diagnostic()?;
    rows.push(Row::of("Submit", &submit));
    let claim = sb
        .settle(sb.claims(vec![escrow.clone()]), SUBMIT_BY + 1, &[])
        .into_diagnostic()?;
    rows.push(Row::of("Claim (2-of-3)", &claim));
    let total = lock.fee + submit.fee + claim.fee;
    let (_, fresh) = sb
        .lock(&[sb.terms(PRICE, SUBMIT_BY, SETTLE_BY)], 100)
        .into_diagnostic()?;
    let fast_claim = fast_settle(&mut sb, &fresh)?;
    rows.push(Row::of("FastClaim (2-of-3, with its record)", &fast_claim));

    let attestations = sb.attest(&escrow, Verdict::Reject, &[0, 1]);
    let rejected = sb
        .settle(
            vec![(escrow.clone(), Settlement::RefundRejected { attestations })],
            SUBMIT_BY + 1,
            &[],
        )
        .into_diagnostic()?;
    rows.push(Row::of("Refund, rejected (2-of-3)", &rejected));
    let timeout = sb
        .settle(
            vec![(escrow, Settlement::RefundTimeout)],
            SETTLE_BY + 1,
            &[],
        )
        .into_diagnostic()?;
    rows.push(Row::of("Refund, timeout", &timeout));
    let (_, locked) = sb
        .lock(&[sb.terms(PRICE, SUBMIT_BY, SETTLE_BY)], 100)
        .into_diagnostic()?;
    let no_show = sb
        .settle(
            vec![(locked[0].clone(), Settlement::RefundNoShow)],
            SUBMIT_BY + 1,
            &[],
        )
        .into_diagnostic()?;
    rows.push(Row::of("Refund, no-show", &no_show));
    let requester = Party::from_seed(1, sb.deployment.network);
    let agent = Party::from_seed(3, sb.deployment.network);
    let cancel = sb
        .settle(
            vec![(locked[0].clone(), Settlement::Cancel)],
            50,
            &[&requester, &agent],
        )
        .into_diagnostic()?;
    rows.push(Row::of("Cancel", &cancel));
    rows.push(Row {
        name: "Lock + Submit + Claim".into(),
        size: 0,
        units: ExUnits::default(),
        fee: total,
    });
    rows.push(Row {
        name: "Lock + FastClaim".into(),
        size: 0,
        units: ExUnits::default(),
        fee: lock.fee + fast_claim.fee,
    });
    let terms: Vec<JobTerms> = (0..LOCK_BATCH)
        .map(|_| sb.terms(PRICE, SUBMIT_BY, SETTLE_BY))
        .collect();
    let (batch_lock, _) = sb.lock(&terms, 100).into_diagnostic()?;
    rows.push(Row::of(format!("Lock ({LOCK_BATCH} jobs)"), &batch_lock));
    let fast_pool = locked_jobs(&mut sb, CLAIM_BATCH)?;
    let fast_batch = fast_settle(&mut sb, &fast_pool)?;

    rows.extend(offer_rows(&mut sb)?);

    let mut batches = Vec::new();
    let pool = submitted_jobs(&mut sb, 60)?;
    for n in [1usize, 10, 50] {
        let f = sb
            .settle(sb.claims(pool[..n].to_vec()), SUBMIT_BY + 1, &[])
            .map_err(|e| miette!("a {n}-claim settlement: {e}"))?;
        batches.push(Row::of(format!("Settle {n} claims"), &f));
    }
    batches.push(Row::of(
        format!("Settle {CLAIM_BATCH} fast claims (with their record)"),
        &fast_batch,
    ));
    let slow_batch = sb
        .settle(sb.claims(pool[..CLAIM_BATCH].to_vec()), SUBMIT_BY + 1, &[])
        .map_err(|e| miette!("a {CLAIM_BATCH}-claim settlement: {e}"))?;
    let lock_share = batch_lock.fee / LOCK_BATCH as u64;
    let per_job = PerJob {
        fast_unbatched: lock.fee + fast_claim.fee,
        fast_batched: lock_share + fast_batch.fee / CLAIM_BATCH as u64,
        slow_unbatched: total,
        slow_batched: lock_share + submit.fee + slow_batch.fee / CLAIM_BATCH as u64,
    };
    // The largest batch within mainnet's limits, by bisection.
    let (mut lo, mut hi) = (1usize, pool.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let fits = sb
            .settle(sb.claims(pool[..mid].to_vec()), SUBMIT_BY + 1, &[])
            .map(|f| f.tx.cbor.len() <= 16_384)
            .unwrap_or(false);
        if fits { lo = mid } else { hi = mid - 1 }
    }
    Ok(Report {
        script_size,
        rows,
        batches,
        largest_batch: lo,
        per_job,
    })
}

/// A provider's offer as an agent publishes one: two tasks (embed with one model,
/// generate with a per-token price), a policy listing the three verifiers.
fn provider_offer(sb: &Sandbox, issued_ms: u64) -> Offer {
    let hash = |b: u8| hex::encode([b; 32]);
    Offer {
        version: OFFER_VERSION,
        deployment: hex::encode(sb.deployment.script.hash()),
        role: OfferRole::Provider,
        key: hex::encode(sb.agent.public_key),
        payout: Some(sb.provider.bech32.clone()),
        url: "https://provider-agent.example.org".into(),
        tasks: vec![
            TaskOffer {
                task: "embed".into(),
                model: json!({"config": hash(1), "tokenizer": hash(2), "weights": hash(3)}),
                price: 1_000_000,
                price_per_token: 0,
            },
            TaskOffer {
                task: "generate".into(),
                model: json!({"gguf": hash(4)}),
                price: 1_000_000,
                price_per_token: 1_000,
            },
        ],
        policy: Some(VerifierPolicy {
            min_threshold: 2,
            ..VerifierPolicy::listed(
                &sb.verifiers
                    .iter()
                    .map(|v| v.public_key)
                    .collect::<Vec<_>>(),
            )
        }),
        issued_ms,
        expires_ms: issued_ms + 24 * 3600 * 1000,
    }
}

/// Publishing, replacing and withdrawing a provider's offer.
fn offer_rows(sb: &mut Sandbox) -> miette::Result<Vec<Row>> {
    let signed = |sb: &Sandbox, issued_ms| {
        SignedOffer::sign(provider_offer(sb, issued_ms), &sb.agent.key).into_diagnostic()
    };
    let first = signed(sb, sb.time(0))?;
    let (publish, utxo) = sb.publish_offer(&first, None).into_diagnostic()?;
    let second = signed(sb, sb.time(10))?;
    let (replace, utxo) = sb.publish_offer(&second, Some(utxo)).into_diagnostic()?;
    let withdraw = sb.withdraw_offer(utxo.clone()).into_diagnostic()?;
    Ok(vec![
        Row::of(
            format!(
                "Offer: publish ({} B, {} ADA back)",
                second.body.len(),
                ada(utxo.output.value.lovelace)
            ),
            &publish,
        ),
        Row::of("Offer: replace", &replace),
        Row::of("Offer: withdraw", &withdraw),
    ])
}

fn ada(lovelace: u64) -> String {
    format!("{}.{:06}", lovelace / 1_000_000, lovelace % 1_000_000)
}

fn print(report: &Report, format: Format) {
    let limit = MAINNET_MAX_TX_EX_UNITS;
    match format {
        Format::Json => {
            let rows = |rs: &[Row]| {
                rs.iter()
                    .map(|r| json!({"name": r.name, "tx_bytes": r.size, "mem": r.units.mem, "steps": r.units.steps, "fee_lovelace": r.fee}))
                    .collect::<Vec<_>>()
            };
            let out = json!({
                "script_bytes": report.script_size,
                "fee_params": {"min_fee_a": FeeParams::MAINNET.min_fee_a, "min_fee_b": FeeParams::MAINNET.min_fee_b},
                "max_tx_ex_units": {"mem": limit.mem, "steps": limit.steps},
                "transactions": rows(&report.rows),
                "batches": rows(&report.batches),
                "largest_claim_batch": report.largest_batch,
                "per_job": {
                    "fast_unbatched_lovelace": report.per_job.fast_unbatched,
                    "fast_batched_lovelace": report.per_job.fast_batched,
                    "slow_unbatched_lovelace": report.per_job.slow_unbatched,
                    "slow_batched_lovelace": report.per_job.slow_batched,
                    "locks_per_batch": LOCK_BATCH,
                    "claims_per_batch": CLAIM_BATCH,
                },
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Format::Table | Format::Markdown => {
            let md = format == Format::Markdown;
            println!(
                "Compiled script: {} bytes (goal: at most 4,500)",
                report.script_size
            );
            println!();
            let header = ["transaction", "bytes", "memory", "CPU steps", "fee (ADA)"];
            let line = |cells: [String; 5]| {
                if md {
                    println!("| {} |", cells.join(" | "));
                } else {
                    println!(
                        "{:<52}{:>8}{:>22}{:>26}{:>12}",
                        cells[0], cells[1], cells[2], cells[3], cells[4]
                    );
                }
            };
            line(header.map(String::from));
            if md {
                println!("|---|---:|---:|---:|---:|");
            }
            for r in report.rows.iter().chain(&report.batches) {
                let share = |x: u64, of: u64| format!("{x} ({:.1}%)", 100.0 * x as f64 / of as f64);
                let (size, mem, steps) = if r.size == 0 {
                    (String::new(), String::new(), String::new())
                } else {
                    (
                        r.size.to_string(),
                        share(r.units.mem, limit.mem),
                        share(r.units.steps, limit.steps),
                    )
                };
                line([r.name.clone(), size, mem, steps, ada(r.fee)]);
            }
            for (name, fee) in report.per_job.rows() {
                line([
                    name.to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    ada(fee),
                ]);
            }
            println!();
            println!(
                "Largest claim batch within 16,384 bytes and {} mem / {} steps: {} jobs",
                limit.mem, limit.steps, report.largest_batch
            );
            println!(
                "Units are as measured; fees include the declared {}% margin on them.",
                ntx_offchain::builder::EXECUTION_MARGIN_PERCENT
            );
        }
    }
}
