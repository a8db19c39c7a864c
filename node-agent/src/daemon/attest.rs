//! Attestations as agents exchange them over HTTP, and their collection.
//!
//! JSON, one object per attestation (all byte strings hex):
//!
//! ```json
//! {"job_id": "<32 bytes>", "result_hash": "<32 bytes>", "script_hash": "<28 bytes>",
//!  "verdict": "accept", "verifier_key": "<32 bytes>", "signature": "<64 bytes>"}
//! ```
//!
//! `signature` is the verifier's ed25519 signature of the 98-byte attestation message
//! (`ntx_offchain::protocol::attestation_message`). `GET {url}/attestations/{job_id}`
//! answers a JSON array of them (empty when none); `POST {url}/attestations` takes one.
//! Receivers check every signature before using it: one bad signature in a settlement
//! fails the whole transaction.

use ntx_offchain::fetch::{FetchKind, PeerFetcher};
use ntx_offchain::protocol::{
    Attestation, Verdict, attestation_message, sign_attestation, verify_attestation,
};
use ntx_offchain::wallet::Signer;
use serde::{Deserialize, Serialize};

/// A signed verdict on one job's result, by one verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AttestationJson", into = "AttestationJson")]
pub struct SignedAttestation {
    /// The job.
    pub job_id: [u8; 32],
    /// The on-chain result hash it judges.
    pub result_hash: [u8; 32],
    /// The deployment's script hash (binds the signature to one deployment).
    pub script_hash: [u8; 28],
    /// Accept or Reject.
    pub verdict: Verdict,
    /// The verifier's ed25519 public key (as listed in the datum).
    pub verifier_key: [u8; 32],
    /// Signature of the 98-byte message.
    pub signature: [u8; 64],
}

impl SignedAttestation {
    /// Signs `verdict` on `result_hash` for `job_id` with `key`.
    pub fn sign(
        key: &dyn Signer,
        verdict: Verdict,
        script_hash: [u8; 28],
        job_id: [u8; 32],
        result_hash: [u8; 32],
    ) -> SignedAttestation {
        let message = attestation_message(verdict, &script_hash, &job_id, &result_hash);
        SignedAttestation {
            job_id,
            result_hash,
            script_hash,
            verdict,
            verifier_key: key.public_key(),
            signature: sign_attestation(key, 0, &message).signature,
        }
    }

    /// Whether the signature is the verifier key's over this attestation's message.
    pub fn is_valid(&self) -> bool {
        let message = attestation_message(
            self.verdict,
            &self.script_hash,
            &self.job_id,
            &self.result_hash,
        );
        verify_attestation(&self.verifier_key, &message, &self.signature)
    }

    /// The redeemer form, for a settlement of a job whose datum lists this
    /// verifier at `verifier_index`.
    pub fn to_redeemer(&self, verifier_index: u32) -> Attestation {
        Attestation {
            verifier_index,
            signature: self.signature,
        }
    }
}

/// Which attestations count for a settlement of one submitted job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Valid Accept attestations, by verifier index (ascending, distinct).
    pub accepts: Vec<(u32, SignedAttestation)>,
    /// Valid Reject attestations, by verifier index (ascending, distinct).
    pub rejects: Vec<(u32, SignedAttestation)>,
}

impl Tally {
    /// Sorts `attestations` into accepts and rejects that a settlement of the job can
    /// use: the right deployment, job and result, a verifier the datum lists, and a
    /// valid signature. Anything else is dropped.
    pub fn of(
        attestations: &[SignedAttestation],
        script_hash: &[u8; 28],
        job_id: &[u8; 32],
        result_hash: &[u8; 32],
        verifiers: &[[u8; 32]],
    ) -> Tally {
        let mut tally = Tally::default();
        for a in attestations {
            if a.script_hash != *script_hash || a.job_id != *job_id || a.result_hash != *result_hash
            {
                continue;
            }
            let Some(index) = verifiers.iter().position(|k| *k == a.verifier_key) else {
                continue;
            };
            if !a.is_valid() {
                continue;
            }
            let list = match a.verdict {
                Verdict::Accept => &mut tally.accepts,
                Verdict::Reject => &mut tally.rejects,
            };
            let index = index as u32;
            if !list.iter().any(|(i, _)| *i == index) {
                list.push((index, *a));
            }
        }
        tally.accepts.sort_by_key(|(i, _)| *i);
        tally.rejects.sort_by_key(|(i, _)| *i);
        tally
    }

    /// The first `threshold` accepts as redeemer attestations, when there are enough.
    pub fn claim(&self, threshold: usize) -> Option<Vec<Attestation>> {
        (self.accepts.len() >= threshold).then(|| {
            self.accepts[..threshold]
                .iter()
                .map(|(i, a)| a.to_redeemer(*i))
                .collect()
        })
    }

    /// The first `threshold` rejects as redeemer attestations, when there are enough.
    pub fn reject(&self, threshold: usize) -> Option<Vec<Attestation>> {
        (self.rejects.len() >= threshold).then(|| {
            self.rejects[..threshold]
                .iter()
                .map(|(i, a)| a.to_redeemer(*i))
                .collect()
        })
    }
}

/// Fetches `GET {url}/attestations/{job_id}` from every URL at once, each within
/// its attestations limit and `fetcher`'s address policy; unreachable agents and
/// unreadable answers are skipped (logged), so one offline or slow verifier never
/// blocks the others. Signatures are not checked here: use [`Tally::of`].
pub async fn collect_attestations(
    fetcher: &PeerFetcher,
    urls: &[String],
    job_id: &[u8; 32],
) -> Vec<SignedAttestation> {
    let job = hex::encode(job_id);
    let mut requests = tokio::task::JoinSet::new();
    for base in urls {
        let url = format!("{}/attestations/{job}", base.trim_end_matches('/'));
        let fetcher = fetcher.clone();
        requests.spawn(async move {
            match fetcher.get(&url, FetchKind::Attestations).await {
                Ok(body) => match serde_json::from_slice::<Vec<SignedAttestation>>(&body) {
                    Ok(list) => list,
                    Err(e) => {
                        tracing::debug!(%url, error = %e, "unreadable attestations");
                        Vec::new()
                    }
                },
                Err(e) => {
                    tracing::debug!(%url, error = %e, "attestations unavailable");
                    Vec::new()
                }
            }
        });
    }
    let mut out = Vec::new();
    while let Some(answer) = requests.join_next().await {
        if let Ok(list) = answer {
            out.extend(list);
        }
    }
    out
}

/// Wire form of [`SignedAttestation`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestationJson {
    job_id: String,
    result_hash: String,
    script_hash: String,
    verdict: String,
    verifier_key: String,
    signature: String,
}

/// `s` as exactly `N` bytes of hex, or why not (naming `field`).
pub(super) fn hex_array<const N: usize>(field: &str, s: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(s).map_err(|e| format!("{field} is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{field} has {} bytes, expected {N}", b.len()))
}

impl TryFrom<AttestationJson> for SignedAttestation {
    type Error = String;
    fn try_from(j: AttestationJson) -> Result<Self, String> {
        let verdict = match j.verdict.as_str() {
            "accept" => Verdict::Accept,
            "reject" => Verdict::Reject,
            other => return Err(format!("verdict {other:?} is neither accept nor reject")),
        };
        Ok(SignedAttestation {
            job_id: hex_array("job_id", &j.job_id)?,
            result_hash: hex_array("result_hash", &j.result_hash)?,
            script_hash: hex_array("script_hash", &j.script_hash)?,
            verdict,
            verifier_key: hex_array("verifier_key", &j.verifier_key)?,
            signature: hex_array("signature", &j.signature)?,
        })
    }
}

impl From<SignedAttestation> for AttestationJson {
    fn from(a: SignedAttestation) -> Self {
        AttestationJson {
            job_id: hex::encode(a.job_id),
            result_hash: hex::encode(a.result_hash),
            script_hash: hex::encode(a.script_hash),
            verdict: match a.verdict {
                Verdict::Accept => "accept".into(),
                Verdict::Reject => "reject".into(),
            },
            verifier_key: hex::encode(a.verifier_key),
            signature: hex::encode(a.signature),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ntx_offchain::wallet::SigningKey;

    #[test]
    fn json_round_trip_and_tally_drops_what_a_settlement_cannot_use() {
        let keys: Vec<SigningKey> = (1..=3u8)
            .map(|i| SigningKey::from_normal_bytes(&[i; 32]))
            .collect();
        let mut listed: Vec<[u8; 32]> = keys.iter().map(|k| k.public_key()).collect();
        listed.sort();
        let (sh, job, res) = ([1u8; 28], [2u8; 32], [3u8; 32]);
        let a = SignedAttestation::sign(&keys[0], Verdict::Accept, sh, job, res);
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("\"verdict\":\"accept\""), "{json}");
        let back: SignedAttestation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert!(back.is_valid());

        let b = SignedAttestation::sign(&keys[1], Verdict::Accept, sh, job, res);
        let r = SignedAttestation::sign(&keys[2], Verdict::Reject, sh, job, res);
        let mut forged = SignedAttestation::sign(&keys[2], Verdict::Accept, sh, job, res);
        forged.signature[0] ^= 1;
        let other_result = SignedAttestation::sign(&keys[2], Verdict::Accept, sh, job, [9; 32]);
        let outsider = SignedAttestation::sign(
            &SigningKey::from_normal_bytes(&[9; 32]),
            Verdict::Accept,
            sh,
            job,
            res,
        );
        let t = Tally::of(
            &[a, b, a, r, forged, other_result, outsider],
            &sh,
            &job,
            &res,
            &listed,
        );
        assert_eq!(
            t.accepts.len(),
            2,
            "duplicates, forgeries and outsiders dropped"
        );
        assert_eq!(t.rejects.len(), 1);
        let claim = t.claim(2).unwrap();
        assert!(claim[0].verifier_index < claim[1].verifier_index);
        assert!(t.claim(3).is_none());
        assert!(t.reject(2).is_none());

        let bad = json.replace("accept", "maybe");
        assert!(serde_json::from_str::<SignedAttestation>(&bad).is_err());
    }
}
