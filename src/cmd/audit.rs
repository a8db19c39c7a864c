//! `ntx audit`: replay every escrow of a deployment from the chain and check
//! each step against the protocol (docs/PROTOCOL.md, "What `ntx audit`
//! checks"). Trusts only the chain provider. Exit code 1 when a rule is
//! broken, 2 on bad input, so it can run in CI or cron.

use std::path::PathBuf;

use ntx_offchain::Blueprint;
use ntx_offchain::audit::{self, SlotRange, Target};
use ntx_offchain::chain::Blockfrost;
use ntx_offchain::fetch::{AddressPolicy, FetchKind, PeerFetcher};

use super::common::{ChainArgs, CliError, parse_asset};

/// Arguments of `ntx audit` (with the global --network, --provider-url,
/// --deployment and --json).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The settlement asset instead of a deployment file, as `<policy hex>.<name hex>`
    /// (or the policy and name hex run together); the escrow script follows
    /// from the blueprint this `ntx` was built with.
    #[arg(long)]
    settlement: Option<String>,
    /// With --settlement: the script hash (hex) of a deployment built from
    /// another blueprint.
    #[arg(long, requires = "settlement")]
    script_hash: Option<String>,
    /// First slot to audit (default: genesis). Escrows locked earlier and
    /// settled in the range are still checked.
    #[arg(long)]
    from_slot: Option<u64>,
    /// Last slot to audit (default: the tip); escrows are judged overdue as of this slot.
    #[arg(long)]
    to_slot: Option<u64>,
    /// Also write a self-contained HTML report (with a chart) to this file.
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
    /// Re-run every claimed or rejected job with the verifier's rule (fetching
    /// its spec and result bytes), to catch a quorum that signed a bad result.
    #[arg(long, requires = "model_dir")]
    recompute: bool,
    /// With --recompute: folders of model files (each one model); repeat it.
    #[arg(long, value_name = "DIR")]
    model_dir: Vec<PathBuf>,
}

/// The verifier's rule, run by the node agent's engine, as the auditor's
/// [`audit::ResultChecker`].
pub(crate) struct Recheck {
    chain: std::sync::Arc<dyn ntx_offchain::chain::ChainProvider>,
    models: ntx_node_agent::ModelIndex,
    engine: std::sync::Arc<ntx_node_agent::Engine>,
    fetcher: PeerFetcher,
}

impl Recheck {
    /// A checker reading `chain`, with the models in `model_dirs`, fetching specs
    /// and results under `policy`.
    pub(crate) fn new(
        chain: std::sync::Arc<dyn ntx_offchain::chain::ChainProvider>,
        model_dirs: &[PathBuf],
        policy: AddressPolicy,
    ) -> Result<Recheck, CliError> {
        let models = ntx_node_agent::ModelIndex::scan(model_dirs)
            .map_err(|e| usage(format!("--model-dir: {e}")))?;
        let engine = ntx_node_agent::Engine::on_selected_device()
            .map_err(|e| CliError::Failed(e.to_string()))?;
        Ok(Recheck {
            chain,
            models,
            engine: std::sync::Arc::new(engine),
            fetcher: PeerFetcher::new(policy).map_err(|e| CliError::Failed(e.to_string()))?,
        })
    }

    async fn record(&self, tx: &str) -> Result<serde_json::Value, String> {
        let id: [u8; 32] = hex::decode(tx)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("a malformed transaction id")?;
        self.chain
            .tx_metadata(&id)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|m| m.label == ntx_offchain::client::METADATA_LABEL)
            .map(|m| m.json)
            .ok_or_else(|| format!("transaction {tx} has no ntx-escrow record"))
    }

    async fn fetch(&self, url: &str, kind: FetchKind) -> Result<Vec<u8>, String> {
        self.fetcher.get(url, kind).await.map_err(|e| e.to_string())
    }

    async fn run(&self, job: &audit::JobReport) -> Result<ntx_node_agent::Verdict, String> {
        use ntx_offchain::client::{JobSpecDoc, LockRecord, ResultLocation, SpecSource};
        let result_tx = job.result_tx.as_deref().ok_or("no result on chain")?;
        let job_id: [u8; 32] = hex::decode(&job.job_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("a malformed job id")?;
        let result_hash: [u8; 32] = job
            .result_hash
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or("no result hash")?;
        let submit = ResultLocation::find(&self.record(result_tx).await?, &job_id, &result_hash)
            .map_err(|e| e.to_string())?;
        let lock_tx = match (submit.lock_tx, &job.lock_tx) {
            (Some(tx), _) => hex::encode(tx),
            (None, Some(tx)) => tx.clone(),
            (None, None) => return Err("the lock is before the audited range".into()),
        };
        let lock =
            LockRecord::from_json(&self.record(&lock_tx).await?).map_err(|e| e.to_string())?;
        let spec = match lock
            .spec_of(&job_id)
            .ok_or("the lock record does not name the job")?
        {
            SpecSource::Inline(bytes) => bytes.clone(),
            SpecSource::Url(url) => self.fetch(url, FetchKind::Spec).await?,
        };
        if hex::encode(ntx_offchain::protocol::blake2b_256(&spec)) != job.spec_hash {
            return Err("the spec does not hash to the datum's spec_hash".into());
        }
        let doc = JobSpecDoc::parse(&spec).map_err(|e| e.to_string())?;
        let dir = self
            .models
            .find(&doc.job)
            .ok_or("none of the --model-dir folders holds this job's model")?
            .to_path_buf();
        let spec =
            ntx_node_agent::JobSpec::from_json(&doc.job.to_string()).map_err(|e| e.to_string())?;
        let bytes = self.fetch(&submit.result_url, FetchKind::Result).await?;
        let hash: ntx_node_agent::Hash32 = job
            .result_hash
            .as_deref()
            .ok_or("no result hash")?
            .parse()
            .map_err(|e: ntx_node_agent::HashParseError| e.to_string())?;
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.verify(&spec, &dir, &bytes, &hash))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl audit::ResultChecker for Recheck {
    async fn recheck(&self, job: &audit::JobReport) -> audit::Recheck {
        match self.run(job).await {
            Ok(v) if v.is_accept() => audit::Recheck::Agrees,
            Ok(v) => audit::Recheck::Disagrees(format!("{v:?}")),
            Err(why) => audit::Recheck::Unavailable(why),
        }
    }
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

fn parse_script_hash(s: &str) -> Result<[u8; 28], CliError> {
    hex::decode(s.trim())
        .ok()
        .and_then(|h| <[u8; 28]>::try_from(h).ok())
        .ok_or_else(|| {
            usage(format!(
                "{s:?} is not a script hash: give 56 hex characters"
            ))
        })
}

/// The deployment to audit, from the flags.
fn target(args: &Args, chain: &ChainArgs) -> Result<Target, CliError> {
    if let Some(settlement) = &args.settlement {
        if chain.deployment.is_some() {
            return Err(usage("give either --deployment or --settlement, not both"));
        }
        let settlement = parse_asset(settlement)?;
        let script_hash = match &args.script_hash {
            Some(h) => parse_script_hash(h)?,
            None => Blueprint::embedded()
                .escrow(&settlement)
                .map_err(|e| CliError::Failed(format!("the embedded blueprint: {e}")))?
                .hash(),
        };
        return Ok(Target {
            script_hash,
            settlement,
        });
    }
    if chain.deployment.is_none() && !chain.deployment_path().exists() {
        return Err(usage(format!(
            "no deployment to audit: pass --deployment <file> or --settlement <policy>.<name> (there is no {})",
            chain.deployment_path().display()
        )));
    }
    let info = chain.deployment_info()?;
    Ok(Target {
        script_hash: parse_script_hash(&info.script_hash)?,
        settlement: info.settlement().map_err(|e| usage(e.to_string()))?,
    })
}

/// Runs `ntx audit`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    let target = target(&args, chain)?;
    if let (Some(from), Some(to)) = (args.from_slot, args.to_slot)
        && from > to
    {
        return Err(usage(format!(
            "--from-slot {from} is after --to-slot {to}: give a non-empty range"
        )));
    }
    let network = chain.network;
    let provider = Blockfrost::for_network(network, chain.provider_url.as_deref())
        .map_err(|e| usage(e.to_string()))?;
    let range = SlotRange {
        from: args.from_slot,
        to: args.to_slot,
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    let history = runtime
        .block_on(audit::collect_history(&provider, target, network, range))
        .map_err(|e| match e {
            audit::AuditError::Range(m) => usage(m),
            other => CliError::Failed(other.to_string()),
        })?;
    let mut report = audit::check(&history, network);
    if args.recompute {
        let checker = Recheck::new(
            std::sync::Arc::new(provider),
            &args.model_dir,
            AddressPolicy::default_for(network),
        )?;
        eprintln!("re-running the claimed and rejected jobs …");
        runtime.block_on(audit::recompute(&mut report, &checker));
    }
    if chain.json {
        println!("{}", audit::render_json(&report));
    } else {
        print!("{}", audit::render_table(&report));
    }
    if let Some(path) = &args.html {
        std::fs::write(path, audit::render_html(&report))
            .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("HTML report written to {}", path.display());
    }
    match report.findings.len() {
        0 => Ok(()),
        n => Err(CliError::Findings(format!(
            "the audit found {n} finding(s): each names the rule and the transaction"
        ))),
    }
}
