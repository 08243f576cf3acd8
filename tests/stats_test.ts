/**
 * `mini-docker stats` end to end: containers started by one mini-docker process, observed by
 * another, with what they really use (memory they allocated, CPU they burned).
 */
import assert from "node:assert/strict";
import { START_TIMEOUT_MS, startRunning, stopRunning, TestEnv } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const MiB = 1024 ** 2;

/** PID 1 sets its trap (exit 0 on SIGTERM), runs `script`, says "ready" and idles. */
const shell = (script: string) => [
  "/bin/sh",
  "-c",
  `trap 'exit 0' TERM; ${script}; echo ready; while :; do sleep 0.1; done`,
];

/** `stats --no-stream --format json ARGS...`: one object per line. */
async function statsJson(t: TestEnv, args: string[] = []): Promise<Record<string, unknown>[]> {
  const r = await t.run(["stats", "--no-stream", "--format", "json", ...args]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  return r.stdout.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

Deno.test("stats shows the memory a container allocated, within 10%", opts, async () => {
  await using t = await TestEnv.create();
  // 64 MiB in a tmpfs file: shared memory, charged to the container's cgroup and not cache
  // that docker stats would leave out.
  await using c = await startRunning(t, [
    "--network",
    "host",
    "--name",
    "hog",
    "-m",
    "256m",
    ...shell("dd if=/dev/zero of=/dev/shm/x bs=1M count=64 2>/dev/null"),
  ]);
  await c.waitOutput(/ready/);
  for (const ref of ["hog", c.id, c.id.slice(0, 7)]) {
    const rows = await statsJson(t, [ref]);
    assert.equal(rows.length, 1, ref);
    const row = rows[0]!;
    assert.equal(row.ID, c.id.slice(0, 12));
    assert.equal(row.Name, "hog");
    const used = row.MemUsageBytes as number;
    assert.ok(Math.abs(used - 64 * MiB) < 0.1 * 64 * MiB, `usage ${used / MiB} MiB`);
    assert.equal(row.MemLimitBytes, 256 * MiB);
    assert.match(row.MemUsage as string, /^\d+(\.\d+)?MiB \/ 256MiB$/);
    assert.match(row.MemPerc as string, /^2\d\.\d\d%$/);
    assert.match(row.CPUPerc as string, /^\d+\.\d\d%$/);
    assert.ok((row.PIDsCurrent as number) >= 1);
    assert.equal(row.PIDs, String(row.PIDsCurrent));
    // The host's network: no counters of its own.
    assert.equal(row.NetIO, "--");
    assert.equal(row.NetRxBytes, null);
  }
  // Without names: every running container.
  assert.deepEqual((await statsJson(t)).map((r) => r.Name), ["hog"]);
  assert.equal((await stopRunning(c)).code, 0);
});

Deno.test("stats: CPU % of a CPU-limited busy loop; NET I/O of its own network", opts, async () => {
  await using t = await TestEnv.create();
  await using c = await startRunning(t, [
    "--cpus",
    "0.5",
    "--network",
    "none",
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM; echo ready; while :; do :; done",
  ]);
  await c.waitOutput(/ready/);
  const [row] = await statsJson(t);
  // --cpus 0.5 caps it at 50% (a loaded host may give it less).
  const cpu = row!.CPUPercent as number;
  assert.ok(cpu > 10 && cpu < 60, `CPU ${cpu}%`);
  assert.equal(row!.CPUPerc, `${cpu.toFixed(2)}%`);
  // --network none: only loopback, which docker stats does not count.
  assert.equal(row!.NetIO, "0B / 0B");
  assert.deepEqual([row!.NetRxBytes, row!.NetTxBytes], [0, 0]);
  const table = await t.run(["stats", "--no-stream"]);
  assert.equal(table.code, 0, table.stderr);
  const [header, line, ...rest] = table.stdout.split("\n");
  assert.match(
    header!,
    /^CONTAINER ID {3}NAME {2,}CPU % {2,}MEM USAGE \/ LIMIT {3}MEM % {2,}NET I\/O {2,}PIDS$/,
  );
  assert.match(line!, new RegExp(`^${c.id.slice(0, 12)} {3}\\S+ +\\d+\\.\\d\\d% +`));
  assert.match(line!, / 0B \/ 0B {3,}\d+$/);
  assert.deepEqual(rest, [""]);
  assert.ok(!table.stdout.includes("\x1b"), "no terminal escapes into a pipe");
  assert.equal((await stopRunning(c)).code, 0);
});

Deno.test(
  "stats without --no-stream refreshes; piped, it prints table after table",
  opts,
  async () => {
    await using t = await TestEnv.create();
    await using c = await startRunning(t, shell("true"));
    const stats = t.spawn(["stats"]);
    try {
      const reader = stats.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      const deadline = Date.now() + START_TIMEOUT_MS;
      while ((out.match(/^CONTAINER ID/gm)?.length ?? 0) < 3 && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      const tables = out.split(/^(?=CONTAINER ID)/m);
      assert.ok(tables.length >= 3, out);
      for (const table of tables.slice(0, 2)) {
        assert.match(table, new RegExp(`^${c.id.slice(0, 12)} `, "m"));
      }
      assert.ok(!out.includes("\x1b"), "no terminal escapes into a pipe");
      await reader.cancel();
    } finally {
      stats.kill("SIGTERM");
      await stats.status;
      await stats.stderr.cancel();
    }
    assert.equal((await stopRunning(c)).code, 0);
  },
);

Deno.test("stats: unknown names (1) and bad flags (125) are one line", opts, async () => {
  await using t = await TestEnv.create();
  const empty = await t.run(["stats", "--no-stream"]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stdout, /^CONTAINER ID {3}NAME {6}CPU %/);
  assert.equal(empty.stdout.split("\n").length, 2);
  const cases: [string[], RegExp][] = [
    [["stats", "--no-stream", "nosuch"], /^mini-docker: No such container: nosuch\n$/],
    [
      ["stats", "--format", "yaml"],
      /^mini-docker: Invalid format "yaml": use "table" or "json"\n$/,
    ],
    [["stats", "--bogus"], /^mini-docker: Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const r = await t.run(args);
    // An unknown container is 1, Docker's code for its daemon's refusals.
    const code = /No such container/.test(message.source) ? 1 : 125;
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, "");
  }
});
