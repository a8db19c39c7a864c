//! Running node agents inside a test: a started agent, and the small helpers
//! the agent tests, the load test and the latency bench share.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ntx_node_agent::AgentConfig;
use ntx_offchain::protocol::Address;
use ntx_offchain::wallet::{KeyRole, SigningKey, Wallet};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Sends `tracing` output to the test's captured output (`RUST_LOG` filters it).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A wallet's address as the escrow's datum holds it.
pub fn address(w: &Wallet) -> Address {
    Address::from(w.address().as_pallas())
}

/// Writes `key` as `{dir}/{name}.skey` (cardano-cli TextEnvelope).
pub fn write_key(dir: &Path, name: &str, key: &SigningKey) -> PathBuf {
    let path = dir.join(format!("{name}.skey"));
    let text = key.to_text_envelope(KeyRole::Payment).expect("a plain key");
    std::fs::write(&path, text.as_bytes()).expect("key written");
    path
}

/// One agent running in this process; cancelled when dropped.
pub struct Agent {
    /// Its HTTP API.
    pub url: String,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Agent {
    /// Starts `ntx_node_agent::run_agent` with `config`.
    pub fn start(config: AgentConfig) -> Agent {
        let cancel = CancellationToken::new();
        let url = format!("http://{}", config.listen);
        let c = cancel.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = ntx_node_agent::run_agent(config, c).await {
                panic!("the agent stopped with an error: {e}");
            }
        });
        Agent {
            url,
            cancel,
            task: Some(task),
        }
    }

    /// Cancels the agent and waits until it has stopped (graceful shutdown).
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            t.await.expect("the agent task ends cleanly");
        }
    }

    /// The agent's job rows (`GET /jobs`).
    pub async fn jobs(&self) -> Vec<serde_json::Value> {
        let Ok(r) = reqwest::get(format!("{}/jobs", self.url)).await else {
            return Vec::new();
        };
        r.json().await.unwrap_or_default()
    }

    /// The agent's row for one job.
    pub async fn job(&self, job_id: &[u8; 32]) -> Option<serde_json::Value> {
        let id = hex::encode(job_id);
        self.jobs().await.into_iter().find(|j| j["job_id"] == id)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Polls `f` every 200 ms until it gives `Some`; fails the test after `patience`.
pub async fn wait_for<T, F, Fut>(what: &str, patience: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < patience, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
