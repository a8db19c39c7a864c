//! The chain: ledger state in memory (UTxO set, reward accounts), the clock,
//! block production, rollback, and the faucet; what waits for a block is
//! [`crate::mempool`]. State on disk lives in [`crate::store`]; every block is
//! committed atomically.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pallas_crypto::hash::{Hash, Hasher};
use pallas_primitives::conway::NativeScript;
use pallas_traverse::{Era, MultiEraTx};
use pallas_validate::utils::MultiEraProtocolParameters;
use tokio_util::sync::CancellationToken;

use crate::error::{DevnetError, LedgerError};
use crate::genesis::{self, GenesisConfig, KeyPair, NTX_ASSET_NAME};
use crate::ledger::{Account, Credential, LedgerView, Lookup, OutRef, ValidatedTx};
use crate::mempool::Mempool;
use crate::params::{Params, ProtocolParams};
use crate::phase1::{self, Env};
use crate::phase2::SlotConfig;
use crate::store::{BlockInfo, OutputRecord, Store, TxExtras, TxRecord};
use crate::txbuilder::{Output, TxBuilder};
use crate::value::{OutputView, Value, script_hash};

/// How the devnet's time moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Slots follow the wall clock (plus any time travel); [`Devnet::run_clock`]
    /// produces a block in each slot that has pending transactions.
    Wall,
    /// Time stands still until advanced; blocks are produced on demand (tests).
    Manual,
}

/// How to open a devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Data directory (the database and key files). `None`: in memory, no keys on disk.
    pub data_dir: Option<PathBuf>,
    /// Genesis for a new chain (ignored when resuming).
    pub genesis: GenesisConfig,
    /// Slot length in milliseconds for a new chain (ignored when resuming).
    pub slot_length_ms: u64,
    /// Clock mode.
    pub clock: ClockMode,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            genesis: GenesisConfig::default(),
            slot_length_ms: 1000,
            clock: ClockMode::Manual,
        }
    }
}

/// What [`Devnet::rollback`] did.
#[derive(Debug, Clone)]
pub struct Rollback {
    /// Blocks rolled back.
    pub blocks: u64,
    /// The tip right after, before any new block.
    pub tip: BlockInfo,
}

/// What to do with the transactions of rolled-back blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackMode {
    /// Re-validate them and put the valid ones back in the mempool.
    ReturnToMempool,
    /// Forget them.
    Drop,
}

/// A summary of the devnet's state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// Tip block.
    pub tip: BlockInfo,
    /// Current slot.
    pub slot: u64,
    /// Transactions waiting.
    pub mempool: usize,
    /// Network magic.
    pub network_magic: u32,
    /// POSIX ms of slot 0.
    pub system_start_ms: u64,
    /// Slot length.
    pub slot_length_ms: u64,
    /// Faucet address (bech32).
    pub faucet_address: String,
    /// NTX asset unit (policy id ‖ asset name, hex).
    pub ntx_unit: String,
    /// Transactions fully validated (phase 1 and scripts) since the devnet
    /// opened: each submission once; a transaction left over after a block is
    /// only re-checked for what the block changed, never validated again.
    pub full_validations: u64,
}

pub(crate) struct Core {
    pub store: Store,
    pub protocol_params: ProtocolParams,
    pub params: Params,
    pallas_params: MultiEraProtocolParameters,
    pub system_start_ms: u64,
    pub slot_length_ms: u64,
    clock: ClockMode,
    manual_slot: u64,
    offset_slots: i64,
    utxo: HashMap<OutRef, Vec<u8>>,
    accounts: HashMap<Credential, Account>,
    pub tip: BlockInfo,
    mempool: Mempool,
    faucet: KeyPair,
    policy_key: KeyPair,
    pub ntx_policy: Hash<28>,
    pub keys: Vec<KeyPair>,
    pub data_dir: Option<PathBuf>,
    /// With a running clock, an empty block at least every this many slots
    /// (0: blocks only when transactions wait).
    pub empty_block_every: u64,
    /// See [`Status::full_validations`].
    full_validations: u64,
}

struct View<'a> {
    core: &'a Core,
}

impl LedgerView for View<'_> {
    fn utxo(&self, r: &OutRef) -> Lookup<'_> {
        if let Some(by) = self.core.mempool.spent.get(r) {
            return Lookup::SpentByPending(*by);
        }
        if let Some(b) = self.core.mempool.produced.get(r) {
            return Lookup::Unspent(b);
        }
        match self.core.utxo.get(r) {
            Some(b) => Lookup::Unspent(b),
            None => Lookup::Unknown,
        }
    }

    fn account(&self, c: &Credential) -> Option<Account> {
        match self.core.mempool.accounts.get(c) {
            Some(a) => *a,
            None => self.core.accounts.get(c).copied(),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn block_hash(prev: &Hash<32>, slot: u64, txs: &[Hash<32>]) -> Hash<32> {
    let mut buf = Vec::with_capacity(40 + 32 * txs.len());
    buf.extend_from_slice(prev.as_ref());
    buf.extend_from_slice(&slot.to_be_bytes());
    for t in txs {
        buf.extend_from_slice(t.as_ref());
    }
    Hasher::<256>::hash(&buf)
}

/// Rows derived from a transaction for the indexes (addresses, scripts, datums, metadata).
fn extras(tx: &ValidatedTx, spent: &[Vec<u8>]) -> TxExtras {
    let mut e = TxExtras::default();
    let mut addrs: HashSet<Vec<u8>> = HashSet::new();
    for cbor in spent {
        if let Ok(v) = OutputView::decode(cbor) {
            addrs.insert(v.address);
        }
    }
    for (_, cbor) in &tx.produced {
        if let Ok(v) = OutputView::decode(cbor) {
            if let Some((tag, b)) = &v.script_ref {
                e.scripts.push((script_hash(*tag, b), *tag, b.clone()));
            }
            if let Some(d) = &v.inline_datum {
                e.datums.push((Hasher::<256>::hash(d), d.clone()));
            }
            addrs.insert(v.address);
        }
    }
    e.addresses = addrs.into_iter().collect();
    if let Ok(mtx) = MultiEraTx::decode_for_era(Era::Conway, &tx.cbor)
        && let Some(ctx) = mtx.as_conway()
    {
        let w = &ctx.transaction_witness_set;
        if let Some(ns) = &w.native_script {
            for s in ns.iter() {
                e.scripts
                    .push((script_hash(0, s.raw_cbor()), 0, s.raw_cbor().to_vec()));
            }
        }
        for (tag, list) in [
            (
                1u8,
                w.plutus_v1_script
                    .as_ref()
                    .map(|l| l.iter().map(|s| s.as_ref().to_vec()).collect::<Vec<_>>()),
            ),
            (
                2,
                w.plutus_v2_script
                    .as_ref()
                    .map(|l| l.iter().map(|s| s.as_ref().to_vec()).collect()),
            ),
            (
                3,
                w.plutus_v3_script
                    .as_ref()
                    .map(|l| l.iter().map(|s| s.as_ref().to_vec()).collect()),
            ),
        ] {
            for s in list.unwrap_or_default() {
                e.scripts.push((script_hash(tag, &s), tag, s));
            }
        }
        if let Some(ds) = &w.plutus_data {
            for d in ds.iter() {
                e.datums
                    .push((Hasher::<256>::hash(d.raw_cbor()), d.raw_cbor().to_vec()));
            }
        }
        if let pallas_codec::utils::Nullable::Some(aux) = &ctx.auxiliary_data {
            let md = match &**aux {
                pallas_primitives::alonzo::AuxiliaryData::Shelley(m) => Some(m.clone()),
                pallas_primitives::alonzo::AuxiliaryData::ShelleyMa(m) => {
                    Some(m.transaction_metadata.clone())
                }
                pallas_primitives::alonzo::AuxiliaryData::PostAlonzo(m) => m.metadata.clone(),
            };
            for (label, value) in md.into_iter().flatten() {
                e.metadata
                    .push((label, crate::http::metadatum_json(&value).to_string()));
            }
        }
    }
    e
}

impl Core {
    fn env(&self, slot: u64) -> Env<'_> {
        Env {
            params: &self.params,
            pallas_params: &self.pallas_params,
            slot,
            slot_config: self.slot_config(),
            network_magic: genesis::NETWORK_MAGIC,
        }
    }

    pub fn slot_config(&self) -> SlotConfig {
        SlotConfig {
            zero_time: self.system_start_ms,
            zero_slot: 0,
            slot_length: self.slot_length_ms as u32,
        }
    }

    pub fn current_slot(&self) -> u64 {
        match self.clock {
            ClockMode::Manual => self.manual_slot,
            ClockMode::Wall => {
                let elapsed =
                    now_ms().saturating_sub(self.system_start_ms) / self.slot_length_ms.max(1);
                (elapsed as i64 + self.offset_slots).max(0) as u64
            }
        }
        .max(self.tip.slot)
    }

    fn persist_clock(&self) -> Result<(), DevnetError> {
        self.store
            .set_meta("manual_slot", &self.manual_slot.to_string())?;
        self.store
            .set_meta("offset_slots", &self.offset_slots.to_string())?;
        Ok(())
    }

    fn submit(&mut self, cbor: &[u8]) -> Result<Hash<32>, DevnetError> {
        let slot = self.current_slot();
        self.full_validations += 1;
        let validated = {
            let env = self.env(slot);
            let view = View { core: self };
            phase1::validate_tx(cbor, &env, &view)?
        };
        if self.mempool.ids.contains(&validated.hash) {
            return Ok(validated.hash);
        }
        // Like a node's: room for two blocks' worth of transactions.
        let capacity = 2 * self.params.max_block_size;
        let used = self.mempool.bytes();
        if used + validated.size > capacity {
            return Err(DevnetError::MempoolFull {
                size: validated.size,
                used,
                capacity,
            });
        }
        let hash = validated.hash;
        tracing::debug!(tx = %hash, "accepted into the mempool");
        self.mempool.push(validated);
        Ok(hash)
    }

    /// Re-validates `txs` in order against the current state and slot; keeps the valid ones.
    fn refill_mempool(&mut self, txs: Vec<Vec<u8>>) {
        for cbor in txs {
            if let Err(e) = self.submit(&cbor) {
                tracing::info!("dropped a transaction from the mempool: {e}");
            }
        }
    }

    fn produce_block_at(
        &mut self,
        slot: u64,
        empty_ok: bool,
    ) -> Result<Option<BlockInfo>, DevnetError> {
        if self.mempool.txs.is_empty() && !empty_ok {
            return Ok(None);
        }
        let slot = slot.max(self.tip.slot + 1);
        let pending = self.mempool.take_all();
        let mut included: Vec<ValidatedTx> = Vec::new();
        let mut leftover: Vec<ValidatedTx> = Vec::new();
        let mut dropped = false;
        let (mut size, mut mem, mut steps) = (0u64, 0u64, 0u64);
        let mut block_spent: HashSet<OutRef> = HashSet::new();
        let mut block_produced: HashSet<OutRef> = HashSet::new();
        let mut full = false;
        for tx in pending {
            if full {
                leftover.push(tx);
                continue;
            }
            if size + tx.size > self.params.max_block_size
                || mem + tx.ex_mem > self.params.max_block_ex_mem
                || steps + tx.ex_steps > self.params.max_block_ex_steps
            {
                full = true;
                leftover.push(tx);
                continue;
            }
            let expired = tx.invalid_hereafter.is_some_and(|t| slot >= t);
            let inputs_ok = tx.consumed.iter().all(|r| {
                !block_spent.contains(r)
                    && (self.utxo.contains_key(r) || block_produced.contains(r))
            });
            if expired || !inputs_ok {
                tracing::info!(tx = %tx.hash, expired, "dropped from the mempool at block production");
                dropped = true;
                continue;
            }
            size += tx.size;
            mem += tx.ex_mem;
            steps += tx.ex_steps;
            for r in &tx.consumed {
                block_spent.insert(*r);
            }
            for (r, _) in &tx.produced {
                block_produced.insert(*r);
            }
            included.push(tx);
        }

        let ids: Vec<Hash<32>> = included.iter().map(|t| t.hash).collect();
        let time_ms = self.slot_config().slot_to_posix_ms(slot);
        let block = BlockInfo {
            height: self.tip.height + 1,
            slot,
            hash: block_hash(&self.tip.hash, slot, &ids),
            prev_hash: self.tip.hash,
            time: time_ms / 1000,
            tx_count: included.len() as u64,
            size,
            fees: included.iter().map(|t| t.fee).sum(),
            output: included
                .iter()
                .flat_map(|t| t.produced.iter())
                .filter_map(|(_, b)| OutputView::decode(b).ok())
                .map(|v| v.value.coin)
                .sum(),
        };
        // Undo record: first prior value of each touched credential.
        let mut undo: Vec<(Credential, Option<Account>)> = Vec::new();
        let mut seen: HashSet<Credential> = HashSet::new();
        for tx in &included {
            for (c, _) in &tx.account_updates {
                if seen.insert(*c) {
                    undo.push((*c, self.accounts.get(c).copied()));
                }
            }
        }
        // Apply in memory (on a copy of what changes) and build index rows.
        let mut rows = Vec::with_capacity(included.len());
        let mut produced_in_block: HashMap<OutRef, Vec<u8>> = HashMap::new();
        for tx in &included {
            let spent: Vec<Vec<u8>> = tx
                .consumed
                .iter()
                .filter_map(|r| {
                    self.utxo
                        .get(r)
                        .or_else(|| produced_in_block.get(r))
                        .cloned()
                })
                .collect();
            for (r, b) in &tx.produced {
                produced_in_block.insert(*r, b.clone());
            }
            rows.push((tx.clone(), extras(tx, &spent)));
        }
        self.store.commit_block(
            &block,
            &rows,
            &undo,
            &[
                ("manual_slot", self.manual_slot.max(slot).to_string()),
                ("offset_slots", self.offset_slots.to_string()),
            ],
        )?;
        for tx in &included {
            for r in &tx.consumed {
                self.utxo.remove(r);
            }
            for (r, b) in &tx.produced {
                self.utxo.insert(*r, b.clone());
            }
            for (c, a) in &tx.account_updates {
                match a {
                    Some(a) => {
                        self.accounts.insert(*c, *a);
                    }
                    None => {
                        self.accounts.remove(c);
                    }
                }
            }
        }
        self.tip = block.clone();
        if self.clock == ClockMode::Manual {
            self.manual_slot = self.manual_slot.max(slot);
        } else {
            let current = self.current_slot();
            if slot > current {
                self.offset_slots += (slot - current) as i64;
            }
        }
        tracing::info!(height = block.height, slot, txs = block.tx_count, "block");
        if dropped {
            // A transaction the leftovers were validated after is gone: what they
            // spend or the accounts they saw may be too, so validate them afresh.
            self.refill_mempool(leftover.into_iter().map(|t| t.cbor).collect());
        } else {
            let slot = self.current_slot();
            self.mempool.readmit_leftover(leftover, &self.utxo, slot);
        }
        Ok(Some(block))
    }

    fn rollback(&mut self, k: u64, mode: RollbackMode) -> Result<u64, DevnetError> {
        let mut returned: Vec<Vec<u8>> = Vec::new();
        let mut n = 0;
        for _ in 0..k {
            if self.tip.height == 0 {
                break;
            }
            let mut txs = self.store.rollback_tip()?;
            txs.append(&mut returned);
            returned = txs;
            self.tip = self.store.tip()?;
            n += 1;
        }
        self.utxo = self.store.load_utxo()?;
        self.accounts = self.store.load_accounts()?;
        let pending: Vec<Vec<u8>> = self
            .mempool
            .take_all()
            .into_iter()
            .map(|t| t.cbor)
            .collect();
        if mode == RollbackMode::ReturnToMempool {
            self.refill_mempool(returned);
        }
        self.refill_mempool(pending);
        tracing::info!(blocks = n, "rolled back");
        Ok(n)
    }

    fn fund(&mut self, address: &[u8], lovelace: u64, ntx: u64) -> Result<Hash<32>, DevnetError> {
        let faucet_addr = self.faucet.address().to_vec();
        // The faucet's largest output, chain or mempool.
        let mut best: Option<(OutRef, Value)> = None;
        let candidates: Vec<(OutRef, Vec<u8>)> = self
            .utxo
            .iter()
            .chain(self.mempool.produced.iter())
            .filter(|(r, _)| !self.mempool.spent.contains_key(r))
            .map(|(r, b)| (*r, b.clone()))
            .collect();
        for (r, b) in candidates {
            if let Ok(v) = OutputView::decode(&b)
                && v.address == faucet_addr
                && best.as_ref().is_none_or(|(_, bv)| v.value.coin > bv.coin)
            {
                best = Some((r, v.value));
            }
        }
        let (input, in_value) =
            best.ok_or_else(|| DevnetError::BadRequest("the faucet has no funds left".into()))?;
        let mut pay = Value::lovelace(lovelace).with_asset(self.ntx_policy, NTX_ASSET_NAME, ntx);
        let min = crate::fees::min_utxo(
            &self.params,
            Output::new(address, pay.clone()).to_cbor().len() as u64 + 8,
        );
        pay.coin = pay.coin.max(min);
        let change = in_value
            .checked_add(&Value::default().with_asset(self.ntx_policy, NTX_ASSET_NAME, ntx))
            .and_then(|v| v.checked_sub(&pay))
            .ok_or_else(|| DevnetError::BadRequest("the faucet cannot cover this amount".into()))?;
        let mut b = TxBuilder {
            inputs: vec![input],
            outputs: vec![Output::new(address, pay), Output::new(&faucet_addr, change)],
            ..TxBuilder::default()
        };
        let mut signers = vec![&self.faucet];
        if ntx > 0 {
            b.mint.insert(
                self.ntx_policy,
                [(NTX_ASSET_NAME.to_vec(), ntx as i64)]
                    .into_iter()
                    .collect(),
            );
            b.native_scripts
                .push(NativeScript::ScriptPubkey(self.policy_key.key_hash()));
            signers.push(&self.policy_key);
        }
        let params = self.params.clone();
        let faucet = self.faucet.clone();
        let policy = self.policy_key.clone();
        let signer_refs: Vec<&KeyPair> = if ntx > 0 {
            vec![&faucet, &policy]
        } else {
            vec![&faucet]
        };
        drop(signers);
        b.balance_fee(&params, &signer_refs, 1, 0);
        let cbor = b.build(&params, &signer_refs);
        self.submit(&cbor)
    }
}

/// A running devnet. Cheap to clone; every clone is the same chain.
#[derive(Clone)]
pub struct Devnet {
    core: Arc<Mutex<Core>>,
    blocks: Arc<tokio::sync::watch::Sender<u64>>,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Devnet")
    }
}

const DB_FILE: &str = "devnet.db";

impl Devnet {
    /// Opens the chain in `config.data_dir` (resuming it when it exists) or
    /// creates it from `config.genesis`.
    pub fn open(config: DevnetConfig) -> Result<Self, DevnetError> {
        if let Some(dir) = &config.data_dir {
            std::fs::create_dir_all(dir).map_err(|e| DevnetError::io(dir.display(), e))?;
        }
        let db_path = config.data_dir.as_ref().map(|d| d.join(DB_FILE));
        let mut store = Store::open(db_path.as_deref())?;
        let core = if store.meta("system_start_ms")?.is_some() {
            Self::resume(store, &config)?
        } else {
            Self::create(&mut store, &config)?;
            Self::resume(store, &config)?
        };
        let height = core.tip.height;
        let (tx, _) = tokio::sync::watch::channel(height);
        Ok(Self {
            core: Arc::new(Mutex::new(core)),
            blocks: Arc::new(tx),
        })
    }

    fn create(store: &mut Store, config: &DevnetConfig) -> Result<(), DevnetError> {
        let g = &config.genesis;
        let protocol_params = ProtocolParams::with_overrides(&g.protocol_params)?;
        let faucet = KeyPair::generate("faucet");
        let policy_key = KeyPair::generate("ntx-policy");
        let accounts: Vec<KeyPair> = g
            .accounts
            .iter()
            .map(|a| KeyPair::generate(&a.name))
            .collect();
        let mut names = HashSet::new();
        for a in &g.accounts {
            if !names.insert(a.name.clone()) || a.name == "faucet" || a.name == "ntx-policy" {
                return Err(DevnetError::Genesis(format!(
                    "account name {:?} is used twice or reserved",
                    a.name
                )));
            }
        }
        let policy = genesis::ntx_policy_id(&policy_key);
        let outputs = genesis::initial_utxos(g, &accounts, &faucet, policy)?;
        let system_start_ms = now_ms();
        let genesis_block = BlockInfo {
            height: 0,
            slot: 0,
            hash: Hasher::<256>::hash(&serde_json::to_vec(g).unwrap_or_default()),
            prev_hash: Hash::new([0; 32]),
            time: system_start_ms / 1000,
            tx_count: 0,
            size: 0,
            fees: 0,
            output: 0,
        };
        let mut keys = vec![faucet.clone(), policy_key.clone()];
        keys.extend(accounts.iter().cloned());
        let keys_json: Vec<(String, String)> = keys
            .iter()
            .map(|k| (k.name.clone(), hex::encode(k.secret)))
            .collect();
        if let Some(dir) = &config.data_dir {
            for k in &keys {
                k.write_files(dir)?;
            }
            std::fs::write(
                dir.join("genesis.json"),
                serde_json::to_string_pretty(g).unwrap_or_default(),
            )
            .map_err(|e| DevnetError::io(dir.join("genesis.json").display(), e))?;
        }
        store.init_genesis(
            &[
                ("system_start_ms", system_start_ms.to_string()),
                ("slot_length_ms", config.slot_length_ms.max(1).to_string()),
                (
                    "protocol_params",
                    serde_json::to_string(&protocol_params).unwrap_or_default(),
                ),
                (
                    "keys",
                    serde_json::to_string(&keys_json).unwrap_or_default(),
                ),
                ("manual_slot", "0".into()),
                ("offset_slots", "0".into()),
                ("network_magic", genesis::NETWORK_MAGIC.to_string()),
            ],
            &genesis_block,
            &outputs,
        )?;
        Ok(())
    }

    fn resume(store: Store, config: &DevnetConfig) -> Result<Core, DevnetError> {
        let get = |k: &str| -> Result<String, DevnetError> {
            store
                .meta(k)?
                .ok_or_else(|| DevnetError::Corrupt(format!("missing meta {k}")))
        };
        let num = |k: &str| -> Result<i64, DevnetError> {
            get(k)?
                .parse::<i64>()
                .map_err(|e| DevnetError::Corrupt(format!("meta {k}: {e}")))
        };
        let system_start_ms = num("system_start_ms")? as u64;
        let slot_length_ms = num("slot_length_ms")? as u64;
        let protocol_params: ProtocolParams = serde_json::from_str(&get("protocol_params")?)
            .map_err(|e| DevnetError::Corrupt(format!("protocol_params: {e}")))?;
        let params = protocol_params.parsed()?;
        let keys_json: Vec<(String, String)> = serde_json::from_str(&get("keys")?)
            .map_err(|e| DevnetError::Corrupt(format!("keys: {e}")))?;
        let mut keys = Vec::new();
        for (name, secret) in keys_json {
            let bytes = hex::decode(&secret)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| DevnetError::Corrupt(format!("key {name}")))?;
            keys.push(KeyPair {
                name,
                secret: bytes,
            });
        }
        let find = |n: &str| {
            keys.iter()
                .find(|k| k.name == n)
                .cloned()
                .ok_or_else(|| DevnetError::Corrupt(format!("missing key {n}")))
        };
        let faucet = find("faucet")?;
        let policy_key = find("ntx-policy")?;
        let ntx_policy = genesis::ntx_policy_id(&policy_key);
        let pallas_params = params.to_pallas(system_start_ms, slot_length_ms);
        let tip = store.tip()?;
        let utxo = store.load_utxo()?;
        let accounts = store.load_accounts()?;
        let manual_slot = num("manual_slot")? as u64;
        let offset_slots = num("offset_slots")?;
        Ok(Core {
            store,
            protocol_params,
            params,
            pallas_params,
            system_start_ms,
            slot_length_ms,
            clock: config.clock,
            manual_slot,
            offset_slots,
            utxo,
            accounts,
            tip,
            mempool: Mempool::default(),
            faucet,
            policy_key,
            ntx_policy,
            keys,
            data_dir: config.data_dir.clone(),
            empty_block_every: 0,
            full_validations: 0,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock leaves consistent in-memory state
        // (every mutation is applied after its database commit), so recover.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self) {
        let h = self.lock().tip.height;
        self.blocks.send_replace(h);
    }

    /// Validates a transaction (phase 1 and phase 2) and adds it to the mempool.
    pub fn submit(&self, cbor: &[u8]) -> Result<Hash<32>, DevnetError> {
        self.lock().submit(cbor)
    }

    /// Validates a transaction without keeping it.
    pub fn validate(&self, cbor: &[u8]) -> Result<ValidatedTx, LedgerError> {
        let core = self.lock();
        let env = core.env(core.current_slot());
        let view = View { core: &core };
        phase1::validate_tx(cbor, &env, &view)
    }

    /// Measures each redeemer's execution units (no ledger rules), resolving
    /// inputs from the chain, the mempool and `extra` (input CBOR, output CBOR).
    pub fn evaluate(
        &self,
        cbor: &[u8],
        extra: &[(OutRef, Vec<u8>)],
    ) -> Result<Vec<(String, u32, u64, u64)>, String> {
        let core = self.lock();
        let mtx = MultiEraTx::decode_for_era(Era::Conway, cbor).map_err(|e| e.to_string())?;
        let tx = mtx.as_conway().ok_or("not a Conway transaction")?;
        let b = &tx.transaction_body;
        let refs: Vec<OutRef> = b
            .inputs
            .iter()
            .chain(b.reference_inputs.iter().flat_map(|r| r.iter()))
            .chain(b.collateral.iter().flat_map(|r| r.iter()))
            .map(OutRef::from)
            .collect();
        let view = View { core: &core };
        let mut utxos = Vec::new();
        for r in refs {
            // What the chain (or the mempool) holds wins: a client's copy of an
            // output only stands in for one the devnet does not know.
            let out = match view.utxo(&r) {
                Lookup::Unspent(b) => Some(b.to_vec()),
                _ => extra.iter().find(|(x, _)| *x == r).map(|(_, b)| b.clone()),
            }
            .ok_or_else(|| format!("input {r} is not in the UTxO set"))?;
            utxos.push((r.to_cbor(), out));
        }
        let res = crate::phase2::measure(cbor, &utxos, &core.params, core.slot_config())?;
        Ok(res
            .into_iter()
            .map(|(t, i, m, s)| (crate::phase2::tag_name(t).to_string(), i, m, s))
            .collect())
    }

    /// An unspent output (chain only, not mempool).
    pub fn utxo(&self, r: &OutRef) -> Option<Vec<u8>> {
        self.lock().utxo.get(r).cloned()
    }

    /// Unspent outputs at an address (chain only), oldest first.
    pub fn utxos_at(&self, address: &[u8]) -> Result<Vec<(OutRef, Vec<u8>)>, DevnetError> {
        let core = self.lock();
        let mut out = Vec::new();
        let mut page = 0;
        loop {
            let rows = core.store.utxos_at(address, 1000, page * 1000)?;
            let n = rows.len();
            out.extend(rows.into_iter().map(|r| (r.out_ref, r.cbor)));
            if n < 1000 {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    /// Lovelace in unspent outputs (chain only): the devnet's circulating supply.
    pub fn circulating_lovelace(&self) -> u64 {
        self.lock()
            .utxo
            .values()
            .filter_map(|cbor| OutputView::decode(cbor).ok())
            .map(|v| v.value.coin)
            .sum()
    }

    /// Unspent outputs (chain only) whose address bytes satisfy `at`, oldest
    /// first (a scan of the UTxO set: for queries by payment credential).
    pub fn utxos_where(
        &self,
        at: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<OutputRecord>, DevnetError> {
        let core = self.lock();
        let mut found = Vec::new();
        for (r, cbor) in &core.utxo {
            let matches = OutputView::decode(cbor).is_ok_and(|v| at(&v.address));
            if matches && let Some(rec) = core.store.output(r)? {
                found.push(rec);
            }
        }
        found.sort_by_key(|r| (r.created_height, r.out_ref.tx_hash, r.out_ref.index));
        Ok(found)
    }

    /// Every asset under `policy` that unspent outputs (chain only) hold, with
    /// who holds how much: `(asset name, address bytes, quantity)`, sorted.
    /// Blockfrost's `/assets/policy/{policy}` and `/assets/{unit}/addresses`.
    pub fn policy_holdings(&self, policy: &Hash<28>) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
        let core = self.lock();
        let mut held: std::collections::BTreeMap<(Vec<u8>, Vec<u8>), u64> =
            std::collections::BTreeMap::new();
        for cbor in core.utxo.values() {
            let Ok(view) = OutputView::decode(cbor) else {
                continue;
            };
            if let Some(assets) = view.value.assets.get(policy) {
                for (name, q) in assets {
                    *held
                        .entry((name.clone(), view.address.clone()))
                        .or_default() += q;
                }
            }
        }
        held.into_iter().map(|((n, a), q)| (n, a, q)).collect()
    }

    /// Unspent outputs (chain only) at base addresses of network `network_id`
    /// whose stake part is `stake`, oldest first, one page: Blockfrost's
    /// `/accounts/{stake_address}/utxos`.
    pub fn utxos_at_stake(
        &self,
        stake: &Credential,
        network_id: u8,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<OutputRecord>, DevnetError> {
        // Base address headers: type 0/1 (stake key), 2/3 (stake script), then the network.
        let kinds: [u8; 2] = match stake {
            Credential::Key(_) => [0x00, 0x10],
            Credential::Script(_) => [0x20, 0x30],
        };
        let headers = kinds.map(|k| k | (network_id & 0x0f));
        self.lock()
            .store
            .utxos_with_stake(stake.hash(), headers, limit, offset)
    }

    /// A confirmed transaction by id (its CBOR, block position, fee,
    /// redeemer reports), or `None` if it is in no block.
    pub fn transaction(&self, id: &[u8; 32]) -> Result<Option<TxRecord>, DevnetError> {
        self.lock().store.tx(id)
    }

    /// An output ever created on the chain, spent or not (`None` if no such output).
    pub fn output(&self, r: &OutRef) -> Result<Option<OutputRecord>, DevnetError> {
        self.lock().store.output(r)
    }

    /// Every confirmed transaction that spent from or paid to `address`,
    /// oldest first: (id, block height, index in the block).
    pub fn address_transactions(
        &self,
        address: &[u8],
    ) -> Result<Vec<(Hash<32>, u64, u64)>, DevnetError> {
        self.lock().store.address_txs(address, u64::MAX >> 2, 0)
    }

    /// Every transaction's metadata under `label`, oldest first: (id, JSON text
    /// in Blockfrost's `json_metadata` shape).
    pub fn metadata_by_label(&self, label: u64) -> Result<Vec<(Hash<32>, String)>, DevnetError> {
        self.lock().store.metadata_by_label(label, u64::MAX >> 2, 0)
    }

    /// A block by height.
    pub fn block(&self, height: u64) -> Result<Option<BlockInfo>, DevnetError> {
        self.lock().store.block(height)
    }

    /// A reward account, if registered (chain only).
    pub fn account(&self, c: &Credential) -> Option<Account> {
        self.lock().accounts.get(c).copied()
    }

    /// Pays `lovelace` into the registered reward account `c`, as the ledger
    /// does at an epoch boundary (rewards, or a governance proposal's deposit
    /// returned to it). Persisted at once; not undone by a rollback, since no
    /// transaction paid it. Refused when `c` is not registered.
    pub fn add_rewards(&self, c: &Credential, lovelace: u64) -> Result<Account, DevnetError> {
        let mut core = self.lock();
        let mut account = core.accounts.get(c).copied().ok_or_else(|| {
            DevnetError::BadRequest(format!(
                "{} is not a registered reward account: register it first",
                c.to_key()
            ))
        })?;
        account.balance = account
            .balance
            .checked_add(lovelace)
            .ok_or_else(|| DevnetError::BadRequest("the balance would overflow".into()))?;
        core.store.put_account(c, &account)?;
        core.accounts.insert(*c, account);
        Ok(account)
    }

    /// The protocol parameters (Blockfrost shape).
    pub fn protocol_params(&self) -> ProtocolParams {
        self.lock().protocol_params.clone()
    }

    /// The protocol parameters the rules use.
    pub fn params(&self) -> Params {
        self.lock().params.clone()
    }

    /// The tip block.
    pub fn tip(&self) -> BlockInfo {
        self.lock().tip.clone()
    }

    /// The current slot.
    pub fn current_slot(&self) -> u64 {
        self.lock().current_slot()
    }

    /// Slot ↔ POSIX time.
    pub fn slot_config(&self) -> SlotConfig {
        self.lock().slot_config()
    }

    /// The network magic ([`genesis::NETWORK_MAGIC`]).
    pub fn network_magic(&self) -> u32 {
        genesis::NETWORK_MAGIC
    }

    /// The devnet NTX policy id.
    pub fn ntx_policy(&self) -> Hash<28> {
        self.lock().ntx_policy
    }

    /// The genesis keys: faucet, ntx-policy, then the genesis accounts.
    pub fn keys(&self) -> Vec<KeyPair> {
        self.lock().keys.clone()
    }

    /// A genesis account's key by name.
    pub fn key(&self, name: &str) -> Option<KeyPair> {
        self.lock().keys.iter().find(|k| k.name == name).cloned()
    }

    /// Transactions waiting for a block.
    pub fn mempool_len(&self) -> usize {
        self.lock().mempool.txs.len()
    }

    /// A status summary.
    pub fn status(&self) -> Status {
        let core = self.lock();
        Status {
            tip: core.tip.clone(),
            slot: core.current_slot(),
            mempool: core.mempool.txs.len(),
            network_magic: genesis::NETWORK_MAGIC,
            system_start_ms: core.system_start_ms,
            slot_length_ms: core.slot_length_ms,
            faucet_address: core.faucet.address().to_bech32().unwrap_or_default(),
            ntx_unit: format!("{}{}", core.ntx_policy, hex::encode(NTX_ASSET_NAME)),
            full_validations: core.full_validations,
        }
    }

    /// Sends `lovelace` (at least the output's min-UTxO) and `ntx` devnet NTX
    /// (freshly minted under the NTX policy) to `address` (bech32), in a
    /// transaction signed by the faucet that goes through the normal
    /// validation. Returns its id; it is confirmed with the next block.
    pub fn fund(&self, address: &str, lovelace: u64, ntx: u64) -> Result<Hash<32>, DevnetError> {
        let addr = pallas_addresses::Address::from_bech32(address)
            .map_err(|e| DevnetError::BadRequest(format!("address {address:?}: {e}")))?;
        self.lock().fund(&addr.to_vec(), lovelace, ntx)
    }

    /// Like [`Devnet::fund`], then produces a block; returns the funded output.
    pub fn fund_now(&self, address: &str, lovelace: u64, ntx: u64) -> Result<OutRef, DevnetError> {
        let h = self.fund(address, lovelace, ntx)?;
        self.produce_block()?;
        Ok(OutRef::new(h, 0))
    }

    /// Moves the clock forward by `n` slots.
    pub fn advance_slots(&self, n: u64) -> Result<u64, DevnetError> {
        let mut core = self.lock();
        match core.clock {
            ClockMode::Manual => core.manual_slot = core.current_slot() + n,
            ClockMode::Wall => core.offset_slots += n as i64,
        }
        core.persist_clock()?;
        Ok(core.current_slot())
    }

    /// Moves the clock forward to `slot` (never backwards).
    pub fn advance_to_slot(&self, slot: u64) -> Result<u64, DevnetError> {
        let current = self.current_slot();
        if slot < current {
            return Err(DevnetError::BadRequest(format!(
                "slot {slot} is in the past (current slot {current}); time only moves forward"
            )));
        }
        self.advance_slots(slot - current)
    }

    /// Produces a block now, at the current slot (or the next one after the
    /// tip), with as many mempool transactions as fit. Produces an empty block
    /// when the mempool is empty.
    pub fn produce_block(&self) -> Result<BlockInfo, DevnetError> {
        let block = {
            let mut core = self.lock();
            let slot = core.current_slot();
            core.produce_block_at(slot, true)?
        };
        self.notify();
        block.ok_or_else(|| DevnetError::Corrupt("no block produced".into()))
    }

    /// Produces a block only when transactions are waiting and the current
    /// slot is past the tip (the clock's tick).
    pub fn tick(&self) -> Result<Option<BlockInfo>, DevnetError> {
        let block = {
            let mut core = self.lock();
            let slot = core.current_slot();
            let every = core.empty_block_every;
            let due = every > 0 && slot >= core.tip.slot + every;
            if (core.mempool.txs.is_empty() && !due) || slot <= core.tip.slot {
                return Ok(None);
            }
            core.produce_block_at(slot, due)?
        };
        if block.is_some() {
            self.notify();
        }
        Ok(block)
    }

    /// With a running clock ([`Devnet::run_clock`]), makes a block at least every
    /// `slots` slots even when nothing waits, as a real chain does, so that
    /// confirmations grow on an idle chain; 0 (the default) makes blocks only
    /// for pending transactions.
    pub fn set_empty_block_every(&self, slots: u64) {
        self.lock().empty_block_every = slots;
    }

    /// Rolls back the last `k` blocks (never genesis): how many, and the tip after.
    pub fn rollback(&self, k: u64, mode: RollbackMode) -> Result<Rollback, DevnetError> {
        let rollback = {
            let mut core = self.lock();
            let blocks = core.rollback(k, mode)?;
            // Read under the same lock: with a running clock the next block
            // (of the returned transactions) may follow at once.
            Rollback {
                blocks,
                tip: core.tip.clone(),
            }
        };
        self.notify();
        Ok(rollback)
    }

    /// Writes a consistent copy of the chain database to
    /// `<data dir>/snapshots/<name>.db` and returns that path; copy it to
    /// `<data dir>/devnet.db` (with the key files) to resume from it. `name` is
    /// a plain file name (letters, digits, `.`, `_`, `-`; not starting with
    /// `.`), so a request can write nowhere but there.
    pub fn snapshot(&self, name: &str) -> Result<PathBuf, DevnetError> {
        let plain = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain {
            return Err(DevnetError::BadRequest(format!(
                "snapshot name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
            )));
        }
        let core = self.lock();
        let dir = core
            .data_dir
            .as_ref()
            .ok_or_else(|| {
                DevnetError::BadRequest(
                    "this devnet keeps its chain in memory: start it with a data directory to snapshot it"
                        .into(),
                )
            })?
            .join("snapshots");
        std::fs::create_dir_all(&dir).map_err(|e| DevnetError::io(dir.display(), e))?;
        let path = dir.join(format!("{name}.db"));
        if path.exists() {
            return Err(DevnetError::BadRequest(format!(
                "{} exists: choose another name",
                path.display()
            )));
        }
        core.store.snapshot(&path)?;
        Ok(path)
    }

    /// Waits until `tx` is in a block, or `timeout` passes (false).
    pub async fn await_tx(&self, tx: &Hash<32>, timeout: Duration) -> bool {
        let mut rx = self.blocks.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if matches!(self.lock().store.tx(tx.as_ref()), Ok(Some(_))) {
                return true;
            }
            tokio::select! {
                r = rx.changed() => { if r.is_err() { return false; } }
                _ = tokio::time::sleep_until(deadline) => { return false; }
            }
        }
    }

    /// Runs the clock until `cancel`: every slot, produces a block when
    /// transactions are waiting.
    pub async fn run_clock(&self, cancel: CancellationToken) {
        let slot_ms = self.lock().slot_length_ms.max(1);
        let mut interval = tokio::time::interval(Duration::from_millis(slot_ms));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = interval.tick() => {
                    let d = self.clone();
                    let r = tokio::task::spawn_blocking(move || d.tick()).await;
                    if let Ok(Err(e)) = r {
                        tracing::error!("block production failed: {e}");
                    }
                }
            }
        }
    }

    pub(crate) fn with_core<T>(&self, f: impl FnOnce(&Core) -> T) -> T {
        f(&self.lock())
    }

    /// The data directory, if any.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.lock().data_dir.clone()
    }
}
