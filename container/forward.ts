/**
 * Signals that reach mini-docker while it waits for a container (a foreground `run`, `exec`)
 * are forwarded to the container's process.
 */

/** How long a container may outlive a forwarded signal before it is killed (as Docker's stop). */
export const KILL_GRACE_MS = 10_000;

/**
 * How long after a forwarded Ctrl-C a container that still runs gets the hint that a second one
 * kills it.
 */
export const HINT_DELAY_MS = 1000;

/** Signals mini-docker forwards to the container. */
const FORWARDED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Forwards SIGINT, SIGTERM and SIGHUP to the container's PID 1. A container still alive
 * KILL_GRACE_MS after a forwarded signal, or a second Ctrl-C, is killed: a process that is PID
 * 1 of its namespace ignores the signals it has no handler for, and Ctrl-C must still stop it.
 * The handlers are installed at once; signals that come before `attach(pid)` are delivered then.
 * For processes that exit once the container has: the listeners stay until then.
 */
export function forwardSignals(
  graceMs = KILL_GRACE_MS,
): Disposable & { attach(pid: number): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let hint: ReturnType<typeof setTimeout> | undefined;
  let interrupted = false;
  let target: number | undefined;
  const pending: Deno.Signal[] = [];
  const deliver = (sig: Deno.Signal) => {
    const pid = target!;
    try {
      if (sig === "SIGINT" && interrupted) {
        Deno.kill(pid, "SIGKILL");
        return;
      }
      interrupted ||= sig === "SIGINT";
      Deno.kill(pid, sig);
      if (Deno.stderr.isTerminal() && sig === "SIGINT") {
        // Only for a container that has not ended by then: most end at the first Ctrl-C, and
        // their run ends (disposing of this) before the hint is due.
        hint ??= setTimeout(() => {
          console.error(
            `\nmini-docker: forwarded SIGINT; press Ctrl-C again to kill the container`,
          );
        }, HINT_DELAY_MS);
      }
      timer ??= setTimeout(() => {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* already gone */ }
      }, graceMs);
    } catch {
      // The container has already exited.
    }
  };
  let disarmed = false;
  for (const sig of FORWARDED) {
    Deno.addSignalListener(sig, () => {
      if (disarmed) return;
      if (target === undefined) pending.push(sig);
      else deliver(sig);
    });
  }
  return {
    attach(pid: number) {
      target = pid;
      for (const sig of pending.splice(0)) deliver(sig);
    },
    [Symbol.dispose]() {
      // Disarmed, not removed: unbinding a signal that Deno's event loop has been polling takes
      // it ~6 ms, on every run's way out, and the process exits right after. A signal that
      // comes now finds no container and is ignored while the cleanup finishes.
      // (Only when armed: Deno loads its timers on first use, ~4 ms.)
      if (timer !== undefined) clearTimeout(timer);
      if (hint !== undefined) clearTimeout(hint);
      disarmed = true;
    },
  };
}
