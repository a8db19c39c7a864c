//! Lock → payout latency of the node agent on a devnet with 1-second slots.
//!
//! One provider and three verifiers (2-of-3), each a real agent (`run_agent`) with its
//! own SQLite state and HTTP server, polling the chain every `POLL_MS`; the devnet is
//! served over HTTP in-process with a running clock. For each job: lock (confirmed),
//! then time until the escrow shows the result (Submit on chain) and until the
//! provider's payout address holds the price. Jobs run one after the other.
//!
//! ```sh
//! cargo bench -p ntx-tests --bench agent_latency            # tiny BERT, 5 jobs
//! NTX_BENCH_JOBS=10 NTX_MINILM_DIR=~/.cache/ntx-escrow/all-minilm-l6-v2 \
//!   cargo bench -p ntx-tests --bench agent_latency          # all-MiniLM-L6-v2
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ntx_node_agent::BertFiles;
use ntx_offchain::Network;
use ntx_offchain::protocol::JobState;
use ntx_offchain::wallet::{SigningKey, Wallet};
use ntx_tests::LiveDevnet;
use ntx_tests::agents::{
    Agent, AgentToml, ProviderToml, embed_spec, free_port, lock_one, tiny_bert_in, two_of_n_lock,
    verifier_keys,
};

const SLOT_MS: u64 = 1000;
const POLL_MS: u64 = 500;
const PRICE: u64 = 5_000_000;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let jobs: usize = std::env::var("NTX_BENCH_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let live = LiveDevnet::start(SLOT_MS).await;
    let (info, client) = live.deploy().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = dir.path().join("deployment.json");
    info.save(&deployment).expect("saved");

    let (model_dir, model_name) = match std::env::var_os("NTX_MINILM_DIR") {
        Some(d) if Path::new(&d).join("model.safetensors").is_file() => {
            (PathBuf::from(d), "all-MiniLM-L6-v2")
        }
        _ => (
            tiny_bert_in(dir.path()).0,
            "tiny BERT (set NTX_MINILM_DIR for all-MiniLM-L6-v2)",
        ),
    };
    let model = BertFiles::of_dir(&model_dir).expect("model hashes");

    let requester = live.wallet(2, 1000, 100 * PRICE);
    let payout = live.wallet(3, 0, 0);
    let agent_key = SigningKey::from_normal_bytes(&[4; 32]);
    let agent = Wallet::new(Network::Devnet, agent_key.clone(), None);
    live.devnet
        .fund_now(&agent.address().to_bech32(), 200_000_000, 0)
        .expect("agent funded");
    let verifier_keys = verifier_keys(3);
    let verifier_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut toml = AgentToml::new(&deployment, dir.path(), &model_dir, live.url.clone());
    toml.poll_interval_ms = POLL_MS;
    let mut agents: Vec<Agent> = verifier_keys
        .iter()
        .zip(&verifier_ports)
        .enumerate()
        .map(|(i, (key, port))| Agent::start(toml.verifier(i, key, *port)))
        .collect();
    let provider = ProviderToml::sole(&agent_key, free_port(), &payout, PRICE);
    agents.push(Agent::start(toml.provider(&provider)));

    println!(
        "lock → payout on a devnet with {SLOT_MS} ms slots, agents polling every {POLL_MS} ms, 1 provider + 3 verifiers (2-of-3), model: {model_name}"
    );
    println!("| job | lock → submit on chain (s) | submit → payout (s) | lock → payout (s) |");
    println!("|---|---|---|---|");
    let (mut to_submit, mut to_paid, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..jobs {
        let first = format!("Benchmark sentence number {n}.");
        let spec = embed_spec(
            &model,
            &verifier_keys,
            &verifier_ports,
            &[first.as_str(), "A man is eating food."],
        );
        let now = client.slot_time(client.now_slot().await.expect("now"));
        let request = two_of_n_lock(
            &requester,
            &payout,
            agent.key_hash(),
            &verifier_keys,
            &spec,
            PRICE,
            (now + 300_000, now + 600_000),
        );
        let before = live.balance(&payout).1;
        let job_id = lock_one(&client, &requester, request, |_| {}).await;
        let locked = Instant::now();
        let mut submitted = None;
        loop {
            if submitted.is_none()
                && let Ok(e) = client.escrow(&job_id).await
                && matches!(e.datum.state, JobState::Submitted { .. })
            {
                submitted = Some(locked.elapsed());
            }
            if live.balance(&payout).1 == before + PRICE {
                break;
            }
            assert!(
                locked.elapsed() < Duration::from_secs(300),
                "job {n} was not paid within 300 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let paid = locked.elapsed().as_secs_f64();
        let sub = submitted.map_or(f64::NAN, |d| d.as_secs_f64());
        println!("| {n} | {sub:.2} | {:.2} | {paid:.2} |", paid - sub);
        to_submit.push(sub);
        to_paid.push(paid - sub);
        total.push(paid);
    }
    println!(
        "| median | {:.2} | {:.2} | {:.2} |",
        median(&mut to_submit),
        median(&mut to_paid),
        median(&mut total)
    );
    for a in &mut agents {
        a.stop().await;
    }
}
