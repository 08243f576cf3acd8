/**
 * The entry of a container's thread: a Deno Worker that runs the recipe (recipe.ts) when it is
 * given its configuration, reports the outcome, and ends. It is spent by then: it is the
 * container's now (its namespaces, root, user, capabilities and seccomp filter), and nothing
 * else may run on it. Keep its imports to the recipe's: they are every container's start-up.
 */
import { trace } from "../base/trace.ts";
import {
  prepareContainer,
  type Prepared,
  type SpawnConfig,
  spawnContainer,
  StepError,
  type ThreadConfig,
  type ThreadMessage,
} from "./recipe.ts";
import { linux } from "./kernel.ts";
import { gettid } from "../base/libc.ts";
import { EXIT_ENGINE } from "../base/errors.ts";

/** The worker's global scope, as much of it as this module uses. */
const scope = self as unknown as {
  postMessage(message: ThreadMessage): void;
  onmessage: ((event: MessageEvent<ThreadConfig | SpawnConfig>) => void) | null;
  close(): void;
};

function failed(err: unknown): ThreadMessage {
  return {
    type: "failed",
    exitCode: err instanceof StepError ? err.exitCode : EXIT_ENGINE,
    message: err instanceof Error ? err.message : String(err),
  };
}

trace("thread booted");
scope.postMessage({ type: "booted", tid: gettid() });
let prepared: Prepared | undefined;
scope.onmessage = (event) => {
  if (prepared === undefined) {
    // First message: become the container.
    trace("thread configured");
    try {
      prepared = prepareContainer(linux, event.data as ThreadConfig, (m) => scope.postMessage(m));
      scope.postMessage({ type: "prepared" });
    } catch (err) {
      scope.postMessage(failed(err));
      scope.close();
    }
    return;
  }
  // Second message: start the first process. The thread is spent after that.
  scope.onmessage = null;
  let outcome: ThreadMessage;
  try {
    outcome = { type: "spawned", pid: spawnContainer(linux, prepared, event.data as SpawnConfig) };
  } catch (err) {
    outcome = failed(err);
  }
  trace("thread: spawn returned");
  scope.postMessage(outcome);
  scope.close();
};
