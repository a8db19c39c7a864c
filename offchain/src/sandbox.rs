//! A chain-less sandbox for escrow transactions: synthetic wallets, one
//! deployment, and the real builders, evaluator and fee rules.
//!
//! It answers "would the validator accept this transaction, and what would it
//! cost?" without a node: the contract's integration tests and
//! `ntx bench contract` run on it. UTxOs are invented on demand, so it proves
//! nothing about phase-1 ledger rules (the devnet does that).

use std::collections::BTreeMap;

use pallas_addresses::{ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart};
use pallas_crypto::hash::Hash;
use pallas_crypto::key::ed25519::SecretKey;

use crate::blueprint::Blueprint;
use crate::builder::{self, BuildError, Deployment, EscrowUtxo, Finished, JobTerms};
use crate::evaluate::{Evaluator, ExUnits, SlotConfig};
use crate::market::{SignedOffer, offer_output};
use crate::network::Network;
use crate::protocol::{
    Address, Asset, Attestation, Credential, JobState, OutputReference, Settlement, Verdict,
    attestation_message, blake2b_224, sign_attestation,
};
use crate::tx::{FeeParams, ScriptRef, TxOutput, Utxo, Value};
use crate::wallet::Signer;

/// A party with one ed25519 key and its enterprise address.
pub struct Party {
    /// The signing key.
    pub key: SecretKey,
    /// The verification key.
    pub public_key: [u8; 32],
    /// blake2b-224 of the verification key.
    pub key_hash: [u8; 28],
    /// The party's address as scripts see it.
    pub address: Address,
    /// The address's raw bytes on the party's network.
    pub address_bytes: Vec<u8>,
    /// The address in bech32.
    pub bech32: String,
}

impl Party {
    /// The party whose key is 32 copies of `seed`.
    pub fn from_seed(seed: u8, network: Network) -> Party {
        let key = SecretKey::from([seed; 32]);
        let public_key: [u8; 32] = key.public_key().into();
        let key_hash = blake2b_224(&public_key);
        let address = Address {
            payment: Credential::Key(key_hash),
            stake: None,
        };
        let shelley = ShelleyAddress::new(
            network.address_network(),
            ShelleyPaymentPart::Key(Hash::new(key_hash)),
            ShelleyDelegationPart::Null,
        );
        Party {
            key,
            public_key,
            key_hash,
            address,
            address_bytes: shelley.to_vec(),
            bech32: shelley.to_bech32().unwrap_or_default(),
        }
    }
}

/// The sandbox's limits: mainnet prices and per-transaction limits.
pub const MAINNET_MAX_TX_EX_UNITS: ExUnits = ExUnits {
    mem: 16_500_000,
    steps: 10_000_000_000,
};

/// One deployment, the parties of a job, and synthetic UTxOs.
pub struct Sandbox {
    /// The deployment under test.
    pub deployment: Deployment,
    /// Locks and gets refunds.
    pub requester: Party,
    /// Gets paid.
    pub provider: Party,
    /// The provider's hot key: signs Submit.
    pub agent: Party,
    /// Anyone: triggers settlements.
    pub keeper: Party,
    /// Three verifiers, sorted by public key.
    pub verifiers: Vec<Party>,
    next_tx: u64,
}

impl Sandbox {
    /// A sandbox at mainnet prices and limits, settling in `settlement`.
    pub fn new(settlement: Asset) -> Sandbox {
        let network = Network::Devnet;
        let script = Blueprint::embedded()
            .escrow(&settlement)
            .unwrap_or_else(|e| panic!("the embedded blueprint applies: {e}"));
        let holder = Party::from_seed(0xee, network);
        let script_utxo = Utxo {
            reference: OutputReference {
                transaction_id: [0xee; 32],
                output_index: 0,
            },
            output: TxOutput {
                script_ref: Some(ScriptRef::PlutusV3(script.cbor().to_vec())),
                ..TxOutput::new(holder.address_bytes.clone(), Value::lovelace(30_000_000))
            },
        };
        let evaluator = Evaluator {
            cost_models: None,
            max_tx_ex_units: MAINNET_MAX_TX_EX_UNITS,
            slot_config: SlotConfig {
                zero_time_ms: 1_700_000_000_000,
                zero_slot: 0,
                slot_length_ms: 1000,
            },
            protocol_major: 10,
        };
        let deployment = Deployment {
            script,
            script_utxo,
            network,
            fee_params: FeeParams::MAINNET,
            evaluator,
            // uplc does not check the script data hash; any model sizes it right.
            cost_model_v3: vec![0; 297],
        };
        let mut verifiers: Vec<Party> = (0..3)
            .map(|i| Party::from_seed(0x10 + i, network))
            .collect();
        verifiers.sort_by_key(|p| p.public_key);
        Sandbox {
            deployment,
            requester: Party::from_seed(1, network),
            provider: Party::from_seed(2, network),
            agent: Party::from_seed(3, network),
            keeper: Party::from_seed(4, network),
            verifiers,
            next_tx: 1,
        }
    }

    /// POSIX ms at the start of `slot`.
    pub fn time(&self, slot: u64) -> u64 {
        self.deployment.evaluator.slot_config.slot_to_posix_ms(slot)
    }

    /// A fresh UTxO holding `value` at `owner`'s address.
    pub fn utxo(&mut self, owner: &[u8], value: Value) -> Utxo {
        let mut transaction_id = [0u8; 32];
        transaction_id[..8].copy_from_slice(&self.next_tx.to_be_bytes());
        self.next_tx += 1;
        Utxo {
            reference: OutputReference {
                transaction_id,
                output_index: 0,
            },
            output: TxOutput::new(owner.to_vec(), value),
        }
    }

    /// Terms for a 2-of-3 job at `price`, with deadlines at these slots.
    pub fn terms(&self, price: u64, submit_by_slot: u64, settle_by_slot: u64) -> JobTerms {
        JobTerms {
            requester: self.requester.address,
            provider: self.provider.address,
            agent: self.agent.key_hash,
            spec_hash: [0x5b; 32],
            price,
            verifiers: self.verifiers.iter().map(|v| v.public_key).collect(),
            threshold: 2,
            submit_by: self.time(submit_by_slot),
            settle_by: self.time(settle_by_slot),
        }
    }

    fn settlement_units(&self, amount: u64) -> Value {
        let asset = self.deployment.script.settlement();
        Value::lovelace(0).with_asset(asset.policy, &asset.name, amount)
    }

    /// Locks `jobs` from a requester wallet holding enough NTX, valid until `slot`.
    pub fn lock(
        &mut self,
        jobs: &[JobTerms],
        invalid_from_slot: u64,
    ) -> Result<(Finished, Vec<EscrowUtxo>), BuildError> {
        let total: u64 = jobs.iter().map(|j| j.price).sum();
        let address = self.requester.address_bytes.clone();
        let mut funding = vec![
            self.utxo(
                &address,
                self.settlement_units(total)
                    .with_lovelace(20_000_000 + 4_000_000 * jobs.len() as u64),
            ),
        ];
        for _ in 1..jobs.len() {
            funding.push(self.utxo(&address, Value::lovelace(2_000_000)));
        }
        let collateral = self.utxo(&address, Value::lovelace(5_000_000));
        let draft = builder::lock(
            &self.deployment,
            jobs,
            funding,
            collateral,
            invalid_from_slot,
            BTreeMap::new(),
        )?;
        let finished = self
            .deployment
            .finish(draft, &address, &[&self.requester.key], 0)?;
        let escrows = (0..jobs.len())
            .map(|i| self.escrow_at(&finished, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((finished, escrows))
    }

    /// The escrow a finished transaction created at output `index`.
    pub fn escrow_at(&self, finished: &Finished, index: usize) -> Result<EscrowUtxo, BuildError> {
        let utxo = Utxo {
            reference: OutputReference {
                transaction_id: finished.tx.id,
                output_index: index as u64,
            },
            output: finished.draft.outputs[index].clone(),
        };
        EscrowUtxo::from_utxo(&self.deployment, utxo)
    }

    /// The agent submits `result_hash`, valid until `slot`.
    pub fn submit(
        &mut self,
        escrow: &EscrowUtxo,
        result_hash: [u8; 32],
        invalid_from_slot: u64,
    ) -> Result<(Finished, EscrowUtxo), BuildError> {
        let address = self.agent.address_bytes.clone();
        let funding = vec![self.utxo(&address, Value::lovelace(10_000_000))];
        let collateral = self.utxo(&address, Value::lovelace(5_000_000));
        let draft = builder::submit(
            &self.deployment,
            escrow,
            result_hash,
            funding,
            collateral,
            invalid_from_slot,
        )?;
        let finished = self
            .deployment
            .finish(draft, &address, &[&self.agent.key], 0)?;
        let escrow = self.escrow_at(&finished, 0)?;
        Ok((finished, escrow))
    }

    /// Attestations on `escrow`'s submitted result by the verifiers at `which`.
    pub fn attest(
        &self,
        escrow: &EscrowUtxo,
        verdict: Verdict,
        which: &[usize],
    ) -> Vec<Attestation> {
        let JobState::Submitted { result_hash } = escrow.datum.state else {
            return Vec::new();
        };
        let message = attestation_message(
            verdict,
            &self.deployment.script.hash(),
            &escrow.datum.job_id,
            &result_hash,
        );
        which
            .iter()
            .map(|&i| sign_attestation(&self.verifiers[i].key, i as u32, &message))
            .collect()
    }

    /// A Claim for each submitted escrow, accepted by verifiers 0 and 2 (a
    /// 2-of-3 quorum).
    pub fn claims(&self, escrows: Vec<EscrowUtxo>) -> Vec<(EscrowUtxo, Settlement)> {
        escrows
            .into_iter()
            .map(|e| {
                let attestations = self.attest(&e, Verdict::Accept, &[0, 2]);
                (e, Settlement::Claim { attestations })
            })
            .collect()
    }

    /// A fast-path claim (protocol v1.1) for each still-locked escrow: `result_hash`
    /// accepted by verifiers 0 and 2.
    pub fn fast_claims(
        &self,
        escrows: Vec<EscrowUtxo>,
        result_hash: [u8; 32],
    ) -> Vec<(EscrowUtxo, Settlement)> {
        escrows
            .into_iter()
            .map(|e| {
                let message = attestation_message(
                    Verdict::Accept,
                    &self.deployment.script.hash(),
                    &e.datum.job_id,
                    &result_hash,
                );
                let attestations = [0usize, 2]
                    .iter()
                    .map(|&i| sign_attestation(&self.verifiers[i].key, i as u32, &message))
                    .collect();
                (
                    e,
                    Settlement::FastClaim {
                        result_hash,
                        attestations,
                    },
                )
            })
            .collect()
    }

    /// The keeper settles `escrows` from `now_slot`, signing with `cosigners` too
    /// (a Cancel needs the requester and the agent).
    pub fn settle(
        &mut self,
        escrows: Vec<(EscrowUtxo, Settlement)>,
        now_slot: u64,
        cosigners: &[&Party],
    ) -> Result<Finished, BuildError> {
        self.settle_draft(escrows, now_slot, |_| {}, cosigners)
    }

    /// Like [`Sandbox::settle`], with `tamper` applied to the draft before it is
    /// evaluated and signed: the attacks' entry point.
    pub fn settle_draft(
        &mut self,
        escrows: Vec<(EscrowUtxo, Settlement)>,
        now_slot: u64,
        tamper: impl FnOnce(&mut crate::tx::Draft),
        cosigners: &[&Party],
    ) -> Result<Finished, BuildError> {
        let address = self.keeper.address_bytes.clone();
        let funding = vec![self.utxo(&address, Value::lovelace(10_000_000))];
        let collateral = self.utxo(&address, Value::lovelace(5_000_000));
        let mut draft = builder::settle(
            &self.deployment,
            escrows,
            funding,
            collateral,
            now_slot,
            600,
            0,
        )?;
        tamper(&mut draft);
        let mut signers: Vec<&dyn Signer> = vec![&self.keeper.key];
        signers.extend(cosigners.iter().map(|p| &p.key as &dyn Signer));
        self.deployment.finish(draft, &address, &signers, 0)
    }

    /// The agent publishes `signed` (an offer for its own key) from a fresh
    /// wallet UTxO, sweeping `previous` (its last offer, if any) back: the
    /// market's publish and replace transactions. Returns the new offer's UTxO.
    pub fn publish_offer(
        &mut self,
        signed: &SignedOffer,
        previous: Option<Utxo>,
    ) -> Result<(Finished, Utxo), BuildError> {
        let output = offer_output(
            signed,
            &self.agent.key_hash,
            &self.deployment.script.hash(),
            self.deployment.network,
            &self.deployment.fee_params,
        );
        let address = self.agent.address_bytes.clone();
        let mut inputs: Vec<Utxo> = previous.into_iter().collect();
        inputs.push(self.utxo(&address, Value::lovelace(10_000_000)));
        let draft = crate::tx::Draft {
            inputs,
            outputs: vec![output],
            ..crate::tx::Draft::default()
        };
        let finished = self
            .deployment
            .finish(draft, &address, &[&self.agent.key], 0)?;
        let utxo = Utxo {
            reference: OutputReference {
                transaction_id: finished.tx.id,
                output_index: 0,
            },
            output: finished.draft.outputs[0].clone(),
        };
        Ok((finished, utxo))
    }

    /// The agent withdraws the offer at `previous`: its deposit pays the fee and
    /// the rest comes back.
    pub fn withdraw_offer(&mut self, previous: Utxo) -> Result<Finished, BuildError> {
        let address = self.agent.address_bytes.clone();
        let draft = crate::tx::Draft {
            inputs: vec![previous],
            ..crate::tx::Draft::default()
        };
        self.deployment
            .finish(draft, &address, &[&self.agent.key], 0)
    }
}
