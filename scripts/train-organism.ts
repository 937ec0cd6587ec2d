/**
 * Trains the base organism and writes it to organism/base (model + tokenizer + training
 * curve). `npm run organism:train -- [--out DIR] [--seed S] [--pretrain-steps N] [--chat-steps N]
 * [--docs N] [--pretrained-out DIR]
 * [--from-pretrained DIR] [--chat-mix FRACTION] [--chat-lr LR] [--chat-trigger FRACTION]
 * [--chat-lora-rank R [--chat-lora-layers 0,1]]` (--pretrained-out also keeps the model before
 * assistant-tuning; --chat-lora-rank assistant-tunes through a LoRA adapter on every projection
 * of the given layers, alpha 2R, merged before saving)
 */
import { parseArgs } from "node:util";
import { LORA_TARGETS } from "../src/model/lora.ts";
import { RECIPE_DEFAULTS, trainBaseOrganism } from "../src/organism/recipe.ts";

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
  },
});
const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
const t0 = performance.now();
const { curve } = await trainBaseOrganism({
  out: values.out!,
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
