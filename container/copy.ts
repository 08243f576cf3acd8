/**
 * `cp` and `export`: files between a container and the host, and a container's filesystem as a
 * tar stream. The parent never touches a container's files itself: a copy thread
 * (copy_thread.ts) whose root is the container's does, so that no path of the container, and no
 * symlink a container process swaps in while the copy runs (Docker's CVE-2018-15664), can ever
 * resolve to the host; and the host's side of a copy is done by another copy thread whose root is
 * the host directory it reads or writes, so that nothing in an archive (a symlink, a `..`), nor a
 * symlink swapped into a host directory that a container shares, can reach past it. The two
 * threads meet at a pipe: one writes a tar stream, the other unpacks it. No process is started
 * and no code is loaded from the container (CVE-2019-14271).
 *
 * Paths follow `docker cp`'s rules: a SRC ending in `/.` copies a directory's contents; a DEST
 * that exists as a directory receives SRC under its own name; a DEST that does not exist is
 * created (its parent must exist); a file overwrites a file; a directory never overwrites a file;
 * `-` is a tar stream on stdin or stdout; `-L` follows SRC itself when it is a symlink, nothing
 * below it; `-a` keeps owners (else the receiving side's root, or the invoking user, owns them).
 */
import * as libc from "../base/libc.ts";
import type { ContainerSpec } from "../base/spec.ts";
import { EXIT_FAILURE, quote, UserError } from "../base/errors.ts";
import { absolutePath } from "../base/paths.ts";
import { type ContainerState, isAlive, stateDir } from "./state.ts";
import type { CopyJob, CopyReply, CopyRequest, Enter } from "./copy_thread.ts";
import { directoryIdentity, type PathStat } from "./copy_fs.ts";

/** `cp`'s options. */
export interface CopyOptions {
  /** `-a`: keep the owners of the source. */
  archive: boolean;
  /** `-L`: follow SRC when it is a symlink. */
  followLink: boolean;
}

/** What a copy did, for `cp`'s last line. */
export interface CopyResult {
  /** The tar stream's size in bytes (what Docker counts). */
  bytes: number;
}

/** A copy thread, booting or booted; one request at a time (exported for its tests). */
export class CopyThread implements Disposable {
  readonly #worker: Worker;
  #pending?: (reply: CopyReply) => void;
  readonly #booted: Promise<void>;

  private constructor() {
    this.#worker = new Worker(new URL("./copy_thread.ts", import.meta.url).href, {
      type: "module",
    });
    let booted!: () => void;
    this.#booted = new Promise((resolve) => booted = resolve);
    this.#worker.onmessage = (event: MessageEvent<CopyReply>) => {
      if (event.data.type === "booted") booted();
      else this.#pending?.(event.data);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#pending?.({ type: "failed", message: event.message, user: false });
    };
  }

  /** Starts a thread and puts its root where `how` says. */
  static async start(how: Enter): Promise<CopyThread> {
    // Nobody may look into this process through /proc while a thread of it is in a container.
    libc.prctl(libc.PR_SET_DUMPABLE, 0);
    const thread = new CopyThread();
    try {
      await thread.#booted;
      await thread.#request({ type: "enter", enter: how }, "Cannot enter the container");
    } catch (err) {
      thread[Symbol.dispose]();
      throw err;
    }
    return thread;
  }

  job(job: CopyJob): Promise<unknown> {
    return this.#request({ type: "job", job }, "Cannot copy");
  }

  async #request(request: CopyRequest, context: string): Promise<unknown> {
    const reply = await new Promise<CopyReply>((resolve) => {
      this.#pending = resolve;
      this.#worker.postMessage(request);
    });
    this.#pending = undefined;
    if (reply.type === "done") return reply.result;
    if (reply.type === "failed") {
      throw new UserError(
        reply.user ? reply.message : `${context}: ${reply.message}`,
        EXIT_FAILURE,
      );
    }
    throw new UserError(`${context}: the copy thread did not answer`, EXIT_FAILURE);
  }

  [Symbol.dispose](): void {
    this.#worker.terminate();
  }
}

/** A copy thread in the container: its mount namespace if it runs, else its layers mounted. */
async function containerThread(state: ContainerState, writable: boolean): Promise<CopyThread> {
  if (state.status === "running" && isAlive(state.process)) {
    const nsFd = openNamespace(state);
    if (nsFd !== undefined) {
      try {
        return await CopyThread.start({ kind: "container", nsFd });
      } finally {
        libc.close(nsFd);
      }
    }
  }
  return await CopyThread.start({ kind: "layers", spec: savedSpec(state), writable });
}

/** The container's mount namespace, opened while its first process is still the one recorded. */
function openNamespace(state: ContainerState): number | undefined {
  let fd: number;
  try {
    fd = libc.open(`/proc/${state.process!.pid}/ns/mnt`, libc.O_RDONLY | libc.O_CLOEXEC);
  } catch {
    return undefined; // it ended meanwhile
  }
  // Opened first, checked after: a PID reused meanwhile is not taken for the container's.
  if (!isAlive(state.process)) {
    libc.close(fd);
    return undefined;
  }
  return fd;
}

function savedSpec(state: ContainerState): ContainerSpec {
  let spec: ContainerSpec;
  try {
    spec = JSON.parse(Deno.readTextFileSync(`${stateDir(state.id)}/config.json`));
  } catch (err) {
    throw new UserError(
      `Container ${state.id.slice(0, 12)} has no saved configuration: ${describe(err)}`,
      EXIT_FAILURE,
    );
  }
  // A container that never started has no mount point and writable layer yet: made as its
  // start makes them (start.ts), in its own directory.
  for (const d of [spec.root.path, spec.rootLayers?.upper, spec.rootLayers?.work]) {
    if (d !== undefined) Deno.mkdirSync(d, { recursive: true, mode: 0o755 });
  }
  return spec;
}

/** A container path as `cp` reads it: relative to the container's root. */
function containerPath(path: string): string {
  return path.startsWith("/") ? path : `/${path}`;
}

/** What the path rules need to know of a source. */
interface Source {
  isDir: boolean;
  /** The name the source gets at its destination (the last component, as given). */
  base: string;
  /** `SRC/.` (or `/`): the directory's contents, not the directory. */
  contents: boolean;
}

/** What the path rules need to know of a destination. */
type Destination =
  | { exists: true; isDir: boolean; real: string }
  | { exists: false; parent: string | null };

/** Where the copy lands: an existing directory, and the source's name in it. */
interface Plan {
  dir: string;
  top: string;
}

function source(path: string, stat: PathStat): Source {
  // The name is the last component once `..` and `.` are applied ("/data/sub/.." is "data").
  const clean = lexical(path);
  return {
    isDir: stat.isDir,
    base: basename(clean) || ".",
    contents: /(^|\/)\.$/.test(path) || clean === "/",
  };
}

/** `path` with `.` and `..` applied to its text, as an absolute path. */
function lexical(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** Docker's rules (`docker cp --help`), for a destination `shown` as the user wrote it. */
function plan(src: Source, dest: Destination, shown: string, notFound: () => UserError): Plan {
  const trailingSlash = /\/\.?$/.test(shown);
  if (dest.exists) {
    if (dest.isDir) return { dir: dest.real, top: src.isDir && src.contents ? "." : src.base };
    if (src.isDir) {
      throw new UserError(
        `Cannot copy a directory to ${quote(shown)}: it exists and is not a directory`,
        EXIT_FAILURE,
      );
    }
    return { dir: dirname(dest.real), top: basename(dest.real) };
  }
  if (dest.parent === null) throw notFound();
  if (!src.isDir && trailingSlash) {
    throw new UserError(
      `Cannot copy to ${quote(shown)}: the destination directory must exist`,
      EXIT_FAILURE,
    );
  }
  return { dir: dest.parent, top: basename(lexical(shown)) || "." };
}

/** `cp CONTAINER:SRC DEST|-`. */
export async function copyFromContainer(
  state: ContainerState,
  ref: string,
  srcPath: string,
  destPath: string,
  options: CopyOptions,
): Promise<CopyResult> {
  const src = containerPath(srcPath);
  using thread = await containerThread(state, true);
  const stat = await thread.job({ op: "stat", path: src, follow: options.followLink }) as
    | PathStat
    | null;
  if (stat === null) {
    throw new UserError(`Could not find the file ${srcPath} in container ${ref}`, EXIT_FAILURE);
  }
  const from = source(src, stat);
  if (destPath === "-") {
    const top = from.isDir && from.contents ? "." : from.base;
    const bytes = await thread.job({
      op: "archive",
      path: src,
      follow: options.followLink,
      top,
      fd: 1,
    }) as number;
    return { bytes };
  }
  const dest = absolutePath(destPath);
  const where = plan(from, hostDestination(dest), destPath, () =>
    new UserError(
      `Cannot copy to ${quote(destPath)}: the directory ${quote(dirname(dest))} does not exist`,
      EXIT_FAILURE,
    ));
  // The directory, as its canonical path names it without following a symlink: if a component
  // is swapped for one before the host's thread has bound it (a volume a container shares),
  // the thread finds another directory and refuses.
  let identity: string;
  try {
    identity = directoryIdentity(where.dir);
  } catch (err) {
    throw new UserError(`Cannot copy to ${quote(destPath)}: ${describe(err)}`, EXIT_FAILURE);
  }
  using host = await CopyThread.start({ kind: "dir", path: where.dir, identity });
  return await pipeBetween(
    thread,
    { op: "archive", path: src, follow: options.followLink, top: where.top },
    host,
    { op: "extract", dir: "/", keepOwners: options.archive },
  );
}

/** `cp SRC|- CONTAINER:DEST`. */
export async function copyToContainer(
  srcPath: string,
  state: ContainerState,
  ref: string,
  destPath: string,
  options: CopyOptions,
): Promise<CopyResult> {
  const dest = containerPath(destPath);
  let from: Source | undefined;
  let src = "";
  if (srcPath !== "-") {
    src = absolutePath(srcPath) + (/(^|\/)\.$/.test(srcPath) ? "/." : "");
    let st: Deno.FileInfo;
    try {
      st = options.followLink ? Deno.statSync(src) : Deno.lstatSync(src);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new UserError(`lstat ${src}: no such file or directory`, EXIT_FAILURE);
      }
      throw new UserError(`Cannot copy ${quote(srcPath)}: ${describe(err)}`, EXIT_FAILURE);
    }
    if (srcPath.endsWith("/") && !st.isDirectory) {
      throw new UserError(`Cannot copy ${quote(srcPath)}: not a directory`, EXIT_FAILURE);
    }
    from = source(srcPath.startsWith("/") ? srcPath : `/${srcPath}`, {
      isDir: st.isDirectory,
      isSymlink: st.isSymlink,
    });
  }
  using thread = await containerThread(state, true);
  const found = await thread.job({ op: "destination", path: dest }) as Destination;
  const parentMissing = () =>
    new UserError(`Could not find the file ${dirname(dest)} in container ${ref}`, EXIT_FAILURE);
  if (from === undefined) {
    // A tar stream from stdin: DEST must be a directory of the container.
    if (!found.exists) {
      throw new UserError(`Could not find the file ${destPath} in container ${ref}`, EXIT_FAILURE);
    }
    if (!found.isDir) {
      throw new UserError(
        `Destination ${quote(`${ref}:${destPath}`)} must be a directory`,
        EXIT_FAILURE,
      );
    }
    await thread.job({ op: "extract", dir: found.real, fd: 0, keepOwners: options.archive });
    return { bytes: 0 };
  }
  const where = plan(from, found, destPath, parentMissing);
  // The host's side is read by a thread whose root is the source's directory (the directory
  // itself for `SRC/.`): a host directory that a container can write to (a volume) cannot have
  // a component swapped for a symlink that leads the copy to other host files.
  const top = src.endsWith("/.") ? src.slice(0, -2) || "/" : src;
  const real = options.followLink ? Deno.realPathSync(top) : top;
  let dir: string;
  let identity: string;
  try {
    dir = Deno.realPathSync(from.contents ? real : dirname(real));
    identity = directoryIdentity(dir);
  } catch (err) {
    throw new UserError(`Cannot copy ${quote(srcPath)}: ${describe(err)}`, EXIT_FAILURE);
  }
  const path = from.contents ? "/." : `/${basename(real)}`;
  using host = await CopyThread.start({ kind: "dir", path: dir, identity });
  return await pipeBetween(
    host,
    { op: "archive", path, follow: false, top: where.top },
    thread,
    { op: "extract", dir: where.dir, keepOwners: options.archive },
  );
}

/** A host destination, resolved on the host (the user's own symlinks are followed). */
function hostDestination(path: string): Destination {
  try {
    const st = Deno.statSync(path);
    return { exists: true, isDir: st.isDirectory, real: Deno.realPathSync(path) };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new UserError(`Cannot copy to ${quote(path)}: ${describe(err)}`, EXIT_FAILURE);
    }
  }
  try {
    const parent = dirname(path);
    return {
      exists: false,
      parent: Deno.statSync(parent).isDirectory ? Deno.realPathSync(parent) : null,
    };
  } catch {
    return { exists: false, parent: null };
  }
}

/** One thread archives into a pipe, the other extracts from it; the first failure is told. */
async function pipeBetween(
  writer: CopyThread,
  archiveJob: Omit<Extract<CopyJob, { op: "archive" }>, "fd">,
  reader: CopyThread,
  extractJob: Omit<Extract<CopyJob, { op: "extract" }>, "fd">,
): Promise<CopyResult> {
  const [r, w] = libc.pipe();
  const written = writer.job({ ...archiveJob, fd: w }).finally(() => libc.close(w));
  const read = reader.job({ ...extractJob, fd: r }).finally(() => libc.close(r));
  const [a, b] = await Promise.allSettled([written, read]);
  if (a.status === "rejected") {
    // Its reader went away: the reader's failure is the story.
    const readerFailed = b.status === "rejected";
    throw readerFailed && /reader went away/.test(String(a.reason)) ? b.reason : a.reason;
  }
  if (b.status === "rejected") throw b.reason;
  return { bytes: a.value as number };
}

/**
 * `export`: the container's filesystem (its layers, without what is mounted on it: volumes,
 * /proc, /sys, /dev) as a tar stream to `fd`.
 */
export async function exportContainer(state: ContainerState, fd: number): Promise<number> {
  using thread = await rootThread(state);
  return await thread.job({ op: "archive", path: "/", follow: false, top: "", fd }) as number;
}

/**
 * A copy thread whose root is the container's root filesystem alone: a running container's own
 * (a private copy of its mount namespace, every other mount of it detached), or a stopped one's
 * layers mounted read-only.
 */
async function rootThread(state: ContainerState): Promise<CopyThread> {
  if (state.status === "running" && isAlive(state.process)) {
    const nsFd = openNamespace(state);
    if (nsFd !== undefined) {
      try {
        const mounts = mountPoints(state.process!.pid);
        if (mounts !== undefined) return await CopyThread.start({ kind: "root", nsFd, mounts });
      } finally {
        libc.close(nsFd);
      }
    }
  }
  return await CopyThread.start({ kind: "layers", spec: savedSpec(state), writable: false });
}

/** The mount points of a process's mount namespace but its root, as paths of its own root. */
function mountPoints(pid: number): string[] | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/mountinfo`);
  } catch {
    return undefined; // it ended meanwhile
  }
  const points = text.split("\n").filter((l) => l !== "").map((line) =>
    // Field 5; spaces, tabs, newlines and backslashes are octal escapes.
    line.split(" ")[4]!.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))
  );
  return [...new Set(points)].filter((p) => p !== "/");
}

/**
 * `diff`: Docker's lines ("A /added", "C /changed", "D /deleted") for what the container's
 * writable layer changed, read in a copy thread where both layers are mounted read-only.
 */
export async function containerChanges(state: ContainerState): Promise<string[]> {
  const spec = savedSpec(state);
  using thread = await CopyThread.start({ kind: "changes", spec });
  const exclude = spec.mounts.map((m) => m.destination.replace(/\/+$/, ""));
  const changes = await thread.job({ op: "changes", exclude }) as [string, string][];
  return changes.map(([kind, path]) => `${kind} ${path}`);
}

/**
 * Runs `write(fd)` on a new file that becomes `path` only when it succeeds: a temporary file in
 * the same directory, renamed; removed on failure.
 */
export async function writeFileAtomically(
  path: string,
  write: (fd: number) => Promise<unknown>,
): Promise<void> {
  const abs = absolutePath(path);
  const temp = `${dirname(abs)}/.${basename(abs)}.mini-docker-${crypto.randomUUID().slice(0, 8)}`;
  let fd: number;
  try {
    fd = libc.open(temp, libc.O_WRONLY | libc.O_CREAT | O_EXCL | libc.O_CLOEXEC, 0o644);
  } catch (err) {
    throw new UserError(`Cannot write ${quote(path)}: ${describe(err)}`, EXIT_FAILURE);
  }
  try {
    try {
      await write(fd);
    } finally {
      libc.close(fd);
    }
    Deno.renameSync(temp, abs);
  } catch (err) {
    try {
      Deno.removeSync(temp);
    } catch { /* never made */ }
    throw err;
  }
}

const O_EXCL = 0o200;

function dirname(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  return slash <= 0 ? "/" : trimmed.slice(0, slash);
}

function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
