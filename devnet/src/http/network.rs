//! `/health`, `/health/clock` and `/network`.

use axum::Json;
use axum::extract::State;
use serde_json::json;

use super::R;
use crate::chain::Devnet;

/// `/health`: Blockfrost's liveness answer.
pub(super) async fn health() -> R {
    Ok(Json(json!({"is_healthy": true})))
}

/// `/health/clock`: the server's time, POSIX ms.
pub(super) async fn health_clock() -> R {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Ok(Json(json!({"server_time": ms})))
}

/// `/network`: supply and stake. Everything in unspent outputs circulates; the
/// rest of the maximum supply is the reserves; nothing is staked.
pub(super) async fn network(State(d): State<Devnet>) -> R {
    const MAX: u64 = 45_000_000_000_000_000;
    let circulating = d.circulating_lovelace();
    Ok(Json(json!({
        "supply": {
            "max": MAX.to_string(),
            "total": circulating.to_string(),
            "circulating": circulating.to_string(),
            "locked": "0",
            "treasury": "0",
            "reserves": MAX.saturating_sub(circulating).to_string(),
        },
        "stake": {"live": "0", "active": "0"},
    })))
}
