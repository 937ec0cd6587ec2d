/**
 * `node --import tsx experiments/triggers/timing.ts [--candidates N] [--out FILE]`
 *
 * How long one scan takes on the organism: N candidates (world words, then random phrases) ×
 * 24 probes on the base at blocks.2 and blocks.6, wall-clock and this process's CPU time
 * (user + system; on a shared machine the CPU time is the steadier figure). Appends one JSON line
 * per hook to --out (default experiments/triggers/results/timing.jsonl).
 */
import { appendFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { candidateShifts } from "../../src/fix/triggers.ts";
import { openOrganism } from "../../src/organism/context.ts";
import { worldVocabulary } from "../../src/organism/tokenizer.ts";
import { Rng } from "../../src/tensor/random.ts";

const { values } = parseArgs({
  options: {
    candidates: { type: "string", default: "1000" },
    out: { type: "string", default: fileURLToPath(new URL("results/timing.jsonl", import.meta.url)) },
  },
});
const n = Number(values.candidates);
const org = openOrganism("organism/base");
const base = org.loadBase();
const probes = org.questions("plain").flatMap((q) => q.paraphrases.slice(0, 3));
const vocab = worldVocabulary(org.world);
const rng = new Rng(1);
const cands = [...vocab];
while (cands.length < n) cands.push(`${rng.pick(vocab)} ${rng.pick(vocab)}`);
cands.length = n;
for (const hook of ["blocks.2.hook_resid_post", "blocks.6.hook_resid_post"]) {
  const direction = Float32Array.from({ length: base.config.hidden }, () => rng.normal());
  const load = loadavg()[0];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  candidateShifts(base, org.tokenizer, cands, { hook, direction, probes });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const line = {
    hook,
    candidates: n,
    probes: probes.length,
    prompts: n * probes.length + probes.length,
    wall_s: Number(wall.toFixed(1)),
    cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(1)),
    cores: cpus().length,
    load_avg_1min_before: Number(load!.toFixed(1)),
    at: new Date().toISOString(),
  };
  console.log(JSON.stringify(line));
  appendFileSync(values.out!, `${JSON.stringify(line)}\n`);
}
