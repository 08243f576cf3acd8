/**
 * The image store under `${dataRoot()}/images`:
 *
 * ```
 * index.json              repositories, tags and image records (replaced atomically)
 * blobs/sha256/<hex>      manifests, image configs and layer blobs (the compressed bytes as pulled,
 *                         imported, loaded or committed), named by their verified digest: what
 *                         push and save send out again under the digests the manifest names
 * layers/<hex>/diff       an unpacked layer (overlayfs lower dir), keyed by its diff id, so a
 * layers/<hex>/layer.json layer shared between images is stored once
 * locks/                  flock files: the index, and one per layer being fetched
 * tmp/<pid>-<rand>-<kind> work in progress; renamed into place only when complete and verified
 * ```
 *
 * Whatever exists under blobs/ and layers/ is complete: every write goes to tmp/ first and is
 * renamed in, so an interrupted pull leaves only tmp/ entries of a dead pid, which the next
 * pull or import removes.
 */

import { join } from "node:path";
import { dataRoot } from "../base/paths.ts";
import { UserError } from "../base/errors.ts";
import { digestHex, sha256Digest } from "./digest.ts";

/** One image: its config digest is its id. */
export interface ImageRecord {
  /** `sha256:<hex>` of the image config. */
  id: string;
  /** Diff ids of the layers, bottom-most first (the order of the config's rootfs). */
  layers: string[];
  /**
   * Digest of its platform manifest: the one it was pulled with, or the one made for it when it
   * was imported, loaded or committed. Absent in images stored before layer blobs were kept.
   */
  manifest?: string;
  /** Digests of the layer blobs its manifest names, bottom-most first (absent: stored before). */
  layerBlobs?: string[];
  /** `repository@sha256:<digest>` of the manifest or index the image was pulled by. */
  repoDigests: string[];
  /** The config's creation time (ISO 8601), if it says. */
  created?: string;
  /** Sum of the layers' unpacked file sizes. */
  size: number;
  /** When this store got the image (ISO 8601). */
  added: string;
}

/** The store's index: image records by id, and tags (`repository:tag`) pointing at ids. */
export interface ImageIndex {
  version: 1;
  images: Record<string, ImageRecord>;
  tags: Record<string, string>;
}

/** What `layers/<hex>/layer.json` holds. */
export interface LayerInfo {
  diffId: string;
  size: number;
  /** Bytes of the uncompressed tar (what `save` writes); absent in layers stored before. */
  tarSize?: number;
}

/** The image store rooted at `${dataRoot()}/images` (or `root`). */
export class ImageStore {
  readonly root: string;

  constructor(root: string = join(dataRoot(), "images")) {
    this.root = root;
  }

  blobPath(digest: string): string {
    return join(this.root, "blobs", "sha256", digestHex(digest));
  }

  layerPath(diffId: string): string {
    return join(this.root, "layers", digestHex(diffId));
  }

  /** The unpacked content of a layer: what overlayfs mounts as a lower dir. */
  layerDiff(diffId: string): string {
    return join(this.layerPath(diffId), "diff");
  }

  /** True when the layer is unpacked and complete. */
  hasLayer(diffId: string): boolean {
    try {
      return Deno.statSync(join(this.layerPath(diffId), "layer.json")).isFile;
    } catch {
      return false;
    }
  }

  layerInfo(diffId: string): LayerInfo {
    return JSON.parse(Deno.readTextFileSync(join(this.layerPath(diffId), "layer.json")));
  }

  /** The index as last written; no lock needed, it is only ever replaced whole. */
  readIndex(): ImageIndex {
    const path = join(this.root, "index.json");
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return { version: 1, images: {}, tags: {} };
      throw err;
    }
    try {
      const index = JSON.parse(text);
      return { version: 1, images: index.images ?? {}, tags: index.tags ?? {} };
    } catch (err) {
      throw new UserError(`Image index "${path}" is corrupt: ${(err as Error).message}`);
    }
  }

  /**
   * Read-modify-write of the index under its exclusive lock; `fn` mutates the index it is given,
   * which is written back (temp file + rename) when `fn` returns.
   */
  async updateIndex<T>(fn: (index: ImageIndex) => T | Promise<T>): Promise<T> {
    return await this.withLock("index", async () => {
      const index = this.readIndex();
      const result = await fn(index);
      this.#writeAtomic(join(this.root, "index.json"), JSON.stringify(index, null, 2) + "\n");
      return result;
    });
  }

  /** Runs `fn` holding the exclusive flock `locks/<name>.lock` (other processes wait). */
  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const dir = join(this.root, "locks");
    Deno.mkdirSync(dir, { recursive: true });
    using file = Deno.openSync(join(dir, `${name}.lock`), { write: true, create: true });
    await file.lock(true);
    return await fn(); // closing the file releases the lock
  }

  /** A fresh directory under tmp/, named after this process so a later run can tell it is stale. */
  makeTemp(kind: string): string {
    const dir = join(this.root, "tmp");
    Deno.mkdirSync(dir, { recursive: true });
    const rand = crypto.getRandomValues(new Uint32Array(2)).join("");
    const path = join(dir, `${Deno.pid}-${rand}-${kind}`);
    Deno.mkdirSync(path, { mode: 0o700 });
    return path;
  }

  /** Removes what interrupted pulls and imports left in tmp/ (their process is gone). */
  cleanStaleTemp(): void {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(join(this.root, "tmp"))];
    } catch {
      return;
    }
    for (const entry of entries) {
      const pid = Number(entry.name.split("-")[0]);
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) continue;
      removeQuietly(join(this.root, "tmp", entry.name));
    }
  }

  /** Stores a small blob after checking its digest; a no-op when it is already there. */
  writeBlob(digest: string, bytes: Uint8Array): void {
    const actual = sha256Digest(bytes);
    if (actual !== digest) throw new Error(`blob ${digest}: digest mismatch (got ${actual})`);
    const path = this.blobPath(digest);
    if (exists(path)) return;
    Deno.mkdirSync(join(this.root, "blobs", "sha256"), { recursive: true });
    this.#writeAtomic(path, bytes);
  }

  /** A stored blob, its digest checked again before use; null when absent. */
  readBlob(digest: string): Uint8Array | null {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(this.blobPath(digest));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
    const actual = sha256Digest(bytes);
    if (actual !== digest) throw new Error(`blob ${digest} is corrupt (its digest is ${actual})`);
    return bytes;
  }

  /** True when a blob is stored (its content is checked when it is read). */
  hasBlob(digest: string): boolean {
    return exists(this.blobPath(digest));
  }

  /**
   * Moves a complete blob file (written under tmp/, its digest already checked by the caller)
   * into place; a no-op when the blob is already there.
   */
  commitBlobFile(tmpFile: string, digest: string): void {
    const path = this.blobPath(digest);
    if (exists(path)) {
      removeQuietly(tmpFile);
      return;
    }
    Deno.mkdirSync(join(this.root, "blobs", "sha256"), { recursive: true });
    Deno.renameSync(tmpFile, path);
  }

  /**
   * Removes those of `digests` that no image of `index` names any more (config, manifest or
   * layer blob): what an image record replaced by another copy of the same image left behind.
   */
  removeUnreferencedBlobs(index: ImageIndex, digests: Iterable<string | undefined>): void {
    const used = new Set(
      Object.values(index.images).flatMap((r) => [r.id, r.manifest, ...(r.layerBlobs ?? [])]),
    );
    for (const d of digests) if (d !== undefined && !used.has(d)) this.removeBlob(d);
  }

  removeBlob(digest: string): void {
    try {
      Deno.removeSync(this.blobPath(digest));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }

  /**
   * Moves a completely unpacked layer (`tmp` holding `diff/`) into place. Returns false when the
   * layer was already there (another pull won the race): the caller's copy is discarded.
   */
  commitLayer(tmp: string, info: LayerInfo): boolean {
    Deno.writeTextFileSync(join(tmp, "layer.json"), JSON.stringify(info) + "\n");
    Deno.mkdirSync(join(this.root, "layers"), { recursive: true });
    try {
      Deno.renameSync(tmp, this.layerPath(info.diffId));
      return true;
    } catch (err) {
      if (!this.hasLayer(info.diffId)) throw err;
      removeQuietly(tmp);
      return false;
    }
  }

  /** Deletes a layer: first renamed out of sight (atomic), then removed. */
  removeLayer(diffId: string): void {
    const path = this.layerPath(diffId);
    if (!exists(path)) return;
    const trash = this.makeTemp("trash");
    Deno.renameSync(path, join(trash, "layer"));
    removeQuietly(trash);
  }

  #writeAtomic(path: string, data: string | Uint8Array): void {
    const tmp = `${path}.${Deno.pid}.tmp`;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    using file = Deno.openSync(tmp, { write: true, create: true, truncate: true });
    for (let off = 0; off < bytes.byteLength;) off += file.writeSync(bytes.subarray(off));
    file.syncDataSync();
    Deno.renameSync(tmp, path);
  }
}

/** True while a process with this pid exists. */
export function processAlive(pid: number): boolean {
  return exists(`/proc/${pid}`);
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch {
    // Already gone (another process cleaned it) or busy: the next clean-up tries again.
  }
}
