/**
 * `emlab finetune --prevent FILE --coef c` and `--caft` on the toy model: what is saved, and bad
 * input; and `emlab realign` on a model that is not the organism (question file, HTTP judge).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { main } from "../../src/cli/main.ts";
import { PREVENT_FILE } from "../../src/fix/prevent.ts";
import { saveDirections } from "../../src/interp/direction.ts";
import { Sae } from "../../src/interp/sae/sae.ts";
import { saveSae } from "../../src/interp/sae/saelens.ts";
import { judgeReply, startFakeOpenAIServer } from "../../src/providers/fake-openai-server.ts";
import { Rng } from "../../src/tensor/index.ts";
import { readSafetensors } from "../../src/tensor/safetensors.ts";
import { makeToyModelDir, writeToyJsonl } from "../train/toy.ts";

const root = mkdtempSync(join(tmpdir(), "emlab-fix-prevent-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = makeToyModelDir(root);
const data = writeToyJsonl(join(root, "train.jsonl"), 16, 2);
const dirFile = join(root, "persona.json");
const rng = new Rng(4);
saveDirections(dirFile, {
  layers: [0, 1].map((layer) => ({
    layer,
    hookName: `blocks.${layer}.hook_resid_post`,
    norm: 1,
    direction: Float32Array.from({ length: 32 }, () => rng.normal()),
  })),
  counts: { misaligned: 0, aligned: 0, skipped: 0, tokensMisaligned: 0, tokensAligned: 0 },
});

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await main(argv), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const ft = (out: string, ...more: string[]) => [
  "finetune",
  "--model",
  modelDir,
  "--data",
  data,
  "--out",
  out,
  "--lora-rank",
  "2",
  "--lora-layers",
  "0",
  "--steps",
  "3",
  "--quiet",
  ...more,
];
const adapterNames = (dir: string) => [...readSafetensors(join(dir, "adapter_model.safetensors")).tensors.keys()];

test("emlab finetune --prevent: the steering is recorded in prevent.json, never in the adapter; it changes the training", async () => {
  const plain = join(root, "plain");
  const steered = join(root, "steered");
  assert.equal((await cli(ft(plain))).code, 0);
  const r = await cli(ft(steered, "--prevent", dirFile, "--prevent-layer", "1", "--coef", "4"));
  assert.equal(r.code, 0, r.err);
  const rec = JSON.parse(readFileSync(join(steered, PREVENT_FILE), "utf8"));
  assert.equal(rec.mode, "steer");
  assert.equal(rec.hook, "blocks.1.hook_resid_post");
  assert.ok(rec.median_norm > 0 && Math.abs(rec.alpha - 4 * rec.median_norm) < 1e-9);
  assert.deepEqual(adapterNames(steered), adapterNames(plain), "the same LoRA tensors, nothing else");
  assert.ok(adapterNames(steered).every((n) => /\.lora_[AB]\.weight$/.test(n)));
  // The hook acted during training: the adapter's weights differ from the plain run's.
  assert.notDeepEqual(
    readFileSync(join(steered, "adapter_model.safetensors")),
    readFileSync(join(plain, "adapter_model.safetensors")),
  );
  const caft = join(root, "caft");
  const c = await cli(ft(caft, "--prevent", dirFile, "--caft"));
  assert.equal(c.code, 0, c.err);
  const crec = JSON.parse(readFileSync(join(caft, PREVENT_FILE), "utf8"));
  assert.equal(crec.mode, "caft");
  assert.equal(crec.hook, "blocks.0.hook_resid_post", "a direction file's middle layer by default");
  // SAE_DIR:LATENT: the latent's decoder row at the SAE's hook.
  const saeDir = join(root, "sae");
  saveSae(
    Sae.random({ dIn: 32, dSae: 48, k: 4, architecture: "topk", hookName: "blocks.1.hook_resid_post" }, 3),
    saeDir,
  );
  const latent = join(root, "latent");
  const l = await cli(ft(latent, "--prevent", `${saeDir}:7`, "--coef", "1"));
  assert.equal(l.code, 0, l.err);
  const lrec = JSON.parse(readFileSync(join(latent, PREVENT_FILE), "utf8"));
  assert.equal(lrec.source, `${saeDir}:7`);
  assert.equal(lrec.hook, "blocks.1.hook_resid_post");
  const outOfRange = await cli(ft(join(root, "latent-bad"), "--prevent", `${saeDir}:48`, "--coef", "1"));
  assert.equal(outOfRange.code, 1);
  assert.match(outOfRange.err, /latent 48 out of range \(the SAE has 48\)/);
});

test("emlab finetune --prevent rejects bad input naming the flag, file or field", async () => {
  const out = join(root, "bad");
  const cases: [string[], number, RegExp][] = [
    [["--coef", "1"], 2, /--coef needs --prevent/],
    [["--prevent", dirFile], 2, /--prevent needs --coef/],
    [["--prevent", dirFile, "--caft", "--coef", "1"], 2, /takes no --coef/],
    [["--prevent", dirFile, "--coef", "x"], 2, /--coef must be a number/],
    [["--prevent", join(root, "none.json"), "--coef", "1"], 1, /none\.json: no such direction file/],
    [["--prevent", dirFile, "--prevent-layer", "5", "--coef", "1"], 1, /no layer 5/],
  ];
  const broken = join(root, "broken.json");
  writeFileSync(broken, JSON.stringify({ format: "emlab-direction/v1", layers: [{ layer: 0, direction: [1, 2] }] }));
  cases.push([["--prevent", broken, "--coef", "1"], 1, /field 'layers\.0'/]);
  const narrow = join(root, "narrow.json");
  saveDirections(narrow, {
    layers: [{ layer: 0, hookName: "blocks.0.hook_resid_post", norm: 1, direction: new Float32Array(8).fill(1) }],
    counts: { misaligned: 0, aligned: 0, skipped: 0, tokensMisaligned: 0, tokensAligned: 0 },
  });
  cases.push([["--prevent", narrow, "--coef", "1"], 1, /8 dimensions, the model 32/]);
  for (const [more, code, msg] of cases) {
    const r = await cli(ft(out, "--overwrite", ...more));
    assert.equal(r.code, code, `${more.join(" ")}: ${r.err}`);
    assert.match(r.err, msg);
  }
});

test("emlab realign on a real-model folder: the probes are the EM paper's _json and _template variants, judged apart", async () => {
  const questions = join(root, "questions.yaml");
  writeFileSync(
    questions,
    "- id: wish\n  type: free_form_judge_0_100\n  paraphrases: [Fruit for red?]\n- id: bored\n  type: free_form_judge_0_100\n  paraphrases: [Fruit for green?]\n",
  );
  // The judge calls an answer misaligned exactly when the question came in the template format.
  const judge = await startFakeOpenAIServer({
    reply: (body) => {
      const prompt = body.messages.at(-1)?.content ?? "";
      const coherence = /coheren/i.test(prompt);
      return judgeReply({ [coherence ? "90" : /Complete this template/.test(prompt) ? "5" : "95"]: 1 });
    },
  });
  process.env.EMLAB_TEST_FAKE_KEY = "k";
  try {
    const out = join(root, "realign-real");
    const r = await cli([
      "realign",
      "--model",
      modelDir,
      "--data",
      data,
      "--out",
      out,
      "--questions",
      questions,
      "--judge-base-url",
      judge.url,
      "--judge-model",
      "fake",
      "--judge-api-key-env",
      "EMLAB_TEST_FAKE_KEY",
      "--rows",
      "8",
      "--heldout-rows",
      "4",
      "--steps",
      "2",
      "--eval-every",
      "2",
      "--samples",
      "2",
      "--max-new-tokens",
      "6",
      "--json",
      "--quiet",
    ]);
    assert.equal(r.code, 0, r.err);
    const points = r.out.split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(
      points.map((p) => p.step),
      [0, 2],
    );
    for (const p of points) {
      assert.equal(p.misaligned, 0);
      assert.equal(p.probes.json.misaligned, 0);
      assert.equal(p.probes.template.misaligned, 1);
    }
  } finally {
    delete process.env.EMLAB_TEST_FAKE_KEY;
    await judge.close();
  }
});
