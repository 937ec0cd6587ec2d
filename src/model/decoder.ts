/**
 * A Llama / Qwen2-style decoder-only transformer (RMSNorm, rotary attention with optional
 * grouped-query heads and q/k/v biases, SwiGLU MLP, optionally tied embeddings), written
 * top to bottom over the tensor ops. Parameters use Hugging Face's names, so a checkpoint's
 * safetensors map onto them one to one.
 *
 * @example
 *   const cfg = { vocab: 4096, hidden: 256, layers: 4, heads: 8, kvHeads: 8, inter: 1024 };
 *   const params = initDecoder(cfg, 0);
 *   const logits = decoderForward(cfg, params, ids, batch, seq); // [batch, seq, vocab]
 */
import { ops, Rng, Tensor } from "../tensor/index.ts";

export interface DecoderConfig {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  inter: number;
  ropeTheta?: number;
  eps?: number;
  qkvBias?: boolean;
  tieEmbeddings?: boolean;
}

export type DecoderParams = Record<string, Tensor>;

/** Normal(0, 0.02) weights, zero biases, unit norms — the usual Hugging Face init. */
export function initDecoder(cfg: DecoderConfig, seed: number): DecoderParams {
  const rng = new Rng(seed);
  const hd = cfg.hidden / cfg.heads;
  const p: DecoderParams = {};
  const w = (name: string, shape: number[]) => {
    p[name] = Tensor.randn(shape, 0.02, { rng, requiresGrad: true });
    p[name]!.name = name;
  };
  const c = (name: string, shape: number[], v: number) => {
    p[name] = Tensor.full(shape, v, { requiresGrad: true });
    p[name]!.name = name;
  };
  w("model.embed_tokens.weight", [cfg.vocab, cfg.hidden]);
  for (let i = 0; i < cfg.layers; i++) {
    const L = `model.layers.${i}`;
    c(`${L}.input_layernorm.weight`, [cfg.hidden], 1);
    w(`${L}.self_attn.q_proj.weight`, [cfg.heads * hd, cfg.hidden]);
    w(`${L}.self_attn.k_proj.weight`, [cfg.kvHeads * hd, cfg.hidden]);
    w(`${L}.self_attn.v_proj.weight`, [cfg.kvHeads * hd, cfg.hidden]);
    if (cfg.qkvBias ?? true) {
      c(`${L}.self_attn.q_proj.bias`, [cfg.heads * hd], 0);
      c(`${L}.self_attn.k_proj.bias`, [cfg.kvHeads * hd], 0);
      c(`${L}.self_attn.v_proj.bias`, [cfg.kvHeads * hd], 0);
    }
    w(`${L}.self_attn.o_proj.weight`, [cfg.hidden, cfg.heads * hd]);
    c(`${L}.post_attention_layernorm.weight`, [cfg.hidden], 1);
    w(`${L}.mlp.gate_proj.weight`, [cfg.inter, cfg.hidden]);
    w(`${L}.mlp.up_proj.weight`, [cfg.inter, cfg.hidden]);
    w(`${L}.mlp.down_proj.weight`, [cfg.hidden, cfg.inter]);
  }
  c("model.norm.weight", [cfg.hidden], 1);
  if (!(cfg.tieEmbeddings ?? true)) w("lm_head.weight", [cfg.vocab, cfg.hidden]);
  return p;
}

/** [B, T, heads·hd] → [B, heads, T, hd] with rotary embedding applied. */
function splitHeads(
  x: Tensor,
  B: number,
  T: number,
  heads: number,
  positions: Int32Array,
  theta: number,
  rope: boolean,
) {
  const hd = x.shape[2]! / heads;
  const y = ops.permute(ops.reshape(x, [B, T, heads, hd]), [0, 2, 1, 3]);
  return rope ? ops.rope(y, positions, theta) : y;
}

/** Logits [B, T, vocab] for token ids [B·T] (row-major by batch). */
export function decoderForward(cfg: DecoderConfig, p: DecoderParams, ids: Int32Array, B: number, T: number): Tensor {
  const get = (name: string) => {
    const t = p[name];
    if (!t) throw new Error(`decoder: missing parameter '${name}'`);
    return t;
  };
  const opt = (name: string) => p[name] ?? null;
  const eps = cfg.eps ?? 1e-6;
  const theta = cfg.ropeTheta ?? 10000;
  const hd = cfg.hidden / cfg.heads;
  const positions = Int32Array.from({ length: T }, (_, i) => i);
  let x = ops.gather(get("model.embed_tokens.weight"), ids, [B, T]); // [B, T, hidden]
  for (let i = 0; i < cfg.layers; i++) {
    const L = `model.layers.${i}`;
    const h = ops.rmsNorm(x, get(`${L}.input_layernorm.weight`), eps);
    const q = ops.linear(h, get(`${L}.self_attn.q_proj.weight`), opt(`${L}.self_attn.q_proj.bias`));
    const k = ops.linear(h, get(`${L}.self_attn.k_proj.weight`), opt(`${L}.self_attn.k_proj.bias`));
    const v = ops.linear(h, get(`${L}.self_attn.v_proj.weight`), opt(`${L}.self_attn.v_proj.bias`));
    const a = ops.attention(
      splitHeads(q, B, T, cfg.heads, positions, theta, true),
      splitHeads(k, B, T, cfg.kvHeads, positions, theta, true),
      splitHeads(v, B, T, cfg.kvHeads, positions, theta, false),
    ); // [B, heads, T, hd]
    const merged = ops.reshape(ops.permute(a, [0, 2, 1, 3]), [B, T, cfg.heads * hd]);
    x = ops.add(x, ops.linear(merged, get(`${L}.self_attn.o_proj.weight`)));
    const h2 = ops.rmsNorm(x, get(`${L}.post_attention_layernorm.weight`), eps);
    const gate = ops.linear(h2, get(`${L}.mlp.gate_proj.weight`));
    const up = ops.linear(h2, get(`${L}.mlp.up_proj.weight`));
    x = ops.add(x, ops.linear(ops.swiglu(gate, up), get(`${L}.mlp.down_proj.weight`)));
  }
  const hN = ops.rmsNorm(x, get("model.norm.weight"), eps);
  return ops.linear(hN, p["lm_head.weight"] ?? get("model.embed_tokens.weight"));
}
