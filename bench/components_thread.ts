/**
 * The Worker of bench/components.ts: on a fresh thread, what the container's thread does to
 * confine itself (container/recipe.ts, `spawnFirst`), timed: the bounding set dropped to the
 * container's, the seccomp filter installed (no TSYNC: this thread only), the final capability
 * sets. The thread is spent afterwards; its creator terminates it.
 */
import * as libc from "../base/libc.ts";
import { installSeccomp } from "../security/seccomp_load.ts";

/** What to apply. */
export interface ConfineJob {
  /** Capability masks: the bounding set, and the effective and permitted sets. */
  bounding: bigint;
  caps: bigint;
  /** A compiled program (security/seccomp.ts), or none. */
  program?: Uint8Array;
  flags: number;
}

/** How long each step took on this thread, ms. */
export interface ConfineTimes {
  boundingMs: number;
  seccompMs: number;
  capsetMs: number;
}

const scope = self as unknown as {
  postMessage(message: ConfineTimes | { failed: string }): void;
  onmessage: ((event: MessageEvent<ConfineJob>) => void) | null;
};

scope.onmessage = (event) => {
  const job = event.data;
  try {
    const t0 = performance.now();
    for (let cap = 0; cap <= 63; cap++) {
      if ((job.bounding >> BigInt(cap)) & 1n) continue;
      try {
        libc.prctl(libc.PR_CAPBSET_DROP, cap);
      } catch (err) {
        if (err instanceof libc.SyscallError && err.errno === libc.EINVAL) break;
        throw err;
      }
    }
    const t1 = performance.now();
    if (job.program !== undefined) installSeccomp(job.program, job.flags);
    const t2 = performance.now();
    libc.capset({ effective: job.caps, permitted: job.caps, inheritable: 0n });
    const t3 = performance.now();
    scope.postMessage({ boundingMs: t1 - t0, seccompMs: t2 - t1, capsetMs: t3 - t2 });
  } catch (err) {
    scope.postMessage({ failed: err instanceof Error ? err.message : String(err) });
  }
};
