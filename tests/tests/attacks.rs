//! Attacks on the escrow, each built and signed with real keys and submitted to
//! an in-process devnet, which must reject it — with the phase-2 failure of the
//! named script purpose, or the named ledger rule — while no UTxO of anyone
//! involved changes. `docs/SECURITY.md` maps every test here to the check that
//! stops it. This file holds the [`Scene`] fixture and the helpers the attacks
//! share; the attacks are in `attacks/`, one file per theme.
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

// ## Helpers several attack files share

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

#[path = "attacks/attestations.rs"]
mod attestations;

#[path = "attacks/submit.rs"]
mod submit;

#[path = "attacks/deadlines.rs"]
mod deadlines;

#[path = "attacks/payouts.rs"]
mod payouts;

#[path = "attacks/job_tokens.rs"]
mod job_tokens;

#[path = "attacks/dust_and_replays.rs"]
mod dust_and_replays;

#[path = "attacks/two_deployments.rs"]
mod two_deployments;

#[path = "attacks/unpayable_payees.rs"]
mod unpayable_payees;

#[path = "attacks/escrow_address.rs"]
mod escrow_address;

#[path = "attacks/fast_path.rs"]
mod fast_path;
