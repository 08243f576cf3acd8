import assert from "node:assert/strict";
import { isForegroundRun, RUN_VALUE_OPTIONS } from "./run_args.ts";
import { runCommand } from "./run.ts";

Deno.test("RUN_VALUE_OPTIONS lists exactly the run options that take a value", () => {
  const fromCommander = runCommand().options
    .filter((o) => o.required || o.optional)
    .flatMap((o) => [o.short, o.long].filter((n): n is string => n !== undefined));
  assert.deepEqual([...RUN_VALUE_OPTIONS].sort(), fromCommander.sort());
});

Deno.test("isForegroundRun tells foreground runs from detached ones and help", () => {
  assert.equal(isForegroundRun(["run", "/bin/sh"]), true);
  assert.equal(isForegroundRun(["run", "--name", "-d", "/bin/sh"]), true);
  assert.equal(isForegroundRun(["run", "-it", "/bin/sh"]), true);
  assert.equal(isForegroundRun(["run", "-m", "10m", "/bin/ls", "-d"]), true);
  assert.equal(isForegroundRun(["run", "-d", "/bin/sh"]), false);
  assert.equal(isForegroundRun(["run", "-dit", "/bin/sh"]), false);
  assert.equal(isForegroundRun(["run", "--detach", "/bin/sh"]), false);
  assert.equal(isForegroundRun(["run", "--help"]), false);
  assert.equal(isForegroundRun(["ps"]), false);
});
