//! A Blockfrost-compatible HTTP provider: blockfrost.io, Yaci DevKit's store,
//! Dolos' minibf, and this project's devnet (`ntx devnet up`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use pallas_addresses::{Address, StakeAddress};
use reqwest::{Method, StatusCode};
use serde_json::Value as Json;
use tokio::time::Instant;

use super::convert::{self, hex_array};
use super::params::{ProtocolParams, json_u64, uint};
use super::retry::{RetryPolicy, parse_retry_after};
use super::{
    AddressTx, AssetHolding, AwaitOptions, AwaitSchedule, BlockRange, ChainError, ChainProvider,
    Confirmation, LabelledMetadata, RedeemerPurpose, RewardAccount, Tip, TxId, TxInfo, TxMetadata,
    TxRedeemer,
};
use crate::evaluate::{ExUnits, SlotConfig};
use crate::network::Network;
use crate::protocol::OutputReference;
use crate::tx::{ScriptRef, Utxo};

/// The environment variable that holds the blockfrost.io project id.
pub const PROJECT_ID_ENV: &str = "BLOCKFROST_PROJECT_ID";

/// Items per page (Blockfrost's maximum).
const PAGE: usize = 100;

/// A Blockfrost-compatible HTTP provider.
///
/// The project id is sent only as the `project_id` header; it never appears in
/// errors or in `Debug` output.
pub struct Blockfrost {
    network: Network,
    base_url: String,
    project_id: Option<String>,
    retry: RetryPolicy,
    http: reqwest::Client,
    scripts: Mutex<HashMap<[u8; 28], ScriptRef>>,
    slot_config: Mutex<Option<SlotConfig>>,
}

impl std::fmt::Debug for Blockfrost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blockfrost")
            .field("network", &self.network)
            .field("base_url", &self.base_url)
            .field(
                "project_id",
                &self.project_id.as_ref().map(|_| "<redacted>"),
            )
            .field("retry", &self.retry)
            .finish()
    }
}

impl Blockfrost {
    /// blockfrost.io's base URL for a public network.
    pub fn blockfrost_io_url(network: Network) -> Option<&'static str> {
        match network {
            Network::Mainnet => Some("https://cardano-mainnet.blockfrost.io/api/v0"),
            Network::Preprod => Some("https://cardano-preprod.blockfrost.io/api/v0"),
            Network::Preview => Some("https://cardano-preview.blockfrost.io/api/v0"),
            Network::Devnet => None,
        }
    }

    /// The default base URL of `ntx devnet up`.
    pub const DEVNET_URL: &'static str = "http://127.0.0.1:3000/api/v0";

    /// A provider at `base_url` (e.g. `http://127.0.0.1:3000/api/v0` for the
    /// devnet, Yaci's store URL), sending `project_id` if given.
    pub fn new(
        network: Network,
        base_url: &str,
        project_id: Option<String>,
    ) -> Result<Blockfrost, ChainError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| ChainError::Config(format!("the provider URL is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ChainError::Config(
                "the provider URL must start with http:// or https://".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ChainError::Config(format!("cannot set up HTTP: {}", e.without_url())))?;
        Ok(Blockfrost {
            network,
            base_url,
            project_id,
            retry: RetryPolicy::default(),
            http,
            scripts: Mutex::new(HashMap::new()),
            slot_config: Mutex::new(None),
        })
    }

    /// blockfrost.io for mainnet, preprod or preview, with the project id from
    /// [`PROJECT_ID_ENV`].
    pub fn blockfrost_io(network: Network) -> Result<Blockfrost, ChainError> {
        let url = Self::blockfrost_io_url(network).ok_or_else(|| {
            ChainError::Config(
                "blockfrost.io does not serve the devnet: give the devnet's URL (--provider-url)"
                    .into(),
            )
        })?;
        let id = std::env::var(PROJECT_ID_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                ChainError::Config(format!(
                    "set {PROJECT_ID_ENV} to your blockfrost.io project id for {network}, or give --provider-url"
                ))
            })?;
        Self::new(network, url, Some(id.trim().to_string()))
    }

    /// What `--network` and `--provider-url` select: the URL if given (sent
    /// the [`PROJECT_ID_ENV`] project id only if its host is
    /// `*.blockfrost.io`, so a key never leaks to another host), else
    /// blockfrost.io for public networks and [`Blockfrost::DEVNET_URL`] for the devnet.
    pub fn for_network(
        network: Network,
        provider_url: Option<&str>,
    ) -> Result<Blockfrost, ChainError> {
        match provider_url {
            Some(url) => {
                let host = reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default();
                let id = (host == "blockfrost.io" || host.ends_with(".blockfrost.io"))
                    .then(|| std::env::var(PROJECT_ID_ENV).ok())
                    .flatten()
                    .filter(|s| !s.trim().is_empty());
                Self::new(network, url, id)
            }
            None if network == Network::Devnet => Self::new(network, Self::DEVNET_URL, None),
            None => Self::blockfrost_io(network),
        }
    }

    /// This provider with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Blockfrost {
        self.retry = retry;
        self
    }

    /// The network it serves.
    pub fn network(&self) -> Network {
        self.network
    }

    /// Its base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// One request with bounded retries. Returns the final status and body of
    /// a response that is not worth retrying.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(StatusCode, Vec<u8>), ChainError> {
        let url = format!("{}{}", self.base_url, path);
        let start = Instant::now();
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url);
            if let Some(id) = &self.project_id {
                req = req.header("project_id", id);
            }
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/cbor")
                    .body(b.to_vec());
            }
            let (last, retry_after) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    match resp.bytes().await {
                        Ok(bytes) if !is_transient(status) => {
                            return Ok((status, bytes.to_vec()));
                        }
                        Ok(bytes) => (
                            format!("HTTP {}: {}", status.as_u16(), message_of(&bytes)),
                            retry_after,
                        ),
                        Err(e) => (
                            format!("reading the response failed: {}", e.without_url()),
                            None,
                        ),
                    }
                }
                Err(e) if e.is_builder() => {
                    return Err(ChainError::Config(format!(
                        "cannot build the request: {}",
                        e.without_url()
                    )));
                }
                Err(e) => (describe(&e), None),
            };
            let network_error = |last: String| ChainError::Network {
                endpoint: path.to_string(),
                attempts: attempt,
                last,
            };
            if attempt >= max_attempts {
                return Err(network_error(last));
            }
            let pause = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
            if start.elapsed() + pause > self.retry.max_total {
                return Err(network_error(format!(
                    "{last} (the next retry would pass the {:?} budget)",
                    self.retry.max_total
                )));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// GET a JSON document.
    async fn get_json(&self, path: &str) -> Result<Json, ChainError> {
        let (status, body) = self.send(Method::GET, path, None).await?;
        match status {
            s if s.is_success() => {
                serde_json::from_slice(&body).map_err(|e| ChainError::BadResponse {
                    endpoint: path.to_string(),
                    detail: format!("not JSON ({e})"),
                })
            }
            StatusCode::NOT_FOUND => Err(ChainError::NotFound {
                what: path.to_string(),
            }),
            s => Err(ChainError::Refused {
                endpoint: path.to_string(),
                status: s.as_u16(),
                message: message_of(&body),
            }),
        }
    }

    /// GET every page of a list (`?page=N&count=100` until a short page); a
    /// 404 on the first page is an empty list (Blockfrost's answer for an
    /// address never seen).
    async fn get_pages(&self, path: &str) -> Result<Vec<Json>, ChainError> {
        let mut out = Vec::new();
        for page in 1u64.. {
            let sep = if path.contains('?') { '&' } else { '?' };
            let paged = format!("{path}{sep}page={page}&count={PAGE}");
            let items = match self.get_json(&paged).await {
                Ok(Json::Array(items)) => items,
                Ok(_) => return Err(bad(&paged, "expected a list")),
                Err(ChainError::NotFound { .. }) if page == 1 => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let n = items.len();
            out.extend(items);
            if n < PAGE {
                break;
            }
        }
        Ok(out)
    }

    /// The reference script with `hash` (cached: scripts never change).
    async fn script(&self, hash: &[u8; 28]) -> Result<ScriptRef, ChainError> {
        if let Some(s) = self.lock_scripts().get(hash) {
            return Ok(s.clone());
        }
        let h = hex::encode(hash);
        let info_path = format!("/scripts/{h}");
        let info = self.get_json(&info_path).await?;
        let ty = info
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| bad(&info_path, "`type` is missing"))?
            .to_string();
        let cbor_path = format!("/scripts/{h}/cbor");
        let cbor = self.get_json(&cbor_path).await?;
        let cbor = cbor.get("cbor").and_then(Json::as_str);
        let script = if ty == "timelock" {
            let json = match cbor {
                Some(_) => None,
                None => Some(self.get_json(&format!("/scripts/{h}/json")).await?),
            };
            convert::native_script(cbor, json.as_ref().and_then(|j| j.get("json")), hash)
                .map_err(|e| bad(&cbor_path, &e))?
        } else {
            let cbor = cbor.ok_or_else(|| bad(&cbor_path, "`cbor` is missing"))?;
            convert::plutus_script(&ty, cbor, hash).map_err(|e| bad(&cbor_path, &e))?
        };
        self.lock_scripts().insert(*hash, script.clone());
        Ok(script)
    }

    fn lock_scripts(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 28], ScriptRef>> {
        self.scripts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// UTxO JSON objects → [`Utxo`]s, fetching reference scripts.
    async fn to_utxos(
        &self,
        endpoint: &str,
        items: &[Json],
        tx_hash: Option<&str>,
    ) -> Result<Vec<Utxo>, ChainError> {
        let mut out = Vec::with_capacity(items.len());
        for j in items {
            let script = match convert::reference_script_hash(j).map_err(|e| bad(endpoint, &e))? {
                Some(h) => Some(self.script(&h).await?),
                None => None,
            };
            out.push(convert::utxo_from_json(j, tx_hash, script).map_err(|e| bad(endpoint, &e))?);
        }
        Ok(out)
    }

    fn address_text(address: &Address) -> Result<String, ChainError> {
        match address {
            Address::Byron(b) => Ok(b.to_base58()),
            other => other.to_bech32().map_err(|e| {
                ChainError::Config(format!("cannot write the address as bech32: {e}"))
            }),
        }
    }

    /// The network's slot configuration, checking the provider's network magic
    /// for mainnet, preprod and preview.
    async fn fetch_slot_config(&self) -> Result<SlotConfig, ChainError> {
        let path = "/genesis";
        let g = self.get_json(path).await?;
        let magic = uint(&g, "network_magic").map_err(|e| bad(path, &e))?;
        // Public networks started in the Byron era (20 s slots); Plutus sees
        // time from the Shelley hard fork on, so their config is the known
        // (first Shelley slot, its POSIX time) pair (as Lucid and Blaze use).
        let known = match self.network {
            Network::Mainnet => Some(SlotConfig::MAINNET),
            Network::Preprod => Some(SlotConfig {
                zero_time_ms: 1_655_769_600_000,
                zero_slot: 86_400,
                slot_length_ms: 1000,
            }),
            Network::Preview => Some(SlotConfig {
                zero_time_ms: 1_666_656_000_000,
                zero_slot: 0,
                slot_length_ms: 1000,
            }),
            Network::Devnet => None,
        };
        if let Some(sc) = known {
            if magic != u64::from(self.network.magic()) {
                return Err(ChainError::WrongNetwork {
                    expected: self.network.name().to_string(),
                    served: magic,
                });
            }
            return Ok(sc);
        }
        // A local chain that starts in Shelley or later: slot 0 at system start.
        let zero_time_ms = match g.get("system_start_ms").and_then(json_u64) {
            Some(ms) => ms,
            None => uint(&g, "system_start").map_err(|e| bad(path, &e))? * 1000,
        };
        let slot_length_ms = match g.get("slot_length_ms").and_then(json_u64) {
            Some(ms) => ms,
            None => {
                let secs = g
                    .get("slot_length")
                    .and_then(Json::as_f64)
                    .ok_or_else(|| bad(path, "`slot_length` is missing"))?;
                (secs * 1000.0).round() as u64
            }
        };
        let slot_length_ms = u32::try_from(slot_length_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .ok_or_else(|| bad(path, "the slot length is out of range"))?;
        Ok(SlotConfig {
            zero_time_ms,
            zero_slot: 0,
            slot_length_ms,
        })
    }

    /// Where `tx` is on the chain, or `None` if it is not in a block (yet).
    async fn tx_block(&self, tx: &TxId) -> Result<Option<(u64, [u8; 32], u64)>, ChainError> {
        let path = format!("/txs/{}", hex::encode(tx));
        let j = match self.get_json(&path).await {
            Ok(j) => j,
            Err(ChainError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let height = uint(&j, "block_height").map_err(|e| bad(&path, &e))?;
        let slot = uint(&j, "slot").map_err(|e| bad(&path, &e))?;
        let block = j
            .get("block")
            .and_then(Json::as_str)
            .ok_or_else(|| bad(&path, "`block` is missing"))
            .and_then(|h| hex_array::<32>(h).map_err(|e| bad(&path, &e)))?;
        Ok(Some((height, block, slot)))
    }
}

#[async_trait::async_trait]
impl ChainProvider for Blockfrost {
    async fn protocol_params(&self) -> Result<ProtocolParams, ChainError> {
        let path = "/epochs/latest/parameters";
        let j = self.get_json(path).await?;
        ProtocolParams::from_blockfrost_json(&j).map_err(|e| bad(path, &e))
    }

    async fn tip(&self) -> Result<Tip, ChainError> {
        let path = "/blocks/latest";
        let j = self.get_json(path).await?;
        Ok(Tip {
            // Blockfrost has `null` slot and height for the genesis block.
            slot: j.get("slot").and_then(json_u64).unwrap_or(0),
            height: j.get("height").and_then(json_u64).unwrap_or(0),
            hash: j
                .get("hash")
                .and_then(Json::as_str)
                .ok_or_else(|| bad(path, "`hash` is missing"))
                .and_then(|h| hex_array::<32>(h).map_err(|e| bad(path, &e)))?,
        })
    }

    async fn slot_config(&self) -> Result<SlotConfig, ChainError> {
        let cached = *self.slot_config.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sc) = cached {
            return Ok(sc);
        }
        let sc = self.fetch_slot_config().await?;
        *self.slot_config.lock().unwrap_or_else(|p| p.into_inner()) = Some(sc);
        Ok(sc)
    }

    async fn utxos_at(&self, address: &Address) -> Result<Vec<Utxo>, ChainError> {
        let path = format!("/addresses/{}/utxos", Self::address_text(address)?);
        let items = self.get_pages(&path).await?;
        self.to_utxos(&path, &items, None).await
    }

    async fn utxos_at_stake(&self, stake: &StakeAddress) -> Result<Vec<Utxo>, ChainError> {
        let text = stake.to_bech32().map_err(|e| {
            ChainError::Config(format!("cannot write the stake address as bech32: {e}"))
        })?;
        let path = format!("/accounts/{text}/utxos");
        let items = self.get_pages(&path).await?;
        self.to_utxos(&path, &items, None).await
    }

    async fn policy_holdings(&self, policy: &[u8; 28]) -> Result<Vec<AssetHolding>, ChainError> {
        let policy_hex = hex::encode(policy);
        let path = format!("/assets/policy/{policy_hex}");
        let assets = self.get_pages(&path).await?;
        let mut out = Vec::new();
        for a in &assets {
            let unit = a
                .get("asset")
                .and_then(Json::as_str)
                .ok_or_else(|| bad(&path, "an entry has no `asset`"))?;
            let name = unit
                .strip_prefix(policy_hex.as_str())
                .and_then(|n| hex::decode(n).ok())
                .ok_or_else(|| bad(&path, "an `asset` is not under the policy asked for"))?;
            if a.get("quantity").and_then(json_u64) == Some(0) {
                continue; // minted and burned
            }
            let where_path = format!("/assets/{unit}/addresses");
            for h in self.get_pages(&where_path).await? {
                let address = h
                    .get("address")
                    .and_then(Json::as_str)
                    .and_then(|t| pallas_addresses::Address::from_bech32(t).ok())
                    .ok_or_else(|| bad(&where_path, "an entry has no readable `address`"))?;
                let quantity = h
                    .get("quantity")
                    .and_then(json_u64)
                    .ok_or_else(|| bad(&where_path, "an entry has no `quantity`"))?;
                out.push(AssetHolding {
                    name: name.clone(),
                    address: address.to_vec(),
                    quantity,
                });
            }
        }
        Ok(out)
    }

    async fn reward_account(
        &self,
        stake: &StakeAddress,
    ) -> Result<Option<RewardAccount>, ChainError> {
        let text = stake.to_bech32().map_err(|e| {
            ChainError::Config(format!("cannot write the stake address as bech32: {e}"))
        })?;
        let path = format!("/accounts/{text}");
        let j = match self.get_json(&path).await {
            Ok(j) => j,
            Err(ChainError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let active = j
            .get("active")
            .and_then(Json::as_bool)
            .ok_or_else(|| bad(&path, "`active` is missing or not a boolean"))?;
        if !active {
            return Ok(None);
        }
        let withdrawable = j
            .get("withdrawable_amount")
            .and_then(json_u64)
            .ok_or_else(|| bad(&path, "`withdrawable_amount` is missing or not a quantity"))?;
        Ok(Some(RewardAccount { withdrawable }))
    }

    async fn utxos_at_with_asset(
        &self,
        address: &Address,
        policy: &[u8; 28],
        name: &[u8],
    ) -> Result<Vec<Utxo>, ChainError> {
        let path = format!(
            "/addresses/{}/utxos/{}{}",
            Self::address_text(address)?,
            hex::encode(policy),
            hex::encode(name)
        );
        let items = self.get_pages(&path).await?;
        self.to_utxos(&path, &items, None).await
    }

    async fn utxo_by_ref(&self, reference: &OutputReference) -> Result<Option<Utxo>, ChainError> {
        let tx_hash = hex::encode(reference.transaction_id);
        let path = format!("/txs/{tx_hash}/utxos");
        let j = self.get_json(&path).await?;
        let outputs = j
            .get("outputs")
            .and_then(Json::as_array)
            .ok_or_else(|| bad(&path, "`outputs` is missing"))?;
        let at_index: Vec<&Json> = outputs
            .iter()
            .filter(|o| o.get("output_index").and_then(json_u64) == Some(reference.output_index))
            .collect();
        // A valid transaction's own output, else (is_valid = false) its collateral return.
        let Some(output) = at_index
            .iter()
            .find(|o| o.get("collateral") != Some(&Json::Bool(true)))
            .or(at_index.first())
        else {
            return Err(ChainError::NotFound {
                what: format!("output {tx_hash}#{}", reference.output_index),
            });
        };
        if output.get("consumed_by_tx").is_some_and(|c| !c.is_null()) {
            return Ok(None);
        }
        let mut utxos = self
            .to_utxos(&path, std::slice::from_ref(*output), Some(&tx_hash))
            .await?;
        Ok(utxos.pop())
    }

    async fn submit(&self, tx_cbor: &[u8]) -> Result<TxId, ChainError> {
        let path = "/tx/submit";
        let (status, body) = self.send(Method::POST, path, Some(tx_cbor)).await?;
        if status == StatusCode::BAD_REQUEST {
            return Err(ChainError::rejected(message_of(&body)));
        }
        if !status.is_success() {
            return Err(ChainError::Refused {
                endpoint: path.to_string(),
                status: status.as_u16(),
                message: message_of(&body),
            });
        }
        // Blockfrost answers with a JSON string; accept bare hex too.
        let text = String::from_utf8_lossy(&body);
        let id = serde_json::from_str::<String>(&text).unwrap_or_else(|_| text.trim().to_string());
        let id = hex_array::<32>(&id).map_err(|e| bad(path, &e))?;
        if let Some(local) = super::tx_id_of(tx_cbor)
            && local != id
        {
            return Err(bad(
                path,
                &format!(
                    "the provider reports id {} for transaction {}",
                    hex::encode(id),
                    hex::encode(local)
                ),
            ));
        }
        Ok(id)
    }

    async fn await_tx(
        &self,
        tx: &TxId,
        options: &AwaitOptions,
    ) -> Result<Confirmation, ChainError> {
        let mut schedule = AwaitSchedule::new(options);
        loop {
            schedule.check_cancelled()?;
            // Re-read the transaction each time: after a rollback it may be
            // gone again, or in another block.
            if let Some(place) = self.tx_block(tx).await? {
                let tip = self.tip().await?;
                if let Some(confirmation) = schedule.confirmed(tx, place, tip.height) {
                    return Ok(confirmation);
                }
            }
            schedule.pause(tx).await?;
        }
    }

    async fn tx_metadata(&self, tx: &TxId) -> Result<Vec<TxMetadata>, ChainError> {
        let path = format!("/txs/{}/metadata", hex::encode(tx));
        let j = self.get_json(&path).await?;
        let items = j.as_array().ok_or_else(|| bad(&path, "expected a list"))?;
        items
            .iter()
            .map(|m| {
                Ok(TxMetadata {
                    label: uint(m, "label").map_err(|e| bad(&path, &e))?,
                    json: m.get("json_metadata").cloned().unwrap_or(Json::Null),
                })
            })
            .collect()
    }

    async fn tx_redeemers(&self, tx: &TxId) -> Result<Vec<TxRedeemer>, ChainError> {
        let path = format!("/txs/{}/redeemers", hex::encode(tx));
        let j = self.get_json(&path).await?;
        let items = j.as_array().ok_or_else(|| bad(&path, "expected a list"))?;
        items
            .iter()
            .map(|r| redeemer_from_json(r).map_err(|e| bad(&path, &e)))
            .collect()
    }

    async fn address_transactions(
        &self,
        address: &Address,
        range: BlockRange,
    ) -> Result<Vec<AddressTx>, ChainError> {
        let mut path = format!(
            "/addresses/{}/transactions?order=asc",
            Self::address_text(address)?
        );
        if let Some(from) = range.from {
            path.push_str(&format!("&from={from}"));
        }
        if let Some(to) = range.to {
            path.push_str(&format!("&to={to}"));
        }
        let items = self.get_pages(&path).await?;
        let mut txs = items
            .iter()
            .map(|j| address_tx_from_json(j).map_err(|e| bad(&path, &e)))
            .collect::<Result<Vec<_>, _>>()?;
        // Providers that ignore `from`/`to` still give a correct answer.
        txs.retain(|t| range.contains(t.block_height));
        txs.sort_by_key(|t| (t.block_height, t.tx_index));
        txs.dedup_by_key(|t| t.tx_id);
        Ok(txs)
    }

    async fn tx_cbor(&self, tx: &TxId) -> Result<Vec<u8>, ChainError> {
        let path = format!("/txs/{}/cbor", hex::encode(tx));
        let j = self.get_json(&path).await?;
        let cbor = j
            .get("cbor")
            .and_then(Json::as_str)
            .ok_or_else(|| bad(&path, "`cbor` is missing"))?;
        let bytes = hex::decode(cbor).map_err(|_| bad(&path, "`cbor` is not hex"))?;
        match super::tx_id_of(&bytes) {
            Some(id) if id == *tx => Ok(bytes),
            Some(id) => Err(bad(
                &path,
                &format!("the served transaction's id is {}", hex::encode(id)),
            )),
            None => Err(bad(&path, "the served bytes are not a Conway transaction")),
        }
    }

    async fn tx_info(&self, tx: &TxId) -> Result<TxInfo, ChainError> {
        let path = format!("/txs/{}", hex::encode(tx));
        let j = self.get_json(&path).await?;
        tx_info_from_json(&j).map_err(|e| bad(&path, &e))
    }

    async fn metadata_by_label(&self, label: u64) -> Result<Vec<LabelledMetadata>, ChainError> {
        let path = format!("/metadata/txs/labels/{label}");
        let items = self.get_pages(&path).await?;
        items
            .iter()
            .map(|m| {
                let tx = m
                    .get("tx_hash")
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad(&path, "`tx_hash` is missing"))?;
                Ok(LabelledMetadata {
                    tx_id: hex_array::<32>(tx).map_err(|e| bad(&path, &e))?,
                    json: m.get("json_metadata").cloned().unwrap_or(Json::Null),
                })
            })
            .collect()
    }
}

fn address_tx_from_json(j: &Json) -> Result<AddressTx, String> {
    let tx = j
        .get("tx_hash")
        .and_then(Json::as_str)
        .ok_or("`tx_hash` is missing")?;
    Ok(AddressTx {
        tx_id: hex_array::<32>(tx)?,
        block_height: uint(j, "block_height")?,
        tx_index: uint(j, "tx_index")?,
        block_time: uint(j, "block_time")?,
    })
}

fn tx_info_from_json(j: &Json) -> Result<TxInfo, String> {
    let text = |f: &str| {
        j.get(f)
            .and_then(Json::as_str)
            .ok_or_else(|| format!("`{f}` is missing"))
    };
    Ok(TxInfo {
        tx_id: hex_array::<32>(text("hash")?)?,
        block_hash: hex_array::<32>(text("block")?)?,
        block_height: uint(j, "block_height")?,
        slot: uint(j, "slot")?,
        block_time: uint(j, "block_time")?,
        index: uint(j, "index")?,
        // Blockfrost omits nothing here, but older indexers may: a transaction
        // in a block without the flag passed its scripts.
        valid_contract: j
            .get("valid_contract")
            .and_then(Json::as_bool)
            .unwrap_or(true),
    })
}

fn redeemer_from_json(r: &Json) -> Result<TxRedeemer, String> {
    let text = |f: &str| {
        r.get(f)
            .and_then(Json::as_str)
            .ok_or_else(|| format!("`{f}` is missing"))
    };
    let purpose = match text("purpose")? {
        "spend" => RedeemerPurpose::Spend,
        "mint" => RedeemerPurpose::Mint,
        "cert" => RedeemerPurpose::Cert,
        "reward" => RedeemerPurpose::Reward,
        "vote" => RedeemerPurpose::Vote,
        "propose" => RedeemerPurpose::Propose,
        other => RedeemerPurpose::Other(other.to_string()),
    };
    Ok(TxRedeemer {
        purpose,
        index: u32::try_from(uint(r, "tx_index")?).map_err(|_| "`tx_index` is out of range")?,
        script_hash: hex_array::<28>(text("script_hash")?)?,
        redeemer_data_hash: hex_array::<32>(text("redeemer_data_hash")?)?,
        ex_units: ExUnits {
            mem: uint(r, "unit_mem")?,
            steps: uint(r, "unit_steps")?,
        },
        fee: uint(r, "fee")?,
    })
}

fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 425 || status.is_server_error()
}

/// The `message` of a Blockfrost error body, else the body's text (shortened).
fn message_of(body: &[u8]) -> String {
    if let Ok(j) = serde_json::from_slice::<Json>(body)
        && let Some(m) = j.get("message")
    {
        return match m {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(500) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None if text.is_empty() => "(empty body)".to_string(),
        None => text.to_string(),
    }
}

/// A transport error, without the URL.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let mut msg = format!("{kind}: {}", ErrorChain(e));
    // reqwest's Display may name the URL; the base URL carries no secret,
    // but keep the message short and host-free anyway.
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "<url>");
    }
    msg
}

struct ErrorChain<'a>(&'a reqwest::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::error::Error as _;
        let mut source = self.0.source();
        let mut first = true;
        while let Some(s) = source {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{s}")?;
            first = false;
            source = s.source();
        }
        if first {
            f.write_str("no detail")?;
        }
        Ok(())
    }
}

fn bad(endpoint: &str, detail: &str) -> ChainError {
    ChainError::BadResponse {
        endpoint: endpoint.to_string(),
        detail: detail.to_string(),
    }
}
