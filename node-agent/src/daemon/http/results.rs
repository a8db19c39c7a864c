//! `GET /results/{hash}`: the result bytes this provider stored; `POST /results`:
//! a provider's announcement of its result to a verifier (the fast path).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::super::announce::{Refusal, SignedResult};
use super::{HttpState, error, internal, parse32};

pub(super) async fn get(State(s): State<HttpState>, Path(hash): Path<String>) -> Response {
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

/// `POST /results`: a provider announces its result for a locked job (the fast
/// path). Taken only by a verifier, for a locked escrow that lists it, signed
/// by the datum's agent; the first result announced for a job stands.
pub(super) async fn announce(State(s): State<HttpState>, body: axum::body::Bytes) -> Response {
    let Some(book) = &s.announcements else {
        return error(StatusCode::NOT_FOUND, "this agent is not a verifier");
    };
    let a: SignedResult = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not an announcement: {e}")),
    };
    if a.script_hash != s.script_hash {
        return error(
            StatusCode::BAD_REQUEST,
            "the announcement is for another deployment",
        );
    }
    let job = hex::encode(a.job_id);
    match book.offer(a) {
        Ok(()) => {
            tracing::info!(%job, "result announced");
            (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({"status": "accepted"})),
            )
                .into_response()
        }
        Err(Refusal::UnknownJob) => error(
            StatusCode::NOT_FOUND,
            "no locked escrow listing this verifier has that job (yet): announce it again after the next block",
        ),
        Err(Refusal::NotTheAgent) => error(
            StatusCode::FORBIDDEN,
            "the announcement is not signed by the job's agent key",
        ),
        Err(Refusal::AnotherResult) => error(
            StatusCode::CONFLICT,
            "another result was announced for this job first",
        ),
    }
}
