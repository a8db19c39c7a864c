//! The market: offers on chain, and a provider's verifier policy.
//!
//! - [`Offer`], [`SignedOffer`]: what a provider or verifier serves (tasks,
//!   models, prices, URL, a provider's payout and policy, an expiry), signed by
//!   the key it acts with, carried as an inline datum.
//! - [`VerifierPolicy`]: which verifiers, threshold and judging window a provider
//!   accepts; its agent refuses jobs that break it before computing anything.
//! - [`Listing`], [`list_offers`]: the live offers of a deployment, read with one
//!   (paged) query of the registry stake address; junk never breaks a listing.
//!
//! - [`choose`]: a requester's pick of a provider and of verifiers its policy
//!   accepts, for a task, model and price.
//!
//! docs/PROTOCOL.md, "The market", specifies the format and its lifecycle.

mod choose;
mod offer;
mod policy;
mod registry;

pub use choose::{Choice, NoMatch, Want, choose, model_has};
pub use offer::{
    MAX_OFFER_BYTES, MAX_OFFER_ITEMS, MAX_OFFER_TTL_MS, MAX_URL_BYTES, OFFER_DOMAIN, OFFER_VERSION,
    Offer, OfferError, OfferRole, SignedOffer, TaskOffer, offer_message, verifier_keys,
};
pub use policy::{AcceptVerifiers, PolicyViolation, VerifierPolicy};
pub use registry::{
    Ignored, Listing, LiveOffer, list_offers, offer_address, offer_output, registry_stake_address,
};
