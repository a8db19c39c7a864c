//! The escrow's whole life on the devnet, through the off-chain builders: every
//! transaction passes the devnet's phase-1 and phase-2 ledger rules, and the
//! balances move to the unit.

use ntx_offchain::Network;
use ntx_offchain::builder::{self, EscrowUtxo, JobTerms};
use ntx_offchain::protocol::{Settlement, Verdict, attestation_message, sign_attestation};
use ntx_offchain::tx::Value;
use ntx_tests::{Party, World};

const PRICE: u64 = 25_000_000;

fn ntx_of(world: &World, party: &Party) -> u64 {
    world
        .utxos(&party.address_bytes)
        .iter()
        .map(|u| {
            u.output
                .value
                .quantity_of(&world.ntx.policy, &world.ntx.name)
        })
        .sum()
}

#[test]
fn deploy_lock_submit_claim_on_the_devnet() {
    let world = World::new();
    let deployer = Party::from_seed(0x40, Network::Devnet);
    let requester = Party::from_seed(0x41, Network::Devnet);
    let provider = Party::from_seed(0x42, Network::Devnet);
    let agent = Party::from_seed(0x43, Network::Devnet);
    let keeper = Party::from_seed(0x44, Network::Devnet);
    let mut verifiers: Vec<Party> = (0..3)
        .map(|i| Party::from_seed(0x50 + i, Network::Devnet))
        .collect();
    verifiers.sort_by_key(|v| v.public_key);

    let deployment = world.deploy(&deployer).expect("deploys");

    // Lock.
    let funding = vec![world.fund(&requester, 10_000_000, PRICE)];
    let collateral = world.fund(&requester, 5_000_000, 0);
    let now = world.devnet.current_slot();
    let terms = JobTerms {
        requester: requester.address,
        provider: provider.address,
        agent: agent.key_hash,
        spec_hash: [0x5b; 32],
        price: PRICE,
        verifiers: verifiers.iter().map(|v| v.public_key).collect(),
        threshold: 2,
        submit_by: world.time(now + 200),
        settle_by: world.time(now + 400),
    };
    let draft = builder::lock(
        &deployment,
        &[terms],
        funding,
        collateral,
        now + 100,
        Default::default(),
    )
    .expect("lock builds");
    let lock = deployment
        .finish(draft, &requester.address_bytes, &[&requester.key], 0)
        .expect("lock evaluates");
    world.submit(&lock).expect("the devnet accepts the lock");
    assert_eq!(ntx_of(&world, &requester), 0);

    // Submit.
    let escrow_utxo = world
        .utxos(&deployment.script.address(Network::Devnet).to_vec())
        .into_iter()
        .find(|u| u.reference.transaction_id == lock.tx.id)
        .expect("the escrow is on chain");
    let escrow = EscrowUtxo::from_utxo(&deployment, escrow_utxo).expect("it is an escrow");
    let result_hash = [0x77; 32];
    let funding = vec![world.fund(&agent, 5_000_000, 0)];
    let collateral = world.fund(&agent, 5_000_000, 0);
    let now = world.devnet.current_slot();
    let draft = builder::submit(
        &deployment,
        &escrow,
        result_hash,
        funding,
        collateral,
        now + 50,
    )
    .expect("submit builds");
    let submit = deployment
        .finish(draft, &agent.address_bytes, &[&agent.key], 0)
        .expect("submit evaluates");
    world
        .submit(&submit)
        .expect("the devnet accepts the submit");

    // Claim, by a keeper, with two of three attestations.
    let escrow = EscrowUtxo::from_utxo(
        &deployment,
        world
            .utxos(&deployment.script.address(Network::Devnet).to_vec())
            .into_iter()
            .find(|u| u.reference.transaction_id == submit.tx.id)
            .expect("the submitted escrow is on chain"),
    )
    .expect("still an escrow");
    let message = attestation_message(
        Verdict::Accept,
        &deployment.script.hash(),
        &escrow.datum.job_id,
        &result_hash,
    );
    let attestations = vec![
        sign_attestation(&verifiers[0].key, 0, &message),
        sign_attestation(&verifiers[2].key, 2, &message),
    ];
    let payout = escrow.payout(&deployment);
    let funding = vec![world.fund(&keeper, 5_000_000, 0)];
    let collateral = world.fund(&keeper, 5_000_000, 0);
    let now = world.devnet.current_slot();
    let draft = builder::settle(
        &deployment,
        vec![(escrow, Settlement::Claim { attestations })],
        funding,
        collateral,
        now,
        100,
        0,
    )
    .expect("claim builds");
    let claim = deployment
        .finish(draft, &keeper.address_bytes, &[&keeper.key], 0)
        .expect("claim evaluates");
    world.submit(&claim).expect("the devnet accepts the claim");

    let paid: Value =
        world
            .utxos(&provider.address_bytes)
            .iter()
            .fold(Value::default(), |mut v, u| {
                v.add(&u.output.value);
                v
            });
    assert_eq!(
        paid, payout,
        "the provider gets the escrow's whole value less its job token"
    );
    assert_eq!(ntx_of(&world, &provider), PRICE);
}
