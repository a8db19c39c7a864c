//! The `ntx` binary against a devnet served in this process: a requester's
//! whole session, a keeper's settle, and bad input refused with exit code 2
//! and nothing submitted. Balances are read back through `ntx wallet balance`.

use ntx_offchain::client::{DeploymentInfo, EscrowClient};
use ntx_tests::LiveDevnet;
use ntx_tests::cli::{AttestationServer, Ntx, fee, lock_args, submit_result, wallet_in};

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requesters_session_and_a_keepers_settle_through_the_binary() {
    let live = LiveDevnet::start(100).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = Ntx::new(env!("CARGO_BIN_EXE_ntx"), dir.path(), &live.url);
    let keys = cli.session_wallets();
    let addr = |who: &str| keys[who]["address"].as_str().expect("address").to_string();
    let deployed = cli.json(&["deploy", "--wallet", "requester.skey"]);
    assert!(deployed["script_ref"].as_str().is_some());
    cli.refused(
        &["deploy", "--wallet", "requester.skey"],
        "already has a deployment",
    );

    // A spec naming two verifiers, served by a small attestation server.
    let mut server = AttestationServer::bind().await;
    server.write_spec(dir.path(), &keys, &["verifier1", "verifier2"]);
    let agent_hash = keys["agent"]["key_hash"]
        .as_str()
        .expect("hash")
        .to_string();
    let provider = addr("provider");
    let lock_args = |price: &str, within: &str| -> Vec<String> {
        lock_args(&provider, &agent_hash, price, within, "5m")
    };

    // Bad input: exit code 2, one line, nothing submitted.
    let before = cli.balance("requester.skey");
    cli.refused(&strs(&lock_args("0", "2m")), "above zero");
    cli.refused(&strs(&lock_args("-3", "2m")), "not an NTX amount");
    cli.refused(&strs(&lock_args("1.0000001", "2m")), "decimals");
    cli.refused(&strs(&lock_args("1", "soon")), "not a duration");
    cli.refused(&strs(&lock_args("1000", "2m")), "fund the wallet");
    let mut bad_provider = lock_args("1", "2m");
    bad_provider[7] = "addr_test1notanaddress".into();
    cli.refused(&strs(&bad_provider), "--provider");
    let mut mainnet_provider = lock_args("1", "2m");
    mainnet_provider[7] = "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8".into();
    cli.refused(&strs(&mainnet_provider), "--provider");
    cli.refused(&["job", "show", "nope"], "not a job id");
    cli.refused(&["job", "show", &"ab".repeat(32)], "not an escrow");
    cli.refused(&["--network", "mainnet", "job", "list"], "ntx deploy");
    let keeper = ["settle", "--wallet", "requester.skey", "--watch"];
    cli.refused(&[&keeper[..], &["0s"]].concat(), "not a duration");
    cli.refused(&[&keeper[..], &["often"]].concat(), "not a duration");
    cli.refused(&[&keeper[..], &["30s", "--dry-run"]].concat(), "--dry-run");
    let (code, _, _) = cli.run(&["--network", "moon", "job", "list"]);
    assert_eq!(code, 2, "an unknown network is a usage error");
    assert_eq!(cli.balance("requester.skey"), before, "nothing was spent");

    // Lock, then refund after the deadline passes (devnet time travel).
    let locked = cli.json(&strs(&lock_args("12.5", "1m")));
    let job = locked["job_id"].as_str().expect("job id").to_string();
    let shown = cli.json(&["job", "show", &job]);
    assert_eq!(shown["state"], "locked");
    assert_eq!(shown["price_units"], 12_500_000);
    let deposit = shown["deposit_lovelace"].as_u64().expect("deposit");
    let listed = cli.json(&["job", "list"]);
    assert_eq!(listed["escrows"].as_array().map(Vec::len), Some(1));
    let after_lock = cli.balance("requester.skey");
    // (The first lock also made a collateral UTxO: compare from here on.)
    cli.refused(
        &["job", "refund", &job, "--wallet", "requester.skey"],
        "not refundable yet",
    );
    cli.json(&["devnet", "advance", "2m"]);
    let dry = cli.json(&[
        "job",
        "refund",
        &job,
        "--wallet",
        "requester.skey",
        "--dry-run",
    ]);
    assert_eq!(dry["submitted"], false);
    let unsigned = hex::decode(dry["cbor_hex"].as_str().expect("cbor")).expect("hex");
    let refused = live
        .chain
        .submit(&unsigned)
        .await
        .expect_err("nobody signed it");
    assert!(refused.to_string().contains("itness"), "{refused}");
    assert_eq!(
        cli.balance("requester.skey"),
        after_lock,
        "a dry run submits nothing"
    );
    let refund = cli.json(&["job", "refund", &job, "--wallet", "requester.skey"]);
    assert_eq!(
        cli.balance("requester.skey"),
        (
            after_lock.0 + deposit - fee(&refund),
            after_lock.1 + 12_500_000
        )
    );

    // Cancel: the requester and the agent sign.
    // A 2-NTX job due in 10 minutes: its id and ADA deposit.
    let lock_two = || -> (String, u64) {
        let locked = cli.json(&strs(&lock_args("2", "10m")));
        let job = locked["job_id"].as_str().expect("job id").to_string();
        let deposit = cli.json(&["job", "show", &job])["deposit_lovelace"]
            .as_u64()
            .expect("d");
        (job, deposit)
    };
    let (job, deposit) = lock_two();
    let before = cli.balance("requester.skey");
    cli.refused(
        &["job", "cancel", &job, "--wallet", "requester.skey"],
        "--agent-key",
    );
    let cancel = cli.json(&[
        "job",
        "cancel",
        &job,
        "--wallet",
        "requester.skey",
        "--agent-key",
        "agent.skey",
    ]);
    assert_eq!(
        cli.balance("requester.skey"),
        (before.0 + deposit - fee(&cancel), before.1 + 2_000_000)
    );

    // The same Cancel signed offline: written by the requester, signed by the
    // requester and then by the agent (two machines), submitted from a file.
    let (job, deposit) = lock_two();
    let before = cli.balance("requester.skey");
    let written = cli.json(&[
        "job",
        "cancel",
        &job,
        "--wallet",
        "requester.skey",
        "--out-file",
        "cancel.json",
    ]);
    assert_eq!(written["submitted"], false);
    cli.json(&[
        "tx",
        "sign",
        "--tx-file",
        "cancel.json",
        "--signing-key-file",
        "requester.skey",
        "--out-file",
        "cancel.requester.json",
    ]);
    let (code, _, err) = cli.run(&["tx", "submit", "--tx-file", "cancel.requester.json"]);
    assert_ne!(code, 0, "the agent has not signed yet");
    assert!(err.contains("itness"), "{err}");
    let signed = cli.json(&[
        "tx",
        "sign",
        "--tx-file",
        "cancel.requester.json",
        "--signing-key-file",
        "agent.skey",
        "--out-file",
        "cancel.signed.json",
    ]);
    assert_eq!(signed["tx_id"], written["tx_id"], "signing keeps the id");
    let submitted = cli.json(&["tx", "submit", "--tx-file", "cancel.signed.json"]);
    assert_eq!(submitted["tx_id"], written["tx_id"]);
    assert_eq!(
        cli.balance("requester.skey"),
        (before.0 + deposit - fee(&written), before.1 + 2_000_000),
        "the offline Cancel refunded the requester"
    );

    // A keeper settles a claim: the provider is paid, the keeper pays the fee.
    let locked = cli.json(&strs(&lock_args("7", "10m")));
    let job_id: [u8; 32] = hex::decode(locked["job_id"].as_str().expect("id"))
        .expect("hex")
        .try_into()
        .expect("32");
    let info = DeploymentInfo::load(&dir.path().join(".ntx/devnet/deployment.json")).expect("file");
    let client = EscrowClient::connect(live.chain.clone(), &info)
        .await
        .expect("connects");
    let agent = wallet_in(dir.path(), "agent");
    let escrow = submit_result(&client, &agent, &job_id, [0x99; 32]).await;
    let deposit = escrow.utxo.output.value.lovelace;
    server.accept(
        dir.path(),
        &["verifier1", "verifier2"],
        client.deployment().script.hash(),
        job_id,
        [0x99; 32],
    );
    server.serve();

    let keeper_before = cli.balance("keeper.skey");
    let settled = cli.json(&["settle", "--wallet", "keeper.skey"]);
    let txs = settled["transactions"].as_array().expect("transactions");
    assert_eq!(txs.len(), 1, "{settled}");
    assert_eq!(
        cli.balance("keeper.skey"),
        (keeper_before.0 - fee(&txs[0]), 0)
    );
    assert_eq!(cli.balance("provider.skey"), (deposit, 7_000_000));
    assert!(cli.escrows().is_empty());
}

#[test]
fn the_version_names_the_escrow_script_and_completions_cover_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = Ntx::new(env!("CARGO_BIN_EXE_ntx"), dir.path(), "http://127.0.0.1:9");
    let (code, version, _) = cli.run(&["--version"]);
    assert_eq!(code, 0);
    let script = ntx_offchain::Blueprint::embedded()
        .escrow(&ntx_offchain::protocol::Asset::mainnet_ntx())
        .expect("the embedded escrow");
    assert!(version.contains(&hex::encode(script.hash())), "{version}");
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = cli.run(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        for command in ["deploy", "job", "settle", "audit", "tx", "completions"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    let (code, _, err) = cli.run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
}

/// `ntx bench contract --json` reports the fees per job on both paths, and every
/// measured transaction (the 50-claim batches included) fits mainnet's limits.
#[test]
fn the_contract_bench_reports_fees_per_job_within_the_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = Ntx::new(env!("CARGO_BIN_EXE_ntx"), dir.path(), "http://127.0.0.1:9");
    let report = cli.json(&["bench", "contract"]);
    let per_job = &report["per_job"];
    let fee = |k: &str| {
        per_job[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {per_job}"))
    };
    let fast = fee("fast_unbatched_lovelace");
    let slow = fee("slow_unbatched_lovelace");
    assert!(fast < slow, "two transactions cost less than three");
    assert!(fee("fast_batched_lovelace") < fast);
    assert!(fee("slow_batched_lovelace") < slow);
    assert!(fee("fast_batched_lovelace") < fee("slow_batched_lovelace"));
    let limit = &report["max_tx_ex_units"];
    for row in report["transactions"]
        .as_array()
        .into_iter()
        .chain(report["batches"].as_array())
        .flatten()
    {
        assert!(row["tx_bytes"].as_u64() <= Some(16_384), "{row}");
        assert!(row["mem"].as_u64() <= limit["mem"].as_u64(), "{row}");
        assert!(row["steps"].as_u64() <= limit["steps"].as_u64(), "{row}");
    }
    let names: Vec<&str> = report["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.iter().any(|n| n.contains("50 fast claims")),
        "{names:?}"
    );
}
