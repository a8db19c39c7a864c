//! The fast path between agents: a provider announces its result to the job's
//! verifiers (`POST {verifier_url}/results`) the moment it is computed, instead
//! of waiting for them to see a Submit on chain.
//!
//! JSON, all byte strings hex:
//!
//! ```json
//! {"job_id": "<32 bytes>", "result_hash": "<32 bytes>", "script_hash": "<28 bytes>",
//!  "result_url": "https://…", "agent_key": "<32 bytes>", "signature": "<64 bytes>"}
//! ```
//!
//! `signature` is the agent key's over `ntx_offchain::protocol::announcement_message`;
//! the key must hash to the job datum's `agent`. Verifiers keep announcements only
//! for locked escrows that list them, one per job, and judge them as they judge a
//! Submit: bytes from the URL, hash against the announced one, recomputation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ntx_offchain::protocol::{
    announcement_message, blake2b_224, sign_announcement, verify_announcement,
};
use ntx_offchain::wallet::Signer;
use serde::{Deserialize, Serialize};

use super::attest::hex_array;

/// The longest result URL taken in an announcement.
pub const MAX_RESULT_URL: usize = 1_024;

/// A provider's signed claim that `result_hash` is its result for `job_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AnnouncementJson", into = "AnnouncementJson")]
pub struct SignedResult {
    /// The job.
    pub job_id: [u8; 32],
    /// blake2b-256 of the result bytes.
    pub result_hash: [u8; 32],
    /// The deployment's script hash.
    pub script_hash: [u8; 28],
    /// Where the bytes are served.
    pub result_url: String,
    /// The agent's public key (its hash is the datum's `agent`).
    pub agent_key: [u8; 32],
    /// The agent's signature of the announcement message.
    pub signature: [u8; 64],
}

impl SignedResult {
    /// Signs the announcement of `result_hash`, served at `result_url`, with the
    /// agent's key.
    pub fn sign(
        key: &dyn Signer,
        script_hash: [u8; 28],
        job_id: [u8; 32],
        result_hash: [u8; 32],
        result_url: String,
    ) -> SignedResult {
        let message = announcement_message(&script_hash, &job_id, &result_hash, &result_url);
        SignedResult {
            job_id,
            result_hash,
            script_hash,
            signature: sign_announcement(key, &message),
            agent_key: key.public_key(),
            result_url,
        }
    }

    /// Whether it is signed by the key whose hash is `agent` (the datum's).
    pub fn is_signed_by_agent(&self, agent: &[u8; 28]) -> bool {
        let message = announcement_message(
            &self.script_hash,
            &self.job_id,
            &self.result_hash,
            &self.result_url,
        );
        blake2b_224(&self.agent_key) == *agent
            && verify_announcement(&self.agent_key, &message, &self.signature)
    }
}

/// Why a verifier turns an announcement away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No locked escrow listing this verifier has the job (yet: the next poll
    /// may see it).
    UnknownJob,
    /// The signature is not the datum's agent's.
    NotTheAgent,
    /// Another result was announced for the job first.
    AnotherResult,
}

/// What the verifier's loop and its HTTP route share: the locked escrows that
/// list this verifier (job id → the datum's agent), refreshed every poll, and
/// the announcements taken for them.
#[derive(Debug, Clone, Default)]
pub struct Announcements {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    locked: HashMap<[u8; 32], [u8; 28]>,
    taken: HashMap<[u8; 32], SignedResult>,
}

impl Announcements {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The locked escrows listing this verifier, as the last poll read them;
    /// announcements of jobs no longer among them are dropped.
    pub fn set_locked(&self, locked: HashMap<[u8; 32], [u8; 28]>) {
        let mut inner = self.lock();
        inner.taken.retain(|id, _| locked.contains_key(id));
        inner.locked = locked;
    }

    /// Takes `a` if it is the agent's announcement for a locked job that lists
    /// this verifier; the first one per job stands (the same one again is fine).
    pub fn offer(&self, a: SignedResult) -> Result<(), Refusal> {
        let mut inner = self.lock();
        let agent = inner.locked.get(&a.job_id).ok_or(Refusal::UnknownJob)?;
        if !a.is_signed_by_agent(agent) {
            return Err(Refusal::NotTheAgent);
        }
        match inner.taken.get(&a.job_id) {
            Some(first) if *first != a => Err(Refusal::AnotherResult),
            Some(_) => Ok(()),
            None => {
                inner.taken.insert(a.job_id, a);
                Ok(())
            }
        }
    }

    /// The announcement taken for `job_id`, if any.
    pub fn get(&self, job_id: &[u8; 32]) -> Option<SignedResult> {
        self.lock().taken.get(job_id).cloned()
    }
}

#[derive(Serialize, Deserialize)]
struct AnnouncementJson {
    job_id: String,
    result_hash: String,
    script_hash: String,
    result_url: String,
    agent_key: String,
    signature: String,
}

impl TryFrom<AnnouncementJson> for SignedResult {
    type Error = String;
    fn try_from(j: AnnouncementJson) -> Result<Self, String> {
        if j.result_url.len() > MAX_RESULT_URL {
            return Err(format!(
                "result_url has {} bytes, more than {MAX_RESULT_URL}",
                j.result_url.len()
            ));
        }
        Ok(SignedResult {
            job_id: hex_array("job_id", &j.job_id)?,
            result_hash: hex_array("result_hash", &j.result_hash)?,
            script_hash: hex_array("script_hash", &j.script_hash)?,
            agent_key: hex_array("agent_key", &j.agent_key)?,
            signature: hex_array("signature", &j.signature)?,
            result_url: j.result_url,
        })
    }
}

impl From<SignedResult> for AnnouncementJson {
    fn from(a: SignedResult) -> Self {
        AnnouncementJson {
            job_id: hex::encode(a.job_id),
            result_hash: hex::encode(a.result_hash),
            script_hash: hex::encode(a.script_hash),
            result_url: a.result_url,
            agent_key: hex::encode(a.agent_key),
            signature: hex::encode(a.signature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ntx_offchain::wallet::SigningKey;

    fn announce(key: &SigningKey, hash: u8) -> SignedResult {
        SignedResult::sign(key, [1; 28], [2; 32], [hash; 32], "http://p/r".into())
    }

    #[test]
    fn only_the_agents_first_announcement_of_a_locked_job_is_taken() {
        let agent = SigningKey::from_normal_bytes(&[5; 32]);
        let stranger = SigningKey::from_normal_bytes(&[6; 32]);
        let book = Announcements::default();
        assert_eq!(book.offer(announce(&agent, 3)), Err(Refusal::UnknownJob));
        book.set_locked(HashMap::from([([2; 32], agent.key_hash())]));
        assert_eq!(
            book.offer(announce(&stranger, 3)),
            Err(Refusal::NotTheAgent)
        );
        let mut forged = announce(&agent, 3);
        forged.result_hash = [4; 32];
        assert_eq!(book.offer(forged), Err(Refusal::NotTheAgent));
        assert_eq!(book.offer(announce(&agent, 3)), Ok(()));
        assert_eq!(book.offer(announce(&agent, 3)), Ok(()), "the same again");
        assert_eq!(book.offer(announce(&agent, 4)), Err(Refusal::AnotherResult));
        assert_eq!(book.get(&[2; 32]).map(|a| a.result_hash), Some([3; 32]));
        book.set_locked(HashMap::new());
        assert_eq!(book.get(&[2; 32]), None, "dropped once no longer locked");
    }

    #[test]
    fn an_oversized_url_is_refused_when_read() {
        let agent = SigningKey::from_normal_bytes(&[5; 32]);
        let mut a = announce(&agent, 3);
        a.result_url = "x".repeat(MAX_RESULT_URL + 1);
        let json = serde_json::to_string(&a).expect("json");
        assert!(serde_json::from_str::<SignedResult>(&json).is_err());
    }
}
