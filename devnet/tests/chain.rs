//! Persistence, crash safety, rollback and time travel.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use ntx_devnet::{ClockMode, Devnet, DevnetConfig, OutRef, RollbackMode};

fn open(dir: &std::path::Path) -> Devnet {
    Devnet::open(DevnetConfig {
        data_dir: Some(dir.to_path_buf()),
        ..DevnetConfig::default()
    })
    .unwrap()
}

#[test]
fn restart_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (tip, funded, alice_skey) = {
        let d = open(dir.path());
        let carol = ntx_devnet::KeyPair::generate("carol");
        let out = d.fund_now(&bech32(&carol), 3_000_000, 5).unwrap();
        d.advance_slots(10).unwrap();
        d.produce_block().unwrap();
        (d.tip(), out, d.key("alice").unwrap().secret)
    }; // dropped without any shutdown
    let d = open(dir.path());
    assert_eq!(d.tip(), tip);
    assert!(d.utxo(&funded).is_some());
    assert_eq!(d.key("alice").unwrap().secret, alice_skey);
    assert!(d.current_slot() >= tip.slot);
    // The key files are cardano-cli TextEnvelopes.
    let skey: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("alice.skey")).unwrap())
            .unwrap();
    assert_eq!(skey["type"], "PaymentSigningKeyShelley_ed25519");
    assert_eq!(
        skey["cborHex"].as_str().unwrap(),
        format!("5820{}", hex::encode(alice_skey))
    );
    // And it keeps producing blocks on top.
    let alice = d.key("alice").unwrap();
    let b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&alice), 2_000_000);
    d.submit(&b.build(&d.params(), &[&alice])).unwrap();
    assert_eq!(d.produce_block().unwrap().height, tip.height + 1);
}

/// Child half of the crash test: produces blocks forever, printing each
/// committed height. Only runs when the parent sets DEVNET_CRASH_DIR.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("DEVNET_CRASH_DIR") else {
        return;
    };
    let d = open(std::path::Path::new(&dir));
    let alice = d.key("alice").unwrap();
    loop {
        let b = payment(
            &d,
            &alice,
            richest_utxo(&d, &alice),
            &addr(&alice),
            2_000_000,
        );
        d.submit(&b.build(&d.params(), &[&alice])).unwrap();
        let block = d.produce_block().unwrap();
        println!("committed {}", block.height);
    }
}

#[test]
fn sigkill_between_blocks_loses_no_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("DEVNET_CRASH_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = 0;
    while let Some(Ok(l)) = lines.next() {
        if let Some(h) = l.split("committed ").nth(1) {
            last = h.trim().parse().unwrap();
            if last >= 5 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(last >= 5, "the child committed blocks");
    let d = open(dir.path());
    assert!(
        d.tip().height >= last,
        "tip {} < last committed {last}",
        d.tip().height
    );
    // The resumed chain is consistent: alice's funds are spendable.
    let alice = d.key("alice").unwrap();
    let b = payment(
        &d,
        &alice,
        richest_utxo(&d, &alice),
        &addr(&alice),
        2_000_000,
    );
    d.submit(&b.build(&d.params(), &[&alice])).unwrap();
}

#[test]
fn rollback_returns_transactions_to_the_mempool_or_drops_them() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let bob = d.key("bob").unwrap();
    let input = first_utxo(&d, &alice);
    let b = payment(&d, &alice, input.clone(), &addr(&bob), 2_000_000);
    let h = d.submit(&b.build(&d.params(), &[&alice])).unwrap();
    let block = d.produce_block().unwrap();
    assert!(d.utxo(&OutRef::new(h, 0)).is_some());
    assert_eq!(
        d.rollback(1, RollbackMode::ReturnToMempool).unwrap().blocks,
        1
    );
    assert_eq!(d.tip().height, block.height - 1);
    assert!(d.utxo(&OutRef::new(h, 0)).is_none());
    assert!(d.utxo(&input.0).is_some(), "the input is unspent again");
    assert_eq!(d.mempool_len(), 1);
    d.produce_block().unwrap();
    assert!(d.utxo(&OutRef::new(h, 0)).is_some());
    d.rollback(1, RollbackMode::Drop).unwrap();
    assert_eq!(d.mempool_len(), 0);
    assert!(d.utxo(&input.0).is_some());
}

#[test]
fn time_travel_expires_pending_transactions() {
    let d = devnet();
    let alice = d.key("alice").unwrap();
    let mut b = payment(&d, &alice, first_utxo(&d, &alice), &addr(&alice), 2_000_000);
    b.ttl = Some(20);
    b.balance_fee(&d.params(), &[&alice], 1, 0);
    d.submit(&b.build(&d.params(), &[&alice])).unwrap();
    assert_eq!(d.advance_to_slot(25).unwrap(), 25);
    let block = d.produce_block().unwrap();
    assert_eq!(block.slot, 25);
    assert_eq!(block.tx_count, 0, "expired at block time");
    assert!(d.advance_to_slot(3).is_err(), "time does not go backwards");
}

#[test]
fn wall_clock_mode_counts_slots_from_genesis() {
    let d = Devnet::open(DevnetConfig {
        clock: ClockMode::Wall,
        slot_length_ms: 1000,
        ..DevnetConfig::default()
    })
    .unwrap();
    let before = d.current_slot();
    d.advance_slots(1000).unwrap();
    assert!(d.current_slot() >= before + 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_chain_makes_blocks_on_its_cadence_when_asked() {
    let d = Devnet::open(DevnetConfig {
        slot_length_ms: 20,
        clock: ClockMode::Wall,
        ..DevnetConfig::default()
    })
    .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let clock = {
        let (d, c) = (d.clone(), cancel.clone());
        tokio::spawn(async move { d.run_clock(c).await })
    };
    // Nothing waits and no cadence: no block.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(d.tip().height, 0);
    // With one every 2 slots, confirmations grow on the idle chain.
    d.set_empty_block_every(2);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while d.tip().height < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no blocks on the cadence"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(d.tip().tx_count, 0, "an empty block");
    cancel.cancel();
    clock.await.unwrap();
}

/// After a block, what it left in the mempool is re-checked as a node re-checks
/// it: for what the block can change (here, a validity interval that passed),
/// never validated again in full (no scripts, no signatures run twice).
#[test]
fn a_block_leaves_its_leftovers_validated_once_and_drops_the_expired() {
    let keys = |d: &Devnet| -> Vec<ntx_devnet::KeyPair> {
        ["alice", "bob", "carol"]
            .iter()
            .map(|k| d.key(k).unwrap())
            .collect()
    };
    let payments = |d: &Devnet, ttl: Option<u64>| -> Vec<Vec<u8>> {
        let keys = keys(d);
        (0..3)
            .map(|i| {
                let (from, to) = (&keys[i], &keys[(i + 1) % 3]);
                let mut b = payment(d, from, first_utxo(d, from), &addr(to), 2_000_000);
                if i == 2 {
                    b.ttl = ttl;
                    b.balance_fee(&d.params(), &[from], 1, 0);
                }
                b.build(&d.params(), &[from])
            })
            .collect()
    };
    // Blocks of one payment each.
    let d = devnet_with_blocks_of_one(genesis_with_carol(), |d| payments(d, Some(1_000)));
    let start = d.current_slot();
    // The third payment expires at the slot the second block is made in.
    let txs = payments(&d, Some(start + 2));
    let before = d.status().full_validations;
    d.submit(&txs[0]).unwrap();
    d.submit(&txs[1]).unwrap();
    assert_eq!(d.status().full_validations, before + 2);
    d.produce_block().unwrap();
    assert_eq!(d.mempool_len(), 1, "the second payment is left over");
    assert_eq!(
        d.status().full_validations,
        before + 2,
        "the leftover is not validated again"
    );
    d.submit(&txs[2]).unwrap();
    assert_eq!(d.mempool_len(), 2);
    d.produce_block().unwrap();
    assert_eq!(d.tip().tx_count, 1, "the leftover landed");
    assert_eq!(
        d.mempool_len(),
        0,
        "the third payment's validity interval passed with that block"
    );
    assert_eq!(d.status().full_validations, before + 3);
}
