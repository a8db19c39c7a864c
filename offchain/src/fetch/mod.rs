//! Fetching URLs that came from chain data or from another party: spec URLs in
//! lock records, result URLs in submit records, agents' attestation endpoints.
//!
//! Every such URL is hostile until checked (docs/SECURITY.md, "Fetching
//! strangers' URLs"). [`PeerFetcher`] therefore
//!
//! - fetches only `http` and `https`, and follows no redirect;
//! - refuses loopback, private, link-local, shared, multicast and unspecified
//!   addresses: a literal address before connecting, a name in the resolver the
//!   connection itself uses (so a name cannot pass a check and then answer
//!   differently), unless the policy allows them
//!   ([`AddressPolicy::AllowPrivate`], the devnet's default);
//! - counts the body's bytes while reading and stops at the cap of its
//!   [`Limit`], and gives the whole exchange one time budget, so a giant or
//!   dripping body costs at most the cap and the budget.

mod address;
mod peer;

pub use address::{AddressPolicy, is_public};
pub use peer::{FetchError, FetchKind, Limit, Limits, PeerFetcher, UrlRefusal};
