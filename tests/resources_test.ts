/**
 * Resource limits end to end: real containers, the kernel's own cgroup files read back while
 * they run, and workloads that hit the limits. Runs on cgroup v1 (this machine) and v2 (the
 * cgroup2 VM, `deno task test:cgroup2`): every check reads the file names of both.
 */
import assert from "node:assert/strict";
import { startRunning, stopRunning, TestEnv } from "./helpers.ts";
import { type Cgroup, cgroupDriver } from "../cgroups/manager.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const MiB = 1024 ** 2;

/** The first of `files` that exists in one of the cgroup's directories, and its content. */
function readCgroup(cgroup: Cgroup, ...files: string[]): { file: string; text: string } {
  for (const file of files) {
    for (const dir of cgroup.paths) {
      try {
        return { file, text: Deno.readTextFileSync(`${dir}/${file}`).trim() };
      } catch { /* not in this hierarchy, or not on this version */ }
    }
  }
  throw new Error(`none of ${files.join(", ")} in ${cgroup.paths.join(" ")}`);
}

/** A flat-keyed cgroup file ("max 3\nmax.imposed 0") as a map. */
function keyed(text: string): Map<string, number> {
  return new Map(
    text.split("\n").map((line) => line.trim().split(/\s+/)).map(([k, v]) => [k!, Number(v)]),
  );
}

/**
 * A shell as PID 1 that exits 0 on SIGTERM (it would ignore it otherwise) and says "ready" once
 * its trap is set and `script` has run.
 */
const untilTerm = (script: string) => [
  "/bin/sh",
  "-c",
  `trap 'exit 0' TERM\n${script}\necho ready\nwhile :; do sleep 0.1; done`,
];

Deno.test("memory limit, swap and reservation: the cgroup's files read back", opts, async () => {
  await using t = await TestEnv.create();
  const driver = cgroupDriver({ parent: t.cgroupParent });
  const swapAccounted = driver.swapAccounting();
  const v1Unlimited = /^9223372036854\d+$/;
  // [flags, memory limit, memory+swap (v1 memsw), swap alone (v2 swap.max), reservation]
  const cases: [string[], number, string | RegExp, string, number][] = [
    [["-m", "50m", "--memory-swap", "80m", "--memory-reservation", "20m"], 50, "80", "30", 20],
    // Unset: as much swap as memory (2 x --memory), where swap is accounted.
    [["-m", "50m"], 50, "100", "50", 0],
    // Equal to --memory: no swap at all.
    [["-m", "50m", "--memory-swap", "50m"], 50, "50", "0", 0],
    // -1: unlimited swap.
    [["-m", "50m", "--memory-swap", "-1"], 50, v1Unlimited, "max", 0],
  ];
  for (const [flags, limit, memsw, swapMax, reservation] of cases) {
    if (!swapAccounted && flags.includes("--memory-swap")) continue;
    await using c = await startRunning(t, [...flags, ...untilTerm("true")]);
    const read = (...files: string[]) => readCgroup(c.cgroup, ...files).text;
    assert.equal(read("memory.max", "memory.limit_in_bytes"), String(limit * MiB), flags.join(" "));
    const low = read("memory.low", "memory.soft_limit_in_bytes");
    if (reservation > 0) assert.equal(low, String(reservation * MiB));
    if (swapAccounted) {
      const swap = readCgroup(c.cgroup, "memory.swap.max", "memory.memsw.limit_in_bytes");
      if (swap.file === "memory.swap.max") {
        assert.equal(swap.text, swapMax === "max" ? "max" : String(Number(swapMax) * MiB));
      } else if (memsw instanceof RegExp) {
        assert.match(swap.text, memsw);
      } else {
        assert.equal(swap.text, String(Number(memsw) * MiB), flags.join(" "));
      }
    }
    await stopRunning(c);
  }
});

Deno.test("--pids-limit 20 stops a fork storm while the host keeps forking", opts, async () => {
  await using t = await TestEnv.create();
  // A subshell forks sleeps until a fork fails (busybox sh then gives up), while PID 1 stays
  // and becomes `sleep` itself with exec (no fork needed at the limit).
  await using c = await startRunning(t, [
    "--pids-limit",
    "20",
    "/bin/sh",
    "-c",
    "(for i in $(seq 100); do sleep 60 & echo started $i; done); echo forker exited $?; exec sleep 60",
  ]);
  await c.waitOutput(/forker exited/);
  const read = (...files: string[]) => readCgroup(c.cgroup, ...files).text;
  assert.equal(read("pids.max"), "20");
  const current = Number(read("pids.current"));
  assert.ok(current >= 15 && current <= 20, `${current} tasks in the container`);
  const refused = keyed(read("pids.events")).get("max") ?? 0;
  assert.ok(refused >= 1, "the kernel refused forks");
  // The host is not limited: it spawns processes while the container is at its limit.
  const host = await Promise.all(
    Array.from({ length: 20 }, () => new Deno.Command("/bin/true").output()),
  );
  assert.ok(host.every((o) => o.success), "the host could not fork");
  assert.equal(Number(read("pids.current")), current, "the container stayed at its limit");
  // Two Ctrl-C: the second kills the container (sleep as PID 1 ignores SIGINT).
  c.signal("SIGINT");
  await new Promise((r) => setTimeout(r, 100));
  c.signal("SIGINT");
  const r = await c.done();
  assert.equal(r.code, 137, r.stderr);
  const started = r.stdout.match(/^started \d+$/gm)?.length ?? 0;
  assert.ok(started >= 14 && started < 20, `${started} sleeps started, of 100`);
  assert.match(r.stdout, /forker exited 2\n/);
  assert.match(r.stderr, /can't fork: Resource temporarily unavailable/);
});

/** CPU time used by the cgroup: total in µs, and per CPU where v1's cpuacct counts it. */
function cpuUsage(cgroup: Cgroup): { total: number; perCpu?: number[] } {
  const v2 = (() => {
    try {
      return readCgroup(cgroup, "cpu.stat").text;
    } catch {
      return undefined;
    }
  })();
  const usage = v2 === undefined ? undefined : keyed(v2).get("usage_usec");
  if (usage !== undefined) return { total: usage };
  const perCpu = readCgroup(cgroup, "cpuacct.usage_percpu").text.split(/\s+/).map((ns) =>
    Number(ns) / 1000
  );
  return { total: Number(readCgroup(cgroup, "cpuacct.usage").text) / 1000, perCpu };
}

Deno.test("--cpuset-cpus 0 keeps a two-thread busy loop on one CPU", opts, async () => {
  await using t = await TestEnv.create();
  // Two busy loops: a background shell, and PID 1 itself (which exits on SIGTERM).
  await using c = await startRunning(t, [
    "--cpuset-cpus",
    "0",
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM; echo ready; while :; do :; done & while :; do :; done",
  ]);
  assert.equal(readCgroup(c.cgroup, "cpuset.cpus").text, "0");
  assert.equal(readCgroup(c.cgroup, "cpuset.cpus.effective", "cpuset.effective_cpus").text, "0");
  await c.waitOutput(/ready/);
  const before = cpuUsage(c.cgroup);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 2000));
  const after = cpuUsage(c.cgroup);
  const elapsedUs = (performance.now() - t0) * 1000;
  await stopRunning(c);
  const cpus = (after.total - before.total) / elapsedUs;
  // One busy loop alone takes at most one CPU; both share CPU 0.
  assert.ok(cpus < 1.1, `the container used ${cpus.toFixed(2)} CPUs`);
  assert.ok(cpus > 0.2, `the container used ${cpus.toFixed(2)} CPUs: was it running?`);
  if (before.perCpu !== undefined && after.perCpu !== undefined) {
    const delta = after.perCpu.map((v, i) => v - before.perCpu![i]!);
    const others = delta.slice(1).reduce((a, b) => a + b, 0);
    assert.ok(others < 0.02 * elapsedUs, `CPUs other than 0 ran it for ${others} µs`);
    assert.ok(delta[0]! > 0.2 * elapsedUs, `CPU 0 ran it for ${delta[0]} µs`);
  }
});

Deno.test("--cpu-shares: cpu.shares on v1, cpu.weight by runc's formula on v2", opts, async () => {
  await using t = await TestEnv.create();
  await using c = await startRunning(t, ["--cpu-shares", "512", ...untilTerm("true")]);
  const shares = readCgroup(c.cgroup, "cpu.weight", "cpu.shares");
  await stopRunning(c);
  assert.equal(shares.text, shares.file === "cpu.weight" ? "20" : "512");
});

/** The lines of a --stats-report, by label. */
function report(stderr: string): Map<string, string> {
  const lines = stderr.split("\n");
  const start = lines.findIndex((l) => /^mini-docker: resources used by container /.test(l));
  assert.ok(start >= 0, `no report in: ${stderr}`);
  return new Map(
    lines.slice(start + 1, start + 6).map((l) => {
      const m = /^ {2}(\S+(?: \S+)*) {2,}(.*)$/.exec(l);
      assert.ok(m, `report line "${l}"`);
      return [m[1]!, m[2]!];
    }),
  );
}

const bytes = (text: string) => {
  const m = /^([\d.]+)(B|KiB|MiB|GiB)/.exec(text);
  assert.ok(m, text);
  return Number(m[1]) * { B: 1, KiB: 1024, MiB: MiB, GiB: 1024 * MiB }[m[2] as "B"];
};

Deno.test("--stats-report prints what the container used, from its cgroup", opts, async () => {
  await using t = await TestEnv.create();
  const r = await t.run([
    "run",
    "--stats-report",
    "-m",
    "64m",
    "--cpus",
    "0.5",
    "--pids-limit",
    "50",
    "/bin/sh",
    "-c",
    "dd if=/dev/zero of=/dev/shm/x bs=1M count=32 2>/dev/null; " +
    "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; sleep 0.2 & sleep 0.2 & wait; echo ok",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "ok\n");
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 6, r.stderr);
  const rows = report(r.stderr);
  assert.deepEqual([...rows.keys()], [
    "memory peak",
    "CPU time",
    "CPU throttled",
    "PIDs peak",
    "OOM kills",
  ]);
  const mem = rows.get("memory peak")!;
  assert.match(mem, / of 64MiB limit$/);
  const peak = bytes(mem);
  assert.ok(peak >= 32 * MiB && peak <= 64 * MiB, `peak ${mem}`);
  const cpu = /^([\d.]+) s user, ([\d.]+) s system$/.exec(rows.get("CPU time")!);
  assert.ok(cpu, rows.get("CPU time"));
  assert.ok(Number(cpu[1]) + Number(cpu[2]) > 0.1, `CPU time ${rows.get("CPU time")}`);
  const throttled = /^(\d+) of (\d+) periods, ([\d.]+) s$/.exec(rows.get("CPU throttled")!);
  assert.ok(throttled, rows.get("CPU throttled"));
  assert.ok(Number(throttled[2]) > 0 && Number(throttled[1]) <= Number(throttled[2]));
  const pids = /^(\d+) of 50 limit$|^n\/a$/.exec(rows.get("PIDs peak")!);
  assert.ok(pids, rows.get("PIDs peak"));
  if (pids[1] !== undefined) assert.ok(Number(pids[1]) >= 3 && Number(pids[1]) <= 50);
  assert.equal(rows.get("OOM kills"), "0");

  // An OOM kill is counted; without the flag there is no report.
  const oom = await t.run([
    "run",
    "--stats-report",
    "-m",
    "50m",
    "/bin/dd",
    "if=/dev/zero",
    "of=/dev/null",
    "bs=200M",
    "count=1",
  ]);
  assert.equal(oom.code, 137);
  assert.match(oom.stderr, /was killed: out of memory \(limit 50MiB\)/);
  const oomRows = report(oom.stderr);
  assert.ok(Number(oomRows.get("OOM kills")) >= 1, oom.stderr);
  assert.ok(bytes(oomRows.get("memory peak")!) > 45 * MiB, oom.stderr);
  assert.equal(oomRows.get("CPU throttled"), "none (no --cpus limit)");
  const plain = await t.run(["run", "-m", "50m", "/bin/true"]);
  assert.deepEqual([plain.code, plain.stderr], [0, ""]);
});

Deno.test("bad resource values: 125, one line, nothing left behind", opts, async () => {
  await using t = await TestEnv.create();
  const cases: [string[], RegExp][] = [
    [["--pids-limit", "x"], /^mini-docker: Cannot parse PIDs limit "x"/],
    [["--pids-limit", "-5"], /^mini-docker: Invalid PIDs limit "-5"/],
    [
      ["--cpuset-cpus", "99"],
      /^mini-docker: Invalid --cpuset-cpus "99": CPU 99 not available on this host, which has CPUs \d/,
    ],
    [["--cpuset-cpus", "0-"], /^mini-docker: Cannot parse --cpuset-cpus value "0-"/],
    [["--cpuset-mems", "64"], /^mini-docker: Invalid --cpuset-mems "64": memory node 64/],
    [
      ["--memory", "1m"],
      /^mini-docker: Invalid --memory "1m": minimum memory limit allowed is 6MB\n$/,
    ],
    [
      ["--memory", "50m", "--memory-swap", "20m"],
      /^mini-docker: Invalid --memory-swap "20m": minimum memoryswap limit should be larger than memory limit/,
    ],
    [["--memory-swap", "100m"], /^mini-docker: Invalid --memory-swap "100m": it needs --memory/],
    [
      ["--memory", "50m", "--memory-reservation", "60m"],
      /^mini-docker: Invalid --memory-reservation "60m": minimum memory limit can not be less/,
    ],
    [["--memory-reservation", "1k"], /minimum memory reservation allowed is 6MB\n$/],
    [["--cpu-shares", "1"], /^mini-docker: Invalid CPU shares "1": expected 2 to 262144/],
    [["--cpu-shares", "lots"], /^mini-docker: Cannot parse CPU shares "lots"/],
  ];
  for (const [flags, message] of cases) {
    const r = await t.run(["run", ...flags, "/bin/true"]);
    assert.equal(r.code, 125, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.equal(r.stdout, "");
    t.assertNothingLeft();
  }
});

Deno.test(
  "the smallest limits leave the command its share: 6 MB of memory, 1 process",
  opts,
  async () => {
    await using t = await TestEnv.create();
    // Nothing of mini-docker is in the container's cgroup but, on v1 and for a moment, the thread
    // that spawns the command (its memory is charged to mini-docker, its pids slot is one above
    // the limit): the command gets the whole of both limits.
    for (let i = 0; i < 3; i++) {
      const r = await t.run(["run", "--memory", "6m", "--pids-limit", "1", "/bin/echo", "ok"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "ok\n");
    }
  },
);
