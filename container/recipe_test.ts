/**
 * The recipe against a recording kernel (kernel.ts's seam): the order and the arguments of
 * its privileged calls, without root. The real containers of tests/ check what they do.
 * File-system steps (mount points, device nodes) are done for real in a temporary root.
 */
import assert from "node:assert/strict";
import { newSpec } from "../base/spec.ts";
import * as libc from "../base/libc.ts";
import type { Kernel } from "./kernel.ts";
import {
  prepareContainer,
  spawnActions,
  type SpawnConfig,
  spawnContainer,
  startWithUserNamespace,
  StepError,
  type ThreadConfig,
} from "./recipe.ts";

type Call = [string, ...unknown[]];

/** A kernel that records every call and does nothing, except what the recipe then reads. */
function recordingKernel(calls: Call[], fail?: string): Kernel {
  let fd = 100;
  let tree = 500;
  // openat2 is real (unprivileged): the recipe's descriptors name real files of the temporary
  // root, and a mount's target `/proc/thread-self/fd/N` is recorded as the path N had.
  const real = new Map<number, string>();
  const where = (path: string) => {
    const m = /^\/proc\/thread-self\/fd\/(\d+)$/.exec(path);
    return m === null ? path : real.get(Number(m[1])) ?? path;
  };
  const record = (name: string, ...args: unknown[]) => {
    calls.push([name, ...args]);
    if (name === fail) throw new libc.SyscallError(name, libc.EPERM);
  };
  return {
    unshare: (flags) => record("unshare", flags),
    setns: (f, type) => record("setns", f, type),
    open: (path, flags) => (record("open", path, flags), fd++),
    openat2: (dirfd, path, flags, resolve) => {
      const opened = libc.openat2(dirfd, path, flags, resolve);
      real.set(opened, Deno.readLinkSync(`/proc/thread-self/fd/${opened}`));
      record("openat2", real.get(dirfd) ?? dirfd, path, flags, resolve, real.get(opened));
      return opened;
    },
    openTree: (f, recursive) => (record("openTree", real.get(f), recursive), tree++),
    mountSetattr: (f, attrs, recursive) => record("mountSetattr", f, attrs, recursive),
    moveMount: (from, to) => record("moveMount", from, real.get(to)),
    close: (f) => {
      record("close", f);
      if (real.delete(f)) libc.close(f);
    },
    write: (f, text) => record("write", f, text),
    mount: (source, target, fstype, flags, data) =>
      record("mount", source, where(target), fstype, flags, data ?? ""),
    bindWithAttributes: (path, attrs) => record("bindWithAttributes", path, attrs),
    umount2: (target, flags) => record("umount2", target, flags),
    pivotRoot: (a, b) => record("pivotRoot", a, b),
    chdir: (path) => record("chdir", path),
    chroot: (path) => record("chroot", path),
    umask: (mask) => (record("umask", mask), 0o022),
    sethostname: (name) => record("sethostname", name),
    setdomainname: (name) => record("setdomainname", name),
    personality: (persona) => record("personality", persona),
    ioprioSet: (value) => record("ioprioSet", value),
    schedSetattr: (attr) => record("schedSetattr", attr.length),
    mknod: (path, mode, dev) => {
      record("mknod", path, mode, dev);
      Deno.writeFileSync(path, new Uint8Array());
    },
    interfaceUp: (name) => record("interfaceUp", name),
    prctl: (option, arg2, arg3) => {
      record("prctl", option, arg2, arg3 ?? 0);
      // Past the last capability the kernel says EINVAL.
      if (option === libc.PR_CAPBSET_DROP && Number(arg2) > 40) {
        throw new libc.SyscallError("prctl", libc.EINVAL);
      }
    },
    capget: () => (record("capget"), { effective: 0n, permitted: 0xffn, inheritable: 0n }),
    capset: (caps) => record("capset", caps),
    setgroups: (gids) => record("setgroups", [...gids]),
    setresgid: (gid) => record("setresgid", gid),
    setresuid: (uid) => record("setresuid", uid),
    joinSessionKeyring: () => record("joinSessionKeyring"),
    installSeccomp: (program, flags) => record("installSeccomp", program.length, flags),
    openPty: () => (record("openPty"), { master: 99, slave: "/dev/pts/0" }),
    spawn: (path, argv, _env, options) => (record("spawn", path, [...argv], options), 4242),
    cloneFirst: (flags, cgroupFd) => {
      record("cloneFirst", flags, cgroupFd);
      // Its second phase is recorded as the child's ("child:" calls).
      const child = (name: string) => (...args: unknown[]) => record(`child:${name}`, ...args);
      return {
        pid: 4343,
        pidfd: 55,
        process: (joinUser) => (record("child:process", joinUser), {
          joinSessionKeyring: child("joinSessionKeyring"),
          personality: child("personality"),
          ioprioSet: child("ioprioSet"),
          schedSetattr: (attr) => record("child:schedSetattr", attr.length),
          prctl: (option, arg2, arg3) => {
            record("child:prctl", option, arg2, arg3 ?? 0);
            if (option === libc.PR_CAPBSET_DROP && Number(arg2) > 40) {
              throw new libc.SyscallError("prctl", libc.EINVAL);
            }
          },
          setgroups: (gids) => record("child:setgroups", [...gids]),
          setresgid: child("setresgid"),
          setresuid: child("setresuid"),
          capget: () => ({ effective: 0n, permitted: 0xffn, inheritable: 0n }),
          capset: child("capset"),
          installSeccomp: (program, flags) => record("child:installSeccomp", program.length, flags),
          spawn: (
            path,
            argv,
            _env,
            options,
          ) => (record("child:spawn", path, [...argv], options), 4343),
        }),
        abandon: () => record("abandon"),
      };
    },
  };
}

function testConfig(root: string, over: Partial<ThreadConfig> = {}): ThreadConfig {
  Deno.mkdirSync(`${root}/bin`, { recursive: true });
  Deno.writeFileSync(`${root}/bin/sh`, new Uint8Array(), { mode: 0o755 });
  const spec = newSpec({
    args: ["/bin/sh", "-c", "true"],
    env: ["PATH=/bin"],
    cwd: "/",
    hostname: "box",
    rootPath: root,
    hostNetwork: false,
    resources: {},
    cgroupsPath: "test/x",
    user: { uid: 1000, gid: 1000, additionalGids: [27] },
    capabilities: { bounding: ["CAP_CHOWN"], effective: [], permitted: [] },
  });
  // The standard mounts are the recipe's business; their targets live in the temp root.
  return { mode: "create", spec, proc: { root, dir: root }, tty: false, ...over };
}

const SPAWN: SpawnConfig = {
  gateDir: 7,
  stdio: "inherit",
  seccomp: { program: new Uint8Array(16), flags: 0 },
  capabilities: { bounding: 1n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n },
  cgroup: { join: [100], leave: [101], pidsMax: { fd: 102, limit: 5 } },
};

/** Both phases, as the thread runs them. */
function containerRecipe(k: Kernel, config: ThreadConfig, spawn: SpawnConfig = SPAWN): number {
  return spawnContainer(k, prepareContainer(k, config, () => {}), spawn);
}

Deno.test("recipe: the kernel's steps in order, from a fresh thread to the spawn", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    const calls: Call[] = [];
    const pid = containerRecipe(recordingKernel(calls), testConfig(root));
    assert.equal(pid, 4242);
    const names = calls.map((c) => c[0]);
    const at = (name: string) => names.indexOf(name);
    const last = (name: string) => names.lastIndexOf(name);
    // The fs context first; namespaces before mounts.
    assert.deepEqual(calls[0], ["unshare", 0x200]);
    const flags = libc.CLONE_NEWPID | libc.CLONE_NEWNS | libc.CLONE_NEWUTS | libc.CLONE_NEWIPC |
      libc.CLONE_NEWNET;
    assert.deepEqual(calls[1], ["unshare", flags]);
    assert.deepEqual(calls[2], ["mount", "", "/", "", libc.MS_REC | libc.MS_SLAVE, ""]);
    // The cgroup (v1) in the second phase, before anything that the child inherits.
    assert.ok(at("write") > at("pivotRoot") && at("write") < at("joinSessionKeyring"));
    assert.deepEqual(calls[at("write")], ["write", 100, "0"]);
    // /proc is a bind of the parent's peer directory, not a procfs of this thread's namespace.
    assert.ok(calls.some((c) => c[0] === "mount" && c[1] === root && c[2] === `${root}/proc`));
    assert.ok(!calls.some((c) => c[0] === "mount" && c[3] === "proc"));
    // Everything that needs privileges before pivot_root, then the credentials, then spawn.
    const order = [
      "sethostname",
      "pivotRoot",
      "joinSessionKeyring",
      "setgroups",
      "setresgid",
      "setresuid",
      "installSeccomp",
      "capset",
      "spawn",
    ].map((n) => [n, n === "capset" ? last(n) : at(n)] as const);
    for (let i = 1; i < order.length; i++) {
      assert.ok(
        order[i - 1]![1] >= 0 && order[i - 1]![1] < order[i]![1],
        `${order[i - 1]![0]} before ${order[i]![0]}`,
      );
    }
    // The bounding set: everything but CAP_CHOWN (bit 0) is dropped, up to the kernel's last.
    const dropped = calls.filter((c) => c[0] === "prctl" && c[1] === libc.PR_CAPBSET_DROP)
      .map((c) => Number(c[2]));
    assert.equal(dropped[0], 1);
    assert.ok(!dropped.includes(0));
    assert.ok(at("prctl") < at("setresuid"));
    // The user's supplementary groups; capabilities kept across the change (KEEPCAPS).
    assert.deepEqual(calls[at("setgroups")], ["setgroups", [27]]);
    assert.ok(calls.some((c) => c[0] === "prctl" && c[1] === libc.PR_SET_KEEPCAPS));
    // The final sets are the spec's.
    assert.deepEqual(calls.filter((c) => c[0] === "capset").at(-1), [
      "capset",
      { effective: 0n, permitted: 0n, inheritable: 0n },
    ]);
    // cgroup v1 after the spawn: the pids limit back, then out.
    assert.deepEqual(calls.slice(at("spawn") + 1, at("spawn") + 3), [
      ["write", 102, "5"],
      ["write", 101, "0"],
    ]);
    const spawn = calls[at("spawn")]!;
    assert.equal(spawn[1], "/bin/sh");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: exec joins the container's namespaces and mounts nothing", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    const calls: Call[] = [];
    const config = testConfig(root, { mode: "join", joinPid: 77 });
    config.spec.process.cwd = root; // the thread really changes directory: a real one
    config.spec.process.args = [`${root}/bin/sh`];
    containerRecipe(recordingKernel(calls), config, { ...SPAWN, cgroup: undefined });
    const opened = calls.filter((c) => c[0] === "open").map((c) => c[1]);
    assert.deepEqual(opened, [
      "/proc/77/ns/ipc",
      "/proc/77/ns/uts",
      "/proc/77/ns/net",
      "/proc/77/ns/pid",
      "/proc/77/ns/mnt",
    ]);
    const setns = calls.filter((c) => c[0] === "setns").map((c) => c[2]);
    assert.deepEqual(setns, [
      libc.CLONE_NEWIPC,
      libc.CLONE_NEWUTS,
      libc.CLONE_NEWNET,
      libc.CLONE_NEWPID,
      libc.CLONE_NEWNS,
    ]);
    assert.ok(!calls.some((c) => c[0] === "mount" || c[0] === "pivotRoot"));
    assert.ok(calls.some((c) => c[0] === "installSeccomp"));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: a failed step is one message, and the cgroup is left all the same", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    const calls: Call[] = [];
    assert.throws(
      () => containerRecipe(recordingKernel(calls, "capset"), testConfig(root)),
      (err) =>
        err instanceof StepError && err.exitCode === 125 &&
        /^Cannot install the seccomp filter: capset: Operation not permitted$/.test(err.message),
    );
    assert.ok(!calls.some((c) => c[0] === "spawn"));
    assert.deepEqual(calls.filter((c) => c[0] === "write").at(-1), ["write", 101, "0"]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: a new cgroup namespace is made in the container's cgroup, then the spawn", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    // cgroup v2's files (cgroupns.ts): the container's cgroup.procs, this process's own.
    const v2 = { ...SPAWN, cgroup: { join: [200], leave: [201], wholeProcess: true } };
    for (const fail of [undefined, "capset"]) {
      const calls: Call[] = [];
      const config = testConfig(root);
      config.spec.linux.namespaces.push({ type: "cgroup" });
      const run = () => containerRecipe(recordingKernel(calls, fail), config, v2);
      if (fail === undefined) run();
      else assert.throws(run, StepError);
      const names = calls.map((c) => c[0]);
      // Not among the first namespaces: made once this thread (process) is in the cgroup.
      assert.ok(
        !calls.some((c) =>
          c[0] === "unshare" && c[1] !== libc.CLONE_NEWCGROUP &&
          (Number(c[1]) & libc.CLONE_NEWCGROUP) !== 0
        ),
      );
      const join = calls.findIndex((c) => c[0] === "write" && c[1] === 200);
      const ns = calls.findIndex((c) => c[0] === "unshare" && c[1] === libc.CLONE_NEWCGROUP);
      assert.ok(join > names.indexOf("pivotRoot") && join < ns, "joined, then the namespace");
      // The whole process out again at once, once, before anything else.
      assert.deepEqual(calls[ns + 1], ["write", 201, "0"]);
      assert.equal(calls.filter((c) => c[0] === "write" && c[1] === 201).length, 1);
      assert.ok(ns + 1 < names.indexOf("joinSessionKeyring"));
      if (fail === undefined) assert.ok(ns < names.indexOf("spawn"));
    }
    // Without the cgroup's files there is no cgroup namespace to make: refused, nothing spawned.
    const calls: Call[] = [];
    const config = testConfig(root);
    config.spec.linux.namespaces.push({ type: "cgroup" });
    assert.throws(
      () => containerRecipe(recordingKernel(calls), config, { ...SPAWN, cgroup: undefined }),
      /A new cgroup namespace needs the container's thread in the container's cgroup/,
    );
    assert.ok(!calls.some((c) => c[0] === "spawn" || c[1] === libc.CLONE_NEWCGROUP));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: a missing command is 127 before anything is spawned", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    const calls: Call[] = [];
    const config = testConfig(root);
    config.spec.process.args = ["no-such-command"];
    assert.throws(
      () => containerRecipe(recordingKernel(calls), config),
      (err) => err instanceof StepError && err.exitCode === 127,
    );
    assert.ok(!calls.some((c) => c[0] === "spawn"));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("spawnActions: stdio, the gate with nothing else open, the directory, the terminal", () => {
  assert.deepEqual(spawnActions({ stdio: [10, 11, 12], gateDir: 9 }, "/work", "/dev/pts/3"), [
    { dup2: [10, 0] },
    { dup2: [11, 1] },
    { dup2: [12, 2] },
    { dup2: [9, 3] },
    { closefrom: 4 },
    { fchdir: 3 },
    { open: [4, "here", libc.O_WRONLY] },
    { open: [5, "gate", libc.O_RDONLY] },
    { open: [6, "check", libc.O_WRONLY | libc.O_NONBLOCK] },
    { closefrom: 3 },
    { chdir: "/work" },
    { open: [0, "/dev/pts/3", libc.O_RDWR] },
    { dup2: [0, 1] },
    { dup2: [0, 2] },
  ]);
  // With a terminal, nothing of the parent's stdio is held until it is opened.
  const tty = spawnActions({ stdio: "tty", gateDir: 9 }, "/", "/dev/pts/3");
  assert.deepEqual(tty.slice(0, 4), [
    { open: [0, "/dev/null", libc.O_RDWR] },
    { dup2: [0, 1] },
    { dup2: [0, 2] },
    { dup2: [9, 3] },
  ]);
});

Deno.test("recipe: a namespace given by path is joined, not created", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    const calls: Call[] = [];
    const config = testConfig(root);
    config.spec.linux.namespaces = config.spec.linux.namespaces.map((ns) =>
      ns.type === "network" ? { type: "network", path: "/run/netns/x" } : ns
    );
    containerRecipe(recordingKernel(calls), config);
    const open = calls.findIndex((c) => c[0] === "open" && c[1] === "/run/netns/x");
    assert.ok(open >= 0);
    assert.deepEqual(calls[open + 1], ["setns", 100, libc.CLONE_NEWNET]);
    const unshared = calls.find((c) => c[0] === "unshare" && c[1] !== 0x200)![1] as number;
    assert.equal(unshared & libc.CLONE_NEWNET, 0);
    assert.ok((unshared & libc.CLONE_NEWPID) !== 0);
    // The loopback of a namespace the container joins is not its to bring up.
    assert.ok(!calls.some((c) => c[0] === "interfaceUp"));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: a user namespace: the first process is born first, the thread makes its root, the process its credentials", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    const calls: Call[] = [];
    const config = testConfig(root);
    config.spec.linux.namespaces.push({ type: "user" }, { type: "cgroup" });
    config.spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    config.spec.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    const pid = startWithUserNamespace(recordingKernel(calls), config, SPAWN, () => {});
    assert.equal(pid, 4343);
    const names = calls.map((c) => c[0]);
    const at = (name: string) => names.indexOf(name);
    // v1: the thread joins the cgroup before the clone, so the process is born there (and its
    // cgroup namespace rooted there), and leaves right after.
    assert.ok(at("write") < at("cloneFirst"));
    const clone = calls[at("cloneFirst")]!;
    const flags = clone[1] as number;
    for (
      const f of [libc.CLONE_NEWUSER, libc.CLONE_NEWPID, libc.CLONE_NEWNS, libc.CLONE_NEWCGROUP]
    ) {
      assert.ok((flags & f) !== 0, `clone flag ${f}`);
    }
    // The thread makes no namespace of its own, and its working directory is "/" at the clone.
    assert.ok(!calls.some((c) => c[0] === "unshare" && c[1] !== 0x200));
    assert.deepEqual(calls[at("cloneFirst") - 1], ["chdir", "/"]);
    // The maps, then the thread joins the process's namespaces but its user and PID ones.
    const maps = calls.filter((c) =>
      c[0] === "write" && typeof c[2] === "string" && c[2].includes(" ")
    );
    assert.deepEqual(maps.map((c) => c[2]), ["0 100000 65536\n", "0 200000 65536\n"]);
    const setns = calls.find((c) => c[0] === "setns")!;
    assert.deepEqual(setns[1], 55);
    assert.equal((setns[2] as number) & (libc.CLONE_NEWUSER | libc.CLONE_NEWPID), 0);
    assert.ok(((setns[2] as number) & libc.CLONE_NEWNS) !== 0);
    assert.ok(at("setns") < at("pivotRoot"));
    // The thread itself changes no credential and spawns nothing: the process does, after the
    // pivot, in the recipe's order; mknod'ed devices and devpts' gid are the host's ids.
    for (const own of ["setresuid", "setresgid", "capset", "installSeccomp", "spawn", "prctl"]) {
      assert.ok(!names.includes(own), own);
    }
    const child = names.filter((n) => n.startsWith("child:"));
    assert.deepEqual(child.filter((n) => !n.endsWith("prctl")), [
      "child:process",
      "child:joinSessionKeyring",
      "child:setgroups",
      "child:setresgid",
      "child:setresuid",
      "child:capset", // the effective set raised from the permitted one, for seccomp
      "child:installSeccomp",
      "child:capset",
      "child:spawn",
    ]);
    assert.ok(at("pivotRoot") < at("child:process"));
    const devpts = calls.find((c) => c[0] === "mount" && c[3] === "devpts")!;
    assert.match(devpts[5] as string, /gid=200005/);
    assert.ok(!names.includes("abandon") || at("abandon") > at("child:spawn"));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: --no-new-keyring keeps the caller's session keyring; --preserve-fds keeps 3..3+N-1", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    const calls: Call[] = [];
    containerRecipe(recordingKernel(calls), testConfig(root), {
      ...SPAWN,
      noNewKeyring: true,
      preserveFds: 2,
    });
    assert.ok(!calls.some((c) => c[0] === "joinSessionKeyring"));
    const spawn = calls.find((c) => c[0] === "spawn")!;
    const actions = (spawn[3] as libc.SpawnOptions).actions!;
    // Kept open across execve (dup2 onto themselves clears close-on-exec), the gate above them.
    assert.deepEqual(actions.slice(0, 4), [
      { dup2: [3, 3] },
      { dup2: [4, 4] },
      { dup2: [7, 5] },
      { closefrom: 6 },
    ]);
    assert.deepEqual(actions.find((a) => "open" in a), { open: [6, "here", libc.O_WRONLY] });
    assert.ok(actions.some((a) => "closefrom" in a && a.closefrom === 5));
    const usual: Call[] = [];
    containerRecipe(recordingKernel(usual), testConfig(root));
    assert.ok(usual.some((c) => c[0] === "joinSessionKeyring"));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: a user namespace: a failed step of the thread kills the waiting process", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    const calls: Call[] = [];
    const config = testConfig(root);
    config.spec.linux.namespaces.push({ type: "user" });
    config.spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    config.spec.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    assert.throws(
      () => startWithUserNamespace(recordingKernel(calls, "pivotRoot"), config, SPAWN, () => {}),
      /Cannot pivot/,
    );
    const names = calls.map((c) => c[0]);
    assert.ok(names.indexOf("abandon") > names.indexOf("pivotRoot"));
    assert.ok(!names.some((n) => n.startsWith("child:")));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: exec in a container with a user namespace: the new process enters it by itself", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    const calls: Call[] = [];
    const config = testConfig(root, { mode: "join", joinPid: 77 });
    config.spec.linux.namespaces.push({ type: "user" });
    containerRecipe(recordingKernel(calls), config);
    const names = calls.map((c) => c[0]);
    const userFd = calls[names.indexOf("open")]!;
    assert.deepEqual(userFd.slice(1), ["/proc/77/ns/user", libc.O_RDONLY]);
    // The thread joins every other namespace (never the user one), then clones in them.
    const setns = calls.filter((c) => c[0] === "setns").map((c) => c[2] as number);
    assert.ok(setns.length > 0 && setns.every((t) => t !== libc.CLONE_NEWUSER));
    assert.deepEqual(calls[names.indexOf("cloneFirst")], ["cloneFirst", 0, undefined]);
    assert.deepEqual(calls[names.indexOf("child:process")], ["child:process", 100]);
    assert.ok(names.indexOf("child:spawn") > names.indexOf("child:setresuid"));
    assert.ok(!names.includes("spawn"));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: a bind's target is opened inside the root, whatever symlink is on its way", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  const outside = Deno.makeTempDirSync({ prefix: "mini-docker-outside-" });
  const source = Deno.makeTempDirSync({ prefix: "mini-docker-source-" });
  try {
    // Symlinks of the image that point out of the root: absolute, relative, through a parent.
    Deno.symlinkSync(outside, `${root}/abs`);
    Deno.symlinkSync(`../../../../../../..${outside}`, `${root}/rel`);
    Deno.mkdirSync(`${root}/d`);
    Deno.symlinkSync("..", `${root}/d/up`);
    const config = testConfig(root);
    // A relative dangling symlink in a directory reached through a symlink: read from where
    // the kernel resolved that directory (/d), not lexically from /via.
    Deno.mkdirSync(`${root}/d/e`);
    Deno.symlinkSync("/d/e", `${root}/via`);
    Deno.symlinkSync("../new", `${root}/d/e/dangling`);
    const targets = ["/abs/x", "/rel/y", "/d/up/up/up/z", "/via/dangling/w"];
    config.spec.mounts.push(...targets.map((destination) => ({
      destination,
      type: "bind",
      source,
      options: ["rbind", "ro", "rprivate"],
    })));
    const calls: Call[] = [];
    containerRecipe(recordingKernel(calls), config);
    const real = Deno.realPathSync(root);
    const moved = calls.filter((c) => c[0] === "moveMount").map((c) => c[2] as string);
    // Each lands where the root's own resolution puts it: inside, never in `outside`.
    assert.deepEqual(moved.slice(-4), [
      `${real}${outside}/x`,
      `${real}${outside}/y`,
      `${real}/up/up/z`, // d/up is the root; "up" is then a new directory of it
      `${real}/d/new/w`,
    ]);
    assert.deepEqual([...Deno.readDirSync(outside)], []);
    // Cloned from the source's descriptor, read-only before it is attached, then rprivate.
    const tree = calls.findLastIndex((c) => c[0] === "openTree");
    assert.deepEqual(calls[tree], ["openTree", Deno.realPathSync(source), true]);
    assert.deepEqual(calls[tree + 1]!.slice(2), [
      { set: libc.MOUNT_ATTR_RDONLY, clear: 0, propagation: 0 },
      true,
    ]);
    assert.equal(calls[tree + 2]![0], "moveMount");
    assert.deepEqual(calls[tree + 3]!.slice(2), [
      { set: 0, clear: 0, propagation: libc.MS_PRIVATE },
      true,
    ]);
  } finally {
    for (const d of [root, outside, source]) Deno.removeSync(d, { recursive: true });
  }
});

Deno.test("recipe: a bind source with a symlink on its path is refused", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  try {
    Deno.mkdirSync(`${root}/real`);
    Deno.symlinkSync(`${root}/real`, `${root}/link`);
    const config = testConfig(root);
    config.spec.mounts.push({
      destination: "/mnt",
      type: "bind",
      source: `${root}/link`,
      options: ["rbind"],
    });
    assert.throws(
      () => containerRecipe(recordingKernel([]), config),
      (err) =>
        err instanceof StepError && /^Cannot mount bind on "\/mnt": openat2 ".*\/link": /.test(
          err.message,
        ),
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("recipe: an empty volume is filled from the root (copy-up), links as links", () => {
  const root = Deno.makeTempDirSync({ prefix: "mini-docker-recipe-" });
  const volume = Deno.makeTempDirSync({ prefix: "mini-docker-volume-" });
  try {
    Deno.mkdirSync(`${volume}/_data`);
    // The image's /data is a symlink to /srv: resolved in the root, never the host's /srv.
    Deno.mkdirSync(`${root}/srv/sub`, { recursive: true });
    Deno.writeTextFileSync(`${root}/srv/sub/file`, "from the image\n");
    Deno.chmodSync(`${root}/srv/sub/file`, 0o640);
    Deno.symlinkSync("/etc/shadow", `${root}/srv/leak`);
    Deno.symlinkSync("/srv", `${root}/data`);
    const config = testConfig(root);
    const mount = {
      destination: "/data",
      type: "bind",
      source: `${volume}/_data`,
      options: ["rbind", "rprivate"],
      copyUp: true,
    };
    config.spec.mounts.push(mount);
    containerRecipe(recordingKernel([]), config);
    const data = `${volume}/_data`;
    assert.equal(Deno.readTextFileSync(`${data}/sub/file`), "from the image\n");
    assert.equal(Deno.statSync(`${data}/sub/file`).mode! & 0o777, 0o640);
    assert.equal(Deno.readLinkSync(`${data}/leak`), "/etc/shadow");
    // Nothing of the staging directory is left; a volume with content is not filled again.
    assert.deepEqual([...Deno.readDirSync(volume)].map((e) => e.name), ["_data"]);
    Deno.removeSync(`${data}/sub`, { recursive: true });
    containerRecipe(recordingKernel([]), testConfig(root, { spec: config.spec }));
    assert.throws(() => Deno.statSync(`${data}/sub`));
  } finally {
    for (const d of [root, volume]) Deno.removeSync(d, { recursive: true });
  }
});
