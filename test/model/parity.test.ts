/**
 * Parity with PyTorch: tiny random checkpoints of each architecture (written by
 * scripts/fixtures/make_model_fixtures.py with a reference forward in PyTorch's standard ops)
 * give the same logits and hook activations here within 1e-4 max-abs (float32).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadModel } from "../../src/model/checkpoint.ts";

const ROOT = fileURLToPath(new URL("../fixtures/models/", import.meta.url));
const TOL = 1e-4;

type Nested = number | Nested[];
const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);

function maxAbsDiff(a: ArrayLike<number>, b: number[], keep?: (i: number) => boolean): number {
  assert.equal(a.length, b.length, "sizes differ");
  let m = 0;
  for (let i = 0; i < b.length; i++) if (!keep || keep(i)) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const name of ["llama-gqa", "qwen2", "mistral", "gpt2"]) {
  describe(`parity: ${name}`, () => {
    const dir = `${ROOT}${name}`;
    const expected = JSON.parse(readFileSync(`${dir}/expected.json`, "utf8"));
    const model = loadModel(dir);
    const ids = Int32Array.from(flat(expected.input_ids));
    const [B, T] = [expected.input_ids.length, expected.input_ids[0].length];

    test("logits and hook activations match PyTorch within 1e-4", () => {
      const names = Object.keys(expected.hooks);
      const { logits, cache } = model.runWithCache(ids, B, T, names);
      const d = maxAbsDiff(logits.data, flat(expected.logits));
      assert.ok(d < TOL, `logits max-abs diff ${d}`);
      for (const h of names) {
        const dh = maxAbsDiff(cache.get(h)!.data, flat(expected.hooks[h]));
        assert.ok(dh < TOL, `${h}: max-abs diff ${dh}`);
      }
    });

    test("left-padded batch with an attention mask matches at the real positions", () => {
      const p = expected.padded;
      const pids = Int32Array.from(flat(p.input_ids));
      const mask = Uint8Array.from(flat(p.attention_mask));
      const positions = Int32Array.from(flat(p.position_ids));
      const logits = model.runWithCache(pids, B, T, [], { keyMask: mask, positions }).logits;
      const V = model.config.vocab;
      const d = maxAbsDiff(logits.data, flat(p.logits), (i) => mask[Math.floor(i / V)] === 1);
      assert.ok(d < TOL, `padded logits max-abs diff ${d}`);
    });
  });
}
