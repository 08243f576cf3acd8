/**
 * Layers coming in from anywhere (a registry, an import, an archive, a commit) and the images
 * made of them. One pass over a layer's bytes unpacks it for overlayfs and keeps its blob (the
 * bytes as received, or gzip-compressed when they came as a plain tar and the caller wants a
 * compressed blob), both under tmp/; nothing reaches blobs/ or layers/ until the caller has
 * checked the digests and commits it. An image is recorded last: config and manifest blobs,
 * then its index entry, under the index lock.
 */

import { join } from "node:path";
import { DigestTap, sha256Digest } from "./digest.ts";
import { type Compression, detectCompression, unpackStream } from "./layers.ts";
import { MEDIA_TYPES } from "./registry.ts";
import type { ImageRecord, ImageStore } from "./store.ts";

/** A layer received into tmp/: its unpacked tree (`tmp/diff`) and its blob (`tmp/blob`). */
export interface ReceivedLayer {
  /** The directory under tmp/ holding `diff/` and `blob`; remove it when done. */
  tmp: string;
  /** sha256 of the bytes as they came (a registry's blob digest). */
  sourceDigest: string;
  /** The blob kept: its digest, size and compression. */
  digest: string;
  size: number;
  compression: Compression;
  /** sha256 of the uncompressed tar; undefined when unpacking failed (see `error`). */
  diffId: string | undefined;
  error: unknown;
  /** Sum of the regular files' sizes. */
  unpackedSize: number;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
}

/** How to receive a layer. */
export interface ReceiveOptions {
  /** Keep a plain tar as a gzip blob (imports, archives, commits), as Docker pushes layers. */
  gzipPlain?: boolean;
  /** Refuse more source bytes than this (a descriptor's size). */
  maxBytes?: number;
  onBytes?: (total: number) => void;
}

/** Reads `source` to its end into a new directory under tmp/ (see ReceivedLayer). */
export async function receiveLayer(
  store: ImageStore,
  source: ReadableStream<Uint8Array>,
  opts: ReceiveOptions = {},
): Promise<ReceivedLayer> {
  const tmp = store.makeTemp("layer");
  try {
    const diffDir = join(tmp, "diff");
    Deno.mkdirSync(diffDir);
    Deno.chmodSync(diffDir, 0o755); // the image's "/" unless the layer says otherwise; no umask
    const reader = source.getReader();
    const head = await peek(reader);
    let compression: Compression;
    try {
      compression = detectCompression(head.bytes);
    } catch (err) {
      await reader.cancel(err).catch(() => {});
      throw err;
    }
    const recompress = compression === "none" && opts.gzipPlain === true;

    const unpackIn = new TransformStream<Uint8Array, Uint8Array>();
    const unpacked = unpackStream(unpackIn.readable, diffDir, {
      maxBytes: opts.maxBytes,
      onBytes: opts.onBytes,
    });
    // A failure of the unpacking side (a stall, too many bytes) ends the read loop at once: the
    // source is cancelled, so the read under way returns. (Not a Promise.race against a promise
    // that settles only at the end: every race would keep its chunk alive until then.)
    unpacked.catch(() => reader.cancel().catch(() => {}));

    const blobIn = new TransformStream<Uint8Array, Uint8Array>();
    const tap = new DigestTap();
    const file = await Deno.open(join(tmp, "blob"), { write: true, createNew: true, mode: 0o600 });
    let blobSide = blobIn.readable;
    if (recompress) {
      blobSide = blobSide.pipeThrough(
        new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
      );
    }
    const written = blobSide.pipeThrough(tap.stream).pipeTo(file.writable);
    written.catch(() => {});

    const uw = unpackIn.writable.getWriter();
    const bw = blobIn.writable.getWriter();
    try {
      const feed = (chunk: Uint8Array) => Promise.all([uw.write(chunk), bw.write(chunk)]);
      if (head.bytes.byteLength > 0) await feed(head.bytes);
      while (!head.ended) {
        const { done, value } = await reader.read();
        if (done) break;
        await feed(value);
      }
      await Promise.all([uw.close(), bw.close()]);
    } catch (err) {
      await reader.cancel(err).catch(() => {});
      await uw.abort(err).catch(() => {});
      await bw.abort(err).catch(() => {});
      // The unpacking side's own reason, when it is the one that failed.
      await unpacked;
      await written.catch(() => {});
      throw err;
    }
    const result = await unpacked;
    await written;
    return {
      tmp,
      sourceDigest: result.digest,
      digest: recompress ? tap.digest() : result.digest,
      size: tap.bytes,
      compression: recompress ? "gzip" : compression,
      diffId: result.diffId,
      error: result.error,
      unpackedSize: result.stats?.size ?? 0,
      tarSize: result.tarBytes,
    };
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
}

/**
 * Moves a received, checked layer into the store: its blob to blobs/, its tree to layers/
 * (unless the layer is there already). Call it holding the layer's lock (`layer-<hex>`).
 */
export function commitReceived(store: ImageStore, layer: ReceivedLayer, diffId: string): void {
  store.commitBlobFile(join(layer.tmp, "blob"), layer.digest);
  if (!store.hasLayer(diffId)) {
    store.commitLayer(layer.tmp, { diffId, size: layer.unpackedSize, tarSize: layer.tarSize });
  }
  removeQuietly(layer.tmp);
}

/** The media type of a layer blob in an OCI or a Docker schema 2 manifest. */
export function layerMediaType(compression: Compression, docker: boolean): string {
  if (docker && compression === "gzip") return "application/vnd.docker.image.rootfs.diff.tar.gzip";
  if (docker && compression === "none") return "application/vnd.docker.image.rootfs.diff.tar";
  const suffix = compression === "none" ? "" : `+${compression}`;
  return `application/vnd.oci.image.layer.v1.tar${suffix}`;
}

/** A layer of an image being recorded. */
export interface NewLayer {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
}

/** What `recordImage` writes. */
export interface NewImage {
  /**
   * The image config: an object to serialise, or bytes kept exactly (an archive's: the image id
   * is their digest).
   */
  config: Record<string, unknown> | Uint8Array;
  layers: NewLayer[];
  /** Docker schema 2 media types (else OCI's). */
  docker: boolean;
  /** `repository:tag` keys to point at the image. */
  tags: string[];
  /** Extra work under the index lock, before the record is written (layer commits). */
  beforeIndex?: () => void;
}

/** Writes an image's config and manifest blobs and its index entry; returns its record. */
export async function recordImage(store: ImageStore, image: NewImage): Promise<ImageRecord> {
  const configBytes = image.config instanceof Uint8Array
    ? image.config
    : new TextEncoder().encode(JSON.stringify(image.config));
  const configDoc = image.config instanceof Uint8Array
    ? JSON.parse(new TextDecoder().decode(image.config))
    : image.config;
  const id = sha256Digest(configBytes);
  const manifestType = image.docker ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType: manifestType,
    config: {
      mediaType: image.docker
        ? "application/vnd.docker.container.image.v1+json"
        : "application/vnd.oci.image.config.v1+json",
      digest: id,
      size: configBytes.byteLength,
    },
    layers: image.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  const manifestDigest = sha256Digest(manifestBytes);
  const diffIds = image.layers.map((l) => l.diffId);
  return await store.updateIndex((index) => {
    const old = index.images[id];
    if (
      old?.manifest !== undefined && old.layerBlobs !== undefined && store.hasBlob(old.manifest) &&
      old.layerBlobs.every((b) => store.hasBlob(b)) && old.layers.every((d) => store.hasLayer(d))
    ) {
      // The same image is already whole (pulled, or loaded before): it keeps its manifest and
      // blobs, so the digests it was pulled by stay true; this copy only adds names.
      for (const key of image.tags) index.tags[key] = id;
      return old;
    }
    image.beforeIndex?.();
    for (const l of image.layers) {
      if (!store.hasLayer(l.diffId) || !store.hasBlob(l.digest)) {
        throw new Error(`layer ${l.diffId} was removed meanwhile`);
      }
    }
    store.writeBlob(id, configBytes);
    store.writeBlob(manifestDigest, manifestBytes);
    const now = new Date().toISOString();
    const record: ImageRecord = {
      id,
      layers: diffIds,
      manifest: manifestDigest,
      layerBlobs: image.layers.map((l) => l.digest),
      repoDigests: old?.repoDigests ?? [],
      created: typeof configDoc.created === "string" ? configDoc.created : now,
      size: diffIds.reduce((n, d) => n + store.layerInfo(d).size, 0),
      added: old?.added ?? now,
    };
    index.images[id] = record;
    if (old !== undefined) {
      store.removeUnreferencedBlobs(index, [old.manifest, ...(old.layerBlobs ?? [])]);
    }
    for (const key of image.tags) index.tags[key] = id;
    return record;
  });
}

/** The first bytes of a stream (enough for magic numbers), without losing them. */
async function peek(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<{ bytes: Uint8Array; ended: boolean }> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  let ended = false;
  while (length < 6) {
    const { done, value } = await reader.read();
    if (done) {
      ended = true;
      break;
    }
    chunks.push(value);
    length += value.byteLength;
  }
  const bytes = new Uint8Array(length);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.byteLength;
  }
  return { bytes, ended };
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch {
    // Renamed into the store, or already gone.
  }
}
