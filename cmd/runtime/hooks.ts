/**
 * OCI hooks (config.md "POSIX-platform Hooks"). In the runtime's namespaces: `prestart` and
 * `createRuntime` once `create` has made the container (its first process waits at its gate, its
 * namespaces exist: /proc/PID/ns/* is where a network hook finds them), `poststart` after
 * `start`, `poststop` after `delete`. In the container's namespaces, started as `exec` starts a
 * process (container/exec.ts: every namespace of the container, its root, its cgroup, as its
 * root user with the process's capabilities and seccomp filter): `createContainer` at the end of
 * `create`, after createRuntime (its `path` opened in the runtime's namespace and executed as
 * /proc/self/fd/3, since the container's root is already its own), and `startContainer` at
 * `start`, before the command runs (its `path` the container's). Each gets the container's state
 * as JSON on its stdin, its `args` (argv[0] included) and `env`, and is killed after its
 * `timeout` seconds; the first to fail fails the operation.
 */
import { UserError } from "../../base/errors.ts";
import * as libc from "../../base/libc.ts";
import { childExit } from "../../container/children.ts";
import type { ContainerSpec } from "../../base/spec.ts";
import type { ContainerState } from "../../container/state.ts";

/** One hook, as config.json gives it. */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** The hooks run in the runtime's namespaces, and those run in the container's. */
export const HOOK_KINDS = [
  "prestart",
  "createRuntime",
  "poststart",
  "poststop",
  "createContainer",
  "startContainer",
] as const;
export type HookKind = typeof HOOK_KINDS[number];

/** The hooks of `kind` in config.json's `hooks`, checked. */
export function hooksOf(hooks: unknown, kind: HookKind): Hook[] {
  const list = (hooks as Record<string, unknown> | undefined)?.[kind];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new UserError(`config.json: hooks.${kind}: expected an array`, 1);
  return list.map((h, i) => {
    const field = `hooks.${kind}[${i}]`;
    if (typeof h?.path !== "string" || !h.path.startsWith("/")) {
      throw new UserError(`config.json: ${field}.path: must be an absolute path`, 1);
    }
    if (h.timeout !== undefined && !(Number.isInteger(h.timeout) && h.timeout > 0)) {
      throw new UserError(`config.json: ${field}.timeout: must be a positive integer`, 1);
    }
    return h as Hook;
  });
}

/** Runs the hooks in order; the first that fails (or times out) throws. */
export async function runHooks(kind: HookKind, hooks: Hook[], state: unknown): Promise<void> {
  const input = new TextEncoder().encode(JSON.stringify(state));
  for (const [i, hook] of hooks.entries()) {
    const problem = await runHook(hook, input);
    if (problem !== undefined) {
      throw new UserError(`${kind} hook #${i} (${hook.path}): ${problem}`, 1);
    }
  }
}

/**
 * Runs the container-namespace hooks of `kind` in order, in the running (or created) container
 * `state` of `spec`; the first that fails (or times out) throws.
 */
export async function runHooksInContainer(
  kind: "createContainer" | "startContainer",
  hooks: Hook[],
  ociState: unknown,
  state: ContainerState,
  spec: ContainerSpec,
): Promise<void> {
  if (hooks.length === 0) return;
  const { spawnInContainer } = await import("../../container/exec.ts");
  const { ContainerThread } = await import("../../container/threads.ts");
  const input = new TextEncoder().encode(JSON.stringify(ociState));
  for (const [i, hook] of hooks.entries()) {
    const problem = await runHook(hook, input, async (stdin) => {
      // createContainer's path is the runtime's: opened here, it is the hook's descriptor 3.
      const file = kind === "createContainer"
        ? libc.open(hook.path, libc.O_RDONLY | libc.O_CLOEXEC)
        : undefined;
      const devNull = libc.open("/dev/null", libc.O_WRONLY | libc.O_CLOEXEC);
      try {
        const started = await spawnInContainer(state, {
          ...spec,
          process: {
            ...spec.process,
            terminal: false,
            args: hook.args ?? [hook.path],
            executable: file === undefined ? hook.path : "/proc/self/fd/3",
            env: hook.env ?? [],
            cwd: "/",
            user: { uid: 0, gid: 0 },
          },
        }, {
          thread: ContainerThread.start(),
          stdio: [stdin, devNull, 2],
          ...(file !== undefined && { passFds: [file] }),
        });
        return { pid: started.pid, status: started.status };
      } finally {
        libc.close(devNull);
        if (file !== undefined) libc.close(file);
      }
    });
    if (problem !== undefined) {
      throw new UserError(`${kind} hook #${i} (${hook.path}): ${problem}`, 1);
    }
  }
}

/** One hook: undefined when it exited 0, else what went wrong. */
async function runHook(
  hook: Hook,
  input: Uint8Array<ArrayBuffer>,
  start: (stdin: number) => Promise<{ pid: number; status: Promise<Deno.CommandStatus> }> = (
    stdin,
  ) => {
    const pid = libc.spawn(hook.path, hook.args ?? [hook.path], hook.env ?? [], {
      // Its stdout goes nowhere, its stderr is ours (the caller's log of the runtime).
      actions: [
        { dup2: [stdin, 0] },
        { open: [1, "/dev/null", libc.O_WRONLY] },
        { closefrom: 3 },
      ],
    });
    return Promise.resolve({ pid, status: childExit(pid) });
  },
): Promise<string | undefined> {
  const [stdinRead, stdinWrite] = libc.pipe();
  let pid: number;
  let status: Promise<Deno.CommandStatus>;
  try {
    ({ pid, status } = await start(stdinRead));
  } catch (err) {
    libc.close(stdinWrite);
    return `cannot run it: ${(err as Error).message}`;
  } finally {
    libc.close(stdinRead);
  }
  try {
    libc.writeAll(stdinWrite, input);
  } catch { /* it did not read its input */ }
  libc.close(stdinWrite);
  let timedOut = false;
  const timer = hook.timeout === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    try {
      libc.kill(pid, 9);
    } catch { /* ended */ }
  }, hook.timeout * 1000);
  const end = await status;
  clearTimeout(timer);
  if (timedOut) return `timed out after ${hook.timeout} s`;
  return end.success ? undefined : `exited with status ${end.code}`;
}
