/**
 * The mounts of a container's root, each taking the kernel as a parameter (see kernel.ts): the
 * root itself (overlayfs of layers, or a bind), the spec's mounts resolved inside the root, the
 * device nodes, pivot_root, and the paths Docker hides or makes read-only.
 */
import { type ContainerSpec, hostId, type Mount } from "../base/spec.ts";
import * as libc from "../base/libc.ts";
import type { Kernel } from "./kernel.ts";

/** Where a container finds the init of `run --init` (Docker's path), bind-mounted read-only. */
export const INIT_PATH = "/sbin/docker-init";

/** Mounts the container's root at `spec.root.path`: overlayfs of layers, or a bind of one dir. */
export function assembleRoot(k: Kernel, spec: ContainerSpec): void {
  const root = spec.root.path;
  const layers = spec.rootLayers;
  if (layers === undefined || (layers.lower.length === 1 && layers.upper === undefined)) {
    // One read-only directory (or root.path itself) becomes a mount point.
    k.mount(layers?.lower[0] ?? root, root, "", libc.MS_BIND | libc.MS_REC);
    return;
  }
  let lower = layers.lower;
  // mount(2) takes one page of options: with many layers, name them relative to their common
  // directory (overlayfs resolves them against the caller's working directory, as Docker does).
  const base = commonDir(lower);
  if (lower.join(":").length > 3000 && base !== "") {
    k.chdir(base);
    lower = lower.map((l) => l.slice(base.length + 1));
  }
  const data = layers.upper === undefined
    ? `lowerdir=${lower.join(":")}`
    : `lowerdir=${lower.join(":")},upperdir=${layers.upper},workdir=${layers.work}`;
  k.mount("overlay", root, "overlay", layers.upper === undefined ? libc.MS_RDONLY : 0, data);
  k.chdir("/");
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
  atime: [false, libc.MS_NOATIME],
  nostrictatime: [false, libc.MS_STRICTATIME],
  relatime: [true, libc.MS_RELATIME],
  norelatime: [false, libc.MS_RELATIME],
  nodiratime: [true, libc.MS_NODIRATIME],
  diratime: [false, libc.MS_NODIRATIME],
  sync: [true, libc.MS_SYNCHRONOUS],
  async: [false, libc.MS_SYNCHRONOUS],
  dirsync: [true, libc.MS_DIRSYNC],
  mand: [true, libc.MS_MANDLOCK],
  nomand: [false, libc.MS_MANDLOCK],
  lazytime: [true, libc.MS_LAZYTIME],
  nolazytime: [false, libc.MS_LAZYTIME],
  silent: [true, libc.MS_SILENT],
  loud: [false, libc.MS_SILENT],
  defaults: [false, 0],
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

/**
 * A procfs shows the PID namespace of the process that mounts it (or, since Linux 6.18, the one
 * it names), and the container's PID namespace has no process before its first one, which
 * cannot mount anything: so the container's /proc is a bind of an empty host directory, a slave
 * of it, that the parent fills once the first process exists (start.ts, `fillProc`).
 */
export interface ProcPeer {
  /** A host directory mounted on itself, shared. */
  root: string;
  /** The directory in it that becomes the container's /proc. */
  dir: string;
  /**
   * A container without a mount namespace (OCI bundles), which has the runtime's PID namespace
   * too: its procfs is mounted by the thread, in place (the peer is not used).
   */
  direct?: boolean;
}

/**
 * The path by which the kernel reaches what descriptor `fd` refers to (a "magic link": the
 * object itself, not a path name that could be swapped for a symlink meanwhile). runc's answer
 * to CVE-2021-30465: every mount's target is such a descriptor, opened inside the root.
 */
export function fdPath(fd: number): string {
  return `/proc/thread-self/fd/${fd}`;
}

/** Resolution inside the container's root: its symlinks and `..` never leave it. */
const IN_ROOT = libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS;

/** The components of an absolute container path, cleaned lexically (as Docker cleans it). */
export function pathComponents(path: string): string[] {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts;
}

function errnoOf(err: unknown): number | undefined {
  return err instanceof libc.SyscallError ? err.errno : undefined;
}

/**
 * Opens (O_PATH) `path` of the container, resolved by the kernel with `rootFd` as `/`
 * (openat2 RESOLVE_IN_ROOT), so that no symlink of the image, of a volume, or swapped in by
 * another container meanwhile leads out of the root. What is missing is created one component
 * at a time, each opened again without following anything (a symlink that appears there
 * fails), as a directory, or at the end as an empty file when `create` is "file".
 */
export function openInRoot(
  k: Kernel,
  rootFd: number,
  path: string,
  create: "dir" | "file",
  hops = 0,
  keep?: KeepRoot,
): number {
  const parts = pathComponents(path);
  try {
    return k.openat2(rootFd, parts.join("/") || ".", libc.O_PATH, IN_ROOT);
  } catch (err) {
    if (errnoOf(err) !== libc.ENOENT) throw err;
  }
  // The deepest directory that exists, then what is missing below it.
  let depth = parts.length - 1;
  let fd = -1;
  for (; depth >= 0; depth--) {
    try {
      fd = k.openat2(
        rootFd,
        parts.slice(0, depth).join("/") || ".",
        libc.O_PATH | libc.O_DIRECTORY,
        IN_ROOT,
      );
      break;
    } catch (err) {
      if (errnoOf(err) !== libc.ENOENT) throw err;
    }
  }
  try {
    for (; depth < parts.length; depth++) {
      const name = parts[depth]!;
      const last = depth === parts.length - 1;
      const inside = `${fdPath(fd)}/${name}`;
      if (keep !== undefined && mountId(fd) === keep.mountId) {
        throw new Error(
          `"${path}" does not exist in the read-only root (no writable layer): create it in the root filesystem, or mount elsewhere`,
        );
      }
      try {
        if (last && create === "file") {
          // O_CREAT|O_EXCL: never through a symlink.
          Deno.openSync(inside, { createNew: true, write: true, mode: 0o644 }).close();
        } else {
          Deno.mkdirSync(inside, { mode: 0o755 });
        }
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
        // A dangling symlink (of the image, or just made by someone): its text is a path of
        // the container, resolved again from the root, as runc's securejoin does.
        let link: string | undefined;
        try {
          if (Deno.lstatSync(inside).isSymlink) link = Deno.readLinkSync(inside);
        } catch { /* gone meanwhile: the open below decides */ }
        if (link !== undefined) {
          if (hops >= 40) {
            throw new libc.SyscallError("openat2", libc.ELOOP, path);
          }
          const rest = parts.slice(depth + 1);
          const next = link.startsWith("/")
            ? [link, ...rest]
            : [containerPathOf(fd, rootFd) ?? parts.slice(0, depth).join("/"), link, ...rest];
          k.close(fd);
          fd = -1;
          return openInRoot(k, rootFd, `/${next.join("/")}`, create, hops + 1, keep);
        }
      }
      const next = k.openat2(
        fd,
        name,
        libc.O_PATH | libc.O_NOFOLLOW | (last && create === "file" ? 0 : libc.O_DIRECTORY),
        libc.RESOLVE_NO_SYMLINKS | libc.RESOLVE_BENEATH | libc.RESOLVE_NO_MAGICLINKS,
      );
      k.close(fd);
      fd = next;
    }
    return fd;
  } catch (err) {
    if (fd >= 0) k.close(fd);
    throw err;
  }
}

/**
 * A root that must not be written (the read-only fallback without overlayfs is a bind of the
 * base root filesystem itself): the user's mount points are not created on its mount.
 */
export interface KeepRoot {
  mountId: number;
}

/** The id of the mount that descriptor `fd` is on (its fdinfo's mnt_id). */
export function mountId(fd: number): number {
  const info = Deno.readTextFileSync(`/proc/thread-self/fdinfo/${fd}`);
  return Number(/^mnt_id:\s*(\d+)/m.exec(info)?.[1] ?? -1);
}

/**
 * Where directory `fd` is in the container (its path below `rootFd`), as the kernel resolved
 * it: the base against which a relative symlink found in it is read. Undefined if unknown.
 */
function containerPathOf(fd: number, rootFd: number): string | undefined {
  try {
    const root = Deno.readLinkSync(fdPath(rootFd));
    const dir = Deno.readLinkSync(fdPath(fd));
    if (dir === root) return "";
    return dir.startsWith(`${root}/`) ? dir.slice(root.length) : undefined;
  } catch {
    return undefined;
  }
}

/** Bind mount option words -> mount attributes (mount_setattr). */
const ATTRS: Record<string, number> = {
  ro: libc.MOUNT_ATTR_RDONLY,
  nosuid: libc.MOUNT_ATTR_NOSUID,
  nodev: libc.MOUNT_ATTR_NODEV,
  noexec: libc.MOUNT_ATTR_NOEXEC,
};

/** Propagation option words (Docker's bind-propagation) -> [type, recursive]. */
export const PROPAGATION: Record<string, [number, boolean]> = {
  private: [libc.MS_PRIVATE, false],
  rprivate: [libc.MS_PRIVATE, true],
  shared: [libc.MS_SHARED, false],
  rshared: [libc.MS_SHARED, true],
  slave: [libc.MS_SLAVE, false],
  rslave: [libc.MS_SLAVE, true],
  unbindable: [libc.MS_UNBINDABLE, false],
  runbindable: [libc.MS_UNBINDABLE, true],
};

/** The mount option words mini-docker applies itself (the others are the filesystem's data). */
export const MOUNT_OPTION_WORDS: readonly string[] = [
  ...Object.keys(MOUNT_FLAGS),
  ...Object.keys(PROPAGATION),
].sort();

/**
 * A mount's `uid=` and `gid=` options (tmpfs, devpts' `gid=5`) as the host's ids: the kernel
 * reads them in the mounter's user namespace, the host's, while the spec means the container's.
 */
export function hostIdOptions(m: Mount, spec: ContainerSpec): Mount {
  if (spec.linux.uidMappings === undefined) return m;
  // A tmpfs's root belongs to its mounter, the host's root, which the container does not have:
  // to the container's root instead (as when the container's root mounts it: runc).
  const owner = m.type === "tmpfs"
    ? (["uid", "gid"] as const).filter((o) =>
      !m.options.some((x) => x.startsWith(`${o}=`)) &&
      hostId(o === "uid" ? spec.linux.uidMappings : spec.linux.gidMappings, 0) !== undefined
    ).map((o) => `${o}=0`)
    : [];
  const options = [...m.options, ...owner].map((o) => {
    const match = /^(uid|gid)=(\d+)$/.exec(o);
    if (match === null) return o;
    const maps = match[1] === "uid" ? spec.linux.uidMappings : spec.linux.gidMappings;
    const id = hostId(maps, Number(match[2]));
    if (id === undefined) {
      throw new Error(
        `option ${o}: ${match[1]} ${match[2]} has no id on the host (linux.${match[1]}Mappings)`,
      );
    }
    return `${match[1]}=${id}`;
  });
  return { ...m, options };
}

/** One entry of spec.mounts, under the container's root (before pivot_root). */
export function mountInto(
  k: Kernel,
  rootFd: number,
  m: Mount,
  proc: ProcPeer,
  keep?: KeepRoot,
  cgroupDirs: readonly string[] = [],
): void {
  const { flags, data } = parseMountOptions(m.options.filter((o) => PROPAGATION[o] === undefined));
  if (flags & libc.MS_BIND && m.type !== "proc" && m.type !== "cgroup") {
    bindInto(k, rootFd, m, flags, keep);
    return;
  }
  const target = openInRoot(k, rootFd, m.destination, "dir", 0, keep);
  try {
    if (m.type !== "proc") refuseProcTarget(target, rootFd, m);
    if (m.type === "proc") {
      if (proc.direct) {
        k.mount(m.source, fdPath(target), "proc", flags, data);
        return;
      }
      // A slave of the host directory: what the parent mounts there appears here.
      k.mount(proc.dir, fdPath(target), "", libc.MS_BIND);
      return;
    }
    if (m.type === "cgroup") {
      mountCgroup(k, fdPath(target), () => reopen(k, rootFd, m.destination), flags, cgroupDirs);
    } else {
      k.mount(m.source, fdPath(target), m.type, flags, data);
    }
    // Propagation words (OCI bundles may give them for any mount): one call each, on the new
    // mount (the descriptor still names the directory under it: opened again).
    const changes = m.options.flatMap((w) => PROPAGATION[w] === undefined ? [] : [PROPAGATION[w]!]);
    if (changes.length === 0) return;
    const top = reopen(k, rootFd, m.destination);
    try {
      for (const [type, recursive] of changes) {
        k.mount("", fdPath(top), "", type | (recursive ? libc.MS_REC : 0));
      }
    } finally {
      k.close(top);
    }
  } finally {
    k.close(target);
  }
}

/**
 * `path` of the container opened again inside the root, after something was mounted there: a
 * descriptor opened before names the directory under the new mount, a new lookup its top.
 */
function reopen(k: Kernel, rootFd: number, path: string): number {
  return k.openat2(rootFd, pathComponents(path).join("/") || ".", libc.O_PATH, IN_ROOT);
}

/** The flags that a read-only bind keeps from a "cgroup" mount's options. */
const BIND_KEEPS = libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC |
  libc.MS_RELATIME | libc.MS_NOATIME;

/**
 * A mount of type "cgroup" (OCI bundles, runc's way without a cgroup namespace): the container's
 * own cgroup, its directories bound. On cgroup v2, its one directory at `target`; on v1 a tmpfs
 * at `target` with each hierarchy's directory of the container under the hierarchy's name (and
 * the host's links: "cpu" -> "cpu,cpuacct"), then made read-only as the options say. `target`
 * is a directory already opened inside the root (its descriptor's path); what is made below it
 * is on the fresh tmpfs, which nothing of the container has seen yet.
 */
function mountCgroup(
  k: Kernel,
  target: string,
  reopened: () => number,
  flags: number,
  dirs: readonly string[],
): void {
  if (dirs.length === 0) throw new Error("the container's cgroup is not known to its thread");
  const bind = (dir: string, at: string) => {
    k.mount(dir, at, "", libc.MS_BIND);
    // `at` names a directory through a name (not a descriptor): the lookup reaches the bind.
    k.mount("", at, "", libc.MS_REMOUNT | libc.MS_BIND | (flags & BIND_KEEPS));
  };
  const hierarchy = (dir: string) => dir.slice(CGROUP_ROOT.length + 1).split("/")[0]!;
  let v2 = false;
  try {
    v2 = Deno.statSync(`${CGROUP_ROOT}/cgroup.controllers`).isFile;
  } catch { /* v1 or hybrid */ }
  if (v2) {
    k.mount(dirs[0]!, target, "", libc.MS_BIND);
    const top = reopened();
    try {
      k.mount("", fdPath(top), "", libc.MS_REMOUNT | libc.MS_BIND | (flags & BIND_KEEPS));
    } finally {
      k.close(top);
    }
    return;
  }
  const fsFlags = flags & (libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC);
  k.mount("tmpfs", target, "tmpfs", fsFlags, "mode=755");
  const top = reopened();
  try {
    fillCgroupTmpfs(fdPath(top), bind, dirs, hierarchy);
    if (flags & libc.MS_RDONLY) {
      k.mount("", fdPath(top), "", libc.MS_REMOUNT | libc.MS_RDONLY | fsFlags);
    }
  } finally {
    k.close(top);
  }
}

/** v1: each hierarchy's directory of the container under its name, and the host's links. */
function fillCgroupTmpfs(
  target: string,
  bind: (dir: string, at: string) => void,
  dirs: readonly string[],
  hierarchy: (dir: string) => string,
): void {
  const names = new Set<string>();
  for (const dir of dirs) {
    const name = hierarchy(dir);
    names.add(name);
    try {
      Deno.mkdirSync(`${target}/${name}`, { mode: 0o755 });
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    bind(dir, `${target}/${name}`);
  }
  for (const name of names) {
    for (const controller of name.split(",")) {
      if (controller === name || names.has(controller)) continue;
      try {
        Deno.symlinkSync(name, `${target}/${controller}`);
      } catch { /* there already */ }
    }
  }
}

const CGROUP_ROOT = "/sys/fs/cgroup";

/**
 * runc's answer to CVE-2019-19921 (and its return, CVE-2023-27561): a target that resolves,
 * through the image's symlinks (`/x -> /proc`, `/y -> /`), onto the container's /proc or its
 * root itself is refused: a host directory, a tmpfs or a volume that another container writes
 * must never stand in for the procfs (or hide it with everything else).
 */
function refuseProcTarget(target: number, rootFd: number, m: Mount): void {
  const at = containerPathOf(target, rootFd);
  if (at !== undefined && at !== "" && at !== "/proc" && !at.startsWith("/proc/")) return;
  throw new Error(
    `"${m.destination}" resolves to ${
      at === undefined ? "a path outside the root" : `"${at || "/"}"`
    } in the container, where nothing may be mounted`,
  );
}

/**
 * A bind mount: the source (a canonical host path, resolved once when the container was made)
 * opened without following any symlink, so that what is mounted is what was checked; cloned
 * with its attributes (read-only from the moment it exists), attached on the target opened
 * inside the root, then given its propagation (private by default, as Docker's rprivate).
 */
function bindInto(k: Kernel, rootFd: number, m: Mount, flags: number, keep?: KeepRoot): void {
  const source = k.openat2(
    libc.AT_FDCWD,
    m.source,
    libc.O_PATH,
    libc.RESOLVE_NO_SYMLINKS | libc.RESOLVE_NO_MAGICLINKS,
  );
  try {
    const isDir = Deno.statSync(fdPath(source)).isDirectory;
    const target = openInRoot(k, rootFd, m.destination, isDir ? "dir" : "file", 0, keep);
    try {
      refuseProcTarget(target, rootFd, m);
      if (Deno.statSync(fdPath(target)).isDirectory !== isDir) {
        throw new Error(
          `"${m.destination}" is a ${
            isDir ? "file" : "directory"
          } in the container and ${m.source} a ${
            isDir ? "directory" : "file"
          }: mount a directory on a directory, a file on a file`,
        );
      }
      if (m.copyUp && isDir) copyUp(k, rootFd, m, source);
      const tree = k.openTree(source, (flags & libc.MS_REC) !== 0);
      try {
        let attrs = 0;
        for (const o of m.options) attrs |= ATTRS[o] ?? 0;
        if (attrs !== 0) k.mountSetattr(tree, { set: attrs, clear: 0, propagation: 0 }, true);
        k.moveMount(tree, target);
        // Per-mount flags that have no attribute above (atime words): a bind remount, as runc.
        const rest = flags & ~(libc.MS_BIND | libc.MS_REC);
        if ((rest & ~(libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)) !== 0) {
          k.mount("", fdPath(tree), "", libc.MS_REMOUNT | libc.MS_BIND | rest);
        }
        const word = m.options.find((o) => PROPAGATION[o] !== undefined) ?? "rprivate";
        const [propagation, recursive] = PROPAGATION[word]!;
        k.mountSetattr(tree, { set: 0, clear: 0, propagation }, recursive);
      } finally {
        k.close(tree);
      }
    } finally {
      k.close(target);
    }
  } finally {
    k.close(source);
  }
}

/**
 * Docker's copy-up: an empty volume first gets what the root holds at its destination (the
 * image's files there), with their owners and modes, and the directory's own. The copy is
 * written to a private directory beside the volume's data, which no container sees, and its
 * entries are then renamed into the volume (a rename never follows a symlink): a container
 * that shares the volume cannot steer the copy's writes. The root's side is read through
 * descriptors opened without following symlinks.
 */
function copyUp(k: Kernel, rootFd: number, m: Mount, volumeFd: number): void {
  const volume = fdPath(volumeFd);
  for (const _ of Deno.readDirSync(volume)) return; // not empty: nothing to do
  let from: number;
  try {
    from = k.openat2(
      rootFd,
      pathComponents(m.destination).join("/") || ".",
      libc.O_PATH | libc.O_DIRECTORY,
      IN_ROOT,
    );
  } catch (err) {
    const code = errnoOf(err);
    if (code === libc.ENOENT || code === libc.ENOTDIR) return; // nothing there
    throw err;
  }
  const staging = `${
    m.source.slice(0, m.source.lastIndexOf("/"))
  }/.copyup-${selfTag()}-${crypto.randomUUID()}`;
  try {
    Deno.mkdirSync(staging, { mode: 0o700 });
    copyTree(k, from, staging);
    for (const e of Deno.readDirSync(staging)) {
      try {
        Deno.lstatSync(`${volume}/${e.name}`);
        continue; // written meanwhile: the volume's own wins
      } catch { /* free */ }
      Deno.renameSync(`${staging}/${e.name}`, `${volume}/${e.name}`);
    }
    const st = Deno.statSync(fdPath(from));
    Deno.chownSync(volume, st.uid, st.gid);
    Deno.chmodSync(volume, (st.mode ?? 0o755) & 0o7777);
  } finally {
    k.close(from);
    Deno.removeSync(staging, { recursive: true });
  }
}

/**
 * This process as "<pid>.<start time>" (container/state.ts's owner tag, read here without
 * loading the state module into the container's thread): a staging directory of a process that
 * was killed is found stale by it (volumes/store.ts, removeStaleVolumeEntries).
 */
function selfTag(): string {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  return `${Deno.pid}.${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`;
}

/** Copies directory `dirFd`'s entries to `dest`: files, directories, symlinks (as links). */
function copyTree(k: Kernel, dirFd: number, dest: string): void {
  for (const e of Deno.readDirSync(fdPath(dirFd))) {
    const to = `${dest}/${e.name}`;
    if (e.isSymlink) {
      Deno.symlinkSync(Deno.readLinkSync(`${fdPath(dirFd)}/${e.name}`), to);
      continue;
    }
    if (!e.isDirectory && !e.isFile) continue; // devices, sockets, fifos: not data
    const fd = k.openat2(
      dirFd,
      e.name,
      libc.O_PATH | libc.O_NOFOLLOW | (e.isDirectory ? libc.O_DIRECTORY : 0),
      libc.RESOLVE_NO_SYMLINKS | libc.RESOLVE_BENEATH | libc.RESOLVE_NO_MAGICLINKS,
    );
    try {
      const st = Deno.statSync(fdPath(fd));
      if (st.isDirectory) {
        Deno.mkdirSync(to, { mode: 0o700 });
        copyTree(k, fd, to);
      } else {
        Deno.copyFileSync(fdPath(fd), to);
      }
      Deno.chownSync(to, st.uid, st.gid);
      Deno.chmodSync(to, (st.mode ?? 0o644) & 0o7777);
    } finally {
      k.close(fd);
    }
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
export function createDevices(k: Kernel, spec: ContainerSpec): void {
  // A /dev that the user bind-mounted (`-v /dev:/dev`, a volume) is theirs, as runc leaves it:
  // no node is made (or replaced) and no link added in the host's directory.
  const bound = (m: Mount) => m.options.includes("rbind") || m.options.includes("bind");
  const binds = new Set(
    spec.mounts.filter(bound).map((m) => pathComponents(m.destination).join("/")),
  );
  if (binds.has("dev")) return;
  const root = spec.root.path;
  for (const d of spec.linux.devices) {
    // A file the user mounts there (`-v FILE:/dev/urandom`) stays, as runc leaves it.
    if (binds.has(pathComponents(d.path).join("/"))) continue;
    const path = secureJoin(root, d.path);
    const kind = d.type === "b" ? libc.S_IFBLK : d.type === "p" ? libc.S_IFIFO : libc.S_IFCHR;
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true, mode: 0o755 });
    try {
      k.mknod(path, kind | d.fileMode, libc.makedev(d.major, d.minor));
    } catch (err) {
      // The rootfs has its own node there (/dev is not a fresh tmpfs): ours replaces it.
      if (!(err instanceof libc.SyscallError && err.errno === libc.EEXIST)) throw err;
      Deno.removeSync(path);
      k.mknod(path, kind | d.fileMode, libc.makedev(d.major, d.minor));
    }
    // The container's ids, as the host's (a user namespace's maps).
    Deno.chownSync(
      path,
      hostId(spec.linux.uidMappings, d.uid) ?? d.uid,
      hostId(spec.linux.gidMappings, d.gid) ?? d.gid,
    );
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
/**
 * A container without a mount namespace of its own (OCI bundles): its root is this thread's by
 * chroot, since pivot_root would move the root of every process of the host's mount namespace.
 */
export function chrootInto(k: Kernel, root: string): void {
  k.chdir(root);
  k.chroot(".");
  k.chdir("/");
}

/**
 * What a container without a mount namespace mounted in the host's mount namespace (all below
 * its root, itself a mount): detached in one step, when it is removed or its start failed.
 */
export function releaseHostRoot(spec: ContainerSpec): void {
  if (spec.linux.namespaces.some((ns) => ns.type === "mount")) return;
  try {
    libc.umount2(spec.root.path, libc.MNT_DETACH);
  } catch (err) {
    // Not mounted (the start failed before, or it was released already).
    if (!(err instanceof libc.SyscallError && err.errno === libc.EINVAL)) throw err;
  }
}

/**
 * Makes the mount that holds `path` private (this thread's mount namespace only), as runc does
 * before it binds a root there when the root is to be shared: then neither that bind nor
 * anything below it propagates to the host's peers, and pivot_root accepts it.
 */
export function containingMountPrivate(k: Kernel, path: string): void {
  const points = Deno.readTextFileSync("/proc/thread-self/mountinfo").trim().split("\n")
    .map((line) => line.split(" ")[4]!);
  const holds = (point: string) =>
    path === point || path.startsWith(point === "/" ? "/" : `${point}/`);
  // The deepest mount point on the way; the last mounted there if several are.
  const best = points.filter(holds).reduce((a, b) => (b.length >= a.length ? b : a), "/");
  k.mount("", best, "", libc.MS_PRIVATE);
}

/**
 * runc's `--no-pivot` (its msMoveRoot): the host's full procfs and sysfs mounts of this mount
 * namespace detached (or covered, when they cannot be), then the root moved onto / and entered
 * by chroot. The old root stays below it, unreachable by path.
 */
export function moveRoot(k: Kernel, root: string): void {
  const table = Deno.readTextFileSync("/proc/thread-self/mountinfo").trim().split("\n")
    .map((line) => line.split(" "));
  const host = table.filter((f) => {
    const type = f[f.indexOf("-") + 1];
    const point = f[4]!;
    return f[3] === "/" && (type === "proc" || type === "sysfs") && point !== root &&
      !point.startsWith(`${root}/`);
  }).map((f) => f[4]!).reverse();
  for (const point of host) {
    k.mount("", point, "", libc.MS_SLAVE | libc.MS_REC);
    try {
      k.umount2(point, libc.MNT_DETACH);
    } catch {
      k.mount("tmpfs", point, "tmpfs", 0);
    }
  }
  k.chdir(root);
  k.mount(root, "/", "", libc.MS_MOVE);
  k.chroot(".");
  k.chdir("/");
}

export function pivot(k: Kernel, root: string): void {
  // pivot_root(".", "."): the old root is stacked under the new one and detached at once, so
  // no directory for it is needed inside the container (the runc idiom).
  k.chdir(root);
  k.pivotRoot(".", ".");
  k.umount2(".", libc.MNT_DETACH);
  k.chdir("/");
}

/** Hides `path` (a directory: an empty read-only tmpfs; a file: /dev/null). */
export function mask(k: Kernel, path: string, devNull = "/dev/null"): void {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(path);
  } catch {
    return; // Nothing to hide.
  }
  if (stat.isDirectory) k.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY, "size=0k,mode=000");
  else k.mount(devNull, path, "", libc.MS_BIND);
}

/**
 * Makes `path` read-only, nosuid, nodev and noexec, in one step: a bind mount that a later
 * remount made read-only could be remounted read-write again by whoever can remount.
 */
export function makeReadonly(k: Kernel, path: string): void {
  try {
    Deno.statSync(path);
  } catch {
    return;
  }
  k.bindWithAttributes(
    path,
    libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV |
      libc.MOUNT_ATTR_NOEXEC,
  );
}

/** The whole root read-only (`--read-only`, or the fallback without overlayfs). */
export function remountRootReadonly(k: Kernel): void {
  k.mount("", "/", "", libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY);
}
