/**
 * base/clone.ts on the real kernel (root): a process born in new user and PID namespaces runs
 * the ops it is given, then execve; a failed op is reported with its label and errno, the child
 * reaped; an abandoned child is killed; nothing of either is left in this process.
 */
import assert from "node:assert/strict";
import { NR, ScriptedChild, unsupported } from "./clone.ts";
import * as libc from "./libc.ts";

const ignore = unsupported() !== undefined || Deno.uid() !== 0;

/**
 * This process's descriptors, and its anonymous mappings of the kinds clone.ts makes (its ops'
 * 1 MiB, its code's executable page), to compare before and after.
 */
function footprint(): { fds: number; maps: number } {
  const ours = Deno.readTextFileSync("/proc/self/maps").trim().split("\n").filter((line) => {
    const [range, perms, , , , path] = line.split(/\s+/);
    const [from, to] = range!.split("-").map((h) => parseInt(h, 16));
    return (path === undefined || path === "") &&
      (to! - from! === 1 << 20 || perms === "r-xp");
  });
  return { fds: [...Deno.readDirSync("/proc/self/fd")].length, maps: ours.length };
}

Deno.test({
  name: "clone: a child in new user and PID namespaces runs its ops, then its command",
  ignore,
  fn: async () => {
    // Deno compiles its FFI trampolines (executable pages too) on first use: a first clone.
    ScriptedChild.clone(libc.CLONE_NEWUSER).abandon();
    const before = footprint();
    const file = Deno.makeTempFileSync({ prefix: "mini-docker-clone-" });
    const w = libc.open(file, libc.O_WRONLY | libc.O_CLOEXEC);
    const child = ScriptedChild.clone(libc.CLONE_NEWUSER | libc.CLONE_NEWPID);
    Deno.writeTextFileSync(`/proc/${child.pid}/uid_map`, "0 100000 10\n");
    Deno.writeTextFileSync(`/proc/${child.pid}/gid_map`, "0 100000 10\n");
    const s = child.script;
    s.op("dup3", child.errfd, NR.dup3, w, 1, 0);
    s.op("setresgid", child.errfd, NR.setresgid, 0, 0, 0);
    s.op("setresuid", child.errfd, NR.setresuid, 0, 0, 0);
    s.op("unblock", child.errfd, NR.rt_sigprocmask, 2, s.bytes(new Uint8Array(8)), 0, 8);
    s.op(
      "exec",
      child.errfd,
      NR.execve,
      s.str("/bin/sh"),
      s.strings(["sh", "-c", "echo $$ $(id -u); cat /proc/self/uid_map"]),
      s.strings(["PATH=/usr/bin:/bin"]),
    );
    child.run();
    libc.close(w);
    const status = await libc.wait4Async(child.pid);
    assert.equal(status.pid, child.pid);
    const text = Deno.readTextFileSync(file);
    Deno.removeSync(file);
    assert.deepEqual(text.trim().split("\n").map((l) => l.trim().replace(/\s+/g, " ")), [
      "1 0",
      "0 100000 10",
    ]);
    assert.deepEqual(footprint(), before, "no descriptor or mapping of it left here");
  },
});

Deno.test({
  name:
    "clone: a failed op names itself with errno, its child reaped; an abandoned child is killed",
  ignore,
  fn: () => {
    const before = footprint();
    const child = ScriptedChild.clone(libc.CLONE_NEWUSER);
    const s = child.script;
    s.op("chdir /no/such", child.errfd, NR.chdir, s.str("/no/such"));
    s.op("exec", child.errfd, NR.execve, s.str("/bin/true"), s.strings(["true"]), s.strings([]));
    assert.throws(
      () => child.run(),
      (err: unknown) =>
        err instanceof libc.SyscallError && err.call === "chdir /no/such" &&
        err.errno === libc.ENOENT,
    );
    // Reaped by run(): no such child any more.
    assert.throws(() => Deno.readTextFileSync(`/proc/${child.pid}/status`));
    const waiting = ScriptedChild.clone(libc.CLONE_NEWUSER);
    assert.match(Deno.readTextFileSync(`/proc/${waiting.pid}/status`), /^PPid:\t\d+$/m);
    waiting.abandon();
    assert.throws(() => Deno.readTextFileSync(`/proc/${waiting.pid}/status`));
    assert.deepEqual(footprint(), before, "no descriptor or mapping of them left here");
  },
});

Deno.test({
  name: "clone: a waiting child ends when its mini-docker dies before letting it go",
  ignore,
  fn: async () => {
    const clone = new URL("./clone.ts", import.meta.url).href;
    // The PID through a file: a child left waiting would hold a pipe of ours open.
    const file = Deno.makeTempFileSync({ prefix: "mini-docker-clone-" });
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { ScriptedChild } from "${clone}";
         const { pid } = ScriptedChild.clone(${libc.CLONE_NEWUSER});
         Deno.writeTextFileSync("${file}", String(pid));`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(out.code, 0);
    const pid = Number(Deno.readTextFileSync(file));
    Deno.removeSync(file);
    assert.ok(pid > 0);
    // Its copy of the release pipe's write end was closed first: the end of mini-docker is the
    // pipe's end, and it exits (a zombie until its new parent reaps it, or gone).
    let state = "";
    for (let i = 0; i < 200; i++) {
      try {
        state = /^State:\s+(\S)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))![1]!;
      } catch {
        state = "gone";
      }
      if (state === "gone" || state === "Z") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    if (state !== "gone" && state !== "Z") libc.kill(pid, 9);
    assert.ok(state === "gone" || state === "Z", `state ${state}`);
  },
});
