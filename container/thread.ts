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
  startWithUserNamespace,
  StepError,
  type ThreadConfig,
  type ThreadMessage,
} from "./recipe.ts";
import { type Kernel, linux } from "./kernel.ts";
import { lazy } from "../base/lazy.ts";
import { gettid } from "../base/libc.ts";
import { EXIT_ENGINE } from "../base/errors.ts";
import type { LinuxSeccomp } from "../base/spec.ts";
import { runRoot } from "../base/paths.ts";
import { DEFAULT_CAPABILITIES } from "../security/capabilities.ts";
import { defaultSeccompProfile, resolveSeccomp } from "../security/seccomp_profile.ts";
import { compileSeccomp, type SeccompProgram } from "../security/seccomp.ts";

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

/** Docker's default profile for some capabilities, resolved and compiled (cached by filter). */
function dockerFilter(
  capabilities: readonly string[],
): { filter: LinuxSeccomp; program: SeccompProgram } {
  const filter = resolveSeccomp(defaultSeccompProfile(), { capabilities });
  const cacheDir = `${runRoot()}/seccomp`;
  Deno.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  return { filter, program: compileSeccomp(filter, { cacheDir }) };
}

trace("thread booted");
scope.postMessage({ type: "booted", tid: gettid() });
// Most containers get Docker's profile for Docker's capabilities: made now, while this thread
// waits for its configuration, it costs the start nothing.
let ahead: ReturnType<typeof dockerFilter> | Error;
try {
  ahead = dockerFilter(DEFAULT_CAPABILITIES);
} catch (err) {
  ahead = err instanceof Error ? err : new Error(String(err));
}
trace("thread: default filter made");
let prepared: Prepared | undefined;
let ownProgram: SeccompProgram | undefined;
let userNamespace: ThreadConfig | undefined;
/**
 * The kernel with first_process.ts's clone (a container with a user namespace, or `exec` in
 * one): loaded only then, since every module costs each container's start.
 */
let kernel: Kernel = linux;
async function withFirstProcess(): Promise<void> {
  const { cloneFirst } = await lazy<typeof import("./first_process.ts")>(
    "./first_process.ts",
    import.meta.url,
  );
  kernel = { ...linux, cloneFirst };
}

scope.onmessage = async (event) => {
  if (prepared === undefined) {
    // First message: become the container.
    trace("thread configured");
    try {
      const config = event.data as ThreadConfig;
      // Docker's profile, from the host's files: before the thread leaves the host's view.
      let seccomp: LinuxSeccomp | undefined;
      if (config.defaultSeccomp) {
        const caps = config.spec.process.capabilities?.bounding ?? [];
        const made = sameSet(caps, DEFAULT_CAPABILITIES) ? ahead : dockerFilter(caps);
        if (made instanceof Error) {
          throw new StepError(`Cannot make the seccomp filter: ${made.message}`);
        }
        seccomp = made.filter;
        ownProgram = made.program;
      }
      // A user namespace of its own: the first process is born first, in its cgroup, so both
      // phases run once the SpawnConfig has come (recipe.ts startWithUserNamespace).
      const user = config.spec.linux.namespaces.some((n) => n.type === "user");
      if (user) await withFirstProcess();
      if (config.mode === "create" && user) {
        userNamespace = config;
        prepared = { process: config.spec.process, path: "" };
      } else {
        prepared = prepareContainer(kernel, config, (m) => scope.postMessage(m));
      }
      scope.postMessage({ type: "prepared", seccomp });
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
    const config = event.data as SpawnConfig;
    const spawn = { ...config, seccomp: config.seccomp ?? ownProgram };
    const pid = userNamespace !== undefined
      ? startWithUserNamespace(kernel, userNamespace, spawn, (m) => scope.postMessage(m))
      : spawnContainer(kernel, prepared, spawn);
    outcome = { type: "spawned", pid };
  } catch (err) {
    outcome = failed(err);
  }
  trace("thread: spawn returned");
  scope.postMessage(outcome);
  scope.close();
};

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
