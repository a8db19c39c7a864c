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
//! These tests re-run the one-shot `ntx settle` as a keeper from cron would; one
//! runs `ntx settle --watch 1s` instead, which finds the reopened escrows by itself.
//!
//! And a Claim lost before any block holds it: a chain provider in front of the
//! devnet answers the first submission of each transaction with its id and drops
//! it (a node that accepted it into its mempool, then lost it: restarted, or rolled
//! back with it). `ntx settle` must send the same Claim again while it waits, and
//! land it once. (Before the fix it waited its full 300 s and failed.)
//!
//! Balances are read back through `ntx wallet balance`, to the lovelace and the unit.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ntx_offchain::client::{DeploymentInfo, EscrowClient, RESEND_AFTER};
use ntx_tests::LiveDevnet;
use ntx_tests::cli::{
    AttestationServer, Ntx, Process, fee, finish_within, lock_args, submit_result, wallet_in,
};
use ntx_tests::proxy::{Upstream, is_submit};
use serde_json::Value as Json;

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
    fn cli(&self) -> Ntx {
        Ntx::new(env!("CARGO_BIN_EXE_ntx"), self.dir.path(), &self.live.url)
    }

    async fn new() -> Setup {
        let live = LiveDevnet::start(100).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let cli = Ntx::new(env!("CARGO_BIN_EXE_ntx"), dir.path(), &live.url);
        let keys = cli.session_wallets();
        let addr = |who: &str| keys[who]["address"].as_str().expect("address").to_string();
        cli.json(&["deploy", "--wallet", "requester.skey"]);

        let mut server = AttestationServer::bind().await;
        server.write_spec(dir.path(), &keys, &["verifier1", "verifier2"]);
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
        let agent = wallet_in(dir.path(), "agent");
        let (mut deposits, mut prices) = (0, 0);
        for (price, result) in [("7", [0x99; 32]), ("5", [0x55; 32])] {
            let args = lock_args(&provider, &agent_hash, price, "10m", "10m");
            let locked = cli.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let job_id: [u8; 32] = hex::decode(locked["job_id"].as_str().expect("id"))
                .expect("hex")
                .try_into()
                .expect("32");
            let escrow = submit_result(&client, &agent, &job_id, result).await;
            deposits += escrow.utxo.output.value.lovelace;
            prices += price.parse::<u64>().expect("a price") * 1_000_000;
            server.accept(
                dir.path(),
                &["verifier1", "verifier2"],
                client.deployment().script.hash(),
                job_id,
                result,
            );
        }
        server.serve();
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
        let provider = wallet_in(self.dir.path(), "provider");
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

/// `ntx settle --watch 1s`, a keeper that keeps going: it claims both jobs, and
/// after a rollback drops its Claim it claims them again by itself; the provider
/// is paid once. SIGTERM stops it cleanly (exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_keeper_claims_again_after_a_rollback_drops_its_claim() {
    let s = Setup::new().await;
    let cli = s.cli();
    let mut keeper = Process::spawn(
        cli.command(&["settle", "--wallet", "keeper.skey", "--watch", "1s"]),
        s.dir.path().join("keeper.log"),
    );
    let paid = (s.deposits, s.prices);
    let patience = Duration::from_secs(60);
    ntx_tests::agents::wait_for("the watching keeper's Claim", patience, || async {
        (cli.balance("provider.skey") == paid).then_some(())
    })
    .await;
    let provider = wallet_in(s.dir.path(), "provider");
    let payments = s
        .live
        .devnet
        .address_transactions(&provider.address().to_bytes())
        .expect("the devnet answers");
    assert_eq!(payments.len(), 1, "one Claim: {payments:?}");
    let (claim, height, _) = payments[0];
    let claim: [u8; 32] = *claim;

    s.roll_back_from(height, true).await;
    assert!(
        !s.on_chain(&hex::encode(claim)),
        "the Claim is off the chain"
    );
    ntx_tests::agents::wait_for("a new Claim by the same keeper", patience, || async {
        (cli.balance("provider.skey") == paid && cli.escrows().is_empty()).then_some(())
    })
    .await;
    assert_eq!(s.payments_to_provider(), 1, "the provider is paid once");
    // The keeper reports its second Claim once it has seen it confirmed.
    ntx_tests::agents::wait_for("the keeper's report of its second Claim", patience, || {
        let reported = keeper.output().matches("settled 2 job(s)").count() == 2;
        async move { reported.then_some(()) }
    })
    .await;
    keeper.assert_running("the keeper after its rounds");

    let pid = keeper.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = ntx_tests::agents::wait_for("the keeper to stop", Duration::from_secs(20), || {
        let status = keeper.child.try_wait().expect("the child");
        async move { status }
    })
    .await;
    assert!(status.success(), "{status}: {}", keeper.output());
    let log = keeper.output();
    assert!(log.contains("keeper stopped"), "{log}");
}

/// A chain provider in front of the devnet that drops the first submission of
/// each transaction, answering it with the transaction's id as if accepted.
struct LosingProxy {
    devnet: ntx_devnet::Devnet,
    upstream: Upstream,
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
    if is_submit(&method, &uri) {
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
    match proxy.upstream.forward(&method, &uri, &headers, body).await {
        Some(answer) => answer.into_response(),
        None => axum::http::StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_whose_claim_the_chain_loses_before_a_block_sends_it_again() {
    let s = Setup::new().await;
    let cli = s.cli();
    let keeper_before = cli.balance("keeper.skey");

    let proxy = Arc::new(LosingProxy {
        devnet: s.live.devnet.clone(),
        upstream: Upstream::new(&s.live.url),
        seen: Mutex::new(HashSet::new()),
        lost: AtomicUsize::new(0),
        forwarded: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .fallback(losing_proxy_forward)
        .with_state(proxy.clone());
    let proxy_url = ntx_tests::proxy::serve(app).await;

    // The keeper's `ntx settle`, through that provider, bounded in time.
    let started = Instant::now();
    let child = cli
        .with_url(&proxy_url)
        .spawn(&["settle", "--wallet", "keeper.skey", "--json"]);
    let patience = RESEND_AFTER + Duration::from_secs(50);
    let out = finish_within(
        child,
        started,
        patience,
        "ntx settle (the lost Claim was not sent again?)",
        String::new,
    )
    .await;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
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
