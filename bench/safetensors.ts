/**
 * safetensors_read: MB/s (1 MB = 10^6 bytes) for reading a 200 MB F32 checkpoint-like file
 * (50 tensors of [1024, 1024]) with readSafetensors. The file is written to os.tmpdir() on
 * the first call, untimed, and read three times to warm up: the figure is the steady state
 * with the file in the page cache, i.e. emlab's read path (syscalls and copies into new
 * Float32Arrays), not the disk. No PyTorch peer.
 */
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSafetensors, type TensorToWrite, writeSafetensors } from "../src/tensor/safetensors.ts";
import type { Bench } from "./harness.ts";

const TENSORS = 50;
const SHAPE = [1024, 1024];
let path: string | undefined;

function setUp(): string {
  const p = join(tmpdir(), `emlab-bench-${process.pid}.safetensors`);
  const data = Float32Array.from({ length: SHAPE[0]! * SHAPE[1]! }, (_, i) => Math.sin(i));
  const tensors: Record<string, TensorToWrite> = {};
  for (let i = 0; i < TENSORS; i++) tensors[`model.layers.${i}.weight`] = { shape: SHAPE, data };
  writeSafetensors(p, tensors, { format: "pt" });
  process.once("exit", () => rmSync(p, { force: true }));
  // warm-up: page cache, JIT, and the process's memory. The first reads into fresh memory
  // also pay page faults (about half the steady speed on a 2-core VM); it settles by the third.
  for (let i = 0; i < 3; i++) readSafetensors(p);
  return p;
}

export const benches: Bench[] = [
  {
    name: "safetensors_read",
    unit: "MB/s",
    peerName: null,
    run() {
      path ??= setUp();
      const t0 = performance.now();
      const { tensors } = readSafetensors(path);
      const seconds = (performance.now() - t0) / 1000;
      let bytes = 0;
      for (const t of tensors.values()) bytes += t.data.byteLength;
      return bytes / 1e6 / seconds;
    },
    teardown() {
      if (path) rmSync(path, { force: true });
      path = undefined;
    },
  },
];
