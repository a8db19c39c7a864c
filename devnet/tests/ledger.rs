//! The devnet's rules: one rejected transaction per rule, and accepted
//! payments, multi-asset, native-script mint and Plutus V3 spend/mint/withdraw.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
#[path = "ledger/decoder_rules.rs"]
mod decoder_rules;

use common::*;
use ntx_devnet::txbuilder::{Output, RedeemerSpec, TxBuilder};
use ntx_devnet::{DevnetConfig, GenesisConfig, GenesisUtxo, LedgerError, OutRef, Value};
use pallas_primitives::conway::{Certificate, NativeScript, RedeemerTag};
use pallas_primitives::{ExUnits, StakeCredential};

fn rejected(d: &ntx_devnet::Devnet, tx: &[u8]) -> LedgerError {
    is_ledger_err(
        &d.submit(tx)
            .expect_err("the ledger rejects this transaction"),
    )
    .clone()
}

#[test]
fn simple_payment_is_accepted_and_applied() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let bob = d.key("bob").unwrap();
    let input = first_utxo(&d, &alice);
    let b = payment(&d, &alice, input.clone(), &addr(&bob), 3_000_000);
    let h = d
        .submit(&b.build(&d.params(), &[&alice]))
        .expect("valid payment");
    let block = d.produce_block().unwrap();
    assert_eq!(block.tx_count, 1);
    assert!(d.utxo(&OutRef::new(h, 0)).is_some());
    assert!(d.utxo(&input.0).is_none(), "the input is spent");
}

#[test]
fn multi_asset_payment_moves_ntx() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let bob = d.key("bob").unwrap();
    let (r, v) = first_utxo(&d, &alice);
    let policy = d.ntx_policy();
    assert_eq!(v.asset(&policy, b"NTX"), 1_000_000_000);
    let send = Value::lovelace(2_000_000).with_asset(policy, b"NTX", 250);
    let mut b = TxBuilder {
        inputs: vec![r],
        outputs: vec![
            Output::new(&addr(&bob), send.clone()),
            Output::new(&addr(&alice), v.checked_sub(&send).unwrap()),
        ],
        ..TxBuilder::default()
    };
    b.balance_fee(&d.params(), &[&alice], 1, 0);
    let h = d.submit(&b.build(&d.params(), &[&alice])).expect("valid");
    d.produce_block().unwrap();
    let out = ntx_devnet::OutputView::decode(&d.utxo(&OutRef::new(h, 0)).unwrap()).unwrap();
    assert_eq!(out.value.asset(&policy, b"NTX"), 250);
}

#[test]
fn native_script_mint_through_the_faucet() {
    let d = devnet();
    let carol = ntx_devnet::KeyPair::generate("carol");
    let out = d.fund_now(&bech32(&carol), 5_000_000, 777).expect("funded");
    let v = ntx_devnet::OutputView::decode(&d.utxo(&out).unwrap())
        .unwrap()
        .value;
    assert_eq!(v.coin, 5_000_000);
    assert_eq!(v.asset(&d.ntx_policy(), b"NTX"), 777);
}

#[test]
fn native_script_mint_without_the_policy_signature_is_rejected() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let input = first_utxo(&d, &alice);
    let policy_script = NativeScript::ScriptPubkey(d.key("ntx-policy").unwrap().key_hash());
    let policy = d.ntx_policy();
    let mut b = payment(&d, &alice, input.clone(), &addr(&alice), 2_000_000);
    b.mint
        .insert(policy, [(b"NTX".to_vec(), 5)].into_iter().collect());
    b.native_scripts.push(policy_script);
    b.outputs[0].value = b.outputs[0].value.clone().with_asset(policy, b"NTX", 5);
    b.balance_fee(&d.params(), &[&alice], 1, 0);
    let e = rejected(&d, &b.build(&d.params(), &[&alice]));
    assert!(matches!(e, LedgerError::NativeScriptFailed { .. }), "{e}");
}

#[test]
fn fee_below_the_minimum_is_rejected() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let mut b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&alice), 2_000_000);
    b.fee -= 1;
    b.outputs[1].value.coin += 1;
    let e = rejected(&d, &b.build(&d.params(), &[&alice]));
    assert!(matches!(e, LedgerError::FeeTooSmall { .. }), "{e}");
}

#[test]
fn output_below_min_utxo_is_rejected() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    // An enterprise-address output is 39 bytes: (160 + 39) * 4310 = 857,690.
    let b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&alice), 857_689);
    let e = rejected(&d, &b.build(&d.params(), &[&alice]));
    assert!(matches!(e, LedgerError::OutputTooSmall { .. }), "{e}");
}

#[test]
fn ttl_equal_to_the_current_slot_is_expired() {
    let d = devnet();
    d.advance_to_slot(100).unwrap();
    let alice = d.key("alice").unwrap();
    let mut b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&alice), 2_000_000);
    b.ttl = Some(100);
    b.balance_fee(&d.params(), &[&alice], 1, 0);
    let e = rejected(&d, &b.build(&d.params(), &[&alice]));
    assert!(
        matches!(
            e,
            LedgerError::Expired {
                slot: 100,
                ttl: 100
            }
        ),
        "{e}"
    );
    b.ttl = Some(101);
    b.balance_fee(&d.params(), &[&alice], 1, 0);
    d.submit(&b.build(&d.params(), &[&alice]))
        .expect("ttl 101 at slot 100 is valid");
}

#[test]
fn validity_start_in_the_future_is_rejected() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let mut b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&alice), 2_000_000);
    b.valid_from = Some(50);
    b.balance_fee(&d.params(), &[&alice], 1, 0);
    let e = rejected(&d, &b.build(&d.params(), &[&alice]));
    assert!(
        matches!(e, LedgerError::NotYetValid { start: 50, .. }),
        "{e}"
    );
}

#[test]
fn double_spend_against_the_mempool_is_rejected() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let bob = d.key("bob").unwrap();
    let input = first_utxo(&d, &alice);
    let b1 = payment(&d, &alice, input.clone(), &addr(&bob), 2_000_000);
    d.submit(&b1.build(&d.params(), &[&alice])).unwrap();
    let b2 = payment(&d, &alice, input, &addr(&bob), 3_000_000);
    let e = rejected(&d, &b2.build(&d.params(), &[&alice]));
    assert!(matches!(e, LedgerError::DoubleSpend { .. }), "{e}");
}

#[test]
fn unknown_input_is_rejected() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let (_, v) = first_utxo(&d, &alice);
    let fake = (OutRef::new(pallas_crypto::hash::Hash::new([7; 32]), 0), v);
    let b = payment(&d, &alice, fake, &addr(&alice), 2_000_000);
    let e = rejected(&d, &b.build(&d.params(), &[&alice]));
    assert!(matches!(e, LedgerError::UnknownInput { .. }), "{e}");
}

#[test]
fn missing_signature_is_rejected() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let bob = d.key("bob").unwrap();
    let b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&bob), 2_000_000);
    let e = rejected(&d, &b.build(&d.params(), &[&bob]));
    assert!(
        matches!(&e, LedgerError::Phase1 { rule, .. } if *rule == "MissingVKeyWitnessesUTXOW"),
        "{e}"
    );
}

#[test]
fn value_not_conserved_is_rejected() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let mut b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&alice), 2_000_000);
    b.outputs[1].value.coin += 1_000_000;
    let e = rejected(&d, &b.build(&d.params(), &[&alice]));
    assert!(matches!(e, LedgerError::ValueNotConserved { .. }), "{e}");
}

#[test]
fn wrong_network_address_is_rejected() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let mut mainnet = addr(&alice);
    mainnet[0] |= 1; // network id 1
    let b = payment(&d, &alice, first_utxo(&d, &alice), &mainnet, 2_000_000);
    let e = rejected(&d, &b.build(&d.params(), &[&alice]));
    assert!(matches!(e, LedgerError::WrongNetwork { .. }), "{e}");
}

/// A chain with an always-succeeds and a redeemer-is-42 script published as
/// reference scripts, and 20 ADA locked at the 42 script with an inline datum.
struct PlutusFixture {
    d: ntx_devnet::Devnet,
    alice: ntx_devnet::KeyPair,
    ref_42: OutRef,
    ref_ok: OutRef,
    ref_true: OutRef,
    locked: OutRef,
    collateral: (OutRef, Value),
}

fn plutus_fixture() -> PlutusFixture {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let (r, v) = first_utxo(&d, &alice);
    let s42 = redeemer_is_42();
    let sok = always_succeeds();
    let strue = returns_true();
    let ntx = d.ntx_policy();
    let outs = vec![
        Output::new(&addr(&alice), Value::lovelace(10_000_000)).v3_script_ref(&s42),
        Output::new(&addr(&alice), Value::lovelace(10_000_000)).v3_script_ref(&sok),
        Output::new(&addr(&alice), Value::lovelace(10_000_000)).v3_script_ref(&strue),
        Output::new(&script_address(v3_hash(&s42)), Value::lovelace(20_000_000))
            .inline_datum(&int_data(7)),
        Output::new(&addr(&alice), Value::lovelace(10_000_000)),
    ];
    let spent: u64 = outs.iter().map(|o| o.value.coin).sum();
    let mut change = v.checked_sub(&Value::lovelace(spent)).unwrap();
    assert!(change.asset(&ntx, b"NTX") > 0);
    change.coin -= 0;
    let mut all = outs;
    all.push(Output::new(&addr(&alice), change));
    let mut b = TxBuilder {
        inputs: vec![r],
        outputs: all,
        ..TxBuilder::default()
    };
    b.balance_fee(&d.params(), &[&alice], 5, 0);
    let h = d
        .submit(&b.build(&d.params(), &[&alice]))
        .expect("publishing scripts is valid");
    d.produce_block().unwrap();
    PlutusFixture {
        d,
        alice,
        ref_42: OutRef::new(h, 0),
        ref_ok: OutRef::new(h, 1),
        ref_true: OutRef::new(h, 2),
        locked: OutRef::new(h, 3),
        collateral: (OutRef::new(h, 4), Value::lovelace(10_000_000)),
    }
}

const UNITS: ExUnits = ExUnits {
    mem: 1_000_000,
    steps: 500_000_000,
};

/// Spends the locked output with `redeemer`, referencing the 42 script.
fn spend_locked(f: &PlutusFixture, redeemer: i64, units: ExUnits, is_valid: bool) -> TxBuilder {
    let p = f.d.params();
    let s42 = redeemer_is_42();
    let mut b = TxBuilder {
        inputs: vec![f.locked],
        reference_inputs: vec![f.ref_42],
        collateral: vec![f.collateral.0],
        collateral_return: Some(Output::new(&addr(&f.alice), Value::lovelace(5_000_000))),
        total_collateral: Some(5_000_000),
        outputs: vec![Output::new(&addr(&f.alice), Value::lovelace(20_000_000))],
        redeemers: vec![RedeemerSpec {
            tag: RedeemerTag::Spend,
            index: 0,
            data: int_data(redeemer),
            ex_units: units,
        }],
        languages: vec![3],
        is_valid,
        ..TxBuilder::default()
    };
    b.balance_fee(&p, &[&f.alice], 0, s42.len() as u64);
    b
}

#[test]
fn plutus_v3_spend_with_reference_script_and_inline_datum() {
    let f = plutus_fixture();
    let b = spend_locked(&f, 42, UNITS, true);
    let tx = b.build(&f.d.params(), &[&f.alice]);
    let v = f.d.validate(&tx).expect("redeemer 42 unlocks");
    assert_eq!(v.redeemers.len(), 1);
    assert!(v.redeemers[0].measured_mem > 0 && v.redeemers[0].measured_mem <= UNITS.mem);
    f.d.submit(&tx).unwrap();
    f.d.produce_block().unwrap();
    assert!(f.d.utxo(&f.locked).is_none());
}

#[test]
fn failing_script_is_rejected_with_its_trace() {
    let f = plutus_fixture();
    let b = spend_locked(&f, 41, UNITS, true);
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    match &e {
        LedgerError::ScriptFailure { purpose, logs, .. } => {
            assert_eq!(purpose, "spend:0");
            assert!(
                logs.iter().any(|l| l.contains("redeemer is not 42")),
                "{logs:?}"
            );
        }
        other => panic!("expected a script failure, got {other}"),
    }
}

#[test]
fn is_valid_false_takes_only_the_collateral() {
    let f = plutus_fixture();
    let b = spend_locked(&f, 41, UNITS, false);
    let h =
        f.d.submit(&b.build(&f.d.params(), &[&f.alice]))
            .expect("accepted with is_valid=false");
    f.d.produce_block().unwrap();
    assert!(
        f.d.utxo(&f.locked).is_some(),
        "the script output stays locked"
    );
    assert!(
        f.d.utxo(&f.collateral.0).is_none(),
        "the collateral is taken"
    );
    let ret =
        f.d.utxo(&OutRef::new(h, 1))
            .expect("collateral return at index len(outputs)");
    assert_eq!(
        ntx_devnet::OutputView::decode(&ret).unwrap().value.coin,
        5_000_000
    );
}

#[test]
fn is_valid_false_with_passing_scripts_is_rejected() {
    let f = plutus_fixture();
    let b = spend_locked(&f, 42, UNITS, false);
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    assert!(matches!(e, LedgerError::ValidTagMismatch), "{e}");
}

#[test]
fn declared_units_below_measured_fail_the_script() {
    let f = plutus_fixture();
    let b = spend_locked(
        &f,
        42,
        ExUnits {
            mem: 100,
            steps: 100_000,
        },
        true,
    );
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    assert!(matches!(e, LedgerError::ExUnitsExceeded { .. }), "{e}");
}

#[test]
fn declared_units_over_the_tx_maximum_are_rejected() {
    let f = plutus_fixture();
    let b = spend_locked(
        &f,
        42,
        ExUnits {
            mem: 16_500_001,
            steps: 1_000_000,
        },
        true,
    );
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    assert!(matches!(e, LedgerError::ExUnitsTooBig { .. }), "{e}");
}

#[test]
fn wrong_total_collateral_is_rejected() {
    let f = plutus_fixture();
    let mut b = spend_locked(&f, 42, UNITS, true);
    b.total_collateral = Some(4_000_000);
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    assert!(
        matches!(e, LedgerError::IncorrectTotalCollateral { .. }),
        "{e}"
    );
}

#[test]
fn insufficient_collateral_is_rejected() {
    let f = plutus_fixture();
    let mut b = spend_locked(&f, 42, UNITS, true);
    b.collateral_return = Some(Output::new(&addr(&f.alice), Value::lovelace(9_900_000)));
    b.total_collateral = Some(100_000);
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    assert!(
        matches!(e, LedgerError::InsufficientCollateral { .. }),
        "{e}"
    );
}

#[test]
fn spent_and_referenced_input_is_rejected() {
    let f = plutus_fixture();
    let mut b = spend_locked(&f, 42, UNITS, true);
    b.inputs.push(f.ref_ok);
    b.reference_inputs.push(f.ref_ok);
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    assert!(matches!(e, LedgerError::NonDisjointRefInputs { .. }), "{e}");
}

#[test]
fn v3_script_returning_true_fails() {
    let f = plutus_fixture();
    let strue = returns_true();
    let lock_to = script_address(v3_hash(&strue));
    // Lock 5 ADA at the returns-true script, then try to spend it.
    let alice = &f.alice;
    let input = first_utxo(&f.d, alice);
    let input = if input.0 == f.collateral.0
        || input.0 == f.ref_42
        || input.0 == f.ref_ok
        || input.0 == f.ref_true
    {
        f.d.utxos_at(&addr(alice))
            .unwrap()
            .into_iter()
            .map(|(r, b)| (r, ntx_devnet::OutputView::decode(&b).unwrap().value))
            .find(|(_, v)| v.coin > 100_000_000)
            .unwrap()
    } else {
        input
    };
    let b = payment(&f.d, alice, input, &lock_to, 5_000_000);
    let h = f.d.submit(&b.build(&f.d.params(), &[alice])).unwrap();
    f.d.produce_block().unwrap();
    let mut s = TxBuilder {
        inputs: vec![OutRef::new(h, 0)],
        reference_inputs: vec![f.ref_true],
        collateral: vec![f.collateral.0],
        collateral_return: Some(Output::new(&addr(alice), Value::lovelace(5_000_000))),
        total_collateral: Some(5_000_000),
        outputs: vec![Output::new(&addr(alice), Value::lovelace(5_000_000))],
        redeemers: vec![RedeemerSpec {
            tag: RedeemerTag::Spend,
            index: 0,
            data: int_data(0),
            ex_units: UNITS,
        }],
        datums: vec![],
        languages: vec![3],
        ..TxBuilder::default()
    };
    s.balance_fee(&f.d.params(), &[alice], 0, strue.len() as u64);
    // The locked output has no datum: V3 allows that.
    let e = rejected(&f.d, &s.build(&f.d.params(), &[alice]));
    assert!(
        matches!(&e, LedgerError::ScriptFailure { detail, .. } if detail.contains("unit")),
        "{e}"
    );
}

#[test]
fn plutus_v3_mint_with_reference_script() {
    let f = plutus_fixture();
    let sok = always_succeeds();
    let policy = v3_hash(&sok);
    let alice = &f.alice;
    let minted = Value::lovelace(2_000_000).with_asset(policy, b"JOB", 1);
    let mut b = TxBuilder {
        inputs: vec![f.locked],
        reference_inputs: vec![f.ref_42, f.ref_ok],
        collateral: vec![f.collateral.0],
        collateral_return: Some(Output::new(&addr(alice), Value::lovelace(5_000_000))),
        total_collateral: Some(5_000_000),
        outputs: vec![
            Output::new(&addr(alice), Value::lovelace(18_000_000)),
            Output::new(&addr(alice), minted).inline_datum(&int_data(1)),
        ],
        mint: [(policy, [(b"JOB".to_vec(), 1i64)].into_iter().collect())]
            .into_iter()
            .collect(),
        redeemers: vec![
            RedeemerSpec {
                tag: RedeemerTag::Spend,
                index: 0,
                data: int_data(42),
                ex_units: UNITS,
            },
            RedeemerSpec {
                tag: RedeemerTag::Mint,
                index: 0,
                data: int_data(0),
                ex_units: UNITS,
            },
        ],
        languages: vec![3],
        ..TxBuilder::default()
    };
    b.balance_fee(
        &f.d.params(),
        &[alice],
        0,
        (redeemer_is_42().len() + sok.len()) as u64,
    );
    let v =
        f.d.validate(&b.build(&f.d.params(), &[alice]))
            .expect("mint is valid");
    assert_eq!(v.redeemers.len(), 2);
}

#[test]
fn stake_registration_withdrawal_and_deregistration() {
    let f = plutus_fixture();
    let sok = always_succeeds();
    let cred = StakeCredential::ScriptHash(v3_hash(&sok));
    let reward = ntx_devnet::Credential::Script(v3_hash(&sok)).reward_address();
    let alice = &f.alice;
    let deposit = f.d.params().key_deposit;
    // 1. Register (legacy tag 0: no witness, pays key_deposit).
    let (r, v) =
        f.d.utxos_at(&addr(alice))
            .unwrap()
            .into_iter()
            .map(|(r, b)| (r, ntx_devnet::OutputView::decode(&b).unwrap().value))
            .find(|(_, v)| v.coin > 100_000_000)
            .unwrap();
    let mut reg = TxBuilder {
        inputs: vec![r],
        outputs: vec![Output::new(
            &addr(alice),
            v.checked_sub(&Value::lovelace(deposit)).unwrap(),
        )],
        certificates: vec![Certificate::StakeRegistration(cred.clone())],
        ..TxBuilder::default()
    };
    reg.balance_fee(&f.d.params(), &[alice], 0, 0);
    // Without paying the deposit value is not conserved.
    let mut unpaid = reg.clone();
    unpaid.outputs[0].value.coin += deposit;
    let e = rejected(&f.d, &unpaid.build(&f.d.params(), &[alice]));
    assert!(matches!(e, LedgerError::ValueNotConserved { .. }), "{e}");
    let h =
        f.d.submit(&reg.build(&f.d.params(), &[alice]))
            .expect("registration is valid");
    f.d.produce_block().unwrap();
    assert_eq!(
        f.d.account(&ntx_devnet::Credential::Script(v3_hash(&sok)))
            .unwrap()
            .deposit,
        deposit
    );
    // Registering twice is rejected.
    let again_in = (OutRef::new(h, 0), reg.outputs[0].value.clone());
    let mut again = TxBuilder {
        inputs: vec![again_in.0],
        outputs: vec![Output::new(
            &addr(alice),
            again_in.1.checked_sub(&Value::lovelace(deposit)).unwrap(),
        )],
        certificates: vec![Certificate::StakeRegistration(cred.clone())],
        ..TxBuilder::default()
    };
    again.balance_fee(&f.d.params(), &[alice], 0, 0);
    let e = rejected(&f.d, &again.build(&f.d.params(), &[alice]));
    assert!(
        matches!(
            e,
            LedgerError::Certificate {
                rule: "StakeKeyRegisteredDELEG",
                ..
            }
        ),
        "{e}"
    );

    // 2. A zero withdrawal runs the withdraw purpose (reference script).
    let withdraw = |amount: u64| {
        let mut w = TxBuilder {
            inputs: vec![again_in.0],
            reference_inputs: vec![f.ref_ok],
            collateral: vec![f.collateral.0],
            collateral_return: Some(Output::new(&addr(alice), Value::lovelace(5_000_000))),
            total_collateral: Some(5_000_000),
            outputs: vec![Output::new(
                &addr(alice),
                again_in.1.checked_add(&Value::lovelace(amount)).unwrap(),
            )],
            withdrawals: [(reward.clone(), amount)].into_iter().collect(),
            redeemers: vec![RedeemerSpec {
                tag: RedeemerTag::Reward,
                index: 0,
                data: int_data(0),
                ex_units: UNITS,
            }],
            languages: vec![3],
            ..TxBuilder::default()
        };
        w.balance_fee(&f.d.params(), &[alice], 0, sok.len() as u64);
        w
    };
    let e = rejected(&f.d, &withdraw(1).build(&f.d.params(), &[alice]));
    assert!(matches!(e, LedgerError::Withdrawal { .. }), "{e}");
    let w = withdraw(0);
    let wv =
        f.d.validate(&w.build(&f.d.params(), &[alice]))
            .expect("zero withdrawal is valid");
    assert_eq!(wv.redeemers[0].purpose, "reward");
}

#[test]
fn withdrawal_from_an_unregistered_credential_is_rejected() {
    let f = plutus_fixture();
    let sok = always_succeeds();
    let reward = ntx_devnet::Credential::Script(v3_hash(&sok)).reward_address();
    let mut b = spend_locked(&f, 42, UNITS, true);
    b.withdrawals.insert(reward, 0);
    b.balance_fee(&f.d.params(), &[&f.alice], 0, redeemer_is_42().len() as u64);
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    assert!(matches!(e, LedgerError::Withdrawal { .. }), "{e}");
}

#[test]
fn reference_scripts_over_200_kib_are_rejected() {
    // Seed 14 outputs carrying 15,000-byte (never run) V3 scripts.
    let mut genesis = GenesisConfig::default();
    let junk = vec![0x4eu8; 15_000];
    let holder = ntx_devnet::KeyPair::generate("holder");
    for i in 0..14u32 {
        let o = Output::new(&addr(&holder), Value::lovelace(100_000_000)).v3_script_ref(&junk);
        genesis.utxos.push(GenesisUtxo {
            tx_hash: hex::encode([9u8; 32]),
            index: i,
            cbor: hex::encode(o.to_cbor()),
        });
    }
    let d = ntx_devnet::Devnet::open(DevnetConfig {
        genesis,
        ..DevnetConfig::default()
    })
    .unwrap();
    let alice = d.key("alice").unwrap();
    let mut b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&alice), 2_000_000);
    b.reference_inputs = (0..14)
        .map(|i| OutRef::new(pallas_crypto::hash::Hash::new([9; 32]), i))
        .collect();
    let e = rejected(&d, &b.build(&d.params(), &[&alice]));
    assert!(
        matches!(e, LedgerError::RefScriptsTooBig { size: 210_000, .. }),
        "{e}"
    );
}

#[test]
fn reference_script_fee_is_charged() {
    let f = plutus_fixture();
    let mut b = spend_locked(&f, 42, UNITS, true);
    // Pay the fee without the reference-script part.
    let without = ntx_devnet::min_fee(
        &f.d.params(),
        b.build(&f.d.params(), &[&f.alice]).len() as u64,
        UNITS.mem,
        UNITS.steps,
        0,
    )
    .total();
    b.outputs[0].value.coin += b.fee - without;
    b.fee = without;
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    assert!(
        matches!(e, LedgerError::FeeTooSmall { ref_script_fee, .. } if ref_script_fee > 0),
        "{e}"
    );
}

#[test]
fn undecodable_bytes_are_rejected_not_panicking() {
    let d = devnet();
    let e = rejected(&d, &[0x84, 0xff, 0x00]);
    assert!(matches!(e, LedgerError::Decode(_)), "{e}");
}

/// Lucid's evaluation sends its own copy of each input (`additionalUtxoSet`),
/// often without the reference script or the datum; the chain's outputs win.
#[test]
fn a_clients_copy_of_an_output_never_replaces_the_chains() {
    let f = plutus_fixture();
    let tx = spend_locked(&f, 42, UNITS, true).build(&f.d.params(), &[&f.alice]);
    let stripped = |r: OutRef, coin: u64| {
        (
            r,
            Output::new(&addr(&f.alice), Value::lovelace(coin)).to_cbor(),
        )
    };
    let extra = vec![
        stripped(f.ref_42, 10_000_000),
        stripped(f.locked, 20_000_000),
    ];
    let units =
        f.d.evaluate(&tx, &extra)
            .expect("evaluated against the chain's outputs");
    assert_eq!(units.len(), 1, "{units:?}");
}

/// A script both referenced and in the witness set: the ledger wants witness
/// scripts to be needed and not already provided by a reference.
#[test]
fn a_referenced_script_also_in_the_witness_set_is_extraneous() {
    let f = plutus_fixture();
    let mut b = spend_locked(&f, 42, UNITS, true);
    b.plutus_v3_scripts.push(redeemer_is_42());
    b.balance_fee(&f.d.params(), &[&f.alice], 0, redeemer_is_42().len() as u64);
    let e = rejected(&f.d, &b.build(&f.d.params(), &[&f.alice]));
    assert!(
        matches!(&e, LedgerError::ExtraneousScript { .. }),
        "not refused as extraneous: {e}"
    );
    assert!(e.to_string().contains("ExtraneousScriptWitnessesUTXOW"));
}
