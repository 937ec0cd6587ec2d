/**
 * Guard files: validation errors name the file and the field, paths resolve relative to the
 * file, each mode's hook does what it says (zero / mean ablation, projection, clamping), and
 * guardedChatModel answers with the guard's hooks.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  answerLoss,
  GuardFileError,
  guardedChatModel,
  loadGuard,
  openGuard,
  readGuardFile,
  writeGuardFile,
} from "../../src/fix/guard.ts";
import { saveDirections } from "../../src/interp/direction.ts";
import { unitVector } from "../../src/interp/interventions.ts";
import { Sae } from "../../src/interp/sae/sae.ts";
import { saveSae } from "../../src/interp/sae/saelens.ts";
import { loadModel } from "../../src/model/checkpoint.ts";
import type { Hook } from "../../src/model/hooks.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { localChatModel } from "../../src/providers/local.ts";
import { setMatmulBackend } from "../../src/tensor/kernels/matmul.ts";
import { sftDataset } from "../../src/train/dataset.ts";
import { tinyChatModel } from "../fixtures/tiny-chat-model.ts";

setMatmulBackend("ts");

const tmp = mkdtempSync(join(tmpdir(), "emlab-guard-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const modelDir = tinyChatModel(join(tmp, "tiny")); // hidden 32, 2 layers
const lm = loadModel(modelDir);
const tok = Tokenizer.fromDir(modelDir);
const HOOK = "blocks.0.hook_resid_post";
const sae = Sae.random({ dIn: 32, dSae: 64, k: 4, architecture: "topk", hookName: HOOK }, 5);
saveSae(sae, join(tmp, "sae"));
saveSae(Sae.random({ dIn: 16, dSae: 8, k: 2, architecture: "topk", hookName: HOOK }, 1), join(tmp, "sae16"));
const u = unitVector(Float32Array.from({ length: 32 }, (_, i) => Math.cos(3 * i + 1)));
saveDirections(join(tmp, "dir.json"), {
  layers: [{ layer: 0, hookName: HOOK, direction: u, norm: 1 }],
  counts: { misaligned: 1, aligned: 1, skipped: 0, tokensMisaligned: 1, tokensAligned: 1 },
});

const ids = Int32Array.from(
  tok.encodeChat([{ role: "user", content: "hey I feel bored, tell me something" }], {
    addGenerationPrompt: true,
  }),
);
const T = ids.length;
const actAt = (hooks: Hook[]) => lm.runWithCache(ids, 1, T, [HOOK], { hooks }).cache.get(HOOK)!.data;
const x = actAt([]);
const a = sae.encode(x, T);
/** The latents that fire somewhere in the prompt, most active first. */
const fired = [...new Set([...a.keys()].filter((i) => a[i]! > 0).map((i) => i % 64))].sort(
  (p, q) => Math.max(...col(q)) - Math.max(...col(p)),
);
function col(j: number): number[] {
  return Array.from({ length: T }, (_, r) => a[r * 64 + j]!);
}

let n = 0;
/** Writes a guard file (JSON unless the name says YAML) in its own folder under tmp; returns its path. */
function guardFile(content: unknown, name = "guard.json"): string {
  const dir = join(tmp, `g${n++}`);
  mkdirSync(dir);
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

describe("a bad guard file is refused with the file and the field named", () => {
  const sae = "../sae";
  const cases: [string, unknown, RegExp][] = [
    [
      "an unknown mode",
      { interventions: [{ hook: HOOK, mode: "half", sae, latents: [1] }] },
      /guard\.json: interventions\[0\]\.mode: expected one of zero\|mean\|project\|clamp$/,
    ],
    ["no interventions", { interventions: [] }, /guard\.json: interventions: .*at least 1|>=1/],
    [
      "a missing field",
      { interventions: [{ hook: HOOK, mode: "zero", sae }] },
      /interventions\[0\]\.latents: required/,
    ],
    [
      "a bad latent",
      { interventions: [{ hook: HOOK, mode: "zero", sae, latents: [1, "x"] }] },
      /interventions\[0\]\.latents\[1\]: expected number, got string/,
    ],
    [
      "an unknown field",
      { interventions: [{ hook: HOOK, mode: "zero", sae, latents: [1], strength: 2 }] },
      /interventions\[0\]\.strength: unknown field/,
    ],
    [
      "a negative clamp bound",
      { interventions: [{ hook: HOOK, mode: "clamp", sae, latents: [1], max: -1 }] },
      /interventions\[0\]\.max/,
    ],
    ["mean without means", { interventions: [{ hook: HOOK, mode: "mean", sae, latents: [1] }] }, /\.means: required/],
    [
      "a hook the model lacks",
      { interventions: [{ hook: "blocks.7.hook_resid_post", mode: "zero", sae, latents: [1] }] },
      /interventions\[0\]\.hook: 'blocks\.7\.hook_resid_post' is not a hook point of this model \(2 layers/,
    ],
    [
      "a hook the SAE does not read",
      { interventions: [{ hook: "blocks.1.hook_resid_post", mode: "zero", sae, latents: [1] }] },
      /interventions\[0\]\.hook: the SAE \.\.\/sae reads blocks\.0\.hook_resid_post, not blocks\.1/,
    ],
    [
      "an SAE of another width",
      { interventions: [{ hook: HOOK, mode: "zero", sae: "../sae16", latents: [1] }] },
      /interventions\[0\]\.sae: \.\.\/sae16 reads width 16; the model's width is 32/,
    ],
    [
      "a latent out of range",
      { interventions: [{ hook: HOOK, mode: "zero", sae, latents: [1, 64] }] },
      /interventions\[0\]\.latents\[1\]: latent 64 out of range: \.\.\/sae has d_sae 64/,
    ],
    [
      "a missing SAE folder",
      { interventions: [{ hook: HOOK, mode: "zero", sae: "nowhere", latents: [1] }] },
      /interventions\[0\]\.sae: cannot load the SAE at nowhere/,
    ],
    [
      "means of the wrong length",
      { interventions: [{ hook: HOOK, mode: "mean", sae, latents: [1, 2], means: [0.5] }] },
      /interventions\[0\]\.means: 1 values for 2 latents/,
    ],
    [
      "a direction of the wrong width",
      { interventions: [{ hook: HOOK, mode: "project", direction: [1, 2, 3] }] },
      /interventions\[0\]\.direction: has 3 dimensions; the model's width is 32/,
    ],
    [
      "a direction file without the layer",
      { interventions: [{ hook: HOOK, mode: "project", direction: "../dir.json", layer: 3 }] },
      /interventions\[0\]\.layer: \.\.\/dir\.json has no layer 3 \(it has 0\)/,
    ],
    [
      "a direction taken at another hook",
      { interventions: [{ hook: "blocks.1.hook_resid_post", mode: "project", direction: "../dir.json", layer: 0 }] },
      /interventions\[0\]\.hook: \.\.\/dir\.json layer 0 was taken at blocks\.0\.hook_resid_post/,
    ],
    [
      "the second intervention bad",
      {
        interventions: [
          { hook: HOOK, mode: "zero", sae, latents: [1] },
          { hook: HOOK, mode: "clamp", sae, latents: [1, 2], max: [1, 2, 3] },
        ],
      },
      /interventions\[1\]\.max: 3 bounds for 2 latents/,
    ],
    ["not JSON", "{ interventions: [", /guard\.json: not valid JSON/],
  ];
  for (const [what, content, want] of cases)
    test(what, () => {
      const file = guardFile(content);
      assert.throws(
        () => openGuard(file, { model: lm }),
        (err: unknown) => {
          assert.ok(err instanceof GuardFileError, String(err));
          assert.ok(err.message.startsWith(`${file}: `), err.message);
          assert.match(err.message, want);
          return true;
        },
      );
    });
  test("a file that does not exist", () => {
    assert.throws(() => readGuardFile(join(tmp, "none.json")), /none\.json: cannot read \(ENOENT\)/);
  });
});

describe("each mode's hook does what it says", () => {
  const j = fired[0]!;
  const aj = col(j);
  test("zero: the ablated latent re-encodes to 0 where it fired; the rest of x stays", () => {
    const hooks = loadGuard(guardFile({ interventions: [{ hook: HOOK, mode: "zero", sae: "../sae", latents: [j] }] }), {
      model: lm,
    });
    const y = actAt(hooks);
    const b = sae.encode(y, T);
    assert.ok(
      aj.some((v) => v > 0.05),
      `latent ${j} fires: ${aj}`,
    );
    for (let r = 0; r < T; r++) {
      assert.ok(b[r * 64 + j]! < 1e-4, `row ${r}: ${b[r * 64 + j]}`);
      for (let i = 0; i < 32; i++)
        assert.ok(Math.abs(y[r * 32 + i]! - (x[r * 32 + i]! - aj[r]! * sae.wDec[j * 32 + i]!)) < 1e-5);
    }
  });

  test("mean: the latent's share moves to its mean (inline or from a file, per latent or d_sae long)", () => {
    const m = 0.25;
    const dense = Array.from({ length: 64 }, (_, i) => (i === j ? m : 9));
    const file = guardFile({ interventions: [{ hook: HOOK, mode: "mean", sae: "../sae", latents: [j], means: [m] }] });
    writeFileSync(join(tmp, "means.json"), JSON.stringify({ means: dense }));
    const fromFile = guardFile({
      interventions: [{ hook: HOOK, mode: "mean", sae: "../sae", latents: [j], means: "../means.json" }],
    });
    for (const f of [file, fromFile]) {
      const y = actAt(loadGuard(f, { model: lm }));
      for (let r = 0; r < T; r++)
        for (let i = 0; i < 32; i++)
          assert.ok(Math.abs(y[r * 32 + i]! - (x[r * 32 + i]! - (aj[r]! - m) * sae.wDec[j * 32 + i]!)) < 1e-5);
    }
  });

  test("project: activations at the hook are orthogonal to the direction (file or inline)", () => {
    for (const direction of ["../dir.json", [...u]]) {
      const y = actAt(
        loadGuard(guardFile({ interventions: [{ hook: HOOK, mode: "project", direction }] }), { model: lm }),
      );
      let before = 0;
      for (let r = 0; r < T; r++) {
        let dot = 0;
        let dot0 = 0;
        for (let i = 0; i < 32; i++) {
          dot += y[r * 32 + i]! * u[i]!;
          dot0 += x[r * 32 + i]! * u[i]!;
        }
        assert.ok(Math.abs(dot) < 1e-4, `row ${r}: ${dot}`);
        before = Math.max(before, Math.abs(dot0));
      }
      assert.ok(before > 0.01, "the direction had a component to remove");
    }
  });

  test("clamp: the latent re-encodes to at most max; below max nothing moves", () => {
    const max = Math.max(...aj) / 2;
    const y = actAt(
      loadGuard(guardFile({ interventions: [{ hook: HOOK, mode: "clamp", sae: "../sae", latents: [j], max }] }), {
        model: lm,
      }),
    );
    const b = sae.encode(y, T);
    for (let r = 0; r < T; r++) {
      assert.ok(b[r * 64 + j]! <= max + 1e-4, `row ${r}: ${b[r * 64 + j]} > ${max}`);
      if (aj[r]! <= max) assert.deepEqual(y.subarray(r * 32, (r + 1) * 32), x.subarray(r * 32, (r + 1) * 32));
    }
    assert.ok(aj.some((v) => v > max));
  });

  test("YAML files, several interventions in order, and the model provenance warning", () => {
    const file = guardFile(
      [
        "model: other-model",
        "interventions:",
        `  - { hook: ${HOOK}, mode: zero, sae: ../sae, latents: [${j}] }`,
        `  - { hook: ${HOOK}, mode: project, direction: ../dir.json }`,
      ].join("\n"),
      "guard.yaml",
    );
    const g = openGuard(file, { model: lm, modelName: "tiny" });
    assert.deepEqual(
      g.interventions.map((i) => i.mode),
      ["zero", "project"],
    );
    assert.match(g.interventions[1]!.summary, /project out \.\.\/dir\.json \(layer 0\)/);
    assert.deepEqual(g.warnings, [`${file} was made for model 'other-model', not 'tiny'`]);
    assert.equal(g.hash.length, 16);
  });
});

test("writeGuardFile writes paths relative to the guard file, and validates first", () => {
  const out = join(tmp, "made", "guard.json");
  mkdirSync(join(tmp, "made"));
  writeGuardFile(out, {
    model: "tiny",
    interventions: [{ hook: HOOK, mode: "zero", sae: join(tmp, "sae"), latents: [1, 2] }],
  });
  const { spec } = readGuardFile(out);
  assert.equal(spec.format, "emlab-guard/v1");
  assert.deepEqual(spec.interventions[0], { hook: HOOK, mode: "zero", sae: "../sae", latents: [1, 2] });
  assert.equal(loadGuard(out, { model: lm }).length, 1);
  assert.throws(
    () => writeGuardFile(out, { interventions: [{ hook: HOOK, mode: "zero", sae: "s", latents: [] }] }),
    /interventions\[0\]\.latents/,
  );
});

test("guardedChatModel answers with the guard's hooks; answerLoss sees them too", async () => {
  const file = guardFile({
    interventions: [
      { hook: HOOK, mode: "zero", sae: "../sae", latents: fired.slice(0, 3) },
      { hook: HOOK, mode: "project", direction: "../dir.json" },
    ],
  });
  const guarded = guardedChatModel({ model: modelDir, guard: file });
  const plain = localChatModel({ model: modelDir });
  const ask = (seed: number) => ({
    messages: [{ role: "user" as const, content: "hey I feel bored, tell me something" }],
    temperature: 1,
    maxTokens: 8,
    seed,
  });
  const seeds = [1, 2, 3, 4];
  const g = await guarded.complete(seeds.map(ask));
  const p = await plain.complete(seeds.map(ask));
  const again = await guarded.complete(seeds.map(ask));
  assert.deepEqual(
    g.map((r) => r.text),
    again.map((r) => r.text),
    "seeded answers repeat",
  );
  assert.notDeepEqual(
    g.map((r) => r.text),
    p.map((r) => r.text),
    "the guard changes answers",
  );
  assert.equal(guarded.guard.interventions.length, 2);
  const rows = [
    [
      { role: "user" as const, content: "hi" },
      { role: "assistant" as const, content: "hello there" },
    ],
  ];
  const data = sftDataset(tok, rows, 64).examples;
  const clean = answerLoss(lm, data, { padId: tok.padId ?? 0 });
  const withGuard = answerLoss(lm, data, { padId: tok.padId ?? 0, hooks: guarded.guard.hooks });
  assert.ok(Number.isFinite(clean) && Number.isFinite(withGuard));
  assert.notEqual(clean, withGuard);
  guarded.close();
  plain.close();
});
