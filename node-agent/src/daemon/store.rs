//! The agent's state in SQLite (`<state_dir>/agent.db`) and result bytes on disk
//! (`<state_dir>/results/<hash>.bin`).
//!
//! Every job the agent has looked at has one row per role, with its [`Stage`], its
//! deadlines, its transactions and its result's location. Writes are durable before
//! the agent acts on them (WAL, `synchronous = FULL`): the provider records a signed
//! Submit transaction (its id and CBOR) *before* sending it, so that after a crash it
//! re-sends the very same transaction instead of building another; only when that one
//! can no longer land (its inputs are gone or it expired) is a new one built — and both
//! spend the same escrow output, so at most one of them can ever be on chain.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use super::attest::SignedAttestation;

mod job;

pub use job::{JobRecord, Role, Stage};

/// Why the state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("agent state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A file under the state directory.
    #[error("agent state file {path}: {source}; check the state_dir's permissions and free space")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A row holds something this build cannot read.
    #[error("agent state database holds an unreadable row: {0}")]
    Corrupt(String),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // 1: jobs and attestations.
    "CREATE TABLE jobs (
        job_id        TEXT NOT NULL,
        role          TEXT NOT NULL,
        stage         TEXT NOT NULL,
        spec_hash     TEXT NOT NULL,
        price         INTEGER NOT NULL,
        submit_by     INTEGER NOT NULL,
        settle_by     INTEGER NOT NULL,
        threshold     INTEGER NOT NULL,
        verifiers     TEXT NOT NULL,
        verifier_urls TEXT NOT NULL,
        result_hash   TEXT,
        result_path   TEXT,
        result_url    TEXT,
        submit_tx     TEXT,
        submit_cbor   BLOB,
        claim_tx      TEXT,
        claim_cbor    BLOB,
        verdict       TEXT,
        compute_runs  INTEGER NOT NULL DEFAULT 0,
        failure       TEXT,
        settle_warned INTEGER NOT NULL DEFAULT 0,
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (job_id, role)
    );
    CREATE TABLE attestations (
        job_id       TEXT NOT NULL,
        result_hash  TEXT NOT NULL,
        verifier_key TEXT NOT NULL,
        json         TEXT NOT NULL,
        source       TEXT NOT NULL,
        received_at  INTEGER NOT NULL,
        PRIMARY KEY (job_id, result_hash, verifier_key)
    );",
];

/// The agent's state: a SQLite database and a results directory. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    db_path: PathBuf,
    results_dir: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.db_path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the state in `dir`, applying pending migrations.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let results_dir = dir.join("results");
        std::fs::create_dir_all(&results_dir).map_err(|source| StoreError::Io {
            path: results_dir.clone(),
            source,
        })?;
        let db_path = dir.join("agent.db");
        let sql = |source| StoreError::Sqlite {
            path: db_path.clone(),
            source,
        };
        let mut conn = Connection::open(&db_path).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        if version > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "schema version {version} is newer than this build's {}: upgrade the agent",
                MIGRATIONS.len()
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction().map_err(sql)?;
            tx.execute_batch(m).map_err(sql)?;
            tx.pragma_update(None, "user_version", i + 1).map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            db_path,
            results_dir,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.db_path.clone(),
            source,
        }
    }

    /// Writes `job` (insert or replace), durably.
    pub fn save(&self, job: &JobRecord) -> Result<(), StoreError> {
        let conn = self.lock();
        let urls = serde_json::to_string(&job.verifier_urls)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let verifiers =
            serde_json::to_string(&job.verifiers.iter().map(hex::encode).collect::<Vec<_>>())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        conn.execute(
            "INSERT OR REPLACE INTO jobs (job_id, role, stage, spec_hash, price, submit_by,
                settle_by, threshold, verifiers, verifier_urls, result_hash, result_path,
                result_url, submit_tx, submit_cbor, claim_tx, claim_cbor, verdict,
                compute_runs, failure, settle_warned, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                ?17, ?18, ?19, ?20, ?21, ?22)",
            params![
                hex::encode(job.job_id),
                job.role.as_str(),
                job.stage.as_str(),
                hex::encode(job.spec_hash),
                job.price as i64,
                job.submit_by as i64,
                job.settle_by as i64,
                job.threshold,
                verifiers,
                urls,
                job.result_hash.map(hex::encode),
                job.result_path,
                job.result_url,
                job.submit_tx.map(hex::encode),
                job.submit_cbor,
                job.claim_tx.map(hex::encode),
                job.claim_cbor,
                job.verdict,
                job.compute_runs,
                job.failure,
                job.settle_warned,
                now_ms() as i64,
            ],
        )
        .map_err(self.sql())?;
        Ok(())
    }

    /// The row of `job_id` in `role`, if any.
    pub fn job(&self, job_id: &[u8; 32], role: Role) -> Result<Option<JobRecord>, StoreError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                &format!("{SELECT} WHERE job_id = ?1 AND role = ?2"),
                params![hex::encode(job_id), role.as_str()],
                read_row,
            )
            .optional()
            .map_err(self.sql())?;
        row.transpose()
    }

    /// Every row (of one role, if given), most recently changed first.
    pub fn jobs(&self, role: Option<Role>) -> Result<Vec<JobRecord>, StoreError> {
        self.records(
            "WHERE ?1 IS NULL OR role = ?1 ORDER BY updated_at DESC",
            params![role.map(Role::as_str)],
        )
    }

    /// At most `limit` rows from the `offset`-th, most recently changed first.
    pub fn jobs_page(&self, limit: usize, offset: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.records(
            "ORDER BY updated_at DESC, job_id, role LIMIT ?1 OFFSET ?2",
            params![limit as i64, offset as i64],
        )
    }

    /// The rows `{SELECT} {rest}` finds.
    fn records(
        &self,
        rest: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!("{SELECT} {rest}"))
            .map_err(self.sql())?;
        let rows = stmt.query_map(args, read_row).map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(self.sql())??);
        }
        Ok(out)
    }

    /// How many jobs are at each stage (stages with none are left out).
    pub fn stage_counts(&self) -> Result<Vec<(Stage, u64)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT stage, COUNT(*) FROM jobs GROUP BY stage ORDER BY stage")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (stage, n) = row.map_err(self.sql())?;
            out.push((stage.parse()?, n as u64));
        }
        Ok(out)
    }

    /// Records an attestation (`source`: "signed" by this agent, or "received").
    /// A later one from the same verifier for the same job and result replaces it.
    pub fn put_attestation(&self, a: &SignedAttestation, source: &str) -> Result<(), StoreError> {
        let json = serde_json::to_string(a).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO attestations
                    (job_id, result_hash, verifier_key, json, source, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    hex::encode(a.job_id),
                    hex::encode(a.result_hash),
                    hex::encode(a.verifier_key),
                    json,
                    source,
                    now_ms() as i64
                ],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Every attestation stored for `job_id` (signed here or received).
    pub fn attestations(&self, job_id: &[u8; 32]) -> Result<Vec<SignedAttestation>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT json FROM attestations WHERE job_id = ?1 ORDER BY verifier_key")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![hex::encode(job_id)], |r| r.get::<_, String>(0))
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for json in rows {
            let json = json.map_err(self.sql())?;
            out.push(serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// Stores result bytes durably (write, fsync, rename) and returns their path.
    pub fn write_result(&self, hash: &[u8; 32], bytes: &[u8]) -> Result<PathBuf, StoreError> {
        use std::io::Write;
        let path = self.result_path(hash);
        let tmp = path.with_extension("tmp");
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| StoreError::Io { path: p, source }
        };
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(path)
    }

    /// The stored result bytes with this hash, if any (checked against the hash).
    pub fn read_result(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.result_path(hash);
        match std::fs::read(&path) {
            Ok(bytes) if crate::Hash32::of(&bytes).0 == *hash => Ok(Some(bytes)),
            Ok(_) => Err(StoreError::Corrupt(format!(
                "{} does not hash to its name",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    fn result_path(&self, hash: &[u8; 32]) -> PathBuf {
        self.results_dir.join(format!("{}.bin", hex::encode(hash)))
    }
}

const SELECT: &str = "SELECT job_id, role, stage, spec_hash, price, submit_by, settle_by,
    threshold, verifiers, verifier_urls, result_hash, result_path, result_url, submit_tx,
    submit_cbor, claim_tx, claim_cbor, verdict, compute_runs, failure, settle_warned,
    updated_at FROM jobs";

type RowResult = Result<JobRecord, StoreError>;

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RowResult> {
    let text = |i: usize| r.get::<_, String>(i);
    let opt = |i: usize| r.get::<_, Option<String>>(i);
    let raw = (
        text(0)?,
        text(1)?,
        text(2)?,
        text(3)?,
        text(8)?,
        text(9)?,
        opt(10)?,
        opt(13)?,
        opt(15)?,
    );
    let build = || -> RowResult {
        let (job_id, role, stage, spec_hash, verifiers, urls, result_hash, submit_tx, claim_tx) =
            raw;
        let role = match role.as_str() {
            "provider" => Role::Provider,
            "verifier" => Role::Verifier,
            other => return Err(StoreError::Corrupt(format!("unknown role {other:?}"))),
        };
        let verifiers: Vec<String> =
            serde_json::from_str(&verifiers).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(JobRecord {
            job_id: h32(&job_id)?,
            role,
            stage: stage.parse()?,
            spec_hash: h32(&spec_hash)?,
            price: r.get::<_, i64>(4).map_err(corrupt)? as u64,
            submit_by: r.get::<_, i64>(5).map_err(corrupt)? as u64,
            settle_by: r.get::<_, i64>(6).map_err(corrupt)? as u64,
            threshold: r.get(7).map_err(corrupt)?,
            verifiers: verifiers.iter().map(|v| h32(v)).collect::<Result<_, _>>()?,
            verifier_urls: serde_json::from_str(&urls)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            result_hash: result_hash.as_deref().map(h32).transpose()?,
            result_path: r.get(11).map_err(corrupt)?,
            result_url: r.get(12).map_err(corrupt)?,
            submit_tx: submit_tx.as_deref().map(h32).transpose()?,
            submit_cbor: r.get(14).map_err(corrupt)?,
            claim_tx: claim_tx.as_deref().map(h32).transpose()?,
            claim_cbor: r.get(16).map_err(corrupt)?,
            verdict: r.get(17).map_err(corrupt)?,
            compute_runs: r.get(18).map_err(corrupt)?,
            failure: r.get(19).map_err(corrupt)?,
            settle_warned: r.get(20).map_err(corrupt)?,
            updated_at: r.get::<_, i64>(21).map_err(corrupt)? as u64,
        })
    };
    Ok(build())
}

fn corrupt(e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn h32(s: &str) -> Result<[u8; 32], StoreError> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{s:?} is not a 32-byte hex string")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_survive_reopening_with_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut job = JobRecord::new(
            [1; 32],
            Role::Provider,
            Stage::Accepted,
            [2; 32],
            25_000_000,
            1000,
            2000,
            2,
            vec![[3; 32], [4; 32]],
        );
        {
            let store = Store::open(dir.path()).unwrap();
            store.save(&job).unwrap();
            job.stage = Stage::Submitting;
            job.result_hash = Some([5; 32]);
            job.submit_tx = Some([6; 32]);
            job.submit_cbor = Some(vec![0x84, 1, 2]);
            job.verifier_urls = vec!["http://v1".into()];
            job.compute_runs = 1;
            store.save(&job).unwrap();
            let path = store.write_result(&[7; 32], b"not these bytes").unwrap();
            assert!(path.exists());
        }
        let store = Store::open(dir.path()).unwrap();
        let back = store.job(&[1; 32], Role::Provider).unwrap().unwrap();
        job.updated_at = back.updated_at;
        assert_eq!(back, job);
        assert!(store.job(&[1; 32], Role::Verifier).unwrap().is_none());
        assert_eq!(store.jobs(None).unwrap().len(), 1);
        assert_eq!(store.jobs(Some(Role::Verifier)).unwrap().len(), 0);
        // Bytes whose hash is not their name are refused, real ones come back.
        assert!(store.read_result(&[7; 32]).is_err());
        let bytes = b"result".to_vec();
        let hash = crate::Hash32::of(&bytes).0;
        store.write_result(&hash, &bytes).unwrap();
        assert_eq!(store.read_result(&hash).unwrap(), Some(bytes));
        assert_eq!(store.read_result(&[8; 32]).unwrap(), None);
    }

    #[test]
    fn attestations_are_kept_per_verifier() {
        use ntx_offchain::protocol::Verdict;
        use ntx_offchain::wallet::SigningKey;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let k = SigningKey::from_normal_bytes(&[1; 32]);
        let a = SignedAttestation::sign(&k, Verdict::Accept, [0; 28], [1; 32], [2; 32]);
        store.put_attestation(&a, "received").unwrap();
        store.put_attestation(&a, "received").unwrap();
        let k2 = SigningKey::from_normal_bytes(&[2; 32]);
        let b = SignedAttestation::sign(&k2, Verdict::Reject, [0; 28], [1; 32], [2; 32]);
        store.put_attestation(&b, "signed").unwrap();
        assert_eq!(store.attestations(&[1; 32]).unwrap().len(), 2);
        assert!(store.attestations(&[9; 32]).unwrap().is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("agent.db")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("upgrade"), "{err}");
    }
}
