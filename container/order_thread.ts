/**
 * The entry of a thread that puts a container's mounts back in its config's order once its
 * /proc exists (proc.ts `mountsInOrder`): a Deno Worker that enters the container's mount
 * namespace (unshare(CLONE_FS) first: nothing else of mini-docker is affected) and, for each
 * mount point it is given, attaches a copy of that mount tree in place of the original. A copy
 * is a new mount, listed after the container's /proc in its mount table, as the OCI runtime spec
 * asks ("mounts in the listed order"); the files, options and propagation are the original's.
 * Then the root's propagation the config asks for (`linux.rootfsPropagation`): only now, since
 * until the procfs was there the container's /proc received it from the host's side.
 */
import * as libc from "../base/libc.ts";
import { linux } from "./kernel.ts";
import { makeReadonly, mask } from "./mounts.ts";

export interface OrderRequest {
  /** The container's first process, waiting at its gate: its mount namespace. */
  pid: number;
  /**
   * First mount the container's procfs on its /proc, for the PID namespace of that process, and
   * hide these paths of it (a mount namespace joined by path, which the host's side of /proc
   * does not reach).
   */
  procfs?: { masked: string[]; readonly: string[] };
  /** Mount points, as the container sees them, in the order their copies are to be made. */
  points: string[];
  /**
   * Those of the mounts copied (or below them) that are unbindable: a copy of an unbindable
   * mount cannot be made, so they are private while it is, and unbindable again after.
   */
  unbindable: string[];
  /** Then the propagation of its root mount: MS_SHARED etc., with MS_REC or not (or none). */
  propagation?: number;
}
export type OrderReply = { ok: true } | { ok: false; message: string };

const scope = self as unknown as {
  postMessage(message: OrderReply): void;
  onmessage: ((event: MessageEvent<OrderRequest>) => void) | null;
};

const CLONE_FS = 0x200;
const UMOUNT_NOFOLLOW = 0x8;
const O_PATH = libc.O_PATH | libc.O_NOFOLLOW | libc.O_CLOEXEC;

function reorder(request: OrderRequest): void {
  let procfs: number | undefined;
  if (request.procfs !== undefined) {
    // Made here, in the host's namespaces: the container's PID namespace by its descriptor.
    const pidns = libc.open(`/proc/${request.pid}/ns/pid`, libc.O_RDONLY | libc.O_CLOEXEC);
    try {
      procfs = libc.procfsMount(
        pidns,
        libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOEXEC,
      );
    } finally {
      libc.close(pidns);
    }
  }
  try {
    const ns = libc.open(`/proc/${request.pid}/ns/mnt`, libc.O_RDONLY | libc.O_CLOEXEC);
    // The process's root: the namespace's after pivot_root, a mount on top of it after
    // --no-pivot's move, which setns alone would not enter.
    const root = libc.open(
      `/proc/${request.pid}/root`,
      libc.O_PATH | libc.O_DIRECTORY | libc.O_CLOEXEC,
    );
    try {
      libc.unshare(CLONE_FS);
      libc.setns(ns, libc.CLONE_NEWNS);
      libc.fchdir(root);
      libc.chroot(".");
    } finally {
      libc.close(ns);
      libc.close(root);
    }
    libc.chdir("/");
    if (procfs !== undefined) {
      const to = libc.open("/proc", O_PATH);
      try {
        libc.moveMount(procfs, to);
      } finally {
        libc.close(to);
      }
    }
  } finally {
    if (procfs !== undefined) libc.close(procfs);
  }
  for (const path of request.procfs?.masked ?? []) mask(linux, path);
  for (const path of request.procfs?.readonly ?? []) makeReadonly(linux, path);
  for (const point of request.unbindable) libc.mount("", point, "", libc.MS_PRIVATE);
  for (const point of request.points) {
    const from = libc.open(point, O_PATH);
    let tree: number;
    try {
      tree = libc.openTree(from, true);
    } finally {
      libc.close(from);
    }
    try {
      libc.umount2(point, libc.MNT_DETACH | UMOUNT_NOFOLLOW);
      const to = libc.open(point, O_PATH);
      try {
        libc.moveMount(tree, to);
      } finally {
        libc.close(to);
      }
    } finally {
      libc.close(tree);
    }
  }
  for (const point of request.unbindable) libc.mount("", point, "", libc.MS_UNBINDABLE);
  if (request.propagation !== undefined) libc.mount("", "/", "", request.propagation);
}

scope.onmessage = (event) => {
  try {
    reorder(event.data);
    scope.postMessage({ ok: true });
  } catch (err) {
    scope.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) });
  }
};
