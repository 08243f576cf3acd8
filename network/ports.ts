/**
 * Published ports are forwarded by the driver's NAT rules, which no socket backs: without more,
 * a host port already served by a host program would be silently taken over, and another
 * program could later bind a published one. So, as Podman does, the container's owner binds
 * each published host port (TCP: bound and listening; UDP: bound) for the container's life: a
 * port in use fails the start at once, and a free port (`-p 80`) is the one the kernel gives.
 * Nothing ever reaches these sockets (the NAT rules redirect first). They are close-on-exec,
 * so no container inherits them.
 *
 * The socket calls are raw (socket.ts): Deno's own listeners cannot bind UDP without an unstable
 * flag, and a TCP one would accept connections.
 */
import type { PortMapping } from "../base/spec.ts";
import { UserError } from "../base/errors.ts";
import * as libc from "../base/libc.ts";
import {
  SO_REUSEADDR,
  SOCK_DGRAM,
  SOCK_STREAM,
  sockaddr,
  socket,
  SOL_SOCKET,
  SYS,
  SYS_SETSOCKOPT,
} from "./socket.ts";

/** Host ports held for a container; dispose of it when the container's network is gone. */
export interface Reservation extends Disposable {
  /** The mappings with every host port resolved (no 0 left). */
  ports: PortMapping[];
}

/** Binds one host port; returns the descriptor and the port bound. */
function bindPort(p: PortMapping): { fd: number; port: number } {
  const type = p.protocol === "tcp" ? SOCK_STREAM : SOCK_DGRAM;
  const fd = socket(type);
  try {
    if (p.protocol === "tcp") {
      // As any server: a port whose last connections linger in TIME_WAIT is free.
      const one = new Int32Array([1]);
      libc.rawSyscall(SYS_SETSOCKOPT, fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
    }
    if (libc.rawSyscall(SYS.bind, fd, sockaddr(p.hostIp, p.hostPort), 16) < 0) {
      throw new libc.SyscallError("bind", libc.lastErrno());
    }
    if (p.protocol === "tcp" && libc.rawSyscall(SYS.listen, fd, 1) < 0) {
      throw new libc.SyscallError("listen", libc.lastErrno());
    }
    const out = new Uint8Array(16);
    const len = new Uint32Array([16]);
    if (libc.rawSyscall(SYS.getsockname, fd, out, len) < 0) {
      throw new libc.SyscallError("getsockname", libc.lastErrno());
    }
    return { fd, port: new DataView(out.buffer).getUint16(2, false) };
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/** Binds every host port of `ports`; all or none (a failure closes what was bound). */
export function reservePorts(ports: readonly PortMapping[]): Reservation {
  const fds: number[] = [];
  const resolved: PortMapping[] = [];
  const release = () => {
    for (const fd of fds.splice(0)) libc.close(fd);
  };
  try {
    for (const p of ports) {
      let bound: { fd: number; port: number };
      try {
        bound = bindPort(p);
      } catch (err) {
        const where = `${p.hostIp === "" ? "0.0.0.0" : p.hostIp}:${p.hostPort}/${p.protocol}`;
        const cause = err instanceof libc.SyscallError ? libc.strerror(err.errno) : String(err);
        throw new UserError(
          p.hostPort === 0
            ? `Cannot publish port ${p.containerPort}/${p.protocol} on a free host port of ${
              p.hostIp || "0.0.0.0"
            }: ${cause}`
            : `Cannot publish ${where}: ${cause}`,
        );
      }
      fds.push(bound.fd);
      resolved.push({ ...p, hostPort: bound.port });
    }
  } catch (err) {
    release();
    throw err;
  }
  return { ports: resolved, [Symbol.dispose]: release };
}
