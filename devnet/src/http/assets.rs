//! `/assets/policy/{policy}` and `/assets/{unit}/addresses`: the assets held
//! now, and who holds them.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value as J, json};

use super::{ApiError, PageQ, R, bad};
use crate::chain::Devnet;

/// A policy id in hex.
pub(super) fn policy_id(text: &str) -> Result<pallas_crypto::hash::Hash<28>, ApiError> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 28]>::try_from(b).ok())
        .map(pallas_crypto::hash::Hash::new)
        .ok_or_else(|| bad(format!("invalid policy id {text:?}: give 56 hex digits")))
}

/// One page of `items`.
pub(super) fn page_of<T: Clone>(items: &[T], q: &PageQ) -> Vec<T> {
    let (count, offset) = q.window();
    items
        .iter()
        .skip(offset as usize)
        .take(count as usize)
        .cloned()
        .collect()
}

/// `/assets/policy/{policy_id}`: the assets of a policy that unspent outputs
/// hold, with the quantity held (`[{asset, quantity}]`).
pub(super) async fn policy_assets(
    State(d): State<Devnet>,
    Path(policy): Path<String>,
    Query(q): Query<PageQ>,
) -> R {
    let policy = policy_id(&policy)?;
    let mut totals: std::collections::BTreeMap<Vec<u8>, u64> = std::collections::BTreeMap::new();
    for (name, _, quantity) in d.policy_holdings(&policy) {
        *totals.entry(name).or_default() += quantity;
    }
    let rows: Vec<J> = totals
        .into_iter()
        .map(|(name, quantity)| {
            json!({"asset": format!("{policy}{}", hex::encode(name)), "quantity": quantity.to_string()})
        })
        .collect();
    Ok(Json(J::Array(page_of(&rows, &q))))
}

/// `/assets/{unit}/addresses`: who holds an asset now (`[{address, quantity}]`).
pub(super) async fn asset_addresses(
    State(d): State<Devnet>,
    Path(unit): Path<String>,
    Query(q): Query<PageQ>,
) -> R {
    if unit.len() < 56 || !unit.is_char_boundary(56) {
        return Err(bad(format!(
            "invalid asset {unit:?}: give the policy id and the asset name in hex"
        )));
    }
    let policy = policy_id(&unit[..56])?;
    let name = hex::decode(&unit[56..]).map_err(|_| bad("the asset name is not hex"))?;
    let rows: Vec<J> = d
        .policy_holdings(&policy)
        .into_iter()
        .filter(|(n, _, _)| *n == name)
        .map(|(_, address, quantity)| {
            json!({"address": crate::value::address_text(&address), "quantity": quantity.to_string()})
        })
        .collect();
    Ok(Json(J::Array(page_of(&rows, &q))))
}
