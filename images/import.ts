/**
 * `import`: a root filesystem tarball (gzip or plain, e.g. Alpine's minirootfs) becomes a
 * one-layer image with an empty runtime config, like `docker import`.
 */

import { basename } from "node:path";
import { UserError } from "../base/errors.ts";
import { hostPlatform } from "./config.ts";
import {
  commitReceived,
  layerMediaType,
  type ReceivedLayer,
  receiveLayer,
  recordImage,
} from "./ingest.ts";
import { formatReference, parseReference, repositoryName } from "./reference.ts";
import { type ImageRecord, ImageStore } from "./store.ts";

/** What an import produced. */
export interface ImportResult {
  record: ImageRecord;
  /** Full normalised reference it was tagged with, if a name was given. */
  ref?: string;
}

/** Imports `tarball` (a path, or `-` for stdin) and tags it `name` when given. */
export async function importTarball(
  tarball: string,
  name?: string,
  opts: { store?: ImageStore } = {},
): Promise<ImportResult> {
  const ref = name === undefined ? undefined : parseReference(name);
  if (ref?.digest !== undefined) {
    throw new UserError(`Cannot import as "${name}": a digest cannot be given to an import`);
  }
  const fail = (detail: string) => new UserError(`Cannot import "${tarball}": ${detail}`);
  const store = opts.store ?? new ImageStore();
  store.cleanStaleTemp();

  let file: Deno.FsFile | undefined;
  let source: ReadableStream<Uint8Array>;
  if (tarball === "-") {
    source = Deno.stdin.readable;
  } else {
    try {
      file = await Deno.open(tarball);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw fail("no such file");
      throw fail(err instanceof Error ? err.message : String(err));
    }
    source = file.readable; // closes the file when read to the end or cancelled
  }

  let layer: ReceivedLayer;
  try {
    layer = await receiveLayer(store, source, { gzipPlain: true });
  } catch (err) {
    throw fail(err instanceof Error ? err.message : String(err));
  }
  try {
    if (layer.error !== undefined || layer.diffId === undefined) {
      const why = layer.error instanceof Error ? layer.error.message : String(layer.error);
      throw fail(`not a usable tar archive: ${why}`);
    }
    const diffId = layer.diffId;
    const created = new Date().toISOString();
    const { os, architecture } = hostPlatform();
    const docker = layer.compression === "gzip";
    const record = await recordImage(store, {
      config: {
        architecture,
        os,
        created,
        config: {},
        rootfs: { type: "layers", diff_ids: [diffId] },
        history: [{ created, created_by: `mini-docker import ${basename(tarball)}` }],
      },
      layers: [{
        digest: layer.digest,
        size: layer.size,
        mediaType: layerMediaType(layer.compression, docker),
        diffId,
      }],
      docker,
      tags: ref === undefined ? [] : [`${repositoryName(ref)}:${ref.tag}`],
      // Under the index lock, so that no rmi sees the layer without its image.
      beforeIndex: () => commitReceived(store, layer, diffId),
    });
    return { record, ref: ref && formatReference(ref) };
  } finally {
    try {
      Deno.removeSync(layer.tmp, { recursive: true });
    } catch {
      // Renamed into the store, or nothing left.
    }
  }
}
