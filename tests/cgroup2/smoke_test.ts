/**
 * Smoke test of the cgroup2 VM (tests/cgroup2/run): the kernel gives a pure cgroup v2 hierarchy
 * at /sys/fs/cgroup with the controllers mini-docker needs, and a child cgroup with a memory
 * limit can be created, joined and removed. It only runs inside that VM (the VM sets
 * MINI_DOCKER_CGROUP2_VM=1); elsewhere it is ignored, since this machine's layout is hybrid.
 */
import assert from "node:assert/strict";

const ROOT = "/sys/fs/cgroup";
const inVm = Deno.env.get("MINI_DOCKER_CGROUP2_VM") === "1";

function words(path: string): string[] {
  return Deno.readTextFileSync(path).trim().split(/\s+/).filter((w) => w !== "");
}

/** The filesystem type mounted at `mountPoint`, from /proc/self/mountinfo (the last mount wins). */
function fsType(mountPoint: string): string | undefined {
  let type: string | undefined;
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const [left, right] = line.split(" - ");
    if (left?.split(" ")[4] === mountPoint) type = right?.split(" ")[0];
  }
  return type;
}

/** Removes an empty cgroup, retrying while the kernel still counts a just-reaped process. */
async function removeCgroup(dir: string): Promise<void> {
  for (let i = 0;; i++) {
    try {
      Deno.removeSync(dir);
      return;
    } catch (e) {
      if (!(e instanceof Deno.errors.Busy) || i === 50) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

Deno.test({
  name: "cgroup2 VM: /sys/fs/cgroup is a pure cgroup v2 root with every controller enabled",
  ignore: !inVm,
  fn() {
    assert.equal(fsType(ROOT), "cgroup2");
    const controllers = words(`${ROOT}/cgroup.controllers`);
    for (const c of ["cpuset", "cpu", "io", "memory", "pids"]) {
      assert.ok(controllers.includes(c), `controller ${c} missing from ${controllers.join(" ")}`);
    }
    const enabled = words(`${ROOT}/cgroup.subtree_control`);
    for (const c of ["memory", "cpu", "pids"]) {
      assert.ok(
        enabled.includes(c),
        `controller ${c} not in subtree_control: ${enabled.join(" ")}`,
      );
    }
    // No v1 hierarchy at all: cgroup_no_v1=all.
    const v1 = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
      .filter((l) => l.split(" - ")[1]?.startsWith("cgroup "));
    assert.deepEqual(v1, []);
  },
});

Deno.test({
  name: "cgroup2 VM: a child cgroup with memory.max=64M takes a process and is removed",
  ignore: !inVm,
  async fn() {
    const dir = `${ROOT}/cgroup2-smoke-${Deno.pid}`;
    Deno.mkdirSync(dir);
    let child: Deno.ChildProcess | undefined;
    try {
      Deno.writeTextFileSync(`${dir}/memory.max`, "64M");
      assert.equal(Deno.readTextFileSync(`${dir}/memory.max`).trim(), String(64 * 1024 * 1024));
      Deno.writeTextFileSync(`${dir}/pids.max`, "16");
      assert.equal(Deno.readTextFileSync(`${dir}/pids.max`).trim(), "16");

      child = new Deno.Command("sleep", { args: ["60"], stdin: "null", stdout: "null" }).spawn();
      Deno.writeTextFileSync(`${dir}/cgroup.procs`, String(child.pid));
      assert.deepEqual(words(`${dir}/cgroup.procs`), [String(child.pid)]);
      assert.equal(
        Deno.readTextFileSync(`/proc/${child.pid}/cgroup`).trim(),
        `0::/cgroup2-smoke-${Deno.pid}`,
      );
      assert.equal(Deno.readTextFileSync(`${dir}/pids.current`).trim(), "1");
    } finally {
      if (child) {
        child.kill("SIGKILL");
        await child.status;
      }
      await removeCgroup(dir);
    }
    assert.throws(() => Deno.statSync(dir), Deno.errors.NotFound);
  },
});
