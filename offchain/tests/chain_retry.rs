//! Retries, bounds and error kinds of the Blockfrost client, against tiny
//! scripted axum servers on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ntx_offchain::Network;
use ntx_offchain::chain::{Blockfrost, ChainError, ChainProvider, RetryPolicy};

const SECRET: &str = "mainnetSECRETprojectid0123456789";

/// Serves `handler` for every path; returns the base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/api/v0")
}

fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        first_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(10),
        max_total: Duration::from_secs(60),
    }
}

fn tip_json() -> serde_json::Value {
    serde_json::json!({"slot": 42, "height": 7, "hash": "11".repeat(32)})
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_answer_comes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let keys_seen = Arc::new(AtomicUsize::new(0));
    let app = {
        let calls = calls.clone();
        let keys_seen = keys_seen.clone();
        Router::new().route(
            "/api/v0/blocks/latest",
            get(move |headers: HeaderMap| async move {
                if headers.get("project_id").and_then(|v| v.to_str().ok()) == Some(SECRET) {
                    keys_seen.fetch_add(1, Ordering::SeqCst);
                }
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "0")],
                        "slow down",
                    )
                        .into_response(),
                    1 => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
                    _ => axum::Json(tip_json()).into_response(),
                }
            }),
        )
    };
    let url = serve(app).await;
    let p = Blockfrost::new(Network::Devnet, &url, Some(SECRET.into()))
        .expect("provider")
        .with_retry(fast_retries(5));
    let tip = p.tip().await.expect("converges");
    assert_eq!((tip.slot, tip.height, tip.hash), (42, 7, [0x11; 32]));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "429, then 500, then 200");
    assert_eq!(
        keys_seen.load(Ordering::SeqCst),
        3,
        "the project id is sent each time"
    );
    assert!(
        !format!("{p:?}").contains(SECRET),
        "Debug hides the project id"
    );
}

#[tokio::test]
async fn a_provider_that_keeps_failing_gives_a_network_error_after_the_bounded_retries() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = {
        let calls = calls.clone();
        Router::new().fallback(move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response()
        })
    };
    let url = serve(app).await;
    let p = Blockfrost::new(Network::Devnet, &url, Some(SECRET.into()))
        .expect("provider")
        .with_retry(fast_retries(4));
    let err = p.protocol_params().await.expect_err("never succeeds");
    match &err {
        ChainError::Network { attempts, last, .. } => {
            assert_eq!(*attempts, 4);
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("expected a network error, got {other:?}"),
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "exactly max_attempts requests"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(SECRET),
        "errors never carry the project id: {shown}"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_stops_at_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = {
        let calls = calls.clone();
        Router::new().fallback(move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "3600")], "").into_response()
        })
    };
    let url = serve(app).await;
    let p = Blockfrost::new(Network::Devnet, &url, None)
        .expect("provider")
        .with_retry(fast_retries(10));
    let err = p.tip().await.expect_err("rate limited");
    assert!(
        matches!(err, ChainError::Network { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no sleeping an hour");
}

#[tokio::test]
async fn connection_failures_are_network_errors() {
    // A port that was just free: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let p = Blockfrost::new(Network::Devnet, &format!("http://{addr}/api/v0"), None)
        .expect("provider")
        .with_retry(fast_retries(3));
    let err = p.tip().await.expect_err("nobody listens");
    assert!(
        matches!(err, ChainError::Network { attempts: 3, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_and_are_told_apart() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = {
        let c1 = calls.clone();
        let c2 = calls.clone();
        let c3 = calls.clone();
        Router::new()
            .route(
                "/api/v0/blocks/latest",
                get(move || async move {
                    c1.fetch_add(1, Ordering::SeqCst);
                    "this is not json"
                }),
            )
            .route(
                "/api/v0/genesis",
                get(move || async move {
                    c2.fetch_add(1, Ordering::SeqCst);
                    let body = serde_json::json!({"status_code": 403, "error": "Forbidden", "message": "Invalid project token."});
                    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
                }),
            )
            .fallback(move || async move {
                c3.fetch_add(1, Ordering::SeqCst);
                let body = serde_json::json!({"status_code": 404, "error": "Not Found", "message": "The requested component has not been found."});
                Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(axum::body::Body::from(body.to_string()))
                    .expect("response")
            })
    };
    let url = serve(app).await;
    let p = Blockfrost::new(Network::Devnet, &url, None)
        .expect("provider")
        .with_retry(fast_retries(5));

    let err = p.tip().await.expect_err("bad json");
    assert!(matches!(err, ChainError::BadResponse { .. }), "{err:?}");
    let err = p.slot_config().await.expect_err("forbidden");
    assert!(
        matches!(&err, ChainError::Refused { status: 403, message, .. } if message == "Invalid project token."),
        "{err:?}"
    );
    let err = p.tx_metadata(&[1; 32]).await.expect_err("unknown tx");
    assert!(matches!(err, ChainError::NotFound { .. }), "{err:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "one request each, no retries"
    );
}

#[tokio::test]
async fn a_wrong_network_is_refused() {
    let app = Router::new().route(
        "/api/v0/genesis",
        get(|| async {
            axum::Json(serde_json::json!({"network_magic": 1, "system_start": 1654041600, "slot_length": 1}))
        }),
    );
    let url = serve(app).await;
    let mainnet = Blockfrost::new(Network::Mainnet, &url, None).expect("provider");
    assert!(matches!(
        mainnet.slot_config().await,
        Err(ChainError::WrongNetwork { served: 1, .. })
    ));
    let preprod = Blockfrost::new(Network::Preprod, &url, None).expect("provider");
    let sc = preprod.slot_config().await.expect("preprod");
    assert_eq!((sc.zero_slot, sc.zero_time_ms), (86_400, 1_655_769_600_000));
}

#[tokio::test]
async fn a_full_mempool_is_resent_until_it_takes_the_transaction() {
    let calls = Arc::new(AtomicUsize::new(0));
    let id = "ab".repeat(32);
    let app = {
        let (calls, id) = (calls.clone(), id.clone());
        Router::new().route(
            "/api/v0/tx/submit",
            axum::routing::post(move || async move {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    (
                        StatusCode::from_u16(425).expect("425"),
                        axum::Json(serde_json::json!({
                            "status_code": 425, "error": "Mempool Full",
                            "message": "Mempool is full, please try resubmitting again later."
                        })),
                    )
                        .into_response()
                } else {
                    axum::Json(id.clone()).into_response()
                }
            }),
        )
    };
    let url = serve(app).await;
    let p = Blockfrost::new(Network::Devnet, &url, None)
        .expect("provider")
        .with_retry(fast_retries(5));
    let sent = p.submit(b"not a transaction").await.expect("taken at last");
    assert_eq!(hex::encode(sent), id);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "425, 425, then 200");
}
