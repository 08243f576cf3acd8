/**
 * The libc calls image unpacking needs. `mknod` comes from container/libc.ts, the project's FFI
 * table; the extended-attribute calls that work on binary values without following symlinks
 * (`lsetxattr`, `lgetxattr`) are not there yet.
 *
 * TODO(merge): move lsetxattr/lgetxattr into container/libc.ts and drop this second dlopen. The
 * library is opened on the first call, never at import time.
 */

import { mknod as libcMknod, SyscallError } from "../container/libc.ts";

export { SyscallError };

const symbols = {
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

let lib: Deno.DynamicLibrary<typeof symbols> | undefined;

function libc(): Deno.DynamicLibrary<typeof symbols>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", symbols);
  return lib.symbols;
}

/** ENODATA: the attribute does not exist. */
export const ENODATA = 61;
/** EOPNOTSUPP: the filesystem does not support the attribute's namespace. */
export const EOPNOTSUPP = 95;

const encoder = new TextEncoder();

function cstr(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(s.length * 3 + 1);
  const { written } = encoder.encodeInto(s, bytes);
  return bytes.subarray(0, written + 1) as Uint8Array<ArrayBuffer>;
}

function errno(): number {
  const ptr = libc().__errno_location();
  return ptr === null ? 0 : new Deno.UnsafePointerView(ptr).getInt32();
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

/** mknod(2); `mode` includes the file type (S_IFCHR, S_IFBLK, S_IFIFO). Subject to umask. */
export function mknod(path: string, mode: number, dev: number): void {
  libcMknod(path, mode, dev);
}

/** lsetxattr(2): sets an extended attribute without following a final symlink. */
export function lsetxattr(path: string, name: string, value: Uint8Array): void {
  const buf = new Uint8Array(value.byteLength + 1);
  buf.set(value);
  if (libc().lsetxattr(cstr(path), cstr(name), buf, BigInt(value.byteLength), 0) !== 0) {
    throw new SyscallError("lsetxattr", errno(), path);
  }
}

/** lgetxattr(2) of a small attribute; null when it is not set. */
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
