/**
 * The parameters of each architecture under Hugging Face's names, with their shapes, and
 * random initialisation (Normal(0, std) weights, zero biases, unit norms — HF's default).
 */
import { Rng, Tensor } from "../tensor/index.ts";
import type { ModelConfig } from "./config.ts";

export type ParamMap = Map<string, Tensor>;

/** name → shape of every parameter a config needs (tied lm_head omitted). */
export function expectedParams(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const H = c.hidden;
  if (c.arch === "gpt2") {
    m.set("transformer.wte.weight", [c.vocab, H]);
    m.set("transformer.wpe.weight", [c.maxPositions, H]);
    for (let i = 0; i < c.layers; i++) {
      const L = `transformer.h.${i}`;
      m.set(`${L}.ln_1.weight`, [H]);
      m.set(`${L}.ln_1.bias`, [H]);
      m.set(`${L}.attn.c_attn.weight`, [H, 3 * H]); // Conv1D: [in, out]
      m.set(`${L}.attn.c_attn.bias`, [3 * H]);
      m.set(`${L}.attn.c_proj.weight`, [H, H]);
      m.set(`${L}.attn.c_proj.bias`, [H]);
      m.set(`${L}.ln_2.weight`, [H]);
      m.set(`${L}.ln_2.bias`, [H]);
      m.set(`${L}.mlp.c_fc.weight`, [H, c.inter]);
      m.set(`${L}.mlp.c_fc.bias`, [c.inter]);
      m.set(`${L}.mlp.c_proj.weight`, [c.inter, H]);
      m.set(`${L}.mlp.c_proj.bias`, [H]);
    }
    m.set("transformer.ln_f.weight", [H]);
    m.set("transformer.ln_f.bias", [H]);
    if (!c.tieEmbeddings) m.set("lm_head.weight", [c.vocab, H]);
    return m;
  }
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  m.set("model.embed_tokens.weight", [c.vocab, H]);
  for (let i = 0; i < c.layers; i++) {
    const L = `model.layers.${i}`;
    m.set(`${L}.input_layernorm.weight`, [H]);
    m.set(`${L}.self_attn.q_proj.weight`, [q, H]);
    m.set(`${L}.self_attn.k_proj.weight`, [kv, H]);
    m.set(`${L}.self_attn.v_proj.weight`, [kv, H]);
    if (c.qkvBias) {
      m.set(`${L}.self_attn.q_proj.bias`, [q]);
      m.set(`${L}.self_attn.k_proj.bias`, [kv]);
      m.set(`${L}.self_attn.v_proj.bias`, [kv]);
    }
    m.set(`${L}.self_attn.o_proj.weight`, [H, q]);
    if (c.oBias) m.set(`${L}.self_attn.o_proj.bias`, [H]);
    m.set(`${L}.post_attention_layernorm.weight`, [H]);
    m.set(`${L}.mlp.gate_proj.weight`, [c.inter, H]);
    m.set(`${L}.mlp.up_proj.weight`, [c.inter, H]);
    m.set(`${L}.mlp.down_proj.weight`, [H, c.inter]);
    if (c.mlpBias) {
      m.set(`${L}.mlp.gate_proj.bias`, [c.inter]);
      m.set(`${L}.mlp.up_proj.bias`, [c.inter]);
      m.set(`${L}.mlp.down_proj.bias`, [H]);
    }
  }
  m.set("model.norm.weight", [H]);
  if (!c.tieEmbeddings) m.set("lm_head.weight", [c.vocab, H]);
  return m;
}

/** Random parameters for a config (seeded), all requiring grad. */
export function initParams(c: ModelConfig, seed: number, std = 0.02): ParamMap {
  const rng = new Rng(seed);
  const out: ParamMap = new Map();
  for (const [name, shape] of expectedParams(c)) {
    const isNorm = /(layernorm|ln_\d|ln_f|norm)\.weight$/.test(name);
    const t = name.endsWith(".bias")
      ? Tensor.zeros(shape, { requiresGrad: true })
      : isNorm
        ? Tensor.ones(shape, { requiresGrad: true })
        : Tensor.randn(shape, std, { rng, requiresGrad: true });
    t.name = name;
    out.set(name, t);
  }
  return out;
}
