/**
 * `deno task bench`: mini-docker side by side with unshare, bwrap, runc, crun and podman, in one
 * run, on one busybox root filesystem. Installs what it lacks (Debian packages), measures
 * start-up, scale, memory, limits, and the phases of mini-docker's start-up with the cost of its
 * confinement, prints one report and writes it as Markdown, JSON and SVG under bench/results/.
 * Exits 1 when a tool failed to run its payload. Benchmarks are not tests: nothing here asserts a
 * timing. See bench/README.md.
 */
import { detectLayout } from "../cgroups/manager.ts";
import { installPeers, versions } from "./peers.ts";
import { killSpawned, setSubreaper } from "./proc.ts";
import { cpuLimit, memoryLimitOverhead } from "./limits.ts";
import { memory } from "./memory.ts";
import { phases } from "./phases.ts";
import { hyperfine } from "./hyperfine.ts";
import { formatReport, formatSvg, type Results } from "./report.ts";
import { scale } from "./scale.ts";
import { startup } from "./startup.ts";
import { denoPath, launchers, REPO, startupTools } from "./tools.ts";
import { NAMESPACES, Workspace } from "./workspace.ts";

const SECTIONS = ["startup", "scale", "memory", "limits", "phases"] as const;
type Section = typeof SECTIONS[number];

const USAGE =
  `Usage: deno task bench [--quick] [--runs N] [--only SECTION,...] [--no-podman] [--hyperfine]
                       [--no-install]

Benchmarks mini-docker against unshare, bwrap, runc, crun and podman (as root). Sections:
  startup  run /bin/true: wall median/min/max, CPU, peak RSS, ratios (with and without --memory)
  scale    50 containers of "sleep 2" at once: time until all run, until all are gone, CPU
  memory   the runtime's own memory per container, with 1 and 50 containers
  limits   --cpus 0.5 accuracy from the cgroup counter; the start-up cost of a memory limit
  phases   mini-docker's start-up phases (MINI_DOCKER_TRACE) and component costs: the Worker,
           capabilities, seccomp, device rules

  --quick        fewer runs (a smoke run of a minute or two)
  --runs N       start-up runs per tool, and traced runs of the phases (default 25; 5 with
                 --quick)
  --only LIST    run only these sections (comma-separated)
  --no-podman    leave podman out (it is the slowest to install and to run)
  --hyperfine    also time the start-up rows with hyperfine (a cross-check, not interleaved)
  --no-install   do not install missing Debian packages

The report goes to stdout; bench/results/<date>.md, .json and .svg keep it.`;

interface Options {
  quick: boolean;
  runs: number;
  sections: Set<Section>;
  podman: boolean;
  install: boolean;
  hyperfine: boolean;
}

function parseArgs(args: string[]): Options | undefined {
  const o: Options = {
    quick: false,
    runs: NaN,
    sections: new Set(SECTIONS),
    podman: true,
    install: true,
    hyperfine: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--help" || a === "-h") return undefined;
    else if (a === "--quick") o.quick = true;
    else if (a === "--no-podman") o.podman = false;
    else if (a === "--no-install") o.install = false;
    else if (a === "--hyperfine") o.hyperfine = true;
    else if (a === "--runs") o.runs = Number(args[++i]);
    else if (a === "--only") {
      const list = (args[++i] ?? "").split(",");
      const bad = list.filter((s) => !(SECTIONS as readonly string[]).includes(s));
      if (bad.length > 0) {
        throw new Error(`Unknown section "${bad[0]}": use ${SECTIONS.join(", ")}`);
      }
      o.sections = new Set(list as Section[]);
    } else throw new Error(`Unknown argument "${a}" (see --help)`);
  }
  if (Number.isNaN(o.runs)) o.runs = o.quick ? 5 : 25;
  if (!Number.isInteger(o.runs) || o.runs < 1) {
    throw new Error("Invalid --runs: expected a positive integer");
  }
  return o;
}

function log(line: string): void {
  console.error(`bench: ${line}`);
}

function read(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function machine(): Results["machine"] {
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(read("/proc/cpuinfo"))?.[1] ?? "unknown CPU";
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(read("/proc/meminfo"))?.[1] ?? 0);
  return {
    cpuModel,
    cpus: navigator.hardwareConcurrency,
    memoryGiB: Math.round(memKiB / 1024 / 1024 * 10) / 10,
    kernel: read("/proc/sys/kernel/osrelease").trim(),
    os: /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(read("/etc/os-release"))?.[1] ?? "unknown",
    cgroupLayout: detectLayout(),
  };
}

function load(): string {
  const avg = read("/proc/loadavg").split(" ")[0] ?? "?";
  const pressure = /^some .*avg60=([\d.]+)/m.exec(read("/proc/pressure/cpu"))?.[1];
  return pressure === undefined ? avg : `${avg} (CPU pressure ${pressure} %)`;
}

async function main(args: string[]): Promise<number> {
  let opts: Options | undefined;
  try {
    opts = parseArgs(args);
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    return 2;
  }
  if (opts === undefined) {
    console.log(USAGE);
    return 0;
  }
  if (Deno.uid() !== 0) {
    console.error("bench: needs root (namespaces, mounts, cgroups): run it with sudo");
    return 2;
  }
  Deno.chdir(REPO);
  if (opts.install) {
    const installed = await installPeers(log);
    if (installed.length > 0) log(`installed ${installed.join(", ")}`);
  }

  const q = opts.quick;
  const settings = {
    quick: q,
    warmup: q ? 1 : 3,
    runs: opts.runs,
    rssRuns: q ? 1 : 3,
    scaleCount: 50,
    scaleRounds: q ? 1 : 3,
    memoryCounts: "1,50",
    cpuSeconds: q ? 2 : 5,
    phaseRuns: opts.runs,
    probes: q ? 3 : 10,
    probeRepeats: q ? 5 : 20,
  };
  const results: Results = {
    date: new Date().toISOString(),
    machine: machine(),
    versions: await versions(denoPath()),
    settings,
    namespaces: NAMESPACES,
    failures: [],
    load: { before: load() },
  };

  log("preparing the rootfs, OCI bundles and podman image");
  const ws = await Workspace.create(log);
  let disposed: Promise<void> | undefined;
  const dispose = () => disposed ??= ws[Symbol.asyncDispose]();
  // Ctrl-C or SIGTERM: remove everything before going.
  const onSignal = async () => {
    log("interrupted: cleaning up");
    killSpawned();
    await dispose();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    let podman = opts.podman && opts.sections.has("startup");
    if (podman) {
      try {
        await ws.importPodmanImage();
      } catch (err) {
        results.failures.push(`podman: cannot import the rootfs: ${(err as Error).message}`);
        podman = false;
      }
    }
    const L = launchers(ws);
    setSubreaper(true);
    const s = opts.sections;
    if (s.has("startup")) {
      const tools = await startupTools(ws, { podman });
      log(`start-up: ${tools.length} rows, ${settings.warmup} + ${settings.runs} rounds`);
      results.startup = await startup(tools, {
        warmup: settings.warmup,
        runs: settings.runs,
        rssRuns: settings.rssRuns,
        logDir: `${ws.dir}/logs`,
        log,
      });
      results.memoryLimit = memoryLimitOverhead(results.startup);
      if (opts.hyperfine) {
        log("hyperfine cross-check of the start-up rows");
        const ok = tools.filter((t) => results.startup!.some((r) => r.id === t.id && !r.failure));
        results.hyperfine = await hyperfine(ok, {
          warmup: settings.warmup,
          runs: settings.runs,
          dir: ws.dir,
          log,
        });
      }
      for (const row of results.startup) {
        if (row.failure !== undefined) results.failures.push(`${row.label}: ${row.failure}`);
      }
    }
    if (s.has("scale")) {
      results.scale = await scale(ws, L, {
        count: settings.scaleCount,
        rounds: settings.scaleRounds,
        log,
      });
      for (const row of results.scale) {
        if (row.failure !== undefined) results.failures.push(`scale, ${row.label}: ${row.failure}`);
      }
    }
    if (s.has("memory")) {
      results.memory = await memory(ws, L, { counts: [1, settings.scaleCount], log });
      for (const row of results.memory) {
        if (row.failure !== undefined) {
          results.failures.push(`memory, ${row.label} x${row.containers}: ${row.failure}`);
        }
      }
    }
    if (s.has("limits")) {
      results.cpuLimit = await cpuLimit(ws, L, { seconds: settings.cpuSeconds, log });
      for (const row of results.cpuLimit) {
        if (row.failure !== undefined) {
          results.failures.push(`limits, ${row.label}: ${row.failure}`);
        }
      }
    }
    if (s.has("phases")) {
      log(`phases: ${settings.phaseRuns} traced runs of mini-docker run /bin/true`);
      results.phases = await phases(ws, L, {
        runs: settings.phaseRuns,
        probes: settings.probes,
        repeats: settings.probeRepeats,
        denoBoot: results.startup?.find((x) => x.id === "deno-empty" && !x.failure)?.wallMs,
        log,
      });
      if (results.phases.failure !== undefined) {
        results.failures.push(`phases: ${results.phases.failure}`);
      }
    }
  } finally {
    setSubreaper(false);
    results.load.after = load();
    await dispose();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }

  const report = formatReport(results);
  console.log(report);
  const dir = `${REPO}/bench/results`;
  Deno.mkdirSync(dir, { recursive: true });
  const stamp = results.date.replace(/[:.]/g, "-");
  Deno.writeTextFileSync(`${dir}/${stamp}.json`, JSON.stringify(results, null, 2) + "\n");
  Deno.writeTextFileSync(`${dir}/${stamp}.svg`, formatSvg(results));
  Deno.writeTextFileSync(`${dir}/${stamp}.md`, report + "\n");
  log(`wrote bench/results/${stamp}.{json,svg,md}`);
  if (results.failures.length > 0) {
    log(`${results.failures.length} failure(s): ${results.failures.join("; ")}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main(Deno.args);
  } catch (err) {
    // Setup failed (apt-get, the rootfs, a section's own error): everything is cleaned up.
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  }
  Deno.exit(code);
}
