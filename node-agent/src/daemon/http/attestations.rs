//! `GET /attestations/{job_id}` and `POST /attestations`.
//!
//! Pushed attestations are accepted only for a job this agent provides, for its
//! submitted result, from a verifier its datum lists, with a valid signature.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::super::attest::SignedAttestation;
use super::super::store::Role;
use super::{HttpState, error, internal, parse32};

pub(super) async fn list(State(s): State<HttpState>, Path(job_id): Path<String>) -> Response {
    let job_id = match parse32("the job id", &job_id) {
        Ok(h) => h,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match s.store.attestations(&job_id) {
        Ok(list) => Json(list).into_response(),
        Err(e) => internal(e),
    }
}

pub(super) async fn push(State(s): State<HttpState>, body: axum::body::Bytes) -> Response {
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
