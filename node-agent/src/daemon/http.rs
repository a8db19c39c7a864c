//! The agent's HTTP API (axum).
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | `{"status":"ok","roles":[..],"jobs":{stage: count}}` |
//! | `GET /jobs` | every job row (no transaction bytes), most recent first |
//! | `GET /results/{hash}` | result bytes this provider stored (`application/octet-stream`) |
//! | `GET /attestations/{job_id}` | the attestations this agent signed or received for the job (JSON array) |
//! | `POST /attestations` | a verifier delivers an attestation to the provider (JSON object) |
//!
//! Pushed attestations are accepted only for a job this agent provides, for its
//! submitted result, from a verifier its datum lists, with a valid signature.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::attest::SignedAttestation;
use super::store::{Role, Store};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The agent's state.
    pub store: Store,
    /// The deployment's script hash (attestations for other deployments are refused).
    pub script_hash: [u8; 28],
    /// The roles this agent runs, for `/health`.
    pub roles: Vec<&'static str>,
}

/// The router for `state`.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/jobs", get(jobs))
        .route("/results/{hash}", get(result))
        .route("/attestations/{job_id}", get(attestations))
        .route("/attestations", axum::routing::post(push))
        .with_state(state)
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
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn parse32(what: &str, s: &str) -> Result<[u8; 32], String> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{what} must be 64 hex digits"))
}

async fn health(State(s): State<HttpState>) -> Response {
    match s.store.jobs(None) {
        Ok(jobs) => {
            let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
            for j in &jobs {
                *counts.entry(j.stage.as_str()).or_default() += 1;
            }
            Json(serde_json::json!({"status": "ok", "roles": s.roles, "jobs": counts}))
                .into_response()
        }
        Err(e) => internal(e),
    }
}

async fn jobs(State(s): State<HttpState>) -> Response {
    match s.store.jobs(None) {
        Ok(jobs) => Json(jobs).into_response(),
        Err(e) => internal(e),
    }
}

async fn result(State(s): State<HttpState>, Path(hash): Path<String>) -> Response {
    let hash = match parse32("the result hash", &hash) {
        Ok(h) => h,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match s.store.read_result(&hash) {
        Ok(Some(bytes)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no result with that hash here"),
        Err(e) => internal(e),
    }
}

async fn attestations(State(s): State<HttpState>, Path(job_id): Path<String>) -> Response {
    let job_id = match parse32("the job id", &job_id) {
        Ok(h) => h,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match s.store.attestations(&job_id) {
        Ok(list) => Json(list).into_response(),
        Err(e) => internal(e),
    }
}

async fn push(State(s): State<HttpState>, body: axum::body::Bytes) -> Response {
    let a: SignedAttestation = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not an attestation: {e}")),
    };
    if a.script_hash != s.script_hash {
        return error(
            StatusCode::BAD_REQUEST,
            "the attestation is for another deployment",
        );
    }
    let job = match s.store.job(&a.job_id, Role::Provider) {
        Ok(Some(job)) => job,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "this agent does not provide that job",
            );
        }
        Err(e) => return internal(e),
    };
    if job.result_hash != Some(a.result_hash) {
        return error(
            StatusCode::CONFLICT,
            "the attestation judges another result than the one this agent submitted",
        );
    }
    if !job.verifiers.contains(&a.verifier_key) {
        return error(
            StatusCode::FORBIDDEN,
            "the job's datum does not list this verifier",
        );
    }
    if !a.is_valid() {
        return error(StatusCode::BAD_REQUEST, "the signature does not verify");
    }
    match s.store.put_attestation(&a, "received") {
        Ok(()) => {
            tracing::info!(job = %job.id_hex(), verifier = %hex::encode(a.verifier_key),
                verdict = ?a.verdict, "attestation received");
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({"status": "accepted"})),
            )
                .into_response()
        }
        Err(e) => internal(e),
    }
}
