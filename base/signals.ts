/** Signal names and numbers (Linux), for exit codes (128+N) and `kill -s`. */

const NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

/**
 * glibc's first and last real-time signals on Linux (the kernel's 32 and 33 are its own): the
 * names RTMIN, RTMIN+N, RTMAX-N and RTMAX count from them, as Docker's (moby/sys/signal).
 */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

/**
 * The number of a signal name ("SIGTERM", "TERM", "term", "RTMIN+3", "SIGRTMAX-1") or number
 * ("15", "34"), or undefined.
 */
export function signalNumber(name: string): number | undefined {
  if (/^\d+$/.test(name)) {
    const n = Number(name);
    return n >= 1 && n <= SIGRTMAX ? n : undefined;
  }
  const upper = name.toUpperCase();
  const bare = upper.startsWith("SIG") ? upper.slice(3) : upper;
  const rt = /^RT(MIN|MAX)(?:([+-])(\d{1,2}))?$/.exec(bare);
  if (rt !== null) {
    const offset = rt[3] === undefined ? 0 : Number(rt[3]);
    if ((rt[1] === "MIN" && rt[2] === "-") || (rt[1] === "MAX" && rt[2] === "+")) return undefined;
    const n = rt[1] === "MIN" ? SIGRTMIN + offset : SIGRTMAX - offset;
    return n >= SIGRTMIN && n <= SIGRTMAX ? n : undefined;
  }
  return NUMBERS[`SIG${bare}`];
}

/** The name of a signal number, as Deno names them ("SIGTERM"); undefined for real-time ones. */
export function signalName(n: number): Deno.Signal | undefined {
  return Object.entries(NUMBERS).find(([, v]) => v === n)?.[0] as Deno.Signal | undefined;
}

/** A signal as people write it: "SIGTERM", "SIGRTMIN+1", or the number when it has no name. */
export function signalLabel(n: number): string {
  const name = signalName(n);
  if (name !== undefined) return name;
  if (n === SIGRTMIN) return "SIGRTMIN";
  if (n === SIGRTMAX) return "SIGRTMAX";
  if (n > SIGRTMIN && n < SIGRTMAX) return `SIGRTMIN+${n - SIGRTMIN}`;
  return String(n);
}

/** Docker's exit code for a process status: its code, or 128+N when killed by signal N. */
export function exitCodeOf(status: Deno.CommandStatus): number {
  if (status.signal !== null) return 128 + (signalNumber(status.signal) ?? 0);
  return status.code;
}

/** A raw wait(2) status as Deno reports a child's end (code 128+N when killed by signal N). */
export function commandStatus(raw: number): Deno.CommandStatus {
  const signal = raw & 0x7f;
  if (signal === 0) {
    const code = (raw >> 8) & 0xff;
    return { success: code === 0, code, signal: null };
  }
  return { success: false, code: 128 + signal, signal: signalName(signal) ?? null };
}
