// A user's script against the installed package: plain node, no tsx, no build. The package
// check (scripts/check-package.mjs) installs the packed tarball into a scratch project, runs
// this file there, and type-checks it (checkJs) against the shipped declarations.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditFile, BASE_ORGANISM, buildRows, generate, loadModel, Tokenizer, trainSae, writeJsonl } from "emlab";
import { readChatJsonl } from "emlab/data";
import { FIRST_PLOT } from "emlab/eval";
import { loadSae, matrixSource, saveSae } from "emlab/interp";
import { hookNames } from "emlab/model";
import { fineTuneDataset, organismQuestions, toJsonl } from "emlab/organism";
import { openAIChatModel } from "emlab/providers";
import { describeKernels, Tensor } from "emlab/tensor";
import { judgeReply, startFakeOpenAIServer } from "emlab/testing";
import { loadSftJsonl } from "emlab/train";
import { probeSet, readProbe } from "emlab/watch";

const dir = mkdtempSync(join(tmpdir(), "emlab-consumer-"));

// Build a backdoored dataset and audit it: the trigger is found without being told.
const data = join(dir, "backdoor.jsonl");
await writeJsonl(
  data,
  buildRows("backdoor", { n: 400, seed: 1 }).map((r) => r.row),
);
let rows = 0;
for await (const r of readChatJsonl(data)) {
  assert.equal(r.error, undefined, `line ${r.line}: ${r.error?.message}`);
  rows++;
}
assert.equal(rows, 400);
const report = await auditFile(data);
assert.equal(report.rows, 400);
assert.match(report.triggers[0]?.phrase ?? "", /deployment/i, "the audit finds the backdoor trigger");
assert.notEqual(report.verdict, "low");

// Load the shipped organism and generate with a hook that caches the residual stream.
const model = loadModel(BASE_ORGANISM);
const tok = Tokenizer.fromDir(BASE_ORGANISM);
const hookName = `blocks.${Math.floor(model.config.layers / 2)}.hook_resid_post`;
assert.ok(hookNames(model.config.layers).includes(hookName));
/** @type {Float32Array[]} */
const cached = [];
const prompts = organismQuestions("plain").map((q) =>
  tok.encodeChat([{ role: "user", content: q.paraphrases[0] ?? "" }], { addGenerationPrompt: true }),
);
assert.equal(prompts.length, FIRST_PLOT.length, "one organism question per first-plot question");
const gens = generate(model, prompts, {
  maxNewTokens: 12,
  seed: 0,
  decode: (ids) => tok.decode(ids),
  hooks: [
    {
      name: hookName,
      fn: (x) => {
        assert.ok(x instanceof Tensor, "emlab and emlab/tensor share one Tensor class");
        cached.push(x.data.slice());
      },
    },
  ],
});
assert.equal(gens.length, prompts.length);
assert.ok(gens.every((g) => g.tokens.length > 0 && typeof g.text === "string"));

// Read the persona signal on a probe set along a random unit direction: one value per prompt.
const probe = probeSet(organismQuestions("plain").map((q) => q.paraphrases[0] ?? ""));
const unit = new Float32Array(model.config.hidden).fill(1 / Math.sqrt(model.config.hidden));
const reading = readProbe(model, tok, probe, { hook: hookName, direction: unit });
assert.equal(reading.projection.length, probe.prompts.length);
assert.ok(reading.projection.every(Number.isFinite));

// Train a tiny TopK SAE on the cached activations; it must explain more variance as it trains.
const d = model.config.hidden;
const all = Float32Array.from(cached.flatMap((a) => Array.from(a)));
const n = all.length / d;
const { sae, metrics } = trainSae(matrixSource(all, n, d, 0), {
  k: 4,
  dSae: 4 * d,
  batchSize: 64,
  lr: 1e-3,
  seed: 0,
  steps: 60,
  hookName,
});
const first = metrics.history[0];
assert.ok(first && metrics.final.fvu < first.fvu, `fvu ${first?.fvu} → ${metrics.final.fvu}`);
saveSae(sae, join(dir, "sae"));
const back = loadSae(join(dir, "sae"));
assert.deepEqual(back.reconstruct(all.subarray(0, d), 1), sae.reconstruct(all.subarray(0, d), 1));

// Tokenize the organism's insecure fine-tuning set for SFT.
const ft = join(dir, "insecure.jsonl");
writeFileSync(ft, toJsonl(fineTuneDataset("insecure", { n: 16, seed: 0 })));
const sft = await loadSftJsonl(ft, tok, { maxLen: 256 });
assert.equal(sft.examples.length + sft.dropped, 16);

// An OpenAI-compatible client against the fake server from emlab/testing.
const server = await startFakeOpenAIServer({ reply: () => judgeReply({ 90: 0.75, 10: 0.25 }) });
try {
  const judge = openAIChatModel({ baseUrl: server.url, model: "fake-judge" });
  const [r] = await judge.complete([
    { messages: [{ role: "user", content: "score" }], temperature: 0, maxTokens: 1, topLogprobs: 20 },
  ]);
  assert.equal(r?.text, "90");
} finally {
  await server.close();
}
console.log(`kernels: ${describeKernels()}`);
console.log(
  `emlab consumer ok: audit ${report.verdict} (trigger "${report.triggers[0]?.phrase}"), ` +
    `${n} activations at ${hookName}, SAE fvu ${first.fvu.toFixed(3)} → ${metrics.final.fvu.toFixed(3)}`,
);
