/**
 * How the parent (mini-docker) and the init stage talk. `Deno.Command` cannot hand a child an
 * extra file descriptor, so the parent listens on a unix socket in the run root and init
 * connects to it, close-on-exec:
 *
 * | step | init (PID 1 of the new PID namespace)   | parent                                      |
 * |------|-----------------------------------------|---------------------------------------------|
 * | 0    | (spawned with only the socket's path)   | spawn init; for `run` as early as main.ts   |
 * | 1    | boot Deno, connect, wait for a line     | state, cgroup; accept                       |
 * | 2    | read the InitConfig; v1: join the cgroup| send the InitConfig; else start moving init |
 * |      | (main thread only, `tasks`)             | into the cgroup (its boot stays outside)    |
 * | 3    | namespaces, root, mounts, pivot         | wait for a message or the end of the stream |
 * | 3t   | -t: open a pty, send {pty, fd}, wait    | copy the fd (pidfd_getfd), size it, "ok"    |
 * | 4    | else: send {ready}, wait for a line     | once init is in the cgroup: "go"            |
 * | 5a   | user, execve succeeds: the socket closes| end of stream = the command is running      |
 * | 5b   | a step fails: send InitMessage, exit    | print the message, exit with its code       |
 *
 * The command starts only once init is in the cgroup: no instruction of the container runs
 * unlimited. Init joins only after its Deno runtime has booted (it has connected), so that the
 * memory and threads of that boot stay charged outside the container, and even Docker's
 * smallest limits (6 MB, one process) leave the command its share. On cgroup v1 init's main
 * thread joins by itself in step 2, which takes no lock; moving a whole process (v2, or a
 * `--init` reaper, which stays; the parent does it while init sets up) waits for an RCU grace
 * period, 5-15 ms. An init that
 * reads the end of the stream in step 2 or 4 (the run was cancelled) leaves quietly. The exec
 * stage gets its whole ExecConfig in its environment and joins its cgroup itself.
 */
import type { ContainerSpec, NamespaceType, Process } from "../base/spec.ts";

/** The hidden first argument that turns mini-docker into the init stage. */
export const INIT_ARG = "__init";

/** The spec annotation that asks for a reaper as PID 1 (`run --init`). */
export const INIT_ANNOTATION = "org.mini-docker.init";

/** The environment variable that carries a stage's first configuration (JSON). */
export const INIT_ENV = "_MINI_DOCKER_INIT";

/** What the parent tells the init stage. */
export interface InitConfig {
  spec: ContainerSpec;
  /** Unix socket to connect to (step 1). */
  syncSocket: string;
  /** Die with the process that started us (foreground runs); detached containers outlive it. */
  dieWithParent: boolean;
  /** `-t`: open a pseudo-terminal in the container's devpts for stdin/stdout/stderr. */
  tty?: boolean;
  /** `--init`: stay as PID 1, run the command as a child, forward signals, reap orphans. */
  reaper?: boolean;
  /**
   * cgroup v1: the `tasks` files that init's main thread writes "0" to, joining the cgroup
   * itself and at once (Cgroup.threadFiles). Without them the parent moves init (step 2).
   */
  cgroupTasks?: string[];
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
  /**
   * Files to write "0" to, joining the container's cgroup before anything else: on v1 each
   * hierarchy's `tasks` (only the stage's main thread, which execs, and without waiting for an
   * RCU grace period), on v2 `cgroup.procs`.
   */
  cgroupFiles: string[];
  process: Process;
  syncSocket: string;
  /** `-t`: open a pseudo-terminal in the container's devpts. */
  tty?: boolean;
}

/** What the init stage tells the parent: one JSON object per line. */
export type InitMessage = {
  type: "error";
  /** Docker exit code: 125 setup failed, 126 cannot invoke, 127 not found. */
  exitCode: number;
  message: string;
} | {
  /**
   * `-t`: the stage opened a pseudo-terminal in the container's devpts; its master is this fd
   * of the stage, which the parent copies (pidfd_getfd) before answering one line "ok".
   */
  type: "pty";
  fd: number;
} | {
  /** The container is set up; the stage waits for one line "go" to start the command. */
  type: "ready";
};
