//! `GET /health` (public) and `GET /jobs` (the operator's).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::super::store::{JobRecord, Role, Stage};
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
        Ok(rows) => Json(rows.iter().map(JobView::of).collect::<Vec<_>>()).into_response(),
        Err(e) => internal(e),
    }
}

/// A job row as `/jobs` shows it: the record without its local file path and
/// signed transaction bytes.
#[derive(Debug, Serialize)]
struct JobView<'a> {
    job_id: String,
    role: Role,
    stage: Stage,
    spec_hash: String,
    price: u64,
    submit_by: u64,
    settle_by: u64,
    threshold: u32,
    verifiers: Vec<String>,
    verifier_urls: &'a [String],
    result_hash: Option<String>,
    result_url: Option<&'a str>,
    submit_tx: Option<String>,
    claim_tx: Option<String>,
    verdict: Option<&'a str>,
    compute_runs: u32,
    failure: Option<&'a str>,
    settle_warned: bool,
    updated_at: u64,
}

impl<'a> JobView<'a> {
    fn of(r: &'a JobRecord) -> JobView<'a> {
        JobView {
            job_id: hex::encode(r.job_id),
            role: r.role,
            stage: r.stage,
            spec_hash: hex::encode(r.spec_hash),
            price: r.price,
            submit_by: r.submit_by,
            settle_by: r.settle_by,
            threshold: r.threshold,
            verifiers: r.verifiers.iter().map(hex::encode).collect(),
            verifier_urls: &r.verifier_urls,
            result_hash: r.result_hash.map(hex::encode),
            result_url: r.result_url.as_deref(),
            submit_tx: r.submit_tx.map(hex::encode),
            claim_tx: r.claim_tx.map(hex::encode),
            verdict: r.verdict.as_deref(),
            compute_runs: r.compute_runs,
            failure: r.failure.as_deref(),
            settle_warned: r.settle_warned,
            updated_at: r.updated_at,
        }
    }
}
