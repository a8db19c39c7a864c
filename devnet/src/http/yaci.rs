//! Yaci DevKit's faucet, `POST /local-cluster/api/addresses/topup`, so test
//! suites written for it fund addresses here unchanged.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, R, bad};
use crate::chain::Devnet;

/// Yaci DevKit's faucet request (`{address, adaAmount}`), so test suites
/// written for it fund addresses here unchanged.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TopupReq {
    address: String,
    ada_amount: u64,
}

/// `POST /local-cluster/api/addresses/topup`: pays `adaAmount` ADA to
/// `address` and makes a block.
pub(super) async fn topup(State(d): State<Devnet>, Json(r): Json<TopupReq>) -> R {
    let lovelace = r
        .ada_amount
        .checked_mul(1_000_000)
        .ok_or_else(|| bad("adaAmount is too large"))?;
    let out = tokio::task::spawn_blocking(move || d.fund_now(&r.address, lovelace, 0))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(json!({
        "status": true,
        "message": format!("Topup successful: {}#{}", out.tx_hash, out.index),
    })))
}
