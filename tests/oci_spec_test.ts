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
import { Bundle, type Config } from "./helpers/oci_bundle.ts";
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
    // Without a cgroupsPath: its id there, as the only cgroup it makes, gone with it.
    const own = `${t.cgroupParent}-own`;
    await b.write(own, (c) => {
      delete c.linux.cgroupsPath;
      c.process.args = ["cat", "/proc/self/cgroup"];
    });
    const o = await b.rt(["run", "--bundle", b.dir, own]);
    assert.equal(o.code, 0, o.stderr);
    assert.match(o.stdout, new RegExp(`:pids:/${own}$|^0::/${own}$`, "m"));
    assert.equal(cgroupDriver({ parent: "" }).open(own), undefined, "its cgroup removed");
  } finally {
    await cgroupDriver({ parent: "" }).open(top)?.destroy();
    await cgroupDriver({ parent: "" }).open(`${t.cgroupParent}-own`)?.destroy();
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

Deno.test("runtime: a shared bind receives the host's mounts; with a shared root (Bidirectional) the host receives its own", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  // A shared mount of the host's, as Kubernetes' kubelet directories are.
  const shared = `${t.dir}/shared`;
  Deno.mkdirSync(`${shared}/from-host`, { recursive: true });
  Deno.mkdirSync(`${shared}/from-container`);
  libc.mount(shared, shared, "", libc.MS_BIND);
  libc.mount("", shared, "", libc.MS_SHARED);
  // The root filesystem in a shared mount too, as on a host whose / is shared (systemd's).
  const work = t.rootfs.slice(0, t.rootfs.indexOf("/rootfs/"));
  libc.mount(work, work, "", libc.MS_BIND);
  libc.mount("", work, "", libc.MS_SHARED);
  const mounted = (path: string) =>
    Deno.readTextFileSync("/proc/self/mountinfo").split("\n").some((l) => l.split(" ")[4] === path);
  try {
    for (const rootfsPropagation of [undefined, "rshared"]) {
      await b.write("p1", (c) => {
        c.mounts.push({
          destination: "/x",
          type: "bind",
          source: shared,
          options: ["rbind", "rshared"],
        });
        for (const set of ["bounding", "effective", "permitted"]) {
          c.process.capabilities[set].push("CAP_SYS_ADMIN");
        }
        if (rootfsPropagation !== undefined) c.linux.rootfsPropagation = rootfsPropagation;
        c.process.args = ["sleep", "30"];
      });
      assert.equal(await b.rtTo(`${t.dir}/p1.out`, ["create", "--bundle", b.dir, "p1"]), 0);
      try {
        assert.equal((await b.rt(["start", "p1"])).code, 0);
        // The host's mount reaches the container through the shared bind.
        libc.mount("tmpfs", `${shared}/from-host`, "tmpfs", 0, "size=1k");
        const seen = await b.rt([
          "exec",
          "p1",
          "sh",
          "-c",
          "grep -c ' /x/from-host ' /proc/self/mountinfo",
        ]);
        assert.equal(seen.stdout.trim(), "1", `${rootfsPropagation}: ${seen.stderr}`);
        // The container's mount reaches the host only with a shared root.
        const made = await b.rt([
          "exec",
          "p1",
          "mount",
          "-t",
          "tmpfs",
          "none",
          "/x/from-container",
        ]);
        assert.equal(made.code, 0, made.stderr);
        assert.equal(mounted(`${shared}/from-container`), rootfsPropagation === "rshared");
        // Never the container's root or own mounts (its /proc, /dev, ...): the host's rootfs
        // is bare.
        assert.ok(
          !mounted(t.rootfs) && !mounted(`${t.rootfs}/proc`) && !mounted(`${t.rootfs}/dev`),
        );
      } finally {
        assert.equal((await b.rt(["delete", "--force", "p1"])).code, 0);
        for (const sub of ["from-host", "from-container"]) {
          try {
            libc.umount2(`${shared}/${sub}`, libc.MNT_DETACH);
          } catch { /* not mounted */ }
        }
      }
      assert.deepEqual(b.leftovers(), []);
    }
  } finally {
    libc.umount2(shared, libc.MNT_DETACH);
    libc.umount2(work, libc.MNT_DETACH);
  }
});

Deno.test("runtime: no mount namespace: the container's mounts are made below its root in the host's, and go with it", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  // runtime-tools' linux_ns_itype: no namespace at all (and so no hostname).
  await b.write("n1", (c) => {
    c.linux.namespaces = [];
    delete c.hostname;
    c.process.args = [
      "sh",
      "-c",
      "readlink /proc/self/ns/mnt; readlink /proc/self/ns/pid; ls /dev/null /bin/sh",
    ];
  });
  const root = b.t.rootfs;
  const below = () =>
    Deno.readTextFileSync("/proc/self/mountinfo").split("\n").filter((l) => {
      const point = l.split(" ")[4] ?? "";
      return point === root || point.startsWith(`${root}/`);
    });
  assert.equal(await b.rtTo(`${t.dir}/n1.out`, ["create", "--bundle", b.dir, "n1"]), 0);
  try {
    // Created: its root and mounts are there, in the host's mount table, below its root only.
    assert.ok(below().length >= 6, below().join("\n"));
    const r = await b.rt(["start", "n1"]);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    assert.equal((await b.rt(["delete", "--force", "n1"])).code, 0);
  }
  assert.deepEqual(below(), [], "every mount went with it");
  assert.deepEqual(b.leftovers(), []);
  const out = await b.rt(["run", "--bundle", b.dir, "n2"]);
  assert.equal(out.code, 0, out.stderr);
  const [mnt, pid, ...files] = out.stdout.trim().split("\n");
  assert.equal(mnt, Deno.readLinkSync("/proc/self/ns/mnt"));
  assert.equal(pid, Deno.readLinkSync("/proc/self/ns/pid"));
  assert.deepEqual(files, ["/bin/sh", "/dev/null"]);
  assert.deepEqual(below(), []);
  // A PID or user namespace without a mount namespace: refused in one line, nothing made.
  for (const ns of ["pid", "user"]) {
    await b.write("n3", (c) => {
      c.linux.namespaces = [{ type: ns }];
      delete c.hostname;
      if (ns === "user") {
        c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 1000 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 1000 }];
      }
    });
    const refused = await b.rt(["create", "--bundle", b.dir, "n3"]);
    assert.equal(refused.code, 1, ns);
    assert.match(refused.stderr, /without a mount namespace of its own cannot have/, ns);
    assert.deepEqual(below(), [], ns);
    assert.deepEqual(b.leftovers(), [], ns);
  }
});

Deno.test("runtime: --preserve-fds, --no-new-keyring, --no-pivot", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  Deno.writeTextFileSync(`${t.dir}/three`, "three\n");
  Deno.writeTextFileSync(`${t.dir}/four`, "four\n");
  await b.write("k1", (c) => {
    c.process.args = ["sh", "-c", "cat <&3 && cat <&4; ls /proc/self/fd | tr '\\n' ' '"];
  });
  const run = async (flags: string[], id: string) => {
    // The runtime started by a shell that gives it descriptors 3 and 4 (as Podman does).
    const out = await new Deno.Command("/bin/sh", {
      args: [
        "-c",
        `exec 3<${t.dir}/three 4<${t.dir}/four; exec "$@"`,
        "sh",
        ...b.argv(["run", ...flags, "--bundle", b.dir, id]),
      ],
      stdin: "null",
    }).output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  };
  // (--no-new-keyring: the recipe's seam shows the keyring kept, container/recipe_test.ts.)
  const kept = await run(["--preserve-fds", "2", "--no-new-keyring"], "k1");
  assert.equal(kept.code, 0, kept.stderr);
  // 0-2, the two kept, and ls's own directory: nothing else of the runtime's.
  assert.deepEqual(kept.stdout.trim().split("\n"), ["three", "four", "0 1 2 3 4 5"]);
  // Without --preserve-fds nothing above 2 reaches it (cat fails).
  const own = await run([], "k2");
  assert.equal(own.code, 0, own.stderr);
  assert.equal(own.stdout.trim(), "0 1 2 3");
  // exec --preserve-fds, in a running container.
  await b.write("k4", (c) => c.process.args = ["sleep", "30"]);
  assert.equal(await b.rtTo(`${t.dir}/k4.out`, ["create", "--bundle", b.dir, "k4"]), 0);
  try {
    assert.equal((await b.rt(["start", "k4"])).code, 0);
    const out = await new Deno.Command("/bin/sh", {
      args: [
        "-c",
        `exec 3<${t.dir}/three; exec "$@"`,
        "sh",
        ...b.argv([
          "exec",
          "--preserve-fds",
          "1",
          "k4",
          "sh",
          "-c",
          "cat <&3; ls /proc/self/fd | tr '\\n' ' '",
        ]),
      ],
      stdin: "null",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual(new TextDecoder().decode(out.stdout).trim().split("\n"), [
      "three",
      "0 1 2 3 4",
    ]);
  } finally {
    assert.equal((await b.rt(["delete", "--force", "k4"])).code, 0);
  }
  // Descriptors the caller did not pass (Deno's own are close-on-exec): refused.
  const none = await b.rt(["run", "--preserve-fds", "2", "--bundle", b.dir, "k3"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /--preserve-fds 2: descriptor 3 was not passed to the runtime/);
  assert.deepEqual(b.leftovers(), []);

  // --no-pivot: the root moved onto / and entered by chroot: the same mount table as with
  // pivot_root (no mount of the host's in it, its own in the listed order).
  await b.write("p1", (c) => c.process.args = ["cat", "/proc/self/mountinfo"]);
  const table = async (flags: string[]) => {
    const r = await b.rt(["run", ...flags, "--bundle", b.dir, "p1"]);
    assert.equal(r.code, 0, r.stderr);
    return mountTable(r.stdout).map((m) => `${m.point} ${m.type}`);
  };
  const pivoted = await table([]);
  assert.deepEqual(await table(["--no-pivot"]), pivoted);
  assert.ok(
    !pivoted.some((m) => m.startsWith("/run/") || m.startsWith("/home")),
    pivoted.join("\n"),
  );
  assert.deepEqual(b.leftovers(), []);
});

Deno.test("runtime: createContainer and startContainer hooks run in the container's namespaces", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  // createContainer's path is the runtime's: a script of the host's, not in the container.
  const script = `${t.dir}/create-hook`;
  Deno.writeTextFileSync(
    script,
    "#!/bin/sh\ncat >/run/hooks/created.json; hostname >/run/hooks/created-host; echo $$ >/run/hooks/created-pid\n",
    { mode: 0o755 },
  );
  const hooks = {
    createContainer: [{ path: script, args: ["create-hook"] }],
    startContainer: [{
      path: "/bin/sh",
      args: ["sh", "-c", "cat >/run/hooks/started.json; echo $$ >/run/hooks/started-pid"],
    }],
  };
  await b.write("h1", (c) => {
    c.hostname = "hooked";
    c.mounts.push({ destination: "/run/hooks", type: "tmpfs", source: "tmpfs", options: [] });
    c.hooks = hooks;
    c.process.args = [
      "sh",
      "-c",
      [
        "cat /run/hooks/created-host",
        'sed \'s/.*"status": *"\\([a-z]*\\)".*/\\1/\' /run/hooks/created.json; echo',
        'sed \'s/.*"status": *"\\([a-z]*\\)".*/\\1/\' /run/hooks/started.json; echo',
        "cat /run/hooks/created-pid /run/hooks/started-pid",
        `test -e ${script} || echo not-here`,
      ].join("; "),
    ];
  });
  const r = await b.rt(["run", "--bundle", b.dir, "h1"]);
  assert.equal(r.code, 0, r.stderr);
  const [host, created, started, createdPid, startedPid, notHere] = r.stdout.trim().split("\n");
  // In its UTS and mount namespaces (the tmpfs is the container's only), and its PID namespace.
  assert.equal(host, "hooked");
  assert.equal(created, "creating");
  assert.equal(started, "created");
  assert.ok(Number(createdPid) > 1 && Number(createdPid) < 50, `pid ${createdPid}`);
  assert.ok(Number(startedPid) > 1 && Number(startedPid) < 50, `pid ${startedPid}`);
  assert.equal(notHere, "not-here");
  assert.deepEqual(b.leftovers(), []);

  // A failing createContainer hook fails create, with nothing left; a failing startContainer
  // hook fails start and stops the container, which delete removes.
  const failing = `${t.dir}/failing-hook`;
  Deno.writeTextFileSync(failing, "#!/bin/sh\nexit 1\n", { mode: 0o755 });
  await b.write("h2", (c) => c.hooks = { createContainer: [{ path: failing }] });
  const failed = await b.rt(["create", "--bundle", b.dir, "h2"]);
  assert.equal(failed.code, 1);
  assert.match(
    failed.stderr.trim(),
    /^createContainer hook #0 \(.*failing-hook\): exited with status 1$/,
  );
  assert.deepEqual(b.leftovers(), []);
  await b.write("h3", (c) => {
    c.process.args = ["sleep", "30"];
    c.hooks = { startContainer: [{ path: "/bin/false" }] };
  });
  assert.equal(await b.rtTo(`${t.dir}/h3.out`, ["create", "--bundle", b.dir, "h3"]), 0);
  const notStarted = await b.rt(["start", "h3"]);
  assert.equal(notStarted.code, 1);
  assert.match(
    notStarted.stderr.trim(),
    /^startContainer hook #0 \(\/bin\/false\): exited with status 1$/,
  );
  for (let i = 0; i < 100 && (await b.state("h3")).status !== "stopped"; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal((await b.state("h3")).status, "stopped");
  assert.equal((await b.rt(["delete", "h3"])).code, 0);
  assert.deepEqual(b.leftovers(), []);
});

Deno.test("runtime: domainname, linux.personality, process.ioPriority, scheduler, execCPUAffinity", async () => {
  await using t = await TestEnv.create();
  const b = new Bundle(t);
  const cpus = Deno.readTextFileSync("/sys/devices/system/cpu/online").trim();
  const last = Number(cpus.split(/[-,]/).at(-1));
  // A user namespace's first process is started by x86-64 machine code (base/clone.ts).
  for (const userns of Deno.build.arch === "x86_64" ? [false, true] : [false]) {
    await b.write("s1", (c) => {
      if (userns) {
        c.linux.namespaces.push({ type: "user" });
        c.linux.uidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
      }
      c.domainname = "example.org";
      c.linux.personality = { domain: "LINUX32" };
      c.process.ioPriority = { class: "IOPRIO_CLASS_BE", priority: 5 };
      c.process.scheduler = { policy: "SCHED_BATCH", nice: 7 };
      c.process.execCPUAffinity = { final: String(last) };
      c.process.args = [
        "sh",
        "-c",
        "uname -m; cat /proc/sys/kernel/domainname; grep Cpus_allowed_list /proc/self/status | cut -f2; cut -d' ' -f19,41 /proc/self/stat; sleep 30",
      ];
    });
    assert.equal(await b.rtTo(`${t.dir}/s1.out`, ["create", "--bundle", b.dir, "s1"]), 0);
    try {
      const pid = (await b.state("s1")).pid as number;
      // ioprio_get(IOPRIO_WHO_PROCESS, pid), from the host: class BE (2) << 13 | 5.
      const ioprioGet = Deno.build.arch === "aarch64" ? 31 : 252;
      assert.equal(libc.rawSyscall(ioprioGet, 1, pid), (2 << 13) | 5, `userns ${userns}`);
      assert.equal((await b.rt(["start", "s1"])).code, 0);
      let out = "";
      for (let i = 0; i < 100 && out.split("\n").length < 5; i++) {
        await new Promise((r) => setTimeout(r, 20));
        out = Deno.readTextFileSync(`${t.dir}/s1.out`);
      }
      // LINUX32's machine, the UTS domain, the one CPU, nice 7 and SCHED_BATCH (3).
      assert.deepEqual(out.trim().split("\n"), ["i686", "example.org", String(last), "7 3"]);
    } finally {
      assert.equal((await b.rt(["delete", "--force", "s1"])).code, 0);
    }
  }
  // What cannot be passed on to a process, or is not Linux's: one line each.
  const refused: [(c: Config) => void, RegExp][] = [
    [(c) => c.process.scheduler = { policy: "SCHED_DEADLINE" }, /SCHED_DEADLINE is not supported/],
    [(c) => c.linux.personality = { domain: "LINUX", flags: ["x"] }, /personality\.flags/],
    [(c) => c.process.ioPriority = { class: "IOPRIO_CLASS_X" }, /ioPriority\.class/],
    [(c) => c.process.execCPUAffinity = { final: "a-b" }, /not a CPU list/],
  ];
  for (const [edit, message] of refused) {
    await b.write("s2", edit);
    const r = await b.rt(["create", "--bundle", b.dir, "s2"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, message);
    assert.deepEqual(b.leftovers(), []);
  }
});
