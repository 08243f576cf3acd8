/**
 * OCI hooks that run in the runtime's namespaces (config.md "POSIX-platform Hooks"): `prestart`
 * and `createRuntime` once `create` has made the container (its first process waits at its gate,
 * its namespaces exist: /proc/PID/ns/* is where a network hook finds them), `poststart` after
 * `start`, `poststop` after `delete`. Each gets the container's state as JSON on its stdin, its
 * `args` (argv[0] included) and `env`, and is killed after its `timeout` seconds. The hooks that
 * run in the container's namespaces (`createContainer`, `startContainer`) are refused by
 * config.ts.
 */
import { UserError } from "../../base/errors.ts";
import * as libc from "../../base/libc.ts";
import { childExit } from "../../container/children.ts";

/** One hook, as config.json gives it. */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** The hooks runc runs in its own namespaces. */
export type HookKind = "prestart" | "createRuntime" | "poststart" | "poststop";

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

/** One hook: undefined when it exited 0, else what went wrong. */
async function runHook(hook: Hook, input: Uint8Array<ArrayBuffer>): Promise<string | undefined> {
  const [stdinRead, stdinWrite] = libc.pipe();
  let pid: number;
  try {
    pid = libc.spawn(hook.path, hook.args ?? [hook.path], hook.env ?? [], {
      // Its stdout goes nowhere, its stderr is ours (the caller's log of the runtime).
      actions: [
        { dup2: [stdinRead, 0] },
        { open: [1, "/dev/null", libc.O_WRONLY] },
        { closefrom: 3 },
      ],
    });
  } catch (err) {
    libc.close(stdinWrite);
    return `cannot run it: ${(err as Error).message}`;
  } finally {
    libc.close(stdinRead);
  }
  const status = childExit(pid);
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
