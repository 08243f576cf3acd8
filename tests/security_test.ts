/**
 * A container is a security boundary: Docker's default confinement (capabilities, seccomp,
 * devices, masked and read-only paths), no mini-docker process reachable from inside, users
 * looked up inside, and a container that dies with its foreground mini-docker. Each attack is
 * really tried from inside a container, made harmless (read a marker, open for writing without
 * writing), and must be refused; tests/probes/escape.c holds the ones a shell cannot do.
 */
import assert from "node:assert/strict";
import { SLOWDOWN, startRunning, TestEnv, waitFor } from "./helpers.ts";
import { escapeProbe, probeResults } from "./helpers/probe.ts";
import { isAlive, processRef } from "../container/state.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Docker's 14 default capabilities as the kernel's mask. */
const DOCKER_CAPS = 0xa80425fbn;

function caps(stdout: string): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const m of stdout.matchAll(/^Cap(\w+):\s*([0-9a-f]+)$/gm)) out[m[1]!] = BigInt(`0x${m[2]}`);
  return out;
}

const CAPS = ["/bin/sh", "-c", "grep ^Cap /proc/self/status"];

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A TestEnv whose rootfs has the escape probe at /probe. */
async function withProbe(): Promise<TestEnv> {
  const t = await TestEnv.create();
  Deno.copyFileSync(await escapeProbe(), `${t.rootfs}/probe`);
  Deno.chmodSync(`${t.rootfs}/probe`, 0o755);
  return t;
}

Deno.test(
  "capabilities: Docker's default set, none for a user, --cap-add/--cap-drop/--privileged",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const root = await t.run(["run", ...CAPS]);
    assert.equal(root.code, 0, root.stderr);
    assert.deepEqual(caps(root.stdout), {
      Inh: 0n,
      Prm: DOCKER_CAPS,
      Eff: DOCKER_CAPS,
      Bnd: DOCKER_CAPS,
      Amb: 0n,
    });
    // A user other than root gets nothing effective; the bounding set is still Docker's.
    const user = caps((await t.run(["run", "-u", "1000", ...CAPS])).stdout);
    assert.deepEqual([user.Eff, user.Prm, user.Bnd], [0n, 0n, DOCKER_CAPS]);
    // With or without CAP_, any case; ALL.
    const tweaked = caps(
      (await t.run(["run", "--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN", ...CAPS])).stdout,
    );
    assert.equal(tweaked.Eff, (DOCKER_CAPS | (1n << 12n)) & ~1n);
    const only = caps(
      (await t.run(["run", "--cap-drop", "ALL", "--cap-add", "KILL", ...CAPS])).stdout,
    );
    assert.equal(only.Bnd, 1n << 5n);
    // --privileged: every capability mini-docker holds (this machine's root lacks SYS_RESOURCE).
    const held = caps(Deno.readTextFileSync("/proc/self/status")).Prm;
    const privileged = caps((await t.run(["run", "--privileged", ...CAPS])).stdout);
    assert.equal(privileged.Eff, held);
    // exec gets the container's set.
    const id = (await t.run(["run", "-d", "--cap-add", "NET_ADMIN", "/bin/sleep", "300"])).stdout
      .trim();
    const exec = caps((await t.run(["exec", id, ...CAPS])).stdout);
    assert.equal(exec.Eff, DOCKER_CAPS | (1n << 12n));
    const rm = await t.run(["rm", "-f", id]);
    assert.equal(rm.code, 0, rm.stderr);
  },
);

Deno.test(
  "seccomp: Docker's profile by default, unconfined, a profile of one's own",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const status = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status";
    const def = await t.run(["run", "/bin/sh", "-c", status]);
    assert.equal(def.stdout, "NoNewPrivs:\t0\nSeccomp:\t2\n", def.stderr);
    const off = await t.run([
      "run",
      "--security-opt",
      "seccomp=unconfined",
      "/bin/sh",
      "-c",
      status,
    ]);
    assert.equal(off.stdout, "NoNewPrivs:\t0\nSeccomp:\t0\n", off.stderr);
    const nnp = await t.run([
      "run",
      "--security-opt",
      "no-new-privileges",
      "/bin/sh",
      "-c",
      status,
    ]);
    assert.equal(nnp.stdout, "NoNewPrivs:\t1\nSeccomp:\t2\n", nnp.stderr);
    // A profile of one's own, in Docker's format: everything but mkdir.
    const profile = `${t.dir}/no-mkdir.json`;
    Deno.writeTextFileSync(
      profile,
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }],
      }),
    );
    const own = await t.run([
      "run",
      "--security-opt",
      `seccomp=${profile}`,
      "/bin/sh",
      "-c",
      "mkdir /tmp/x || echo refused; touch /tmp/y && echo touched",
    ]);
    assert.equal(own.code, 0, own.stderr);
    assert.equal(own.stdout, "refused\ntouched\n");
    assert.match(own.stderr, /Operation not permitted/);
  },
);

Deno.test("escape probes from published container CVEs are refused", opts, async () => {
  await using t = await withProbe();
  const r = await t.run(["run", "/probe"]);
  assert.equal(r.code, 0, r.stderr);
  const got = probeResults(r.stdout);
  const expected: Record<string, string> = {
    // CVE-2014-3519 class ("Shocker"): needs CAP_DAC_READ_SEARCH.
    "open_by_handle_at": "EPERM",
    // New user or mount namespaces: the first step of many kernel exploits.
    "unshare-user": "EPERM",
    "unshare-mount": "EPERM",
    // A fresh procfs (core_pattern) or cgroup v1 hierarchy (release_agent, CVE-2022-0492).
    "mount-proc": "EPERM",
    "mount-cgroup": "EPERM",
    // mknod is allowed (Docker allows it), using the node is not.
    "mknod-block": "ok",
    "open-block": "EPERM",
    "kmsg": "ENOENT",
    "syslog": "EPERM",
    "keyctl": "EPERM",
    "bpf": "EPERM",
    "sethostname": "EPERM",
    "clock_settime": "EPERM",
    "reboot": "EPERM",
    "init_module": "EPERM",
    "perf_event_open": "EPERM",
    // Read-only /proc/sys and /proc/sysrq-trigger, and no way to remount them.
    "core_pattern": "EROFS",
    "sysrq": "EROFS",
    "remount-proc-sys": "EPERM",
  };
  // Not every kernel has /proc/sysrq-trigger (this one may not): refused either way.
  if (!exists("/proc/sysrq-trigger")) expected.sysrq = "ENOENT";
  for (const [name, result] of Object.entries(expected)) {
    assert.equal(got[name], result, `${name}: ${r.stdout}`);
  }
});

Deno.test(
  "devices: nodes may be made, not used; --device gives one, with its permissions",
  opts,
  async () => {
    await using t = await withProbe();
    const mem = await t.run([
      "run",
      "/bin/sh",
      "-c",
      "mknod /tmp/mem c 1 1 && /probe read /tmp/mem",
    ]);
    assert.equal(mem.stdout, "open EPERM\n", mem.stderr);
    // /dev/kmsg (1:11) is not among the default devices: --device gives it, here write-only.
    const kmsg = await t.run([
      "run",
      "--device",
      "/dev/kmsg:/dev/log-only:w",
      "/bin/sh",
      "-c",
      "/probe read /dev/log-only; /probe write /dev/log-only",
    ]);
    assert.equal(kmsg.stdout, "open EPERM\nopen-for-write ok\n", kmsg.stderr);
    const without = await t.run([
      "run",
      "/bin/sh",
      "-c",
      "mknod /tmp/k c 1 11; /probe write /tmp/k",
    ]);
    assert.equal(without.stdout, "open-for-write EPERM\n", without.stderr);
    // The standard nodes work.
    const std = await t.run([
      "run",
      "/bin/sh",
      "-c",
      "head -c 4 /dev/urandom | wc -c; echo x >/dev/null && echo null",
    ]);
    assert.equal(std.stdout.replace(/ /g, ""), "4\nnull\n", std.stderr);
  },
);

Deno.test("masked and read-only paths: Docker's lists", opts, async () => {
  await using t = await TestEnv.create();
  const r = await t.run([
    "run",
    "/bin/sh",
    "-c",
    [
      "wc -c </proc/keys",
      "ls /sys/firmware | wc -l",
      "echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || echo ro",
      "grep -E ' /proc/(sys|bus|fs|irq|sysrq-trigger) ' /proc/self/mountinfo | grep -c ' ro,'",
    ].join("; "),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const readonly = ["sys", "bus", "fs", "irq", "sysrq-trigger"].filter((p) => exists(`/proc/${p}`));
  assert.equal(r.stdout.replace(/ /g, ""), `0\n0\nro\n${readonly.length}\n`);
  // --privileged: nothing hidden (and no boundary).
  const p = await t.run([
    "run",
    "--privileged",
    "/bin/sh",
    "-c",
    "grep -c ' /proc/sys ' /proc/self/mountinfo",
  ]);
  assert.equal(p.stdout, "0\n", p.stderr);
});

Deno.test(
  "no mini-docker process is visible or reachable from inside: run, exec, --init",
  opts,
  async () => {
    await using t = await TestEnv.create();
    // A scanner inside looks at every process and thread it can see, for as long as the execs
    // below run: the executable of each, and the root of each thread.
    const scan = [
      "while [ ! -e /tmp/stop ]; do",
      "  for p in /proc/[0-9]*; do",
      '    e=$(readlink $p/exe 2>/dev/null); case "$e" in *deno*|*mini-docker*) echo "EXE $p $e";; esac',
      "    for task in $p/task/*; do r=$(readlink $task/root 2>/dev/null);",
      '      [ -n "$r" ] && [ "$r" != / ] && echo "ROOT $task $r"; done',
      "  done",
      "done >/tmp/scan.log 2>&1; echo scanned >>/tmp/scan.log",
    ].join("\n");
    const id = (await t.run(["run", "-d", "--init", "/bin/sh", "-c", `(${scan}) & exec sleep 300`]))
      .stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    for (let i = 0; i < 15; i++) {
      const r = await t.run(["exec", id, "/bin/true"]);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await t.run(["exec", id, "/bin/sh", "-c", "touch /tmp/stop"])).code, 0);
    await waitFor(
      () => {
        try {
          return Deno.readTextFileSync(`${t.dir}/lib/containers/${id}/upper/tmp/scan.log`)
            .includes("scanned");
        } catch {
          return false;
        }
      },
      10_000 * SLOWDOWN,
      "the scanner",
    );
    const log = Deno.readTextFileSync(`${t.dir}/lib/containers/${id}/upper/tmp/scan.log`);
    assert.equal(log, "scanned\n", "a process of mini-docker was seen from inside");
    // PID 1 is the init, one thread, in the container's root; nothing else of ours.
    const ps = await t.run([
      "exec",
      id,
      "/bin/sh",
      "-c",
      "ls /proc/1/task | wc -l; readlink /proc/1/exe; ps -o comm",
    ]);
    assert.equal(ps.stdout.split("\n").slice(0, 2).join(" "), "1 /sbin/docker-init", ps.stdout);
    assert.doesNotMatch(ps.stdout, /deno|mini-docker/);
    const rm = await t.run(["rm", "-f", id]);
    assert.equal(rm.code, 0, rm.stderr);
  },
);

Deno.test(
  "exec -u looks the user up inside the container, never through a host path",
  opts,
  async () => {
    await using t = await TestEnv.create();
    // A passwd that exists only on the host, and a container whose /etc/passwd points at it.
    const hostFile = `${t.dir}/host-passwd`;
    Deno.writeTextFileSync(hostFile, "evil:x:4242:4242::/:/bin/sh\n");
    const id = (await t.run(["run", "-d", "/bin/sleep", "300"])).stdout.trim();
    const setup = await t.run([
      "exec",
      id,
      "/bin/sh",
      "-c",
      `echo 'app:x:1234:1234::/:/bin/sh' >>/etc/passwd; cp /etc/passwd /etc/passwd.real; ln -sf ${hostFile} /etc/passwd`,
    ]);
    assert.equal(setup.code, 0, setup.stderr);
    const evil = await t.run(["exec", "-u", "evil", id, "id", "-u"]);
    assert.notEqual(evil.code, 0);
    assert.doesNotMatch(evil.stdout, /4242/);
    assert.match(evil.stderr, /Cannot find user "evil"/);
    assert.equal(evil.stderr.trim().split("\n").length, 1, evil.stderr);
    await t.run(["exec", id, "/bin/sh", "-c", "mv /etc/passwd.real /etc/passwd"]);
    const app = await t.run(["exec", "-u", "app", id, "id", "-u"]);
    assert.equal(app.stdout, "1234\n", app.stderr);
    const rm = await t.run(["rm", "-f", id]);
    assert.equal(rm.code, 0, rm.stderr);
  },
);

for (const user of ["root", "1000"]) {
  Deno.test(
    `the container dies with a SIGKILLed foreground mini-docker (user ${user})`,
    opts,
    async () => {
      await using t = await TestEnv.create();
      const child = t.spawn(["run", "-u", user, "/bin/sleep", "300"]);
      const running = await t.waitRunning();
      const ref = processRef(running.pid);
      child.kill("SIGKILL");
      await child.output();
      // The kernel's parent-death signal cannot reach it (see container/watcher.ts): the watcher.
      await waitFor(() => !isAlive(ref), 10_000 * SLOWDOWN, "the container's end");
      // What is left (state, cgroup) is cleaned by the next command that looks.
      assert.equal((await t.run(["prune", "-f"])).code, 0);
    },
  );
}

Deno.test("each container has its own session keyring", opts, async () => {
  await using t = await withProbe();
  const host = await new Deno.Command(`${t.rootfs}/probe`, { args: ["keyring"] }).output();
  const hostId = new TextDecoder().decode(host.stdout).trim();
  assert.match(hostId, /^session \d+$/);
  // seccomp blocks keyctl: without the filter, the keyring is still not the host's.
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const r = await t.run(["run", "--security-opt", "seccomp=unconfined", "/probe", "keyring"]);
    assert.match(r.stdout, /^session \d+\n$/, r.stderr);
    ids.push(r.stdout.trim());
  }
  assert.notEqual(ids[0], hostId);
  assert.notEqual(ids[0], ids[1]);
});

Deno.test("--ulimit: set before the command runs, for root and for a user", opts, async () => {
  await using t = await TestEnv.create();
  for (const user of ["0", "1000"]) {
    const r = await t.run([
      "run",
      "-u",
      user,
      "--ulimit",
      "nofile=100:200",
      "/bin/sh",
      "-c",
      "ulimit -n; ulimit -Hn",
    ]);
    assert.equal(r.stdout, "100\n200\n", r.stderr);
  }
  // mini-docker cannot raise a hard limit above its own (it lacks CAP_SYS_RESOURCE here).
  const own = /^Max open files\s+\d+\s+(\d+)/m.exec(
    Deno.readTextFileSync("/proc/self/limits"),
  )![1]!;
  const tooHigh = await t.run(["run", "--ulimit", `nofile=10:${Number(own) * 10}`, "/bin/true"]);
  if (tooHigh.code !== 0) {
    assert.equal(tooHigh.code, 125);
    assert.match(tooHigh.stderr, /^mini-docker: Cannot set RLIMIT_NOFILE/);
    assert.equal(tooHigh.stderr.trim().split("\n").length, 1);
  }
});

Deno.test("a web server binds port 80 as root under the default confinement", opts, async () => {
  await using t = await TestEnv.create();
  const r = await t.run([
    "run",
    "--network",
    "none",
    "/bin/sh",
    "-c",
    "mkdir /www && echo served >/www/index.html && httpd -p 80 -h /www && wget -qO- http://127.0.0.1/",
  ]);
  assert.equal(r.stdout, "served\n", r.stderr);
});

Deno.test("bad security input: one line, 125, nothing left behind", opts, async () => {
  await using t = await TestEnv.create();
  Deno.writeTextFileSync(`${t.dir}/broken.json`, '{"defaultAction": ');
  Deno.writeTextFileSync(`${t.dir}/badaction.json`, '{"defaultAction": "SCMP_ACT_MAYBE"}');
  Deno.writeTextFileSync(
    `${t.dir}/killer.json`,
    JSON.stringify({
      defaultAction: "SCMP_ACT_KILL_PROCESS",
      syscalls: [{ names: ["read", "write"], action: "SCMP_ACT_ALLOW" }],
    }),
  );
  const cases: [string[], RegExp][] = [
    [["--cap-add", "NOPE"], /Unknown capability "NOPE" in --cap-add/],
    [["--cap-drop", "CAP_"], /Unknown capability "CAP_" in --cap-drop/],
    [["--security-opt", "seccomp=/nonexistent.json"], /Cannot read seccomp profile/],
    [["--security-opt", `seccomp=${t.dir}/broken.json`], /broken\.json/],
    [["--security-opt", `seccomp=${t.dir}/badaction.json`], /SCMP_ACT_MAYBE/],
    [["--security-opt", "apparmor=x"], /Invalid --security-opt "apparmor=x"/],
    [
      ["--security-opt", `seccomp=${t.dir}/killer.json`],
      /kills by default .* does not allow capset/,
    ],
    [["--device", "/dev/nonexistent"], /Cannot use --device "\/dev\/nonexistent"/],
    [["--device", "/etc/hostname"], /not a device node/],
    [["--ulimit", "nofile=abc"], /Invalid --ulimit "nofile=abc"/],
    [["--ulimit", "nofile=20:10"], /soft limit cannot be above the hard limit/],
  ];
  for (const [flags, message] of cases) {
    const r = await t.run(["run", ...flags, "/bin/true"]);
    assert.equal(r.code, 125, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  void startRunning;
});
