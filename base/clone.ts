/**
 * A process born by clone3(2) that runs a list of system calls, then execve: the one way for a
 * thread of mini-docker to start a process in a new user namespace.
 *
 * A container's first process is normally posix_spawn'ed by the thread that became the container
 * (container/recipe.ts). That cannot make a user namespace: unshare(CLONE_NEWUSER) and
 * setns(CLONE_NEWUSER) are refused (EINVAL) to a thread of a multi-threaded process, and every
 * Deno process is one. clone3 may create one, because the new process has a single thread. But
 * the new process is a copy of mini-docker without V8's heap (mapped "don't fork"): it can run no
 * JavaScript, and no libc code that might touch memory another thread was using. So it runs 103
 * bytes of machine code of ours (x86-64, below), which do clone3 and, in the child, walk a list
 * of system calls written by the thread in memory of its own (an anonymous mapping, copied into
 * the child):
 *
 *   struct op { u64 nr, a0, a1, a2, a3, a4, a5; i64 errfd; }   // 64 bytes each
 *
 * Each op is `syscall(nr, a0..a5)`; with `errfd` >= 0 a negative result stops the child: it
 * writes `{ -errno, address of the op }` (16 bytes) to `errfd` and exits with 127. The last op is
 * execve; `errfd` is close-on-exec, so the parent reads end-of-file when the command runs, and
 * the failure otherwise (as posix_spawn reports execve's errno).
 *
 * The list is written in two parts. The child is born blocked in its first op, a read(2) of a
 * pipe; the thread then makes the container from outside (it joins the child's new namespaces,
 * mounts, pivot_root), writes the rest of the list into the child's copy of the memory
 * (process_vm_writev(2)), and writes the byte that lets it go on. If the thread fails first, the
 * pipe's end-of-file lets the child run the placeholder that follows the read: exit.
 *
 * Pointers in ops (paths, argv, the seccomp program) point into the same mapping, whose address
 * is the same in both processes. Only x86-64 has the machine code so far: elsewhere `clone`
 * throws, and a container that needs it is refused in one line.
 */
import { cstr, SyscallError } from "./libc.ts";
import * as libc from "./libc.ts";

/** The machine code, assembled from this (GNU as, Intel syntax). */
// run(struct clone_args *args, size_t size, struct op *ops):
//        push r15                ; kept for the parent
//        mov  r15, rdx           ; the ops
//        mov  eax, 435           ; clone3(args, size)
//        syscall
//        test rax, rax
//        jz   loop               ; 0: the child
//        pop  r15                ; the parent: the child's PID, or -errno
//        ret
// loop:  mov  rax, [r15]         ; nr
//        mov  rdi, [r15+8]       ; a0 .. a5
//        mov  rsi, [r15+16]
//        mov  rdx, [r15+24]
//        mov  r10, [r15+32]
//        mov  r8,  [r15+40]
//        mov  r9,  [r15+48]
//        syscall
//        mov  rdi, [r15+56]      ; errfd
//        test rdi, rdi
//        js   next               ; < 0: the result is not checked
//        test rax, rax
//        js   fail
// next:  add  r15, 64
//        jmp  loop
// fail:  mov  [r15], rax         ; -errno
//        mov  [r15+8], r15       ; which op
//        mov  rsi, r15
//        mov  edx, 16
//        mov  eax, 1             ; write(errfd, op, 16)
//        syscall
//        mov  edi, 127
//        mov  eax, 231           ; exit_group(127)
//        syscall
// deno-fmt-ignore
const X86_64_CODE = new Uint8Array([
  0x41, 0x57, 0x49, 0x89, 0xd7, 0xb8, 0xb3, 0x01, 0x00, 0x00, 0x0f, 0x05,
  0x48, 0x85, 0xc0, 0x74, 0x03, 0x41, 0x5f, 0xc3, 0x49, 0x8b, 0x07, 0x49,
  0x8b, 0x7f, 0x08, 0x49, 0x8b, 0x77, 0x10, 0x49, 0x8b, 0x57, 0x18, 0x4d,
  0x8b, 0x57, 0x20, 0x4d, 0x8b, 0x47, 0x28, 0x4d, 0x8b, 0x4f, 0x30, 0x0f,
  0x05, 0x49, 0x8b, 0x7f, 0x38, 0x48, 0x85, 0xff, 0x78, 0x05, 0x48, 0x85,
  0xc0, 0x78, 0x06, 0x49, 0x83, 0xc7, 0x40, 0xeb, 0xcf, 0x49, 0x89, 0x07,
  0x4d, 0x89, 0x7f, 0x08, 0x4c, 0x89, 0xfe, 0xba, 0x10, 0x00, 0x00, 0x00,
  0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7f, 0x00, 0x00, 0x00,
  0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05,
]);

/** x86-64 system call numbers (the only architecture with the machine code). */
export const NR = {
  read: 0,
  write: 1,
  close: 3,
  mmap: 9,
  mprotect: 10,
  personality: 135,
  ioprio_set: 251,
  sched_setattr: 314,
  munmap: 11,
  rt_sigaction: 13,
  rt_sigprocmask: 14,
  ioctl: 16,
  execve: 59,
  wait4: 61,
  kill: 62,
  fcntl: 72,
  chdir: 80,
  fchdir: 81,
  setpgid: 109,
  setsid: 112,
  setgroups: 116,
  setresuid: 117,
  setresgid: 119,
  capset: 126,
  prctl: 157,
  exit_group: 231,
  keyctl: 250,
  openat: 257,
  dup3: 292,
  pipe2: 293,
  setns: 308,
  process_vm_writev: 311,
  seccomp: 317,
  clone3: 435,
  close_range: 436,
} as const;

/** Why this machine cannot start such a process, or undefined. */
export function unsupported(): string | undefined {
  return Deno.build.arch === "x86_64"
    ? undefined
    : `a process in a new user namespace is started by machine code that mini-docker has for x86-64 only, not ${Deno.build.arch}`;
}

const PROT_READ = 1;
const PROT_WRITE = 2;
const PROT_EXEC = 4;
const MAP_PRIVATE = 2;
const MAP_ANONYMOUS = 0x20;
const CLONE_PIDFD = 0x1000n;
const CLONE_INTO_CGROUP = 0x200000000n;
const SIGCHLD = 17n;
const SIG_SETMASK = 2;
const O_CLOEXEC = 0o2000000;

/** The ops of the child's own before its wait: the rest is written after them. */
const WAITED = 3;

/** The mapping's size: ops first, data after. */
const REGION = 1 << 20;
const OP_SIZE = 64;
const DATA_AT = 128 << 10;

const RUN = { parameters: ["pointer", "usize", "pointer"], result: "i64" } as const;

let runner: Deno.UnsafeFnPointer<typeof RUN> | undefined;

function sys(nr: number, ...args: (number | bigint | ArrayBufferView)[]): number {
  return libc.rawSyscall(nr, ...args);
}

/** The executable page of the machine code, while a clone is being made. */
let codePage: bigint | undefined;

/** The machine code in an executable page of this process (unmapped after the clone). */
function code(): NonNullable<typeof runner> {
  if (runner !== undefined) return runner;
  const why = unsupported();
  if (why !== undefined) throw new Error(why);
  const page = mapAnonymous(4096);
  codePage = page.address;
  new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(page.pointer, 4096)).set(X86_64_CODE);
  check(sys(NR.mprotect, page.address, 4096, PROT_READ | PROT_EXEC), "mprotect");
  runner = new Deno.UnsafeFnPointer(page.pointer as Deno.PointerObject<typeof RUN>, RUN);
  return runner;
}

function mapAnonymous(size: number): { pointer: Deno.PointerObject; address: bigint } {
  const addr = libc.rawSyscall(
    NR.mmap,
    0,
    size,
    PROT_READ | PROT_WRITE,
    MAP_PRIVATE | MAP_ANONYMOUS,
    -1,
    0,
  );
  check(addr, "mmap");
  const pointer = Deno.UnsafePointer.create(BigInt(addr))!;
  return { pointer, address: BigInt(addr) };
}

function check(rc: number, call: string): void {
  if (rc < 0 || (rc === -1)) throw new SyscallError(call, libc.lastErrno());
}

/** An argument of an op: a number, or the address of data written into the mapping. */
export type Arg = number | bigint | Data;

/** Data in the mapping, by its address. */
export class Data {
  constructor(readonly address: bigint) {}
}

/** The list of ops in the mapping, written in place (see the top of this file). */
export class Script {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  readonly #base: bigint;
  #ops = 0;
  #data = 0;
  /** What each op does, in the user's terms: the failure's message. */
  readonly labels: string[] = [];

  constructor(pointer: Deno.PointerObject, base: bigint) {
    const buffer = Deno.UnsafePointerView.getArrayBuffer(pointer, REGION);
    this.#view = new DataView(buffer);
    this.#bytes = new Uint8Array(buffer);
    this.#base = base;
  }

  /** The number of ops so far. */
  get length(): number {
    return this.#ops;
  }

  /** Forgets the ops from `index` on (their data stays: it is small). */
  truncate(index: number): void {
    this.#ops = index;
    this.labels.length = index;
  }

  /** Adds `syscall(nr, args)`; `errfd` gets the failure (-1: the result is not checked). */
  op(label: string, errfd: number, nr: number, ...args: Arg[]): void {
    if ((this.#ops + 1) * OP_SIZE > DATA_AT) {
      throw new Error("too many steps for the first process");
    }
    const at = this.#ops * OP_SIZE;
    this.#view.setBigInt64(at, BigInt(nr), true);
    for (let i = 0; i < 6; i++) this.#view.setBigInt64(at + 8 + i * 8, value(args[i] ?? 0), true);
    this.#view.setBigInt64(at + 56, BigInt(errfd), true);
    this.labels[this.#ops] = label;
    this.#ops++;
  }

  /** Copies `bytes` into the mapping (8-byte aligned). */
  bytes(bytes: Uint8Array): Data {
    const at = DATA_AT + this.#data;
    if (at + bytes.length > REGION) throw new Error("too much data for the first process");
    this.#bytes.set(bytes, at);
    this.#data += (bytes.length + 7) & ~7;
    return new Data(this.#base + BigInt(at));
  }

  /** A NUL-terminated string. */
  str(s: string): Data {
    return this.bytes(cstr(s));
  }

  /** An array of 64-bit values (addresses of other data among them). */
  u64s(values: readonly Arg[]): Data {
    const b = new Uint8Array(values.length * 8);
    const v = new DataView(b.buffer);
    values.forEach((x, i) => v.setBigInt64(i * 8, value(x), true));
    return this.bytes(b);
  }

  /** A NULL-terminated array of strings (argv, envp). */
  strings(list: readonly string[]): Data {
    return this.u64s([...list.map((s) => this.str(s)), 0]);
  }

  /** The op at `address`: its index. */
  indexOf(address: bigint): number {
    return Number((address - this.#base) / BigInt(OP_SIZE));
  }

  /** [address, length] of the ops from `from` on, and of the data. */
  ranges(from: number): [bigint, number][] {
    return [
      [this.#base + BigInt(from * OP_SIZE), (this.#ops - from) * OP_SIZE],
      [this.#base + BigInt(DATA_AT), this.#data],
    ];
  }
}

function value(x: Arg): bigint {
  return x instanceof Data ? x.address : BigInt(x);
}

/**
 * A process cloned from this thread, born in the namespaces of `flags` (and, with
 * `cgroupFd`, in that cgroup v2), blocked until `run` gives it the rest of its ops.
 */
export class ScriptedChild {
  readonly pid: number;
  /** A pidfd of it (setns(2) takes one for several namespaces at once). */
  readonly pidfd: number;
  readonly script: Script;
  /** The mapping of the ops and their data (the child has its own copy). */
  readonly #region: bigint;
  /** This process's ends: the release, and the child's report. */
  #go: number;
  #report: number;
  /** The child's end of the report pipe (a number in its own descriptor table). */
  readonly errfd: number;
  #done = false;

  private constructor(
    pid: number,
    pidfd: number,
    script: Script,
    region: bigint,
    go: number,
    report: number,
    errfd: number,
  ) {
    this.#region = region;
    this.pid = pid;
    this.pidfd = pidfd;
    this.script = script;
    this.#go = go;
    this.#report = report;
    this.errfd = errfd;
  }

  /** clone3 with `flags` (CLONE_NEW*); throws SyscallError("clone3", errno). */
  static clone(flags: number, cgroupFd?: number): ScriptedChild {
    const run = code();
    const region = mapAnonymous(REGION);
    const script = new Script(region.pointer, region.address);
    const go = pipe();
    const report = pipe();
    // First: its copies of this process's ends closed (so that this process's end, exit
    // included, is the pipe's end for it), then wait for the rest. Then, unless the rest was
    // written over it, end.
    script.op("close", -1, NR.close, go[1]);
    script.op("close", -1, NR.close, report[0]);
    script.op(
      "wait for mini-docker",
      report[1],
      NR.read,
      go[0],
      script.bytes(new Uint8Array(8)),
      1,
    );
    script.op("end", -1, NR.exit_group, 1);
    // struct clone_args (CLONE_ARGS_SIZE_VER2: 88 bytes).
    const pidfdOut = new Int32Array(2);
    const args = new BigUint64Array(11);
    args[0] = BigInt(flags) | CLONE_PIDFD | (cgroupFd === undefined ? 0n : CLONE_INTO_CGROUP);
    args[1] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(pidfdOut)));
    args[4] = SIGCHLD;
    args[10] = BigInt(cgroupFd ?? 0);
    // Every signal blocked on this thread across the clone, so the child is born with them
    // blocked: a handler of Deno's must never run in it. Its ops unblock them before execve.
    const all = new Uint8Array(8).fill(0xff);
    const old = new Uint8Array(8);
    check(sys(NR.rt_sigprocmask, SIG_SETMASK, all, old, 8), "rt_sigprocmask");
    let pid: number;
    // The call's memory stays reachable until it returns (as base/libc.ts pins its buffers).
    const inCall = [args, pidfdOut];
    try {
      pid = Number(run.call(Deno.UnsafePointer.of(args), 88n, region.pointer));
    } finally {
      inCall.length = 0;
      sys(NR.rt_sigprocmask, SIG_SETMASK, old, 0, 8);
      // The child has its copy of the code: this process's goes (a thread makes one clone).
      if (codePage !== undefined) sys(NR.munmap, codePage, 4096);
      codePage = undefined;
      runner = undefined;
    }
    libc.close(go[0]);
    libc.close(report[1]);
    if (pid < 0) {
      libc.close(go[1]);
      libc.close(report[0]);
      sys(NR.munmap, region.address, REGION);
      throw new SyscallError("clone3", -pid);
    }
    // The child has its copy; the rest of its ops go over the placeholder.
    script.truncate(WAITED);
    return new ScriptedChild(
      pid,
      pidfdOut[0]!,
      script,
      region.address,
      go[1],
      report[0],
      report[1],
    );
  }

  /**
   * Writes the ops after the wait (the script from index WAITED on) into the child, lets it go, and
   * returns once it has called execve. A failed op throws SyscallError(its label, errno), the
   * child reaped.
   */
  run(): void {
    this.#done = true;
    const ranges = this.script.ranges(WAITED);
    const iov = new BigUint64Array(ranges.flatMap(([a, n]) => [a, BigInt(n)]));
    const total = ranges.reduce((n, [, len]) => n + len, 0);
    try {
      const written = sys(
        NR.process_vm_writev,
        this.pid,
        iov,
        ranges.length,
        iov,
        ranges.length,
        0,
      );
      check(written, "process_vm_writev");
      if (written !== total) throw new SyscallError("process_vm_writev", libc.EIO);
      check(sys(NR.write, this.#go, new Uint8Array([1]), 1), "write");
    } catch (err) {
      libc.close(this.#report);
      sys(NR.munmap, this.#region, REGION);
      this.#kill();
      throw err;
    } finally {
      libc.close(this.#go);
    }
    const record = new Uint8Array(16);
    let n = 0;
    try {
      for (;;) {
        const got = sys(NR.read, this.#report, record.subarray(n), 16 - n);
        if (got < 0 && libc.lastErrno() === 4) continue; // EINTR
        check(got, "read");
        if (got === 0) break;
        n += got;
        if (n === 16) break;
      }
    } finally {
      libc.close(this.#report);
    }
    const labels = this.script.labels;
    const index = n === 16
      ? this.script.indexOf(new DataView(record.buffer).getBigUint64(8, true))
      : -1;
    sys(NR.munmap, this.#region, REGION);
    if (n === 0) {
      libc.close(this.pidfd);
      return;
    }
    const errno = -Number(new DataView(record.buffer).getBigInt64(0, true));
    reap(this.pid);
    libc.close(this.pidfd);
    throw new SyscallError(labels[index] ?? "the first process", errno);
  }

  /** Ends a child that will not run (its thread failed before `run`): killed and reaped. */
  abandon(): void {
    if (this.#done) return;
    this.#done = true;
    libc.close(this.#go);
    libc.close(this.#report);
    sys(NR.munmap, this.#region, REGION);
    this.#kill();
  }

  #kill(): void {
    sys(NR.kill, this.pid, 9);
    reap(this.pid);
    libc.close(this.pidfd);
  }
}

function reap(pid: number): void {
  const status = new Int32Array(1);
  while (sys(NR.wait4, pid, status, 0x40000000, /* __WALL */ 0) < 0 && libc.lastErrno() === 4) {
    // EINTR
  }
}

function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check(sys(NR.pipe2, fds, O_CLOEXEC), "pipe2");
  return [fds[0]!, fds[1]!];
}
