/**
 * The end of this process's children. Deno lends blocking calls a few threads only (about 30
 * here), and a long-lived process (the supervisor) has a child per container: one blocking
 * waitpid per child would take them all. So one waitpid(-1) at a time reaps every child and
 * hands each status to whoever waits for it. mini-docker starts its children with posix_spawn
 * (containers, watchers, mount(8)); no Deno.Command may run in a process that uses this.
 */
import * as libc from "../base/libc.ts";
import { commandStatus } from "../base/signals.ts";

const waiting = new Map<number, (status: Deno.CommandStatus) => void>();
/** Children that ended before anyone asked. */
const ended = new Map<number, Deno.CommandStatus>();
let reaping = false;

/** The end of child `pid`, as Deno reports a child's (code 128+N when killed by signal N). */
export function childExit(pid: number): Promise<Deno.CommandStatus> {
  const done = ended.get(pid);
  if (done !== undefined) {
    ended.delete(pid);
    return Promise.resolve(done);
  }
  const promise = new Promise<Deno.CommandStatus>((resolve) => waiting.set(pid, resolve));
  reap();
  return promise;
}

async function reap(): Promise<void> {
  if (reaping) return;
  reaping = true;
  try {
    while (waiting.size > 0) {
      const { pid, status } = await libc.waitAnyChild();
      if (pid < 0) {
        // No child left: someone else reaped ours. Their status is lost: 255, as Docker says.
        for (const [p, resolve] of waiting) {
          waiting.delete(p);
          resolve(commandStatus(255 << 8));
        }
        break;
      }
      const resolve = waiting.get(pid);
      if (resolve === undefined) {
        ended.set(pid, commandStatus(status));
      } else {
        waiting.delete(pid);
        resolve(commandStatus(status));
      }
    }
  } finally {
    reaping = false;
  }
}

/**
 * Stops waiting for child `pid`, which someone else reaped: posix_spawn reaps a child that
 * reported a failure (its execve's errno) before it returns.
 */
export function forgetChild(pid: number): void {
  waiting.delete(pid);
  ended.delete(pid);
}
