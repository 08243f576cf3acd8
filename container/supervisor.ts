/**
 * The supervisor of detached containers: one mini-docker process shared by all of them, so
 * that a detached container costs a pipe and a few kilobytes, not a Deno process (~30 MiB).
 * It starts on demand (the first `run -d`), owns the containers it starts (their exit status
 * comes to it), writes their output to their logs, records their exit and cleans their cgroup,
 * and leaves when it has had no container for a while. It is not a daemon to manage: there is
 * nothing to configure and nothing to restart. If it is killed, its containers keep running
 * (no parent-death signal), stay listed, and can be stopped; their exit is then recorded by the
 * next mini-docker command that looks (see `reconcile` in state.ts).
 *
 * One supervisor per build of mini-docker: after an upgrade, the old one keeps its containers
 * until they end and the new one serves new containers, side by side (their files are named by
 * `buildId()` under `<run root>/supervisor/`).
 *
 * Protocol: a client connects to `<run root>/supervisor/<build>.sock` and sends one JSON line
 * (`StartRequest`); the supervisor answers one JSON line (`StartReply`) once the container's
 * command runs or has failed to start.
 */
import type { ContainerSpec } from "../base/spec.ts";
import { type ContainerMeta, startContainer, type Started } from "./start.ts";
import { ContainerThread } from "./threads.ts";
import { selfCommand, SUPERVISOR_ARG } from "./self.ts";
import { logPath } from "./state.ts";
import { runRoot } from "../base/paths.ts";
import { EXIT_ENGINE, UserError } from "../base/errors.ts";
import * as libc from "../base/libc.ts";
import { LogWriter } from "./logs.ts";

/** How long the supervisor stays without any container before it leaves. */
const IDLE_EXIT_MS = 5_000;

export interface StartRequest {
  spec: ContainerSpec;
  meta: ContainerMeta;
  /** `-i`: keep the container's stdin open (a pipe nobody writes to yet). */
  interactive: boolean;
  /** `-t`: give the container a pseudo-terminal; its output is logged as stdout. */
  tty: boolean;
  autoRemove: boolean;
  /** Docker's default seccomp profile, resolved during the start (StartOptions). */
  defaultSeccomp?: boolean;
}

export type StartReply = { ok: true; id: string } | {
  ok: false;
  message: string;
  exitCode: number;
};

/**
 * Identifies this build of mini-docker: the compiled binary, or the runtime's source files
 * (size and modification time), so that code that changed never serves through an old process.
 */
export function buildId(): string {
  const exe = Deno.execPath();
  const files = /(^|\/)deno$/.test(exe)
    ? [
      "supervisor.ts",
      "start.ts",
      "recipe.ts",
      "thread.ts",
      "threads.ts",
      "gate.ts",
      "mounts.ts",
      "state.ts",
      "../base/libc.ts",
      "../network/mod.ts",
      "../network/netavark.ts",
      "../network/endpoints.ts",
    ]
      .map((f) => new URL(`./${f}`, import.meta.url).pathname)
    : [exe];
  let hash = 0x811c9dc5; // FNV-1a, 32 bits
  for (const file of files) {
    const st = Deno.statSync(file);
    for (const ch of `${file}:${st.size}:${st.mtime?.getTime()};`) {
      hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    }
  }
  return hash.toString(16).padStart(8, "0");
}

/** The directory of this build's supervisor files (socket, lock, pid, log). */
export function supervisorDir(): string {
  return `${runRoot()}/supervisor`;
}

function socketPath(): string {
  return `${supervisorDir()}/${buildId()}.sock`;
}

/** Asks the supervisor (started if needed) to start a detached container. */
export async function startDetached(request: StartRequest): Promise<string> {
  const conn = await connectSupervisor();
  try {
    await conn.write(new TextEncoder().encode(JSON.stringify(request) + "\n"));
    const text = await new Response(conn.readable).text();
    if (text === "") {
      throw new UserError("The supervisor ended before it answered: see its log in the run root");
    }
    const reply = JSON.parse(text) as StartReply;
    if (!reply.ok) throw new UserError(reply.message, reply.exitCode);
    return reply.id;
  } finally {
    try {
      conn.close();
    } catch { /* closed by the peer */ }
  }
}

async function connectSupervisor(): Promise<Deno.UnixConn> {
  const path = socketPath();
  try {
    return await Deno.connect({ transport: "unix", path });
  } catch {
    // Nobody listens: start one (a second one started concurrently leaves at once).
  }
  Deno.mkdirSync(supervisorDir(), { recursive: true, mode: 0o700 });
  const { exe, args } = selfCommand(SUPERVISOR_ARG);
  const log = `${supervisorDir()}/${buildId()}.log`;
  const child = new Deno.Command(exe, {
    args,
    env: { MINI_DOCKER_SUPERVISOR_LOG: log },
    stdin: "null",
    stdout: "null",
    stderr: "null",
    cwd: "/",
  }).spawn();
  child.unref();
  // A supervisor boots in tens of milliseconds here, in seconds under emulation: wait while it
  // lives, and say why when it has died.
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 120_000;
  let lost: number | undefined;
  for (;;) {
    try {
      return await Deno.connect({ transport: "unix", path });
    } catch (err) {
      // A supervisor that lost the race to another one exits at once: then the winner counts.
      const orphaned = exited && !supervisorAlive();
      lost ??= orphaned ? Date.now() : undefined;
      if (!orphaned) lost = undefined;
      if (Date.now() > deadline || (lost !== undefined && Date.now() - lost > 2000)) {
        throw new UserError(
          `Cannot reach the supervisor at "${path}": ${(err as Error).message} (see ${log})`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** Whether this build's supervisor process (the one holding its lock) is alive. */
function supervisorAlive(): boolean {
  try {
    const pid = Number(Deno.readTextFileSync(`${supervisorDir()}/${buildId()}.pid`).trim());
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Entry point of the supervisor process. */
export async function supervise(): Promise<never> {
  // Its own session: no terminal, no signals from the shell that ran the first `run -d`.
  try {
    libc.setsid();
  } catch { /* already a session leader */ }
  Deno.mkdirSync(supervisorDir(), { recursive: true, mode: 0o700 });
  const lockFd = libc.open(
    `${supervisorDir()}/${buildId()}.lock`,
    0o100 /* O_CREAT */ | libc.O_RDWR | libc.O_CLOEXEC,
    0o600,
  );
  if (!libc.tryLock(lockFd)) Deno.exit(0); // Another supervisor serves this run root.
  const pidFile = `${supervisorDir()}/${buildId()}.pid`;
  Deno.writeTextFileSync(pidFile, `${Deno.pid}\n`);
  const path = socketPath();
  try {
    Deno.removeSync(path);
  } catch { /* none */ }
  const listener = Deno.listen({ transport: "unix", path });
  ready = ContainerThread.start();
  let active = 0;
  let idleSince = Date.now();
  const timer = setInterval(() => {
    if (active === 0 && Date.now() - idleSince > IDLE_EXIT_MS) {
      // Stop accepting first, so a client that raced us starts a new supervisor.
      listener.close();
      try {
        Deno.removeSync(path);
      } catch { /* gone */ }
      clearInterval(timer);
      try {
        Deno.removeSync(pidFile);
      } catch { /* gone */ }
      Deno.exit(0);
    }
  }, 500);
  for await (const conn of listener) {
    active++;
    serve(conn).catch((err) => log(`request failed: ${err instanceof Error ? err.message : err}`))
      .finally(() => {
        active--;
        idleSince = Date.now();
      });
  }
  Deno.exit(0);
}

function log(line: string): void {
  const file = Deno.env.get("MINI_DOCKER_SUPERVISOR_LOG");
  if (file === undefined) return;
  try {
    Deno.writeTextFileSync(file, `${new Date().toISOString()} ${line}\n`, { append: true });
  } catch { /* nowhere to write */ }
}

/**
 * A container thread booted ahead of the next request (its boot takes about 12 ms), replaced
 * as soon as it is taken.
 */
let ready: ContainerThread | undefined;

function takeThread(): ContainerThread {
  const thread = ready ?? ContainerThread.start();
  ready = ContainerThread.start();
  return thread;
}

/** One client: start its container, answer, then supervise the container until it exits. */
async function serve(conn: Deno.UnixConn): Promise<void> {
  const reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  reader.releaseLock();
  const request = JSON.parse(text) as StartRequest;
  // The container's stdio: pipes to its log (and an open, empty stdin with -i), or a terminal.
  const nullFd = libc.open("/dev/null", libc.O_RDWR | libc.O_CLOEXEC);
  const input = request.interactive && !request.tty ? libc.pipe() : undefined;
  const output = request.tty ? undefined : [libc.pipe(), libc.pipe()];
  const childEnds = [input?.[0] ?? nullFd, output?.[0]?.[1] ?? nullFd, output?.[1]?.[1] ?? nullFd];
  let started: Started;
  let pty: number | undefined;
  try {
    started = await startContainer(request.spec, request.meta, {
      thread: takeThread(),
      stdio: request.tty ? "tty" : [childEnds[0]!, childEnds[1]!, childEnds[2]!],
      onPty: (master) => {
        // Nobody's terminal to follow: the size of a classic one.
        libc.setWindowSize(master, { rows: 24, cols: 80 });
        pty = master;
      },
      dieWithParent: false,
      autoRemove: request.autoRemove,
      defaultSeccomp: request.defaultSeccomp,
      detached: true,
    });
  } catch (err) {
    if (pty !== undefined) libc.close(pty);
    for (const fd of [nullFd, ...(input ?? []), ...(output?.flat() ?? [])]) libc.close(fd);
    const reply: StartReply = {
      ok: false,
      message: err instanceof Error ? err.message : String(err),
      exitCode: err instanceof UserError ? err.exitCode : EXIT_ENGINE,
    };
    await conn.write(new TextEncoder().encode(JSON.stringify(reply) + "\n"));
    conn.close();
    return;
  }
  // The container has its own copies of its ends.
  libc.close(nullFd);
  if (input !== undefined) libc.close(input[0]);
  for (const pair of output ?? []) libc.close(pair[1]);
  await conn.write(
    new TextEncoder().encode(JSON.stringify({ ok: true, id: started.state.id }) + "\n"),
  );
  conn.close();

  const id = started.state.id;
  const logs = new LogWriter(logPath(id));
  const pumps: Promise<void>[] = [];
  if (pty !== undefined) {
    pumps.push(logs.pumpFd(pty, "stdout"));
  } else {
    pumps.push(logs.pumpFd(output![0]![0], "stdout"), logs.pumpFd(output![1]![0], "stderr"));
  }
  // -i without an attached client: the pipe stays open (and empty) for the container's life.
  const final = await started.finish();
  await Promise.allSettled(pumps);
  if (pty !== undefined) libc.close(pty);
  for (const pair of output ?? []) libc.close(pair[0]);
  if (input !== undefined) libc.close(input[1]);
  logs.close();
  if (final.oomKilled) log(`container ${id}: killed by the OOM killer`);
}
