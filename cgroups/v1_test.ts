/**
 * The v1 driver against this machine's real v1 hierarchies (/sys/fs/cgroup/{memory,cpu,...}),
 * under a test parent of its own so that no real container is touched. Needs root.
 */
import assert from "node:assert/strict";
import { UserError } from "../base/errors.ts";
import type { CgroupFs } from "./fs.ts";
import { CgroupV1Driver, findControllerMounts } from "./v1.ts";
import { detectLayout } from "./manager.ts";
import { deviceVerdict, DOCKER_DEFAULT_RULES, mknodOutside, probeDevices } from "./testing.ts";

const ROOT = "/sys/fs/cgroup";

/** These tests need real v1 hierarchies: not in the cgroup v2 VM (tests/cgroup2). */
const real = { ignore: detectLayout(ROOT) === "v2" };
const MiB = 1024 * 1024;

function testDriver(): CgroupV1Driver {
  const parent = `mini-docker-test-cg-${crypto.randomUUID().slice(0, 8)}`;
  return new CgroupV1Driver({ root: ROOT, parent });
}

/** Destroys what a test left and removes the test parent from every hierarchy. */
async function cleanup(driver: CgroupV1Driver): Promise<void> {
  for (const name of driver.list()) await driver.open(name)?.destroy();
  for (const mount of new Set(driver.mounts.values())) {
    try {
      Deno.removeSync(`${mount}/${driver.parent}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

function read(path: string): string {
  return Deno.readTextFileSync(path).trim();
}

function sleeper(): Deno.ChildProcess {
  return new Deno.Command("sleep", { args: ["60"], stdout: "null", stderr: "null" }).spawn();
}

/** Moves a process into the cgroup, as the engine moves a container's first process (v2). */
function join(procsFiles: readonly string[], pid: number): void {
  for (const file of procsFiles) Deno.writeTextFileSync(file, String(pid));
}

async function reap(child: Deno.ChildProcess): Promise<Deno.CommandStatus> {
  try {
    child.kill("SIGKILL");
  } catch {
    // Already dead: killed by destroy().
  }
  return await child.status;
}

/** The state letter of /proc/<pid>/stat ("S", "Z"...), undefined when the process is gone. */
function processState(pid: number): string | undefined {
  try {
    return read(`/proc/${pid}/stat`).replace(/^.*\) /, "")[0];
  } catch {
    return undefined;
  }
}

function leftovers(driver: CgroupV1Driver, name: string): string[] {
  return [...new Set(driver.mounts.values())]
    .map((mount) => `${mount}/${driver.parent}/${name}`)
    .filter((dir) => {
      try {
        Deno.statSync(dir);
        return true;
      } catch {
        return false;
      }
    });
}

Deno.test("v1 finds each controller's hierarchy on this machine", real, () => {
  const mounts = findControllerMounts(ROOT);
  for (const c of ["memory", "cpu", "cpuacct", "pids", "cpuset"]) {
    assert.equal(mounts.get(c), `${ROOT}/${c}`);
  }
});

Deno.test("v1 shares one directory between combined controllers (cpu,cpuacct)", async () => {
  // This machine mounts cpu and cpuacct apart: the combined layout of most distributions is
  // faked in a temp dir, with a fake mkdir that adds the files the kernel would.
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-fake-cgroup1-" });
  try {
    for (const dir of ["cpu,cpuacct", "memory", "pids", "unified"]) {
      Deno.mkdirSync(`${root}/${dir}`);
    }
    Deno.symlinkSync("cpu,cpuacct", `${root}/cpu`);
    Deno.symlinkSync("cpu,cpuacct", `${root}/cpuacct`);
    const mounts = findControllerMounts(root);
    assert.equal(mounts.get("cpu"), `${root}/cpu,cpuacct`);
    assert.equal(mounts.get("cpuacct"), `${root}/cpu,cpuacct`);
    assert.equal(mounts.has("cpuset"), false);
    const fs: CgroupFs = {
      mkdir: (path) => {
        Deno.mkdirSync(path);
        Deno.writeTextFileSync(`${path}/cgroup.procs`, "");
      },
      rmdir: (path) => Deno.removeSync(path, { recursive: true }),
    };
    const driver = new CgroupV1Driver({ root, parent: "mini-docker", fs });
    const cgroup = driver.create("c1", {});
    assert.deepEqual([...cgroup.paths].sort(), [
      `${root}/cpu,cpuacct/mini-docker/c1`,
      `${root}/memory/mini-docker/c1`,
      `${root}/pids/mini-docker/c1`,
    ]);
    assert.deepEqual(driver.list(), ["c1"]);
    await cgroup.destroy();
    assert.deepEqual(driver.list(), []);
    // A cpuset limit on a host without the cpuset hierarchy names the flag and the controller.
    assert.throws(
      () => driver.create("c2", { cpu: { cpus: "0" } }),
      new UserError(
        `Cannot apply --cpuset-cpus: the cpuset controller is not mounted on this host (cgroup v1 at ${root})`,
      ),
    );
    // So are device rules without the devices hierarchy, even an empty list.
    assert.throws(
      () => driver.create("c2", { devices: [] }),
      new UserError(
        `Cannot apply device rules: the devices controller is not mounted on this host (cgroup v1 at ${root})`,
      ),
    );
    assert.deepEqual(driver.list(), []);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("v1 applies limits, holds a process, reports stats and destroys", real, async () => {
  const driver = testDriver();
  let child: Deno.ChildProcess | undefined;
  try {
    const cgroup = driver.create("c1", {
      memory: { limit: 64 * MiB, reservation: 32 * MiB, swap: 128 * MiB },
      cpu: { quota: 50000, period: 100000, shares: 512 },
      pids: { limit: 50 },
    });
    const dir = (c: string) => `${ROOT}/${c}/${driver.parent}/c1`;
    assert.deepEqual(cgroup.paths, ["memory", "cpu", "cpuacct", "pids", "freezer"].map(dir));
    assert.deepEqual(cgroup.procsFiles, cgroup.paths.map((p) => `${p}/cgroup.procs`));
    assert.equal(read(`${dir("memory")}/memory.limit_in_bytes`), String(64 * MiB));
    assert.equal(read(`${dir("memory")}/memory.soft_limit_in_bytes`), String(32 * MiB));
    assert.equal(read(`${dir("memory")}/memory.memsw.limit_in_bytes`), String(128 * MiB));
    assert.equal(read(`${dir("cpu")}/cpu.cfs_period_us`), "100000");
    assert.equal(read(`${dir("cpu")}/cpu.cfs_quota_us`), "50000");
    assert.equal(read(`${dir("cpu")}/cpu.shares`), "512");
    assert.equal(read(`${dir("pids")}/pids.max`), "50");
    assert.deepEqual(driver.list(), ["c1"]);
    assert.deepEqual(driver.open("c1")?.paths, cgroup.paths);
    assert.equal(driver.open("nope"), undefined);

    child = sleeper();
    join(cgroup.procsFiles, child.pid);
    assert.deepEqual(cgroup.pids(), [child.pid]);
    const stats = cgroup.stats();
    assert.equal(stats.memoryLimit, 64 * MiB);
    assert.equal(stats.pidsCurrent, 1);
    assert.equal(stats.oomKills, 0);
    for (
      const key of [
        "memoryUsage",
        "memoryPeak",
        "cpuUsageUsec",
        "cpuUserUsec",
        "cpuSystemUsec",
        "cpuPeriods",
        "cpuThrottledPeriods",
        "cpuThrottledUsec",
      ] as const
    ) {
      assert.equal(typeof stats[key], "number", key);
    }

    await cgroup.destroy();
    assert.equal((await child.status).signal, "SIGKILL");
    assert.deepEqual(leftovers(driver, "c1"), []);
    assert.deepEqual(driver.list(), []);
    await cgroup.destroy(); // a second destroy is a no-op
  } finally {
    if (child) await reap(child);
    await cleanup(driver);
  }
});

Deno.test(
  "v1 without limits still gets memory, cpu, cpuacct, pids and freezer; unlimited reads undefined",
  real,
  async () => {
    const driver = testDriver();
    try {
      const cgroup = driver.create("c1", {});
      assert.equal(cgroup.paths.length, 5);
      const stats = cgroup.stats();
      assert.equal(stats.memoryLimit, undefined);
      assert.equal(stats.pidsCurrent, 0);
      await cgroup.destroy();
    } finally {
      await cleanup(driver);
    }
  },
);

Deno.test(
  "v1 freezer: freeze stops every process, thaw resumes, destroy kills a frozen one",
  real,
  async () => {
    const driver = testDriver();
    let child: Deno.ChildProcess | undefined;
    try {
      const cgroup = driver.create("c1", {});
      const state = `${ROOT}/freezer/${driver.parent}/c1/freezer.state`;
      // A busy loop: it uses CPU time unless it is frozen.
      child = new Deno.Command("sh", {
        args: ["-c", "read go; while :; do :; done"],
        stdin: "piped",
        stdout: "null",
        stderr: "null",
      }).spawn();
      join(cgroup.procsFiles, child.pid);
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("go\n"));
      const cpu = () => {
        const fields = read(`/proc/${child!.pid}/stat`).replace(/^.*\) /, "").split(" ");
        return Number(fields[11]) + Number(fields[12]); // utime + stime
      };
      await cgroup.freeze();
      assert.equal(read(state), "FROZEN");
      assert.equal(cgroup.frozen(), true);
      const before = cpu();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(cpu(), before, "no CPU time while frozen");
      await cgroup.thaw();
      assert.equal(read(state), "THAWED");
      assert.equal(cgroup.frozen(), false);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(cpu() > before, "it runs again");
      await cgroup.freeze();
      await cgroup.destroy();
      assert.equal((await child.status).signal, "SIGKILL");
      await writer.close().catch(() => {});
      child = undefined;
      assert.deepEqual(leftovers(driver, "c1"), []);
    } finally {
      if (child) await reap(child);
      await cleanup(driver);
    }
  },
);

Deno.test("v1 destroy kills every process, forks included", real, async () => {
  const driver = testDriver();
  let child: Deno.ChildProcess | undefined;
  try {
    const cgroup = driver.create("c1", { pids: { limit: 10 } });
    // The shell forks only once it has joined: its children are born inside the cgroup.
    child = new Deno.Command("sh", {
      args: ["-c", "read go; sleep 60 & sleep 60 & wait"],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    join(cgroup.procsFiles, child.pid);
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("go\n"));
    await writer.close();
    const deadline = Date.now() + 2000;
    while (cgroup.pids().length < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const inside = cgroup.pids();
    assert.equal(inside.length, 3);
    assert.ok(inside.includes(child.pid));
    const started = performance.now();
    await cgroup.destroy();
    console.log(
      `destroy of ${inside.length} processes: ${(performance.now() - started).toFixed(1)} ms`,
    );
    // Dead: gone, or a zombie until its parent (or init) reaps it.
    for (const pid of inside) assert.ok(["Z", undefined].includes(processState(pid)), String(pid));
    assert.deepEqual(leftovers(driver, "c1"), []);
  } finally {
    if (child) await reap(child);
    await cleanup(driver);
  }
});

Deno.test("v1 cpuset: the parent takes the root's CPUs, the container its own", real, async () => {
  const driver = testDriver();
  let child: Deno.ChildProcess | undefined;
  try {
    const cgroup = driver.create("c1", { cpu: { cpus: "0" } });
    const parentDir = `${ROOT}/cpuset/${driver.parent}`;
    assert.ok(cgroup.paths.includes(`${parentDir}/c1`));
    assert.equal(read(`${parentDir}/cpuset.cpus`), read(`${ROOT}/cpuset/cpuset.cpus`));
    assert.equal(read(`${parentDir}/cpuset.mems`), read(`${ROOT}/cpuset/cpuset.mems`));
    assert.equal(read(`${parentDir}/c1/cpuset.cpus`), "0");
    assert.equal(read(`${parentDir}/c1/cpuset.mems`), read(`${ROOT}/cpuset/cpuset.mems`));
    // Joining an empty cpuset fails with ENOSPC: this proves it is not empty.
    child = sleeper();
    join(cgroup.procsFiles, child.pid);
    const allowed = read(`/proc/${child.pid}/status`).match(/Cpus_allowed_list:\s*(\S+)/)?.[1];
    assert.equal(allowed, "0");
    await cgroup.destroy();
    assert.deepEqual(leftovers(driver, "c1"), []);
  } finally {
    if (child) await reap(child);
    await cleanup(driver);
  }
});

Deno.test(
  "v1 limits the kernel refuses are UserErrors and leave nothing behind",
  real,
  async () => {
    const driver = testDriver();
    try {
      const cpusetDir = `${ROOT}/cpuset/${driver.parent}/c1`;
      assert.throws(
        () => driver.create("c1", { cpu: { cpus: "99" } }),
        new UserError(
          `Cannot set cpuset.cpus to "99" in ${cpusetDir}: Numerical result out of range`,
        ),
      );
      assert.deepEqual(leftovers(driver, "c1"), []);
      const cpuDir = `${ROOT}/cpu/${driver.parent}/c1`;
      assert.throws(
        () => driver.create("c1", { cpu: { quota: 500, period: 100000 } }),
        new UserError(`Cannot set cpu.cfs_quota_us to "500" in ${cpuDir}: Invalid argument`),
      );
      assert.deepEqual(leftovers(driver, "c1"), []);
      assert.throws(() => driver.create("../x", {}), /Invalid cgroup name "..\/x"/);
      assert.deepEqual(leftovers(driver, "c1"), []);
    } finally {
      await cleanup(driver);
    }
  },
);

Deno.test(
  "v1 create on an existing name fails and leaves the existing cgroup alone",
  real,
  async () => {
    const driver = testDriver();
    try {
      const cgroup = driver.create("c1", { pids: { limit: 5 } });
      assert.throws(
        () => driver.create("c1", {}),
        new UserError(`Cannot create cgroup ${ROOT}/memory/${driver.parent}/c1: it already exists`),
      );
      assert.equal(read(`${ROOT}/pids/${driver.parent}/c1/pids.max`), "5");
      await cgroup.destroy();
    } finally {
      await cleanup(driver);
    }
  },
);

Deno.test("v1 swap -1 is unlimited memory+swap", real, async () => {
  const driver = testDriver();
  try {
    const cgroup = driver.create("c1", { memory: { limit: 64 * MiB, swap: -1 } });
    const dir = `${ROOT}/memory/${driver.parent}/c1`;
    assert.equal(read(`${dir}/memory.limit_in_bytes`), String(64 * MiB));
    assert.equal(read(`${dir}/memory.memsw.limit_in_bytes`), "9223372036854771712");
    await cgroup.destroy();
  } finally {
    await cleanup(driver);
  }
});

Deno.test("v1 create and destroy are fast (they run on every container start)", real, async () => {
  const driver = testDriver();
  try {
    const rounds = 20;
    let create = 0;
    let destroy = 0;
    for (let i = 0; i < rounds; i++) {
      let t = performance.now();
      const cgroup = driver.create(`c${i}`, {
        memory: { limit: 64 * MiB },
        cpu: { quota: 50000, period: 100000 },
        pids: { limit: 50 },
      });
      create += performance.now() - t;
      t = performance.now();
      await cgroup.destroy();
      destroy += performance.now() - t;
    }
    console.log(
      `create ${(create / rounds).toFixed(2)} ms, destroy (empty) ${
        (destroy / rounds).toFixed(2)
      } ms`,
    );
  } finally {
    await cleanup(driver);
  }
});

Deno.test("v1 swap accounting: memory.memsw.* files in the memory hierarchy", real, () => {
  const driver = testDriver();
  const memory = driver.mounts.get("memory");
  let memsw = false;
  try {
    Deno.statSync(`${memory}/memory.memsw.limit_in_bytes`);
    memsw = true;
  } catch { /* no swap accounting on this kernel */ }
  assert.equal(driver.swapAccounting(), memory !== undefined && memsw);
  // A host without a memory hierarchy accounts nothing.
  const empty = Deno.makeTempDirSync();
  try {
    assert.equal(new CgroupV1Driver({ root: empty, parent: "p" }).swapAccounting(), false);
  } finally {
    Deno.removeSync(empty);
  }
});

Deno.test("v1 updatePids rewrites pids.max; -1 and 0 are max", real, async () => {
  const driver = testDriver();
  try {
    const cgroup = driver.create("c1", { pids: { limit: 11 } });
    const file = `${ROOT}/pids/${driver.parent}/c1/pids.max`;
    assert.equal(read(file), "11");
    cgroup.updatePids(10);
    assert.equal(read(file), "10");
    cgroup.updatePids(0);
    assert.equal(read(file), "max");
    driver.open("c1")!.updatePids(5);
    assert.equal(read(file), "5");
    cgroup.updatePids(-1);
    assert.equal(read(file), "max");
    await cgroup.destroy();
  } finally {
    await cleanup(driver);
  }
});

/** The v1 device tests need the devices hierarchy too. */
const withDevices = {
  ignore: detectLayout(ROOT) === "v2" || !findControllerMounts(ROOT).has("devices"),
};

/**
 * What the rules leave in devices.list, the kernel's own account: the exceptions to a default
 * deny, in the order they were written. The fuse deny removed nothing (no such exception).
 */
const DOCKER_DEFAULT_LIST = [
  "c *:* m",
  "b *:* m",
  "c 1:3 rwm",
  "c 1:5 rwm",
  "c 1:7 rwm",
  "c 1:8 rwm",
  "c 1:9 rwm",
  "c 5:0 rwm",
  "c 5:1 rwm",
  "c 5:2 rwm",
  "c 136:* rwm",
  "c 10:200 rwm",
];

Deno.test(
  "v1 device rules: the devices cgroup holds them; a process in it opens only what they allow",
  withDevices,
  async () => {
    const driver = testDriver();
    const tmp = Deno.makeTempDirSync({ prefix: "mini-docker-dev-" });
    try {
      const cgroup = driver.create("c1", { devices: DOCKER_DEFAULT_RULES });
      const dir = `${ROOT}/devices/${driver.parent}/c1`;
      assert.ok(cgroup.paths.includes(dir));
      assert.ok(cgroup.procsFiles.includes(`${dir}/cgroup.procs`));
      assert.ok(cgroup.threadFiles!.includes(`${dir}/tasks`));
      assert.deepEqual(read(`${dir}/devices.list`).split("\n"), DOCKER_DEFAULT_LIST);
      assert.deepEqual(driver.open("c1")?.paths, cgroup.paths);
      assert.deepEqual(driver.list(), ["c1"]);

      mknodOutside(`${tmp}/mem`, "c", 1, 1);
      mknodOutside(`${tmp}/loop`, "b", 7, 0);
      mknodOutside(`${tmp}/fuse`, "c", 10, 229);
      mknodOutside(`${tmp}/pts`, "c", 136, 4000);
      const results = await probeDevices(cgroup.procsFiles, [
        { read: "/dev/null" },
        { readWrite: "/dev/null" },
        { read: `${tmp}/mem` },
        { write: `${tmp}/mem` },
        { read: `${tmp}/loop` },
        { read: `${tmp}/fuse` },
        { read: `${tmp}/pts` },
        { mknod: `${tmp}/mem2`, type: "c", major: 1, minor: 1 },
        { mknod: `${tmp}/loop2`, type: "b", major: 7, minor: 1 },
        // v1 keeps "c *:* m" for fuse: a deny only removes an exception it names exactly.
        { mknod: `${tmp}/fuse2`, type: "c", major: 10, minor: 229 },
      ]);
      assert.deepEqual(results.slice(0, 2), ["ok", "ok"]);
      assert.deepEqual(results.map(deviceVerdict), [
        "allowed",
        "allowed",
        "denied",
        "denied",
        "denied",
        "denied",
        "allowed",
        "allowed",
        "allowed",
        "allowed",
      ]);

      await cgroup.destroy();
      assert.deepEqual(leftovers(driver, "c1"), []);
      assert.deepEqual(driver.list(), []);
    } finally {
      Deno.removeSync(tmp, { recursive: true });
      await cleanup(driver);
    }
  },
);

Deno.test(
  "v1 device rules the kernel or the checks refuse: UserError naming the rule, nothing left",
  withDevices,
  async () => {
    const driver = testDriver();
    try {
      assert.throws(
        () => driver.create("c1", { devices: [{ allow: true, type: "c", access: "x" }] }),
        new UserError(
          `Invalid device rule "allow c *:* x": the access must be one or more of "r", "w" and "m"`,
        ),
      );
      assert.deepEqual(leftovers(driver, "c1"), []);
      // A child may not allow what its parent denies: the kernel refuses the write.
      const parentDir = `${ROOT}/devices/${driver.parent}`;
      Deno.mkdirSync(parentDir);
      Deno.writeTextFileSync(`${parentDir}/devices.deny`, "c 1:1 rwm");
      assert.throws(
        () =>
          driver.create("c1", {
            pids: { limit: 5 },
            devices: [{ allow: false }, { allow: true, type: "c", major: 1, minor: 1 }],
          }),
        new UserError(
          `Cannot set devices.allow to "c 1:1 rwm" in ${parentDir}/c1: Operation not permitted`,
        ),
      );
      assert.deepEqual(leftovers(driver, "c1"), []);
    } finally {
      await cleanup(driver);
    }
  },
);
