//! A devnet history with every outcome, built with the off-chain builders and
//! time travel, shared by the audit tests.
#![allow(dead_code)]

use std::sync::OnceLock;

use ntx_offchain::Network;
use ntx_offchain::audit::{History, SlotRange, Target, collect_history};
use ntx_offchain::builder::{self, Deployment, EscrowUtxo, Finished, JobTerms};
use ntx_offchain::protocol::{Settlement, Verdict, attestation_message, sign_attestation};
use ntx_tests::{Blocks, DevnetChain, Party, World};

/// NTX units (6 decimals).
pub const NTX: u64 = 1_000_000;

/// The jobs, by how they end.
#[derive(Debug, Clone, Copy)]
pub struct Jobs {
    /// Paid to provider 1 on a 2-of-3 accepting quorum (requester A, 25 NTX).
    pub claimed: [u8; 32],
    /// Refunded to requester A on a 2-of-3 rejecting quorum (provider 1, 10 NTX).
    pub rejected: [u8; 32],
    /// Submitted, never claimed, refunded after settle_by (requester A, provider 2, 7 NTX).
    pub timeout: [u8; 32],
    /// Never submitted, refunded after submit_by (requester B, provider 1, 5 NTX).
    pub no_show: [u8; 32],
    /// Cancelled by requester B and provider 2's agent (3 NTX).
    pub cancelled: [u8; 32],
    /// Still locked, deadlines far ahead (requester B, provider 2, 4 NTX).
    pub open: [u8; 32],
}

/// The transactions of the history.
#[derive(Debug, Clone, Copy)]
pub struct Txs {
    /// Requester A's lock (claimed, rejected, timeout).
    pub lock_a: [u8; 32],
    /// Requester B's lock (no-show, cancelled, open).
    pub lock_b: [u8; 32],
    /// Submits of the claimed, rejected and timed-out jobs.
    pub submits: [[u8; 32]; 3],
    /// The claim.
    pub claim: [u8; 32],
    /// The rejecting refund.
    pub reject: [u8; 32],
    /// The cancel.
    pub cancel: [u8; 32],
    /// The no-show refund.
    pub no_show: [u8; 32],
    /// The timeout refund.
    pub timeout: [u8; 32],
}

/// Everyone involved.
pub struct Parties {
    /// Requester A.
    pub requester_a: Party,
    /// Requester B.
    pub requester_b: Party,
    /// Provider 1's payee and its agent.
    pub provider_1: Party,
    /// Provider 1's agent key.
    pub agent_1: Party,
    /// Provider 2's payee.
    pub provider_2: Party,
    /// Provider 2's agent key.
    pub agent_2: Party,
    /// Three verifiers, sorted by public key.
    pub verifiers: Vec<Party>,
    /// Pays for settlements.
    pub keeper: Party,
}

/// The devnet after the whole history.
pub struct Scenario {
    /// The chain.
    pub world: World,
    /// The deployment.
    pub deployment: Deployment,
    /// Its audit target.
    pub target: Target,
    /// Jobs.
    pub jobs: Jobs,
    /// Transactions.
    pub txs: Txs,
    /// People.
    pub parties: Parties,
    /// The history as collected through `DevnetChain` right after the last settlement.
    pub history: History,
}

impl Scenario {
    /// The in-process provider.
    pub fn chain(&self) -> DevnetChain {
        DevnetChain::new(self.world.devnet.clone(), Blocks::AfterSubmit)
    }

    /// NTX units `party` holds on chain.
    pub fn ntx_of(&self, party: &Party) -> u64 {
        self.world
            .utxos(&party.address_bytes)
            .iter()
            .map(|u| {
                u.output
                    .value
                    .quantity_of(&self.world.ntx.policy, &self.world.ntx.name)
            })
            .sum()
    }
}

fn party(seed: u8) -> Party {
    Party::from_seed(seed, Network::Devnet)
}

fn escrow(world: &World, deployment: &Deployment, job: [u8; 32]) -> EscrowUtxo {
    world
        .utxos(&deployment.script.address(Network::Devnet).to_vec())
        .into_iter()
        .filter_map(|u| EscrowUtxo::from_utxo(deployment, u).ok())
        .find(|e| e.datum.job_id == job)
        .expect("the escrow is on chain")
}

fn finish(
    world: &World,
    deployment: &Deployment,
    draft: ntx_offchain::tx::Draft,
    payer: &Party,
    others: &[&Party],
) -> Finished {
    let mut signers: Vec<&dyn ntx_offchain::wallet::Signer> = vec![&payer.key];
    signers.extend(
        others
            .iter()
            .map(|p| &p.key as &dyn ntx_offchain::wallet::Signer),
    );
    let finished = deployment
        .finish(draft, &payer.address_bytes, &signers, 0)
        .expect("evaluates");
    world.submit(&finished).expect("the devnet accepts it");
    finished
}

fn lock(
    world: &World,
    deployment: &Deployment,
    requester: &Party,
    terms: &[JobTerms],
) -> (Finished, Vec<[u8; 32]>) {
    let funding = terms
        .iter()
        .map(|t| world.fund(requester, 20_000_000, t.price))
        .collect();
    let collateral = world.fund(requester, 5_000_000, 0);
    let now = world.devnet.current_slot();
    let draft = builder::lock(
        deployment,
        terms,
        funding,
        collateral,
        now + 100,
        Default::default(),
    )
    .expect("lock builds");
    let finished = finish(world, deployment, draft, requester, &[]);
    // Job ids in the order of `terms` (matched by price: all differ).
    let ids = terms
        .iter()
        .map(|t| {
            world
                .utxos(&deployment.script.address(Network::Devnet).to_vec())
                .into_iter()
                .filter_map(|u| EscrowUtxo::from_utxo(deployment, u).ok())
                .find(|e| {
                    e.datum.price == t.price && e.utxo.reference.transaction_id == finished.tx.id
                })
                .expect("escrow")
                .datum
                .job_id
        })
        .collect();
    (finished, ids)
}

fn submit(
    world: &World,
    deployment: &Deployment,
    agent: &Party,
    job: [u8; 32],
    result: [u8; 32],
) -> [u8; 32] {
    let e = escrow(world, deployment, job);
    let funding = vec![world.fund(agent, 5_000_000, 0)];
    let collateral = world.fund(agent, 5_000_000, 0);
    let now = world.devnet.current_slot();
    let draft = builder::submit(deployment, &e, result, funding, collateral, now + 50)
        .expect("submit builds");
    finish(world, deployment, draft, agent, &[]).tx.id
}

fn settle(
    world: &World,
    deployment: &Deployment,
    payer: &Party,
    others: &[&Party],
    job: [u8; 32],
    settlement: Settlement,
) -> [u8; 32] {
    let e = escrow(world, deployment, job);
    let funding = vec![world.fund(payer, 5_000_000, 0)];
    let collateral = world.fund(payer, 5_000_000, 0);
    let now = world.devnet.current_slot();
    let draft = builder::settle(
        deployment,
        vec![(e, settlement)],
        funding,
        collateral,
        now,
        100,
        0,
    )
    .expect("settlement builds");
    finish(world, deployment, draft, payer, others).tx.id
}

fn sign(
    deployment: &Deployment,
    verifiers: &[Party],
    which: &[u32],
    verdict: Verdict,
    job: [u8; 32],
    result: [u8; 32],
) -> Vec<ntx_offchain::protocol::Attestation> {
    let message = attestation_message(verdict, &deployment.script.hash(), &job, &result);
    which
        .iter()
        .map(|i| sign_attestation(&verifiers[*i as usize].key, *i, &message))
        .collect()
}

fn build() -> Scenario {
    let world = World::new();
    let parties = Parties {
        requester_a: party(0x61),
        requester_b: party(0x62),
        provider_1: party(0x63),
        agent_1: party(0x64),
        provider_2: party(0x65),
        agent_2: party(0x66),
        verifiers: {
            let mut v: Vec<Party> = (0..3).map(|i| party(0x70 + i)).collect();
            v.sort_by_key(|p| p.public_key);
            v
        },
        keeper: party(0x67),
    };
    let p = &parties;
    let deployment = world.deploy(&party(0x60)).expect("deploys");
    let s0 = world.devnet.current_slot();
    let terms = |requester: &Party,
                 provider: &Party,
                 agent: &Party,
                 price: u64,
                 submit_by: u64,
                 settle_by: u64| JobTerms {
        requester: requester.address,
        provider: provider.address,
        agent: agent.key_hash,
        spec_hash: [price as u8; 32],
        price,
        verifiers: p.verifiers.iter().map(|v| v.public_key).collect(),
        threshold: 2,
        submit_by: world.time(s0 + submit_by),
        settle_by: world.time(s0 + settle_by),
    };
    let (lock_a, a) = lock(
        &world,
        &deployment,
        &p.requester_a,
        &[
            terms(
                &p.requester_a,
                &p.provider_1,
                &p.agent_1,
                25 * NTX,
                200,
                400,
            ),
            terms(
                &p.requester_a,
                &p.provider_1,
                &p.agent_1,
                10 * NTX,
                200,
                400,
            ),
            terms(&p.requester_a, &p.provider_2, &p.agent_2, 7 * NTX, 200, 400),
        ],
    );
    let (lock_b, b) = lock(
        &world,
        &deployment,
        &p.requester_b,
        &[
            terms(&p.requester_b, &p.provider_1, &p.agent_1, 5 * NTX, 200, 400),
            terms(&p.requester_b, &p.provider_2, &p.agent_2, 3 * NTX, 200, 400),
            terms(
                &p.requester_b,
                &p.provider_2,
                &p.agent_2,
                4 * NTX,
                30_000,
                60_000,
            ),
        ],
    );
    let jobs = Jobs {
        claimed: a[0],
        rejected: a[1],
        timeout: a[2],
        no_show: b[0],
        cancelled: b[1],
        open: b[2],
    };
    let (good, bad, late) = ([0x11; 32], [0x22; 32], [0x33; 32]);
    let submits = [
        submit(&world, &deployment, &p.agent_1, jobs.claimed, good),
        submit(&world, &deployment, &p.agent_1, jobs.rejected, bad),
        submit(&world, &deployment, &p.agent_2, jobs.timeout, late),
    ];
    let claim = settle(
        &world,
        &deployment,
        &p.keeper,
        &[],
        jobs.claimed,
        Settlement::Claim {
            attestations: sign(
                &deployment,
                &p.verifiers,
                &[0, 2],
                Verdict::Accept,
                jobs.claimed,
                good,
            ),
        },
    );
    let reject = settle(
        &world,
        &deployment,
        &p.keeper,
        &[],
        jobs.rejected,
        Settlement::RefundRejected {
            attestations: sign(
                &deployment,
                &p.verifiers,
                &[1, 2],
                Verdict::Reject,
                jobs.rejected,
                bad,
            ),
        },
    );
    let cancel = settle(
        &world,
        &deployment,
        &p.requester_b,
        &[&p.agent_2],
        jobs.cancelled,
        Settlement::Cancel,
    );
    world.devnet.advance_to_slot(s0 + 201).expect("time travel");
    let no_show = settle(
        &world,
        &deployment,
        &p.keeper,
        &[],
        jobs.no_show,
        Settlement::RefundNoShow,
    );
    world.devnet.advance_to_slot(s0 + 401).expect("time travel");
    let timeout = settle(
        &world,
        &deployment,
        &p.keeper,
        &[],
        jobs.timeout,
        Settlement::RefundTimeout,
    );
    let txs = Txs {
        lock_a: lock_a.tx.id,
        lock_b: lock_b.tx.id,
        submits,
        claim,
        reject,
        cancel,
        no_show,
        timeout,
    };
    let target = Target::of(&deployment.script);
    let chain = DevnetChain::new(world.devnet.clone(), Blocks::AfterSubmit);
    // On a thread of its own: callers may be inside an async runtime.
    let history = {
        let target = target.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(collect_history(
                    &chain,
                    target,
                    Network::Devnet,
                    SlotRange::default(),
                ))
                .expect("the history is collected")
        })
        .join()
        .expect("the collector thread")
    };
    Scenario {
        world,
        deployment,
        target,
        jobs,
        txs,
        parties,
        history,
    }
}

/// The scenario, built once per test binary.
pub fn scenario() -> &'static Scenario {
    static S: OnceLock<Scenario> = OnceLock::new();
    S.get_or_init(build)
}
