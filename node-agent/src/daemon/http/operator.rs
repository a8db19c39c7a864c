//! Who may call the operator's routes: a loopback peer, or, when the agent has
//! an `operator_token`, any request that carries it (`Authorization: Bearer …`).
//! A reverse proxy on the same host makes every peer loopback: set a token there.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::error;

/// `Ok` when the request may read the operator's routes, else why not.
pub(super) fn admit(
    token: Option<&str>,
    peer: Option<&ConnectInfo<SocketAddr>>,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    let denied = |why: &'static str| Err(why);
    match token {
        Some(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match given {
                Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(()),
                _ => denied("an operator route: send the agent's operator token as a bearer token"),
            }
        }
        None => match peer {
            Some(ConnectInfo(addr)) if addr.ip().is_loopback() => Ok(()),
            _ => denied("an operator route: only this machine may call it (or set operator_token)"),
        },
    }
}

/// The 403 for a request [`admit`] refused.
pub(super) fn forbidden(why: &'static str) -> Response {
    error(StatusCode::FORBIDDEN, why)
}

/// Compares in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: [u8; 4]) -> ConnectInfo<SocketAddr> {
        ConnectInfo(SocketAddr::from((ip, 40000)))
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("a header value"),
        );
        h
    }

    #[test]
    fn without_a_token_only_loopback_is_admitted() {
        let none = HeaderMap::new();
        assert!(admit(None, Some(&peer([127, 0, 0, 1])), &none).is_ok());
        assert!(admit(None, Some(&peer([203, 0, 113, 9])), &none).is_err());
        assert!(admit(None, Some(&peer([10, 0, 0, 2])), &none).is_err());
        assert!(admit(None, None, &none).is_err(), "unknown peer");
    }

    #[test]
    fn with_a_token_only_the_token_is_admitted_from_anywhere() {
        let outside = peer([203, 0, 113, 9]);
        assert!(admit(Some("s3cret"), Some(&outside), &bearer("s3cret")).is_ok());
        assert!(admit(Some("s3cret"), Some(&outside), &bearer("s3cre")).is_err());
        assert!(admit(Some("s3cret"), Some(&outside), &HeaderMap::new()).is_err());
        let local = peer([127, 0, 0, 1]);
        assert!(
            admit(Some("s3cret"), Some(&local), &HeaderMap::new()).is_err(),
            "a token, once set, is needed from loopback too"
        );
    }
}
