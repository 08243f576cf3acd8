/**
 * `pull`: manifest (via an index when the image is multi-platform), config, then each layer that
 * the store lacks, streamed, verified and unpacked; finally the image is recorded in the index.
 * Layers download three at a time; a per-layer lock makes concurrent pulls of the same layer
 * wait for each other instead of fetching it twice.
 */

import { UserError } from "../base/errors.ts";
import {
  type Descriptor,
  formatPlatform,
  hostPlatform,
  isIndexMediaType,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  type Platform,
  selectPlatform,
} from "./config.ts";
import { digestHex, shortId } from "./digest.ts";
import { commitReceived, type ReceivedLayer, receiveLayer } from "./ingest.ts";
import { createProgress, type Progress } from "./progress.ts";
import { formatReference, parseReference, repositoryName } from "./reference.ts";
import { type FetchedManifest, RegistryClient } from "./registry.ts";
import { type ImageRecord, ImageStore } from "./store.ts";

/** How to pull. */
export interface PullOptions {
  /** Allow plain HTTP to a non-loopback registry. */
  insecure?: boolean;
  /** `os/arch[/variant]`; the host's platform by default. */
  platform?: string;
  /** Where status goes; defaults to bars or lines on stderr (see createProgress). */
  progress?: Progress;
  /** Where a warning goes (one line); default stderr. */
  warn?: (line: string) => void;
  store?: ImageStore;
}

/** What a pull produced. */
export interface PullResult {
  record: ImageRecord;
  /** Full normalised reference: `docker.io/library/alpine:latest`. */
  ref: string;
  /** Digest of the manifest or index the reference resolved to. */
  digest: string;
  /** False when every layer was already in the store. */
  downloaded: boolean;
}

const PARALLEL_DOWNLOADS = 3;

/** Pulls `NAME[:TAG|@DIGEST]` into the store. */
export async function pullImage(text: string, opts: PullOptions = {}): Promise<PullResult> {
  const ref = parseReference(text);
  const label = formatReference(ref);
  const fail = (detail: string) => new UserError(`Cannot pull "${label}": ${detail}`);
  let want: Platform = hostPlatform();
  if (opts.platform !== undefined) {
    const p = parsePlatform(opts.platform);
    if (p === null) {
      throw new UserError(`Invalid platform "${opts.platform}": expected os/arch[/variant]`);
    }
    want = p;
  }
  const store = opts.store ?? new ImageStore();
  const progress = opts.progress ?? createProgress();
  const client = new RegistryClient(ref.domain, ref.path, { insecure: opts.insecure });
  store.cleanStaleTemp();

  try {
    progress.status(`${ref.digest ?? ref.tag}: Pulling from ${ref.path}`);
    const top = await client.manifest(ref.digest ?? ref.tag!);
    let manifest: FetchedManifest = top;
    if (isIndexMediaType(top.mediaType)) {
      const entry = selectPlatform(top.bytes, want);
      if (entry === null) {
        throw fail(`no matching manifest for ${formatPlatform(want)} in the manifest list entries`);
      }
      manifest = await client.manifest(entry.digest);
    }
    const { config: configDesc, layers } = parseManifest(manifest.bytes);
    const configBytes = await client.blobBytes(configDesc.digest);
    const config = parseImageConfig(configBytes);
    // What the image says it is for, against what was asked for (--platform, or this host): a
    // warning, as Podman's, since such an image may still run (a static binary, an emulator).
    const got = { os: config.os ?? "", architecture: config.architecture ?? "" };
    if (got.os !== want.os || got.architecture !== want.architecture) {
      (opts.warn ?? ((line: string) => console.error(line)))(
        `mini-docker: Warning: image platform (${formatPlatform(got)}) does not match the ${
          opts.platform === undefined ? "host's" : "expected"
        } platform (${formatPlatform(want)})`,
      );
    }
    if (config.diffIds.length !== layers.length) {
      throw fail(`config lists ${config.diffIds.length} layers but the manifest ${layers.length}`);
    }

    let downloaded = false;
    const fetchLayers = async (indices: number[]) => {
      const got = await mapLimit(
        indices,
        PARALLEL_DOWNLOADS,
        (i) => ensureLayer(store, client, layers[i]!, config.diffIds[i]!, progress, fail),
      );
      downloaded ||= got.some(Boolean);
    };
    for (const d of layers) progress.layer(shortId(d.digest), "Pulling fs layer");
    await fetchLayers(layers.map((_, i) => i));

    const repoDigest = `${repositoryName(ref)}@${top.digest}`;
    const id = configDesc.digest;
    let record: ImageRecord | undefined;
    for (let attempt = 0; record === undefined; attempt++) {
      // An rmi running meanwhile may have removed a layer that was not yet referenced.
      const missing = config.diffIds.flatMap((d, i) =>
        store.hasLayer(d) && store.hasBlob(layers[i]!.digest) ? [] : [i]
      );
      if (missing.length > 0) {
        if (attempt >= 3) throw fail("layers keep disappearing from the store");
        await fetchLayers(missing);
      }
      record = await store.updateIndex((index) => {
        if (
          !config.diffIds.every((d, i) => store.hasLayer(d) && store.hasBlob(layers[i]!.digest))
        ) {
          return undefined;
        }
        store.writeBlob(top.digest, top.bytes);
        store.writeBlob(manifest.digest, manifest.bytes);
        store.writeBlob(id, configBytes);
        const old = index.images[id];
        const size = config.diffIds.reduce((n, d) => n + store.layerInfo(d).size, 0);
        const rec: ImageRecord = {
          id,
          layers: config.diffIds,
          manifest: manifest.digest,
          layerBlobs: layers.map((l) => l.digest),
          repoDigests: [...new Set([...(old?.repoDigests ?? []), repoDigest])],
          created: config.created,
          size,
          added: old?.added ?? new Date().toISOString(),
        };
        index.images[id] = rec;
        // The same image stored before from elsewhere (a load, a commit): its own manifest and
        // blobs go, unless another image names them.
        if (old !== undefined) {
          store.removeUnreferencedBlobs(index, [old.manifest, ...(old.layerBlobs ?? [])]);
        }
        // A digest reference names one image: the one pulled last (an index digest resolves
        // to a different image per platform).
        for (const other of Object.values(index.images)) {
          if (other.id !== id) {
            other.repoDigests = other.repoDigests.filter((d) => d !== repoDigest);
          }
        }
        if (ref.digest === undefined) index.tags[`${repositoryName(ref)}:${ref.tag}`] = id;
        return rec;
      });
    }
    progress.status(`Digest: ${top.digest}`);
    progress.status(
      downloaded
        ? `Status: Downloaded newer image for ${label}`
        : `Status: Image is up to date for ${label}`,
    );
    return { record, ref: label, digest: top.digest, downloaded };
  } catch (err) {
    // Registry answers, malformed documents, store failures: all in the pull's terms.
    if (err instanceof UserError) throw err;
    throw fail(err instanceof Error ? err.message : String(err));
  } finally {
    progress.close();
  }
}

/**
 * Makes sure one layer is in the store; true when it had to be downloaded. Under the layer's
 * lock, so that of two concurrent pulls one downloads and the other finds it there.
 */
async function ensureLayer(
  store: ImageStore,
  client: RegistryClient,
  desc: Descriptor,
  diffId: string,
  progress: Progress,
  fail: (detail: string) => UserError,
): Promise<boolean> {
  const id = shortId(desc.digest);
  return await store.withLock(`layer-${digestHex(diffId)}`, async () => {
    if (store.hasLayer(diffId) && store.hasBlob(desc.digest)) {
      progress.layer(id, "Already exists");
      return false;
    }
    const res = await client.blob(desc.digest);
    let layer: ReceivedLayer;
    try {
      layer = await receiveLayer(store, res.body!, {
        maxBytes: desc.size,
        onBytes: (n) => progress.bytes(id, n, desc.size),
      });
    } catch (err) {
      throw fail(`blob ${desc.digest}: ${err instanceof Error ? err.message : err}`);
    }
    try {
      if (layer.digest !== desc.digest) {
        throw fail(`blob ${desc.digest}: digest mismatch (got ${layer.digest})`);
      }
      if (layer.error !== undefined) {
        const why = layer.error instanceof Error ? layer.error.message : String(layer.error);
        throw fail(`layer ${desc.digest}: ${why}`);
      }
      if (layer.diffId !== diffId) {
        throw fail(
          `layer ${desc.digest}: uncompressed digest ${layer.diffId} is not the config's ${diffId}`,
        );
      }
      commitReceived(store, layer, diffId);
      progress.layer(id, "Pull complete");
      return true;
    } finally {
      // After a commit tmp is gone; after a failure nothing of it may survive.
      try {
        Deno.removeSync(layer.tmp, { recursive: true });
      } catch {
        // Renamed into the store (success) or already removed.
      }
    }
  });
}

/** Runs `fn` over `items`, `limit` at a time; on failure waits for the running ones, then throws. */
async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  });
  const settled = await Promise.allSettled(workers);
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  return results;
}
