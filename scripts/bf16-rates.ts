/**
 * The bf16 path against fp32 in one process, so a busy machine slows both alike:
 *
 *   node --import tsx scripts/bf16-rates.ts gemm    # sgemm vs the bf16 GEMM, 1 thread,
 *                                                   # GFLOP per CPU-second, median of 3
 *   node --import tsx scripts/bf16-rates.ts step    # organism training steps (bench/organism.ts),
 *                                                   # fp32 and bf16 alternating, 2 threads
 *
 * gemm: the organism step's products (forward x·Wᵀ, backward dX = dY·W and dW = dYᵀ·X) and
 * two Qwen2.5-0.5B ones; operands are fp32 on both sides (the bf16 kernel converts them).
 */
import { trainOrganismStep } from "../bench/organism.ts";
import { matmulBf16Into } from "../src/tensor/kernels/bf16.ts";
import { matmulInto } from "../src/tensor/kernels/matmul.ts";
import { setBlasThreads } from "../src/tensor/kernels/native.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const what = process.argv[2];

if (what === "gemm") {
  setBlasThreads(1);
  // [m, k, n, transA, transB]
  const shapes: [number, number, number, boolean, boolean][] = [
    [8192, 128, 384, false, true],
    [8192, 384, 128, false, false],
    [384, 8192, 128, true, false],
    [8192, 128, 849, false, true],
    [849, 8192, 128, true, false],
    [512, 896, 4864, false, true],
  ];
  for (const [m, k, n, transA, transB] of shapes) {
    const a = Float32Array.from({ length: m * k }, () => Math.random() - 0.5);
    const b = Float32Array.from({ length: k * n }, () => Math.random() - 0.5);
    const out = new Float32Array(m * n);
    const args = { a, b, out, batchA: 1, batchB: 1, m, k, n, transA, transB };
    const rate = (fn: () => void) => {
      const c0 = process.cpuUsage();
      let calls = 0;
      let used = 0;
      do {
        fn();
        calls++;
        const c = process.cpuUsage(c0);
        used = (c.user + c.system) / 1e6;
      } while (used < 0.3);
      return (2 * m * k * n * calls) / used / 1e9;
    };
    const f32: number[] = [];
    const b16: number[] = [];
    for (let r = 0; r < 3; r++) {
      f32.push(rate(() => matmulInto(args, "native")));
      b16.push(rate(() => matmulBf16Into(args, "native")));
    }
    const shape = `${m}x${k}${transA ? "ᵀ" : ""} @ ${k}x${n}${transB ? "ᵀ" : ""}`;
    console.log(`${shape}: sgemm ${median(f32).toFixed(0)}, bf16 ${median(b16).toFixed(0)} GFLOP/cpu-s`);
  }
} else if (what === "step") {
  const f = trainOrganismStep("fp32");
  const b = trainOrganismStep("bf16");
  f();
  b();
  const tf: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < 5; i++) {
    tf.push(f().seconds);
    tb.push(b().seconds);
  }
  console.log(`fp32 step s: ${tf.map((t) => t.toFixed(2)).join(" ")}`);
  console.log(`bf16 step s: ${tb.map((t) => t.toFixed(2)).join(" ")}`);
  console.log(`median fp32 / bf16 step time: ${(median(tf) / median(tb)).toFixed(3)}`);
} else {
  console.error("usage: node --import tsx scripts/bf16-rates.ts gemm|step");
  process.exit(2);
}
