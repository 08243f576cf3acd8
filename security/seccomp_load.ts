/**
 * Installs a compiled seccomp program (seccomp.ts) on the calling thread: the last step before
 * the container's first process is spawned, run on the thread that becomes the container. It
 * imports base/libc.ts only, because every module costs that thread start-up time.
 */
import { ARM64, EINVAL, lastErrno, rawSyscall, SyscallError } from "../base/libc.ts";

const SYS_SECCOMP = ARM64 ? 277 : 317;
const SECCOMP_SET_MODE_FILTER = 1;

/**
 * Programs being installed: a program's address sits inside `struct sock_fprog`, out of V8's
 * sight, so this keeps it reachable until the call returns (as base/libc.ts pins its buffers).
 */
const installing = new Set<Uint8Array>();

/**
 * Installs a BPF program as this thread's seccomp filter (seccomp(2) SECCOMP_SET_MODE_FILTER,
 * no TSYNC: mini-docker's other threads stay unfiltered; threads and processes this one starts
 * later inherit it). The thread needs CAP_SYS_ADMIN or no_new_privs. A kernel that does not know
 * one of the flags gets the filter without them, as crun does; a failure throws SyscallError.
 */
export function installSeccomp(program: Uint8Array, flags = 0): void {
  if (program.length === 0 || program.length % 8 !== 0 || program.length / 8 > 0xffff) {
    throw new SyscallError("seccomp", EINVAL);
  }
  // struct sock_fprog { unsigned short len; /* 6 bytes padding */ struct sock_filter *filter; }
  const fprog = new Uint8Array(16);
  const view = new DataView(fprog.buffer);
  view.setUint16(0, program.length / 8, true);
  view.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(program))), true);
  installing.add(program);
  try {
    let rc = rawSyscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, flags, fprog);
    if (rc < 0 && flags !== 0 && lastErrno() === EINVAL) {
      rc = rawSyscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, fprog);
    }
    if (rc < 0) throw new SyscallError("seccomp", lastErrno());
  } finally {
    installing.delete(program);
  }
}
