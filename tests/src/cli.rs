//! Running the `ntx` binary from the root package's tests: one command against a
//! chain (exit code and output, `--json` answers, refusals, `ntx wallet balance`),
//! a command left running and waited for with a deadline, and long-lived child
//! processes (`ntx devnet up`, `ntx agent run`) killed with SIGKILL.
//!
//! The binary's path is an argument: `env!("CARGO_BIN_EXE_ntx")` exists only in the
//! root package's tests.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ntx_node_agent::SignedAttestation;
use ntx_offchain::builder::EscrowUtxo;
use ntx_offchain::client::EscrowClient;
use ntx_offchain::protocol::{JobState, Verdict};
use ntx_offchain::wallet::Wallet;
use serde_json::Value as Json;

/// The environment variables `ntx` reads that would override what a test passes.
const CLEARED_ENV: [&str; 3] = ["NTX_NETWORK", "NTX_WALLET", "NTX_DEPLOYMENT"];

/// The `ntx` binary run in `dir` against the chain API at `url`.
pub struct Ntx {
    bin: PathBuf,
    dir: PathBuf,
    url: String,
}

impl Ntx {
    /// `bin` (the root package's `env!("CARGO_BIN_EXE_ntx")`) run in `dir`, with
    /// `NTX_PROVIDER_URL={url}` and no other `NTX_*` chain setting from the
    /// environment.
    pub fn new(bin: impl Into<PathBuf>, dir: &Path, url: impl Into<String>) -> Ntx {
        Ntx {
            bin: bin.into(),
            dir: dir.to_path_buf(),
            url: url.into(),
        }
    }

    /// The same binary and folder against another chain API.
    pub fn with_url(&self, url: impl Into<String>) -> Ntx {
        Ntx::new(self.bin.clone(), &self.dir, url)
    }

    /// The folder the commands run in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ntx args…`, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("NTX_PROVIDER_URL", &self.url);
        for var in CLEARED_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs `ntx args…`; returns the exit code, stdout and stderr.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().expect("ntx runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `ntx args… --json`, which must succeed; returns its answer.
    pub fn json(&self, args: &[&str]) -> Json {
        let mut all = args.to_vec();
        all.push("--json");
        let (code, out, err) = self.run(&all);
        assert_eq!(code, 0, "ntx {args:?} failed: {err}");
        parse_json(args, &out)
    }

    /// Runs `ntx args…`, which must fail with exit code 2 and say `why`.
    pub fn refused(&self, args: &[&str], why: &str) {
        let (code, _, err) = self.run(args);
        assert_eq!(code, 2, "ntx {args:?}: {err}");
        assert!(err.contains(why), "ntx {args:?} said {err:?}, not {why:?}");
    }

    /// `ntx wallet balance --wallet {wallet}`: lovelace and NTX units.
    pub fn balance(&self, wallet: &str) -> (u64, u64) {
        let b = self.json(&["wallet", "balance", "--wallet", wallet]);
        (
            b["lovelace"].as_u64().expect("lovelace"),
            b["ntx_units"].as_u64().expect("units"),
        )
    }

    /// `ntx job list`'s escrows.
    pub fn escrows(&self) -> Vec<Json> {
        self.json(&["job", "list"])["escrows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `ntx wallet new --out {who}.skey` for each of `who`: their answers (address,
    /// public key, key hash) by name.
    pub fn new_wallets<'a>(&self, who: &[&'a str]) -> BTreeMap<&'a str, Json> {
        who.iter()
            .map(|w| {
                (
                    *w,
                    self.json(&["wallet", "new", "--out", &format!("{w}.skey")]),
                )
            })
            .collect()
    }

    /// The wallets of a requester's session with a keeper: `requester`, `provider`,
    /// `agent`, `keeper`, `verifier1` and `verifier2` made (see
    /// [`Ntx::new_wallets`]), then the requester funded with 300 ADA and 100 NTX and
    /// the agent and the keeper with 50 ADA each.
    pub fn session_wallets(&self) -> BTreeMap<&'static str, Json> {
        let keys = self.new_wallets(&[
            "requester",
            "provider",
            "agent",
            "keeper",
            "verifier1",
            "verifier2",
        ]);
        for (who, ada, ntx) in [
            ("requester", "300", "100"),
            ("agent", "50", "0"),
            ("keeper", "50", "0"),
        ] {
            let address = keys[who]["address"].as_str().expect("address");
            self.fund(address, ada, ntx);
        }
        keys
    }

    /// `ntx devnet fund {address} --ada {ada} --ntx {ntx}`.
    pub fn fund(&self, address: &str, ada: &str, ntx: &str) -> Json {
        self.json(&["devnet", "fund", address, "--ada", ada, "--ntx", ntx])
    }

    /// Starts `ntx args…` with its output captured, for [`finish_within`].
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("ntx {args:?} starts: {e}"))
    }
}

/// The arguments of `ntx job lock` for `requester.skey` and `job.json`: paying
/// `provider` (an address), for `agent` (a key hash), at `price` NTX, due within
/// `submit_within` and `settle_within`. `--provider`'s value is at index 7.
pub fn lock_args(
    provider: &str,
    agent: &str,
    price: &str,
    submit_within: &str,
    settle_within: &str,
) -> Vec<String> {
    [
        "job",
        "lock",
        "--wallet",
        "requester.skey",
        "--spec",
        "job.json",
        "--provider",
        provider,
        "--agent",
        agent,
        "--price",
        price,
        "--submit-within",
        submit_within,
        "--settle-within",
        settle_within,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `{dir}/{who}.skey` (as `ntx wallet new` wrote it) as a devnet wallet.
pub fn wallet_in(dir: &Path, who: &str) -> Wallet {
    let text = std::fs::read_to_string(dir.join(format!("{who}.skey"))).expect("a key file");
    Wallet::from_secret_text(ntx_offchain::Network::Devnet, &text).expect("a wallet")
}

/// Submits `result` for the locked job `job_id` as `agent`, confirmed; returns the
/// submitted escrow.
pub async fn submit_result(
    client: &EscrowClient,
    agent: &Wallet,
    job_id: &[u8; 32],
    result: [u8; 32],
) -> EscrowUtxo {
    let escrow = client.escrow(job_id).await.expect("locked");
    let submit = client
        .submit(agent, &escrow, result, "http://provider.invalid/r")
        .await
        .expect("submit builds");
    client.send(&submit, 1).await.expect("submitted");
    let escrow = client.escrow(job_id).await.expect("submitted");
    assert!(matches!(escrow.datum.state, JobState::Submitted { .. }));
    escrow
}

/// Verifiers that a keeper's `ntx settle` asks for attestations: one small server
/// (`GET /attestations/{job}`) for all of them, answering with what [`accept`]
/// signed (an empty list for other jobs).
///
/// [`accept`]: AttestationServer::accept
pub struct AttestationServer {
    listener: tokio::net::TcpListener,
    /// Where it listens (`http://127.0.0.1:port`).
    pub url: String,
    served: BTreeMap<String, String>,
}

impl AttestationServer {
    /// Binds a loopback port (it serves once [`serve`](Self::serve) is called).
    pub async fn bind() -> AttestationServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        AttestationServer {
            listener,
            url,
            served: BTreeMap::new(),
        }
    }

    /// Writes `{dir}/job.json`: an `embed` job on "hello" naming the verifiers
    /// `who` (their `ntx wallet new` answers in `keys`) at this server.
    pub fn write_spec(&self, dir: &Path, keys: &BTreeMap<&str, Json>, who: &[&str]) {
        let verifiers: Vec<Json> = who
            .iter()
            .map(|v| serde_json::json!({"key": keys[v]["public_key"], "url": self.url}))
            .collect();
        let spec = serde_json::json!({
            "version": 1,
            "job": {"task": "embed", "inputs": ["hello"]},
            "verifiers": verifiers,
        });
        std::fs::write(dir.join("job.json"), spec.to_string()).expect("spec");
    }

    /// Serves, for `job_id`, Accepts of `result` signed by each of `who` (key files
    /// in `dir`) for `script_hash`.
    pub fn accept(
        &mut self,
        dir: &Path,
        who: &[&str],
        script_hash: [u8; 28],
        job_id: [u8; 32],
        result: [u8; 32],
    ) {
        let attestations: Vec<SignedAttestation> = who
            .iter()
            .map(|v| {
                SignedAttestation::sign(
                    &wallet_in(dir, v),
                    Verdict::Accept,
                    script_hash,
                    job_id,
                    result,
                )
            })
            .collect();
        self.served.insert(
            hex::encode(job_id),
            serde_json::to_string(&attestations).expect("json"),
        );
    }

    /// Serves in the background from now on.
    pub fn serve(self) {
        let served = self.served;
        let app = axum::Router::new().route(
            "/attestations/{job}",
            axum::routing::get(
                move |axum::extract::Path(job): axum::extract::Path<String>| {
                    let body = served.get(&job).cloned().unwrap_or_else(|| "[]".into());
                    async move { ([("content-type", "application/json")], body) }
                },
            ),
        );
        let listener = self.listener;
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
}

/// Parses the `--json` answer of `ntx args…`.
fn parse_json(args: &[&str], out: &str) -> Json {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("ntx {args:?}: {e}: {out}"))
}

/// A transaction answer's `fee_lovelace`.
pub fn fee(tx: &Json) -> u64 {
    tx["fee_lovelace"].as_u64().expect("a fee")
}

/// Waits for `child` (started with [`Ntx::spawn`]) to exit, polling every 100 ms;
/// kills it and fails the test with `what` and its stderr (and `context()`) after
/// `patience` from `started`. The command must succeed; returns its output.
pub async fn finish_within(
    mut child: Child,
    started: Instant,
    patience: Duration,
    what: &str,
    context: impl Fn() -> String,
) -> Output {
    while child.try_wait().expect("the child").is_none() {
        if started.elapsed() > patience {
            let _ = child.kill();
            let out = child.wait_with_output().expect("its output");
            panic!(
                "{what} did not finish within {patience:?}\n{}{}",
                String::from_utf8_lossy(&out.stderr),
                context()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output().expect("its output");
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A long-lived `ntx` child process, its stdout and stderr in a log file;
/// SIGKILLed when dropped.
pub struct Process {
    /// The child.
    pub child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` (stdin closed) with its output going to `log`.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Process {
        let out = File::create(&log).expect("a log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log file"))
            .stderr(out)
            .spawn()
            .expect("the process starts");
        Process { child, log }
    }

    /// What it has written so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test, with its output, if it has exited.
    pub fn assert_running(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{what} exited ({status}):\n{}", self.output());
        }
    }

    /// SIGKILL (on unix), and reap it.
    pub fn kill(&mut self) {
        self.child.kill().expect("the process is killed");
        let status = self.child.wait().expect("the process is reaped");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
        }
        let _ = status;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `{bin} devnet up --data-dir {data} --port {port} --slot-length-ms {slot_ms}`
/// (output in `{logs}/devnet-{run}.log`) and waits, up to `patience`, until its API
/// answers.
pub async fn devnet_up(
    bin: impl AsRef<Path>,
    data: &Path,
    port: u16,
    slot_ms: u64,
    logs: &Path,
    run: &str,
    patience: Duration,
) -> Process {
    let mut cmd = Command::new(bin.as_ref());
    cmd.args(["devnet", "up", "--port", &port.to_string()])
        .arg("--data-dir")
        .arg(data)
        .args(["--slot-length-ms", &slot_ms.to_string()])
        .env_remove("NTX_DEVNET_PORT")
        .env_remove("NTX_DEVNET_DATA_DIR");
    let mut devnet = Process::spawn(cmd, logs.join(format!("devnet-{run}.log")));
    let url = format!("http://127.0.0.1:{port}/api/v0/blocks/latest");
    wait_until_serving(&mut devnet, &url, patience, "ntx devnet up").await;
    devnet
}

/// Waits until `GET {url}` answers with a success, failing the test (with the
/// process's output) if `process` exits first or after `patience`.
pub async fn wait_until_serving(process: &mut Process, url: &str, patience: Duration, what: &str) {
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        process.assert_running(&format!("{what}, before serving {url},"));
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            start.elapsed() < patience,
            "{what} did not serve {url}:\n{}",
            process.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `config` as the TOML text `ntx agent run --config` reads (every field written
/// out, paths absolute as the parsed config holds them): for running an agent that
/// [`crate::agents::AgentToml`] configured as a child process.
pub fn agent_config_toml(config: &ntx_node_agent::AgentConfig) -> String {
    // TOML basic strings take JSON's escapes.
    let s = |v: &str| serde_json::to_string(v).expect("a string");
    let p = |v: &Path| s(&v.display().to_string());
    let models: Vec<String> = config.models.iter().map(|m| p(m)).collect();
    let mut text = format!(
        "deployment = {}\nstate_dir = {}\nlisten = {}\nmodels = [{}]\npoll_interval_ms = {}\n",
        p(&config.deployment),
        p(&config.state_dir),
        s(&config.listen.to_string()),
        models.join(", "),
        config.poll_interval_ms,
    );
    text += &format!("\n[chain]\nnetwork = {}\n", s(config.chain.network.name()));
    if let Some(url) = &config.chain.provider_url {
        text += &format!("provider_url = {}\n", s(url));
    }
    if let Some(pr) = &config.provider {
        text += &format!(
            "\n[provider]\nagent_key_file = {}\npayout_address = {}\nprice_floor = {}\nmax_concurrent_jobs = {}\npublic_url = {}\nsubmit_margin_secs = {}\nsettle_warning_secs = {}\nfast_path_secs = {}\n",
            p(&pr.agent_key_file),
            s(&pr.payout_address),
            pr.price_floor,
            pr.max_concurrent_jobs,
            s(&pr.public_url),
            pr.submit_margin_secs,
            pr.settle_warning_secs,
            pr.fast_path_secs,
        );
        let keys: Vec<String> = pr.policy.verifiers.iter().map(|k| s(k)).collect();
        text += &format!(
            "\n[provider.policy]\nverifiers = [{}]\nany_live_verifier = {}\nmin_threshold = {}\nmin_judge_window_secs = {}\n",
            keys.join(", "),
            pr.policy.any_live_verifier,
            pr.policy.min_threshold,
            pr.policy.min_judge_window_secs,
        );
        text += &offer_toml("provider", &pr.offer);
    }
    if let Some(v) = &config.verifier {
        text += &format!(
            "\n[verifier]\nkey_file = {}\npublic_url = {}\n",
            p(&v.key_file),
            s(&v.public_url),
        );
        text += &offer_toml("verifier", &v.offer);
    }
    text
}

/// A role's `[….offer]` section.
fn offer_toml(role: &str, o: &ntx_node_agent::OfferConfig) -> String {
    let mut text = format!(
        "\n[{role}.offer]\npublish = {}\nttl_secs = {}\ngenerate_price_per_token = {}\n",
        o.publish, o.ttl_secs, o.generate_price_per_token
    );
    if let Some(p) = o.embed_price {
        text += &format!("embed_price = {p}\n");
    }
    if let Some(p) = o.generate_price {
        text += &format!("generate_price = {p}\n");
    }
    text
}
