/**
 * The supervisor of detached containers: one mini-docker process shared by all of them, so
 * that a detached container costs a pipe and a few kilobytes, not a Deno process (~30 MiB).
 * It starts on demand (the first `run -d`, `start` or `restart`), owns the containers it starts
 * (their exit status comes to it), writes their output to their logs and to the clients attached
 * to them, records their exit, cleans their cgroup, starts them again as their restart policy
 * says, and leaves when it has had no container and no client for a while. It is not a daemon to
 * manage: there is nothing to configure and nothing to restart. If it is killed, its containers
 * keep running (no parent-death signal), stay listed, and can be stopped; their exit is then
 * recorded by the next mini-docker command that looks (see `reconcile` in state.ts), and their
 * restart policy ends with it.
 *
 * One supervisor per build of mini-docker: after an upgrade, the old one keeps its containers
 * until they end and the new one serves new containers, side by side (their files are named by
 * `buildId()` under `<run root>/supervisor/`).
 *
 * Protocol: a client connects to `<run root>/supervisor/<build>.sock` and sends one JSON line
 * (`Request`); the supervisor answers one JSON line (`Reply`) once the container's command runs
 * or has failed to start. A request that attaches then carries frames (attach.ts) until the
 * container exits.
 */
import type { ContainerSpec } from "../base/spec.ts";
import { type ContainerMeta, releaseOwner, startContainer, type Started } from "./start.ts";
import { ContainerThread } from "./threads.ts";
import { selfCommand, SUPERVISOR_ARG } from "./self.ts";
import {
  containerConfig,
  type ContainerState,
  logPath,
  processRef,
  readState,
  stateDir,
  updateState,
} from "./state.ts";
import { runRoot } from "../base/paths.ts";
import { EXIT_ENGINE, EXIT_FAILURE, UserError } from "../base/errors.ts";
import * as libc from "../base/libc.ts";
import { LogWriter, type Stream } from "./logs.ts";
import { readUntilEnd } from "./poller.ts";
import { ConnReader, encodeFrame, EXIT, STDERR, STDOUT, writeAllTo } from "./attach.ts";

/** How long the supervisor stays without any container or client before it leaves. */
const IDLE_EXIT_MS = 5_000;
/** Restart delays (Docker's): 100 ms, doubled at each restart up to a minute. */
const FIRST_RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 60_000;
/** A container that ran this long before it ended starts again after the first delay. */
const RESTART_RESET_MS = 10_000;

/** A new container (`run -d`). */
export interface NewContainer {
  spec: ContainerSpec;
  meta: ContainerMeta;
  /** `-i`: keep the container's stdin open (a pipe that attached clients write to). */
  interactive: boolean;
  /** `-t`: give the container a pseudo-terminal; its output is logged as stdout. */
  tty: boolean;
  autoRemove: boolean;
  /** Docker's default seccomp profile, resolved during the start (StartOptions). */
  defaultSeccomp?: boolean;
}

/** What a client asks for, as one JSON line. */
export type Request =
  | { type: "run"; container: NewContainer }
  /** Start a container that exists (`start`, `restart`); `attach` streams it to this client. */
  | { type: "start"; id: string; attach?: { stdin: boolean } }
  /** Stream a running container of this supervisor to this client. */
  | { type: "attach"; id: string; stdin: boolean };

export type Reply = { ok: true; id: string } | {
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
      "attach.ts",
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

/** The directory of the supervisors' files (per build: socket, lock, pid; one shared log). */
export function supervisorDir(): string {
  return `${runRoot()}/supervisor`;
}

/** The supervisors' log, one for every build (what a request or a container's end said). */
export function supervisorLog(): string {
  return `${supervisorDir()}/supervisor.log`;
}

function socketPath(): string {
  return `${supervisorDir()}/${buildId()}.sock`;
}

/** An answered request: the reply, and for an attaching one the stream that follows. */
export interface Answer {
  reply: Reply;
  conn: Deno.UnixConn;
  reader: ConnReader;
  /** Bytes read past the reply line (the first frames). */
  rest: Uint8Array;
}

/**
 * Sends a request to this build's supervisor, started if needed (unless `spawn` is false: then
 * a missing supervisor is an error). The caller closes the connection.
 */
export async function ask(request: Request, spawn = true): Promise<Answer> {
  const conn = await connectSupervisor(spawn);
  try {
    await writeAllTo(conn, new TextEncoder().encode(JSON.stringify(request) + "\n"));
    const reader = new ConnReader(conn);
    let buffered = new Uint8Array(0);
    for (;;) {
      const nl = buffered.indexOf(10);
      if (nl >= 0) {
        const reply = JSON.parse(new TextDecoder().decode(buffered.subarray(0, nl))) as Reply;
        return { reply, conn, reader, rest: buffered.slice(nl + 1) };
      }
      const value = await reader.read();
      if (value === null) {
        throw new UserError(
          `The supervisor ended before it answered: see its log, ${supervisorLog()}`,
        );
      }
      const joined = new Uint8Array(buffered.length + value.length);
      joined.set(buffered);
      joined.set(value, buffered.length);
      buffered = joined;
    }
  } catch (err) {
    closeQuietly(conn);
    throw err;
  }
}

/** Asks the supervisor (started if needed) to start a new detached container; its id. */
export async function startDetached(container: NewContainer): Promise<string> {
  const answer = await ask({ type: "run", container });
  closeQuietly(answer.conn);
  return replied(answer.reply);
}

/** The id of a successful reply; a failed one is thrown as the UserError it reports. */
export function replied(reply: Reply): string {
  if (!reply.ok) throw new UserError(reply.message, reply.exitCode);
  return reply.id;
}

function closeQuietly(conn: Deno.UnixConn): void {
  try {
    conn.close();
  } catch { /* closed by the peer */ }
}

async function connectSupervisor(spawn: boolean): Promise<Deno.UnixConn> {
  const path = socketPath();
  try {
    return await Deno.connect({ transport: "unix", path });
  } catch (err) {
    if (!spawn) {
      throw new UserError(
        `No supervisor of detached containers is running (${(err as Error).message})`,
        EXIT_FAILURE,
      );
    }
    // Nobody listens: start one (a second one started concurrently leaves at once).
  }
  Deno.mkdirSync(supervisorDir(), { recursive: true, mode: 0o700 });
  const { exe, args } = selfCommand(SUPERVISOR_ARG);
  const child = new Deno.Command(exe, {
    args,
    env: { MINI_DOCKER_SUPERVISOR_LOG: supervisorLog() },
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
          `Cannot reach the supervisor at "${path}": ${
            (err as Error).message
          } (see ${supervisorLog()})`,
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

/**
 * Takes this build's supervisor lock, or returns undefined when another supervisor holds it. A
 * clean-up (lifecycle.ts) may unlink a lock file that nobody holds at the moment this process
 * locks it: a lock on an unlinked file protects nothing, so it is taken again on a new file.
 */
function takeLock(): number | undefined {
  const path = `${supervisorDir()}/${buildId()}.lock`;
  for (;;) {
    const fd = libc.open(path, libc.O_CREAT | libc.O_RDWR | libc.O_CLOEXEC, 0o600);
    if (!libc.tryLock(fd)) {
      libc.close(fd);
      return undefined;
    }
    if (!Deno.readLinkSync(`/proc/self/fd/${fd}`).endsWith(" (deleted)")) return fd;
    libc.close(fd);
  }
}

/** Entry point of the supervisor process. */
export async function supervise(): Promise<never> {
  // Its own session: no terminal, no signals from the shell that ran the first `run -d`.
  try {
    libc.setsid();
  } catch { /* already a session leader */ }
  Deno.mkdirSync(supervisorDir(), { recursive: true, mode: 0o700 });
  const lockFd = takeLock();
  if (lockFd === undefined) Deno.exit(0); // Another supervisor serves this run root.
  const build = buildId();
  const pidFile = `${supervisorDir()}/${build}.pid`;
  Deno.writeTextFileSync(pidFile, `${Deno.pid}\n`);
  const path = socketPath();
  try {
    Deno.removeSync(path);
  } catch { /* none */ }
  const listener = Deno.listen({ transport: "unix", path });
  ready = ContainerThread.start();
  let idleSince = Date.now();
  const timer = setInterval(() => {
    if (busy > 0) {
      idleSince = Date.now();
      return;
    }
    if (Date.now() - idleSince > IDLE_EXIT_MS) {
      // Stop accepting first, so a client that raced us starts a new supervisor; then remove
      // this build's files, the lock last (while it is still held).
      listener.close();
      clearInterval(timer);
      for (const file of [path, pidFile, `${supervisorDir()}/${build}.lock`]) {
        try {
          Deno.removeSync(file);
        } catch { /* gone */ }
      }
      Deno.exit(0);
    }
  }, 500);
  for await (const conn of listener) {
    busy++;
    serve(conn).catch((err) => log(`request failed: ${err instanceof Error ? err.message : err}`))
      .finally(() => busy--);
  }
  Deno.exit(0);
}

/** Requests being served, containers owned and clients attached: the supervisor stays. */
let busy = 0;

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

/** A client attached to a container: frames are written to it in order. */
interface Client {
  conn: Deno.UnixConn;
  /** The connection's reader, past the request line, and what it read past that line. */
  input: { reader: ConnReader; leftover: Uint8Array };
  queue: Promise<unknown>;
}

/** A container this supervisor owns, across its restarts. */
interface Owned {
  id: string;
  /** What its stdin is written through: the pipe of -i, or the terminal of -t. */
  input?: number;
  clients: Set<Client>;
  /** Closes its stdin when its first attached client's input ends (Docker's StdinOnce). */
  stdinOnce: boolean;
}

const owned = new Map<string, Owned>();

function send(client: Client, kind: number, payload: Uint8Array): void {
  const frame = encodeFrame(kind, payload);
  client.queue = client.queue.then(() => writeAllTo(client.conn, frame)).catch(() => {});
}

function detach(o: Owned, client: Client, exitCode?: number): void {
  if (!o.clients.delete(client)) return;
  if (exitCode !== undefined) send(client, EXIT, new TextEncoder().encode(String(exitCode)));
  client.queue = client.queue.finally(() => closeQuietly(client.conn));
}

/** Copies a client's input to the container's stdin until either ends. */
async function pumpInput(o: Owned, client: Client): Promise<void> {
  const write = (chunk: Uint8Array) =>
    o.input !== undefined && libc.writeAllAsync(o.input, new Uint8Array(chunk));
  try {
    if (client.input.leftover.length > 0 && !await write(client.input.leftover)) return;
    for (;;) {
      const chunk = await client.input.reader.read();
      if (chunk === null || !await write(chunk)) break;
    }
  } catch { /* the client went away */ }
  if (o.stdinOnce && o.input !== undefined && o.clients.has(client)) {
    // Docker's StdinOnce: the container's stdin ends with its first client's.
    libc.close(o.input);
    o.input = undefined;
  }
}

/** One client: one request. */
async function serve(conn: Deno.UnixConn): Promise<void> {
  const reader = new ConnReader(conn);
  let buffered = new Uint8Array(0);
  let nl: number;
  while ((nl = buffered.indexOf(10)) < 0) {
    const value = await reader.read();
    if (value === null) return;
    const joined = new Uint8Array(buffered.length + value.length);
    joined.set(buffered);
    joined.set(value, buffered.length);
    buffered = joined;
  }
  const request = JSON.parse(new TextDecoder().decode(buffered.subarray(0, nl))) as Request;
  const client: Client = {
    conn,
    input: { reader, leftover: buffered.slice(nl + 1) },
    queue: Promise.resolve(),
  };
  const answer = async (reply: Reply) => {
    await writeAllTo(conn, new TextEncoder().encode(JSON.stringify(reply) + "\n"));
  };
  try {
    if (request.type === "attach") {
      const o = owned.get(request.id);
      const state = readState(request.id);
      if (o === undefined || state?.status !== "running") {
        throw new UserError(
          state?.status === "running"
            ? `Container ${state.name} is not one of this supervisor's (started in the foreground, or by another build of mini-docker): cannot attach to it`
            : `You cannot attach to a stopped container ${request.id.slice(0, 12)}: start it first`,
          EXIT_FAILURE,
        );
      }
      await answer({ ok: true, id: request.id });
      o.clients.add(client);
      if (request.stdin) pumpInput(o, client);
      return;
    }
    const id = request.type === "run" ? await launchNew(request.container) : await launchExisting(
      request.id,
      request.attach === undefined ? undefined : {
        client,
        stdin: request.attach.stdin,
      },
    );
    await answer({ ok: true, id });
    if (request.type === "run" || request.attach === undefined) conn.close();
  } catch (err) {
    await answer({
      ok: false,
      message: err instanceof Error ? err.message : String(err),
      exitCode: err instanceof UserError ? err.exitCode : EXIT_ENGINE,
    }).catch(() => {});
    closeQuietly(conn);
  }
}

/** How to start a container: its stdio and what happens at its end. */
interface Launch {
  spec: ContainerSpec;
  meta: ContainerMeta;
  interactive: boolean;
  tty: boolean;
  autoRemove: boolean;
  defaultSeccomp?: boolean;
  existing: boolean;
}

/** `run -d`: a new container, supervised from now on. */
async function launchNew(c: NewContainer): Promise<string> {
  const o: Owned = {
    id: c.meta.id,
    clients: new Set(),
    stdinOnce: c.meta.config?.stdinOnce ?? false,
  };
  const started = await launch(o, { ...c, existing: false });
  superviseContainer(o, started);
  return started.started.state.id;
}

/**
 * `start`: a container that exists, from its saved spec. A client that attaches does so before
 * the container runs, so that it misses none of its output; its input goes in once it runs.
 */
async function launchExisting(
  id: string,
  attach: { client: Client; stdin: boolean } | undefined,
): Promise<string> {
  if (owned.has(id)) {
    throw new UserError(`Container ${id.slice(0, 12)} is already running`, EXIT_FAILURE);
  }
  const state = readState(id);
  if (state === undefined) throw new UserError(`No such container: ${id}`, EXIT_FAILURE);
  const config = containerConfig(state);
  const o: Owned = { id, clients: new Set(), stdinOnce: config.stdinOnce };
  if (attach !== undefined) o.clients.add(attach.client);
  owned.set(id, o); // a second start meanwhile is refused
  let started: Awaited<ReturnType<typeof launch>>;
  try {
    started = await launch(o, existingLaunch(state));
  } catch (err) {
    owned.delete(id);
    throw err;
  }
  if (attach?.stdin) pumpInput(o, attach.client);
  superviseContainer(o, started);
  return id;
}

/** How to start an existing container again: its saved spec and flags. */
function existingLaunch(state: ContainerState): Launch {
  const spec = JSON.parse(Deno.readTextFileSync(`${stateDir(state.id)}/config.json`));
  const config = containerConfig(state);
  return {
    spec,
    meta: {
      id: state.id,
      name: state.name,
      image: state.image,
      imageRef: state.imageRef,
      rootfs: state.rootfs,
      command: state.command,
      config: state.config,
    },
    interactive: config.openStdin,
    tty: config.tty,
    autoRemove: state.autoRemove,
    existing: true,
  };
}

/** Starts the container with pipes (or a terminal) for its stdio, and copies its output. */
async function launch(o: Owned, l: Launch): Promise<{ started: Started; pumps: Promise<void> }> {
  // The container's stdio: pipes to its log (and an open stdin with -i), or a terminal.
  const nullFd = libc.open("/dev/null", libc.O_RDWR | libc.O_CLOEXEC);
  const input = l.interactive && !l.tty ? libc.pipe() : undefined;
  const output = l.tty ? undefined : [libc.pipe(), libc.pipe()];
  const childEnds = [input?.[0] ?? nullFd, output?.[0]?.[1] ?? nullFd, output?.[1]?.[1] ?? nullFd];
  let started: Started;
  let pty: number | undefined;
  try {
    started = await startContainer(l.spec, l.meta, {
      thread: takeThread(),
      stdio: l.tty ? "tty" : [childEnds[0]!, childEnds[1]!, childEnds[2]!],
      onPty: (master) => {
        // Nobody's terminal to follow: the size of a classic one.
        libc.setWindowSize(master, { rows: 24, cols: 80 });
        pty = master;
      },
      dieWithParent: false,
      autoRemove: l.autoRemove,
      defaultSeccomp: l.defaultSeccomp,
      detached: true,
      existing: l.existing,
    });
  } catch (err) {
    if (pty !== undefined) libc.close(pty);
    for (const fd of [nullFd, ...(input ?? []), ...(output?.flat() ?? [])]) libc.close(fd);
    throw err;
  }
  // The container has its own copies of its ends.
  libc.close(nullFd);
  if (input !== undefined) libc.close(input[0]);
  for (const pair of output ?? []) libc.close(pair[1]);
  o.input = input?.[1] ?? (l.interactive ? pty : undefined);
  owned.set(o.id, o);

  const logs = new LogWriter(logPath(o.id));
  const copy = (fd: number, stream: Stream) =>
    readUntilEnd(fd, (chunk) => {
      logs.write(stream, chunk);
      for (const client of o.clients) send(client, stream === "stderr" ? STDERR : STDOUT, chunk);
    });
  const pumps = pty !== undefined
    ? [copy(pty, "stdout")]
    : [copy(output![0]![0], "stdout"), copy(output![1]![0], "stderr")];
  const done = Promise.allSettled(pumps).then(() => {
    logs.close();
    if (pty !== undefined) libc.close(pty);
    for (const pair of output ?? []) libc.close(pair[0]);
  });
  return { started, pumps: done };
}

/**
 * Waits for the container's end, tells its clients, and starts it again when its restart policy
 * says so (Docker's rules: `always` and `unless-stopped` unless a user stopped it, `on-failure`
 * after a non-zero exit, at most N times; 100 ms before the first restart, doubled each time up
 * to a minute, back to 100 ms after a run of 10 s).
 */
async function superviseContainer(
  o: Owned,
  first: { started: Started; pumps: Promise<void> },
): Promise<void> {
  busy++;
  let current = first;
  let delay = FIRST_RESTART_DELAY_MS;
  try {
    for (;;) {
      const final = await current.started.finish();
      await current.pumps;
      if (o.input !== undefined) {
        libc.close(o.input);
        o.input = undefined;
      }
      if (final.oomKilled) log(`container ${o.id}: the OOM killer killed a process in it`);
      for (const client of [...o.clients]) detach(o, client, final.exitCode ?? 255);
      const ran = Date.parse(final.finishedAt ?? "") - Date.parse(final.startedAt ?? "");
      if (ran >= RESTART_RESET_MS) delay = FIRST_RESTART_DELAY_MS;
      if (final.autoRemove || !(await restartDue(o.id, delay))) return;
      delay = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
      const state = readState(o.id);
      if (state === undefined || state.status !== "restarting") return;
      try {
        current = await launch(o, existingLaunch(state));
      } catch (err) {
        log(`container ${o.id}: restart failed: ${err instanceof Error ? err.message : err}`);
        return;
      }
    }
  } finally {
    owned.delete(o.id);
    // Not restarted after all (stopped or removed meanwhile): nobody is responsible for it.
    releaseOwner(o.id);
    busy--;
  }
}

/**
 * Whether the container's restart policy starts it again after this end: if so, it is marked
 * "restarting" (with its restart count) for `delay` ms, during which `stop` or `rm` may still
 * cancel it.
 */
async function restartDue(id: string, delay: number): Promise<boolean> {
  const state = readState(id);
  if (state === undefined || state.status !== "exited") return false;
  const policy = containerConfig(state).restartPolicy;
  const count = state.restartCount ?? 0;
  const due = policy.name === "always" || policy.name === "unless-stopped"
    ? !state.manuallyStopped
    : policy.name === "on-failure" && state.exitCode !== 0 && !state.manuallyStopped &&
      (policy.maximumRetryCount === 0 || count < policy.maximumRetryCount);
  if (!due) return false;
  // This process stays responsible for it while it waits (reconcile keeps it "restarting").
  const marked = updateState(
    id,
    (s) =>
      s.status === "exited" && !s.manuallyStopped
        ? { ...s, status: "restarting", restartCount: count + 1, owner: processRef() }
        : s,
  );
  if (marked?.status !== "restarting") return false;
  const end = Date.now() + delay;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(100, end - Date.now())));
    const now = readState(id);
    if (now === undefined || now.status !== "restarting") return false; // stopped or removed
  }
  return true;
}
