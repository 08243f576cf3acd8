/**
 * The results as one text report (Markdown tables, so that the README can quote them), as
 * JSON, and as an SVG bar chart written by hand (no dependency).
 */
import type { HyperfineRow } from "./hyperfine.ts";
import type { CpuLimitRow, MemoryLimitRow } from "./limits.ts";
import type { MemoryRow } from "./memory.ts";
import { confinementCost, type Phases } from "./phases.ts";
import type { ScaleRow } from "./scale.ts";
import type { StartupRow } from "./startup.ts";

/** Everything one run of the bench measured. */
export interface Results {
  date: string;
  machine: Record<string, string | number>;
  versions: Record<string, string>;
  settings: Record<string, number | boolean | string>;
  namespaces: readonly string[];
  startup?: StartupRow[];
  hyperfine?: HyperfineRow[];
  scale?: ScaleRow[];
  memory?: MemoryRow[];
  cpuLimit?: CpuLimitRow[];
  memoryLimit?: MemoryLimitRow[];
  phases?: Phases;
  /** Tools that failed to run their payload, with why. */
  failures: string[];
  /** Machine load before and after (1-minute load average, CPU pressure avg60). */
  load: Record<string, string>;
}

const ms = (x: number) => (Number.isFinite(x) ? x < 10 ? x.toFixed(1) : x.toFixed(0) : "-");
/** Milliseconds with two decimals below 10 (component costs are small). */
const ms2 = (x: number) => (Number.isFinite(x) ? x < 10 ? x.toFixed(2) : x.toFixed(1) : "-");
const s2 = (x: number) => (Number.isFinite(x) ? (x / 1000).toFixed(2) : "-");
const mib = (kib: number) => (Number.isFinite(kib) ? (kib / 1024).toFixed(1) : "-");
const ratio = (a: number, b: number) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : "-";

function table(head: string[], rows: string[][], right: boolean[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${
      cells.map((c, i) => right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)).join(" | ")
    } |`;
  const rule = `| ${
    widths.map((w, i) => right[i] ? `${"-".repeat(w - 1)}:` : "-".repeat(w)).join(" | ")
  } |`;
  return [line(head), rule, ...rows.map(line)].join("\n");
}

/** The text report. */
export function formatReport(r: Results): string {
  const out: string[] = [];
  out.push(
    `mini-docker benchmark, ${r.date}: ${r.machine.cpuModel}, ${r.machine.cpus} CPUs, ` +
      `${r.machine.memoryGiB} GiB, kernel ${r.machine.kernel}, cgroup ${r.machine.cgroupLayout}; ` +
      `load ${r.load.before} before, ${r.load.after} after`,
  );
  out.push(
    `Namespaces for every tool: ${
      r.namespaces.join(", ")
    } (no network namespace: mini-docker runs with --network host).`,
  );

  if (r.startup !== undefined) {
    const median = (id: string) => r.startup!.find((x) => x.id === id)?.wallMs.median ?? NaN;
    const md = median("mini-docker");
    const runc = median("runc");
    const runcDocker = median("runc-docker");
    out.push(
      "",
      `## Start-up: /bin/true, ${r.settings.runs} runs each after ${r.settings.warmup} warm-ups, round-robin`,
      "",
      table(
        [
          "tool",
          "median ms",
          "min",
          "max",
          "CPU ms",
          "peak RSS MiB",
          "x mini-docker",
          "x runc",
          "x runc (Docker's profile)",
        ],
        r.startup.map((x) =>
          x.failure !== undefined ? [x.label, "FAILED", "", "", "", "", "", "", ""] : [
            x.label,
            ms(x.wallMs.median),
            ms(x.wallMs.min),
            ms(x.wallMs.max),
            ms(x.cpuMs.median),
            mib(x.peakRssKiB),
            ratio(x.wallMs.median, md),
            ratio(x.wallMs.median, runc),
            ratio(x.wallMs.median, runcDocker),
          ]
        ),
        [false, true, true, true, true, true, true, true, true],
      ),
      "",
      Number.isFinite(md) && Number.isFinite(runcDocker)
        ? `Goal, mini-docker median <= runc's, like with like (runc with Docker's seccomp profile and capabilities): ${
          ms(md)
        } ms vs ${ms(runcDocker)} ms, ratio ${ratio(md, runcDocker)}: ${
          md <= runcDocker ? "met" : "NOT met"
        } (plain runc from \`runc spec\`, no seccomp filter: ${ms(runc)} ms, ratio ${
          ratio(md, runc)
        }).`
        : "Goal: not measurable (a tool failed).",
    );
  }

  if (r.hyperfine !== undefined && r.hyperfine.length > 0) {
    out.push(
      "",
      "Cross-check with hyperfine -N (each row's runs back to back, not interleaved):",
      "",
      table(
        ["tool", "hyperfine median ms", "min", "max", "bench median ms"],
        r.hyperfine.map((h) => [
          h.label,
          ms(h.medianMs),
          ms(h.minMs),
          ms(h.maxMs),
          ms(r.startup?.find((x) => x.id === h.id)?.wallMs.median ?? NaN),
        ]),
        [false, true, true, true, true],
      ),
    );
  }

  if (r.scale !== undefined) {
    const md = r.scale.find((x) => x.id === "mini-docker")?.allRunningMs.median ?? NaN;
    const runc = r.scale.find((x) => x.id === "runc")?.allRunningMs.median ?? NaN;
    out.push(
      "",
      `## Scale: ${r.settings.scaleCount} containers of "sleep 2" started at once, ${r.settings.scaleRounds} round(s), medians`,
      "",
      table(
        [
          "tool",
          "all running s",
          "first running s",
          "all gone s",
          "CPU s",
          "x mini-docker",
          "x runc",
        ],
        r.scale.map((x) =>
          x.failure !== undefined ? [x.label, `FAILED: ${x.failure}`, "", "", "", "", ""] : [
            x.label,
            s2(x.allRunningMs.median),
            s2(x.firstRunningMs.median),
            s2(x.allGoneMs.median),
            s2(x.cpuMs.median),
            ratio(x.allRunningMs.median, md),
            ratio(x.allRunningMs.median, runc),
          ]
        ),
        [false, true, true, true, true, true, true],
      ),
      ...r.scale.filter((x) => x.note !== undefined).map((x) => `\n${x.label}: ${x.note}.`),
    );
  }

  if (r.memory !== undefined) {
    out.push(
      "",
      "## Memory: the runtime's own processes while its containers run (payload excluded)",
      "",
      table(
        ["tool", "containers", "processes", "RSS per container MiB", "PSS per container MiB"],
        r.memory.map((x) => [
          x.label,
          String(x.containers),
          x.failure !== undefined ? `FAILED: ${x.failure}` : String(x.processes),
          mib(x.rssPerContainerKiB),
          mib(x.pssPerContainerKiB),
        ]),
        [false, true, true, true, true],
      ),
    );
  }

  if (r.cpuLimit !== undefined || r.memoryLimit !== undefined) {
    out.push("", "## Limits");
    if (r.cpuLimit !== undefined) {
      out.push(
        "",
        table(
          [
            "busy loop under a 0.5 CPU limit",
            "measured CPUs",
            "error",
            "throttled periods",
            "window s",
          ],
          r.cpuLimit.map((x) =>
            x.failure !== undefined ? [x.label, `FAILED: ${x.failure}`, "", "", ""] : [
              x.label,
              x.measuredCpus.toFixed(3),
              `${(x.error * 100).toFixed(1)} %`,
              x.throttledShare === undefined ? "-" : `${(x.throttledShare * 100).toFixed(0)} %`,
              x.windowS.toFixed(1),
            ]
          ),
          [false, true, true, true, true],
        ),
      );
    }
    if (r.memoryLimit !== undefined && r.memoryLimit.length > 0) {
      out.push(
        "",
        table(
          ["start-up cost of a 64 MiB memory limit", "without ms", "with ms", "overhead ms"],
          r.memoryLimit.map((x) => [
            x.label,
            ms(x.withoutMs),
            ms(x.withMs),
            (x.overheadMs >= 0 ? "+" : "") + ms(x.overheadMs),
          ]),
          [false, true, true, true],
        ),
      );
    }
  }

  if (r.phases !== undefined) out.push(...formatPhases(r.phases, r));

  if (r.startup !== undefined) {
    out.push("", "Notes:");
    for (const x of r.startup) out.push(`- ${x.label}: ${x.note}`);
    out.push(
      "- Wall time: from spawn until the tool's process is reaped. CPU: user + system of the whole process tree (wait4 rusage; the bench is a child subreaper, so daemonized descendants such as conmon are counted). Peak RSS: the largest single process of the tree (GNU time's %M, and the orphans' rusage), not a sum.",
      `- Runs: start-up ${r.settings.runs} per row after ${r.settings.warmup} warm-ups, peak RSS over ${r.settings.rssRuns} more; scale ${r.settings.scaleRounds} round(s); all rows interleaved round-robin.`,
    );
  }
  if (r.failures.length > 0) {
    out.push("", "FAILED:", ...r.failures.map((f) => `- ${f}`));
  }
  return out.join("\n");
}

/** The phases section: the phase table, the component costs, the confinement's cost. */
function formatPhases(p: Phases, r: Results): string[] {
  const out = [
    "",
    `## Phases of mini-docker run /bin/true: MINI_DOCKER_TRACE=1, ${p.runs} runs, medians`,
    "",
    table(
      ["phase", "thread", "ms after main.ts", "min", "max"],
      p.rows.map((row) => [
        row.phase,
        row.thread === "main" ? "main" : "container's",
        ms(row.offsetMs.median),
        ms(row.offsetMs.min),
        ms(row.offsetMs.max),
      ]),
      [false, false, true, true, true],
    ),
    "",
    `Before main.ts: Deno's own boot, \`deno run\` of an empty program, ${
      ms(p.denoBootMs.median)
    } ms (spawn to reap, median); main.ts runs ${
      ms(p.mainTsMs)
    } ms after the process starts (median; each run's start is known to 10 ms). The whole traced run, spawn to reap: ${
      ms(p.wallMs.median)
    } ms. The main thread waited ${
      ms(p.joinWaitMs)
    } ms (median) for the container's thread to finish its first phase ("thread prepared" minus "gate, watcher, seccomp"). The container's thread's lines carry up to ±10 ms each run (it estimates the process start on its own, from /proc); their medians over ${p.runs} runs do not.`,
    "",
    `### Components: ${p.probes} fresh processes (bench/components.ts), ${p.repeats} repeats each`,
    "",
    table(
      ["component", "runs on", "first in a process ms", "repeated ms", "n"],
      p.components.map((c) => [
        c.label,
        c.where,
        c.firstMs === undefined ? "" : ms2(c.firstMs),
        ms2(c.repeatMs),
        String(c.n),
      ]),
      [false, false, true, true, true],
    ),
    "",
    `Docker's profile compiles to ${p.seccompInstructions} BPF instructions here; cgroup driver ${p.cgroupDriver}.`,
  ];
  const cost = confinementCost(p);
  out.push(
    "",
    table(
      ["added start-up cost: capabilities + seccomp + devices", "ms", "on the critical path ms"],
      [
        ...cost.parts.map((x) => [x.label, ms2(x.ms), ms2(x.criticalMs)]),
        ["total", ms2(cost.totalMs), ms2(cost.criticalMs)],
      ],
      [false, true, true],
    ),
    "",
    `Goal, under 2 ms added on the critical path: ${ms2(cost.criticalMs)} ms, ${
      cost.criticalMs < 2 ? "met" : "NOT met"
    }.`,
  );
  const median = (id: string) => r.startup?.find((x) => x.id === id)?.wallMs.median ?? NaN;
  const seccomp = median("mini-docker") - median("mini-docker-unconfined");
  if (Number.isFinite(seccomp)) {
    out.push(
      `End to end (start-up table): mini-docker run minus --security-opt seccomp=unconfined, ${
        ms2(seccomp)
      } ms (seccomp alone: resolve, compile, install, and the filter on every system call).`,
    );
  }
  return out;
}

const COLORS: Record<string, string> = {
  "mini-docker": "#d62728",
  floor: "#7f7f7f",
  bwrap: "#8c564b",
  runc: "#1f77b4",
  crun: "#2ca02c",
  podman: "#9467bd",
  deno: "#bcbd22",
};

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

interface Bar {
  label: string;
  value: number;
  min?: number;
  max?: number;
  color: string;
  text: string;
}

/** One horizontal bar panel; returns its SVG and height. */
function panel(title: string, bars: Bar[], y0: number, width: number): { svg: string; h: number } {
  const labelW = 260;
  const barH = 18;
  const gap = 6;
  const plotW = width - labelW - 170;
  // The scale follows the medians: an outlier's whisker stops at the edge (its max is printed).
  const top = Math.max(...bars.map((b) => b.value).filter(Number.isFinite), 1e-9) * 1.15;
  const x = (v: number) => labelW + (Math.min(v, top) / top) * plotW;
  const parts = [
    `<text x="10" y="${y0 + 16}" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  bars.forEach((b, i) => {
    const y = y0 + 28 + i * (barH + gap);
    parts.push(
      `<text x="${labelW - 8}" y="${y + 13}" font-size="12" text-anchor="end">${
        esc(b.label)
      }</text>`,
    );
    if (!Number.isFinite(b.value)) {
      parts.push(
        `<text x="${labelW + 4}" y="${y + 13}" font-size="12" fill="#d62728">failed</text>`,
      );
      return;
    }
    parts.push(
      `<rect x="${labelW}" y="${y}" width="${
        Math.max(1, x(b.value) - labelW).toFixed(1)
      }" height="${barH}" fill="${b.color}"/>`,
    );
    if (b.min !== undefined && b.max !== undefined && Number.isFinite(b.max)) {
      const my = y + barH / 2;
      parts.push(
        `<line x1="${x(b.min).toFixed(1)}" y1="${my}" x2="${
          x(b.max).toFixed(1)
        }" y2="${my}" stroke="#000" stroke-width="1"/>`,
        `<line x1="${x(b.max).toFixed(1)}" y1="${my - 4}" x2="${x(b.max).toFixed(1)}" y2="${
          my + 4
        }" stroke="#000" stroke-width="1"/>`,
      );
    }
    const max = b.max !== undefined && Number.isFinite(b.max) ? b.max : undefined;
    const tx = Math.max(x(b.value), max === undefined ? 0 : x(max));
    const text = max !== undefined && max > top ? `${b.text} (max ${ms(max)})` : b.text;
    parts.push(`<text x="${(tx + 5).toFixed(1)}" y="${y + 13}" font-size="12">${esc(text)}</text>`);
  });
  return { svg: parts.join("\n"), h: 28 + bars.length * (barH + gap) + 16 };
}

/** The SVG chart: start-up medians (min-max whiskers), scale, and the start-up phases. */
export function formatSvg(r: Results): string {
  const width = 900;
  const parts: string[] = [];
  let y = 10;
  const title =
    `mini-docker benchmark, ${r.date}, ${r.machine.cpus} CPUs, kernel ${r.machine.kernel}`;
  parts.push(`<text x="10" y="${y + 14}" font-size="15" font-weight="bold">${esc(title)}</text>`);
  y += 30;
  if (r.startup !== undefined) {
    const p = panel(
      "Start-up of /bin/true: median wall time, ms (whisker: min to max)",
      r.startup.map((x) => ({
        label: x.label,
        value: x.failure === undefined ? x.wallMs.median : NaN,
        min: x.wallMs.min,
        max: x.wallMs.max,
        color: COLORS[x.family] ?? "#333",
        text: `${ms(x.wallMs.median)} ms`,
      })),
      y,
      width,
    );
    parts.push(p.svg);
    y += p.h;
  }
  if (r.scale !== undefined) {
    const p = panel(
      `${r.settings.scaleCount} containers at once: seconds until all are running`,
      r.scale.map((x) => ({
        label: x.label,
        value: x.failure === undefined ? x.allRunningMs.median / 1000 : NaN,
        color: COLORS[x.id] ?? "#333",
        text: `${s2(x.allRunningMs.median)} s (CPU ${s2(x.cpuMs.median)} s)`,
      })),
      y,
      width,
    );
    parts.push(p.svg);
    y += p.h;
  }
  if (r.phases !== undefined && r.phases.rows.length > 0) {
    const p = panel(
      "mini-docker run /bin/true: ms after main.ts (median; red: main thread, orange: the container's)",
      r.phases.rows.map((row) => ({
        label: row.phase,
        value: row.offsetMs.median,
        color: row.thread === "main" ? "#d62728" : "#ff7f0e",
        text: `${ms(row.offsetMs.median)} ms`,
      })),
      y,
      width,
    );
    parts.push(p.svg);
    y += p.h;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}
