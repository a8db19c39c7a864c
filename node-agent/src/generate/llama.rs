//! A llama-family decoder over candle's quantized matmuls, read from a GGUF file.
//!
//! Follows candle-transformers' `quantized_llama` (same tensor names, interleaved RoPE
//! as llama.cpp's converter writes Q/K for `llama`, RMS norm, SiLU-gated MLP, grouped
//! KV heads, output tied to the token embedding when `output.weight` is absent), with
//! two differences the protocol needs: the KV cache lives outside the model (so one
//! loaded model serves concurrent jobs through `&self`), and a forward pass can return
//! the logits of several positions (teacher forcing for verifiers).

use std::io::{Read, Seek};

use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{D, DType, Device, Module, Tensor};

/// Hyper-parameters read from `llama.*` metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size (rows of the token embedding).
    pub vocab: usize,
    /// Embedding width.
    pub dim: usize,
    /// Number of transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RoPE base frequency.
    pub rope_base: f32,
    /// RMS norm epsilon.
    pub rms_eps: f64,
    /// Longest sequence (prompt + new tokens) the model is run on.
    pub context: usize,
}

#[derive(Clone)]
struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
    attn_norm: Tensor,
    ffn_norm: Tensor,
}

/// The loaded weights.
#[derive(Clone)]
pub struct Llama {
    config: LlamaConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

/// Keys and values of the positions run so far (one job's state).
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

fn tensor<R: Read + Seek>(
    ct: &gguf_file::Content,
    r: &mut R,
    name: &str,
    device: &Device,
) -> candle_core::Result<QTensor> {
    ct.tensor(r, name, device)
}

impl Llama {
    /// Reads the weights described by `config` from an open GGUF file.
    pub fn load<R: Read + Seek>(
        ct: &gguf_file::Content,
        r: &mut R,
        config: LlamaConfig,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let embed_q = tensor(ct, r, "token_embd.weight", device)?;
        let embed = embed_q.dequantize(device)?;
        if embed.dims() != [config.vocab, config.dim] {
            candle_core::bail!(
                "token_embd.weight has shape {:?}, expected [{}, {}]",
                embed.dims(),
                config.vocab,
                config.dim
            );
        }
        let norm = tensor(ct, r, "output_norm.weight", device)?.dequantize(device)?;
        let output = if ct.tensor_infos.contains_key("output.weight") {
            tensor(ct, r, "output.weight", device)?
        } else {
            embed_q
        };
        let mut layers = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let mut q = |name: &str| -> candle_core::Result<QMatMul> {
                QMatMul::from_qtensor(tensor(ct, r, &format!("blk.{l}.{name}.weight"), device)?)
            };
            let (wq, wk, wv, wo) = (q("attn_q")?, q("attn_k")?, q("attn_v")?, q("attn_output")?);
            let (gate, up, down) = (q("ffn_gate")?, q("ffn_up")?, q("ffn_down")?);
            layers.push(Layer {
                wq,
                wk,
                wv,
                wo,
                gate,
                up,
                down,
                attn_norm: tensor(ct, r, &format!("blk.{l}.attn_norm.weight"), device)?
                    .dequantize(device)?,
                ffn_norm: tensor(ct, r, &format!("blk.{l}.ffn_norm.weight"), device)?
                    .dequantize(device)?,
            });
        }
        // RoPE tables, as candle's quantized_llama computes them.
        let half = config.head_dim / 2;
        let theta: Vec<f32> = (0..half)
            .map(|i| {
                1f32 / config
                    .rope_base
                    .powf((2 * i) as f32 / config.head_dim as f32)
            })
            .collect();
        let theta = Tensor::new(theta.as_slice(), device)?.reshape((1, half))?;
        let positions = Tensor::arange(0, config.context as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((config.context, 1))?;
        let angles = positions.matmul(&theta)?;
        Ok(Self {
            cos: angles.cos()?,
            sin: angles.sin()?,
            config,
            embed,
            layers,
            norm,
            output: QMatMul::from_qtensor(output)?,
            device: device.clone(),
        })
    }

    /// A copy whose matmul weights are dequantised to F32, so that its matmuls run as
    /// dense F32 GEMMs on unquantised activations. The verifier's teacher-forced pass
    /// uses it: over hundreds of positions at once a GEMM is several times faster than
    /// the quantised dot products (which quantise activations to 8 bits), at the price
    /// of 4 bytes per weight and a small systematic difference that ε covers.
    pub fn dequantized(&self) -> candle_core::Result<Self> {
        let dq = |m: &QMatMul| -> candle_core::Result<QMatMul> {
            Ok(match m {
                QMatMul::QTensor(q) => QMatMul::Tensor(q.dequantize(&self.device)?),
                other => other.clone(),
            })
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(Layer {
                    wq: dq(&l.wq)?,
                    wk: dq(&l.wk)?,
                    wv: dq(&l.wv)?,
                    wo: dq(&l.wo)?,
                    gate: dq(&l.gate)?,
                    up: dq(&l.up)?,
                    down: dq(&l.down)?,
                    attn_norm: l.attn_norm.clone(),
                    ffn_norm: l.ffn_norm.clone(),
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            output: dq(&self.output)?,
            ..self.clone()
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// An empty cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: (0..self.config.layers).map(|_| None).collect(),
            len: 0,
        }
    }

    /// Runs `ids` at positions `cache.len()..`, appends them to the cache, and returns
    /// the logits `[rows, vocab]` of the last `rows` of them (1 ≤ rows ≤ ids.len()).
    pub fn forward(
        &self,
        ids: &[u32],
        cache: &mut KvCache,
        rows: usize,
    ) -> candle_core::Result<Tensor> {
        let seq = ids.len();
        let pos = cache.len;
        if seq == 0 || rows == 0 || rows > seq {
            candle_core::bail!("forward: {seq} ids, {rows} logit rows");
        }
        if pos + seq > self.config.context {
            candle_core::bail!(
                "sequence of {} tokens exceeds the context of {}",
                pos + seq,
                self.config.context
            );
        }
        let c = &self.config;
        let ids_t = Tensor::new(ids, &self.device)?;
        let mut x = self.embed.index_select(&ids_t, 0)?.unsqueeze(0)?; // [1, seq, dim]
        let mask = if seq > 1 {
            let kv = pos + seq;
            let m: Vec<f32> = (0..seq)
                .flat_map(|i| {
                    (0..kv).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (seq, kv), &self.device)?)
        } else {
            None
        };
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let scale = 1.0 / (c.head_dim as f64).sqrt();
        for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, c.rms_eps as f32)?;
            let split = |t: Tensor, heads: usize| {
                t.reshape((1, seq, heads, c.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(layer.wq.forward(&h)?, c.heads)?;
            let k = split(layer.wk.forward(&h)?, c.kv_heads)?;
            let v = split(layer.wv.forward(&h)?, c.kv_heads)?;
            let q = candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            let (k, v) = match slot.take() {
                Some((kc, vc)) => (Tensor::cat(&[&kc, &k], 2)?, Tensor::cat(&[&vc, &v], 2)?),
                None => (k, v),
            };
            *slot = Some((k.clone(), v.clone()));
            let rep = c.heads / c.kv_heads;
            let k = candle_transformers::utils::repeat_kv(k, rep)?;
            let v = candle_transformers::utils::repeat_kv(v, rep)?.contiguous()?;
            let mut att = (q.matmul(&k.t()?)? * scale)?;
            if let Some(m) = &mask {
                att = att.broadcast_add(m)?;
            }
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((1, seq, c.heads * c.head_dim))?;
            x = (x + layer.wo.forward(&y)?)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, c.rms_eps as f32)?;
            let g = candle_nn::ops::silu(&layer.gate.forward(&h)?)?;
            let u = layer.up.forward(&h)?;
            x = (x + layer.down.forward(&(g * u)?)?)?;
        }
        cache.len += seq;
        let x = x.narrow(1, seq - rows, rows)?;
        let x = candle_nn::ops::rms_norm(&x, &self.norm, c.rms_eps as f32)?;
        let logits = self.output.forward(&x)?.squeeze(0)?;
        if logits.dim(D::Minus1)? != c.vocab {
            candle_core::bail!(
                "output has {} columns, vocab is {}",
                logits.dim(D::Minus1)?,
                c.vocab
            );
        }
        Ok(logits)
    }
}
