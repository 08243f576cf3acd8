/**
 * The one `Deno.dlopen` of mini-docker: every libc call the runtime makes is declared here, and
 * every failure becomes a `SyscallError` naming the call, the path and errno's text
 * (`mount "/proc": Operation not permitted`).
 *
 * The library is opened lazily, on first use, so that commands that never touch the kernel
 * directly (ps, images, --help) do not pay for it.
 */

const SYMBOLS = {
  unshare: { parameters: ["i32"], result: "i32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  // glibc has no pivot_root wrapper; syscall(2) with integer/pointer arguments is ABI-safe.
  syscall: { parameters: ["i64", "buffer", "buffer"], result: "i64" },
  syscall_int: { name: "syscall", parameters: ["i64", "i64", "i64", "i64"], result: "i64" },
  sethostname: { parameters: ["buffer", "usize"], result: "i32" },
  chdir: { parameters: ["buffer"], result: "i32" },
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  setgroups: { parameters: ["usize", "buffer"], result: "i32" },
  setresgid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  setresuid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  geteuid: { parameters: [], result: "u32" },
  posix_spawn: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  waitpid_async: {
    name: "waitpid",
    parameters: ["i32", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  setsid: { parameters: [], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  // Blocking reads run on a worker thread so that the event loop keeps going (pty relays).
  read_async: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  umask: { parameters: ["u32"], result: "u32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;

function libc(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return lib;
}

// Flags, from <sched.h>, <sys/mount.h>, <fcntl.h>, <sys/prctl.h>.
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_NOATIME = 0x400;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_STRICTATIME = 0x1000000;
export const MNT_DETACH = 0x2;

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

export const PR_SET_PDEATHSIG = 1;
export const PR_SET_NO_NEW_PRIVS = 38;

const SYS_PIVOT_ROOT = 155n; // x86_64
const SYS_PIDFD_OPEN = 434n;
const SYS_PIDFD_GETFD = 438n;
const TIOCSCTTY = 0x540en;
const TIOCGWINSZ = 0x5413n;
const TIOCSWINSZ = 0x5414n;
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

/** A failed libc call: `mount "/proc": Operation not permitted`. */
export class SyscallError extends Error {
  readonly call: string;
  readonly errno: number;
  readonly path?: string;
  constructor(call: string, errno: number, path?: string) {
    super(`${call}${path === undefined ? "" : ` "${path}"`}: ${strerror(errno)}`);
    this.name = "SyscallError";
    this.call = call;
    this.errno = errno;
    this.path = path;
  }
}

/** errno values the runtime reacts to. */
export const ENOENT = 2;
export const EACCES = 13;
export const EEXIST = 17;
export const ENOTDIR = 20;
export const EINVAL = 22;
export const ENOEXEC = 8;
export const EPERM = 1;
export const ENODEV = 19;

function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** The C library's text for an errno ("No such file or directory"). */
export function strerror(code: number): string {
  const p = libc().strerror(code);
  return p === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(p);
}

const encoder = new TextEncoder();

/** A NUL-terminated copy of `s` for passing as `char *`. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(encoder.encode(s).length + 1);
  encoder.encodeInto(s, bytes);
  return bytes;
}

/**
 * A NULL-terminated `char *[]` for execve. The strings are returned too: the caller must keep
 * them referenced until the call returns.
 */
function cstrArray(
  items: readonly string[],
): { array: BigUint64Array<ArrayBuffer>; keep: Uint8Array[] } {
  const keep = items.map(cstr);
  const array = new BigUint64Array(items.length + 1);
  keep.forEach((s, i) => array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s))));
  return { array, keep };
}

function check(result: number | bigint, call: string, path?: string): void {
  if (Number(result) < 0) throw new SyscallError(call, errno(), path);
}

export function unshare(flags: number): void {
  check(libc().unshare(flags), "unshare");
}

export function setns(fd: number, nstype: number): void {
  check(libc().setns(fd, nstype), "setns");
}

/** mount(2). `data` is the comma-separated option string of the filesystem. */
export function mount(
  source: string,
  target: string,
  fstype: string,
  flags: number,
  data = "",
): void {
  check(
    libc().mount(cstr(source), cstr(target), cstr(fstype), BigInt(flags), cstr(data)),
    fstype === "" ? "mount" : `mount ${fstype}`,
    target,
  );
}

export function umount2(target: string, flags: number): void {
  check(libc().umount2(cstr(target), flags), "umount", target);
}

export function pivotRoot(newRoot: string, putOld: string): void {
  check(libc().syscall(SYS_PIVOT_ROOT, cstr(newRoot), cstr(putOld)), "pivot_root", newRoot);
}

export function sethostname(name: string): void {
  const bytes = encoder.encode(name);
  check(libc().sethostname(bytes, BigInt(bytes.length)), "sethostname", name);
}

export function chdir(path: string): void {
  check(libc().chdir(cstr(path)), "chdir", path);
}

/** execve(2): returns only on failure, by throwing. */
export function execve(path: string, argv: readonly string[], env: readonly string[]): never {
  const a = cstrArray(argv);
  const e = cstrArray(env);
  libc().execve(cstr(path), a.array, e.array);
  const code = errno();
  // Keep the strings alive until after the call.
  void a.keep;
  void e.keep;
  throw new SyscallError("exec", code, path);
}

export function open(path: string, flags: number, mode = 0): number {
  const fd = libc().open(cstr(path), flags, mode);
  check(fd, "open", path);
  return fd;
}

export function close(fd: number): void {
  libc().close(fd);
}

/** Writes all of `data` to `fd`. */
export function writeAll(fd: number, data: Uint8Array<ArrayBuffer>): void {
  let off = 0;
  while (off < data.length) {
    const n = Number(libc().write(fd, data.subarray(off), BigInt(data.length - off)));
    check(n, "write");
    off += n;
  }
}

export function mknod(path: string, mode: number, dev: number): void {
  check(libc().mknod(cstr(path), mode, BigInt(dev)), "mknod", path);
}

/** Linux dev_t from major and minor numbers (glibc's makedev, full range). */
export function makedev(major: number, minor: number): number {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return Number(
    ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) |
      (mi & 0xffn),
  );
}

/** ENODATA: the attribute does not exist. */
export const ENODATA = 61;
/** EOPNOTSUPP: the filesystem does not support the attribute's namespace. */
export const EOPNOTSUPP = 95;

/** lsetxattr(2): sets an extended attribute (binary value) without following a final symlink. */
export function lsetxattr(path: string, name: string, value: Uint8Array): void {
  const buf = new Uint8Array(value.byteLength + 1);
  buf.set(value);
  check(
    libc().lsetxattr(cstr(path), cstr(name), buf, BigInt(value.byteLength), 0),
    "lsetxattr",
    path,
  );
}

/** lgetxattr(2) of a small attribute; null when it is not set or not supported. */
export function lgetxattr(path: string, name: string): Uint8Array | null {
  const buf = new Uint8Array(256);
  const n = Number(libc().lgetxattr(cstr(path), cstr(name), buf, BigInt(buf.byteLength)));
  if (n < 0) {
    const e = errno();
    if (e === ENODATA || e === EOPNOTSUPP) return null;
    throw new SyscallError("lgetxattr", e, path);
  }
  return buf.slice(0, n);
}

export function prctl(option: number, arg2: number): void {
  check(libc().prctl(option, BigInt(arg2), 0n, 0n, 0n), "prctl");
}

export function setgroups(gids: readonly number[]): void {
  check(libc().setgroups(BigInt(gids.length), new Uint32Array(gids)), "setgroups");
}

export function setresgid(gid: number): void {
  check(libc().setresgid(gid, gid, gid), "setgid");
}

export function setresuid(uid: number): void {
  check(libc().setresuid(uid, uid, uid), "setuid");
}

export function geteuid(): number {
  return libc().geteuid();
}

export function umask(mask: number): number {
  return libc().umask(mask);
}

const AF_UNIX = 1;
const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;

/** Connects a new close-on-exec stream socket to the unix socket at `path`; returns its fd. */
export function connectUnix(path: string): number {
  const fd = libc().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(fd, "socket");
  // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }
  const addr = new Uint8Array(110);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  const p = encoder.encode(path);
  if (p.length > 107) throw new SyscallError("connect", 36, /* ENAMETOOLONG */ path);
  addr.set(p, 2);
  check(libc().connect(fd, addr, 2 + p.length + 1), "connect", path);
  return fd;
}

const SIOCGIFFLAGS = 0x8913n;
const SIOCSIFFLAGS = 0x8914n;
const IFF_UP = 0x1;

/** Brings a network interface up (`ip link set lo up`) in the current network namespace. */
export function interfaceUp(name: string): void {
  const fd = libc().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  check(fd, "socket");
  try {
    // struct ifreq { char ifr_name[16]; union { short ifr_flags; ... } } (40 bytes)
    const ifr = new Uint8Array(40);
    ifr.set(encoder.encode(name).subarray(0, 15), 0);
    check(libc().ioctl(fd, SIOCGIFFLAGS, ifr), "SIOCGIFFLAGS", name);
    const view = new DataView(ifr.buffer);
    view.setInt16(16, view.getInt16(16, true) | IFF_UP, true);
    check(libc().ioctl(fd, SIOCSIFFLAGS, ifr), "SIOCSIFFLAGS", name);
  } finally {
    libc().close(fd);
  }
}

export function setsid(): void {
  check(libc().setsid(), "setsid");
}

export function dup2(fd: number, target: number): void {
  check(libc().dup2(fd, target), "dup2");
}

/** Takes an exclusive flock on `fd` without waiting; false when another process holds it. */
export function tryLock(fd: number): boolean {
  if (libc().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const code = errno();
  if (code === EWOULDBLOCK) return false;
  throw new SyscallError("flock", code);
}

/** Opens a new pseudo-terminal; returns the master fd and the path of its slave. */
export function openPty(): { master: number; slave: string } {
  const master = libc().posix_openpt(O_RDWR | 0o400 /* O_NOCTTY */ | O_CLOEXEC);
  check(master, "posix_openpt");
  check(libc().grantpt(master), "grantpt");
  check(libc().unlockpt(master), "unlockpt");
  const buf = new Uint8Array(128);
  const rc = libc().ptsname_r(master, buf, BigInt(buf.length));
  if (rc !== 0) throw new SyscallError("ptsname", rc);
  return { master, slave: new TextDecoder().decode(buf.subarray(0, buf.indexOf(0))) };
}

/** Makes `fd` (a terminal) the controlling terminal of this new session. */
export function setControllingTerminal(fd: number): void {
  check(libc().ioctl_int(fd, TIOCSCTTY, 0n), "TIOCSCTTY");
}

/** The size of the terminal on `fd`, or undefined when it is not a terminal. */
export function getWindowSize(fd: number): { rows: number; cols: number } | undefined {
  const ws = new Uint8Array(8);
  if (libc().ioctl(fd, TIOCGWINSZ, ws) < 0) return undefined;
  const v = new DataView(ws.buffer);
  return { rows: v.getUint16(0, true), cols: v.getUint16(2, true) };
}

export function setWindowSize(fd: number, size: { rows: number; cols: number }): void {
  const ws = new Uint8Array(8);
  const v = new DataView(ws.buffer);
  v.setUint16(0, size.rows, true);
  v.setUint16(2, size.cols, true);
  check(libc().ioctl(fd, TIOCSWINSZ, ws), "TIOCSWINSZ");
}

/** Reads from `fd` on a worker thread; 0 at end of stream, -1 on error (EIO: pty closed). */
export async function readAsync(fd: number, buf: Uint8Array<ArrayBuffer>): Promise<number> {
  return Number(await libc().read_async(fd, buf, BigInt(buf.length)));
}

/**
 * posix_spawn(3): starts `path` with `argv` and `env` and returns its PID. Unlike fork, the
 * child runs only libc code until execve (clone with CLONE_VM|CLONE_VFORK), so it is safe here.
 */
export function spawnProcess(
  path: string,
  argv: readonly string[],
  env: readonly string[],
): number {
  const pid = new Int32Array(1);
  const a = cstrArray(argv);
  const e = cstrArray(env);
  const rc = libc().posix_spawn(pid, cstr(path), null, null, a.array, e.array);
  void a.keep;
  void e.keep;
  if (rc !== 0) throw new SyscallError("exec", rc, path);
  return pid[0]!;
}

/** Waits (on a worker thread) for any child; returns its PID and raw wait status, or -1. */
export async function waitAnyChild(): Promise<{ pid: number; status: number }> {
  const status = new Int32Array(1);
  const pid = await libc().waitpid_async(-1, status, 0);
  return { pid, status: status[0]! };
}

/** Reads from `fd` (blocking) up to and including the first newline; "" at end of stream. */
export function readLine(fd: number): string {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = Number(libc().read(fd, buf, BigInt(buf.length)));
    check(n, "read");
    if (n === 0) break;
    chunks.push(buf.slice(0, n));
    if (buf.subarray(0, n).includes(10)) break;
  }
  const all = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(all);
}

/**
 * A copy, in this process, of file descriptor `fd` of process `pid` (pidfd_getfd(2), Linux
 * 5.6): how the pseudo-terminal that a stage opened inside the container reaches mini-docker.
 */
export function takeFd(pid: number, fd: number): number {
  const pidfd = Number(libc().syscall_int(SYS_PIDFD_OPEN, BigInt(pid), 0n, 0n));
  check(pidfd, "pidfd_open");
  try {
    const copy = Number(libc().syscall_int(SYS_PIDFD_GETFD, BigInt(pidfd), BigInt(fd), 0n));
    check(copy, "pidfd_getfd");
    return copy;
  } finally {
    libc().close(pidfd);
  }
}

/**
 * Marks every file descriptor above 2 close-on-exec, so that nothing mini-docker inherited or
 * opened (a host directory, a pipe of whoever started it) reaches the container: a leaked fd is
 * a way out of it (runc's CVE-2024-21626).
 */
export function closeExtraFdsOnExec(): void {
  const F_SETFD = 2;
  const FD_CLOEXEC = 1;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    const fd = Number(entry.name);
    if (fd > 2) libc().fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
}
