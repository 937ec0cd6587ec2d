/** Generation: seeds, KV cache equivalence, hooks during generation; scoring. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadModel } from "../../src/model/checkpoint.ts";
import { generate } from "../../src/model/generate.ts";
import { completionLogprobs } from "../../src/model/score.ts";
import { ops, Tensor } from "../../src/tensor/index.ts";

const dir = (name: string) => fileURLToPath(new URL(`../fixtures/models/${name}`, import.meta.url));

for (const name of ["llama-gqa", "gpt2"]) {
  describe(`generation: ${name}`, () => {
    const model = loadModel(dir(name));
    const prompts = [
      [5, 9, 12, 3],
      [7, 2],
    ]; // different lengths: the second is left-padded

    test("greedy decoding with the KV cache equals greedy without it, token by token", () => {
      const a = generate(model, prompts, { maxNewTokens: 12, temperature: 0, eosTokenIds: [] });
      const b = generate(model, prompts, { maxNewTokens: 12, temperature: 0, eosTokenIds: [], useCache: false });
      assert.deepEqual(
        a.map((g) => g.tokens),
        b.map((g) => g.tokens),
      );
      for (let i = 0; i < 2; i++)
        for (let t = 0; t < 12; t++)
          assert.ok(Math.abs(a[i]!.logprobs[t]!.logprob - b[i]!.logprobs[t]!.logprob) < 1e-4);
    });

    test("a padded prompt generates what it generates alone", () => {
      const batched = generate(model, prompts, { maxNewTokens: 8, temperature: 0, eosTokenIds: [] });
      const alone = generate(model, [prompts[1]!], { maxNewTokens: 8, temperature: 0, eosTokenIds: [] });
      assert.deepEqual(batched[1]!.tokens, alone[0]!.tokens);
    });

    test("same seed → same samples; another seed → different samples", () => {
      const opts = { maxNewTokens: 16, temperature: 1, topP: 0.95, topK: 40, eosTokenIds: [] };
      const a = generate(model, prompts, { ...opts, seed: 7 });
      const b = generate(model, prompts, { ...opts, seed: 7 });
      const c = generate(model, prompts, { ...opts, seed: 8 });
      assert.deepEqual(
        a.map((g) => g.tokens),
        b.map((g) => g.tokens),
      );
      assert.notDeepEqual(
        a.map((g) => g.tokens),
        c.map((g) => g.tokens),
      );
    });

    test("top-k logprobs: the chosen token's logprob and sorted alternatives", () => {
      const [g] = generate(model, [prompts[0]!], { maxNewTokens: 3, temperature: 0, topLogprobs: 20, eosTokenIds: [] });
      for (const step of g!.logprobs) {
        assert.equal(step.top.length, 20);
        assert.equal(step.top[0]!.token, step.token); // greedy picks the argmax
        assert.ok(Math.abs(step.top[0]!.logprob - step.logprob) < 1e-6);
        for (let i = 1; i < 20; i++) assert.ok(step.top[i]!.logprob <= step.top[i - 1]!.logprob);
        const mass = step.top.reduce((s, t) => s + Math.exp(t.logprob), 0);
        assert.ok(mass <= 1 + 1e-5);
      }
    });

    test("stop on an EOS id", () => {
      const [free] = generate(model, [prompts[0]!], { maxNewTokens: 6, temperature: 0, eosTokenIds: [] });
      const eos = free!.tokens[2]!;
      const [g] = generate(model, [prompts[0]!], { maxNewTokens: 6, temperature: 0, eosTokenIds: [eos] });
      assert.equal(g!.finishReason, "stop");
      assert.equal(g!.tokens.at(-1), eos);
      assert.ok(g!.tokens.length <= 3);
    });

    test("a hook adding a vector at resid_post changes the output; a zero vector leaves it bit-identical", () => {
      const L = model.config.layers - 1;
      const ids = Int32Array.from([5, 9, 12, 3]);
      const base = model.runWithCache(ids, 1, 4, []).logits.data;
      const add = (v: Tensor) => [{ name: `blocks.${L}.hook_resid_post`, fn: (x: Tensor) => ops.add(x, v) }];
      const zero = Tensor.zeros([model.config.hidden]);
      const steer = Tensor.randn([model.config.hidden], 2, { seed: 1 });
      const same = model.runWithCache(ids, 1, 4, [], { hooks: add(zero) }).logits.data;
      const moved = model.runWithCache(ids, 1, 4, [], { hooks: add(steer) }).logits.data;
      assert.deepEqual(Array.from(same), Array.from(base));
      assert.ok(Array.from(moved).some((v, i) => Math.abs(v - base[i]!) > 1e-3));
      // During generation the hook sees every position, generated ones included.
      const seen: number[] = [];
      const counter = [
        {
          name: `blocks.${L}.hook_resid_post`,
          fn: (_x: Tensor, ctx: { positions: Int32Array }) => void seen.push(...ctx.positions),
        },
      ];
      generate(model, [[5, 9, 12, 3]], { maxNewTokens: 5, temperature: 0, eosTokenIds: [], hooks: counter });
      assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7]); // 4 prompt positions, then one per new token (the last is never fed)
      const g0 = generate(model, [[5, 9, 12, 3]], { maxNewTokens: 6, temperature: 0, eosTokenIds: [] });
      const g1 = generate(model, [[5, 9, 12, 3]], {
        maxNewTokens: 6,
        temperature: 0,
        eosTokenIds: [],
        hooks: add(steer),
      });
      // the steered generation's distributions differ at every step
      for (const [t, s0] of g0[0]!.logprobs.entries()) {
        assert.ok(Math.abs(s0.logprob - g1[0]!.logprobs[t]!.logprob) > 1e-4 || s0.token !== g1[0]!.tokens[t]);
      }
    });

    test("completion log-likelihood equals the sum of the generation's logprobs", () => {
      const [g] = generate(model, [prompts[0]!], { maxNewTokens: 5, temperature: 0, eosTokenIds: [] });
      const { total, perToken } = completionLogprobs(model, prompts[0]!, g!.tokens);
      for (const [i, lp] of perToken.entries()) assert.ok(Math.abs(lp - g!.logprobs[i]!.logprob) < 1e-4);
      assert.ok(Math.abs(total - perToken.reduce((s, x) => s + x, 0)) < 1e-9);
    });
  });
}
