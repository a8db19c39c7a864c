//! This protocol's transaction metadata: the lock record (each job's spec, or
//! a URL to it) and the submit record (where the result bytes are served).
//!
//! Both sit under [`METADATA_LABEL`]. Cardano metadata strings hold at most 64
//! bytes, so specs and URLs travel as lists of byte strings of up to 64 bytes
//! (URLs as their UTF-8 bytes: Blockfrost's JSON shows byte strings as
//! `"0x…"` text, which a text chunk could imitate; bytes cannot be confused).
//!
//! ```text
//! lock:   {"v": 1, "op": "lock",
//!          "specs": [{"bytes": [h'…64', …]} | {"url": [h'…64', …]}, …],
//!          "jobs":  [{"id": h'job_id', "spec": <index into specs>}, …]}
//! submit: {"v": 1, "op": "submit", "job": h'job_id',
//!          "lock": h'lock transaction id', "result": [h'…64', …]}
//! settle: {"v": 1, "op": "settle", "bases": [[h'…64', …], …],
//!          "results": [[h'job_id', <index into bases>] | [h'job_id', [h'…64', …]], …]}
//! ```
//! A fast-path settlement (protocol v1.1) carries the settle record: where the
//! result of every job it settles straight from `Locked` is served, so the
//! result's URL reaches the chain as it does in a Submit. It is compact, since
//! up to 50 claims share one transaction's 16,384 bytes: a result served at a
//! content-addressed URL (`base` followed by the result hash in lower-case hex,
//! as the agent's `/results/{hash}`) names only its base, shared by all the
//! jobs of one provider; any other URL is written whole. The result hash is the
//! settlement's redeemer's, and the lock is the escrow input's transaction.
//! Jobs with the same spec share one entry of `specs`.

use std::collections::BTreeMap;

use pallas_codec::utils::KeyValuePairs;
use pallas_primitives::Metadatum;
use serde_json::Value as Json;

/// The metadata label of this protocol's records (not in the CIP-10 registry's
/// reserved ranges; documented in docs/PROTOCOL.md).
pub const METADATA_LABEL: u64 = 7_464;

/// The record format version.
pub const RECORD_VERSION: i64 = 1;

const CHUNK: usize = 64;

/// Where a job's spec is: inline canonical bytes, or a URL serving them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpecSource {
    /// The canonical spec bytes themselves.
    Inline(Vec<u8>),
    /// A URL that serves the canonical spec bytes.
    Url(String),
}

/// The lock record: each locked job's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    /// `(job_id, spec)` in the order locked.
    pub jobs: Vec<([u8; 32], SpecSource)>,
}

/// The submit record: where the provider serves a job's result bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitRecord {
    /// The job.
    pub job_id: [u8; 32],
    /// The transaction that locked it (whose record has the spec).
    pub lock_tx: [u8; 32],
    /// URL of the result bytes.
    pub result_url: String,
}

/// The settle record: where the result of each job a fast-path settlement
/// settles is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleRecord {
    /// One entry per fast-path job, in the order settled.
    pub results: Vec<FastResult>,
}

/// One fast-path job's result, as a settle record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastResult {
    /// The job.
    pub job_id: [u8; 32],
    /// The hash the settlement names (from its redeemer; not written again).
    pub result_hash: [u8; 32],
    /// URL of the result bytes.
    pub result_url: String,
}

/// Where a job's result is served, as its Submit or its fast-path settlement
/// records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLocation {
    /// URL of the result bytes.
    pub result_url: String,
    /// The lock transaction, when the record names it (a submit record does;
    /// a settle record leaves it to the escrow input's reference).
    pub lock_tx: Option<[u8; 32]>,
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed ntx-escrow metadata record (label {METADATA_LABEL}): {0}")]
pub struct RecordError(String);

fn text(s: &str) -> Metadatum {
    Metadatum::Text(s.to_string())
}

fn bytes(b: &[u8]) -> Metadatum {
    Metadatum::Bytes(b.to_vec().into())
}

fn chunks(b: &[u8]) -> Metadatum {
    Metadatum::Array(b.chunks(CHUNK).map(bytes).collect())
}

fn map(entries: Vec<(&str, Metadatum)>) -> Metadatum {
    Metadatum::Map(KeyValuePairs::from(
        entries
            .into_iter()
            .map(|(k, v)| (text(k), v))
            .collect::<Vec<_>>(),
    ))
}

impl LockRecord {
    /// The record as transaction metadata.
    pub fn to_metadata(&self) -> BTreeMap<u64, Metadatum> {
        let mut specs: Vec<&SpecSource> = Vec::new();
        let mut jobs = Vec::new();
        for (id, spec) in &self.jobs {
            let index = match specs.iter().position(|s| *s == spec) {
                Some(i) => i,
                None => {
                    specs.push(spec);
                    specs.len() - 1
                }
            };
            jobs.push(map(vec![
                ("id", bytes(id)),
                ("spec", Metadatum::Int((index as i64).into())),
            ]));
        }
        let specs = specs
            .into_iter()
            .map(|s| match s {
                SpecSource::Inline(b) => map(vec![("bytes", chunks(b))]),
                SpecSource::Url(u) => map(vec![("url", chunks(u.as_bytes()))]),
            })
            .collect();
        let record = map(vec![
            ("v", Metadatum::Int(RECORD_VERSION.into())),
            ("op", text("lock")),
            ("specs", Metadatum::Array(specs)),
            ("jobs", Metadatum::Array(jobs)),
        ]);
        BTreeMap::from([(METADATA_LABEL, record)])
    }

    /// Reads the record from a transaction's metadata value under the label
    /// (Blockfrost's `json_metadata` shape).
    pub fn from_json(json: &Json) -> Result<LockRecord, RecordError> {
        header(json, "lock")?;
        let specs = field(json, "specs")?
            .as_array()
            .ok_or_else(|| bad("`specs` is not a list"))?
            .iter()
            .map(|s| {
                if let Some(b) = s.get("bytes") {
                    Ok(SpecSource::Inline(join(b)?))
                } else if let Some(u) = s.get("url") {
                    String::from_utf8(join(u)?)
                        .map(SpecSource::Url)
                        .map_err(|_| bad("a spec URL is not UTF-8"))
                } else {
                    Err(bad("a spec is neither `bytes` nor `url`"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let jobs = field(json, "jobs")?
            .as_array()
            .ok_or_else(|| bad("`jobs` is not a list"))?
            .iter()
            .map(|j| {
                let id = hash32(field(j, "id")?)?;
                let index = field(j, "spec")?
                    .as_u64()
                    .ok_or_else(|| bad("a job's `spec` is not an index"))?;
                let spec = specs
                    .get(index as usize)
                    .ok_or_else(|| bad("a job's `spec` index is out of range"))?;
                Ok((id, spec.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LockRecord { jobs })
    }

    /// The spec of `job_id`, if this record locked it.
    pub fn spec_of(&self, job_id: &[u8; 32]) -> Option<&SpecSource> {
        self.jobs
            .iter()
            .find(|(id, _)| id == job_id)
            .map(|(_, s)| s)
    }
}

impl SubmitRecord {
    /// The record as transaction metadata.
    pub fn to_metadata(&self) -> BTreeMap<u64, Metadatum> {
        let record = map(vec![
            ("v", Metadatum::Int(RECORD_VERSION.into())),
            ("op", text("submit")),
            ("job", bytes(&self.job_id)),
            ("lock", bytes(&self.lock_tx)),
            ("result", chunks(self.result_url.as_bytes())),
        ]);
        BTreeMap::from([(METADATA_LABEL, record)])
    }

    /// Reads the record from a transaction's metadata value under the label.
    pub fn from_json(json: &Json) -> Result<SubmitRecord, RecordError> {
        header(json, "submit")?;
        Ok(SubmitRecord {
            job_id: hash32(field(json, "job")?)?,
            lock_tx: hash32(field(json, "lock")?)?,
            result_url: utf8(join(field(json, "result")?)?)?,
        })
    }
}

impl ResultLocation {
    /// Where `job_id`'s result, hashing to `result_hash`, is served, read from
    /// a transaction's metadata value under the label: a Submit's submit
    /// record, or a fast-path settlement's settle record.
    pub fn find(
        json: &Json,
        job_id: &[u8; 32],
        result_hash: &[u8; 32],
    ) -> Result<ResultLocation, RecordError> {
        if field(json, "op")?.as_str() == Some("settle") {
            return Ok(ResultLocation {
                result_url: SettleRecord::url_in(json, job_id, result_hash)?,
                lock_tx: None,
            });
        }
        let record = SubmitRecord::from_json(json)?;
        if record.job_id != *job_id {
            return Err(RecordError(format!(
                "the submit record names job {}, not {}",
                hex::encode(record.job_id),
                hex::encode(job_id)
            )));
        }
        Ok(ResultLocation {
            result_url: record.result_url,
            lock_tx: Some(record.lock_tx),
        })
    }
}

impl SettleRecord {
    /// The record as transaction metadata.
    pub fn to_metadata(&self) -> BTreeMap<u64, Metadatum> {
        let mut bases: Vec<&str> = Vec::new();
        let mut results = Vec::new();
        for r in &self.results {
            let addressed = r
                .result_url
                .strip_suffix(hex::encode(r.result_hash).as_str());
            let url = match addressed {
                Some(base) => {
                    let index = match bases.iter().position(|b| *b == base) {
                        Some(i) => i,
                        None => {
                            bases.push(base);
                            bases.len() - 1
                        }
                    };
                    Metadatum::Int((index as i64).into())
                }
                None => chunks(r.result_url.as_bytes()),
            };
            results.push(Metadatum::Array(vec![bytes(&r.job_id), url]));
        }
        let record = map(vec![
            ("v", Metadatum::Int(RECORD_VERSION.into())),
            ("op", text("settle")),
            (
                "bases",
                Metadatum::Array(bases.iter().map(|b| chunks(b.as_bytes())).collect()),
            ),
            ("results", Metadatum::Array(results)),
        ]);
        BTreeMap::from([(METADATA_LABEL, record)])
    }

    /// The URL the record gives `job_id`'s result, which hashes to
    /// `result_hash` (the settlement redeemer's).
    pub fn url_in(
        json: &Json,
        job_id: &[u8; 32],
        result_hash: &[u8; 32],
    ) -> Result<String, RecordError> {
        header(json, "settle")?;
        let bases = field(json, "bases")?
            .as_array()
            .ok_or_else(|| bad("`bases` is not a list"))?;
        let results = field(json, "results")?
            .as_array()
            .ok_or_else(|| bad("`results` is not a list"))?;
        for entry in results {
            let [job, url] = entry.as_array().map(Vec::as_slice).unwrap_or_default() else {
                return Err(bad("a result is not a [job, url] pair"));
            };
            if hash32(job)? != *job_id {
                continue;
            }
            return match url.as_u64() {
                Some(index) => {
                    let base = bases
                        .get(index as usize)
                        .ok_or_else(|| bad("a result's base index is out of range"))?;
                    Ok(utf8(join(base)?)? + &hex::encode(result_hash))
                }
                None => utf8(join(url)?),
            };
        }
        Err(bad("the settle record does not name the job"))
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String, RecordError> {
    String::from_utf8(bytes).map_err(|_| bad("a URL is not UTF-8"))
}

fn bad(why: &str) -> RecordError {
    RecordError(why.to_string())
}

fn field<'a>(json: &'a Json, name: &str) -> Result<&'a Json, RecordError> {
    json.get(name)
        .ok_or_else(|| RecordError(format!("`{name}` is missing")))
}

fn header(json: &Json, op: &str) -> Result<(), RecordError> {
    let v = field(json, "v")?.as_i64();
    if v != Some(RECORD_VERSION) {
        return Err(RecordError(format!(
            "version {v:?} is not {RECORD_VERSION}"
        )));
    }
    match field(json, "op")?.as_str() {
        Some(o) if o == op => Ok(()),
        other => Err(RecordError(format!(
            "expected a {op} record, found {other:?}"
        ))),
    }
}

fn hex_bytes(json: &Json) -> Result<Vec<u8>, RecordError> {
    let s = json
        .as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .ok_or_else(|| bad("expected a byte string"))?;
    hex::decode(s).map_err(|_| bad("a byte string is not hex"))
}

fn hash32(json: &Json) -> Result<[u8; 32], RecordError> {
    hex_bytes(json)?
        .try_into()
        .map_err(|_| bad("a hash is not 32 bytes"))
}

fn join(json: &Json) -> Result<Vec<u8>, RecordError> {
    let parts = json
        .as_array()
        .ok_or_else(|| bad("expected a list of byte strings"))?;
    let mut out = Vec::new();
    for p in parts {
        out.extend(hex_bytes(p)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blockfrost's JSON view of metadata: bytes as "0x…", text as is.
    fn as_json(m: &Metadatum) -> Json {
        match m {
            Metadatum::Int(i) => Json::from(i128::from(*i) as i64),
            Metadatum::Bytes(b) => Json::String(format!("0x{}", hex::encode(b.as_slice()))),
            Metadatum::Text(t) => Json::String(t.clone()),
            Metadatum::Array(a) => Json::Array(a.iter().map(as_json).collect()),
            Metadatum::Map(kv) => Json::Object(
                kv.iter()
                    .map(|(k, v)| match k {
                        Metadatum::Text(t) => (t.clone(), as_json(v)),
                        other => (format!("{other:?}"), as_json(v)),
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn lock_records_round_trip_and_share_specs() {
        let long = vec![7u8; 150];
        let record = LockRecord {
            jobs: vec![
                ([1; 32], SpecSource::Inline(long.clone())),
                ([2; 32], SpecSource::Url("https://example.org/".repeat(5))),
                ([3; 32], SpecSource::Inline(long)),
            ],
        };
        let md = record.to_metadata();
        let json = as_json(&md[&METADATA_LABEL]);
        assert_eq!(json["specs"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["specs"][0]["bytes"].as_array().map(Vec::len), Some(3));
        assert_eq!(LockRecord::from_json(&json), Ok(record));
    }

    #[test]
    fn submit_records_round_trip() {
        let record = SubmitRecord {
            job_id: [9; 32],
            lock_tx: [8; 32],
            result_url: "http://127.0.0.1:7000/results/".to_string() + &"ab".repeat(32),
        };
        let json = as_json(&record.to_metadata()[&METADATA_LABEL]);
        assert_eq!(SubmitRecord::from_json(&json), Ok(record));
        assert!(
            LockRecord::from_json(&json).is_err(),
            "a submit is not a lock"
        );
    }

    #[test]
    fn settle_records_name_each_fast_path_result_compactly() {
        let addressed = |n: u8| FastResult {
            job_id: [n; 32],
            result_hash: [n + 1; 32],
            result_url: format!(
                "http://provider.example/results/{}",
                hex::encode([n + 1; 32])
            ),
        };
        let elsewhere = FastResult {
            job_id: [9; 32],
            result_hash: [10; 32],
            result_url: "https://cdn.example/job-9.bin".into(),
        };
        let record = SettleRecord {
            results: vec![addressed(1), elsewhere.clone(), addressed(5)],
        };
        let json = as_json(&record.to_metadata()[&METADATA_LABEL]);
        assert_eq!(
            json["bases"].as_array().map(Vec::len),
            Some(1),
            "one base for one provider's content-addressed URLs"
        );
        for r in record.results {
            let found = ResultLocation::find(&json, &r.job_id, &r.result_hash).expect("found");
            assert_eq!((found.result_url, found.lock_tx), (r.result_url, None));
        }
        assert!(
            ResultLocation::find(&json, &[2; 32], &[3; 32]).is_err(),
            "a job the record does not name"
        );
        assert!(
            SubmitRecord::from_json(&json).is_err(),
            "a settle is not a submit"
        );
        let submit = SubmitRecord {
            job_id: [7; 32],
            lock_tx: [8; 32],
            result_url: "http://p.example/r".into(),
        };
        let json = as_json(&submit.to_metadata()[&METADATA_LABEL]);
        let found = ResultLocation::find(&json, &[7; 32], &[0; 32]).expect("found");
        assert_eq!(found.lock_tx, Some([8; 32]));
        assert!(
            ResultLocation::find(&json, &[8; 32], &[0; 32]).is_err(),
            "a submit record of another job"
        );
        let j = serde_json::json!({"v": 1, "op": "settle", "bases": [],
            "results": [[format!("0x{}", "07".repeat(32)), 0]]});
        assert!(
            ResultLocation::find(&j, &[7; 32], &[0; 32]).is_err(),
            "base index out of range"
        );
    }

    #[test]
    fn malformed_records_are_refused() {
        let j = serde_json::json!({"v": 1, "op": "lock", "specs": [], "jobs": [{"id": "0x00", "spec": 0}]});
        assert!(LockRecord::from_json(&j).is_err());
        let j = serde_json::json!({"v": 2, "op": "lock", "specs": [], "jobs": []});
        assert!(LockRecord::from_json(&j).is_err());
        let j = serde_json::json!({"v": 1, "op": "lock", "specs": [], "jobs": [{"id": format!("0x{}", "11".repeat(32)), "spec": 0}]});
        assert!(LockRecord::from_json(&j).is_err(), "index out of range");
    }
}
