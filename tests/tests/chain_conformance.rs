//! One set of assertions, run against both chain providers over the same
//! devnet: the Blockfrost client talking HTTP to the devnet's server, and
//! `DevnetChain` reading the devnet in process. Whatever one answers, the
//! other must answer too.

#[path = "chain_conformance/csl_oracle.rs"]
mod csl_oracle;

use std::time::Duration;

use ntx_devnet::{Devnet, DevnetConfig, KeyPair};
use ntx_offchain::Network;
use ntx_offchain::chain::{AwaitOptions, BlockRange, Blockfrost, ChainError, ChainProvider};
use ntx_offchain::protocol::OutputReference;
use ntx_offchain::tx::{Datum, Draft, TxOutput, Value};
use ntx_tests::{Blocks, DevnetChain};
use pallas_addresses::Address;
use pallas_primitives::Metadatum;
use tokio_util::sync::CancellationToken;

/// Runs every assertion against `p`. `confirm` puts what was submitted in a
/// block (for a provider that does not do it itself).
/// Returns the address it funded and paid from.
async fn conformance(
    p: &dyn ChainProvider,
    devnet: &Devnet,
    name: &str,
    confirm: &dyn Fn(),
) -> Address {
    // Parameters, tip and slots are the devnet's.
    let pp = p.protocol_params().await.expect("params");
    let dp = devnet.params();
    assert_eq!(
        (
            pp.fee_params().min_fee_a,
            pp.fee_params().min_fee_b,
            pp.key_deposit
        ),
        (dp.min_fee_a, dp.min_fee_b, dp.key_deposit),
        "{name}"
    );
    assert_eq!(pp.cost_model_v3(), Some(dp.cost_model_v3.clone()), "{name}");
    let tip = p.tip().await.expect("tip");
    let t = devnet.tip();
    assert_eq!(
        (tip.slot, tip.height, tip.hash),
        (t.slot, t.height, *t.hash),
        "{name}"
    );
    let sc = p.slot_config().await.expect("slots");
    let dsc = devnet.slot_config();
    assert_eq!(
        (sc.zero_time_ms, sc.zero_slot, sc.slot_length_ms),
        (dsc.zero_time, dsc.zero_slot, dsc.slot_length),
        "{name}"
    );

    // UTxOs.
    let key = KeyPair::generate(&format!("conformance-{name}"));
    let bech = key.address().to_bech32().expect("bech32");
    let mut funding = Vec::new();
    for _ in 0..3 {
        funding.push(*devnet.fund(&bech, 4_000_000, 7).expect("fund"));
    }
    devnet.produce_block().expect("block");
    let address = Address::Shelley(key.address());
    let utxos = p.utxos_at(&address).await.expect("utxos");
    assert_eq!(utxos.len(), 3, "{name}");
    let ntx = devnet.ntx_policy();
    for u in &utxos {
        assert_eq!(
            u.output.value,
            Value::lovelace(4_000_000).with_asset(*ntx, b"NTX", 7),
            "{name}"
        );
        assert_eq!(u.output.datum, Datum::None, "{name}");
    }
    let with_ntx = p
        .utxos_at_with_asset(&address, &ntx, b"NTX")
        .await
        .expect("with asset");
    assert_eq!(with_ntx.len(), 3, "{name}");
    assert!(
        p.utxos_at_with_asset(&address, &ntx, b"OTHER")
            .await
            .expect("none")
            .is_empty(),
        "{name}"
    );
    let stranger = Address::Shelley(KeyPair::generate("stranger").address());
    assert!(
        p.utxos_at(&stranger).await.expect("empty").is_empty(),
        "{name}"
    );

    // A payment with metadata: submit, confirm, read back.
    let own = key.address().to_vec();
    let mut draft = Draft::default();
    draft.inputs = vec![utxos[0].clone()];
    draft
        .outputs
        .push(TxOutput::new(own.clone(), Value::lovelace(2_000_000)));
    draft
        .metadata
        .insert(674, Metadatum::Text(format!("conformance {name}")));
    let tx = draft
        .balance(&own, &pp.fee_params(), &[&key.secret_key()], 0)
        .expect("balance");
    let id = p.submit(&tx.cbor).await.expect("submit");
    assert_eq!(id, tx.id, "{name}");
    confirm();
    let conf = p
        .await_tx(
            &id,
            &AwaitOptions::new(1, Duration::from_secs(30))
                .with_poll(Duration::from_millis(5), Duration::from_millis(50)),
        )
        .await
        .expect("confirmed");
    let record = devnet.transaction(&id).expect("store").expect("in a block");
    assert_eq!(
        (conf.block_height, conf.slot),
        (record.height, record.slot),
        "{name}"
    );
    assert!(conf.confirmations >= 1, "{name}");
    assert_eq!(
        p.utxo_by_ref(&utxos[0].reference).await.expect("known"),
        None,
        "{name}: spent"
    );
    let created = p
        .utxo_by_ref(&OutputReference {
            transaction_id: id,
            output_index: 0,
        })
        .await
        .expect("known")
        .expect("unspent");
    assert_eq!(created.output, draft.outputs[0], "{name}");
    let meta = p.tx_metadata(&id).await.expect("metadata");
    assert_eq!(meta.len(), 1, "{name}");
    assert_eq!(
        (meta[0].label, &meta[0].json),
        (674, &serde_json::json!(format!("conformance {name}"))),
        "{name}"
    );
    assert!(
        p.metadata_by_label(674)
            .await
            .expect("by label")
            .iter()
            .any(|m| m.tx_id == id),
        "{name}"
    );
    assert!(
        p.tx_redeemers(&id).await.expect("none").is_empty(),
        "{name}"
    );

    // History.
    let history = p
        .address_transactions(&address, BlockRange::ALL)
        .await
        .expect("history");
    let ids: Vec<_> = history.iter().map(|h| h.tx_id).collect();
    assert_eq!(ids.len(), 4, "{name}: three fundings and the payment");
    assert_eq!(ids[3], id, "{name}: oldest first");
    assert!(funding.iter().all(|f| ids.contains(f)), "{name}");
    let later = p
        .address_transactions(
            &address,
            BlockRange {
                from: Some(record.height),
                to: None,
            },
        )
        .await
        .expect("from the payment's block");
    assert_eq!(later.len(), 1, "{name}");
    assert_eq!(p.tx_cbor(&id).await.expect("cbor"), tx.cbor, "{name}");
    let info = p.tx_info(&id).await.expect("info");
    assert_eq!(
        (
            info.block_height,
            info.slot,
            info.index,
            info.valid_contract
        ),
        (record.height, record.slot, record.index, true),
        "{name}"
    );
    assert_eq!(info.block_hash, conf.block_hash, "{name}");

    // Rejections and unknowns.
    let again = p.submit(&tx.cbor).await.expect_err("double spend");
    assert!(
        again.is_rejection_by(ntx_offchain::chain::LedgerRule::BadInputsUTxO),
        "{name}: {again}"
    );
    let unknown = [0xee; 32];
    for r in [
        p.tx_cbor(&unknown).await.map(|_| ()),
        p.tx_info(&unknown).await.map(|_| ()),
        p.tx_metadata(&unknown).await.map(|_| ()),
        p.tx_redeemers(&unknown).await.map(|_| ()),
        p.utxo_by_ref(&OutputReference {
            transaction_id: unknown,
            output_index: 0,
        })
        .await
        .map(|_| ()),
    ] {
        assert!(
            matches!(r, Err(ChainError::NotFound { .. })),
            "{name}: {r:?}"
        );
    }
    let timeout = p
        .await_tx(&unknown, &AwaitOptions::new(1, Duration::ZERO))
        .await;
    assert!(
        matches!(timeout, Err(ChainError::Timeout { .. })),
        "{name}: {timeout:?}"
    );
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_providers_answer_alike() {
    let devnet = Devnet::open(DevnetConfig::default()).expect("devnet");
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(ntx_devnet::serve_devnet(
        devnet.clone(),
        0,
        stop.clone(),
        move |addr, _| {
            let _ = tx.send(addr);
        },
    ));
    let addr = rx.await.expect("serves");
    let http =
        Blockfrost::new(Network::Devnet, &format!("http://{addr}/api/v0"), None).expect("provider");
    let direct = DevnetChain::new(devnet.clone(), Blocks::AfterSubmit);

    let d = devnet.clone();
    let a1 = conformance(&http, &devnet, "http", &move || {
        d.produce_block().expect("block");
    })
    .await;
    let a2 = conformance(&direct, &devnet, "direct", &|| {}).await;

    // The same questions about the same chain get the same answers.
    assert_eq!(
        http.protocol_params().await.expect("params"),
        direct.protocol_params().await.expect("params")
    );
    assert_eq!(
        http.tip().await.expect("tip"),
        direct.tip().await.expect("tip")
    );
    for address in [a1, a2] {
        let a = http
            .address_transactions(&address, BlockRange::ALL)
            .await
            .expect("http");
        let b = direct
            .address_transactions(&address, BlockRange::ALL)
            .await
            .expect("direct");
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        for t in &a {
            assert_eq!(
                http.tx_info(&t.tx_id).await.expect("http"),
                direct.tx_info(&t.tx_id).await.expect("direct")
            );
        }
        let mut ua = http.utxos_at(&address).await.expect("http");
        let mut ub = direct.utxos_at(&address).await.expect("direct");
        ua.sort_by_key(|u| u.reference);
        ub.sort_by_key(|u| u.reference);
        assert_eq!(ua, ub);
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_submit_blocks_also_deepen_confirmations() {
    let devnet = Devnet::open(DevnetConfig::default()).expect("devnet");
    let chain = DevnetChain::new(devnet.clone(), Blocks::AfterSubmit);
    let key = KeyPair::generate("deep");
    devnet
        .fund_now(&key.address().to_bech32().expect("bech32"), 5_000_000, 0)
        .expect("fund");
    let address = Address::Shelley(key.address());
    let own = key.address().to_vec();
    let pp = chain.protocol_params().await.expect("params");
    let mut draft = Draft::default();
    draft.inputs = chain.utxos_at(&address).await.expect("utxos");
    draft
        .outputs
        .push(TxOutput::new(own.clone(), Value::lovelace(2_000_000)));
    let tx = draft
        .balance(&own, &pp.fee_params(), &[&key.secret_key()], 0)
        .expect("balance");
    let before = devnet.tip().height;
    let id = chain.submit(&tx.cbor).await.expect("submit");
    assert_eq!(
        devnet.tip().height,
        before + 1,
        "a block right after the submit"
    );
    let conf = chain
        .await_tx(&id, &AwaitOptions::new(3, Duration::from_secs(30)))
        .await
        .expect("three confirmations");
    assert_eq!(conf.confirmations, 3);
    assert_eq!(devnet.tip().height, before + 3);
}
