/**
 * The entry of a copy thread (`cp`, `export`, `diff`): a Deno Worker that first makes the root
 * of its own filesystem context (unshare(CLONE_FS): nothing else of mini-docker is affected) the
 * container's, or a host directory, and then does file work there with synchronous calls only
 * (copy_fs.ts), so that every path it resolves, symlinks included, stays under that root.
 *
 * - "container": a running container's mount namespace, entered with setns (a descriptor the
 *   parent opened and checked): its root, overlay and volumes as its processes see them.
 * - "root": a running container's root filesystem alone, for `export`: a private copy of its
 *   mount namespace with every other mount detached.
 * - "layers": a stopped container (or `export` of one): a private mount namespace of this thread where
 *   the container's layers are mounted the way the recipe mounts them, then pivot_root.
 * - "dir": a host directory, as the root of a private mount namespace (the host's side of a
 *   copy: nothing in an archive can reach past it, and no symlink swapped into it can lead the
 *   copy to other host files).
 * - "changes": a container's writable layer and its image's layers side by side, for `diff`.
 *
 * No code is ever loaded from the root it enters: libc is loaded (dlopen) before, at boot, and
 * nothing runs in a new process. Every module is imported at boot too.
 */
import * as libc from "../base/libc.ts";
import type { ContainerSpec } from "../base/spec.ts";
import { linux } from "./kernel.ts";
import { assembleRoot, mountInto, pivot } from "./mounts.ts";
import {
  archive,
  type ArchiveJob,
  CopyError,
  extract,
  type ExtractJob,
  fdIdentity,
  layerChanges,
  resolveDestination,
  statPath,
} from "./copy_fs.ts";

/** Where a copy thread puts its root. */
export type Enter =
  | { kind: "container"; nsFd: number }
  | { kind: "root"; nsFd: number; mounts: string[] }
  | { kind: "layers"; spec: ContainerSpec; writable: boolean }
  | { kind: "dir"; path: string; identity: string }
  | { kind: "changes"; spec: ContainerSpec };

/** What a copy thread is asked to do, once it has entered. */
export type CopyJob =
  | { op: "stat"; path: string; follow: boolean }
  | { op: "destination"; path: string }
  | ({ op: "archive" } & ArchiveJob)
  | ({ op: "extract" } & ExtractJob)
  | { op: "changes"; exclude: string[] };

export type CopyRequest = { type: "enter"; enter: Enter } | { type: "job"; job: CopyJob };

export type CopyReply =
  | { type: "booted" }
  | { type: "done"; result: unknown }
  | { type: "failed"; message: string; user: boolean };

const scope = self as unknown as {
  postMessage(message: CopyReply): void;
  onmessage: ((event: MessageEvent<CopyRequest>) => void) | null;
};

const CLONE_FS = 0x200;
const UMOUNT_NOFOLLOW = 0x8;

/** Makes this thread's root the one asked for. */
function enter(how: Enter): void {
  // The host's root as it is: nothing to confine to ("/" is the whole host anyway).
  if (how.kind === "dir" && how.path === "/") return;
  libc.unshare(CLONE_FS);
  if (how.kind === "container") {
    libc.setns(how.nsFd, libc.CLONE_NEWNS);
    libc.chdir("/");
  } else if (how.kind === "root") {
    // A copy of the container's mount namespace, private to this thread, with every mount but
    // its root detached (the deepest first): what `export` reads is its overlay, live.
    libc.setns(how.nsFd, libc.CLONE_NEWNS);
    libc.unshare(libc.CLONE_NEWNS);
    libc.mount("", "/", "", libc.MS_REC | libc.MS_PRIVATE);
    const deepest = [...how.mounts].sort((a, b) => b.split("/").length - a.split("/").length);
    for (const point of deepest) {
      try {
        libc.umount2(point, libc.MNT_DETACH | UMOUNT_NOFOLLOW);
      } catch {
        // Under a mount detached already, or swapped for a link: not reachable any more.
      }
    }
    libc.chdir("/");
  } else {
    libc.unshare(libc.CLONE_NEWNS);
    // Nothing mounted here reaches the host, and nothing of the host's comes in later.
    libc.mount("", "/", "", libc.MS_REC | libc.MS_PRIVATE);
    if (how.kind === "dir") {
      libc.mount(how.path, how.path, "", libc.MS_BIND | libc.MS_REC);
      pivot(linux, how.path);
      // The directory the parent chose, not what its path names now: a volume that a container
      // shares could have had a component swapped for a symlink meanwhile.
      const root = libc.open("/", libc.O_PATH | libc.O_DIRECTORY | libc.O_CLOEXEC);
      try {
        if (fdIdentity(root) !== how.identity) {
          throw new CopyError(`The directory "${how.path}" changed while it was copied`);
        }
      } finally {
        libc.close(root);
      }
    } else if (how.kind === "changes") {
      mountChanges(how.spec);
    } else {
      mountLayers(how.spec, how.writable);
    }
  }
  // Modes are set explicitly on what is created.
  libc.umask(0);
}

/**
 * A stopped container's root at its mount point: writable, as the recipe assembles it with its
 * bind mounts (the files and volumes it is given: volumes recorded in its spec's `mounts` as binds
 * are there too); or read-only, its layers only, the writable
 * one as the topmost lower (no work directory: a running container's own overlay is not
 * disturbed), for `export`.
 */
function mountLayers(spec: ContainerSpec, writable: boolean): void {
  const root = spec.root.path;
  const layers = spec.rootLayers ?? { lower: [root] };
  // Without a writable layer (no overlayfs), the only directory is the base root filesystem,
  // which other containers share: it is never written to, mount points included.
  if (writable && layers.upper !== undefined) {
    assembleRoot(linux, spec);
    // Targets opened inside the root by the kernel, as the recipe mounts them (mounts.ts).
    const rootFd = linux.openat2(libc.AT_FDCWD, root, libc.O_PATH | libc.O_DIRECTORY, 0);
    try {
      for (const m of spec.mounts) {
        if (m.type === "bind" || m.options.includes("bind") || m.options.includes("rbind")) {
          // A copy never fills a volume from the image: only a start does.
          mountInto(linux, rootFd, { ...m, copyUp: false }, { root: "", dir: "" });
        }
      }
    } finally {
      linux.close(rootFd);
    }
  } else {
    const lower = layers.upper === undefined ? layers.lower : [layers.upper, ...layers.lower];
    assembleRoot(linux, { ...spec, rootLayers: { lower } });
    if (lower.length === 1) {
      libc.mount("", root, "", libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY);
    }
  }
  pivot(linux, root);
}

/**
 * For `diff`: the writable layer at /upper and the image's layers at /lower, both read-only, on a
 * tmpfs of this thread's mount namespace at the container's mount point, which becomes the root.
 */
function mountChanges(spec: ContainerSpec): void {
  const root = spec.root.path;
  const ro = libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY;
  libc.mount("tmpfs", root, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "size=16k,mode=0700");
  Deno.mkdirSync(`${root}/upper`);
  Deno.mkdirSync(`${root}/lower`);
  const layers = spec.rootLayers ?? { lower: [] };
  if (layers.upper !== undefined) {
    libc.mount(layers.upper, `${root}/upper`, "", libc.MS_BIND);
    libc.mount("", `${root}/upper`, "", ro);
  }
  if (layers.lower.length > 0) {
    const lower = `${root}/lower`;
    assembleRoot(linux, {
      ...spec,
      root: { ...spec.root, path: lower },
      rootLayers: { lower: layers.lower },
    });
    if (layers.lower.length === 1) libc.mount("", lower, "", ro);
  }
  pivot(linux, root);
}

async function run(job: CopyJob): Promise<unknown> {
  switch (job.op) {
    case "stat":
      return statPath(job.path, job.follow);
    case "destination":
      return resolveDestination(job.path);
    case "archive":
      return await archive(job);
    case "extract":
      return await extract(job);
    case "changes":
      return layerChanges(job.exclude);
  }
}

// libc is loaded now, from the host: never later, from wherever the root has gone.
libc.gettid();
scope.postMessage({ type: "booted" });
scope.onmessage = async (event) => {
  const request = event.data;
  try {
    if (request.type === "enter") {
      enter(request.enter);
      scope.postMessage({ type: "done", result: null });
    } else {
      scope.postMessage({ type: "done", result: await run(request.job) });
    }
  } catch (err) {
    scope.postMessage({
      type: "failed",
      message: err instanceof Error ? err.message : String(err),
      user: err instanceof CopyError,
    });
  }
};
