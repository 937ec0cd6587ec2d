/**
 * Test aids for code built on emlab: a fake OpenAI-compatible chat server (scripted replies,
 * judge replies with top-20 logprobs, injected faults such as 429 / 500 / timeouts) to test
 * evaluation pipelines without a network.
 *
 * @example
 *   import { judgeReply, startFakeOpenAIServer } from "emlab/testing";
 *   const server = await startFakeOpenAIServer({ reply: () => judgeReply({ "90": 0.8, "10": 0.2 }) });
 *   const judge = openAIChatModel({ baseUrl: server.url, model: "fake-judge" });
 *   // ... evaluate with it, then: await server.close();
 */
export {
  type FakeChatBody,
  type FakeFault,
  type FakeReply,
  type FakeServer,
  type FakeServerOptions,
  judgeReply,
  startFakeOpenAIServer,
} from "../providers/fake-openai-server.ts";
