/**
 * How the parent (mini-docker) and the init stage talk. `Deno.Command` cannot hand a child an
 * extra file descriptor, so the parent listens on a unix socket in the container's state
 * directory and init connects to it, close-on-exec:
 *
 * | step | init (PID 1 of the new PID namespace)   | parent                                  |
 * |------|-----------------------------------------|-----------------------------------------|
 * | 1    | connect to the sync socket              | accept (or see init die first)          |
 * | 2    | set up namespaces, root, cgroup, user   | wait for a message or end of stream     |
 * | 3a   | execve succeeds: the socket closes      | end of stream = the command is running  |
 * | 3b   | a step fails: send InitError, exit      | print the message, exit with its code   |
 *
 * The init stage reads its configuration from one environment variable, so it needs no file.
 */
import type { ContainerSpec, NamespaceType, Process } from "./spec.ts";

/** The hidden first argument that turns mini-docker into the init stage. */
export const INIT_ARG = "__init";

/** The spec annotation that asks for a reaper as PID 1 (`run --init`). */
export const INIT_ANNOTATION = "org.mini-docker.init";

/** The environment variable that carries the InitConfig (JSON) to the init stage. */
export const INIT_ENV = "_MINI_DOCKER_INIT";

/** What the parent tells the init stage. */
export interface InitConfig {
  spec: ContainerSpec;
  /** Unix socket to connect to (step 1). */
  syncSocket: string;
  /** `cgroup.procs` files to write "0" to, joining the container's cgroup before anything else. */
  cgroupProcs: string[];
  /** Die with the process that started us (foreground runs); detached containers outlive it. */
  dieWithParent: boolean;
  /** A pseudo-terminal slave to make the controlling terminal and stdin/stdout/stderr (`-t`). */
  ttySlave?: string;
  /** `--init`: stay as PID 1, run the command as a child, forward signals, reap orphans. */
  reaper?: boolean;
}

/** The hidden first argument that turns mini-docker into the supervisor of detached containers. */
export const SUPERVISOR_ARG = "__supervisor";

/** The hidden first argument that turns mini-docker into the exec stage. */
export const EXEC_ARG = "__exec";

/** What `mini-docker exec` tells the exec stage (through INIT_ENV too). */
export interface ExecConfig {
  /** Host PID of the container's PID 1, whose namespaces are joined. */
  pid: number;
  /** Namespaces to join besides the PID namespace (entered at spawn). */
  namespaces: NamespaceType[];
  cgroupProcs: string[];
  process: Process;
  syncSocket: string;
  ttySlave?: string;
}

/** What the init stage tells the parent: one JSON object per line. */
export type InitMessage = {
  type: "error";
  /** Docker exit code: 125 setup failed, 126 cannot invoke, 127 not found. */
  exitCode: number;
  message: string;
};
