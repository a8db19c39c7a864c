//! Where offers live on chain, and how a listing is read.
//!
//! An offer is a UTxO whose address has the **owner's key** as payment
//! credential (blake2b-224 of the key the offer advertises, so only the owner can
//! spend, replace or withdraw it) and the **escrow's script credential** as stake
//! part (so every offer of a deployment is one Blockfrost query,
//! `GET /accounts/{registry stake address}/utxos`, whatever its owner). It holds
//! its min-ADA deposit, which comes back when the owner spends it, and an inline
//! [`SignedOffer`] datum. Nothing else is ever read: the listing is the live set,
//! not a history.
//!
//! A listing trusts nothing it reads. Each UTxO is dropped, with its reason in
//! [`Listing::ignored`], unless its datum decodes as a signed offer, the signature
//! verifies against the advertised key, the UTxO's payment credential is that
//! key's hash, the offer is for this deployment and network, and it has not
//! expired. Of several live offers by one key the latest issued wins (a replayed
//! old offer never displaces a newer one, and dies at its own expiry).

use std::collections::BTreeMap;

use pallas_addresses::{
    Address as LedgerAddress, ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart,
    StakeAddress, StakePayload,
};
use pallas_crypto::hash::Hash;

use super::offer::{Offer, OfferError, OfferRole, SignedOffer};
use crate::chain::{ChainError, ChainProvider};
use crate::network::Network;
use crate::protocol::{JobDatum, OutputReference};
use crate::tx::{Datum, FeeParams, TxOutput, Utxo, Value};

/// The registry's stake address for a deployment: the escrow's script credential.
pub fn registry_stake_address(script_hash: &[u8; 28], network: Network) -> StakeAddress {
    StakeAddress::new(
        network.address_network(),
        StakePayload::Script(Hash::new(*script_hash)),
    )
}

/// Where an owner whose key hashes to `owner` keeps its offer for the deployment.
pub fn offer_address(owner: &[u8; 28], script_hash: &[u8; 28], network: Network) -> ShelleyAddress {
    ShelleyAddress::new(
        network.address_network(),
        ShelleyPaymentPart::Key(Hash::new(*owner)),
        ShelleyDelegationPart::Script(Hash::new(*script_hash)),
    )
}

/// The output that publishes `signed` for the owner whose key hashes to `owner`:
/// at its offer address, holding the inline datum and exactly the min-ADA deposit
/// for its size (which comes back when the owner spends it).
pub fn offer_output(
    signed: &SignedOffer,
    owner: &[u8; 28],
    script_hash: &[u8; 28],
    network: Network,
    fee_params: &FeeParams,
) -> TxOutput {
    let address = offer_address(owner, script_hash, network).to_vec();
    let mut output = TxOutput::new(address, Value::lovelace(0));
    output.datum = Datum::Inline(signed.to_datum());
    // The deposit itself takes a few bytes: size the minimum with a full one.
    output.value.lovelace = u64::from(u32::MAX);
    output.value.lovelace = fee_params.min_ada(output.to_cbor().len());
    output
}

/// A live offer and the UTxO that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOffer {
    /// The offer.
    pub offer: Offer,
    /// Where it sits.
    pub utxo: OutputReference,
}

/// Why a UTxO at the registry was left out of a listing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// Not at a key payment credential with the registry stake part.
    #[error("not an offer address of this registry")]
    NotAnOfferAddress,
    /// No inline datum.
    #[error("no inline datum")]
    NoDatum,
    /// The datum is not a valid signed offer.
    #[error(transparent)]
    Offer(#[from] OfferError),
    /// The UTxO's payment credential is not the hash of the advertised key.
    #[error("it sits at another key's address than the key it advertises")]
    NotTheOwnersAddress,
    /// Expired.
    #[error("expired")]
    Expired,
    /// A later offer by the same key is live.
    #[error("superseded by a later offer of the same key")]
    Superseded,
}

/// The live offers of a deployment, and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// One per (role, key): the latest issued live offer.
    pub offers: Vec<LiveOffer>,
    /// UTxOs at the registry that are not live offers, with the reason.
    pub ignored: Vec<(OutputReference, Ignored)>,
}

impl Listing {
    /// Reads `utxos` (the registry's UTxOs) as of `now_ms`.
    pub fn from_utxos(
        utxos: &[Utxo],
        script_hash: &[u8; 28],
        network: Network,
        now_ms: u64,
    ) -> Listing {
        let mut listing = Listing::default();
        let mut best: BTreeMap<(OfferRole, String), LiveOffer> = BTreeMap::new();
        for u in utxos {
            match read(u, script_hash, network, now_ms) {
                Ok(offer) => {
                    let live = LiveOffer {
                        offer,
                        utxo: u.reference,
                    };
                    let key = (live.offer.role, live.offer.key.clone());
                    let older = match best.remove(&key) {
                        Some(current) if later(&current, &live) => {
                            best.insert(key, current);
                            live
                        }
                        Some(current) => {
                            best.insert(key, live);
                            current
                        }
                        None => {
                            best.insert(key, live);
                            continue;
                        }
                    };
                    listing.ignored.push((older.utxo, Ignored::Superseded));
                }
                Err(why) => listing.ignored.push((u.reference, why)),
            }
        }
        listing.offers = best.into_values().collect();
        listing
    }

    /// Live offers in `role`.
    pub fn of_role(&self, role: OfferRole) -> impl Iterator<Item = &LiveOffer> {
        self.offers.iter().filter(move |o| o.offer.role == role)
    }

    /// The live offer of `role` advertising `key`.
    pub fn by_key(&self, role: OfferRole, key: &[u8; 32]) -> Option<&LiveOffer> {
        let hex_key = hex::encode(key);
        self.of_role(role).find(|o| o.offer.key == hex_key)
    }

    /// The live provider offer whose key signs for `datum`'s agent and whose
    /// payout is the datum's: where that provider takes attestations.
    pub fn provider_of(&self, datum: &JobDatum, network: Network) -> Option<&LiveOffer> {
        self.of_role(OfferRole::Provider)
            .find(|o| o.offer.is_provider_of(datum, network))
    }
}

/// Whether `a` is the later of two offers by one key (ties: the smaller UTxO).
fn later(a: &LiveOffer, b: &LiveOffer) -> bool {
    match a.offer.issued_ms.cmp(&b.offer.issued_ms) {
        std::cmp::Ordering::Equal => a.utxo < b.utxo,
        order => order.is_gt(),
    }
}

fn read(u: &Utxo, script_hash: &[u8; 28], network: Network, now_ms: u64) -> Result<Offer, Ignored> {
    let owner = match LedgerAddress::from_bytes(&u.output.address) {
        Ok(LedgerAddress::Shelley(a))
            if a.network() == network.address_network()
                && matches!(a.delegation(), ShelleyDelegationPart::Script(h) if **h == *script_hash) =>
        {
            match a.payment() {
                ShelleyPaymentPart::Key(h) => **h,
                ShelleyPaymentPart::Script(_) => return Err(Ignored::NotAnOfferAddress),
            }
        }
        _ => return Err(Ignored::NotAnOfferAddress),
    };
    let Datum::Inline(datum) = &u.output.datum else {
        return Err(Ignored::NoDatum);
    };
    let signed = SignedOffer::from_datum(datum)?;
    signed.offer.validate(network, script_hash)?;
    if signed.offer.key_hash()? != owner {
        return Err(Ignored::NotTheOwnersAddress);
    }
    if !signed.offer.is_live(now_ms) {
        return Err(Ignored::Expired);
    }
    Ok(signed.offer)
}

/// Reads the deployment's live offers from `chain` as of `now_ms`: one query
/// (paged) of the registry stake address's UTxOs.
pub async fn list_offers(
    chain: &dyn ChainProvider,
    script_hash: &[u8; 28],
    network: Network,
    now_ms: u64,
) -> Result<Listing, ChainError> {
    let utxos = chain
        .utxos_at_stake(&registry_stake_address(script_hash, network))
        .await?;
    Ok(Listing::from_utxos(&utxos, script_hash, network, now_ms))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::market::offer::{OFFER_VERSION, TaskOffer};
    use crate::protocol::data;
    use crate::tx::{TxOutput, Value};
    use crate::wallet::{Signer, SigningKey};

    const SCRIPT: [u8; 28] = [7; 28];
    const NET: Network = Network::Devnet;

    fn offer(key: &SigningKey, issued_ms: u64, expires_ms: u64, url: &str) -> Offer {
        Offer {
            version: OFFER_VERSION,
            deployment: hex::encode(SCRIPT),
            role: OfferRole::Verifier,
            key: hex::encode(key.public_key()),
            payout: None,
            url: url.into(),
            tasks: vec![TaskOffer {
                task: "embed".into(),
                model: serde_json::json!("m"),
                price: 0,
                price_per_token: 0,
            }],
            policy: None,
            issued_ms,
            expires_ms,
        }
    }

    fn utxo(n: u8, owner: [u8; 28], datum: Datum) -> Utxo {
        let mut output = TxOutput::new(
            offer_address(&owner, &SCRIPT, NET).to_vec(),
            Value::lovelace(2_000_000),
        );
        output.datum = datum;
        Utxo {
            reference: OutputReference {
                transaction_id: [n; 32],
                output_index: 0,
            },
            output,
        }
    }

    fn signed(key: &SigningKey, o: Offer) -> Datum {
        Datum::Inline(SignedOffer::sign(o, key).unwrap().to_datum())
    }

    #[test]
    fn the_latest_live_offer_of_each_key_is_listed_and_junk_is_ignored() {
        let a = SigningKey::from_normal_bytes(&[1; 32]);
        let b = SigningKey::from_normal_bytes(&[2; 32]);
        let utxos = vec![
            utxo(
                1,
                a.key_hash(),
                signed(&a, offer(&a, 10, 1_000, "http://old")),
            ),
            utxo(
                2,
                a.key_hash(),
                signed(&a, offer(&a, 20, 1_000, "http://new")),
            ),
            // Expired.
            utxo(3, b.key_hash(), signed(&b, offer(&b, 10, 50, "http://b"))),
            // No datum, junk datum.
            utxo(4, b.key_hash(), Datum::None),
            utxo(5, b.key_hash(), Datum::Inline(data::int(1))),
            // A's signed offer copied to B's address.
            utxo(
                6,
                b.key_hash(),
                signed(&a, offer(&a, 30, 1_000, "http://a")),
            ),
        ];
        let listing = Listing::from_utxos(&utxos, &SCRIPT, NET, 100);
        assert_eq!(listing.offers.len(), 1);
        assert_eq!(listing.offers[0].offer.url, "http://new");
        let why: Vec<_> = listing
            .ignored
            .iter()
            .map(|(r, w)| (r.transaction_id[0], w.clone()))
            .collect();
        assert!(why.contains(&(1, Ignored::Superseded)));
        assert!(why.contains(&(3, Ignored::Expired)));
        assert!(why.contains(&(4, Ignored::NoDatum)));
        assert!(why.contains(&(6, Ignored::NotTheOwnersAddress)));
        assert!(matches!(
            why.iter().find(|w| w.0 == 5),
            Some((_, Ignored::Offer(_)))
        ));
        // Order does not matter.
        let mut reversed = utxos.clone();
        reversed.reverse();
        assert_eq!(
            Listing::from_utxos(&reversed, &SCRIPT, NET, 100).offers,
            listing.offers
        );
    }

    #[test]
    fn a_replayed_old_offer_never_displaces_the_newer_one() {
        let a = SigningKey::from_normal_bytes(&[1; 32]);
        let new = signed(&a, offer(&a, 20, 1_000, "http://new"));
        let old = signed(&a, offer(&a, 10, 1_000, "http://old"));
        let listing = Listing::from_utxos(
            &[utxo(9, a.key_hash(), new), utxo(1, a.key_hash(), old)],
            &SCRIPT,
            NET,
            100,
        );
        assert_eq!(listing.offers[0].offer.url, "http://new");
    }

    #[test]
    fn offers_at_an_address_without_the_registry_stake_part_are_ignored() {
        let a = SigningKey::from_normal_bytes(&[1; 32]);
        let mut u = utxo(
            1,
            a.key_hash(),
            signed(&a, offer(&a, 10, 1_000, "http://a")),
        );
        u.output.address = offer_address(&a.key_hash(), &[8; 28], NET).to_vec();
        let listing = Listing::from_utxos(&[u], &SCRIPT, NET, 100);
        assert_eq!(listing.ignored[0].1, Ignored::NotAnOfferAddress);
    }
}
