import assert from "node:assert/strict";
import { formatStatsReport, type HostResources, resourcesFromFlags } from "./resources.ts";
import { UserError } from "../base/errors.ts";

const MiB = 1024 ** 2;

/** A host described in the test, not read from this machine: 2 CPUs, 1 memory node. */
function host(opts: { swap?: boolean; cpus?: string } = {}): HostResources {
  return {
    cpuCount: () => 2,
    onlineCpus: () => opts.cpus ?? "0-1",
    onlineMems: () => "0",
    swapAccounting: () => opts.swap ?? true,
  };
}

const withSwap = host({ swap: true });
const noSwap = host({ swap: false });

/** Asserts a UserError with exit code 125 whose message matches. */
function rejects(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, String(e));
    assert.equal(e.exitCode, 125);
    assert.match(e.message, message);
    assert.doesNotMatch(e.message, /\n|\.$/);
    return true;
  });
}

Deno.test("no flags: no resources", () => {
  assert.deepEqual(resourcesFromFlags({}, withSwap), {});
});

Deno.test("--memory: bytes; swap defaults to twice the memory where swap is accounted", () => {
  assert.deepEqual(resourcesFromFlags({ memory: "50m" }, withSwap), {
    memory: { limit: 50 * MiB, swap: 100 * MiB },
  });
  assert.deepEqual(resourcesFromFlags({ memory: "50m" }, noSwap), {
    memory: { limit: 50 * MiB },
  });
  // 0 means "no limit", as in Docker.
  assert.deepEqual(resourcesFromFlags({ memory: "0" }, withSwap), {});
  assert.deepEqual(resourcesFromFlags({ memory: "6m" }, noSwap), { memory: { limit: 6 * MiB } });
  rejects(
    () => resourcesFromFlags({ memory: "1m" }, withSwap),
    /^Invalid --memory "1m": minimum memory limit allowed is 6MB$/,
  );
  rejects(() => resourcesFromFlags({ memory: "6291455" }, withSwap), /minimum memory limit/);
});

Deno.test("--memory-swap: memory plus swap, -1 unlimited, equal to --memory = no swap", () => {
  assert.deepEqual(resourcesFromFlags({ memory: "50m", memorySwap: "80m" }, withSwap), {
    memory: { limit: 50 * MiB, swap: 80 * MiB },
  });
  assert.deepEqual(resourcesFromFlags({ memory: "50m", memorySwap: "50m" }, withSwap), {
    memory: { limit: 50 * MiB, swap: 50 * MiB },
  });
  assert.deepEqual(resourcesFromFlags({ memory: "50m", memorySwap: "-1" }, withSwap), {
    memory: { limit: 50 * MiB, swap: -1 },
  });
  // -1 needs nothing to apply: it is also fine alone and without swap accounting.
  assert.deepEqual(resourcesFromFlags({ memorySwap: "-1" }, noSwap), { memory: { swap: -1 } });
  assert.deepEqual(resourcesFromFlags({ memory: "50m", memorySwap: "-1" }, noSwap), {
    memory: { limit: 50 * MiB, swap: -1 },
  });
  // 0 means "not set": the default applies.
  assert.deepEqual(resourcesFromFlags({ memory: "50m", memorySwap: "0" }, withSwap), {
    memory: { limit: 50 * MiB, swap: 100 * MiB },
  });
  rejects(
    () => resourcesFromFlags({ memory: "50m", memorySwap: "20m" }, withSwap),
    /^Invalid --memory-swap "20m": minimum memoryswap limit should be larger than memory limit \(--memory "50m"\)$/,
  );
  rejects(
    () => resourcesFromFlags({ memorySwap: "100m" }, withSwap),
    /^Invalid --memory-swap "100m": it needs --memory/,
  );
  rejects(
    () => resourcesFromFlags({ memory: "50m", memorySwap: "100m" }, noSwap),
    /^Cannot apply --memory-swap "100m": swap accounting is not enabled on this host/,
  );
  rejects(
    () => resourcesFromFlags({ memory: "50m", memorySwap: "lots" }, withSwap),
    /^Cannot parse memory size "lots"/,
  );
});

Deno.test("--memory-reservation: a soft limit of at least 6 MiB, at most --memory", () => {
  assert.deepEqual(resourcesFromFlags({ memoryReservation: "20m" }, withSwap), {
    memory: { reservation: 20 * MiB },
  });
  assert.deepEqual(
    resourcesFromFlags({ memory: "50m", memoryReservation: "50m" }, noSwap),
    { memory: { limit: 50 * MiB, reservation: 50 * MiB } },
  );
  rejects(
    () => resourcesFromFlags({ memoryReservation: "1m" }, withSwap),
    /^Invalid --memory-reservation "1m": minimum memory reservation allowed is 6MB$/,
  );
  rejects(
    () => resourcesFromFlags({ memory: "50m", memoryReservation: "60m" }, withSwap),
    /^Invalid --memory-reservation "60m": minimum memory limit can not be less than memory reservation limit/,
  );
});

Deno.test("--cpus: a CFS quota per 100 ms", () => {
  assert.deepEqual(resourcesFromFlags({ cpus: "0.5" }, withSwap), {
    cpu: { quota: 50_000, period: 100_000 },
  });
  rejects(() => resourcesFromFlags({ cpus: "3" }, withSwap), /Invalid CPU count "3"/);
});

Deno.test("--cpu-shares: the v1 weight, kept as given (v2 converts it)", () => {
  assert.deepEqual(resourcesFromFlags({ cpuShares: "512" }, withSwap), { cpu: { shares: 512 } });
  assert.deepEqual(resourcesFromFlags({ cpuShares: "0" }, withSwap), {});
  rejects(() => resourcesFromFlags({ cpuShares: "1" }, withSwap), /Invalid CPU shares "1"/);
});

Deno.test("--cpuset-cpus and --cpuset-mems: checked against the host, canonical", () => {
  assert.deepEqual(
    resourcesFromFlags({ cpusetCpus: "1,0", cpusetMems: "0", cpus: "1" }, withSwap),
    { cpu: { quota: 100_000, period: 100_000, cpus: "0-1", mems: "0" } },
  );
  assert.deepEqual(
    resourcesFromFlags({ cpusetCpus: "0-3,5" }, host({ cpus: "0-7" })),
    { cpu: { cpus: "0-3,5" } },
  );
  rejects(
    () => resourcesFromFlags({ cpusetCpus: "99" }, withSwap),
    /^Invalid --cpuset-cpus "99": CPU 99 not available on this host, which has CPUs 0-1$/,
  );
  rejects(
    () => resourcesFromFlags({ cpusetMems: "1" }, withSwap),
    /^Invalid --cpuset-mems "1": memory node 1 not available on this host, which has memory nodes 0$/,
  );
  rejects(() => resourcesFromFlags({ cpusetCpus: "0-" }, withSwap), /Cannot parse --cpuset-cpus/);
});

Deno.test("--pids-limit: a count, -1 (or 0) unlimited", () => {
  assert.deepEqual(resourcesFromFlags({ pidsLimit: "20" }, withSwap), { pids: { limit: 20 } });
  assert.deepEqual(resourcesFromFlags({ pidsLimit: "-1" }, withSwap), { pids: { limit: -1 } });
  assert.deepEqual(resourcesFromFlags({ pidsLimit: "0" }, withSwap), { pids: { limit: -1 } });
  rejects(() => resourcesFromFlags({ pidsLimit: "x" }, withSwap), /Cannot parse PIDs limit "x"/);
});

Deno.test("the host is only asked what a flag needs", () => {
  const asked: string[] = [];
  const spy: HostResources = {
    cpuCount: () => (asked.push("cpuCount"), 2),
    onlineCpus: () => (asked.push("onlineCpus"), "0-1"),
    onlineMems: () => (asked.push("onlineMems"), "0"),
    swapAccounting: () => (asked.push("swapAccounting"), false),
  };
  resourcesFromFlags({ pidsLimit: "5", cpuShares: "100" }, spy);
  assert.deepEqual(asked, []);
  resourcesFromFlags({ memory: "10m", cpusetCpus: "0" }, spy);
  assert.deepEqual(asked, ["swapAccounting", "onlineCpus"]);
});

Deno.test("the stats report: aligned lines, n/a for counters the kernel lacks", () => {
  const who = { id: "0123456789abcdef0123", name: "web" };
  const full = formatStatsReport(
    {
      memoryPeak: 33.5 * MiB,
      cpuUserUsec: 1_234_000,
      cpuSystemUsec: 56_000,
      cpuPeriods: 40,
      cpuThrottledPeriods: 12,
      cpuThrottledUsec: 610_000,
      pidsPeak: 20,
      oomKills: 1,
    },
    { memory: { limit: 50 * MiB }, cpu: { quota: 50_000, period: 100_000 }, pids: { limit: 20 } },
    who,
  );
  assert.equal(
    full,
    [
      "mini-docker: resources used by container web (0123456789ab):",
      "  memory peak    33.5MiB of 50MiB limit",
      "  CPU time       1.23 s user, 0.06 s system",
      "  CPU throttled  12 of 40 periods, 0.61 s",
      "  PIDs peak      20 of 20 limit",
      "  OOM kills      1",
    ].join("\n"),
  );
  const bare = formatStatsReport({ cpuUsageUsec: 2_000_000 }, {}, who);
  assert.equal(
    bare,
    [
      "mini-docker: resources used by container web (0123456789ab):",
      "  memory peak    n/a",
      "  CPU time       2.00 s in all",
      "  CPU throttled  none (no --cpus limit)",
      "  PIDs peak      n/a",
      "  OOM kills      n/a",
    ].join("\n"),
  );
  assert.match(
    formatStatsReport({ memoryPeak: 1024, pidsPeak: 3 }, { pids: { limit: -1 } }, who),
    /memory peak {4}1KiB \(no limit\)\n.*\n.*\n {2}PIDs peak {6}3\n/,
  );
});
