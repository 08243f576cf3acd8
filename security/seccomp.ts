/**
 * Compiles an OCI `LinuxSeccomp` into the BPF program the kernel runs for every system call of a
 * container, with libseccomp (`libseccomp.so.2`) doing the hard part, as runc and crun do. This
 * is the only `Deno.dlopen` of mini-docker besides base/libc.ts: it is opened lazily, on the first
 * compile, so commands that never start a container do not pay for it.
 *
 * The program is compiled here, in mini-docker, and handed as bytes to the container's thread,
 * which installs it with seccomp(2) (seccomp_load.ts): libseccomp never loads anything itself,
 * so its no_new_privs and thread-sync attributes stay off and nothing touches mini-docker's own
 * threads.
 *
 * Like runc's patchbpf, a short stub goes in front of libseccomp's program: a system call newer
 * than every one the filter names gets ENOSYS instead of the default action, so that a C library
 * that tries a new call and falls back on ENOSYS keeps working on a newer kernel.
 */
import { UserError } from "../base/errors.ts";
import { ARM64, close, cstr, lastErrno, rawSyscall, SyscallError } from "../base/libc.ts";
import type { LinuxSeccomp, LinuxSyscall } from "../base/spec.ts";

/** Actions by OCI name, as <seccomp.h> encodes them; ERRNO and TRACE carry a 16-bit value. */
const ACTIONS: Record<string, number> = {
  SCMP_ACT_KILL: 0x00000000,
  SCMP_ACT_KILL_THREAD: 0x00000000,
  SCMP_ACT_KILL_PROCESS: 0x80000000,
  SCMP_ACT_TRAP: 0x00030000,
  SCMP_ACT_ERRNO: 0x00050000,
  SCMP_ACT_TRACE: 0x7ff00000,
  SCMP_ACT_LOG: 0x7ffc0000,
  SCMP_ACT_ALLOW: 0x7fff0000,
  SCMP_ACT_NOTIFY: 0x7fc00000,
};

/** Comparison operators by OCI name (enum scmp_compare). */
const OPERATORS: Record<string, number> = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
};

/** Filter flags of seccomp(2) by OCI name; TSYNC and WAIT_KILLABLE_RECV are known but refused. */
const FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1 << 0,
  SECCOMP_FILTER_FLAG_LOG: 1 << 1,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 1 << 2,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 1 << 5,
};

/** The architectures the OCI spec names (libseccomp's name is the rest, in lower case). */
const ARCHITECTURES = [
  "SCMP_ARCH_X86",
  "SCMP_ARCH_X86_64",
  "SCMP_ARCH_X32",
  "SCMP_ARCH_ARM",
  "SCMP_ARCH_AARCH64",
  "SCMP_ARCH_MIPS",
  "SCMP_ARCH_MIPS64",
  "SCMP_ARCH_MIPS64N32",
  "SCMP_ARCH_MIPSEL",
  "SCMP_ARCH_MIPSEL64",
  "SCMP_ARCH_MIPSEL64N32",
  "SCMP_ARCH_PPC",
  "SCMP_ARCH_PPC64",
  "SCMP_ARCH_PPC64LE",
  "SCMP_ARCH_S390",
  "SCMP_ARCH_S390X",
  "SCMP_ARCH_PARISC",
  "SCMP_ARCH_PARISC64",
  "SCMP_ARCH_RISCV64",
  "SCMP_ARCH_LOONGARCH64",
] as const;

/** Action names a profile may use ("SCMP_ACT_ALLOW", ...). */
export const SECCOMP_ACTIONS: readonly string[] = Object.keys(ACTIONS);
/** Operator names a profile may use ("SCMP_CMP_EQ", ...). */
export const SECCOMP_OPERATORS: readonly string[] = Object.keys(OPERATORS);
/** Filter flag names a profile may use ("SECCOMP_FILTER_FLAG_LOG", ...). */
export const SECCOMP_FLAGS: readonly string[] = Object.keys(FLAGS);
/** Architecture names a profile may use ("SCMP_ARCH_X86_64", ...). */
export const SECCOMP_ARCHITECTURES: readonly string[] = ARCHITECTURES;

/** What `compileSeccomp` returns: what `installSeccomp` (seccomp_load.ts) takes. */
export interface SeccompProgram {
  /** The BPF program: `struct sock_filter[]`, 8 bytes an instruction, in this machine's order. */
  program: Uint8Array<ArrayBuffer>;
  /** The flags argument of seccomp(2) (SECCOMP_FILTER_FLAG_*). */
  flags: number;
}

const EPERM = 1;
const ENOSYS = 38;

// <seccomp.h>
const SCMP_FLTATR_CTL_NNP = 3;
const SCMP_FLTATR_CTL_TSYNC = 4;
const SCMP_FLTATR_CTL_OPTIMIZE = 8;
const SCMP_FLTATR_API_SYSRAWRC = 9;
const NR_SCMP_ERROR = -1;
/** SCMP_ARCH_X32 is libseccomp's own token: the kernel reports x32 as x86_64 with bit 30 set. */
const SCMP_ARCH_X32 = 0x4000003e;
const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;

const SYMBOLS = {
  seccomp_init: { parameters: ["u32"], result: "pointer" },
  seccomp_release: { parameters: ["pointer"], result: "void" },
  seccomp_arch_native: { parameters: [], result: "u32" },
  seccomp_arch_resolve_name: { parameters: ["buffer"], result: "u32" },
  seccomp_arch_add: { parameters: ["pointer", "u32"], result: "i32" },
  seccomp_arch_remove: { parameters: ["pointer", "u32"], result: "i32" },
  seccomp_attr_set: { parameters: ["pointer", "i32", "u32"], result: "i32" },
  // Architecture 0 (SCMP_ARCH_NATIVE) makes it seccomp_syscall_resolve_name: one symbol fewer.
  seccomp_syscall_resolve_name_arch: { parameters: ["u32", "buffer"], result: "i32" },
  seccomp_rule_add_array: {
    parameters: ["pointer", "u32", "i32", "u32", "buffer"],
    result: "i32",
  },
  seccomp_export_bpf: { parameters: ["pointer", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;

function open<S extends Deno.ForeignLibraryInterface>(symbols: S): Deno.DynamicLibrary<S> {
  try {
    return Deno.dlopen("libseccomp.so.2", symbols);
  } catch (err) {
    throw new UserError(
      `Cannot load "libseccomp.so.2": ${
        err instanceof Error ? err.message : String(err)
      } (install libseccomp2, or run with --security-opt seccomp=unconfined)`,
    );
  }
}

/** The library with every symbol: about 2 ms of trampolines, paid on a compile only. */
function libseccomp(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= open(SYMBOLS).symbols;
  return lib;
}

/** An action's value; ERRNO and TRACE without a value return EPERM, as in runc and crun. */
function actionValue(name: string, errnoRet: number | undefined, where: string): number {
  const base = ACTIONS[name];
  if (base === undefined) throw new UserError(`Unknown seccomp action "${name}" in ${where}`);
  if (name === "SCMP_ACT_NOTIFY") {
    throw new UserError(
      `Seccomp action "${name}" in ${where} is not supported: mini-docker has no seccomp agent`,
    );
  }
  if (name === "SCMP_ACT_ERRNO" || name === "SCMP_ACT_TRACE") {
    return (base | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
  }
  return base;
}

/** The seccomp(2) flags; no flags at all means SPEC_ALLOW, as runc and crun default to. */
function filterFlags(flags: readonly string[] | undefined): number {
  if (flags === undefined) return FLAGS.SECCOMP_FILTER_FLAG_SPEC_ALLOW!;
  let value = 0;
  for (const flag of flags) {
    const bit = FLAGS[flag];
    if (bit === undefined) throw new UserError(`Unknown seccomp flag "${flag}"`);
    // TSYNC would filter every thread of mini-docker, not only the container's.
    if (flag === "SECCOMP_FILTER_FLAG_TSYNC") continue;
    if (flag === "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
      throw new UserError(
        `Seccomp flag "${flag}" is not supported: it needs a seccomp agent, which mini-docker does not have`,
      );
    }
    value |= bit;
  }
  return value;
}

/** A libseccomp call that returned a negative errno (SCMP_FLTATR_API_SYSRAWRC is on). */
function check(rc: number, what: string): void {
  if (rc < 0) throw new SyscallError(what, -rc);
}

/**
 * The BPF program (struct sock_filter[]) for this filter on this machine, with the flags to
 * give seccomp(2). Names this libseccomp does not know on any architecture of the filter are
 * skipped, as Docker does; a bad action, operator, architecture or flag is a UserError.
 *
 * libseccomp takes 10 to 20 ms over Docker's default profile (x86_64 with its x86 and x32
 * companions), on every container start; with `cacheDir` (a directory only root may write),
 * programs are kept there by filter, architecture and libseccomp build, and a hit costs
 * under 1 ms.
 */
export function compileSeccomp(
  filter: LinuxSeccomp,
  opts: { cacheDir?: string } = {},
): SeccompProgram {
  const flags = filterFlags(filter.flags);
  if (opts.cacheDir === undefined) return { program: compile(filter), flags };
  const key = cacheKey(filter);
  const file = `${opts.cacheDir}/${hash(key)}.bpf`;
  const cached = readCache(file, key);
  if (cached !== undefined) return { program: cached, flags };
  const program = compile(filter);
  writeCache(opts.cacheDir, file, key, program);
  return { program, flags };
}

function compile(filter: LinuxSeccomp): Uint8Array<ArrayBuffer> {
  const defaultAction = actionValue(
    filter.defaultAction,
    filter.defaultErrnoRet,
    "defaultAction",
  );
  const rules = (filter.syscalls ?? []).map((call, i) => ({
    call,
    action: actionValue(call.action, call.errnoRet, `syscalls[${i}]`),
    conditions: conditions(call, i),
  }));

  const sc = libseccomp();
  const ctx = sc.seccomp_init(defaultAction);
  if (ctx === null) {
    throw new UserError(
      `Cannot create seccomp filter: libseccomp refused "${filter.defaultAction}"`,
    );
  }
  try {
    // Errors as -errno, for messages that say why.
    check(sc.seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1), "seccomp_attr_set");
    // We load the program ourselves, on one thread; these only matter to seccomp_load, but
    // say what we want should anyone ever call it.
    check(sc.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set");
    check(sc.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 0), "seccomp_attr_set");
    // A binary tree of system calls instead of a list, as runc asks for more than 32 calls
    // (libseccomp 2.5.4 misbehaves with it on an empty filter).
    if (rules.reduce((n, r) => n + r.call.names.length, 0) > 32) {
      check(sc.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2), "seccomp_attr_set");
    }

    // Architectures before rules: a rule is added to every architecture present at the time.
    const archs = architectures(filter.architectures);
    const native = sc.seccomp_arch_native();
    for (const token of archs) {
      const rc = sc.seccomp_arch_add(ctx, token);
      if (rc < 0 && rc !== -17 /* EEXIST: the native one */) check(rc, "seccomp_arch_add");
    }
    if (!archs.includes(native)) check(sc.seccomp_arch_remove(ctx, native), "seccomp_arch_remove");

    // The largest number of any named call, per architecture, for the ENOSYS stub.
    const largest = new Map<number, number>(archs.map((a) => [a, -1]));
    for (const { call, action, conditions } of rules) {
      for (const name of call.names) {
        const cname = cstr(name);
        for (const arch of archs) {
          const nr = sc.seccomp_syscall_resolve_name_arch(arch, cname);
          if (nr > largest.get(arch)!) largest.set(arch, nr);
        }
        // The default action already applies; libseccomp refuses such a rule (EACCES).
        if (action === defaultAction) continue;
        // Unknown to this libseccomp on every architecture: skipped, as in Docker. A negative
        // number other than that is a call of another architecture of the filter (socketcall
        // on x86): libseccomp places it where it exists.
        const nr = sc.seccomp_syscall_resolve_name_arch(0, cname);
        if (nr === NR_SCMP_ERROR) continue;
        for (const group of conditions) {
          const rc = sc.seccomp_rule_add_array(ctx, action, nr, group.length / 24, group);
          if (rc < 0) throw withName(new SyscallError("seccomp_rule_add", -rc), name);
        }
      }
    }

    const program = exportBpf(sc, ctx);
    const stub = patchesEnosys(filter) ? enosysStub(largest) : new Uint8Array(0);
    const whole = new Uint8Array(stub.length + program.length);
    whole.set(stub);
    whole.set(program, stub.length);
    if (whole.length / 8 > 4096 /* BPF_MAXINSNS */) {
      throw new UserError(
        `Seccomp filter is too long: ${whole.length / 8} instructions, the kernel takes 4096`,
      );
    }
    return whole;
  } finally {
    sc.seccomp_release(ctx);
  }
}

function withName(err: SyscallError, name: string): UserError {
  return new UserError(`Cannot add seccomp rule for "${name}": ${err.message}`);
}

/**
 * The `struct scmp_arg_cmp` arrays of one entry: one rule with every condition (they AND
 * together), or, when two conditions test the same argument, one rule per condition, which
 * libseccomp would otherwise refuse (runc and crun split them the same way).
 */
function conditions(call: LinuxSyscall, i: number): Uint8Array<ArrayBuffer>[] {
  const args = call.args ?? [];
  const encoded = args.map((arg, j) => {
    const op = OPERATORS[arg.op];
    if (op === undefined) {
      throw new UserError(`Unknown seccomp operator "${arg.op}" in syscalls[${i}].args[${j}]`);
    }
    if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) {
      throw new UserError(
        `Invalid seccomp argument index "${arg.index}" in syscalls[${i}].args[${j}]: a system call has arguments 0 to 5`,
      );
    }
    // struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; u64 datum_a, datum_b; }
    const bytes = new Uint8Array(24);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, arg.index, true);
    view.setUint32(4, op, true);
    view.setBigUint64(8, BigInt.asUintN(64, BigInt(arg.value)), true);
    view.setBigUint64(16, BigInt.asUintN(64, BigInt(arg.valueTwo ?? 0)), true);
    return bytes;
  });
  if (encoded.length === 0) return [new Uint8Array(0)];
  const indexes = args.map((a) => a.index);
  if (new Set(indexes).size < indexes.length) return encoded;
  const all = new Uint8Array(24 * encoded.length);
  encoded.forEach((b, k) => all.set(b, 24 * k));
  return [all];
}

/** libseccomp's tokens for the filter's architectures; none listed = the native one only. */
function architectures(names: readonly string[] | undefined): number[] {
  const sc = libseccomp();
  if (names === undefined || names.length === 0) return [sc.seccomp_arch_native()];
  const tokens: number[] = [];
  for (const name of names) {
    if (!(SECCOMP_ARCHITECTURES as readonly string[]).includes(name)) {
      throw new UserError(`Unknown seccomp architecture "${name}"`);
    }
    const token = sc.seccomp_arch_resolve_name(cstr(name.slice(10).toLowerCase()));
    if (token === 0) {
      throw new UserError(`Seccomp architecture "${name}" is not supported by this libseccomp`);
    }
    if (!tokens.includes(token)) tokens.push(token);
  }
  return tokens;
}

const MEMFD_CREATE = ARM64 ? 279 : 319;
const MFD_CLOEXEC = 1;

/** The program as bytes: libseccomp 2.5.4 only writes it to a file descriptor, so a memfd. */
function exportBpf(
  sc: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"],
  ctx: Deno.PointerObject,
): Uint8Array {
  const fd = rawSyscall(MEMFD_CREATE, cstr("mini-docker-seccomp"), MFD_CLOEXEC);
  if (fd < 0) throw new SyscallError("memfd_create", lastErrno());
  try {
    check(sc.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf");
    // Opening it again through /proc starts at offset 0, and Deno reads it whole.
    return Deno.readFileSync(`/proc/self/fd/${fd}`);
  } finally {
    close(fd);
  }
}

/** Bump when the program for a given filter changes (the stub, libseccomp attributes). */
const CACHE_FORMAT = 1;
/** Programs kept in a cache directory; the oldest go first. */
const CACHE_ENTRIES = 64;

let identity: string | undefined;
/** A symbol-less handle that keeps the library mapped while /proc/self/maps is read. */
let bare: Deno.DynamicLibrary<Record<never, never>> | undefined;

/**
 * Which libseccomp build this is: its file's path, device and inode, from /proc/self/maps once
 * it is loaded (a symbol-less dlopen, 0.3 ms). Not its version: Debian's 2.5.4-1+deb12u1 learned
 * new system calls and still says 2.5.4. An upgrade replaces the file, so the inode changes.
 */
function libraryIdentity(): string {
  if (identity === undefined) {
    if (lib === undefined) bare ??= open({});
    const maps = Deno.readTextFileSync("/proc/self/maps");
    const line = maps.split("\n").find((l) => /\/libseccomp\.so[^/]*$/.test(l));
    // fields: address perms offset dev inode path
    const [, , , dev, inode, path] = (line ?? "").trim().split(/\s+/);
    identity = `${path}:${dev}:${inode}`;
  }
  return identity;
}

/** Everything the program depends on, as text: stored in the entry and compared whole. */
function cacheKey(filter: LinuxSeccomp): string {
  return JSON.stringify({
    format: CACHE_FORMAT,
    arch: Deno.build.arch,
    libseccomp: libraryIdentity(),
    filter,
  });
}

/**
 * A 64-bit FNV-1a-style hash as 16 hex digits, to name an entry. WebCrypto is asynchronous and
 * node:crypto costs 17 ms to load; a collision is harmless since the key is compared whole.
 */
function hash(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

const encoder = new TextEncoder();

/** An entry is: the key's length (u32, little-endian), the key (UTF-8), the program. */
function readCache(file: string, key: string): Uint8Array<ArrayBuffer> | undefined {
  let data: Uint8Array<ArrayBuffer>;
  try {
    data = Deno.readFileSync(file);
  } catch {
    return undefined;
  }
  const want = encoder.encode(key);
  if (data.length < 4) return undefined;
  const length = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
  if (length !== want.length || data.length <= 4 + length) return undefined;
  for (let i = 0; i < length; i++) if (data[4 + i] !== want[i]) return undefined;
  const program = data.slice(4 + length);
  return program.length % 8 === 0 ? program : undefined;
}

/**
 * Stores an entry (written aside, then renamed, so that a reader never sees half of one) and
 * drops the oldest beyond CACHE_ENTRIES. A cache that cannot be written is only slower, so
 * failures are ignored.
 */
function writeCache(dir: string, file: string, key: string, program: Uint8Array): void {
  const k = encoder.encode(key);
  const data = new Uint8Array(4 + k.length + program.length);
  new DataView(data.buffer).setUint32(0, k.length, true);
  data.set(k, 4);
  data.set(program, 4 + k.length);
  const temp = `${file}.${Deno.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.writeFileSync(temp, data, { mode: 0o600 });
    Deno.renameSync(temp, file);
    const entries = [...Deno.readDirSync(dir)]
      .filter((e) => e.isFile && e.name.endsWith(".bpf"))
      .map((e) => ({ path: `${dir}/${e.name}`, mtime: Deno.statSync(`${dir}/${e.name}`).mtime }))
      .sort((x, y) => (y.mtime?.getTime() ?? 0) - (x.mtime?.getTime() ?? 0));
    for (const old of entries.slice(CACHE_ENTRIES)) Deno.removeSync(old.path);
  } catch {
    try {
      Deno.removeSync(temp);
    } catch {
      // Never written, or already renamed.
    }
  }
}

/**
 * Whether the ENOSYS stub applies (runc's rule): not when unknown calls are allowed anyway
 * (ALLOW, LOG, or TRACE, whose tracer should handle new calls itself), nor when the default
 * already is ENOSYS.
 */
function patchesEnosys(filter: LinuxSeccomp): boolean {
  const permissive = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"];
  if (permissive.includes(filter.defaultAction)) return false;
  return !(filter.defaultAction === "SCMP_ACT_ERRNO" && filter.defaultErrnoRet === ENOSYS);
}

// Classic BPF, as seccomp runs it (<linux/filter.h>): the opcodes the stub needs.
const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGT_K = 0x25;
const BPF_JSET_K = 0x45;
const BPF_JA = 0x05;
const BPF_RET_K = 0x06;
const SECCOMP_RET_ERRNO = 0x00050000;
// struct seccomp_data { int nr; u32 arch; ... }
const DATA_NR = 0;
const DATA_ARCH = 4;

/** One instruction whose jumps name labels; `jt`/`jf` absent = the next instruction. */
interface Insn {
  code: number;
  k: number | string;
  jt?: string;
  jf?: string;
  label?: string;
}

/**
 * runc's -ENOSYS stub, written afresh: for each architecture of the filter, a system call
 * numbered above the largest one the filter names returns ENOSYS; anything else falls through
 * to libseccomp's program, which follows the stub. On x86_64, x32 calls (bit 30 set) are
 * compared with x32's largest number, and without x32 in the filter left to libseccomp.
 */
function enosysStub(largest: ReadonlyMap<number, number>): Uint8Array {
  // The kernel's architecture value, and for x86_64 the x32 half beside it.
  const groups = new Map<number, { native?: number; x32?: number }>();
  for (const [token, max] of largest) {
    if (max < 0) continue;
    if (token === SCMP_ARCH_X32) {
      groups.set(AUDIT_ARCH_X86_64, { ...groups.get(AUDIT_ARCH_X86_64), x32: max });
    } else {
      groups.set(token, { ...groups.get(token), native: max });
    }
  }
  const insns: Insn[] = [{ code: BPF_LD_W_ABS, k: DATA_ARCH }];
  let n = 0;
  for (const [arch, max] of groups) {
    // Not this architecture: on to the next one's test, the accumulator still holding it.
    insns.push({ code: BPF_JEQ_K, k: arch, jf: `arch${n + 1}`, label: `arch${n}` });
    insns.push({ code: BPF_LD_W_ABS, k: DATA_NR });
    if (arch === AUDIT_ARCH_X86_64) {
      const x32 = max.x32 === undefined ? "filter" : `x32_${n}`;
      insns.push({ code: BPF_JSET_K, k: X32_SYSCALL_BIT, jt: x32 });
      pushLimit(insns, max.native);
      if (max.x32 !== undefined) {
        insns.push({ code: BPF_JGT_K, k: max.x32, jt: "enosys", label: x32 });
        insns.push({ code: BPF_JA, k: "filter" });
      }
    } else {
      pushLimit(insns, max.native);
    }
    n++;
  }
  insns.push({ code: BPF_JA, k: "filter", label: `arch${n}` });
  insns.push({ code: BPF_RET_K, k: SECCOMP_RET_ERRNO | ENOSYS, label: "enosys" });
  return assemble(insns, insns.length);
}

/** `nr > max` returns ENOSYS, the rest goes to the filter; no max = straight to the filter. */
function pushLimit(insns: Insn[], max: number | undefined): void {
  if (max !== undefined) insns.push({ code: BPF_JGT_K, k: max, jt: "enosys" });
  insns.push({ code: BPF_JA, k: "filter" });
}

/** Resolves labels ("filter" is the instruction at `end`) into forward jump offsets. */
function assemble(insns: readonly Insn[], end: number): Uint8Array {
  const at = new Map<string, number>([["filter", end]]);
  insns.forEach((insn, i) => insn.label !== undefined && at.set(insn.label, i));
  const offset = (from: number, label: string | undefined): number => {
    if (label === undefined) return 0;
    const off = at.get(label)! - from - 1;
    if (off < 0 || off > 255) throw new Error(`BPF jump to "${label}" out of range: ${off}`);
    return off;
  };
  const bytes = new Uint8Array(insns.length * 8);
  const view = new DataView(bytes.buffer);
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  insns.forEach((insn, i) => {
    const k = typeof insn.k === "string" ? at.get(insn.k)! - i - 1 : insn.k;
    // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; } in this machine's byte order
    view.setUint16(8 * i, insn.code, little);
    view.setUint8(8 * i + 2, offset(i, insn.jt));
    view.setUint8(8 * i + 3, offset(i, insn.jf));
    view.setUint32(8 * i + 4, k >>> 0, little);
  });
  return bytes;
}
