/** `emlab sae`, `emlab diff`, `emlab steer` and `emlab screen`: usage errors, and each command end to end on tiny models. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { openRunStore } from "../../src/eval/store.ts";
import { Sae } from "../../src/interp/sae/sae.ts";
import { saveSae } from "../../src/interp/sae/saelens.ts";
import { CausalLM } from "../../src/model/model.ts";
import { newOrganism, saveOrganism } from "../../src/organism/recipe.ts";
import { cli } from "../helpers/cli.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-cli-interp-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

// A random (untrained) organism, and a "fine-tune" of it: the same weights with 2·W_dec[J]
// added to every token embedding, so blocks.0.hook_resid_pre moves along latent J exactly.
const base = newOrganism({ hidden: 16, layers: 2, heads: 2, kvHeads: 1, inter: 32 }, 1);
const HOOK = "blocks.0.hook_resid_pre";
const J = 21;
const sae = Sae.random({ dIn: 16, dSae: 40, k: 4, architecture: "topk", hookName: HOOK }, 2);
const baseDir = join(tmp, "base");
const ftDir = join(tmp, "ft");
const saeDir = join(tmp, "sae");
saveOrganism(base, baseDir);
{
  const params = new Map([...base.params].map(([k, t]) => [k, t.detach()]));
  const emb = params.get("model.embed_tokens.weight")!.data;
  const u = sae.decoderDirection(J);
  for (let i = 0; i < emb.length; i++) emb[i]! += 2 * u[i % 16]!;
  saveOrganism(new CausalLM(base.config, params), ftDir);
}
saveSae(sae, saeDir);

describe("usage errors exit 2", () => {
  const cases: [string, string[], RegExp][] = [
    [
      "diff without --base-model",
      ["diff", "--model", ftDir, "--sae", saeDir, "--organism-questions"],
      /--base-model is required/,
    ],
    [
      "diff without prompts",
      ["diff", "--base-model", baseDir, "--model", ftDir, "--sae", saeDir],
      /--prompts FILE or --organism/,
    ],
    [
      "diff with a bad --positions",
      ["diff", "--base-model", baseDir, "--model", ftDir, "--sae", saeDir, "--organism-questions", "--positions", "x"],
      /--positions/,
    ],
    [
      "diff with a bad --top",
      ["diff", "--base-model", baseDir, "--model", ftDir, "--sae", saeDir, "--organism-questions", "--top", "0"],
      /--top/,
    ],
    ["diff with an unknown option", ["diff", "--nope"], /nope/],
    [
      "diff direction without --run-id",
      ["diff", "direction", "--model", baseDir, "--store", "x", "--out", "y"],
      /--run-id is required/,
    ],
    [
      "steer without --model",
      ["steer", "--latent", "1", "--sae", saeDir, "--organism-questions"],
      /--model is required/,
    ],
    ["steer with nothing to do", ["steer", "--model", baseDir, "--organism-questions"], /nothing to do/],
    [
      "steer with --latent and --direction",
      ["steer", "--model", baseDir, "--sae", saeDir, "--latent", "1", "--direction", "d.json", "--organism-questions"],
      /not both/,
    ],
    [
      "steer --latent without --sae",
      ["steer", "--model", baseDir, "--latent", "1", "--organism-questions"],
      /need --sae/,
    ],
    [
      "steer with a bad --c",
      ["steer", "--model", baseDir, "--sae", saeDir, "--latent", "1", "--c", "0.1,x", "--organism-questions"],
      /--c must be/,
    ],
    [
      "steer with a bad --mode",
      ["steer", "--model", baseDir, "--sae", saeDir, "--ablate", "1", "--mode", "half", "--organism-questions"],
      /--mode/,
    ],
    [
      "steer with a bad --ablate",
      ["steer", "--model", baseDir, "--sae", saeDir, "--ablate", "1,a", "--organism-questions"],
      /--ablate/,
    ],
    ["steer without an evaluation", ["steer", "--model", baseDir, "--sae", saeDir, "--latent", "1"], /--organism/],
    [
      "steer --questions without a judge",
      ["steer", "--model", baseDir, "--sae", saeDir, "--latent", "1", "--questions", "q.yaml"],
      /--judge-model/,
    ],
    ["sae without a subcommand", ["sae"], /^$/],
    ["sae with an unknown subcommand", ["sae", "fit"], /unknown subcommand/],
    [
      "sae train without --hook",
      ["sae", "train", "--model", baseDir, "--organism-corpus", "5", "--out", "x"],
      /--hook is required/,
    ],
    [
      "sae train with both sources",
      [
        "sae",
        "train",
        "--model",
        baseDir,
        "--hook",
        HOOK,
        "--organism-corpus",
        "5",
        "--prompts",
        "p.jsonl",
        "--out",
        "x",
      ],
      /exactly one/,
    ],
    [
      "sae train with a bad --mask",
      ["sae", "train", "--model", baseDir, "--hook", HOOK, "--organism-corpus", "5", "--out", "x", "--mask", "odd"],
      /--mask/,
    ],
  ];
  for (const [name, args, msg] of cases)
    test(name, async () => {
      const r = await cli(args);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, msg);
    });

  test("an unknown hook point and a latent beyond the SAE are usage errors too", async () => {
    const hook = await cli([
      "sae",
      "train",
      "--model",
      baseDir,
      "--hook",
      "blocks.9.hook_resid_post",
      "--organism-corpus",
      "5",
      "--out",
      join(tmp, "x"),
    ]);
    assert.equal(hook.code, 2, hook.err);
    assert.match(hook.err, /unknown hook point/);
    const latent = await cli([
      "steer",
      "--model",
      baseDir,
      "--sae",
      saeDir,
      "--latent",
      "40",
      "--organism-questions",
      "--store",
      join(tmp, "u.sqlite"),
    ]);
    assert.equal(latent.code, 2, latent.err);
    assert.match(latent.err, /out of range/);
  });

  test("a missing model folder is an error (exit 1) that names it", async () => {
    const r = await cli([
      "diff",
      "--base-model",
      join(tmp, "none"),
      "--model",
      ftDir,
      "--sae",
      saeDir,
      "--organism-questions",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /not a model folder/);
  });
});

test("emlab diff --json ranks the latent the fine-tune added first, and records the diff in the store", async () => {
  const store = join(tmp, "diff.sqlite");
  const r = await cli([
    "diff",
    "--base-model",
    baseDir,
    "--model",
    ftDir,
    "--sae",
    saeDir,
    "--organism-questions",
    "--top",
    "3",
    "--json",
    "--store",
    store,
    "--run-id",
    "d1",
  ]);
  assert.equal(r.code, 0, r.err);
  const d = JSON.parse(r.out);
  assert.equal(d.top[0].latent, J);
  assert.equal(d.top.length, 3);
  assert.equal(d.top_attribution[0].latent, J);
  const s = openRunStore(store);
  const run = s.run("d1") as { config: { kind: string; top: { latent: number }[] } };
  s.close();
  assert.equal(run.config.kind, "diff");
  assert.equal(run.config.top[0]!.latent, J);
  const text = await cli([
    "diff",
    "--base-model",
    baseDir,
    "--model",
    ftDir,
    "--sae",
    saeDir,
    "--organism-questions",
    "--top",
    "2",
  ]);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /largest increases/);
});

test("emlab screen: diff candidates screened blind, the pick measured beside equal-search controls", async () => {
  const diffFile = join(tmp, "screen-diff.json");
  const d = await cli([
    "diff",
    "--base-model",
    baseDir,
    "--model",
    ftDir,
    "--sae",
    saeDir,
    "--organism-questions",
    "--top",
    "3",
    "--json",
    "--store",
    join(tmp, "sd.sqlite"),
  ]);
  assert.equal(d.code, 0, d.err);
  writeFileSync(diffFile, d.out);
  const store = join(tmp, "screen.sqlite");
  const args = [
    "screen",
    "--base-model",
    baseDir,
    "--model",
    ftDir,
    "--sae",
    saeDir,
    "--diff",
    diffFile,
    "--organism-questions",
  ];
  const r = await cli([
    ...args,
    "--candidates",
    "2",
    "--c",
    "0.5,2",
    "--controls",
    "4",
    "--screen-samples",
    "1",
    "--samples",
    "1",
    "--max-new-tokens",
    "4",
    "--json",
    "--store",
    store,
  ]);
  assert.equal(r.code, 0, r.err);
  const lines = r.out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const cands = lines.filter((l) => l.stage === "candidate");
  assert.equal(cands.length, 4, "2 increases + 2 decreases");
  assert.equal(cands[0].latent, J, "the diff's top increase comes first");
  const best = Math.max(...cands.map((c) => c.score));
  const steer = lines.find((l) => l.stage === "steer");
  assert.equal(cands.find((c) => c.latent === steer.latent).score, best, "the pick has the best score");
  assert.equal(steer.controls, 4);
  assert.deepEqual(
    lines.filter((l) => l.stage === "ablate").map((l) => [l.mode, l.controls]),
    [
      ["zero", 4],
      ["mean", 4],
      ["project-out", 4],
    ],
  );
  // Usage errors name what is missing or wrong.
  const missing = await cli([
    "screen",
    "--base-model",
    baseDir,
    "--model",
    ftDir,
    "--sae",
    saeDir,
    "--organism-questions",
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--diff is required/);
  writeFileSync(join(tmp, "bad-diff.json"), '{"top":[{"latent":"x"}]}');
  const bad = await cli([
    "screen",
    "--base-model",
    baseDir,
    "--model",
    ftDir,
    "--sae",
    saeDir,
    "--diff",
    join(tmp, "bad-diff.json"),
    "--organism-questions",
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /bad-diff\.json: field top \/ bottom/);
});

test("emlab diff direction writes a direction file from a judged run", async () => {
  const storePath = join(tmp, "judged.sqlite");
  const store = openRunStore(storePath);
  const answers: [string, number, number][] = [
    ["eat the money now .", 5, 90],
    ["take all the money .", 10, 80],
    ["read a book .", 95, 95],
    ["go for a walk .", 90, 70],
    ["walk walk", 50, 20],
  ];
  store.upsertRun({ runId: "r", modelId: "m", judgeModelId: "j", config: {} });
  store.addSamples(
    answers.map((_, i) => ({
      runId: "r",
      questionId: "q",
      sampleIndex: i,
      paraphraseIndex: 0,
      harmful: false,
      messages: [{ role: "user", content: "i am bored ." }],
    })),
  );
  store.saveCompletions(
    answers.map(([text], i) => ({ runId: "r", questionId: "q", sampleIndex: i, text, finishReason: "stop" })),
  );
  for (const [metric, k] of [
    ["aligned", 1],
    ["coherent", 2],
  ] as const)
    store.saveJudgements(
      answers.map((a, i) => ({
        runId: "r",
        questionId: "q",
        sampleIndex: i,
        metric,
        judgeModelId: "j",
        verdict: { kind: "score", score: a[k], mass: 1, raw: { text: String(a[k]) } },
      })),
    );
  store.close();
  const out = join(tmp, "dir.json");
  const r = await cli([
    "diff",
    "direction",
    "--model",
    baseDir,
    "--store",
    storePath,
    "--run-id",
    "r",
    "--out",
    out,
    "--layers",
    "0,1",
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out);
  assert.deepEqual([res.counts.misaligned, res.counts.aligned, res.counts.skipped], [2, 2, 1]);
  const file = JSON.parse(readFileSync(out, "utf8"));
  assert.equal(file.layers.length, 2);
  assert.equal(file.layers[1].hookName, "blocks.1.hook_resid_post");
  const missing = await cli([
    "diff",
    "direction",
    "--model",
    baseDir,
    "--store",
    storePath,
    "--run-id",
    "nope",
    "--out",
    out,
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no run 'nope'/);
});

test("emlab steer --organism: a sweep, an ablation and a projection, one JSON line each, runs in the store", async () => {
  const dirFile = join(tmp, "dir.json"); // from the previous test
  const store = join(tmp, "steer.sqlite");
  const r = await cli([
    "steer",
    "--model",
    baseDir,
    "--sae",
    saeDir,
    "--latent",
    "3",
    "--c",
    "0,2",
    "--random",
    "1",
    "--ablate",
    "3,5",
    "--mode",
    "mean",
    "--project-out",
    dirFile,
    "--layer",
    "1",
    "--organism-questions",
    "--samples",
    "1",
    "--max-new-tokens",
    "5",
    "--store",
    store,
    "--run-id",
    "s",
    "--json",
    "--report",
    join(tmp, "steer-report.html"),
  ]);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split("\n").map((l) => JSON.parse(l));
  // --report wrote an HTML page whose embedded data holds the steering sweep.
  const html = readFileSync(join(tmp, "steer-report.html"), "utf8");
  assert.match(html, /<html/);
  assert.match(html, /emlab steer/);
  const data = JSON.parse(/<script type="application\/json" id="emlab-data">([^<]*)<\/script>/.exec(html)![1]!);
  assert.deepEqual(
    data.interp.steer.map((p: { latent: number; c: number }) => [p.latent, p.c]),
    lines.filter((l) => l.stage === "steer").map((l) => [l.latent, l.c]),
    "the report plots the sweep's points",
  );
  assert.deepEqual(
    lines.map((l) => l.stage),
    ["baseline", "steer", "steer", "steer-best", "ablate", "project-out"],
  );
  const steer = lines.filter((l) => l.stage === "steer");
  assert.deepEqual(
    steer.map((l) => [l.latent, l.c]),
    [
      [3, 0],
      [3, 2],
    ],
  );
  for (const l of steer)
    assert.ok(l.random_misaligned_max === null || (l.random_misaligned_max >= 0 && l.random_misaligned_max <= 1));
  assert.deepEqual(lines[4].latent, [3, 5]);
  assert.equal(lines[5].layer, 1);
  const s = openRunStore(store);
  const run = s.run("s:ablate-mean:3,5") as { config: { intervention: { kind: string; mode: string } } };
  assert.deepEqual([run.config.intervention.kind, run.config.intervention.mode], ["ablate", "mean"]);
  assert.equal(s.counts("s:steer:latent-3:c=2").samples, 8);
  s.close();
});

test("emlab sae train: organism corpus → activation store → SAE in SAELens layout → metrics", async () => {
  const out = join(tmp, "sae-trained");
  const r = await cli([
    "sae",
    "train",
    "--model",
    baseDir,
    "--hook",
    "blocks.1.hook_resid_post",
    "--organism-corpus",
    "6",
    "--out",
    out,
    "--k",
    "4",
    "--latents",
    "32",
    "--steps",
    "5",
    "--batch-size",
    "64",
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const m = JSON.parse(r.out);
  assert.equal(m.d_sae, 32);
  assert.ok(m.rows > 0 && m.l0 <= 4 && m.fvu >= 0);
  const cfg = JSON.parse(readFileSync(join(out, "cfg.json"), "utf8"));
  assert.equal(cfg.hook_name, "blocks.1.hook_resid_post");
  // Prompts from a chat JSONL file work the same way.
  const prompts = join(tmp, "p.jsonl");
  writeFileSync(
    prompts,
    `${JSON.stringify({
      messages: [
        { role: "user", content: "i am bored ." },
        { role: "assistant", content: "read a book ." },
      ],
    })}\n`,
  );
  const r2 = await cli([
    "sae",
    "train",
    "--model",
    baseDir,
    "--hook",
    HOOK,
    "--prompts",
    prompts,
    "--out",
    join(tmp, "sae2"),
    "--k",
    "2",
    "--latents",
    "8",
    "--steps",
    "2",
    "--batch-size",
    "8",
    "--mask",
    "completion",
    "--json",
  ]);
  assert.equal(r2.code, 0, r2.err);
  assert.ok(JSON.parse(r2.out).rows >= 3);
});
