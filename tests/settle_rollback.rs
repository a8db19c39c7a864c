//! `ntx settle` (the keeper) and a rollback of the block holding its Claim.
//!
//! The binary runs against a devnet served in this process (100 ms slots). Two jobs
//! are locked with `ntx job lock`, submitted by their agent, and accepted by two
//! verifiers whose attestations a small server hands out. A keeper runs
//! `ntx settle`; then the blocks from its Claim's block to the tip are rolled back
//! through the devnet's admin API (`POST /devnet/rollback`):
//!
//! - with `drop_txs` (the Claim is forgotten, as when a fork without it wins), the
//!   escrows are open again, and running `ntx settle` again claims them: the
//!   provider is paid exactly once, the keeper pays one fee, a third run finds
//!   nothing to do;
//! - without it (the Claim goes back to the mempool), the devnet puts the same
//!   Claim in a block again, and `ntx settle` then finds nothing to do.
//!
//! `ntx settle` has no watch mode: it settles what is due once and exits, so a
//! keeper re-runs it (from cron, say); these tests re-run it as that keeper would.
//!
//! And a Claim lost before any block holds it: a chain provider in front of the
//! devnet answers the first submission of each transaction with its id and drops
//! it (a node that accepted it into its mempool, then lost it: restarted, or rolled
//! back with it). `ntx settle` must send the same Claim again while it waits, and
//! land it once. (Before the fix it waited its full 300 s and failed.)
//!
//! Balances are read back through `ntx wallet balance`, to the lovelace and the unit.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ntx_node_agent::SignedAttestation;
use ntx_offchain::client::{DeploymentInfo, EscrowClient, RESEND_AFTER};
use ntx_offchain::protocol::{JobState, Verdict};
use ntx_offchain::wallet::Wallet;
use ntx_tests::LiveDevnet;
use serde_json::Value as Json;

struct Cli<'a> {
    dir: &'a Path,
    url: String,
}

impl Cli<'_> {
    /// Runs `ntx args… --json`, which must succeed.
    fn json(&self, args: &[&str]) -> Json {
        let out = Command::new(env!("CARGO_BIN_EXE_ntx"))
            .args(args)
            .arg("--json")
            .current_dir(self.dir)
            .env("NTX_PROVIDER_URL", &self.url)
            .env_remove("NTX_NETWORK")
            .env_remove("NTX_WALLET")
            .output()
            .expect("ntx runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ntx {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("ntx {args:?}: {e}: {stdout}"))
    }

    fn balance(&self, wallet: &str) -> (u64, u64) {
        let b = self.json(&["wallet", "balance", "--wallet", wallet]);
        (
            b["lovelace"].as_u64().expect("lovelace"),
            b["ntx_units"].as_u64().expect("units"),
        )
    }

    fn escrows(&self) -> Vec<Json> {
        self.json(&["job", "list"])["escrows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn fee(tx: &Json) -> u64 {
    tx["fee_lovelace"].as_u64().expect("a fee")
}

/// What the keeper sees: two submitted jobs with an accepting quorum each.
struct Setup {
    live: LiveDevnet,
    dir: tempfile::TempDir,
    /// The ADA the escrows hold (paid to the provider with the prices).
    deposits: u64,
    /// The prices together.
    prices: u64,
}

impl Setup {
    fn cli(&self) -> Cli<'_> {
        Cli {
            dir: self.dir.path(),
            url: self.live.url.clone(),
        }
    }

    async fn new() -> Setup {
        let live = LiveDevnet::start(100).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let cli = Cli {
            dir: dir.path(),
            url: live.url.clone(),
        };
        let mut keys = BTreeMap::new();
        for who in [
            "requester",
            "provider",
            "agent",
            "keeper",
            "verifier1",
            "verifier2",
        ] {
            keys.insert(
                who,
                cli.json(&["wallet", "new", "--out", &format!("{who}.skey")]),
            );
        }
        let addr = |who: &str| keys[who]["address"].as_str().expect("address").to_string();
        for (who, ada, ntx) in [
            ("requester", "300", "100"),
            ("agent", "50", "0"),
            ("keeper", "50", "0"),
        ] {
            cli.json(&["devnet", "fund", &addr(who), "--ada", ada, "--ntx", ntx]);
        }
        cli.json(&["deploy", "--wallet", "requester.skey"]);

        let server = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let verifier_url = format!("http://{}", server.local_addr().expect("addr"));
        let verifiers: Vec<Json> = ["verifier1", "verifier2"]
            .iter()
            .map(|v| serde_json::json!({"key": keys[v]["public_key"], "url": verifier_url}))
            .collect();
        let spec = serde_json::json!({
            "version": 1,
            "job": {"task": "embed", "inputs": ["hello"]},
            "verifiers": verifiers,
        });
        std::fs::write(dir.path().join("job.json"), spec.to_string()).expect("spec");
        let agent_hash = keys["agent"]["key_hash"]
            .as_str()
            .expect("hash")
            .to_string();
        let provider = addr("provider");

        let info =
            DeploymentInfo::load(&dir.path().join(".ntx/devnet/deployment.json")).expect("file");
        let client = EscrowClient::connect(live.chain.clone(), &info)
            .await
            .expect("connects");
        let wallet_of = |who: &str| {
            Wallet::from_secret_text(
                ntx_offchain::Network::Devnet,
                &std::fs::read_to_string(dir.path().join(format!("{who}.skey"))).expect("key"),
            )
            .expect("a wallet")
        };
        let agent = wallet_of("agent");
        let mut served = BTreeMap::new();
        let (mut deposits, mut prices) = (0, 0);
        for (price, result) in [("7", [0x99; 32]), ("5", [0x55; 32])] {
            let locked = cli.json(&[
                "job",
                "lock",
                "--wallet",
                "requester.skey",
                "--spec",
                "job.json",
                "--provider",
                &provider,
                "--agent",
                &agent_hash,
                "--price",
                price,
                "--submit-within",
                "10m",
                "--settle-within",
                "10m",
            ]);
            let job_id: [u8; 32] = hex::decode(locked["job_id"].as_str().expect("id"))
                .expect("hex")
                .try_into()
                .expect("32");
            let escrow = client.escrow(&job_id).await.expect("locked");
            let submit = client
                .submit(&agent, &escrow, result, "http://provider.invalid/r")
                .await
                .expect("submit builds");
            client.send(&submit, 1).await.expect("submitted");
            let escrow = client.escrow(&job_id).await.expect("submitted");
            assert!(matches!(escrow.datum.state, JobState::Submitted { .. }));
            deposits += escrow.utxo.output.value.lovelace;
            prices += price.parse::<u64>().expect("a price") * 1_000_000;
            let attestations: Vec<SignedAttestation> = ["verifier1", "verifier2"]
                .iter()
                .map(|v| {
                    SignedAttestation::sign(
                        &wallet_of(v),
                        Verdict::Accept,
                        client.deployment().script.hash(),
                        job_id,
                        result,
                    )
                })
                .collect();
            served.insert(
                hex::encode(job_id),
                serde_json::to_string(&attestations).expect("json"),
            );
        }
        let app = axum::Router::new().route(
            "/attestations/{job}",
            axum::routing::get(
                move |axum::extract::Path(job): axum::extract::Path<String>| {
                    let body = served.get(&job).cloned().unwrap_or_else(|| "[]".into());
                    async move { ([("content-type", "application/json")], body) }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(server, app).await });
        Setup {
            live,
            dir,
            deposits,
            prices,
        }
    }

    /// Runs `ntx settle` as the keeper; returns its transactions.
    fn settle(&self) -> Vec<Json> {
        self.cli().json(&["settle", "--wallet", "keeper.skey"])["transactions"]
            .as_array()
            .cloned()
            .expect("transactions")
    }

    /// Rolls back every block from `height` to the tip through the admin API.
    async fn roll_back_from(&self, height: u64, drop_txs: bool) {
        let tip = self.live.devnet.tip().height;
        assert!(tip >= height, "the tip {tip} is below block {height}");
        let root = self.live.url.trim_end_matches("/api/v0");
        let answer: Json = reqwest::Client::new()
            .post(format!("{root}/devnet/rollback"))
            .json(&serde_json::json!({"blocks": tip - height + 1, "drop_txs": drop_txs}))
            .send()
            .await
            .expect("the admin API answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(answer["rolled_back"], tip - height + 1, "{answer}");
        assert_eq!(answer["tip"]["height"], height - 1, "{answer}");
    }

    /// Whether `tx` (hex) is in a block.
    fn on_chain(&self, tx: &str) -> bool {
        let id: [u8; 32] = hex::decode(tx).expect("hex").try_into().expect("32");
        self.live
            .devnet
            .transaction(&id)
            .expect("the devnet answers")
            .is_some()
    }

    /// Transactions that paid the provider's address (it receives nothing else).
    fn payments_to_provider(&self) -> usize {
        let text = std::fs::read_to_string(self.dir.path().join("provider.skey")).expect("key");
        let provider =
            Wallet::from_secret_text(ntx_offchain::Network::Devnet, &text).expect("a wallet");
        self.live
            .devnet
            .address_transactions(&provider.address().to_bytes())
            .expect("the devnet answers")
            .len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_whose_claim_is_rolled_back_and_dropped_claims_again_once() {
    let s = Setup::new().await;
    let cli = s.cli();
    let keeper_before = cli.balance("keeper.skey");

    let first = s.settle();
    assert_eq!(first.len(), 1, "both claims in one transaction: {first:?}");
    let first_tx = first[0]["tx_id"].as_str().expect("tx id").to_string();
    let height = first[0]["block_height"].as_u64().expect("confirmed");
    assert_eq!(cli.balance("provider.skey"), (s.deposits, s.prices));

    // A fork without the Claim wins: its block and everything after are gone.
    s.roll_back_from(height, true).await;
    assert!(!s.on_chain(&first_tx), "the Claim is off the chain");
    assert_eq!(
        cli.balance("provider.skey"),
        (0, 0),
        "the payment is undone"
    );
    assert_eq!(cli.balance("keeper.skey"), keeper_before, "and the fee");
    let open = cli.escrows();
    assert_eq!(open.len(), 2, "both escrows are open again: {open:?}");
    assert!(open.iter().all(|e| e["state"] == "submitted"), "{open:?}");
    assert_eq!(s.live.devnet.mempool_len(), 0, "the Claim was dropped");

    // The keeper runs again, and converges.
    let second = s.settle();
    assert_eq!(second.len(), 1, "{second:?}");
    let second_tx = second[0]["tx_id"].as_str().expect("tx id").to_string();
    assert!(s.on_chain(&second_tx));
    assert_eq!(
        cli.balance("provider.skey"),
        (s.deposits, s.prices),
        "the provider is paid exactly once"
    );
    assert_eq!(s.payments_to_provider(), 1, "one payment on chain");
    assert_eq!(
        cli.balance("keeper.skey"),
        (keeper_before.0 - fee(&second[0]), 0),
        "the keeper pays one fee, for the Claim that stands"
    );
    assert!(cli.escrows().is_empty(), "no escrow is left");

    // Nothing more to do.
    assert!(s.settle().is_empty(), "a third run settles nothing");
    assert_eq!(cli.balance("provider.skey"), (s.deposits, s.prices));
    assert_eq!(s.payments_to_provider(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_whose_claim_returns_to_the_mempool_lands_once() {
    let s = Setup::new().await;
    let cli = s.cli();
    let keeper_before = cli.balance("keeper.skey");

    let first = s.settle();
    assert_eq!(first.len(), 1, "{first:?}");
    let first_tx = first[0]["tx_id"].as_str().expect("tx id").to_string();
    let height = first[0]["block_height"].as_u64().expect("confirmed");

    // Rolled back with its transactions returned to the mempool: the devnet's
    // clock puts the same Claim in a block again.
    s.roll_back_from(height, false).await;
    ntx_tests::agents::wait_for(
        "the returned Claim in a block again",
        Duration::from_secs(30),
        || async { s.on_chain(&first_tx).then_some(()) },
    )
    .await;
    assert!(s.settle().is_empty(), "nothing left to settle");
    assert_eq!(
        cli.balance("provider.skey"),
        (s.deposits, s.prices),
        "the provider is paid exactly once"
    );
    assert_eq!(s.payments_to_provider(), 1);
    assert_eq!(
        cli.balance("keeper.skey"),
        (keeper_before.0 - fee(&first[0]), 0)
    );
    assert!(cli.escrows().is_empty());
}

/// A chain provider in front of the devnet that drops the first submission of
/// each transaction, answering it with the transaction's id as if accepted.
struct LosingProxy {
    devnet: ntx_devnet::Devnet,
    /// The devnet's root (`http://127.0.0.1:port`).
    upstream: String,
    http: reqwest::Client,
    seen: Mutex<HashSet<[u8; 32]>>,
    lost: AtomicUsize,
    forwarded: AtomicUsize,
}

async fn losing_proxy_forward(
    axum::extract::State(proxy): axum::extract::State<Arc<LosingProxy>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if method == axum::http::Method::POST && path.ends_with("/tx/submit") {
        // The id of a transaction the ledger would accept now; anything else goes on.
        if let Ok(tx) = proxy.devnet.validate(&body) {
            let id: [u8; 32] = *tx.hash;
            let first = proxy
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id);
            if first {
                proxy.lost.fetch_add(1, Ordering::SeqCst);
                return axum::Json(serde_json::json!(hex::encode(id))).into_response();
            }
        }
        proxy.forwarded.fetch_add(1, Ordering::SeqCst);
    }
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("a method");
    let mut req = proxy
        .http
        .request(method, format!("{}{path}", proxy.upstream));
    if let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE) {
        req = req.header(reqwest::header::CONTENT_TYPE, ct.as_bytes());
    }
    let Ok(resp) = req.body(body.to_vec()).send().await else {
        return axum::http::StatusCode::BAD_GATEWAY.into_response();
    };
    let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).expect("a status");
    let bytes = resp.bytes().await.unwrap_or_default();
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_whose_claim_the_chain_loses_before_a_block_sends_it_again() {
    let s = Setup::new().await;
    let cli = s.cli();
    let keeper_before = cli.balance("keeper.skey");

    let upstream = s.live.url.trim_end_matches("/api/v0").to_string();
    let proxy = Arc::new(LosingProxy {
        devnet: s.live.devnet.clone(),
        upstream,
        http: reqwest::Client::new(),
        seen: Mutex::new(HashSet::new()),
        lost: AtomicUsize::new(0),
        forwarded: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_url = format!("http://{}/api/v0", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .fallback(losing_proxy_forward)
        .with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The keeper's `ntx settle`, through that provider, bounded in time.
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ntx"))
        .args(["settle", "--wallet", "keeper.skey", "--json"])
        .current_dir(s.dir.path())
        .env("NTX_PROVIDER_URL", &proxy_url)
        .env_remove("NTX_NETWORK")
        .env_remove("NTX_WALLET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ntx settle starts");
    let patience = RESEND_AFTER + Duration::from_secs(50);
    while child.try_wait().expect("the child").is_none() {
        if started.elapsed() > patience {
            let _ = child.kill();
            let out = child.wait_with_output().expect("its output");
            panic!(
                "ntx settle did not finish within {patience:?}: the lost Claim was not sent again\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output().expect("its output");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ntx settle failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let settled: Json = serde_json::from_str(&stdout).expect("JSON");
    let txs = settled["transactions"].as_array().expect("transactions");
    assert_eq!(txs.len(), 1, "{settled}");
    assert_eq!(
        proxy.lost.load(Ordering::SeqCst),
        1,
        "the Claim was lost once"
    );
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        1,
        "and sent once more"
    );
    assert!(s.on_chain(txs[0]["tx_id"].as_str().expect("tx id")));
    assert!(
        took >= RESEND_AFTER,
        "it waited before sending again: {took:?}"
    );
    assert_eq!(
        cli.balance("provider.skey"),
        (s.deposits, s.prices),
        "the provider is paid exactly once"
    );
    assert_eq!(s.payments_to_provider(), 1);
    assert_eq!(
        cli.balance("keeper.skey"),
        (keeper_before.0 - fee(&txs[0]), 0)
    );
    assert!(cli.escrows().is_empty());
    eprintln!("ntx settle landed its lost Claim in {took:.1?}");
}
