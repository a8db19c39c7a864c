//! An offer: what a provider or a verifier serves, at what price, signed by the
//! key it acts with.
//!
//! The body is a JSON document whose RFC 8785 canonical bytes are signed with
//! ed25519 over `"NTXO1" ‖ body`; the on-chain datum carries the body bytes and
//! the signature (`Constr 0 [B body, B signature]`). docs/PROTOCOL.md, "The
//! market", is the prose version.

use std::collections::BTreeSet;

use pallas_primitives::PlutusData;
use serde::{Deserialize, Serialize};

use super::policy::VerifierPolicy;
use crate::client::canonical_json;
use crate::network::Network;
use crate::protocol::data::{self, as_bytes, as_constr};
use crate::protocol::{JobDatum, blake2b_224};
use crate::wallet::{PaymentAddress, Signer, verify};

/// The offer format's version.
pub const OFFER_VERSION: u64 = 1;

/// The domain tag the signed message starts with.
pub const OFFER_DOMAIN: &[u8; 5] = b"NTXO1";

/// Largest offer body readers accept, in bytes.
pub const MAX_OFFER_BYTES: usize = 4096;

/// Longest an offer may claim to live: a replayed copy of an old offer dies by then.
pub const MAX_OFFER_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// Most tasks, models per task, and listed verifier keys an offer may carry.
pub const MAX_OFFER_ITEMS: usize = 32;

/// Longest URL an offer may advertise.
pub const MAX_URL_BYTES: usize = 512;

/// What the party does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfferRole {
    /// Computes jobs and is paid by the escrow.
    Provider,
    /// Re-runs submitted jobs and signs attestations.
    Verifier,
}

impl OfferRole {
    /// Its name, as in the offer.
    pub fn as_str(self) -> &'static str {
        match self {
            OfferRole::Provider => "provider",
            OfferRole::Verifier => "verifier",
        }
    }
}

impl std::fmt::Display for OfferRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One task an offer serves, with one model, and its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskOffer {
    /// The task's name (`embed`, `generate`).
    pub task: String,
    /// The model, exactly as a job spec's `job.model` names it (the blake2b-256 of
    /// its files).
    pub model: serde_json::Value,
    /// Settlement-asset units per job.
    pub price: u64,
    /// For `generate`: units per requested new token, on top of `price`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub price_per_token: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TaskOffer {
    /// The price of a job of this task asking for `max_new_tokens` (0 for tasks
    /// that do not generate), saturating.
    pub fn price_for(&self, max_new_tokens: u64) -> u64 {
        self.price
            .saturating_add(self.price_per_token.saturating_mul(max_new_tokens))
    }
}

/// An offer's body: everything the signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// [`OFFER_VERSION`].
    pub version: u64,
    /// The escrow deployment's script hash (hex): an offer is for one deployment.
    pub deployment: String,
    /// Provider or verifier.
    pub role: OfferRole,
    /// The ed25519 key it acts with (hex): a provider's agent key (its hash is the
    /// datum's `agent`), a verifier's attestation key (what datums list).
    pub key: String,
    /// A provider's payout address (bech32): the datum's `provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout: Option<String>,
    /// The base URL of its agent (`/health`, `/results/…`, `/attestations/…`).
    pub url: String,
    /// What it serves.
    pub tasks: Vec<TaskOffer>,
    /// A provider's verifier policy: whom it lets judge its work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<VerifierPolicy>,
    /// When it was signed (POSIX ms): of two offers by one key, the later wins.
    pub issued_ms: u64,
    /// When it stops counting (POSIX ms).
    pub expires_ms: u64,
}

/// Why an offer is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// The datum is not `Constr 0 [B body, B signature]`.
    #[error("the offer datum is malformed: {0}")]
    Datum(String),
    /// The body is too large.
    #[error("the offer body is {0} bytes; at most {MAX_OFFER_BYTES} are read")]
    TooLarge(usize),
    /// The body is not an offer.
    #[error("the offer body is not a version-{OFFER_VERSION} offer: {0}")]
    Body(String),
    /// The body is not in canonical form (so its bytes are not the ones signed).
    #[error("the offer body is not in RFC 8785 canonical form")]
    NotCanonical,
    /// The signature does not verify against the advertised key.
    #[error("the offer's signature does not verify against the key it advertises")]
    BadSignature,
    /// A field is out of range or inconsistent; says which.
    #[error("the offer is invalid: {0}")]
    Invalid(String),
}

/// A hex string of exactly `N` bytes.
pub(crate) fn hex_array<const N: usize>(s: &str, what: &str) -> Result<[u8; N], OfferError> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| OfferError::Invalid(format!("{what} is not {N} bytes of hex")))
}

impl Offer {
    /// The advertised key.
    pub fn key_bytes(&self) -> Result<[u8; 32], OfferError> {
        hex_array(&self.key, "key")
    }

    /// The key's blake2b-224: the payment credential of the offer's UTxO, and for a
    /// provider the datum's `agent`.
    pub fn key_hash(&self) -> Result<[u8; 28], OfferError> {
        Ok(blake2b_224(&self.key_bytes()?))
    }

    /// The body's canonical bytes (what is signed and stored).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, OfferError> {
        let value = serde_json::to_value(self).map_err(|e| OfferError::Body(e.to_string()))?;
        canonical_json(&value).map_err(|e| OfferError::Body(e.to_string()))
    }

    /// The task entry that serves `task` with `model` (as a spec names it).
    pub fn serves(&self, task: &str, model: &serde_json::Value) -> Option<&TaskOffer> {
        self.tasks
            .iter()
            .find(|t| t.task == task && &t.model == model)
    }

    /// Checks every field for `network` and the deployment `script_hash`: sizes,
    /// version, role-specific fields, times (`issued_ms ≤ expires_ms`, a lifetime
    /// within [`MAX_OFFER_TTL_MS`]). Whether it is live is [`Offer::is_live`].
    pub fn validate(&self, network: Network, script_hash: &[u8; 28]) -> Result<(), OfferError> {
        let bad = |m: String| Err(OfferError::Invalid(m));
        if self.version != OFFER_VERSION {
            return bad(format!("version {} is not {OFFER_VERSION}", self.version));
        }
        if hex_array::<28>(&self.deployment, "deployment")? != *script_hash {
            return bad("it is for another deployment".into());
        }
        self.key_bytes()?;
        check_url(&self.url).map_err(OfferError::Invalid)?;
        if self.tasks.is_empty() || self.tasks.len() > MAX_OFFER_ITEMS {
            return bad(format!(
                "it lists {} tasks; between 1 and {MAX_OFFER_ITEMS} are read",
                self.tasks.len()
            ));
        }
        if let Some(t) = self
            .tasks
            .iter()
            .find(|t| t.task.is_empty() || t.task.len() > 32)
        {
            return bad(format!("task name {:?} is empty or too long", t.task));
        }
        if self.expires_ms <= self.issued_ms {
            return bad("it expires before it was issued".into());
        }
        if self.expires_ms - self.issued_ms > MAX_OFFER_TTL_MS {
            return bad(format!(
                "it claims to live {} s; at most {} s are allowed",
                (self.expires_ms - self.issued_ms) / 1000,
                MAX_OFFER_TTL_MS / 1000
            ));
        }
        match (self.role, &self.payout, &self.policy) {
            (OfferRole::Provider, Some(payout), Some(policy)) => {
                let address = PaymentAddress::parse(payout, network)
                    .map_err(|e| OfferError::Invalid(format!("payout: {e}")))?;
                if address.payment_key_hash().is_none() {
                    return bad("the payout address is not a key address".into());
                }
                policy.validate().map_err(OfferError::Invalid)?;
            }
            (OfferRole::Provider, _, _) => {
                return bad("a provider's offer needs a payout address and a policy".into());
            }
            (OfferRole::Verifier, None, None) => {}
            (OfferRole::Verifier, _, _) => {
                return bad("a verifier's offer has no payout address or policy".into());
            }
        }
        Ok(())
    }

    /// Whether the offer counts at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_ms
    }

    /// Whether a job with this datum would go to this provider's agent and payout.
    pub fn is_provider_of(&self, datum: &JobDatum, network: Network) -> bool {
        let Ok(agent) = self.key_hash() else {
            return false;
        };
        let payout = self
            .payout
            .as_deref()
            .and_then(|p| PaymentAddress::parse(p, network).ok())
            .map(|p| crate::protocol::Address::from(p.as_pallas()));
        datum.agent == agent && payout.as_ref() == Some(&datum.provider)
    }
}

/// An `http` or `https` URL of bounded length, without credentials.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!("the URL is longer than {MAX_URL_BYTES} bytes"));
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("the URL {url:?} is not http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "the URL {url:?} has no host, a user part, or spaces"
        ));
    }
    Ok(())
}

/// An offer with its signature, as stored in the datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedOffer {
    /// The offer.
    pub offer: Offer,
    /// Its canonical bytes (what was signed).
    pub body: Vec<u8>,
    /// The ed25519 signature by `offer.key` over `"NTXO1" ‖ body`.
    pub signature: [u8; 64],
}

/// The message an offer's key signs.
pub fn offer_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(OFFER_DOMAIN.len() + body.len());
    msg.extend_from_slice(OFFER_DOMAIN);
    msg.extend_from_slice(body);
    msg
}

impl SignedOffer {
    /// Signs `offer` with `key`, which must be the key the offer advertises.
    pub fn sign(offer: Offer, key: &dyn Signer) -> Result<SignedOffer, OfferError> {
        if offer.key_bytes()? != key.public_key() {
            return Err(OfferError::Invalid(
                "the signing key is not the key the offer advertises".into(),
            ));
        }
        let body = offer.canonical_bytes()?;
        if body.len() > MAX_OFFER_BYTES {
            return Err(OfferError::TooLarge(body.len()));
        }
        let signature = key.sign(&offer_message(&body));
        Ok(SignedOffer {
            offer,
            body,
            signature,
        })
    }

    /// The inline datum: `Constr 0 [B body, B signature]`.
    pub fn to_datum(&self) -> PlutusData {
        data::constr(
            0,
            vec![data::bytes(&self.body), data::bytes(&self.signature)],
        )
    }

    /// Reads a datum: shape, size, canonical body, signature by the advertised key.
    /// Field checks are [`Offer::validate`]'s.
    pub fn from_datum(datum: &PlutusData) -> Result<SignedOffer, OfferError> {
        let (index, fields) =
            as_constr(datum, "offer", 2).map_err(|e| OfferError::Datum(e.to_string()))?;
        if index != 0 {
            return Err(OfferError::Datum(format!("constructor {index}, not 0")));
        }
        let body = as_bytes(&fields[0], "body").map_err(|e| OfferError::Datum(e.to_string()))?;
        let signature: [u8; 64] = as_bytes(&fields[1], "signature")
            .map_err(|e| OfferError::Datum(e.to_string()))?
            .try_into()
            .map_err(|_| OfferError::Datum("the signature is not 64 bytes".into()))?;
        if body.len() > MAX_OFFER_BYTES {
            return Err(OfferError::TooLarge(body.len()));
        }
        let offer: Offer =
            serde_json::from_slice(body).map_err(|e| OfferError::Body(e.to_string()))?;
        if offer.canonical_bytes()? != body {
            return Err(OfferError::NotCanonical);
        }
        if !verify(&offer.key_bytes()?, &offer_message(body), &signature) {
            return Err(OfferError::BadSignature);
        }
        Ok(SignedOffer {
            offer,
            body: body.to_vec(),
            signature,
        })
    }
}

/// The keys of a set of verifier offers.
pub fn verifier_keys<'a>(offers: impl IntoIterator<Item = &'a Offer>) -> BTreeSet<[u8; 32]> {
    offers
        .into_iter()
        .filter(|o| o.role == OfferRole::Verifier)
        .filter_map(|o| o.key_bytes().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::market::policy::AcceptVerifiers;
    use crate::wallet::SigningKey;

    const SCRIPT: [u8; 28] = [7; 28];

    fn verifier_offer(key: &SigningKey) -> Offer {
        Offer {
            version: OFFER_VERSION,
            deployment: hex::encode(SCRIPT),
            role: OfferRole::Verifier,
            key: hex::encode(key.public_key()),
            payout: None,
            url: "http://verifier.example:7100".into(),
            tasks: vec![TaskOffer {
                task: "embed".into(),
                model: serde_json::json!({"weights": "00"}),
                price: 0,
                price_per_token: 0,
            }],
            policy: None,
            issued_ms: 1_000,
            expires_ms: 3_600_000,
        }
    }

    #[test]
    fn a_signed_offer_round_trips_through_its_datum() {
        let key = SigningKey::from_normal_bytes(&[1; 32]);
        let signed = SignedOffer::sign(verifier_offer(&key), &key).unwrap();
        let back = SignedOffer::from_datum(&signed.to_datum()).unwrap();
        assert_eq!(back, signed);
        back.offer.validate(Network::Devnet, &SCRIPT).unwrap();
    }

    #[test]
    fn a_changed_body_or_another_key_fails_the_signature() {
        let key = SigningKey::from_normal_bytes(&[1; 32]);
        let signed = SignedOffer::sign(verifier_offer(&key), &key).unwrap();
        // Cheaper price, same signature.
        let mut forged = signed.offer.clone();
        forged.url = "http://attacker.example".into();
        let body = forged.canonical_bytes().unwrap();
        let datum = data::constr(0, vec![data::bytes(&body), data::bytes(&signed.signature)]);
        assert_eq!(
            SignedOffer::from_datum(&datum),
            Err(OfferError::BadSignature)
        );
        // Someone else's key advertised, signed by the forger.
        let forger = SigningKey::from_normal_bytes(&[2; 32]);
        assert!(SignedOffer::sign(verifier_offer(&key), &forger).is_err());
        let body = verifier_offer(&key).canonical_bytes().unwrap();
        let sig = forger.sign(&offer_message(&body));
        let datum = data::constr(0, vec![data::bytes(&body), data::bytes(&sig)]);
        assert_eq!(
            SignedOffer::from_datum(&datum),
            Err(OfferError::BadSignature)
        );
    }

    #[test]
    fn a_non_canonical_body_is_refused() {
        let key = SigningKey::from_normal_bytes(&[1; 32]);
        let offer = verifier_offer(&key);
        let pretty = serde_json::to_vec_pretty(&offer).unwrap();
        let sig = key.sign(&offer_message(&pretty));
        let datum = data::constr(0, vec![data::bytes(&pretty), data::bytes(&sig)]);
        assert_eq!(
            SignedOffer::from_datum(&datum),
            Err(OfferError::NotCanonical)
        );
    }

    #[test]
    fn junk_datums_are_errors_not_panics() {
        for datum in [
            data::int(5),
            data::constr(0, vec![]),
            data::constr(1, vec![data::bytes(b"{}"), data::bytes(&[0; 64])]),
            data::constr(0, vec![data::bytes(b"{}"), data::bytes(&[0; 63])]),
            data::constr(0, vec![data::bytes(b"not json"), data::bytes(&[0; 64])]),
            data::constr(0, vec![data::bytes(&[b' '; 5000]), data::bytes(&[0; 64])]),
        ] {
            assert!(SignedOffer::from_datum(&datum).is_err(), "{datum:?}");
        }
    }

    #[test]
    fn validate_checks_deployment_times_url_and_role_fields() {
        let key = SigningKey::from_normal_bytes(&[1; 32]);
        let ok = verifier_offer(&key);
        type Edit = Box<dyn Fn(&mut Offer)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "deployment",
                Box::new(|o| o.deployment = hex::encode([8u8; 28])),
            ),
            ("version", Box::new(|o| o.version = 2)),
            ("expiry", Box::new(|o| o.expires_ms = o.issued_ms)),
            (
                "ttl",
                Box::new(|o| o.expires_ms = o.issued_ms + MAX_OFFER_TTL_MS + 1),
            ),
            (
                "url scheme",
                Box::new(|o| o.url = "file:///etc/passwd".into()),
            ),
            ("url user", Box::new(|o| o.url = "http://u@host".into())),
            ("no tasks", Box::new(|o| o.tasks.clear())),
            ("verifier payout", Box::new(|o| o.payout = Some("x".into()))),
            (
                "provider without policy",
                Box::new(|o| o.role = OfferRole::Provider),
            ),
        ];
        for (what, change) in cases {
            let mut o = ok.clone();
            change(&mut o);
            assert!(o.validate(Network::Devnet, &SCRIPT).is_err(), "{what}");
        }
        let mut provider = ok.clone();
        provider.role = OfferRole::Provider;
        provider.payout =
            Some(PaymentAddress::enterprise(Network::Devnet, key.key_hash()).to_bech32());
        provider.policy = Some(VerifierPolicy {
            accept: AcceptVerifiers::Listed(vec![hex::encode([3u8; 32])]),
            min_threshold: 1,
            min_judge_window_ms: 60_000,
        });
        provider.validate(Network::Devnet, &SCRIPT).unwrap();
    }

    #[test]
    fn generate_prices_grow_with_the_tokens_asked_for() {
        let t = TaskOffer {
            task: "generate".into(),
            model: serde_json::json!("ab"),
            price: 1_000,
            price_per_token: 10,
        };
        assert_eq!(t.price_for(128), 2_280);
        assert_eq!(t.price_for(0), 1_000);
        let huge = TaskOffer {
            price_per_token: u64::MAX,
            ..t
        };
        assert_eq!(huge.price_for(2), u64::MAX);
    }
}
