/**
 * The socket calls network/ makes itself (ports.ts, dns.ts), through base/libc.ts's
 * `rawSyscall`: numbers, flags and IPv4 socket addresses.
 */
import * as libc from "../base/libc.ts";
import { parseIPv4 } from "./ip.ts";

/** System call numbers: x86_64's, and the generic table that arm64 uses. */
export const SYS = libc.ARM64
  ? { socket: 198, bind: 200, listen: 201, getsockname: 204, sendto: 206, recvfrom: 207 }
  : { socket: 41, bind: 49, listen: 50, getsockname: 51, sendto: 44, recvfrom: 45 };
export const SYS_SETSOCKOPT = libc.ARM64 ? 208 : 54;

export const AF_INET = 2;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const MSG_DONTWAIT = 0x40;

/** struct sockaddr_in for `ip` (dotted quad, "" = any) and `port`. */
export function sockaddr(ip: string, port: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(16);
  const view = new DataView(buf.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  view.setUint32(4, ip === "" ? 0 : parseIPv4(ip)!, false);
  return buf;
}

/** socket(2), or a SyscallError. */
export function socket(type: number): number {
  const fd = libc.rawSyscall(SYS.socket, AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new libc.SyscallError("socket", libc.lastErrno());
  return fd;
}
