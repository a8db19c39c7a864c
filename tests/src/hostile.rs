//! [`HostilePeer`]: an HTTP server on loopback that answers as an attacker
//! would, for tests of everything that fetches a URL from chain data or a peer.
//!
//! It speaks just enough HTTP/1.1 by hand (no framework that would tidy its
//! answers) and records each request's method and path, so a test can assert
//! both what the victim refused and that it never asked at all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the peer answers every request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// `200`, chunked (no `content-length` to check first), `bytes` long.
    Giant {
        /// The body's length.
        bytes: usize,
    },
    /// `200` with a `content-length` of 1 MiB, then one byte per `interval`.
    Drip {
        /// Between two bytes.
        interval: Duration,
    },
    /// Accepts and reads the request, then never answers (the connection stays open).
    Tarpit,
    /// `302` to `location` (e.g. an internal service).
    RedirectTo(String),
    /// `status` with `body`: an internal-only service holding a secret, an
    /// honest result server, a provider's attestation endpoint.
    Serve {
        /// The status code.
        status: u16,
        /// The body.
        body: Vec<u8>,
    },
}

/// A running hostile peer; stops when dropped.
pub struct HostilePeer {
    /// `http://127.0.0.1:{port}`.
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
    open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl HostilePeer {
    /// Starts a peer that answers as `behaviour` says.
    pub async fn start(behaviour: Behaviour) -> HostilePeer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let (seen, counted) = (requests.clone(), open.clone());
        let behaviour = Arc::new(behaviour);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, behaviour, open) = (seen.clone(), behaviour.clone(), counted.clone());
                open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    answer(stream, &behaviour, &seen).await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        HostilePeer {
            url,
            requests,
            open,
            task,
        }
    }

    /// Every request so far, as `"METHOD /path?query"`.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Connections still open (a drip or a tarpit ends when the victim gives up
    /// and the next write, or read, fails).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// How many requests arrived.
    pub fn hits(&self) -> usize {
        self.requests().len()
    }
}

impl Drop for HostilePeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut stream: TcpStream, behaviour: &Behaviour, seen: &Mutex<Vec<String>>) {
    let Some(line) = read_head(&mut stream).await else {
        return;
    };
    seen.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    match behaviour {
        Behaviour::Giant { bytes } => {
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = *bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                let framed = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
                left -= n;
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
        Behaviour::Drip { interval } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(*interval).await;
                if stream.write_all(b"{").await.is_err() {
                    return;
                }
            }
        }
        Behaviour::Tarpit => {
            // Hold the connection until the victim gives up.
            let mut buf = [0u8; 1024];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        Behaviour::RedirectTo(location) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
        }
        Behaviour::Serve { status, body } => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body).await;
        }
    }
}

/// Reads the request head (and whatever body came with it), at most 64 KiB;
/// returns `"METHOD /path"` from its first line.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let first = head.split(|b| *b == b'\r').next()?;
    let mut parts = std::str::from_utf8(first).ok()?.split(' ');
    Some(format!("{} {}", parts.next()?, parts.next()?))
}
