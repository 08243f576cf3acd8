/**
 * mini-docker as an OCI runtime (`mini-docker runtime`, runc's command line): a bundle of the
 * busybox root filesystem driven through create, state, start, ps, pause, resume, kill and
 * delete; `run`'s exit code; config.json fields it does not support refused in one line with
 * nothing made; and containerd 1.6 as the real client (`ctr run --runc-binary`), whose shim
 * (io.containerd.runc.v2) calls the runtime as it calls runc.
 */
import assert from "node:assert/strict";
import { type Result, TestEnv, waitFor, withDeadline } from "./helpers.ts";
import { cgroupDriver, detectLayout } from "../cgroups/manager.ts";
import { writeDockerArchive } from "./helpers/docker_archive.ts";
import { Bundle, type Config, MAIN } from "./helpers/oci_bundle.ts";

const v1 = detectLayout() !== "v2";
const decoder = new TextDecoder();

Deno.test("runtime: create leaves the process at its gate; start, state, ps, pause, kill, delete", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  await b.write("c1", (c) => {
    // runc's default spec mounts the container's cgroup at /sys/fs/cgroup.
    c.process.args = [
      "sh",
      "-c",
      "echo started $(hostname) $(ls /sys/fs/cgroup) $(grep memory /proc/self/cgroup) not-root=[$(grep -v ':/$' /proc/self/cgroup)] $(grep '^0::' /proc/self/cgroup) end; exec sleep 60",
    ];
    // A cgroup namespace of its own (v1: the thread joins; v2: mini-docker passes through the
    // cgroup): its cgroup is its "/" in every hierarchy.
    c.linux.namespaces.push({ type: "cgroup" });
    c.hostname = "oci-box";
  });
  const out = `${t.dir}/c1.out`;
  const pidFile = `${t.dir}/c1.pid`;
  assert.equal(await b.rtTo(out, ["create", "--bundle", b.dir, "--pid-file", pidFile, "c1"]), 0);
  try {
    const pid = Number(Deno.readTextFileSync(pidFile));
    assert.ok(pid > 0);
    let s = await b.state("c1");
    assert.equal(s.status, "created");
    assert.equal(s.pid, pid);
    assert.equal(s.id, "c1");
    assert.equal(s.bundle, b.dir);
    assert.equal(s.ociVersion, "1.0.2");
    // Its namespaces and cgroup exist; its command has not run.
    assert.notEqual(
      Deno.readLinkSync(`/proc/${pid}/ns/pid`),
      Deno.readLinkSync("/proc/self/ns/pid"),
    );
    assert.notEqual(
      Deno.readLinkSync(`/proc/${pid}/ns/mnt`),
      Deno.readLinkSync("/proc/self/ns/mnt"),
    );
    const cgroup = cgroupDriver({ parent: t.cgroupParent }).open("c1");
    assert.ok(cgroup, "the container's cgroup exists");
    assert.deepEqual(cgroup.pids(), [pid]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(Deno.readTextFileSync(out), "", "nothing ran before start");
    const again = await b.rt(["create", "--bundle", b.dir, "c1"]);
    assert.equal(again.code, 1);
    assert.equal(again.stderr.trim(), "container with id exists: c1");

    // start opens the gate.
    const started = await b.rt(["start", "c1"]);
    assert.equal(started.code, 0, started.stderr);
    await waitFor(() => Deno.readTextFileSync(out).includes("started oci-box"), 10_000, "output");
    // Its own cgroup: v1's hierarchies (memory among them), or v2's files.
    assert.match(Deno.readTextFileSync(out), /started oci-box .*(memory|cgroup\.procs)/);
    if (v1) assert.match(Deno.readTextFileSync(out), /:memory:\/ not-root/);
    assert.match(Deno.readTextFileSync(out), / not-root=\[\] 0::\/ end/);
    s = await b.state("c1");
    assert.equal(s.status, "running");
    assert.equal(
      (await b.rt(["start", "c1"])).stderr.trim(),
      "cannot start an already running container",
    );
    const ps = await b.rt(["ps", "--format", "json", "c1"]);
    assert.deepEqual(JSON.parse(ps.stdout), [pid]);
    const list = await b.rt(["list", "--format", "json"]);
    assert.deepEqual(JSON.parse(list.stdout).map((x: { id: string }) => x.id), ["c1"]);

    assert.equal((await b.rt(["pause", "c1"])).code, 0);
    assert.equal((await b.state("c1")).status, "paused");
    assert.ok(cgroup.frozen());
    assert.equal((await b.rt(["resume", "c1"])).code, 0);
    assert.equal((await b.state("c1")).status, "running");

    // update: runc's flags and its --resources document.
    Deno.writeTextFileSync(`${t.dir}/resources.json`, JSON.stringify({ pids: { limit: 50 } }));
    const updated = await b.rt([
      "update",
      "--memory",
      "67108864",
      "--resources",
      `${t.dir}/resources.json`,
      "c1",
    ]);
    assert.equal(updated.code, 0, updated.stderr);
    const files = cgroup.paths.map((p) => `${p}/memory.limit_in_bytes`).concat(
      cgroup.paths.map((p) => `${p}/memory.max`),
    ).filter((f) => {
      try {
        return Deno.statSync(f).isFile;
      } catch {
        return false;
      }
    });
    assert.equal(Deno.readTextFileSync(files[0]!).trim(), "67108864");
    const pidsMax = cgroup.paths.map((p) => `${p}/pids.max`).find((f) => {
      try {
        return Deno.statSync(f).isFile;
      } catch {
        return false;
      }
    });
    assert.equal(Deno.readTextFileSync(pidsMax!).trim(), "50");

    // events: one stats object, or a stream that ends with the container.
    const stats = await b.rt(["events", "--stats", "c1"]);
    assert.equal(stats.code, 0, stats.stderr);
    const event = JSON.parse(stats.stdout);
    assert.equal(event.type, "stats");
    assert.equal(event.id, "c1");
    assert.equal(event.data.pids.current, 1);
    assert.equal(event.data.memory.usage.limit, 67108864);
    const stream = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "runtime",
        ...b.globals(),
        "events",
        "--interval",
        "200ms",
        "c1",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await new Promise((r) => setTimeout(r, 1500));

    // delete refuses a running container; kill by name.
    const refused = await b.rt(["delete", "c1"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot delete container c1 that is not stopped: running/);
    assert.equal((await b.rt(["kill", "c1", "KILL"])).code, 0);
    const streamed = await withDeadline(stream, "events", () => stream.output(), 20_000);
    assert.equal(streamed.code, 0, decoder.decode(streamed.stderr));
    const lines = decoder.decode(streamed.stdout).trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(lines.length >= 2 && lines.every((l) => l.type === "stats" && l.id === "c1"));
    await waitFor(
      () => {
        try {
          return /^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
        } catch {
          return true;
        }
      },
      10_000,
      "the container to die",
    );
    assert.equal((await b.state("c1")).status, "stopped");
    assert.equal((await b.rt(["kill", "c1", "TERM"])).stderr.trim(), "container not running");
  } finally {
    const r = await b.rt(["delete", "--force", "c1"]);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.deepEqual(b.leftovers(), []);
  const gone = await b.rt(["state", "c1"]);
  assert.equal(gone.code, 1);
  assert.equal(gone.stderr.trim(), "container does not exist");
  // containerd reads the last error line of the log.
  const last = Deno.readTextFileSync(`${b.dir}/log.json`).trim().split("\n").at(-1)!;
  assert.equal(JSON.parse(last).level, "error");
  assert.equal(JSON.parse(last).msg, "container does not exist");
});

Deno.test("runtime: run's exit code; unsupported fields refused in one line, nothing made", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  await b.write("r1", (c) => {
    c.process.args = [
      "sh",
      "-c",
      "test $(cat /proc/self/oom_score_adj) = 100 || exit 9; test $(cat /proc/sys/net/ipv4/tcp_syncookies)$(cat /proc/sys/kernel/shmmni) = 01000 || exit 10; exit 7",
    ];
    c.process.oomScoreAdj = 100;
    c.linux.sysctl = { "net.ipv4.tcp_syncookies": "0", "kernel.shmmni": "1000" };
    c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 512, hard: 512 }];
  });
  const syncookies = Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_syncookies");
  const r = await b.rt(["run", "--bundle", b.dir, "r1"]);
  assert.equal(r.code, 7, r.stderr);
  assert.equal(
    Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_syncookies"),
    syncookies,
    "the host's",
  );
  assert.deepEqual(b.leftovers(), []);

  const refusals: [string, (c: Config) => void, RegExp][] = [
    [
      "a hook with a relative path",
      (c) => c.hooks = { startContainer: [{ path: "bin/true" }] },
      /hooks\.startContainer\[0\]\.path: must be an absolute path/,
    ],
    [
      "time namespace",
      (c) => c.linux.namespaces.push({ type: "time" }),
      /linux\.namespaces\[5\]\.type: the time namespace/,
    ],
    [
      "unknown namespace",
      (c) => c.linux.namespaces.push({ type: "bogus" }),
      /unknown namespace type "bogus"/,
    ],
    [
      "sysctl of the host",
      (c) => c.linux.sysctl = { "vm.swappiness": "10" },
      /linux\.sysctl\["vm\.swappiness"\]: not in a namespace/,
    ],
    [
      "personality flags",
      (c) => c.linux.personality = { domain: "LINUX32", flags: ["x"] },
      /linux\.personality\.flags/,
    ],
    [
      "propagation",
      (c) => c.linux.rootfsPropagation = "bogus",
      /linux\.rootfsPropagation: "bogus": expected one of/,
    ],
    ["apparmor", (c) => c.process.apparmorProfile = "x", /process\.apparmorProfile/],
    [
      "unknown rlimit",
      (c) => c.process.rlimits = [{ type: "RLIMIT_TEST", soft: 1024, hard: 1024 }],
      /process\.rlimits\[0\]\.type: "RLIMIT_TEST" is not a resource limit/,
    ],
    ["blockIO", (c) => c.linux.resources.blockIO = { weight: 10 }, /linux\.resources\.blockIO/],
    [
      "idmap option",
      (c) =>
        c.mounts.push({
          destination: "/x",
          type: "bind",
          source: "/tmp",
          options: ["rbind", "rro"],
        }),
      /mounts\[7\]\.options: "rro"/,
    ],
  ];
  for (const [what, edit, message] of refusals) {
    await b.write("bad", edit);
    const bad = await b.rt(["create", "--bundle", b.dir, "bad"]);
    assert.equal(bad.code, 1, what);
    assert.match(bad.stderr, message, what);
    assert.equal(bad.stderr.trim().split("\n").length, 1, `${what}: one line`);
    const last = Deno.readTextFileSync(`${b.dir}/log.json`).trim().split("\n").at(-1)!;
    assert.deepEqual(JSON.parse(last).msg, bad.stderr.trim(), what);
    assert.deepEqual(b.leftovers(), [], what);
    assert.equal(cgroupDriver({ parent: t.cgroupParent }).open("bad"), undefined, what);
  }
  // A terminal in the foreground, relayed to ours (script(1) gives the runtime one).
  await b.write("t1", (c) => {
    c.process.terminal = true;
    c.process.args = ["sh", "-c", "tty; exit 4"];
  });
  const line = [
    ...b.argv(["run", "--bundle", b.dir]),
    "t1",
  ]
    .map((a) => `'${a}'`).join(" ");
  const onTty = new Deno.Command("script", {
    args: ["-qec", line, "/dev/null"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const ttyRun = await withDeadline(onTty, "runtime run on a terminal", () => onTty.output());
  assert.equal(ttyRun.code, 4, decoder.decode(ttyRun.stderr));
  assert.match(decoder.decode(ttyRun.stdout), /\/dev\/pts\/0/);
  assert.deepEqual(b.leftovers(), []);

  // Hooks in the runtime's namespaces, with the state on their stdin.
  const record = (name: string) => ({
    path: "/bin/sh",
    args: ["sh", "-c", `cat >${t.dir}/${name}.json`],
  });
  await b.write("h1", (c) => {
    c.process.args = ["sh", "-c", "sleep 1; exit 7"];
    c.hooks = {
      prestart: [record("prestart")],
      createRuntime: [record("createRuntime")],
      poststart: [record("poststart")],
      poststop: [record("poststop")],
    };
  });
  const hooked = await b.rt(["run", "--bundle", b.dir, "h1"]);
  assert.equal(hooked.code, 7, hooked.stderr);
  const seen = (name: string) => JSON.parse(Deno.readTextFileSync(`${t.dir}/${name}.json`));
  assert.equal(seen("prestart").status, "creating");
  assert.ok(seen("createRuntime").pid > 0);
  assert.equal(seen("createRuntime").id, "h1");
  assert.equal(seen("poststart").status, "running");
  assert.equal(seen("poststop").status, "stopped");
  assert.deepEqual(b.leftovers(), []);
  for (
    const [hook, message] of [
      [{ path: "/bin/false" }, /^createRuntime hook #0 \(\/bin\/false\): exited with status 1$/],
      [
        { path: "/bin/sleep", args: ["sleep", "5"], timeout: 1 },
        /^createRuntime hook #0 \(\/bin\/sleep\): timed out after 1 s$/,
      ],
    ] as const
  ) {
    await b.write("h2", (c) => c.hooks = { createRuntime: [hook] });
    const failed = await b.rt(["create", "--bundle", b.dir, "h2"]);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr.trim(), message);
    assert.deepEqual(b.leftovers(), []);
    assert.equal(cgroupDriver({ parent: t.cgroupParent }).open("h2"), undefined);
  }

  const systemd = await b.rt(["--systemd-cgroup", "state", "x"]);
  assert.equal(systemd.code, 1);
  assert.match(systemd.stderr, /^--systemd-cgroup is not supported/);
});

/** containerd of its own: config, root, state and sockets under `dir`, no CRI plugin. */
async function startContainerd(dir: string): Promise<Deno.ChildProcess> {
  Deno.writeTextFileSync(
    `${dir}/config.toml`,
    [
      "version = 2",
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = "${dir}/containerd.sock"`,
      "[ttrpc]",
      `  address = "${dir}/containerd.sock.ttrpc"`,
    ].join("\n") + "\n",
  );
  const log = await Deno.open(`${dir}/containerd.log`, { write: true, create: true });
  const child = new Deno.Command("containerd", {
    args: ["--config", `${dir}/config.toml`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  child.stderr.pipeTo(log.writable).catch(() => {});
  await waitFor(
    () => {
      try {
        return Deno.statSync(`${dir}/containerd.sock`).isSocket === true;
      } catch {
        return false;
      }
    },
    20_000,
    "containerd's socket",
  );
  return child;
}

Deno.test("runtime: containerd 1.6 runs containers with it (ctr run --runc-binary)", async () => {
  await using t = await TestEnv.create();
  const dir = `${t.dir}/containerd`;
  Deno.mkdirSync(dir);
  const runtimeRoot = `${t.dir}/runc-root`;
  const wrapper = `${t.dir}/mini-docker-runtime`;
  Deno.writeTextFileSync(
    wrapper,
    // The shim's clean-up may run it in a bundle directory already removed: Deno needs a cwd.
    // Each call is logged: the test checks that containerd ran it, not its own runc.
    `#!/bin/sh\necho "$*" >>${t.dir}/calls\ncd . 2>/dev/null || cd /\nexec ${Deno.execPath()} run -A --quiet ${MAIN} runtime "$@"\n`,
    { mode: 0o755 },
  );
  const containerd = await startContainerd(dir);
  // The namespace names the containers' cgroups (/<namespace>/<id>): the test's own parent.
  const ns = t.cgroupParent;
  const ctr = async (args: string[]): Promise<Result> => {
    const child = new Deno.Command("ctr", {
      args: ["-a", `${dir}/containerd.sock`, "-n", ns, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = await withDeadline(child, `ctr ${args.join(" ")}`, () => child.output(), 60_000);
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  };
  const image = "docker.io/library/mini-docker-busybox:test";
  const runtime = ["--runc-binary", wrapper, "--runc-root", runtimeRoot];
  try {
    writeDockerArchive(t.rootfs, image, ["sh"], `${dir}/image.tar`);
    const imported = await ctr(["image", "import", `${dir}/image.tar`]);
    assert.equal(imported.code, 0, imported.stderr);

    // In the foreground: its output and exit code.
    const fg = await ctr([
      "run",
      "--rm",
      ...runtime,
      image,
      "fg",
      "sh",
      "-c",
      "echo hello from ctr; exit 3",
    ]);
    assert.equal(fg.code, 3, fg.stderr);
    assert.equal(fg.stdout, "hello from ctr\n");

    // On a terminal (script(1) gives ctr one): the shim's console socket gets the terminal.
    const line = [
      "ctr",
      "-a",
      `${dir}/containerd.sock`,
      "-n",
      ns,
      "run",
      "-t",
      "--rm",
      ...runtime,
      image,
      "tty",
      "sh",
      "-c",
      "tty; exit 5",
    ].map((a) => `'${a}'`).join(" ");
    const tty = new Deno.Command("script", {
      args: ["-qec", line, "/dev/null"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const onTty = await withDeadline(tty, "ctr run -t", () => tty.output(), 60_000);
    assert.equal(onTty.code, 5, decoder.decode(onTty.stderr));
    assert.match(decoder.decode(onTty.stdout), /\/dev\/pts\/0/);

    // Detached: exec, ps, pause/resume, kill, delete.
    const bg = await ctr(["run", "-d", ...runtime, image, "bg", "sleep", "300"]);
    assert.equal(bg.code, 0, bg.stderr);
    const exec = await ctr([
      "task",
      "exec",
      "--exec-id",
      "e1",
      "bg",
      "sh",
      "-c",
      "echo in $(cat /proc/1/comm); exit 4",
    ]);
    assert.equal(exec.code, 4, exec.stderr);
    assert.equal(exec.stdout, "in sleep\n");
    const ps = await ctr(["task", "ps", "bg"]);
    assert.equal(ps.code, 0, ps.stderr);
    const pid = Number(/^(\d+)/m.exec(ps.stdout.split("\n")[1] ?? "")?.[1]);
    assert.ok(pid > 0, ps.stdout);
    assert.equal(Deno.readTextFileSync(`/proc/${pid}/comm`), "sleep\n");
    assert.equal((await ctr(["task", "pause", "bg"])).code, 0);
    assert.match((await ctr(["task", "ls"])).stdout, /bg\s+\d+\s+PAUSED/);
    assert.equal((await ctr(["task", "resume", "bg"])).code, 0);
    assert.match((await ctr(["task", "ls"])).stdout, /bg\s+\d+\s+RUNNING/);
    assert.equal((await ctr(["task", "kill", "-s", "SIGKILL", "bg"])).code, 0);
    await waitFor(() => isZombie(pid), 10_000, "bg to die");
    await waitForStopped(ctr, "bg");
    const rm = await ctr(["task", "rm", "bg"]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal((await ctr(["container", "rm", "bg"])).code, 0);
    assert.deepEqual(runtimeLeftovers(`${runtimeRoot}/${ns}`), []);
    const calls = Deno.readTextFileSync(`${t.dir}/calls`);
    for (const id of ["fg", "tty", "bg"]) {
      assert.match(calls, new RegExp(` create .*--bundle \\S+/${id}( |$)`, "m"), id);
    }
    assert.match(calls, / exec /);
    assert.match(calls, / pause bg/);
  } finally {
    for (const id of ["fg", "tty", "bg"]) {
      await ctr(["task", "kill", "-s", "SIGKILL", id]);
      await ctr(["task", "rm", "-f", id]);
      await ctr(["container", "rm", id]);
    }
    await ctr(["image", "rm", image]);
    containerd.kill("SIGTERM");
    await containerd.status;
    await Deno.remove(runtimeRoot, { recursive: true }).catch(() => {});
  }
});

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return true;
  }
}

async function waitForStopped(ctr: (args: string[]) => Promise<Result>, id: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (
      /\sSTOPPED/.test(
        (await ctr(["task", "ls"])).stdout.split("\n").find((l) => l.startsWith(id)) ?? "",
      )
    ) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${id} did not stop`);
}

/** What a runtime root holds of containers: their state, gates and /proc peers. */
function runtimeLeftovers(root: string): string[] {
  const out: string[] = [];
  for (const sub of ["containers", "gates", "proc"]) {
    try {
      for (const e of Deno.readDirSync(`${root}/${sub}`)) out.push(`${sub}/${e.name}`);
    } catch { /* never made */ }
  }
  return out;
}

Deno.test("runtime: Podman runs containers with it (podman --runtime)", async () => {
  await using t = await TestEnv.create();
  try {
    await podmanTest(t);
  } catch (err) {
    // Printed: a failure of the environment's disposal would report only itself.
    console.error("podman test:", err);
    throw err;
  }
});

async function podmanTest(t: TestEnv): Promise<void> {
  const dir = `${t.dir}/podman`;
  Deno.mkdirSync(dir);
  // The runtime's root in the wrapper: Podman does not pass its --runtime-flag options on to
  // the clean-up it runs after a container's exit (podman container cleanup: runtime delete).
  const runtimeRoot = `${dir}/runtime-root`;
  const wrapper = `${t.dir}/mini-docker-runtime`;
  Deno.writeTextFileSync(
    wrapper,
    `#!/bin/sh\necho "$*" >>${t.dir}/calls\ncd . 2>/dev/null || cd /\nexec ${Deno.execPath()} run -A --quiet ${MAIN} runtime --root ${runtimeRoot} "$@"\n`,
    { mode: 0o755 },
  );
  const podman = async (args: string[]): Promise<Result> => {
    const child = new Deno.Command("podman", {
      args: [
        "--root",
        `${dir}/root`,
        "--runroot",
        `${dir}/run`,
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        "--storage-driver",
        "overlay",
        "--runtime",
        wrapper,
        ...args,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = await withDeadline(child, `podman ${args.join(" ")}`, () => child.output(), 60_000);
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  };
  const image = "docker.io/library/mini-docker-busybox:test";
  // Podman's default RLIMIT_NOFILE (1048576) is above what root may set without CAP_SYS_RESOURCE
  // on the test machines (runc fails the same); the containers live under the test's cgroup.
  const common = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--network",
    "none",
    "--cgroup-parent",
    `/${t.cgroupParent}`,
  ];
  try {
    writeDockerArchive(t.rootfs, image, ["sh"], `${dir}/image.tar`);
    const loaded = await podman(["load", "-i", `${dir}/image.tar`]);
    assert.equal(loaded.code, 0, loaded.stderr);
    // Podman's default on cgroup v2 (a cgroup namespace of its own), asked for on v1 too: its
    // cgroup is "/" in every hierarchy.
    const fg = await podman([
      "run",
      "--rm",
      "--cgroupns",
      "private",
      ...common,
      image,
      "sh",
      "-c",
      "echo hello from podman; grep -v ':/$' /proc/self/cgroup; grep '^0::' /proc/self/cgroup; exit 3",
    ]);
    assert.equal(fg.code, 3, fg.stderr);
    assert.equal(fg.stdout, "hello from podman\n0::/\n");
    // A user namespace (--uidmap): Podman gives the spec its maps and its default seccomp
    // profile; the image's files are the container root's (Podman's copy of them).
    const mapped = await podman([
      "run",
      "--rm",
      "--uidmap",
      "0:600000:65536",
      "--gidmap",
      "0:600000:65536",
      ...common,
      image,
      "sh",
      "-c",
      "cat /proc/self/uid_map; stat -c %u /bin; grep Seccomp: /proc/self/status; exit 5",
    ]);
    assert.equal(mapped.code, 5, mapped.stderr);
    assert.deepEqual(mapped.stdout.trim().split("\n").map((l) => l.trim().replace(/\s+/g, " ")), [
      "0 600000 65536",
      "0",
      "Seccomp: 2",
    ]);
    const bg = await podman(["run", "-d", "--name", "p1", ...common, image, "sleep", "300"]);
    assert.equal(bg.code, 0, bg.stderr);
    const exec = await podman(["exec", "p1", "sh", "-c", "echo in $(cat /proc/1/comm); exit 4"]);
    assert.equal(exec.code, 4, exec.stderr);
    assert.equal(exec.stdout, "in sleep\n");
    assert.equal((await podman(["pause", "p1"])).code, 0);
    assert.match((await podman(["inspect", "-f", "{{.State.Status}}", "p1"])).stdout, /paused/);
    assert.equal((await podman(["unpause", "p1"])).code, 0);
    assert.equal((await podman(["stop", "-t", "1", "p1"])).code, 0);
    assert.equal((await podman(["rm", "p1"])).code, 0);
    assert.deepEqual(runtimeLeftovers(runtimeRoot), []);
    // Podman ran this runtime (each call logged by the wrapper), not one of its own.
    const calls = Deno.readTextFileSync(`${t.dir}/calls`);
    assert.match(calls, /^create --bundle /m);
    assert.match(calls, /^exec .*--process /m);
  } finally {
    await podman(["rm", "-f", "p1"]);
    await podman(["rmi", "-f", image]);
    // Podman's storage: its overlay mounts go with its images.
    await podman(["system", "reset", "-f"]);
    // Podman's own cgroup for conmon (`<cgroup parent>/conmon`), which Podman leaves: in each
    // v1 hierarchy, or at the top on v2.
    const hierarchies = [...Deno.readDirSync("/sys/fs/cgroup")].map((e) => `/${e.name}`);
    for (const h of ["", ...hierarchies]) {
      try {
        Deno.removeSync(`/sys/fs/cgroup${h}/${t.cgroupParent}/conmon`);
      } catch { /* none in this hierarchy */ }
    }
  }
}
