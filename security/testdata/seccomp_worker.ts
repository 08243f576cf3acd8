/**
 * A Deno worker for seccomp_test.ts: the filter is per thread without TSYNC, so the test loads
 * it here, on a thread of its own, and never on the test runner's. The worker installs the
 * program it is sent (if any), makes the system calls it is asked for, and answers with each
 * call's result (-errno on failure) and this thread's seccomp state.
 */
import { close, lastErrno, rawSyscall } from "../../base/libc.ts";
import { installSeccomp } from "../seccomp_load.ts";

/** What the test sends: a program to install (none = a control thread) and calls to make. */
export interface Request {
  program?: Uint8Array;
  flags?: number;
  calls: { name: string; nr: number; args: (number | bigint)[]; closeFd?: boolean }[];
}

/** What the worker answers. */
export interface Reply {
  error?: string;
  /** `Seccomp:`, `Seccomp_filters:` and `NoNewPrivs:` of /proc/thread-self/status. */
  status: Record<string, string>;
  results: Record<string, number>;
}

function threadStatus(): Record<string, string> {
  const text = Deno.readTextFileSync("/proc/thread-self/status");
  const fields: Record<string, string> = {};
  for (const key of ["Seccomp", "Seccomp_filters", "NoNewPrivs"]) {
    fields[key] = new RegExp(`^${key}:\\s*(.*)$`, "m").exec(text)?.[1] ?? "";
  }
  return fields;
}

// A worker's global scope; Deno's default types describe the main thread's.
const scope = self as unknown as {
  onmessage: (event: MessageEvent<Request>) => void;
  postMessage: (reply: Reply) => void;
};

scope.onmessage = (event) => {
  const { program, flags, calls } = event.data;
  const reply: Reply = { status: {}, results: {} };
  try {
    if (program !== undefined) installSeccomp(program, flags);
    reply.status = threadStatus();
    for (const call of calls) {
      const rc = rawSyscall(call.nr, ...call.args);
      reply.results[call.name] = rc < 0 ? -lastErrno() : rc;
      // A socket that the control thread could open is closed again.
      if (rc >= 0 && call.closeFd) close(rc);
    }
  } catch (err) {
    reply.error = err instanceof Error ? err.message : String(err);
  }
  scope.postMessage(reply);
};
