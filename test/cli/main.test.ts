import assert from "node:assert/strict";
import { test } from "node:test";
import { main, registeredCommands } from "../../src/cli/main.ts";

test("unknown command is a usage error (exit 2)", async () => {
  const err = console.error;
  console.error = () => {};
  try {
    assert.equal(await main(["no-such-command"]), 2);
  } finally {
    console.error = err;
  }
});

test("every registered command loads and has a summary", async () => {
  assert.ok(registeredCommands().includes("demo"));
});
