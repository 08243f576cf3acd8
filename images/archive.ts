/**
 * `save` and `load`: images as one tar stream, in the two formats that Docker, Podman and skopeo
 * exchange.
 *
 * - docker-archive (Docker's `save`, Podman's default): `manifest.json` (`[{Config, RepoTags,
 *   Layers}]`), `repositories`, the config as `<id hex>.json` and each layer as an uncompressed
 *   tar `<diff id hex>.tar` (the file names Podman writes; readers follow manifest.json).
 * - oci-archive (Podman's `save --format oci-archive`): an OCI image layout, `oci-layout`,
 *   `index.json` naming each image (`org.opencontainers.image.ref.name`) and `blobs/sha256/`
 *   with the layer blobs as stored (compressed), the config and an OCI manifest.
 *
 * `load` takes either (gzip- or zstd-compressed or not, from a file or stdin): the archive is
 * unpacked into a staging directory under tmp/, every layer is received and checked against its
 * config, and only then are the images recorded; a load that fails leaves nothing in the store.
 */

import { join } from "node:path";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import {
  FormatError,
  hostPlatform,
  isIndexMediaType,
  parseImageConfig,
  parseManifest,
  selectPlatform,
} from "./config.ts";
import { digestHex, DigestTap, isDigest, sha256Digest, shortId } from "./digest.ts";
import {
  commitReceived,
  layerMediaType,
  type NewLayer,
  type ReceivedLayer,
  receiveLayer,
  recordImage,
} from "./ingest.ts";
import { decompressor, detectCompression } from "./layers.ts";
import type { Progress } from "./progress.ts";
import { familiarName, parseReference, repositoryName } from "./reference.ts";
import { findImage } from "./catalog.ts";
import { MEDIA_TYPES } from "./registry.ts";
import { type ImageRecord, ImageStore } from "./store.ts";
import { TarReader } from "./tar.ts";
import { TarWriter } from "./tar_writer.ts";
import { cleanPath } from "./unpack.ts";

/** The formats of `save --format`. */
export type ArchiveFormat = "docker-archive" | "oci-archive";

const enc = new TextEncoder();

interface SaveItem {
  record: ImageRecord;
  /** `repository:tag` keys the archive names it by. */
  tags: string[];
}

/**
 * Writes the images named to `sink` as one archive. Every name is resolved (and every blob
 * checked to be there) before the first byte is written.
 */
export async function saveImages(
  names: string[],
  sink: WritableStream<Uint8Array>,
  opts: { format?: ArchiveFormat; store?: ImageStore } = {},
): Promise<void> {
  const store = opts.store ?? new ImageStore();
  const format = opts.format ?? "docker-archive";
  const index = store.readIndex();
  const items = new Map<string, SaveItem>();
  for (const name of names) {
    const found = findImage(index, name);
    if (found === null) throw new UserError(`No such image: ${name}`, EXIT_FAILURE);
    const item = items.get(found.record.id) ?? { record: found.record, tags: [] };
    // A name given as a tag names the image in the archive; an id saves it untagged (Docker).
    if (found.match.kind === "tag" && !item.tags.includes(found.match.key)) {
      item.tags.push(found.match.key);
    }
    items.set(found.record.id, item);
  }
  for (const { record } of items.values()) {
    if (store.readBlob(record.id) === null) {
      throw new UserError(`Image ${shortId(record.id)} is damaged: its config is missing`);
    }
    for (const d of record.layers) {
      if (!store.hasLayer(d)) {
        throw new UserError(`Image ${shortId(record.id)} is damaged: layer ${d} is missing`);
      }
    }
    if (
      record.layerBlobs === undefined || !record.layerBlobs.every((b) => store.hasBlob(b))
    ) {
      throw new UserError(
        `Cannot save image ${
          shortId(record.id)
        }: it was stored before mini-docker kept layer blobs: pull it again (or re-import it)`,
        EXIT_FAILURE,
      );
    }
  }
  const tar = new TarWriter(sink);
  try {
    if (format === "docker-archive") await writeDockerArchive(tar, store, [...items.values()]);
    else await writeOciArchive(tar, store, [...items.values()]);
    await tar.close();
  } catch (err) {
    await tar.abort(err);
    throw err;
  }
}

const file = (path: string, size: number) => ({ path, type: "file" as const, mode: 0o644, size });

async function addBytes(tar: TarWriter, path: string, bytes: Uint8Array): Promise<void> {
  await tar.add(file(path, bytes.byteLength), bytes);
}

async function writeDockerArchive(tar: TarWriter, store: ImageStore, items: SaveItem[]) {
  const manifest = [];
  const repositories: Record<string, Record<string, string>> = {};
  const written = new Set<string>();
  for (const { record, tags } of items) {
    const config = store.readBlob(record.id)!;
    const configName = `${digestHex(record.id)}.json`;
    if (!written.has(configName)) {
      await addBytes(tar, configName, config);
      written.add(configName);
    }
    const layers: string[] = [];
    for (const [i, diffId] of record.layers.entries()) {
      const name = `${digestHex(diffId)}.tar`;
      layers.push(name);
      if (written.has(name)) continue;
      written.add(name);
      await addLayerTar(tar, store, name, record.layerBlobs![i]!, diffId);
    }
    const repoTags = tags.map((key) => {
      const colon = key.lastIndexOf(":");
      return `${familiarName(key.slice(0, colon))}${key.slice(colon)}`;
    });
    for (const t of repoTags) {
      const colon = t.lastIndexOf(":");
      (repositories[t.slice(0, colon)] ??= {})[t.slice(colon + 1)] = digestHex(record.id);
    }
    manifest.push({
      Config: configName,
      RepoTags: repoTags.length > 0 ? repoTags : null,
      Layers: layers,
    });
  }
  await addBytes(tar, "manifest.json", enc.encode(JSON.stringify(manifest)));
  await addBytes(tar, "repositories", enc.encode(JSON.stringify(repositories)));
}

/**
 * A layer's uncompressed tar, streamed out of its stored blob. Its size must be in the header
 * first: recorded when the layer was stored, else counted by a first pass. The diff id is checked
 * as it streams; a mismatch aborts the archive.
 */
async function addLayerTar(
  tar: TarWriter,
  store: ImageStore,
  name: string,
  blob: string,
  diffId: string,
): Promise<void> {
  const plain = async () => {
    const f = await Deno.open(store.blobPath(blob));
    const head = new Uint8Array(6);
    const n = (await f.read(head)) ?? 0;
    await f.seek(0, Deno.SeekMode.Start);
    const compression = detectCompression(head.subarray(0, n));
    return f.readable.pipeThrough(await decompressor(compression));
  };
  let size = store.layerInfo(diffId).tarSize;
  if (size === undefined) {
    size = 0;
    for await (const chunk of await plain()) size += chunk.byteLength;
  }
  const tap = new DigestTap();
  const body = (await plain()).pipeThrough(tap.stream);
  await tar.add(file(name, size), body);
  if (tap.digest() !== diffId) {
    throw new UserError(`Layer ${diffId} is damaged in the store (its content is ${tap.digest()})`);
  }
}

async function writeOciArchive(tar: TarWriter, store: ImageStore, items: SaveItem[]) {
  await addBytes(tar, "oci-layout", enc.encode(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
  await tar.add({ path: "blobs", type: "dir", mode: 0o755 });
  await tar.add({ path: "blobs/sha256", type: "dir", mode: 0o755 });
  const written = new Set<string>();
  const addBlob = async (digest: string, bytes?: Uint8Array) => {
    if (written.has(digest)) return;
    written.add(digest);
    const path = `blobs/sha256/${digestHex(digest)}`;
    if (bytes !== undefined) return await addBytes(tar, path, bytes);
    const f = await Deno.open(store.blobPath(digest));
    const { size } = await f.stat();
    await tar.add(file(path, size), f.readable);
  };
  const manifests = [];
  for (const { record, tags } of items) {
    const stored = parseManifest(store.readBlob(record.manifest!)!);
    const config = store.readBlob(record.id)!;
    await addBlob(record.id, config);
    const layers = [];
    for (const l of stored.layers) {
      await addBlob(l.digest);
      layers.push({ mediaType: ociLayerType(l.mediaType), digest: l.digest, size: l.size });
    }
    const manifest = enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: record.id,
        size: config.byteLength,
      },
      layers,
    }));
    const digest = sha256Digest(manifest);
    await addBlob(digest, manifest);
    const entry = { mediaType: MEDIA_TYPES.ociManifest, digest, size: manifest.byteLength };
    if (tags.length === 0) manifests.push(entry);
    for (const key of tags) {
      const colon = key.lastIndexOf(":");
      const name = `${familiarName(key.slice(0, colon))}${key.slice(colon)}`;
      manifests.push({ ...entry, annotations: { "org.opencontainers.image.ref.name": name } });
    }
  }
  await addBytes(
    tar,
    "index.json",
    enc.encode(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests })),
  );
}

function ociLayerType(mediaType: string): string {
  if (mediaType === "application/vnd.docker.image.rootfs.diff.tar.gzip") {
    return "application/vnd.oci.image.layer.v1.tar+gzip";
  }
  if (mediaType === "application/vnd.docker.image.rootfs.diff.tar") {
    return "application/vnd.oci.image.layer.v1.tar";
  }
  return mediaType;
}

/** One image found in an archive, its layers received but not yet in the store. */
interface StagedImage {
  config: Uint8Array;
  layers: ReceivedLayer[];
  diffIds: string[];
  /** `repository:tag` keys. */
  tags: string[];
}

/** What `load` printed. */
export interface LoadResult {
  lines: string[];
}

/**
 * Loads every image of an archive (a path, or `-` for stdin); returns Docker's
 * `Loaded image: NAME:TAG` / `Loaded image ID: sha256:...` lines.
 */
export async function loadImages(
  input: string,
  opts: { store?: ImageStore; progress?: Progress } = {},
): Promise<string[]> {
  const store = opts.store ?? new ImageStore();
  const label = input === "-" ? "standard input" : `"${input}"`;
  const fail = (detail: string) => new UserError(`Cannot load ${label}: ${detail}`, EXIT_FAILURE);
  store.cleanStaleTemp();
  let source: ReadableStream<Uint8Array>;
  if (input === "-") {
    if (Deno.stdin.isTerminal()) {
      throw new UserError(
        "Requested load from stdin, but stdin is empty (a terminal): use -i FILE or redirect",
        EXIT_FAILURE,
      );
    }
    source = Deno.stdin.readable;
  } else {
    try {
      source = (await Deno.open(input)).readable;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw fail("no such file");
      throw fail(err instanceof Error ? err.message : String(err));
    }
  }
  const staging = store.makeTemp("load");
  const staged: StagedImage[] = [];
  try {
    try {
      await extract(source, staging);
    } catch (err) {
      throw fail(`not a readable archive: ${err instanceof Error ? err.message : err}`);
    }
    const has = (p: string) => {
      try {
        return Deno.statSync(join(staging, p)).isFile;
      } catch {
        return false;
      }
    };
    try {
      if (has("manifest.json")) {
        await stageDockerArchive(store, staging, staged, opts.progress);
      } else if (has("index.json") && has("oci-layout")) {
        await stageOciArchive(store, staging, staged, opts.progress);
      } else {
        throw fail(
          "not a docker-archive or an OCI archive (it has neither manifest.json nor oci-layout with index.json)",
        );
      }
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw fail(err instanceof Error ? err.message : String(err));
    }
    if (staged.length === 0) throw fail("the archive holds no image");
    const lines: string[] = [];
    for (const image of staged) {
      const layers: NewLayer[] = image.layers.map((l, i) => ({
        digest: l.digest,
        size: l.size,
        mediaType: layerMediaType(l.compression, false),
        diffId: image.diffIds[i]!,
      }));
      const docker = image.layers.every((l) => l.compression === "gzip");
      if (docker) { for (const l of layers) l.mediaType = layerMediaType("gzip", true); }
      const record = await recordImage(store, {
        config: image.config,
        layers,
        docker,
        tags: image.tags,
        beforeIndex: () => {
          for (const [i, l] of image.layers.entries()) commitReceived(store, l, image.diffIds[i]!);
        },
      });
      if (image.tags.length === 0) lines.push(`Loaded image ID: ${record.id}`);
      for (const key of image.tags) {
        const colon = key.lastIndexOf(":");
        lines.push(`Loaded image: ${familiarName(key.slice(0, colon))}${key.slice(colon)}`);
      }
    }
    return lines;
  } finally {
    for (const image of staged) {
      for (const l of image.layers) removeQuietly(l.tmp);
    }
    removeQuietly(staging);
  }
}

/** Unpacks the archive's regular files and directories (and symlinks between them) into `dir`. */
async function extract(source: ReadableStream<Uint8Array>, dir: string): Promise<void> {
  const reader = source.getReader();
  const first = await reader.read();
  const head = first.done ? new Uint8Array() : first.value;
  const compression = detectCompression(head.subarray(0, 6));
  const replay = new ReadableStream<Uint8Array>({
    start(ctl) {
      if (head.byteLength > 0) ctl.enqueue(head);
      if (first.done) ctl.close();
    },
    async pull(ctl) {
      const { done, value } = await reader.read();
      if (done) ctl.close();
      else ctl.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  if (head.byteLength === 0) throw new Error("it is empty");
  const tar = new TarReader(replay.pipeThrough(await decompressor(compression)));
  for await (const entry of tar) {
    const parts = cleanPath(entry.path);
    if (parts.length === 0) continue;
    const path = join(dir, ...parts);
    Deno.mkdirSync(join(dir, ...parts.slice(0, -1)), { recursive: true });
    if (entry.type === "dir") {
      Deno.mkdirSync(path, { recursive: true });
    } else if (entry.type === "file") {
      const f = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
      try {
        for await (const chunk of tar.body()) {
          for (let off = 0; off < chunk.byteLength;) off += await f.write(chunk.subarray(off));
        }
      } finally {
        f.close();
      }
    } else if (entry.type === "symlink" || entry.type === "hardlink") {
      // Legacy Docker archives link a layer shared by two images; kept as a path to resolve.
      const target = entry.type === "hardlink"
        ? join(dir, ...cleanPath(entry.linkpath))
        : join(dir, ...parts.slice(0, -1), entry.linkpath);
      if (!target.startsWith(`${dir}/`)) throw new Error(`"${entry.path}" points outside`);
      Deno.writeTextFileSync(`${path}.mini-docker-link`, target.slice(dir.length + 1));
    }
  }
}

/** A file of the staged archive, following the links that `extract` recorded. */
function archiveFile(dir: string, name: string): string {
  let rel = cleanPath(name).join("/");
  for (let hop = 0; hop < 8; hop++) {
    const path = join(dir, rel);
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Maybe a link.
    }
    try {
      rel = cleanPath(Deno.readTextFileSync(`${path}.mini-docker-link`)).join("/");
    } catch {
      throw new FormatError(`the archive has no "${name}"`);
    }
  }
  throw new FormatError(`"${name}" is a loop of links`);
}

function readJson(path: string, what: string) {
  try {
    return JSON.parse(Deno.readTextFileSync(path));
  } catch (err) {
    throw new FormatError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

async function receiveFile(
  store: ImageStore,
  path: string,
  staged: ReceivedLayer[],
  progress?: Progress,
): Promise<ReceivedLayer> {
  const f = await Deno.open(path);
  const layer = await receiveLayer(store, f.readable, { gzipPlain: true });
  staged.push(layer);
  if (layer.error !== undefined || layer.diffId === undefined) {
    throw new FormatError(
      `layer "${path.split("/").pop()}" does not unpack: ${
        layer.error instanceof Error ? layer.error.message : layer.error
      }`,
    );
  }
  progress?.layer(shortId(layer.diffId), "Loading layer");
  return layer;
}

async function stageDockerArchive(
  store: ImageStore,
  dir: string,
  out: StagedImage[],
  progress?: Progress,
): Promise<void> {
  const manifest = readJson(join(dir, "manifest.json"), "manifest.json");
  if (!Array.isArray(manifest)) throw new FormatError("manifest.json is not a list");
  for (const entry of manifest) {
    if (
      typeof entry?.Config !== "string" || !Array.isArray(entry.Layers) ||
      !entry.Layers.every((l: unknown) => typeof l === "string")
    ) {
      throw new FormatError("manifest.json has an entry without Config or Layers");
    }
    const config = Deno.readFileSync(archiveFile(dir, entry.Config));
    const parsed = parseImageConfig(config);
    if (parsed.diffIds.length !== entry.Layers.length) {
      throw new FormatError(
        `the config lists ${parsed.diffIds.length} layers, manifest.json ${entry.Layers.length}`,
      );
    }
    const image: StagedImage = { config, layers: [], diffIds: parsed.diffIds, tags: [] };
    // The tags are checked before any layer is read: Docker's rule, NAME:TAG strings only.
    for (const tag of Array.isArray(entry.RepoTags) ? entry.RepoTags : []) {
      let ref: ReturnType<typeof parseReference> | undefined;
      try {
        if (typeof tag === "string") ref = parseReference(tag);
      } catch { /* refused below */ }
      if (ref === undefined || ref.digest !== undefined || ref.tag === undefined) {
        throw new FormatError(`manifest.json names an invalid tag ${JSON.stringify(tag)}`);
      }
      image.tags.push(`${repositoryName(ref)}:${ref.tag}`);
    }
    out.push(image);
    for (const [i, name] of (entry.Layers as string[]).entries()) {
      const layer = await receiveFile(store, archiveFile(dir, name), image.layers, progress);
      if (layer.diffId !== parsed.diffIds[i]) {
        throw new FormatError(
          `layer "${name}" is ${layer.diffId}, not the ${parsed.diffIds[i]} its config says`,
        );
      }
    }
  }
}

async function stageOciArchive(
  store: ImageStore,
  dir: string,
  out: StagedImage[],
  progress?: Progress,
): Promise<void> {
  const blob = (digest: unknown, what: string): Uint8Array => {
    if (!isDigest(digest)) throw new FormatError(`${what} has no sha256 digest`);
    const bytes = Deno.readFileSync(archiveFile(dir, `blobs/sha256/${digestHex(digest)}`));
    if (sha256Digest(bytes) !== digest) throw new FormatError(`${what} ${digest}: digest mismatch`);
    return bytes;
  };
  const index = readJson(join(dir, "index.json"), "index.json");
  if (!Array.isArray(index?.manifests)) throw new FormatError("index.json lists no manifests");
  const byManifest = new Map<string, StagedImage>();
  for (const desc of index.manifests) {
    let digest: string = desc?.digest;
    let bytes = blob(digest, "manifest");
    if (isIndexMediaType(desc.mediaType ?? "")) {
      const entry = selectPlatform(bytes, hostPlatform());
      if (entry === null) throw new FormatError("no manifest for this platform in the archive");
      digest = entry.digest;
      bytes = blob(digest, "manifest");
    }
    let image = byManifest.get(digest);
    if (image === undefined) {
      const manifest = parseManifest(bytes);
      const config = blob(manifest.config.digest, "config");
      const parsed = parseImageConfig(config);
      if (parsed.diffIds.length !== manifest.layers.length) {
        throw new FormatError(
          `the config lists ${parsed.diffIds.length} layers, the manifest ${manifest.layers.length}`,
        );
      }
      image = { config, layers: [], diffIds: parsed.diffIds, tags: [] };
      out.push(image);
      byManifest.set(digest, image);
      for (const [i, l] of manifest.layers.entries()) {
        const path = archiveFile(dir, `blobs/sha256/${digestHex(l.digest)}`);
        const layer = await receiveFile(store, path, image.layers, progress);
        if (layer.sourceDigest !== l.digest) {
          throw new FormatError(`layer ${l.digest}: digest mismatch (got ${layer.sourceDigest})`);
        }
        if (layer.diffId !== parsed.diffIds[i]) {
          throw new FormatError(
            `layer ${l.digest} is not the ${parsed.diffIds[i]} its config says`,
          );
        }
      }
    }
    const name = desc.annotations?.["io.containerd.image.name"] ??
      desc.annotations?.["org.opencontainers.image.ref.name"];
    // A bare tag ("latest", as Docker writes ref.name) names no repository: the image loads
    // untagged unless io.containerd.image.name names it.
    if (typeof name === "string" && /[/:]/.test(name)) {
      try {
        const ref = parseReference(name);
        if (ref.digest === undefined) image.tags.push(`${repositoryName(ref)}:${ref.tag}`);
      } catch {
        // Not a reference: untagged.
      }
    }
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch {
    // Committed into the store, or already gone.
  }
}
