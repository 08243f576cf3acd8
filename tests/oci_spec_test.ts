/**
 * What the OCI runtime validation suite (opencontainers/runtime-tools, bench/oci_validation.sh)
 * checks of `mini-docker runtime` and runc passes on the test machines, covered here because CI
 * cannot fetch that suite: the spec's mounts in the container's mount table in their listed order
 * (/proc first, although its procfs is mounted last), a seccomp profile written before clone3 and
 * close_range (the suite's own), `process.user.umask`, `linux.rootfsPropagation`, a `cgroupsPath`
 * of one component, a mount namespace joined by path.
 */
import assert from "node:assert/strict";
import { REPO, TestEnv } from "./helpers.ts";
import { Bundle } from "./helpers/oci_bundle.ts";
import { cgroupDriver } from "../cgroups/manager.ts";
import * as libc from "../base/libc.ts";

/** /proc/self/mountinfo's mount points and types, in its order. */
function mountTable(text: string): { point: string; type: string }[] {
  return text.trim().split("\n").map((line) => {
    const fields = line.split(" ");
    return { point: fields[4] ?? "", type: fields[fields.indexOf("-") + 1] ?? "" };
  });
}

/**
 * Docker's profile as a plain allow-list that names neither clone3 nor close_range, but names
 * calls numbered above them (landlock's): such a profile denies both by its default action.
 */
function olderProfile(): unknown {
  const docker = JSON.parse(Deno.readTextFileSync(`${REPO}/security/seccomp_default.json`));
  const names = new Set<string>(["landlock_create_ruleset", "arch_prctl"]);
  for (const s of docker.syscalls) {
    if (s.action !== "SCMP_ACT_ALLOW" || s.args?.length || s.includes || s.excludes) continue;
    for (const name of s.names) names.add(name);
  }
  names.delete("clone3");
  names.delete("close_range");
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    syscalls: [
      { names: [...names].sort(), action: "SCMP_ACT_ALLOW" },
      // clone without the namespace flags, as in the suite's profile.
      {
        names: ["clone"],
        action: "SCMP_ACT_ALLOW",
        args: [{ index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" }],
      },
    ],
  };
}

Deno.test("runtime: mounts in the listed order, an older seccomp profile, umask, root propagation, a one-component cgroupsPath", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);

  // runc's default mounts: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, in this order;
  // then an unbindable one (a mount that cannot be copied as it is).
  await b.write("m1", (c) => {
    c.process.args = ["cat", "/proc/self/mountinfo"];
    c.mounts.push({ destination: "/tmp", type: "tmpfs", source: "t", options: ["unbindable"] });
  });
  const r = await b.rt(["run", "--bundle", b.dir, "m1"]);
  assert.equal(r.code, 0, r.stderr);
  const table = mountTable(r.stdout);
  const expected = [
    ["/proc", "proc"],
    ["/dev", "tmpfs"],
    ["/dev/pts", "devpts"],
    ["/dev/shm", "tmpfs"],
    ["/dev/mqueue", "mqueue"],
    ["/sys", "sysfs"],
    ["/tmp", "tmpfs"],
  ];
  const at = expected.map(([point, type]) =>
    table.findIndex((m) => m.point === point && m.type === type)
  );
  assert.ok(at.every((i) => i >= 0), `every mount is there: ${r.stdout}`);
  assert.deepEqual(at, [...at].sort((x, y) => x - y), `in the listed order: ${r.stdout}`);
  assert.match(r.stdout, /^.* \/tmp .* unbindable - tmpfs .*$/m, "still unbindable");
  assert.deepEqual(b.leftovers(), []);

  // The suite's default profile: without clone3 and close_range, which glibc's posix_spawn
  // calls (the container's first process is spawned under the filter).
  await b.write("s1", (c) => {
    c.process.args = ["sh", "-c", "echo filtered $(grep Seccomp: /proc/self/status)"];
    c.linux.seccomp = olderProfile();
  });
  const s = await b.rt(["run", "--bundle", b.dir, "s1"]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^filtered Seccomp: 2$/m);
  assert.deepEqual(b.leftovers(), []);

  // process.user.umask, and the root's propagation (applied once /proc is there: it still is;
  // the first optional field of the root's line: a peer group, or none).
  for (const [propagation, tag] of [["rshared", /shared:\d+/], ["private", /^-$/]] as const) {
    await b.write("u1", (c) => {
      c.process.user.umask = 0o077;
      c.linux.rootfsPropagation = propagation;
      c.process.args = [
        "sh",
        "-c",
        "umask; test -e /proc/self/status || exit 9; awk '$5 == \"/\" { print $7 }' /proc/self/mountinfo",
      ];
    });
    const u = await b.rt(["run", "--bundle", b.dir, "u1"]);
    assert.equal(u.code, 0, u.stderr);
    const [mask, optional] = u.stdout.split("\n");
    assert.equal(mask, "0077");
    assert.match(optional ?? "", tag, propagation);
    assert.deepEqual(b.leftovers(), []);
  }

  // exec --process with its own umask (0022 otherwise, as the first process).
  await b.write("x1", (c) => c.process.args = ["sleep", "30"]);
  assert.equal(await b.rtTo(`${t.dir}/x1.out`, ["create", "--bundle", b.dir, "x1"]), 0);
  try {
    assert.equal((await b.rt(["start", "x1"])).code, 0);
    const processFile = `${t.dir}/process.json`;
    for (const [umask, shown] of [[0o027, "0027"], [undefined, "0022"]] as const) {
      Deno.writeTextFileSync(
        processFile,
        JSON.stringify({
          args: ["sh", "-c", "umask"],
          cwd: "/",
          env: ["PATH=/bin"],
          user: { uid: 0, gid: 0, ...(umask !== undefined && { umask }) },
        }),
      );
      const x = await b.rt(["exec", "--process", processFile, "x1"]);
      assert.equal(x.code, 0, x.stderr);
      assert.equal(x.stdout.trim(), shown);
    }
  } finally {
    assert.equal((await b.rt(["delete", "--force", "x1"])).code, 0);
  }
  assert.deepEqual(b.leftovers(), []);

  // A cgroupsPath of one component: a cgroup at the hierarchy's root, as runc makes it; it is
  // removed with the container.
  const top = `${t.cgroupParent}-top`;
  await b.write("g1", (c) => {
    c.linux.cgroupsPath = `/${top}`;
    c.process.args = ["cat", "/proc/self/cgroup"];
  });
  try {
    const g = await b.rt(["run", "--bundle", b.dir, "g1"]);
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, new RegExp(`:pids:/${top}$|^0::/${top}$`, "m"));
    assert.deepEqual(b.leftovers(), []);
    assert.equal(cgroupDriver({ parent: "" }).open(top), undefined, "its cgroup removed");
  } finally {
    await cgroupDriver({ parent: "" }).open(top)?.destroy();
  }
});

Deno.test("runtime: a mount namespace joined by path gets the container's /proc, hidden paths, mounts in order", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  // A mount namespace of another process, as the suite makes one (util-linux's unshare).
  const holder = new Deno.Command("unshare", {
    args: ["--mount", "--fork", "sleep", "60"],
    stdin: "null",
  }).spawn();
  try {
    let sleeper: number | undefined;
    for (let i = 0; i < 100 && sleeper === undefined; i++) {
      try {
        const children = Deno.readTextFileSync(
          `/proc/${holder.pid}/task/${holder.pid}/children`,
        ).trim();
        if (children !== "") sleeper = Number(children.split(" ")[0]);
      } catch { /* not yet */ }
      if (sleeper === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(sleeper !== undefined, "unshare's child");
    const ns = `/proc/${sleeper}/ns/mnt`;
    await b.write("j1", (c) => {
      c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) =>
        n.type === "mount" ? { type: "mount", path: ns } : n
      );
      c.process.args = [
        "sh",
        "-c",
        "readlink /proc/self/ns/mnt; cat /proc/1/comm; cat /proc/timer_list | wc -c; awk '{ print $5, $(NF - 2) }' /proc/self/mountinfo",
      ];
    });
    const r = await b.rt(["run", "--bundle", b.dir, "j1"]);
    if (!libc.procTakesPidns()) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /joining a mount namespace needs Linux 6\.18/);
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    const [joined, comm, masked, ...table] = r.stdout.trim().split("\n");
    assert.equal(joined, Deno.readLinkSync(ns), "the namespace joined");
    assert.equal(comm, "sh", "its own PID namespace's procfs");
    assert.equal(masked?.trim(), "0", "a masked /proc path");
    const proc = table.indexOf("/proc proc");
    assert.ok(proc > 0 && proc < table.indexOf("/dev tmpfs"), `in order: ${table.join("; ")}`);
    assert.deepEqual(b.leftovers(), []);
  } finally {
    holder.kill("SIGKILL");
    await holder.status;
  }
});
