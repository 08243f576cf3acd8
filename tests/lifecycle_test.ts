/**
 * The container lifecycle without a daemon: run -d, ps, logs, exec, stop, kill, rm, inspect,
 * prune, and the shared supervisor. Real containers on a busybox rootfs.
 */
import assert from "node:assert/strict";
import { isAlive, processRef } from "../container/state.ts";
import { killSupervisors, type Result, SLOWDOWN, TestEnv, waitFor } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function ok(r: Result): string {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function inspect(t: TestEnv, ref: string, template: string): Promise<string> {
  return ok(await t.run(["inspect", "-f", template, ref])).trim();
}

Deno.test("run -d: ps, logs, exec, stop, rm from start to end", opts, async () => {
  await using t = await TestEnv.create();
  const id = ok(
    await t.run([
      "run",
      "-d",
      "--name",
      "web",
      "--hostname",
      "webhost",
      "/bin/sh",
      "-c",
      "echo started; echo oops >&2; exec sleep 300",
    ]),
  )
    .trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const ps = ok(await t.run(["ps"]));
  assert.match(ps, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/m);
  assert.match(ps, new RegExp(`^${id.slice(0, 12)} .* Up .* web$`, "m"));
  assert.equal(ok(await t.run(["ps", "-q"])).trim(), id.slice(0, 12));
  await waitFor(
    () => {
      try {
        return Deno.readTextFileSync(`${t.dir}/lib/containers/${id}/container.log`).includes(
          "oops",
        );
      } catch {
        return false;
      }
    },
    10_000,
    "log output",
  );
  const logs = await t.run(["logs", "web"]);
  assert.deepEqual([logs.stdout, logs.stderr], ["started\n", "oops\n"]);
  const stamped = ok(await t.run(["logs", "-t", id.slice(0, 5)]));
  assert.match(stamped, /^\d{4}-\d\d-\d\dT[\d:.]+Z started$/m);
  // exec sees the same hostname, PID namespace and files.
  const ex = ok(
    await t.run([
      "exec",
      "web",
      "/bin/sh",
      "-c",
      "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo hi > /tmp/shared",
    ]),
  );
  assert.equal(ex, "webhost\nsleep 300 \n");
  assert.equal(ok(await t.run(["exec", "web", "cat", "/tmp/shared"])), "hi\n");
  const user = ok(
    await t.run([
      "exec",
      "-u",
      "nobody",
      "-w",
      "/tmp",
      "-e",
      "A=1",
      "web",
      "/bin/sh",
      "-c",
      "id -u; pwd; echo $A",
    ]),
  );
  assert.equal(user, "65534\n/tmp\n1\n");
  assert.equal((await t.run(["exec", "web", "/bin/sh", "-c", "exit 7"])).code, 7);
  assert.equal((await t.run(["exec", "web", "nosuch"])).code, 127);
  // sleep as PID 1 has no SIGTERM handler: stop waits its timeout, then kills (137).
  const start = Date.now();
  assert.equal(ok(await t.run(["stop", "-t", "1", "web"])).trim(), "web");
  assert.ok(Date.now() - start >= 900, "stop waited for the timeout");
  assert.equal(
    await inspect(t, "web", "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}"),
    "exited 137 false",
  );
  assert.match(ok(await t.run(["ps", "-a"])), /Exited \(137\) .* web$/m);
  assert.equal(ok(await t.run(["ps"])).trim().split("\n").length, 1);
  // Logs stay readable after exit; rm removes everything.
  assert.equal((await t.run(["logs", "web"])).stdout, "started\n");
  assert.equal(ok(await t.run(["rm", "web"])).trim(), "web");
  assert.equal(ok(await t.run(["ps", "-aq"])), "");
});

Deno.test("logs -f follows output until the container exits; --tail", opts, async () => {
  await using t = await TestEnv.create();
  ok(
    await t.run([
      "run",
      "-d",
      "--name",
      "counter",
      "/bin/sh",
      "-c",
      "for i in 1 2 3 4 5; do echo n$i; sleep 0.3; done",
    ]),
  );
  const follow = await t.run(["logs", "-f", "counter"]);
  assert.equal(follow.stdout, "n1\nn2\nn3\nn4\nn5\n");
  assert.equal((await t.run(["logs", "--tail", "2", "counter"])).stdout, "n4\nn5\n");
  assert.equal(await inspect(t, "counter", "{{.State.ExitCode}}"), "0");
  ok(await t.run(["rm", "counter"]));
});

Deno.test("stop gives a SIGTERM trap its chance; kill -s USR1 reaches a trap", opts, async () => {
  await using t = await TestEnv.create();
  const script =
    "trap 'echo got USR1' USR1; trap 'echo bye; exit 5' TERM; echo ready; while :; do sleep 0.1; done";
  ok(await t.run(["run", "-d", "--name", "trapper", "/bin/sh", "-c", script]));
  const logged = (s: string) => () => {
    try {
      return Deno.readDirSync(`${t.dir}/lib/containers`).some((e) =>
        Deno.readTextFileSync(`${t.dir}/lib/containers/${e.name}/container.log`).includes(s)
      );
    } catch {
      return false;
    }
  };
  await waitFor(logged("ready"), 10_000, "ready");
  ok(await t.run(["kill", "-s", "USR1", "trapper"]));
  await waitFor(logged("got USR1"), 10_000, "the USR1 trap");
  ok(await t.run(["stop", "trapper"]));
  assert.equal(await inspect(t, "trapper", "{{.State.ExitCode}}"), "5");
  assert.match((await t.run(["logs", "trapper"])).stdout, /bye/);
  ok(await t.run(["rm", "trapper"]));
});

Deno.test("rm -f of a running container; --rm; inspect after exit and OOM", opts, async () => {
  await using t = await TestEnv.create();
  ok(await t.run(["run", "-d", "--name", "victim", "/bin/sleep", "300"]));
  const refused = await t.run(["rm", "victim"]);
  assert.equal(refused.code, 1); // Docker's code for its daemon's refusal
  assert.match(refused.stderr, /You cannot remove a running container/);
  ok(await t.run(["rm", "-f", "victim"]));
  assert.equal(ok(await t.run(["ps", "-aq"])), "");
  // --rm: gone once it exits.
  ok(await t.run(["run", "-d", "--rm", "--name", "ephemeral", "/bin/true"]));
  await waitFor(() => t.containerIds().length === 0, 10_000, "--rm removal");
  // Detached containers nobody waits on still get their exit code and OOM flag recorded.
  ok(await t.run(["run", "-d", "--name", "code3", "/bin/sh", "-c", "exit 3"]));
  ok(
    await t.run([
      "run",
      "-d",
      "--name",
      "oom",
      "--memory",
      "20m",
      "/bin/dd",
      "if=/dev/zero",
      "of=/dev/null",
      "bs=100M",
      "count=1",
    ]),
  );
  await waitFor(() => !ok0(t, ["ps", "-q"]), 10_000, "both to exit");
  const code3 = JSON.parse(ok(await t.run(["inspect", "code3"])))[0];
  assert.equal(code3.State.ExitCode, 3);
  assert.equal(code3.State.OOMKilled, false);
  assert.match(code3.State.FinishedAt, /^\d{4}-/);
  assert.equal(code3.Name, "/code3");
  assert.match(code3.CgroupPath, new RegExp(`${t.cgroupParent}/${code3.Id}`));
  assert.equal(await inspect(t, "oom", "{{.State.ExitCode}} {{.State.OOMKilled}}"), "137 true");
  ok(await t.run(["rm", "code3", "oom"]));
});

/** Whether a mini-docker command prints anything (synchronously, for waitFor). */
function ok0(t: TestEnv, args: string[]): boolean {
  const out = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${new URL("../main.ts", import.meta.url).pathname}`, ...args],
    env: t.env,
    cwd: t.cwd,
  }).outputSync();
  return new TextDecoder().decode(out.stdout).trim() !== "";
}

Deno.test("names and ids: conflicts, unknown, ambiguous prefixes", opts, async () => {
  await using t = await TestEnv.create();
  ok(await t.run(["run", "-d", "--name", "one", "/bin/sleep", "300"]));
  const conflict = await t.run(["run", "-d", "--name", "one", "/bin/true"]);
  assert.equal(conflict.code, 125);
  assert.match(conflict.stderr, /Conflict: the container name "one" is already in use/);
  for (
    const cmd of [
      ["stop", "nope"],
      ["logs", "nope"],
      ["exec", "nope", "true"],
      ["inspect", "nope"],
      ["rm", "nope"],
      ["kill", "nope"],
    ]
  ) {
    const r = await t.run(cmd);
    // Docker's code for what its daemon refuses (only run and create say 125).
    assert.equal(r.code, 1, cmd.join(" "));
    assert.match(r.stderr, /^mini-docker: No such container: nope\n$/);
  }
  const badSignal = await t.run(["kill", "-s", "NOPE", "one"]);
  assert.equal(badSignal.code, 125);
  ok(await t.run(["rm", "-f", "one"]));
});

Deno.test("a supervisor killed with SIGKILL loses no container", opts, async () => {
  await using t = await TestEnv.create();
  const id = ok(await t.run(["run", "-d", "--name", "survivor", "/bin/sleep", "300"])).trim();
  const state = JSON.parse(Deno.readTextFileSync(`${t.dir}/lib/containers/${id}/state.json`));
  Deno.kill(state.owner.pid, "SIGKILL");
  await waitFor(
    () => {
      try {
        Deno.kill(state.owner.pid, "SIGCONT");
        return false;
      } catch {
        return true;
      }
    },
    5000,
    "the supervisor to die",
  );
  assert.match(ok(await t.run(["ps"])), /Up .* survivor$/m);
  ok(await t.run(["stop", "-t", "1", "survivor"]));
  assert.equal(await inspect(t, "survivor", "{{.State.Status}} {{.State.ExitCode}}"), "exited 137");
  ok(await t.run(["rm", "survivor"]));
});

Deno.test("SIGKILL of a foreground mini-docker: prune removes what is left", opts, async () => {
  await using t = await TestEnv.create();
  const child = t.spawn(["run", "/bin/sleep", "300"]);
  const { id, pid } = await t.waitRunning();
  const container = processRef(pid);
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  // The container dies with it (its watcher kills it); its state and cgroup remain until prune.
  await waitFor(() => !isAlive(container), 10_000 * SLOWDOWN, "the container's end");
  assert.ok(t.containerIds().includes(id));
  const pruned = ok(await t.run(["prune", "-f"]));
  assert.match(pruned, new RegExp(id));
  t.assertNothingLeft();
});

Deno.test("50 detached containers start concurrently, all run, all clean up", opts, async () => {
  await using t = await TestEnv.create();
  const runs = await Promise.all(
    Array.from(
      { length: 50 },
      (_, i) => t.run(["run", "-d", "--name", `c${i}`, "/bin/sleep", "300"]),
    ),
  );
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const running = ok(await t.run(["ps", "-q"])).trim().split("\n");
  assert.equal(running.length, 50);
  // All 50 are children of one supervisor.
  const owners = new Set(
    t.containerIds().map((id) =>
      JSON.parse(Deno.readTextFileSync(`${t.dir}/lib/containers/${id}/state.json`)).owner.pid
    ),
  );
  assert.equal(owners.size, 1);
  ok(await t.run(["rm", "-f", ...running]));
  assert.deepEqual(t.containerIds(), []);
});

Deno.test("--init: signals reach a shell's child, orphans are reaped", opts, async () => {
  await using t = await TestEnv.create();
  // Without --init, sleep is PID 1: SIGTERM is dropped and stop has to kill (137).
  ok(
    await t.run(["run", "-d", "--name", "plain", "/bin/sh", "-c", "(sleep 0.2 &); exec sleep 300"]),
  );
  ok(
    await t.run([
      "run",
      "-d",
      "--init",
      "--name",
      "inited",
      "/bin/sh",
      "-c",
      "(sleep 0.2 &); exec sleep 300",
    ]),
  );
  await new Promise((r) => setTimeout(r, 1000));
  const zombies = async (name: string) =>
    ok(await t.run(["exec", name, "/bin/sh", "-c", "ps -o stat,comm | grep -c '^Z' || true"]))
      .trim();
  assert.equal(await zombies("plain"), "1", "sleep as PID 1 leaves the orphan a zombie");
  assert.equal(await zombies("inited"), "0", "the reaper reaped the orphan");
  assert.match(ok(await t.run(["exec", "inited", "ps", "-o", "pid,comm"])), /^\s*1 docker-init$/m);
  const start = Date.now();
  ok(await t.run(["stop", "-t", "5", "inited"]));
  assert.ok(Date.now() - start < 4000, "SIGTERM was forwarded, no kill needed");
  assert.equal(await inspect(t, "inited", "{{.State.ExitCode}} {{.HostConfig.Init}}"), "143 true");
  ok(await t.run(["stop", "-t", "1", "plain"]));
  assert.equal(await inspect(t, "plain", "{{.State.ExitCode}}"), "137");
  ok(await t.run(["rm", "plain", "inited"]));
  // In the foreground, the command's exit code passes through the reaper.
  assert.equal((await t.run(["run", "--init", "/bin/sh", "-c", "exit 4"])).code, 4);
  assert.equal((await t.run(["run", "--init", "/nosuch"])).code, 127);
});

Deno.test("--root and --runroot choose where containers live", opts, async () => {
  await using t = await TestEnv.create();
  const root = `${t.dir}/alt/lib`;
  const runroot = `${t.dir}/alt/run`;
  const id = ok(
    await t.run([
      "--root",
      root,
      "--runroot",
      runroot,
      "run",
      "-d",
      "--name",
      "alt",
      "/bin/sleep",
      "300",
    ]),
  )
    .trim();
  assert.ok(Deno.statSync(`${root}/containers/${id}/state.json`).isFile);
  assert.ok([...Deno.readDirSync(`${runroot}/supervisor`)].some((e) => e.name.endsWith(".sock")));
  assert.equal(ok(await t.run(["ps", "-q"])), "", "the default root does not see it");
  assert.match(ok(await t.run(["--root", root, "--runroot", runroot, "ps"])), /alt$/m);
  ok(await t.run(["--root", root, "--runroot", runroot, "rm", "-f", "alt"]));
  // Its default network (bridge, rules, keeper) lives in those roots too.
  ok(await t.run(["--root", root, "--runroot", runroot, "network", "rm", "bridge"]));
  killSupervisors(runroot);
});
