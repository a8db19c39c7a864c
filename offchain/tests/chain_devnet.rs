//! The Blockfrost provider against this project's devnet, served over HTTP on
//! loopback: parameters, tip and slots, paged UTxOs, a real Plutus V3 spend
//! evaluated with the fetched cost models, confirmations, metadata,
//! redeemers, ledger rejections and not-found.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Net, start};
use ntx_devnet::{Devnet, KeyPair};
use ntx_offchain::Network;
use ntx_offchain::chain::{
    AwaitOptions, Blockfrost, ChainError, ChainProvider, Confirmation, RedeemerPurpose, TxId,
};
use ntx_offchain::evaluate::ExUnits;
use ntx_offchain::protocol::{OutputReference, blake2b_224, data};
use ntx_offchain::tx::{
    Datum, Draft, DraftRedeemer, FeeParams, Ratio, ScriptPurpose, ScriptRef, TxOutput, Utxo, Value,
};
use pallas_addresses::Address;
use pallas_primitives::Metadatum;
use tokio_util::sync::CancellationToken;

fn addr(key: &KeyPair) -> Address {
    Address::Shelley(key.address())
}

/// A fresh key funded with `n` outputs of `lovelace` (and `ntx` NTX units each).
fn funded(devnet: &Devnet, name: &str, n: usize, lovelace: u64, ntx: u64) -> KeyPair {
    let key = KeyPair::generate(name);
    let bech = key.address().to_bech32().expect("bech32");
    for _ in 0..n {
        devnet.fund(&bech, lovelace, ntx).expect("fund");
    }
    while devnet.mempool_len() > 0 {
        devnet.produce_block().expect("block");
    }
    key
}

/// Awaits `tx` while producing blocks, one per round.
async fn await_with_blocks(net: &Net, tx: TxId, confirmations: u64) -> Confirmation {
    let options = AwaitOptions::new(confirmations, Duration::from_secs(60))
        .with_poll(Duration::from_millis(5), Duration::from_millis(20));
    let waiting = {
        let provider =
            Blockfrost::new(Network::Devnet, net.provider.base_url(), None).expect("provider");
        tokio::spawn(async move { provider.await_tx(&tx, &options).await })
    };
    for _ in 0..2000 {
        if waiting.is_finished() {
            break;
        }
        net.devnet.produce_block().expect("block");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    waiting.await.expect("task").expect("confirmed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_tip_and_slots_match_the_devnet() {
    let net = start().await;
    let pp = net.provider.protocol_params().await.expect("params");
    let dp = net.devnet.params();

    let fee = pp.fee_params();
    assert_eq!(fee, FeeParams::MAINNET, "the devnet runs mainnet's prices");
    assert_eq!(
        fee,
        FeeParams {
            min_fee_a: dp.min_fee_a,
            min_fee_b: dp.min_fee_b,
            price_mem: Ratio::new(dp.price_mem.numerator, dp.price_mem.denominator),
            price_steps: Ratio::new(dp.price_step.numerator, dp.price_step.denominator),
            ref_script_cost_per_byte: Ratio::new(dp.min_fee_ref_script_cost_per_byte, 1),
            coins_per_utxo_byte: dp.coins_per_utxo_byte,
            collateral_percent: dp.collateral_percent,
        }
    );
    assert_eq!(pp.key_deposit, dp.key_deposit);
    assert_eq!(pp.max_tx_size, dp.max_tx_size);
    assert_eq!(pp.max_val_size, dp.max_val_size);
    assert_eq!(pp.max_collateral_inputs, dp.max_collateral_inputs);
    assert_eq!(
        pp.max_tx_ex_units,
        ExUnits {
            mem: dp.max_tx_ex_mem,
            steps: dp.max_tx_ex_steps
        }
    );
    assert_eq!(u64::from(pp.protocol_major), dp.protocol_major);
    assert_eq!(pp.cost_model_v3(), Some(dp.cost_model_v3.clone()));
    assert_eq!(pp.cost_models.plutus_v1, Some(dp.cost_model_v1.clone()));
    assert_eq!(pp.cost_models.plutus_v2, Some(dp.cost_model_v2.clone()));
    assert_eq!(pp.cost_model_v3().map(|m| m.len()), Some(297));

    let sc = net.provider.slot_config().await.expect("slot config");
    let dsc = net.devnet.slot_config();
    assert_eq!(
        (sc.zero_time_ms, sc.zero_slot, sc.slot_length_ms),
        (dsc.zero_time, dsc.zero_slot, dsc.slot_length)
    );

    net.devnet.advance_slots(7).expect("advance");
    let block = net.devnet.produce_block().expect("block");
    let tip = net.provider.tip().await.expect("tip");
    assert_eq!(
        (tip.slot, tip.height, tip.hash),
        (block.slot, block.height, *block.hash)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utxos_are_listed_across_pages() {
    let net = start().await;
    let key = funded(&net.devnet, "carol", 105, 2_000_000, 3);
    let utxos = net.provider.utxos_at(&addr(&key)).await.expect("utxos");
    assert_eq!(utxos.len(), 105, "three pages: 100 + 5");
    let refs: BTreeSet<_> = utxos.iter().map(|u| u.reference).collect();
    assert_eq!(refs.len(), 105, "no output listed twice");
    let policy: [u8; 28] = *net.devnet.ntx_policy();
    for u in &utxos {
        assert_eq!(u.output.address, key.address().to_vec());
        assert_eq!(
            u.output.value,
            Value::lovelace(2_000_000).with_asset(policy, b"NTX", 3)
        );
        assert_eq!(u.output.datum, Datum::None);
    }
    let with_ntx = net
        .provider
        .utxos_at_with_asset(&addr(&key), &policy, b"NTX")
        .await
        .expect("utxos with NTX");
    assert_eq!(with_ntx.len(), 105);

    // An address never seen has no UTxOs (Blockfrost answers 404 or []).
    let stranger = KeyPair::generate("stranger");
    assert_eq!(
        net.provider
            .utxos_at(&addr(&stranger))
            .await
            .expect("empty"),
        Vec::<Utxo>::new()
    );
}

fn always_succeeds() -> (Vec<u8>, Vec<u8>) {
    let script = ntx_devnet::bench::always_succeeds_v3();
    assert!(!script.is_empty());
    let mut tagged = vec![3u8];
    tagged.extend_from_slice(&script);
    let mut address = vec![0x70];
    address.extend_from_slice(&blake2b_224(&tagged));
    (script, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plutus_spend_round_trips_through_the_provider() {
    let net = start().await;
    let p = &net.provider;
    let key = funded(&net.devnet, "dave", 3, 50_000_000, 0);
    let sk = key.secret_key();
    let own = key.address().to_vec();
    let pp = p.protocol_params().await.expect("params");
    let fee_params = pp.fee_params();
    let evaluator = pp.evaluator(p.slot_config().await.expect("slots"));
    let mut wallet = p.utxos_at(&addr(&key)).await.expect("utxos");
    assert_eq!(wallet.len(), 3);

    // 1. Lock at an always-succeeds script, carrying the script for reference,
    //    with metadata.
    let (script, script_address) = always_succeeds();
    let mut lock = Draft::default();
    lock.inputs.push(wallet.remove(0));
    lock.outputs.push(TxOutput {
        address: script_address.clone(),
        value: Value::lovelace(20_000_000),
        datum: Datum::Inline(data::int(42)),
        script_ref: Some(ScriptRef::PlutusV3(script.clone())),
    });
    lock.metadata
        .insert(674, Metadatum::Text("ntx chain test".into()));
    let encoded = lock.balance(&own, &fee_params, &[&sk], 0).expect("balance");
    let id = p.submit(&encoded.cbor).await.expect("submitted");
    assert_eq!(id, encoded.id);
    let conf = await_with_blocks(&net, id, 3).await;
    assert!(conf.confirmations >= 3, "{conf:?}");
    let tip = p.tip().await.expect("tip");
    assert_eq!(conf.confirmations, tip.height + 1 - conf.block_height);

    let locked_ref = OutputReference {
        transaction_id: id,
        output_index: 0,
    };
    let locked = p
        .utxo_by_ref(&locked_ref)
        .await
        .expect("by reference")
        .expect("unspent");
    assert_eq!(
        locked.output, lock.outputs[0],
        "inline datum and script come back"
    );
    assert_eq!(
        p.utxos_at(&Address::from_bytes(&script_address).expect("address"))
            .await
            .expect("script utxos"),
        vec![locked.clone()]
    );

    let meta = p.tx_metadata(&id).await.expect("metadata");
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].label, 674);
    assert_eq!(meta[0].json, serde_json::json!("ntx chain test"));
    let by_label = p.metadata_by_label(674).await.expect("by label");
    assert!(by_label.iter().any(|m| m.tx_id == id));

    // 2. Spend it: units measured with the fetched cost models.
    let mut spend = Draft::default();
    spend.inputs = vec![locked.clone(), wallet.remove(0)];
    spend.collateral = vec![wallet.remove(0)];
    spend.plutus_v3_scripts = vec![script];
    spend.cost_model_v3 = pp.cost_model_v3();
    spend.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Spend(locked_ref),
        data: data::int(0),
        ex_units: ExUnits {
            mem: 1_000_000,
            steps: 500_000_000,
        },
    });
    spend
        .balance(&own, &fee_params, &[&sk], 0)
        .expect("balance");
    let probe = spend.encode(&[], 0).expect("probe");
    let costs = evaluator
        .evaluate(&probe.cbor, &spend.resolved())
        .expect("the evaluator accepts the fetched cost models");
    assert_eq!(costs.len(), 1);
    assert!(costs[0].ex_units.mem > 0 && costs[0].ex_units.steps > 0);
    let declared = costs[0].ex_units.with_margin(10);
    spend.redeemers[0].ex_units = declared;
    let signed = spend
        .balance(&own, &fee_params, &[&sk], 0)
        .expect("balance");
    let spend_id = p
        .submit(&signed.cbor)
        .await
        .expect("the ledger accepts the spend");
    await_with_blocks(&net, spend_id, 1).await;

    let redeemers = p.tx_redeemers(&spend_id).await.expect("redeemers");
    assert_eq!(redeemers.len(), 1);
    assert_eq!(redeemers[0].purpose, RedeemerPurpose::Spend);
    assert_eq!(redeemers[0].ex_units, declared);
    assert_eq!(redeemers[0].fee, fee_params.script_fee(declared));
    assert_eq!(
        p.utxo_by_ref(&locked_ref).await.expect("known"),
        None,
        "the spent output is reported spent"
    );

    // 3. The same transaction again: its inputs are gone.
    let again = p.submit(&signed.cbor).await.expect_err("double spend");
    assert!(
        again.is_rejection_by(ntx_offchain::chain::LedgerRule::BadInputsUTxO),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_not_found_timeouts_and_cancellation() {
    let net = start().await;
    let p = &net.provider;
    let key = funded(&net.devnet, "erin", 1, 10_000_000, 0);
    let pp = p.protocol_params().await.expect("params");
    let mut draft = Draft::default();
    draft.inputs = p.utxos_at(&addr(&key)).await.expect("utxos");
    draft.outputs.push(TxOutput::new(
        key.address().to_vec(),
        Value::lovelace(3_000_000),
    ));
    draft
        .balance(
            &key.address().to_vec(),
            &pp.fee_params(),
            &[&key.secret_key()],
            0,
        )
        .expect("balance");
    // One lovelace short of the minimum fee, moved to the change output.
    draft.fee -= 1;
    if let Some(change) = draft.outputs.last_mut() {
        change.value.lovelace += 1;
    }
    let cheap = draft.encode(&[&key.secret_key()], 0).expect("encode");
    let err = p.submit(&cheap.cbor).await.expect_err("fee too small");
    assert!(
        matches!(&err, ChainError::Rejected { .. })
            && err.is_rejection_by(ntx_offchain::chain::LedgerRule::FeeTooSmallUTxO),
        "{err:?}"
    );

    let garbage = p
        .submit(&[0x84, 0x01])
        .await
        .expect_err("not a transaction");
    assert!(
        matches!(garbage, ChainError::Rejected { .. }),
        "{garbage:?}"
    );

    let unknown = [0xab; 32];
    let missing = OutputReference {
        transaction_id: unknown,
        output_index: 0,
    };
    assert!(matches!(
        p.utxo_by_ref(&missing).await,
        Err(ChainError::NotFound { .. })
    ));
    assert!(matches!(
        p.tx_metadata(&unknown).await,
        Err(ChainError::NotFound { .. })
    ));
    assert!(matches!(
        p.tx_redeemers(&unknown).await,
        Err(ChainError::NotFound { .. })
    ));
    // An index past the end of a known transaction.
    let funded_tx = p.utxos_at(&addr(&key)).await.expect("utxos")[0].reference;
    let past_end = OutputReference {
        output_index: 99,
        ..funded_tx
    };
    assert!(matches!(
        p.utxo_by_ref(&past_end).await,
        Err(ChainError::NotFound { .. })
    ));

    let timeout = p
        .await_tx(&unknown, &AwaitOptions::new(1, Duration::ZERO))
        .await;
    assert!(
        matches!(timeout, Err(ChainError::Timeout { wanted: 1, .. })),
        "{timeout:?}"
    );
    let cancel = CancellationToken::new();
    cancel.cancel();
    let cancelled = p
        .await_tx(
            &unknown,
            &AwaitOptions::new(1, Duration::from_secs(3600)).with_cancel(cancel),
        )
        .await;
    assert_eq!(cancelled, Err(ChainError::Cancelled));
}
