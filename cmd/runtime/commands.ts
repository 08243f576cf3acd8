/**
 * The runtime's commands, runc's, over mini-docker's one engine (container/start.ts): `create`
 * starts the container as `run` does, but leaves its first process waiting at its gate (its
 * namespaces, root, cgroup, /proc and limits made; the user's command not run) and exits: the
 * process is then the child of whoever called us (containerd's shim is a subreaper). `start`
 * opens the gate. Each container's state is the engine's (`<root>/containers/<id>/state.json`
 * and its `config.json`, written under the store's lock), with `oci.json` beside it: the bundle
 * and the host directory behind its /proc, which `delete` removes.
 */
import { type ContainerSpec, type Process } from "../../base/spec.ts";
import { UserError } from "../../base/errors.ts";
import * as libc from "../../base/libc.ts";
import { absolutePath, exists, runRoot } from "../../base/paths.ts";
import { signalNumber } from "../../base/signals.ts";
import { timestamp } from "../../base/time.ts";
import { cgroupAt } from "../../cgroups/manager.ts";
import type { Cgroup } from "../../cgroups/manager.ts";
import {
  type ContainerState,
  isAlive,
  listStates,
  readState,
  removeState,
  stateDir,
  tagAlive,
  updateState,
  withLock,
} from "../../container/state.ts";
import { startContainer } from "../../container/start.ts";
import { ContainerThread } from "../../container/threads.ts";
import { releaseHeld } from "../../container/gate.ts";
import { releaseProc, removeProcDir } from "../../container/proc.ts";
import { type ProcPeer, releaseHostRoot } from "../../container/mounts.ts";
import { forwardSignals } from "../../container/forward.ts";
import { openRelay } from "../../container/tty.ts";
import { spawnInContainer } from "../../container/exec.ts";
import { readBundle, readResources } from "./config.ts";
import { HOOK_KINDS, hooksOf, runHooks, runHooksInContainer } from "./hooks.ts";
import { childExit } from "../../container/children.ts";
import { defaultSpec, features } from "./defaults.ts";
import { flag, type Globals, logLine, option, type Parsed, parseFlags } from "./main.ts";

/** What the runtime keeps beside the engine's state. */
interface OciRecord {
  bundle: string;
  proc: ProcPeer;
  /** config.json's hooks (the bundle may be gone by `delete`). */
  hooks?: unknown;
}

/** The OCI state of a container (runtime-spec runtime.md), as runc prints it. */
interface OciState {
  ociVersion: string;
  id: string;
  pid: number;
  status: "created" | "running" | "stopped" | "paused";
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

/** A container of this runtime, as read from its root. */
interface Loaded {
  state: ContainerState;
  record: OciRecord;
  spec: ContainerSpec;
  status: OciState["status"];
}

const ID = /^[\w+.-]+$/;

function checkId(id: string | undefined, command: string): string {
  if (id === undefined || id === "") {
    throw new UserError(`${command}: "${command}" requires a container id`, 1);
  }
  if (!ID.test(id) || id === "." || id === "..") {
    throw new UserError(`invalid id format: ${id}`, 1);
  }
  return id;
}

/** The container `id`, or undefined when this root has none of that id. */
function find(id: string): Loaded | undefined {
  const state = readState(id);
  if (state === undefined) return undefined;
  let record: OciRecord;
  let spec: ContainerSpec;
  try {
    record = JSON.parse(Deno.readTextFileSync(`${stateDir(id)}/oci.json`));
    spec = JSON.parse(Deno.readTextFileSync(`${stateDir(id)}/config.json`));
  } catch {
    return undefined; // being created (or not one of the runtime's)
  }
  return { state, record, spec, status: statusOf(state) };
}

function load(id: string): Loaded {
  const found = find(id);
  if (found === undefined) throw new UserError("container does not exist", 1);
  return found;
}

/** The OCI status: a process that is gone (or a zombie nobody reaped yet) has stopped. */
function statusOf(state: ContainerState): OciState["status"] {
  if (state.status === "created") return isAlive(state.process) ? "created" : "stopped";
  if (state.status === "running" && isAlive(state.process)) {
    return state.paused ? "paused" : "running";
  }
  return "stopped";
}

function ociState(c: Loaded): OciState {
  const annotations = c.spec.annotations ?? {};
  return {
    ociVersion: "1.0.2",
    id: c.state.id,
    pid: c.status === "stopped" ? 0 : c.state.process?.pid ?? 0,
    status: c.status,
    bundle: c.record.bundle,
    rootfs: c.spec.root.path,
    created: c.state.created,
    owner: "",
    ...(Object.keys(annotations).length > 0 && { annotations }),
  };
}

function cgroupOf(c: Loaded): Cgroup | undefined {
  const { driver, name } = cgroupAt(c.spec.linux.cgroupsPath);
  return driver.open(name);
}

/** Writes the pid file atomically, as runc does (no newline). */
function writePidFile(path: string | undefined, pid: number): void {
  if (path === undefined) return;
  const file = absolutePath(path);
  const tmp = `${file.slice(0, file.lastIndexOf("/"))}/.${file.slice(file.lastIndexOf("/") + 1)}`;
  Deno.writeTextFileSync(tmp, String(pid));
  Deno.renameSync(tmp, file);
}

/** Runs `command`; returns the exit code. */
export async function dispatch(g: Globals, command: string, args: string[]): Promise<number> {
  switch (command) {
    case "spec":
      return spec(args);
    case "features":
      console.log(JSON.stringify(features(), null, "    "));
      return 0;
    case "create":
      return await create(g, args, false);
    case "run":
      return await create(g, args, true);
    case "start":
      return await start(g, args);
    case "state":
      return state(args);
    case "kill":
      return await kill(args);
    case "delete":
      return await remove(g, args);
    case "list":
      return list(args);
    case "ps":
      return await ps(args);
    case "pause":
    case "resume":
      return await freeze(args, command);
    case "exec":
      return await exec(args);
    case "update":
      return await update(args);
    case "events":
      return await events(args);
    case "checkpoint":
    case "restore":
      throw new UserError(`"${command}" is not supported by mini-docker's runtime yet`, 1);
    default:
      throw new UserError(`No help topic for '${command}'`, 1);
  }
}

function spec(args: string[]): number {
  const p = parseFlags(args, {
    values: ["bundle"],
    booleans: ["rootless"],
    aliases: { b: "bundle" },
  }, "spec");
  if (flag(p, "rootless")) throw new UserError("spec: --rootless is not supported", 1);
  const dir = option(p, "bundle") ?? ".";
  const path = `${dir}/config.json`;
  try {
    Deno.lstatSync(path);
    throw new UserError("File config.json exists. Remove it first.", 1);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  Deno.writeTextFileSync(path, JSON.stringify(defaultSpec(), null, "\t"));
  return 0;
}

const CREATE_FLAGS = {
  values: ["bundle", "pid-file", "console-socket", "preserve-fds"],
  booleans: ["no-pivot", "no-new-keyring", "detach", "no-subreaper", "keep"],
  aliases: { b: "bundle", d: "detach" },
};

/** `create`, and `run` (= create, start, wait for it, delete it; `--detach`: no wait). */
async function create(g: Globals, args: string[], run: boolean): Promise<number> {
  const command = run ? "run" : "create";
  const p = parseFlags(args, CREATE_FLAGS, command);
  const id = checkId(p.positionals[0], command);
  refuseCreateFlags(p, run);
  const engineOptions = createOptions(p);
  const bundle = absolutePath(option(p, "bundle") ?? ".");
  const consoleSocket = option(p, "console-socket");
  const detach = !run || flag(p, "detach");
  // Nothing is made before the whole config.json has been read and accepted.
  const { spec, warnings, raw } = readBundle(bundle, id);
  if (engineOptions.noPivot && spec.linux.namespaces.some((ns) => ns.type === "user")) {
    // Its first process is born before the move, and only pivot_root moves a process's root.
    throw new UserError("--no-pivot cannot be used with a user namespace in mini-docker", 1);
  }
  const size = consoleSize(raw.process?.consoleSize);
  for (const w of warnings) logLine(g, "warning", w);
  const hooks = raw.hooks;
  const hooked = HOOK_KINDS.some((kind) => hooksOf(hooks, kind).length > 0);
  // In the foreground without a console socket, the terminal is relayed to ours (runc's too).
  const relayed = run && !detach && !hooked && consoleSocket === undefined;
  if (spec.process.terminal && consoleSocket === undefined && !relayed) {
    throw new UserError(
      run && !detach
        ? "process.terminal with hooks needs --console-socket in mini-docker's runtime"
        : "cannot allocate tty if runc will detach without setting console socket",
      1,
    );
  }
  if (!spec.process.terminal && consoleSocket !== undefined) {
    throw new UserError("cannot use console socket if runc will not detach or allocate tty", 1);
  }
  if (find(id) !== undefined || exists(stateDir(id))) {
    throw new UserError(`container with id exists: ${id}`, 1);
  }
  // Connected first: a socket that is not there fails before anything is made.
  using console = consoleSocket === undefined ? undefined : connectConsole(consoleSocket);
  const thread = ContainerThread.start();
  let ptyProblem: Error | undefined;
  const onPty = (master: number) => {
    try {
      if (size !== undefined) libc.setWindowSize(master, size);
      libc.sendFd(console!.fd, master, "/dev/ptmx");
    } catch (err) {
      ptyProblem = err as Error;
    } finally {
      libc.close(master);
    }
  };
  const meta = { id, name: id, command: spec.process.args };
  if (!detach && !hooked) {
    // runc run in the foreground: our stdio is the container's; signals are forwarded; at its
    // end it is deleted, and its exit code is ours.
    using signals = forwardSignals();
    using pty = spec.process.terminal ? openRelay() : undefined;
    const started = await startContainer(spec, meta, {
      thread,
      stdio: pty !== undefined ? "tty" : "inherit",
      onPty: (master) => {
        if (size !== undefined) libc.setWindowSize(master, size);
        pty?.attach(master);
      },
      dieWithParent: false,
      autoRemove: true,
      detached: false,
      oci: true,
      ...engineOptions,
      onSpawn: (pid) => signals.attach(pid),
    });
    const record: OciRecord = { bundle, proc: started.proc };
    Deno.writeTextFileSync(`${stateDir(id)}/oci.json`, JSON.stringify(record) + "\n");
    writePidFile(option(p, "pid-file"), started.pid);
    const copied = pty?.relay();
    const final = await started.finish();
    await copied;
    return final.exitCode ?? 255;
  }
  const started = await startContainer(spec, meta, {
    thread,
    stdio: spec.process.terminal ? "tty" : "inherit",
    onPty,
    dieWithParent: false,
    autoRemove: false,
    detached: true,
    oci: true,
    ...engineOptions,
    holdAt: `${stateDir(id)}/gate`,
  });
  const record: OciRecord = { bundle, proc: started.proc, ...(hooked && { hooks }) };
  Deno.writeTextFileSync(`${stateDir(id)}/oci.json`, JSON.stringify(record) + "\n");
  if (ptyProblem !== undefined) {
    await destroy(load(id));
    throw new UserError(`cannot send the terminal to ${consoleSocket}: ${ptyProblem.message}`, 1);
  }
  // prestart and createRuntime: the namespaces exist, the command has not run.
  try {
    const creating = { ...ociState(load(id)), status: "creating" };
    await runHooks("prestart", hooksOf(hooks, "prestart"), creating);
    await runHooks("createRuntime", hooksOf(hooks, "createRuntime"), creating);
    const c = load(id);
    await runHooksInContainer(
      "createContainer",
      hooksOf(hooks, "createContainer"),
      creating,
      c.state,
      c.spec,
    );
  } catch (err) {
    await destroy(load(id));
    throw err;
  }
  writePidFile(option(p, "pid-file"), started.pid);
  if (!run) return 0;
  await startLoaded(g, load(id));
  if (detach) return 0;
  // In the foreground with hooks: the held start above, then wait for it, delete it.
  using signals = forwardSignals();
  signals.attach(started.pid);
  const end = await childExit(started.pid);
  await deleteLoaded(g, load(id));
  return end.code;
}

/** OCI `process.consoleSize` ({height, width}) as a window size. */
function consoleSize(v: unknown): { rows: number; cols: number } | undefined {
  const size = v as { height?: number; width?: number } | undefined;
  if (typeof size?.height !== "number" || typeof size?.width !== "number") return undefined;
  return { rows: size.height, cols: size.width };
}

/** The console socket (`--console-socket`), connected. */
function connectConsole(path: string): Disposable & { fd: number } {
  let fd: number;
  try {
    fd = libc.connectUnix(absolutePath(path));
  } catch (err) {
    throw new UserError(`cannot use --console-socket ${path}: ${(err as Error).message}`, 1);
  }
  return { fd, [Symbol.dispose]: () => libc.close(fd) };
}

/** runc's create options that reach the engine: --no-pivot, --no-new-keyring, --preserve-fds. */
function createOptions(p: Parsed) {
  const fds = option(p, "preserve-fds") ?? "0";
  const n = Number(fds);
  if (!/^\d+$/.test(fds) || n > 1000) {
    throw new UserError(`invalid --preserve-fds "${fds}": a count of descriptors from 3`, 1);
  }
  for (let fd = 3; fd < 3 + n; fd++) {
    // Not given by the caller: a descriptor of Deno's own (close-on-exec) or none.
    if (!libc.inheritedDescriptor(fd)) {
      throw new UserError(`--preserve-fds ${n}: descriptor ${fd} was not passed to the runtime`, 1);
    }
  }
  return {
    ...(flag(p, "no-pivot") && { noPivot: true }),
    ...(flag(p, "no-new-keyring") && { noNewKeyring: true }),
    ...(n > 0 && { preserveFds: n }),
  };
}

function refuseCreateFlags(p: Parsed, run: boolean): void {
  if (!run && (flag(p, "detach") || flag(p, "keep"))) {
    throw new UserError("create: flag provided but not defined: --detach/--keep", 1);
  }
  if (flag(p, "keep")) {
    throw new UserError("--keep is not supported: a foreground run deletes its container", 1);
  }
}

async function start(g: Globals, args: string[]): Promise<number> {
  const p = parseFlags(args, { values: [], booleans: [] }, "start");
  const c = load(checkId(p.positionals[0], "start"));
  await startLoaded(g, c);
  return 0;
}

async function startLoaded(g: Globals, c: Loaded): Promise<void> {
  if (c.status === "stopped") throw new UserError("cannot start a container that has stopped", 1);
  if (c.status !== "created") throw new UserError("cannot start an already running container", 1);
  const pid = c.state.process!.pid;
  // startContainer, in the container, before its command runs: a failure stops it.
  try {
    await runHooksInContainer(
      "startContainer",
      hooksOf(c.record.hooks, "startContainer"),
      ociState(c),
      c.state,
      c.spec,
    );
  } catch (err) {
    try {
      libc.kill(pid, 9);
    } catch { /* gone */ }
    throw err;
  }
  try {
    await releaseHeld(`${stateDir(c.state.id)}/gate`, pid);
  } catch (err) {
    throw new UserError(`cannot start container ${c.state.id}: ${(err as Error).message}`, 1);
  }
  updateState(c.state.id, (s) => ({ ...s, status: "running", startedAt: timestamp() }));
  // poststart: a failure is a warning, and the container goes on (the spec's rule).
  try {
    await runHooks("poststart", hooksOf(c.record.hooks, "poststart"), ociState(load(c.state.id)));
  } catch (err) {
    logLine(g, "warning", (err as Error).message);
  }
}

/** Removes a stopped (or created) container, then runs its poststop hooks (failures: warnings). */
async function deleteLoaded(g: Globals, c: Loaded): Promise<void> {
  const stopped = { ...ociState(c), status: "stopped", pid: 0 };
  await destroy(c);
  try {
    await runHooks("poststop", hooksOf(c.record.hooks, "poststop"), stopped);
  } catch (err) {
    logLine(g, "warning", (err as Error).message);
  }
}

function state(args: string[]): number {
  const p = parseFlags(args, { values: [], booleans: [] }, "state");
  const c = load(checkId(p.positionals[0], "state"));
  console.log(JSON.stringify(ociState(c), null, "  "));
  return 0;
}

async function kill(args: string[]): Promise<number> {
  const p = parseFlags(args, { values: [], booleans: ["all"], aliases: { a: "all" } }, "kill");
  const c = load(checkId(p.positionals[0], "kill"));
  const name = p.positionals[1] ?? "SIGTERM";
  const sig = signalNumber(name);
  if (sig === undefined) throw new UserError(`invalid signal "${name}"`, 1);
  if (c.status === "stopped") throw new UserError("container not running", 1);
  const pids = flag(p, "all") ? cgroupOf(c)?.pids() ?? [] : [c.state.process!.pid];
  for (const pid of pids) {
    try {
      libc.kill(pid, sig);
    } catch (err) {
      if ((err as libc.SyscallError).errno !== libc.ESRCH) throw err;
    }
  }
  // A frozen container gets SIGKILL at once (its cgroup is thawed, as runc does).
  if (sig === 9 && c.status === "paused") {
    await cgroupOf(c)?.thaw();
    updateState(c.state.id, (s) => ({ ...s, paused: false }));
  }
  return 0;
}

async function remove(g: Globals, args: string[]): Promise<number> {
  const p = parseFlags(
    args,
    { values: [], booleans: ["force"], aliases: { f: "force" } },
    "delete",
  );
  const id = checkId(p.positionals[0], "delete");
  const c = find(id);
  if (c === undefined) {
    // A create that was killed half-way leaves a state without its oci.json: --force removes it.
    if (flag(p, "force")) {
      await destroyPartial(id);
      return 0;
    }
    throw new UserError("container does not exist", 1);
  }
  if ((c.status === "running" || c.status === "paused") && !flag(p, "force")) {
    throw new UserError(`cannot delete container ${id} that is not stopped: ${c.status}`, 1);
  }
  await deleteLoaded(g, c);
  return 0;
}

/** Kills what is left of a container and removes its cgroup, /proc peer and state. */
async function destroy(c: Loaded): Promise<void> {
  if (c.status !== "stopped" && c.state.process !== undefined) {
    try {
      libc.kill(c.state.process.pid, 9);
    } catch { /* gone */ }
  }
  const cgroup = cgroupOf(c);
  // A create failing after its process was made (a hook, the console): on cgroup v1 its thread
  // still spawning that process is in the cgroup, which it leaves once the process is gone.
  for (let i = 0; i < 500 && cgroup?.pids().includes(Deno.pid); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  if (cgroup?.pids().includes(Deno.pid)) {
    throw new UserError(`cannot remove the cgroup of ${c.state.id}: this runtime is in it`, 1);
  }
  await cgroup?.destroy();
  removeProcDir(c.record.proc);
  releaseHostRoot(c.spec);
  withLock(() => removeState(c.state.id));
}

/**
 * What a killed `create` of `id` left: its first process (in its cgroup), its cgroup, its /proc
 * peer directories (named after the dead create) and its state.
 */
async function destroyPartial(id: string): Promise<void> {
  const state = readState(id);
  if (state === undefined) return;
  let spec: ContainerSpec | undefined;
  try {
    spec = JSON.parse(Deno.readTextFileSync(`${stateDir(id)}/config.json`));
  } catch { /* not written yet */ }
  const { driver, name } = cgroupAt(spec?.linux.cgroupsPath ?? state.cgroupsPath);
  await driver.open(name)?.destroy();
  if (spec !== undefined) releaseHostRoot(spec);
  try {
    for (const e of Deno.readDirSync(`${runRoot()}/proc`)) {
      if (e.name.endsWith(`-${id.slice(0, 16)}`) && !tagAlive(e.name)) {
        releaseProc({
          root: `${runRoot()}/proc/${e.name}`,
          dir: `${runRoot()}/proc/${e.name}/proc`,
        });
        removeProcDir({ root: `${runRoot()}/proc/${e.name}`, dir: "" });
      }
    }
  } catch { /* none */ }
  withLock(() => removeState(id));
}

function list(args: string[]): number {
  const p = parseFlags(args, {
    values: ["format"],
    booleans: ["quiet"],
    aliases: { f: "format", q: "quiet" },
  }, "list");
  const format = option(p, "format") ?? "table";
  const all = listStates().map((s) => find(s.id)).filter((c) => c !== undefined);
  if (flag(p, "quiet")) {
    for (const c of all) console.log(c.state.id);
    return 0;
  }
  if (format === "json") {
    console.log(JSON.stringify(all.map(ociState)));
    return 0;
  }
  if (format !== "table") throw new UserError(`invalid format option "${format}"`, 1);
  const rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]];
  for (const c of all) {
    const s = ociState(c);
    rows.push([s.id, String(s.pid), s.status, s.bundle, s.created, "root"]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((v, i) => v.padEnd(widths[i]! + 4)).join("").trimEnd());
  return 0;
}

async function ps(args: string[]): Promise<number> {
  const p = parseFlags(args, { values: ["format"], booleans: [], aliases: { f: "format" } }, "ps");
  const c = load(checkId(p.positionals[0], "ps"));
  const format = option(p, "format") ?? "table";
  if (c.status === "stopped") throw new UserError("container not running", 1);
  const pids = cgroupOf(c)?.pids() ?? [];
  if (format === "json") {
    console.log(JSON.stringify(pids));
    return 0;
  }
  if (format !== "table") throw new UserError(`invalid format option "${format}"`, 1);
  const psArgs = p.positionals.length > 1 ? p.positionals.slice(1) : ["-ef"];
  const out = await new Deno.Command("ps", { args: psArgs, stdout: "piped" }).output();
  const [header, ...lines] = new TextDecoder().decode(out.stdout).split("\n");
  const at = (header ?? "").trim().split(/\s+/).indexOf("PID");
  if (at < 0) throw new UserError("couldn't find PID field in ps output", 1);
  console.log(header);
  const wanted = new Set(pids);
  for (const line of lines) {
    if (wanted.has(Number(line.trim().split(/\s+/)[at]))) console.log(line);
  }
  return 0;
}

/** runc update's flags, and where each goes in OCI `linux.resources`. */
const UPDATE_FLAGS: Record<string, [string, string]> = {
  memory: ["memory", "limit"],
  "memory-swap": ["memory", "swap"],
  "memory-reservation": ["memory", "reservation"],
  "cpu-shares": ["cpu", "shares"],
  "cpu-period": ["cpu", "period"],
  "cpu-quota": ["cpu", "quota"],
  "cpuset-cpus": ["cpu", "cpus"],
  "cpuset-mems": ["cpu", "mems"],
  "pids-limit": ["pids", "limit"],
};

/**
 * `update [--resources FILE|-] [--memory N ...] ID`: new limits for a container's cgroup (what
 * containerd's shim runs for `ctr task update`). Device rules are not changed.
 */
async function update(args: string[]): Promise<number> {
  const p = parseFlags(args, {
    values: ["resources", ...Object.keys(UPDATE_FLAGS)],
    booleans: [],
    aliases: { r: "resources" },
  }, "update");
  const c = load(checkId(p.positionals[0], "update"));
  if (c.status === "stopped") throw new UserError("container not running", 1);
  // deno-lint-ignore no-explicit-any
  let doc: Record<string, any> = {};
  const file = option(p, "resources");
  if (file !== undefined) {
    const text = file === "-"
      ? await new Response(Deno.stdin.readable).text()
      : Deno.readTextFileSync(file);
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new UserError(`update: --resources is not JSON: ${(err as Error).message}`, 1);
    }
  }
  for (const [flagName, [group, field]] of Object.entries(UPDATE_FLAGS)) {
    const v = option(p, flagName);
    if (v === undefined) continue;
    const value = field === "cpus" || field === "mems" ? v : Number(v);
    if (typeof value === "number" && !Number.isInteger(value)) {
      throw new UserError(`update: invalid value for --${flagName}: ${v}`, 1);
    }
    doc[group] = { ...doc[group], [field]: value };
  }
  if (Array.isArray(doc.devices) && doc.devices.length > 0) {
    throw new UserError("update: linux.resources.devices: device rules cannot be changed", 1);
  }
  const resources = readResources(doc);
  const cgroup = cgroupOf(c);
  if (cgroup === undefined) throw new UserError("container not running", 1);
  cgroup.update(resources);
  // The spec keeps the limits in force (`state`, a later exec read it).
  const merged = { ...c.spec.linux.resources, ...resources };
  const spec = { ...c.spec, linux: { ...c.spec.linux, resources: merged } };
  Deno.writeTextFileSync(
    `${stateDir(c.state.id)}/config.json`,
    JSON.stringify(spec, null, 2) + "\n",
  );
  return 0;
}

/**
 * `events [--stats] [--interval 5s] ID`: runc's event stream, one JSON object a line: with
 * `--stats`, one `{"type":"stats","id":...,"data":{...}}` of the container's cgroup; else one
 * every interval, and `{"type":"oom","id":...}` when the kernel's OOM killer killed in it, until
 * the container has stopped.
 */
async function events(args: string[]): Promise<number> {
  const p = parseFlags(args, { values: ["interval"], booleans: ["stats"] }, "events");
  const c = load(checkId(p.positionals[0], "events"));
  const interval = parseInterval(option(p, "interval") ?? "5s");
  if (c.status === "stopped") {
    throw new UserError("container with id " + c.state.id + " is not running", 1);
  }
  const cgroup = cgroupOf(c);
  if (cgroup === undefined) throw new UserError("container not running", 1);
  const id = c.state.id;
  const statsEvent = () => JSON.stringify({ type: "stats", id, data: statsData(cgroup) });
  if (flag(p, "stats")) {
    console.log(statsEvent());
    return 0;
  }
  let ooms = cgroup.oomKills() ?? 0;
  const tick = Math.min(interval, 100);
  let due = 0;
  for (;;) {
    const now = find(id);
    if (now === undefined || now.status === "stopped") return 0;
    const seen = cgroup.oomKills() ?? ooms;
    if (seen > ooms) console.log(JSON.stringify({ type: "oom", id }));
    ooms = seen;
    if (due <= 0) {
      console.log(statsEvent());
      due = interval;
    }
    await new Promise((r) => setTimeout(r, tick));
    due -= tick;
  }
}

/** Go's duration as runc's --interval takes it ("5s", "500ms", "1m"), in milliseconds. */
function parseInterval(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const ms = m === null ? NaN : Number(m[1]) * unit[m[2] as keyof typeof unit];
  if (!(ms > 0)) {
    throw new UserError(`events: invalid --interval "${text}": such as 5s or 500ms`, 1);
  }
  return ms;
}

/** The cgroup's counters in runc's events shape (types.Stats; nanoseconds for CPU time). */
function statsData(cgroup: Cgroup): unknown {
  const s = cgroup.stats();
  const ns = (usec: number | undefined) => (usec ?? 0) * 1000;
  return {
    cpu: {
      usage: {
        total: ns(s.cpuUsageUsec),
        kernel: ns(s.cpuSystemUsec),
        user: ns(s.cpuUserUsec),
      },
      throttling: {
        periods: s.cpuPeriods ?? 0,
        throttledPeriods: s.cpuThrottledPeriods ?? 0,
        throttledTime: ns(s.cpuThrottledUsec),
      },
    },
    memory: {
      usage: {
        usage: s.memoryUsage ?? 0,
        max: s.memoryPeak ?? 0,
        limit: s.memoryLimit ?? 0,
      },
      ...(s.oomKills !== undefined && { oomKills: s.oomKills }),
    },
    pids: { current: s.pidsCurrent ?? 0 },
  };
}

async function freeze(args: string[], command: "pause" | "resume"): Promise<number> {
  const p = parseFlags(args, { values: [], booleans: [] }, command);
  const c = load(checkId(p.positionals[0], command));
  const cgroup = cgroupOf(c);
  if (cgroup === undefined) throw new UserError("container not running", 1);
  if (command === "pause") {
    if (c.status !== "running") throw new UserError("container not running", 1);
    await cgroup.freeze();
    updateState(c.state.id, (s) => ({ ...s, paused: true }));
  } else {
    if (c.status !== "paused") throw new UserError("container not paused", 1);
    await cgroup.thaw();
    updateState(c.state.id, (s) => ({ ...s, paused: false }));
  }
  return 0;
}

/**
 * `exec`: a process in a running container, from `--process FILE` (an OCI process object, as
 * containerd's shim writes it) or from the command line. With `--detach`, the runtime exits once
 * it runs (its pid in `--pid-file`): it is then the child of our caller; else its exit code is
 * ours.
 */
async function exec(args: string[]): Promise<number> {
  const p = parseFlags(args, {
    values: [
      "process",
      "pid-file",
      "console-socket",
      "cwd",
      "env",
      "user",
      "cap",
      "preserve-fds",
      "process-label",
      "apparmor",
    ],
    booleans: ["detach", "tty", "no-new-privs", "ignore-paused"],
    aliases: { p: "process", d: "detach", t: "tty", e: "env", u: "user", c: "cap" },
  }, "exec");
  const c = load(checkId(p.positionals[0], "exec"));
  const { preserveFds } = createOptions(p);
  for (const refused of ["process-label", "apparmor"]) {
    const v = option(p, refused);
    if (v !== undefined && v !== "" && v !== "0") {
      throw new UserError(`exec: --${refused} is not supported by mini-docker's runtime`, 1);
    }
  }
  if (c.status !== "running") {
    throw new UserError(`cannot exec in a ${c.status} container`, 1);
  }
  let process: Process;
  const file = option(p, "process");
  if (file !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(Deno.readTextFileSync(file));
    } catch (err) {
      throw new UserError(`exec: cannot read --process ${file}: ${(err as Error).message}`, 1);
    }
    // The process object read as config.json's (one reader, one set of refusals).
    const { toSpec } = await import("./config.ts");
    const probe = toSpec(
      { ...JSON.parse(Deno.readTextFileSync(`${c.record.bundle}/config.json`)), process: raw },
      c.record.bundle,
      c.state.id,
    );
    process = probe.process;
  } else {
    const command = p.positionals.slice(1);
    if (command.length === 0) throw new UserError("exec: no command given", 1);
    const env = new Map(c.spec.process.env.map((e) => [e.slice(0, e.indexOf("=")), e]));
    for (const e of p.options.get("env") ?? []) env.set(e.slice(0, e.indexOf("=")), e);
    const [uid, gid] = (option(p, "user") ?? "").split(":");
    const caps = p.options.get("cap") ?? [];
    const base = c.spec.process.capabilities;
    process = {
      ...c.spec.process,
      terminal: flag(p, "tty"),
      args: command,
      env: [...env.values()],
      cwd: option(p, "cwd") ?? c.spec.process.cwd,
      user: uid === undefined || uid === ""
        ? c.spec.process.user
        : { uid: Number(uid), gid: Number(gid ?? 0), additionalGids: [] },
      ...(flag(p, "no-new-privs") && { noNewPrivileges: true }),
      ...(caps.length > 0 && base !== undefined && {
        capabilities: {
          ...base,
          bounding: [...new Set([...base.bounding, ...caps])],
          effective: [...new Set([...base.effective, ...caps])],
          permitted: [...new Set([...base.permitted, ...caps])],
        },
      }),
    };
  }
  const consoleSocket = option(p, "console-socket");
  const detach = flag(p, "detach");
  if (process.terminal && consoleSocket === undefined) {
    throw new UserError(
      "cannot allocate tty if runc will detach without setting console socket",
      1,
    );
  }
  const spec: ContainerSpec = { ...c.spec, process };
  // Connected first: a socket that is not there fails before anything is made.
  using console = consoleSocket === undefined ? undefined : connectConsole(consoleSocket);
  const thread = ContainerThread.start();
  let ptyProblem: Error | undefined;
  try {
    const { pid, status } = await spawnInContainer(c.state, spec, {
      thread,
      stdio: process.terminal ? "tty" : "inherit",
      detach,
      ...(preserveFds !== undefined && {
        passFds: Array.from({ length: preserveFds }, (_, i) => 3 + i),
      }),
      onPty: (master) => {
        try {
          libc.sendFd(console!.fd, master, "/dev/ptmx");
        } catch (err) {
          ptyProblem = err as Error;
        } finally {
          libc.close(master);
        }
      },
    });
    if (ptyProblem !== undefined) {
      throw new UserError(
        `cannot send the terminal to ${consoleSocket}: ${(ptyProblem as Error).message}`,
        1,
      );
    }
    writePidFile(option(p, "pid-file"), pid);
    if (detach) return 0;
    using signals = forwardSignals();
    signals.attach(pid);
    return (await status).code;
  } finally {
    thread.end();
  }
}
