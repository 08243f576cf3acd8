/**
 * The parent side of a container: everything mini-docker does around the init stage. In order:
 * state directory, cgroup with its limits, the files the container sees, the init stage spawned
 * into a new PID namespace, the handshake, signal forwarding, the wait, and the cleanup that
 * runs whatever ends the run (no mount, process, cgroup or state is left behind).
 */
import type { ContainerSpec } from "./spec.ts";
import { INIT_ARG, INIT_ENV, type InitConfig, type InitMessage } from "./protocol.ts";
import * as libc from "./libc.ts";
import { UserError } from "./errors.ts";
import { type ContainerState, createState, removeState, stateDir, writeState } from "./state.ts";
import { exitCodeOf } from "./signals.ts";
import { dataRoot, runRoot } from "./paths.ts";
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
  image?: string;
  rootfs?: string;
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

/** The command line that starts mini-docker's own init stage. */
function initCommand(): { exe: string; args: string[] } {
  const exe = Deno.execPath();
  // A compiled mini-docker is its own init; from source, Deno runs main.ts again.
  if (!/(^|\/)deno$/.test(exe)) return { exe, args: [INIT_ARG] };
  const main = new URL("../main.ts", import.meta.url).pathname;
  return { exe, args: ["run", "-A", "--quiet", "--no-prompt", "--cached-only", main, INIT_ARG] };
}

/**
 * Spawns the init stage as PID 1 of a new PID namespace: unshare(CLONE_NEWPID) changes only
 * the namespace of this thread's future children, so the spawn must come from this (the main)
 * thread, and our own `pid_for_children` is restored right after.
 */
function spawnInit(config: InitConfig): Deno.ChildProcess {
  const { exe, args } = initCommand();
  const self = libc.open("/proc/thread-self/ns/pid", libc.O_RDONLY | libc.O_CLOEXEC);
  try {
    libc.unshare(libc.CLONE_NEWPID);
    try {
      return new Deno.Command(exe, {
        args,
        env: { [INIT_ENV]: JSON.stringify(config) },
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
    } finally {
      libc.setns(self, libc.CLONE_NEWPID);
    }
  } finally {
    libc.close(self);
  }
}

/** Waits for init to connect and then for the end of its stream (exec) or its error. */
async function handshake(
  listener: Deno.UnixListener,
  child: Deno.ChildProcess,
): Promise<InitMessage | undefined> {
  const accepted = listener.accept();
  const first = await Promise.race([accepted, child.status]);
  if (!("readable" in first)) {
    accepted.catch(() => {});
    throw new UserError(
      `The init stage exited with status ${exitCodeOf(first)} before it could set up the container`,
    );
  }
  const text = await new Response(first.readable).text();
  const line = text.split("\n").find((l) => l.trim() !== "");
  return line === undefined ? undefined : JSON.parse(line) as InitMessage;
}

/**
 * Forwards SIGINT, SIGTERM and SIGHUP to the container's PID 1. A container still alive
 * KILL_GRACE_MS after a forwarded signal, or a second Ctrl-C, is killed: a shell as PID 1
 * ignores signals it has no handler for, and Ctrl-C must still stop it.
 */
function forwardSignals(pid: number, graceMs: number): Disposable {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let interrupted = false;
  const handlers = FORWARDED.map((sig) => {
    const handler = () => {
      try {
        if (sig === "SIGINT" && interrupted) {
          Deno.kill(pid, "SIGKILL");
          return;
        }
        interrupted ||= sig === "SIGINT";
        Deno.kill(pid, sig);
        if (Deno.stderr.isTerminal() && sig === "SIGINT") {
          console.error(
            `\nmini-docker: forwarded SIGINT; press Ctrl-C again to kill the container`,
          );
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
    Deno.addSignalListener(sig, handler);
    return [sig, handler] as const;
  });
  return {
    [Symbol.dispose]() {
      clearTimeout(timer);
      for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
    },
  };
}

/**
 * The sync socket. Unix socket paths are limited to 107 bytes, so it lives in a short directory
 * of the run root rather than in the container's state directory.
 */
function listenSync(id: string): { path: string; listener: Deno.UnixListener } {
  const dir = `${runRoot()}/sync`;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = `${dir}/${id.slice(0, 16)}`;
  if (new TextEncoder().encode(path).length > 107) {
    throw new UserError(
      `Run root "${runRoot()}" is too long for a unix socket path: choose a shorter --runroot`,
    );
  }
  return { path, listener: Deno.listen({ transport: "unix", path }) };
}

/** Options of a foreground run. */
export interface RunOptions {
  /** Print the reason when the kernel's OOM killer ended the container (default true). */
  reportOom?: boolean;
  /** Called with the cgroup just before it is removed (end-of-run reports). */
  beforeCleanup?: (cgroup: Cgroup, state: ContainerState) => void;
}

/**
 * Runs a container in the foreground and returns Docker's exit code for it. Throws UserError
 * for failures of mini-docker itself, after cleaning up.
 */
export async function runContainer(
  spec: ContainerSpec,
  meta: ContainerMeta,
  options: RunOptions = {},
): Promise<number> {
  await using cleanup = new AsyncDisposableStack();
  const driver = cgroupDriver();
  let state = createState({
    id: meta.id,
    name: meta.name,
    image: meta.image,
    rootfs: meta.rootfs,
    command: spec.process.args,
    cgroupsPath: spec.linux.cgroupsPath,
  });
  cleanup.defer(() => removeState(meta.id));
  const dir = stateDir(meta.id);

  // The container's own directories: its root mount point and writable layer, discarded
  // with it (they live under <data root>/containers/<id>).
  const layerDir = `${dataRoot()}/containers/${meta.id}`;
  cleanup.defer(() => Deno.remove(layerDir, { recursive: true }).catch(() => {}));
  for (const d of [spec.root.path, spec.rootLayers?.upper, spec.rootLayers?.work]) {
    if (d !== undefined) Deno.mkdirSync(d, { recursive: true, mode: 0o755 });
  }
  spec = { ...spec, mounts: [...spec.mounts, ...etcFiles(spec, dir)] };

  // The cgroup exists with its limits before any process of the container does.
  const name = spec.linux.cgroupsPath.split("/").pop()!;
  const cgroup = driver.create(name, spec.linux.resources);
  cleanup.defer(() => cgroup.destroy());

  const { path: syncSocket, listener } = listenSync(meta.id);
  cleanup.defer(() => {
    listener.close();
    Deno.remove(syncSocket).catch(() => {});
  });

  const child = spawnInit({ spec, syncSocket, cgroupProcs: [...cgroup.procsFiles] });
  // Whatever happens next, the container's processes die before the cgroup is removed.
  cleanup.defer(async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
  });
  using _signals = forwardSignals(child.pid, KILL_GRACE_MS);

  const failure = await handshake(listener, child);
  if (failure !== undefined) {
    await child.status;
    throw new UserError(failure.message, failure.exitCode);
  }
  state = { ...state, status: "running", pid: child.pid, startedAt: new Date().toISOString() };
  writeState(state);

  const status = await child.status;
  const exitCode = exitCodeOf(status);
  const oomKills = safeStats(cgroup)?.oomKills ?? 0;
  state = {
    ...state,
    status: "exited",
    exitCode,
    // Any OOM kill in the cgroup counts, as Docker's OOMKilled: the victim may be a child of
    // PID 1 (a shell then exits 137 itself). A plain `kill -9` leaves the counter at 0.
    oomKilled: oomKills > 0,
    finishedAt: new Date().toISOString(),
  };
  writeState(state);
  if (state.oomKilled && options.reportOom !== false) {
    const limit = spec.linux.resources.memory?.limit;
    console.error(
      `mini-docker: container ${state.name} (${meta.id.slice(0, 12)}) was killed: out of memory${
        limit === undefined ? "" : ` (limit ${formatBytes(limit)})`
      }`,
    );
  }
  options.beforeCleanup?.(cgroup, state);
  return exitCode;
}

function safeStats(cgroup: Cgroup) {
  try {
    return cgroup.stats();
  } catch {
    return undefined;
  }
}
