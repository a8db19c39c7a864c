//! [`PeerFetcher`]: bounded GETs and POSTs of URLs from chain data or peers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::address::AddressPolicy;

/// The most bytes and the longest time one fetch may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The body's cap, counted while reading.
    pub max_bytes: usize,
    /// Connect, headers and the whole body, in all.
    pub budget: Duration,
}

impl Limit {
    /// A job spec: a small JSON document.
    pub const SPEC: Limit = Limit {
        max_bytes: 1 << 20,
        budget: Duration::from_secs(20),
    };
    /// Result bytes: embeddings of a few thousand sentences, or generated text.
    pub const RESULT: Limit = Limit {
        max_bytes: 64 << 20,
        budget: Duration::from_secs(60),
    };
    /// An agent's attestations for one job (a JSON array of a few entries).
    pub const ATTESTATIONS: Limit = Limit {
        max_bytes: 64 << 10,
        budget: Duration::from_secs(5),
    };
}

/// What is being fetched; each kind has its own [`Limit`] in [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    /// A job spec (lock records' URLs).
    Spec,
    /// Result bytes (submit records' URLs).
    Result,
    /// Attestations, fetched from or pushed to an agent.
    Attestations,
}

/// The [`Limit`] a fetcher applies to each [`FetchKind`]; the default is
/// [`Limit::SPEC`], [`Limit::RESULT`] and [`Limit::ATTESTATIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// For specs.
    pub spec: Limit,
    /// For results.
    pub result: Limit,
    /// For attestations.
    pub attestations: Limit,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            spec: Limit::SPEC,
            result: Limit::RESULT,
            attestations: Limit::ATTESTATIONS,
        }
    }
}

impl Limits {
    /// The limit for `kind`.
    pub fn of(&self, kind: FetchKind) -> Limit {
        match kind {
            FetchKind::Spec => self.spec,
            FetchKind::Result => self.result,
            FetchKind::Attestations => self.attestations,
        }
    }
}

/// Why a URL was not fetched at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// Not a URL.
    #[error("not a URL ({0})")]
    Malformed(String),
    /// A scheme other than http and https.
    #[error("scheme `{0}` (only http and https are fetched)")]
    Scheme(String),
    /// User or password in the URL.
    #[error("it carries credentials")]
    Credentials,
    /// No host.
    #[error("it has no host")]
    NoHost,
    /// The host is, or resolves to, an address the policy forbids.
    #[error(
        "{host} is {ip}, a loopback, private or otherwise non-public address (an operator may allow those for a devnet)"
    )]
    NonPublic {
        /// The URL's host.
        host: String,
        /// The address it is or resolves to.
        ip: IpAddr,
    },
    /// The answer was a redirect, which is never followed.
    #[error("it answered with a redirect ({status}), which is not followed")]
    Redirect {
        /// The 3xx status.
        status: u16,
    },
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not one this fetcher reaches: final, never retried.
    #[error("refused to fetch {url}: {reason}")]
    Refused {
        /// The URL.
        url: String,
        /// Why.
        reason: UrlRefusal,
    },
    /// The body is larger than the cap: final.
    #[error("{url} answered with more than {cap} bytes: refused")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        cap: usize,
    },
    /// An HTTP error status (a result may not be served yet: retryable).
    #[error("{url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// No complete answer within the budget (a slow or dripping peer).
    #[error("{url} sent no complete answer within {budget:?}")]
    TooSlow {
        /// The URL.
        url: String,
        /// The budget.
        budget: Duration,
    },
    /// The HTTP client could not start (its TLS backend).
    #[error("cannot start an HTTP client: {0}")]
    Setup(String),
    /// Connection or protocol failure (a name that does not resolve among them).
    #[error("{url} could not be reached: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
    },
}

impl FetchError {
    /// Whether trying again cannot help: the URL is refused or the body too large.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            FetchError::Refused { .. } | FetchError::TooLarge { .. }
        )
    }
}

/// Fetches strangers' URLs within an [`AddressPolicy`] and a [`Limit`] per
/// [`FetchKind`].
#[derive(Clone)]
pub struct PeerFetcher {
    client: reqwest::Client,
    policy: AddressPolicy,
    limits: Limits,
}

impl std::fmt::Debug for PeerFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerFetcher")
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Resolves names for the client and refuses a name with any address the policy
/// forbids. The connection goes only to the addresses checked here, so a name
/// cannot pass a check and then answer differently at connect time.
struct GuardedResolver {
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if let Some(a) = addrs.iter().find(|a| !policy.permits(a.ip())) {
                return Err(Box::new(UrlRefusal::NonPublic {
                    host: name.as_str().to_string(),
                    ip: a.ip(),
                }) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl PeerFetcher {
    /// A fetcher under `policy` with the default [`Limits`]; fails only when the
    /// HTTP client (its TLS backend) cannot start.
    pub fn new(policy: AddressPolicy) -> Result<PeerFetcher, FetchError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .build()
            .map_err(|e| FetchError::Setup(error_chain(&e)))?;
        Ok(PeerFetcher {
            client,
            policy,
            limits: Limits::default(),
        })
    }

    /// This fetcher with `limits` instead.
    pub fn with_limits(self, limits: Limits) -> PeerFetcher {
        PeerFetcher { limits, ..self }
    }

    /// Its address policy.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Checks what can be checked of `url` before connecting: the scheme, no
    /// credentials, a host, and a literal IP host against the policy (names are
    /// checked by the resolver, on the addresses the connection will use).
    fn check(&self, url: &str) -> Result<Url, FetchError> {
        let refused = |reason| FetchError::Refused {
            url: url.to_string(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|e| refused(UrlRefusal::Malformed(e.to_string())))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(refused(UrlRefusal::Scheme(parsed.scheme().to_string())));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refused(UrlRefusal::Credentials));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| refused(UrlRefusal::NoHost))?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Some(ip) = literal
            .parse::<IpAddr>()
            .ok()
            .filter(|ip| !self.policy.permits(*ip))
        {
            return Err(refused(UrlRefusal::NonPublic {
                host: ip.to_string(),
                ip,
            }));
        }
        Ok(parsed)
    }

    /// GETs `url` within the limit for `kind`.
    pub async fn get(&self, url: &str, kind: FetchKind) -> Result<Vec<u8>, FetchError> {
        let request = self.client.get(self.check(url)?);
        let (status, body) = self.exchange(url, request, self.limits.of(kind)).await?;
        if !(200..300).contains(&status) {
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
            });
        }
        Ok(body)
    }

    /// POSTs `body` as JSON to `url` within the limit for `kind`; returns the
    /// status and the answer's body, whatever the status.
    pub async fn post_json<T: serde::Serialize + ?Sized>(
        &self,
        url: &str,
        body: &T,
        kind: FetchKind,
    ) -> Result<(u16, Vec<u8>), FetchError> {
        let request = self.client.post(self.check(url)?).json(body);
        self.exchange(url, request, self.limits.of(kind)).await
    }

    /// Sends `request` and reads the answer, all within `limit`: no redirect, the
    /// body counted against the cap as it arrives.
    async fn exchange(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
        limit: Limit,
    ) -> Result<(u16, Vec<u8>), FetchError> {
        let too_slow = || FetchError::TooSlow {
            url: url.to_string(),
            budget: limit.budget,
        };
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            cap: limit.max_bytes,
        };
        let failed = |e: reqwest::Error| match refusal_in(&e) {
            Some(reason) => FetchError::Refused {
                url: url.to_string(),
                reason,
            },
            None => FetchError::Unreachable {
                url: url.to_string(),
                detail: error_chain(&e),
            },
        };
        let started = Instant::now();
        let mut response = tokio::time::timeout(limit.budget, request.send())
            .await
            .map_err(|_| too_slow())?
            .map_err(failed)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Refused {
                url: url.to_string(),
                reason: UrlRefusal::Redirect {
                    status: status.as_u16(),
                },
            });
        }
        if response
            .content_length()
            .is_some_and(|n| n > limit.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        loop {
            let left = limit.budget.saturating_sub(started.elapsed());
            let chunk = tokio::time::timeout(left, response.chunk())
                .await
                .map_err(|_| too_slow())?
                .map_err(failed)?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > limit.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status.as_u16(), body))
    }
}

/// The resolver's refusal, if that is why the request failed (found by type in
/// the error's sources).
fn refusal_in(e: &reqwest::Error) -> Option<UrlRefusal> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refusal) = s.downcast_ref::<UrlRefusal>() {
            return Some(refusal.clone());
        }
        source = s.source();
    }
    None
}

/// An error with its sources, for a log line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A hostile peer on loopback: answers every connection with `answer`, which
    /// writes what it likes; counts the connections.
    async fn hostile<F, Fut>(answer: F) -> (String, Arc<AtomicUsize>)
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    answer(stream).await;
                });
            }
        });
        (url, hits)
    }

    /// A fetcher that allows loopback, with [`SMALL`] for every kind.
    fn allow() -> PeerFetcher {
        PeerFetcher::new(AddressPolicy::AllowPrivate)
            .expect("a fetcher")
            .with_limits(Limits {
                spec: SMALL,
                result: SMALL,
                attestations: SMALL,
            })
    }

    const SMALL: Limit = Limit {
        max_bytes: 1 << 16,
        budget: Duration::from_secs(2),
    };

    #[tokio::test]
    async fn a_chunked_body_over_the_cap_is_refused_while_reading() {
        let (url, _) = hostile(|mut s| async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            let chunk = vec![b'x'; 8192];
            // 64 MiB if read to the end; no content-length to check first.
            for _ in 0..8192 {
                let head = format!("{:x}\r\n", chunk.len());
                if s.write_all(head.as_bytes()).await.is_err()
                    || s.write_all(&chunk).await.is_err()
                    || s.write_all(b"\r\n").await.is_err()
                {
                    return;
                }
            }
        })
        .await;
        let err = allow()
            .get(&url, FetchKind::Spec)
            .await
            .expect_err("over the cap");
        assert!(
            matches!(err, FetchError::TooLarge { cap, .. } if cap == SMALL.max_bytes),
            "{err}"
        );
        assert!(err.is_final());
    }

    #[tokio::test]
    async fn a_dripping_body_ends_at_the_budget() {
        let (url, _) = hostile(|mut s| async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                .await;
            for _ in 0..1000 {
                if s.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
        .await;
        let started = Instant::now();
        let err = allow()
            .get(&url, FetchKind::Spec)
            .await
            .expect_err("too slow");
        assert!(matches!(err, FetchError::TooSlow { .. }), "{err}");
        assert!(started.elapsed() < SMALL.budget + Duration::from_secs(2));
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (target, target_hits) = hostile(|mut s| async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret")
                .await;
        })
        .await;
        let (url, _) = hostile(move |mut s| {
            let location = format!(
                "HTTP/1.1 302 Found\r\nlocation: {target}/internal\r\ncontent-length: 0\r\n\r\n"
            );
            async move {
                let _ = s.write_all(location.as_bytes()).await;
            }
        })
        .await;
        let err = allow()
            .get(&url, FetchKind::Spec)
            .await
            .expect_err("a redirect");
        assert!(
            matches!(
                &err,
                FetchError::Refused {
                    reason: UrlRefusal::Redirect { status: 302 },
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(target_hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn internal_addresses_are_refused_before_any_request() {
        let (url, hits) = hostile(|mut s| async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret")
                .await;
        })
        .await;
        let public = PeerFetcher::new(AddressPolicy::PublicOnly).expect("a fetcher");
        let port = url.rsplit(':').next().expect("a port");
        for u in [
            url.clone(),
            format!("http://localhost:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            "http://169.254.169.254/latest/meta-data".to_string(),
            "http://10.0.0.1/".to_string(),
        ] {
            let err = public.get(&u, FetchKind::Spec).await.expect_err("internal");
            assert!(
                matches!(
                    &err,
                    FetchError::Refused {
                        reason: UrlRefusal::NonPublic { .. },
                        ..
                    }
                ),
                "{u}: {err}"
            );
        }
        for (u, want) in [
            ("file:///etc/passwd", "scheme"),
            ("ftp://example.org/x", "scheme"),
            ("http://user:pw@example.org/", "credentials"),
            ("not a url", "malformed"),
        ] {
            let err = public.get(u, FetchKind::Spec).await.expect_err("refused");
            let FetchError::Refused { reason, .. } = &err else {
                panic!("{u}: {err}");
            };
            let got = match reason {
                UrlRefusal::Scheme(_) => "scheme",
                UrlRefusal::Credentials => "credentials",
                UrlRefusal::Malformed(_) => "malformed",
                _ => "other",
            };
            assert_eq!(got, want, "{u}: {err}");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        // The same server is reachable when the operator allows private addresses.
        assert_eq!(
            allow().get(&url, FetchKind::Spec).await.expect("allowed"),
            b"secret"
        );
    }
}
