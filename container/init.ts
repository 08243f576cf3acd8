/**
 * The init stage: mini-docker re-executed as PID 1 of the container's new PID namespace. It
 * turns itself into the container and ends in `execve`.
 *
 * Everything here is a synchronous call on the main thread. That matters: `unshare` and
 * `pivot_root` change only the calling thread, and Deno's other threads stay behind in the
 * host's namespaces, so nothing asynchronous may run once the recipe has started. Keep this
 * module's imports minimal: every import costs every container its start-up time.
 */
import type { ContainerSpec, Mount, Process } from "../base/spec.ts";
import { INIT_ENV, type InitConfig, type InitMessage } from "./protocol.ts";
import * as libc from "../base/libc.ts";
import { EXIT_CANNOT_INVOKE, EXIT_ENGINE, EXIT_NOT_FOUND } from "../base/errors.ts";
import { reap } from "./reaper.ts";

/** A failed step of the recipe, in the user's terms, with the exit code it deserves. */
export class StepError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT_ENGINE) {
    super(message);
  }
}

/** Runs `fn`; a failure becomes "<what>: <cause>". */
export function step<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new StepError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const NAMESPACE_FLAGS: Record<string, number> = {
  mount: libc.CLONE_NEWNS,
  uts: libc.CLONE_NEWUTS,
  ipc: libc.CLONE_NEWIPC,
  network: libc.CLONE_NEWNET,
  cgroup: libc.CLONE_NEWCGROUP,
};

/** Entry point of the init stage; never returns. */
export function init(): never {
  return runStage<InitConfig>(recipe);
}

/**
 * Runs a hidden stage: reads its configuration from INIT_ENV, connects to the parent's sync
 * socket (close-on-exec: its end tells the parent that execve succeeded), runs `body`, and
 * turns any failure into one InitMessage for the parent and the matching exit code.
 */
export function runStage<T extends { syncSocket: string }>(
  body: (config: T, sync: number) => never | Promise<never>,
): never {
  const raw = Deno.env.get(INIT_ENV);
  if (raw === undefined) {
    console.error("mini-docker: this stage is internal and is started by mini-docker itself");
    Deno.exit(EXIT_ENGINE);
  }
  let config: T & { deferred?: boolean } = JSON.parse(raw);
  let sync = -1;
  try {
    sync = step("Cannot reach mini-docker", () => libc.connectUnix(config.syncSocket));
    if (config.deferred) {
      // Started early (prespawned): the configuration comes over the socket, or nothing does
      // when the run did not need us after all.
      const line = libc.readLine(sync);
      if (line === "") Deno.exit(0);
      config = JSON.parse(line);
    }
    const pending = body(config, sync);
    // An asynchronous stage (the --init reaper) reports its own failures the same way.
    if (pending instanceof Promise) pending.catch((err) => fail(sync, err));
  } catch (err) {
    fail(sync, err);
  }
  return undefined as never;
}

/** Reports a failed stage to the parent (or to stderr) and exits with its code. */
function fail(sync: number, err: unknown): never {
  const message: InitMessage = {
    type: "error",
    exitCode: err instanceof StepError ? err.exitCode : EXIT_ENGINE,
    message: err instanceof Error ? err.message : String(err),
  };
  if (sync >= 0) {
    libc.writeAll(sync, new TextEncoder().encode(JSON.stringify(message) + "\n"));
  } else {
    console.error(`mini-docker: ${message.message}`);
  }
  Deno.exit(message.exitCode);
}

/** The recipe, in kernel order. Each line is one step; its comment says why. */
function recipe(config: InitConfig, sync: number): never | Promise<never> {
  const { spec } = config;
  // Die with mini-docker: a foreground container must not outlive the command that runs it.
  if (config.dieWithParent) libc.prctl(libc.PR_SET_PDEATHSIG, 9 /* SIGKILL */);
  // cgroup v1: this thread, which execs the command, joins the container's cgroup (the files
  // are the host's: before any namespace or mount).
  for (const file of config.cgroupTasks ?? []) {
    step("Cannot join the container's cgroup", () => Deno.writeTextFileSync(file, "0"));
  }
  // The PID namespace was entered at spawn; the others are created now, for this thread only.
  let flags = 0;
  for (const ns of spec.linux.namespaces) flags |= NAMESPACE_FLAGS[ns.type] ?? 0;
  step("Cannot create namespaces", () => libc.unshare(flags));
  // Hosts with systemd mark mounts shared: without this, our mounts would leak to the host and
  // pivot_root would fail with "Invalid argument".
  step("Cannot make / private", () => libc.mount("", "/", "", libc.MS_REC | libc.MS_PRIVATE));
  // Files created below get exactly the modes asked for.
  libc.umask(0);
  const root = spec.root.path;
  step("Cannot assemble the root filesystem", () => assembleRoot(spec));
  for (const m of spec.mounts) {
    step(`Cannot mount ${m.type} on "${m.destination}"`, () => mountInto(root, m));
  }
  step("Cannot create devices", () => createDevices(spec));
  if (spec.linux.namespaces.some((ns) => ns.type === "network")) {
    step("Cannot bring up the loopback interface", () => libc.interfaceUp("lo"));
  }
  step("Cannot set the hostname", () => libc.sethostname(spec.hostname));
  // pivot_root, not chroot: the old root is detached, so there is no way back to the host.
  step("Cannot pivot to the new root", () => pivot(root));
  // Hide what the kernel should not show a container, once the paths are the container's.
  for (const path of spec.linux.maskedPaths) step(`Cannot mask "${path}"`, () => mask(path));
  for (const path of spec.linux.readonlyPaths) {
    step(`Cannot make "${path}" read-only`, () => remountReadonly(path, true));
  }
  if (spec.root.readonly) step("Cannot make / read-only", () => remountReadonly("/", false));
  // -t: a terminal of the container's own devpts, so that its name resolves inside.
  if (config.tty) step("Cannot create the terminal", () => openTerminal(sync));
  libc.umask(0o022);
  // Working directory: created if missing, as Docker does.
  step(`Cannot use working directory "${spec.process.cwd}"`, () => {
    Deno.mkdirSync(spec.process.cwd, { recursive: true, mode: 0o755 });
    libc.chdir(spec.process.cwd);
  });
  // Set up: the command starts once the parent has moved us into the cgroup (protocol.ts).
  if (config.cgroupTasks === undefined) waitForGo(sync);
  if (config.reaper) {
    const path = becomeUser(spec.process);
    return reap(path, spec.process, sync).catch((err) => {
      throw execError(err);
    });
  }
  execProcess(spec.process);
}

/** Switches to the process's user and finds its command; returns the command's path. */
function becomeUser(process: Process): string {
  // Nothing of ours or of whoever started us may cross into the container: no file
  // descriptor, and no ignored signal (ignored stays ignored across execve, and Deno ignores
  // SIGPIPE: `yes | head -1` would print "Broken pipe" instead of ending quietly).
  libc.closeExtraFdsOnExec();
  libc.resetIgnoredSignals();
  const { uid, gid, additionalGids = [] } = process.user;
  step(`Cannot switch to user ${uid}:${gid}`, () => {
    libc.setgroups(additionalGids);
    libc.setresgid(gid);
    libc.setresuid(uid);
  });
  return resolveExecutable(process.args[0] ?? "", process.env);
}

/** exec's failure in Docker's terms: 127 when the file is missing, 126 when it cannot run. */
function execError(err: unknown): StepError {
  const code = err instanceof libc.SyscallError ? err.errno : 0;
  const reason = err instanceof Error ? err.message : String(err);
  return new StepError(reason, code === libc.ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_INVOKE);
}

/** The last steps of every stage: become the user, find the command, and execve it. */
export function execProcess(process: Process): never {
  const path = becomeUser(process);
  try {
    libc.execve(path, process.args, process.env);
  } catch (err) {
    const code = err instanceof libc.SyscallError ? err.errno : 0;
    const reason = err instanceof Error ? err.message : String(err);
    throw new StepError(reason, code === libc.ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_INVOKE);
  }
}

/**
 * Opens a pseudo-terminal in the current /dev (the container's), makes its slave the
 * controlling terminal of a new session and fds 0, 1 and 2, and hands the master to the parent
 * over the sync socket (the parent copies it with pidfd_getfd, then answers).
 */
export function openTerminal(sync: number): void {
  const { master, slave } = libc.openPty();
  libc.setsid();
  const fd = libc.open(slave, libc.O_RDWR);
  libc.setControllingTerminal(fd);
  for (const target of [0, 1, 2]) libc.dup2(fd, target);
  if (fd > 2) libc.close(fd);
  const message: InitMessage = { type: "pty", fd: master };
  libc.writeAll(sync, new TextEncoder().encode(JSON.stringify(message) + "\n"));
  if (libc.readLine(sync).trim() !== "ok") throw new Error("mini-docker did not take the terminal");
  libc.close(master);
}

/**
 * Tells the parent that the container is set up, and waits for its "go": it comes once the
 * cgroup holds us, so that no instruction of the container's command runs unlimited. The end
 * of the stream instead (the run was cancelled) ends us quietly.
 */
function waitForGo(sync: number): void {
  const message: InitMessage = { type: "ready" };
  libc.writeAll(sync, new TextEncoder().encode(JSON.stringify(message) + "\n"));
  if (libc.readLine(sync).trim() !== "go") Deno.exit(0);
}

/** Mounts the container's root at `spec.root.path`: overlayfs of layers, or a bind of one dir. */
function assembleRoot(spec: ContainerSpec): void {
  const root = spec.root.path;
  const layers = spec.rootLayers;
  if (layers === undefined || (layers.lower.length === 1 && layers.upper === undefined)) {
    // One read-only directory (or root.path itself) becomes a mount point.
    libc.mount(layers?.lower[0] ?? root, root, "", libc.MS_BIND | libc.MS_REC);
    return;
  }
  let lower = layers.lower;
  // mount(2) takes one page of options: with many layers, name them relative to their common
  // directory (overlayfs resolves them against the caller's working directory, as Docker does).
  const base = commonDir(lower);
  if (lower.join(":").length > 3000 && base !== "") {
    libc.chdir(base);
    lower = lower.map((l) => l.slice(base.length + 1));
  }
  const data = layers.upper === undefined
    ? `lowerdir=${lower.join(":")}`
    : `lowerdir=${lower.join(":")},upperdir=${layers.upper},workdir=${layers.work}`;
  libc.mount("overlay", root, "overlay", layers.upper === undefined ? libc.MS_RDONLY : 0, data);
  libc.chdir("/");
}

function commonDir(paths: string[]): string {
  let base = paths[0]?.slice(0, paths[0].lastIndexOf("/")) ?? "";
  while (base !== "" && !paths.every((p) => p.startsWith(`${base}/`))) {
    base = base.slice(0, base.lastIndexOf("/"));
  }
  return base;
}

const MOUNT_FLAGS: Record<string, [set: boolean, flag: number]> = {
  ro: [true, libc.MS_RDONLY],
  rw: [false, libc.MS_RDONLY],
  nosuid: [true, libc.MS_NOSUID],
  suid: [false, libc.MS_NOSUID],
  nodev: [true, libc.MS_NODEV],
  dev: [false, libc.MS_NODEV],
  noexec: [true, libc.MS_NOEXEC],
  exec: [false, libc.MS_NOEXEC],
  noatime: [true, libc.MS_NOATIME],
  strictatime: [true, libc.MS_STRICTATIME],
  bind: [true, libc.MS_BIND],
  rbind: [true, libc.MS_BIND | libc.MS_REC],
};

/** Splits mount(8) option words into mount(2) flags and the filesystem's data string. */
export function parseMountOptions(options: readonly string[]): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const option of options) {
    const known = MOUNT_FLAGS[option];
    if (known === undefined) data.push(option);
    else if (known[0]) flags |= known[1];
    else flags &= ~known[1];
  }
  return { flags, data: data.join(",") };
}

/** One entry of spec.mounts, under the container's root (before pivot_root). */
function mountInto(root: string, m: Mount): void {
  const target = secureJoin(root, m.destination);
  const { flags, data } = parseMountOptions(m.options);
  if (flags & libc.MS_BIND) {
    const isDir = Deno.statSync(m.source).isDirectory;
    ensureMountPoint(target, isDir);
    libc.mount(m.source, target, "", flags & (libc.MS_BIND | libc.MS_REC));
    // Bind mounts ignore other flags until remounted.
    const rest = flags & ~(libc.MS_BIND | libc.MS_REC);
    if (rest !== 0) libc.mount("", target, "", libc.MS_REMOUNT | libc.MS_BIND | rest);
  } else {
    ensureMountPoint(target, true);
    libc.mount(m.source, target, m.type, flags, data);
  }
}

function ensureMountPoint(path: string, dir: boolean): void {
  try {
    Deno.lstatSync(path);
  } catch {
    if (dir) Deno.mkdirSync(path, { recursive: true, mode: 0o755 });
    else Deno.writeFileSync(path, new Uint8Array(), { mode: 0o644 });
  }
}

/**
 * `root` + `path`, resolving symlinks as if `root` were `/`, so that a symlink in an image
 * (`/etc/hostname -> /etc/shadow`) can never send a mount or a mkdir to the host.
 */
export function secureJoin(root: string, path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  const resolved: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = `${root}/${[...resolved, part].join("/")}`;
    let link: string | undefined;
    try {
      if (Deno.lstatSync(candidate).isSymlink) link = Deno.readLinkSync(candidate);
    } catch {
      // Missing components are created later, as directories.
    }
    if (link === undefined) {
      resolved.push(part);
      continue;
    }
    if (++hops > 40) throw new Error(`too many levels of symbolic links in "${path}"`);
    if (link.startsWith("/")) resolved.length = 0;
    parts.unshift(...link.split("/").filter((p) => p !== "" && p !== "."));
  }
  return `${root}/${resolved.join("/")}`;
}

/** OCI linux.devices plus the standard /dev symlinks. */
function createDevices(spec: ContainerSpec): void {
  const root = spec.root.path;
  for (const d of spec.linux.devices) {
    const path = secureJoin(root, d.path);
    const kind = d.type === "b" ? libc.S_IFBLK : d.type === "p" ? libc.S_IFIFO : libc.S_IFCHR;
    try {
      libc.mknod(path, kind | d.fileMode, libc.makedev(d.major, d.minor));
    } catch (err) {
      // The rootfs has its own node there (/dev is not a fresh tmpfs): ours replaces it.
      if (!(err instanceof libc.SyscallError && err.errno === libc.EEXIST)) throw err;
      Deno.removeSync(path);
      libc.mknod(path, kind | d.fileMode, libc.makedev(d.major, d.minor));
    }
    Deno.chownSync(path, d.uid, d.gid);
  }
  const links: [string, string][] = [
    ["/proc/self/fd", "fd"],
    ["/proc/self/fd/0", "stdin"],
    ["/proc/self/fd/1", "stdout"],
    ["/proc/self/fd/2", "stderr"],
    ["pts/ptmx", "ptmx"],
  ];
  const dev = secureJoin(root, "/dev");
  for (const [target, name] of links) {
    try {
      Deno.symlinkSync(target, `${dev}/${name}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
}

/** Makes `root` the root of this mount namespace and detaches the host's root. */
function pivot(root: string): void {
  // pivot_root(".", "."): the old root is stacked under the new one and detached at once, so
  // no directory for it is needed inside the container (the runc idiom).
  libc.chdir(root);
  libc.pivotRoot(".", ".");
  libc.umount2(".", libc.MNT_DETACH);
  libc.chdir("/");
}

function mask(path: string): void {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(path);
  } catch {
    return; // Nothing to hide.
  }
  if (stat.isDirectory) libc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY, "size=0k,mode=000");
  else libc.mount("/dev/null", path, "", libc.MS_BIND);
}

function remountReadonly(path: string, bindFirst: boolean): void {
  if (bindFirst) {
    try {
      Deno.statSync(path);
    } catch {
      return;
    }
    libc.mount(path, path, "", libc.MS_BIND | libc.MS_REC);
  }
  // A remount replaces the per-mount flags: keep nosuid/nodev/noexec on the /proc paths.
  const keep = bindFirst ? libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC : 0;
  libc.mount("", path, "", libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY | keep);
}

/** execvp's search, done before execve so that "not found" can be told from "cannot run". */
function resolveExecutable(name: string, env: readonly string[]): string {
  if (name === "") throw new StepError("No command given", EXIT_ENGINE);
  if (name.includes("/")) return name;
  const pathVar = env.find((e) => e.startsWith("PATH="))?.slice(5) ??
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const dir of pathVar.split(":")) {
    const candidate = `${dir === "" ? "." : dir}/${name}`;
    try {
      const st = Deno.statSync(candidate);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return candidate;
    } catch {
      // Not in this directory.
    }
  }
  throw new StepError(`exec: "${name}": executable file not found in $PATH`, EXIT_NOT_FOUND);
}
