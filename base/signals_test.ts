import assert from "node:assert/strict";
import { commandStatus, exitCodeOf } from "./signals.ts";

Deno.test("commandStatus reads raw wait statuses as Deno reports a child's end", () => {
  assert.deepEqual(commandStatus(0), { success: true, code: 0, signal: null });
  assert.deepEqual(commandStatus(3 << 8), { success: false, code: 3, signal: null });
  assert.deepEqual(commandStatus(9), { success: false, code: 137, signal: "SIGKILL" });
  assert.deepEqual(commandStatus(15 | 0x80), { success: false, code: 143, signal: "SIGTERM" }); // core dumped bit
  assert.equal(exitCodeOf(commandStatus(2)), 130);
});
