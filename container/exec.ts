/**
 * `exec`: a new process inside a running container. Like `run`, the work that needs a
 * single-threaded process happens in a re-executed stage: `setns` into a mount namespace needs
 * a private fs context (`unshare(CLONE_FS)`), which only a fresh thread-group leader doing
 * nothing else can give safely. The PID namespace is entered at spawn, from the main thread,
 * exactly as `run` creates one.
 */
import type { ContainerSpec, NamespaceType, Process } from "../base/spec.ts";
import { EXEC_ARG, type ExecConfig, INIT_ENV } from "./protocol.ts";
import * as libc from "../base/libc.ts";
import { execProcess, openTerminal, runStage, step } from "./init.ts";
import { type ContainerState, isAlive, stateDir } from "./state.ts";
import { forwardSignals, handshake } from "./parent.ts";
import { listenSync, selfCommand, spawnInPidNamespace } from "./spawn.ts";
import { cgroupDriver } from "../cgroups/manager.ts";
import { UserError } from "../base/errors.ts";
import { exitCodeOf } from "../base/signals.ts";
import { openRelay } from "./tty.ts";

const NS_FILES: Partial<Record<NamespaceType, [file: string, flag: number]>> = {
  ipc: ["ipc", libc.CLONE_NEWIPC],
  uts: ["uts", libc.CLONE_NEWUTS],
  network: ["net", libc.CLONE_NEWNET],
  mount: ["mnt", libc.CLONE_NEWNS],
};

/** Entry point of the exec stage; never returns. */
export function execStage(): never {
  return runStage<ExecConfig>((config, sync) => {
    libc.prctl(libc.PR_SET_PDEATHSIG, 9 /* SIGKILL */);
    for (const file of config.cgroupFiles) {
      step(`Cannot join cgroup ${file}`, () => Deno.writeTextFileSync(file, "0"));
    }
    // Open every namespace first: once in the container's mount namespace, /proc is its own.
    const fds = config.namespaces.flatMap((type) => {
      const entry = NS_FILES[type];
      if (entry === undefined) return [];
      const path = `/proc/${config.pid}/ns/${entry[0]}`;
      return [[
        step(`Cannot open ${path}`, () => libc.open(path, libc.O_RDONLY | libc.O_CLOEXEC)),
        entry[1],
      ]];
    });
    step("Cannot unshare the fs context", () => libc.unshare(0x200 /* CLONE_FS */));
    for (const [fd, flag] of fds) {
      step("Cannot enter the container's namespaces", () => libc.setns(fd!, flag!));
      libc.close(fd!);
    }
    step(
      `Cannot use working directory "${config.process.cwd}"`,
      () => libc.chdir(config.process.cwd),
    );
    if (config.tty) step("Cannot create the terminal", () => openTerminal(sync));
    execProcess(config.process);
  });
}

/** What `exec` was asked for. */
export interface ExecOptions {
  args: string[];
  env: string[];
  cwd?: string;
  user?: Process["user"];
  interactive: boolean;
  tty: boolean;
}

/** Runs a process in a running container and returns its exit code. */
export async function execInContainer(
  state: ContainerState,
  options: ExecOptions,
): Promise<number> {
  if (state.status !== "running" || !isAlive(state.process)) {
    throw new UserError(`Container ${state.id.slice(0, 12)} is not running`);
  }
  const spec: ContainerSpec = JSON.parse(
    Deno.readTextFileSync(`${stateDir(state.id)}/config.json`),
  );
  const cgroup = cgroupDriver().open(spec.linux.cgroupsPath.split("/").pop()!);
  if (cgroup === undefined) throw new UserError(`Container ${state.id.slice(0, 12)} has no cgroup`);
  const env = new Map(spec.process.env.map((e) => [e.slice(0, e.indexOf("=")), e]));
  for (const e of options.env) env.set(e.slice(0, e.indexOf("=")), e);
  if (options.tty) env.set("TERM", "TERM=xterm");
  using relay = options.tty ? openRelay() : undefined;
  using sync = listenSync(state.id);
  const config: ExecConfig = {
    pid: state.process!.pid,
    namespaces: spec.linux.namespaces.map((n) => n.type).filter((t) => t !== "pid"),
    cgroupFiles: [...(cgroup.threadFiles ?? cgroup.procsFiles)],
    process: {
      terminal: options.tty,
      args: options.args,
      env: [...env.values()],
      cwd: options.cwd ?? spec.process.cwd,
      user: options.user ?? spec.process.user,
    },
    syncSocket: sync.path,
    tty: options.tty,
  };
  const { exe, args } = selfCommand(EXEC_ARG);
  const child = spawnInPidNamespace({
    exe,
    args,
    env: { [INIT_ENV]: JSON.stringify(config) },
    stdin: relay !== undefined ? "null" : options.interactive ? "inherit" : "null",
    stdout: relay !== undefined ? "null" : "inherit",
    stderr: relay !== undefined ? "null" : "inherit",
  }, config.pid);
  const failure = await handshake(
    sync.listener,
    child,
    undefined,
    (master) => relay?.attach(master),
  );
  if (failure !== undefined) {
    await child.status;
    throw new UserError(failure.message, failure.exitCode);
  }
  using signals = forwardSignals();
  signals.attach(child.pid);
  const relayed = relay?.relay();
  const status = await child.status;
  await relayed;
  return exitCodeOf(status);
}
