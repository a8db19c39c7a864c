//! The HTTP API: the Blockfrost subset off-chain libraries use (under
//! `/api/v0` and at the root) and the `/devnet/` admin API.

mod accounts;
mod assets;
mod network;
mod yaci;

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pallas_crypto::hash::Hash;
use pallas_primitives::Metadatum;
use serde::Deserialize;
use serde_json::{Value as J, json};
use tokio_util::sync::CancellationToken;

use crate::chain::{ClockMode, Devnet, DevnetConfig, RollbackMode};
use crate::error::DevnetError;
use crate::genesis::{EPOCH_LENGTH, GenesisConfig, NETWORK_MAGIC};
use crate::ledger::OutRef;
use crate::store::OutputRecord;
use crate::value::OutputView;

/// Blockfrost's page size.
const PAGE: u64 = 100;

/// Blockfrost's JSON rendering of a metadatum (no schema).
pub fn metadatum_json(m: &Metadatum) -> J {
    match m {
        Metadatum::Int(i) => {
            let v: i128 = i.0.into();
            serde_json::Number::from_i128(v)
                .map(J::Number)
                .unwrap_or(J::Null)
        }
        Metadatum::Bytes(b) => J::String(format!("0x{}", hex::encode(b.as_slice()))),
        Metadatum::Text(t) => J::String(t.clone()),
        Metadatum::Array(a) => J::Array(a.iter().map(metadatum_json).collect()),
        Metadatum::Map(kv) => {
            let mut o = serde_json::Map::new();
            for (k, v) in kv.iter() {
                let key = match metadatum_json(k) {
                    J::String(s) => s,
                    other => other.to_string(),
                };
                o.insert(key, metadatum_json(v));
            }
            J::Object(o)
        }
    }
}

/// An API error with Blockfrost's body.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self.0 {
            StatusCode::NOT_FOUND => "Not Found",
            StatusCode::BAD_REQUEST => "Bad Request",
            MEMPOOL_FULL => "Mempool Full",
            _ => "Internal Server Error",
        };
        (
            self.0,
            Json(json!({"status_code": self.0.as_u16(), "error": error, "message": self.1})),
        )
            .into_response()
    }
}

/// Blockfrost's answer to a submission the mempool has no room for.
const MEMPOOL_FULL: StatusCode = StatusCode::TOO_EARLY;

impl From<DevnetError> for ApiError {
    fn from(e: DevnetError) -> Self {
        match &e {
            DevnetError::MempoolFull { .. } => ApiError(MEMPOOL_FULL, e.to_string()),
            DevnetError::Ledger(_) | DevnetError::BadRequest(_) => {
                ApiError(StatusCode::BAD_REQUEST, e.to_string())
            }
            DevnetError::NotFound(_) => ApiError(StatusCode::NOT_FOUND, e.to_string()),
            _ => ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

type R = Result<Json<J>, ApiError>;

fn not_found(what: &str) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("The requested component has not been found. ({what})"),
    )
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn hex32(s: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(s)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| bad(format!("{s:?} is not a 32-byte hex hash")))
}

fn address_bytes(s: &str) -> Result<Vec<u8>, ApiError> {
    pallas_addresses::Address::from_bech32(s)
        .or_else(|_| pallas_addresses::Address::from_hex(s))
        .map(|a| a.to_vec())
        .map_err(|e| bad(format!("invalid address {s:?}: {e}")))
}

#[derive(Deserialize)]
struct PageQ {
    page: Option<u64>,
    count: Option<u64>,
    order: Option<String>,
}

impl PageQ {
    /// `order=desc` (Blockfrost's default is `asc`).
    fn descending(&self) -> Result<bool, ApiError> {
        match self.order.as_deref() {
            None | Some("asc") => Ok(false),
            Some("desc") => Ok(true),
            Some(other) => Err(bad(format!("order must be asc or desc, not {other:?}"))),
        }
    }

    fn window(&self) -> (u64, u64) {
        let count = self.count.unwrap_or(PAGE).clamp(1, PAGE);
        let page = self.page.unwrap_or(1).max(1);
        (count, (page - 1) * count)
    }
}

fn utxo_json(d: &Devnet, r: &OutRef, cbor: &[u8], height: u64) -> J {
    let v = OutputView::decode(cbor).ok();
    let block = d
        .with_core(|c| c.store.block(height).ok().flatten())
        .map(|b| b.hash.to_string());
    json!({
        "address": v.as_ref().map(|v| v.address_text()),
        "tx_hash": r.tx_hash.to_string(),
        "tx_index": r.index,
        "output_index": r.index,
        "amount": v.as_ref().map(|v| v.value.to_blockfrost()),
        "block": block,
        "data_hash": v.as_ref().and_then(|v| v.datum_hash.map(|h| h.to_string())
            .or_else(|| v.inline_datum.as_ref().map(|d| pallas_crypto::hash::Hasher::<256>::hash(d).to_string()))),
        "inline_datum": v.as_ref().and_then(|v| v.inline_datum.as_ref().map(hex::encode)),
        "reference_script_hash": v.as_ref().and_then(|v| v.script_ref_hash().map(|h| h.to_string())),
    })
}

async fn parameters(State(d): State<Devnet>) -> R {
    let epoch = d.current_slot() / EPOCH_LENGTH;
    Ok(Json(d.protocol_params().to_blockfrost_json(epoch)))
}

async fn epoch_latest(State(d): State<Devnet>) -> R {
    let slot = d.current_slot();
    let sc = d.slot_config();
    let epoch = slot / EPOCH_LENGTH;
    let start = sc.slot_to_posix_ms(epoch * EPOCH_LENGTH) / 1000;
    let end = sc.slot_to_posix_ms((epoch + 1) * EPOCH_LENGTH) / 1000;
    let t = d.with_core(|c| {
        c.store
            .block_totals(epoch * EPOCH_LENGTH, (epoch + 1) * EPOCH_LENGTH)
    })?;
    Ok(Json(json!({
        "epoch": epoch, "start_time": start, "end_time": end,
        "first_block_time": t.first_time.unwrap_or(start),
        "last_block_time": t.last_time.unwrap_or(start),
        "block_count": t.blocks, "tx_count": t.txs,
        "output": t.output.to_string(), "fees": t.fees.to_string(), "active_stake": null,
    })))
}

fn block_json(d: &Devnet, b: &crate::store::BlockInfo) -> J {
    let tip = d.tip();
    let next = d
        .with_core(|c| c.store.block(b.height + 1).ok().flatten())
        .map(|n| n.hash.to_string());
    json!({
        "time": b.time, "height": b.height, "hash": b.hash.to_string(), "slot": b.slot,
        "epoch": b.slot / EPOCH_LENGTH, "epoch_slot": b.slot % EPOCH_LENGTH,
        "slot_leader": "devnet", "size": b.size, "tx_count": b.tx_count,
        "output": b.output.to_string(), "fees": b.fees.to_string(),
        "block_vrf": null, "op_cert": null, "op_cert_counter": null,
        "previous_block": if b.height == 0 { J::Null } else { J::String(b.prev_hash.to_string()) },
        "next_block": next, "confirmations": tip.height - b.height.min(tip.height),
    })
}

async fn block_latest(State(d): State<Devnet>) -> R {
    Ok(Json(block_json(&d, &d.tip())))
}

/// `/blocks/{hash_or_number}`: 64 hex digits are a hash (even all digits, e.g.
/// 64 zeros, which is no block's hash), anything shorter a height.
async fn block_by(State(d): State<Devnet>, Path(id): Path<String>) -> R {
    let b = if id.len() == 64 {
        let hash = hex32(&id)?;
        d.with_core(|c| c.store.block_by_hash(&hash))?
    } else {
        let height: u64 = id
            .parse()
            .map_err(|_| bad(format!("{id:?} is neither a block hash nor a height")))?;
        d.with_core(|c| c.store.block(height))?
    };
    let b = b.ok_or_else(|| not_found("block"))?;
    Ok(Json(block_json(&d, &b)))
}

async fn genesis(State(d): State<Devnet>) -> R {
    let s = d.status();
    let slot_length = if s.slot_length_ms % 1000 == 0 {
        json!(s.slot_length_ms / 1000)
    } else {
        json!(s.slot_length_ms as f64 / 1000.0)
    };
    Ok(Json(json!({
        "active_slots_coefficient": 1.0, "update_quorum": 1,
        "max_lovelace_supply": "45000000000000000", "network_magic": NETWORK_MAGIC,
        "epoch_length": EPOCH_LENGTH, "system_start": s.system_start_ms / 1000,
        "slots_per_kes_period": 129600, "slot_length": slot_length,
        "max_kes_evolutions": 62, "security_param": 2160,
        "slot_length_ms": s.slot_length_ms, "system_start_ms": s.system_start_ms,
    })))
}

async fn address_utxos(
    State(d): State<Devnet>,
    Path(addr): Path<String>,
    Query(q): Query<PageQ>,
) -> R {
    address_utxos_filtered(d, addr, None, q).await
}

async fn address_utxos_unit(
    State(d): State<Devnet>,
    Path((addr, unit)): Path<(String, String)>,
    Query(q): Query<PageQ>,
) -> R {
    address_utxos_filtered(d, addr, Some(unit), q).await
}

/// What `/addresses/{address}/utxos` names: an address, or (as Lucid's
/// `utxosAt(credential)` sends it) a payment credential, `addr_vkh1…` or
/// `script1…`, meaning every address with that payment part.
enum AddressQuery {
    Exact(Vec<u8>),
    Payment { script: bool, hash: [u8; 28] },
}

fn address_query(s: &str) -> Result<AddressQuery, ApiError> {
    if let Ok((hrp, data)) = bech32::decode(s) {
        let script = match hrp.as_str() {
            "addr_vkh" | "addr_shared_vkh" => Some(false),
            "script" => Some(true),
            _ => None,
        };
        if let Some(script) = script {
            let hash: [u8; 28] = data
                .try_into()
                .map_err(|_| bad(format!("{s:?} does not hold a 28-byte credential")))?;
            return Ok(AddressQuery::Payment { script, hash });
        }
    }
    address_bytes(s).map(AddressQuery::Exact)
}

/// Whether `address` (bytes) has the payment part `script`/`hash`.
fn pays_to(address: &[u8], script: bool, hash: &[u8; 28]) -> bool {
    let Some(header) = address.first() else {
        return false;
    };
    let kind = header >> 4;
    // Shelley address types 0–7: bit 0 of the type is "payment part is a script".
    kind <= 7 && (kind & 1 == 1) == script && address.get(1..29) == Some(hash.as_slice())
}

async fn address_utxos_filtered(d: Devnet, addr: String, unit: Option<String>, q: PageQ) -> R {
    let query = address_query(&addr)?;
    let (count, offset) = q.window();
    let mut rows: Vec<OutputRecord> = match &query {
        AddressQuery::Exact(a) => d.with_core(|c| c.store.utxos_at(a, u64::MAX >> 2, 0))?,
        AddressQuery::Payment { script, hash } => {
            d.utxos_where(|address| pays_to(address, *script, hash))?
        }
    };
    if let Some(u) = &unit {
        rows.retain(|r| {
            utxo_json(&d, &r.out_ref, &r.cbor, r.created_height)["amount"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["unit"] == J::String(u.clone())))
        });
    }
    if q.descending()? {
        rows.reverse();
    }
    Ok(Json(J::Array(
        rows.iter()
            .skip(offset as usize)
            .take(count as usize)
            .map(|r| utxo_json(&d, &r.out_ref, &r.cbor, r.created_height))
            .collect(),
    )))
}

/// `/addresses/{a}/transactions` query: Blockfrost's paging, `order`, and
/// `from`/`to` as `height[:index]` (both included).
#[derive(Deserialize)]
struct AddressTxsQ {
    page: Option<u64>,
    count: Option<u64>,
    order: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Blockfrost's `height[:index]` bound.
fn block_bound(s: &str) -> Result<(u64, Option<u64>), ApiError> {
    let (h, i) = match s.split_once(':') {
        Some((h, i)) => (h, Some(i)),
        None => (s, None),
    };
    let parse = |x: &str| {
        x.parse::<u64>()
            .map_err(|_| bad(format!("{s:?} is not a block height[:index]")))
    };
    Ok((parse(h)?, i.map(parse).transpose()?))
}

async fn address_txs(
    State(d): State<Devnet>,
    Path(addr): Path<String>,
    Query(q): Query<AddressTxsQ>,
) -> R {
    let a = address_bytes(&addr)?;
    let (count, offset) = PageQ {
        page: q.page,
        count: q.count,
        order: None,
    }
    .window();
    let from = q.from.as_deref().map(block_bound).transpose()?;
    let to = q.to.as_deref().map(block_bound).transpose()?;
    let descending = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => return Err(bad(format!("order must be asc or desc, not {o:?}"))),
    };
    let mut rows = d.with_core(|c| c.store.address_txs(&a, u64::MAX >> 2, 0))?;
    rows.retain(|(_, height, idx)| {
        let after = from.is_none_or(|(h, i)| (*height, *idx) >= (h, i.unwrap_or(0)));
        let before = to.is_none_or(|(h, i)| (*height, *idx) <= (h, i.unwrap_or(u64::MAX)));
        after && before
    });
    if descending {
        rows.reverse();
    }
    Ok(Json(J::Array(
        rows.into_iter()
            .skip(offset as usize)
            .take(count as usize)
            .map(|(h, height, idx)| {
                let time = d
                    .with_core(|c| c.store.block(height).ok().flatten())
                    .map(|b| b.time)
                    .unwrap_or(0);
                json!({"tx_hash": h.to_string(), "tx_index": idx, "block_height": height, "block_time": time})
            })
            .collect(),
    )))
}

fn tx_record(d: &Devnet, hash: &str) -> Result<crate::store::TxRecord, ApiError> {
    let h = hex32(hash)?;
    d.with_core(|c| c.store.tx(&h))?
        .ok_or_else(|| not_found("transaction"))
}

async fn tx(State(d): State<Devnet>, Path(hash): Path<String>) -> R {
    let t = tx_record(&d, &hash)?;
    let block = d
        .with_core(|c| c.store.block(t.height))?
        .ok_or_else(|| not_found("block"))?;
    let mtx = pallas_traverse::MultiEraTx::decode_for_era(pallas_traverse::Era::Conway, &t.cbor)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let ctx = mtx.as_conway().ok_or_else(|| not_found("conway tx"))?;
    let body = &ctx.transaction_body;
    let mut total = crate::value::Value::default();
    for o in &body.outputs {
        total = total
            .checked_add(&OutputView::from_output(o).value)
            .unwrap_or(total);
    }
    let redeemers = t.redeemers.as_array().map(|a| a.len()).unwrap_or(0);
    Ok(Json(json!({
        "hash": t.hash.to_string(), "block": block.hash.to_string(), "block_height": t.height,
        "block_time": t.time, "slot": t.slot, "index": t.index,
        "output_amount": total.to_blockfrost(), "fees": t.fee.to_string(),
        "deposit": t.deposit.to_string(), "size": t.size,
        "invalid_before": body.validity_interval_start.map(|s| s.to_string()),
        "invalid_hereafter": body.ttl.map(|s| s.to_string()),
        "utxo_count": body.inputs.len() + body.outputs.len(),
        "withdrawal_count": body.withdrawals.as_ref().map(|w| w.len()).unwrap_or(0),
        "mir_cert_count": 0, "delegation_count": 0,
        "stake_cert_count": body.certificates.as_ref().map(|c| c.len()).unwrap_or(0),
        "pool_update_count": 0, "pool_retire_count": 0,
        "asset_mint_or_burn_count": body.mint.as_ref().map(|m| m.values().map(|v| v.len()).sum::<usize>()).unwrap_or(0),
        "redeemer_count": redeemers, "valid_contract": t.is_valid,
        "treasury_donation": body.donation.map_or(0, u64::from).to_string(),
    })))
}

async fn tx_utxos(State(d): State<Devnet>, Path(hash): Path<String>) -> R {
    let t = tx_record(&d, &hash)?;
    let mtx = pallas_traverse::MultiEraTx::decode_for_era(pallas_traverse::Era::Conway, &t.cbor)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let ctx = mtx.as_conway().ok_or_else(|| not_found("conway tx"))?;
    let body = &ctx.transaction_body;
    let input_json = |r: OutRef, collateral: bool, reference: bool| {
        let rec = d.with_core(|c| c.store.output(&r).ok().flatten());
        let mut j = match &rec {
            Some(rec) => utxo_json(&d, &r, &rec.cbor, rec.created_height),
            None => json!({"tx_hash": r.tx_hash.to_string(), "output_index": r.index}),
        };
        j["collateral"] = json!(collateral);
        j["reference"] = json!(reference);
        j
    };
    let mut inputs: Vec<J> = body
        .inputs
        .iter()
        .map(|i| input_json(OutRef::from(i), false, false))
        .collect();
    for c in body.collateral.iter().flat_map(|c| c.iter()) {
        inputs.push(input_json(OutRef::from(c), true, false));
    }
    for c in body.reference_inputs.iter().flat_map(|c| c.iter()) {
        inputs.push(input_json(OutRef::from(c), false, true));
    }
    let mut outputs = Vec::new();
    for (i, o) in body.outputs.iter().enumerate() {
        let r = OutRef::new(t.hash, i as u32);
        let cbor = pallas_codec::minicbor::to_vec(o).unwrap_or_default();
        let mut j = utxo_json(&d, &r, &cbor, t.height);
        j["collateral"] = json!(false);
        j["consumed_by_tx"] = d
            .with_core(|c| c.store.output(&r).ok().flatten())
            .and_then(|rec| rec.spent_by)
            .map(|h| J::String(h.to_string()))
            .unwrap_or(J::Null);
        outputs.push(j);
    }
    if let Some(o) = &body.collateral_return {
        let r = OutRef::new(t.hash, body.outputs.len() as u32);
        let cbor = pallas_codec::minicbor::to_vec(o).unwrap_or_default();
        let mut j = utxo_json(&d, &r, &cbor, t.height);
        j["collateral"] = json!(true);
        outputs.push(j);
    }
    Ok(Json(
        json!({"hash": t.hash.to_string(), "inputs": inputs, "outputs": outputs}),
    ))
}

async fn tx_metadata(State(d): State<Devnet>, Path(hash): Path<String>) -> R {
    let t = tx_record(&d, &hash)?;
    let mtx = pallas_traverse::MultiEraTx::decode_for_era(pallas_traverse::Era::Conway, &t.cbor)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let out: Vec<J> = mtx
        .metadata()
        .collect::<Vec<_>>()
        .iter()
        .map(|(label, m)| json!({"label": label.to_string(), "json_metadata": metadatum_json(m)}))
        .collect();
    Ok(Json(J::Array(out)))
}

async fn tx_redeemers(State(d): State<Devnet>, Path(hash): Path<String>) -> R {
    let t = tx_record(&d, &hash)?;
    let out: Vec<J> = t
        .redeemers
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            json!({
                "tx_index": r["index"], "purpose": r["purpose"], "script_hash": r["script_hash"],
                "redeemer_data_hash": r["redeemer_data_hash"], "datum_hash": r["redeemer_data_hash"],
                "unit_mem": r["unit_mem"].to_string(), "unit_steps": r["unit_steps"].to_string(),
                "fee": r["fee"].to_string(),
            })
        })
        .collect();
    Ok(Json(J::Array(out)))
}

async fn tx_cbor(State(d): State<Devnet>, Path(hash): Path<String>) -> R {
    let t = tx_record(&d, &hash)?;
    Ok(Json(json!({"cbor": hex::encode(&t.cbor)})))
}

async fn metadata_label(
    State(d): State<Devnet>,
    Path(label): Path<u64>,
    Query(q): Query<PageQ>,
) -> R {
    let (count, offset) = q.window();
    let rows = d.with_core(|c| c.store.metadata_by_label(label, count, offset))?;
    Ok(Json(J::Array(
        rows.into_iter()
            .map(|(h, j)| {
                json!({"tx_hash": h.to_string(), "json_metadata": serde_json::from_str::<J>(&j).unwrap_or(J::Null)})
            })
            .collect(),
    )))
}

async fn script(State(d): State<Devnet>, Path(hash): Path<String>) -> R {
    let h = hex::decode(&hash).map_err(|_| bad("script hash is not hex"))?;
    let (lang, bytes) = d
        .with_core(|c| c.store.script(&h))?
        .ok_or_else(|| not_found("script"))?;
    let ty = ["timelock", "plutusV1", "plutusV2", "plutusV3"][lang.min(3) as usize];
    Ok(Json(json!({
        "script_hash": hash, "type": ty,
        "serialised_size": if lang == 0 { J::Null } else { json!(bytes.len()) },
    })))
}

async fn script_cbor(State(d): State<Devnet>, Path(hash): Path<String>) -> R {
    let h = hex::decode(&hash).map_err(|_| bad("script hash is not hex"))?;
    let (lang, bytes) = d
        .with_core(|c| c.store.script(&h))?
        .ok_or_else(|| not_found("script"))?;
    Ok(Json(
        json!({"cbor": if lang == 0 { J::Null } else { J::String(hex::encode(bytes)) }}),
    ))
}

async fn script_json(State(d): State<Devnet>, Path(hash): Path<String>) -> R {
    let h = hex::decode(&hash).map_err(|_| bad("script hash is not hex"))?;
    let (lang, bytes) = d
        .with_core(|c| c.store.script(&h))?
        .ok_or_else(|| not_found("script"))?;
    if lang != 0 {
        return Ok(Json(json!({"json": null})));
    }
    let ns: pallas_primitives::conway::NativeScript =
        pallas_codec::minicbor::decode(&bytes).map_err(|e| bad(e.to_string()))?;
    Ok(Json(
        json!({"json": serde_json::to_value(&ns).unwrap_or(J::Null)}),
    ))
}

async fn datum_cbor(State(d): State<Devnet>, Path(hash): Path<String>) -> R {
    let h = hex32(&hash)?;
    let cbor = d
        .with_core(|c| c.store.datum(&h))?
        .ok_or_else(|| not_found("datum"))?;
    Ok(Json(json!({"cbor": hex::encode(cbor)})))
}

/// Accepts raw CBOR or hex text.
fn body_bytes(b: &Bytes) -> Vec<u8> {
    let text = std::str::from_utf8(b)
        .ok()
        .map(|s| s.trim().trim_matches('"'));
    match text.and_then(|t| hex::decode(t).ok()) {
        Some(bytes) if !bytes.is_empty() => bytes,
        _ => b.to_vec(),
    }
}

async fn submit(State(d): State<Devnet>, body: Bytes) -> R {
    let bytes = body_bytes(&body);
    let d2 = d.clone();
    let h = tokio::task::spawn_blocking(move || d2.submit(&bytes))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(J::String(h.to_string())))
}

fn ogmios(result: J) -> J {
    json!({"type": "jsonwsp/response", "version": "1.0", "servicename": "ogmios",
           "methodname": "EvaluateTx", "result": result})
}

fn evaluate_inner(d: &Devnet, tx: &[u8], extra: &[(OutRef, Vec<u8>)]) -> J {
    match d.evaluate(tx, extra) {
        Ok(rs) => {
            let mut m = serde_json::Map::new();
            for (p, i, mem, steps) in rs {
                m.insert(format!("{p}:{i}"), json!({"memory": mem, "steps": steps}));
            }
            ogmios(json!({"EvaluationResult": m}))
        }
        Err(e) => ogmios(json!({"EvaluationFailure": {"ScriptFailures": e}})),
    }
}

async fn evaluate(State(d): State<Devnet>, body: Bytes) -> R {
    let bytes = body_bytes(&body);
    Ok(Json(
        tokio::task::spawn_blocking(move || evaluate_inner(&d, &bytes, &[]))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    ))
}

/// An Ogmios v5 reference script, `{"plutus:v1"|"plutus:v2"|"plutus:v3": hex}`:
/// the script's bytes as an output's script reference carries them (what
/// `/scripts/{hash}/cbor` serves). Native scripts in JSON are not read.
fn ogmios_script(script: &J) -> Result<(u8, Vec<u8>), ApiError> {
    let entries = script
        .as_object()
        .filter(|m| m.len() == 1)
        .ok_or_else(|| bad("an additionalUtxoSet script must be one {\"plutus:vN\": hex} entry"))?;
    let (lang, hex_text) = entries.iter().next().expect("one entry");
    let tag = match lang.as_str() {
        "plutus:v1" => 1,
        "plutus:v2" => 2,
        "plutus:v3" => 3,
        other => {
            return Err(bad(format!(
                "additionalUtxoSet script language {other:?} is not supported: give plutus:v1, plutus:v2 or plutus:v3"
            )));
        }
    };
    let bytes = hex_text
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| bad("an additionalUtxoSet script is not hex"))?;
    Ok((tag, bytes))
}

async fn evaluate_utxos(State(d): State<Devnet>, Json(req): Json<J>) -> R {
    let cbor = req["cbor"]
        .as_str()
        .ok_or_else(|| bad("missing \"cbor\""))?;
    let tx = hex::decode(cbor).map_err(|_| bad("cbor is not hex"))?;
    let mut extra = Vec::new();
    for pair in req["additionalUtxoSet"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let (i, o) = (&pair[0], &pair[1]);
        let id = hex32(i["txId"].as_str().unwrap_or_default())?;
        let r = OutRef::new(
            Hash::new(id.try_into().unwrap_or([0; 32])),
            i["index"].as_u64().unwrap_or(0) as u32,
        );
        let address = address_bytes(o["address"].as_str().unwrap_or_default())?;
        let mut value = crate::value::Value::lovelace(o["value"]["coins"].as_u64().unwrap_or(0));
        if let Some(assets) = o["value"]["assets"].as_object() {
            for (unit, q) in assets {
                let (p, n) = unit.split_once('.').unwrap_or((unit.as_str(), ""));
                let p = hex::decode(p)
                    .ok()
                    .filter(|b| b.len() == 28)
                    .ok_or_else(|| bad("bad asset policy"))?;
                value = value.with_asset(
                    Hash::<28>::from(p.as_slice()),
                    &hex::decode(n).unwrap_or_default(),
                    q.as_u64().unwrap_or(0),
                );
            }
        }
        let mut out = crate::txbuilder::Output::new(&address, value);
        if let Some(dt) = o["datum"].as_str() {
            out = out.inline_datum(&hex::decode(dt).map_err(|_| bad("datum is not hex"))?);
        } else if let Some(h) = o["datumHash"].as_str() {
            let h: [u8; 32] = hex32(h)?.try_into().unwrap_or([0; 32]);
            out.datum = crate::txbuilder::OutDatum::Hash(Hash::new(h));
        }
        if let Some(script) = o.get("script").filter(|s| !s.is_null()) {
            out.script_ref = Some(ogmios_script(script)?);
        }
        extra.push((r, out.to_cbor()));
    }
    Ok(Json(
        tokio::task::spawn_blocking(move || evaluate_inner(&d, &tx, &extra))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    ))
}

// --- admin ----------------------------------------------------------------------

#[derive(Deserialize)]
struct FundReq {
    address: String,
    #[serde(default)]
    lovelace: u64,
    #[serde(default)]
    ntx: u64,
}

async fn admin_fund(State(d): State<Devnet>, Json(r): Json<FundReq>) -> R {
    let h = tokio::task::spawn_blocking(move || d.fund(&r.address, r.lovelace, r.ntx))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(json!({"tx_hash": h.to_string(), "output_index": 0})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardsReq {
    stake_address: String,
    lovelace: u64,
}

/// `POST /devnet/rewards {stake_address, lovelace}`: pays into a registered
/// reward account, as rewards or a returned governance deposit would.
async fn admin_rewards(State(d): State<Devnet>, Json(r): Json<RewardsReq>) -> R {
    let (credential, _) = accounts::stake_credential(&r.stake_address)?;
    let a = d.add_rewards(&credential, r.lovelace)?;
    Ok(Json(
        json!({"stake_address": r.stake_address, "withdrawable_amount": a.balance.to_string()}),
    ))
}

#[derive(Deserialize)]
struct AdvanceReq {
    slots: Option<u64>,
    to_slot: Option<u64>,
}

async fn admin_advance(State(d): State<Devnet>, Json(r): Json<AdvanceReq>) -> R {
    let slot = match (r.slots, r.to_slot) {
        (Some(n), None) => d.advance_slots(n)?,
        (None, Some(s)) => d.advance_to_slot(s)?,
        _ => return Err(bad("give exactly one of \"slots\" or \"to_slot\"")),
    };
    Ok(Json(json!({"slot": slot})))
}

async fn admin_block(State(d): State<Devnet>) -> R {
    let d2 = d.clone();
    let b = tokio::task::spawn_blocking(move || d2.produce_block())
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(block_json(&d, &b)))
}

#[derive(Deserialize)]
struct RollbackReq {
    blocks: u64,
    #[serde(default)]
    drop_txs: bool,
}

async fn admin_rollback(State(d): State<Devnet>, Json(r): Json<RollbackReq>) -> R {
    let mode = if r.drop_txs {
        RollbackMode::Drop
    } else {
        RollbackMode::ReturnToMempool
    };
    let done = d.rollback(r.blocks, mode)?;
    Ok(Json(
        json!({"rolled_back": done.blocks, "tip": block_json(&d, &done.tip)}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotReq {
    name: String,
}

async fn admin_snapshot(State(d): State<Devnet>, Json(r): Json<SnapshotReq>) -> R {
    let path = d.snapshot(&r.name)?;
    Ok(Json(json!({"path": path})))
}

async fn admin_status(State(d): State<Devnet>) -> R {
    Ok(Json(serde_json::to_value(d.status()).unwrap_or(J::Null)))
}

fn blockfrost_routes() -> Router<Devnet> {
    Router::new()
        .route("/health", get(network::health))
        .route("/health/clock", get(network::health_clock))
        .route("/network", get(network::network))
        .route("/epochs/latest/parameters", get(parameters))
        .route("/epochs/latest", get(epoch_latest))
        .route("/blocks/latest", get(block_latest))
        .route("/blocks/{id}", get(block_by))
        .route("/genesis", get(genesis))
        .route("/addresses/{addr}/utxos", get(address_utxos))
        .route("/addresses/{addr}/utxos/{unit}", get(address_utxos_unit))
        .route("/addresses/{addr}/transactions", get(address_txs))
        .route("/accounts/{stake}", get(accounts::account))
        .route("/assets/policy/{policy}", get(assets::policy_assets))
        .route("/assets/{unit}/addresses", get(assets::asset_addresses))
        .route("/accounts/{stake}/utxos", get(accounts::account_utxos))
        .route("/txs/{hash}", get(tx))
        .route("/txs/{hash}/utxos", get(tx_utxos))
        .route("/txs/{hash}/metadata", get(tx_metadata))
        .route("/txs/{hash}/redeemers", get(tx_redeemers))
        .route("/txs/{hash}/cbor", get(tx_cbor))
        .route("/metadata/txs/labels/{label}", get(metadata_label))
        .route("/scripts/{hash}", get(script))
        .route("/scripts/{hash}/cbor", get(script_cbor))
        .route("/scripts/{hash}/json", get(script_json))
        .route("/scripts/datum/{hash}/cbor", get(datum_cbor))
        .route("/tx/submit", post(submit))
        .route("/utils/txs/evaluate", post(evaluate))
        .route("/utils/txs/evaluate/utxos", post(evaluate_utxos))
}

/// The whole API as an axum router (Blockfrost under `/api/v0` and at the
/// root, admin under `/devnet`).
pub fn router(d: Devnet) -> Router {
    let admin = Router::new()
        .route("/fund", post(admin_fund))
        .route("/advance", post(admin_advance))
        .route("/block", post(admin_block))
        .route("/rollback", post(admin_rollback))
        .route("/snapshot", post(admin_snapshot))
        .route("/rewards", post(admin_rewards))
        .route("/status", get(admin_status));
    Router::new()
        .nest("/api/v0", blockfrost_routes())
        .nest("/devnet", admin)
        .route("/local-cluster/api/addresses/topup", post(yaci::topup))
        .merge(blockfrost_routes())
        .fallback(|| async { not_found("route") })
        .with_state(d)
}

/// How `ntx devnet up` serves the devnet.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Loopback port (0 picks a free one).
    pub port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Slot length (new chains only).
    pub slot_length_ms: u64,
    /// Genesis file (new chains only); `None`: the default genesis.
    pub genesis: Option<PathBuf>,
    /// An empty block at least every this many slots (0: only for pending
    /// transactions).
    pub block_every_slots: u64,
}

/// Opens (or resumes) the devnet in `config.data_dir`, runs its clock and
/// serves the HTTP API on `127.0.0.1:port` until `cancel`. `on_ready` is
/// called with the bound address once it listens.
pub async fn serve(
    config: ServeConfig,
    cancel: CancellationToken,
    on_ready: impl FnOnce(SocketAddr, &Devnet),
) -> Result<(), DevnetError> {
    let genesis = match &config.genesis {
        Some(p) => GenesisConfig::from_file(p)?,
        None => GenesisConfig::default(),
    };
    let d = Devnet::open(DevnetConfig {
        data_dir: Some(config.data_dir.clone()),
        genesis,
        slot_length_ms: config.slot_length_ms,
        clock: ClockMode::Wall,
    })?;
    d.set_empty_block_every(config.block_every_slots);
    serve_devnet(d, config.port, cancel, on_ready).await
}

/// Serves an already-open devnet (and runs its clock) until `cancel`.
pub async fn serve_devnet(
    d: Devnet,
    port: u16,
    cancel: CancellationToken,
    on_ready: impl FnOnce(SocketAddr, &Devnet),
) -> Result<(), DevnetError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| DevnetError::io(format!("127.0.0.1:{port}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| DevnetError::io("listener", e))?;
    on_ready(addr, &d);
    tracing::info!(%addr, "devnet listening");
    let clock = {
        let d = d.clone();
        let c = cancel.clone();
        tokio::spawn(async move { d.run_clock(c).await })
    };
    let c = cancel.clone();
    axum::serve(listener, router(d))
        .with_graceful_shutdown(async move { c.cancelled().await })
        .await
        .map_err(|e| DevnetError::io("http server", e))?;
    cancel.cancel();
    let _ = clock.await;
    Ok(())
}
