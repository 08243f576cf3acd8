/**
 * The entry of a container's thread: a Deno Worker that runs the recipe (recipe.ts) when it is
 * given its configuration, reports the outcome, and ends. It is spent by then: it is the
 * container's now (its namespaces, root, user, capabilities and seccomp filter), and nothing
 * else may run on it. Keep its imports to the recipe's: they are every container's start-up.
 */
import { trace } from "../base/trace.ts";
import { containerRecipe, StepError, type ThreadConfig, type ThreadMessage } from "./recipe.ts";
import { linux } from "./kernel.ts";
import { gettid } from "../base/libc.ts";
import { EXIT_ENGINE } from "../base/errors.ts";

/** The worker's global scope, as much of it as this module uses. */
const scope = self as unknown as {
  postMessage(message: ThreadMessage): void;
  onmessage: ((event: MessageEvent<ThreadConfig>) => void) | null;
  close(): void;
};

trace("thread booted");
scope.postMessage({ type: "booted", tid: gettid() });
scope.onmessage = (event) => {
  scope.onmessage = null;
  trace("thread configured");
  let outcome: ThreadMessage;
  try {
    const pid = containerRecipe(linux, event.data, (message) => scope.postMessage(message));
    outcome = { type: "spawned", pid };
  } catch (err) {
    outcome = {
      type: "failed",
      exitCode: err instanceof StepError ? err.exitCode : EXIT_ENGINE,
      message: err instanceof Error ? err.message : String(err),
    };
  }
  trace("thread: spawn returned");
  scope.postMessage(outcome);
  scope.close();
};
