/**
 * CausalLM: a Hugging Face decoder (Llama / Qwen2 / Mistral, or GPT-2) as a forward over
 * emlab's tensor ops, with TransformerLens hook points, an optional KV cache and an optional
 * LoRA adapter. Reads top to bottom like the HF modeling files; shapes in comments.
 *
 * @example
 *   const model = CausalLM.random(parseConfig(configJson), 0);
 *   const logits = model.forward(ids, 2, 7); // [2, 7, vocab]
 *   const cache = model.runWithCache(ids, 2, 7, ["blocks.1.hook_resid_post"]);
 */
import { type ComputeDtype, noGrad, ops, parseDtype, type Rng, Tensor, withComputeDtype } from "../tensor/index.ts";
import type { ModelConfig } from "./config.ts";
import { type Hook, type HookContext, runHooks } from "./hooks.ts";
import { initParams, type ParamMap } from "./params.ts";

/** Per-layer keys and values of past positions: [B, Hkv, capacity, D] each. */
export class KVCache {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  length = 0;
  constructor(
    readonly batch: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly capacity: number,
    layers: number,
  ) {
    const n = batch * kvHeads * capacity * headDim;
    this.k = Array.from({ length: layers }, () => new Float32Array(n));
    this.v = Array.from({ length: layers }, () => new Float32Array(n));
  }

  /** Writes new [B, Hkv, T, D] keys/values of one layer at `length` and returns the contiguous [B, Hkv, length+T, D] views. */
  append(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const [B, Hkv, T, D] = k.shape as [number, number, number, number];
    const S = this.length + T;
    if (S > this.capacity) throw new Error(`KVCache: ${S} positions exceed the capacity ${this.capacity}`);
    const kc = this.k[layer]!;
    const vc = this.v[layer]!;
    const kOut = new Float32Array(B * Hkv * S * D);
    const vOut = new Float32Array(B * Hkv * S * D);
    for (let bh = 0; bh < B * Hkv; bh++) {
      const cap = bh * this.capacity * D;
      kc.set(k.data.subarray(bh * T * D, (bh + 1) * T * D), cap + this.length * D);
      vc.set(v.data.subarray(bh * T * D, (bh + 1) * T * D), cap + this.length * D);
      kOut.set(kc.subarray(cap, cap + S * D), bh * S * D);
      vOut.set(vc.subarray(cap, cap + S * D), bh * S * D);
    }
    return { k: new Tensor(kOut, [B, Hkv, S, D]), v: new Tensor(vOut, [B, Hkv, S, D]) };
  }
}

/** A LoRA adapter as the forward sees it: per module path, A [r, in] and B [out, r]. */
export interface LoraWeights {
  modules: Map<string, { A: Tensor; B: Tensor }>;
  scale: number;
  dropout: number;
  rng?: Rng;
}

export interface ForwardOptions {
  /** Absolute positions [B·T] (default: cache.length + t). */
  positions?: Int32Array;
  /** [B, S] over all keys (past + new): 0 marks padding. */
  keyMask?: Uint8Array;
  cache?: KVCache;
  hooks?: readonly Hook[];
  /** Only the last position's logits: [B, 1, vocab]. */
  lastOnly?: boolean;
  /** Training mode (LoRA dropout on). */
  training?: boolean;
}

const identity = (t: Tensor): Tensor => t;

export class CausalLM {
  adapter: LoraWeights | null = null;
  /**
   * Residual dropout in training mode (GPT-2's resid_pdrop): each block's attention and MLP
   * outputs are dropped with probability p before they join the residual stream. Off (null)
   * unless a trainer sets it; never applied outside training.
   */
  residDropout: { p: number; rng: Rng } | null = null;

  /** Turns residual dropout on (p in (0, 1), masks drawn from rng) or off (p = 0). */
  setResidDropout(p: number, rng?: Rng): void {
    if (!(p >= 0 && p < 1)) throw new Error(`residual dropout: p ${p} must be in [0, 1)`);
    if (p > 0 && !rng) throw new Error("residual dropout: p > 0 needs an rng");
    this.residDropout = p > 0 ? { p, rng: rng! } : null;
  }

  /**
   * The compute dtype of the forward's matrix products (and of their backward): "bf16"
   * rounds their inputs to bfloat16 and sums in fp32 (src/tensor/kernels/bf16.ts); the
   * parameters stay fp32 (the master weights an optimiser updates). Default "fp32".
   */
  dtype: ComputeDtype = "fp32";

  /** Sets the compute dtype ("fp32" | "bf16"; also "float32" / "bfloat16"). */
  setDtype(dtype: string): this {
    this.dtype = parseDtype(dtype, "model dtype");
    return this;
  }

  constructor(
    readonly config: ModelConfig,
    readonly params: ParamMap,
    opts: { dtype?: ComputeDtype } = {},
  ) {
    if (opts.dtype) this.setDtype(opts.dtype);
  }

  static random(config: ModelConfig, seed: number, std = 0.02): CausalLM {
    return new CausalLM(config, initParams(config, seed, std));
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`model: missing parameter '${name}'`);
    return t;
  }

  newCache(batch: number, capacity: number): KVCache {
    const c = this.config;
    return new KVCache(batch, c.kvHeads, c.headDim, capacity, c.layers);
  }

  /** Logits [B, T, vocab] (or [B, 1, vocab] with lastOnly) for ids [B·T]. */
  forward(ids: Int32Array, B: number, T: number, opts: ForwardOptions = {}): Tensor {
    if (ids.length !== B * T) throw new Error(`forward: ${ids.length} ids for batch ${B} × seq ${T}`);
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i]! >= 0 && ids[i]! < this.config.vocab)) {
        throw new Error(`forward: token id ${ids[i]} at position ${i} out of range [0, ${this.config.vocab})`);
      }
    }
    const past = opts.cache?.length ?? 0;
    const positions = opts.positions ?? Int32Array.from({ length: B * T }, (_, i) => past + (i % T));
    const ctx = (name: string, layer: number | null): HookContext => ({ name, layer, batch: B, seq: T, positions });
    const hook = (x: Tensor, name: string, layer: number | null) =>
      opts.hooks?.length ? runHooks(opts.hooks, x, ctx(name, layer)) : x;
    const x = withComputeDtype(this.dtype, () =>
      this.config.arch === "gpt2"
        ? this.gpt2(ids, B, T, positions, opts, hook)
        : this.llama(ids, B, T, positions, opts, hook),
    );
    if (opts.cache) opts.cache.length += T;
    return x;
  }

  /** A projection y = x·Wᵀ + b (+ the LoRA path when the adapter targets `module`). */
  private proj(x: Tensor, module: string, training: boolean): Tensor {
    const y = ops.linear(x, this.param(`${module}.weight`), this.params.get(`${module}.bias`));
    const lora = this.adapter?.modules.get(module);
    if (!lora) return y;
    const a = this.adapter!;
    const xin = training && a.dropout > 0 && a.rng ? ops.dropout(x, a.dropout, a.rng) : x;
    const delta = ops.linear(ops.linear(xin, lora.A), lora.B); // [.., r] → [.., out]
    return ops.add(y, ops.scale(delta, a.scale));
  }

  /** Identity unless training with residual dropout on. */
  private residualDrop(training: boolean): (t: Tensor) => Tensor {
    const rd = this.residDropout;
    return training && rd && rd.p > 0 ? (t) => ops.dropout(t, rd.p, rd.rng) : identity;
  }

  private llama(
    ids: Int32Array,
    B: number,
    T: number,
    positions: Int32Array,
    opts: ForwardOptions,
    hook: (x: Tensor, name: string, layer: number | null) => Tensor,
  ): Tensor {
    const c = this.config;
    const training = opts.training ?? false;
    const drop = this.residualDrop(training);
    const heads = (t: Tensor, n: number) => ops.permute(ops.reshape(t, [B, T, n, c.headDim]), [0, 2, 1, 3]); // → [B, n, T, hd]
    let x = hook(ops.gather(this.param("model.embed_tokens.weight"), ids, [B, T]), "hook_embed", null); // [B, T, H]
    for (let i = 0; i < c.layers; i++) {
      const L = `model.layers.${i}`;
      x = hook(x, `blocks.${i}.hook_resid_pre`, i);
      const h = ops.rmsNorm(x, this.param(`${L}.input_layernorm.weight`), c.eps);
      let q = ops.rope(heads(this.proj(h, `${L}.self_attn.q_proj`, training), c.heads), positions, c.ropeTheta);
      let k = ops.rope(heads(this.proj(h, `${L}.self_attn.k_proj`, training), c.kvHeads), positions, c.ropeTheta);
      let v = heads(this.proj(h, `${L}.self_attn.v_proj`, training), c.kvHeads);
      if (opts.cache) ({ k, v } = opts.cache.append(i, k, v));
      q = ops.attention(q, k, v, { keyMask: opts.keyMask }); // [B, heads, T, hd]
      const merged = ops.reshape(ops.permute(q, [0, 2, 1, 3]), [B, T, c.heads * c.headDim]);
      const attnOut = hook(drop(this.proj(merged, `${L}.self_attn.o_proj`, training)), `blocks.${i}.hook_attn_out`, i);
      x = hook(ops.add(x, attnOut), `blocks.${i}.hook_resid_mid`, i);
      const h2 = ops.rmsNorm(x, this.param(`${L}.post_attention_layernorm.weight`), c.eps);
      const act = ops.swiglu(
        this.proj(h2, `${L}.mlp.gate_proj`, training),
        this.proj(h2, `${L}.mlp.up_proj`, training),
      );
      const mlpOut = hook(drop(this.proj(act, `${L}.mlp.down_proj`, training)), `blocks.${i}.hook_mlp_out`, i);
      x = hook(ops.add(x, mlpOut), `blocks.${i}.hook_resid_post`, i);
    }
    if (opts.lastOnly && T > 1) x = ops.slice(x, 1, T - 1, T);
    const hN = hook(ops.rmsNorm(x, this.param("model.norm.weight"), c.eps), "ln_final.hook_normalized", null);
    return ops.linear(hN, this.params.get("lm_head.weight") ?? this.param("model.embed_tokens.weight"));
  }

  private gpt2(
    ids: Int32Array,
    B: number,
    T: number,
    positions: Int32Array,
    opts: ForwardOptions,
    hook: (x: Tensor, name: string, layer: number | null) => Tensor,
  ): Tensor {
    const c = this.config;
    const H = c.hidden;
    const drop = this.residualDrop(opts.training ?? false);
    for (const p of positions) {
      if (p >= c.maxPositions) throw new Error(`forward: position ${p} beyond n_positions ${c.maxPositions}`);
    }
    // Conv1D: y = x·W + b with W [in, out].
    const conv = (t: Tensor, name: string) =>
      ops.add(ops.matmul(t, this.param(`${name}.weight`)), this.param(`${name}.bias`));
    const tok = hook(ops.gather(this.param("transformer.wte.weight"), ids, [B, T]), "hook_embed", null);
    const pos = hook(ops.gather(this.param("transformer.wpe.weight"), positions, [B, T]), "hook_pos_embed", null);
    let x = ops.add(tok, pos); // [B, T, H]
    const heads = (t: Tensor) => ops.permute(ops.reshape(t, [B, T, c.heads, c.headDim]), [0, 2, 1, 3]);
    for (let i = 0; i < c.layers; i++) {
      const L = `transformer.h.${i}`;
      x = hook(x, `blocks.${i}.hook_resid_pre`, i);
      const h = ops.layerNorm(x, this.param(`${L}.ln_1.weight`), this.param(`${L}.ln_1.bias`), c.eps);
      const qkv = conv(h, `${L}.attn.c_attn`); // [B, T, 3H]
      const q = heads(ops.slice(qkv, 2, 0, H));
      let k = heads(ops.slice(qkv, 2, H, 2 * H));
      let v = heads(ops.slice(qkv, 2, 2 * H, 3 * H));
      if (opts.cache) ({ k, v } = opts.cache.append(i, k, v));
      const a = ops.attention(q, k, v, { keyMask: opts.keyMask });
      const merged = ops.reshape(ops.permute(a, [0, 2, 1, 3]), [B, T, H]);
      const attnOut = hook(drop(conv(merged, `${L}.attn.c_proj`)), `blocks.${i}.hook_attn_out`, i);
      x = hook(ops.add(x, attnOut), `blocks.${i}.hook_resid_mid`, i);
      const h2 = ops.layerNorm(x, this.param(`${L}.ln_2.weight`), this.param(`${L}.ln_2.bias`), c.eps);
      const mid = ops.gelu(conv(h2, `${L}.mlp.c_fc`), c.act === "gelu" ? "none" : "tanh");
      const mlpOut = hook(drop(conv(mid, `${L}.mlp.c_proj`)), `blocks.${i}.hook_mlp_out`, i);
      x = hook(ops.add(x, mlpOut), `blocks.${i}.hook_resid_post`, i);
    }
    if (opts.lastOnly && T > 1) x = ops.slice(x, 1, T - 1, T);
    const hN = hook(
      ops.layerNorm(x, this.param("transformer.ln_f.weight"), this.param("transformer.ln_f.bias"), c.eps),
      "ln_final.hook_normalized",
      null,
    );
    return ops.linear(hN, this.params.get("lm_head.weight") ?? this.param("transformer.wte.weight"));
  }

  /**
   * Runs the model without gradients and returns the requested activations by hook name
   * (plus the logits).
   */
  runWithCache(
    ids: Int32Array,
    B: number,
    T: number,
    names: readonly string[],
    opts: Omit<ForwardOptions, "hooks"> & { hooks?: readonly Hook[] } = {},
  ): { logits: Tensor; cache: Map<string, Tensor> } {
    const cache = new Map<string, Tensor>();
    const want = new Set(names);
    const reader: Hook = {
      name: (n) => want.has(n),
      fn: (x, ctx) => {
        cache.set(ctx.name, x);
      },
    };
    const logits = noGrad(() => this.forward(ids, B, T, { ...opts, hooks: [...(opts.hooks ?? []), reader] }));
    for (const n of names) if (!cache.has(n)) throw new Error(`runWithCache: unknown hook point '${n}'`);
    return { logits, cache };
  }

  /** Parameters that training updates: the adapter's when one is attached, else all. */
  trainableParams(): Tensor[] {
    if (this.adapter) return [...this.adapter.modules.values()].flatMap((m) => [m.A, m.B]);
    return [...this.params.values()];
  }
}
