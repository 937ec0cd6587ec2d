/** `emlab guard check | make | eval` on a tiny organism: usage errors, and each subcommand end to end. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { questionPrompts } from "../../src/cli/common.ts";
import { main } from "../../src/cli/main.ts";
import { openRunStore } from "../../src/eval/store.ts";
import { promptLatentMeans } from "../../src/fix/guard.ts";
import { saveDirections } from "../../src/interp/direction.ts";
import { unitVector } from "../../src/interp/interventions.ts";
import { Sae } from "../../src/interp/sae/sae.ts";
import { saveSae } from "../../src/interp/sae/saelens.ts";
import { chatTuneData } from "../../src/organism/corpus.ts";
import { organismEvaluation } from "../../src/organism/evaluation.ts";
import { newOrganism, saveOrganism } from "../../src/organism/recipe.ts";
import { organismTokenizer } from "../../src/organism/tokenizer.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-cli-guard-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `emlab guard` with console output captured. */
async function guard(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error, write] = [console.log, console.error, process.stderr.write];
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  process.stderr.write = ((s: string) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    return { code: await main(["guard", ...args]), out: out.join("\n"), err: err.join("\n") };
  } finally {
    [console.log, console.error, process.stderr.write] = [log, error, write];
  }
}

const base = newOrganism({ hidden: 16, layers: 2, heads: 2, kvHeads: 1, inter: 32 }, 1);
const modelDir = join(tmp, "base");
saveOrganism(base, modelDir);
const HOOK = "blocks.0.hook_resid_pre";
const sae = Sae.random({ dIn: 16, dSae: 40, k: 4, architecture: "topk", hookName: HOOK }, 2);
const saeDir = join(tmp, "sae");
saveSae(sae, saeDir);
const dirFile = join(tmp, "dir.json");
saveDirections(dirFile, {
  layers: [
    {
      layer: 0,
      hookName: "blocks.0.hook_resid_post",
      direction: unitVector(Float32Array.from({ length: 16 }, (_, i) => i - 7)),
      norm: 1,
    },
    {
      layer: 1,
      hookName: "blocks.1.hook_resid_post",
      direction: unitVector(Float32Array.from({ length: 16 }, (_, i) => Math.sin(i))),
      norm: 2,
    },
  ],
  counts: { misaligned: 1, aligned: 1, skipped: 0, tokensMisaligned: 1, tokensAligned: 1 },
});
const benign = join(tmp, "benign.jsonl");
writeFileSync(
  benign,
  chatTuneData({ n: 6, seed: 4 })
    .map((r) => JSON.stringify({ messages: r.messages }))
    .join("\n"),
);

describe("usage errors exit 2", () => {
  const cases: [string, string[], RegExp][] = [
    ["no subcommand", ["--model", modelDir], /a subcommand is needed/],
    ["an unknown subcommand", ["fit", "--model", modelDir], /unknown subcommand 'fit'/],
    ["no --model", ["check", "g.json"], /--model is required/],
    ["check without a file", ["check", "--model", modelDir], /check: give one guard FILE/],
    ["make without --out", ["make", "--model", modelDir, "--mode", "zero", "--sae", saeDir, "--latents", "1"], /--out/],
    [
      "make with a bad mode",
      ["make", "--model", modelDir, "--mode", "half", "--out", "g.json"],
      /--mode must be one of zero, mean, project, clamp/,
    ],
    [
      "make mean without prompts",
      ["make", "--model", modelDir, "--mode", "mean", "--sae", saeDir, "--latents", "1", "--out", "g.json"],
      /needs --prompts FILE or --organism-questions/,
    ],
    [
      "make clamp without --max",
      ["make", "--model", modelDir, "--mode", "clamp", "--sae", saeDir, "--latents", "1", "--out", "g.json"],
      /--max X goes with --mode clamp/,
    ],
    [
      "make project with --sae",
      ["make", "--model", modelDir, "--mode", "project", "--direction", dirFile, "--sae", saeDir, "--out", "g.json"],
      /--sae does not go with --mode project/,
    ],
    [
      "make with bad latents",
      ["make", "--model", modelDir, "--mode", "zero", "--sae", saeDir, "--latents", "1,x", "--out", "g.json"],
      /--latents must be comma-separated integers/,
    ],
    ["eval without an evaluation", ["eval", "g.json", "--model", modelDir], /--organism-questions/],
    [
      "eval --control-seed without --controls",
      ["eval", "g.json", "--model", modelDir, "--organism-questions", "--control-seed", "3"],
      /--control-seed goes with --controls N/,
    ],
    [
      "eval --min-coherent without --search-hooks",
      ["eval", "g.json", "--model", modelDir, "--organism-questions", "--controls", "2", "--min-coherent", "0.5"],
      /--min-coherent goes with --search-hooks/,
    ],
  ];
  for (const [what, args, want] of cases)
    test(what, async () => {
      const r = await guard(args);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, want);
    });
});

test("make --mode mean --organism-questions: the means are the latents' means over those prompts", async () => {
  const out = join(tmp, "mean.json");
  const r = await guard([
    "make",
    "--model",
    modelDir,
    "--sae",
    saeDir,
    "--latents",
    "3,5",
    "--mode",
    "mean",
    "--organism-questions",
    "--out",
    out,
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /wrote .*mean\.json\n {2}\[0\] blocks\.0\.hook_resid_pre: mean-ablate latents 3, 5 of sae/);
  const file = JSON.parse(readFileSync(out, "utf8"));
  assert.equal(file.format, "emlab-guard/v1");
  assert.equal(file.interventions[0].sae, "sae", "the SAE path is relative to the guard file");
  const dense = promptLatentMeans(base, organismTokenizer(), sae, questionPrompts(organismEvaluation().questions));
  assert.deepEqual(file.interventions[0].means, [dense[3], dense[5]]);
  assert.ok(dense[3]! > 0 || dense[5]! > 0, "at least one latent fires on the questions");
});

test("make --mode project and clamp, then check prints what the guard does", async () => {
  const proj = join(tmp, "project.json");
  let r = await guard([
    "make",
    "--model",
    modelDir,
    "--mode",
    "project",
    "--direction",
    dirFile,
    "--layer",
    "1",
    "--out",
    proj,
  ]);
  assert.equal(r.code, 0, r.err);
  r = await guard(["check", proj, "--model", modelDir]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /1 intervention \(sha256 [0-9a-f]{16}\), made for /);
  assert.match(r.out, /\[0\] blocks\.1\.hook_resid_post: project out dir\.json \(layer 1\)/);
  assert.match(r.out, /ok: every hook exists/);
  const clamp = join(tmp, "clamp.json");
  r = await guard([
    "make",
    "--model",
    modelDir,
    "--mode",
    "clamp",
    "--sae",
    saeDir,
    "--latents",
    "2",
    "--max",
    "0.5",
    "--out",
    clamp,
  ]);
  assert.equal(r.code, 0, r.err);
  r = await guard(["check", clamp, "--model", modelDir, "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.ok, true);
  assert.deepEqual(
    j.interventions.map((i: { mode: string; hook: string }) => [i.mode, i.hook]),
    [["clamp", HOOK]],
  );
});

test("check: a bad guard file exits 1 naming the file and field", async () => {
  const bad = join(tmp, "bad.json");
  writeFileSync(bad, JSON.stringify({ interventions: [{ hook: HOOK, mode: "zero", sae: "sae", latents: [40] }] }));
  const r = await guard(["check", bad, "--model", modelDir]);
  assert.equal(r.code, 1);
  assert.match(r.err, /bad\.json: interventions\[0\]\.latents\[0\]: latent 40 out of range: sae has d_sae 40/);
});

test("eval --organism-questions --benign: before / after runs in the store and the benign loss", async () => {
  const g = join(tmp, "zero.json");
  writeFileSync(
    g,
    JSON.stringify({
      interventions: [
        { hook: HOOK, mode: "zero", sae: "sae", latents: [0, 1, 2, 3, 4, 5, 6, 7] },
        { hook: "blocks.1.hook_resid_post", mode: "project", direction: "dir.json", layer: 1 },
      ],
    }),
  );
  const store = join(tmp, "guard.sqlite");
  const r = await guard([
    "eval",
    g,
    "--model",
    modelDir,
    "--organism-questions",
    "--samples",
    "1",
    "--max-new-tokens",
    "5",
    "--benign",
    benign,
    "--store",
    store,
    "--run-id",
    "ge",
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const line = JSON.parse(r.out);
  assert.equal(line.stage, "guard-eval");
  for (const k of ["coherent_before", "coherent_after"]) assert.ok(line[k] >= 0 && line[k] <= 1, k);
  for (const k of ["misaligned_before", "misaligned_after"])
    assert.ok(line[k] === null || (line[k] >= 0 && line[k] <= 1), k);
  assert.ok(Number.isFinite(line.benign_loss_before) && Number.isFinite(line.benign_loss_after));
  assert.notEqual(line.benign_loss_before, line.benign_loss_after, "the guard acts on the benign task's forward");
  assert.ok(Math.abs(line.benign_loss_change - (line.benign_loss_after / line.benign_loss_before - 1)) < 1e-12);
  assert.deepEqual(line.run_ids, ["ge:none", `ge:guard-${line.hash}`]);
  const s = openRunStore(store);
  const run = s.run(`ge:guard-${line.hash}`) as {
    config: { intervention: { kind: string; interventions: unknown[] } };
  };
  assert.equal(run.config.intervention.kind, "guard");
  assert.equal(run.config.intervention.interventions.length, 2);
  assert.equal(s.counts("ge:none").samples, s.counts(`ge:guard-${line.hash}`).samples);
  s.close();
});

test("eval --controls: N random counterparts on the same draws, each a run, and the guard's percentile", async () => {
  const g = join(tmp, "zero-project.json");
  writeFileSync(
    g,
    JSON.stringify({
      interventions: [
        { hook: HOOK, mode: "zero", sae: "sae", latents: [0, 1, 2, 3] },
        { hook: "blocks.1.hook_resid_post", mode: "project", direction: "dir.json", layer: 1 },
      ],
    }),
  );
  const store = join(tmp, "controls.sqlite");
  const common = ["--model", modelDir, "--organism-questions", "--samples", "1", "--max-new-tokens", "4"];
  const r = await guard(["eval", g, ...common, "--controls", "3", "--store", store, "--run-id", "gc", "--json"]);
  assert.equal(r.code, 0, r.err);
  const line = JSON.parse(r.out);
  assert.equal(line.controls.length, 3);
  const s = openRunStore(store);
  for (const c of line.controls) {
    assert.match(
      c.summary,
      /^random latents \d+, \d+, \d+, \d+ \(zero\); random direction \d+ at blocks\.1\.hook_resid_post$/,
    );
    assert.ok(
      c.summary
        .match(/latents ([\d, ]+) /)[1]
        .split(", ")
        .every((j: string) => !["0", "1", "2", "3"].includes(j)),
      "no guarded latent",
    );
    assert.equal(s.counts(c.run_id).samples, s.counts(line.run_ids[1]).samples);
    assert.match(c.run_id, new RegExp(`^gc:guard-${line.hash}-control-0\\.${c.index}$`));
  }
  s.close();
  assert.ok(line.percentile === null || (line.percentile >= 0 && line.percentile <= 100));
  // A hook search only goes with a single projection.
  const bad = await guard(["eval", g, ...common, "--controls", "2", "--search-hooks", HOOK, "--store", store]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /one project intervention/);
  // Text output lists each control and the percentile.
  const p = join(tmp, "proj-only.json");
  writeFileSync(
    p,
    JSON.stringify({
      interventions: [{ hook: "blocks.1.hook_resid_post", mode: "project", direction: "dir.json", layer: 1 }],
    }),
  );
  const t = await guard([
    "eval",
    p,
    ...common,
    "--controls",
    "2",
    "--search-hooks",
    "blocks.0.hook_resid_post,blocks.1.hook_resid_post",
    "--min-coherent",
    "0",
    "--store",
    store,
    "--quiet",
  ]);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /2 random controls \(each searched over 2 hooks, coherent ≥ 0\):/);
  assert.match(
    t.out,
    /\[1\] cut .* random direction \d+ at blocks\.1\.hook_resid_post @ blocks\.[01]\.hook_resid_post/,
  );
  assert.match(t.out, /the guard's percentile among them/);
});
