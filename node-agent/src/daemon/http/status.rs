//! `GET /health` (public) and `GET /jobs` (the operator's).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{HttpState, error, internal, operator};

/// Rows per page of `/jobs` unless `limit` says fewer.
pub const MAX_PAGE: usize = 500;
const DEFAULT_PAGE: usize = 100;

pub(super) async fn health(State(s): State<HttpState>) -> Response {
    match s.store.stage_counts() {
        Ok(counts) => {
            let jobs: BTreeMap<&'static str, u64> =
                counts.into_iter().map(|(st, n)| (st.as_str(), n)).collect();
            Json(serde_json::json!({"status": "ok", "roles": s.roles, "jobs": jobs}))
                .into_response()
        }
        Err(e) => internal(e),
    }
}

/// `?limit=&offset=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
}

pub(super) async fn jobs(
    State(s): State<HttpState>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>();
    if let Err(denied) = operator::admit(s.operator_token.as_deref(), peer, request.headers()) {
        return operator::forbidden(denied);
    }
    let Ok(Query(page)) = page else {
        return error(
            StatusCode::BAD_REQUEST,
            "the query takes limit (1 to 500) and offset",
        );
    };
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return error(
            StatusCode::BAD_REQUEST,
            format!("limit must be 1 to {MAX_PAGE}"),
        );
    }
    match s.store.jobs_page(limit, page.offset) {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => internal(e),
    }
}
