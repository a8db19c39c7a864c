//! Attacks on the escrow, each built and signed with real keys and submitted to
//! an in-process devnet, which must reject it — with the phase-2 failure of the
//! named script purpose, or the named ledger rule — while no UTxO of anyone
//! involved changes. `docs/SECURITY.md` maps every test here to the check that
//! stops it.
//!
//! How a failing transaction reaches the devnet: `Deployment::finish` evaluates
//! the scripts and refuses a failing draft, so an attack is an honest draft from
//! the builders, tampered with, then given generous execution units by hand and
//! balanced and signed with `Draft::balance` ([`Scene::force`]).
//! [`forcing_an_honest_claim_is_accepted`] shows that this path alone does not
//! make a transaction fail.

use std::collections::BTreeMap;

use ntx_devnet::{DevnetError, LedgerError};
use ntx_offchain::builder::{self, Deployment, EscrowUtxo, Finished, JobTerms};
use ntx_offchain::protocol::{
    Asset, Attestation, FromPlutusData, JobDatum, JobState, Settlement, SpendAction, ToPlutusData,
    Verdict, attestation_message, blake2b_224, data, job_id, sign_attestation,
};
use ntx_offchain::tx::{Datum, Draft, DraftRedeemer, EncodedTx, ScriptPurpose, TxOutput, Utxo};
use ntx_offchain::wallet::Signer;
use ntx_offchain::{Blueprint, ExUnits, Network};
use ntx_tests::{Party, World};
use pallas_primitives::PlutusData;

const PRICE: u64 = 25_000_000;
const RESULT: [u8; 32] = [0x77; 32];

/// A Plutus V3 script that accepts anything: `(program 1.1.0 (lam ctx (con unit ())))`,
/// CBOR-wrapped flat. The attacker's minting policy for forged and junk tokens.
const ALWAYS_SUCCEEDS: [u8; 6] = [0x45, 0x01, 0x01, 0x00, 0x24, 0x99];

fn always_policy() -> [u8; 28] {
    let mut tagged = vec![0x03];
    tagged.extend_from_slice(&ALWAYS_SUCCEEDS);
    blake2b_224(&tagged)
}

/// Every UTxO at every address an attack could touch, as (reference, CBOR).
type Snapshot = BTreeMap<Vec<u8>, Vec<(String, Vec<u8>)>>;

/// One deployment on a fresh devnet and the parties of a job.
struct Scene {
    world: World,
    dep: Deployment,
    requester: Party,
    provider: Party,
    agent: Party,
    /// The attacker (also the keeper who pays for settlements).
    mallory: Party,
    /// The datum's verifiers, sorted by public key as the datum keeps them.
    verifiers: Vec<Party>,
    /// Keys that are not the job's verifiers.
    outsiders: Vec<Party>,
}

impl Scene {
    fn new() -> Scene {
        let world = World::new();
        let deployer = Party::from_seed(0x60, Network::Devnet);
        let dep = world.deploy(&deployer).expect("the escrow deploys");
        let mut verifiers: Vec<Party> = (0..3)
            .map(|i| Party::from_seed(0x70 + i, Network::Devnet))
            .collect();
        verifiers.sort_by_key(|v| v.public_key);
        let mut outsiders: Vec<Party> = (0..3)
            .map(|i| Party::from_seed(0x80 + i, Network::Devnet))
            .collect();
        outsiders.sort_by_key(|v| v.public_key);
        Scene {
            world,
            dep,
            requester: Party::from_seed(0x61, Network::Devnet),
            provider: Party::from_seed(0x62, Network::Devnet),
            agent: Party::from_seed(0x63, Network::Devnet),
            mallory: Party::from_seed(0x64, Network::Devnet),
            verifiers,
            outsiders,
        }
    }

    /// The slot that starts at POSIX time `ms` (deadlines are slot starts here).
    fn slot_of(&self, ms: u64) -> u64 {
        self.dep.evaluator.slot_config.posix_ms_to_slot(ms)
    }

    fn escrow_address(&self) -> Vec<u8> {
        self.dep.script.address(Network::Devnet).to_vec()
    }

    fn now(&self) -> u64 {
        self.world.devnet.current_slot()
    }

    /// Terms of a 2-of-3 job: submit within 200 slots, settle within 400.
    fn terms(&self) -> JobTerms {
        let now = self.now();
        JobTerms {
            requester: self.requester.address,
            provider: self.provider.address,
            agent: self.agent.key_hash,
            spec_hash: [0x5b; 32],
            price: PRICE,
            verifiers: self.verifiers.iter().map(|v| v.public_key).collect(),
            threshold: 2,
            submit_by: self.world.time(now + 200),
            settle_by: self.world.time(now + 400),
        }
    }

    /// An honest lock of `n` jobs, not yet finished.
    fn lock_draft(&self, n: usize) -> Draft {
        let funding = (0..n)
            .map(|_| self.world.fund(&self.requester, 70_000_000, PRICE))
            .collect();
        let collateral = self.world.fund(&self.requester, 5_000_000, 0);
        let terms: Vec<JobTerms> = (0..n).map(|_| self.terms()).collect();
        builder::lock(
            &self.dep,
            &terms,
            funding,
            collateral,
            self.now() + 100,
            Default::default(),
        )
        .expect("lock builds")
    }

    /// The escrows created by transaction `id`, in output order.
    fn escrows_of(&self, id: [u8; 32]) -> Vec<EscrowUtxo> {
        let mut utxos: Vec<Utxo> = self
            .world
            .utxos(&self.escrow_address())
            .into_iter()
            .filter(|u| u.reference.transaction_id == id)
            .collect();
        utxos.sort_by_key(|u| u.reference.output_index);
        utxos
            .into_iter()
            .map(|u| EscrowUtxo::from_utxo(&self.dep, u).expect("an escrow"))
            .collect()
    }

    /// `n` honest escrows, locked on chain.
    fn lock(&self, n: usize) -> Vec<EscrowUtxo> {
        let draft = self.lock_draft(n);
        let lock = self
            .dep
            .finish(
                draft,
                &self.requester.address_bytes,
                &[&self.requester.key],
                0,
            )
            .expect("lock evaluates");
        self.world
            .submit(&lock)
            .expect("the devnet accepts the lock");
        self.escrows_of(lock.tx.id)
    }

    /// An honest Submit draft for `escrow`, paid by the agent.
    fn submit_draft(&self, escrow: &EscrowUtxo, result: [u8; 32], payer: &Party) -> Draft {
        let funding = vec![self.world.fund(payer, 5_000_000, 0)];
        let collateral = self.world.fund(payer, 5_000_000, 0);
        builder::submit(
            &self.dep,
            escrow,
            result,
            funding,
            collateral,
            self.now() + 50,
        )
        .expect("submit builds")
    }

    /// Submits `result` for `escrow`, honestly.
    fn submit(&self, escrow: &EscrowUtxo, result: [u8; 32]) -> EscrowUtxo {
        let draft = self.submit_draft(escrow, result, &self.agent);
        let submit = self
            .dep
            .finish(draft, &self.agent.address_bytes, &[&self.agent.key], 0)
            .expect("submit evaluates");
        self.world
            .submit(&submit)
            .expect("the devnet accepts the submit");
        self.escrows_of(submit.tx.id).remove(0)
    }

    /// `signers` sign `verdict` on `escrow`'s result as the given indexes.
    fn attest_as(
        &self,
        escrow: &EscrowUtxo,
        verdict: Verdict,
        signers: &[(&Party, u32)],
        script_hash: [u8; 28],
        result: [u8; 32],
    ) -> Vec<Attestation> {
        let message = attestation_message(verdict, &script_hash, &escrow.datum.job_id, &result);
        signers
            .iter()
            .map(|(p, i)| sign_attestation(&p.key, *i, &message))
            .collect()
    }

    /// Honest attestations by the job's verifiers at `indexes`.
    fn attest(&self, escrow: &EscrowUtxo, verdict: Verdict, indexes: &[u32]) -> Vec<Attestation> {
        let result = match escrow.datum.state {
            JobState::Submitted { result_hash } => result_hash,
            JobState::Locked => panic!("attesting a locked escrow"),
        };
        let signers: Vec<(&Party, u32)> = indexes
            .iter()
            .map(|i| (&self.verifiers[*i as usize], *i))
            .collect();
        self.attest_as(escrow, verdict, &signers, self.dep.script.hash(), result)
    }

    /// An honest settlement draft, paid for by mallory (the keeper).
    fn settle_draft(&self, escrows: Vec<(EscrowUtxo, Settlement)>, now_slot: u64) -> Draft {
        let funding = vec![self.world.fund(&self.mallory, 10_000_000, 0)];
        let collateral = self.world.fund(&self.mallory, 5_000_000, 0);
        builder::settle(&self.dep, escrows, funding, collateral, now_slot, 100, 0)
            .expect("settle builds")
    }

    /// Balances and signs `draft` as it stands, declaring generous execution
    /// units (the transaction's maximum, shared out) instead of measuring them:
    /// the way to get a transaction whose scripts fail onto the devnet.
    fn force(&self, mut draft: Draft, change: &Party, signers: &[&dyn Signer]) -> EncodedTx {
        draft.cost_model_v3 = Some(self.dep.cost_model_v3.clone());
        draft.network_id = Some(self.dep.network.id());
        let n = draft.redeemers.len().max(1) as u64;
        let max = self.dep.evaluator.max_tx_ex_units;
        for r in &mut draft.redeemers {
            r.ex_units = ExUnits {
                mem: max.mem / n,
                steps: max.steps / n,
            };
        }
        draft
            .balance(&change.address_bytes, &self.dep.fee_params, signers, 0)
            .expect("the attack balances")
    }

    /// [`Scene::force`] with mallory (the keeper) paying and signing alone.
    fn force_as_keeper(&self, draft: Draft) -> EncodedTx {
        self.force(draft, &self.mallory, &[&self.mallory.key])
    }

    /// An honest claim draft of `escrow` with `attestations`, built now.
    fn claim_draft(&self, escrow: EscrowUtxo, attestations: Vec<Attestation>) -> Draft {
        self.settle_draft(
            vec![(escrow, Settlement::Claim { attestations })],
            self.now(),
        )
    }

    /// Evaluates and signs `draft` honestly, mallory (the keeper) paying;
    /// `what` names it in the panic if it does not evaluate.
    fn finish_as_keeper(&self, draft: Draft, what: &str) -> Finished {
        self.dep
            .finish(draft, &self.mallory.address_bytes, &[&self.mallory.key], 0)
            .expect(what)
    }

    /// NTX units the provider holds on chain.
    fn paid_to_provider(&self) -> u64 {
        self.world
            .utxos(&self.provider.address_bytes)
            .iter()
            .map(|u| {
                u.output
                    .value
                    .quantity_of(&self.world.ntx.policy, &self.world.ntx.name)
            })
            .sum()
    }

    /// Every UTxO of every party, the escrow address and the attacker.
    fn snapshot(&self) -> Snapshot {
        let mut addresses = vec![
            self.escrow_address(),
            self.requester.address_bytes.clone(),
            self.provider.address_bytes.clone(),
            self.agent.address_bytes.clone(),
            self.mallory.address_bytes.clone(),
        ];
        addresses.extend(self.verifiers.iter().map(|p| p.address_bytes.clone()));
        addresses.extend(self.outsiders.iter().map(|p| p.address_bytes.clone()));
        addresses
            .into_iter()
            .map(|a| {
                let mut utxos: Vec<(String, Vec<u8>)> = self
                    .world
                    .devnet
                    .utxos_at(&a)
                    .expect("the devnet answers")
                    .into_iter()
                    .map(|(r, cbor)| (format!("{}#{}", hex::encode(*r.tx_hash), r.index), cbor))
                    .collect();
                utxos.sort();
                (a, utxos)
            })
            .collect()
    }

    /// Submits the attack, which must be rejected; a block is then produced and
    /// no UTxO may have changed. Returns the ledger's reason.
    fn attack(&self, name: &str, tx: &EncodedTx) -> LedgerError {
        let before = self.snapshot();
        let err = match self.world.devnet.submit(&tx.cbor) {
            Ok(id) => panic!("{name}: the devnet ACCEPTED the attack (transaction {id})"),
            Err(DevnetError::Ledger(e)) => e,
            Err(e) => panic!("{name}: the devnet failed instead of judging the transaction: {e}"),
        };
        eprintln!("{name}: rejected: {err}");
        self.world.devnet.produce_block().expect("a block");
        assert_eq!(self.world.devnet.mempool_len(), 0, "{name}: nothing waits");
        assert!(
            before == self.snapshot(),
            "{name}: a UTxO changed although the attack was rejected"
        );
        err
    }

    /// [`Scene::attack`] with `tx`, which must fail in phase 2 in the script run
    /// for `purpose`; `name` names the attack in both.
    fn refused(&self, name: &str, tx: &EncodedTx, purpose: &str) {
        let err = self.attack(name, tx);
        assert_script_failure(name, &err, purpose);
    }
}

/// The devnet refused `err` because the script run for `purpose` (e.g.
/// `reward:0`, the `withdraw` handler) failed in phase 2.
fn assert_script_failure(name: &str, err: &LedgerError, purpose: &str) {
    match err {
        LedgerError::ScriptFailure { purpose: p, .. } if p == purpose => {}
        other => panic!("{name}: expected the phase-2 failure of {purpose}, got: {other}"),
    }
    assert!(
        err.to_string().contains(purpose) && err.to_string().contains("ValidationTagMismatch"),
        "{name}: the message names the failing redeemer and the rule"
    );
}

fn submitted(scene: &Scene, n: usize) -> Vec<EscrowUtxo> {
    scene
        .lock(n)
        .iter()
        .map(|e| scene.submit(e, RESULT))
        .collect()
}

fn reward_purpose() -> &'static str {
    // One withdrawal (the escrow's stake credential): the `withdraw` handler,
    // redeemer tag reward, index 0.
    "withdraw:0"
}

fn spend_purpose(draft: &Draft, escrow: &EscrowUtxo) -> String {
    format!(
        "spend:{}",
        draft
            .input_index(&escrow.utxo.reference)
            .expect("the escrow is an input")
    )
}

fn claim_with(scene: &Scene, escrow: &EscrowUtxo, attestations: Vec<Attestation>) -> EncodedTx {
    scene.force_as_keeper(scene.claim_draft(escrow.clone(), attestations))
}

/// Every spend redeemer's `Settle` input index, recomputed after inputs changed.
fn reindex_spends(draft: &mut Draft) {
    let order = draft.sorted_inputs();
    for r in &mut draft.redeemers {
        if let ScriptPurpose::Spend(reference) = &r.purpose {
            let input_index = order.iter().position(|x| x == reference).expect("input") as u32;
            r.data = SpendAction::Settle { input_index }.to_plutus_data();
        }
    }
}

/// The fields of the job datum of a Lock draft's first output.
fn lock_datum_fields(draft: &Draft) -> Vec<PlutusData> {
    let Datum::Inline(d) = &draft.outputs[0].datum else {
        panic!("inline datum")
    };
    data::as_constr(d, "datum", 11)
        .expect("a constr")
        .1
        .to_vec()
}

// ## The forcing path itself

#[test]
fn forcing_an_honest_claim_is_accepted() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let attestations = scene.attest(&escrow, Verdict::Accept, &[0, 2]);
    let tx = claim_with(&scene, &escrow, attestations);
    scene
        .world
        .devnet
        .submit(&tx.cbor)
        .expect("an honest forced claim is accepted");
    scene.world.devnet.produce_block().expect("a block");
    let paid = scene.paid_to_provider();
    assert_eq!(paid, PRICE);
}

// ## Attestations

#[test]
fn claim_with_attestations_for_another_job() {
    let scene = Scene::new();
    let escrows = submitted(&scene, 2);
    // Genuine accepts, same verifiers, same result hash — but for the other job.
    let for_b = scene.attest(&escrows[1], Verdict::Accept, &[0, 1]);
    scene.refused(
        "another job",
        &claim_with(&scene, &escrows[0], for_b),
        reward_purpose(),
    );
}

#[test]
fn claim_with_attestations_for_another_deployment() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    // The same contract deployed for other settlement assets (mainnet NTX, a fake
    // asset): a verifier's genuine accept there must not count here.
    for other in [
        Asset::mainnet_ntx(),
        Asset {
            policy: always_policy(),
            name: b"FAKE".to_vec(),
        },
    ] {
        let hash = Blueprint::embedded()
            .escrow(&other)
            .expect("the blueprint applies")
            .hash();
        assert_ne!(hash, scene.dep.script.hash());
        let signers = [(&scene.verifiers[0], 0), (&scene.verifiers[1], 1)];
        let atts = scene.attest_as(&escrow, Verdict::Accept, &signers, hash, RESULT);
        scene.refused(
            "another deployment",
            &claim_with(&scene, &escrow, atts),
            reward_purpose(),
        );
    }
}

#[test]
fn claim_with_attestations_for_another_result() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let signers = [(&scene.verifiers[0], 0), (&scene.verifiers[2], 2)];
    let atts = scene.attest_as(
        &escrow,
        Verdict::Accept,
        &signers,
        scene.dep.script.hash(),
        [0x78; 32],
    );
    scene.refused(
        "another result",
        &claim_with(&scene, &escrow, atts),
        reward_purpose(),
    );
}

#[test]
fn claim_with_reject_attestations_or_a_refund_with_accepts() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    // The verdict byte is signed: rejects cannot claim, accepts cannot refund.
    let rejects = scene.attest(&escrow, Verdict::Reject, &[0, 1]);
    scene.refused(
        "claim with rejects",
        &claim_with(&scene, &escrow, rejects),
        reward_purpose(),
    );
    let accepts = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let draft = scene.settle_draft(
        vec![(
            escrow,
            Settlement::RefundRejected {
                attestations: accepts,
            },
        )],
        scene.now(),
    );
    let tx = scene.force_as_keeper(draft);
    scene.refused("refund with accepts", &tx, reward_purpose());
}

#[test]
fn claim_reusing_one_verifiers_signature() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let one = scene.attest(&escrow, Verdict::Accept, &[1]).remove(0);
    // The same attestation twice (index 1, index 1).
    scene.refused(
        "same index twice",
        &claim_with(&scene, &escrow, vec![one, one]),
        reward_purpose(),
    );
    // Verifier 1's signature presented as verifier 0's and as its own.
    let relabelled = Attestation {
        verifier_index: 0,
        ..one
    };
    scene.refused(
        "one signature, two indexes",
        &claim_with(&scene, &escrow, vec![relabelled, one]),
        reward_purpose(),
    );
    // Descending indexes (1, 0), each a genuine signature.
    let zero = scene.attest(&escrow, Verdict::Accept, &[0]).remove(0);
    scene.refused(
        "descending",
        &claim_with(&scene, &escrow, vec![one, zero]),
        reward_purpose(),
    );
}

#[test]
fn claim_with_a_quorum_of_keys_not_in_the_datum() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let signers = [(&scene.outsiders[0], 0), (&scene.outsiders[1], 1)];
    let atts = scene.attest_as(
        &escrow,
        Verdict::Accept,
        &signers,
        scene.dep.script.hash(),
        RESULT,
    );
    scene.refused(
        "outsiders",
        &claim_with(&scene, &escrow, atts),
        reward_purpose(),
    );
    // One genuine verifier plus an outsider claiming an index past the list.
    let mut atts = scene.attest(&escrow, Verdict::Accept, &[0]);
    atts.extend(scene.attest_as(
        &escrow,
        Verdict::Accept,
        &[(&scene.outsiders[2], 3)],
        scene.dep.script.hash(),
        RESULT,
    ));
    scene.refused(
        "index past the list",
        &claim_with(&scene, &escrow, atts),
        reward_purpose(),
    );
}

#[test]
fn claim_below_the_threshold() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let atts = scene.attest(&escrow, Verdict::Accept, &[2]);
    scene.refused(
        "one of 2-of-3",
        &claim_with(&scene, &escrow, atts),
        reward_purpose(),
    );
}

// ## Submit

#[test]
fn submit_without_the_agent_key() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    // Mallory submits her own result and does not name the agent as a signer:
    // the script sees no agent signature.
    let mut draft = scene.submit_draft(&escrow, [0x66; 32], &scene.mallory);
    draft.required_signers.clear();
    let purpose = spend_purpose(&draft, &escrow);
    let tx = scene.force_as_keeper(draft);
    scene.refused("no agent signer", &tx, &purpose);
    // She names the agent as a required signer but cannot sign for it.
    let draft = scene.submit_draft(&escrow, [0x66; 32], &scene.mallory);
    let tx = scene.force_as_keeper(draft);
    let err = scene.attack("agent signer, no signature", &tx);
    let wants_witness = match &err {
        LedgerError::MissingVKeyWitness { key_hash, .. } => {
            *key_hash == hex::encode(scene.agent.key_hash)
        }
        LedgerError::Phase1 { rule, .. } => *rule == "MissingVKeyWitnessesUTXOW",
        _ => false,
    };
    assert!(wants_witness, "the ledger wants the agent's witness: {err}");
}

#[test]
fn submit_that_rewrites_the_continuing_datum() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    type Edit = fn(&mut JobDatum, &Scene);
    let edits: [(&str, Edit); 9] = [
        ("price", |d, _| d.price /= 2),
        ("provider", |d, s| d.provider = s.mallory.address),
        ("requester", |d, s| d.requester = s.mallory.address),
        ("agent", |d, s| d.agent = s.mallory.key_hash),
        ("verifiers", |d, s| {
            d.verifiers = s.outsiders.iter().map(|p| p.public_key).collect();
        }),
        ("threshold", |d, _| d.threshold = 1),
        ("submit_by", |d, _| d.submit_by += 1_000_000),
        ("settle_by", |d, _| d.settle_by += 1_000_000),
        ("spec_hash", |d, _| d.spec_hash = [0; 32]),
    ];
    for (what, edit) in edits {
        let mut draft = scene.submit_draft(&escrow, RESULT, &scene.agent);
        let mut datum = escrow.datum.clone();
        datum.state = JobState::Submitted {
            result_hash: RESULT,
        };
        edit(&mut datum, &scene);
        draft.outputs[0].datum = Datum::Inline(datum.to_plutus_data());
        let purpose = spend_purpose(&draft, &escrow);
        // The agent itself (a rogue provider) signs.
        let tx = scene.force(draft, &scene.agent, &[&scene.agent.key]);
        let err = scene.attack(&format!("submit rewrites {what}"), &tx);
        assert_script_failure(what, &err, &purpose);
    }
}

#[test]
fn submit_whose_continuing_output_drops_value() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    let ntx = scene.world.ntx.clone();
    let policy = scene.dep.script.policy_id();
    let job = escrow.datum.job_id;
    type Edit = fn(&mut TxOutput, &Asset, &[u8; 28], &[u8; 32], &Scene);
    let edits: [(&str, Edit); 5] = [
        ("all the NTX", |o, ntx, _, _, _| {
            o.value.assets.remove(&ntx.policy);
        }),
        ("one NTX unit", |o, ntx, _, _, _| {
            if let Some(q) = o
                .value
                .assets
                .get_mut(&ntx.policy)
                .and_then(|a| a.get_mut(&ntx.name))
            {
                *q -= 1;
            }
        }),
        ("the job token", |o, _, policy, _, _| {
            o.value.assets.remove(policy);
        }),
        ("part of the deposit", |o, _, _, _, _| {
            o.value.lovelace -= 100_000
        }),
        ("the escrow address", |o, _, _, _, s| {
            o.address = s.agent.address_bytes.clone();
        }),
    ];
    for (what, edit) in edits {
        let mut draft = scene.submit_draft(&escrow, RESULT, &scene.agent);
        edit(&mut draft.outputs[0], &ntx, &policy, &job, &scene);
        let purpose = spend_purpose(&draft, &escrow);
        let tx = scene.force(draft, &scene.agent, &[&scene.agent.key]);
        let err = scene.attack(&format!("submit drops {what}"), &tx);
        if what == "part of the deposit" {
            // The lock's deposit is exactly the submitted escrow's minimum, so the
            // ledger's min-UTxO rule refuses before the script's value check runs.
            assert!(
                matches!(err, LedgerError::OutputTooSmall { .. }),
                "{what}: BabbageOutputTooSmallUTxO, got: {err}"
            );
        } else {
            assert_script_failure(what, &err, &purpose);
        }
    }
}

#[test]
fn submit_after_submit_by_or_twice() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    // Valid past submit_by: the builder refuses, so stretch its validity.
    let mut draft = scene.submit_draft(&escrow, RESULT, &scene.agent);
    draft.invalid_from_slot = Some(scene.slot_of(escrow.datum.submit_by) + 10);
    let purpose = spend_purpose(&draft, &escrow);
    let tx = scene.force(draft, &scene.agent, &[&scene.agent.key]);
    scene.refused("submit valid past submit_by", &tx, &purpose);
    // A second submit over an already submitted escrow (a result swap).
    let done = scene.submit(&escrow, RESULT);
    let mut again = done.clone();
    again.datum.state = JobState::Locked; // so the builder agrees to build it
    let mut draft = scene.submit_draft(&again, [0x99; 32], &scene.agent);
    draft.inputs.retain(|u| u.reference != done.utxo.reference);
    draft.inputs.push(done.utxo.clone());
    let purpose = spend_purpose(&draft, &done);
    let tx = scene.force(draft, &scene.agent, &[&scene.agent.key]);
    scene.refused("second submit", &tx, &purpose);
}

// ## Deadlines

#[test]
fn refund_before_its_deadline() {
    let scene = Scene::new();
    let escrows = scene.lock(2);
    let start = scene.now();
    let after_submit_by = scene.slot_of(escrows[0].datum.submit_by) + 1;
    // No-show refund while the provider still has time (built as if later).
    let mut draft = scene.settle_draft(
        vec![(escrows[0].clone(), Settlement::RefundNoShow)],
        after_submit_by,
    );
    draft.valid_from_slot = Some(start);
    draft.invalid_from_slot = Some(start + 100);
    let tx = scene.force_as_keeper(draft);
    let err = scene.attack("no-show refund before submit_by", &tx);
    assert_script_failure("no-show refund", &err, reward_purpose());
    // No validity start at all: the script cannot know the deadline passed.
    let mut draft = scene.settle_draft(
        vec![(escrows[0].clone(), Settlement::RefundNoShow)],
        after_submit_by,
    );
    draft.valid_from_slot = None;
    draft.invalid_from_slot = Some(start + 100);
    let tx = scene.force_as_keeper(draft);
    let err = scene.attack("no-show refund without a lower bound", &tx);
    assert_script_failure("no-show refund, unbounded", &err, reward_purpose());
    // Timeout refund of a submitted job before settle_by.
    let done = scene.submit(&escrows[1], RESULT);
    let now = scene.now();
    let after_settle_by = scene.slot_of(done.datum.settle_by) + 1;
    let mut draft = scene.settle_draft(vec![(done, Settlement::RefundTimeout)], after_settle_by);
    draft.valid_from_slot = Some(now);
    draft.invalid_from_slot = Some(now + 100);
    let tx = scene.force_as_keeper(draft);
    let err = scene.attack("timeout refund before settle_by", &tx);
    assert_script_failure("timeout refund", &err, reward_purpose());
}

#[test]
fn claim_after_settle_by() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let attestations = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let escrow_settle_by = escrow.datum.settle_by;
    let draft = scene.claim_draft(escrow, attestations);
    // Go past settle_by.
    let past = scene.slot_of(escrow_settle_by) + 1;
    scene
        .world
        .devnet
        .advance_to_slot(past)
        .expect("time passes");
    let mut draft = draft;
    let now = scene.now();
    draft.valid_from_slot = Some(now);
    draft.invalid_from_slot = Some(now + 50);
    let tx = scene.force_as_keeper(draft);
    scene.refused("claim after settle_by", &tx, reward_purpose());
}

#[test]
fn cancel_without_both_signatures() {
    let scene = Scene::new();
    let escrow = scene.lock(1).remove(0);
    // Requester alone: names only itself as a required signer.
    let mut draft = scene.settle_draft(vec![(escrow.clone(), Settlement::Cancel)], scene.now());
    draft.required_signers.remove(&scene.agent.key_hash);
    let tx = scene.force(
        draft,
        &scene.mallory,
        &[&scene.mallory.key, &scene.requester.key],
    );
    scene.refused("cancel without the agent", &tx, reward_purpose());
    // Agent alone.
    let mut draft = scene.settle_draft(vec![(escrow, Settlement::Cancel)], scene.now());
    draft.required_signers.remove(&scene.requester.key_hash);
    let tx = scene.force(
        draft,
        &scene.mallory,
        &[&scene.mallory.key, &scene.agent.key],
    );
    scene.refused("cancel without the requester", &tx, reward_purpose());
}

// ## Payouts

#[test]
fn two_claims_paid_by_one_output() {
    let scene = Scene::new();
    let escrows = submitted(&scene, 2);
    let claims = escrows
        .iter()
        .map(|e| {
            let attestations = scene.attest(e, Verdict::Accept, &[0, 1]);
            (e.clone(), Settlement::Claim { attestations })
        })
        .collect();
    let mut draft = scene.settle_draft(claims, scene.now());
    // The builder merged both payouts into output 0; pay only one escrow's worth
    // (the other goes to mallory's change).
    let one = escrows[0].payout(&scene.dep);
    assert_eq!(draft.outputs[0].address, scene.provider.address_bytes);
    draft.outputs[0].value = one;
    let tx = scene.force_as_keeper(draft);
    scene.refused("two claims, one payout", &tx, reward_purpose());
}

#[test]
fn stealing_the_lovelace_deposit() {
    let scene = Scene::new();
    let escrows = submitted(&scene, 1);
    let escrow = escrows[0].clone();
    let attestations = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let mut draft = scene.claim_draft(escrow.clone(), attestations);
    // The provider gets the NTX with the minimum ADA; the rest of the deposit
    // goes to mallory's change.
    let mut output = draft.outputs[0].clone();
    output.value.lovelace = 0;
    output.value.lovelace = scene.dep.fee_params.min_ada(output.to_cbor().len() + 8);
    assert!(output.value.lovelace < escrow.utxo.output.value.lovelace);
    draft.outputs[0] = output;
    let tx = scene.force_as_keeper(draft);
    scene.refused("deposit stolen", &tx, reward_purpose());
    // Untagged payout: the provider is paid in full, but in an output without the
    // payout tag, so it does not count (and mallory could claim it counts twice).
    let attestations = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let mut draft = scene.claim_draft(escrow, attestations);
    draft.outputs[0].datum = Datum::None;
    let tx = scene.force_as_keeper(draft);
    scene.refused("untagged payout", &tx, reward_purpose());
}

#[test]
fn settlement_paired_with_a_submit_in_one_transaction() {
    let scene = Scene::new();
    let escrows = scene.lock(2);
    let done = scene.submit(&escrows[0], RESULT);
    let attestations = scene.attest(&done, Verdict::Accept, &[0, 1]);
    // Claim escrow A and, in the same transaction, Submit escrow B, whose
    // continuing output the withdraw handler would otherwise see among outputs.
    let mut draft = scene.claim_draft(done, attestations);
    let locked = &escrows[1];
    draft.inputs.push(locked.utxo.clone());
    let mut datum = locked.datum.clone();
    datum.state = JobState::Submitted {
        result_hash: RESULT,
    };
    let continuing = TxOutput {
        datum: Datum::Inline(datum.to_plutus_data()),
        ..locked.utxo.output.clone()
    };
    draft.outputs.insert(0, continuing);
    // Indexes shift: recompute every spend redeemer's input index.
    reindex_spends(&mut draft);
    let input_index = draft.input_index(&locked.utxo.reference).expect("input");
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Spend(locked.utxo.reference),
        data: SpendAction::Submit {
            input_index,
            output_index: 0,
            result_hash: RESULT,
        }
        .to_plutus_data(),
        ex_units: ExUnits::default(),
    });
    draft.required_signers.insert(scene.agent.key_hash);
    let tx = scene.force(
        draft,
        &scene.mallory,
        &[&scene.mallory.key, &scene.agent.key],
    );
    let err = scene.attack("settle + submit", &tx);
    assert!(
        matches!(err, LedgerError::ScriptFailure { .. }),
        "a phase-2 failure: {err}"
    );
}

// ## Job tokens

/// A Lock draft's single job, renamed to `new_id` everywhere (mint, value, datum).
fn rename_job(draft: &mut Draft, policy: [u8; 28], new_id: [u8; 32]) {
    let old = draft.mint[&policy].keys().next().expect("one job").clone();
    draft
        .mint
        .insert(policy, BTreeMap::from([(new_id.to_vec(), 1)]));
    let out = &mut draft.outputs[0];
    out.value
        .assets
        .insert(policy, BTreeMap::from([(new_id.to_vec(), 1)]));
    let Datum::Inline(d) = &out.datum else {
        panic!("an inline datum")
    };
    let mut datum = JobDatum::from_plutus_data(d).expect("a job datum");
    assert_eq!(datum.job_id.to_vec(), old);
    datum.job_id = new_id;
    out.datum = Datum::Inline(datum.to_plutus_data());
}

#[test]
fn lock_with_a_job_token_not_named_by_a_spent_seed() {
    let scene = Scene::new();
    let policy = scene.dep.script.policy_id();
    let mut draft = scene.lock_draft(1);
    // An id from an output that the lock does not spend.
    let elsewhere = scene.world.fund(&scene.requester, 2_000_000, 0);
    rename_job(&mut draft, policy, job_id(&elsewhere.reference));
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("unseeded job token", &tx, "mint:0");
}

#[test]
fn minting_a_second_token_for_a_job_id() {
    let scene = Scene::new();
    let policy = scene.dep.script.policy_id();
    let escrows = scene.lock(2);
    let existing = escrows[0].datum.job_id;
    // A new lock minting a token with an existing job's id (its seed is spent).
    let mut draft = scene.lock_draft(1);
    rename_job(&mut draft, policy, existing);
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("second token via a lock", &tx, "mint:0");
    // A lock minting two tokens for its fresh job.
    let mut draft = scene.lock_draft(1);
    for names in draft.mint.values_mut() {
        for q in names.values_mut() {
            *q = 2;
        }
    }
    if let Some(assets) = draft.outputs[0].value.assets.get_mut(&policy) {
        for q in assets.values_mut() {
            *q = 2;
        }
    }
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("two tokens in a lock", &tx, "mint:0");
    // A settlement (Burn redeemer) of job A that also mints a copy of job B's token.
    let mut draft = scene.settle_draft(vec![(escrows[0].clone(), Settlement::Cancel)], scene.now());
    let b = escrows[1].datum.job_id;
    draft.mint.entry(policy).or_default().insert(b.to_vec(), 1);
    let tx = scene.force(
        draft,
        &scene.mallory,
        &[&scene.mallory.key, &scene.requester.key, &scene.agent.key],
    );
    scene.refused("copy minted in a settlement", &tx, "mint:0");
}

/// Mallory's transaction that puts `outputs` at the escrow address (or
/// anywhere), minting `forged` under the always-succeeds policy.
fn forge(scene: &Scene, outputs: Vec<TxOutput>, forged: BTreeMap<Vec<u8>, i64>) -> EncodedTx {
    let mut draft = Draft::default();
    draft.inputs = vec![scene.world.fund(&scene.mallory, 40_000_000, 3 * PRICE)];
    draft.collateral = vec![scene.world.fund(&scene.mallory, 5_000_000, 0)];
    draft.outputs = outputs;
    if !forged.is_empty() {
        draft.mint.insert(always_policy(), forged);
        draft.plutus_v3_scripts.push(ALWAYS_SUCCEEDS.to_vec());
        draft.redeemers.push(DraftRedeemer {
            purpose: ScriptPurpose::Mint(always_policy()),
            data: data::int(0),
            ex_units: ExUnits::default(),
        });
    }
    scene
        .finish_as_keeper(draft, "the forgery itself is a valid transaction")
        .tx
}

/// Submits Mallory's `tx` (which the ledger takes: anyone may pay to a script
/// address), makes a block, and returns the output it put at the escrow address.
fn land_at_escrow(scene: &Scene, tx: &EncodedTx) -> Utxo {
    scene
        .world
        .devnet
        .submit(&tx.cbor)
        .expect("a payment to the escrow address is valid");
    scene.world.devnet.produce_block().expect("a block");
    scene
        .world
        .utxos(&scene.escrow_address())
        .into_iter()
        .find(|u| u.reference.transaction_id == tx.id)
        .expect("the payment sits at the escrow address")
}

/// A look-alike escrow: the datum names mallory as provider and her own keys as
/// verifiers, and the value holds `token` under `policy` instead of a real job token.
fn look_alike(scene: &Scene, policy: [u8; 28], token: [u8; 32]) -> TxOutput {
    let mut terms = scene.terms();
    terms.provider = scene.mallory.address;
    terms.verifiers = scene.outsiders.iter().map(|p| p.public_key).collect();
    terms.threshold = 1;
    let mut datum = terms.datum(token);
    datum.state = JobState::Submitted {
        result_hash: RESULT,
    };
    let value = ntx_offchain::tx::Value::lovelace(5_000_000)
        .with_asset(scene.world.ntx.policy, &scene.world.ntx.name, PRICE)
        .with_asset(policy, &token, 1);
    TxOutput::new(scene.escrow_address(), value).with_inline_datum(datum.to_plutus_data())
}

#[test]
fn lock_with_a_job_token_minted_under_another_policy() {
    let scene = Scene::new();
    let token = [0x42; 32];
    let forged = look_alike(&scene, always_policy(), token);
    let tx = forge(&scene, vec![forged], BTreeMap::from([(token.to_vec(), 1)]));
    // Anyone may pay to a script address: the ledger accepts the forgery...
    let utxo = land_at_escrow(&scene, &tx);
    // ...but it is no escrow: off-chain code refuses it,
    let refused = EscrowUtxo::from_utxo(&scene.dep, utxo.clone());
    assert!(
        refused.is_err(),
        "off-chain code must not take it for an escrow"
    );
    // and a claim of it, with attestations by the keys its datum names, fails.
    let fake = EscrowUtxo {
        datum: JobDatum::from_plutus_data(match &utxo.output.datum {
            Datum::Inline(d) => d,
            _ => panic!("inline datum"),
        })
        .expect("its datum decodes"),
        utxo,
    };
    let atts = scene.attest_as(
        &fake,
        Verdict::Accept,
        &[(&scene.outsiders[0], 0)],
        scene.dep.script.hash(),
        RESULT,
    );
    let mut draft = scene.settle_draft(
        vec![(fake, Settlement::Claim { attestations: atts })],
        scene.now(),
    );
    // It has no job token to burn.
    draft.mint.clear();
    draft
        .redeemers
        .retain(|r| !matches!(r.purpose, ScriptPurpose::Mint(_)));
    let tx = scene.force_as_keeper(draft);
    scene.refused("claim a forged escrow", &tx, reward_purpose());
}

#[test]
fn lock_with_a_junk_token_bundle_or_an_oversized_datum() {
    let scene = Scene::new();
    let policy = scene.dep.script.policy_id();
    // 60 junk tokens stuffed into the escrow output, minted in the same lock.
    let mut draft = scene.lock_draft(1);
    let junk: BTreeMap<Vec<u8>, i64> = (0..60u8).map(|i| (vec![i; 32], 1)).collect();
    draft.mint.insert(always_policy(), junk.clone());
    draft.outputs[0].value.lovelace += 20_000_000;
    for name in junk.keys() {
        draft.outputs[0].value.add_asset(always_policy(), name, 1);
    }
    draft.plutus_v3_scripts.push(ALWAYS_SUCCEEDS.to_vec());
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Mint(always_policy()),
        data: data::int(0),
        ex_units: ExUnits::default(),
    });
    let purpose = format!(
        "mint:{}",
        draft
            .mint
            .keys()
            .position(|p| *p == policy)
            .expect("escrow policy")
    );
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("junk bundle", &tx, &purpose);
    // A datum with a twelfth field of 8 KB.
    let mut draft = scene.lock_draft(1);
    let mut fields = lock_datum_fields(&draft);
    fields.push(data::list(
        (0..128).map(|i| data::bytes(&[i as u8; 64])).collect(),
    ));
    draft.outputs[0].datum = Datum::Inline(data::constr(0, fields));
    draft.outputs[0].value.lovelace += 40_000_000;
    let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
    scene.refused("oversized datum", &tx, "mint:0");
}

// ## Dust and replays

#[test]
fn dust_and_junk_at_the_escrow_address_do_not_block_a_batch() {
    let scene = Scene::new();
    let escrows = submitted(&scene, 3);
    let address = scene.escrow_address();
    // Mallory litters the escrow address: plain ADA, NTX without datum, a copy of
    // an escrow without its job token, a look-alike with a forged token, and a
    // malformed datum.
    let mut copy = escrows[0].utxo.output.clone();
    copy.value.assets.remove(&scene.dep.script.policy_id());
    let junk = vec![
        TxOutput::new(
            address.clone(),
            ntx_offchain::tx::Value::lovelace(1_000_000),
        ),
        TxOutput::new(
            address.clone(),
            ntx_offchain::tx::Value::lovelace(2_000_000).with_asset(
                scene.world.ntx.policy,
                &scene.world.ntx.name,
                7,
            ),
        ),
        copy,
        look_alike(&scene, always_policy(), [0x42; 32]),
        TxOutput::new(
            address.clone(),
            ntx_offchain::tx::Value::lovelace(2_000_000),
        )
        .with_inline_datum(data::int(42)),
    ];
    let n_junk = junk.len();
    let tx = forge(&scene, junk, BTreeMap::from([([0x42u8; 32].to_vec(), 1)]));
    scene
        .world
        .devnet
        .submit(&tx.cbor)
        .expect("litter is a valid payment");
    scene.world.devnet.produce_block().expect("a block");

    // The keeper's view: everything at the address, filtered to genuine escrows.
    let all = scene.world.utxos(&address);
    let found: Vec<EscrowUtxo> = all
        .iter()
        .filter_map(|u| EscrowUtxo::from_utxo(&scene.dep, u.clone()).ok())
        .collect();
    assert_eq!(found.len(), 3, "exactly the three escrows are escrows");
    assert_eq!(
        all.len(),
        3 + n_junk + 1,
        "escrows, junk and the reference script"
    );

    // Sweeping the dust along in the batch is refused...
    let mut claims: Vec<(EscrowUtxo, Settlement)> = found
        .iter()
        .map(|e| {
            let attestations = scene.attest(e, Verdict::Accept, &[0, 1]);
            (e.clone(), Settlement::Claim { attestations })
        })
        .collect();
    let dust = all
        .iter()
        .find(|u| u.reference.transaction_id == tx.id && u.reference.output_index == 0)
        .expect("the plain dust")
        .clone();
    let mut draft = scene.settle_draft(claims.clone(), scene.now());
    draft.inputs.push(dust.clone());
    let order = draft.sorted_inputs();
    for r in &mut draft.redeemers {
        if let ScriptPurpose::Spend(reference) = &r.purpose {
            let input_index = order.iter().position(|x| x == reference).expect("input") as u32;
            r.data = SpendAction::Settle { input_index }.to_plutus_data();
        }
        if let ScriptPurpose::Reward(_) = &r.purpose {
            // Give the dust a settlement of its own, in input order.
            let mut entries: Vec<(usize, Settlement)> = claims
                .iter()
                .map(|(e, s)| {
                    (
                        order
                            .iter()
                            .position(|x| *x == e.utxo.reference)
                            .expect("in"),
                        s.clone(),
                    )
                })
                .collect();
            entries.push((
                order.iter().position(|x| *x == dust.reference).expect("in"),
                Settlement::RefundNoShow,
            ));
            entries.sort_by_key(|(i, _)| *i);
            let list: Vec<Settlement> = entries.into_iter().map(|(_, s)| s).collect();
            r.data = list.to_plutus_data();
        }
    }
    draft.redeemers.push(DraftRedeemer {
        purpose: ScriptPurpose::Spend(dust.reference),
        data: SpendAction::Settle {
            input_index: draft.input_index(&dust.reference).expect("input"),
        }
        .to_plutus_data(),
        ex_units: ExUnits::default(),
    });
    let forced = scene.force_as_keeper(draft);
    scene.refused("batch that sweeps dust", &forced, reward_purpose());

    // ...and the batch of the three genuine escrows, built as the keeper builds
    // it, goes through with the junk still there.
    claims.sort_by_key(|(e, _)| e.utxo.reference);
    let draft = scene.settle_draft(claims, scene.now());
    let settle = scene.finish_as_keeper(draft, "the batch evaluates");
    scene.world.submit(&settle).expect("the batch is accepted");
    let paid = scene.paid_to_provider();
    assert_eq!(paid, 3 * PRICE);
    assert_eq!(
        scene.world.utxos(&address).len(),
        n_junk + 1,
        "the junk and the reference script stay"
    );
}

#[test]
fn replaying_a_settlement() {
    let scene = Scene::new();
    let escrow = submitted(&scene, 1).remove(0);
    let attestations = scene.attest(&escrow, Verdict::Accept, &[0, 1]);
    let draft = scene.claim_draft(escrow, attestations);
    let claim = scene.finish_as_keeper(draft, "the claim evaluates");
    scene
        .world
        .devnet
        .submit(&claim.tx.cbor)
        .expect("the claim is accepted");
    // Replayed while the first copy waits in the mempool.
    match scene.world.devnet.submit(&claim.tx.cbor) {
        Err(DevnetError::Ledger(LedgerError::DoubleSpend { .. })) => {}
        other => panic!("the replay must be a double spend: {other:?}"),
    }
    scene.world.devnet.produce_block().expect("a block");
    // Replayed after it is in a block.
    let err = scene.attack("replayed claim", &claim.tx);
    assert!(
        matches!(err, LedgerError::UnknownInput { .. }),
        "the replay spends spent inputs (BadInputsUTxO): {err}"
    );
    assert!(err.to_string().contains("BadInputsUTxO"));
    let paid = scene.paid_to_provider();
    assert_eq!(paid, PRICE, "paid once");
}

#[test]
fn attestations_replayed_into_a_settlement_of_a_new_escrow() {
    // A replay across escrows: the settled job's attestations cannot claim a new
    // job locked later for the same result and verifiers.
    let scene = Scene::new();
    let old = submitted(&scene, 1).remove(0);
    let old_atts = scene.attest(&old, Verdict::Accept, &[0, 1]);
    let draft = scene.settle_draft(
        vec![(
            old,
            Settlement::Claim {
                attestations: old_atts.clone(),
            },
        )],
        scene.now(),
    );
    let claim = scene.finish_as_keeper(draft, "the claim evaluates");
    scene.world.submit(&claim).expect("accepted");
    let new = submitted(&scene, 1).remove(0);
    scene.refused(
        "old attestations, new job",
        &claim_with(&scene, &new, old_atts),
        reward_purpose(),
    );
}

// ## Two deployments in one transaction

/// The escrow deployed a second time, for `asset`: the same contract, another
/// script hash, address, policy and stake credential.
fn deploy_for(scene: &Scene, asset: &Asset) -> Deployment {
    let script = Blueprint::embedded()
        .escrow(asset)
        .expect("the blueprint applies");
    let deployer = Party::from_seed(0x65, Network::Devnet);
    let funding = vec![scene.world.fund(&deployer, 50_000_000, 0)];
    let draft = builder::deploy(
        &script,
        Network::Devnet,
        &scene.world.fee_params,
        scene.world.key_deposit,
        funding,
        true,
    )
    .expect("deploy builds");
    let mut dep = Deployment {
        script,
        script_utxo: Utxo {
            reference: ntx_offchain::protocol::OutputReference {
                transaction_id: [0; 32],
                output_index: 0,
            },
            output: draft.outputs[0].clone(),
        },
        ..scene.dep.clone()
    };
    let finished = dep
        .finish(draft, &deployer.address_bytes, &[&deployer.key], 0)
        .expect("deploy evaluates");
    scene
        .world
        .submit(&finished)
        .expect("the second deployment is accepted");
    dep.script_utxo.reference.transaction_id = finished.tx.id;
    dep
}

/// One transaction settling `a` (main deployment) and `b` (deployment `dep_b`):
/// the two builders' drafts merged, spend indexes recomputed.
fn merged_claims(
    scene: &Scene,
    a: (EscrowUtxo, Settlement),
    dep_b: &Deployment,
    b: (EscrowUtxo, Settlement),
) -> Draft {
    let mut m = scene.settle_draft(vec![a], scene.now());
    let spare = scene.world.fund(&scene.mallory, 5_000_000, 0);
    let db =
        builder::settle(dep_b, vec![b], vec![], spare, scene.now(), 100, 0).expect("settle builds");
    m.inputs.extend(db.inputs);
    m.mint.extend(db.mint);
    m.withdrawals.extend(db.withdrawals);
    m.reference_inputs.extend(db.reference_inputs);
    m.outputs.extend(db.outputs);
    m.redeemers.extend(db.redeemers);
    m.invalid_from_slot = m.invalid_from_slot.min(db.invalid_from_slot);
    reindex_spends(&mut m);
    m
}

#[test]
fn one_output_paying_two_deployments_settlements() {
    let scene = Scene::new();
    // Mallory mints a FAKE asset (always-succeeds policy) for the requester, and
    // the escrow is deployed a second time, for FAKE.
    let fake = Asset {
        policy: always_policy(),
        name: b"FAKE".to_vec(),
    };
    let to_requester = TxOutput::new(
        scene.requester.address_bytes.clone(),
        ntx_offchain::tx::Value::lovelace(20_000_000).with_asset(fake.policy, &fake.name, PRICE),
    );
    let tx = forge(
        &scene,
        vec![to_requester],
        BTreeMap::from([(fake.name.clone(), PRICE as i64)]),
    );
    scene
        .world
        .devnet
        .submit(&tx.cbor)
        .expect("the FAKE mint is accepted");
    scene.world.devnet.produce_block().expect("a block");
    let dep_b = deploy_for(&scene, &fake);
    assert_ne!(dep_b.script.hash(), scene.dep.script.hash());

    // Job A in the NTX escrow, job B in the FAKE escrow, same provider, both submitted.
    let a = submitted(&scene, 1).remove(0);
    let funding = scene
        .world
        .utxos(&scene.requester.address_bytes)
        .into_iter()
        .filter(|u| u.output.value.quantity_of(&fake.policy, &fake.name) > 0)
        .collect();
    let collateral = scene.world.fund(&scene.requester, 5_000_000, 0);
    let draft = builder::lock(
        &dep_b,
        &[scene.terms()],
        funding,
        collateral,
        scene.now() + 100,
        Default::default(),
    )
    .expect("lock B builds");
    let lock = dep_b
        .finish(
            draft,
            &scene.requester.address_bytes,
            &[&scene.requester.key],
            0,
        )
        .expect("lock B evaluates");
    scene.world.submit(&lock).expect("lock B is accepted");
    let b_utxo = scene
        .world
        .utxos(&dep_b.script.address(Network::Devnet).to_vec())
        .into_iter()
        .find(|u| u.reference.transaction_id == lock.tx.id)
        .expect("escrow B");
    let b = EscrowUtxo::from_utxo(&dep_b, b_utxo).expect("escrow B is an escrow");
    let funding = vec![scene.world.fund(&scene.agent, 5_000_000, 0)];
    let collateral = scene.world.fund(&scene.agent, 5_000_000, 0);
    let draft = builder::submit(&dep_b, &b, RESULT, funding, collateral, scene.now() + 50)
        .expect("submit B builds");
    let submit = dep_b
        .finish(draft, &scene.agent.address_bytes, &[&scene.agent.key], 0)
        .expect("submit B evaluates");
    scene.world.submit(&submit).expect("submit B is accepted");
    let b_utxo = scene
        .world
        .utxos(&dep_b.script.address(Network::Devnet).to_vec())
        .into_iter()
        .find(|u| u.reference.transaction_id == submit.tx.id)
        .expect("escrow B, submitted");
    let b = EscrowUtxo::from_utxo(&dep_b, b_utxo).expect("still an escrow");
    let atts_a = scene.attest(&a, Verdict::Accept, &[0, 1]);
    let signers = [(&scene.verifiers[0], 0), (&scene.verifiers[1], 1)];
    let atts_b = scene.attest_as(&b, Verdict::Accept, &signers, dep_b.script.hash(), RESULT);
    let claim_a = (
        a.clone(),
        Settlement::Claim {
            attestations: atts_a,
        },
    );
    let claim_b = (
        b.clone(),
        Settlement::Claim {
            attestations: atts_b,
        },
    );

    // The attack: one output, tagged for A, carries both assets but only one
    // deposit; B's deposit goes to mallory.
    let mut draft = merged_claims(&scene, claim_a.clone(), &dep_b, claim_b.clone());
    let provider = scene.provider.address_bytes.clone();
    let mut single = a.payout(&scene.dep);
    single.add_asset(fake.policy, &fake.name, PRICE);
    draft.outputs.retain(|o| o.address != provider);
    draft.outputs.insert(
        0,
        TxOutput::new(provider.clone(), single).with_inline_datum(
            ntx_offchain::protocol::payout_datum(&scene.dep.script.hash()),
        ),
    );
    let b_account = dep_b.script.stake_address(Network::Devnet).to_vec();
    let (_, b_index) = draft
        .redeemer_key(&ScriptPurpose::Reward(b_account))
        .expect("B's withdrawal");
    let tx = scene.force_as_keeper(draft);
    scene.refused(
        "one output for two deployments",
        &tx,
        &format!("withdraw:{b_index}"),
    );

    // The control: the same merged transaction with each payout tagged for its
    // own deployment is accepted, and the provider gets both.
    let draft = merged_claims(&scene, claim_a, &dep_b, claim_b);
    let both = scene.finish_as_keeper(draft, "the honest merged claim evaluates");
    scene
        .world
        .submit(&both)
        .expect("the honest merged claim is accepted");
    let paid = |policy: &[u8; 28], name: &[u8]| -> u64 {
        scene
            .world
            .utxos(&provider)
            .iter()
            .map(|u| u.output.value.quantity_of(policy, name))
            .sum()
    };
    assert_eq!(paid(&scene.world.ntx.policy, &scene.world.ntx.name), PRICE);
    assert_eq!(paid(&fake.policy, &fake.name), PRICE);
}

// ## Unpayable payees

/// A lock whose provider (or requester) address no ledger output can carry: a
/// stake key hash of 5 bytes, or a stake pointer. A provider who did such a job
/// could never be paid, and the requester would take the refund at `settle_by`
/// after the work was done. The lock's `is_payee` checks the stake part as well as
/// the payment credential and refuses all three (until it did, this was the
/// finding of docs/SECURITY.md row 24, stopped only off chain).
#[test]
fn a_lock_with_an_unpayable_payee_is_refused() {
    let scene = Scene::new();
    let inline_short = |kind: u64| {
        data::constr(
            0,
            vec![data::constr(
                0,
                vec![data::constr(kind, vec![data::bytes(&[1; 5])])],
            )],
        )
    };
    let pointer = data::constr(
        0,
        vec![data::constr(
            1,
            vec![data::int(1), data::int(2), data::int(3)],
        )],
    );
    let cases = [
        (
            "provider with a 5-byte stake key hash",
            2,
            scene.provider.key_hash,
            inline_short(0),
        ),
        (
            "provider with a stake pointer",
            2,
            scene.provider.key_hash,
            pointer,
        ),
        (
            "requester with a 5-byte stake script hash",
            1,
            scene.requester.key_hash,
            inline_short(1),
        ),
    ];
    for (what, field, key_hash, stake) in cases {
        let mut draft = scene.lock_draft(1);
        let mut fields = lock_datum_fields(&draft);
        fields[field] = data::constr(
            0,
            vec![data::constr(0, vec![data::bytes(&key_hash)]), stake],
        );
        draft.outputs[0].datum = Datum::Inline(data::constr(0, fields));
        let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
        let err = scene.attack(what, &tx);
        assert_script_failure(what, &err, "mint:0");
    }
}

// ## Escrows only at the escrow address, and only with their token

/// A job locked at the escrow's payment credential but with Mallory's stake key:
/// the ledger would take it, Mallory would earn the deposit's staking rewards,
/// and every reader (agents, `ntx job`, `ntx settle`, `ntx audit`), which look at
/// the escrow address itself, would miss it. The lock requires the escrow
/// output's address to be exactly the escrow address.
#[test]
fn a_lock_at_the_escrow_credential_with_a_foreign_stake_part_is_refused() {
    let scene = Scene::new();
    let network = scene.escrow_address()[0] & 0x0f;
    for (what, header, stake) in [
        ("Mallory's stake key", 0x10, scene.mallory.key_hash),
        (
            "the script as its own stake part",
            0x30,
            scene.dep.script.hash(),
        ),
    ] {
        let mut draft = scene.lock_draft(1);
        let mut address = vec![header | network];
        address.extend(scene.dep.script.hash());
        address.extend(stake);
        draft.outputs[0].address = address;
        let tx = scene.force(draft, &scene.requester, &[&scene.requester.key]);
        scene.refused(what, &tx, "mint:0");
    }
}

/// Anyone can pay a look-alike to the escrow address: a `Locked` datum naming
/// Mallory's own key as agent, without a job token. Submit requires the job
/// token, so the look-alike is never turned into a "submitted" job.
#[test]
fn submitting_a_look_alike_without_a_job_token() {
    let scene = Scene::new();
    let mut terms = scene.terms();
    terms.agent = scene.mallory.key_hash;
    let datum = terms.datum([0x42; 32]);
    let value = ntx_offchain::tx::Value::lovelace(5_000_000).with_asset(
        scene.world.ntx.policy,
        &scene.world.ntx.name,
        PRICE,
    );
    let out =
        TxOutput::new(scene.escrow_address(), value).with_inline_datum(datum.to_plutus_data());
    let tx = forge(&scene, vec![out], BTreeMap::new());
    let fake = EscrowUtxo {
        utxo: land_at_escrow(&scene, &tx),
        datum,
    };
    let draft = scene.submit_draft(&fake, RESULT, &scene.mallory);
    let purpose = spend_purpose(&draft, &fake);
    let tx = scene.force(draft, &scene.mallory, &[&scene.mallory.key]);
    scene.refused("a Submit of a token-less look-alike", &tx, &purpose);
}

#[path = "attacks/fast_path.rs"]
mod fast_path;
