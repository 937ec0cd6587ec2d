/**
 * Latent dashboards: the data a report shows about one SAE latent, as plain JSON.
 *
 *   topContexts   the corpus sequences where the latent fires hardest: a token window around
 *                 each sequence's maximum, decoded, with the activation on every token
 *   histogram     fixed-width bins over the non-zero activations, the fraction of zeros and
 *                 the firing frequency
 *   logitLens     the tokens the decoder direction promotes and suppresses when read
 *                 straight through the final norm's weight and the unembedding
 *   nearest       the latents whose decoder directions are closest by cosine
 *
 * Special tokens (BOS, role markers, …) are shown in windows but left out of the maxima and
 * the histogram by default: their activations are often outliers that say little.
 *
 * @example
 *   const [d] = latentDashboards({ model, tokenizer: tok, sae, corpus: docs.map((text) => ({ text })), latents: [42] });
 *   d.topContexts[0].text; // "… the words around the strongest activation …"
 */
import type { CausalLM } from "../model/model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { type ActivationItem, type ActivationRows, collectActivations } from "./activations/collect.ts";
import type { Sae } from "./sae/sae.ts";

export interface TokenActivation {
  pos: number;
  token: number;
  text: string;
  act: number;
}

export interface TopContext {
  item: number;
  /** Position of the maximum inside the item. */
  pos: number;
  maxActivation: number;
  /** The window's tokens decoded together. */
  text: string;
  tokens: TokenActivation[];
}

export interface ActivationHistogram {
  /** bins + 1 edges; the bins cover [min(0, smallest), max(0, largest)] of the non-zero values. */
  edges: number[];
  counts: number[];
  /** Rows counted (special tokens excluded unless asked). */
  total: number;
  zeros: number;
  fractionZero: number;
  /** Share of counted rows where the latent is non-zero. */
  firingFrequency: number;
  maxActivation: number;
  meanNonZero: number | null;
}

export interface LogitLensToken {
  token: number;
  text: string;
  logit: number;
}

export interface LogitLens {
  /** Largest logits first. */
  top: LogitLensToken[];
  /** Smallest logits first. */
  bottom: LogitLensToken[];
}

export interface NearestLatent {
  latent: number;
  cosine: number;
}

export interface LatentDashboard {
  latent: number;
  hook: string;
  histogram: ActivationHistogram;
  topContexts: TopContext[];
  logitLens: LogitLens;
  nearest: NearestLatent[];
}

type Decode = (ids: number[]) => string;

/**
 * The activation of each of `latents` on every row: one Float32Array [n] per latent, from the
 * SAE's sparse encoding (no dense [n, d_sae] matrix).
 */
export function latentActivations(sae: Sae, acts: Float32Array, n: number, latents: readonly number[]): Float32Array[] {
  const { dSae } = sae.cfg;
  for (const j of latents)
    if (!Number.isInteger(j) || j < 0 || j >= dSae) throw new RangeError(`latent ${j} outside [0, ${dSae})`);
  const slot = new Map<number, number>(latents.map((j, s) => [j, s]));
  const out = latents.map(() => new Float32Array(n));
  const chunk = 4096;
  const { dIn } = sae.cfg;
  for (let r0 = 0; r0 < n; r0 += chunk) {
    const m = Math.min(chunk, n - r0);
    const s = sae.encodeSparse(acts.subarray(r0 * dIn, (r0 + m) * dIn), m);
    for (let i = 0; i < m; i++) {
      for (let p = i * s.k; p < (i + 1) * s.k; p++) {
        const at = slot.get(s.idx[p]!);
        if (at !== undefined && s.val[p] !== 0) out[at]![r0 + i] = s.val[p]!;
      }
    }
  }
  return out;
}

/**
 * The `k` items with the largest maximum activation (> 0), each as a window of `before`
 * tokens before the maximum and `after` after it. `counted[r]` false leaves row r out of the
 * maxima (it still shows in windows).
 */
export function topContexts(
  values: Float32Array,
  rows: Pick<ActivationRows, "n" | "item" | "pos" | "token">,
  opts: { k?: number; before?: number; after?: number; decode?: Decode; counted?: ArrayLike<boolean> } = {},
): TopContext[] {
  const { k = 10, before = 10, after = 5 } = opts;
  const decode = opts.decode ?? ((ids: number[]) => ids.join(" "));
  const byItem = new Map<number, number[]>(); // item → its row indices, by position
  const best = new Map<number, number>(); // item → row of its maximum
  for (let r = 0; r < rows.n; r++) {
    const it = rows.item[r]!;
    let list = byItem.get(it);
    if (!list) byItem.set(it, (list = []));
    list.push(r);
    if (opts.counted && !opts.counted[r]) continue;
    const b = best.get(it);
    if (values[r]! > 0 && (b === undefined || values[r]! > values[b]!)) best.set(it, r);
  }
  const ranked = [...best.entries()].sort((a, b) => values[b[1]]! - values[a[1]]! || a[0] - b[0]).slice(0, k);
  return ranked.map(([item, r]) => {
    const list = byItem.get(item)!.sort((a, b) => rows.pos[a]! - rows.pos[b]!);
    const p = rows.pos[r]!;
    const window = list.filter((q) => rows.pos[q]! >= p - before && rows.pos[q]! <= p + after);
    const ids = window.map((q) => rows.token[q]!);
    return {
      item,
      pos: p,
      maxActivation: values[r]!,
      text: decode(ids),
      tokens: window.map((q) => ({
        pos: rows.pos[q]!,
        token: rows.token[q]!,
        text: decode([rows.token[q]!]),
        act: values[q]!,
      })),
    };
  });
}

/** Histogram of the non-zero values in `bins` equal bins, with the zero fraction. */
export function activationHistogram(
  values: ArrayLike<number>,
  bins = 20,
  counted?: ArrayLike<boolean>,
): ActivationHistogram {
  if (!(Number.isInteger(bins) && bins >= 1))
    throw new Error(`activationHistogram: bins ${bins} is not a positive integer`);
  let total = 0;
  let zeros = 0;
  let lo = 0;
  let hi = 0;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    if (counted && !counted[i]) continue;
    const v = values[i]!;
    total++;
    if (v === 0) zeros++;
    else {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      sum += v;
    }
  }
  const nonZero = total - zeros;
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, b) => (b === bins ? hi : lo + b * width));
  const counts = new Array<number>(bins).fill(0);
  if (nonZero > 0) {
    for (let i = 0; i < values.length; i++) {
      if ((counted && !counted[i]) || values[i] === 0) continue;
      counts[Math.min(bins - 1, Math.floor((values[i]! - lo) / width))]!++;
    }
  }
  return {
    edges,
    counts,
    total,
    zeros,
    fractionZero: total ? zeros / total : 0,
    firingFrequency: total ? nonZero / total : 0,
    maxActivation: hi,
    meanNonZero: nonZero ? sum / nonZero : null,
  };
}

/** The final norm's weight and the unembedding [vocab, hidden] of a model, by architecture. */
function unembedding(model: CausalLM): { norm: Float32Array; wU: Float32Array } {
  const gpt2 = model.config.arch === "gpt2";
  const norm = model.param(gpt2 ? "transformer.ln_f.weight" : "model.norm.weight").data;
  const wU = (
    model.params.get("lm_head.weight") ?? model.param(gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight")
  ).data;
  return { norm, wU };
}

/**
 * Logit lens of a residual-stream direction [hidden]: logits = W_U (direction ⊙ norm weight)
 * (the norm's scaling by the input's RMS and any bias are the same for every token, so they
 * do not change the ranking). Top and bottom `k` tokens.
 */
export function logitLens(
  model: CausalLM,
  direction: Float32Array,
  { k = 10, decode }: { k?: number; decode?: Decode } = {},
): LogitLens {
  const H = model.config.hidden;
  if (direction.length !== H)
    throw new Error(`logitLens: direction has ${direction.length} values, the model's hidden size is ${H}`);
  const { norm, wU } = unembedding(model);
  const v = direction.map((x, h) => x * norm[h]!);
  const V = model.config.vocab;
  const logits = new Float64Array(V);
  for (let t = 0; t < V; t++) {
    let s = 0;
    for (let h = 0; h < H; h++) s += wU[t * H + h]! * v[h]!;
    logits[t] = s;
  }
  const order = Array.from({ length: V }, (_, t) => t).sort((a, b) => logits[b]! - logits[a]! || a - b);
  const show = (t: number): LogitLensToken => ({ token: t, text: decode ? decode([t]) : String(t), logit: logits[t]! });
  const m = Math.min(k, V);
  return {
    top: order.slice(0, m).map(show),
    bottom: order
      .slice(V - m)
      .reverse()
      .map(show),
  };
}

/** The `k` latents whose decoder rows have the largest cosine with latent j's (itself excluded). */
export function nearestLatents(sae: Sae, j: number, k = 10): NearestLatent[] {
  const { dSae, dIn } = sae.cfg;
  if (!Number.isInteger(j) || j < 0 || j >= dSae) throw new RangeError(`latent ${j} outside [0, ${dSae})`);
  const w = sae.wDec; // [dSae, dIn]
  const norm = (r: number) => {
    let s = 0;
    for (let t = r * dIn; t < (r + 1) * dIn; t++) s += w[t]! * w[t]!;
    return Math.sqrt(s);
  };
  const nj = norm(j);
  const out: NearestLatent[] = [];
  for (let r = 0; r < dSae; r++) {
    if (r === j) continue;
    let s = 0;
    for (let t = 0; t < dIn; t++) s += w[r * dIn + t]! * w[j * dIn + t]!;
    const nr = norm(r);
    out.push({ latent: r, cosine: nr > 0 && nj > 0 ? s / (nr * nj) : 0 });
  }
  return out.sort((a, b) => b.cosine - a.cosine || a.latent - b.latent).slice(0, k);
}

export interface DashboardOptions {
  model: CausalLM;
  sae: Sae;
  /** Tokenises the corpus, decodes tokens, and names the special ids. */
  tokenizer?: Tokenizer;
  /** Items to run the model over (every token is collected), or… */
  corpus?: readonly ActivationItem[];
  /**
   * …activations already collected at the SAE's hook point (all tokens, with provenance), in
   * raw model units (a store's `loadAll({ raw: true })`: the SAE applies its own scale).
   */
  rows?: ActivationRows;
  latents: readonly number[];
  /** Top contexts per latent (default 10) and the window around each maximum (10 before, 5 after). */
  contexts?: number;
  before?: number;
  after?: number;
  bins?: number;
  /** Logit-lens tokens each way (default 10) and nearest latents (default 10). */
  logitTokens?: number;
  nearest?: number;
  /** Count special tokens in maxima and histograms (default false). */
  includeSpecial?: boolean;
  batchSize?: number;
}

/**
 * One dashboard per latent from one pass over the corpus.
 *
 * @example
 *   const boards = latentDashboards({ model, sae, tokenizer: tok, corpus, latents: top.slice(0, 5) });
 *   writeFileSync("latents.json", JSON.stringify(boards));
 */
export function latentDashboards(o: DashboardOptions): LatentDashboard[] {
  const hook = o.sae.cfg.hookName;
  if (o.sae.cfg.dIn !== o.model.config.hidden) {
    throw new Error(
      `latentDashboards: the SAE reads ${o.sae.cfg.dIn} values, the model's hidden size is ${o.model.config.hidden}`,
    );
  }
  let rows = o.rows;
  if (!rows) {
    if (!o.corpus) throw new Error("latentDashboards: give a corpus or collected rows");
    rows = collectActivations(o.model, o.corpus, { hook, tokenizer: o.tokenizer, mask: "all", batchSize: o.batchSize });
  }
  const tok = o.tokenizer;
  const decode: Decode = tok ? (ids) => tok.decode(ids) : (ids) => ids.join(" ");
  const special = tok?.specialIds ?? new Set(o.model.config.bosTokenId === null ? [] : [o.model.config.bosTokenId]);
  const counted = o.includeSpecial ? undefined : Array.from(rows.token, (t) => !special.has(t));
  const values = latentActivations(o.sae, rows.acts, rows.n, o.latents);
  return o.latents.map((latent, s) => ({
    latent,
    hook,
    histogram: activationHistogram(values[s]!, o.bins ?? 20, counted),
    topContexts: topContexts(values[s]!, rows, { k: o.contexts, before: o.before, after: o.after, decode, counted }),
    logitLens: logitLens(o.model, o.sae.decoderDirection(latent), { k: o.logitTokens, decode }),
    nearest: nearestLatents(o.sae, latent, o.nearest ?? 10),
  }));
}
