/**
 * `run --init`: the init stage stays as the container's PID 1 instead of becoming the command.
 * It starts the command as its child, forwards the signals it gets, reaps every orphan the
 * kernel hands it (no zombies), and exits with the command's status. This answers the PID-1
 * problem: a shell or a server as PID 1 gets no default signal actions and reaps nobody.
 * The price is this Deno process (~25 MiB) for the container's life; without --init the init
 * stage execs the command and costs nothing.
 */
import type { Process } from "../base/spec.ts";
import * as libc from "../base/libc.ts";

const FORWARDED: Deno.Signal[] = [
  "SIGTERM",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
];

/** Exit code for a raw wait status: the exit code, or 128+N for signal N. */
function exitCodeOf(status: number): number {
  const signal = status & 0x7f;
  return signal === 0 ? (status >> 8) & 0xff : 128 + signal;
}

/**
 * Starts `path` (already resolved) as the only child, closes `sync` to tell the parent it
 * runs, then supervises it until it exits.
 */
export async function reap(path: string, process: Process, sync: number): Promise<never> {
  // Handlers first: as PID 1, a signal that comes before them would be dropped by the kernel.
  let child = 0;
  const pending: Deno.Signal[] = [];
  const forward = (sig: Deno.Signal) => {
    try {
      Deno.kill(child, sig);
    } catch { /* exited */ }
  };
  for (const sig of FORWARDED) {
    Deno.addSignalListener(sig, () => (child === 0 ? pending.push(sig) : forward(sig)));
  }
  child = libc.spawnProcess(path, process.args, process.env);
  pending.splice(0).forEach(forward);
  libc.close(sync);
  for (;;) {
    const { pid, status } = await libc.waitAnyChild();
    if (pid === child) Deno.exit(exitCodeOf(status));
    if (pid < 0) Deno.exit(255); // No children left: cannot happen before ours has exited.
  }
}
