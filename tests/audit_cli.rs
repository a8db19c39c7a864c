//! `ntx audit` as a user runs it: the binary against a devnet served in this
//! process, holding a history with every outcome. Exit code 0 and a clean
//! report, the same in JSON and HTML; 1 once an escrow is overdue; 2 on bad input.

#[path = "tests/audit_common/mod.rs"]
mod audit_common;

use ntx_offchain::Network;
use ntx_offchain::client::DeploymentInfo;
use ntx_tests::cli::Ntx;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

fn ntx(dir: &std::path::Path, url: &str, args: &[&str]) -> (i32, String, String) {
    Ntx::new(env!("CARGO_BIN_EXE_ntx"), dir, url).run(args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntx_audit_reports_and_exits_by_its_findings() {
    let s = audit_common::scenario();
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
    let url = format!("http://{}/api/v0", rx.await.expect("serves"));
    let dir = tempfile::tempdir().expect("temp dir");
    let info = DeploymentInfo::new(
        Network::Devnet,
        &s.world.ntx,
        &s.deployment.script.hash(),
        &s.deployment.script_utxo.reference,
    );
    let file = dir.path().join("deployment.json");
    info.save(&file).expect("written");
    let file = file.to_str().expect("utf-8 path");
    let d = dir.path();

    // Clean: the table, JSON and HTML.
    let (code, out, err) = ntx(d, &url, &["audit", "--deployment", file]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("FINDINGS: none, every rule held"), "{out}");
    assert!(out.contains("6 job(s)"), "{out}");
    let html = d.join("audit.html");
    let (code, out, err) = ntx(
        d,
        &url,
        &[
            "audit",
            "--deployment",
            file,
            "--json",
            "--html",
            "audit.html",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let json: Json = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["findings"], serde_json::json!([]));
    assert_eq!(json["totals"]["paid"], 25 * audit_common::NTX);
    assert_eq!(json["totals"]["locked"], 4 * audit_common::NTX);
    assert_eq!(json["providers"].as_array().map(Vec::len), Some(2));
    let page = std::fs::read_to_string(&html).expect("the HTML report is written");
    assert!(page.contains("<svg") && !page.contains("<script"));
    assert!(err.contains("audit.html"), "{err}");

    // The settlement asset instead of a deployment file: the same deployment.
    let unit = format!(
        "{}.{}",
        hex::encode(s.world.ntx.policy),
        hex::encode(&s.world.ntx.name)
    );
    let (code, out, err) = ntx(d, &url, &["audit", "--settlement", &unit, "--json"]);
    assert_eq!(code, 0, "{err}");
    let by_unit: Json = serde_json::from_str(&out).expect("JSON");
    assert_eq!(by_unit["jobs"], json["jobs"]);

    // Bad input: exit code 2 and a line saying what to fix.
    for (args, why) in [
        (
            vec!["audit", "--settlement", "zz"],
            "not a settlement asset",
        ),
        (
            vec![
                "audit",
                "--deployment",
                file,
                "--from-slot",
                "10",
                "--to-slot",
                "5",
            ],
            "give a non-empty range",
        ),
        (vec!["audit"], "no deployment to audit"),
        (
            vec![
                "audit",
                "--deployment",
                file,
                "--network",
                "preview",
                "--provider-url",
                &url,
            ],
            "--network",
        ),
    ] {
        let (code, _, err) = ntx(d, &url, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }

    // Past the open job's settle_by, nobody settled it: a finding, exit code 1.
    let open = json["jobs"]
        .as_array()
        .and_then(|j| j.iter().find(|j| j["outcome"] == "locked"))
        .expect("the open job")
        .clone();
    let settle_by = open["settle_by"].as_u64().expect("settle_by");
    let sc = s.world.devnet.slot_config();
    let slot = (settle_by - sc.zero_time) / u64::from(sc.slot_length) + sc.zero_slot + 1;
    s.world.devnet.advance_to_slot(slot).expect("time travel");
    s.world.devnet.produce_block().expect("block");
    let (code, out, err) = ntx(d, &url, &["audit", "--deployment", file]);
    assert_eq!(code, 3, "findings have their own exit code: {out}{err}");
    assert!(out.contains("[overdue]"), "{out}");
    assert!(err.contains("1 finding(s)"), "{err}");
    // The same range as before still audits clean.
    let before = json["to_slot"].as_u64().expect("to_slot").to_string();
    let (code, _, err) = ntx(
        d,
        &url,
        &["audit", "--deployment", file, "--to-slot", &before],
    );
    assert_eq!(code, 0, "{err}");
    stop.cancel();
}
