/**
 * Starting mini-docker's own stages (init, exec) as PID 1 of a new PID namespace, or inside an
 * existing one, and the early start of a foreground run's init stage. Kept apart from
 * parent.ts, with few imports, because main.ts loads it before anything else of a `run`: every
 * millisecond before the init stage is spawned is a millisecond of every container's start.
 */
import * as libc from "../base/libc.ts";
import { INIT_ARG, INIT_ENV } from "./protocol.ts";
import { runRoot } from "../base/paths.ts";
import { UserError } from "../base/errors.ts";
import { commandStatus } from "../base/signals.ts";

/** The command line that starts one of mini-docker's own hidden stages ("__init", ...). */
export function selfCommand(stage: string): { exe: string; args: string[] } {
  const exe = Deno.execPath();
  // A compiled mini-docker is its own init; from source, Deno runs main.ts again.
  if (!/(^|\/)deno$/.test(exe)) return { exe, args: [stage] };
  const main = new URL("../main.ts", import.meta.url).pathname;
  return { exe, args: ["run", "-A", "--quiet", "--no-prompt", "--cached-only", main, stage] };
}

/** What the runtime needs of a stage's process; a Deno.ChildProcess is one. */
export type StageProcess = Pick<Deno.ChildProcess, "pid" | "status" | "kill">;

/**
 * Runs `spawn` so that the process it starts is PID 1 of a new PID namespace (or, with
 * `joinPid`, joins that process's PID namespace): unshare/setns of CLONE_NEWPID change only the
 * namespace of this thread's future children, so the spawn must come from this (the main)
 * thread, and our own `pid_for_children` is restored right after.
 */
function inPidNamespace<T>(spawn: () => T, joinPid?: number): T {
  const self = libc.open("/proc/thread-self/ns/pid", libc.O_RDONLY | libc.O_CLOEXEC);
  try {
    if (joinPid === undefined) {
      libc.unshare(libc.CLONE_NEWPID);
    } else {
      const target = libc.open(`/proc/${joinPid}/ns/pid`, libc.O_RDONLY | libc.O_CLOEXEC);
      try {
        libc.setns(target, libc.CLONE_NEWPID);
      } finally {
        libc.close(target);
      }
    }
    try {
      return spawn();
    } finally {
      libc.setns(self, libc.CLONE_NEWPID);
    }
  } finally {
    libc.close(self);
  }
}

/** Spawns `command` (Deno.Command, with its stdio options) in a new or an existing PID namespace. */
export function spawnInPidNamespace(
  command: Deno.CommandOptions & { exe: string },
  joinPid?: number,
): Deno.ChildProcess {
  return inPidNamespace(() => new Deno.Command(command.exe, command).spawn(), joinPid);
}

/**
 * Starts a stage with posix_spawn, with this process's stdin, stdout and stderr: 0.5 ms, where
 * the first Deno.Command of a process costs about 3 ms (it sets up Deno's child processes).
 */
function spawnStage(
  command: { exe: string; args: string[] },
  env: Record<string, string>,
): StageProcess {
  const envp = Object.entries({ ...Deno.env.toObject(), ...env }).map(([k, v]) => `${k}=${v}`);
  const pid = libc.spawnProcess(command.exe, [command.exe, ...command.args], envp);
  let exited = false;
  const status = libc.waitChild(pid).then((raw) => {
    exited = true;
    return commandStatus(raw);
  });
  return {
    pid,
    status,
    kill(signal: Deno.Signal = "SIGTERM") {
      if (!exited) Deno.kill(pid, signal);
    },
  };
}

/**
 * An init stage started before its container was configured (see `prespawnInit`): it has
 * connected, or will, to `sync` and waits there for its InitConfig.
 */
export interface PrespawnedInit extends Disposable {
  child: StageProcess;
  sync: ReturnType<typeof listenSync>;
  /** Takes it over: disposing it does nothing any more. */
  claim(): void;
}

/**
 * Starts the init stage at once, in a new PID namespace, with inherited stdio: it boots its
 * runtime while the command line is still being parsed, and then waits for its configuration.
 * Disposing it (when the run turns out not to need it) ends it.
 */
export function prespawnInit(): PrespawnedInit {
  const sync = listenSync(crypto.randomUUID().replaceAll("-", ""));
  const child = inPidNamespace(() =>
    spawnStage(selfCommand(INIT_ARG), {
      [INIT_ENV]: JSON.stringify({ syncSocket: sync.path, deferred: true }),
    })
  );
  let used = false;
  return {
    child,
    sync,
    claim() {
      used = true;
    },
    [Symbol.dispose]() {
      if (used) return;
      used = true;
      // Killed first: an init that connected to a closed socket would print why.
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      sync[Symbol.dispose]();
    },
  };
}

/**
 * A sync socket. Unix socket paths are limited to 107 bytes, so it lives in a short directory
 * of the run root rather than in the container's directory.
 */
export function listenSync(id: string): { path: string; listener: Deno.UnixListener } & Disposable {
  const dir = `${runRoot()}/sync`;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = `${dir}/${id.slice(0, 16)}-${crypto.randomUUID().slice(0, 8)}`;
  if (new TextEncoder().encode(path).length > 107) {
    throw new UserError(
      `Run root "${runRoot()}" is too long for a unix socket path: choose a shorter --runroot`,
    );
  }
  const listener = Deno.listen({ transport: "unix", path });
  return {
    path,
    listener,
    [Symbol.dispose]() {
      listener.close();
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
    },
  };
}
