/**
 * `mini-docker run` end to end: real namespaces, mounts and cgroups, on a busybox rootfs built
 * from the host. Every test checks that nothing is left behind.
 */
import assert from "node:assert/strict";
import { REPO, TestEnv, waitFor } from "./helpers.ts";
import { cgroupDriver, detectLayout } from "../cgroups/manager.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("the seed's command lines run verbatim", opts, async () => {
  await using t = await TestEnv.create();
  // The shell lines of the original are typed at a terminal: without -i, stdin is the
  // container's when it is a terminal (as the original's), and only then.
  const sh = async (args: string[], typed: string) => {
    const r = await t.runOnTerminal(args, typed);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  assert.match(await sh(["run", "/bin/sh"], "echo inside; exit\n"), /^inside$/m);
  assert.match(await sh(["run", "--memory", "100M", "/bin/sh"], "echo mem\n"), /^mem$/m);
  assert.match(await sh(["run", "--cpus", "0.5", "/bin/sh"], "echo cpu\n"), /^cpu$/m);
  assert.match(
    await sh(["run", "--hostname", "mon-conteneur", "/bin/sh"], "hostname\n"),
    /^mon-conteneur$/m,
  );
  const ls = await t.run([
    "run",
    "--memory",
    "200M",
    "--cpus",
    "1.0",
    "--hostname",
    "test",
    "/bin/ls",
    "-la",
  ]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^total /);
  assert.match(ls.stdout, / bin -> |\bbin\b/);
  const root = await t.run(["run", "/bin/ls", "-la", "/"]);
  assert.equal(root.code, 0, root.stderr);
  assert.match(root.stdout, /\bproc\b/);
  const mem = await t.run([
    "run",
    "--memory",
    "50M",
    "/bin/sh",
    "-c",
    "echo 'Test mémoire limitée'",
  ]);
  assert.deepEqual([mem.code, mem.stdout], [0, "Test mémoire limitée\n"]);
  const host = await t.run(["run", "--hostname", "mon-conteneur", "/bin/hostname"]);
  assert.deepEqual([host.code, host.stdout], [0, "mon-conteneur\n"]);
  const help = await t.run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /run \[options\]/);
  const runHelp = await t.run(["run", "--help"]);
  assert.equal(runHelp.code, 0);
  assert.match(runHelp.stdout, /--memory <size>/);
  assert.match(runHelp.stdout, /Examples:/);
});

Deno.test("the seed's CPU loop stops on Ctrl-C", opts, async () => {
  await using t = await TestEnv.create();
  const child = t.spawn([
    "run",
    "--cpus",
    "0.5",
    "/bin/sh",
    "-c",
    "while true; do echo 'CPU limit'; done",
  ]);
  // Ctrl-C once the loop runs (before that, sh has not installed its SIGINT handler yet).
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("CPU limit\n")) out += (await reader.read()).value ?? "";
  child.kill("SIGINT");
  const status = await child.status;
  await reader.cancel();
  await child.stderr.cancel();
  // busybox sh -c handles SIGINT: it ends at the first Ctrl-C, with 128+2.
  assert.equal(status.code, 130);
});

Deno.test("a PID 1 that ignores Ctrl-C is killed by a second Ctrl-C", opts, async () => {
  await using t = await TestEnv.create();
  // sleep installs no handler, so as PID 1 the kernel drops SIGINT for it.
  const child = t.spawn(["run", "/bin/sleep", "60"]);
  const { pid } = await t.waitRunning();
  child.kill("SIGINT");
  await new Promise((r) => setTimeout(r, 500));
  assert.doesNotThrow(() => Deno.kill(pid, "SIGCONT"), "the container ignored the first SIGINT");
  child.kill("SIGINT");
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.equal(status.code, 137);
});

Deno.test(
  "a container ignoring a forwarded SIGINT is killed after the 10 s grace",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const child = t.spawn(["run", "/bin/sleep", "60"]);
    await t.waitRunning();
    const start = Date.now();
    child.kill("SIGINT");
    const status = await child.status;
    const waited = Date.now() - start;
    await child.stdout.cancel();
    await child.stderr.cancel();
    assert.equal(status.code, 137);
    assert.ok(waited >= 9_000, `killed after ${waited} ms, before the grace period`);
  },
);

Deno.test("SIGTERM and SIGHUP are forwarded to the container", opts, async () => {
  await using t = await TestEnv.create();
  for (const [sig, code] of [["SIGTERM", 7], ["SIGHUP", 8]] as const) {
    const script = `trap 'echo got ${sig}; exit ${code}' ${
      sig.slice(3)
    }; echo ready; while :; do sleep 0.1; done`;
    const child = t.spawn(["run", "/bin/sh", "-c", script]);
    await t.waitRunning();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("ready")) text += (await reader.read()).value ?? "";
    child.kill(sig);
    const status = await child.status;
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
    await child.stderr.cancel();
    assert.equal(status.code, code);
    assert.match(text, new RegExp(`got ${sig}`));
  }
});

Deno.test("exit codes follow Docker: 0, 3, 125, 126, 127, 137", opts, async () => {
  await using t = await TestEnv.create();
  assert.equal((await t.run(["run", "/bin/true"])).code, 0);
  assert.equal((await t.run(["run", "/bin/sh", "-c", "exit 3"])).code, 3);
  const bad = await t.run(["run", "--no-such-flag", "/bin/true"]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /^mini-docker: Unknown option '--no-such-flag'/);
  const cannot = await t.run(["run", "/etc/passwd"]);
  assert.equal(cannot.code, 126);
  assert.match(cannot.stderr, /exec: "\/etc\/passwd": permission denied/);
  // A command that is not a path: looked up in $PATH (with --rootfs every argument is the
  // command; without, a name that is not an absolute path is an image).
  const missing = await t.run(["run", "--rootfs", "rootfs/alpine", "nosuchcommand"]);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /executable file not found in \$PATH/);
  const missingPath = await t.run(["run", "/bin/nosuch"]);
  assert.equal(missingPath.code, 127);
  // 137: killed by SIGKILL from the host (PID 1 cannot be killed from inside its namespace).
  const child = t.spawn(["run", "/bin/sleep", "60"]);
  const { pid } = await t.waitRunning();
  Deno.kill(pid, "SIGKILL");
  const status = await child.status;
  await child.stdout.cancel();
  const err = await new Response(child.stderr).text();
  assert.equal(status.code, 137);
  assert.doesNotMatch(err, /out of memory/);
  for (const r of [cannot, missing, missingPath, bad]) {
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  }
});

Deno.test(
  "a memory limit is enforced: an allocator past it is killed and reported",
  opts,
  async () => {
    await using t = await TestEnv.create();
    // dd fills a 200 MiB buffer under a 50 MiB limit (the host has no swap to spill into).
    const r = await t.run([
      "run",
      "--memory",
      "50M",
      "/bin/sh",
      "-c",
      "dd if=/dev/zero of=/dev/null bs=200M count=1; echo survived $?",
    ]);
    // The shell's child was killed, the shell went on and exited 0: Docker's OOMKilled, in words.
    assert.equal(r.code, 0);
    assert.match(r.stdout, /survived 137/);
    assert.match(
      r.stderr,
      /^mini-docker: container \w+ \([0-9a-f]{12}\) ran out of memory \(limit 50MiB\): the kernel's OOM killer killed a process in it, and the container exited with code 0$/m,
    );
    const direct = await t.run([
      "run",
      "-m",
      "50m",
      "/bin/dd",
      "if=/dev/zero",
      "of=/dev/null",
      "bs=200M",
      "count=1",
    ]);
    assert.equal(direct.code, 137);
    assert.match(
      direct.stderr,
      /^mini-docker: container \w+ \([0-9a-f]{12}\) was killed: out of memory \(limit 50MiB\)$/m,
    );
  },
);

Deno.test(
  "a CPU limit is enforced: --cpus 0.5 gives a busy loop about half a core",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const child = t.spawn([
      "run",
      "--cpus",
      "0.5",
      "/bin/sh",
      "-c",
      "trap 'exit 0' TERM; while :; do :; done",
    ]);
    const { id } = await t.waitRunning();
    const cgroup = cgroupDriver({ parent: t.cgroupParent }).open(id);
    assert.ok(cgroup, "the container's cgroup exists");
    const u0 = cgroup.stats().cpuUsageUsec!;
    const idle0 = hostIdleSeconds();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    const stats = cgroup.stats();
    const used = (stats.cpuUsageUsec! - u0) / 1000;
    const elapsed = performance.now() - t0;
    const idleCores = (hostIdleSeconds() - idle0) / (elapsed / 1000);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await child.stdout.cancel();
    await child.stderr.cancel();
    const share = used / elapsed;
    // The limit: never more than half a CPU, and the kernel throttled the loop to keep it there.
    assert.ok(share < 0.6, `busy loop used ${share.toFixed(2)} of a CPU`);
    assert.ok((stats.cpuThrottledPeriods ?? 0) > 0, "the CFS quota throttled the loop");
    // And about half, not less, when the host had CPU to spare (a busy host gives it less).
    if (idleCores >= 0.6) {
      assert.ok(share > 0.35, `busy loop used ${share.toFixed(2)} of a CPU, ${idleCores} idle`);
    }
  },
);

/** Seconds all CPUs of the host have been idle (the "cpu" line of /proc/stat, USER_HZ 100). */
function hostIdleSeconds(): number {
  const fields = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.trim().split(/\s+/);
  return (Number(fields[4]) + Number(fields[5])) / 100;
}

Deno.test("isolation: hostname, PID 1, /proc, mounts, network none", opts, async () => {
  await using t = await TestEnv.create();
  const hostBefore = Deno.hostname();
  const r = await t.run([
    "run",
    "--hostname",
    "isolated",
    "/bin/sh",
    "-c",
    "hostname; echo $$; ls /proc | grep -c '^[0-9]'",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [name, pid, count] = r.stdout.trim().split("\n");
  assert.equal(name, "isolated");
  assert.equal(pid, "1");
  assert.ok(Number(count) <= 3, `the container sees ${count} processes`);
  assert.equal(Deno.hostname(), hostBefore);
  // The default hostname is the id's first 12 hex digits.
  const d = await t.run(["run", "/bin/hostname"]);
  assert.match(d.stdout, /^[0-9a-f]{12}\n$/);
  // A mount made inside (with the capability to mount) is invisible outside.
  const m = await t.run([
    "run",
    "--cap-add",
    "SYS_ADMIN",
    "/bin/sh",
    "-c",
    "mkdir -p /mnt/inner && mount -t tmpfs marker-fs /mnt/inner && grep -c marker-fs /proc/mounts",
  ]);
  assert.deepEqual([m.code, m.stdout], [0, "1\n"], m.stderr);
  assert.ok(!Deno.readTextFileSync("/proc/self/mountinfo").includes("marker-fs"));
  // --network none: only lo, and it is up.
  const n = await t.run([
    "run",
    "--network",
    "none",
    "/bin/sh",
    "-c",
    "tail -n +3 /proc/net/dev | cut -d: -f1; ip link show lo",
  ]);
  assert.equal(n.code, 0, n.stderr);
  assert.equal(n.stdout.split("\n")[0]!.trim(), "lo");
  assert.equal(n.stdout.split("\n").filter((l) => /^\s*\w+$/.test(l)).length, 1, n.stdout);
  assert.match(n.stdout, /<LOOPBACK,UP/);
  // --network host sees the host's interfaces.
  const h = await t.run([
    "run",
    "--network",
    "host",
    "/bin/sh",
    "-c",
    "tail -n +3 /proc/net/dev | wc -l",
  ]);
  const hostIfaces = Deno.readTextFileSync("/proc/net/dev").trim().split("\n").length - 2;
  assert.equal(Number(h.stdout.trim()), hostIfaces);
  // /sys is read-only, /dev has the standard nodes, /etc files are provided.
  const f = await t.run([
    "run",
    "--hostname",
    "files",
    "/bin/sh",
    "-c",
    "touch /sys/x 2>/dev/null && echo writable; ls /dev; cat /etc/hostname; grep -c files /etc/hosts",
  ]);
  assert.doesNotMatch(f.stdout, /writable/);
  for (const dev of ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"]) {
    assert.match(f.stdout, new RegExp(`^${dev}$`, "m"), `/dev/${dev}`);
  }
  assert.match(f.stdout, /^files\n1\n$/m);
});

Deno.test("the base rootfs is never modified; the fallback root is read-only", opts, async () => {
  await using t = await TestEnv.create();
  const before = [...Deno.readDirSync(`${t.rootfs}/etc`)].map((e) => e.name).sort();
  const r = await t.run([
    "run",
    "/bin/sh",
    "-c",
    "echo x > /etc/newfile && rm /bin/ls && cat /etc/newfile",
  ]);
  assert.deepEqual([r.code, r.stdout], [0, "x\n"], r.stderr);
  assert.deepEqual([...Deno.readDirSync(`${t.rootfs}/etc`)].map((e) => e.name).sort(), before);
  assert.ok(Deno.lstatSync(`${t.rootfs}/bin/ls`).isSymlink);
  // Each container starts from the base again.
  const again = await t.run([
    "run",
    "/bin/sh",
    "-c",
    "test -e /etc/newfile && echo leaked; test -e /bin/ls && echo ok",
  ]);
  assert.equal(again.stdout, "ok\n");
  // Without overlayfs: read-only root, writable tmpfs scratch, and a notice.
  const ro = await t.run([
    "run",
    "/bin/sh",
    "-c",
    "touch /etc/x 2>/dev/null || echo ro; touch /tmp/y && echo tmp",
  ], {
    env: { MINI_DOCKER_STORAGE: "readonly" },
  });
  assert.equal(ro.stdout, "ro\ntmp\n", ro.stderr);
  assert.match(ro.stderr, /overlayfs is unavailable/);
});

Deno.test("environment and working directory", opts, async () => {
  await using t = await TestEnv.create();
  const envFile = `${t.dir}/env.list`;
  Deno.writeTextFileSync(envFile, "# comment\n\nFROM_FILE=file value\nOVERRIDE=file\nFROM_HOST\n");
  const r = await t.run([
    "run",
    "-e",
    "A=1",
    "--env",
    "OVERRIDE=flag",
    "--env-file",
    envFile,
    "-w",
    "/work/dir",
    "/bin/sh",
    "-c",
    'echo "$A|$FROM_FILE|$OVERRIDE|$FROM_HOST|$PATH|$HOME"; pwd',
  ], { env: { FROM_HOST: "host value" } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    "1|file value|flag|host value|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/root\n/work/dir\n",
  );
});

Deno.test(
  "Docker's environment: HOME from the container's /etc/passwd, PATH, HOSTNAME, TERM with -t",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const env = async (args: string[]) => {
      const r = await t.run(["run", "--hostname", "h1", ...args]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.replaceAll("\r", "");
    };
    const show = ["/bin/sh", "-c", 'echo "$HOME|$PATH|$HOSTNAME|${TERM-unset}"'];
    const path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    // The rootfs's passwd: root's home, nobody's; a user without an entry gets "/".
    assert.equal(await env(show), `/root|${path}|h1|unset\n`);
    assert.equal(await env(["-u", "nobody", ...show]), `/nonexistent|${path}|h1|unset\n`);
    assert.equal(await env(["-u", "4242:4242", ...show]), `/|${path}|h1|unset\n`);
    // -e HOME and -e PATH win; -t gives TERM.
    assert.equal(
      await env(["-e", "HOME=/x", "-e", "PATH=/bin", "-u", "nobody", ...show]),
      "/x|/bin|h1|unset\n",
    );
    assert.equal(await env(["-t", ...show]), `/root|${path}|h1|xterm\n`);
    // Docker's order: PATH, HOSTNAME, TERM, then the image's and the flags', HOME last.
    assert.equal(
      await env(["-t", "-e", "A=1", "/usr/bin/env"]),
      `PATH=${path}\nHOSTNAME=h1\nTERM=xterm\nA=1\nHOME=/root\n`,
    );
    // exec -u: the exec's user gets its own home, unless HOME was set by the run.
    const id = (await t.run(["run", "-d", "/bin/sleep", "300"])).stdout.trim();
    const execHome = async (args: string[]) =>
      (await t.run(["exec", ...args, id, "/bin/sh", "-c", "echo $HOME"])).stdout;
    assert.equal(await execHome([]), "/root\n");
    assert.equal(await execHome(["-u", "nobody"]), "/nonexistent\n");
    assert.equal(await execHome(["-u", "4242"]), "/\n");
    assert.equal((await t.run(["rm", "-f", id])).code, 0);
    const set = (await t.run(["run", "-d", "-e", "HOME=/set", "/bin/sleep", "300"])).stdout.trim();
    assert.equal(
      (await t.run(["exec", "-u", "nobody", set, "/bin/sh", "-c", "echo $HOME"])).stdout,
      "/set\n",
    );
    assert.equal((await t.run(["rm", "-f", set])).code, 0);
  },
);

Deno.test("stdin is the container's only with -i, or when it is a terminal", opts, async () => {
  await using t = await TestEnv.create();
  // A loop that reads its own input around mini-docker keeps every line (Docker without -i).
  const md = [Deno.execPath(), "run", "-A", "--quiet", `${REPO}/main.ts`].join(" ");
  const loop = await new Deno.Command("sh", {
    args: [
      "-c",
      `printf 'a\\nb\\nc\\n' | while read x; do ${md} run /bin/cat; echo "line $x"; done`,
    ],
    cwd: t.cwd,
    env: t.env,
  }).output();
  assert.equal(new TextDecoder().decode(loop.stdout), "line a\nline b\nline c\n");
  // With -i, the container reads it.
  const piped = await t.run(["run", "-i", "/bin/sh", "-c", "cat; echo end"], {
    stdin: "one\ntwo\n",
  });
  assert.equal(piped.stdout, "one\ntwo\nend\n", piped.stderr);
  // Without -i, nothing to read (/dev/null).
  const closed = await t.run(["run", "/bin/sh", "-c", "cat; echo end"], { stdin: "ignored\n" });
  assert.equal(closed.stdout, "end\n", closed.stderr);
});

Deno.test("bad input: one clear line, exit 125, nothing left behind", opts, async () => {
  await using t = await TestEnv.create();
  const cases: [string[], RegExp][] = [
    [["run", "--unknown", "/bin/true"], /Unknown option '--unknown'/],
    [
      ["run", "--rootfs", "/nonexistent/root", "/bin/true"],
      /Rootfs "\/nonexistent\/root" does not exist: prepare it with "mini-docker rootfs \/nonexistent\/root"/,
    ],
    [["run", "--memory", "lots", "/bin/true"], /Cannot parse memory size "lots"/],
    [["run", "--cpus", "half", "/bin/true"], /Cannot parse CPU count "half"/],
    [["run", "--cpus", "999", "/bin/true"], /Invalid CPU count "999"/],
    [["run"], /No image or command given/],
    [["run", "--network", "nosuchnet", "/bin/true"], /No such network: nosuchnet/],
    [["run", "-w", "relative", "/bin/true"], /Invalid working directory "relative"/],
    [["run", "--hostname", "bad host", "/bin/true"], /Invalid hostname "bad host"/],
    [
      ["run", "--env-file", "/nonexistent.env", "/bin/true"],
      /Cannot read env file "\/nonexistent.env"/,
    ],
    [["frobnicate"], /Unknown command 'frobnicate'/],
    // Errors that used to take two lines: a suggestion, a value with a newline, a bad archive.
    [["rn", "/bin/true"], /^mini-docker: Unknown command 'rn' \(Did you mean one of rm, run\?\)/],
    [["run", "--hostname", "a\nb", "/bin/true"], /^mini-docker: Invalid hostname "a\\nb": /],
    [["import", "/etc/hostname", "x:1"], /^mini-docker: Cannot import "\/etc\/hostname": /],
  ];
  for (const [args, message] of cases) {
    const r = await t.run(args);
    assert.equal(r.code, 125, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    t.assertNothingLeft();
  }
  // The default rootfs missing: the error names it and the command that prepares it.
  await Deno.remove(t.rootfs, { recursive: true });
  const r = await t.run(["run", "/bin/true"]);
  assert.equal(r.code, 125);
  assert.match(
    r.stderr,
    /^mini-docker: Rootfs "rootfs\/alpine" does not exist and the default image "127.0.0.1:9\/none:latest" is not available \(.*\): prepare the rootfs with "mini-docker rootfs", or pass --rootfs DIR or --image NAME\n$/,
  );
});

Deno.test("not root: a clear error before any work", opts, async () => {
  await using t = await TestEnv.create();
  // Deno's module cache lives under /root, which nobody may read, and so may the checkout
  // (a clone in /root, or in a mktemp -d directory): give the test user a copy of both.
  const cache = `${t.dir}/deno-cache`;
  const home = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
  await new Deno.Command("cp", { args: ["-a", home, cache] }).output();
  const src = `${t.dir}/src`;
  copySources(REPO, src);
  await new Deno.Command("chmod", { args: ["-R", "a+rwX", t.dir] }).output();
  const out = await new Deno.Command("setpriv", {
    args: [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `${src}/main.ts`,
      "run",
      "/bin/true",
    ],
    cwd: t.cwd,
    env: { ...t.env, DENO_DIR: cache, HOME: t.dir },
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 125, stderr);
  assert.match(stderr, /^mini-docker: mini-docker run needs root/);
  // Every other command that reads root's state says so in one line (exit 1, as Docker's
  // "permission denied" on its socket), before it reads anything; version works.
  for (
    const [args, path] of [
      [["ps"], "mini-docker ps"],
      [["inspect", "x"], "mini-docker inspect"],
      [["images"], "mini-docker images"],
      [["network", "ls"], "mini-docker network ls"],
      [["container", "prune", "-f"], "mini-docker container prune"],
    ] as const
  ) {
    const r = await new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        `${src}/main.ts`,
        ...args,
      ],
      cwd: t.cwd,
      env: { ...t.env, DENO_DIR: cache, HOME: t.dir },
    }).output();
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 1, `${args.join(" ")}: ${err}`);
    assert.equal(
      err,
      `mini-docker: ${path} needs root (containers, images and their state are root's): run it with sudo\n`,
    );
  }
  const version = await new Deno.Command("setpriv", {
    args: [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `${src}/main.ts`,
      "version",
      "-f",
      "{{.Client.Version}}",
    ],
    cwd: t.cwd,
    env: { ...t.env, DENO_DIR: cache, HOME: t.dir },
  }).output();
  assert.equal(version.code, 0, new TextDecoder().decode(version.stderr));
});

Deno.test("container names are unique while running", opts, async () => {
  await using t = await TestEnv.create();
  const child = t.spawn(["run", "--name", "web", "/bin/sleep", "30"]);
  const { pid } = await t.waitRunning();
  const r = await t.run(["run", "--name", "web", "/bin/true"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /Conflict: the container name "web" is already in use/);
  const bad = await t.run(["run", "--name", "-bad/name", "/bin/true"]);
  assert.equal(bad.code, 125);
  Deno.kill(pid, "SIGKILL");
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  await waitFor(() => t.containerIds().length === 0, 5000, "state removal");
});

Deno.test(
  "no file descriptor of the host reaches the container (CVE-2024-21626)",
  opts,
  async () => {
    await using t = await TestEnv.create();
    // The shell leaves fd 7 open across exec: mini-docker and the command would both inherit it.
    const main = new URL("../main.ts", import.meta.url).pathname;
    const out = await new Deno.Command("sh", {
      args: [
        "-c",
        `exec 7</etc/hostname; exec "$0" run -A --quiet ${main} run /bin/ls /proc/self/fd`,
        Deno.execPath(),
      ],
      cwd: t.cwd,
      env: t.env,
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    // 0, 1, 2, and the directory ls is reading.
    assert.deepEqual(new TextDecoder().decode(out.stdout).trim().split("\n"), ["0", "1", "2", "3"]);
  },
);

Deno.test("the command is in its cgroup from its first instruction", opts, async () => {
  await using t = await TestEnv.create();
  // cat is the container's first process itself (no shell before it): what it reads of its own
  // cgroup it read as soon as it ran.
  // The host's cgroup namespace (the default on v1 and hybrid hosts): paths as the host's.
  const r = await t.run([
    "run",
    "--cgroupns",
    "host",
    "--memory",
    "64m",
    "/bin/cat",
    "/proc/self/cgroup",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  const mine = lines.filter((l) => l.includes(`/${t.cgroupParent}/`));
  // v2: one line; v1: every hierarchy the container's cgroup has (memory among them).
  assert.ok(mine.length >= 1, r.stdout);
  if (!lines.some((l) => l.startsWith("0::"))) {
    assert.ok(mine.some((l) => /:memory:/.test(l)), r.stdout);
  }
});

Deno.test(
  "--cgroupns private: its cgroup is its / from its first instruction, under small pids and memory limits",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const v2 = detectLayout() === "v2";
    // Docker's default: private on cgroup v2, host on v1 and hybrid hosts.
    const plain = await t.run(["run", "--rm", "/bin/cat", "/proc/self/cgroup"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout.includes(`/${t.cgroupParent}/`), !v2, plain.stdout);
    // cat is the first process: what it reads it read at its first instruction (v2: mini-docker
    // passed through the cgroup to make the namespace, whose limits came after; the process was
    // moved in at its gate). Every hierarchy shows "/".
    const cat = await t.run([
      "run",
      "--rm",
      "--cgroupns",
      "private",
      "--pids-limit",
      "3",
      "--memory",
      "8m",
      "/bin/cat",
      "/proc/self/cgroup",
    ]);
    assert.equal(cat.code, 0, cat.stderr);
    const lines = cat.stdout.trim().split("\n");
    assert.deepEqual(lines.filter((l) => !l.endsWith(":/")), [], cat.stdout);
    if (v2) assert.deepEqual(lines, ["0::/"]);
    // The limits hold once it runs: a fourth process cannot be made, memory is capped.
    const bg = await t.run([
      "run",
      "-d",
      "--cgroupns",
      "private",
      "--pids-limit",
      "3",
      "--memory",
      "8m",
      "/bin/sleep",
      "300",
    ]);
    assert.equal(bg.code, 0, bg.stderr);
    const id = bg.stdout.trim();
    const mode = await t.run(["inspect", "-f", "{{.HostConfig.CgroupnsMode}}", id]);
    assert.equal(mode.stdout, "private\n");
    const cgroup = cgroupDriver({ parent: t.cgroupParent }).open(id);
    assert.ok(cgroup, "the container's cgroup exists");
    assert.deepEqual(cgroup.pids().length, 1, "only its first process: mini-docker is out");
    const stats = cgroup.stats();
    assert.equal(stats.memoryLimit, 8 * 1024 * 1024);
    // What mini-docker's passage charged stays small (measured: see container/cgroupns.ts).
    assert.ok(stats.memoryUsage! < 2 * 1024 * 1024, `charged ${stats.memoryUsage}`);
    const pidsMax = cgroup.paths.map((p) => `${p}/pids.max`).find((f) => {
      try {
        return Deno.statSync(f).isFile;
      } catch {
        return false;
      }
    });
    assert.equal(Deno.readTextFileSync(pidsMax!).trim(), "3");
    // exec joins its cgroup namespace too; the pids limit stops the fourth process.
    const exec = await t.run([
      "exec",
      id,
      "/bin/sh",
      "-c",
      "grep -v ':/$' /proc/self/cgroup; sleep 30 >/dev/null 2>&1 & sleep 30 >/dev/null 2>&1 & echo forked",
    ]);
    assert.match(exec.stderr, /can't fork|Resource temporarily unavailable/, exec.stderr);
    assert.equal(exec.stdout, "", "every line of its /proc/self/cgroup ends in :/, no fork");
    assert.equal((await t.run(["rm", "-f", id])).code, 0);
    // Anything but private or host: one line, 125, nothing made.
    const bad = await t.run(["run", "--rm", "--cgroupns", "shared", "/bin/true"]);
    assert.equal(bad.code, 125);
    assert.equal(bad.stderr, 'mini-docker: Invalid --cgroupns "shared": use private or host\n');
  },
);

Deno.test("the command starts with no signal ignored: yes | head ends quietly", opts, async () => {
  await using t = await TestEnv.create();
  // Deno ignores SIGPIPE, and an ignored signal stays ignored across execve: without the reset,
  // `yes` would get EPIPE and print "Broken pipe" instead of being ended by the signal.
  const script = "grep SigIgn /proc/self/status; yes | head -1";
  const r = await t.run(["run", "/bin/sh", "-c", script]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "SigIgn:\t0000000000000000\ny\n");
  assert.equal(r.stderr, "");
  // With --init the command is the init's (tini's) child: nothing ignored either.
  const init = await t.run(["run", "--init", "/bin/sh", "-c", script]);
  assert.equal(init.code, 0, init.stderr);
  assert.equal(init.stdout, "SigIgn:\t0000000000000000\ny\n");
  assert.equal(init.stderr, "");
});

/**
 * Copies the program's sources (.ts files, deno.json, deno.lock) from `from` to `to`, without
 * the toolchain, root filesystems, tests and benchmarks.
 */
function copySources(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    const skip = ["toolchain", "node_modules", "dist", "tests", "bench", "alpine"];
    if (e.isDirectory && !e.name.startsWith(".") && !skip.includes(e.name)) {
      copySources(`${from}/${e.name}`, `${to}/${e.name}`);
    } else if (e.isFile && /\.ts$|^deno\.(json|lock)$/.test(e.name)) {
      Deno.copyFileSync(`${from}/${e.name}`, `${to}/${e.name}`);
    }
  }
}
