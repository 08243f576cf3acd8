/**
 * Network namespaces kept by a bind mount under the run root (as Podman keeps /run/netns/...):
 * created before the container (its thread joins it by path, spec `linux.namespaces`), so that
 * the driver configures it while the container is being prepared; and kept after the
 * container's last process, so that its network can be torn down in order by whoever comes
 * next. Unmounting it lets the kernel free it, with its end of the veth pair.
 */
import * as libc from "../base/libc.ts";
import { networkRunDir } from "./store.ts";

/** Where namespace `name` (a container id, or a network's keeper) is kept. */
export function netnsPath(name: string): string {
  return `${networkRunDir()}/netns/${name}`;
}

/**
 * Creates a new network namespace kept at `path`. This thread enters it for the three calls it
 * takes (unshare, bind mount of its own namespace, setns back): namespaces belong to threads,
 * and nothing else runs on this one meanwhile.
 */
export function createNamespace(path: string): void {
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true, mode: 0o700 });
  Deno.writeFileSync(path, new Uint8Array(), { mode: 0o600 });
  const own = libc.open("/proc/thread-self/ns/net", libc.O_RDONLY | libc.O_CLOEXEC);
  try {
    libc.unshare(libc.CLONE_NEWNET);
    try {
      libc.mount("/proc/thread-self/ns/net", path, "", libc.MS_BIND);
    } finally {
      libc.setns(own, libc.CLONE_NEWNET);
    }
  } catch (err) {
    Deno.removeSync(path);
    throw err;
  } finally {
    libc.close(own);
  }
}

/** Whether a namespace is kept at `path` (a bind mount, not the empty file under it). */
export function isKept(path: string): boolean {
  try {
    return Deno.statSync(path).dev !== Deno.statSync(path.slice(0, path.lastIndexOf("/"))).dev;
  } catch {
    return false;
  }
}

/** Lets a kept namespace go: unmounted (the kernel frees it with its interfaces) and removed. */
export function releaseNamespace(path: string): void {
  try {
    libc.umount2(path, libc.MNT_DETACH);
  } catch (err) {
    // Not mounted: a start that died before it kept the namespace, or released before.
    const gone = err instanceof libc.SyscallError &&
      (err.errno === libc.EINVAL || err.errno === libc.ENOENT);
    if (!gone) throw err;
  }
  try {
    Deno.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
