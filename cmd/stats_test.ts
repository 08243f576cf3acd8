import assert from "node:assert/strict";
import {
  cpuPercent,
  formatJson,
  formatTable,
  matchContainers,
  memoryInUse,
  parseNetDev,
  type StatsRow,
} from "./stats.ts";
import type { ContainerState } from "../container/state.ts";
import { UserError } from "../base/errors.ts";

const MiB = 1024 ** 2;

function state(id: string, name: string): ContainerState {
  return {
    id,
    name,
    status: "running",
    created: "2024-01-01T00:00:00Z",
    command: ["/bin/sh"],
    cgroupsPath: `mini-docker/${id}`,
  } as ContainerState;
}

Deno.test("matchContainers: exact id or name, else a unique id prefix", () => {
  const states = [
    state("abc123" + "0".repeat(58), "web"),
    state("abd456" + "0".repeat(58), "db"),
    state("f00" + "0".repeat(61), "abc"),
  ];
  assert.deepEqual(matchContainers(["web"], states).map((s) => s.name), ["web"]);
  assert.deepEqual(matchContainers(["abc12", "db"], states).map((s) => s.name), ["web", "db"]);
  // A name beats an id prefix, as in Docker.
  assert.deepEqual(matchContainers(["abc"], states).map((s) => s.name), ["abc"]);
  assert.deepEqual(matchContainers([states[1]!.id], states).map((s) => s.name), ["db"]);
  const fails = (ref: string, message: RegExp) =>
    assert.throws(() => matchContainers([ref], states), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.exitCode, 1); // Docker's code for what its daemon refuses
      assert.match(e.message, message);
      return true;
    });
  fails("ab", /^Multiple containers match "ab": use more of the id or the name$/);
  fails("nosuch", /^No such container: nosuch$/);
  fails("", /^No such container: $/);
});

Deno.test("parseNetDev sums the interfaces, loopback left out", () => {
  const text = [
    "Inter-|   Receive                                                |  Transmit",
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
    "    lo:    5000      50    0    0    0     0          0         0     5000      50    0    0    0     0       0          0",
    "  eth0: 1234567    1000    0    0    0     0          0         0   654321     900    0    0    0     0       0          0",
    "  eth1:     100       1    0    0    0     0          0         0       50       1    0    0    0     0       0          0",
    "",
  ].join("\n");
  assert.deepEqual(parseNetDev(text), { rx: 1234667, tx: 654371 });
  assert.deepEqual(parseNetDev(text.split("\n").slice(0, 3).join("\n")), { rx: 0, tx: 0 });
});

Deno.test("memoryInUse leaves the inactive page cache out, as docker stats", () => {
  assert.equal(memoryInUse({ memoryUsage: 100 * MiB, memoryInactiveFile: 30 * MiB }), 70 * MiB);
  assert.equal(memoryInUse({ memoryUsage: 100 * MiB }), 100 * MiB);
  assert.equal(memoryInUse({ memoryUsage: 10, memoryInactiveFile: 20 }), 10);
  assert.equal(memoryInUse({}), undefined);
});

Deno.test("cpuPercent: CPU time over wall time, 100% per CPU", () => {
  assert.equal(cpuPercent(1_000_000, 1000), 100);
  assert.equal(cpuPercent(500_000, 1000), 50);
  assert.equal(cpuPercent(2_000_000, 1000), 200);
  assert.equal(cpuPercent(0, 1000), 0);
  assert.equal(cpuPercent(-5, 1000), 0);
  assert.equal(cpuPercent(100, 0), 0);
});

const row: StatsRow = {
  id: "0123456789abcdef".repeat(4),
  name: "web",
  cpuPercent: 12.345,
  memUsage: 5.297 * MiB,
  memLimit: 100 * MiB,
  memPercent: 5.297,
  netRx: 1234,
  netTx: 648,
  pids: 3,
};

Deno.test("formatTable: Docker's columns, tabwriter layout (min width 10, padding 3)", () => {
  const unknown: StatsRow = { id: "fedcba9876543210".repeat(4), name: "a-much-longer-name" };
  assert.equal(
    formatTable([row, unknown]),
    [
      "CONTAINER ID   NAME                 CPU %     MEM USAGE / LIMIT   MEM %     NET I/O         PIDS",
      "0123456789ab   web                  12.35%    5.297MiB / 100MiB   5.30%     1.23kB / 648B   3",
      "fedcba987654   a-much-longer-name   --        -- / --             --        --              --",
      "",
    ].join("\n"),
  );
  assert.equal(
    formatTable([]),
    "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   PIDS\n",
  );
});

Deno.test("formatJson: Docker's field names plus raw numbers, null when unknown", () => {
  assert.deepEqual(JSON.parse(formatJson(row)), {
    ID: "0123456789ab",
    Name: "web",
    CPUPerc: "12.35%",
    MemUsage: "5.297MiB / 100MiB",
    MemPerc: "5.30%",
    NetIO: "1.23kB / 648B",
    PIDs: "3",
    CPUPercent: 12.345,
    MemUsageBytes: 5.297 * MiB,
    MemLimitBytes: 100 * MiB,
    MemPercent: 5.297,
    NetRxBytes: 1234,
    NetTxBytes: 648,
    PIDsCurrent: 3,
  });
  const bare = JSON.parse(formatJson({ id: "ab", name: "x" }));
  assert.equal(bare.NetIO, "--");
  assert.equal(bare.NetRxBytes, null);
  assert.equal(bare.CPUPercent, null);
  assert.equal(formatJson(row).includes("\n"), false);
});
