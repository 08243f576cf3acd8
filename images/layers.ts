/**
 * One pass over a layer blob: hash the bytes as they arrive (the blob digest), decompress when
 * they start with gzip's or zstd's magic (zstd with node:zlib's decoder, built into Deno), hash
 * again (the diff id) and unpack. Unpacking goes into a
 * directory under the store's tmp/; only the caller, after comparing both digests with what the
 * manifest and config promise, renames it into place.
 */

import { createHash } from "node:crypto";
import { DigestTap } from "./digest.ts";
import { unpackLayer, type UnpackStats } from "./unpack.ts";

/** What a pass over a layer stream found; `error` is set when unpacking failed. */
export interface LayerStreamResult {
  /** sha256 of the bytes as received: the blob digest. */
  digest: string;
  /** sha256 of the uncompressed tar; undefined when unpacking failed. */
  diffId: string | undefined;
  /** Bytes received. */
  bytes: number;
  /** Bytes of the uncompressed tar. */
  tarBytes: number;
  /** The compression its first bytes said. */
  compression: Compression;
  stats: UnpackStats | undefined;
  error: unknown;
}

/** A download that sends nothing for this long is given up. */
const IDLE_TIMEOUT_MS = 60_000;

/** reader.read(), failing when no chunk comes within `ms`. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no data received for ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([reader.read(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A layer's compression. */
export type Compression = "gzip" | "zstd" | "none";

/** Compression, told by magic bytes (more reliable than media types, as Docker does it). */
export function detectCompression(head: Uint8Array): Compression {
  const starts = (...magic: number[]) => magic.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return "gzip";
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return "zstd";
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) {
    throw new Error("xz compression is not supported");
  }
  if (starts(0x42, 0x5a, 0x68)) throw new Error("bzip2 compression is not supported");
  return "none";
}

/**
 * Reads `source` to its end, unpacking it into `diffDir`. Even when unpacking fails early the
 * rest is read (up to `maxBytes`) so that the digest can tell a corrupt download from a bad
 * layer; errors of the source itself (connection lost) are thrown.
 */
export async function unpackStream(
  source: ReadableStream<Uint8Array>,
  diffDir: string,
  opts: { maxBytes?: number; onBytes?: (total: number) => void; idleTimeoutMs?: number } = {},
): Promise<LayerStreamResult> {
  const idleMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  const reader = source.getReader();
  const read = () => readWithin(reader, idleMs);
  let head: { chunks: Uint8Array[]; ended: boolean; compression: Compression };
  try {
    head = await peek(read);
  } catch (err) {
    await reader.cancel(err).catch(() => {});
    throw err;
  }

  const decompress = await decompressor(head.compression);
  const diffTap = new DigestTap();
  const unpacked = unpackLayer(decompress.readable.pipeThrough(diffTap.stream), diffDir).then(
    (stats) => ({ stats, error: undefined as unknown }),
    (error: unknown) => ({ stats: undefined, error }),
  );
  const writer = decompress.writable.getWriter();
  const hash = createHash("sha256");
  let total = 0;
  let broken = false; // the unpacking side has failed: keep hashing, stop feeding it

  const feed = async (chunk: Uint8Array) => {
    hash.update(chunk);
    total += chunk.byteLength;
    opts.onBytes?.(total);
    if (opts.maxBytes !== undefined && total > opts.maxBytes) {
      throw new Error(`blob is larger than the ${opts.maxBytes} bytes its descriptor says`);
    }
    if (!broken) await writer.write(chunk).catch(() => broken = true);
  };

  try {
    for (const chunk of head.chunks) await feed(chunk);
    while (!head.ended) {
      const { done, value } = await read();
      if (done) break;
      await feed(value);
    }
    if (!broken) await writer.close().catch(() => broken = true);
  } catch (err) {
    await writer.abort(err).catch(() => {});
    await reader.cancel(err).catch(() => {});
    await unpacked;
    throw err;
  }
  const { stats, error } = await unpacked;
  return {
    digest: `sha256:${hash.digest("hex")}`,
    diffId: error === undefined ? diffTap.digest() : undefined,
    bytes: total,
    tarBytes: diffTap.bytes,
    compression: head.compression,
    stats,
    error,
  };
}

/**
 * The stream that decompresses a layer: the web's gzip, Deno's built-in zstd decoder (node:zlib,
 * loaded only for a zstd layer), or none.
 */
export async function decompressor(
  compression: Compression,
): Promise<TransformStream<Uint8Array, Uint8Array>> {
  if (compression === "gzip") {
    return new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>;
  }
  if (compression === "zstd") {
    const [{ createZstdDecompress }, { Duplex }] = await Promise.all([
      import("node:zlib"),
      import("node:stream"),
    ]);
    return Duplex.toWeb(createZstdDecompress()) as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >;
  }
  return new TransformStream<Uint8Array, Uint8Array>();
}

/** Reads the first chunks, enough to tell the compression by its magic bytes. */
async function peek(
  read: () => Promise<ReadableStreamReadResult<Uint8Array>>,
): Promise<{ chunks: Uint8Array[]; ended: boolean; compression: Compression }> {
  const MAGIC = 6;
  const chunks: Uint8Array[] = [];
  let length = 0;
  let ended = false;
  while (length < MAGIC) {
    const { done, value } = await read();
    if (done) {
      ended = true;
      break;
    }
    chunks.push(value);
    length += value.byteLength;
  }
  const first = new Uint8Array(Math.min(length, MAGIC));
  let off = 0;
  for (const c of chunks) {
    if (off >= first.byteLength) break;
    const take = c.subarray(0, first.byteLength - off);
    first.set(take, off);
    off += take.byteLength;
  }
  return { chunks, ended, compression: detectCompression(first) };
}
