/**
 * `mini-docker runtime` with a user namespace (OCI `linux.uidMappings`/`gidMappings`, a "user"
 * namespace): the container's root is an unprivileged user of the host. Its first process is
 * born in the user namespace and the container's other new namespaces at once (base/clone.ts,
 * container/first_process.ts), so those belong to the user namespace; the thread makes the
 * container's root from outside; the process sets its own credentials, capabilities and filter.
 */
import assert from "node:assert/strict";
import { TestEnv } from "./helpers.ts";
import { Bundle, type Config } from "./helpers/oci_bundle.ts";

const HOST_UID = 300000;
const HOST_GID = 400000;
/** The ids of one container alone, whose processes can be looked for on the host. */
const LONE_UID = 500000;

function userns(c: Config): void {
  c.linux.namespaces.push({ type: "user" });
  c.linux.uidMappings = [{ containerID: 0, hostID: HOST_UID, size: 65536 }];
  c.linux.gidMappings = [{ containerID: 0, hostID: HOST_GID, size: 65536 }];
}

/** A field of /proc/PID/status, as the host reads it. */
function status(pid: number, field: string): string {
  const line = Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")
    .find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim() ?? "";
}

Deno.test("runtime: a user namespace: the container's root is a user of the host, its namespaces its own", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  // A host directory of the host's root, writable by it only, bound in read-write.
  const hostDir = `${t.dir}/host-owned`;
  Deno.mkdirSync(hostDir, { mode: 0o755 });
  await b.write("u1", (c) => {
    userns(c);
    c.mounts.push({
      destination: "/host",
      type: "bind",
      source: hostDir,
      options: ["rbind", "rw"],
    });
    c.process.args = [
      "sh",
      "-c",
      [
        "id -u; id -g",
        "cat /proc/self/uid_map /proc/self/gid_map",
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status",
        // The standard files are the container root's, or the host's root's (nobody).
        "stat -c '%u:%g %n' /dev /dev/null /dev/shm /bin",
        "mkdir /dev/made && echo dev-writable",
        "touch /host/x 2>/dev/null && echo host-written || echo host-refused",
        "hostname",
      ].join("; "),
    ];
    c.hostname = "inside";
  });
  const r = await b.rt(["run", "--bundle", b.dir, "u1"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => l.trim().replace(/\s+/g, " "));
  assert.deepEqual(lines.slice(0, 4), [
    "0",
    "0",
    `0 ${HOST_UID} 65536`,
    `0 ${HOST_GID} 65536`,
  ]);
  // runc's default spec's capabilities (AUDIT_WRITE, KILL, NET_BIND_SERVICE), bounding and
  // effective: root of its namespace, with no more than the spec gives.
  assert.equal(lines[4], "CapEff: 0000000020000420");
  assert.equal(lines[5], "CapBnd: 0000000020000420");
  assert.equal(lines[6], "NoNewPrivs: 1");
  assert.deepEqual(lines.slice(7, 11), [
    "0:0 /dev",
    "0:0 /dev/null",
    "0:0 /dev/shm",
    "65534:65534 /bin",
  ]);
  assert.equal(lines[11], "dev-writable");
  // Root in the container, not on the host: a host directory of the host's root stays closed.
  assert.equal(lines[12], "host-refused");
  assert.equal(lines[13], "inside");
  assert.deepEqual([...Deno.readDirSync(hostDir)], []);
  assert.deepEqual(b.leftovers(), []);

  // As the host sees it, after create: a process of the mapped ids, waiting at its gate, in
  // namespaces (every one of the spec's) none of which is the host's.
  await b.write("u2", (c) => {
    userns(c);
    c.linux.namespaces.push({ type: "cgroup" });
    c.process.args = ["sleep", "30"];
  });
  assert.equal(await b.rtTo(`${t.dir}/u2.out`, ["create", "--bundle", b.dir, "u2"]), 0);
  try {
    const state = await b.state("u2");
    assert.equal(state.status, "created");
    const pid = state.pid as number;
    assert.equal(status(pid, "Uid").split(/\s+/)[0], String(HOST_UID));
    assert.equal(status(pid, "Gid").split(/\s+/)[0], String(HOST_GID));
    for (const ns of ["user", "mnt", "pid", "uts", "ipc", "net", "cgroup"]) {
      assert.notEqual(
        Deno.readLinkSync(`/proc/${pid}/ns/${ns}`),
        Deno.readLinkSync(`/proc/self/ns/${ns}`),
        ns,
      );
    }
    assert.equal((await b.rt(["start", "u2"])).code, 0);
    assert.equal(status(pid, "Name"), "sleep");
    // exec: in the same user namespace (and the others), as the spec's user or another.
    const x = await b.rt([
      "exec",
      "u2",
      "sh",
      "-c",
      "test $(readlink /proc/self/ns/user) = $(readlink /proc/1/ns/user) && id -u && cat /proc/self/uid_map",
    ]);
    assert.equal(x.code, 0, x.stderr);
    assert.deepEqual(x.stdout.trim().split("\n").map((l) => l.trim().replace(/\s+/g, " ")), [
      "0",
      `0 ${HOST_UID} 65536`,
    ]);
    const u = await b.rt(["exec", "--user", "1000:1000", "u2", "id"]);
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stdout, /^uid=1000 gid=1000/);
    const missing = await b.rt(["exec", "u2", "/no/such"]);
    assert.equal(missing.code, 127, missing.stderr);
    // An id the maps leave out: one line, before anything runs.
    const unmapped = await b.rt(["exec", "--user", "70000", "u2", "id"]);
    assert.equal(unmapped.code, 1);
    assert.match(unmapped.stderr, /uid 70000 has no id on the host.*linux\.uidMappings/);
  } finally {
    assert.equal((await b.rt(["delete", "--force", "u2"])).code, 0);
  }
  assert.deepEqual(b.leftovers(), []);
});

Deno.test("runtime: a user namespace: its namespaces belong to it; filter, user, limits as without one", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  // CAP_SYS_ADMIN in the container (its user namespace): it may mount in its own mount
  // namespace and name its UTS namespace, which it could not if they were the host's.
  await b.write("a1", (c) => {
    userns(c);
    c.process.capabilities.bounding.push("CAP_SYS_ADMIN");
    c.process.capabilities.effective.push("CAP_SYS_ADMIN");
    c.process.capabilities.permitted.push("CAP_SYS_ADMIN");
    c.process.args = [
      "sh",
      "-c",
      "mount -t tmpfs none /tmp && echo mounted && hostname renamed && hostname",
    ];
  });
  const a = await b.rt(["run", "--bundle", b.dir, "a1"]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, "mounted\nrenamed\n");
  assert.notEqual(Deno.hostname(), "renamed");

  // A seccomp filter (mkdir denied), a user with supplementary groups, rlimits, oom_score_adj.
  await b.write("f1", (c) => {
    userns(c);
    c.process.user = { uid: 1000, gid: 1000, additionalGids: [5, 27] };
    c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 512, hard: 1024 }];
    c.process.oomScoreAdj = 100;
    c.linux.seccomp = {
      defaultAction: "SCMP_ACT_ALLOW",
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
    };
    c.process.args = [
      "sh",
      "-c",
      "id; ulimit -n; cat /proc/self/oom_score_adj; grep Seccomp: /proc/self/status; mkdir /tmp/d || echo denied",
    ];
  });
  const f = await b.rt(["run", "--bundle", b.dir, "f1"]);
  assert.equal(f.code, 0, f.stderr);
  const out = f.stdout.trim().split("\n").map((l) => l.replace(/\s+/g, " "));
  assert.match(out[0]!, /^uid=1000 gid=1000 groups=5,27$/);
  assert.deepEqual(out.slice(1, 4), ["512", "100", "Seccomp: 2"]);
  assert.match(out.at(-1)!, /denied/);
  assert.deepEqual(b.leftovers(), []);

  // What is refused, in one line each, with nothing left behind.
  const refused: [string, (c: Config) => void, RegExp][] = [
    ["no maps", (c) => c.linux.namespaces.push({ type: "user" }), /needs linux\.uidMappings/],
    [
      "maps without the namespace",
      (c) => c.linux.uidMappings = [{ containerID: 0, hostID: HOST_UID, size: 10 }],
      /need a new "user" namespace/,
    ],
    [
      "a namespace by path",
      (c) => {
        userns(c);
        c.linux.namespaces = c.linux.namespaces.map((n: Config) =>
          n.type === "user" ? { type: "user", path: "/proc/1/ns/user" } : n
        );
      },
      /Joining the user namespace.*not supported/,
    ],
    [
      "an unmapped user",
      (c) => (userns(c), c.process.user = { uid: 70000, gid: 0 }),
      /uid 70000 has no id on the host/,
    ],
  ];
  for (const [what, edit, message] of refused) {
    await b.write("r1", edit);
    const r = await b.rt(["create", "--bundle", b.dir, "r1"]);
    assert.equal(r.code, 1, what); // runc's exit code for its own errors
    assert.match(r.stderr, message, what);
    assert.equal(r.stderr.trim().split("\n").length, 1, `${what}: one line: ${r.stderr}`);
    assert.deepEqual(b.leftovers(), [], what);
  }
  // A command that is not there: 127, and no process left (it was born before the root was
  // made; it is killed and reaped).
  await b.write("m1", (c) => {
    userns(c);
    c.linux.uidMappings = [{ containerID: 0, hostID: LONE_UID, size: 65536 }];
    c.process.args = ["/no/such"];
  });
  const m = await b.rt(["run", "--bundle", b.dir, "m1"]);
  assert.equal(m.code, 127, m.stderr);
  assert.deepEqual(b.leftovers(), []);
  const orphans = [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).filter((e) => {
    try {
      return status(Number(e.name), "Uid").split(/\s+/)[0] === String(LONE_UID);
    } catch {
      return false;
    }
  });
  assert.deepEqual(orphans, [], "no process of the container's ids is left");
});
