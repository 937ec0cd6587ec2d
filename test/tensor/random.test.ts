/**
 * emlab's one random generator and one seed mixer: derived streams do not collide, the
 * mixer is the one training has always used (so committed organisms and fine-tunes still
 * reproduce from their seeds), and the integer helpers draw every value of their range.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { mixSeed, Rng } from "../../src/tensor/index.ts";

test("mixSeed is training's seed mixer: epoch shuffles and dropout streams keep their seeds", () => {
  // Values of the splitmix32 mixer that src/train/batches.ts used before it moved here: the
  // seeds of epoch 3's shuffle (seed 7) and of a LoRA dropout stream at a micro-batch past 2^32.
  assert.equal(mixSeed(0), 2462723854);
  assert.equal(mixSeed(7, 0xda7a, 3), 3952151972);
  assert.equal(mixSeed(1, 0xd20f, 2 ** 33 + 5), 62219397);
});

test("mixSeed: order matters, high bits count, and 100k derived seeds do not collide", () => {
  assert.notEqual(mixSeed(1, 2), mixSeed(2, 1));
  assert.notEqual(mixSeed(5), mixSeed(2 ** 32 + 5));
  assert.notEqual(mixSeed(3), mixSeed(3, 0));
  const seen = new Set<number>();
  for (let s = 0; s < 100; s++)
    for (let j = 0; j < 1000; j++) {
      const h = mixSeed(s, j);
      assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
      seen.add(h);
    }
  // 1e5 draws from 2^32 values collide with probability ≈ 0.7; allow one or two, not a pattern.
  assert.ok(seen.size >= 100_000 - 2, `${100_000 - seen.size} collisions`);
});

test("Rng.int(lo, hi) draws every integer of [lo, hi) about equally; int(n) is int(0, n)", () => {
  const rng = new Rng(42);
  const counts = new Map<number, number>();
  const N = 60_000;
  for (let i = 0; i < N; i++) {
    const x = rng.int(-3, 3);
    counts.set(x, (counts.get(x) ?? 0) + 1);
  }
  assert.deepEqual(
    [...counts.keys()].sort((a, b) => a - b),
    [-3, -2, -1, 0, 1, 2],
  );
  for (const c of counts.values()) assert.ok(Math.abs(c - N / 6) < 500, `count ${c} vs ${N / 6}`); // ~5 sd
  const a = new Rng(9);
  const b = new Rng(9);
  for (let i = 0; i < 100; i++) assert.equal(a.int(17), b.int(0, 17));
});

test("Rng: the same seed gives the same stream; pick and shuffle draw from it", () => {
  const draw = (seed: number) => {
    const r = new Rng(seed);
    return [r.next(), r.int(100, 1000), r.pick(["a", "b", "c", "d"]), r.shuffle([1, 2, 3, 4, 5]).join("")];
  };
  assert.deepEqual(draw(3), draw(3));
  assert.notDeepEqual(draw(3), draw(4));
  const picked = new Set<string>();
  const r = new Rng(1);
  for (let i = 0; i < 200; i++) picked.add(r.pick(["a", "b", "c", "d"]));
  assert.equal(picked.size, 4);
});
