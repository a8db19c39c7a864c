//! cardano-serialization-lib, written by other people, as the oracle for every
//! kind of transaction the builders make: it must decode each one, give the
//! same transaction id, find the fee at least its minimum (size, execution
//! units, tiered reference-script fee) and overpaid by no more than
//! [`FEE_SLACK`], every output at least its `min_ada_for_output`, and the same
//! script-data hash with the Plutus V3 cost model.

use cardano_serialization_lib as csl;
use ntx_offchain::builder::{Finished, JobTerms};
use ntx_offchain::market::{Offer, OfferRole, SignedOffer, TaskOffer, VerifierPolicy};
use ntx_offchain::protocol::{Asset, Settlement, Verdict};
use ntx_offchain::sandbox::{Party, Sandbox};
use ntx_offchain::tx::{FeeParams, Value};
use ntx_offchain::wallet::Signer;

const PRICE: u64 = 25_000_000;
const SUBMIT_BY: u64 = 200;
const SETTLE_BY: u64 = 400;

/// The most a builder may pay over CSL's minimum for the units it declares: a
/// twentieth of the script fee plus 8 bytes' worth (for the fee field and
/// witness sizes settling between the builder's estimate and its final bytes).
/// Measured: every transaction pays exactly CSL's minimum (docs/PROTOCOL.md).
fn fee_slack(script_fee: u64, fees: &FeeParams) -> u64 {
    script_fee / 20 + 1 + 8 * fees.min_fee_a
}

fn asset() -> Asset {
    Asset::mainnet_ntx()
}

/// One transaction and what it references: the reference-script bytes its
/// fee pays for.
struct Case {
    name: String,
    tx: Finished,
    ref_script_bytes: usize,
}

fn offer(sb: &Sandbox, issued_ms: u64) -> Offer {
    Offer {
        version: 1,
        deployment: hex::encode(sb.deployment.script.hash()),
        role: OfferRole::Provider,
        key: hex::encode(sb.agent.public_key),
        payout: Some(sb.provider.bech32.clone()),
        url: "https://provider.example.org".into(),
        tasks: vec![TaskOffer {
            task: "embed".into(),
            model: serde_json::json!({"config": "11".repeat(32), "tokenizer": "22".repeat(32), "weights": "33".repeat(32)}),
            price: 1_000_000,
            price_per_token: 0,
        }],
        policy: Some(VerifierPolicy::listed(
            &sb.verifiers
                .iter()
                .map(|v| v.public_key)
                .collect::<Vec<_>>(),
        )),
        issued_ms,
        expires_ms: issued_ms + 3_600_000,
    }
}

/// Every kind of transaction, as `ntx bench contract` builds them.
fn cases() -> Vec<Case> {
    let mut sb = Sandbox::new(asset());
    let script = sb.deployment.script.size();
    let mut out = Vec::new();
    let mut push = |name: &str, tx: Finished, refs: usize| {
        out.push(Case {
            name: name.into(),
            tx,
            ref_script_bytes: refs,
        })
    };

    // Deploy: the script published as a reference script, its credential registered.
    let deployer = Party::from_seed(9, sb.deployment.network);
    let funding = vec![sb.utxo(&deployer.address_bytes, Value::lovelace(60_000_000))];
    let draft = ntx_offchain::builder::deploy(
        &sb.deployment.script,
        sb.deployment.network,
        &sb.deployment.fee_params,
        2_000_000,
        funding,
        true,
    )
    .expect("deploy builds");
    let deploy = sb
        .deployment
        .finish(draft, &deployer.address_bytes, &[&deployer.key], 0)
        .expect("deploy finishes");
    push("deploy", deploy, 0);

    let (lock, escrows) = sb
        .lock(&[sb.terms(PRICE, SUBMIT_BY, SETTLE_BY)], 100)
        .expect("lock");
    push("lock 1", lock, script);
    let (submit, escrow) = sb
        .submit(&escrows[0], [0x77; 32], SUBMIT_BY)
        .expect("submit");
    push("submit", submit, script);
    let claim = sb
        .settle(sb.claims(vec![escrow.clone()]), SUBMIT_BY + 1, &[])
        .expect("claim");
    push("claim", claim, script);
    let rejects = sb.attest(&escrow, Verdict::Reject, &[0, 1]);
    let rejected = sb
        .settle(
            vec![(
                escrow.clone(),
                Settlement::RefundRejected {
                    attestations: rejects,
                },
            )],
            SUBMIT_BY + 1,
            &[],
        )
        .expect("refund rejected");
    push("refund rejected", rejected, script);
    let timeout = sb
        .settle(
            vec![(escrow, Settlement::RefundTimeout)],
            SETTLE_BY + 1,
            &[],
        )
        .expect("refund timeout");
    push("refund timeout", timeout, script);
    let (_, locked) = sb
        .lock(&[sb.terms(PRICE, SUBMIT_BY, SETTLE_BY)], 100)
        .expect("lock");
    let no_show = sb
        .settle(
            vec![(locked[0].clone(), Settlement::RefundNoShow)],
            SUBMIT_BY + 1,
            &[],
        )
        .expect("refund no-show");
    push("refund no-show", no_show, script);
    let (requester, agent) = (
        Party::from_seed(1, sb.deployment.network),
        Party::from_seed(3, sb.deployment.network),
    );
    let cancel = sb
        .settle(
            vec![(locked[0].clone(), Settlement::Cancel)],
            50,
            &[&requester, &agent],
        )
        .expect("cancel");
    push("cancel", cancel, script);
    let terms: Vec<JobTerms> = (0..10)
        .map(|_| sb.terms(PRICE, SUBMIT_BY, SETTLE_BY))
        .collect();
    let (lock10, _) = sb.lock(&terms, 100).expect("lock 10");
    push("lock 10", lock10, script);

    let mut pool = Vec::new();
    while pool.len() < 50 {
        let terms: Vec<JobTerms> = (0..10)
            .map(|_| sb.terms(PRICE, SUBMIT_BY, SETTLE_BY))
            .collect();
        let (_, escrows) = sb.lock(&terms, 100).expect("lock");
        for e in escrows {
            pool.push(sb.submit(&e, [0x77; 32], SUBMIT_BY).expect("submit").1);
        }
    }
    for n in [10, 50] {
        let batch = sb
            .settle(sb.claims(pool[..n].to_vec()), SUBMIT_BY + 1, &[])
            .expect("a claim batch");
        push(&format!("claim batch of {n}"), batch, script);
    }

    let signed = SignedOffer::sign(offer(&sb, 1_000), &sb.agent.key).expect("signs");
    let (publish, utxo) = sb.publish_offer(&signed, None).expect("publish");
    push("offer publish", publish, 0);
    let replaced = SignedOffer::sign(offer(&sb, 2_000), &sb.agent.key).expect("signs");
    let (replace, utxo) = sb.publish_offer(&replaced, Some(utxo)).expect("replace");
    push("offer replace", replace, 0);
    let withdraw = sb.withdraw_offer(utxo).expect("withdraw");
    push("offer withdraw", withdraw, 0);
    out
}

fn ratio(r: ntx_offchain::tx::Ratio) -> csl::UnitInterval {
    csl::UnitInterval::new(&csl::BigNum::from(r.num), &csl::BigNum::from(r.den))
}

#[test]
fn cardano_serialization_lib_agrees_with_every_transaction_the_builders_make() {
    let sb = Sandbox::new(asset());
    let fees = sb.deployment.fee_params;
    let linear = csl::LinearFee::new(
        &csl::BigNum::from(fees.min_fee_a),
        &csl::BigNum::from(fees.min_fee_b),
    );
    let prices = csl::ExUnitPrices::new(&ratio(fees.price_mem), &ratio(fees.price_steps));
    let data_cost = csl::DataCost::new_coins_per_byte(&csl::BigNum::from(fees.coins_per_utxo_byte));
    let mut costmdls = csl::Costmdls::new();
    costmdls.insert(
        &csl::Language::new_plutus_v3(),
        &csl::CostModel::from(
            sb.deployment
                .cost_model_v3
                .iter()
                .map(|c| i128::from(*c))
                .collect::<Vec<_>>(),
        ),
    );
    let devnet_params = ntx_devnet::ProtocolParams::mainnet()
        .parsed()
        .expect("the bundled parameters");
    assert_eq!(devnet_params.min_fee_a, fees.min_fee_a, "one set of prices");
    let mut report = Vec::new();
    for case in cases() {
        let name = &case.name;
        let bytes = &case.tx.tx.cbor;
        let fixed = csl::FixedTransaction::from_bytes(bytes.clone())
            .unwrap_or_else(|e| panic!("{name}: CSL cannot decode it: {e:?}"));
        assert_eq!(
            fixed.transaction_hash().to_bytes(),
            case.tx.tx.id.to_vec(),
            "{name}: CSL's transaction hash differs"
        );
        let tx = csl::Transaction::from_bytes(bytes.clone()).expect("decodes");
        let size_fee = u64::from(csl::min_fee_for_size(bytes.len(), &linear).expect("size fee"));
        let script_fee = u64::from(csl::min_script_fee(&tx, &prices).expect("script fee"));
        let ref_fee = u64::from(
            csl::min_ref_script_fee(case.ref_script_bytes, &ratio(fees.ref_script_cost_per_byte))
                .expect("ref fee"),
        );
        let minimum = size_fee + script_fee + ref_fee;
        // The devnet's own fee rule (a second copy written here) must say the same.
        let units = tx
            .witness_set()
            .redeemers()
            .map(|r| r.total_ex_units().expect("units"))
            .map_or((0, 0), |u| (u64::from(u.mem()), u64::from(u.steps())));
        let devnet_min = ntx_devnet::min_fee(
            &devnet_params,
            bytes.len() as u64,
            units.0,
            units.1,
            case.ref_script_bytes as u64,
        )
        .total();
        assert_eq!(devnet_min, minimum, "{name}: the devnet's minimum fee");
        let fee = u64::from(tx.body().fee());
        assert_eq!(fee, case.tx.fee, "{name}: the body's fee");
        assert!(
            fee >= minimum,
            "{name}: fee {fee} < CSL's minimum {minimum}"
        );
        let slack = fee_slack(script_fee, &fees);
        assert!(
            fee - minimum <= slack,
            "{name}: fee {fee} overpays CSL's minimum {minimum} by more than {slack}"
        );
        let outputs = tx.body().outputs();
        for i in 0..outputs.len() {
            let o = outputs.get(i);
            let min = u64::from(csl::min_ada_for_output(&o, &data_cost).expect("min ada"));
            let coin = u64::from(o.amount().coin());
            assert!(coin >= min, "{name}: output {i} holds {coin} < CSL's {min}");
            let devnet_min = ntx_devnet::min_utxo(&devnet_params, o.to_bytes().len() as u64);
            assert_eq!(
                devnet_min, min,
                "{name}: the devnet's min-UTxO of output {i}"
            );
        }
        let witnesses = tx.witness_set();
        match (tx.body().script_data_hash(), witnesses.redeemers()) {
            (Some(ours), Some(redeemers)) => {
                let theirs = csl::hash_script_data(&redeemers, &costmdls, witnesses.plutus_data());
                assert_eq!(
                    ours.to_bytes(),
                    theirs.to_bytes(),
                    "{name}: script-data hash"
                );
            }
            (None, None) => {}
            (ours, theirs) => panic!(
                "{name}: script-data hash {:?} but redeemers {:?}",
                ours.map(|h| h.to_hex()),
                theirs.map(|r| r.len())
            ),
        }
        report.push(format!(
            "{name}: fee {fee}, CSL minimum {minimum} (+{})",
            fee - minimum
        ));
    }
    eprintln!("{}", report.join("\n"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// CIP-1852 keys from a mnemonic equal CSL's `Bip32PrivateKey` derivation
    /// (`m/1852'/1815'/account'/role/index`), with and without a passphrase.
    #[test]
    fn key_derivation_agrees_with_csl(
        entropy in proptest::collection::vec(proptest::prelude::any::<u8>(), 16..=16),
        long in proptest::prelude::any::<bool>(),
        passphrase in "[a-z]{0,8}",
        account in 0u32..4,
        role in proptest::prop_oneof![proptest::strategy::Just(0u32), proptest::strategy::Just(2u32)],
        index in 0u32..8,
    ) {
        let entropy = if long { [entropy.clone(), entropy].concat() } else { entropy };
        let ours = ntx_offchain::wallet::Mnemonic::from_entropy(&entropy)
            .expect("valid entropy")
            .derive(&passphrase, account, role, index);
        let hard = |i: u32| i | 0x8000_0000;
        let theirs = csl::Bip32PrivateKey::from_bip39_entropy(&entropy, passphrase.as_bytes())
            .derive(hard(1852))
            .derive(hard(1815))
            .derive(hard(account))
            .derive(role)
            .derive(index)
            .to_raw_key()
            .to_public();
        proptest::prop_assert_eq!(ours.public_key().to_vec(), theirs.as_bytes());
    }
}
