//! `ntx audit`'s checks over a real devnet history with every outcome (claim,
//! rejection, timeout and no-show refunds, cancel, one job still open): no
//! findings, each lifecycle rebuilt, totals equal to the balances on chain;
//! then an overdue escrow once time passes its settle_by. Collected through
//! both providers, rendered in all three formats.

mod audit_common;

use audit_common::{NTX, scenario};
use ntx_offchain::Network;
use ntx_offchain::audit::{
    Outcome, Rule, SlotRange, check, collect_history, render_html, render_json, render_table,
};
use ntx_offchain::chain::Blockfrost;
use tokio_util::sync::CancellationToken;

fn job<'a>(
    audit: &'a ntx_offchain::audit::Audit,
    id: &[u8; 32],
) -> &'a ntx_offchain::audit::JobReport {
    audit
        .jobs
        .iter()
        .find(|j| j.job_id == hex::encode(id))
        .expect("the job is in the report")
}

#[test]
fn a_devnet_history_with_every_outcome_has_no_findings() {
    let s = scenario();
    let audit = check(&s.history, Network::Devnet);
    assert!(audit.is_clean(), "{}", render_table(&audit));
    assert_eq!(audit.jobs.len(), 6);
    let j = &s.jobs;
    let t = &s.txs;
    let hex = |b: &[u8; 32]| hex::encode(b);
    for (id, outcome, settle) in [
        (j.claimed, Outcome::Claimed, Some(t.claim)),
        (j.rejected, Outcome::RefundedRejected, Some(t.reject)),
        (j.timeout, Outcome::RefundedTimeout, Some(t.timeout)),
        (j.no_show, Outcome::RefundedNoShow, Some(t.no_show)),
        (j.cancelled, Outcome::Cancelled, Some(t.cancel)),
        (j.open, Outcome::Locked, None),
    ] {
        let r = job(&audit, &id);
        assert_eq!(r.outcome, outcome, "{}", r.job_id);
        assert_eq!(r.settle_tx, settle.as_ref().map(hex));
    }
    let claimed = job(&audit, &j.claimed);
    assert_eq!(claimed.lock_tx, Some(hex(&t.lock_a)));
    assert_eq!(claimed.submit_tx, Some(hex(&t.submits[0])));
    assert_eq!(claimed.result_hash, Some(hex(&[0x11; 32])));
    assert_eq!((claimed.amount, claimed.attestations), (25 * NTX, 2));
    assert_eq!(claimed.quorum, "2-of-3");
    assert_eq!(job(&audit, &j.rejected).attestations, 2);
    assert_eq!(job(&audit, &j.open).lock_tx, Some(hex(&t.lock_b)));

    // Totals per provider and requester, to the unit, and as the chain holds them.
    let p = &s.parties;
    let totals = |list: &[ntx_offchain::audit::PartyTotals], who: &ntx_tests::Party| {
        let t = list
            .iter()
            .find(|t| t.address == who.bech32)
            .expect("a party in the totals")
            .clone();
        (t.jobs, t.paid, t.refunded, t.locked)
    };
    assert_eq!(
        totals(&audit.providers, &p.provider_1),
        (3, 25 * NTX, 15 * NTX, 0)
    );
    assert_eq!(
        totals(&audit.providers, &p.provider_2),
        (3, 0, 10 * NTX, 4 * NTX)
    );
    assert_eq!(
        totals(&audit.requesters, &p.requester_a),
        (3, 25 * NTX, 17 * NTX, 0)
    );
    assert_eq!(
        totals(&audit.requesters, &p.requester_b),
        (3, 0, 8 * NTX, 4 * NTX)
    );
    let all = &audit.totals;
    assert_eq!(
        (all.jobs, all.paid, all.refunded, all.locked),
        (6, 25 * NTX, 25 * NTX, 4 * NTX)
    );
    assert_eq!(s.ntx_of(&p.provider_1), 25 * NTX);
    assert_eq!(s.ntx_of(&p.provider_2), 0);
    assert_eq!(s.ntx_of(&p.requester_a), 17 * NTX);
    assert_eq!(s.ntx_of(&p.requester_b), 8 * NTX);

    // The timeline ends where the totals are, never holding more than was locked.
    let last = audit.timeline.last().expect("points");
    assert_eq!(
        (last.locked, last.paid, last.refunded),
        (4 * NTX, 25 * NTX, 25 * NTX)
    );
    assert_eq!(
        audit.timeline.iter().map(|p| p.locked).max(),
        Some(54 * NTX)
    );
    assert!(audit.timeline.windows(2).all(|w| w[0].slot <= w[1].slot));
}

#[test]
fn an_escrow_left_past_settle_by_is_overdue() {
    let s = scenario();
    // Judge the same history at a later "now": past the open job's settle_by.
    let mut history = s.history.clone();
    let settle_by = job(&check(&history, Network::Devnet), &s.jobs.open).settle_by;
    history.now_ms = settle_by;
    assert!(
        check(&history, Network::Devnet).is_clean(),
        "not yet overdue at settle_by"
    );
    history.now_ms = settle_by + 1;
    let audit = check(&history, Network::Devnet);
    let overdue = audit.findings_for(Rule::Overdue);
    assert_eq!(audit.findings.len(), 1, "{}", render_table(&audit));
    assert_eq!(overdue[0].job_id, Some(hex::encode(s.jobs.open)));
    assert_eq!(overdue[0].tx_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_provider_collects_the_same_history() {
    let s = scenario();
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(ntx_devnet::serve_devnet(
        s.world.devnet.clone(),
        0,
        stop.clone(),
        move |addr, _| {
            let _ = tx.send(addr);
        },
    ));
    let addr = rx.await.expect("serves");
    let http =
        Blockfrost::new(Network::Devnet, &format!("http://{addr}/api/v0"), None).expect("provider");
    let range = SlotRange {
        from: None,
        to: Some(s.history.to_slot),
    };
    let over_http = collect_history(&http, s.target.clone(), Network::Devnet, range)
        .await
        .expect("collected over HTTP");
    assert_eq!(over_http, s.history);

    // A later range: the settlements whose locks and submits came before it
    // are still rebuilt (their inputs are resolved from earlier transactions).
    let claim_slot = s
        .history
        .txs
        .iter()
        .find(|t| t.id == s.txs.claim)
        .expect("claim")
        .slot;
    let later = collect_history(
        &http,
        s.target.clone(),
        Network::Devnet,
        SlotRange {
            from: Some(claim_slot),
            to: Some(s.history.to_slot),
        },
    )
    .await
    .expect("collected");
    let audit = check(&later, Network::Devnet);
    assert!(audit.is_clean(), "{}", render_table(&audit));
    assert_eq!(audit.jobs.len(), 5, "every job settled in the range");
    let claimed = job(&audit, &s.jobs.claimed);
    assert_eq!(
        (claimed.outcome, claimed.lock_tx.as_ref()),
        (Outcome::Claimed, None)
    );
    assert_eq!(audit.totals.paid, 25 * NTX);
    stop.cancel();
}

#[test]
fn the_reports_say_the_same_in_three_formats() {
    let s = scenario();
    let audit = check(&s.history, Network::Devnet);
    let table = render_table(&audit);
    assert!(table.contains("FINDINGS: none, every rule held"), "{table}");
    assert!(
        table.contains("refunded-no-show") && table.contains("cancelled"),
        "{table}"
    );
    assert!(
        table.contains(&s.parties.provider_1.bech32[..16]),
        "{table}"
    );

    let json: serde_json::Value = serde_json::from_str(&render_json(&audit)).expect("JSON");
    assert_eq!(json["findings"], serde_json::json!([]));
    assert_eq!(json["totals"]["paid"], 25 * NTX);
    assert_eq!(json["jobs"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        json["target"]["script_hash"],
        hex::encode(s.deployment.script.hash())
    );

    let html = render_html(&audit);
    // To look at the report: NTX_AUDIT_HTML=/tmp/audit.html cargo test --test audit_devnet
    if let Some(path) = std::env::var_os("NTX_AUDIT_HTML") {
        std::fs::write(path, &html).expect("written");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("<svg") && html.contains("<polyline"),
        "a chart"
    );
    assert!(html.contains("25.000000"), "amounts in NTX");
    assert!(
        !html.contains("<script") && !html.contains("src=") && !html.contains("<link"),
        "self-contained"
    );

    // With a finding, each format names its rule.
    let mut history = s.history.clone();
    history.now_ms = job(&audit, &s.jobs.open).settle_by + 1;
    let late = check(&history, Network::Devnet);
    assert!(render_table(&late).contains("[overdue]"));
    assert!(render_html(&late).contains("overdue"));
    let json: serde_json::Value = serde_json::from_str(&render_json(&late)).expect("JSON");
    assert_eq!(json["findings"][0]["rule"], "overdue");
}
