/**
 * `import`: a root filesystem tarball (gzip or plain, e.g. Alpine's minirootfs) becomes a
 * one-layer image with an empty runtime config, like `docker import`.
 */

import { basename, join } from "node:path";
import { UserError } from "../base/errors.ts";
import { hostPlatform } from "./config.ts";
import { digestHex, sha256Digest } from "./digest.ts";
import { unpackStream } from "./layers.ts";
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

  const tmp = store.makeTemp("import");
  try {
    const diffDir = join(tmp, "diff");
    Deno.mkdirSync(diffDir);
    Deno.chmodSync(diffDir, 0o755); // the image's "/" unless the layer says otherwise; no umask
    let result;
    try {
      result = await unpackStream(source, diffDir);
    } catch (err) {
      throw fail(err instanceof Error ? err.message : String(err));
    }
    if (result.error !== undefined || result.diffId === undefined) {
      const why = result.error instanceof Error ? result.error.message : String(result.error);
      throw fail(`not a usable tar archive: ${why}`);
    }
    const diffId = result.diffId;
    const size = result.stats?.size ?? 0;
    await store.withLock(`layer-${digestHex(diffId)}`, () => {
      if (!store.hasLayer(diffId)) store.commitLayer(tmp, { diffId, size });
      return Promise.resolve();
    });

    const created = new Date().toISOString();
    const { os, architecture } = hostPlatform();
    const config = {
      architecture,
      os,
      created,
      config: {},
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created, created_by: `mini-docker import ${basename(tarball)}` }],
    };
    const configBytes = new TextEncoder().encode(JSON.stringify(config));
    const id = sha256Digest(configBytes);
    const record: ImageRecord = {
      id,
      layers: [diffId],
      repoDigests: [],
      created,
      size,
      added: created,
    };
    await store.updateIndex((index) => {
      if (!store.hasLayer(diffId)) throw fail("the layer was removed while importing");
      store.writeBlob(id, configBytes);
      index.images[id] = record;
      if (ref !== undefined) index.tags[`${repositoryName(ref)}:${ref.tag}`] = id;
    });
    return { record, ref: ref && formatReference(ref) };
  } finally {
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch {
      // Renamed into the store, or nothing left.
    }
  }
}
