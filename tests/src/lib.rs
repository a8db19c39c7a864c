//! Cross-crate end-to-end tests for ntx-escrow live in `tests/tests/`; this
//! library holds what they share: an in-process devnet seen through the
//! off-chain library's types, running agents ([`agents`]), the `ntx` binary
//! ([`cli`], for the root package's tests), a chain proxy ([`proxy`]), a
//! hostile HTTP peer ([`hostile`]) and the agent tests' world ([`world`]).

pub mod agents;
mod chain;
pub mod cli;
pub mod hostile;
mod live;
pub mod proxy;
pub mod world;

use ntx_devnet::{Devnet, DevnetConfig, OutRef};
use ntx_offchain::builder::{BuildError, Deployment, Finished};
use ntx_offchain::protocol::{Asset, OutputReference};
use ntx_offchain::tx::{FeeParams, Ratio, TxOutput, Utxo};
use ntx_offchain::{Blueprint, Evaluator, ExUnits, Network, SlotConfig};

pub use chain::{Blocks, DevnetChain};
pub use live::LiveDevnet;
pub use ntx_offchain::sandbox::Party;

/// An in-process devnet and the off-chain view of it.
pub struct World {
    /// The chain.
    pub devnet: Devnet,
    /// Prices, as the builders take them.
    pub fee_params: FeeParams,
    /// The evaluator with the devnet's cost models, limits and slot config.
    pub evaluator: Evaluator,
    /// The Plutus V3 cost model.
    pub cost_model_v3: Vec<i64>,
    /// The stake key deposit.
    pub key_deposit: u64,
    /// The devnet's NTX.
    pub ntx: Asset,
}

impl World {
    /// A fresh in-memory devnet with a manual clock.
    pub fn new() -> World {
        let devnet = Devnet::open(DevnetConfig::default()).expect("an in-memory devnet opens");
        let params = devnet.params();
        let sc = devnet.slot_config();
        let fee_params = FeeParams {
            min_fee_a: params.min_fee_a,
            min_fee_b: params.min_fee_b,
            price_mem: Ratio::new(params.price_mem.numerator, params.price_mem.denominator),
            price_steps: Ratio::new(params.price_step.numerator, params.price_step.denominator),
            ref_script_cost_per_byte: Ratio::new(params.min_fee_ref_script_cost_per_byte, 1),
            coins_per_utxo_byte: params.coins_per_utxo_byte,
            collateral_percent: params.collateral_percent,
        };
        let evaluator = Evaluator {
            cost_models: Some(params.cost_models_cbor()),
            max_tx_ex_units: ExUnits {
                mem: params.max_tx_ex_mem,
                steps: params.max_tx_ex_steps,
            },
            slot_config: SlotConfig {
                zero_time_ms: sc.zero_time,
                zero_slot: sc.zero_slot,
                slot_length_ms: sc.slot_length,
            },
            protocol_major: params.protocol_major as u16,
        };
        let ntx = Asset {
            policy: *devnet.ntx_policy(),
            name: b"NTX".to_vec(),
        };
        World {
            cost_model_v3: params.cost_model_v3.clone(),
            key_deposit: params.key_deposit,
            fee_params,
            evaluator,
            ntx,
            devnet,
        }
    }

    /// The UTxOs at `address`.
    pub fn utxos(&self, address: &[u8]) -> Vec<Utxo> {
        self.devnet
            .utxos_at(address)
            .expect("the devnet answers")
            .into_iter()
            .map(|(r, cbor)| utxo(r, &cbor))
            .collect()
    }

    /// A fresh UTxO at `party` holding `lovelace` and `ntx` units (confirmed).
    pub fn fund(&self, party: &Party, lovelace: u64, ntx: u64) -> Utxo {
        let r = self
            .devnet
            .fund_now(&party.bech32, lovelace, ntx)
            .expect("the faucet pays");
        let cbor = self.devnet.utxo(&r).expect("the funded output exists");
        utxo(r, &cbor)
    }

    /// Submits a finished transaction and puts it in a block.
    pub fn submit(&self, finished: &Finished) -> Result<(), ntx_devnet::DevnetError> {
        self.devnet.submit(&finished.tx.cbor)?;
        self.devnet.produce_block()?;
        Ok(())
    }

    /// POSIX ms at the start of `slot`.
    pub fn time(&self, slot: u64) -> u64 {
        self.evaluator.slot_config.slot_to_posix_ms(slot)
    }

    /// Deploys the escrow for the devnet NTX, paid by `deployer`.
    pub fn deploy(&self, deployer: &Party) -> Result<Deployment, BuildError> {
        let script = Blueprint::embedded()
            .escrow(&self.ntx)
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        let funding = vec![self.fund(deployer, 50_000_000, 0)];
        let draft = ntx_offchain::builder::deploy(
            &script,
            Network::Devnet,
            &self.fee_params,
            self.key_deposit,
            funding,
            true,
        )?;
        let mut deployment = Deployment {
            script,
            script_utxo: Utxo {
                reference: OutputReference {
                    transaction_id: [0; 32],
                    output_index: 0,
                },
                output: draft.outputs[0].clone(),
            },
            network: Network::Devnet,
            fee_params: self.fee_params.clone(),
            evaluator: self.evaluator.clone(),
            cost_model_v3: self.cost_model_v3.clone(),
        };
        let finished = deployment.finish(draft, &deployer.address_bytes, &[&deployer.key], 0)?;
        self.submit(&finished)
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        deployment.script_utxo.reference = OutputReference {
            transaction_id: finished.tx.id,
            output_index: 0,
        };
        Ok(deployment)
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

fn utxo(r: OutRef, cbor: &[u8]) -> Utxo {
    Utxo {
        reference: OutputReference {
            transaction_id: *r.tx_hash,
            output_index: u64::from(r.index),
        },
        output: TxOutput::from_cbor(cbor).expect("the devnet's outputs decode"),
    }
}
