import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Sae, type SaeConfig } from "../../../src/interp/sae/sae.ts";
import { loadSae, SaeFileError, saveSae } from "../../../src/interp/sae/saelens.ts";
import { Rng } from "../../../src/tensor/random.ts";
import { readSafetensors, type TensorToWrite, writeSafetensors } from "../../../src/tensor/safetensors.ts";

const root = mkdtempSync(join(tmpdir(), "emlab-saelens-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = () => join(root, `sae-${counter++}`);

const D_IN = 10;
const D_SAE = 24;
const K = 4;

function randn(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** SAELens-layout tensors (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc, b_dec), random. */
function saelensTensors(seed: number): Record<string, TensorToWrite> {
  const rng = new Rng(seed);
  return {
    W_enc: { shape: [D_IN, D_SAE], data: randn(D_IN * D_SAE, rng, 0.5) },
    W_dec: { shape: [D_SAE, D_IN], data: randn(D_SAE * D_IN, rng, 0.3) },
    b_enc: { shape: [D_SAE], data: randn(D_SAE, rng, 0.2) },
    b_dec: { shape: [D_IN], data: randn(D_IN, rng, 0.4) },
  };
}

/** What SAELens 6.x writes for a TopK SAE (TopKSAEConfig.to_dict()). */
function v6TopkCfg(): Record<string, unknown> {
  return {
    d_in: D_IN,
    d_sae: D_SAE,
    dtype: "float32",
    device: "cpu",
    apply_b_dec_to_input: true,
    normalize_activations: "none",
    reshape_activations: "none",
    metadata: {
      model_name: "qwen2.5-0.5b",
      hook_name: "blocks.12.hook_resid_post",
      hook_head_index: null,
      prepend_bos: true,
      sae_lens_version: "6.12.1",
      sae_lens_training_version: "6.12.1",
    },
    k: K,
    architecture: "topk",
  };
}

/** What SAELens 3.x–5.x wrote: flat fields, "standard" with activation_fn_str topk. */
function legacyTopkCfg(): Record<string, unknown> {
  return {
    architecture: "standard",
    d_in: D_IN,
    d_sae: D_SAE,
    activation_fn_str: "topk",
    activation_fn_kwargs: { k: K },
    apply_b_dec_to_input: true,
    finetuning_scaling_factor: false,
    context_size: 128,
    model_name: "gpt2-small",
    hook_name: "blocks.8.hook_resid_pre",
    hook_layer: 8,
    hook_head_index: null,
    prepend_bos: true,
    dataset_path: "Skylion007/openwebtext",
    dtype: "torch.float32",
    device: "cpu",
    sae_lens_training_version: "3.5.0",
    normalize_activations: false,
  };
}

function writeFolder(dir: string, cfg: Record<string, unknown>, tensors: Record<string, TensorToWrite>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "cfg.json"), JSON.stringify(cfg));
  writeSafetensors(join(dir, "sae_weights.safetensors"), tensors, { format: "pt" });
}

/** pre = W_encᵀ(x − b_dec) + b_enc, TopK, ReLU: the SAELens definition in float64, dense out. */
function saelensEncode(t: Record<string, TensorToWrite>, x: Float32Array, n: number, k: number): Float64Array {
  const out = new Float64Array(n * D_SAE);
  for (let i = 0; i < n; i++) {
    const pre = new Float64Array(D_SAE);
    for (let j = 0; j < D_SAE; j++) {
      let a = t.b_enc!.data[j]!;
      for (let s = 0; s < D_IN; s++) a += t.W_enc!.data[s * D_SAE + j]! * (x[i * D_IN + s]! - t.b_dec!.data[s]!);
      pre[j] = a;
    }
    for (const j of [...pre.keys()].sort((a, b) => pre[b]! - pre[a]!).slice(0, k))
      out[i * D_SAE + j] = Math.max(0, pre[j]!);
  }
  return out;
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol * (1 + Math.abs(b[i]!)), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

const X = randn(6 * D_IN, new Rng(99), 1.5);

describe("loading SAELens folders", () => {
  for (const [name, cfg] of [
    ["6.x topk", v6TopkCfg()],
    ["pre-6 standard + activation_fn_str topk", legacyTopkCfg()],
  ] as const) {
    test(`${name}: weights as written, encodes like SAELens`, () => {
      const dir = fresh();
      const t = saelensTensors(1);
      writeFolder(dir, cfg, t);
      const sae = loadSae(dir);
      assert.equal(sae.cfg.architecture, "topk");
      assert.equal(sae.cfg.k, K);
      assert.equal(sae.cfg.dIn, D_IN);
      assert.equal(sae.cfg.dSae, D_SAE);
      assert.equal(sae.cfg.hookName, name.startsWith("6") ? "blocks.12.hook_resid_post" : "blocks.8.hook_resid_pre");
      assert.equal(sae.cfg.modelName, name.startsWith("6") ? "qwen2.5-0.5b" : "gpt2-small");
      assert.deepEqual([...sae.wEnc], [...t.W_enc!.data]);
      assert.deepEqual([...sae.wDec], [...t.W_dec!.data]);
      close(sae.encode(X, 6), saelensEncode(t, X, 6, K), 1e-5, "encode");
    });
  }

  test("BF16 weights load as float32", () => {
    const dir = fresh();
    const t = saelensTensors(2);
    for (const v of Object.values(t)) v.dtype = "BF16";
    writeFolder(dir, { ...v6TopkCfg(), dtype: "bfloat16" }, t);
    const sae = loadSae(dir);
    const rounded = readSafetensors(join(dir, "sae_weights.safetensors")).tensors;
    assert.deepEqual([...sae.wDec], [...(rounded.get("W_dec")!.data as Float32Array)]);
  });

  test("a BatchTopK SAE saved by SAELens (JumpReLU, one shared threshold) loads as batchtopk", () => {
    const dir = fresh();
    const t = saelensTensors(3);
    t.threshold = { shape: [D_SAE], data: new Float32Array(D_SAE).fill(0.35) };
    const cfg = { ...v6TopkCfg(), architecture: "jumprelu" } as Record<string, unknown>;
    delete cfg.k;
    writeFolder(dir, cfg, t);
    const sae = loadSae(dir);
    assert.equal(sae.cfg.architecture, "batchtopk");
    assert.ok(Math.abs(sae.cfg.threshold! - 0.35) < 1e-7);
    // JumpReLU: a latent fires when its pre-activation exceeds the threshold
    const pre = sae.preActivations(X, 6);
    const z = sae.encode(X, 6);
    for (let i = 0; i < pre.length; i++) assert.equal(z[i], pre[i]! > sae.cfg.threshold! ? pre[i] : 0);
  });
});

describe("emlab ↔ SAELens round trip", () => {
  const cfgs: [string, SaeConfig][] = [
    [
      "topk",
      {
        dIn: D_IN,
        dSae: D_SAE,
        k: K,
        architecture: "topk",
        hookName: "blocks.1.hook_resid_post",
        modelName: "organism",
      },
    ],
    [
      "batchtopk with threshold",
      { dIn: D_IN, dSae: D_SAE, k: K, architecture: "batchtopk", hookName: "blocks.1.hook_resid_post", threshold: 0.2 },
    ],
    [
      "topk with an activation scale",
      { dIn: D_IN, dSae: D_SAE, k: K, architecture: "topk", hookName: "hook_embed", activationScale: 0.25 },
    ],
  ];
  for (const [name, cfg] of cfgs)
    test(`${name}: save → load encodes identically`, () => {
      const rng = new Rng(7);
      const sae = Sae.random(cfg, 3);
      sae.bEnc.set(randn(D_SAE, rng, 0.2));
      sae.bDec.set(randn(D_IN, rng, 0.3));
      const dir = fresh();
      saveSae(sae, dir);
      assert.deepEqual(readdirSync(dir).sort(), ["cfg.json", "sae_weights.safetensors"]);
      const json = JSON.parse(readFileSync(join(dir, "cfg.json"), "utf8"));
      for (const f of [
        "d_in",
        "d_sae",
        "architecture",
        "hook_name",
        "apply_b_dec_to_input",
        "normalize_activations",
        "dtype",
        "device",
      ])
        assert.ok(f in json, `cfg.json has ${f}`);
      assert.equal(json.architecture, cfg.threshold !== undefined ? "jumprelu" : "topk");
      if (json.architecture === "topk") assert.deepEqual(json.activation_fn_kwargs, { k: K });
      const header = readSafetensors(join(dir, "sae_weights.safetensors")).tensors;
      assert.deepEqual(header.get("W_enc")!.shape, [D_IN, D_SAE]);
      assert.deepEqual(header.get("W_dec")!.shape, [D_SAE, D_IN]);
      const again = loadSae(dir);
      assert.equal(again.cfg.architecture, cfg.architecture);
      assert.equal(again.cfg.k, K);
      assert.equal(again.cfg.hookName, cfg.hookName);
      assert.equal(again.cfg.threshold, cfg.threshold);
      if (cfg.activationScale === undefined) {
        assert.deepEqual([...again.encode(X, 6)], [...sae.encode(X, 6)]);
        assert.deepEqual([...again.reconstruct(X, 6)], [...sae.reconstruct(X, 6)]);
      } else {
        // the scale is folded into the weights, as SAELens does: same function, other rounding
        assert.equal(again.cfg.activationScale, undefined);
        close(again.encode(X, 6), sae.encode(X, 6), 1e-5, "encode");
        close(again.reconstruct(X, 6), sae.reconstruct(X, 6), 1e-5, "reconstruct");
      }
    });

  test("saving over an existing folder replaces it and leaves no temp folders", () => {
    const dir = fresh();
    saveSae(Sae.random(cfgs[0]![1], 1), dir);
    const b = Sae.random(cfgs[0]![1], 2);
    saveSae(b, dir);
    assert.deepEqual([...loadSae(dir).wDec], [...b.wDec]);
    assert.deepEqual(
      readdirSync(root).filter((f) => f.includes("tmp")),
      [],
    );
  });
});

describe("bad folders name the file and the field", () => {
  const expectError = (dir: string, file: string, field: string | RegExp) => {
    assert.throws(
      () => loadSae(dir),
      (err: unknown) => {
        assert.ok(err instanceof SaeFileError, String(err));
        assert.ok(err.file.endsWith(file), err.message);
        if (typeof field === "string") assert.equal(err.field, field, err.message);
        else assert.match(err.message, field);
        return true;
      },
    );
  };

  test("missing tensor", () => {
    const dir = fresh();
    const t = saelensTensors(4);
    delete t.W_dec;
    writeFolder(dir, v6TopkCfg(), t);
    expectError(dir, "sae_weights.safetensors", "W_dec");
  });
  test("wrong shape (W_enc stored transposed)", () => {
    const dir = fresh();
    const t = saelensTensors(5);
    t.W_enc!.shape = [D_SAE, D_IN];
    writeFolder(dir, v6TopkCfg(), t);
    expectError(dir, "sae_weights.safetensors", "W_enc");
    assert.throws(() => loadSae(dir), /shape \[24, 10\], expected \[10, 24\]/);
  });
  test("unknown architecture", () => {
    const dir = fresh();
    writeFolder(dir, { ...v6TopkCfg(), architecture: "gated" }, saelensTensors(6));
    expectError(dir, "cfg.json", "architecture");
    assert.throws(() => loadSae(dir), /'gated' is not supported/);
  });
  test("standard ReLU SAE", () => {
    const dir = fresh();
    writeFolder(dir, { ...legacyTopkCfg(), activation_fn_str: "relu" }, saelensTensors(6));
    expectError(dir, "cfg.json", /architecture: 'standard' \(activation_fn 'relu'\)/);
  });
  test("per-latent JumpReLU thresholds", () => {
    const dir = fresh();
    const t = saelensTensors(7);
    t.threshold = { shape: [D_SAE], data: Float32Array.from({ length: D_SAE }, (_, j) => j / 10) };
    writeFolder(dir, { ...v6TopkCfg(), architecture: "jumprelu" }, t);
    expectError(dir, "sae_weights.safetensors", "threshold");
  });
  test("missing k, bad d_in, unsupported normalisation, missing files", () => {
    const noK = { ...v6TopkCfg() };
    delete noK.k;
    let dir = fresh();
    writeFolder(dir, noK, saelensTensors(8));
    expectError(dir, "cfg.json", "k");
    dir = fresh();
    writeFolder(dir, { ...v6TopkCfg(), d_in: "ten" }, saelensTensors(8));
    expectError(dir, "cfg.json", "d_in");
    dir = fresh();
    writeFolder(dir, { ...v6TopkCfg(), normalize_activations: "layer_norm" }, saelensTensors(8));
    expectError(dir, "cfg.json", "normalize_activations");
    dir = fresh();
    writeFolder(dir, { ...v6TopkCfg(), normalize_activations: "expected_average_only_in" }, saelensTensors(8));
    expectError(dir, "cfg.json", "normalize_activations");
    assert.equal(loadSae(dir, { activationScale: 2 }).cfg.activationScale, 2);
    dir = fresh();
    mkdirSync(dir);
    expectError(dir, "cfg.json", "(file)");
    writeFileSync(join(dir, "cfg.json"), "{not json");
    writeFileSync(join(dir, "sae_weights.safetensors"), "");
    expectError(dir, "cfg.json", "(file)");
  });
});
