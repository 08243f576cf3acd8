/** Signal names and numbers (Linux x86_64), for exit codes (128+N) and `kill -s`. */

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

/** The number of a signal name ("SIGTERM", "TERM", "term" or "15"), or undefined. */
export function signalNumber(name: string): number | undefined {
  if (/^\d+$/.test(name)) {
    const n = Number(name);
    return n >= 1 && n <= 64 ? n : undefined;
  }
  const upper = name.toUpperCase();
  return NUMBERS[upper.startsWith("SIG") ? upper : `SIG${upper}`];
}

/** The name of a signal number, as Deno names them ("SIGTERM"). */
export function signalName(n: number): Deno.Signal | undefined {
  return Object.entries(NUMBERS).find(([, v]) => v === n)?.[0] as Deno.Signal | undefined;
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
