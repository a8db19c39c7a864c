//! The HTTP API, through a plain HTTP client, as an outside Blockfrost client sees it.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use ntx_devnet::{Devnet, DevnetConfig};

/// GETs `url` and decodes its JSON body.
async fn get_json(http: &reqwest::Client, url: String) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// GETs `url`, whatever its status.
async fn get(http: &reqwest::Client, url: String) -> reqwest::Response {
    http.get(url).send().await.unwrap()
}

/// POSTs `cbor` to `url` as `application/cbor`, whatever the status.
async fn post_cbor(http: &reqwest::Client, url: String, cbor: Vec<u8>) -> reqwest::Response {
    http.post(url)
        .header("Content-Type", "application/cbor")
        .body(cbor)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_and_read_back_through_blockfrost_endpoints() {
    let d = Devnet::open(DevnetConfig::default()).unwrap();
    let served = Served::start(&d).await;
    let api = served.api;
    let base = format!("http://{api}/api/v0");
    let http = reqwest::Client::new();

    // Parameters.
    let p = get_json(&http, format!("{base}/epochs/latest/parameters")).await;
    assert_eq!(p["min_fee_a"], 44);
    assert_eq!(
        p["cost_models_raw"]["PlutusV3"].as_array().unwrap().len(),
        297
    );
    assert!(p["cost_models"]["PlutusV3"]["addInteger-cpu-arguments-intercept"].is_number());
    let g = get_json(&http, format!("http://{api}/genesis")).await;
    assert_eq!(g["network_magic"], 42);

    // A never-seen address has no UTxOs; an unknown tx is a Blockfrost 404.
    let stranger = bech32(&ntx_devnet::KeyPair::generate("x"));
    let r = get(&http, format!("{base}/addresses/{stranger}/utxos")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!([])
    );
    let r = get(&http, format!("{base}/txs/{}", "00".repeat(32))).await;
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status_code"], 404);
    assert_eq!(body["error"], "Not Found");

    // Submit a payment as application/cbor.
    let alice = d.key("alice").unwrap();
    let bob = d.key("bob").unwrap();
    let b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&bob), 4_000_000);
    let cbor = b.build(&d.params(), &[&alice]);
    let r = post_cbor(&http, format!("{base}/tx/submit"), cbor.clone()).await;
    assert_eq!(r.status(), 200);
    let hash: String = r.json().await.unwrap();
    // A rejected submission is a 400 naming the rule.
    let r = post_cbor(&http, format!("{base}/tx/submit"), cbor.clone()).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("BadInputsUTxO"),
        "{body}"
    );

    // Produce a block through the admin API and read everything back.
    let r = http
        .post(format!("http://{api}/devnet/block"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = get_json(&http, format!("{base}/txs/{hash}")).await;
    assert_eq!(t["hash"], hash);
    assert_eq!(t["block_height"], 1);
    assert!(t["fees"].is_string());
    let c = get_json(&http, format!("{base}/txs/{hash}/cbor")).await;
    assert_eq!(c["cbor"], hex::encode(&cbor));
    let u = get_json(&http, format!("{base}/txs/{hash}/utxos")).await;
    assert_eq!(
        u["outputs"][0]["amount"][0],
        serde_json::json!({"unit": "lovelace", "quantity": "4000000"})
    );
    let bob_bech = bech32(&bob);
    let utxos = get_json(&http, format!("{base}/addresses/{bob_bech}/utxos")).await;
    assert!(
        utxos
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["tx_hash"] == hash && u["output_index"] == 0)
    );
    let latest = get_json(&http, format!("{base}/blocks/latest")).await;
    assert_eq!(latest["height"], 1);

    // Fund through the admin API (NTX minted under the devnet policy).
    let r = http
        .post(format!("http://{api}/devnet/fund"))
        .json(&serde_json::json!({"address": stranger, "lovelace": 3_000_000, "ntx": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    http.post(format!("http://{api}/devnet/block"))
        .send()
        .await
        .unwrap();
    let unit = d.status().ntx_unit;
    let utxos = get_json(
        &http,
        format!("http://{api}/addresses/{stranger}/utxos/{unit}"),
    )
    .await;
    assert_eq!(utxos.as_array().unwrap().len(), 1);

    served.stop().await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_transactions_take_blockfrost_order_and_block_bounds() {
    let d = Devnet::open(DevnetConfig::default()).unwrap();
    let served = Served::start(&d).await;
    let api = served.api;
    let key = ntx_devnet::KeyPair::generate("bounds");
    let who = bech32(&key);
    // Blocks 1, 2, 3 with two transactions each.
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(d.fund(&who, 2_000_000, 0).unwrap().to_string());
        ids.push(d.fund(&who, 2_000_000, 0).unwrap().to_string());
        d.produce_block().unwrap();
    }
    let http = reqwest::Client::new();
    let get = |q: &str| {
        let url = format!("http://{api}/api/v0/addresses/{who}/transactions{q}");
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let hashes = |j: &serde_json::Value| -> Vec<String> {
        j.as_array()
            .unwrap()
            .iter()
            .map(|t| t["tx_hash"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = get("").await;
    let mut funded = ids.clone();
    funded.sort();
    let mut listed = hashes(&all);
    listed.sort();
    assert_eq!(listed, funded, "every funding transaction, once");
    assert_eq!(all[0]["block_height"], 1);
    assert_eq!(all[5]["block_height"], 3);
    let (_, desc) = get("?order=desc").await;
    let mut reversed = hashes(&all);
    reversed.reverse();
    assert_eq!(hashes(&desc), reversed);
    let (_, middle) = get("?from=2&to=2").await;
    assert_eq!(hashes(&middle), hashes(&all)[2..4].to_vec());
    let (_, from_index) = get("?from=2:1").await;
    assert_eq!(hashes(&from_index), hashes(&all)[3..].to_vec());
    let (_, paged) = get("?from=1&count=2&page=2").await;
    assert_eq!(hashes(&paged), hashes(&all)[2..4].to_vec());
    let (status, _) = get("?from=x").await;
    assert_eq!(status, 400);
    let (status, _) = get("?order=sideways").await;
    assert_eq!(status, 400);
    served.stop().await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_written_only_inside_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = Devnet::open(DevnetConfig {
        data_dir: Some(dir.path().join("chain")),
        ..DevnetConfig::default()
    })
    .unwrap();
    let served = Served::start(&d).await;
    let url = format!("http://{}/devnet/snapshot", served.api);
    let http = reqwest::Client::new();
    let outside = dir.path().join("outside.db");
    for body in [
        serde_json::json!({"path": outside}),
        serde_json::json!({"name": "../outside"}),
        serde_json::json!({"name": outside}),
        serde_json::json!({"name": ".hidden"}),
        serde_json::json!({"name": ""}),
    ] {
        let r = http.post(&url).json(&body).send().await.unwrap();
        assert!(r.status().is_client_error(), "{body} → {}", r.status());
    }
    assert!(!outside.exists());
    let r = http
        .post(&url)
        .json(&serde_json::json!({"name": "before-upgrade"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let written = dir.path().join("chain/snapshots/before-upgrade.db");
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["path"], written.display().to_string());
    assert!(written.is_file());
    let again = http
        .post(&url)
        .json(&serde_json::json!({"name": "before-upgrade"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        400,
        "an existing snapshot is not overwritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reward_accounts_are_served_and_can_be_paid_into() {
    let d = Devnet::open(DevnetConfig::default()).unwrap();
    let served = Served::start(&d).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", served.api);
    // A never-registered account is a Blockfrost 404; paying into it is refused.
    let stranger = pallas_addresses::StakeAddress::new(
        pallas_addresses::Network::Testnet,
        pallas_addresses::StakePayload::Stake([9u8; 28].into()),
    )
    .to_bech32()
    .unwrap();
    let r = get(&http, format!("{base}/api/v0/accounts/{stranger}")).await;
    assert_eq!(r.status(), 404);
    let r = http
        .post(format!("{base}/devnet/rewards"))
        .json(&serde_json::json!({"stake_address": stranger, "lovelace": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = get(&http, format!("{base}/api/v0/accounts/not-an-address")).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policys_assets_and_their_holders_are_listed() {
    let d = Devnet::open(DevnetConfig::default()).unwrap();
    let carol = ntx_devnet::KeyPair::generate("carol");
    d.fund_now(&bech32(&carol), 3_000_000, 42).unwrap();
    let served = Served::start(&d).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}/api/v0", served.api);
    let unit = d.status().ntx_unit;
    let policy = &unit[..56];
    let assets = get_json(&http, format!("{base}/assets/policy/{policy}")).await;
    let listed = assets.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{assets}");
    assert_eq!(listed[0]["asset"], unit.as_str());
    let holders = get_json(&http, format!("{base}/assets/{unit}/addresses")).await;
    let carols = holders
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["address"] == bech32(&carol).as_str())
        .unwrap_or_else(|| panic!("carol holds NTX: {holders}"));
    assert_eq!(carols["quantity"], "42");
    let r = get(&http, format!("{base}/assets/policy/not-hex")).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blockfrost_fields_and_routes_clients_call() {
    let d = Devnet::open(DevnetConfig::default()).unwrap();
    let served = Served::start(&d).await;
    let api = served.api;
    let base = format!("http://{api}/api/v0");
    let http = reqwest::Client::new();
    let alice = d.key("alice").unwrap();
    let bob = d.key("bob").unwrap();
    let b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&bob), 4_000_000);
    let hash = d.submit(&b.build(&d.params(), &[&alice])).unwrap();
    d.produce_block().unwrap();

    // 64 hex digits are a hash, never height 0; a height still works.
    let zeros = "0".repeat(64);
    assert_eq!(
        get(&http, format!("{base}/blocks/{zeros}")).await.status(),
        404
    );
    assert_eq!(
        get_json(&http, format!("{base}/blocks/0")).await["height"],
        0
    );
    // The epoch's fees and output are the blocks' sums.
    let epoch = get_json(&http, format!("{base}/epochs/latest")).await;
    assert_ne!(epoch["fees"], "0", "{epoch}");
    assert_ne!(epoch["output"], "0", "{epoch}");
    assert_eq!(epoch["block_count"], 1, "{epoch}");
    // Fields the OpenAPI schema requires.
    let p = get_json(&http, format!("{base}/epochs/latest/parameters")).await;
    assert!(!p["pvtpp_security_group"].is_null(), "{p}");
    let t = get_json(&http, format!("{base}/txs/{hash}")).await;
    assert_eq!(t["treasury_donation"], "0");
    // UTxOs by payment credential (Lucid's utxosAt(credential)), and order=desc.
    let vkh = bech32::encode::<bech32::Bech32>(
        bech32::Hrp::parse("addr_vkh").unwrap(),
        &addr(&bob)[1..29],
    )
    .unwrap();
    let by_credential = get_json(&http, format!("{base}/addresses/{vkh}/utxos")).await;
    let list = by_credential.as_array().unwrap();
    assert!(
        list.iter().any(|u| u["tx_hash"] == hash.to_string()),
        "{by_credential}"
    );
    let asc = get_json(&http, format!("{base}/addresses/{}/utxos", bech32(&alice))).await;
    let desc = get_json(
        &http,
        format!("{base}/addresses/{}/utxos?order=desc", bech32(&alice)),
    )
    .await;
    let mut reversed = asc.as_array().unwrap().clone();
    reversed.reverse();
    assert_eq!(&reversed, desc.as_array().unwrap());
    assert_eq!(
        get(&http, format!("{base}/addresses/{vkh}/utxos?order=up"))
            .await
            .status(),
        400
    );
    // Liveness, supply, and Yaci DevKit's faucet.
    assert_eq!(
        get_json(&http, format!("{base}/health")).await["is_healthy"],
        true
    );
    let n = get_json(&http, format!("{base}/network")).await;
    assert!(
        n["supply"]["circulating"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    let carol = ntx_devnet::KeyPair::generate("carol");
    let r = http
        .post(format!("http://{api}/local-cluster/api/addresses/topup"))
        .json(&serde_json::json!({"address": bech32(&carol), "adaAmount": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let utxos = get_json(&http, format!("{base}/addresses/{}/utxos", bech32(&carol))).await;
    assert_eq!(
        utxos[0]["amount"][0],
        serde_json::json!({"unit": "lovelace", "quantity": "7000000"})
    );
}

/// A mempool has a node's capacity (two blocks' worth); a submission that does
/// not fit is Blockfrost's 425 "Mempool Full", and fits again after a block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mempool_answers_425_until_a_block_makes_room() {
    let payments = |d: &Devnet| -> Vec<Vec<u8>> {
        let keys: Vec<_> = ["alice", "bob", "carol"]
            .iter()
            .map(|k| d.key(k).unwrap())
            .collect();
        (0..3)
            .map(|i| {
                let (from, to) = (&keys[i], &keys[(i + 1) % 3]);
                payment(d, from, first_utxo(d, from), &addr(to), 2_000_000)
                    .build(&d.params(), &[from])
            })
            .collect()
    };
    // Blocks of one payment, so a mempool of two.
    let d = devnet_with_blocks_of_one(genesis_with_carol(), payments);
    let served = Served::start(&d).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/v0/tx/submit", served.api);
    let txs = payments(&d);
    for tx in &txs[..2] {
        assert_eq!(
            post_cbor(&http, url.clone(), tx.clone()).await.status(),
            200
        );
    }
    let r = post_cbor(&http, url.clone(), txs[2].clone()).await;
    assert_eq!(r.status(), 425);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "Mempool Full", "{body}");
    d.produce_block().unwrap();
    assert_eq!(post_cbor(&http, url, txs[2].clone()).await.status(), 200);
}
