/**
 * The results as one text report (Markdown tables, so that the README can quote them), as
 * JSON, and as an SVG bar chart written by hand (no dependency).
 */
import type { HyperfineRow } from "./hyperfine.ts";
import type { CpuLimitRow, MemoryLimitRow } from "./limits.ts";
import type { MemoryRow } from "./memory.ts";
import type { Profile } from "./profile.ts";
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
  profile?: Profile;
  /** Tools that failed to run their payload, with why. */
  failures: string[];
  /** Machine load before and after (1-minute load average, CPU pressure avg60). */
  load: Record<string, string>;
}

const ms = (x: number) => (Number.isFinite(x) ? x < 10 ? x.toFixed(1) : x.toFixed(0) : "-");
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
  out.push(`Namespaces for every tool: ${r.namespaces.join(", ")} (no network namespace).`);

  if (r.startup !== undefined) {
    const md = r.startup.find((x) => x.id === "mini-docker")?.wallMs.median ?? NaN;
    const runc = r.startup.find((x) => x.id === "runc")?.wallMs.median ?? NaN;
    out.push(
      "",
      `## Start-up: /bin/true, ${r.settings.runs} runs each after ${r.settings.warmup} warm-ups, round-robin`,
      "",
      table(
        ["tool", "median ms", "min", "max", "CPU ms", "peak RSS MiB", "x mini-docker", "x runc"],
        r.startup.map((x) =>
          x.failure !== undefined ? [x.label, "FAILED", "", "", "", "", "", ""] : [
            x.label,
            ms(x.wallMs.median),
            ms(x.wallMs.min),
            ms(x.wallMs.max),
            ms(x.cpuMs.median),
            mib(x.peakRssKiB),
            ratio(x.wallMs.median, md),
            ratio(x.wallMs.median, runc),
          ]
        ),
        [false, true, true, true, true, true, true, true],
      ),
      "",
      Number.isFinite(md) && Number.isFinite(runc)
        ? `Goal, mini-docker median <= runc median: ${ms(md)} ms vs ${ms(runc)} ms, ratio ${
          ratio(md, runc)
        }: ${md <= runc ? "met" : "NOT met"}.`
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

  if (r.profile !== undefined) {
    const p = r.profile;
    out.push(
      "",
      "## Where mini-docker's start-up goes",
      "",
      table(
        ["component (same trials as the start-up table)", "median ms", "min", "CPU ms"],
        p.components.map((c) =>
          c.failure !== undefined ? [c.label, "FAILED", "", ""] : [
            c.label,
            ms(c.wallMs.median),
            ms(c.wallMs.min),
            ms(c.cpuMs.median),
          ]
        ),
        [false, true, true, true],
      ),
      "",
      ...p.graphs.map((g) =>
        `Module graph of the ${g.entry}: ${g.modules} local modules, ${
          (g.localBytes / 1024).toFixed(0)
        } KiB; node built-ins: ${g.nodeBuiltins.join(", ") || "none"}; npm: ${
          g.npmPackages.join(", ") || "none"
        }`
      ),
    );
    if (p.perfRuns > 0) {
      out.push(
        "",
        `Timeline under perf trace (kernel tracepoints, little overhead; median of ${p.perfRuns} run(s), total ${
          ms(p.perfTotalMs)
        } ms):`,
        "",
        table(
          ["phase", "ms", "share"],
          p.perfPhases.map((ph) => [
            ph.label,
            ms(ph.ms),
            `${((ph.ms / p.perfTotalMs) * 100).toFixed(0)} %`,
          ]),
          [false, true, true],
        ),
      );
    } else if (p.perfSkipped !== undefined) {
      out.push("", `No perf timeline: ${p.perfSkipped}`);
    }
    if (p.tracedRuns > 0) {
      out.push(
        "",
        `Finer timeline under strace -f (median of ${p.tracedRuns} run(s), total ${
          ms(p.tracedTotalMs)
        } ms; strace slows every traced call):`,
        "",
        table(
          ["phase", "ms", "share", "files opened"],
          p.phases.map((ph) => [
            ph.label,
            ms(ph.ms),
            `${((ph.ms / p.tracedTotalMs) * 100).toFixed(0)} %`,
            Object.entries(ph.opened ?? {}).map(([k, v]) => `${v} ${k}`).join(", "),
          ]),
          [false, true, true, false],
        ),
      );
    }
    if (p.straceSkipped !== undefined) out.push("", `No ${p.straceSkipped}`);
    if (p.failure !== undefined) out.push("", `Profile: ${p.failure}`);
  }

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
  const perf = r.profile !== undefined && r.profile.perfRuns > 0;
  if (r.profile !== undefined && (perf || r.profile.tracedRuns > 0)) {
    const p = panel(
      `mini-docker run /bin/true under ${perf ? "perf trace" : "strace"}: ms per phase`,
      (perf ? r.profile.perfPhases : r.profile.phases).map((ph) => ({
        label: ph.id,
        value: ph.ms,
        color: ph.id.startsWith("init") ? "#ff7f0e" : ph.id === "payload" ? "#7f7f7f" : "#d62728",
        text: `${ms(ph.ms)} ms`,
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
