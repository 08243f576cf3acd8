/**
 * The parent's side of a container's thread (thread.ts): start one early (its Deno runtime
 * takes about 12 ms to boot, which overlaps the parent's own work), give it its configuration,
 * and hear what it says. One thread per container start: it cannot be reused.
 */
import type { ThreadConfig, ThreadMessage } from "./recipe.ts";
import * as libc from "../base/libc.ts";

type Outcome = Extract<ThreadMessage, { type: "spawned" | "failed" }>;

/** A container's thread, booting or booted. */
export class ContainerThread {
  readonly #worker: Worker;
  /** Its thread id, once it has booted. */
  readonly booted: Promise<number>;
  readonly #outcome: Promise<Outcome>;
  #onTty?: (master: number) => void;
  #ended = false;

  private constructor() {
    this.#worker = new Worker(new URL("./thread.ts", import.meta.url).href, { type: "module" });
    let booted!: (tid: number) => void;
    let outcome!: (o: Outcome) => void;
    this.booted = new Promise((resolve) => booted = resolve);
    this.#outcome = new Promise((resolve) => outcome = resolve);
    this.#worker.onmessage = (event: MessageEvent<ThreadMessage>) => {
      const m = event.data;
      if (m.type === "booted") booted(m.tid);
      else if (m.type === "tty") this.#onTty?.(m.master);
      else outcome(m);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      outcome({
        type: "failed",
        exitCode: 125,
        message: `The container's thread failed: ${event.message}`,
      });
    };
  }

  /**
   * Starts a thread now; it boots while the caller works. This process becomes non-dumpable
   * first: its first process is a clone of it until its execve, and while it waits at the gate
   * (or briefly, for `exec`, in the container's PID namespace) nobody without CAP_SYS_PTRACE may
   * look into it through /proc (its memory, descriptors, root, executable).
   */
  static start(): ContainerThread {
    libc.prctl(libc.PR_SET_DUMPABLE, 0);
    return new ContainerThread();
  }

  /**
   * Gives the thread its configuration. The result comes once the first process has called
   * execve (after the gate), or when a step failed.
   */
  run(config: ThreadConfig, onTty?: (master: number) => void): Promise<Outcome> {
    this.#onTty = onTty;
    this.#worker.postMessage(config);
    return this.#outcome;
  }

  /** Ends the thread (it ends by itself after a run; this is for a thread that was not used). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#worker.terminate();
  }
}
