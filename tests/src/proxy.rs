//! A chain provider in front of the devnet's Blockfrost-style API, for tests that
//! make it misbehave: [`serve`] runs an axum router (its fallback decides what to
//! inject) on a loopback port, and [`Upstream::forward`] passes a request through
//! to the devnet unchanged.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// The devnet behind a proxy.
pub struct Upstream {
    http: reqwest::Client,
    /// The devnet's root (`http://127.0.0.1:port`).
    root: String,
}

/// The devnet's answer to a forwarded request.
pub struct Forwarded {
    /// Its status.
    pub status: StatusCode,
    /// Its content type (`application/json` when it named none).
    pub content_type: HeaderValue,
    /// Its body.
    pub body: Bytes,
}

impl IntoResponse for Forwarded {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response()
    }
}

impl Upstream {
    /// The devnet whose API is at `api_url` (`http://…/api/v0`).
    pub fn new(api_url: &str) -> Upstream {
        let root = api_url
            .strip_suffix("/api/v0")
            .expect("an API root")
            .to_string();
        Upstream {
            http: reqwest::Client::new(),
            root,
        }
    }

    /// Sends `method uri` with `body` (and its content type) to the devnet; `None`
    /// when the devnet did not answer.
    pub async fn forward(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<Forwarded> {
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("a method");
        let mut req = self
            .http
            .request(method, format!("{}{}", self.root, path(uri)));
        if let Some(ct) = headers.get(header::CONTENT_TYPE) {
            req = req.header(reqwest::header::CONTENT_TYPE, ct.as_bytes());
        }
        let resp = req.body(body).send().await.ok()?;
        let status = StatusCode::from_u16(resp.status().as_u16()).expect("a status");
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            .unwrap_or(HeaderValue::from_static("application/json"));
        let body = resp.bytes().await.ok()?;
        Some(Forwarded {
            status,
            content_type,
            body,
        })
    }
}

/// The path and query of `uri`.
pub fn path(uri: &Uri) -> &str {
    uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
}

/// Whether the request submits a transaction (`POST …/tx/submit`).
pub fn is_submit(method: &Method, uri: &Uri) -> bool {
    method == Method::POST && path(uri).ends_with("/tx/submit")
}

/// Serves `router` on a loopback port; returns its API URL (`http://…/api/v0`).
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/api/v0", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}
