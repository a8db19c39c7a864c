//! Strangers' URLs against real agents (docs/SECURITY.md, "Off-chain attackers"):
//! a requester's spec URL that sends a giant body or drips, a provider's result
//! URL on an internal address, a record that names another host for pushes,
//! verifier URLs that never answer. Every peer is a [`HostilePeer`].

use std::time::{Duration, Instant};

use ntx_offchain::client::SpecSource;
use ntx_offchain::market::{Offer, OfferRole, TaskOffer, VerifierPolicy};
use ntx_offchain::protocol::blake2b_256;
use ntx_offchain::wallet::Signer;
use ntx_tests::agents::Agent;
use ntx_tests::hostile::{Behaviour, HostilePeer};
use ntx_tests::world::{AgentWorld, PRICE, stop_all};

/// Locks a job for the provider whose spec is fetched from `url` (its hash is the
/// honest spec's, so only the fetch decides).
async fn lock_spec_url(w: &AgentWorld, url: &str) -> [u8; 32] {
    let mut request = w.lock_request(&w.spec(), PRICE, &w.payout, 90_000).await;
    request.spec = SpecSource::Url(url.to_string());
    ntx_tests::agents::lock_one(&w.client, &w.requester, request, |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_giant_spec_is_refused_while_reading_and_never_fetched_again() {
    let w = AgentWorld::new().await;
    w.fund_agent(50);
    let giant = HostilePeer::start(Behaviour::Giant { bytes: 1 << 30 }).await;
    let mut provider = Agent::start(w.provider_config());
    let job = lock_spec_url(&w, &format!("{}/spec.json", giant.url)).await;
    let row = w
        .wait_stage("the giant spec refused", &provider, &job, "refused")
        .await;
    let failure = row["failure"].as_str().unwrap_or_default();
    assert!(failure.contains("more than 1048576 bytes"), "{row}");
    // Several polls later it has still been asked once: a final refusal.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(giant.hits(), 1, "{:?}", giant.requests());
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dripping_spec_holds_a_download_and_not_the_only_compute_slot() {
    let w = AgentWorld::new().await;
    w.fund_agent(50);
    let drip = HostilePeer::start(Behaviour::Drip {
        interval: Duration::from_millis(500),
    })
    .await;
    let mut config = w.provider_config();
    config
        .provider
        .as_mut()
        .expect("a provider")
        .max_concurrent_jobs = 1;
    let mut provider = Agent::start(config);
    let mut verifiers = w.start_verifiers();
    let dripping = lock_spec_url(&w, &format!("{}/spec.json", drip.url)).await;
    w.wait_for("the provider to start the dripping download", || async {
        (drip.hits() == 1).then_some(())
    })
    .await;
    let honest = w.lock().await;
    w.wait_paid(&provider, &honest).await;
    // The honest job was computed and paid while the provider was still reading
    // the drip (its connection is open, its 20 s budget not spent): the drip never
    // held the only compute slot.
    assert_eq!(
        drip.open_connections(),
        1,
        "the drip's download was given up"
    );
    let row = provider.job(&dripping).await.expect("the dripping job");
    assert_eq!(row["stage"], "accepted", "{row}");
    assert_eq!(drip.hits(), 1);
    stop_all(Some(&mut provider), &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_result_urls_are_refused_and_fetched_bodies_never_published() {
    let w = AgentWorld::new().await;
    w.fund_agent(50);
    let secret = b"internal: the database password".to_vec();
    let internal = HostilePeer::start(Behaviour::Serve {
        status: 200,
        body: secret.clone(),
    })
    .await;
    let redirect =
        HostilePeer::start(Behaviour::RedirectTo(format!("{}/secret", internal.url))).await;
    // A provider that submits URLs on the verifiers' own network, under an
    // on-chain result hash that is not the secret's.
    let urls = [
        format!("{}/internal/secret?/results/x", internal.url),
        format!("{}/results/x", redirect.url),
    ];
    let mut jobs = Vec::new();
    for url in &urls {
        let job = w.lock().await;
        let escrow = w.escrow(&job).await.expect("locked");
        let submit = w
            .client
            .submit(&w.agent_wallet(), &escrow, [7; 32], url)
            .await
            .expect("a Submit builds");
        w.client.send(&submit, 1).await.expect("submitted");
        jobs.push(job);
    }

    // A verifier whose operator allows no private addresses asks neither host.
    let mut strict = w.verifier_config(0);
    strict.fetch.allow_private_addresses = Some(false);
    let mut strict = Agent::start(strict);
    for job in &jobs {
        let row = w
            .wait_stage("the URL refused", &strict, job, "failed")
            .await;
        let failure = row["failure"].as_str().unwrap_or_default();
        assert!(failure.contains("non-public address"), "{row}");
    }
    assert_eq!(internal.hits(), 0, "the internal service was reached");
    assert_eq!(redirect.hits(), 0, "a loopback URL was asked");

    // A devnet verifier (private addresses allowed) fetches the first, follows no
    // redirect for the second, and publishes neither body nor hash of what it got.
    let mut devnet = Agent::start(w.verifier_config(1));
    let judged = w
        .wait_for("the wrong bytes judged", || async {
            devnet
                .job(&jobs[0])
                .await
                .filter(|j| j["verdict"].is_string())
        })
        .await;
    assert_eq!(judged["verdict"], "reject: HashMismatch", "{judged}");
    let refused = w
        .wait_stage("the redirect refused", &devnet, &jobs[1], "failed")
        .await;
    assert!(
        refused["failure"]
            .as_str()
            .unwrap_or_default()
            .contains("redirect"),
        "{refused}"
    );
    assert!(
        !internal.requests().iter().any(|r| r == "GET /secret"),
        "the redirect was followed: {:?}",
        internal.requests()
    );
    let rows = reqwest::get(format!("{}/jobs", devnet.url))
        .await
        .expect("/jobs")
        .text()
        .await
        .expect("a body");
    assert!(!rows.contains(&hex::encode(blake2b_256(&secret))), "{rows}");
    assert!(!rows.contains("database password"), "{rows}");
    // An outsider's oversized push is refused before it is parsed.
    let big = reqwest::Client::new()
        .post(format!("{}/attestations", devnet.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 32 * 1024])
        .send()
        .await
        .expect("an answer");
    assert_eq!(big.status(), 413);
    strict.stop().await;
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verifiers_push_to_the_url_the_providers_offer_names_and_nowhere_else() {
    let w = AgentWorld::new().await;
    w.fund_agent(50);
    // The provider's advertised endpoint (a recorder that takes every push) and,
    // elsewhere, the host the result is served from.
    let advertised = HostilePeer::start(Behaviour::Serve {
        status: 202,
        body: br#"{"status":"accepted"}"#.to_vec(),
    })
    .await;
    let job = w.lock().await;
    let spec_doc = w.spec();
    let spec = ntx_node_agent::JobSpec::from_json(&spec_doc.job.to_string()).expect("job");
    let engine = ntx_node_agent::Engine::new(ntx_node_agent::Device::Cpu);
    let result = engine.compute(&spec, &w.model_dir).expect("computes");
    let host = HostilePeer::start(Behaviour::Serve {
        status: 200,
        body: result.bytes.clone(),
    })
    .await;
    let agent = w.agent_wallet();
    let offer = Offer {
        version: 1,
        deployment: hex::encode(w.client.deployment().script.hash()),
        role: OfferRole::Provider,
        key: hex::encode(w.agent_key.public_key()),
        payout: Some(w.payout.address().to_bech32()),
        url: advertised.url.clone(),
        tasks: vec![TaskOffer {
            task: "embed".into(),
            model: spec_doc.job["model"].clone(),
            price: PRICE,
            price_per_token: 0,
        }],
        policy: Some(VerifierPolicy::listed(
            &w.verifier_keys
                .iter()
                .map(|k| k.public_key())
                .collect::<Vec<_>>(),
        )),
        issued_ms: w.client.slot_time(w.client.now_slot().await.expect("now")),
        expires_ms: w.client.slot_time(w.client.now_slot().await.expect("now")) + 3_600_000,
    };
    let published = w
        .client
        .publish_offer(&agent, offer)
        .await
        .expect("the offer builds");
    w.client.send(&published, 1).await.expect("published");
    let escrow = w.escrow(&job).await.expect("locked");
    let url = format!("{}/results/{}", host.url, result.hash.to_hex());
    let submit = w
        .client
        .submit(&agent, &escrow, result.hash.0, &url)
        .await
        .expect("a Submit builds");
    w.client.send(&submit, 1).await.expect("submitted");
    let mut verifiers = w.start_verifiers();
    for v in &verifiers {
        w.wait_stage("the attestation pushed", v, &job, "pushed")
            .await;
    }
    let pushes = advertised.requests();
    assert_eq!(
        pushes.iter().filter(|r| *r == "POST /attestations").count(),
        3,
        "{pushes:?}"
    );
    assert!(
        host.requests()
            .iter()
            .all(|r| r.starts_with("GET /results/")),
        "the result's host got something else: {:?}",
        host.requests()
    );
    stop_all(None, &mut verifiers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_jobs_whose_verifiers_never_answer_do_not_slow_an_honest_job() {
    let w = AgentWorld::new().await;
    w.fund_agent(200);
    w.live
        .devnet
        .fund_now(&w.requester.address().to_bech32(), 100_000_000, 20 * PRICE)
        .expect("the faucet pays");
    let tarpit = HostilePeer::start(Behaviour::Tarpit).await;
    let mut provider = Agent::start(w.provider_config());
    let mut verifiers = w.start_verifiers();

    // The honest job's time alone: the slower of two runs, so that a test running
    // beside this one does not make the bound tighter than it is.
    let mut alone = Duration::ZERO;
    for _ in 0..2 {
        let started = Instant::now();
        let job = w.lock().await;
        w.wait_for("an honest job paid", || async {
            let row = provider.job(&job).await?;
            (row["stage"] == "paid").then_some(())
        })
        .await;
        alone = alone.max(started.elapsed());
    }

    // Twenty jobs whose specs send the provider to the tarpit for attestations
    // (the datum's verifiers are the real ones, so the policy takes them).
    let mut tarpit_spec = w.spec();
    for v in tarpit_spec.verifiers.iter_mut() {
        v.url = tarpit.url.clone();
    }
    for _ in 0..20 {
        w.lock_spec(tarpit_spec.clone(), PRICE, &w.payout, 90_000)
            .await;
    }
    let rows = w
        .wait_for(
            "twenty jobs submitted and waiting on the tarpit",
            || async {
                let jobs = provider.jobs().await;
                let waiting = jobs.iter().filter(|j| j["stage"] == "submitted").count();
                (waiting == 20 && tarpit.hits() >= 20).then_some(jobs)
            },
        )
        .await;
    assert!(rows.len() >= 21);

    let paid_before = w.ntx(&w.payout);
    let started = Instant::now();
    let honest = w.lock().await;
    w.wait_for("the honest job paid", || async {
        let row = provider.job(&honest).await?;
        (row["stage"] == "paid").then_some(())
    })
    .await;
    let with_tarpits = started.elapsed();
    eprintln!("lock → paid: {alone:?} alone, {with_tarpits:?} beside twenty tarpit jobs");
    assert!(w.ntx(&w.payout) > paid_before);
    assert!(
        with_tarpits <= alone * 2,
        "lock → paid took {with_tarpits:?} beside twenty tarpit jobs, {alone:?} alone"
    );
    stop_all(Some(&mut provider), &mut verifiers).await;
}
