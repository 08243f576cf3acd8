/**
 * The v2 driver. This machine has no cgroup v2 controllers (its cgroup2 mount at
 * /sys/fs/cgroup/unified holds only hugetlb), so limits are checked against a FAKE cgroupfs in
 * a temp dir: its mkdir creates the files the kernel creates, with the kernel's formats, and
 * the tests read back what the driver wrote. The real v2 run with controllers happens in the
 * cgroup2 VM (`deno task test:cgroup2`). What the real cgroup2 mount here can do without
 * controllers (create, join, cgroup.kill, rmdir) is tested for real at the end of this file.
 */
import assert from "node:assert/strict";
import { UserError } from "../base/errors.ts";
import { type CgroupFs, killAndRemove } from "./fs.ts";
import { CgroupV2Driver, cpuSharesToWeight } from "./v2.ts";
import { detectLayout } from "./manager.ts";
import { deviceVerdict, DOCKER_DEFAULT_RULES, mknodOutside, probeDevices } from "./testing.ts";

const MiB = 1024 * 1024;
const ALL = "cpuset cpu io memory hugetlb pids rdma misc";

/** Files of a new cgroup, by controller, as a 6.x kernel creates them. */
const CONTROLLER_FILES: Record<string, Record<string, string>> = {
  memory: {
    "memory.current": "0\n",
    "memory.peak": "0\n",
    "memory.max": "max\n",
    "memory.high": "max\n",
    "memory.low": "0\n",
    "memory.min": "0\n",
    "memory.swap.max": "max\n",
    "memory.swap.current": "0\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
  },
  cpu: { "cpu.max": "max 100000\n", "cpu.weight": "100\n" },
  cpuset: { "cpuset.cpus": "\n", "cpuset.mems": "\n", "cpuset.cpus.effective": "0-1\n" },
  pids: { "pids.max": "max\n", "pids.current": "0\n", "pids.peak": "0\n" },
};

interface Fake {
  root: string;
  fs: CgroupFs;
  /** Every mkdir and rmdir, in order. */
  calls: string[];
  [Symbol.dispose](): void;
}

/**
 * A fake cgroup2 root: `cgroup.controllers` lists `controllers`; a child's controllers are
 * those its parent enabled in `cgroup.subtree_control` (whatever the driver wrote there).
 */
function fakeCgroup2(
  controllers = ALL,
  opts: { noSwap?: boolean; noKill?: boolean } = {},
): Fake {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-fake-cgroup2-" });
  const calls: string[] = [];
  const write = (path: string, text: string) => Deno.writeTextFileSync(path, text);
  write(`${root}/cgroup.controllers`, `${controllers}\n`);
  write(`${root}/cgroup.subtree_control`, "\n");
  write(`${root}/cgroup.procs`, "");
  write(`${root}/cpu.stat`, "usage_usec 0\nuser_usec 0\nsystem_usec 0\n");
  const fs: CgroupFs = {
    mkdir(path) {
      Deno.mkdirSync(path);
      calls.push(`mkdir ${path.slice(root.length)}`);
      const above = path.slice(0, path.lastIndexOf("/"));
      const enabled = Deno.readTextFileSync(`${above}/cgroup.subtree_control`)
        .split(/\s+/)
        .filter((word) => word !== "")
        .map((word) => word.replace(/^\+/, ""));
      write(`${path}/cgroup.controllers`, `${enabled.join(" ")}\n`);
      write(`${path}/cgroup.subtree_control`, "\n");
      write(`${path}/cgroup.procs`, "");
      write(`${path}/cgroup.events`, "populated 0\nfrozen 0\n");
      write(`${path}/cgroup.freeze`, "0\n");
      if (!opts.noKill) write(`${path}/cgroup.kill`, "");
      write(
        `${path}/cpu.stat`,
        "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
      );
      for (const controller of enabled) {
        for (const [file, text] of Object.entries(CONTROLLER_FILES[controller] ?? {})) {
          if (opts.noSwap && file.startsWith("memory.swap.")) continue;
          write(`${path}/${file}`, text);
        }
      }
    },
    rmdir(path) {
      if ([...Deno.readDirSync(path)].some((entry) => entry.isDirectory)) {
        throw new Deno.errors.Busy(`Device or resource busy (os error 16): rmdir '${path}'`);
      }
      Deno.removeSync(path, { recursive: true });
      calls.push(`rmdir ${path.slice(root.length)}`);
    },
  };
  return {
    root,
    fs,
    calls,
    [Symbol.dispose]: () => Deno.removeSync(root, { recursive: true }),
  };
}

function read(path: string): string {
  return Deno.readTextFileSync(path);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("v2 cpu.shares -> cpu.weight follows runc's integer formula", () => {
  // 1 + ((shares - 2) * 9999) / 262142, Go integer division.
  assert.equal(cpuSharesToWeight(2), 1);
  assert.equal(cpuSharesToWeight(512), 20);
  assert.equal(cpuSharesToWeight(1024), 39);
  assert.equal(cpuSharesToWeight(262144), 10000);
  // Clamped to v1's range first, as the kernel clamps cpu.shares.
  assert.equal(cpuSharesToWeight(1), 1);
  assert.equal(cpuSharesToWeight(1_000_000), 10000);
});

Deno.test("v2 enables controllers down to the container and writes each limit", () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  const cgroup = driver.create("c1", {
    memory: { limit: 64 * MiB, reservation: 32 * MiB, swap: 96 * MiB },
    cpu: { shares: 1024, quota: 50000, period: 100000, cpus: "0", mems: "0" },
    pids: { limit: 50 },
  });
  const dir = `${fake.root}/mini-docker/c1`;
  assert.deepEqual(cgroup.paths, [dir]);
  assert.deepEqual(cgroup.procsFiles, [`${dir}/cgroup.procs`]);
  assert.deepEqual(fake.calls, ["mkdir /mini-docker", "mkdir /mini-docker/c1"]);
  assert.equal(read(`${fake.root}/cgroup.subtree_control`), "+memory +cpu +pids +cpuset");
  assert.equal(
    read(`${fake.root}/mini-docker/cgroup.subtree_control`),
    "+memory +cpu +pids +cpuset",
  );
  assert.equal(read(`${dir}/memory.max`), String(64 * MiB));
  assert.equal(read(`${dir}/memory.low`), String(32 * MiB));
  assert.equal(read(`${dir}/memory.swap.max`), String(32 * MiB)); // 96 MiB total - 64 MiB memory
  assert.equal(read(`${dir}/cpu.weight`), "39");
  assert.equal(read(`${dir}/cpu.max`), "50000 100000");
  assert.equal(read(`${dir}/cpuset.cpus`), "0");
  assert.equal(read(`${dir}/cpuset.mems`), "0");
  assert.equal(read(`${dir}/pids.max`), "50");
  // Untouched files keep the kernel's defaults.
  assert.equal(read(`${dir}/memory.high`), "max\n");
  assert.deepEqual(driver.list(), ["c1"]);
  assert.deepEqual(driver.open("c1")?.paths, [dir]);
  assert.equal(driver.open("c2"), undefined);
});

Deno.test("v2 writes the kernel's unlimited forms", () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  driver.create("c1", {
    memory: { limit: -1, swap: -1 },
    cpu: { period: 50000 },
    pids: { limit: -1 },
  });
  const dir = `${fake.root}/mini-docker/c1`;
  assert.equal(read(`${dir}/memory.max`), "max");
  assert.equal(read(`${dir}/memory.swap.max`), "max");
  assert.equal(read(`${dir}/cpu.max`), "max 50000");
  assert.equal(read(`${dir}/pids.max`), "max");
  // Memory+swap equal to memory: no swap at all.
  driver.create("c2", { memory: { limit: 64 * MiB, swap: 64 * MiB }, cpu: { quota: 25000 } });
  assert.equal(read(`${fake.root}/mini-docker/c2/memory.swap.max`), "0");
  assert.equal(read(`${fake.root}/mini-docker/c2/cpu.max`), "25000 100000");
});

Deno.test("v2 enables only the controllers that are missing and available", () => {
  using fake = fakeCgroup2("cpu io memory pids");
  Deno.writeTextFileSync(`${fake.root}/cgroup.subtree_control`, "cpu memory\n");
  const driver = new CgroupV2Driver({ root: fake.root, parent: "a/b", fs: fake.fs });
  driver.create("c1", { pids: { limit: 10 } });
  assert.equal(read(`${fake.root}/cgroup.subtree_control`), "+pids");
  // The fake's child takes only what the last write enabled: "pids".
  assert.equal(read(`${fake.root}/a/cgroup.subtree_control`), "+pids");
  assert.equal(read(`${fake.root}/a/b/cgroup.subtree_control`), "+pids");
  assert.equal(read(`${fake.root}/a/b/c1/pids.max`), "10");
  assert.deepEqual(fake.calls, ["mkdir /a", "mkdir /a/b", "mkdir /a/b/c1"]);
});

Deno.test("v2 limit whose controller is missing: UserError 125, nothing created", () => {
  using fake = fakeCgroup2("cpu io pids");
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  assert.throws(
    () => driver.create("c1", { memory: { limit: 64 * MiB } }),
    new UserError(
      `Cannot apply --memory: the memory controller is not enabled on this host (cgroup v2 at ${fake.root})`,
    ),
  );
  assert.throws(
    () => driver.create("c1", { cpu: { cpus: "0" } }),
    (e) =>
      e instanceof UserError && e.exitCode === 125 &&
      /--cpuset-cpus: the cpuset controller/.test(e.message),
  );
  assert.deepEqual(fake.calls, []);
  // Without a memory limit the same host is fine.
  driver.create("c1", { cpu: { quota: 50000 } });
  assert.equal(read(`${fake.root}/cgroup.subtree_control`), "+cpu +pids");
});

Deno.test("v2 swap without swap accounting: UserError, and the cgroup is removed", () => {
  using fake = fakeCgroup2(ALL, { noSwap: true });
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  const dir = `${fake.root}/mini-docker/c1`;
  assert.throws(
    () => driver.create("c1", { memory: { limit: 64 * MiB, swap: 128 * MiB } }),
    new UserError(
      `Cannot apply --memory-swap "${
        128 * MiB
      }": swap accounting is not enabled on this host (no memory.swap.max in ${dir})`,
    ),
  );
  assert.equal(exists(dir), false);
  assert.deepEqual(fake.calls, [
    "mkdir /mini-docker",
    "mkdir /mini-docker/c1",
    "rmdir /mini-docker/c1",
  ]);
  // Unlimited swap needs no accounting.
  driver.create("c1", { memory: { limit: 64 * MiB, swap: -1 } });
  assert.equal(read(`${dir}/memory.max`), String(64 * MiB));
});

Deno.test("v2 create on an existing name fails and keeps the existing cgroup", () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  driver.create("c1", { pids: { limit: 5 } });
  const dir = `${fake.root}/mini-docker/c1`;
  assert.throws(
    () => driver.create("c1", {}),
    new UserError(`Cannot create cgroup ${dir}: it already exists`),
  );
  assert.equal(read(`${dir}/pids.max`), "5");
});

Deno.test("v2 stats parse the kernel's files; absent counters stay absent", () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  const cgroup = driver.create("c1", {});
  const dir = `${fake.root}/mini-docker/c1`;
  const write = (file: string, text: string) => Deno.writeTextFileSync(`${dir}/${file}`, text);
  write("memory.current", "1048576\n");
  write("memory.peak", "2097152\n");
  write("memory.max", "67108864\n");
  write(
    "cpu.stat",
    "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\ncore_sched.force_idle_usec 0\n" +
      "nr_periods 40\nnr_throttled 7\nthrottled_usec 8901\nnr_bursts 0\nburst_usec 0\n",
  );
  write("pids.current", "3\n");
  write("pids.peak", "5\n");
  write("memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n");
  write("memory.stat", "anon 524288\nfile 524288\nactive_file 131072\ninactive_file 393216\n");
  assert.deepEqual(cgroup.stats(), {
    memoryUsage: 1048576,
    memoryPeak: 2097152,
    memoryLimit: 67108864,
    memoryInactiveFile: 393216,
    cpuUsageUsec: 123456,
    cpuUserUsec: 100000,
    cpuSystemUsec: 23456,
    cpuPeriods: 40,
    cpuThrottledPeriods: 7,
    cpuThrottledUsec: 8901,
    pidsCurrent: 3,
    pidsPeak: 5,
    oomKills: 2,
  });
  // Older kernels have no memory.peak / pids.peak; "max" is no limit.
  write("memory.max", "max\n");
  Deno.removeSync(`${dir}/memory.peak`);
  Deno.removeSync(`${dir}/pids.peak`);
  const stats = cgroup.stats();
  assert.equal("memoryLimit" in stats, false);
  assert.equal("memoryPeak" in stats, false);
  assert.equal("pidsPeak" in stats, false);
  assert.equal(stats.pidsCurrent, 3);
});

Deno.test("v2 destroy writes cgroup.kill, removes the container's cgroup and its children", async () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  const cgroup = driver.create("c1", {});
  // A cgroup the container made for itself (nested cgroups, e.g. systemd inside).
  fake.fs.mkdir(`${fake.root}/mini-docker/c1/inner`);
  // Record what cgroup.kill holds when the driver removes the cgroup.
  const killed: string[] = [];
  const kill = `${fake.root}/mini-docker/c1/cgroup.kill`;
  const original = fake.fs.rmdir;
  fake.fs.rmdir = (path) => {
    if (path.endsWith("/c1")) killed.push(read(kill));
    original(path);
  };
  await cgroup.destroy();
  assert.deepEqual(killed, ["1"]);
  assert.deepEqual(fake.calls.slice(-2), ["rmdir /mini-docker/c1/inner", "rmdir /mini-docker/c1"]);
  assert.equal(exists(`${fake.root}/mini-docker`), true); // the parent is shared: it stays
  assert.deepEqual(driver.list(), []);
  await cgroup.destroy(); // a second destroy is a no-op
});

Deno.test("v2 freeze and thaw: cgroup.freeze, done when cgroup.events says frozen", async () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  const cgroup = driver.create("c1", {});
  const dir = `${fake.root}/mini-docker/c1`;
  // The kernel reports "frozen 1" once every task has stopped: a moment after the write here.
  const kernel = (frozen: string) =>
    setTimeout(
      () => Deno.writeTextFileSync(`${dir}/cgroup.events`, `populated 1\nfrozen ${frozen}\n`),
      30,
    );
  kernel("1");
  await cgroup.freeze();
  assert.equal(read(`${dir}/cgroup.freeze`), "1");
  assert.equal(cgroup.frozen(), true);
  kernel("0");
  await cgroup.thaw();
  assert.equal(read(`${dir}/cgroup.freeze`), "0");
  assert.equal(cgroup.frozen(), false);
  // A destroy of a frozen cgroup thaws it before it kills.
  Deno.writeTextFileSync(`${dir}/cgroup.freeze`, "1");
  await cgroup.destroy();
  assert.equal(exists(dir), false);
});

Deno.test("v2 freeze without cgroup.freeze (kernel < 5.2): one UserError", async () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  const cgroup = driver.create("c1", {});
  Deno.removeSync(`${fake.root}/mini-docker/c1/cgroup.freeze`);
  await assert.rejects(
    cgroup.freeze(),
    (err: Error) => err instanceof UserError && /no cgroup v2 freezer/.test(err.message),
  );
  await cgroup.destroy();
});

Deno.test("v2 destroy without cgroup.kill (kernel < 5.14) still removes the cgroup", async () => {
  using fake = fakeCgroup2(ALL, { noKill: true });
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  await driver.create("c1", {}).destroy();
  assert.equal(exists(`${fake.root}/mini-docker/c1`), false);
});

Deno.test("destroy gives up after its bounded wait with a UserError", async () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  driver.create("c1", {});
  const dir = `${fake.root}/mini-docker/c1`;
  const busy: CgroupFs = {
    mkdir: fake.fs.mkdir,
    rmdir: (path) => {
      throw new Deno.errors.Busy(`Device or resource busy (os error 16): rmdir '${path}'`);
    },
  };
  const started = performance.now();
  await assert.rejects(
    killAndRemove([dir], busy, 100),
    new UserError(`Cannot remove cgroup ${dir}: Device or resource busy`),
  );
  assert.ok(performance.now() - started < 1000);
});

Deno.test("v2 updatePids rewrites pids.max; -1 and 0 are max", () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  const cgroup = driver.create("c1", { pids: { limit: 11 } });
  const file = `${fake.root}/mini-docker/c1/pids.max`;
  assert.equal(read(file), "11");
  cgroup.updatePids(10);
  assert.equal(read(file), "10");
  cgroup.updatePids(0);
  assert.equal(read(file), "max");
  driver.open("c1")!.updatePids(5);
  assert.equal(read(file), "5");
  cgroup.updatePids(-1);
  assert.equal(read(file), "max");
});

Deno.test("v2 device rules: a bad rule is refused before any mkdir", () => {
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  assert.throws(
    () => driver.create("c1", { devices: [{ allow: true, type: "c", major: -5 }] }),
    new UserError(
      `Invalid device rule "allow c -5:* rwm": the major must be -1 (any) or an integer from 0 to 2147483647`,
    ),
  );
  assert.deepEqual(fake.calls, []);
});

Deno.test("v2 device rules the kernel refuses: UserError naming the step, cgroup removed", () => {
  // The fake cgroupfs is a plain directory: the kernel really refuses to attach a device
  // program to it (EBADF: no cgroup behind that fd), as it would a host without BPF.
  using fake = fakeCgroup2();
  const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
  const dir = `${fake.root}/mini-docker/c1`;
  assert.throws(
    () => driver.create("c1", { pids: { limit: 5 }, devices: DOCKER_DEFAULT_RULES }),
    (err) =>
      err instanceof UserError && err.exitCode === 125 &&
      err.message.startsWith(`Cannot attach the device rules' BPF program to cgroup ${dir}: `),
  );
  assert.equal(exists(dir), false);
  assert.deepEqual(fake.calls, [
    "mkdir /mini-docker",
    "mkdir /mini-docker/c1",
    "rmdir /mini-docker/c1",
  ]);
});

// ---- Real kernel: the cgroup2 mount of this hybrid host, which has no controllers. ----

const UNIFIED = "/sys/fs/cgroup/unified";

Deno.test({
  name: "v2 on the real cgroup2 mount (no controllers): join, cgroup.kill, rmdir; limits refused",
  ignore: detectLayout() !== "hybrid",
  async fn() {
    const parent = `mini-docker-test-cg-${crypto.randomUUID().slice(0, 8)}`;
    const driver = new CgroupV2Driver({ root: UNIFIED, parent });
    let child: Deno.ChildProcess | undefined;
    try {
      assert.throws(
        () => driver.create("c1", { memory: { limit: 64 * MiB } }),
        new UserError(
          `Cannot apply --memory: the memory controller is not enabled on this host (cgroup v2 at ${UNIFIED})`,
        ),
      );
      assert.equal(exists(`${UNIFIED}/${parent}`), false);
      const cgroup = driver.create("c1", {});
      child = new Deno.Command("sleep", { args: ["60"], stdout: "null", stderr: "null" }).spawn();
      Deno.writeTextFileSync(cgroup.procsFiles[0]!, String(child.pid));
      assert.deepEqual(cgroup.pids(), [child.pid]);
      const stats = cgroup.stats();
      assert.equal(typeof stats.cpuUsageUsec, "number"); // cpu.stat is a core file in v2
      assert.equal(stats.memoryUsage, undefined);
      // The freezer is a core file too: the process stops ("T" is how a frozen task shows in
      // v2's /proc) and goes on once thawed; a destroy of a frozen cgroup kills it.
      await cgroup.freeze();
      assert.equal(cgroup.frozen(), true);
      assert.match(read(`/proc/${child.pid}/stat`).replace(/^.*\) /, ""), /^[ST] /);
      await cgroup.thaw();
      assert.equal(cgroup.frozen(), false);
      await cgroup.freeze();
      await cgroup.destroy();
      assert.equal((await child.status).signal, "SIGKILL");
      child = undefined;
      assert.equal(exists(`${UNIFIED}/${parent}/c1`), false);
    } finally {
      if (child) {
        child.kill("SIGKILL");
        await child.status;
      }
      for (const name of driver.list()) await driver.open(name)?.destroy();
      if (exists(`${UNIFIED}/${parent}`)) Deno.removeSync(`${UNIFIED}/${parent}`);
    }
  },
});

Deno.test("v2 swap accounting: memory.swap.max in a cgroup below the root", () => {
  {
    using fake = fakeCgroup2();
    const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
    driver.create("c1", {});
    assert.equal(driver.swapAccounting(), true);
  }
  {
    using fake = fakeCgroup2(ALL, { noSwap: true });
    const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
    driver.create("c1", {});
    assert.equal(driver.swapAccounting(), false);
  }
  {
    // No cgroup below the root has the memory controller yet: the kernel's default answers
    // (swap accounting is on unless booted with swapaccount=0).
    using fake = fakeCgroup2("cpu pids");
    const driver = new CgroupV2Driver({ root: fake.root, parent: "mini-docker", fs: fake.fs });
    const cmdline = Deno.readTextFileSync("/proc/cmdline");
    assert.equal(driver.swapAccounting(), !/\bswapaccount=0\b/.test(cmdline));
  }
});

/**
 * A real cgroup2 hierarchy to create containers' cgroups in: the root in the cgroup2 VM, the
 * controller-less mount of this hybrid host otherwise (device programs need no controller).
 */
const REAL_CGROUP2 = detectLayout() === "v2"
  ? "/sys/fs/cgroup"
  : detectLayout() === "hybrid"
  ? UNIFIED
  : undefined;

Deno.test({
  name: "v2 create with device rules: the program holds every process of the cgroup",
  ignore: REAL_CGROUP2 === undefined,
  async fn() {
    const root = REAL_CGROUP2!;
    const parent = `mini-docker-test-cg-${crypto.randomUUID().slice(0, 8)}`;
    const driver = new CgroupV2Driver({ root, parent });
    const tmp = Deno.makeTempDirSync({ prefix: "mini-docker-dev-" });
    try {
      const cgroup = driver.create("c1", { devices: DOCKER_DEFAULT_RULES });
      // Without rules, the same host gives no program: everything opens.
      const open = driver.create("c2", {});
      mknodOutside(`${tmp}/mem`, "c", 1, 1);
      mknodOutside(`${tmp}/loop`, "b", 7, 0);
      const probes = [
        { read: "/dev/null" },
        { readWrite: "/dev/zero" },
        { read: `${tmp}/mem` },
        { read: `${tmp}/loop` },
        { mknod: `${tmp}/mem2`, type: "c", major: 1, minor: 1 },
        { mknod: `${tmp}/fuse`, type: "c", major: 10, minor: 229 },
      ] as const;
      const results = await probeDevices(cgroup.procsFiles, probes);
      assert.deepEqual(results.slice(0, 2), ["ok", "ok"]);
      assert.deepEqual(results.map(deviceVerdict), [
        "allowed",
        "allowed",
        "denied",
        "denied",
        "allowed",
        "denied",
      ]);
      const unruled = await probeDevices(open.procsFiles, [
        { read: `${tmp}/mem` },
        { read: `${tmp}/loop` },
        { mknod: `${tmp}/fuse2`, type: "c", major: 10, minor: 229 },
      ]);
      assert.deepEqual(unruled.map(deviceVerdict), ["allowed", "allowed", "allowed"]);
      await cgroup.destroy();
      await open.destroy();
      assert.deepEqual(driver.list(), []);
    } finally {
      Deno.removeSync(tmp, { recursive: true });
      for (const name of driver.list()) await driver.open(name)?.destroy();
      if (exists(`${root}/${parent}`)) Deno.removeSync(`${root}/${parent}`);
    }
  },
});

Deno.test({
  name: "v2 updatePids on a pure v2 host: the kernel's pids.max follows",
  ignore: detectLayout() !== "v2",
  async fn() {
    const parent = `mini-docker-test-cg-${crypto.randomUUID().slice(0, 8)}`;
    const driver = new CgroupV2Driver({ root: "/sys/fs/cgroup", parent });
    try {
      const cgroup = driver.create("c1", { pids: { limit: 11 } });
      const file = `/sys/fs/cgroup/${parent}/c1/pids.max`;
      cgroup.updatePids(10);
      assert.equal(read(file), "10\n");
      cgroup.updatePids(-1);
      assert.equal(read(file), "max\n");
      await cgroup.destroy();
    } finally {
      for (const name of driver.list()) await driver.open(name)?.destroy();
      if (exists(`/sys/fs/cgroup/${parent}`)) Deno.removeSync(`/sys/fs/cgroup/${parent}`);
    }
  },
});
