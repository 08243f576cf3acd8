/**
 * The component probe of the phases section (phases.ts), run as a fresh process:
 *
 *   deno run -A bench/components.ts OUT.json CGROUP_PARENT SECCOMP_CACHE_DIR REPEATS
 *
 * It measures, in this order, what mini-docker pays once per process (the first call) and again
 * `REPEATS` times (the steady state), and writes them to OUT.json:
 *
 * - `new Worker` of container/thread.ts: how long the constructor blocks its caller, and how
 *   long until the thread's first message ("booted"): first of all, as main.ts does;
 * - Docker's seccomp profile read and resolved for Docker's 14 capabilities (security/policy.ts);
 * - the filter compiled with the cache (what container/start.ts's `compileFilter` does: the first
 *   call imports the module and maps libseccomp), and without it (libseccomp's whole work);
 * - on a fresh Worker each time (components_thread.ts): the bounding set dropped, the filter
 *   installed, the final capset;
 * - the container's cgroup created and destroyed by this host's driver with Docker's device
 *   rules and without, alternately, under CGROUP_PARENT (a throwaway parent).
 */
import { cgroupDriver } from "../cgroups/manager.ts";
import { capabilityMask, DEFAULT_CAPABILITIES } from "../security/capabilities.ts";
import { DEFAULT_DEVICE_RULES } from "../security/policy.ts";
import type { ConfineJob, ConfineTimes } from "./components_thread.ts";

/** One probe process's measurements, ms. */
export interface ProbeResult {
  worker: { firstBlockMs: number; firstBootMs: number; blockMs: number[]; bootMs: number[] };
  resolve: { firstMs: number; ms: number[] };
  compileCached: { firstMs: number; ms: number[] };
  compileUncached: { ms: number[] };
  /** Instructions of the compiled program. */
  instructions: number;
  confine: ConfineTimes[];
  cgroup: {
    driver: string;
    plain: { createMs: number[]; destroyMs: number[] };
    devices: { createMs: number[]; destroyMs: number[] };
  };
}

const THREAD = new URL("../container/thread.ts", import.meta.url).href;
const CONFINE = new URL("./components_thread.ts", import.meta.url).href;

/** Creates a Worker; returns how long `new Worker` blocked and when its first message came. */
async function timeWorker(): Promise<{ blockMs: number; bootMs: number }> {
  const t0 = performance.now();
  const worker = new Worker(THREAD, { type: "module" });
  const blockMs = performance.now() - t0;
  await new Promise((resolve) => worker.onmessage = resolve);
  const bootMs = performance.now() - t0;
  worker.terminate();
  return { blockMs, bootMs };
}

/** Runs one job on a fresh Worker. */
async function confineOnce(job: ConfineJob): Promise<ConfineTimes> {
  const worker = new Worker(CONFINE, { type: "module" });
  try {
    const reply = await new Promise<ConfineTimes | { failed: string }>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
      };
      worker.postMessage(job);
    });
    if ("failed" in reply) throw new Error(`Cannot confine a thread: ${reply.failed}`);
    return reply;
  } finally {
    worker.terminate();
  }
}

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const value = f();
  return [value, performance.now() - t0];
}

async function probe(parent: string, cacheDir: string, repeats: number): Promise<ProbeResult> {
  // First of all, as in main.ts.
  const first = await timeWorker();
  const workers = [];
  for (let i = 0; i < repeats; i++) workers.push(await timeWorker());

  // security/policy.ts: the profile module, Docker's profile read and resolved.
  const caps = DEFAULT_CAPABILITIES;
  let t0 = performance.now();
  const p = await import("../security/seccomp_profile.ts");
  const filter = p.resolveSeccomp(p.defaultSeccompProfile(), { capabilities: caps });
  const resolveFirst = performance.now() - t0;
  const resolveMs = [];
  for (let i = 0; i < repeats; i++) {
    resolveMs.push(
      time(() => p.resolveSeccomp(p.defaultSeccompProfile(), { capabilities: caps }))[1],
    );
  }

  // container/start.ts, compileFilter: the module, the cache directory, the compile (a hit).
  t0 = performance.now();
  const s = await import("../security/seccomp.ts");
  Deno.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  const compiled = s.compileSeccomp(filter, { cacheDir });
  const compileFirst = performance.now() - t0;
  const cachedMs = [];
  for (let i = 0; i < repeats; i++) {
    cachedMs.push(time(() => s.compileSeccomp(filter, { cacheDir }))[1]);
  }
  const uncachedMs = [];
  for (let i = 0; i < Math.min(repeats, 3); i++) {
    uncachedMs.push(time(() => s.compileSeccomp(filter))[1]);
  }

  const mask = capabilityMask(caps);
  const confine = [];
  for (let i = 0; i < repeats; i++) {
    confine.push(
      await confineOnce({
        bounding: mask,
        caps: mask,
        program: compiled.program,
        flags: compiled.flags,
      }),
    );
  }

  const driver = cgroupDriver({ parent });
  const plain = { createMs: [] as number[], destroyMs: [] as number[] };
  const devices = { createMs: [] as number[], destroyMs: [] as number[] };
  for (let i = 0; i < repeats; i++) {
    // Alternately first, so that neither always runs on a warm parent.
    const order = i % 2 === 0 ? [plain, devices] : [devices, plain];
    for (const variant of order) {
      const resources = variant === devices ? { devices: [...DEFAULT_DEVICE_RULES] } : {};
      const name = `c${Deno.pid}-${i}-${variant === devices ? "d" : "p"}`;
      const [cgroup, createMs] = time(() => driver.create(name, resources));
      const t = performance.now();
      await cgroup.destroy();
      variant.createMs.push(createMs);
      variant.destroyMs.push(performance.now() - t);
    }
  }

  return {
    worker: {
      firstBlockMs: first.blockMs,
      firstBootMs: first.bootMs,
      blockMs: workers.map((w) => w.blockMs),
      bootMs: workers.map((w) => w.bootMs),
    },
    resolve: { firstMs: resolveFirst, ms: resolveMs },
    compileCached: { firstMs: compileFirst, ms: cachedMs },
    compileUncached: { ms: uncachedMs },
    instructions: compiled.program.length / 8,
    confine,
    cgroup: { driver: `v${driver.version}`, plain, devices },
  };
}

if (import.meta.main) {
  const [out, parent, cacheDir, repeats] = Deno.args;
  if (out === undefined || parent === undefined || cacheDir === undefined) {
    console.error("Usage: components.ts OUT.json CGROUP_PARENT SECCOMP_CACHE_DIR [REPEATS]");
    Deno.exit(2);
  }
  const result = await probe(parent, cacheDir, Number(repeats ?? 10));
  Deno.writeTextFileSync(out, JSON.stringify(result) + "\n");
  Deno.exit(0);
}
