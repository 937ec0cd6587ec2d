/**
 * Model configuration: Hugging Face config.json → one normalised ModelConfig, for the
 * architectures emlab runs (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM,
 * GPT2LMHeadModel). The original JSON is kept so saving writes it back unchanged.
 */

export type Arch = "llama" | "qwen2" | "mistral" | "gpt2";

export interface ModelConfig {
  arch: Arch;
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  inter: number;
  eps: number;
  /** Rotary base (Llama family); 0 for GPT-2, which uses learned positions. */
  ropeTheta: number;
  maxPositions: number;
  tieEmbeddings: boolean;
  /** q/k/v projections carry biases (Qwen2; also Llama with attention_bias). */
  qkvBias: boolean;
  /** o_proj and MLP projections carry biases (Llama's mlp_bias / attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  act: "silu" | "gelu_new" | "gelu";
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** config.json as read (saving writes it back). */
  raw: Record<string, unknown>;
}

const ARCHS: Record<string, Arch> = {
  LlamaForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  MistralForCausalLM: "mistral",
  GPT2LMHeadModel: "gpt2",
};

export class ConfigError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "ConfigError";
  }
}

/** Parses a config.json object; `file` names the source in errors. */
export function parseConfig(raw: Record<string, unknown>, file = "config.json"): ModelConfig {
  const archName = Array.isArray(raw.architectures) ? String(raw.architectures[0]) : undefined;
  const byType: Record<string, Arch> = { llama: "llama", qwen2: "qwen2", mistral: "mistral", gpt2: "gpt2" };
  const arch = archName !== undefined ? ARCHS[archName] : byType[String(raw.model_type)];
  if (!arch) {
    throw new ConfigError(
      file,
      `unsupported architecture ${archName ?? `model_type '${raw.model_type}'`}; emlab supports ${Object.keys(ARCHS).join(", ")}`,
    );
  }
  const num = (key: string, fallback?: number): number => {
    const v = raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(file, `missing field '${key}'`);
    }
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ConfigError(file, `field '${key}' must be a number`);
    return v;
  };
  const ids = (v: unknown): number[] => (Array.isArray(v) ? v.map(Number) : typeof v === "number" ? [v] : []);
  let cfg: Omit<ModelConfig, "headDim" | "raw">;
  if (arch === "gpt2") {
    const hidden = num("n_embd");
    cfg = {
      arch,
      vocab: num("vocab_size"),
      hidden,
      layers: num("n_layer"),
      heads: num("n_head"),
      kvHeads: num("n_head"),
      inter: num("n_inner", 4 * hidden),
      eps: num("layer_norm_epsilon", 1e-5),
      ropeTheta: 0,
      maxPositions: num("n_positions", 1024),
      tieEmbeddings: raw.tie_word_embeddings !== false,
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      act: raw.activation_function === "gelu" ? "gelu" : "gelu_new",
      bosTokenId: typeof raw.bos_token_id === "number" ? raw.bos_token_id : null,
      eosTokenIds: ids(raw.eos_token_id),
    };
  } else {
    const heads = num("num_attention_heads");
    const act = String(raw.hidden_act ?? "silu");
    if (act !== "silu") throw new ConfigError(file, `hidden_act '${act}' is not supported (only silu)`);
    const attentionBias = raw.attention_bias === true;
    cfg = {
      arch,
      vocab: num("vocab_size"),
      hidden: num("hidden_size"),
      layers: num("num_hidden_layers"),
      heads,
      kvHeads: num("num_key_value_heads", heads),
      inter: num("intermediate_size"),
      eps: num("rms_norm_eps", 1e-6),
      ropeTheta: num("rope_theta", 10000),
      maxPositions: num("max_position_embeddings", 2048),
      tieEmbeddings: raw.tie_word_embeddings === true,
      qkvBias: arch === "qwen2" || attentionBias,
      oBias: attentionBias,
      mlpBias: raw.mlp_bias === true,
      act: "silu",
      bosTokenId: typeof raw.bos_token_id === "number" ? raw.bos_token_id : null,
      eosTokenIds: ids(raw.eos_token_id),
    };
    const scaling = raw.rope_scaling as { type?: string; rope_type?: string } | null | undefined;
    if (scaling && (scaling.rope_type ?? scaling.type) !== "default") {
      throw new ConfigError(file, `rope_scaling '${scaling.rope_type ?? scaling.type}' is not supported`);
    }
  }
  const headDim = arch === "gpt2" ? cfg.hidden / cfg.heads : num("head_dim", cfg.hidden / cfg.heads);
  if (!Number.isInteger(headDim))
    throw new ConfigError(file, `hidden size ${cfg.hidden} not divisible by ${cfg.heads} heads`);
  if (cfg.heads % cfg.kvHeads !== 0) {
    throw new ConfigError(
      file,
      `num_attention_heads ${cfg.heads} is not a multiple of num_key_value_heads ${cfg.kvHeads}`,
    );
  }
  return { ...cfg, headDim, raw };
}

/** A config.json object for a Llama-family model (used when emlab creates models). */
export function llamaConfigJson(c: {
  arch?: "llama" | "qwen2" | "mistral";
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads?: number;
  inter: number;
  ropeTheta?: number;
  eps?: number;
  maxPositions?: number;
  tieEmbeddings?: boolean;
  bosTokenId?: number;
  eosTokenId?: number | number[];
}): Record<string, unknown> {
  const arch = c.arch ?? "llama";
  const names = { llama: "LlamaForCausalLM", qwen2: "Qwen2ForCausalLM", mistral: "MistralForCausalLM" };
  return {
    architectures: [names[arch]],
    model_type: arch,
    vocab_size: c.vocab,
    hidden_size: c.hidden,
    intermediate_size: c.inter,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads ?? c.heads,
    hidden_act: "silu",
    max_position_embeddings: c.maxPositions ?? 2048,
    rms_norm_eps: c.eps ?? 1e-6,
    rope_theta: c.ropeTheta ?? 10000,
    tie_word_embeddings: c.tieEmbeddings ?? false,
    bos_token_id: c.bosTokenId ?? null,
    eos_token_id: c.eosTokenId ?? null,
    torch_dtype: "float32",
  };
}
