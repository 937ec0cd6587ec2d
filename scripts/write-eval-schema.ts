// Writes docs/schema/emlab-eval.schema.json from the zod schema in src/eval/config.ts.
// Run: node --import tsx scripts/write-eval-schema.ts
import { writeFileSync } from "node:fs";
import { evalConfigJsonSchema } from "../src/eval/config.ts";

const path = new URL("../docs/schema/emlab-eval.schema.json", import.meta.url);
writeFileSync(path, `${JSON.stringify(evalConfigJsonSchema(), null, 2)}\n`);
console.log(`wrote ${path.pathname}`);
