/**
 * Start-up phases, for the benchmark's breakdown: with MINI_DOCKER_TRACE=1 each call prints one
 * line on stderr, "+<ms since the process started> <phase>" (a container's thread too: the
 * times share one clock). Costs nothing when off.
 */
const on = Deno.env.get("MINI_DOCKER_TRACE") === "1";
const encoder = new TextEncoder();

/** Whether tracing is on (for a phase whose description costs something to make). */
export function tracing(): boolean {
  return on;
}

/** Marks that `phase` was reached. */
export function trace(phase: string): void {
  if (!on) return;
  const ms = performance.timeOrigin + performance.now() - processStart();
  Deno.stderr.writeSync(encoder.encode(`+${ms.toFixed(1)} ${phase}\n`));
}

let start: number | undefined;

/**
 * This process's start time, in ms since the epoch. /proc gives it to 10 ms: it is read once,
 * by the first thread that traces, and kept in the environment (which every thread shares),
 * so that the lines of the container's thread and the main thread are on one clock.
 */
function processStart(): number {
  if (start !== undefined) return start;
  const kept = Deno.env.get("MINI_DOCKER_TRACE_START");
  if (kept !== undefined) return start = Number(kept);
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  const uptime = Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
  start = Date.now() - (uptime - ticks / 100) * 1000;
  Deno.env.set("MINI_DOCKER_TRACE_START", String(start));
  return start;
}
