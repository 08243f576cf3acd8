/** Layout detection and driver choice, on fake roots (the real hosts are whatever runs the tests). */
import assert from "node:assert/strict";
import { cgroupDriver, detectLayout } from "./manager.ts";

Deno.test("detectLayout on fake roots: v2 by its root cgroup.controllers, v1 without unified; the driver follows", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-fake-cgroup-" });
  try {
    assert.equal(detectLayout(root), "v1");
    Deno.mkdirSync(`${root}/unified`);
    Deno.writeTextFileSync(`${root}/unified/cgroup.controllers`, "hugetlb\n");
    assert.equal(detectLayout(root), "hybrid");
    assert.equal(cgroupDriver({ root, parent: "mini-docker" }).version, 1);
    Deno.writeTextFileSync(`${root}/cgroup.controllers`, "cpuset cpu io memory pids\n");
    assert.equal(detectLayout(root), "v2");
    assert.equal(cgroupDriver({ root, parent: "mini-docker" }).version, 2);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
