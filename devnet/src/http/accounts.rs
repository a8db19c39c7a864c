//! `/accounts/{stake}` and `/accounts/{stake}/utxos`: reward accounts and the
//! UTxOs delegated to them.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value as J, json};

use super::{ApiError, PageQ, R, bad, utxo_json};
use crate::chain::Devnet;
use crate::value::OutputView;

/// The credential and network id of a bech32 stake address.
pub(super) fn stake_credential(stake: &str) -> Result<(crate::ledger::Credential, u8), ApiError> {
    match pallas_addresses::Address::from_bech32(stake) {
        Ok(pallas_addresses::Address::Stake(s)) => {
            let credential = match s.payload() {
                pallas_addresses::StakePayload::Stake(h) => crate::ledger::Credential::Key(*h),
                pallas_addresses::StakePayload::Script(h) => crate::ledger::Credential::Script(*h),
            };
            Ok((credential, s.network().value()))
        }
        _ => Err(bad(format!(
            "invalid stake address {stake:?}: give a bech32 stake_test1… address"
        ))),
    }
}

/// `/accounts/{stake_address}`: a registered reward account, Blockfrost's shape
/// (`controlled_amount` is the balance plus the lovelace of the account's UTxOs).
/// 404 when it is not registered.
pub(super) async fn account(State(d): State<Devnet>, Path(stake): Path<String>) -> R {
    let (credential, network_id) = stake_credential(&stake)?;
    let Some(a) = d.account(&credential) else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "The requested component has not been found.".into(),
        ));
    };
    let mut held = 0u64;
    for page in 0.. {
        let rows = d.utxos_at_stake(&credential, network_id, 100, page * 100)?;
        held += rows
            .iter()
            .filter_map(|r| OutputView::decode(&r.cbor).ok())
            .map(|v| v.value.coin)
            .sum::<u64>();
        if rows.len() < 100 {
            break;
        }
    }
    Ok(Json(json!({
        "stake_address": stake,
        "active": true,
        "active_epoch": 0,
        "controlled_amount": (held + a.balance).to_string(),
        "rewards_sum": a.balance.to_string(),
        "withdrawals_sum": "0",
        "reserves_sum": "0",
        "treasury_sum": "0",
        "withdrawable_amount": a.balance.to_string(),
        "pool_id": null,
        "drep_id": null,
    })))
}

/// `/accounts/{stake_address}/utxos`: unspent outputs at base addresses whose
/// stake part is the account's credential.
pub(super) async fn account_utxos(
    State(d): State<Devnet>,
    Path(stake): Path<String>,
    Query(q): Query<PageQ>,
) -> R {
    let (credential, network_id) = stake_credential(&stake)?;
    let (count, offset) = q.window();
    let rows = d.utxos_at_stake(&credential, network_id, count, offset)?;
    Ok(Json(J::Array(
        rows.iter()
            .map(|r| utxo_json(&d, &r.out_ref, &r.cbor, r.created_height))
            .collect(),
    )))
}
