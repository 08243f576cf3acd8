/**
 * mini-docker's binding of libc: every libc call the runtime makes is declared here, and every
 * failure becomes a `SyscallError` naming the call, the path and errno's text
 * (`mount "/proc": Operation not permitted`). (The only other `Deno.dlopen` is libseccomp's, in
 * security/seccomp.ts.)
 *
 * The library is opened lazily, on first use, so that commands that never touch the kernel
 * directly (ps, images, --help) do not pay for it.
 */

/**
 * The symbols, few on purpose: Deno compiles a trampoline for each symbol of a dlopen (about
 * 0.1 ms, 0.35 ms with buffer parameters), and every container pays it twice (mini-docker and
 * the thread that becomes a container). So system calls go through syscall(2), one symbol, with
 * the numbers below; only what is more than one system call is its own symbol (posix_spawn,
 * errno, strerror). Credentials are changed with the raw system calls, never glibc's set*id:
 * those change every thread of the process, and only the calling thread may become the
 * container's user. posix_spawn's helpers (file actions, attributes) are a second symbol table,
 * opened only by the threads that start processes.
 */
const SYMBOLS = {
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  posix_spawn: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // Blocking calls that run on a worker thread, so that the event loop keeps going.
  open_async: {
    name: "open",
    parameters: ["pointer", "i32", "u32"],
    result: "i32",
    nonblocking: true,
  },
  waitpid_async: {
    name: "waitpid",
    parameters: ["i32", "pointer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  read_async: {
    name: "read",
    parameters: ["i32", "pointer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  write_async: {
    name: "write",
    parameters: ["i32", "pointer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  poll_async: {
    name: "poll",
    parameters: ["pointer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;

function libc(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return lib;
}

/** System call numbers (<asm/unistd.h>): x86_64's, and the generic table that arm64 uses. */
const SYS = Deno.build.arch === "aarch64"
  ? {
    read: 63,
    write: 64,
    close: 57,
    openat: 56,
    mknodat: 33,
    dup3: 24,
    fcntl: 25,
    flock: 32,
    ioctl: 29,
    chdir: 49,
    chroot: 51,
    fchdir: 50,
    mount: 40,
    umount2: 39,
    pivot_root: 41,
    unshare: 97,
    setns: 268,
    sethostname: 161,
    setdomainname: 162,
    personality: 92,
    ioprio_set: 30,
    sched_setattr: 274,
    sched_setaffinity: 122,
    prctl: 167,
    setsid: 157,
    umask: 166,
    socket: 198,
    connect: 203,
    sendmsg: 211,
    lsetxattr: 6,
    lgetxattr: 9,
    setresuid: 147,
    setresgid: 149,
    setgroups: 159,
    capget: 90,
    capset: 91,
    keyctl: 219,
    prlimit64: 261,
    gettid: 178,
    pipe2: 59,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    mount_setattr: 442,
    openat2: 437,
  }
  : {
    read: 0,
    write: 1,
    close: 3,
    openat: 257,
    mknodat: 259,
    dup3: 292,
    fcntl: 72,
    flock: 73,
    ioctl: 16,
    chdir: 80,
    chroot: 161,
    fchdir: 81,
    mount: 165,
    umount2: 166,
    pivot_root: 155,
    unshare: 272,
    setns: 308,
    sethostname: 170,
    setdomainname: 171,
    personality: 135,
    ioprio_set: 251,
    sched_setattr: 314,
    sched_setaffinity: 203,
    prctl: 157,
    setsid: 112,
    umask: 95,
    socket: 41,
    connect: 42,
    sendmsg: 46,
    lsetxattr: 189,
    lgetxattr: 192,
    setresuid: 117,
    setresgid: 119,
    setgroups: 116,
    capget: 125,
    capset: 126,
    keyctl: 250,
    prlimit64: 302,
    gettid: 186,
    pipe2: 293,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    mount_setattr: 442,
    openat2: 437,
  };

/** An argument of a system call: an integer, or memory (passed as its address). */
type Arg = number | bigint | ArrayBufferView | null;

const address = (a: Arg): number | bigint =>
  a === null ? 0 : typeof a === "object" ? Deno.UnsafePointer.value(Deno.UnsafePointer.of(a)) : a;

/**
 * The memory that calls in flight point to. An address does not keep its buffer alive, and
 * V8 may drop a local it no longer reads: a garbage collection between taking the address and
 * the call could free the buffer. What is stored here stays reachable until the call returns.
 */
const pinned = new Set<unknown[]>();

/** Runs `call` with `values` kept reachable (see `pinned`). */
function pin<T>(values: unknown[], call: () => T): T {
  pinned.add(values);
  try {
    return call();
  } finally {
    pinned.delete(values);
  }
}

/** `pin` for a call that runs on a worker thread (a nonblocking symbol). */
async function pinAsync<T>(values: unknown[], call: () => Promise<T>): Promise<T> {
  pinned.add(values);
  try {
    return await call();
  } finally {
    pinned.delete(values);
  }
}

/** syscall(2): system call `nr` with up to six arguments; its result, or -1 with errno set. */
function sys(nr: number, ...args: Arg[]): number {
  return pin(args, () => {
    const a = [0, 1, 2, 3, 4, 5].map((i) => BigInt(address(args[i] ?? 0)));
    return Number(libc().syscall(BigInt(nr), a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!));
  });
}

/**
 * A system call by number, for subsystems with calls of their own (bpf, seccomp): the result,
 * or -1 with errno set (read it with `lastErrno`). Memory arguments stay pinned during the call.
 */
export function rawSyscall(nr: number, ...args: Arg[]): number {
  return sys(nr, ...args);
}

/** errno of the last failed call on this thread. */
export function lastErrno(): number {
  return errno();
}

/** Whether this process runs on arm64 (its system call numbers are the generic table's). */
export const ARM64 = Deno.build.arch === "aarch64";

export const AT_FDCWD = -100;

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
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_STRICTATIME = 0x1000000;
export const MS_SYNCHRONOUS = 0x10;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NODIRATIME = 0x800;
export const MS_SILENT = 0x8000;
export const MS_UNBINDABLE = 0x20000;
export const MS_RELATIME = 0x200000;
export const MS_LAZYTIME = 0x2000000;
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

const TIOCGWINSZ = 0x5413;
const TIOCSWINSZ = 0x5414;
const TIOCGPTN = 0x80045430;
const TIOCSPTLCK = 0x40045431;
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
 * them referenced until the call returns (`pin`).
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
  check(sys(SYS.unshare, flags), "unshare");
}

export function setns(fd: number, nstype: number): void {
  check(sys(SYS.setns, fd, nstype), "setns");
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
    sys(SYS.mount, cstr(source), cstr(target), cstr(fstype), flags, cstr(data)),
    fstype === "" ? "mount" : `mount ${fstype}`,
    target,
  );
}

export function umount2(target: string, flags: number): void {
  check(sys(SYS.umount2, cstr(target), flags), "umount", target);
}

export function pivotRoot(newRoot: string, putOld: string): void {
  check(sys(SYS.pivot_root, cstr(newRoot), cstr(putOld)), "pivot_root", newRoot);
}

/** setdomainname(2) in the current UTS namespace. */
export function setdomainname(name: string): void {
  const bytes = new TextEncoder().encode(name);
  check(sys(SYS.setdomainname, bytes, bytes.length), "setdomainname", name);
}

/** personality(2) of the calling thread (its children inherit it). */
export function personality(persona: number): void {
  check(sys(SYS.personality, persona), "personality");
}

/** ioprio_set(2) of the calling thread (IOPRIO_WHO_PROCESS, 0). */
export function ioprioSet(value: number): void {
  check(sys(SYS.ioprio_set, 1, 0, value), "ioprio_set");
}

/** sched_setattr(2) of the calling thread; `attr` is a struct sched_attr. */
export function schedSetattr(attr: Uint8Array<ArrayBuffer>): void {
  check(sys(SYS.sched_setattr, 0, attr, 0), "sched_setattr");
}

/** sched_setaffinity(2) of process `pid`; `mask` is a CPU bit mask. */
export function schedSetaffinity(pid: number, mask: Uint8Array<ArrayBuffer>): void {
  check(sys(SYS.sched_setaffinity, pid, mask.length, mask), "sched_setaffinity");
}

export function sethostname(name: string): void {
  const bytes = encoder.encode(name);
  check(sys(SYS.sethostname, bytes, bytes.length), "sethostname", name);
}

export function chdir(path: string): void {
  check(sys(SYS.chdir, cstr(path)), "chdir", path);
}

/** fchdir(2). */
export function fchdir(fd: number): void {
  check(sys(SYS.fchdir, fd), "fchdir");
}

/** chroot(2): for the calling thread only once it has unshared CLONE_FS. */
export function chroot(path: string): void {
  check(sys(SYS.chroot, cstr(path)), "chroot", path);
}

export function open(path: string, flags: number, mode = 0): number {
  const fd = sys(SYS.openat, AT_FDCWD, cstr(path), flags, mode);
  check(fd, "open", path);
  return fd;
}

export function close(fd: number): void {
  sys(SYS.close, fd);
}

/** Writes all of `data` to `fd`. */
export function writeAll(fd: number, data: Uint8Array<ArrayBuffer>): void {
  let off = 0;
  while (off < data.length) {
    const n = sys(SYS.write, fd, data.subarray(off), data.length - off);
    check(n, "write");
    off += n;
  }
}

export function mknod(path: string, mode: number, dev: number): void {
  check(sys(SYS.mknodat, AT_FDCWD, cstr(path), mode, dev), "mknod", path);
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
    sys(SYS.lsetxattr, cstr(path), cstr(name), buf, value.byteLength, 0),
    "lsetxattr",
    path,
  );
}

/** lgetxattr(2) of a small attribute; null when it is not set or not supported. */
export function lgetxattr(path: string, name: string): Uint8Array | null {
  const buf = new Uint8Array(256);
  const n = sys(SYS.lgetxattr, cstr(path), cstr(name), buf, buf.byteLength);
  if (n < 0) {
    const e = errno();
    if (e === ENODATA || e === EOPNOTSUPP) return null;
    throw new SyscallError("lgetxattr", e, path);
  }
  return buf.slice(0, n);
}

export function prctl(option: number, arg2: number | bigint, arg3: number | bigint = 0): void {
  check(sys(SYS.prctl, option, arg2, arg3, 0, 0), "prctl");
}

/** setgroups(2) for the calling thread only (the raw system call; glibc's changes every thread). */
export function setgroups(gids: readonly number[]): void {
  check(sys(SYS.setgroups, gids.length, new Uint32Array(gids)), "setgroups");
}

/** setresgid(2) for the calling thread only. */
export function setresgid(rgid: number, egid = rgid, sgid = rgid): void {
  check(sys(SYS.setresgid, rgid, egid, sgid), "setgid");
}

/** setresuid(2) for the calling thread only; -1 keeps an id. */
export function setresuid(ruid: number, euid = ruid, suid = ruid): void {
  check(sys(SYS.setresuid, ruid, euid, suid), "setuid");
}

export function umask(mask: number): number {
  return sys(SYS.umask, mask);
}

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;

const SIOCGIFFLAGS = 0x8913n;
const SIOCSIFFLAGS = 0x8914n;
const IFF_UP = 0x1;

/** Brings a network interface up (`ip link set lo up`) in the current network namespace. */
export function interfaceUp(name: string): void {
  const fd = sys(SYS.socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  check(fd, "socket");
  try {
    // struct ifreq { char ifr_name[16]; union { short ifr_flags; ... } } (40 bytes)
    const ifr = new Uint8Array(40);
    ifr.set(encoder.encode(name).subarray(0, 15), 0);
    check(sys(SYS.ioctl, fd, SIOCGIFFLAGS, ifr), "SIOCGIFFLAGS", name);
    const view = new DataView(ifr.buffer);
    view.setInt16(16, view.getInt16(16, true) | IFF_UP, true);
    check(sys(SYS.ioctl, fd, SIOCSIFFLAGS, ifr), "SIOCSIFFLAGS", name);
  } finally {
    close(fd);
  }
}

export function setsid(): void {
  check(sys(SYS.setsid), "setsid");
}

export function dup2(fd: number, target: number): void {
  if (fd !== target) check(sys(SYS.dup3, fd, target, 0), "dup2");
}

/** Takes an exclusive flock on `fd` without waiting; false when another process holds it. */
export function tryLock(fd: number): boolean {
  if (sys(SYS.flock, fd, LOCK_EX | LOCK_NB) === 0) return true;
  const code = errno();
  if (code === EWOULDBLOCK) return false;
  throw new SyscallError("flock", code);
}

/**
 * Opens a new pseudo-terminal (posix_openpt, unlockpt and ptsname, as the ioctls they are);
 * returns the master fd and the path of its slave.
 */
export function openPty(): { master: number; slave: string } {
  const master = open("/dev/ptmx", O_RDWR | 0o400 /* O_NOCTTY */ | O_CLOEXEC);
  try {
    check(sys(SYS.ioctl, master, TIOCSPTLCK, new Int32Array([0])), "unlockpt");
    const index = new Uint32Array(1);
    check(sys(SYS.ioctl, master, TIOCGPTN, index), "ptsname");
    return { master, slave: `/dev/pts/${index[0]}` };
  } catch (err) {
    close(master);
    throw err;
  }
}

/** The size of the terminal on `fd`, or undefined when it is not a terminal. */
export function getWindowSize(fd: number): { rows: number; cols: number } | undefined {
  const ws = new Uint8Array(8);
  if (sys(SYS.ioctl, fd, TIOCGWINSZ, ws) < 0) return undefined;
  const v = new DataView(ws.buffer);
  return { rows: v.getUint16(0, true), cols: v.getUint16(2, true) };
}

export function setWindowSize(fd: number, size: { rows: number; cols: number }): void {
  const ws = new Uint8Array(8);
  const v = new DataView(ws.buffer);
  v.setUint16(0, size.rows, true);
  v.setUint16(2, size.cols, true);
  check(sys(SYS.ioctl, fd, TIOCSWINSZ, ws), "TIOCSWINSZ");
}

/** Reads from `fd` on a worker thread; 0 at end of stream, -1 on error (EIO: pty closed). */
export async function readAsync(fd: number, buf: Uint8Array<ArrayBuffer>): Promise<number> {
  const ptr = Deno.UnsafePointer.of(buf);
  return Number(await pinAsync([buf], () => libc().read_async(fd, ptr, BigInt(buf.length))));
}

/**
 * Writes all of `data` to `fd` on a worker thread: a pipe whose reader does not read blocks
 * that thread, not the event loop. False when the descriptor refuses (its reader is gone).
 */
export async function writeAllAsync(fd: number, data: Uint8Array<ArrayBuffer>): Promise<boolean> {
  let off = 0;
  while (off < data.length) {
    const part = data.subarray(off);
    const ptr = Deno.UnsafePointer.of(part);
    const n = Number(
      await pinAsync([part], () => libc().write_async(fd, ptr, BigInt(part.length))),
    );
    if (n <= 0) return false;
    off += n;
  }
  return true;
}

/** Waits (on a worker thread) for any child; returns its PID and raw wait status, or -1. */
export async function waitAnyChild(): Promise<{ pid: number; status: number }> {
  const status = new Int32Array(1);
  const ptr = Deno.UnsafePointer.of(status);
  const pid = await pinAsync([status], () => libc().waitpid_async(-1, ptr, 0));
  return { pid, status: status[0]! };
}

export const PR_SET_DUMPABLE = 4;
export const PR_SET_KEEPCAPS = 8;
export const PR_CAPBSET_DROP = 24;
export const PR_CAP_AMBIENT = 47;
export const PR_CAP_AMBIENT_RAISE = 2;
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;

/** The calling thread's id (gettid(2)). */
export function gettid(): number {
  return sys(SYS.gettid);
}

/** A capability set of one thread, as capset(2) takes it: three 64-bit masks. */
export interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/** capset(2)'s arguments for `caps`: its header (this thread) and its two data structs. */
export function capsetArguments(
  caps: CapSets,
): [Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>] {
  const header = new Uint32Array([LINUX_CAPABILITY_VERSION_3, 0]);
  const low = (v: bigint) => Number(v & 0xffffffffn);
  const high = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
  // struct __user_cap_data_struct[2]: {effective, permitted, inheritable} for bits 0-31, 32-63.
  const data = new Uint32Array([
    low(caps.effective),
    low(caps.permitted),
    low(caps.inheritable),
    high(caps.effective),
    high(caps.permitted),
    high(caps.inheritable),
  ]);
  return [header, data];
}

/** capset(2) for the calling thread only. */
export function capset(caps: CapSets): void {
  const [header, data] = capsetArguments(caps);
  check(sys(SYS.capset, header, data), "capset");
}

/** capget(2) of the calling thread. */
export function capget(): CapSets {
  const header = new Uint32Array([LINUX_CAPABILITY_VERSION_3, 0]);
  const data = new Uint32Array(6);
  check(sys(SYS.capget, header, data), "capget");
  const join = (lo: number, hi: number) => (BigInt(data[hi]!) << 32n) | BigInt(data[lo]!);
  return { effective: join(0, 3), permitted: join(1, 4), inheritable: join(2, 5) };
}

const KEYCTL_JOIN_SESSION_KEYRING = 1;

/** Gives the calling thread a new, anonymous session keyring (keyctl(2)). */
export function joinSessionKeyring(): void {
  check(sys(SYS.keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0), "keyctl");
}

/** Resource numbers of <sys/resource.h>, by OCI name. */
export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

/** RLIM_INFINITY, as prlimit(2) reads and writes it. */
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** prlimit(2): sets a resource limit of process `pid` (0: this process). */
export function prlimit(pid: number, resource: number, soft: bigint, hard: bigint): void {
  const limits = new BigUint64Array([soft, hard]);
  check(sys(SYS.prlimit64, pid, resource, limits, null), "prlimit");
}

/** prlimit(2): reads a resource limit of process `pid` (0: this process). */
export function getrlimit(pid: number, resource: number): { soft: bigint; hard: bigint } {
  const limits = new BigUint64Array(2);
  check(sys(SYS.prlimit64, pid, resource, null, limits), "prlimit");
  return { soft: limits[0]!, hard: limits[1]! };
}

/** A unix stream socket connected to `path` (close-on-exec). */
export function connectUnix(path: string): number {
  const AF_UNIX = 1, SOCK_STREAM = 1, ENAMETOOLONG = 36;
  const sock = sys(SYS.socket, AF_UNIX, SOCK_STREAM | O_CLOEXEC, 0);
  check(sock, "socket");
  try {
    const addr = new Uint8Array(110);
    new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
    const bytes = new TextEncoder().encode(path);
    if (bytes.length > 107) throw new SyscallError("connect", ENAMETOOLONG, path);
    addr.set(bytes, 2);
    if (sys(SYS.connect, sock, addr, 2 + bytes.length + 1) < 0) {
      throw new SyscallError("connect", errno(), path);
    }
    return sock;
  } catch (err) {
    close(sock);
    throw err;
  }
}

/**
 * Sends descriptor `fd` over the connected unix socket `sock` (SCM_RIGHTS), with `name` as the
 * message's bytes: runc's console-socket protocol (its utils.SendFd), which containerd's shim
 * and Podman's conmon receive.
 */
export function sendFd(sock: number, fd: number, name: string): void {
  const SOL_SOCKET = 1, SCM_RIGHTS = 1;
  const payload = new TextEncoder().encode(name);
  const ptr = (b: ArrayBufferView) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
  const iov = new BigUint64Array([ptr(payload), BigInt(payload.length)]);
  // cmsghdr: cmsg_len (CMSG_LEN(4) = 20), cmsg_level, cmsg_type, one int; CMSG_SPACE(4) = 24.
  const control = new Uint8Array(24);
  const cv = new DataView(control.buffer);
  cv.setBigUint64(0, 20n, true);
  cv.setInt32(8, SOL_SOCKET, true);
  cv.setInt32(12, SCM_RIGHTS, true);
  cv.setInt32(16, fd, true);
  // msghdr: name, namelen, iov, iovlen, control, controllen, flags.
  const msg = new BigUint64Array([0n, 0n, ptr(iov), 1n, ptr(control), 24n, 0n]);
  pin([payload, iov, control, msg], () => {
    if (sys(SYS.sendmsg, sock, msg, 0) < 0) throw new SyscallError("sendmsg", errno());
  });
}

/** A pipe, both ends close-on-exec: [read end, write end]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check(sys(SYS.pipe2, fds, O_CLOEXEC), "pipe");
  return [fds[0]!, fds[1]!];
}

export const O_NONBLOCK = 0o4000;
export const O_PATH = 0o10000000;
export const O_NOCTTY = 0o400;
export const O_CREAT = 0o100;

/** open(2) on a worker thread: for a FIFO, it returns once the other end is opened. */
export async function openAsync(path: string, flags: number): Promise<number> {
  const p = cstr(path);
  const fd = await pinAsync([p], () => libc().open_async(Deno.UnsafePointer.of(p), flags, 0));
  if (fd < 0) throw new SyscallError("open", errno(), path);
  return fd;
}

const FSOPEN_CLOEXEC = 1;
const FSCONFIG_SET_FD = 5;

/**
 * Whether this kernel's procfs takes the `pidns` option (Linux 6.18): a /proc for a PID
 * namespace that has no process yet, mounted by a thread outside it.
 */
export function procTakesPidns(): boolean {
  const fs = sys(SYS.fsopen, cstr("proc"), FSOPEN_CLOEXEC);
  if (fs < 0) return false;
  const ns = sys(SYS.openat, AT_FDCWD, cstr("/proc/thread-self/ns/pid"), O_RDONLY | O_CLOEXEC, 0);
  try {
    return ns >= 0 && sys(SYS.fsconfig, fs, FSCONFIG_SET_FD, cstr("pidns"), null, ns) === 0;
  } finally {
    if (ns >= 0) close(ns);
    close(fs);
  }
}

const FSCONFIG_CMD_CREATE = 6;
const FSMOUNT_CLOEXEC = 1;

/**
 * A detached procfs for the PID namespace `pidnsFd` refers to (Linux 6.18's `pidns`), with the
 * mount attributes `attrs` (MOUNT_ATTR_*): fsopen, fsconfig, fsmount. Attach it with moveMount.
 */
export function procfsMount(pidnsFd: number, attrs: number): number {
  const fs = sys(SYS.fsopen, cstr("proc"), FSOPEN_CLOEXEC);
  check(fs, "fsopen", "proc");
  try {
    check(sys(SYS.fsconfig, fs, FSCONFIG_SET_FD, cstr("pidns"), null, pidnsFd), "fsconfig");
    check(sys(SYS.fsconfig, fs, FSCONFIG_CMD_CREATE, null, null, 0), "fsconfig");
    const mount = sys(SYS.fsmount, fs, FSMOUNT_CLOEXEC, attrs);
    check(mount, "fsmount", "proc");
    return mount;
  } finally {
    close(fs);
  }
}

const OPEN_TREE_CLONE = 1;
const OPEN_TREE_CLOEXEC = O_CLOEXEC;
const AT_RECURSIVE = 0x8000;
const AT_EMPTY_PATH = 0x1000;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;

/**
 * Mounts a copy of `path` (and what is mounted below it) on itself with `attrs` set, in one
 * step (open_tree, mount_setattr, move_mount): unlike a bind mount followed by a remount, the
 * copy is read-only from the moment it appears, also where mount propagation copies it.
 */
export function bindWithAttributes(path: string, attrs: number): void {
  const tree = sys(
    SYS.open_tree,
    AT_FDCWD,
    cstr(path),
    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
  );
  check(tree, "open_tree", path);
  try {
    // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd }
    const attr = new BigUint64Array([BigInt(attrs), 0n, 0n, 0n]);
    check(
      sys(SYS.mount_setattr, tree, cstr(""), AT_EMPTY_PATH | AT_RECURSIVE, attr, 32),
      "mount_setattr",
      path,
    );
    check(
      sys(SYS.move_mount, tree, cstr(""), AT_FDCWD, cstr(path), MOVE_MOUNT_F_EMPTY_PATH),
      "move_mount",
      path,
    );
  } finally {
    close(tree);
  }
}

export const O_NOFOLLOW = 0o400000;
export const O_EXCL = 0o200;
export const ELOOP = 40;
export const EXDEV = 18;
/** openat2's `resolve` flags (linux/openat2.h). */
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

/**
 * openat2(2): `path` opened relative to `dirfd` with `resolve`'s rules, so that the kernel
 * itself keeps the walk inside a directory (RESOLVE_IN_ROOT: `dirfd` is `/` for the walk, its
 * symlinks and `..` included). Retried while the kernel reports a concurrent rename (EAGAIN).
 */
export function openat2(dirfd: number, path: string, flags: number, resolve: number): number {
  // struct open_how { u64 flags; u64 mode; u64 resolve; }
  const how = new BigUint64Array([BigInt(flags | O_CLOEXEC), 0n, BigInt(resolve)]);
  for (let attempt = 0;; attempt++) {
    const fd = sys(SYS.openat2, dirfd, cstr(path), how, 24);
    if (fd >= 0) return fd;
    const code = errno();
    if (code === EAGAIN && attempt < 16) continue;
    throw new SyscallError("openat2", code, path);
  }
}

/**
 * A detached copy of the mount tree at the file `fd` refers to (open_tree with
 * OPEN_TREE_CLONE and AT_EMPTY_PATH): a bind mount not yet attached anywhere.
 */
export function openTree(fd: number, recursive: boolean): number {
  const tree = sys(
    SYS.open_tree,
    fd,
    cstr(""),
    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0),
  );
  check(tree, "open_tree");
  return tree;
}

/**
 * mount_setattr(2) on the mount `fd` refers to (and those below it with `recursive`): mount
 * attributes set and cleared, and a propagation type (MS_PRIVATE, MS_SLAVE, MS_SHARED) or 0.
 */
export function mountSetattr(
  fd: number,
  attrs: { set: number; clear: number; propagation: number },
  recursive: boolean,
): void {
  const attr = new BigUint64Array([
    BigInt(attrs.set),
    BigInt(attrs.clear),
    BigInt(attrs.propagation),
    0n,
  ]);
  check(
    sys(SYS.mount_setattr, fd, cstr(""), AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), attr, 32),
    "mount_setattr",
  );
}

/** move_mount(2): the detached mount `from` attached on the file that `to` refers to. */
export function moveMount(from: number, to: number): void {
  check(
    sys(
      SYS.move_mount,
      from,
      cstr(""),
      to,
      cstr(""),
      MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
    ),
    "move_mount",
  );
}

const MOVE_MOUNT_T_EMPTY_PATH = 0x40;

/** One step that posix_spawn performs in the child, in order, before execve. */
export type FileAction =
  | { dup2: [from: number, to: number] }
  | { open: [fd: number, path: string, flags: number] }
  | { close: number }
  | { closefrom: number }
  | { chdir: string }
  | { fchdir: number };

/** How posix_spawn starts a process. */
export interface SpawnOptions {
  actions?: FileAction[];
  /** A new session (setsid): for a terminal that becomes the controlling one. */
  setsid?: boolean;
  /** A new process group (setpgid(0, 0)). */
  setpgroup?: boolean;
}

const SPAWN_SYMBOLS = {
  posix_spawn: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  posix_spawn_file_actions_init: { parameters: ["pointer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["pointer"], result: "i32" },
  posix_spawn_file_actions_addopen: {
    parameters: ["pointer", "i32", "pointer", "i32", "u32"],
    result: "i32",
  },
  posix_spawn_file_actions_adddup2: { parameters: ["pointer", "i32", "i32"], result: "i32" },
  posix_spawn_file_actions_addclose: { parameters: ["pointer", "i32"], result: "i32" },
  posix_spawn_file_actions_addclosefrom_np: { parameters: ["pointer", "i32"], result: "i32" },
  posix_spawn_file_actions_addchdir_np: { parameters: ["pointer", "pointer"], result: "i32" },
  posix_spawn_file_actions_addfchdir_np: { parameters: ["pointer", "i32"], result: "i32" },
  posix_spawnattr_init: { parameters: ["pointer"], result: "i32" },
  posix_spawnattr_destroy: { parameters: ["pointer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["pointer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["pointer", "pointer"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["pointer", "pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let spawnLib: Deno.DynamicLibrary<typeof SPAWN_SYMBOLS>["symbols"] | undefined;

const POSIX_SPAWN_SETPGROUP = 0x02;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;

/**
 * posix_spawn(3): starts `path` with `argv` and `env` from the calling thread, whose
 * namespaces, root, credentials and seccomp filter the child inherits, and returns its PID once
 * it has called execve. Unlike fork, the child runs only libc code until then (clone with
 * CLONE_VM|CLONE_VFORK: this thread waits). Every signal starts with its default action and
 * unblocked (an ignored signal would stay ignored across execve). A failed `actions` step or
 * execve throws a SyscallError with its errno.
 */
export function spawn(
  path: string,
  argv: readonly string[],
  env: readonly string[],
  options: SpawnOptions = {},
): number {
  const f = spawnLib ??= Deno.dlopen("libc.so.6", SPAWN_SYMBOLS).symbols;
  const ptr = Deno.UnsafePointer.of;
  // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336 on 64-bit Linux.
  const actions = new Uint8Array(512);
  const attr = new Uint8Array(512);
  const everySignal = new Uint8Array(128).fill(0xff);
  const noSignal = new Uint8Array(128);
  const keep: unknown[] = [actions, attr, everySignal, noSignal];
  const ok = (rc: number, what: string) => {
    if (rc !== 0) throw new SyscallError(what, rc);
  };
  ok(f.posix_spawn_file_actions_init(ptr(actions)), "posix_spawn_file_actions_init");
  ok(f.posix_spawnattr_init(ptr(attr)), "posix_spawnattr_init");
  try {
    for (const a of options.actions ?? []) {
      if ("dup2" in a) {
        ok(f.posix_spawn_file_actions_adddup2(ptr(actions), a.dup2[0], a.dup2[1]), "dup2");
      } else if ("open" in a) {
        const p = cstr(a.open[1]);
        keep.push(p);
        ok(
          f.posix_spawn_file_actions_addopen(ptr(actions), a.open[0], ptr(p), a.open[2], 0),
          "open",
        );
      } else if ("close" in a) {
        ok(f.posix_spawn_file_actions_addclose(ptr(actions), a.close), "close");
      } else if ("closefrom" in a) {
        ok(f.posix_spawn_file_actions_addclosefrom_np(ptr(actions), a.closefrom), "closefrom");
      } else if ("chdir" in a) {
        const p = cstr(a.chdir);
        keep.push(p);
        ok(f.posix_spawn_file_actions_addchdir_np(ptr(actions), ptr(p)), "chdir");
      } else {
        ok(f.posix_spawn_file_actions_addfchdir_np(ptr(actions), a.fchdir), "fchdir");
      }
    }
    let flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if (options.setsid) flags |= POSIX_SPAWN_SETSID;
    if (options.setpgroup) flags |= POSIX_SPAWN_SETPGROUP;
    ok(f.posix_spawnattr_setflags(ptr(attr), flags), "posix_spawnattr_setflags");
    ok(f.posix_spawnattr_setsigdefault(ptr(attr), ptr(everySignal)), "sigdefault");
    ok(f.posix_spawnattr_setsigmask(ptr(attr), ptr(noSignal)), "sigmask");
    const pid = new Int32Array(1);
    const a = cstrArray(argv);
    const e = cstrArray(env);
    const file = cstr(path);
    keep.push(pid, a, e, file);
    const rc = pin(
      keep,
      () => f.posix_spawn(ptr(pid), ptr(file), ptr(actions), ptr(attr), ptr(a.array), ptr(e.array)),
    );
    if (rc !== 0) throw new SyscallError("exec", rc, path);
    return pid[0]!;
  } finally {
    f.posix_spawn_file_actions_destroy(ptr(actions));
    f.posix_spawnattr_destroy(ptr(attr));
  }
}

const F_GETFL = 3;
const F_SETFL = 4;
export const EAGAIN = 11;
export const EIO = 5;
export const POLLIN = 0x1;

/**
 * Whether `fd` is open and was inherited across this process's execve: open without
 * close-on-exec (every descriptor Deno opens itself has it).
 */
export function inheritedDescriptor(fd: number): boolean {
  const flags = sys(SYS.fcntl, fd, 1 /* F_GETFD */);
  return flags >= 0 && (flags & 1 /* FD_CLOEXEC */) === 0;
}

/** Makes reads of `fd` return at once (EAGAIN) when there is nothing to read. */
export function setNonblocking(fd: number): void {
  const flags = sys(SYS.fcntl, fd, F_GETFL);
  check(flags, "fcntl");
  check(sys(SYS.fcntl, fd, F_SETFL, flags | O_NONBLOCK), "fcntl");
}

/**
 * read(2) now: the byte count, 0 at the end (EIO too: a terminal whose other side is gone),
 * -1 when a non-blocking descriptor has nothing yet.
 */
export function readNow(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  const n = sys(SYS.read, fd, buf, buf.length);
  if (n >= 0) return n;
  const e = errno();
  if (e === EAGAIN) return -1;
  if (e === EIO) return 0;
  throw new SyscallError("read", e);
}

/**
 * poll(2) on a worker thread: waits until one of `fds` is readable (or ends); returns, for
 * each, whether it is.
 */
export async function pollReadable(fds: readonly number[]): Promise<boolean[]> {
  // struct pollfd { int fd; short events; short revents; }
  const buf = new Int32Array(fds.length * 2);
  fds.forEach((fd, i) => {
    buf[i * 2] = fd;
    buf[i * 2 + 1] = POLLIN;
  });
  const ptr = Deno.UnsafePointer.of(buf);
  const n = await pinAsync([buf], () => libc().poll_async(ptr, BigInt(fds.length), -1));
  if (n < 0) throw new SyscallError("poll", errno());
  return fds.map((_, i) => (buf[i * 2 + 1]! >>> 16) !== 0);
}

// Process bookkeeping for a parent of whole process trees (the benchmark, bench/proc.ts): wait4
// with the resource usage of what was reaped, kill, and the subreaper flag of prctl.

/** prctl(2) option: orphaned descendants are re-parented to this process, not to init. */
export const PR_SET_CHILD_SUBREAPER = 36;
/** wait4(2) option: return at once when no child has changed state. */
export const WNOHANG = 1;
export const ESRCH = 3;
export const ECHILD = 10;
export const O_APPEND = 0o2000;

const SYS_WAIT4 = ARM64 ? 260 : 61;
const SYS_KILL = ARM64 ? 129 : 62;

/** Resource usage of a reaped child and the descendants it waited for (struct rusage). */
export interface Rusage {
  /** ru_utime and ru_stime, milliseconds. */
  userMs: number;
  sysMs: number;
  /** ru_maxrss: the peak resident set of the largest single process, KiB. */
  maxRssKiB: number;
}

/** What wait4 reaped: its PID (0: none has exited yet, with WNOHANG), wait status and usage. */
export interface Waited {
  pid: number;
  status: number;
  usage: Rusage;
}

/** struct rusage on 64-bit Linux: ru_utime, ru_stime (struct timeval), ru_maxrss (long). */
function rusage(buf: Uint8Array<ArrayBuffer>): Rusage {
  const v = new DataView(buf.buffer);
  const ms = (at: number) =>
    Number(v.getBigInt64(at, true)) * 1000 + Number(v.getBigInt64(at + 8, true)) / 1000;
  return { userMs: ms(0), sysMs: ms(16), maxRssKiB: Number(v.getBigInt64(32, true)) };
}

/**
 * wait4(2) on this thread: reaps child `pid` (-1: any child) and returns its usage; with
 * WNOHANG, `pid` 0 when none has exited yet. No child at all is a SyscallError with ECHILD.
 */
export function wait4(pid: number, options = 0): Waited {
  const status = new Int32Array(1);
  const usage = new Uint8Array(144);
  const reaped = sys(SYS_WAIT4, pid, status, options, usage);
  check(reaped, "wait4");
  return { pid: reaped, status: status[0]!, usage: rusage(usage) };
}

const WAIT_SYMBOLS = {
  wait4: { parameters: ["i32", "pointer", "i32", "pointer"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

let waitLib: Deno.DynamicLibrary<typeof WAIT_SYMBOLS>["symbols"] | undefined;

/** wait4(2) on a worker thread (the event loop keeps going): waits for child `pid` to end. */
export async function wait4Async(pid: number): Promise<Waited> {
  const f = waitLib ??= Deno.dlopen("libc.so.6", WAIT_SYMBOLS).symbols;
  const status = new Int32Array(1);
  const usage = new Uint8Array(144);
  const reaped = await pinAsync(
    [status, usage],
    () => f.wait4(pid, Deno.UnsafePointer.of(status), 0, Deno.UnsafePointer.of(usage)),
  );
  // errno is the worker thread's, out of reach here.
  if (reaped < 0) throw new Error(`wait4 of process ${pid} failed`);
  return { pid: reaped, status: status[0]!, usage: rusage(usage) };
}

/** kill(2): sends `signal` to process `pid`, or to process group -`pid`. */
export function kill(pid: number, signal: number): void {
  check(sys(SYS_KILL, pid, signal), "kill");
}
