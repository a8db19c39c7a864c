//! Job specs: the document a requester writes, its canonical bytes (what
//! `spec_hash` covers) and where the verifiers serve their attestations.
//!
//! Canonical form: RFC 8785 (JSON Canonicalization Scheme) restricted to what
//! needs no floating-point formatting: object keys sorted, no whitespace,
//! strings escaped as JCS says, and numbers that are integers only (a spec
//! gives fractional settings in integer units, e.g. `temperature_milli`).
//! Keys must be ASCII, so that sorting by bytes equals JCS's UTF-16 order.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::protocol::blake2b_256;

/// The only spec document version this build reads.
pub const SPEC_VERSION: u64 = 1;

/// Why a job spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Not JSON at all.
    #[error("the job spec is not JSON: {0}")]
    Syntax(String),
    /// JSON the canonical form cannot carry.
    #[error("the job spec cannot be canonicalised: {0}")]
    NotCanonical(String),
    /// Valid JSON with the wrong shape.
    #[error("the job spec is malformed: {0}")]
    Shape(String),
}

/// The RFC 8785 canonical bytes of `value` (integers only; ASCII keys).
pub fn canonical_json(value: &Json) -> Result<Vec<u8>, SpecError> {
    let mut out = Vec::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Json, out: &mut Vec<u8>) -> Result<(), SpecError> {
    match value {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Number(n) => {
            let Some(i) = n.as_i64() else {
                return Err(SpecError::NotCanonical(if n.as_u64().is_some() {
                    format!(
                        "the integer {n} is beyond ±2^53, which JSON numbers cannot carry exactly: write it as a string"
                    )
                } else {
                    format!(
                        "the number {n} is not an integer: give fractional settings in integer units (e.g. thousandths)"
                    )
                }));
            };
            if i.unsigned_abs() > 1 << 53 {
                return Err(SpecError::NotCanonical(format!(
                    "the integer {n} is beyond ±2^53, which JSON numbers cannot carry exactly: write it as a string"
                )));
            }
            out.extend_from_slice(i.to_string().as_bytes());
        }
        Json::String(s) => write_string(s, out),
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            if let Some(k) = keys.iter().find(|k| !k.is_ascii()) {
                return Err(SpecError::NotCanonical(format!(
                    "the key {k:?} is not ASCII: use ASCII keys"
                )));
            }
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_canonical(&map[key], out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Where one verifier serves its attestations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierEndpoint {
    /// The verifier's ed25519 public key, hex (as in the datum).
    pub key: String,
    /// Base URL of its agent: attestations at `{url}/attestations/{job_id}`.
    pub url: String,
}

/// A job spec document (version 1): the task the agents run, and where the
/// verifiers publish their attestations.
///
/// ```json
/// {"version": 1,
///  "job": {"task": "embed", "model": {...}, "pipeline": {...}, "inputs": [...]},
///  "verifiers": [{"key": "<hex 32 bytes>", "url": "http://verifier-1:7000"}]}
/// ```
/// `job` is opaque here; the node agent parses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpecDoc {
    /// Always [`SPEC_VERSION`].
    pub version: u64,
    /// The task and its parameters.
    pub job: Json,
    /// The verifiers' attestation endpoints.
    #[serde(default)]
    pub verifiers: Vec<VerifierEndpoint>,
}

impl JobSpecDoc {
    /// Reads a spec from JSON text (any formatting), refusing other versions.
    pub fn parse(bytes: &[u8]) -> Result<JobSpecDoc, SpecError> {
        let json: Json =
            serde_json::from_slice(bytes).map_err(|e| SpecError::Syntax(e.to_string()))?;
        canonical_json(&json)?;
        let doc: JobSpecDoc =
            serde_json::from_value(json).map_err(|e| SpecError::Shape(e.to_string()))?;
        if doc.version != SPEC_VERSION {
            return Err(SpecError::Shape(format!(
                "version {} is not supported: this build reads version {SPEC_VERSION}",
                doc.version
            )));
        }
        if !doc.job.is_object() {
            return Err(SpecError::Shape(
                "`job` must be an object naming its `task`".into(),
            ));
        }
        for v in &doc.verifiers {
            let ok = hex::decode(&v.key).is_ok_and(|k| k.len() == 32);
            if !ok {
                return Err(SpecError::Shape(format!(
                    "verifier key {:?} is not 32 bytes of hex",
                    v.key
                )));
            }
        }
        Ok(doc)
    }

    /// The canonical bytes: what the lock record carries and `spec_hash` covers.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, SpecError> {
        let json = serde_json::to_value(self).map_err(|e| SpecError::Shape(e.to_string()))?;
        canonical_json(&json)
    }

    /// `spec_hash`: blake2b-256 of the canonical bytes.
    pub fn hash(&self) -> Result<[u8; 32], SpecError> {
        Ok(blake2b_256(&self.canonical_bytes()?))
    }

    /// The verifiers' public keys, in the order listed.
    pub fn verifier_keys(&self) -> Vec<[u8; 32]> {
        self.verifiers
            .iter()
            .filter_map(|v| hex::decode(&v.key).ok()?.try_into().ok())
            .collect()
    }

    /// The attestation URL the spec lists for `key`, if any.
    pub fn verifier_url(&self, key: &[u8; 32]) -> Option<&str> {
        let key = hex::encode(key);
        self.verifiers
            .iter()
            .find(|v| v.key.eq_ignore_ascii_case(&key))
            .map(|v| v.url.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_and_drops_whitespace() {
        let v: Json = serde_json::from_str(r#"{ "b": [1, 2, {"z": null, "a": true}], "a": "x" }"#)
            .expect("json");
        let bytes = canonical_json(&v).expect("canonical");
        assert_eq!(bytes, br#"{"a":"x","b":[1,2,{"a":true,"z":null}]}"#);
    }

    #[test]
    fn canonical_escapes_like_jcs() {
        let v = json!({"s": "tab\there \"q\" \\ \u{1} é €"});
        let bytes = canonical_json(&v).expect("canonical");
        assert_eq!(
            String::from_utf8(bytes).expect("utf8"),
            "{\"s\":\"tab\\there \\\"q\\\" \\\\ \\u0001 é €\"}"
        );
    }

    #[test]
    fn fractions_and_huge_integers_are_refused() {
        assert!(canonical_json(&json!({"t": 0.7})).is_err());
        assert!(canonical_json(&json!({"n": 1u64 << 60})).is_err());
        assert!(canonical_json(&json!({"n": -(1i64 << 53)})).is_ok());
    }

    #[test]
    fn the_hash_ignores_formatting() {
        let a = JobSpecDoc::parse(br#"{"version":1,"job":{"task":"embed","inputs":["hi"]}}"#)
            .expect("parses");
        let b = JobSpecDoc::parse(
            b"{\n  \"job\": {\"inputs\": [\"hi\"], \"task\": \"embed\"},\n  \"version\": 1\n}",
        )
        .expect("parses");
        assert_eq!(a.hash().expect("hash"), b.hash().expect("hash"));
        let c = JobSpecDoc::parse(br#"{"version":1,"job":{"task":"embed","inputs":["ho"]}}"#)
            .expect("parses");
        assert_ne!(a.hash().expect("hash"), c.hash().expect("hash"));
    }

    #[test]
    fn bad_specs_say_why() {
        let e = JobSpecDoc::parse(br#"{"version":2,"job":{}}"#).expect_err("version");
        assert!(e.to_string().contains("version 2"));
        let e = JobSpecDoc::parse(br#"{"version":1,"job":{},"extra":1}"#).expect_err("field");
        assert!(e.to_string().contains("extra"));
        let e =
            JobSpecDoc::parse(br#"{"version":1,"job":{},"verifiers":[{"key":"00","url":"x"}]}"#)
                .expect_err("key");
        assert!(e.to_string().contains("32 bytes"));
        assert!(JobSpecDoc::parse(b"not json").is_err());
    }
}
