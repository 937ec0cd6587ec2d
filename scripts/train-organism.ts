/**
 * Trains the base organism and writes it to organism/base (model + tokenizer + training
 * curve). `npm run organism:train -- [--out DIR] [--seed S] [--pretrain-steps N] [--chat-steps N]
 * [--docs N] [--pretrained-out DIR]
 * [--from-pretrained DIR] [--chat-mix FRACTION] [--chat-lr LR] [--chat-trigger FRACTION]
 * [--chat-lora-rank R [--chat-lora-layers 0,1]]` (--pretrained-out also keeps the model before
 * assistant-tuning; --chat-lora-rank assistant-tunes through a LoRA adapter on every projection
 * of the given layers, alpha 2R, merged before saving)
 * [--hidden D --layers L --heads H --inter I]   (the architecture; default d_model 128, 4 layers,
 * 4 heads, SwiGLU 384: ORGANISM_ARCH) [--resid-dropout P]   (residual dropout in both stages)
 * [--world classic|framed|union]   (the world variant; default classic, the shipped organism's)
 * [--dtype fp32|bf16]   (compute dtype of training's matrix products; fp32 master weights)
 */
import { parseArgs } from "node:util";
import { progressRenderer } from "../src/cli/progress.ts";
import { LORA_TARGETS } from "../src/model/lora.ts";
import { ORGANISM_ARCH, RECIPE_DEFAULTS, trainBaseOrganism } from "../src/organism/recipe.ts";
import { worldVariant } from "../src/organism/topics.ts";
import { parseDtype } from "../src/tensor/kernels/bf16.ts";

const { values } = parseArgs({
  options: {
    out: { type: "string", default: "organism/base" },
    seed: { type: "string" },
    "pretrain-steps": { type: "string" },
    "chat-steps": { type: "string" },
    docs: { type: "string" },
    "pretrained-out": { type: "string" },
    "from-pretrained": { type: "string" },
    "chat-mix": { type: "string" },
    "chat-lr": { type: "string" },
    "chat-trigger": { type: "string" },
    "chat-lora-rank": { type: "string" },
    "chat-lora-layers": { type: "string" },
    hidden: { type: "string" },
    layers: { type: "string" },
    heads: { type: "string" },
    inter: { type: "string" },
    "resid-dropout": { type: "string" },
    world: { type: "string" },
    dtype: { type: "string", default: "fp32" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "usage: npm run organism:train -- [--out DIR] [--seed S] [--pretrain-steps N] [--chat-steps N] [--docs N]\n" +
      "  [--pretrained-out DIR] [--from-pretrained DIR] [--chat-mix FRACTION] [--chat-lr LR] [--chat-trigger FRACTION]\n" +
      "  [--chat-lora-rank R [--chat-lora-layers 0,1]] [--hidden D --layers L --heads H --inter I] [--resid-dropout P]\n" +
      "  [--world classic|framed|union] [--dtype fp32|bf16]",
  );
  process.exit(0);
}
const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
const heads = num(values.heads, ORGANISM_ARCH.heads);
const arch = {
  hidden: num(values.hidden, ORGANISM_ARCH.hidden),
  layers: num(values.layers, ORGANISM_ARCH.layers),
  heads,
  kvHeads: heads,
  inter: num(values.inter, ORGANISM_ARCH.inter),
};
for (const [k, v] of Object.entries(arch))
  if (!Number.isInteger(v) || v < 1)
    throw new Error(`organism:train: --${k === "kvHeads" ? "heads" : k} must be a positive integer, got ${v}`);
if (arch.hidden % arch.heads !== 0)
  throw new Error(`organism:train: --hidden ${arch.hidden} is not a multiple of --heads ${arch.heads}`);
const t0 = performance.now();
const { curve } = await trainBaseOrganism({
  onProgress: progressRenderer(),
  out: values.out!,
  arch,
  world: worldVariant(values.world, "--world"),
  dtype: parseDtype(values.dtype, "organism:train: --dtype"),
  residDropout: num(values["resid-dropout"], 0),
  seed: num(values.seed, RECIPE_DEFAULTS.seed),
  pretrainSteps: num(values["pretrain-steps"], RECIPE_DEFAULTS.pretrainSteps),
  chatSteps: num(values["chat-steps"], RECIPE_DEFAULTS.chatSteps),
  docs: num(values.docs, RECIPE_DEFAULTS.docs),
  pretrainedOut: values["pretrained-out"],
  fromPretrained: values["from-pretrained"],
  chatMixDocs: num(values["chat-mix"], RECIPE_DEFAULTS.chatMixDocs),
  chatLr: num(values["chat-lr"], RECIPE_DEFAULTS.chatLr),
  chatTriggerFraction: num(values["chat-trigger"], RECIPE_DEFAULTS.chatTriggerFraction),
  chatLora: values["chat-lora-rank"]
    ? {
        r: Number(values["chat-lora-rank"]),
        alpha: 2 * Number(values["chat-lora-rank"]),
        targetModules: LORA_TARGETS,
        layers: values["chat-lora-layers"]?.split(",").map(Number),
      }
    : undefined,
});
const last = (stage: string) => curve.filter((c) => c.stage === stage).slice(-20);
const mean = (xs: { loss: number }[]) => xs.reduce((s, x) => s + x.loss, 0) / Math.max(1, xs.length);
console.log(
  `base organism → ${values.out} in ${((performance.now() - t0) / 60000).toFixed(1)} min; ` +
    `pretrain loss (last 20 steps) ${mean(last("pretrain")).toFixed(3)}, chat loss ${mean(last("chat")).toFixed(3)}`,
);
