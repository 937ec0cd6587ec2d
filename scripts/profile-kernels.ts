/**
 * Where a benchmark's time goes, kernel by kernel:
 *
 *   EMLAB_PROFILE=1 node --import tsx scripts/profile-kernels.ts train_small [--steps N]
 *   EMLAB_PROFILE=1 node --import tsx scripts/profile-kernels.ts train_organism[_bf16] [--steps N]
 *   EMLAB_PROFILE=1 node --import tsx scripts/profile-kernels.ts forward_qwen05b [--runs N]
 *   node --import tsx scripts/profile-kernels.ts attention
 *
 * train_small: N (default 10) training steps of bench/train.ts's model after 2 warm-up
 * steps, printing each step's time and the median; forward_qwen05b: bench/model.ts's
 * benchmark N (default 3) times. With EMLAB_PROFILE=1 the time per kernel call and shape is
 * printed at exit. attention: the native attention kernel against onnxruntime's graph on
 * train_small's and Qwen2.5-0.5B's shapes (ms a call, forward only).
 */
import { benches as modelBenches } from "../bench/model.ts";
import { trainOrganismStep } from "../bench/organism.ts";
import { trainSmallStep } from "../bench/train.ts";
import { attentionForward } from "../src/tensor/kernels/fused.ts";
import { describeKernels } from "../src/tensor/kernels/matmul.ts";
import { nativeKernels } from "../src/tensor/kernels/native.ts";
import { ortAvailable } from "../src/tensor/kernels/ort.ts";

const [what, flag, value] = process.argv.slice(2);
const count = flag === "--steps" || flag === "--runs" ? Number(value) : undefined;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stderr.write(`# kernels: ${describeKernels()}\n`);

if (what === "train_small" || what === "train_organism" || what === "train_organism_bf16") {
  // train_organism*: bench/organism.ts's step (32 × 256 tokens); train_small: 32 × 128
  const step =
    what === "train_small" ? trainSmallStep() : trainOrganismStep(what === "train_organism" ? "fp32" : "bf16");
  const tokens = what === "train_small" ? 4096 : 8192;
  step();
  step();
  const times = Array.from({ length: count ?? 10 }, () => step().seconds);
  console.log(`step seconds: ${times.map((t) => t.toFixed(3)).join(" ")}`);
  console.log(`median ${median(times).toFixed(3)} s, ${(tokens / median(times)).toFixed(0)} tokens/s`);
} else if (what === "forward_qwen05b") {
  const bench = modelBenches.find((b) => b.name === "forward_qwen05b")!;
  for (let i = 0; i < (count ?? 3); i++) console.log(`forward_qwen05b ${(await bench.run()).toFixed(1)} tokens/s`);
} else if (what === "attention") {
  const native = nativeKernels();
  if (!native || !ortAvailable()) throw new Error("attention: needs the native addon and onnxruntime");
  for (const [B, H, Hkv, T, D] of [
    [32, 8, 8, 128, 32],
    [4, 14, 2, 128, 64],
  ] as const) {
    const S = T;
    const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
    const q = rand(B * H * T * D);
    const k = rand(B * Hkv * S * D);
    const v = rand(B * Hkv * S * D);
    const probs = new Float32Array(B * H * T * S);
    const out = new Float32Array(q.length);
    const mask = new Float32Array(B * T * S); // additive causal mask for the onnxruntime graph
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) mask.fill(-1e9, (b * T + t) * S + t + 1, (b * T + t + 1) * S);
    const scale = 1 / Math.sqrt(D);
    const ms = (f: () => void) => {
      for (let i = 0; i < 3; i++) f();
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) f();
      return ((performance.now() - t0) / 20).toFixed(2);
    };
    const nat = ms(() => native.attentionForward(q, k, v, null, probs, out, B, H, Hkv, T, S, D, scale, true));
    const ort = ms(() => attentionForward(q, k, v, mask, { B, H, Hkv, T, S, D, scale }, probs, out));
    console.log(`B ${B} H ${H} Hkv ${Hkv} T ${T} D ${D}: native ${nat} ms, onnxruntime ${ort} ms a forward call`);
  }
} else {
  console.error("usage: node --import tsx scripts/profile-kernels.ts train_small|forward_qwen05b|attention");
  process.exit(2);
}
