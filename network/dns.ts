/**
 * Waiting for a network's DNS server to know a container. netavark adds the container's names
 * to aardvark-dns's files and signals it (SIGHUP); aardvark-dns 1.4 then stops its servers,
 * reads its files again and starts them anew, and netavark does not wait for that. A lookup
 * made meanwhile fails (nothing listens, or the container is not known yet), and a container's
 * first command is often such a lookup. So, before the container runs, the container's own
 * name is asked for, from inside its namespace (aardvark-dns answers a container by its source
 * address), until the answer comes.
 */
import * as libc from "../base/libc.ts";
import { MSG_DONTWAIT, SOCK_DGRAM, SOCK_NONBLOCK, sockaddr, socket, SYS } from "./socket.ts";

/** A DNS query for the A record of `name` (RFC 1035 4.1), with id `id`. */
export function dnsQuery(name: string, id: number): Uint8Array<ArrayBuffer> {
  const labels = name.split(".").filter((l) => l !== "").map((l) => new TextEncoder().encode(l));
  const out = new Uint8Array(12 + labels.reduce((n, l) => n + 1 + l.length, 0) + 1 + 4);
  const view = new DataView(out.buffer);
  view.setUint16(0, id);
  view.setUint16(2, 0x0100); // a standard query, recursion desired
  view.setUint16(4, 1); // one question
  let at = 12;
  for (const l of labels) {
    out[at++] = l.length;
    out.set(l, at);
    at += l.length;
  }
  out[at++] = 0;
  view.setUint16(at, 1); // A
  view.setUint16(at + 2, 1); // IN
  return out;
}

/** Whether `reply` answers query `id` with at least one record and no error. */
export function answers(reply: Uint8Array, id: number): boolean {
  if (reply.length < 12) return false;
  const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  const isReply = (view.getUint16(2) & 0x8000) !== 0;
  return view.getUint16(0) === id && isReply && (view.getUint16(2) & 0xf) === 0 &&
    view.getUint16(6) > 0;
}

/**
 * Asks `server` for `name` from inside the namespace kept at `netns` until it answers, or
 * `timeoutMs` has passed; returns whether it answered.
 */
export async function waitForName(
  netns: string,
  server: string,
  name: string,
  timeoutMs = 5000,
): Promise<boolean> {
  // A socket belongs to the namespace it was made in: this thread enters the container's for
  // that one call.
  const target = libc.open(netns, libc.O_RDONLY | libc.O_CLOEXEC);
  const own = libc.open("/proc/thread-self/ns/net", libc.O_RDONLY | libc.O_CLOEXEC);
  let fd: number;
  try {
    libc.setns(target, libc.CLONE_NEWNET);
    try {
      fd = socket(SOCK_DGRAM | SOCK_NONBLOCK);
    } finally {
      libc.setns(own, libc.CLONE_NEWNET);
    }
  } finally {
    libc.close(own);
    libc.close(target);
  }
  try {
    const to = sockaddr(server, 53);
    const reply = new Uint8Array(512);
    const end = Date.now() + timeoutMs;
    for (let id = 1; Date.now() < end; id++) {
      const query = dnsQuery(name, id);
      libc.rawSyscall(SYS.sendto, fd, query, query.length, 0, to, 16);
      await new Promise((r) => setTimeout(r, 5));
      for (;;) {
        const n = libc.rawSyscall(SYS.recvfrom, fd, reply, reply.length, MSG_DONTWAIT, null, null);
        if (n < 0) break; // nothing (yet), or "refused": nothing listens yet
        if (answers(reply.subarray(0, n), id)) return true;
      }
    }
    return false;
  } finally {
    libc.close(fd);
  }
}
