/**
 * `exec`: a new process in a running container, started exactly as a container's first process
 * is (recipe.ts, mode "join"): a thread of mini-docker enters the container's namespaces (and, on
 * cgroup v1, its cgroup), takes the container's user, capabilities and seccomp filter, looks the
 * user up in the container's own files, and spawns the process, which waits at its gate until
 * the parent has moved it into the cgroup (v2) and set its limits. mini-docker itself never
 * enters the container: nothing of it is visible or reachable from inside.
 */
import type { ContainerSpec, Process } from "../base/spec.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import * as libc from "../base/libc.ts";
import { cgroupAt } from "../cgroups/manager.ts";
import { type ContainerState, isAlive, stateDir } from "./state.ts";
import { forwardSignals } from "./forward.ts";
import { openRelay } from "./tty.ts";
import { ContainerThread } from "./threads.ts";
import { Gate } from "./gate.ts";
import { capabilityMasks, cgroupPlan, compileFilter, runThread } from "./start.ts";

/** What `exec` was asked for. */
export interface ExecOptions {
  args: string[];
  env: string[];
  cwd?: string;
  /** `-u NAME[:GROUP]` or ids, resolved inside the container. */
  user?: string;
  interactive: boolean;
  tty: boolean;
  /** `--privileged`: every capability, no seccomp filter (Docker's exec --privileged). */
  privileged?: boolean;
}

/** Runs a process in a running container and returns its exit code. */
export async function execInContainer(
  state: ContainerState,
  options: ExecOptions,
  thread: ContainerThread = ContainerThread.start(),
): Promise<number> {
  try {
    if (state.status !== "running" || !isAlive(state.process)) {
      throw new UserError(`Container ${state.id.slice(0, 12)} is not running`, EXIT_FAILURE);
    }
    if (state.paused) {
      throw new UserError(
        `Container ${state.id.slice(0, 12)} is paused, unpause the container before exec`,
        EXIT_FAILURE,
      );
    }
    const container: ContainerSpec = JSON.parse(
      Deno.readTextFileSync(`${stateDir(state.id)}/config.json`),
    );
    const env = new Map(container.process.env.map((e) => [e.slice(0, e.indexOf("=")), e]));
    for (const e of options.env) env.set(e.slice(0, e.indexOf("=")), e);
    if (options.tty) env.set("TERM", "TERM=xterm");
    const process: Process = {
      ...container.process,
      terminal: options.tty,
      args: options.args,
      env: [...env.values()],
      cwd: options.cwd ?? container.process.cwd,
    };
    const spec: ContainerSpec = { ...container, process };
    if (options.privileged) {
      const all = (await import("../security/capabilities.ts")).allCapabilities();
      process.capabilities = { bounding: all, effective: all, permitted: all };
      delete spec.linux.seccomp;
    }
    using relay = options.tty ? openRelay() : undefined;
    const { pid, status } = await spawnInContainer(state, spec, {
      thread,
      userSpec: options.user,
      stdio: options.tty ? "tty" : options.interactive ? "inherit" : nullStdin(),
      onPty: (master) => relay?.attach(master),
    });
    using signals = forwardSignals();
    signals.attach(pid);
    const relayed = relay?.relay();
    const end = await status;
    await relayed;
    return end.code;
  } finally {
    thread.end();
  }
}

/**
 * Starts `spec.process` in the running container `state` (whose spec, namespaces and cgroup
 * `spec` carries): its thread joins the container, it waits at its gate until it is in the
 * cgroup (v2) with its limits, and runs. Returns once it has called execve.
 */
export async function spawnInContainer(
  state: ContainerState,
  spec: ContainerSpec,
  options: {
    thread: ContainerThread;
    /** A user spec (`exec -u NAME[:GROUP]`), resolved in the container's own files. */
    userSpec?: string;
    stdio: "inherit" | "tty" | [number, number, number];
    onPty?: (master: number) => void;
    /** The process is our caller's (the OCI runtime's `exec --detach`): not reaped here. */
    detach?: boolean;
    /** Descriptors of ours that become its 3, 4, ... (recipe.ts SpawnConfig.passFds). */
    passFds?: number[];
  },
): Promise<{ pid: number; status: Promise<Deno.CommandStatus> }> {
  const { driver, name } = cgroupAt(spec.linux.cgroupsPath);
  const cgroup = driver.open(name);
  if (cgroup === undefined) {
    throw new UserError(`Container ${state.id.slice(0, 12)} has no cgroup`);
  }
  const prepared = options.thread.prepare({
    mode: "join",
    spec,
    joinPid: state.process!.pid,
    userSpec: options.userSpec,
    proc: { root: "", dir: "" },
    tty: options.stdio === "tty",
  }, options.onPty);
  prepared.catch(() => {});
  using gate = Gate.create();
  using plan = cgroupPlan(cgroup, spec.linux.cgroupsPath);
  return await runThread(options.thread, prepared, {
    cgroup: plan.files,
    gateDir: gate.dirFd,
    stdio: options.stdio,
    seccomp: await compileFilter(spec),
    capabilities: capabilityMasks(spec),
    ...(options.passFds !== undefined && { passFds: options.passFds }),
  }, { gate, cgroup, spec, reap: options.detach !== true });
}

/** Standard input from /dev/null (without -i), output to ours. */
function nullStdin(): [number, number, number] {
  // The descriptor lives as long as this process: exec is one-shot.
  return [libc.open("/dev/null", libc.O_RDONLY | libc.O_CLOEXEC), 1, 2];
}
