//! `ntx demo`: the whole system on one machine, in under a minute.
//!
//! Starts the embedded devnet in this process, makes wallets for a requester,
//! two providers and three verifiers, deploys the escrow, and starts the honest
//! provider's agent and the three verifiers' agents, which publish their offers
//! on chain. The requester finds them through the market alone, and locks a
//! handful of real embedding jobs and one generate job with the provider and
//! verifiers it chose. One more job goes to a provider that cheats (it computes
//! with a model missing a layer and claims the job's model); the verifiers
//! reject it and the requester is refunded. Each job is followed from locked
//! to paid or refunded; the run prints each paid job's answer, checked against
//! the result hash on chain, and ends with the audit of every settlement.

use ntx_offchain::fetch::AddressPolicy;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ntx_node_agent::{
    AgentConfig, Answer, BertFiles, ChainConfig, EmbedResult, Engine, FetchConfig, HttpState,
    JobSpec, OfferConfig, PolicyConfig, ProviderConfig, Store, Tally, TinyBert, TinyLlama,
    VerifierConfig, collect_attestations, write_tiny_bert, write_tiny_llama,
};
use ntx_offchain::audit;
use ntx_offchain::builder::JobTerms;
use ntx_offchain::client::{EscrowClient, JobSpecDoc, LockRequest, SpecSource};
use ntx_offchain::market::{Choice, Listing, OfferRole, Want, choose};
use ntx_offchain::protocol::{Address, JobState, Settlement, blake2b_256};
use ntx_offchain::wallet::{KeyRole, Signer, SigningKey, Wallet};
use ntx_offchain::{Network, chain::Blockfrost, chain::ChainProvider};
use tokio_util::sync::CancellationToken;

use super::common::{ChainArgs, CliError, ntx};

/// Arguments of `ntx demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// all-MiniLM-L6-v2's files (config.json, tokenizer.json, model.safetensors);
    /// without them the demo uses the project's tiny BERT
    /// (fetch them with `node-agent/scripts/fetch-minilm.sh DIR`).
    #[arg(long, env = "NTX_MINILM_DIR")]
    model_dir: Option<PathBuf>,
    /// A folder holding a chat model's `model.gguf` (e.g. SmolLM2-135M-Instruct)
    /// for the generate job; without it the demo uses the project's tiny llama
    /// (random weights: its text is noise, but checked like any other).
    #[arg(long, env = "NTX_SMOLLM_DIR")]
    llm_dir: Option<PathBuf>,
    /// Honest jobs to lock (one more goes to the cheating provider).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=8))]
    jobs: u8,
    /// Where keys, agent state, the deployment file and the audit report go.
    #[arg(long, default_value = "ntx-demo")]
    out: PathBuf,
}

const PRICE: u64 = 5_000_000;
/// The provider's generate price: a base and a price per requested token.
const GENERATE_PRICE: u64 = 2_000_000;
const GENERATE_PRICE_PER_TOKEN: u64 = 100_000;
const GENERATE_TOKENS: u64 = 24;
const PROMPT: &str = "What does an escrow do?";
const SLOT_MS: u64 = 200;
const PATIENCE: Duration = Duration::from_secs(120);
const SENTENCES: [&str; 8] = [
    "A man is eating food.",
    "The new movie is awesome.",
    "Cardano settles payments for AI compute.",
    "A verifier re-runs the job and signs.",
    "The cat sits outside.",
    "Escrows refund requesters when jobs fail.",
    "Embeddings map sentences to vectors.",
    "The provider is paid once a quorum agrees.",
];

fn failed(what: &str) -> impl Fn(String) -> CliError + '_ {
    move |e| CliError::Failed(format!("{what}: {e}"))
}

/// Runs `ntx demo`.
pub fn run(args: Args, _chain: &ChainArgs) -> Result<(), CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    super::common::block_on(demo(args))
}

fn free_port() -> Result<u16, CliError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::Failed(format!("no free port: {e}")))
}

fn key_file(dir: &Path, name: &str, seed: u8) -> Result<(PathBuf, Wallet), CliError> {
    let key =
        SigningKey::from_normal_bytes(&blake2b_256(&[b"ntx-demo".as_slice(), &[seed]].concat()));
    let path = dir.join(format!("{name}.skey"));
    let text = key
        .to_text_envelope(KeyRole::Payment)
        .ok_or_else(|| CliError::Failed("a plain key has an envelope".into()))?;
    write_secret(&path, text.as_bytes()).map_err(|e| failed("writing keys")(e.to_string()))?;
    Ok((path, Wallet::new(Network::Devnet, key, None)))
}

/// Writes a key file readable by its owner only (0600), also when an earlier
/// run left one with a wider mode.
fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        (&file).write_all(bytes)
    }
    #[cfg(not(unix))]
    options.open(path)?.write_all(bytes)
}

fn step(started: Instant, text: impl AsRef<str>) {
    println!(
        "[{:>5.1}s] {}",
        started.elapsed().as_secs_f64(),
        text.as_ref()
    );
}

struct Model {
    dir: PathBuf,
    files: BertFiles,
    name: String,
}

fn pick_model(args: &Args, out: &Path) -> Result<Model, CliError> {
    if let Some(dir) = &args.model_dir {
        let files = BertFiles::of_dir(dir).map_err(|e| {
            CliError::Usage(format!(
                "--model-dir {}: {e}: give the folder with config.json, tokenizer.json and model.safetensors",
                dir.display()
            ))
        })?;
        return Ok(Model {
            dir: dir.clone(),
            files,
            name: format!("all-MiniLM-L6-v2 from {}", dir.display()),
        });
    }
    let dir = out.join("tiny-bert");
    write_tiny_bert(&dir, &TinyBert::default()).map_err(|e| failed("tiny model")(e.to_string()))?;
    let files = BertFiles::of_dir(&dir).map_err(|e| failed("tiny model")(e.to_string()))?;
    Ok(Model {
        dir,
        files,
        name:
            "the project's tiny BERT (pass --model-dir or set NTX_MINILM_DIR for all-MiniLM-L6-v2; \
               fetch it with node-agent/scripts/fetch-minilm.sh DIR)"
                .into(),
    })
}

fn model_json(files: &BertFiles) -> serde_json::Value {
    serde_json::json!({
        "weights": files.weights.to_hex(),
        "config": files.config.to_hex(),
        "tokenizer": files.tokenizer.to_hex(),
    })
}

async fn demo(args: Args) -> Result<(), CliError> {
    let started = Instant::now();
    let out = args.out.clone();
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .map_err(|e| failed("clearing the output folder")(e.to_string()))?;
    }
    let keys = out.join("keys");
    std::fs::create_dir_all(&keys)
        .map_err(|e| failed("creating the output folder")(e.to_string()))?;
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();

    // The chain.
    let devnet = ntx_devnet::Devnet::open(ntx_devnet::DevnetConfig {
        slot_length_ms: SLOT_MS,
        clock: ntx_devnet::ClockMode::Wall,
        ..ntx_devnet::DevnetConfig::default()
    })
    .map_err(|e| failed("the devnet")(e.to_string()))?;
    let (ready, addr) = tokio::sync::oneshot::channel::<SocketAddr>();
    {
        let d = devnet.clone();
        let c = cancel.clone();
        tokio::spawn(async move {
            let _ = ntx_devnet::serve_devnet(d, 0, c, move |a, _| {
                let _ = ready.send(a);
            })
            .await;
        });
    }
    let addr = addr
        .await
        .map_err(|e| failed("the devnet")(e.to_string()))?;
    let url = format!("http://{addr}/api/v0");
    let chain: Arc<dyn ChainProvider> = Arc::new(
        Blockfrost::for_network(Network::Devnet, Some(&url))
            .map_err(|e| failed("the devnet")(e.to_string()))?,
    );
    step(started, format!("devnet up at {url} ({SLOT_MS} ms slots)"));

    // Wallets.
    let (_, requester) = key_file(&keys, "requester", 1)?;
    let (_, payout) = key_file(&keys, "provider-payout", 2)?;
    let (agent_key, agent) = key_file(&keys, "provider-agent", 3)?;
    let (_, cheat_payout) = key_file(&keys, "cheater-payout", 4)?;
    let (_, cheat_agent) = key_file(&keys, "cheater-agent", 5)?;
    let mut verifiers = Vec::new();
    for i in 0..3u8 {
        verifiers.push(key_file(&keys, &format!("verifier-{}", i + 1), 10 + i)?);
    }
    let ntx_asset = ntx_offchain::protocol::Asset {
        policy: *devnet.ntx_policy(),
        name: b"NTX".to_vec(),
    };
    let fund = |w: &Wallet, ada: u64, units: u64| {
        devnet
            .fund_now(&w.address().to_bech32(), ada * 1_000_000, units)
            .map(drop)
            .map_err(|e| failed("the faucet")(e.to_string()))
    };
    let jobs = usize::from(args.jobs);
    fund(&requester, 500, 100 * PRICE)?;
    fund(&agent, 100, 0)?;
    fund(&cheat_agent, 100, 0)?;
    for (_, v) in &verifiers {
        // For their offers' deposits and fees.
        fund(v, 20, 0)?;
    }
    step(
        started,
        "wallets: a requester, an honest provider, a cheating provider, three verifiers (keys in keys/)",
    );

    // The escrow.
    let info = EscrowClient::deploy(chain.clone(), Network::Devnet, &ntx_asset, &requester)
        .await?
        .info;
    let deployment_file = out.join("deployment.json");
    info.save(&deployment_file)?;
    let client = EscrowClient::connect(chain.clone(), &info).await?;
    step(
        started,
        format!("escrow deployed: script {}", info.script_hash),
    );

    // The model and the agents.
    let model = pick_model(&args, &out)?;
    step(started, format!("model: {}", model.name));
    let (llm_dir, llm_name) = pick_llm(&args, &out)?;
    step(started, format!("chat model: {llm_name}"));
    let agent_config = |name: &str, port: u16| AgentConfig {
        chain: ChainConfig {
            network: Network::Devnet,
            provider_url: Some(url.clone()),
        },
        deployment: deployment_file.clone(),
        state_dir: out.join("agents").join(name),
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        models: vec![model.dir.clone(), llm_dir.clone()],
        poll_interval_ms: 300,
        provider: None,
        verifier: None,
        // Every agent of the demo runs on this machine.
        operator_token: None,
        fetch: FetchConfig {
            allow_private_addresses: Some(true),
            ..FetchConfig::default()
        },
    };
    let mut configs = Vec::new();
    let provider_port = free_port()?;
    let mut provider = agent_config("provider", provider_port);
    provider.provider = Some(ProviderConfig {
        agent_key_file: agent_key.clone(),
        payout_address: payout.address().to_bech32(),
        price_floor: 0,
        max_concurrent_jobs: 2,
        public_url: format!("http://127.0.0.1:{provider_port}"),
        submit_margin_secs: 10,
        settle_warning_secs: 20,
        fast_path_secs: 20,
        policy: PolicyConfig {
            verifiers: verifiers
                .iter()
                .map(|(_, w)| hex::encode(w.public_key()))
                .collect(),
            any_live_verifier: false,
            min_threshold: 2,
            min_judge_window_secs: 30,
        },
        offer: OfferConfig {
            ttl_secs: 3600,
            embed_price: Some(PRICE),
            generate_price: Some(GENERATE_PRICE),
            generate_price_per_token: GENERATE_PRICE_PER_TOKEN,
            ..OfferConfig::default()
        },
    });
    configs.push(provider);
    let mut verifier_urls = Vec::new();
    for (i, (key, _)) in verifiers.iter().enumerate() {
        let port = free_port()?;
        let public_url = format!("http://127.0.0.1:{port}");
        let mut c = agent_config(&format!("verifier-{}", i + 1), port);
        c.verifier = Some(VerifierConfig {
            key_file: key.clone(),
            public_url: public_url.clone(),
            max_concurrent_jobs: 2,
            offer: OfferConfig {
                ttl_secs: 3600,
                ..OfferConfig::default()
            },
        });
        verifier_urls.push(public_url);
        configs.push(c);
    }
    let mut agents = Vec::new();
    for config in configs {
        let c = cancel.child_token();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(async move {
            ntx_node_agent::run_agent_with(config, c, move |a| {
                let _ = tx.send(a);
            })
            .await
        });
        rx.await.map_err(|_| {
            CliError::Failed("an agent stopped while starting (see its log above)".into())
        })?;
        agents.push(handle);
    }
    step(
        started,
        "agents running: 1 provider, 3 verifiers (2 of 3 must agree)",
    );

    // The market: the requester knows nothing but the deployment.
    let listing = wait_for_offers(&client, started).await?;
    let embed = choose(
        &listing,
        &Want {
            task: "embed".into(),
            verifiers: 3,
            ..Want::default()
        },
    )
    .map_err(|e| failed("choosing a provider")(e.to_string()))?;
    let generate = choose(
        &listing,
        &Want {
            task: "generate".into(),
            max_new_tokens: GENERATE_TOKENS,
            verifiers: 3,
            ..Want::default()
        },
    )
    .map_err(|e| failed("choosing a provider")(e.to_string()))?;
    step(
        started,
        format!(
            "chose provider {} (embed {} NTX, generate {} NTX for {GENERATE_TOKENS} tokens) and verifiers {} ({} of {} must agree)",
            embed.provider.offer.url,
            ntx(embed.price),
            ntx(generate.price),
            embed
                .verifiers
                .iter()
                .map(|v| v.offer.url.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            embed.threshold,
            embed.verifiers.len(),
        ),
    );

    // The jobs: the embeddings, each its own sentences, then the generate job,
    // then one more embedding that goes to the cheater.
    let now = client.slot_time(client.now_slot().await?);
    let mut requests = Vec::new();
    let offered = |c: &Choice| offered_party(c, client.network());
    let cheater = (
        Address::from(cheat_payout.address().as_pallas()),
        cheat_agent.key_hash(),
    );
    for i in 0..=jobs {
        let inputs: Vec<&str> = SENTENCES.iter().cycle().skip(i).take(3).copied().collect();
        let job = serde_json::json!({"task": "embed", "model": embed.task.model, "inputs": inputs});
        let to = if i < jobs { offered(&embed)? } else { cheater };
        requests.push(request(&requester, to, &embed, job, now)?);
        if i + 1 == jobs {
            let job = serde_json::json!({
                "task": "generate",
                "model": generate.task.model,
                "messages": [{"role": "user", "content": PROMPT}],
                "max_new_tokens": GENERATE_TOKENS,
                "decoding": {"mode": "greedy"},
            });
            requests.push(request(
                &requester,
                offered(&generate)?,
                &generate,
                job,
                now,
            )?);
        }
    }
    let split = client.split(&requester, requests.len(), 5_000_000).await?;
    client.send(&split, 1).await?;
    let lock = client.lock(&requester, requests).await?;
    client.send(&lock, 1).await?;
    let ids = lock.job_ids.clone();
    let generate_id = ids[jobs];
    let cheat_id = ids[jobs + 1];
    step(
        started,
        format!(
            "locked {} jobs in one transaction (fee {} ADA): {jobs} embeddings, generate job {}, and job {} for the cheater",
            ids.len(),
            super::common::ada(lock.fee()),
            short(&generate_id),
            short(&cheat_id)
        ),
    );

    // The cheater: a model with a layer missing, under the job's model hashes.
    let cheat_url = cheat(&client, &cheat_agent, &cheat_id, &model, &out).await?;
    step(
        started,
        format!("the cheater submitted a result from a wrong model (served at {cheat_url})"),
    );

    // Follow every job until it is settled.
    let mut states: Vec<&str> = vec!["locked"; ids.len()];
    let deadline = Instant::now() + PATIENCE;
    let mut refunded = false;
    loop {
        let mut open = 0;
        for (i, id) in ids.iter().enumerate() {
            let state = match client.escrow(id).await {
                Ok(e) => match e.datum.state {
                    JobState::Locked => "locked",
                    JobState::Submitted { .. } => "submitted",
                },
                Err(ntx_offchain::client::ClientError::NotAnEscrow(_)) => "settled",
                Err(e) => return Err(e.into()),
            };
            if state != "settled" {
                open += 1;
            }
            if state != states[i] {
                let who = if *id == cheat_id { " (cheater)" } else { "" };
                step(
                    started,
                    format!("job {}{who}: {} → {state}", short(id), states[i]),
                );
                states[i] = state;
            }
        }
        // The cheater's job: once two verifiers reject it, the requester takes the refund.
        if !refunded
            && let Ok(escrow) = client.escrow(&cheat_id).await
            && let JobState::Submitted { result_hash } = escrow.datum.state
        {
            let found = collect_attestations(client.fetcher(), &verifier_urls, &cheat_id).await;
            let tally = Tally::of(
                &found,
                &client.deployment().script.hash(),
                &cheat_id,
                &result_hash,
                &escrow.datum.verifiers,
            );
            if let Some(attestations) = tally.reject(2) {
                let (refund, _) = client
                    .settle(
                        &requester,
                        vec![(escrow, Settlement::RefundRejected { attestations })],
                    )
                    .await?;
                client.send(&refund, 1).await?;
                refunded = true;
                step(
                    started,
                    format!(
                        "two verifiers rejected the cheater's result: requester refunded (tx {})",
                        short(&refund.tx_id())
                    ),
                );
            }
        }
        if open == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(CliError::Failed(format!(
                "{open} job(s) still open after {PATIENCE:?}: see the agents' state in {}",
                out.join("agents").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The audit, from the chain alone.
    let history = audit::collect_history(
        chain.as_ref(),
        audit::Target::of(&client.deployment().script),
        Network::Devnet,
        audit::SlotRange::default(),
    )
    .await
    .map_err(|e| failed("the audit")(e.to_string()))?;
    let mut report = audit::check(&history, Network::Devnet);
    // Re-run every claimed and rejected job with the verifier's rule.
    let checker = super::audit::Recheck::new(
        chain.clone(),
        &[model.dir.clone(), llm_dir.clone()],
        AddressPolicy::AllowPrivate,
    )?;
    audit::recompute(&mut report, &checker).await;
    let html = out.join("audit.html");
    std::fs::write(&html, audit::render_html(&report))
        .map_err(|e| failed("the report")(e.to_string()))?;
    println!();
    print!("{}", audit::render_table(&report));
    // Each paid job's answer, fetched from the URL its Submit (or its fast-path
    // settlement) records and checked against the result hash on chain.
    println!();
    let mut answers = Vec::new();
    for job in report
        .jobs
        .iter()
        .filter(|j| j.outcome == audit::Outcome::Claimed)
    {
        let a = super::job::verified_answer(&client, job).await?;
        let what = match &a.answer {
            Answer::Generate { .. } => format!("{PROMPT:?} →"),
            Answer::Embed { .. } => "embeddings:".into(),
        };
        println!("answer {} {what} {}", &job.job_id[..12], a.answer.summary());
        answers.push(serde_json::json!({"job_id": job.job_id, "answer": a.answer}));
    }
    // (lovelace, settlement-asset units) at `w`'s address.
    let holdings = |w: &Wallet| -> (u64, u64) {
        devnet
            .utxos_at(&w.address().to_bytes())
            .unwrap_or_default()
            .iter()
            .filter_map(|(_, cbor)| ntx_offchain::tx::TxOutput::from_cbor(cbor).ok())
            .fold((0, 0), |(l, n), o| {
                (
                    l + o.value.lovelace,
                    n + o.value.quantity_of(&ntx_asset.policy, &ntx_asset.name),
                )
            })
    };
    let balance = |w: &Wallet| holdings(w).1;
    let lovelace = |w: &Wallet| holdings(w).0;
    // What each party should hold, from the lock transaction alone.
    let deposits: Vec<u64> = lock.finished.draft.outputs[..ids.len()]
        .iter()
        .map(|o| o.value.lovelace)
        .collect();
    let earned = embed.price * jobs as u64 + generate.price;
    let summary = serde_json::json!({
        "model": model.name,
        "jobs": ids.len(),
        "findings": report.findings.len(),
        "notes": report.notes,
        "audit_html": html.display().to_string(),
        "seconds": started.elapsed().as_secs_f64(),
        "provider": {"ntx_units": balance(&payout), "lovelace": lovelace(&payout),
                     "expected_ntx_units": earned,
                     "expected_lovelace": deposits[..=jobs].iter().sum::<u64>()},
        "cheater": {"ntx_units": balance(&cheat_payout), "lovelace": lovelace(&cheat_payout),
                    "expected_ntx_units": 0, "expected_lovelace": 0},
        "requester": {"ntx_units": balance(&requester),
                      "expected_ntx_units": 100 * PRICE - earned},
        "answers": answers,
        "outcomes": report.jobs.iter().map(|j| serde_json::json!({
            "job_id": j.job_id, "outcome": format!("{:?}", j.outcome)})).collect::<Vec<_>>(),
    });
    std::fs::write(out.join("summary.json"), format!("{summary:#}\n"))
        .map_err(|e| failed("the summary")(e.to_string()))?;
    println!();
    println!(
        "provider paid   {} NTX for {} job(s)",
        ntx(balance(&payout)),
        jobs + 1
    );
    println!("cheater paid    {} NTX", ntx(balance(&cheat_payout)));
    println!(
        "requester holds {} NTX of the {} it started with",
        ntx(balance(&requester)),
        ntx(100 * PRICE)
    );
    println!("audit report    {}", html.display());
    println!("summary         {}", out.join("summary.json").display());
    println!("done in {:.1}s", started.elapsed().as_secs_f64());
    cancel.cancel();
    for a in agents {
        let _ = a.await;
    }
    if report.findings.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "the audit found {} violation(s)",
            report.findings.len()
        )))
    }
}

fn short(id: &[u8; 32]) -> String {
    hex::encode(&id[..6])
}

/// Plays the cheating provider: computes `job_id` with a model missing a
/// layer, forges the header to name the job's model, serves the bytes and
/// submits their hash. Returns where the bytes are served.
async fn cheat(
    client: &EscrowClient,
    agent: &Wallet,
    job_id: &[u8; 32],
    model: &Model,
    out: &Path,
) -> Result<String, CliError> {
    let wrong_dir = out.join("cheater-model");
    write_tiny_bert(
        &wrong_dir,
        &TinyBert {
            layers: 1,
            ..TinyBert::default()
        },
    )
    .map_err(|e| failed("the cheater's model")(e.to_string()))?;
    let wrong =
        BertFiles::of_dir(&wrong_dir).map_err(|e| failed("the cheater's model")(e.to_string()))?;
    let escrow = client.escrow(job_id).await?;
    let mut spec = client.spec_doc(&escrow).await?;
    spec.job["model"] = model_json(&wrong);
    let job = JobSpec::from_json(&spec.job.to_string())
        .map_err(|e| failed("the cheater's job")(e.to_string()))?;
    let computed = tokio::task::spawn_blocking(move || {
        Engine::new(ntx_node_agent::Device::Cpu).compute(&job, &wrong_dir)
    })
    .await
    .map_err(|e| failed("the cheater")(e.to_string()))?
    .map_err(|e| failed("the cheater")(e.to_string()))?;
    let mut forged =
        EmbedResult::parse(&computed.bytes).map_err(|e| failed("the cheater")(e.to_string()))?;
    forged.header.model_hash = model.files.weights;
    forged.header.config_hash = model.files.config;
    forged.header.tokenizer_hash = model.files.tokenizer;
    let bytes = forged.to_bytes();
    let hash = blake2b_256(&bytes);
    let store = Store::open(&out.join("agents").join("cheater"))
        .map_err(|e| failed("the cheater")(e.to_string()))?;
    store
        .write_result(&hash, &bytes)
        .map_err(|e| failed("the cheater")(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| failed("the cheater")(e.to_string()))?;
    let base = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| failed("the cheater")(e.to_string()))?
    );
    let router = ntx_node_agent::agent_router(HttpState {
        store,
        script_hash: client.deployment().script.hash(),
        roles: vec!["provider"],
        operator_token: None,
        announcements: None,
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    let url = format!("{base}/results/{}", hex::encode(hash));
    let submit = client.submit(agent, &escrow, hash, &url).await?;
    client.send(&submit, 1).await?;
    Ok(url)
}

/// The offer's payout address and agent key hash: whom a job with this choice pays.
fn offered_party(choice: &Choice, network: Network) -> Result<(Address, [u8; 28]), CliError> {
    let offer = &choice.provider.offer;
    let payout = offer
        .payout
        .as_deref()
        .and_then(|p| ntx_offchain::wallet::PaymentAddress::parse(p, network).ok())
        .ok_or_else(|| CliError::Failed("the provider's offer has no payout address".into()))?;
    let agent = offer
        .key_hash()
        .map_err(|e| failed("the provider's offer")(e.to_string()))?;
    Ok((Address::from(payout.as_pallas()), agent))
}

/// A lock request: `job` for the party `to`, judged by `choice`'s verifiers at
/// `choice`'s price, due 60 s from `now` and settled within 60 s after.
fn request(
    requester: &Wallet,
    to: (Address, [u8; 28]),
    choice: &Choice,
    job: serde_json::Value,
    now: u64,
) -> Result<LockRequest, CliError> {
    let verifiers: Vec<serde_json::Value> = choice
        .verifiers
        .iter()
        .map(|v| serde_json::json!({"key": v.offer.key, "url": v.offer.url}))
        .collect();
    let doc = JobSpecDoc::parse(
        serde_json::json!({"version": 1, "job": job, "verifiers": verifiers})
            .to_string()
            .as_bytes(),
    )
    .map_err(|e| failed("the job spec")(e.to_string()))?;
    Ok(LockRequest {
        terms: JobTerms {
            requester: Address::from(requester.address().as_pallas()),
            provider: to.0,
            agent: to.1,
            spec_hash: doc
                .hash()
                .map_err(|e| failed("the job spec")(e.to_string()))?,
            price: choice.price,
            verifiers: doc.verifier_keys(),
            threshold: choice.threshold,
            submit_by: now + 60_000,
            settle_by: now + 120_000,
        },
        spec: SpecSource::Inline(
            doc.canonical_bytes()
                .map_err(|e| failed("the job spec")(e.to_string()))?,
        ),
    })
}

/// Polls the market until the provider and the three verifiers have live offers.
async fn wait_for_offers(client: &EscrowClient, started: Instant) -> Result<Listing, CliError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listing = client.market().await?;
        let providers = listing.of_role(OfferRole::Provider).count();
        let verifiers = listing.of_role(OfferRole::Verifier).count();
        if providers >= 1 && verifiers >= 3 {
            step(
                started,
                format!(
                    "market: {providers} provider and {verifiers} verifier offers on chain (one query of the registry)"
                ),
            );
            return Ok(listing);
        }
        if Instant::now() > deadline {
            return Err(CliError::Failed(format!(
                "the agents' offers did not appear within 30 s ({providers} provider, {verifiers} verifier offers)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The chat model's folder and its description.
fn pick_llm(args: &Args, out: &Path) -> Result<(PathBuf, String), CliError> {
    if let Some(dir) = &args.llm_dir {
        if !dir.join(ntx_node_agent::GGUF_FILE).is_file() {
            return Err(CliError::Usage(format!(
                "--llm-dir {}: no {} there: give the folder holding the chat model's GGUF file",
                dir.display(),
                ntx_node_agent::GGUF_FILE
            )));
        }
        return Ok((
            dir.clone(),
            format!("{} from {}", ntx_node_agent::GGUF_FILE, dir.display()),
        ));
    }
    let dir = out.join("tiny-llama");
    write_tiny_llama(&dir, &TinyLlama::default())
        .map_err(|e| failed("tiny chat model")(e.to_string()))?;
    Ok((
        dir,
        "the project's tiny llama (random weights; pass --llm-dir or set NTX_SMOLLM_DIR for SmolLM2)"
            .into(),
    ))
}
