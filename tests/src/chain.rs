//! [`DevnetChain`]: the off-chain [`ChainProvider`] implemented directly over
//! an in-process [`Devnet`], with no HTTP in between, for tests and the demo.

use ntx_devnet::{Devnet, DevnetError, OutRef};
use ntx_offchain::chain::{
    AddressTx, AssetHolding, AwaitOptions, AwaitSchedule, BlockRange, ChainError, ChainProvider,
    Confirmation, LabelledMetadata, ProtocolParams, RedeemerPurpose, RewardAccount, Tip, TxId,
    TxInfo, TxMetadata, TxRedeemer,
};
use ntx_offchain::protocol::OutputReference;
use ntx_offchain::tx::{TxOutput, Utxo};
use ntx_offchain::{ExUnits, SlotConfig};
use pallas_addresses::{Address, StakeAddress, StakePayload};
use pallas_crypto::hash::Hash;
use serde_json::Value as Json;

/// When blocks are made for transactions submitted through a [`DevnetChain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocks {
    /// By the devnet's own clock (`Devnet::run_clock`, or the test's
    /// `produce_block` calls).
    Clock,
    /// Right after each accepted submission, and, while
    /// [`ChainProvider::await_tx`] waits for more confirmations of a
    /// transaction already in a block, one empty block per poll: for devnets
    /// on a manual clock that nothing else drives.
    AfterSubmit,
}

/// The [`ChainProvider`] of an in-process devnet.
#[derive(Debug, Clone)]
pub struct DevnetChain {
    devnet: Devnet,
    blocks: Blocks,
}

impl DevnetChain {
    /// A provider over `devnet`, its blocks made as `blocks` says.
    pub fn new(devnet: Devnet, blocks: Blocks) -> DevnetChain {
        DevnetChain { devnet, blocks }
    }

    /// The devnet.
    pub fn devnet(&self) -> &Devnet {
        &self.devnet
    }
}

fn chain_error(what: &str, e: DevnetError) -> ChainError {
    match e {
        DevnetError::NotFound(m) => ChainError::NotFound {
            what: format!("{what}: {m}"),
        },
        DevnetError::Ledger(_) | DevnetError::BadRequest(_) => ChainError::rejected(e.to_string()),
        other => ChainError::BadResponse {
            endpoint: what.to_string(),
            detail: other.to_string(),
        },
    }
}

fn not_found(what: String) -> ChainError {
    ChainError::NotFound { what }
}

fn utxo(r: &OutRef, cbor: &[u8]) -> Result<Utxo, ChainError> {
    Ok(Utxo {
        reference: OutputReference {
            transaction_id: *r.tx_hash,
            output_index: u64::from(r.index),
        },
        output: TxOutput::from_cbor(cbor).map_err(|e| ChainError::BadResponse {
            endpoint: "devnet output".into(),
            detail: e.to_string(),
        })?,
    })
}

impl DevnetChain {
    fn record(&self, tx: &TxId) -> Result<ntx_devnet::TxRecord, ChainError> {
        self.devnet
            .transaction(tx)
            .map_err(|e| chain_error("transaction", e))?
            .ok_or_else(|| not_found(format!("transaction {}", hex::encode(tx))))
    }

    fn block_time(&self, height: u64) -> Result<(u64, [u8; 32]), ChainError> {
        let b = self
            .devnet
            .block(height)
            .map_err(|e| chain_error("block", e))?
            .ok_or_else(|| not_found(format!("block {height}")))?;
        Ok((b.time, *b.hash))
    }

    /// (height, block hash, slot) of a confirmed transaction.
    fn place(&self, tx: &TxId) -> Result<Option<(u64, [u8; 32], u64)>, ChainError> {
        match self.devnet.transaction(tx) {
            Ok(Some(r)) => Ok(Some((r.height, self.block_time(r.height)?.1, r.slot))),
            Ok(None) => Ok(None),
            Err(e) => Err(chain_error("transaction", e)),
        }
    }
}

#[async_trait::async_trait]
impl ChainProvider for DevnetChain {
    async fn protocol_params(&self) -> Result<ProtocolParams, ChainError> {
        let epoch = self.devnet.current_slot() / ntx_devnet::genesis::EPOCH_LENGTH;
        let json = self.devnet.protocol_params().to_blockfrost_json(epoch);
        ProtocolParams::from_blockfrost_json(&json).map_err(|detail| ChainError::BadResponse {
            endpoint: "devnet parameters".into(),
            detail,
        })
    }

    async fn tip(&self) -> Result<Tip, ChainError> {
        let t = self.devnet.tip();
        Ok(Tip {
            slot: t.slot,
            height: t.height,
            hash: *t.hash,
        })
    }

    async fn slot_config(&self) -> Result<SlotConfig, ChainError> {
        let sc = self.devnet.slot_config();
        Ok(SlotConfig {
            zero_time_ms: sc.zero_time,
            zero_slot: sc.zero_slot,
            slot_length_ms: sc.slot_length,
        })
    }

    async fn utxos_at(&self, address: &Address) -> Result<Vec<Utxo>, ChainError> {
        self.devnet
            .utxos_at(&address.to_vec())
            .map_err(|e| chain_error("utxos", e))?
            .iter()
            .map(|(r, cbor)| utxo(r, cbor))
            .collect()
    }

    async fn utxos_at_stake(&self, stake: &StakeAddress) -> Result<Vec<Utxo>, ChainError> {
        let credential = match stake.payload() {
            StakePayload::Stake(h) => ntx_devnet::Credential::Key(*h),
            StakePayload::Script(h) => ntx_devnet::Credential::Script(*h),
        };
        let mut out = Vec::new();
        for page in 0.. {
            let rows = self
                .devnet
                .utxos_at_stake(&credential, stake.network().value(), 1000, page * 1000)
                .map_err(|e| chain_error("utxos", e))?;
            let n = rows.len();
            for r in rows {
                out.push(utxo(&r.out_ref, &r.cbor)?);
            }
            if n < 1000 {
                break;
            }
        }
        Ok(out)
    }

    async fn policy_holdings(&self, policy: &[u8; 28]) -> Result<Vec<AssetHolding>, ChainError> {
        Ok(self
            .devnet
            .policy_holdings(&pallas_crypto::hash::Hash::new(*policy))
            .into_iter()
            .map(|(name, address, quantity)| AssetHolding {
                name,
                address,
                quantity,
            })
            .collect())
    }

    async fn reward_account(
        &self,
        stake: &StakeAddress,
    ) -> Result<Option<RewardAccount>, ChainError> {
        let credential = match stake.payload() {
            StakePayload::Stake(h) => ntx_devnet::Credential::Key(*h),
            StakePayload::Script(h) => ntx_devnet::Credential::Script(*h),
        };
        Ok(self.devnet.account(&credential).map(|a| RewardAccount {
            withdrawable: a.balance,
        }))
    }

    async fn utxos_at_with_asset(
        &self,
        address: &Address,
        policy: &[u8; 28],
        name: &[u8],
    ) -> Result<Vec<Utxo>, ChainError> {
        let mut all = self.utxos_at(address).await?;
        all.retain(|u| u.output.value.quantity_of(policy, name) > 0);
        Ok(all)
    }

    async fn utxo_by_ref(&self, reference: &OutputReference) -> Result<Option<Utxo>, ChainError> {
        let index = u32::try_from(reference.output_index)
            .map_err(|_| not_found(format!("output index {}", reference.output_index)))?;
        let r = OutRef::new(Hash::new(reference.transaction_id), index);
        let rec = self
            .devnet
            .output(&r)
            .map_err(|e| chain_error("output", e))?
            .ok_or_else(|| {
                not_found(format!(
                    "output {}#{}",
                    hex::encode(reference.transaction_id),
                    reference.output_index
                ))
            })?;
        if rec.spent_by.is_some() {
            return Ok(None);
        }
        utxo(&r, &rec.cbor).map(Some)
    }

    async fn submit(&self, tx_cbor: &[u8]) -> Result<TxId, ChainError> {
        let id = self
            .devnet
            .submit(tx_cbor)
            .map_err(|e| chain_error("submit", e))?;
        if self.blocks == Blocks::AfterSubmit {
            self.devnet
                .produce_block()
                .map_err(|e| chain_error("block", e))?;
        }
        Ok(*id)
    }

    async fn await_tx(
        &self,
        tx: &TxId,
        options: &AwaitOptions,
    ) -> Result<Confirmation, ChainError> {
        let mut schedule = AwaitSchedule::new(options);
        loop {
            schedule.check_cancelled()?;
            if let Some(place) = self.place(tx)? {
                if let Some(confirmation) = schedule.confirmed(tx, place, self.devnet.tip().height)
                {
                    return Ok(confirmation);
                }
                if self.blocks == Blocks::AfterSubmit {
                    self.devnet
                        .produce_block()
                        .map_err(|e| chain_error("block", e))?;
                    continue;
                }
            }
            schedule.pause(tx).await?;
        }
    }

    async fn tx_metadata(&self, tx: &TxId) -> Result<Vec<TxMetadata>, ChainError> {
        let record = self.record(tx)?;
        let mtx =
            pallas_traverse::MultiEraTx::decode_for_era(pallas_traverse::Era::Conway, &record.cbor)
                .map_err(|e| ChainError::BadResponse {
                    endpoint: "devnet transaction".into(),
                    detail: e.to_string(),
                })?;
        Ok(mtx
            .metadata()
            .collect::<Vec<_>>()
            .iter()
            .map(|(label, m)| TxMetadata {
                label: *label,
                json: ntx_devnet::metadatum_json(m),
            })
            .collect())
    }

    async fn tx_redeemers(&self, tx: &TxId) -> Result<Vec<TxRedeemer>, ChainError> {
        let record = self.record(tx)?;
        let bad = |detail: String| ChainError::BadResponse {
            endpoint: "devnet redeemers".into(),
            detail,
        };
        let reports: Vec<ntx_devnet::RedeemerReport> =
            serde_json::from_value(record.redeemers).map_err(|e| bad(e.to_string()))?;
        reports
            .into_iter()
            .map(|r| {
                let hash = |text: &str, n: usize| {
                    hex::decode(text)
                        .ok()
                        .filter(|b| b.len() == n)
                        .ok_or_else(|| bad(format!("{text:?} is not {n} bytes of hex")))
                };
                let mut script_hash = [0u8; 28];
                script_hash.copy_from_slice(&hash(&r.script_hash, 28)?);
                let mut redeemer_data_hash = [0u8; 32];
                redeemer_data_hash.copy_from_slice(&hash(&r.redeemer_data_hash, 32)?);
                Ok(TxRedeemer {
                    purpose: match r.purpose.as_str() {
                        "spend" => RedeemerPurpose::Spend,
                        "mint" => RedeemerPurpose::Mint,
                        "cert" => RedeemerPurpose::Cert,
                        "reward" => RedeemerPurpose::Reward,
                        "vote" => RedeemerPurpose::Vote,
                        "propose" => RedeemerPurpose::Propose,
                        other => RedeemerPurpose::Other(other.to_string()),
                    },
                    index: r.index,
                    script_hash,
                    redeemer_data_hash,
                    ex_units: ExUnits {
                        mem: r.unit_mem,
                        steps: r.unit_steps,
                    },
                    fee: r.fee,
                })
            })
            .collect()
    }

    async fn metadata_by_label(&self, label: u64) -> Result<Vec<LabelledMetadata>, ChainError> {
        Ok(self
            .devnet
            .metadata_by_label(label)
            .map_err(|e| chain_error("metadata", e))?
            .into_iter()
            .map(|(h, json)| LabelledMetadata {
                tx_id: *h,
                json: serde_json::from_str(&json).unwrap_or(Json::Null),
            })
            .collect())
    }

    async fn address_transactions(
        &self,
        address: &Address,
        range: BlockRange,
    ) -> Result<Vec<AddressTx>, ChainError> {
        let rows = self
            .devnet
            .address_transactions(&address.to_vec())
            .map_err(|e| chain_error("address transactions", e))?;
        let mut out = Vec::new();
        for (h, height, index) in rows {
            if !range.contains(height) {
                continue;
            }
            out.push(AddressTx {
                tx_id: *h,
                block_height: height,
                tx_index: index,
                block_time: self.block_time(height)?.0,
            });
        }
        Ok(out)
    }

    async fn tx_cbor(&self, tx: &TxId) -> Result<Vec<u8>, ChainError> {
        Ok(self.record(tx)?.cbor)
    }

    async fn tx_info(&self, tx: &TxId) -> Result<TxInfo, ChainError> {
        let r = self.record(tx)?;
        let (block_time, block_hash) = self.block_time(r.height)?;
        Ok(TxInfo {
            tx_id: *tx,
            block_hash,
            block_height: r.height,
            slot: r.slot,
            block_time,
            index: r.index,
            valid_contract: r.is_valid,
        })
    }
}
