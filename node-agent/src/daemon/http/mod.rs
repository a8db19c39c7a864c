//! The agent's HTTP API (axum), one file per resource.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /health` | anyone | `{"status":"ok","roles":[..],"jobs":{stage: count}}` |
//! | `GET /results/{hash}` | anyone | result bytes this provider stored (`application/octet-stream`) |
//! | `GET /attestations/{job_id}` | anyone | the attestations this agent signed or received for the job (JSON array) |
//! | `POST /attestations` | anyone | a verifier delivers an attestation to the provider (JSON object) |
//! | `POST /results` | anyone | a provider announces its result to a verifier (JSON object; the fast path) |
//! | `GET /jobs?limit=&offset=` | the operator | one page of job rows, most recent first ([`operator`]) |
//!
//! Public routes answer what the protocol needs others to read. The operator's
//! route answers only a loopback peer, or, when `operator_token` is set, a
//! request carrying it as `Authorization: Bearer …` (from anywhere). No route
//! publishes local paths, or hashes or contents of bytes fetched from others.

mod attestations;
mod operator;
mod results;
mod status;

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::store::Store;

/// The largest request body taken (an attestation is under 1 KiB).
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The agent's state.
    pub store: Store,
    /// The deployment's script hash (attestations for other deployments are refused).
    pub script_hash: [u8; 28],
    /// The roles this agent runs, for `/health`.
    pub roles: Vec<&'static str>,
    /// The operator's bearer token; `None`: operator routes answer loopback only.
    pub operator_token: Option<String>,
    /// The verifier's announcement book (`None`: not a verifier).
    pub announcements: Option<super::announce::Announcements>,
}

/// The router for `state`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: without the peer's
/// address the operator's routes answer no one (see [`serve`]).
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(status::health))
        .route("/jobs", get(status::jobs))
        .route("/results/{hash}", get(results::get))
        .route("/attestations/{job_id}", get(attestations::list))
        .route("/attestations", post(attestations::push))
        .route("/results", post(results::announce))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

/// Serves [`router`] on `listener` (with the peers' addresses) until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({"status_code": status.as_u16(), "message": message.into()})),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "HTTP handler failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (the agent's log says more)",
    )
}

fn parse32(what: &str, s: &str) -> Result<[u8; 32], String> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{what} must be 64 hex digits"))
}
