/**
 * The file work of `cp` and `export`, with synchronous calls only: it runs on a copy thread
 * (copy_thread.ts) whose root directory is the container's (or, for the host's side of a copy,
 * the destination directory), so every path it names, every symlink the kernel follows, and
 * every `..` resolves inside that root, as the kernel sees it at that instant. Asynchronous Deno
 * file APIs would run on other threads, whose root is the host's: none is used here.
 *
 * On top of that confinement, nothing is ever followed that need not be: a file is opened with
 * O_NOFOLLOW (and O_NONBLOCK, so that a FIFO swapped in cannot stall the copy) and checked to
 * be a regular file through its descriptor; entries are created with O_EXCL; an entry never goes
 * through a symlink (each parent is checked with lstat to be a real directory); `..` and hard
 * links out of the destination are refused.
 */
import { lchownSync, lutimesSync } from "node:fs";
import * as libc from "../base/libc.ts";
import { type TarEntry, TarReader } from "../images/tar.ts";
import { type TarHeader, TarWriter } from "../images/tar_writer.ts";

/** A copy that cannot go on: its message is for the user. */
export class CopyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CopyError";
  }
}

const ARM64 = libc.ARM64;
const SYS_STATX = ARM64 ? 291 : 332;
const SYS_FCHMOD = ARM64 ? 52 : 91;
const SYS_FCHOWN = ARM64 ? 55 : 93;
const O_NOFOLLOW = ARM64 ? 0o100000 : 0o400000;
const O_EXCL = 0o200;
const AT_EMPTY_PATH = 0x1000;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const CHUNK = 256 * 1024;

/** What the copy's other side needs to know of a path. */
export interface PathStat {
  isDir: boolean;
  isSymlink: boolean;
}

/** `lstat` (or `stat` with `follow`) of a path in this thread's root; null when missing. */
export function statPath(path: string, follow: boolean): PathStat | null {
  try {
    const st = follow ? Deno.statSync(path) : Deno.lstatSync(path);
    return { isDir: st.isDirectory, isSymlink: st.isSymlink };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw err;
  }
}

/**
 * Where a destination path is in this thread's root: its real path (symlinks resolved inside
 * the root) when it exists, else its parent's, which must be a directory (null otherwise).
 */
export function resolveDestination(
  path: string,
): { exists: true; isDir: boolean; real: string } | { exists: false; parent: string | null } {
  try {
    const st = Deno.statSync(path);
    return { exists: true, isDir: st.isDirectory, real: Deno.realPathSync(path) };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) {
      throw err;
    }
  }
  const parent = dirname(path);
  try {
    const st = Deno.statSync(parent);
    return { exists: false, parent: st.isDirectory ? Deno.realPathSync(parent) : null };
  } catch {
    return { exists: false, parent: null };
  }
}

/** What `archive` is asked for. */
export interface ArchiveJob {
  /** The path to archive, in this thread's root. */
  path: string;
  /** `-L`: follow `path` itself when it is a symlink (never anything below it). */
  follow: boolean;
  /**
   * The name of `path` in the archive: its children are `<top>/<name>`. "." puts the children
   * at the top (`SRC/.`); "" too, without an entry for `path` itself (`export`).
   */
  top: string;
  /** The descriptor the archive is written to (a pipe, stdout, a file). */
  fd: number;
}

/** Writes the tree at `job.path` as a tar stream to `job.fd`; returns the bytes written. */
export async function archive(job: ArchiveJob): Promise<number> {
  let written = 0;
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      try {
        libc.writeAll(job.fd, new Uint8Array(chunk));
      } catch (err) {
        if (err instanceof libc.SyscallError && err.errno === EPIPE) {
          throw new CopyError("the archive's reader went away");
        }
        throw err;
      }
      written += chunk.byteLength;
    },
  });
  const tar = new TarWriter(sink);
  const links = new Map<string, string>();
  // -L: what the path names now, resolved in this root; below it, nothing is followed.
  const path = job.follow ? Deno.realPathSync(job.path) : job.path;
  const st = Deno.lstatSync(path);
  if (job.top !== "") await addEntry(tar, path, job.top, st, links);
  if (st.isDirectory) await addChildren(tar, path, job.top, links);
  await tar.close();
  return written;
}

const EPIPE = 32;

/**
 * Kernel filesystems (proc, sysfs, devpts, mqueue, cgroup, ...) mounted in a running container:
 * not its files, and not a tree a tar can hold (sizes that lie, links that name processes).
 * Docker's cp does not see them either; their mount points are copied empty.
 */
const PSEUDO_FS = new Set([
  0x9fa0, // proc
  0x62656572, // sysfs
  0x1cd1, // devpts
  0x19800202, // mqueue
  0x27e0eb, // cgroup
  0x63677270, // cgroup2
  0x73636673, // securityfs
  0x64626720, // debugfs
  0x74726163, // tracefs
  0xcafe4a11, // bpf
  0x42494e4d, // binfmt_misc
]);
const SYS_STATFS = ARM64 ? 43 : 137;

function isPseudoFs(dir: string): boolean {
  const buf = new Uint8Array(120);
  if (libc.rawSyscall(SYS_STATFS, libc.cstr(dir), buf) < 0) return false;
  return PSEUDO_FS.has(Number(new DataView(buf.buffer).getBigUint64(0, true)));
}

async function addChildren(
  tar: TarWriter,
  dir: string,
  name: string,
  links: Map<string, string>,
): Promise<void> {
  if (isPseudoFs(dir)) return;
  let entries: string[];
  try {
    entries = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch (err) {
    // Swapped for something else since it was listed: what is there now is not a directory.
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return;
    throw err;
  }
  for (const child of entries) {
    const path = dir === "/" ? `/${child}` : `${dir}/${child}`;
    const childName = name === "" || name === "." ? child : `${name}/${child}`;
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue; // removed meanwhile
      throw err;
    }
    if (st.isSocket) continue; // tar cannot hold one (Docker skips them too)
    await addEntry(tar, path, childName, st, links);
    if (st.isDirectory) await addChildren(tar, path, childName, links);
  }
}

async function addEntry(
  tar: TarWriter,
  path: string,
  name: string,
  st: Deno.FileInfo,
  links: Map<string, string>,
): Promise<void> {
  const header: TarHeader = {
    path: name,
    type: "file",
    mode: (st.mode ?? 0o644) & 0o7777,
    uid: st.uid ?? 0,
    gid: st.gid ?? 0,
    mtime: Math.floor((st.mtime?.getTime() ?? 0) / 1000),
  };
  const capability = securityCapability(path);
  if (capability !== null) header.xattrs = new Map([["security.capability", capability]]);
  if (st.isDirectory) return tar.add({ ...header, type: "dir" });
  if (st.isSymlink) return tar.add({ ...header, type: "symlink", linkpath: readLink(path) });
  if (st.isFifo) return tar.add({ ...header, type: "fifo" });
  if (st.isCharDevice || st.isBlockDevice) {
    const rdev = st.rdev ?? 0;
    return tar.add({
      ...header,
      type: st.isCharDevice ? "chardev" : "blockdev",
      devmajor: (rdev >>> 8) & 0xfff,
      devminor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00),
    });
  }
  // A file with other names: the first one archived carries the data, the others link to it.
  if ((st.nlink ?? 1) > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) return tar.add({ ...header, type: "hardlink", linkpath: first });
    links.set(key, name);
  }
  const fd = openRegular(path);
  try {
    const size = fdSize(fd);
    await tar.add({ ...header, size }, fileBody(fd, size, path));
  } finally {
    libc.close(fd);
  }
}

function readLink(path: string): string {
  try {
    return Deno.readLinkSync(path);
  } catch (err) {
    throw new CopyError(`Cannot read the symbolic link "${path}": ${describe(err)}`);
  }
}

function securityCapability(path: string): Uint8Array | null {
  try {
    return libc.lgetxattr(path, "security.capability");
  } catch {
    return null;
  }
}

/**
 * Opens a file that lstat said is regular: never through a symlink at its last component
 * (O_NOFOLLOW), never blocking on a FIFO (O_NONBLOCK), and checked through the descriptor to
 * be a regular file still, so that a path swapped meanwhile for a link or a device is refused.
 */
function openRegular(path: string): number {
  let fd: number;
  try {
    fd = libc.open(path, libc.O_RDONLY | O_NOFOLLOW | libc.O_NONBLOCK | libc.O_CLOEXEC);
  } catch (err) {
    throw new CopyError(`Cannot open "${path}": ${describe(err)}`);
  }
  const { mode } = fdStat(fd);
  if ((mode & S_IFMT) !== S_IFREG) {
    libc.close(fd);
    throw new CopyError(`"${path}" changed while it was copied: it is no longer a regular file`);
  }
  return fd;
}

/** statx(2) of an open descriptor: its mode and size. */
function fdStat(fd: number): { mode: number; size: number } {
  const buf = new Uint8Array(256);
  const STATX_TYPE_MODE_SIZE = 0x1 | 0x2 | 0x200;
  const empty = libc.cstr("");
  if (libc.rawSyscall(SYS_STATX, fd, empty, AT_EMPTY_PATH, STATX_TYPE_MODE_SIZE, buf) < 0) {
    throw new libc.SyscallError("statx", libc.lastErrno());
  }
  const view = new DataView(buf.buffer);
  return { mode: view.getUint16(28, true), size: Number(view.getBigUint64(40, true)) };
}

/**
 * Which directory a path names now, without following any symlink on the way (openat2's
 * RESOLVE_NO_SYMLINKS): "<device>:<inode>", or an error (ELOOP when a component is a link).
 */
export function directoryIdentity(path: string): string {
  const how = new BigUint64Array([BigInt(libc.O_PATH | libc.O_DIRECTORY | libc.O_CLOEXEC), 0n, 4n]);
  const fd = libc.rawSyscall(SYS_OPENAT2, AT_FDCWD, libc.cstr(path), how, how.byteLength);
  if (fd < 0) throw new libc.SyscallError("openat2", libc.lastErrno(), path);
  try {
    return fdIdentity(fd);
  } finally {
    libc.close(fd);
  }
}

/** "<device>:<inode>" of an open descriptor. */
export function fdIdentity(fd: number): string {
  const buf = new Uint8Array(256);
  const STATX_INO = 0x100;
  if (libc.rawSyscall(SYS_STATX, fd, libc.cstr(""), AT_EMPTY_PATH, STATX_INO, buf) < 0) {
    throw new libc.SyscallError("statx", libc.lastErrno());
  }
  const view = new DataView(buf.buffer);
  const ino = view.getBigUint64(32, true);
  return `${view.getUint32(136, true)}.${view.getUint32(140, true)}:${ino}`;
}

const SYS_OPENAT2 = 437;
const AT_FDCWD = -100;

function fdSize(fd: number): number {
  return fdStat(fd).size;
}

/** Exactly `size` bytes of an open file, read on this thread. */
function fileBody(fd: number, size: number, path: string): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left === 0) return controller.close();
      const buf = new Uint8Array(Math.min(CHUNK, left));
      const n = libc.readNow(fd, buf);
      if (n <= 0) {
        controller.error(new CopyError(`"${path}" shrank while it was copied`));
        return;
      }
      left -= n;
      controller.enqueue(buf.subarray(0, n));
    },
  }, { highWaterMark: 0 });
}

/** What `extract` is asked for. */
export interface ExtractJob {
  /** An existing directory of this thread's root that receives the entries. */
  dir: string;
  /** The descriptor the archive is read from (a pipe, stdin). */
  fd: number;
  /** `-a`: the entries' owners; else whoever extracts (root) owns what is created. */
  keepOwners: boolean;
}

/**
 * Reads a tar stream from `job.fd` and creates its entries under `job.dir`. On failure, what
 * this extraction created is removed again (a file it replaced was replaced whole: files are
 * written under a temporary name and renamed over the old one).
 */
export async function extract(job: ExtractJob): Promise<number> {
  const extractor = new Extractor(job.dir, job.keepOwners);
  const tar = new TarReader(fdStream(job.fd));
  try {
    for await (const entry of tar) await extractor.apply(entry, tar);
    extractor.finish();
  } catch (err) {
    extractor.undo();
    await tar.cancel(err);
    throw err;
  }
  return extractor.entries;
}

/** A descriptor as a stream, read on this thread. */
function fdStream(fd: number): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const buf = new Uint8Array(CHUNK);
      const n = libc.readNow(fd, buf);
      if (n === 0) controller.close();
      else if (n < 0) controller.error(new CopyError("the archive could not be read"));
      else controller.enqueue(buf.subarray(0, n));
    },
  }, { highWaterMark: 0 });
}

class Extractor {
  entries = 0;
  readonly #root: string;
  readonly #keepOwners: boolean;
  /** Relative paths known to be real directories. */
  #dirs = new Set<string>([""]);
  /** What this extraction created (absolute), in order: removed again on failure. */
  #created: string[] = [];
  #temp: string | undefined;
  #dirTimes: [string, number][] = [];

  constructor(root: string, keepOwners: boolean) {
    this.#root = root.replace(/\/+$/, "");
    this.#keepOwners = keepOwners;
  }

  async apply(entry: TarEntry, tar: TarReader): Promise<void> {
    this.entries++;
    const parts = entry.path.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.includes("..")) {
      throw new CopyError(`The archive's entry "${entry.path}" points outside the destination`);
    }
    // The destination itself ("./"): it exists and keeps its own metadata (Docker's rule).
    if (parts.length === 0) return;
    const parent = this.#parent(parts, entry.path, true);
    const name = parts.at(-1)!;
    const rel = parts.join("/");
    const abs = `${parent}/${name}`;
    let existing: Deno.FileInfo | undefined;
    try {
      existing = Deno.lstatSync(abs);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (existing?.isDirectory && entry.type !== "dir") {
      throw new CopyError(`Cannot overwrite the directory "${rel}" with a non-directory`);
    }
    if (existing !== undefined && !existing.isDirectory && entry.type === "dir") {
      throw new CopyError(`Cannot overwrite the non-directory "${rel}" with a directory`);
    }
    if (entry.type === "dir") {
      if (existing === undefined) {
        Deno.mkdirSync(abs, { mode: 0o700 });
        this.#created.push(abs);
      }
      this.#dirs.add(rel);
      this.#meta(abs, entry);
      return;
    }
    if (entry.type === "file") {
      await this.#writeFile(abs, entry, tar, existing !== undefined);
      return;
    }
    // Links and nodes: made under a temporary name too, then renamed over what was there.
    const temp = this.#tempName(parent, name);
    this.#temp = temp;
    switch (entry.type) {
      case "symlink":
        // Its target is only text; followed later, it resolves inside this root.
        Deno.symlinkSync(entry.linkpath, temp);
        break;
      case "hardlink": {
        const target = entry.linkpath.split("/").filter((p) => p !== "" && p !== ".");
        if (target.length === 0 || target.includes("..")) {
          throw new CopyError(
            `The archive's hard link "${entry.path}" points outside the destination`,
          );
        }
        const targetAbs = `${this.#parent(target, entry.linkpath, false)}/${target.at(-1)}`;
        const st = lstatOrNull(targetAbs);
        if (st === null || st.isDirectory || st.isSymlink) {
          throw new CopyError(
            `The archive's hard link "${entry.path}" points to "${entry.linkpath}", which it did not create`,
          );
        }
        Deno.linkSync(targetAbs, temp);
        break;
      }
      case "chardev":
        libc.mknod(temp, libc.S_IFCHR | entry.mode, libc.makedev(entry.devmajor, entry.devminor));
        break;
      case "blockdev":
        libc.mknod(temp, libc.S_IFBLK | entry.mode, libc.makedev(entry.devmajor, entry.devminor));
        break;
      case "fifo":
        libc.mknod(temp, libc.S_IFIFO | entry.mode, 0);
        break;
    }
    if (entry.type !== "hardlink") this.#meta(temp, entry);
    Deno.renameSync(temp, abs);
    this.#temp = undefined;
    if (existing === undefined) this.#created.push(abs);
  }

  async #writeFile(abs: string, entry: TarEntry, tar: TarReader, replaces: boolean) {
    const slash = abs.lastIndexOf("/");
    const temp = this.#tempName(abs.slice(0, slash) || "/", abs.slice(slash + 1));
    this.#temp = temp;
    const fd = libc.open(
      temp,
      libc.O_WRONLY | libc.O_CREAT | O_EXCL | O_NOFOLLOW | libc.O_CLOEXEC,
      0o600,
    );
    try {
      for await (const chunk of tar.body()) libc.writeAll(fd, new Uint8Array(chunk));
      // chown before chmod: chown clears setuid and setgid bits.
      if (this.#keepOwners && libc.rawSyscall(SYS_FCHOWN, fd, entry.uid, entry.gid) < 0) {
        throw new libc.SyscallError("fchown", libc.lastErrno(), entry.path);
      }
      if (libc.rawSyscall(SYS_FCHMOD, fd, entry.mode & 0o7777) < 0) {
        throw new libc.SyscallError("fchmod", libc.lastErrno(), entry.path);
      }
    } finally {
      libc.close(fd);
    }
    this.#xattrs(temp, entry);
    lutimesSync(temp, entry.mtime, entry.mtime);
    Deno.renameSync(temp, abs);
    this.#temp = undefined;
    if (!replaces) this.#created.push(abs);
  }

  #tempName(dir: string, name: string): string {
    const base = `.${name.slice(0, 100)}.mini-docker-cp-${crypto.randomUUID().slice(0, 8)}`;
    return dir === "/" ? `/${base}` : `${dir}/${base}`;
  }

  /**
   * The entry's parent directory (absolute): each component must be a real directory; missing
   * ones are created (when `create`), a symlink or anything else is refused.
   */
  #parent(parts: string[], original: string, create: boolean): string {
    let rel = "";
    for (let i = 0; i < parts.length - 1; i++) {
      rel = rel === "" ? parts[i]! : `${rel}/${parts[i]}`;
      const abs = `${this.#root}/${rel}`;
      if (this.#dirs.has(rel)) continue;
      const st = lstatOrNull(abs);
      if (st === null) {
        if (!create) throw new CopyError(`"${original}" is not in the archive`);
        Deno.mkdirSync(abs, { mode: 0o755 });
        this.#created.push(abs);
      } else if (st.isSymlink) {
        throw new CopyError(
          `The archive's entry "${original}" goes through the symbolic link "${rel}"`,
        );
      } else if (!st.isDirectory) {
        throw new CopyError(
          `The archive's entry "${original}" goes through "${rel}", which is not a directory`,
        );
      }
      this.#dirs.add(rel);
    }
    return rel === "" ? this.#root || "/" : `${this.#root}/${rel}`;
  }

  #meta(abs: string, entry: TarEntry): void {
    if (this.#keepOwners) lchownSync(abs, entry.uid, entry.gid);
    if (entry.type !== "symlink") Deno.chmodSync(abs, entry.mode & 0o7777);
    this.#xattrs(abs, entry);
    if (entry.type === "dir") this.#dirTimes.push([abs, entry.mtime]);
    else lutimesSync(abs, entry.mtime, entry.mtime);
  }

  /** security.capability only (what Docker's archives carry); never overlayfs' own. */
  #xattrs(abs: string, entry: TarEntry): void {
    const cap = entry.xattrs.get("security.capability");
    if (cap === undefined) return;
    try {
      libc.lsetxattr(abs, "security.capability", cap);
    } catch (err) {
      if (!(err instanceof libc.SyscallError && err.errno === libc.EOPNOTSUPP)) throw err;
    }
  }

  finish(): void {
    for (const [abs, mtime] of this.#dirTimes.reverse()) {
      try {
        lutimesSync(abs, mtime, mtime);
      } catch { /* replaced meanwhile */ }
    }
  }

  /** Removes what this extraction created (newest first) and its temporary file. */
  undo(): void {
    const paths = this.#temp === undefined ? this.#created : [...this.#created, this.#temp];
    for (const path of paths.reverse()) {
      try {
        Deno.removeSync(path, { recursive: true });
      } catch { /* gone already */ }
    }
  }
}

/**
 * Docker's `diff`: what the writable layer at `/upper` changed against the image's layers at
 * `/lower` ("A" added, "C" changed, "D" deleted: overlayfs' whiteouts), sorted by path. What
 * the container's start put there for its mounts (`exclude`: their mount points, and directories
 * made or copied up only to hold them) is not the container's change, as Docker's init layer is
 * not.
 */
export function layerChanges(exclude: readonly string[]): [kind: string, path: string][] {
  const found = new Map<string, string>();
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = [...Deno.readDirSync(`/upper${rel}`)].map((e) => e.name);
    } catch {
      return;
    }
    for (const name of names) {
      const path = `${rel}/${name}`;
      const st = lstatOrNull(`/upper${path}`);
      if (st === null) continue;
      if (st.isCharDevice && (st.rdev ?? -1) === 0) {
        found.set(path, "D");
        continue;
      }
      found.set(path, lstatOrNull(`/lower${path}`) === null ? "A" : "C");
      if (st.isDirectory) walk(path);
    }
  };
  walk("");
  const under = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);
  for (const path of [...found.keys()]) {
    if (exclude.some((x) => under(path, x))) found.delete(path);
  }
  // A directory on the way to a mount point, with nothing else changed below it.
  for (const path of [...found.keys()].sort().reverse()) {
    const holds = exclude.some((x) => x.startsWith(`${path}/`));
    const rest = [...found.keys()].some((p) => p.startsWith(`${path}/`));
    if (holds && !rest) found.delete(path);
  }
  return [...found].map(([path, kind]) => [kind, path] as [string, string])
    .sort((a, b) => a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

function dirname(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  return slash <= 0 ? "/" : trimmed.slice(0, slash);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
