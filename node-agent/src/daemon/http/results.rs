//! `GET /results/{hash}`: the result bytes this provider stored.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

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
