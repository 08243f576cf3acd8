/**
 * The parent side of a container: everything mini-docker does around the init stage. In order:
 * state directory, cgroup with its limits, the files the container sees, the init stage spawned
 * into a new PID namespace, and the handshake (`startContainer`); then the wait, the exit
 * record and the cleanup (`Started.finish`). A foreground `run` and the supervisor of detached
 * containers both go through these two steps.
 */
import type { ContainerSpec } from "./spec.ts";
import {
  INIT_ANNOTATION,
  INIT_ARG,
  INIT_ENV,
  type InitConfig,
  type InitMessage,
} from "./protocol.ts";
import * as libc from "./libc.ts";
import { UserError } from "./errors.ts";
import {
  type ContainerState,
  createState,
  processRef,
  readState,
  removeState,
  stateDir,
  writeState,
} from "./state.ts";
import { commandStatus, exitCodeOf } from "./signals.ts";
import { runRoot } from "./paths.ts";
import { type Cgroup, cgroupDriver } from "../cgroups/manager.ts";
import { formatBytes } from "./units.ts";

/** How long a container may outlive a forwarded signal before it is killed (as Docker's stop). */
export const KILL_GRACE_MS = 10_000;

/** Signals mini-docker forwards to the container. */
const FORWARDED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Who the container is, beyond its spec. */
export interface ContainerMeta {
  id: string;
  name?: string;
  /** Image id ("sha256:...") and the reference the user gave, when run from an image. */
  image?: string;
  imageRef?: string;
  rootfs?: string;
}

/** How a container is attached to the process that starts it. */
export interface StartOptions {
  /** The container's stdin: this process's, nothing, or a pipe (kept open by `-d -i`). */
  stdin: "inherit" | "null" | "piped";
  /** The container's stdout and stderr: this process's, or pipes (to a log). */
  output: "inherit" | "piped";
  /** `-t`: a pseudo-terminal (opened in the container) as stdin/stdout/stderr. */
  tty?: boolean;
  /** Receives the terminal's master (`-t`) before the container's command starts. */
  onPty?: (master: number) => void;
  /** Kill the container when this process dies (foreground runs). */
  dieWithParent: boolean;
  /** Remove the container's directory when it exits. */
  autoRemove: boolean;
  /** An init stage already started (foreground `run`: its start-up overlaps the CLI's). */
  prespawned?: PrespawnedInit;
  /** Called as soon as the init stage exists (signal forwarding must start before anyone sees it running). */
  onSpawn?: (pid: number) => void;
  detached: boolean;
}

/** A container whose command is running. */
export interface Started {
  state: ContainerState;
  /** The container's PID 1 (the init stage, then the command). */
  child: StageProcess;
  /** Its stdio pipes, when `StartOptions` asked for pipes (there is no prespawned init then). */
  pipes?: Deno.ChildProcess;
  cgroup: Cgroup;
  /** Waits for the container to exit, records it, cleans up; returns the final state. */
  finish(hooks?: FinishHooks): Promise<ContainerState>;
}

/** What the owner of a container may do at its end. */
export interface FinishHooks {
  /** Print the reason when the kernel's OOM killer ended the container (default true). */
  reportOom?: boolean;
  /** Called with the cgroup just before it is removed (end-of-run reports). */
  beforeCleanup?: (cgroup: Cgroup, state: ContainerState) => void;
}

/** The files under the state directory that the container sees in /etc. */
function etcFiles(spec: ContainerSpec, dir: string): ContainerSpec["mounts"] {
  const hosts = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    `127.0.1.1\t${spec.hostname}`,
    "",
  ].join("\n");
  Deno.writeTextFileSync(`${dir}/hostname`, `${spec.hostname}\n`);
  Deno.writeTextFileSync(`${dir}/hosts`, hosts);
  Deno.writeTextFileSync(`${dir}/resolv.conf`, hostResolvConf());
  return ["hostname", "hosts", "resolv.conf"].map((name) => ({
    destination: `/etc/${name}`,
    type: "bind",
    source: `${dir}/${name}`,
    options: ["bind", "nosuid", "nodev"],
  }));
}

/** The host's resolver configuration; systemd-resolved's stub is replaced by its upstreams. */
function hostResolvConf(): string {
  const read = (p: string) => {
    try {
      return Deno.readTextFileSync(p);
    } catch {
      return undefined;
    }
  };
  const conf = read("/etc/resolv.conf") ?? "";
  if (/^nameserver\s+127\.0\.0\.53/m.test(conf)) {
    return read("/run/systemd/resolve/resolv.conf") ?? conf;
  }
  return conf;
}

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
 * Starts a stage with posix_spawn, with this process's stdin, stdout and stderr: 0.3 ms, where
 * the first Deno.Command of a process costs about 4 ms (it sets up Deno's child processes).
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
 * Waits for a stage to connect, sends it its configuration when it waits for one (`config`),
 * hands over the terminal it opens (`onPty`, for -t), then waits for the end of its stream
 * (exec) or its error.
 */
export async function handshake(
  listener: Deno.UnixListener,
  child: StageProcess,
  config?: unknown,
  onPty?: (master: number) => void,
): Promise<Extract<InitMessage, { type: "error" }> | undefined> {
  const accepted = listener.accept();
  const first = await Promise.race([accepted, child.status]);
  if (!("readable" in first)) {
    accepted.catch(() => {});
    throw new UserError(
      `The init stage exited with status ${exitCodeOf(first)} before it could set up the container`,
    );
  }
  const encoder = new TextEncoder();
  if (config !== undefined) await first.write(encoder.encode(JSON.stringify(config) + "\n"));
  let text = "";
  for await (const chunk of first.readable.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
      const message = JSON.parse(text.slice(0, nl)) as InitMessage;
      text = text.slice(nl + 1);
      if (message.type === "error") return message;
      // -t: copy the stage's terminal master before it goes on (and closes its own).
      onPty?.(libc.takeFd(child.pid, message.fd));
      await first.write(encoder.encode("ok\n"));
    }
  }
  return undefined;
}

/**
 * Spawns the init stage into a new PID namespace. It gets only the sync socket's path: it
 * connects, and waits there for its InitConfig, which the parent sends once the container's
 * cgroup holds it. So the init's runtime boots while the parent works.
 */
function spawnInit(
  syncSocket: string,
  stdio: Pick<Deno.CommandOptions, "stdin" | "stdout" | "stderr">,
): Deno.ChildProcess {
  return spawnInPidNamespace({
    ...selfCommand(INIT_ARG),
    env: { [INIT_ENV]: JSON.stringify({ syncSocket, deferred: true }) },
    ...stdio,
  });
}

/**
 * Moves a process into the cgroup, writing its PID to every `cgroup.procs` at once: on cgroup
 * v1 each write waits for an RCU grace period, and in parallel they wait for about one.
 */
async function joinCgroup(cgroup: Cgroup, pid: number): Promise<void> {
  try {
    await Promise.all(cgroup.procsFiles.map((f) => Deno.writeTextFile(f, String(pid))));
  } catch (err) {
    throw new UserError(`Cannot move the init stage into its cgroup: ${(err as Error).message}`);
  }
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
      sync[Symbol.dispose](); // init reads the end of the stream and leaves quietly
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
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

/**
 * Creates a container and starts its command. On failure everything created so far is
 * removed and a UserError (125, or 126/127 for the command) is thrown.
 */
export async function startContainer(
  spec: ContainerSpec,
  meta: ContainerMeta,
  options: StartOptions,
): Promise<Started> {
  await using cleanup = new AsyncDisposableStack();
  const driver = cgroupDriver();
  const state0 = createState({
    id: meta.id,
    name: meta.name,
    image: meta.image,
    imageRef: meta.imageRef,
    rootfs: meta.rootfs,
    command: spec.process.args,
    cgroupsPath: spec.linux.cgroupsPath,
    autoRemove: options.autoRemove,
    detached: options.detached,
    owner: processRef(),
  });
  cleanup.defer(() => removeState(meta.id));
  const dir = stateDir(meta.id);

  // The container's root mount point and writable layer live in its directory.
  for (const d of [spec.root.path, spec.rootLayers?.upper, spec.rootLayers?.work]) {
    if (d !== undefined) Deno.mkdirSync(d, { recursive: true, mode: 0o755 });
  }
  spec = { ...spec, mounts: [...spec.mounts, ...etcFiles(spec, dir)] };
  Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify(spec, null, 2) + "\n");

  // The cgroup exists with its limits before any process of the container does.
  const name = spec.linux.cgroupsPath.split("/").pop()!;
  const cgroup = driver.create(name, spec.linux.resources);
  cleanup.defer(() => cgroup.destroy());

  const early = options.prespawned;
  early?.claim();
  using sync = early?.sync ?? listenSync(meta.id);
  const config: InitConfig = {
    spec,
    syncSocket: sync.path,
    dieWithParent: options.dieWithParent,
    tty: options.tty,
    // `--init` is part of the container's configuration: a reaper as PID 1 (see reaper.ts).
    reaper: spec.annotations[INIT_ANNOTATION] === "true",
  };
  const tty = options.tty === true;
  const spawned = early === undefined
    ? spawnInit(sync.path, {
      stdin: tty ? "null" : options.stdin,
      stdout: tty ? "null" : options.output,
      stderr: tty ? "null" : options.output,
    })
    : undefined;
  const child: StageProcess = early?.child ?? spawned!;
  options.onSpawn?.(child.pid);
  // Until the handshake succeeds, a failure kills the init stage before the cgroup goes.
  cleanup.defer(async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
  });

  // The init stage waits for its configuration until the cgroup holds it: no instruction of
  // the container runs unlimited.
  await joinCgroup(cgroup, child.pid);
  const failure = await handshake(sync.listener, child, config, options.onPty);
  if (failure !== undefined) {
    await child.status;
    throw new UserError(failure.message, failure.exitCode);
  }
  const state: ContainerState = {
    ...state0,
    status: "running",
    process: processRef(child.pid),
    startedAt: new Date().toISOString(),
  };
  writeState(state);

  // Started: from here on the cleanup belongs to finish().
  cleanup.move();
  let finished: Promise<ContainerState> | undefined;
  return {
    state,
    child,
    pipes: spawned,
    cgroup,
    finish(hooks = {}) {
      finished ??= finish(spec, state, child, cgroup, hooks);
      return finished;
    },
  };
}

async function finish(
  spec: ContainerSpec,
  started: ContainerState,
  child: StageProcess,
  cgroup: Cgroup,
  hooks: FinishHooks,
): Promise<ContainerState> {
  const status = await child.status;
  let oomKills = 0;
  try {
    oomKills = cgroup.stats().oomKills ?? 0;
  } catch { /* the counters are gone: report none */ }
  const current = readState(started.id) ?? started;
  const state: ContainerState = {
    ...current,
    status: "exited",
    exitCode: exitCodeOf(status),
    // Any OOM kill in the cgroup counts, as Docker's OOMKilled: the victim may be a child of
    // PID 1 (a shell then exits 137 itself). A plain `kill -9` leaves the counter at 0.
    oomKilled: oomKills > 0,
    finishedAt: new Date().toISOString(),
  };
  try {
    writeState(state);
  } catch { /* removed meanwhile (rm -f) */ }
  if (state.oomKilled && hooks.reportOom !== false) {
    const limit = spec.linux.resources.memory?.limit;
    console.error(
      `mini-docker: container ${state.name} (${state.id.slice(0, 12)}) was killed: out of memory${
        limit === undefined ? "" : ` (limit ${formatBytes(limit)})`
      }`,
    );
  }
  hooks.beforeCleanup?.(cgroup, state);
  // The cgroup goes in any case; the directory (state, log, layer) only with auto-remove.
  await cgroup.destroy();
  if (state.autoRemove) removeState(state.id);
  return state;
}

/**
 * Forwards SIGINT, SIGTERM and SIGHUP to the container's PID 1. A container still alive
 * KILL_GRACE_MS after a forwarded signal, or a second Ctrl-C, is killed: a process that is PID
 * 1 of its namespace ignores the signals it has no handler for, and Ctrl-C must still stop it.
 * The handlers are installed at once; signals that come before `attach(pid)` are delivered then.
 * For processes that exit once the container has: the listeners stay until then.
 */
export function forwardSignals(
  graceMs = KILL_GRACE_MS,
): Disposable & { attach(pid: number): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let interrupted = false;
  let target: number | undefined;
  const pending: Deno.Signal[] = [];
  const deliver = (sig: Deno.Signal) => {
    const pid = target!;
    try {
      if (sig === "SIGINT" && interrupted) {
        Deno.kill(pid, "SIGKILL");
        return;
      }
      interrupted ||= sig === "SIGINT";
      Deno.kill(pid, sig);
      if (Deno.stderr.isTerminal() && sig === "SIGINT") {
        console.error(`\nmini-docker: forwarded SIGINT; press Ctrl-C again to kill the container`);
      }
      timer ??= setTimeout(() => {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* already gone */ }
      }, graceMs);
    } catch {
      // The container has already exited.
    }
  };
  let disarmed = false;
  for (const sig of FORWARDED) {
    Deno.addSignalListener(sig, () => {
      if (disarmed) return;
      if (target === undefined) pending.push(sig);
      else deliver(sig);
    });
  }
  return {
    attach(pid: number) {
      target = pid;
      for (const sig of pending.splice(0)) deliver(sig);
    },
    [Symbol.dispose]() {
      // Disarmed, not removed: unbinding a signal that Deno's event loop has been polling takes
      // it ~6 ms, on every run's way out, and the process exits right after. A signal that
      // comes now finds no container and is ignored while the cleanup finishes.
      clearTimeout(timer);
      disarmed = true;
    },
  };
}
