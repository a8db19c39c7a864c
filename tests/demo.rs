//! `ntx demo` end to end, as a newcomer runs it: it must finish, the audit
//! must find nothing, every party must hold exactly what the jobs say, the
//! cheating provider's job must be refunded, the requester must have found the
//! agents through the market, and every paid job's answer must be printed.

use std::process::Command;

use serde_json::Value as Json;

#[test]
fn the_demo_pays_the_honest_provider_refunds_the_cheat_and_audits_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    let run = Command::new(env!("CARGO_BIN_EXE_ntx"))
        .args(["demo", "--jobs", "3", "--out"])
        .arg(&out)
        .env_remove("NTX_MINILM_DIR")
        .output()
        .expect("ntx demo runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "ntx demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: Json = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("summary is JSON");
    assert_eq!(summary["findings"], 0, "{summary:#}");
    // Every claimed and rejected job was re-run by the auditor (no "not re-run" notes).
    assert_eq!(
        summary["notes"].as_array().map(Vec::len),
        Some(0),
        "{summary:#}"
    );
    // Three embeddings, one generate job, one for the cheater.
    assert_eq!(summary["jobs"], 5);
    for party in ["provider", "cheater", "requester"] {
        assert_eq!(
            summary[party]["ntx_units"], summary[party]["expected_ntx_units"],
            "{party}: {summary:#}"
        );
    }
    for party in ["provider", "cheater"] {
        assert_eq!(
            summary[party]["lovelace"], summary[party]["expected_lovelace"],
            "{party}: {summary:#}"
        );
    }
    let outcomes: Vec<&str> = summary["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .filter_map(|o| o["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| o.contains("Claim")).count(),
        4,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| o.contains("Reject")).count(),
        1,
        "{outcomes:?}"
    );
    let answers = summary["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 4, "{summary:#}");
    let texts: Vec<&str> = answers
        .iter()
        .filter(|a| a["answer"]["task"] == "generate")
        .filter_map(|a| a["answer"]["text"].as_str())
        .collect();
    assert!(
        texts.len() == 1 && !texts[0].is_empty(),
        "one generated text: {answers:?}"
    );
    assert!(
        stdout.contains("verifier offers on chain"),
        "the requester found the agents through the market:\n{stdout}"
    );
    assert!(out.join("audit.html").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let keys: Vec<_> = std::fs::read_dir(out.join("keys"))
            .expect("the demo's key folder")
            .map(|e| e.expect("an entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "skey"))
            .collect();
        assert!(!keys.is_empty());
        for key in keys {
            let mode = std::fs::metadata(&key)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{} is {mode:o}", key.display());
        }
    }
    assert!(stdout.contains("FINDINGS: none"), "{stdout}");
}
