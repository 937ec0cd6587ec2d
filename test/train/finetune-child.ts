/**
 * Runs `emlab finetune` (argv after the first argument) and, at the checkpoint of step
 * STALL_AT, writes the step to the marker file (the first argument) and waits, so the test
 * can SIGKILL the process at a known point instead of racing a timer.
 */
import { writeFileSync } from "node:fs";
import { run } from "../../src/cli/finetune.ts";

const stallAt = Number(process.env.STALL_AT ?? 0);
const [marker, ...argv] = process.argv.slice(2);
process.exitCode = await run(argv, {
  onCheckpoint: async ({ step }) => {
    if (step !== stallAt) return;
    writeFileSync(marker!, String(step));
    await new Promise((resolve) => setTimeout(resolve, 120_000));
  },
});
