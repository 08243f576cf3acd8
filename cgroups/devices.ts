/**
 * Device rules (OCI `linux.resources.devices`): which device nodes a container may read, write
 * or create. The policy (Docker's default list) comes from elsewhere; this file owns what the
 * rules mean and how each cgroup version is made to enforce them:
 *
 * - v1: the `devices` controller. `devicesV1Writes` turns the rules into lines for its
 *   `devices.deny` / `devices.allow` files, "a" denied first, then each rule in order.
 * - v2: no controller, an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE that the kernel runs
 *   on every device access. `deviceProgram` assembles it, `attachDeviceRules` loads it and
 *   attaches it to the cgroup's directory.
 *
 * Order: the last rule that matches an access decides it, and an access that no rule matches
 * is denied (so an empty list denies every device). An allow rule matches an access whose bits
 * ("r", "w", "m") are all in the rule's, as the v1 kernel matches its allow exceptions; a deny
 * rule matches one that shares any bit with it. One difference is the v1 kernel's: a rule that
 * goes against the current default (a deny while "a" is denied, an allow after "allow a") only
 * removes an exception with the very same type, major and minor, so it cannot narrow a
 * wildcard: "deny c 10:229 rwm" after "allow c *:* m" leaves mknod of 10:229 allowed on v1,
 * while the v2 program denies it. runc refuses such rules on both versions; we take them, as
 * Docker's default list has one, and v2 enforces them fully.
 */
import { UserError } from "../base/errors.ts";
import {
  ARM64,
  close,
  lastErrno,
  O_CLOEXEC,
  O_DIRECTORY,
  O_RDONLY,
  open,
  rawSyscall,
  strerror,
  SyscallError,
} from "../base/libc.ts";
import type { LinuxDeviceCgroup } from "../base/spec.ts";

/** A device rule checked and filled in: absent fields made explicit. */
export interface DeviceRule {
  allow: boolean;
  /** "a" matches both character and block devices. */
  type: "a" | "c" | "b";
  /** undefined = any. */
  major?: number;
  /** undefined = any. */
  minor?: number;
  /** Some of "rwm", in that order, at least one. */
  access: string;
}

/** The largest major or minor a rule may name: the program compares it as a signed 32-bit immediate. */
const MAX_DEVICE_NUMBER = 0x7fffffff;

/** A rule as the user would read it: "allow c 1:3 rwm", "deny a *:* rwm". */
export function describeRule(rule: LinuxDeviceCgroup | DeviceRule): string {
  const num = (n: number | undefined) => (n === undefined || n === -1 ? "*" : String(n));
  return `${rule.allow ? "allow" : "deny"} ${rule.type ?? "a"} ${num(rule.major)}:${
    num(rule.minor)
  } ${rule.access ?? "rwm"}`;
}

/**
 * Checks the rules and fills in OCI's defaults (type "a", any major, any minor, access "rwm").
 * Code is generated from them: a rule the kernel would read differently is a UserError naming it.
 */
export function normalizeRules(rules: readonly LinuxDeviceCgroup[]): DeviceRule[] {
  return rules.map((rule) => {
    const fail = (detail: string) => {
      throw new UserError(`Invalid device rule "${describeRule(rule)}": ${detail}`);
    };
    const type = rule.type ?? "a";
    if (!["a", "c", "b"].includes(type)) fail(`the type must be "a", "c" or "b"`);
    const number = (n: number | undefined, what: string) => {
      if (n === undefined || n === -1) return undefined;
      if (!Number.isInteger(n) || n < 0 || n > MAX_DEVICE_NUMBER) {
        fail(`the ${what} must be -1 (any) or an integer from 0 to ${MAX_DEVICE_NUMBER}`);
      }
      return n;
    };
    const major = number(rule.major, "major");
    const minor = number(rule.minor, "minor");
    const access = rule.access ?? "rwm";
    if (!/^[rwm]+$/.test(access)) fail(`the access must be one or more of "r", "w" and "m"`);
    return {
      allow: rule.allow,
      type: type as DeviceRule["type"],
      ...(major === undefined ? {} : { major }),
      ...(minor === undefined ? {} : { minor }),
      access: ["r", "w", "m"].filter((bit) => access.includes(bit)).join(""),
    };
  });
}

/** Whether a rule matches every access to every device: it decides all, whatever came before. */
function matchesAll(rule: DeviceRule): boolean {
  return rule.type === "a" && rule.major === undefined && rule.minor === undefined &&
    rule.access === "rwm";
}

// ---- cgroup v1: the devices controller ----

/** One write to a v1 devices cgroup. */
export interface DevicesV1Write {
  file: "devices.allow" | "devices.deny";
  value: string;
}

/**
 * The writes that give a new v1 devices cgroup the rules, in order. It starts from its parent's
 * state (allow all, on the hosts we know), so the first write denies "a": every rule after it
 * is a kernel exception on a default deny, as on v2. A rule that matches everything is "a"
 * itself (the kernel resets its list to allow or deny all); a partial "a" rule becomes one
 * line for "c" and one for "b", as the kernel's "a" takes no numbers.
 */
export function devicesV1Writes(rules: readonly DeviceRule[]): DevicesV1Write[] {
  const writes: DevicesV1Write[] = [{ file: "devices.deny", value: "a" }];
  const num = (n: number | undefined) => (n === undefined ? "*" : String(n));
  for (const rule of rules) {
    const file = rule.allow ? "devices.allow" : "devices.deny";
    if (matchesAll(rule)) {
      writes.push({ file, value: "a" });
      continue;
    }
    for (const type of rule.type === "a" ? ["c", "b"] : [rule.type]) {
      writes.push({ file, value: `${type} ${num(rule.major)}:${num(rule.minor)} ${rule.access}` });
    }
  }
  return writes;
}

// ---- cgroup v2: an eBPF program ----

/**
 * The eBPF opcodes the program uses (uapi/linux/bpf.h and bpf_common.h): class | size/op | source.
 * ALU is 32-bit (the upper half of the register is zeroed), ALU64 the full register.
 */
const OP = {
  /** BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off). */
  loadWord: 0x61,
  /** BPF_ALU | BPF_AND | BPF_K: dst &= imm. */
  and32Imm: 0x54,
  /** BPF_ALU | BPF_RSH | BPF_K: dst >>= imm. */
  rsh32Imm: 0x74,
  /** BPF_ALU | BPF_MOV | BPF_X: dst = src. */
  mov32Reg: 0xbc,
  /** BPF_ALU64 | BPF_MOV | BPF_K: dst = imm. */
  mov64Imm: 0xb7,
  /** BPF_JMP | BPF_JNE | BPF_K: if dst != imm, pc += off. */
  jneImm: 0x55,
  /** BPF_JMP | BPF_JNE | BPF_X: if dst != src, pc += off. */
  jneReg: 0x5d,
  /** BPF_JMP | BPF_JEQ | BPF_K: if dst == imm, pc += off. */
  jeqImm: 0x15,
  /** BPF_JMP | BPF_EXIT: return r0. */
  exit: 0x95,
} as const;

/** struct bpf_cgroup_dev_ctx's type (low 16 bits of access_type) and access (high 16 bits). */
const DEV_TYPE = { b: 1, c: 2 } as const; // BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
const DEV_ACCESS = { m: 1, r: 2, w: 4 } as const; // BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

/** Registers: r1 holds the context on entry; r2-r5 get its fields; r0 is the verdict. */
const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5;

/** One struct bpf_insn: 8 bytes. */
interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({
  code,
  dst,
  src,
  off,
  imm,
});

/**
 * The program's instructions for the rules: the context's fields into registers, then one block
 * per rule, last rule first, each returning its verdict when the access matches and jumping to
 * the next block otherwise; after the last block, deny. A rule that matches everything ends the
 * list (the rules before it can never decide), and nothing follows it.
 */
function assemble(rules: readonly DeviceRule[]): Insn[] {
  // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }: offsets 0, 4, 8.
  const program: Insn[] = [
    insn(OP.loadWord, R2, R1, 0, 0), // r2 = access_type
    insn(OP.and32Imm, R2, 0, 0, 0xffff), // r2 = device type
    insn(OP.loadWord, R3, R1, 0, 0), // r3 = access_type
    insn(OP.rsh32Imm, R3, 0, 0, 16), // r3 = access bits of this request
    insn(OP.loadWord, R4, R1, 4, 0), // r4 = major
    insn(OP.loadWord, R5, R1, 8, 0), // r5 = minor
  ];
  for (const rule of [...rules].reverse()) {
    // The tests of one rule; each jump goes to the next block when the access does not match,
    // its offset filled in once the block's length is known.
    const block: Insn[] = [];
    const jumps: Insn[] = [];
    const jump = (code: number, dst: number, src: number, imm: number) => {
      const ins = insn(code, dst, src, 0, imm);
      jumps.push(ins);
      block.push(ins);
    };
    if (rule.type !== "a") jump(OP.jneImm, R2, 0, DEV_TYPE[rule.type]);
    if (rule.access !== "rwm") {
      const bits = [...rule.access].reduce(
        (sum, bit) => sum | DEV_ACCESS[bit as keyof typeof DEV_ACCESS],
        0,
      );
      // r1 is free now: the context's fields are in r2-r5.
      block.push(insn(OP.mov32Reg, R1, R3, 0, 0), insn(OP.and32Imm, R1, 0, 0, bits));
      if (rule.allow) jump(OP.jneReg, R1, R3, 0); // allow: every requested bit is in the rule
      else jump(OP.jeqImm, R1, 0, 0); // deny: some requested bit is in the rule
    }
    if (rule.major !== undefined) jump(OP.jneImm, R4, 0, rule.major);
    if (rule.minor !== undefined) jump(OP.jneImm, R5, 0, rule.minor);
    block.push(insn(OP.mov64Imm, R0, 0, 0, rule.allow ? 1 : 0), insn(OP.exit, 0, 0, 0, 0));
    // An offset counts from the instruction after the jump; the target is the block's end.
    for (const ins of jumps) ins.off = block.length - block.indexOf(ins) - 1;
    program.push(...block);
    if (matchesAll(rule)) return program;
  }
  program.push(insn(OP.mov64Imm, R0, 0, 0, 0), insn(OP.exit, 0, 0, 0, 0));
  return program;
}

/**
 * The BPF_PROG_TYPE_CGROUP_DEVICE program for `rules`, as the bytes of its struct bpf_insn
 * array (code u8; dst_reg:4 in the low bits and src_reg:4 in the high bits of one byte; off
 * s16; imm s32; little-endian, as on x86_64 and arm64). The program returns 1 to allow an
 * access and 0 to deny it.
 */
export function deviceProgram(rules: readonly DeviceRule[]): Uint8Array<ArrayBuffer> {
  const program = assemble(rules);
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach((ins, i) => {
    view.setUint8(i * 8, ins.code);
    view.setUint8(i * 8 + 1, (ins.src << 4) | ins.dst);
    view.setInt16(i * 8 + 2, ins.off, true);
    view.setInt32(i * 8 + 4, ins.imm, true);
  });
  return bytes;
}

/** bpf(2): its system call number and the commands and constants we use (uapi/linux/bpf.h). */
const SYS_BPF = ARM64 ? 280 : 321;
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
const BPF_CGROUP_DEVICE = 6;
/** Other programs on this cgroup and its ancestors keep running: every one must allow. */
const BPF_F_ALLOW_MULTI = 2;
/** Kernel-module style license string: no GPL-only helper is called, any license loads. */
const LICENSE = "Apache";
/** Shown by `bpftool prog`: letters, digits, "_" and "." only, 15 at most. */
const PROG_NAME = "mini_docker_dev";

/** The memory that a bpf_attr in flight points to: kept reachable until the call returns. */
const inFlight = new Set<unknown>();

function address(buffer: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

/** bpf(cmd, attr, size): its result, or a UserError with `what` and the kernel's reason. */
function bpf(cmd: number, attr: Uint8Array<ArrayBuffer>, keep: unknown[], what: string): number {
  inFlight.add(keep);
  try {
    const result = rawSyscall(SYS_BPF, cmd, attr, attr.length);
    if (result < 0) throw new UserError(`${what}: ${strerror(lastErrno())}`);
    return result;
  } finally {
    inFlight.delete(keep);
  }
}

/** Loads the program into the kernel and returns its fd. */
function loadProgram(program: Uint8Array<ArrayBuffer>): number {
  const license = new TextEncoder().encode(`${LICENSE}\0`);
  // union bpf_attr, BPF_PROG_LOAD part, up to prog_name (64 bytes): u32 prog_type @0,
  // u32 insn_cnt @4, u64 insns @8, u64 license @16, u32 log_level @24, u32 log_size @28,
  // u64 log_buf @32, u32 kern_version @40, u32 prog_flags @44, char prog_name[16] @48.
  // No log: the program is small and fixed in shape; a refusal reports errno.
  const attr = new Uint8Array(64);
  const view = new DataView(attr.buffer);
  view.setUint32(0, BPF_PROG_TYPE_CGROUP_DEVICE, true);
  view.setUint32(4, program.length / 8, true);
  view.setBigUint64(8, address(program), true);
  view.setBigUint64(16, address(license), true);
  new TextEncoder().encodeInto(PROG_NAME, attr.subarray(48, 63));
  return bpf(
    BPF_PROG_LOAD,
    attr,
    [program, license],
    `Cannot load the device rules' BPF program (${program.length / 8} instructions)`,
  );
}

/**
 * Applies the rules to the cgroup v2 directory `dir` (on a pure v2 host, or the cgroup2 mount
 * of a hybrid one): loads their program and attaches it with BPF_F_ALLOW_MULTI, so that the
 * host's own device programs on the ancestors keep applying too. The attachment holds the
 * program: both fds are closed here, and removing the cgroup releases it. A refusal is a
 * UserError naming the step; nothing is attached then.
 */
export function attachDeviceRules(dir: string, rules: readonly DeviceRule[]): void {
  let dirFd: number;
  try {
    dirFd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } catch (err) {
    const detail = err instanceof SyscallError ? strerror(err.errno) : String(err);
    throw new UserError(`Cannot open cgroup ${dir} to attach its device rules: ${detail}`);
  }
  try {
    const progFd = loadProgram(deviceProgram(rules));
    try {
      // union bpf_attr, BPF_PROG_ATTACH part (16 bytes): u32 target_fd @0,
      // u32 attach_bpf_fd @4, u32 attach_type @8, u32 attach_flags @12.
      const attr = new Uint8Array(16);
      const view = new DataView(attr.buffer);
      view.setUint32(0, dirFd, true);
      view.setUint32(4, progFd, true);
      view.setUint32(8, BPF_CGROUP_DEVICE, true);
      view.setUint32(12, BPF_F_ALLOW_MULTI, true);
      bpf(
        BPF_PROG_ATTACH,
        attr,
        [],
        `Cannot attach the device rules' BPF program to cgroup ${dir}`,
      );
    } finally {
      close(progFd);
    }
  } finally {
    close(dirFd);
  }
}
