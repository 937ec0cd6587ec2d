/**
 * matmul_a / matmul_b / matmul_c: GFLOP/s of one float32 product C = A·B through emlab's
 * matmul kernel (the backend ops use: onnxruntime by default, EMLAB_BACKEND=ts for the
 * TypeScript loops), output buffer preallocated as torch.mm's peer reuses its allocator.
 * Shapes are the peer's: 512×896 @ 896×4864, 64×128 @ 128×512, 2048×768 @ 768×768.
 */
import { matmulInto } from "../src/tensor/kernels/matmul.ts";
import { Rng } from "../src/tensor/random.ts";
import type { Bench } from "./harness.ts";

function matmulBench(name: string, m: number, k: number, n: number): Bench {
  let bufs: { a: Float32Array; b: Float32Array; out: Float32Array } | undefined;
  return {
    name,
    unit: "GFLOP/s",
    run() {
      if (!bufs) {
        const rng = new Rng(0);
        const a = Float32Array.from({ length: m * k }, () => rng.normal());
        const b = Float32Array.from({ length: k * n }, () => rng.normal());
        bufs = { a, b, out: new Float32Array(m * n) };
      }
      const args = { ...bufs, batchA: 1, batchB: 1, m, k, n };
      for (let i = 0; i < 3; i++) matmulInto(args); // warm-up
      // Enough calls to fill ~0.5 s.
      let iters = 0;
      const t0 = performance.now();
      let elapsed = 0;
      while (elapsed < 500) {
        matmulInto(args);
        iters++;
        elapsed = performance.now() - t0;
      }
      return (2 * m * k * n * iters) / (elapsed / 1000) / 1e9;
    },
  };
}

export const benches: Bench[] = [
  matmulBench("matmul_a", 512, 896, 4864),
  matmulBench("matmul_b", 64, 128, 512),
  matmulBench("matmul_c", 2048, 768, 768),
];
