//! A requester's choice: a provider whose offer serves the task within the
//! price, and verifiers that serve the same model and that the provider's
//! policy accepts, with a threshold and judging window the policy allows.

use super::offer::{OfferRole, TaskOffer};
use super::registry::{Listing, LiveOffer};

/// What the requester wants.
#[derive(Debug, Clone, Default)]
pub struct Want {
    /// The task (`embed`, `generate`).
    pub task: String,
    /// Only models one of whose file hashes is this (hex).
    pub model: Option<String>,
    /// The highest price accepted, in settlement-asset units.
    pub max_price: Option<u64>,
    /// For `generate`: the tokens asked for (prices grow with them).
    pub max_new_tokens: u64,
    /// Only this provider: its agent key hash (hex), its offer key (hex), or its
    /// payout address (bech32).
    pub provider: Option<String>,
    /// How many verifiers to name (at least the provider's minimum threshold).
    pub verifiers: usize,
}

/// The provider and verifiers chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The provider's offer.
    pub provider: LiveOffer,
    /// Its task entry (the model the spec names).
    pub task: TaskOffer,
    /// What the job costs under that entry.
    pub price: u64,
    /// The verifiers' offers.
    pub verifiers: Vec<LiveOffer>,
    /// Attestations needed.
    pub threshold: u32,
    /// The provider's minimum `settle_by − submit_by`, ms.
    pub min_judge_window_ms: u64,
}

/// Why no provider fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoMatch {
    /// No live provider offer serves the task (and model, within the price).
    #[error("no live provider offer serves {0}: see `ntx market list`")]
    NoProvider(String),
    /// Providers serve it, but none has enough verifiers it accepts that serve the model.
    #[error(
        "providers serve {what}, but none has enough live verifiers that its policy accepts and that check the same model (best: {have} of {need})"
    )]
    NotEnoughVerifiers {
        /// The task and model.
        what: String,
        /// Verifiers found for the best provider.
        have: usize,
        /// Its minimum threshold.
        need: usize,
    },
}

/// Whether any string in `model` (a spec's `job.model`) is `hash`.
pub fn model_has(model: &serde_json::Value, hash: &str) -> bool {
    match model {
        serde_json::Value::String(s) => s.eq_ignore_ascii_case(hash),
        serde_json::Value::Array(items) => items.iter().any(|m| model_has(m, hash)),
        serde_json::Value::Object(map) => map.values().any(|m| model_has(m, hash)),
        _ => false,
    }
}

fn names_provider(p: &LiveOffer, who: &str) -> bool {
    let who = who.trim();
    p.offer.key.eq_ignore_ascii_case(who)
        || p.offer.payout.as_deref() == Some(who)
        || p.offer
            .key_hash()
            .is_ok_and(|h| hex::encode(h).eq_ignore_ascii_case(who))
}

/// Picks the cheapest provider (then the earliest offer) that fits `want` and has
/// enough verifiers, and its verifiers (those with the longest-lived offers first).
pub fn choose(listing: &Listing, want: &Want) -> Result<Choice, NoMatch> {
    let what = match &want.model {
        Some(m) => format!("task {} with model {m}", want.task),
        None => format!("task {}", want.task),
    };
    let mut candidates: Vec<(u64, &LiveOffer, &TaskOffer)> = listing
        .of_role(OfferRole::Provider)
        .filter(|p| {
            want.provider
                .as_deref()
                .is_none_or(|who| names_provider(p, who))
        })
        .flat_map(|p| p.offer.tasks.iter().map(move |t| (p, t)))
        .filter(|(_, t)| t.task == want.task)
        .filter(|(_, t)| want.model.as_deref().is_none_or(|m| model_has(&t.model, m)))
        .map(|(p, t)| (t.price_for(want.max_new_tokens), p, t))
        .filter(|(price, ..)| want.max_price.is_none_or(|max| *price <= max))
        .collect();
    if candidates.is_empty() {
        return Err(NoMatch::NoProvider(what));
    }
    candidates.sort_by_key(|a| (a.0, a.1.offer.issued_ms));
    let live_keys = super::offer::verifier_keys(listing.offers.iter().map(|o| &o.offer));
    let mut best = (0, 0);
    for (price, provider, task) in candidates {
        let Some(policy) = &provider.offer.policy else {
            continue;
        };
        let mut verifiers: Vec<&LiveOffer> = listing
            .of_role(OfferRole::Verifier)
            .filter(|v| v.offer.key != provider.offer.key)
            .filter(|v| v.offer.serves(&task.task, &task.model).is_some())
            .filter(|v| {
                v.offer
                    .key_bytes()
                    .is_ok_and(|k| policy.accepts(&k, &live_keys))
            })
            .collect();
        verifiers.sort_by_key(|v| std::cmp::Reverse(v.offer.expires_ms));
        let need = policy.min_threshold as usize;
        let n = want.verifiers.max(need).min(verifiers.len());
        if n < need || n == 0 {
            if verifiers.len() >= best.0 {
                best = (verifiers.len(), need);
            }
            continue;
        }
        verifiers.truncate(n);
        let threshold = (n / 2 + 1).max(need).min(n) as u32;
        return Ok(Choice {
            provider: provider.clone(),
            task: task.clone(),
            price,
            verifiers: verifiers.into_iter().cloned().collect(),
            threshold,
            min_judge_window_ms: policy.min_judge_window_ms,
        });
    }
    Err(NoMatch::NotEnoughVerifiers {
        what,
        have: best.0,
        need: best.1,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::market::offer::{OFFER_VERSION, Offer};
    use crate::market::policy::{AcceptVerifiers, VerifierPolicy};
    use crate::protocol::OutputReference;

    fn live(role: OfferRole, key: u8, price: u64, policy: Option<VerifierPolicy>) -> LiveOffer {
        LiveOffer {
            offer: Offer {
                version: OFFER_VERSION,
                deployment: hex::encode([7u8; 28]),
                role,
                key: hex::encode([key; 32]),
                payout: (role == OfferRole::Provider).then(|| format!("payout-{key}")),
                url: format!("http://agent-{key}"),
                tasks: vec![TaskOffer {
                    task: "embed".into(),
                    model: serde_json::json!({"weights": "aa", "config": "bb"}),
                    price,
                    price_per_token: 0,
                }],
                policy,
                issued_ms: 1,
                expires_ms: 1_000 + u64::from(key),
            },
            utxo: OutputReference {
                transaction_id: [key; 32],
                output_index: 0,
            },
        }
    }

    fn policy(keys: &[u8], min: u32) -> VerifierPolicy {
        VerifierPolicy {
            accept: AcceptVerifiers::Listed(keys.iter().map(|k| hex::encode([*k; 32])).collect()),
            min_threshold: min,
            min_judge_window_ms: 60_000,
        }
    }

    fn want() -> Want {
        Want {
            task: "embed".into(),
            verifiers: 3,
            ..Want::default()
        }
    }

    #[test]
    fn the_cheapest_provider_with_accepted_verifiers_is_chosen() {
        let listing = Listing {
            offers: vec![
                live(OfferRole::Provider, 1, 9, Some(policy(&[10, 11, 12], 2))),
                live(OfferRole::Provider, 2, 5, Some(policy(&[10, 11, 12], 2))),
                live(OfferRole::Verifier, 10, 0, None),
                live(OfferRole::Verifier, 11, 0, None),
                live(OfferRole::Verifier, 12, 0, None),
                // Live, but not accepted by the policy.
                live(OfferRole::Verifier, 13, 0, None),
            ],
            ignored: vec![],
        };
        let c = choose(&listing, &want()).unwrap();
        assert_eq!(c.provider.offer.key, hex::encode([2u8; 32]));
        assert_eq!(c.price, 5);
        assert_eq!(c.verifiers.len(), 3);
        assert!(
            c.verifiers
                .iter()
                .all(|v| v.offer.key != hex::encode([13u8; 32]))
        );
        assert_eq!(c.threshold, 2);
        // Within a price cap, only the one at 5 or less; below it, none.
        let capped = Want {
            max_price: Some(4),
            ..want()
        };
        assert!(matches!(
            choose(&listing, &capped),
            Err(NoMatch::NoProvider(_))
        ));
        // A named provider is taken even when dearer.
        let named = Want {
            provider: Some(hex::encode([1u8; 32])),
            ..want()
        };
        assert_eq!(choose(&listing, &named).unwrap().price, 9);
    }

    #[test]
    fn a_provider_without_enough_accepted_verifiers_is_skipped() {
        let listing = Listing {
            offers: vec![
                live(OfferRole::Provider, 1, 5, Some(policy(&[10], 2))),
                live(OfferRole::Verifier, 10, 0, None),
                live(OfferRole::Verifier, 11, 0, None),
            ],
            ignored: vec![],
        };
        assert_eq!(
            choose(&listing, &want()),
            Err(NoMatch::NotEnoughVerifiers {
                what: "task embed".into(),
                have: 1,
                need: 2
            })
        );
    }

    #[test]
    fn models_are_matched_by_any_of_their_file_hashes() {
        let m = serde_json::json!({"weights": "AA", "config": "bb"});
        assert!(model_has(&m, "aa"));
        assert!(!model_has(&m, "cc"));
        let listing = Listing {
            offers: vec![
                live(OfferRole::Provider, 1, 5, Some(policy(&[10], 1))),
                live(OfferRole::Verifier, 10, 0, None),
            ],
            ignored: vec![],
        };
        let other = Want {
            model: Some("cc".into()),
            ..want()
        };
        assert!(matches!(
            choose(&listing, &other),
            Err(NoMatch::NoProvider(_))
        ));
        let same = Want {
            model: Some("bb".into()),
            ..want()
        };
        assert_eq!(choose(&listing, &same).unwrap().threshold, 1);
    }
}
