//! On-disk state in SQLite: blocks, every output ever created (with the
//! height that spent it), the transaction index, reward accounts, scripts,
//! datums and metadata. A block is committed in one SQLite transaction, so a
//! crash between blocks loses no committed block; WAL mode with
//! `synchronous = FULL` makes the commit durable.

use std::collections::HashMap;
use std::path::Path;

use pallas_crypto::hash::Hash;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::DevnetError;
use crate::ledger::{Account, Credential, OutRef, ValidatedTx};

/// A block header as the devnet records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// Height (genesis is 0).
    pub height: u64,
    /// Slot.
    pub slot: u64,
    /// Hash: blake2b-256 of (previous hash ‖ slot ‖ transaction ids).
    pub hash: Hash<32>,
    /// Previous block's hash (zeros for genesis).
    pub prev_hash: Hash<32>,
    /// POSIX seconds of the slot.
    pub time: u64,
    /// Number of transactions.
    pub tx_count: u64,
    /// Sum of transaction sizes.
    pub size: u64,
    /// Sum of fees.
    pub fees: u64,
    /// Sum of output lovelace.
    pub output: u64,
}

/// A stored transaction.
#[derive(Debug, Clone)]
pub struct TxRecord {
    /// Id.
    pub hash: Hash<32>,
    /// Block height.
    pub height: u64,
    /// Index within the block.
    pub index: u64,
    /// Slot.
    pub slot: u64,
    /// POSIX seconds.
    pub time: u64,
    /// CBOR.
    pub cbor: Vec<u8>,
    /// Fee (or collateral taken).
    pub fee: u64,
    /// Size.
    pub size: u64,
    /// is_valid.
    pub is_valid: bool,
    /// Net deposit.
    pub deposit: i64,
    /// Redeemer reports (JSON).
    pub redeemers: serde_json::Value,
}

/// A stored output.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    /// Reference.
    pub out_ref: OutRef,
    /// CBOR.
    pub cbor: Vec<u8>,
    /// Height that created it.
    pub created_height: u64,
    /// Transaction that spent it, if any.
    pub spent_by: Option<Hash<32>>,
}

/// Extra rows derived from a transaction at apply time.
#[derive(Debug, Default, Clone)]
pub(crate) struct TxExtras {
    pub addresses: Vec<Vec<u8>>,
    pub scripts: Vec<(Hash<28>, u8, Vec<u8>)>,
    pub datums: Vec<(Hash<32>, Vec<u8>)>,
    pub metadata: Vec<(u64, String)>,
}

/// The SQLite store.
pub(crate) struct Store {
    conn: Connection,
}

fn h32(v: Vec<u8>) -> Result<Hash<32>, rusqlite::Error> {
    let arr: [u8; 32] = v.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "hash".into(), rusqlite::types::Type::Blob)
    })?;
    Ok(Hash::new(arr))
}

fn block_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BlockInfo> {
    Ok(BlockInfo {
        height: r.get::<_, i64>(0)? as u64,
        slot: r.get::<_, i64>(1)? as u64,
        hash: h32(r.get(2)?)?,
        prev_hash: h32(r.get(3)?)?,
        time: r.get::<_, i64>(4)? as u64,
        tx_count: r.get::<_, i64>(5)? as u64,
        size: r.get::<_, i64>(6)? as u64,
        fees: r.get::<_, i64>(7)? as u64,
        output: r.get::<_, i64>(8)? as u64,
    })
}

const BLOCK_COLS: &str = "height, slot, hash, prev_hash, time, tx_count, size, fees, output";
const TX_COLS: &str =
    "hash, height, idx, slot, time, cbor, fee, size, is_valid, deposit, redeemers";

fn tx_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TxRecord> {
    let red: String = r.get(10)?;
    Ok(TxRecord {
        hash: h32(r.get(0)?)?,
        height: r.get::<_, i64>(1)? as u64,
        index: r.get::<_, i64>(2)? as u64,
        slot: r.get::<_, i64>(3)? as u64,
        time: r.get::<_, i64>(4)? as u64,
        cbor: r.get(5)?,
        fee: r.get::<_, i64>(6)? as u64,
        size: r.get::<_, i64>(7)? as u64,
        is_valid: r.get(8)?,
        deposit: r.get(9)?,
        redeemers: serde_json::from_str(&red).unwrap_or(serde_json::Value::Null),
    })
}

fn output_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutputRecord> {
    let spent: Option<Vec<u8>> = r.get(4)?;
    Ok(OutputRecord {
        out_ref: OutRef::new(h32(r.get(0)?)?, r.get::<_, i64>(1)? as u32),
        cbor: r.get(2)?,
        created_height: r.get::<_, i64>(3)? as u64,
        spent_by: spent.map(h32).transpose()?,
    })
}

impl Store {
    /// Opens (creating if needed) the database at `path`, or in memory.
    pub fn open(path: Option<&Path>) -> Result<Self, DevnetError> {
        let conn = match path {
            Some(p) => Connection::open(p)?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = OFF;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS blocks (
                height INTEGER PRIMARY KEY, slot INTEGER NOT NULL, hash BLOB NOT NULL,
                prev_hash BLOB NOT NULL, time INTEGER NOT NULL, tx_count INTEGER NOT NULL,
                size INTEGER NOT NULL, fees INTEGER NOT NULL, output INTEGER NOT NULL,
                undo TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS blocks_hash ON blocks(hash);
             CREATE TABLE IF NOT EXISTS txs (
                hash BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL,
                slot INTEGER NOT NULL, time INTEGER NOT NULL, cbor BLOB NOT NULL,
                fee INTEGER NOT NULL, size INTEGER NOT NULL, is_valid INTEGER NOT NULL,
                deposit INTEGER NOT NULL, redeemers TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS txs_height ON txs(height);
             CREATE TABLE IF NOT EXISTS outputs (
                tx_hash BLOB NOT NULL, idx INTEGER NOT NULL, address BLOB NOT NULL,
                cbor BLOB NOT NULL, created_height INTEGER NOT NULL,
                spent_height INTEGER, spent_by BLOB, PRIMARY KEY (tx_hash, idx));
             CREATE INDEX IF NOT EXISTS outputs_address ON outputs(address, spent_height);
             CREATE INDEX IF NOT EXISTS outputs_stake ON outputs(substr(address, 30, 28), spent_height);
             CREATE INDEX IF NOT EXISTS outputs_created ON outputs(created_height);
             CREATE INDEX IF NOT EXISTS outputs_spent ON outputs(spent_height);
             CREATE INDEX IF NOT EXISTS outputs_spent_by ON outputs(spent_by);
             CREATE TABLE IF NOT EXISTS accounts (cred TEXT PRIMARY KEY, balance INTEGER NOT NULL, deposit INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS address_txs (
                address BLOB NOT NULL, tx_hash BLOB NOT NULL, height INTEGER NOT NULL, idx INTEGER NOT NULL,
                PRIMARY KEY (address, tx_hash));
             CREATE INDEX IF NOT EXISTS address_txs_height ON address_txs(height);
             CREATE TABLE IF NOT EXISTS scripts (hash BLOB PRIMARY KEY, lang INTEGER NOT NULL, bytes BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS datums (hash BLOB PRIMARY KEY, cbor BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS metadata (
                label INTEGER NOT NULL, tx_hash BLOB NOT NULL, height INTEGER NOT NULL, json TEXT NOT NULL,
                PRIMARY KEY (label, tx_hash));
             CREATE INDEX IF NOT EXISTS metadata_height ON metadata(height);",
        )?;
        Ok(Self { conn })
    }

    /// Reads a meta value.
    pub fn meta(&self, key: &str) -> Result<Option<String>, DevnetError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Writes a meta value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), DevnetError> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Writes the genesis block and outputs (once).
    pub fn init_genesis(
        &mut self,
        meta: &[(&str, String)],
        block: &BlockInfo,
        outputs: &[(OutRef, Vec<u8>)],
    ) -> Result<(), DevnetError> {
        let t = self.conn.transaction()?;
        for (k, v) in meta {
            t.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )?;
        }
        insert_block(&t, block, "[]")?;
        for (r, cbor) in outputs {
            let addr = crate::value::OutputView::decode(cbor)
                .map(|v| v.address)
                .unwrap_or_default();
            t.execute(
                "INSERT OR REPLACE INTO outputs(tx_hash, idx, address, cbor, created_height) VALUES (?1, ?2, ?3, ?4, 0)",
                params![r.tx_hash.as_ref(), r.index, addr, cbor],
            )?;
        }
        t.commit()?;
        Ok(())
    }

    /// Commits a block and its transactions atomically.
    pub fn commit_block(
        &mut self,
        block: &BlockInfo,
        txs: &[(ValidatedTx, TxExtras)],
        undo: &[(Credential, Option<Account>)],
        meta: &[(&str, String)],
    ) -> Result<(), DevnetError> {
        let t = self.conn.transaction()?;
        let undo_json = serde_json::to_string(undo).unwrap_or_else(|_| "[]".into());
        insert_block(&t, block, &undo_json)?;
        for (k, v) in meta {
            t.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )?;
        }
        {
            let mut ins_tx = t.prepare_cached(
                "INSERT INTO txs(hash, height, idx, slot, time, cbor, fee, size, is_valid, deposit, redeemers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut spend = t.prepare_cached(
                "UPDATE outputs SET spent_height = ?1, spent_by = ?2 WHERE tx_hash = ?3 AND idx = ?4",
            )?;
            let mut ins_out = t.prepare_cached(
                "INSERT OR REPLACE INTO outputs(tx_hash, idx, address, cbor, created_height) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut ins_addr = t.prepare_cached(
                "INSERT OR IGNORE INTO address_txs(address, tx_hash, height, idx) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut ins_script = t.prepare_cached(
                "INSERT OR IGNORE INTO scripts(hash, lang, bytes) VALUES (?1, ?2, ?3)",
            )?;
            let mut ins_datum =
                t.prepare_cached("INSERT OR IGNORE INTO datums(hash, cbor) VALUES (?1, ?2)")?;
            let mut ins_meta = t.prepare_cached(
                "INSERT OR REPLACE INTO metadata(label, tx_hash, height, json) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut acct = t.prepare_cached(
                "INSERT INTO accounts(cred, balance, deposit) VALUES (?1, ?2, ?3)
                 ON CONFLICT(cred) DO UPDATE SET balance = excluded.balance, deposit = excluded.deposit",
            )?;
            let mut del_acct = t.prepare_cached("DELETE FROM accounts WHERE cred = ?1")?;
            for (i, (tx, extras)) in txs.iter().enumerate() {
                let red = serde_json::to_string(&tx.redeemers).unwrap_or_else(|_| "[]".into());
                ins_tx.execute(params![
                    tx.hash.as_ref(),
                    block.height as i64,
                    i as i64,
                    block.slot as i64,
                    block.time as i64,
                    tx.cbor,
                    tx.fee as i64,
                    tx.size as i64,
                    tx.is_valid,
                    tx.deposit,
                    red
                ])?;
                for r in &tx.consumed {
                    spend.execute(params![
                        block.height as i64,
                        tx.hash.as_ref(),
                        r.tx_hash.as_ref(),
                        r.index
                    ])?;
                }
                for (r, cbor) in &tx.produced {
                    let addr = crate::value::OutputView::decode(cbor)
                        .map(|v| v.address)
                        .unwrap_or_default();
                    ins_out.execute(params![
                        r.tx_hash.as_ref(),
                        r.index,
                        addr,
                        cbor,
                        block.height as i64
                    ])?;
                }
                for a in &extras.addresses {
                    ins_addr.execute(params![
                        a,
                        tx.hash.as_ref(),
                        block.height as i64,
                        i as i64
                    ])?;
                }
                for (h, lang, bytes) in &extras.scripts {
                    ins_script.execute(params![h.as_ref(), *lang as i64, bytes])?;
                }
                for (h, cbor) in &extras.datums {
                    ins_datum.execute(params![h.as_ref(), cbor])?;
                }
                for (label, json) in &extras.metadata {
                    ins_meta.execute(params![
                        *label as i64,
                        tx.hash.as_ref(),
                        block.height as i64,
                        json
                    ])?;
                }
                for (cred, a) in &tx.account_updates {
                    match a {
                        Some(a) => {
                            acct.execute(params![
                                cred.to_key(),
                                a.balance as i64,
                                a.deposit as i64
                            ])?;
                        }
                        None => {
                            del_acct.execute(params![cred.to_key()])?;
                        }
                    }
                }
            }
        }
        t.commit()?;
        Ok(())
    }

    /// Undoes the tip block (never genesis); returns the CBOR of its
    /// transactions in block order.
    pub fn rollback_tip(&mut self) -> Result<Vec<Vec<u8>>, DevnetError> {
        let t = self.conn.transaction()?;
        let (height, undo): (i64, String) = t.query_row(
            "SELECT height, undo FROM blocks ORDER BY height DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if height == 0 {
            return Err(DevnetError::BadRequest(
                "cannot roll back past genesis".into(),
            ));
        }
        let cbors: Vec<Vec<u8>> = {
            let mut st = t.prepare("SELECT cbor FROM txs WHERE height = ?1 ORDER BY idx")?;
            st.query_map([height], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        t.execute("DELETE FROM outputs WHERE created_height = ?1", [height])?;
        t.execute(
            "UPDATE outputs SET spent_height = NULL, spent_by = NULL WHERE spent_height = ?1",
            [height],
        )?;
        t.execute("DELETE FROM txs WHERE height = ?1", [height])?;
        t.execute("DELETE FROM address_txs WHERE height = ?1", [height])?;
        t.execute("DELETE FROM metadata WHERE height = ?1", [height])?;
        let undo: Vec<(Credential, Option<Account>)> = serde_json::from_str(&undo)
            .map_err(|e| DevnetError::Corrupt(format!("block {height} undo record: {e}")))?;
        for (cred, a) in undo {
            match a {
                Some(a) => t.execute(
                    "INSERT INTO accounts(cred, balance, deposit) VALUES (?1, ?2, ?3)
                     ON CONFLICT(cred) DO UPDATE SET balance = excluded.balance, deposit = excluded.deposit",
                    params![cred.to_key(), a.balance as i64, a.deposit as i64],
                )?,
                None => t.execute("DELETE FROM accounts WHERE cred = ?1", [cred.to_key()])?,
            };
        }
        t.execute("DELETE FROM blocks WHERE height = ?1", [height])?;
        t.commit()?;
        Ok(cbors)
    }

    /// The tip block.
    pub fn tip(&self) -> Result<BlockInfo, DevnetError> {
        Ok(self.conn.query_row(
            &format!("SELECT {BLOCK_COLS} FROM blocks ORDER BY height DESC LIMIT 1"),
            [],
            block_from_row,
        )?)
    }

    /// A block by height.
    pub fn block(&self, height: u64) -> Result<Option<BlockInfo>, DevnetError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {BLOCK_COLS} FROM blocks WHERE height = ?1"),
                [height as i64],
                block_from_row,
            )
            .optional()?)
    }

    /// A block by hash.
    pub fn block_by_hash(&self, hash: &[u8]) -> Result<Option<BlockInfo>, DevnetError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {BLOCK_COLS} FROM blocks WHERE hash = ?1"),
                [hash],
                block_from_row,
            )
            .optional()?)
    }

    /// Every unspent output.
    pub fn load_utxo(&self) -> Result<HashMap<OutRef, Vec<u8>>, DevnetError> {
        let mut st = self
            .conn
            .prepare("SELECT tx_hash, idx, cbor FROM outputs WHERE spent_height IS NULL")?;
        let rows = st.query_map([], |r| {
            Ok((
                OutRef::new(h32(r.get(0)?)?, r.get::<_, i64>(1)? as u32),
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes one reward account (a balance paid outside transactions).
    pub fn put_account(&self, cred: &Credential, a: &Account) -> Result<(), DevnetError> {
        self.conn.execute(
            "INSERT INTO accounts(cred, balance, deposit) VALUES (?1, ?2, ?3)
             ON CONFLICT(cred) DO UPDATE SET balance = excluded.balance, deposit = excluded.deposit",
            params![cred.to_key(), a.balance as i64, a.deposit as i64],
        )?;
        Ok(())
    }

    /// Every registered reward account.
    pub fn load_accounts(&self) -> Result<HashMap<Credential, Account>, DevnetError> {
        let mut st = self
            .conn
            .prepare("SELECT cred, balance, deposit FROM accounts")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (k, balance, deposit) = row?;
            let cred = Credential::from_key(&k)
                .ok_or_else(|| DevnetError::Corrupt(format!("account key {k:?}")))?;
            out.insert(cred, Account { balance, deposit });
        }
        Ok(out)
    }

    /// A transaction by id.
    pub fn tx(&self, hash: &[u8]) -> Result<Option<TxRecord>, DevnetError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {TX_COLS} FROM txs WHERE hash = ?1"),
                [hash],
                tx_from_row,
            )
            .optional()?)
    }

    /// An output (spent or not).
    pub fn output(&self, r: &OutRef) -> Result<Option<OutputRecord>, DevnetError> {
        Ok(self
            .conn
            .query_row(
                "SELECT tx_hash, idx, cbor, created_height, spent_by FROM outputs WHERE tx_hash = ?1 AND idx = ?2",
                params![r.tx_hash.as_ref(), r.index],
                output_from_row,
            )
            .optional()?)
    }

    /// Unspent outputs at an address, oldest first, one page.
    pub fn utxos_at(
        &self,
        address: &[u8],
        limit: u64,
        offset: u64,
    ) -> Result<Vec<OutputRecord>, DevnetError> {
        let mut st = self.conn.prepare_cached(
            "SELECT tx_hash, idx, cbor, created_height, spent_by FROM outputs
             WHERE address = ?1 AND spent_height IS NULL
             ORDER BY created_height, tx_hash, idx LIMIT ?2 OFFSET ?3",
        )?;
        let rows = st.query_map(
            params![address, limit as i64, offset as i64],
            output_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Unspent base-address outputs whose stake part is `stake` (a 28-byte
    /// credential hash, at bytes 29..57) and whose header byte is one of `headers`
    /// (which says the credential's kind and the network), oldest first, one page.
    pub fn utxos_with_stake(
        &self,
        stake: &[u8; 28],
        headers: [u8; 2],
        limit: u64,
        offset: u64,
    ) -> Result<Vec<OutputRecord>, DevnetError> {
        let mut st = self.conn.prepare_cached(
            "SELECT tx_hash, idx, cbor, created_height, spent_by FROM outputs
             WHERE substr(address, 30, 28) = ?1 AND spent_height IS NULL
               AND length(address) = 57 AND substr(address, 1, 1) IN (?2, ?3)
             ORDER BY created_height, tx_hash, idx LIMIT ?4 OFFSET ?5",
        )?;
        let rows = st.query_map(
            params![
                &stake[..],
                &headers[..1],
                &headers[1..],
                limit as i64,
                offset as i64
            ],
            output_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Transactions touching an address, oldest first, one page.
    pub fn address_txs(
        &self,
        address: &[u8],
        limit: u64,
        offset: u64,
    ) -> Result<Vec<(Hash<32>, u64, u64)>, DevnetError> {
        let mut st = self.conn.prepare_cached(
            "SELECT tx_hash, height, idx FROM address_txs WHERE address = ?1
             ORDER BY height, idx LIMIT ?2 OFFSET ?3",
        )?;
        let rows = st.query_map(params![address, limit as i64, offset as i64], |r| {
            Ok((
                h32(r.get(0)?)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Metadata of a label, oldest first, one page: (tx, json).
    pub fn metadata_by_label(
        &self,
        label: u64,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<(Hash<32>, String)>, DevnetError> {
        let mut st = self.conn.prepare(
            "SELECT m.tx_hash, m.json FROM metadata m JOIN txs t ON t.hash = m.tx_hash
             WHERE m.label = ?1 ORDER BY t.height, t.idx LIMIT ?2 OFFSET ?3",
        )?;
        let rows = st.query_map(params![label as i64, limit as i64, offset as i64], |r| {
            Ok((h32(r.get(0)?)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A script by hash: (language tag, bytes).
    pub fn script(&self, hash: &[u8]) -> Result<Option<(u8, Vec<u8>)>, DevnetError> {
        Ok(self
            .conn
            .query_row(
                "SELECT lang, bytes FROM scripts WHERE hash = ?1",
                [hash],
                |r| Ok((r.get::<_, i64>(0)? as u8, r.get(1)?)),
            )
            .optional()?)
    }

    /// A datum by hash.
    pub fn datum(&self, hash: &[u8]) -> Result<Option<Vec<u8>>, DevnetError> {
        Ok(self
            .conn
            .query_row("SELECT cbor FROM datums WHERE hash = ?1", [hash], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Blocks after genesis with `from ≤ slot < to`: their count, transactions,
    /// fees, output lovelace, and first and last block times.
    pub fn block_totals(&self, from: u64, to: u64) -> Result<BlockTotals, DevnetError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(tx_count), 0), COALESCE(SUM(fees), 0),
                    COALESCE(SUM(output), 0), MIN(time), MAX(time)
             FROM blocks WHERE height > 0 AND slot >= ?1 AND slot < ?2",
            params![from as i64, to as i64],
            |r| {
                Ok(BlockTotals {
                    blocks: r.get::<_, i64>(0)? as u64,
                    txs: r.get::<_, i64>(1)? as u64,
                    fees: r.get::<_, i64>(2)? as u64,
                    output: r.get::<_, i64>(3)? as u64,
                    first_time: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
                    last_time: r.get::<_, Option<i64>>(5)?.map(|t| t as u64),
                })
            },
        )?)
    }

    /// Writes a consistent copy of the database to `path` (`VACUUM INTO`).
    pub fn snapshot(&self, path: &Path) -> Result<(), DevnetError> {
        let p = path.to_string_lossy().to_string();
        self.conn.execute("VACUUM INTO ?1", [p])?;
        Ok(())
    }
}

/// What [`Store::block_totals`] sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockTotals {
    /// Blocks.
    pub blocks: u64,
    /// Transactions in them.
    pub txs: u64,
    /// Their fees, lovelace.
    pub fees: u64,
    /// Their outputs' lovelace.
    pub output: u64,
    /// The first block's time (POSIX s).
    pub first_time: Option<u64>,
    /// The last block's time (POSIX s).
    pub last_time: Option<u64>,
}

fn insert_block(
    t: &rusqlite::Transaction<'_>,
    b: &BlockInfo,
    undo: &str,
) -> Result<(), DevnetError> {
    t.execute(
        "INSERT INTO blocks(height, slot, hash, prev_hash, time, tx_count, size, fees, output, undo)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            b.height as i64,
            b.slot as i64,
            b.hash.as_ref(),
            b.prev_hash.as_ref(),
            b.time as i64,
            b.tx_count as i64,
            b.size as i64,
            b.fees as i64,
            b.output as i64,
            undo
        ],
    )?;
    Ok(())
}
