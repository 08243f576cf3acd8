/**
 * The link between a foreground `run` and its container: if mini-docker dies (SIGKILL, the OOM
 * killer), its container dies with it. The kernel's parent-death signal cannot do it: it is
 * cleared in every new process, posix_spawn has no way to set it in the child, and it would
 * fire when the spawning thread (not the process) exits. So a watcher does: a POSIX shell, about
 * 1 MiB, outside the container, in a session of its own (no terminal signal reaches it), whose
 * standard input is a pipe only mini-docker holds. End of input means mini-docker is gone: the
 * watcher wakes a first process still waiting at the gate (it then fails its check and exits
 * without running the command), and kills everything in the container's cgroup (v2
 * `cgroup.kill`; v1: SIGKILL to each process, and PID 1's death takes its namespace with it).
 */
import * as libc from "../base/libc.ts";
import type { Cgroup } from "../cgroups/manager.ts";
import { childExit } from "./children.ts";

const SCRIPT = [
  "read _",
  'true 3<>"$1/gate" 2>/dev/null',
  'if [ -e "$2/cgroup.kill" ]; then echo 1 >"$2/cgroup.kill"',
  'else while read -r p; do kill -9 "$p"; done <"$2/cgroup.procs"; fi',
].join("\n");

/** A running watcher; disposing of it (once the container is gone) lets it end. */
export interface Watcher extends Disposable {
  pid: number;
}

/** Starts the watcher of a container whose gate is `gateDir` and whose cgroup is `cgroup`. */
export function startWatcher(gateDir: string, cgroup: Cgroup): Watcher {
  const [input, output] = libc.pipe();
  let pid: number;
  try {
    pid = libc.spawn(
      "/bin/sh",
      ["sh", "-c", SCRIPT, "mini-docker-watcher", gateDir, cgroup.paths[0]!],
      ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
      {
        setsid: true,
        actions: [
          { dup2: [input, 0] },
          { open: [1, "/dev/null", libc.O_WRONLY] },
          { dup2: [1, 2] },
          { closefrom: 3 },
        ],
      },
    );
  } finally {
    libc.close(input);
  }
  // Reaped when it ends, so that it never lingers as a zombie of a long-lived process.
  childExit(pid);
  return {
    pid,
    [Symbol.dispose]() {
      libc.close(output);
    },
  };
}
