//! Throughput measurement: simple payments and Plutus V3 spends validated
//! and applied per second, on an in-memory devnet, as one burst ([`run`]) or
//! at a steady rate with a block every slot ([`steady`]). Run it with
//! `cargo run --release -p ntx-devnet --example bench` (`-- --help`).

use std::time::Instant;

use pallas_primitives::ExUnits;
use pallas_primitives::conway::RedeemerTag;

use crate::chain::{Devnet, DevnetConfig};
use crate::error::DevnetError;
use crate::genesis::KeyPair;
use crate::ledger::OutRef;
use crate::txbuilder::{Output, RedeemerSpec, TxBuilder};
use crate::value::{OutputView, Value, script_hash};

/// Measured throughput.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Payments submitted.
    pub payments: usize,
    /// Seconds to validate, include in blocks and commit them.
    pub payments_secs: f64,
    /// Payments per second.
    pub payments_per_sec: f64,
    /// Plutus V3 spends submitted.
    pub plutus_spends: usize,
    /// Seconds for them.
    pub plutus_secs: f64,
    /// Plutus V3 spends per second.
    pub plutus_per_sec: f64,
}

/// An always-succeeds Plutus V3 validator (CBOR-wrapped flat).
pub fn always_succeeds_v3() -> Vec<u8> {
    let program = uplc::parser::program("(program 1.0.0 (lam ctx (con unit ())))");
    program
        .ok()
        .and_then(|p| uplc::ast::Program::<uplc::ast::DeBruijn>::try_from(p).ok())
        .and_then(|p| p.to_cbor().ok())
        .unwrap_or_default()
}

fn bad(msg: &str) -> DevnetError {
    DevnetError::BadRequest(format!("bench: {msg}"))
}

/// Splits `key`'s funds into `n` outputs at `to` of `each` lovelace (with
/// `datum` inline when given); returns them after a block.
fn fan_out(
    d: &Devnet,
    key: &KeyPair,
    to: &[u8],
    n: usize,
    each: u64,
    datum: Option<&[u8]>,
) -> Result<Vec<OutRef>, DevnetError> {
    let p = d.params();
    let own = key.address().to_vec();
    let (mut input, mut value) = d
        .utxos_at(&own)?
        .into_iter()
        .filter_map(|(r, b)| OutputView::decode(&b).ok().map(|v| (r, v.value)))
        .max_by_key(|(_, v)| v.coin)
        .ok_or_else(|| bad("no funds"))?;
    let mut made = Vec::new();
    while made.len() < n {
        let k = (n - made.len()).min(150);
        let mut outs: Vec<Output> = (0..k)
            .map(|_| {
                let o = Output::new(to, Value::lovelace(each));
                match datum {
                    Some(dt) => o.inline_datum(dt),
                    None => o,
                }
            })
            .collect();
        let change = value
            .checked_sub(&Value::lovelace(each * k as u64))
            .ok_or_else(|| bad("not enough funds"))?;
        outs.push(Output::new(&own, change));
        let mut b = TxBuilder {
            inputs: vec![input],
            outputs: outs,
            ..TxBuilder::default()
        };
        b.balance_fee(&p, &[key], k, 0);
        let tx = b.build(&p, &[key]);
        submit_making_room(d, &tx)?;
        let h = b.tx_hash(&p);
        made.extend((0..k).map(|i| OutRef::new(h, i as u32)));
        input = OutRef::new(h, k as u32);
        value = b.outputs[k].value.clone();
    }
    while d.mempool_len() > 0 {
        d.produce_block()?;
    }
    Ok(made)
}

fn drain(d: &Devnet) -> Result<(), DevnetError> {
    while d.mempool_len() > 0 {
        d.produce_block()?;
    }
    Ok(())
}

/// An in-memory devnet whose genesis accounts hold a million ADA each.
fn rich_devnet() -> Result<Devnet, DevnetError> {
    let mut genesis = crate::genesis::GenesisConfig::default();
    for a in &mut genesis.accounts {
        a.lovelace = 1_000_000_000_000;
    }
    Devnet::open(DevnetConfig {
        genesis,
        ..DevnetConfig::default()
    })
}

/// `n` signed payments of 2 ADA from `from` to `to`, each spending its own
/// output of a fan-out (made and put in blocks first).
fn payments_from(
    d: &Devnet,
    from: &KeyPair,
    to: &KeyPair,
    n: usize,
) -> Result<Vec<Vec<u8>>, DevnetError> {
    let p = d.params();
    let from_addr = from.address().to_vec();
    let inputs = fan_out(d, from, &from_addr, n, 5_000_000, None)?;
    Ok(inputs
        .iter()
        .map(|r| {
            let mut b = TxBuilder {
                inputs: vec![*r],
                outputs: vec![
                    Output::new(&to.address().to_vec(), Value::lovelace(2_000_000)),
                    Output::new(&from_addr, Value::lovelace(3_000_000)),
                ],
                ..TxBuilder::default()
            };
            b.balance_fee(&p, &[from], 1, 0);
            b.build(&p, &[from])
        })
        .collect())
}

/// Measures `payments` simple payments and `plutus` Plutus V3 spends (each
/// with a reference script, an inline datum and collateral), each kind
/// submitted as one burst.
pub fn run(payments: usize, plutus: usize) -> Result<BenchReport, DevnetError> {
    let d = rich_devnet()?;
    let p = d.params();
    let alice = d.key("alice").ok_or_else(|| bad("no alice"))?;
    let bob = d.key("bob").ok_or_else(|| bad("no bob"))?;
    let alice_addr = alice.address().to_vec();

    // Payments.
    let txs = payments_from(&d, &alice, &bob, payments)?;
    let t = Instant::now();
    for tx in &txs {
        submit_making_room(&d, tx)?;
    }
    drain(&d)?;
    let payments_secs = t.elapsed().as_secs_f64();

    // Plutus V3 spends.
    let script = always_succeeds_v3();
    let script_addr = pallas_addresses::ShelleyAddress::new(
        pallas_addresses::Network::Testnet,
        pallas_addresses::ShelleyPaymentPart::script_hash(script_hash(3, &script)),
        pallas_addresses::ShelleyDelegationPart::Null,
    )
    .to_vec();
    let datum = pallas_codec::minicbor::to_vec(pallas_primitives::PlutusData::BigInt(
        pallas_primitives::BigInt::Int(7.into()),
    ))
    .unwrap_or_default();
    let bob_addr = bob.address().to_vec();
    let (bob_in, bob_val) = d
        .utxos_at(&bob_addr)?
        .into_iter()
        .filter_map(|(r, b)| OutputView::decode(&b).ok().map(|v| (r, v.value)))
        .max_by_key(|(_, v)| v.coin)
        .ok_or_else(|| bad("no bob funds"))?;
    let mut setup = TxBuilder {
        inputs: vec![bob_in],
        outputs: vec![
            Output::new(&bob_addr, Value::lovelace(20_000_000)).v3_script_ref(&script),
            Output::new(&bob_addr, Value::lovelace(50_000_000)),
            Output::new(
                &bob_addr,
                bob_val
                    .checked_sub(&Value::lovelace(70_000_000))
                    .ok_or_else(|| bad("bob is short"))?,
            ),
        ],
        ..TxBuilder::default()
    };
    setup.balance_fee(&p, &[&bob], 2, 0);
    let sh = d.submit(&setup.build(&p, &[&bob]))?;
    drain(&d)?;
    let (ref_script, collateral) = (OutRef::new(sh, 0), OutRef::new(sh, 1));
    let locked = fan_out(&d, &alice, &script_addr, plutus, 5_000_000, Some(&datum))?;
    let units = ExUnits {
        mem: 100_000,
        steps: 50_000_000,
    };
    let txs: Vec<Vec<u8>> = locked
        .iter()
        .map(|r| {
            let mut b = TxBuilder {
                inputs: vec![*r],
                reference_inputs: vec![ref_script],
                collateral: vec![collateral],
                collateral_return: Some(Output::new(&bob_addr, Value::lovelace(45_000_000))),
                total_collateral: Some(5_000_000),
                outputs: vec![Output::new(&alice_addr, Value::lovelace(5_000_000))],
                redeemers: vec![RedeemerSpec {
                    tag: RedeemerTag::Spend,
                    index: 0,
                    data: datum.clone(),
                    ex_units: units,
                }],
                languages: vec![3],
                ..TxBuilder::default()
            };
            b.balance_fee(&p, &[&bob], 0, script.len() as u64);
            b.build(&p, &[&bob])
        })
        .collect();
    let t = Instant::now();
    for tx in &txs {
        submit_making_room(&d, tx)?;
    }
    drain(&d)?;
    let plutus_secs = t.elapsed().as_secs_f64();

    Ok(BenchReport {
        payments,
        payments_secs,
        payments_per_sec: payments as f64 / payments_secs.max(1e-9),
        plutus_spends: plutus,
        plutus_secs,
        plutus_per_sec: plutus as f64 / plutus_secs.max(1e-9),
    })
}

/// One stretch of a steady-rate run: payments `first..last` and their rate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stretch {
    /// Index of its first payment.
    pub first: usize,
    /// One past its last payment.
    pub last: usize,
    /// Seconds from its first submission to the block that took its last.
    pub secs: f64,
    /// Payments per second over the stretch.
    pub per_sec: f64,
}

/// A steady-rate run: payments arriving while a block is made every slot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SteadyReport {
    /// Payments submitted.
    pub payments: usize,
    /// Payments arriving in each slot, before its block.
    pub per_slot: usize,
    /// Blocks made.
    pub blocks: u64,
    /// Seconds, all told.
    pub secs: f64,
    /// Payments per second, all told.
    pub per_sec: f64,
    /// The rate per stretch of `stretch` payments, in order: flat when the
    /// devnet does not slow as its chain and UTxO set grow.
    pub stretches: Vec<Stretch>,
    /// The last stretch's rate over the first's.
    pub last_over_first: f64,
}

/// Submits `payments` simple payments at a steady rate — `per_slot` of them,
/// then that slot's block, slot after slot — and reports the rate for every
/// `stretch` payments. The payments are signed beforehand; the clock runs
/// from the first submission to the block that takes the last.
pub fn steady(
    payments: usize,
    per_slot: usize,
    stretch: usize,
) -> Result<SteadyReport, DevnetError> {
    let (per_slot, stretch) = (per_slot.max(1), stretch.max(1));
    let d = rich_devnet()?;
    let alice = d.key("alice").ok_or_else(|| bad("no alice"))?;
    let bob = d.key("bob").ok_or_else(|| bad("no bob"))?;
    let txs = payments_from(&d, &alice, &bob, payments)?;
    let first_block = d.tip().height;
    let start = Instant::now();
    let (mut mark, mut from) = (start, 0);
    let mut stretches = Vec::new();
    for (i, slot) in txs.chunks(per_slot).enumerate() {
        for tx in slot {
            submit_making_room(&d, tx)?;
        }
        d.produce_block()?;
        let done = ((i + 1) * per_slot).min(txs.len());
        if done == txs.len() {
            drain(&d)?;
        }
        if done - from >= stretch || done == txs.len() {
            let secs = mark.elapsed().as_secs_f64();
            stretches.push(Stretch {
                first: from,
                last: done,
                secs,
                per_sec: (done - from) as f64 / secs.max(1e-9),
            });
            (mark, from) = (Instant::now(), done);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = |s: Option<&Stretch>| s.map_or(0.0, |s| s.per_sec);
    Ok(SteadyReport {
        payments: txs.len(),
        per_slot,
        blocks: d.tip().height - first_block,
        secs,
        per_sec: txs.len() as f64 / secs.max(1e-9),
        last_over_first: rate(stretches.last()) / rate(stretches.first()).max(1e-9),
        stretches,
    })
}

/// Submits `tx`; when the mempool is full (as a node's fills), makes a block
/// and submits again, as a client that resends on Blockfrost's 425 would.
fn submit_making_room(d: &Devnet, tx: &[u8]) -> Result<(), DevnetError> {
    match d.submit(tx) {
        Err(DevnetError::MempoolFull { .. }) => {
            d.produce_block()?;
            d.submit(tx).map(drop)
        }
        other => other.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_run_covers_every_payment_in_stretches_and_a_block_a_slot() {
        let r = steady(650, 100, 300).expect("runs");
        assert_eq!(r.payments, 650);
        let bounds: Vec<(usize, usize)> = r.stretches.iter().map(|s| (s.first, s.last)).collect();
        assert_eq!(bounds, vec![(0, 300), (300, 600), (600, 650)]);
        assert!(
            r.blocks >= 7,
            "a block for each slot's arrivals: {}",
            r.blocks
        );
        assert!(r.stretches.iter().all(|s| s.per_sec > 0.0));
    }
}
