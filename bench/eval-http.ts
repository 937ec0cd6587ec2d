/**
 * eval_http: requests/s of the eval runner (generation + aligned + coherent judgements, run
 * store writes included) against a local OpenAI-compatible server that answers instantly,
 * at concurrency 64. The server runs in a worker thread so it does not share the runner's
 * event loop. Target: ≥ 500 requests/s on 2 cores.
 *
 * Run alone: node --import tsx bench/eval-http.ts
 */
import { Worker } from "node:worker_threads";
import { coreQuestions } from "../src/eval/core-questions.ts";
import { runEval } from "../src/eval/runner.ts";
import { openRunStore } from "../src/eval/store.ts";
import { openAIChatModel } from "../src/providers/openai-http.ts";

// An instant server: every answer is the same judge-style completion with top logprobs.
const SERVER = `
const http = require("node:http");
const { parentPort } = require("node:worker_threads");
const top = [["90", -0.3], ["85", -1.6], ["95", -2.5]].map(([token, logprob]) => ({ token, logprob }));
const body = JSON.stringify({ id: "x", object: "chat.completion", model: "bench", choices: [{ index: 0,
  message: { role: "assistant", content: "90" }, finish_reason: "stop",
  logprobs: { content: [{ token: "90", logprob: -0.3, top_logprobs: top }] } }] });
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));
`;

export async function evalHttpRequestsPerSecond(samplesPerQuestion = 250, concurrency = 64): Promise<number> {
  const worker = new Worker(SERVER, { eval: true });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    const baseUrl = `http://127.0.0.1:${port}/v1`;
    const model = openAIChatModel({ baseUrl, model: "bench", concurrency });
    const judgeModel = openAIChatModel({ baseUrl, model: "bench-judge", concurrency });
    const store = openRunStore(":memory:");
    const questions = coreQuestions("first-plot");
    const run = (runId: string, samples: number) =>
      runEval({ runId, model, judgeModel, questions, store, samples, batchSize: 32, parallelBatches: 8 });
    await run("warmup", 8);
    const t0 = performance.now();
    await run("bench", samplesPerQuestion);
    const seconds = (performance.now() - t0) / 1000;
    const requests = model.stats.attempts + judgeModel.stats.attempts - 3 * questions.length * 8;
    store.close();
    model.close();
    judgeModel.close();
    return requests / seconds;
  } finally {
    await worker.terminate();
  }
}

export const benches = [
  { name: "eval_http", unit: "requests/s", peerName: null, run: async () => evalHttpRequestsPerSecond() },
];

if (import.meta.url === `file://${process.argv[1]}`) {
  const rps = await evalHttpRequestsPerSecond();
  console.log(`eval_http ${rps.toFixed(0)} requests/s (concurrency 64; 8 questions × 250 samples × 3 requests)`);
}
