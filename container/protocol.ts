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
import type { ContainerSpec } from "./spec.ts";

/** The hidden first argument that turns mini-docker into the init stage. */
export const INIT_ARG = "__init";

/** The environment variable that carries the InitConfig (JSON) to the init stage. */
export const INIT_ENV = "_MINI_DOCKER_INIT";

/** What the parent tells the init stage. */
export interface InitConfig {
  spec: ContainerSpec;
  /** Unix socket to connect to (step 1). */
  syncSocket: string;
  /** `cgroup.procs` files to write "0" to, joining the container's cgroup before anything else. */
  cgroupProcs: string[];
}

/** What the init stage tells the parent: one JSON object per line. */
export type InitMessage = {
  type: "error";
  /** Docker exit code: 125 setup failed, 126 cannot invoke, 127 not found. */
  exitCode: number;
  message: string;
};
