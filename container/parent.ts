/**
 * The parent side of a container: everything mini-docker does around the init stage. In order:
 * state directory, cgroup with its limits, the files the container sees, the init stage spawned
 * into a new PID namespace, and the handshake (`startContainer`); then the wait, the exit
 * record and the cleanup (`Started.finish`). A foreground `run` and the supervisor of detached
 * containers both go through these two steps.
 */
import type { ContainerSpec } from "../base/spec.ts";
import {
  INIT_ANNOTATION,
  INIT_ARG,
  INIT_ENV,
  type InitConfig,
  type InitMessage,
} from "./protocol.ts";
import * as libc from "../base/libc.ts";
import { UserError } from "../base/errors.ts";
import {
  type ContainerState,
  createState,
  processRef,
  readState,
  removeState,
  stateDir,
  writeState,
} from "./state.ts";
import { exitCodeOf } from "../base/signals.ts";
import {
  listenSync,
  type PrespawnedInit,
  selfCommand,
  spawnInPidNamespace,
  type StageProcess,
} from "./spawn.ts";

export type { PrespawnedInit, StageProcess } from "./spawn.ts";
import { type Cgroup, cgroupDriver } from "../cgroups/manager.ts";
import { formatBytes } from "../cmd/units.ts";

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

/**
 * Waits for a stage to connect, sends it its configuration when it waits for one (`config`),
 * hands over the terminal it opens (`onPty`, for -t), and when the stage is set up says "go"
 * once `enterCgroup` (called as soon as the stage has connected) has moved it into its cgroup;
 * then waits for the end of its stream (exec) or its error.
 */
export async function handshake(
  listener: Deno.UnixListener,
  child: StageProcess,
  config?: unknown,
  onPty?: (master: number) => void,
  enterCgroup?: () => Promise<void>,
): Promise<Extract<InitMessage, { type: "error" }> | undefined> {
  const accepted = listener.accept();
  const first = await Promise.race([accepted, child.status]);
  if (!("readable" in first)) {
    accepted.catch(() => {});
    throw new UserError(
      `The init stage exited with status ${exitCodeOf(first)} before it could set up the container`,
    );
  }
  // Connected: the stage's runtime has booted, and what it allocated for that stays charged
  // outside the container's memory limit; from here on its memory counts. Moving a whole process
  // waits for an RCU grace period (5-15 ms), which passes while the stage sets up the container.
  const entered = enterCgroup?.();
  entered?.catch(() => {}); // awaited before "go"; moot if the stage fails first
  // Plain reads and writes: Deno's stream classes cost milliseconds to load on first use.
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const send = async (text: string) => {
    const data = encoder.encode(text);
    for (let off = 0; off < data.length;) off += await first.write(data.subarray(off));
  };
  try {
    if (config !== undefined) await send(JSON.stringify(config) + "\n");
    const buf = new Uint8Array(4096);
    let text = "";
    for (let n = await first.read(buf); n !== null; n = await first.read(buf)) {
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
        const message = JSON.parse(text.slice(0, nl)) as InitMessage;
        text = text.slice(nl + 1);
        if (message.type === "error") return message;
        if (message.type === "ready") {
          await entered;
          await send("go\n");
          continue;
        }
        // -t: copy the stage's terminal master before it goes on (and closes its own).
        onPty?.(libc.takeFd(child.pid, message.fd));
        await send("ok\n");
      }
    }
    return undefined;
  } finally {
    first.close();
  }
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
  const data = new TextEncoder().encode(String(pid));
  try {
    // Deno.open and write: Deno.writeTextFile's first call costs ~4 ms more.
    await Promise.all(cgroup.procsFiles.map(async (path) => {
      using file = await Deno.open(path, { write: true });
      await file.write(data);
    }));
  } catch (err) {
    throw new UserError(`Cannot move the init stage into its cgroup: ${(err as Error).message}`);
  }
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

  // The cgroup exists with its limits before any process of the container does; the init
  // stage moves into it once it has connected (see handshake).
  const name = spec.linux.cgroupsPath.split("/").pop()!;
  const cgroup = driver.create(name, spec.linux.resources);
  cleanup.defer(() => cgroup.destroy());
  const early = options.prespawned;
  early?.claim();
  let child = early?.child;
  // Until the handshake succeeds, a failure kills the init stage before the cgroup goes.
  cleanup.defer(async () => {
    if (child === undefined) return;
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
  });

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

  using sync = early?.sync ?? listenSync(meta.id);
  // `--init` is part of the container's configuration: a reaper as PID 1 (see reaper.ts).
  const reaper = spec.annotations[INIT_ANNOTATION] === "true";
  // cgroup v1: init's main thread joins by itself, when that thread execs the command; a
  // reaper stays a whole Deno process as PID 1, so all of it moves in (the parent moves it).
  const cgroupTasks = reaper ? undefined : cgroup.threadFiles?.slice();
  const config: InitConfig = {
    spec,
    syncSocket: sync.path,
    dieWithParent: options.dieWithParent,
    tty: options.tty,
    reaper,
    cgroupTasks,
  };
  const tty = options.tty === true;
  const spawned = early === undefined
    ? spawnInit(sync.path, {
      stdin: tty ? "null" : options.stdin,
      stdout: tty ? "null" : options.output,
      stderr: tty ? "null" : options.output,
    })
    : undefined;
  child ??= spawned!;
  options.onSpawn?.(child.pid);

  // The init stage joins the cgroup (on v1 by itself, on v2 we move it) and sets the container
  // up; the command starts only once the cgroup holds it: no instruction of it runs unlimited.
  const pid = child.pid;
  const failure = await handshake(
    sync.listener,
    child,
    config,
    options.onPty,
    cgroupTasks === undefined ? () => joinCgroup(cgroup, pid) : undefined,
  );
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
    oomKills = cgroup.oomKills() ?? 0;
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
      // (Only when armed: Deno loads its timers on first use, ~4 ms.)
      if (timer !== undefined) clearTimeout(timer);
      disarmed = true;
    },
  };
}
