/** Layout detection and driver choice: for real on this (hybrid) machine, and on fake roots. */
import assert from "node:assert/strict";
import { cgroupDriver, detectLayout } from "./manager.ts";

Deno.test("detectLayout: this machine is hybrid, and the driver is v1", {
  // The cgroup v2 VM (tests/cgroup2) is the other kind of host.
  ignore: Deno.env.get("MINI_DOCKER_CGROUP2_VM") === "1",
}, () => {
  assert.equal(detectLayout(), "hybrid");
  assert.equal(cgroupDriver({ parent: "mini-docker-test-unused" }).version, 1);
});

Deno.test("detectLayout on fake roots: v2 by its root cgroup.controllers, v1 without unified", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-fake-cgroup-" });
  try {
    assert.equal(detectLayout(root), "v1");
    Deno.mkdirSync(`${root}/unified`);
    Deno.writeTextFileSync(`${root}/unified/cgroup.controllers`, "hugetlb\n");
    assert.equal(detectLayout(root), "hybrid");
    Deno.writeTextFileSync(`${root}/cgroup.controllers`, "cpuset cpu io memory pids\n");
    assert.equal(detectLayout(root), "v2");
    assert.equal(cgroupDriver({ root, parent: "mini-docker" }).version, 2);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("detectLayout is cheap: two stats at most", () => {
  const rounds = 1000;
  const started = performance.now();
  for (let i = 0; i < rounds; i++) detectLayout();
  const us = ((performance.now() - started) / rounds) * 1000;
  console.log(`detectLayout: ${us.toFixed(1)} µs`);
  assert.ok(us < 1000);
});
