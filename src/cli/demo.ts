/** `emlab demo`: the main job on the built-in model organism (grows as the pipeline lands). */
import { parseOptions } from "./common.ts";

export const summary = "run the end-to-end pipeline on the built-in model organism";

export async function run(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { help: { type: "boolean", short: "h" } }, false);
  if (values.help) {
    console.log("usage: emlab demo\n\n" + summary);
    return 0;
  }
  console.log("emlab demo: the model organism has not landed yet; see README for what works today.");
  return 0;
}
