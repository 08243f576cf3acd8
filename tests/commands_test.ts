/**
 * Docker's commands beyond run: create + start (-a, -i), attach, wait, restart, rename, pause and
 * unpause, top, labels, restart policies kept by the supervisor, the prune commands with their
 * confirmation, system df, version and info; and what a killed supervisor or a bad name leaves
 * in the run root. Real containers on a busybox rootfs.
 */
import assert from "node:assert/strict";
import { killSupervisors, type Result, SLOWDOWN, TestEnv, waitFor } from "./helpers.ts";
import { processStartTime } from "../container/state.ts";
import { exists } from "../base/paths.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function ok(r: Result): string {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function inspect(t: TestEnv, ref: string, template: string): Promise<string> {
  return ok(await t.run(["inspect", "-f", template, ref])).trim();
}

/** Whether a process's state letter (/proc/PID/stat) says it is stopped (frozen). */
function state(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/stat`).replace(/^.*\) /, "")[0]!;
}

/** CPU ticks a process has used (utime + stime). */
function cpuTicks(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).replace(/^.*\) /, "").split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

Deno.test(
  "create, then start -a: output, exit code, Config as given; wait; start again",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const id = ok(
      await t.run([
        "create",
        "--name",
        "job",
        "-l",
        "tier=batch",
        "--label",
        "flag",
        "/bin/sh",
        "-c",
        'echo "out $RUN"; echo err >&2; exit 3',
      ]),
    ).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.match(ok(await t.run(["ps", "-a"])), /Created\s+job$/m);
    assert.equal(
      await inspect(
        t,
        "job",
        "{{.State.Status}} {{.State.Running}} {{.State.StartedAt}} {{json .Config.Labels}}",
      ),
      'created false 0001-01-01T00:00:00Z {"flag":"","tier":"batch"}',
    );
    // Nothing runs until start: no cgroup, no process.
    assert.equal(t.containerIds().length, 1);
    const attached = await t.run(["start", "-a", "job"]);
    assert.equal(attached.code, 3, attached.stderr);
    assert.equal(attached.stdout, "out \n");
    assert.equal(attached.stderr, "err\n");
    assert.equal(ok(await t.run(["wait", "job"])), "3\n");
    assert.equal(
      await inspect(t, "job", "{{.State.Status}} {{.State.ExitCode}} {{.Config.Cmd}} {{.Path}}"),
      'exited 3 [/bin/sh -c echo "out $RUN"; echo err >&2; exit 3] /bin/sh',
    );
    // Started again (detached), from its saved spec, with its log growing.
    assert.equal(ok(await t.run(["start", "job"])), "job\n");
    assert.equal(ok(await t.run(["wait", "job"])), "3\n");
    const logs = await t.run(["logs", "job"]);
    assert.equal(logs.stdout, "out \nout \n");
    assert.equal(logs.stderr, "err\nerr\n");
    // start -ai: input to a container created with -i, whose stdin ends with ours.
    ok(await t.run(["create", "-i", "--name", "cat", "/bin/sh", "-c", "cat; echo done"]));
    const cat = await t.run(["start", "-ai", "cat"], { stdin: "typed\n" });
    assert.equal(cat.stdout, "typed\ndone\n", cat.stderr);
    assert.equal(cat.code, 0);
    // A start that fails keeps the container, with its error.
    ok(await t.run(["create", "--name", "broken", "/nosuch"]));
    const broken = await t.run(["start", "broken"]);
    assert.equal(broken.code, 127);
    assert.match(broken.stderr, /^mini-docker: .*\/nosuch.*\n$/);
    assert.match(
      await inspect(t, "broken", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}"),
      /^created 127 .*nosuch/,
    );
    ok(await t.run(["rm", "job", "cat", "broken"]));
    // create without a root, or for an image that does not exist: 125, nothing left.
    const none = await t.run(["create"]);
    assert.equal(none.code, 125);
    assert.deepEqual(t.containerIds(), []);
  },
);

Deno.test("attach: output from now on, input, the exit code; restart; rename", opts, async () => {
  await using t = await TestEnv.create();
  ok(
    await t.run([
      "run",
      "-d",
      "-i",
      "--name",
      "echo",
      "/bin/sh",
      "-c",
      'echo ready; while read line; do echo "got $line"; [ "$line" = bye ] && exit 7; done',
    ]),
  );
  await waitFor(() => /ready/.test(logOf(t, "echo")), 10_000 * SLOWDOWN, "ready");
  const attached = await t.run(["attach", "echo"], { stdin: "hello\nbye\n" });
  assert.equal(attached.code, 7, attached.stderr);
  assert.equal(attached.stdout, "got hello\ngot bye\n", "not what came before attaching");
  assert.equal(await inspect(t, "echo", "{{.State.ExitCode}}"), "7");
  const stopped = await t.run(["attach", "echo"]);
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, /^mini-docker: You cannot attach to a stopped container echo/);

  // restart: stop (SIGTERM, then SIGKILL) and start, as the same container.
  ok(await t.run(["run", "-d", "--name", "svc", "/bin/sh", "-c", "echo started; sleep 300"]));
  const pid1 = Number(await inspect(t, "svc", "{{.State.Pid}}"));
  assert.equal(ok(await t.run(["restart", "-t", "0", "svc"])), "svc\n");
  const pid2 = Number(await inspect(t, "svc", "{{.State.Pid}}"));
  assert.notEqual(pid1, pid2);
  assert.equal(processStartTime(pid1), undefined, "the first run is gone");
  assert.equal(await inspect(t, "svc", "{{.State.Status}}"), "running");
  await waitFor(() => logOf(t, "svc").split("started").length === 3, 10_000, "two starts");

  // rename: the new name everywhere, the old one free; Docker's refusals.
  assert.equal(ok(await t.run(["rename", "svc", "web"])), "");
  assert.match(ok(await t.run(["ps"])), / web$/m);
  assert.equal(await inspect(t, "web", "{{.Name}}"), "/web");
  for (
    const [args, re] of [
      [["rename", "web", "echo"], /^Conflict: the container name "echo" is already in use/],
      [["rename", "web", "web"], /same name/],
      [["rename", "web", "bad name"], /^Invalid container name "bad name"/],
      [["rename", "nosuch", "x"], /^No such container: nosuch$/],
    ] as const
  ) {
    const r = await t.run([...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr.replace(/^mini-docker: /, "").trim(), re);
  }
  ok(await t.run(["rm", "-f", "web", "echo"]));
  // A foreground run's container cannot be restarted: it is removed when it ends.
  const fg = t.spawn(["run", "--name", "fg", "/bin/sleep", "300"]);
  await t.waitRunning();
  const r = await t.run(["restart", "fg"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /runs in the foreground .* cannot be started again/);
  fg.kill("SIGKILL");
  await fg.output();
  ok(await t.run(["prune", "-f"]));
});

/** The log text of a container, "" before it has one. */
function logOf(t: TestEnv, name: string): string {
  for (const id of t.containerIds()) {
    try {
      const s = JSON.parse(Deno.readTextFileSync(`${t.dir}/lib/containers/${id}/state.json`));
      if (s.name === name) {
        return Deno.readTextFileSync(`${t.dir}/lib/containers/${id}/container.log`);
      }
    } catch { /* not yet */ }
  }
  return "";
}

Deno.test(
  "pause and unpause: the cgroup freezer stops every process; top shows them",
  opts,
  async () => {
    await using t = await TestEnv.create();
    ok(
      await t.run([
        "run",
        "-d",
        "--name",
        "busy",
        "/bin/sh",
        "-c",
        "sleep 300 & while :; do :; done",
      ]),
    );
    const pid = Number(await inspect(t, "busy", "{{.State.Pid}}"));
    // top: the host's ps -ef, the container's processes only (the loop and its sleep).
    const top = ok(await t.run(["top", "busy"]));
    const lines = top.trim().split("\n");
    assert.match(lines[0]!, /^UID {17}PID {17}PPID {16}C {19}STIME {15}TTY {17}TIME {16}CMD$/);
    assert.equal(lines.length, 3, top);
    assert.match(top, /sleep 300$/m);
    const custom = ok(await t.run(["top", "busy", "-o", "pid,comm"])).trim().split("\n");
    assert.match(custom[0]!, /^PID +COMMAND$/);
    assert.ok(custom.some((l) => l.startsWith(`${pid} `)), custom.join("\n"));

    assert.equal(ok(await t.run(["pause", "busy"])), "busy\n");
    const before = cpuTicks(pid);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(cpuTicks(pid), before, "no CPU time while paused");
    assert.match(state(pid), /[DST]/);
    assert.match(ok(await t.run(["ps"])), /Up .* \(Paused\) +busy$/m);
    assert.equal(
      await inspect(t, "busy", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"),
      "paused true true",
    );
    const again = await t.run(["pause", "busy"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is already paused/);
    const exec = await t.run(["exec", "busy", "/bin/true"]);
    assert.equal(exec.code, 1);
    assert.match(exec.stderr, /is paused, unpause the container before exec/);
    assert.equal(ok(await t.run(["unpause", "busy"])), "busy\n");
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(cpuTicks(pid) > before, "it runs again");
    const not = await t.run(["unpause", "busy"]);
    assert.equal(not.code, 1);
    assert.match(not.stderr, /is not paused/);
    // A paused container stops like any other (stop thaws it); rm -f too.
    ok(await t.run(["pause", "busy"]));
    ok(await t.run(["stop", "-t", "1", "busy"]));
    assert.equal(await inspect(t, "busy", "{{.State.Status}} {{.State.Paused}}"), "exited false");
    const stoppedTop = await t.run(["top", "busy"]);
    assert.equal(stoppedTop.code, 1);
    ok(await t.run(["start", "busy"]));
    ok(await t.run(["pause", "busy"]));
    ok(await t.run(["rm", "-f", "busy"]));
  },
);

Deno.test(
  "--restart policies, kept by the supervisor; stop leaves a container stopped",
  opts,
  async () => {
    await using t = await TestEnv.create();
    ok(
      await t.run([
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "/bin/sh",
        "-c",
        "echo run; exit 1",
      ]),
    );
    ok(await t.run(["run", "-d", "--name", "fine", "--restart", "on-failure", "/bin/true"]));
    ok(
      await t.run([
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "/bin/sh",
        "-c",
        "echo run; sleep 0.2",
      ]),
    );
    // on-failure:2: the first run and two restarts, then it stays exited.
    await waitFor(() => logOf(t, "flaky").split("run").length === 4, 15_000, "3 runs");
    await waitFor(
      () => /exited 2/.test(new TextDecoder().decode(inspectSync(t, "flaky"))),
      15_000,
      "flaky to stay exited",
    );
    assert.equal(
      await inspect(
        t,
        "flaky",
        "{{.RestartCount}} {{.State.ExitCode}} {{json .HostConfig.RestartPolicy}}",
      ),
      '2 1 {"Name":"on-failure","MaximumRetryCount":2}',
    );
    assert.equal(await inspect(t, "fine", "{{.RestartCount}} {{.State.Status}}"), "0 exited");
    // always: it keeps coming back, until stopped.
    await waitFor(() => logOf(t, "always").split("run").length >= 4, 15_000, "restarts");
    ok(await t.run(["stop", "always"]));
    const count = Number(await inspect(t, "always", "{{.RestartCount}}"));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await inspect(t, "always", "{{.State.Status}}"), "exited");
    assert.equal(Number(await inspect(t, "always", "{{.RestartCount}}")), count);
    // Bad policies, and policies that cannot hold: 125, nothing left.
    for (
      const [args, re] of [
        [["--restart", "sometimes"], /^Invalid restart policy "sometimes"/],
        [["--restart", "always:3"], /a maximum retry count goes with on-failure only/],
        [["--restart", "always"], /needs a detached container \(-d\)/],
        [["-d", "--rm", "--restart", "always"], /^Conflicting options: --restart always and --rm/],
      ] as const
    ) {
      const r = await t.run(["run", ...args, "/bin/true"]);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr.replace(/^mini-docker: /, ""), re);
    }
    ok(await t.run(["rm", "flaky", "fine", "always"]));
  },
);

function inspectSync(t: TestEnv, name: string): Uint8Array {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      new URL("../main.ts", import.meta.url).pathname,
      "inspect",
      "-f",
      "{{.State.Status}} {{.RestartCount}}",
      name,
    ],
    env: t.env,
    cwd: t.cwd,
  }).outputSync().stdout;
}

Deno.test("prune asks first; container, image and system prune; system df", opts, async () => {
  await using t = await TestEnv.create();
  ok(
    await t.run(["run", "-d", "--name", "old", "-l", "keep=no", "/bin/sh", "-c", "echo x > /big"]),
  );
  ok(await t.run(["run", "-d", "--name", "kept", "-l", "keep=yes", "/bin/true"]));
  ok(await t.run(["run", "-d", "--name", "live", "/bin/sleep", "300"]));
  await waitFor(() => ok0(t, "old") && ok0(t, "kept"), 10_000, "both to exit");
  const df = ok(await t.run(["system", "df"])).split("\n");
  assert.match(df[0]!, /^TYPE {12}TOTAL {5}ACTIVE {4}SIZE {6}RECLAIMABLE$/);
  assert.match(df[2]!, /^Containers {6}3 {9}1 {9}\S+B +\S+B/);
  // Without -f, a question; no answer (the end of input) is a no.
  const asked = await t.run(["container", "prune"]);
  assert.equal(asked.code, 0);
  assert.equal(
    asked.stdout,
    "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
  );
  assert.equal(t.containerIds().length, 3);
  const no = await t.run(["container", "prune"], { stdin: "n\n" });
  assert.doesNotMatch(no.stdout, /Deleted/);
  assert.equal(t.containerIds().length, 3);
  // With a label filter, only those; then "y".
  const labelled = await t.run(["container", "prune", "--filter", "label=keep=no"], {
    stdin: "y\n",
  });
  assert.match(labelled.stdout, /Deleted Containers:\n[0-9a-f]{64}\n\nTotal reclaimed space: \d/);
  assert.deepEqual(names(ok(await t.run(["ps", "-a", "--format", "{{.Names}}"]))), [
    "kept",
    "live",
  ]);
  const sys = ok(await t.run(["system", "prune", "-f"]));
  assert.match(sys, /^Deleted Containers:\n[0-9a-f]{64}\n/);
  assert.match(sys, /Total reclaimed space: /);
  assert.deepEqual(names(ok(await t.run(["ps", "-a", "--format", "{{.Names}}"]))), ["live"]);
  const images = ok(await t.run(["image", "prune", "-f"]));
  assert.equal(images, "Total reclaimed space: 0B\n");
  const bad = await t.run(["container", "prune", "-f", "--filter", "until=soon"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^mini-docker: Invalid filter "until=soon"/);
  ok(await t.run(["rm", "-f", "live"]));
});

function names(text: string): string[] {
  return text.trim().split("\n").filter((l) => l !== "").sort();
}

/** Whether a container has exited (synchronously, for waitFor). */
function ok0(t: TestEnv, name: string): boolean {
  return new TextDecoder().decode(inspectSync(t, name)).startsWith("exited");
}

Deno.test(
  "version and info: Docker's layout, --format, cgroup and storage facts",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const version = ok(await t.run(["version"]));
    assert.match(
      version,
      /^Client: mini-docker\n Version: +\d+\.\d+\.\d+\n Deno version: +2\.9\.6/,
    );
    assert.equal(
      ok(await t.run(["version", "-f", "{{.Client.Version}}"])),
      ok(await t.run(["-v"])),
    );
    const info = ok(await t.run(["info"]));
    const layout = exists("/sys/fs/cgroup/cgroup.controllers") ? "2" : "1";
    assert.match(info, new RegExp(`^ Cgroup Version: ${layout}$`, "m"));
    assert.match(info, /^ Storage Driver: overlay$/m);
    assert.match(info, /^ Containers: 0\n {2}Running: 0\n {2}Paused: 0\n {2}Stopped: 0$/m);
    assert.match(info, new RegExp(`^ Root Dir: ${t.dir}/lib$`, "m"));
    const json = JSON.parse(ok(await t.run(["info", "--format", "json"])));
    assert.equal(json.CgroupVersion, layout);
    assert.equal(json.DockerRootDir, `${t.dir}/lib`);
    assert.ok(json.CgroupControllers.includes("memory"));
    const bad = await t.run(["info", "-f", "{{.Nope}}"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /map has no entry for key "Nope"/);
  },
);

Deno.test("kill -s: real-time signals by number and by RTMIN+N name", opts, async () => {
  await using t = await TestEnv.create();
  ok(
    await t.run([
      "run",
      "-d",
      "--name",
      "rt",
      "/bin/sh",
      "-c",
      "trap 'echo got 35' 35; trap 'echo got 62' 62; trap 'exit 9' TERM; echo ready; while :; do sleep 0.1; done",
    ]),
  );
  await waitFor(() => /ready/.test(logOf(t, "rt")), 10_000 * SLOWDOWN, "ready");
  ok(await t.run(["kill", "-s", "35", "rt"]));
  await waitFor(() => /got 35/.test(logOf(t, "rt")), 5_000, "signal 35");
  ok(await t.run(["kill", "-s", "RTMIN+1", "rt"]));
  await waitFor(() => logOf(t, "rt").split("got 35").length === 3, 5_000, "RTMIN+1");
  ok(await t.run(["kill", "-s", "SIGRTMAX-2", "rt"]));
  await waitFor(() => /got 62/.test(logOf(t, "rt")), 5_000, "RTMAX-2");
  assert.equal(await inspect(t, "rt", "{{.State.Status}}"), "running", "not killed by them");
  const bad = await t.run(["kill", "-s", "RTMIN+40", "rt"]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /^mini-docker: Invalid signal "RTMIN\+40"/);
  ok(await t.run(["stop", "rt"]));
  assert.equal(await inspect(t, "rt", "{{.State.ExitCode}}"), "9");
  ok(await t.run(["rm", "rt"]));
});

Deno.test(
  "the run root keeps no leftovers: bad names, a killed supervisor, old builds",
  opts,
  async () => {
    await using t = await TestEnv.create();
    const run = `${t.dir}/run`;
    const entries = (dir: string) => {
      try {
        return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      } catch {
        return [];
      }
    };
    const baseline = entries(run);
    for (const name of ["bad name", "-x"]) {
      const r = await t.run(["run", "--name", name, "/bin/true"]);
      assert.equal(r.code, 125);
      assert.match(r.stderr, /^mini-docker: Invalid container name /);
    }
    ok(await t.run(["run", "-d", "--name", "dup", "/bin/sleep", "300"]));
    const dup = await t.run(["run", "--name", "dup", "/bin/true"]);
    assert.equal(dup.code, 125);
    const dupDetached = await t.run(["run", "-d", "--name", "dup", "/bin/true"]);
    assert.equal(dupDetached.code, 125);
    assert.deepEqual(entries(`${run}/gates`), []);
    // Only the running container's /proc directory, and its state.
    assert.equal(entries(`${run}/proc`).length, 1);
    assert.equal(entries(`${t.dir}/lib/containers`).length, 1);
    // A supervisor killed with SIGKILL: its socket, pid and lock files go with the next ps.
    const supervisor = `${run}/supervisor`;
    const pidFile = entries(supervisor).find((n) => n.endsWith(".pid"))!;
    const pid = Number(Deno.readTextFileSync(`${supervisor}/${pidFile}`));
    Deno.kill(pid, "SIGKILL");
    await waitFor(() => processStartTime(pid) === undefined, 5_000, "the supervisor's end");
    // An old build's files, its supervisor long gone.
    for (const suffix of [".sock", ".pid", ".lock"]) {
      Deno.writeTextFileSync(`${supervisor}/0badc0de${suffix}`, "");
    }
    assert.match(ok(await t.run(["ps"])), /Up .* dup$/m);
    assert.deepEqual(entries(supervisor), [], "no file of a dead supervisor");
    ok(await t.run(["rm", "-f", "dup"]));
    for (const kind of ["gates", "proc"]) assert.deepEqual(entries(`${run}/${kind}`), [], kind);
    // A foreground run killed with SIGKILL: prune cleans its state, cgroup and run files at once.
    const child = t.spawn(["run", "/bin/sleep", "300"]);
    await t.waitRunning();
    child.kill("SIGKILL");
    await child.output();
    const started = Date.now();
    const pruned = ok(await t.run(["prune", "-f"]));
    assert.match(pruned, /^Deleted Containers:\n[0-9a-f]{64}\n/);
    assert.ok(Date.now() - started < 10_000);
    t.assertNothingLeft();
    for (const kind of ["gates", "proc"]) assert.deepEqual(entries(`${run}/${kind}`), [], kind);
    // What is left is what every run root has.
    assert.deepEqual(
      entries(run).filter((e) =>
        !baseline.includes(e) &&
        !["gates", "proc", "seccomp", "supervisor", "lock", "networks"].includes(e)
      ),
      [],
    );
    killSupervisors(run);
  },
);

Deno.test(
  "rename: a running container's new name resolves on its network, the old one not",
  opts,
  async () => {
    await using t = await TestEnv.create();
    ok(await t.run(["network", "create", "app"]));
    ok(await t.run(["run", "-d", "--name", "db", "--network", "app", "/bin/sleep", "300"]));
    const resolves = async (name: string) =>
      (await t.run(["run", "--network", "app", "/bin/ping", "-c1", "-W2", name])).code === 0;
    assert.ok(await resolves("db"));
    ok(await t.run(["rename", "db", "store"]));
    assert.ok(await resolves("store"), "the new name");
    assert.ok(!await resolves("db"), "not the old one");
    ok(await t.run(["rm", "-f", "store"]));
  },
);
