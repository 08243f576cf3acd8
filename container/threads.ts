/**
 * The parent's side of a container's thread (thread.ts): start one early (creating a Deno
 * Worker takes about 12 ms), give it its configuration in two steps, and hear what it says. One
 * thread per container start: it cannot be reused.
 */
import type { SpawnConfig, ThreadConfig, ThreadMessage } from "./recipe.ts";
import * as libc from "../base/libc.ts";

type Failed = Extract<ThreadMessage, { type: "failed" }>;
type Prepared = Extract<ThreadMessage, { type: "prepared" }>;
type Outcome = Extract<ThreadMessage, { type: "spawned" | "failed" }>;

/** A container's thread, booting or booted. */
export class ContainerThread {
  readonly #worker: Worker;
  /** Its thread id, once it has booted. */
  readonly booted: Promise<number>;
  #prepared?: (m: Prepared | Failed) => void;
  #outcome?: (m: Outcome) => void;
  #onTty?: (master: number) => void;
  #ended = false;

  private constructor() {
    this.#worker = new Worker(new URL("./thread.ts", import.meta.url).href, { type: "module" });
    let booted!: (tid: number) => void;
    this.booted = new Promise((resolve) => booted = resolve);
    this.#worker.onmessage = (event: MessageEvent<ThreadMessage>) => {
      const m = event.data;
      if (m.type === "booted") booted(m.tid);
      else if (m.type === "tty") this.#onTty?.(m.master);
      else if (m.type === "prepared") this.#prepared?.(m);
      else if (m.type === "spawned") this.#outcome?.(m);
      else if (this.#outcome !== undefined) this.#outcome(m);
      else this.#prepared?.(m);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      const failed: Failed = {
        type: "failed",
        exitCode: 125,
        message: `The container's thread failed: ${event.message}`,
      };
      this.#prepared?.(failed);
      this.#outcome?.(failed);
    };
  }

  /**
   * Starts a thread now; it boots while the caller works. This process becomes non-dumpable
   * first: a container's first process is a clone of it until its execve, and while it waits at
   * its gate (or, for `exec`, in the container's PID namespace) nobody without CAP_SYS_PTRACE may
   * look into it through /proc (its memory, descriptors, root, executable).
   */
  static start(): ContainerThread {
    libc.prctl(libc.PR_SET_DUMPABLE, 0);
    return new ContainerThread();
  }

  /**
   * First step: the thread makes itself the container. Resolves once it has (with the default
   * seccomp filter it made, when asked), or with the failure of a step. `onTty` gets the
   * terminal's master (`-t`).
   */
  prepare(config: ThreadConfig, onTty?: (master: number) => void): Promise<Prepared | Failed> {
    this.#onTty = onTty;
    const done = new Promise<Prepared | Failed>((resolve) => this.#prepared = resolve);
    this.#worker.postMessage(config);
    return done;
  }

  /** Second step: the first process. Resolves once it has called execve (after its gate). */
  spawn(config: SpawnConfig): Promise<Outcome> {
    const done = new Promise<Outcome>((resolve) => this.#outcome = resolve);
    this.#worker.postMessage(config);
    return done;
  }

  /** Ends the thread (it ends by itself after a spawn; this is for a thread not used so far). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#worker.terminate();
  }
}
