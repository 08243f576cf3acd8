/**
 * `commit`: a new image from a container's writable layer. The overlayfs upper directory becomes
 * one layer tar (written by tar_writer.ts): overlayfs's whiteouts (0/0 character devices) become
 * the image spec's `.wh.<name>`, an opaque directory (`trusted.overlay.opaque=y`) gets
 * `.wh..wh..opq`; the mount points that mini-docker itself made for the container (an empty
 * `/etc/hosts`, `/proc`...) are left out, as Docker's init layer keeps them out of its commits.
 * The layer goes through the same ingestion as a pulled one (gzip blob + unpacked tree, staged
 * in tmp/), then the image is recorded: the parent's layers plus this one, the parent's config
 * with the container's settings and the `--change` instructions, a history entry.
 */

import { join } from "node:path";
import { UserError } from "../base/errors.ts";
import { lgetxattr } from "../base/libc.ts";
import { applyChanges, type ConfigObject } from "./changes.ts";
import { hostPlatform, parseManifest } from "./config.ts";
import {
  commitReceived,
  layerMediaType,
  type NewLayer,
  type ReceivedLayer,
  receiveLayer,
  recordImage,
} from "./ingest.ts";
import { MEDIA_TYPES } from "./registry.ts";
import { parseReference, repositoryName } from "./reference.ts";
import { type ImageRecord, ImageStore } from "./store.ts";
import { type TarHeader, TarWriter } from "./tar_writer.ts";
import { OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX } from "./whiteout.ts";

/** What the container gives a commit. */
export interface CommitSource {
  /** Short id, for the history. */
  containerId: string;
  /** The overlayfs upper directory (the container's writable layer). */
  upper: string;
  /** The parent image's id, when the container was made from an image. */
  parentId?: string;
  /** A root filesystem directory the container was made from instead (committed whole). */
  baseDir?: string;
  /** Mount points in the root (`/etc/hosts`, `/proc`): left out when they are empty. */
  mountPoints: string[];
  /** The container's runtime config as it ran (Cmd, Entrypoint, Env, User, WorkingDir...). */
  config: ConfigObject;
}

/** What the user asked for. */
export interface CommitOptions {
  changes?: string[];
  message?: string;
  author?: string;
  /** REPO[:TAG] for the new image. */
  name?: string;
  store?: ImageStore;
}

/** Makes the image; returns its record. */
export async function commitImage(
  src: CommitSource,
  opts: CommitOptions = {},
): Promise<ImageRecord> {
  const store = opts.store ?? new ImageStore();
  store.cleanStaleTemp();
  const ref = opts.name === undefined ? undefined : parseReference(opts.name);
  if (ref?.digest !== undefined) {
    throw new UserError(
      `Cannot commit as "${opts.name}": a digest cannot be given (use NAME[:TAG])`,
    );
  }
  // The config first: a bad --change fails before any work.
  let parent: Record<string, unknown> = {};
  let parentLayers: NewLayer[] = [];
  let docker = true;
  if (src.parentId !== undefined) {
    const record = store.readIndex().images[src.parentId];
    const configBytes = store.readBlob(src.parentId);
    if (record === undefined || configBytes === null) {
      throw new UserError(
        `Cannot commit: the container's image ${src.parentId} is no longer in the store`,
      );
    }
    parent = JSON.parse(new TextDecoder().decode(configBytes));
    const manifestBytes = record.manifest === undefined ? null : store.readBlob(record.manifest);
    if (manifestBytes === null || record.layerBlobs === undefined) {
      throw new UserError(
        `Cannot commit: the container's image ${
          src.parentId.slice(7, 19)
        } was stored before mini-docker kept layer blobs; pull it again`,
      );
    }
    const manifest = parseManifest(manifestBytes);
    const mediaType = JSON.parse(new TextDecoder().decode(manifestBytes)).mediaType;
    docker = mediaType === MEDIA_TYPES.dockerManifest;
    parentLayers = manifest.layers.map((l, i) => ({
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
      diffId: record.layers[i]!,
    }));
  }
  const config: ConfigObject = {
    ...(parent.config as ConfigObject | undefined ?? {}),
    ...src.config,
  };
  applyChanges(config, opts.changes ?? []);

  const received: ReceivedLayer[] = [];
  const staged: NewLayer[] = [];
  try {
    const dirs: [string, boolean][] = src.baseDir === undefined
      ? [[src.upper, true]]
      : [[src.baseDir, false], [src.upper, true]];
    for (const [dir, whiteouts] of dirs) {
      const skip = whiteouts
        ? new Set(src.mountPoints.map((p) => p.replace(/^\/+/, "")))
        : new Set<string>();
      const layer = await receiveLayer(store, directoryTar(dir, { whiteouts, skip }), {
        gzipPlain: true,
      });
      received.push(layer);
      if (layer.error instanceof UserError) throw layer.error; // what the walk refused
      if (layer.error !== undefined || layer.diffId === undefined) {
        throw new UserError(
          `Cannot commit: the layer made from ${dir} does not unpack: ${layer.error}`,
        );
      }
      staged.push({
        digest: layer.digest,
        size: layer.size,
        mediaType: layerMediaType(layer.compression, docker),
        diffId: layer.diffId,
      });
    }
    const created = new Date().toISOString();
    const { os, architecture, variant } = hostPlatform();
    const cmd = [
      ...(src.config.Entrypoint as string[] | null ?? []),
      ...(src.config.Cmd as string[] | null ?? []),
    ];
    const doc: Record<string, unknown> = {
      ...(parent.architecture === undefined ? { architecture, os, ...(variant && { variant }) } : {
        architecture: parent.architecture,
        os: parent.os,
        ...(parent.variant !== undefined && { variant: parent.variant }),
      }),
      ...(opts.author !== undefined && { author: opts.author }),
      created,
      config,
      container: src.containerId,
      rootfs: { type: "layers", diff_ids: [...parentLayers, ...staged].map((l) => l.diffId) },
      history: [
        ...(Array.isArray(parent.history) ? parent.history : []),
        ...staged.map((_, i) => ({
          created,
          created_by: i === staged.length - 1
            ? cmd.join(" ")
            : `mini-docker commit (root filesystem)`,
          ...(opts.author !== undefined && { author: opts.author }),
          ...(opts.message !== undefined && { comment: opts.message }),
        })),
      ],
    };
    return await recordImage(store, {
      config: doc,
      layers: [...parentLayers, ...staged],
      docker,
      tags: ref === undefined ? [] : [`${repositoryName(ref)}:${ref.tag}`],
      beforeIndex: () => {
        for (const layer of received) commitReceived(store, layer, layer.diffId!);
      },
    });
  } finally {
    for (const layer of received) {
      try {
        Deno.removeSync(layer.tmp, { recursive: true });
      } catch {
        // Committed into the store.
      }
    }
  }
}

/**
 * A directory as a layer tar, streamed: parents before children, names sorted, hard links as
 * links to their first path, sockets left out (as Docker's archiver does). With `whiteouts`, the
 * directory is an overlayfs upper dir and its whiteouts become the image spec's.
 */
export function directoryTar(
  root: string,
  opts: { whiteouts: boolean; skip: Set<string> },
): ReadableStream<Uint8Array> {
  const pipe = new TransformStream<Uint8Array, Uint8Array>();
  const tar = new TarWriter(pipe.writable);
  const links = new Map<string, string>();
  root = Deno.realPathSync(root);
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === "" ? root : join(root, rel);
    // The directory read must be the one walked to: never one that a running container (with
    // --pause=false) swapped for a symlink meanwhile, which would list a host directory.
    if (Deno.realPathSync(abs) !== abs) {
      throw new UserError(
        `Cannot commit: "/${rel}" changed while it was read (commit with the container paused)`,
      );
    }
    const names = [...Deno.readDirSync(abs)].map((e) => e.name).sort();
    for (const name of names) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const full = join(root, path);
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(full);
      } catch (err) {
        // Deno reads a name that is not UTF-8 with U+FFFD in place of its bytes: such a name
        // cannot be found again, nor written as it is; refused, naming it, rather than dropped.
        if (err instanceof Deno.errors.NotFound && name.includes("\uFFFD")) {
          throw new UserError(
            `Cannot commit: the file name ${
              JSON.stringify(`/${path}`)
            } is not valid UTF-8, which mini-docker cannot archive: rename it in the container`,
          );
        }
        throw err;
      }
      if (opts.skip.has(path) && isEmpty(full, st)) continue;
      const base = {
        mode: (st.mode ?? 0) & 0o7777,
        uid: st.uid ?? 0,
        gid: st.gid ?? 0,
        mtime: Math.floor((st.mtime?.getTime() ?? 0) / 1000),
      };
      if (opts.whiteouts && st.isCharDevice && st.rdev === 0) {
        await tar.add({
          ...base,
          path: join(rel, `${WHITEOUT_PREFIX}${name}`),
          type: "file",
          size: 0,
          mode: 0o600,
        });
        continue;
      }
      const xattrs = new Map<string, Uint8Array>();
      const cap = st.isSymlink ? null : lgetxattr(full, "security.capability");
      if (cap !== null) xattrs.set("security.capability", cap);
      const header: TarHeader = { ...base, path, type: "file", xattrs };
      if (st.isDirectory) {
        await tar.add({ ...header, type: "dir" });
        const opaque = opts.whiteouts ? lgetxattr(full, OPAQUE_XATTR) : null;
        if (opaque !== null && new TextDecoder().decode(opaque) === "y") {
          await tar.add({
            ...base,
            path: `${path}/${OPAQUE_MARKER}`,
            type: "file",
            size: 0,
            mode: 0o600,
          });
        }
        await walk(path);
      } else if (st.isSymlink) {
        await tar.add({ ...header, type: "symlink", linkpath: Deno.readLinkSync(full) });
      } else if (st.isFile) {
        const key = `${st.dev}:${st.ino}`;
        const first = (st.nlink ?? 1) > 1 ? links.get(key) : undefined;
        if (first !== undefined) {
          await tar.add({ ...header, type: "hardlink", linkpath: first });
          continue;
        }
        if ((st.nlink ?? 1) > 1) links.set(key, path);
        const file = await Deno.open(full);
        // The file opened must be the one walked to: never one that a running container (with
        // --pause=false) swapped in through a symlink, which would resolve on the host.
        const opened = await file.stat();
        if (
          opened.ino !== st.ino || opened.dev !== st.dev || Deno.realPathSync(full) !== full ||
          Deno.lstatSync(full).ino !== st.ino
        ) {
          file.close();
          throw new Error(
            `"/${path}" changed while it was read (commit with the container paused)`,
          );
        }
        await tar.add({ ...header, size: st.size }, file.readable);
      } else if (st.isCharDevice || st.isBlockDevice) {
        // glibc's major()/minor() of the 64-bit dev_t.
        const rdev = BigInt(st.rdev ?? 0);
        await tar.add({
          ...header,
          type: st.isCharDevice ? "chardev" : "blockdev",
          devmajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
          devminor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
        });
      } else if (st.isFifo) {
        await tar.add({ ...header, type: "fifo" });
      }
      // Sockets: nothing (Docker leaves them out).
    }
  };
  (async () => {
    try {
      await walk("");
      await tar.close();
    } catch (err) {
      await tar.abort(err);
    }
  })();
  return pipe.readable;
}

function isEmpty(path: string, st: Deno.FileInfo): boolean {
  if (st.isFile) return st.size === 0;
  if (st.isDirectory) {
    for (const _ of Deno.readDirSync(path)) return false;
    return true;
  }
  return false;
}
