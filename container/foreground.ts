/**
 * A container in the foreground: mini-docker stays attached, forwards signals, relays the
 * terminal with `-t`, and exits with the container's code. A foreground container is removed
 * when it ends (as `--rm`), so the original Mini-Docker's one-shot runs leave nothing behind,
 * and it dies with mini-docker (watcher.ts).
 */
import type { ContainerSpec } from "../base/spec.ts";
import { type ContainerMeta, type FinishHooks, startContainer } from "./start.ts";
import type { ContainerState } from "./state.ts";
import type { ContainerThread } from "./threads.ts";
import { forwardSignals } from "./forward.ts";
import { openRelay } from "./tty.ts";
import { cleanupStale } from "./lifecycle.ts";
import * as libc from "../base/libc.ts";

/** Options of a foreground run. */
export interface RunOptions extends FinishHooks {
  /** `-t`: a pseudo-terminal for the container, relayed to ours (raw mode while it runs). */
  tty?: boolean;
  /** Our stdin is the container's (else it reads /dev/null, or nothing on its terminal). */
  stdin?: boolean;
  /** A container thread started early by main.ts. */
  thread?: ContainerThread;
  /** Docker's default seccomp profile, resolved during the start (StartOptions). */
  defaultSeccomp?: boolean;
}

/**
 * Runs a container in the foreground and returns its final state (exit code, OOM) and how its
 * first process ended.
 */
export async function runContainer(
  spec: ContainerSpec,
  meta: ContainerMeta,
  options: RunOptions = {},
): Promise<{ final: ContainerState; status: Deno.CommandStatus }> {
  const input = options.stdin ?? true;
  using pty = options.tty ? openRelay({ input }) : undefined;
  using signals = forwardSignals();
  // Without stdin, /dev/null: the container has its own copy once it runs.
  using nullIn = input || pty !== undefined ? undefined : openNull();
  const started = await startContainer(spec, meta, {
    onSpawn: (pid) => signals.attach(pid),
    thread: options.thread,
    stdio: pty !== undefined ? "tty" : nullIn !== undefined ? [nullIn.fd, 1, 2] : "inherit",
    onPty: (master) => pty?.attach(master),
    dieWithParent: true,
    autoRemove: true,
    detached: false,
    defaultSeccomp: options.defaultSeccomp,
  });
  const relayed = pty?.relay();
  // While the container runs: clean what killed runs left (their cgroups and state).
  const stale = cleanupStale().catch(() => {});
  const final = await started.finish(options);
  await relayed;
  await stale;
  return { final, status: await started.status };
}

function openNull(): Disposable & { fd: number } {
  const fd = libc.open("/dev/null", libc.O_RDONLY | libc.O_CLOEXEC);
  return { fd, [Symbol.dispose]: () => libc.close(fd) };
}
